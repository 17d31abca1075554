// Decode GEMVs and the GEMM epilogue (kernels.h). One warp per output row (two for SwiGLU: the gate
// row and the up row); each lane loads 16 bytes (8 bf16) at a time with several loads in flight, and
// its first loads are issued before pdl_wait(), while the previous kernel drains (pdl.cuh).
#include <algorithm>
#include <cstdlib>
#include <map>
#include <mutex>
#include <string>
#include <tuple>

#include "core/cuda/cuda_check.h"
#include "core/cuda/kernels/device_math.cuh"
#include "core/cuda/kernels/gemv_common.cuh"
#include "core/cuda/kernels/kernels.h"
#include "core/cuda/kernels/pdl.cuh"

namespace ctx::cuda {

namespace {

constexpr int kPreload = 4;       // 16-byte chunks per lane loaded before pdl_wait()

struct GemvArgs {
  const bf16* W;
  GemvInput in;
  int64_t rows, cols;
  const bf16* bias;
  float alpha;
  bool accumulate;
  float* y;   // plain epilogue
  bf16* act;  // SwiGLU epilogue
  bool prefetch = false;  // gemv_prefetch()
};

__device__ inline float dot8(uint4 w, uint4 x) {
  const __nv_bfloat162* a = reinterpret_cast<const __nv_bfloat162*>(&w);
  const __nv_bfloat162* b = reinterpret_cast<const __nv_bfloat162*>(&x);
  float s = 0.f;
#pragma unroll
  for (int i = 0; i < 4; ++i) {
    const float2 fa = __bfloat1622float2(a[i]);
    const float2 fb = __bfloat1622float2(b[i]);
    s = fmaf(fa.x, fb.x, s);
    s = fmaf(fa.y, fb.y, s);
  }
  return s;
}

// The first kPreload chunks this lane will need of a row (weights only: safe before pdl_wait()).
// Weights are read once, so they bypass L1 (__ldcs: evict-first).
__device__ inline void preload_row(const bf16* w_row, int64_t chunks, int lane, uint4 (&first)[kPreload]) {
  const uint4* w4 = reinterpret_cast<const uint4*>(w_row);
#pragma unroll
  for (int i = 0; i < kPreload; ++i) {
    const int64_t c = lane + 32 * i;
    first[i] = c < chunks ? __ldcs(w4 + c) : make_uint4(0, 0, 0, 0);
  }
}

// This lane's part of dot(w_row, x); the caller sums over the warp. kVec: cols % 8 == 0 and `first`
// holds the preloaded chunks; x may live in shared or global memory.
template <bool kVec>
__device__ inline float lane_dot(const bf16* __restrict__ w_row, const bf16* x, int64_t cols, int lane,
                                 const uint4 (&first)[kPreload]) {
  float acc = 0.f;
  if constexpr (kVec) {
    const uint4* w4 = reinterpret_cast<const uint4*>(w_row);
    const uint4* x4 = reinterpret_cast<const uint4*>(x);
    const int64_t chunks = cols / 8;
#pragma unroll
    for (int i = 0; i < kPreload; ++i) {
      const int64_t c = lane + 32 * i;
      if (c < chunks) acc += dot8(first[i], x4[c]);
    }
    int64_t c = lane + 32 * kPreload;
    for (; c + 96 < chunks; c += 128) {  // four independent 16-byte loads in flight per lane
      const uint4 w0 = __ldcs(w4 + c), w1 = __ldcs(w4 + c + 32), w2 = __ldcs(w4 + c + 64), w3 = __ldcs(w4 + c + 96);
      acc += dot8(w0, x4[c]) + dot8(w1, x4[c + 32]) + dot8(w2, x4[c + 64]) + dot8(w3, x4[c + 96]);
    }
    for (; c < chunks; c += 32) acc += dot8(__ldcs(w4 + c), x4[c]);
  } else {
    for (int64_t c = lane; c < cols; c += 32) acc = fmaf(__bfloat162float(w_row[c]), __bfloat162float(x[c]), acc);
  }
  return acc;
}

// kNorm: the input is RMSNorm(in.hidden), staged in shared memory by each block. kSwiglu: rows r
// and rows + r of W give the gate and the up projection of act[r]. The grid is at most one wave of
// resident blocks, each taking tiles of kRowsPerBlock rows blockIdx.x, blockIdx.x + gridDim.x, ...:
// the input is staged once per block, not once per tile (a second wave would wait for it again).
template <bool kVec, bool kNorm, bool kSwiglu>
__device__ __forceinline__ void gemv_body(const GemvArgs& a) {
  extern __shared__ uint4 staged_x[];
  constexpr int kRows = kSwiglu ? 2 : 1;
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  const int64_t tiles = (a.rows + kRowsPerBlock - 1) / kRowsPerBlock;
  uint4 first[kRows][kPreload];
  auto preload = [&](int64_t tile) {
    const int64_t r = tile * kRowsPerBlock + warp;
#pragma unroll
    for (int j = 0; j < kRows; ++j) {
      if (kVec && r < a.rows) {
        preload_row(a.W + (r + j * a.rows) * a.cols, a.cols / 8, lane, first[j]);
      } else {
#pragma unroll
        for (int i = 0; i < kPreload; ++i) first[j][i] = make_uint4(0, 0, 0, 0);
      }
    }
  };
  int64_t tile = blockIdx.x;
  preload(tile);
  if (a.prefetch) {
    if constexpr (kNorm) prefetch_norm_weight(a.in, a.cols);
    if (a.bias && lane == 0) {  // this warp's rows' biases (row r of each tile; SwiGLU: rows + r too)
      for (int64_t r = tile * kRowsPerBlock + warp; r < a.rows; r += int64_t(gridDim.x) * kRowsPerBlock)
#pragma unroll
        for (int j = 0; j < kRows; ++j) prefetch_l1(a.bias + j * a.rows + r);
    }
  }
  pdl_wait();
  pdl_trigger();
  const bf16* x = a.in.x;
  if constexpr (kNorm) {
    stage_rmsnorm<kVec>(a.in, a.cols, reinterpret_cast<bf16*>(staged_x));
    x = reinterpret_cast<const bf16*>(staged_x);
  }
  while (true) {
    const int64_t r = tile * kRowsPerBlock + warp;
    if (!kSwiglu && a.prefetch && a.accumulate && lane == 0 && r < a.rows) prefetch_l1(a.y + r);  // for the epilogue
    if (r < a.rows) {
      float dot[kRows];
#pragma unroll
      for (int j = 0; j < kRows; ++j)
        dot[j] = warp_sum(lane_dot<kVec>(a.W + (r + j * a.rows) * a.cols, x, a.cols, lane, first[j]));
      if (lane == 0) gemv_store<kSwiglu>(GemvEpilogue{a.bias, a.alpha, a.accumulate, a.y, a.act}, a.rows, r, dot);
    }
    tile += gridDim.x;
    if (tile >= tiles) break;
    preload(tile);
  }
}

template <bool kVec, bool kNorm, bool kSwiglu>
__global__ void __launch_bounds__(32 * kRowsPerBlock) gemv_kernel(GemvArgs a) {
  gemv_body<kVec, kNorm, kSwiglu>(a);
}

// The plain fused-RMSNorm kernel (the decode's qkv GEMV and lm_head in bf16) held to 72 registers
// (78 free, no spills either way): three blocks of it then leave an SM room for one block of decode
// attention (128 threads of at most 80 registers), which the next launch starts early (pdl.cuh) to
// find its keys and prefetch them beside the GEMV. On the H100 the Llama-2-7B shape in bf16 decoded
// in 4.995 ms instead of 5.368 at 256 keys, 5.215 instead of 5.472 at 1024 (bench/RESULTS.md,
// twenty-third session).
template <bool kVec>
__global__ void __maxnreg__(72) gemv_norm_kernel(GemvArgs a) {
  gemv_body<kVec, true, false>(a);
}

template <bool kSwiglu>
void launch_gemv_variant(const GemvArgs& a, cudaStream_t stream) {
  CTX_CHECK(a.in.hidden ? a.in.norm_weight != nullptr : a.in.x != nullptr, "GEMV input");
  const int64_t tiles = (a.rows + kRowsPerBlock - 1) / kRowsPerBlock;
  const bool vec = a.cols % 8 == 0;
  const size_t smem = a.in.hidden ? size_t((a.cols + 7) / 8) * 16 : 0;
  GemvArgs args = a;
  args.prefetch = gemv_prefetch();
  auto pick = [&](auto kernel) { launch_one_wave(kernel, tiles, smem, stream, args); };
  if (a.in.hidden) {
    if constexpr (kSwiglu) {
      vec ? pick(gemv_kernel<true, true, true>) : pick(gemv_kernel<false, true, true>);
    } else {
      vec ? pick(gemv_norm_kernel<true>) : pick(gemv_norm_kernel<false>);
    }
  } else {
    vec ? pick(gemv_kernel<true, false, kSwiglu>) : pick(gemv_kernel<false, false, kSwiglu>);
  }
}

__global__ void bias_residual_kernel(const float* __restrict__ tmp, const bf16* __restrict__ bias, int64_t n,
                                     int64_t rows, float alpha, bool accumulate, float* __restrict__ y) {
  pdl_wait();
  pdl_trigger();
  const int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i >= n * rows) return;
  const float v = tmp[i] + (bias ? __bfloat162float(bias[i % rows]) : 0.f);
  y[i] = (accumulate ? y[i] : 0.f) + alpha * v;
}

}  // namespace

