// Eager attention on the GPU (internal to core/cuda): the `eager` backend's materialised scores, as
// HF transformers' eager_attention_forward computes them, for one contiguous sequence:
//   S = Q K^T        cuBLAS strided batched GEMMs (bf16 in, float32 out), one per query head of a
//                    KV group (GQA: batch = KV heads, query head kvh * group + g reads KV head kvh)
//   P = softmax(mask(score_mod(scale * S)))   one kernel over S (kernels/eager_kernels.h); the
//                    bf16 weights overwrite S in place
//   O = P V          cuBLAS strided batched GEMMs (bf16 in, float32 accumulation, bf16 out)
// Prefill and decode alike (decode: one query row). The score matrix covers every cached key of
// every row, masked or not (keys = first_pos + n): O(n * keys) float32 per head, which is eager's
// cost. It is allocated per call from the engine's caching allocator, so peak device memory counts
// it and a failed allocation is CudaOutOfMemory (status `oom`). By default all heads' scores are
// materialised at once (as HF does); score_limit_bytes > 0 processes whole KV-head groups in turn so
// that one group's scores fit the limit (a single group may still exceed it).
// Not thread-safe; every launch goes to the given stream (the workspace is freed back to the cache
// at the end of run(), which is safe because later work on the same stream is ordered after it).
#pragma once

#include <cublas_v2.h>
#include <cuda_runtime.h>

#include <cstdint>

#include "core/cuda/device_allocator.h"
#include "core/cuda/kernels/kernels.h"

namespace ctx::cuda {

class EagerAttention {
 public:
  EagerAttention(DeviceAllocator& alloc, cublasHandle_t blas, int64_t score_limit_bytes = 0)
      : alloc_(&alloc), blas_(blas), score_limit_bytes_(score_limit_bytes) {}

  // Attention of p (launch_attention's problem: q, k_cache/v_cache [kv_heads][capacity][hd], n rows,
  // window, scale, flex, score_mod, out) with the rows at positions first_pos .. first_pos + n - 1,
  // given on the host (the GEMM shapes depend on it; *p.pos0 is not read). One contiguous sequence
  // of bf16 K/V: paged K/V (p.pool), p.seq_lens and KIVI are errors.
  void run(const AttentionParams& p, int64_t first_pos, cudaStream_t stream);

  // Bytes of the float32 score matrix for `heads` heads, n rows and `keys` keys (rows padded to 8).
  static int64_t score_bytes(int64_t heads, int64_t n, int64_t keys);
  // KV heads whose scores run() materialises at once for this problem (all of them without a limit).
  int64_t kv_heads_per_pass(const AttentionParams& p, int64_t keys) const;

 private:
  DeviceAllocator* alloc_;
  cublasHandle_t blas_;
  int64_t score_limit_bytes_;
};

}  // namespace ctx::cuda
