// Eager attention's softmax over materialised scores (eager_kernels.h): one block per score row,
// three passes over it (transform and mask with the row max, the sum of exponentials, the weights).
// The third pass writes bf16 weights over the row's front a blockDim.x chunk at a time, each chunk's
// float scores read by every thread before any writes its weights (chunk c's weights occupy the
// bytes of floats [c B / 2, (c + 1) B / 2), all read in chunks <= c), so no second buffer is needed.
#include <cfloat>
#include <cmath>

#include "core/cuda/cuda_check.h"
#include "core/cuda/kernels/device_math.cuh"
#include "core/cuda/kernels/eager_kernels.h"
#include "core/cuda/kernels/logits_transform.cuh"

namespace ctx::cuda {

namespace {

constexpr int kThreads = 256;

template <class Logits>
__global__ void __launch_bounds__(kThreads) eager_softmax_kernel(EagerSoftmaxParams p, Logits logits) {
  const int64_t r = blockIdx.x;
  const int64_t h = p.head0 + r / p.n, pos = p.first_pos + r % p.n;
  // The visible keys [first, last] (launch_attention's rule: causal or the flex interval, in the window).
  int64_t first = p.window > 0 && pos - p.window + 1 > 0 ? pos - p.window + 1 : 0, last = pos;
  if (p.flex.count > 0) {
    int64_t f, l;
    p.flex.interval(pos, f, l);
    first = f > first ? f : first, last = l < p.keys - 1 ? l : p.keys - 1;
  }
  float* s = p.scores + r * p.ld;
  float mx = -INFINITY;
  for (int64_t j = threadIdx.x; j < p.keys; j += kThreads) {
    float x = -INFINITY;
    if (j >= first && j <= last) {
      x = logits(s[j] * p.scale, h, pos, j);
      mx = fmaxf(mx, x);
    }
    s[j] = x;
  }
  mx = block_max(mx);
  float sum = 0.f;
  if (mx != -INFINITY)
    for (int64_t j = threadIdx.x; j < p.keys; j += kThreads) sum += expf(s[j] - mx);
  sum = block_sum(sum);
  const float inv = sum > 0.f ? 1.f / sum : 0.f;
  bf16* w = reinterpret_cast<bf16*>(s);
  for (int64_t c0 = 0; c0 < p.keys; c0 += kThreads) {
    const int64_t j = c0 + threadIdx.x;
    const float x = j < p.keys && mx != -INFINITY ? expf(s[j] - mx) * inv : 0.f;
    __syncthreads();  // every float of this chunk read before any weight lands on the row's front
    if (j < p.keys) w[j] = __float2bfloat16(x);
  }
}

}  // namespace

void launch_eager_softmax(const EagerSoftmaxParams& p, cudaStream_t stream) {
  CTX_CHECK(p.rows >= 0 && p.n > 0 && p.keys > 0 && p.ld >= p.keys && p.rows % p.n == 0, "eager softmax shape");
  if (p.rows == 0) return;
  CTX_CHECK(p.rows < (int64_t(1) << 31), "eager softmax: too many rows");
  with_logits(p.score_mod, p.heads, [&](auto logits) {
    eager_softmax_kernel<<<unsigned(p.rows), kThreads, 0, stream>>>(p, logits);
  });
  CTX_CUDA_CHECK_LAUNCH();
}

}  // namespace ctx::cuda
