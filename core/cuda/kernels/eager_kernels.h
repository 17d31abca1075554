// The softmax step of eager attention on the GPU (internal to core/cuda; gpu_eager_attention.h runs
// the whole: Q.K^T and P.V by cuBLAS around this kernel).
//
// The scores of `rows` = heads_in_chunk * n query rows lie materialised in float32, row r = (head
// head0 + r / n, query t = r % n at position first_pos + t) at scores + r * ld, its first `keys`
// entries the raw products q.k of keys 0 .. keys - 1. Per row, in place:
//   s = scale * q.k, then the score mod (score_mod, when not empty; logits_transform.cuh),
//   keys outside the row's visible interval -> -inf: causal [0, pos] within `window` (> 0: the last
//   window keys), and under a flex mask (not empty) its interval among the keys, as launch_attention;
//   softmax in float32 (expf), the weights rounded to bf16 (HF's eager: softmax in float32, then the
//   weights cast to the activations' dtype) and written over the row's front: row r's weights are
//   bf16 elements 0 .. keys - 1 of reinterpret_cast<bf16*>(scores + r * ld), a bf16 matrix of leading
//   dimension 2 * ld for the P.V GEMM. A row that sees no key gets zero weights.
#pragma once

#include <cuda_runtime.h>

#include <cstdint>

#include "core/cuda/kernels/kernels.h"

namespace ctx::cuda {

struct EagerSoftmaxParams {
  float* scores = nullptr;
  int64_t rows = 0, n = 0, keys = 0, ld = 0;  // ld >= keys
  int64_t head0 = 0, heads = 0;               // first head of the chunk; every head of the layer
  int64_t first_pos = 0, window = 0;
  float scale = 1.f;
  FlexMask flex;
  ScoreMod score_mod;
};

void launch_eager_softmax(const EagerSoftmaxParams& p, cudaStream_t stream);

}  // namespace ctx::cuda
