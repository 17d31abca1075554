// Hopper warpgroup MMA primitives as inline PTX (internal to core/cuda/kernels; sm_90a only:
// callers compile them under __CUDA_ARCH_FEAT_SM90_ALL). A warpgroup (4 consecutive warps, the
// first a multiple of 4) issues them together; accumulators are float32 in the mma C layout per
// warp (warp w of the group: rows 16w + lane / 4 and + 8, n8 tile j in d[j][0..3], mma_sm80.cuh).
// Shared operands are described by smem_desc: tiles in the 128-byte swizzle (rows of 128 bytes,
// 16-byte chunk c of row r at c ^ (r % 8), 8-row groups 1024 bytes apart, 1024-byte aligned).
#pragma once

#include <cstdint>

namespace ctx::cuda::wgmma {

// Matrix descriptor: start address, leading and stride byte offsets (16-byte units), 128-byte
// swizzle (mode 1 in bits 62-63). K-major: stride = 1024 (between 8-row groups), leading unused
// (the k16 slice stays in one 128-byte row; advance the start by 32 bytes per slice). MN-major:
// leading = bytes between 64-element column blocks, stride = 1024 (between 8-row groups of K).
__device__ __forceinline__ uint64_t smem_desc(uint32_t addr, uint32_t leading_bytes, uint32_t stride_bytes) {
  return uint64_t((addr & 0x3FFFF) >> 4) | (uint64_t((leading_bytes & 0x3FFFF) >> 4) << 16) |
         (uint64_t((stride_bytes & 0x3FFFF) >> 4) << 32) | (uint64_t(1) << 62);
}

// Orders this thread's earlier register and shared-memory accesses before the next wgmma.
__device__ __forceinline__ void fence() { asm volatile("wgmma.fence.sync.aligned;\n" ::: "memory"); }
__device__ __forceinline__ void commit() { asm volatile("wgmma.commit_group.sync.aligned;\n" ::: "memory"); }
template <int kPending>
__device__ __forceinline__ void wait() {
  asm volatile("wgmma.wait_group.sync.aligned %0;\n" ::"n"(kPending) : "memory");
}
// Keeps the compiler from touching accumulators across a wait (their values exist only after it).
template <int kN>
__device__ __forceinline__ void fence_operands(float (&d)[kN][4]) {
#pragma unroll
  for (int j = 0; j < kN; ++j)
#pragma unroll
    for (int e = 0; e < 4; ++e) asm volatile("" : "+f"(d[j][e])::"memory");
}
// The same for A fragments in registers, which an in-flight wgmma may still read.
template <int kN>
__device__ __forceinline__ void fence_operands(uint32_t (&a)[kN][4]) {
#pragma unroll
  for (int j = 0; j < kN; ++j)
#pragma unroll
    for (int e = 0; e < 4; ++e) asm volatile("" : "+r"(a[j][e])::"memory");
}
// Shared memory written through the generic proxy (st.shared, cp.async) becomes visible to the
// tensor cores' async proxy: each writing thread, before the barrier.
__device__ __forceinline__ void fence_proxy_async() { asm volatile("fence.proxy.async.shared::cta;\n" ::: "memory"); }

// Accumulator operands of the asm below: tile j of d is operands 4j .. 4j + 3.
#define CTX_WGMMA_ACC4(d, j) "+f"(d[j][0]), "+f"(d[j][1]), "+f"(d[j][2]), "+f"(d[j][3])
#define CTX_WGMMA_ACC32(d)                                                                                     \
  CTX_WGMMA_ACC4(d, 0), CTX_WGMMA_ACC4(d, 1), CTX_WGMMA_ACC4(d, 2), CTX_WGMMA_ACC4(d, 3), CTX_WGMMA_ACC4(d, 4), \
      CTX_WGMMA_ACC4(d, 5), CTX_WGMMA_ACC4(d, 6), CTX_WGMMA_ACC4(d, 7)
#define CTX_WGMMA_ACC64(d)                                                                                       \
  CTX_WGMMA_ACC32(d), CTX_WGMMA_ACC4(d, 8), CTX_WGMMA_ACC4(d, 9), CTX_WGMMA_ACC4(d, 10), CTX_WGMMA_ACC4(d, 11), \
      CTX_WGMMA_ACC4(d, 12), CTX_WGMMA_ACC4(d, 13), CTX_WGMMA_ACC4(d, 14), CTX_WGMMA_ACC4(d, 15)
#define CTX_WGMMA_REGS32 \
  "%0, %1, %2, %3, %4, %5, %6, %7, %8, %9, %10, %11, %12, %13, %14, %15,"            \
  "%16, %17, %18, %19, %20, %21, %22, %23, %24, %25, %26, %27, %28, %29, %30, %31"
#define CTX_WGMMA_REGS64 \
  CTX_WGMMA_REGS32 ","   \
  "%32, %33, %34, %35, %36, %37, %38, %39, %40, %41, %42, %43, %44, %45, %46, %47,"            \
  "%48, %49, %50, %51, %52, %53, %54, %55, %56, %57, %58, %59, %60, %61, %62, %63"

// d (+)= A B, m64n64k16 (d = A B where accumulate is 0): A and B K-major in shared memory.
__device__ __forceinline__ void wgmma_ss_m64n64k16(float (&d)[8][4], uint64_t desc_a, uint64_t desc_b, int accumulate) {
  asm volatile(
      "{\n.reg .pred p;\nsetp.ne.b32 p, %34, 0;\n"
      "wgmma.mma_async.sync.aligned.m64n64k16.f32.bf16.bf16 {" CTX_WGMMA_REGS32 "}, %32, %33, p, 1, 1, 0, 0;\n}\n"
      : CTX_WGMMA_ACC32(d)
      : "l"(desc_a), "l"(desc_b), "r"(accumulate));
}

__device__ __forceinline__ void wgmma_ss_m64n128k16(float (&d)[16][4], uint64_t desc_a, uint64_t desc_b, int accumulate) {
  asm volatile(
      "{\n.reg .pred p;\nsetp.ne.b32 p, %66, 0;\n"
      "wgmma.mma_async.sync.aligned.m64n128k16.f32.bf16.bf16 {" CTX_WGMMA_REGS64 "}, %64, %65, p, 1, 1, 0, 0;\n}\n"
      : CTX_WGMMA_ACC64(d)
      : "l"(desc_a), "l"(desc_b), "r"(accumulate));
}

// d += A B, m64n{64,128}k16: A from registers (each warp's m16k16 fragment of its 16 rows), B
// MN-major in shared memory (transposed by the instruction).
__device__ __forceinline__ void wgmma_rs_m64n64k16(float (&d)[8][4], const uint32_t (&a)[4], uint64_t desc_b) {
  asm volatile(
      "{\n.reg .pred p;\nsetp.ne.b32 p, %37, 0;\n"
      "wgmma.mma_async.sync.aligned.m64n64k16.f32.bf16.bf16 {" CTX_WGMMA_REGS32 "}, {%32, %33, %34, %35}, %36, p, 1, 1, 1;\n}\n"
      : CTX_WGMMA_ACC32(d)
      : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "l"(desc_b), "r"(1));
}

__device__ __forceinline__ void wgmma_rs_m64n128k16(float (&d)[16][4], const uint32_t (&a)[4], uint64_t desc_b) {
  asm volatile(
      "{\n.reg .pred p;\nsetp.ne.b32 p, %69, 0;\n"
      "wgmma.mma_async.sync.aligned.m64n128k16.f32.bf16.bf16 {" CTX_WGMMA_REGS64 "}, {%64, %65, %66, %67}, %68, p, 1, 1, 1;\n}\n"
      : CTX_WGMMA_ACC64(d)
      : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "l"(desc_b), "r"(1));
}

#undef CTX_WGMMA_ACC4
#undef CTX_WGMMA_ACC32
#undef CTX_WGMMA_ACC64
#undef CTX_WGMMA_REGS32
#undef CTX_WGMMA_REGS64

}  // namespace ctx::cuda::wgmma
