// Warp-level tensor-core and async-copy primitives of sm_80+ as inline PTX (internal to
// core/cuda/kernels): bf16 and fp16 mma.sync m16n8k16 with float32 accumulation, prmt, ldmatrix (plain and .trans),
// cp.async 16-byte copies with zero fill, and ex2.approx.
//
// Fragment layouts of mma.m16n8k16 (g = lane / 4, c = lane % 4; each register holds two bf16, the
// lower column/row index in the low half):
//   A 16x16 row-major:  a0 (row g, cols 2c, 2c+1)   a1 (row g+8, cols 2c..)  a2 (row g, cols 2c+8..)  a3 (row g+8, cols 2c+8..)
//   B 16x8 "col":       b0 (rows 2c, 2c+1, col g)   b1 (rows 2c+8, 2c+9, col g)   i.e. B stored as B^T [n][k]
//   C/D 16x8 float:     d0, d1 (row g, cols 2c, 2c+1)   d2, d3 (row g+8, cols 2c, 2c+1)
// ldmatrix.x4: lanes 8i .. 8i+7 give the row addresses (16 bytes each) of matrix i; register i of
// thread t receives row t/4, elements 2(t%4), 2(t%4)+1 of matrix i (with .trans: of its transpose).
#pragma once

#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include <cstdint>

namespace ctx::cuda::mma {

__device__ __forceinline__ uint32_t smem_addr(const void* p) {
  return static_cast<uint32_t>(__cvta_generic_to_shared(p));
}

__device__ __forceinline__ void ldmatrix_x4(uint32_t (&r)[4], uint32_t addr) {
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0, %1, %2, %3}, [%4];\n"
               : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
               : "r"(addr));
}

__device__ __forceinline__ void ldmatrix_x4_trans(uint32_t (&r)[4], uint32_t addr) {
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16 {%0, %1, %2, %3}, [%4];\n"
               : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
               : "r"(addr));
}

// d += a * b (bf16 inputs, float32 accumulators).
__device__ __forceinline__ void mma_bf16_16816(float (&d)[4], const uint32_t (&a)[4], uint32_t b0, uint32_t b1) {
  asm(
      "mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0, %1, %2, %3}, {%4, %5, %6, %7}, {%8, %9}, "
      "{%0, %1, %2, %3};\n"
      : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
      : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
}

// d += a * b (fp16 inputs, float32 accumulators); the same fragment layouts.
__device__ __forceinline__ void mma_f16_16816(float (&d)[4], const uint32_t (&a)[4], uint32_t b0, uint32_t b1) {
  asm(
      "mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 {%0, %1, %2, %3}, {%4, %5, %6, %7}, {%8, %9}, "
      "{%0, %1, %2, %3};\n"
      : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
      : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
}

// Two floats as one register of fp16 (lo in the low half), rounded to nearest.
__device__ __forceinline__ uint32_t pack_f16(float lo, float hi) {
  const __half2 v = __floats2half2_rn(lo, hi);
  return *reinterpret_cast<const uint32_t*>(&v);
}

// Bytes of {b, a} picked by the selector's nibbles (PTX prmt.b32: byte i of the result is byte
// (sel >> 4i) & 7 of b:a, a's bytes 0-3, b's 4-7).
__device__ __forceinline__ uint32_t prmt(uint32_t a, uint32_t b, uint32_t sel) {
  uint32_t d;
  asm("prmt.b32 %0, %1, %2, %3;\n" : "=r"(d) : "r"(a), "r"(b), "r"(sel));
  return d;
}

// (a & mask) | bits in one LOP3. Written as C++ `&` and `|` with two immediates, ptxas emits two LOP3s
// (each SASS LOP3 takes one immediate): 128 extra instructions per 32-key KIVI tile at 4 bits
// (Nsight Compute's source counters, bench/RESULTS.md eighth session).
template <uint32_t kMask, uint32_t kBits>
__device__ __forceinline__ uint32_t and_or(uint32_t a) {
  uint32_t d;
  asm("lop3.b32 %0, %1, %2, %3, 0xea;\n" : "=r"(d) : "r"(a), "n"(kMask), "n"(kBits));
  return d;
}

// Two floats as one register of bf16 (lo in the low half), rounded to nearest.
__device__ __forceinline__ uint32_t pack_bf16(float lo, float hi) {
  const __nv_bfloat162 v = __floats2bfloat162_rn(lo, hi);
  return *reinterpret_cast<const uint32_t*>(&v);
}

// 16 bytes global -> shared through L2 only; src_bytes 0 writes zeros (src is then not read).
__device__ __forceinline__ void cp_async_16(uint32_t dst, const void* src, int src_bytes) {
  asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;\n" ::"r"(dst), "l"(src), "r"(src_bytes));
}

__device__ __forceinline__ void cp_async_commit() { asm volatile("cp.async.commit_group;\n" ::); }

// Waits until at most kPending of this thread's committed groups are still in flight.
template <int kPending>
__device__ __forceinline__ void cp_async_wait() {
  asm volatile("cp.async.wait_group %0;\n" ::"n"(kPending));
}

// 2^x (approximate, relative error ~2^-22; ex2(-inf) = +0).
__device__ __forceinline__ float exp2_approx(float x) {
  float y;
  asm("ex2.approx.ftz.f32 %0, %1;\n" : "=f"(y) : "f"(x));
  return y;
}

}  // namespace ctx::cuda::mma