bool gemv_prefetch() {
  static const bool on = [] {
    const char* e = std::getenv("CTXLAB_GEMV_PREFETCH");
    return !(e && std::string(e) == "0");
  }();
  return on;
}

int64_t resident_blocks(const void* kernel, int threads, size_t smem) {
  static std::mutex mu;
  static std::map<std::tuple<int, const void*, size_t>, int64_t> known;
  int device = 0;
  CTX_CUDA_CHECK(cudaGetDevice(&device));
  allow_dynamic_smem(kernel, smem);  // before the occupancy query, which counts against the limit
  std::lock_guard<std::mutex> lock(mu);
  const auto key = std::make_tuple(device, kernel, smem);
  if (auto it = known.find(key); it != known.end()) return it->second;
  int sms = 0, per_sm = 0;
  CTX_CUDA_CHECK(cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, device));
  CTX_CUDA_CHECK(cudaOccupancyMaxActiveBlocksPerMultiprocessor(&per_sm, kernel, threads, smem));
  return known[key] = std::max<int64_t>(1, int64_t(sms) * per_sm);
}

void launch_gemv(const bf16* W, const GemvInput& in, int64_t rows, int64_t cols, const bf16* bias, float alpha,
                 bool accumulate, float* y, cudaStream_t stream) {
  launch_gemv_variant<false>(GemvArgs{W, in, rows, cols, bias, alpha, accumulate, y, nullptr}, stream);
}

void launch_gemv_swiglu(const bf16* W, const GemvInput& in, int64_t rows, int64_t cols, const bf16* bias, bf16* act,
                        cudaStream_t stream) {
  launch_gemv_variant<true>(GemvArgs{W, in, rows, cols, bias, 1.f, false, nullptr, act}, stream);
}

void launch_bias_residual(const float* tmp, const bf16* bias, int64_t n, int64_t rows, float alpha, bool accumulate,
                          float* y, cudaStream_t stream) {
  const int64_t count = n * rows;
  launch_pdl(bias_residual_kernel, dim3(unsigned((count + 255) / 256)), dim3(256), 0, stream, tmp, bias, n, rows,
             alpha, accumulate, y);
}

}  // namespace ctx::cuda
