// Kernels for quantized weight matrices (internal to core/cuda): the device view of a packed matrix
// (filled by gpu_quant_weights.h from the CPU plugin's own codes and scales), the fused
// dequantize-GEMV of decode and the dequantization into bf16 that prefill's cuBLAS GEMMs read.
//
// Device layout (re-packed at upload for the GEMV's tensor-core fragments, quant_formats.cuh gives the
// exact maps): a matrix is cut into tiles of 16 rows (each stacked part padded to whole tiles) and
// chunks of 64 columns (rows padded to whole chunks); tile T's chunk C holds, lane by lane, the codes
// lane l of a warp needs for its mma.m16n8k16 A fragments (rows l/4 and l/4 + 8 of the tile), so a
// warp reads one chunk as 32 contiguous 16-byte (4-bit) or 32-byte (8-bit) pieces:
//   codes + ((T * chunks + C) * 32 + l) * lane_bytes
// Padding holds zero codes with zero scales (and the GEMV stages zero inputs there). Scales, in tile
// order so that a lane reads its rows' scales of a chunk with one load:
//   kInt8   float absmax[r] / 127 per row, [tiles][16]
//   kQ8_0   fp16 d per (row, group of 32): [tiles][chunks][8][row g, g + 8][group 0, 1]
//   kQ4_0   as kQ8_0
//   kCode4  (nf4, fp4) the float absmax of the element's block (double quantization expanded on the
//           host with the CPU's fma): per (row, chunk) [tiles][chunks][8][2] when no 64-column chunk
//           crosses a block (blocksize >= 64, cols % 64 == 0), else per (row, group) as kQ8_0.
//   kCode4Bf16  (nf4, fp4 with codes=bfloat16: every code value a bf16) as kCode4, the codes in
//           q4_0's fragment order (one tensor-core k slot per weight instead of kCode4's two).
// A stacked matrix (wqkv = [wq; wk; wv], [gate; up]) keeps where each part's tiles start.
// LLM.int8() (llm_int8) is kInt8 with int8_activations: the input is decomposed per call as the CPU
// plugin does (int8_activations.cuh): the decode GEMV restages its input in shared memory, prefill
// stages the n rows with launch_int8_activations() before the GEMM.
#pragma once

#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include <cstdint>

#include "core/cuda/kernels/kernels.h"

