// Prefill's staging of LLM.int8()'s input (quant_kernels.h launch_int8_activations): two kernels, since
// a column is an outlier column when any row of the call has an outlier there.
//   outlier_columns_kernel  blocks of 32 columns x 8 row groups: each thread scans every 8th row of
//                           its column, the block ORs them, one thread per column writes the flag
//   stage_rows_kernel       one block per row: the row's amax over its entries |x| <= threshold, then
//                           the row staged as values (int8_activations.cuh)
// Both read x only after pdl_wait() and trigger the next kernel at once (they are short).
#include "core/base/error.h"
#include "core/cuda/cuda_check.h"
#include "core/cuda/kernels/int8_activations.cuh"
#include "core/cuda/kernels/pdl.cuh"
#include "core/cuda/kernels/quant_kernels.h"

namespace ctx::cuda {

namespace {

using namespace quant_device;

constexpr int kColumnsPerBlock = 32, kRowGroups = 8, kRowThreads = 256;

__global__ void outlier_columns_kernel(const bf16* __restrict__ x, int64_t n, int64_t cols, float threshold,
                                       uint8_t* __restrict__ flags) {
  __shared__ int hit[kColumnsPerBlock];
  const int lane = threadIdx.x % kColumnsPerBlock, group = threadIdx.x / kColumnsPerBlock;
  const int64_t c = int64_t(blockIdx.x) * kColumnsPerBlock + lane;
  if (group == 0) hit[lane] = 0;
  pdl_wait();
  pdl_trigger();
  bool any = false;
  if (c < cols)
    for (int64_t j = group; j < n && !any; j += kRowGroups) any = is_outlier(__bfloat162float(x[j * cols + c]), threshold);
  __syncthreads();
  if (any) hit[lane] = 1;
  __syncthreads();
  if (group == 0 && c < cols) flags[c] = uint8_t(hit[lane]);
}

__global__ void stage_rows_kernel(const bf16* __restrict__ x, int64_t cols, float threshold,
                                  const uint8_t* __restrict__ flags, bf16* __restrict__ out) {
  pdl_wait();
  pdl_trigger();
  const bf16* row = x + int64_t(blockIdx.x) * cols;
  float amax = 0.f;
  for (int64_t c = threadIdx.x; c < cols; c += blockDim.x) {
    const float v = __bfloat162float(row[c]);
    if (!is_outlier(v, threshold)) amax = fmaxf(amax, fabsf(v));
  }
  const Int8RowScale s = int8_row_scale(block_max(amax), 0.f, false);
  bf16* o = out + int64_t(blockIdx.x) * cols;
  for (int64_t c = threadIdx.x; c < cols; c += blockDim.x)
    o[c] = __float2bfloat16(staged_activation(__bfloat162float(row[c]), flags[c] != 0, s));
}

}  // namespace

void launch_int8_activations(const bf16* x, int64_t n, int64_t cols, float threshold, uint8_t* outlier_columns,
                             bf16* out, cudaStream_t stream) {
  CTX_CHECK(n >= 1 && cols >= 1 && n <= int64_t(0x7fffffff), "int8 activations of ", n, " rows of ", cols);
  launch_pdl(outlier_columns_kernel, dim3(unsigned((cols + kColumnsPerBlock - 1) / kColumnsPerBlock)),
             dim3(kColumnsPerBlock * kRowGroups), 0, stream, x, n, cols, threshold, outlier_columns);
  launch_pdl(stage_rows_kernel, dim3(unsigned(n)), dim3(kRowThreads), 0, stream, x, cols, threshold,
             static_cast<const uint8_t*>(outlier_columns), out);
}

}  // namespace ctx::cuda
