// Device kernels of the CUDA forward pass (gpu_engine.cu) and their launchers (internal to core/cuda).
// Layouts are row-major; bf16 is __nv_bfloat16; every launcher enqueues on `stream` and checks the
// launch. Positions are read from device memory (`pos0`), so that the same launches can be captured
// in a CUDA graph and replayed at the next position. The forward pass's kernels are launched with
// programmatic dependent launch (pdl.cuh), so each overlaps its start with the previous one's end.
#pragma once

#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <cstdint>

#include "core/cuda/flex_mask.h"
#include "core/cuda/kernels/kv_rows.cuh"
#include "core/cuda/score_mod.h"

namespace ctx::cuda {

using bf16 = __nv_bfloat16;

// The input vector of a decode GEMV: x as given, or the RMSNorm of a float32 hidden state, computed
// by every block of the GEMV itself (decode then needs no separate RMSNorm launch).
struct GemvInput {
  const bf16* x = nullptr;            // [cols], used when hidden is null
  const float* hidden = nullptr;      // [cols]: x = bf16(norm_weight * bf16(hidden / rms(hidden)))
  const bf16* norm_weight = nullptr;  // [cols]
  float eps = 0.f;
  // With hidden, optional: sum(hidden[c]^2) as sumsq_parts partial sums, sumsq[0 .. sumsq_parts), that
  // the GEMV which wrote hidden left behind (GemvEpilogue::sumsq). The quantized GEMVs that hold their
  // input in registers then skip the block-wide sum and its barriers: each warp adds the partials
  // itself (lane l those at l, l + 32, ... in order, then a butterfly across the lanes, so that every
  // warp of every block gets the same bits) and each lane normalizes its own pieces of hidden.
  const float* sumsq = nullptr;
  int64_t sumsq_parts = 0;
};

// Decode (one token): y[r] = (accumulate ? y[r] : 0) + alpha * (sum_c W[r, c] * x[c] + bias[r]).
// Streams W once with 16-byte loads (8 bf16) when cols % 8 == 0, float32 accumulation; one warp per
// output row. bias may be null.
void launch_gemv(const bf16* W, const GemvInput& in, int64_t rows, int64_t cols, const bf16* bias, float alpha,
                 bool accumulate, float* y, cudaStream_t stream);

// SwiGLU fused into the GEMV of the stacked [gate; up] matrix W [2 * rows, cols] (gate rows first):
// act[r] = bf16(bf16(silu(bf16(g_r))) * bf16(u_r)) with g_r, u_r the dot products of rows r and
// rows + r (+ bias [2 * rows] if given). One warp computes both rows, so x is read once.
void launch_gemv_swiglu(const bf16* W, const GemvInput& in, int64_t rows, int64_t cols, const bf16* bias, bf16* act,
                        cudaStream_t stream);

// The same epilogue after a GEMM wrote `tmp` [n, rows]: y = (accumulate ? y : 0) + alpha * (tmp + bias).
void launch_bias_residual(const float* tmp, const bf16* bias, int64_t n, int64_t rows, float alpha, bool accumulate,
                          float* y, cudaStream_t stream);

// out[t, :] = table[tokens[t], :] * multiplier (float32).
void launch_embedding(const bf16* table, const int32_t* tokens, int64_t n, int64_t dim, float multiplier, float* out,
                      cudaStream_t stream);

// out[t, :] = bf16(weight * bf16(x[t, :] / rms(x[t, :]))) as HF LlamaRMSNorm computes it in bf16.
void launch_rmsnorm(const float* x, const bf16* weight, int64_t n, int64_t dim, float eps, bf16* out,
                    cudaStream_t stream);

struct QkvRopeParams {
  const float *q, *k, *v;           // projections: row t at q + t * ld (heads * hd), k/v likewise (kv_heads * hd)
  int64_t ld = 0;                   // row stride of q, k and v (the fused [q | k | v] output)
  const bf16 *q_norm, *k_norm;      // per-head RMSNorm weights [hd] (Qwen3) or null
  float norm_eps = 1e-6f;
  const float* inv_freq;            // [hd / 2]
  bool interleaved = false;         // RoPE pairs (2i, 2i+1) instead of (i, i + hd/2)
  const int32_t* pos0;              // device: position of token 0
  int64_t n = 0, heads = 0, kv_heads = 0, hd = 0, capacity = 0;
  bf16* q_out;                      // [n, heads * hd], rotated
  bf16 *k_cache, *v_cache;          // this layer's [kv_heads][capacity][hd]; written at pos0 + t
  // Compressed caches (one sequence): device, the entry token 0 is written at (then cache0 + t; the
  // RoPE position stays pos0 + t). Null: the entry is the position.
  const int32_t* cache0 = nullptr;
  // Batched decode and paged KV exactly as AttentionParams below: row t at position seq_lens[t] - 1
  // of sequence t (contiguous caches [sequence][kv_heads][capacity][hd]), and/or the pool
  // [kv_heads][pool_blocks][block_size][hd] through the block table's rows.
  const int32_t* seq_lens = nullptr;
  PagedPool pool;
  // > 0: each (sequence, KV head) holds a ring of this many rows, position pos at row pos % ring
  // (KIVI's bf16 rest, KiviKv::ring; paged: ring row r in the pool block of table entry r >> pool.shift).
  int64_t ring = 0;
};
// Rounds the projections to bf16, applies q/k norm and RoPE, writes q and the new K/V entries.
void launch_qkv_rope(const QkvRopeParams& p, cudaStream_t stream);

// After the GEMM of the stacked [gate; up] matrix: gate_up [n, 2 * ff] (gate columns first), bias
// [2 * ff] or null; out[t, r] = bf16(bf16(silu(bf16(g))) * bf16(u)) (HF SiLU-and-multiply in bf16).
void launch_swiglu(const float* gate_up, const bf16* bias, int64_t n, int64_t ff, bf16* out, cudaStream_t stream);

// KIVI-quantized KV of one layer (core/kv/kv_quant.h's scheme; kernels in kivi_kernels.h). Per
// (sequence, KV head), with C = code_rows (a multiple of group), or the cache's capacity in
// positions when code_rows is 0:
//   k_codes, v_codes  [seqs][kv_heads][C][row_bytes]: row_bytes = ceil(hd * bits / 8), codes packed
//                     little-endian within bytes (kv_quant_row_bytes)
//   k_params          [seqs][kv_heads][C / group][hd]: (min, scale) of key group G, channel d
//   v_params          [seqs][kv_heads][C][ceil(hd / group)]: (min, scale) of token j, channel block b
//   params are KiviParam: fp16 (min, scale), kv_quant.h's KvQuantParam bits (its fp16 rule)
// With KV compression (one sequence) positions here are the layer's entries (the engine passes the
// entry count as pos0).
// Attention whose first query sits at position pos0 reads positions < qlen(pos0) = group *
// floor(max(0, pos0 - residual) / group) here (the entries before the launch's, quantized by then)
// and the others from the bf16 cache: [seqs][kv_heads][C][hd] (rows below qlen not read), or with
// ring > 0 [seqs][kv_heads][ring][hd] holding position j at row j % ring, so that only the newest
// ring positions take bf16 memory (ring >= residual + group + the tokens of one forward: every
// position a forward's attention or its quantization reads is still there). Paged
// (AttentionParams::pool): those rows (ring or capacity) in the pool's blocks instead
// (kivi_kernels.h KiviBf16Rows).
using KiviParam = __half2;  // (x, y) = (min, scale) in fp16
struct KiviKv {
  int bits = 0;  // 0: off; else 2, 4 or 8
  int64_t group = 0, residual = 0;
  int64_t ring = 0;  // > 0: bf16 rows per (sequence, KV head), a ring; 0: capacity, at their positions
  uint8_t *k_codes = nullptr, *v_codes = nullptr;
  KiviParam *k_params = nullptr, *v_params = nullptr;  // (x, y) = (min, scale)
  int64_t code_rows = 0;  // > 0: code rows per (sequence, KV head) (the engine's growing cache); 0: capacity
};

// AttentionParams::Rope::overlap: the bits of a qkv element the GEMV has not written yet (a negative
// NaN with every payload bit set; float arithmetic's NaNs are 0x7fffffff). Bytes of 0xff.
constexpr uint32_t kQkvUnwritten = 0xffffffffu;

struct AttentionParams {
  const bf16* q;                    // [n, heads * hd]
  const bf16 *k_cache, *v_cache;    // this layer's [kv_heads][capacity][hd] (batched: [n] of those;
                                    // paged: the pool's [kv_heads][pool_blocks][block_size][hd])
  const int32_t* pos0;              // device: query t sits at position pos0 + t, sees keys <= it
  int64_t n = 0, heads = 0, kv_heads = 0, hd = 0, capacity = 0;
  // Batched decode: row t is the one query of sequence t at position seq_lens[t] - 1 (device
  // memory; pos0 is then unused), sequences' caches one after another (contiguous) or rows of
  // the block table (paged).
  const int32_t* seq_lens = nullptr;
  // Paged KV (pool.table set): the table [sequences][max_blocks] (device) names the pool block holding
  // positions b * block_size .. (b + 1) * block_size - 1 of each sequence; block_size = 1 << pool.shift.
  PagedPool pool;
  int64_t window = 0;               // > 0: keys p - window + 1 .. p only
  float scale = 1.0f;
  int splits = 1;                   // chunks of keys per query (split-KV), merged by the last to finish
  int64_t min_chunk = 0;            // > 0: every chunk holds at least this many keys (rounded as the
                                    // kernel aligns chunks); the splits past the keys are empty. A decode
                                    // graph captured with the capacity's split count then does not cut
                                    // a short context into chunks of a few keys
  float* partial;                   // [n, heads, splits, hd + 2] workspace (splits > 1)
  int* counters;                    // [n * heads], zero before the launch and after it (splits > 1)
  bool vectorized = true;           // head_dim 64/128/256 read K/V with 16-byte loads (false: generic)
  FlexMask flex;                    // not empty: query t sees the keys of flex.interval(its position)
                                    // among those cached (0 .. pos0 + n - 1), within the window
  ScoreMod score_mod;               // not empty: applied to every visible score before the softmax
                                    // (contiguous or batched contiguous KV; no KIVI)
  int max_grouped_heads = 0;        // GQA: query heads of one KV head per block, 1, 2 or 4 (0: 4)
  // CUDA-core wide kernel (the tensor-core pass always prefetches): load a warp's next keys before
  // using the current ones (more registers): -1 when a
  // block serves one query head (MHA: 0.90 -> 0.97 of copy bandwidth at 32k on the H100) but not
  // for grouped GQA heads (0.76 -> 0.62 there), 0 never (the default: inside the engine's 1k-context
  // decode step the attention stage measured 0.639 ms with it, 0.547 without), 1 always.
  int prefetch = 0;
  // Head_dim 64/128 on tensor cores (kernels/attention_mma.cuh: the S = QK^T and P.V products of a
  // warp's 16 keys as mma.sync tiles, two steps of loads in flight): -1 (the default) where a block
  // serves several query heads of one KV head (GQA), over bf16 K/V and over KIVI codes of 4 or 8
  // bits with groups of a multiple of 32 keys; 1 also for one head per block; 0 never (the CUDA-core
  // passes of attention_pass.cuh). One head per block stays on CUDA cores by default: bf16 at 32k
  // measured about the same on the H100 (0.934 of copy on tensor cores, 0.913 on CUDA cores; the
  // engine's 1k decode was tuned on the latter), KIVI int4 with its codes through registers slower
  // (162 against 107 us); KIVI int4 at head_dim 128 through the cp.async ring (kivi_stages) takes
  // tensor cores for one head too (92.8 against 107 us).
  int tensor_cores = -1;
  // KIVI on tensor cores at 4 bits (kivi_kernels.h): how a warp's code tiles reach it. 0: loaded into
  // registers a tile at a time; 2 or 3: copied by cp.async into a per-warp ring of that many tiles
  // in shared memory (the next tiles' bytes in flight while one is computed); -1: the default (kivi_kernels.h).
  int kivi_stages = -1;
  bf16* out;                        // [n, heads * hd]
  // Decode of one token with RoPE and the KV write fused in (rope.qkv set; attention_rope_fusable(p)):
  // q above is not read. Each block rounds its heads' rows of the projections qkv = [q | k | v]
  // (float32, heads * hd then kv_heads * hd twice) to bf16 and rotates them as launch_qkv_rope does
  // (no q/k norm); the block whose chunk holds the query's position writes the rotated key and the
  // value there (contiguous or paged: k_cache and v_cache are written) before reading its keys. So
  // one launch does what launch_qkv_rope + launch_attention do, with the same outputs bit for bit.
  // It reads *pos0 and the older keys' rows before pdl_wait() (pdl.cuh), so the launch just before it
  // on the stream must not write them (the engine's is the qkv GEMV, which writes only qkv).
  //
  // Rope::overlap (device, rope.qkv set, splits >= 2): the launch just before it (the qkv GEMV) may
  // still be writing qkv, and this launch never calls pdl_wait(). Every element of qkv's rows that the
  // GEMV has not stored yet holds kQkvUnwritten's bits (a NaN no arithmetic produces; the engine fills
  // the buffer with them once), and each block reads the rows it needs as they turn into values (its kG
  // query rows; with the new key also its KV head's k and v rows), so that attention runs beside the
  // GEMV's later tiles. The GEMV itself is unchanged: no fence, no counter. The new key (position pos)
  // is then a chunk of its own (split splits - 1, merged last); the older keys are cut into splits - 1
  // chunks, which need only their query rows (q comes first: the [q | k | v] order). overlap holds
  // heads + kv_heads counters, 0 between launches: the last block to read a row (counted there) sets
  // it back to kQkvUnwritten for the next launch. A row still unwritten after 2 s traps (a launch
  // error, not a hang).
  struct Rope {
    const float* qkv = nullptr;
    const float* inv_freq = nullptr;  // [hd / 2]
    bool interleaved = false;         // RoPE pairs (2i, 2i+1) instead of (i, i + hd/2)
    int* overlap = nullptr;           // [heads + kv_heads]
  } rope;
  // bits > 0: keys below qlen from these codes (contiguous cache, no window), dequantized in the
  // kernel (kivi_kernels.h).
  KiviKv kivi;
};
// Causal attention of n queries over the cache in one launch: partial softmax per (query, head,
// split) with online max/sum; the last split of each (query, head) to finish combines. head_dim <= 256.
void launch_attention(const AttentionParams& p, cudaStream_t stream);
// Whether launch_attention takes p with rope.qkv set: one query (n == 1) of one sequence over a
// bf16 cache (contiguous or paged), no flex mask, score mod or KIVI. (The tensor-core pass then loads
// K/V through L2, not the read-only cache, which this launch's own writes do not reach.)
bool attention_rope_fusable(const AttentionParams& p);
// Whether launch_attention runs p (bf16 KV, no score mod) on the tensor-core pass (attention_mma.cuh)
// rather than on a CUDA-core pass.
bool attention_on_tensor_cores(const AttentionParams& p);

// token[0] = argmax(logits) (lowest index on ties); also log[*step] = token when log is not null.
void launch_argmax(const float* logits, int64_t vocab, int32_t* token, int32_t* log, const int32_t* step,
                   cudaStream_t stream);
// The same for logits [rows, vocab]: tokens[r] = argmax of row r; log[*step * rows + r] = tokens[r].
void launch_argmax_rows(const float* logits, int64_t rows, int64_t vocab, int32_t* tokens, int32_t* log,
                        const int32_t* step, cudaStream_t stream);

// p[i] = a uniform value in [-1, 1) from a hash of (seed, i): inputs for benchmarks.
void launch_fill_random(bf16* p, int64_t count, uint64_t seed, cudaStream_t stream);

// *pos += pos_delta; *step += 1; lengths[i] += pos_delta for i < count (a compressed cache's per-layer
// entry counts; none when null). One thread; ends a graph-captured decode step.
void launch_advance(int32_t* pos, int32_t pos_delta, int32_t* step, cudaStream_t stream, int32_t* lengths = nullptr,
                    int64_t count = 0);
// lengths[r] += 1 for r < rows; *step += 1 (ends a graph-captured batched decode step).
void launch_advance_lengths(int32_t* lengths, int64_t rows, int32_t* step, cudaStream_t stream);

}  // namespace ctx::cuda