namespace ctx::cuda {

enum class QuantFormat : int { kInt8, kQ8_0, kQ4_0, kCode4, kCode4Bf16 };

inline constexpr int kMaxQuantParts = 3;
inline constexpr int kQuantTileRows = 16, kQuantChunkCols = 64;

// A row-stacked part: its first row in the stack, its rows, its first tile.
struct QuantPart {
  int64_t row0 = 0, rows = 0, tile0 = 0;
};

// Passed by value to the kernels. Pointers are device memory written once at upload (so the kernels
// may read all of it before pdl_wait()).
struct QuantMatrixView {
  QuantFormat format = QuantFormat::kInt8;
  int64_t rows = 0, cols = 0;  // logical
  int64_t chunks = 0;          // ceil(cols / 64)
  int64_t tiles = 0;           // over all parts
  const uint8_t* codes = nullptr;
  const void* scales = nullptr;
  bool scale_per_chunk = false;  // kCode4, kCode4Bf16
  float code_values[16] = {};    // kCode4, kCode4Bf16
  QuantPart parts[kMaxQuantParts];
  int num_parts = 1;
  bool int8_activations = false;  // kInt8 only: LLM.int8()'s input decomposition
  float outlier_threshold = 0.f;  // with int8_activations: > 0 keeps |x| above it in floating point
};

// Decode: y[r] = (accumulate ? y[r] : 0) + alpha * (sum_c W[r, c] * x[c] + bias[r]) for r < w.rows,
// with W the CPU plugin's dequantized values (code * scale) and x bf16 (GemvInput: given, or the fused
// RMSNorm of a float32 hidden state); float32 accumulation. bias may be null. With int8_activations,
// sum_c W[r, c] * x[c] is LLM.int8()'s product of x (staged as codes, int8_activations.cuh).
// sumsq (may be null): the sums of squares of y's tiles of 16 rows as stored, quant_gemv_sumsq_parts(w)
// floats, for the GEMV that normalizes y next (GemvInput::sumsq).
void launch_quant_gemv(const QuantMatrixView& w, const GemvInput& in, const bf16* bias, float alpha, bool accumulate,
                       float* y, cudaStream_t stream, float* sumsq = nullptr);
int64_t quant_gemv_sumsq_parts(const QuantMatrixView& w);
// Whether launch_quant_gemv / launch_quant_gemv_swiglu normalize `in` (hidden with sumsq) without
// staging it: the input in registers, cols a multiple of 64, hidden and norm_weight 16-byte aligned,
// not int8_activations; otherwise they stage it and ignore in.sumsq.
bool quant_gemv_direct_norm(const QuantMatrixView& w, const GemvInput& in);
// Whether launch_quant_gemv(w, ...) holds each lane's input pieces in registers for every tile (16
// warps, w.cols <= 4096; CTXLAB_QGEMV_X_REGS=0: never) instead of reading them from shared memory.
bool quant_gemv_input_in_registers(const QuantMatrixView& w);

// SwiGLU fused into the GEMV of the stacked [gate; up] matrix (w.rows = 2 * ff, gate rows first, the
// up rows starting a tile: two parts, or ff % 16 == 0): act[r] = swiglu(gate_r + bias[r], up_r +
// bias[ff + r]) for r < ff, as launch_gemv_swiglu.
void launch_quant_gemv_swiglu(const QuantMatrixView& w, const GemvInput& in, const bf16* bias, bf16* act,
                              cudaStream_t stream);

// Batched decode (a few sequences, or a short prefill chunk): the n input rows x [n][w.cols] (bf16) in
// one pass over the packed weights, y [n][w.rows] (row o as launch_quant_gemv on x[o] without a fused
// RMSNorm, bit for bit: the tensor cores' 8 columns, which hold one input in the GEMV above, each take
// an input row here), or act [n][ff] as launch_quant_gemv_swiglu. Needs quant_gemv_rows_supported:
// 1 <= n <= kMaxGemvRows, w.cols a multiple of 64, not int8_activations (LLM.int8() decomposes each
// input on its own); else CTX_CHECK.
inline constexpr int kMaxGemvRows = 8;
bool quant_gemv_rows_supported(const QuantMatrixView& w, int64_t n);
// sumsq (n == 1 only; may be null): as launch_quant_gemv's.
void launch_quant_gemv_rows(const QuantMatrixView& w, const bf16* x, int64_t n, const bf16* bias, float alpha,
                            bool accumulate, float* y, cudaStream_t stream, float* sumsq = nullptr);
void launch_quant_gemv_swiglu_rows(const QuantMatrixView& w, const bf16* x, int64_t n, const bf16* bias, bf16* act,
                                   cudaStream_t stream);

// Decode's consecutive GEMVs in one persistent kernel (quant_gemv_chain.cu): stage s + 1 may read what
// stage s wrote (a grid-wide barrier between them), and each warp keeps streaming the next stage's
// weights into its ring while the grid waits, so that the weight stream does not stop between
// matrices as it does between kernels. Each stage's outputs are those of its own launch
// (launch_quant_gemv, or launch_quant_gemv_swiglu when act is set) bit for bit.
inline constexpr int kMaxGemvChain = 4;
struct QuantGemvStage {
  QuantMatrixView w;
  GemvInput in;
  const bf16* bias = nullptr;
  float alpha = 1.f;    // plain stage: y = (accumulate ? y : 0) + alpha * (W x + bias)
  bool accumulate = false;
  float* y = nullptr;
  bf16* act = nullptr;  // set: the SwiGLU stage of a [gate; up] stack (alpha and accumulate unused)
};
// 1 <= count <= kMaxGemvChain stages of one format with the same code values, none int8_activations,
// each of at least 16 chunks (cols > 960) and each SwiGLU stack valid (launch_quant_gemv_swiglu).
bool quant_gemv_chain_supported(const QuantGemvStage* stages, int count);
// barrier: 2 words of device memory, zero before the first launch that uses them; every launch leaves
// them ready for the next (launches that share them must be ordered, as on one stream, and use one
// barrier kind). CTX_CHECKs
// quant_gemv_chain_supported. ring_kib: each block's weight ring, 48 (two blocks per SM where the
// registers and shared memory allow), 96 or 144 KiB (one block per SM, two or three times the copies
// in flight per warp); 0: 48, or CTXLAB_QGEMV_CHAIN_RING (read once). barrier_kind: 1 a generation
// barrier, 2 a counting one (one round trip fewer; 2-4 us per 7B layer faster on an H100); 0: 2, or
// 1 with CTXLAB_QGEMV_CHAIN_BARRIER=generation (read once).
void launch_quant_gemv_chain(const QuantGemvStage* stages, int count, unsigned* barrier, cudaStream_t stream,
                             int ring_kib = 0, int barrier_kind = 0);

// Prefill: out[(r - r0) * w.cols + c] = bf16(W[r, c]) for rows [r0, r1), every column.
void launch_dequantize(const QuantMatrixView& w, int64_t r0, int64_t r1, bf16* out, cudaStream_t stream);

// Prefill with int8_activations: out [n, cols] = x [n, cols] staged as values (int8_activations.cuh),
// so that out * W^T is LLM.int8()'s product; outlier_columns [cols] is scratch (1 where the column is
// an outlier column of the call). threshold 0: no outlier columns.
void launch_int8_activations(const bf16* x, int64_t n, int64_t cols, float threshold, uint8_t* outlier_columns,
                             bf16* out, cudaStream_t stream);

}  // namespace ctx::cuda
