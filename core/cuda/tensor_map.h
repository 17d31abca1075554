// TMA tensor maps (internal to core/cuda): the descriptor Hopper's bulk tensor copy engine reads to
// move a box of a global tensor into shared memory (kernels/tma_sm90.cuh). Encoded on the host by the
// driver's cuTensorMapEncodeTiled, reached through the runtime (cudaGetDriverEntryPointByVersion), so
// nothing links against libcuda. Passed to a kernel by value as a __grid_constant__ parameter.
#pragma once

#include <cuda.h>

#include <cstdint>
#include <initializer_list>

namespace ctx::cuda {

// A map over a bf16 tensor at `base` (16-byte aligned) with `dims` elements per dimension
// (innermost first, rank 2..5), `strides` bytes between consecutive indices of dimensions 1..rank-1
// (multiples of 16), read in boxes of `box` elements (box[0] * 2 == 128 bytes: one 128-byte-swizzled
// row, the layout of flash_attention_common.cuh's tiles). Out-of-range elements read as zero. A
// shape the driver rejects, or a missing driver entry point, is a ctx::Error naming it.
CUtensorMap make_bf16_tensor_map(const void* base, std::initializer_list<uint64_t> dims,
                                 std::initializer_list<uint64_t> strides, std::initializer_list<uint32_t> box);

}  // namespace ctx::cuda
