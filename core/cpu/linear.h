// y = x W^T (+ b) for float32 row-major matrices: x [n, in], W [out, in] (nn.Linear layout),
// y [n, out]. Small n (decode, n <= 8) is memory-bound and uses a streaming kernel that reads W
// exactly once, split by output rows across threads; larger n (prefill) uses Eigen's blocked GEMM.
// A quantized matrix (w.quant) computes the product with its own kernels; the bias is added alike.
// Reentrant; uses the threads set by set_num_threads().
#pragma once

#include <cstdint>

#include "core/model/weights.h"

namespace ctx {

void linear(const WeightMatrix& w, const float* x, int64_t n, float* y, const WeightVector& bias = {});

}  // namespace ctx
