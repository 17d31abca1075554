#include "core/cuda/gpu_eager_attention.h"

#include <algorithm>

#include "core/base/error.h"
#include "core/cuda/cublas_api.h"
#include "core/cuda/cuda_check.h"
#include "core/cuda/kernels/eager_kernels.h"

namespace ctx::cuda {

namespace {

// Score rows are padded to 8 floats (32 bytes), so that both the float32 scores and the bf16
// weights written over them have 16-byte aligned rows for cuBLAS's tensor-core kernels.
int64_t padded_keys(int64_t keys) { return (keys + 7) / 8 * 8; }

}  // namespace

int64_t EagerAttention::score_bytes(int64_t heads, int64_t n, int64_t keys) {
  return heads * n * padded_keys(keys) * int64_t(sizeof(float));
}

int64_t EagerAttention::kv_heads_per_pass(const AttentionParams& p, int64_t keys) const {
  if (score_limit_bytes_ <= 0) return p.kv_heads;
  const int64_t group_bytes = score_bytes(p.heads / p.kv_heads, p.n, keys);
  return std::clamp<int64_t>(score_limit_bytes_ / group_bytes, 1, p.kv_heads);
}

void EagerAttention::run(const AttentionParams& p, int64_t first_pos, cudaStream_t stream) {
  CTX_CHECK(!p.pool.paged() && !p.seq_lens && p.kivi.bits == 0, "eager attention: one contiguous bf16 sequence");
  CTX_CHECK(p.n >= 1 && p.kv_heads >= 1 && p.heads % p.kv_heads == 0 && first_pos >= 0, "eager attention shape");
  const int64_t keys = first_pos + p.n, ld = padded_keys(keys), group = p.heads / p.kv_heads, hd = p.hd;
  CTX_CHECK(keys <= p.capacity && 2 * ld < INT32_MAX && p.heads * hd < INT32_MAX, "eager attention: ", keys,
            " keys in a cache of ", p.capacity);
  const int64_t per_pass = kv_heads_per_pass(p, keys);
  DeviceBuffer<float> scores(*alloc_, per_pass * group * p.n * ld);
  const CublasApi& blas = cublas();
  CTX_CUBLAS_CHECK(blas.set_stream(blas_, stream));
  const float one = 1.f, zero = 0.f;
  const int64_t head_stride = p.capacity * hd;  // one KV head's rows
  for (int64_t kv0 = 0; kv0 < p.kv_heads; kv0 += per_pass) {
    const int batch = int(std::min(per_pass, p.kv_heads - kv0));
    const bf16* k = p.k_cache + kv0 * head_stride;
    const bf16* v = p.v_cache + kv0 * head_stride;
    // S^T (keys x n, column-major: row-major S of query head kv0 * group + g) = K Q^T.
    for (int64_t g = 0; g < group; ++g)
      CTX_CUBLAS_CHECK(blas.gemm_strided_batched_ex(
          blas_, CUBLAS_OP_T, CUBLAS_OP_N, int(keys), int(p.n), int(hd), &one, k, CUDA_R_16BF, int(hd), head_stride,
          p.q + (kv0 * group + g) * hd, CUDA_R_16BF, int(p.heads * hd), group * hd, &zero, scores.get() + g * p.n * ld,
          CUDA_R_32F, int(ld), group * p.n * ld, batch, CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT));
    EagerSoftmaxParams sp;
    sp.scores = scores.get(), sp.rows = batch * group * p.n, sp.n = p.n, sp.keys = keys, sp.ld = ld;
    sp.head0 = kv0 * group, sp.heads = p.heads, sp.first_pos = first_pos, sp.window = p.window, sp.scale = p.scale;
    sp.flex = p.flex, sp.score_mod = p.score_mod;
    launch_eager_softmax(sp, stream);
    // O^T (hd x n, column-major: the rows of out) = V^T P^T, P the bf16 weights over S (leading dim 2 ld).
    const bf16* weights = reinterpret_cast<const bf16*>(scores.get());
    for (int64_t g = 0; g < group; ++g)
      CTX_CUBLAS_CHECK(blas.gemm_strided_batched_ex(
          blas_, CUBLAS_OP_N, CUBLAS_OP_N, int(hd), int(p.n), int(keys), &one, v, CUDA_R_16BF, int(hd), head_stride,
          weights + 2 * g * p.n * ld, CUDA_R_16BF, int(2 * ld), 2 * group * p.n * ld, &zero,
          p.out + (kv0 * group + g) * hd, CUDA_R_16BF, int(p.heads * hd), group * hd, batch, CUBLAS_COMPUTE_32F,
          CUBLAS_GEMM_DEFAULT));
  }
}

}  // namespace ctx::cuda
