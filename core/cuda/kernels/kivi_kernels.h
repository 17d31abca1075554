// KIVI-quantized KV cache kernels (internal to core/cuda): quantization of the bf16 cache's rows
// into KiviKv (kernels.h: layout) exactly as core/kv/kv_quant.cc does in float32 on the same bf16
// values, and decode attention over the quantized prefix and the bf16 rest in one launch.
#pragma once

#include <cuda_runtime.h>

#include <cstdint>

#include "core/cuda/kernels/kernels.h"

namespace ctx::cuda {

struct KiviQuantizeParams {
  const bf16 *k_cache, *v_cache;  // [seqs][kv_heads][capacity][hd]
  KiviKv kv;                      // written: codes and params of the groups below
  int64_t kv_heads = 0, hd = 0, capacity = 0;
  int64_t seq = 0;                // the sequence whose groups are quantized
  int64_t group_begin = 0, group_end = 0;  // key groups [begin, end): positions begin * group .. end * group - 1
};
// Quantizes positions group_begin * group .. group_end * group - 1 of sequence `seq`, every KV head:
// per key group and channel (min, scale) and codes; per token and channel block of values the same
// (quantize_key_block and quantize_value_row of kv_quant.h, bit for bit). group_end * group <=
// capacity. Does nothing for an empty range.
void launch_kivi_quantize(const KiviQuantizeParams& p, cudaStream_t stream);

// launch_attention (kernels.h) with p.kivi.bits != 0. Keys j < qlen(pos + 1) of each query's
// sequence come from the codes, dequantized in registers: per key group the query is folded into
// the params (q_d * scale_d, and sum_d q_d * min_d once), so the dot product runs on the codes;
// per value block the weights are summed as w * scale and w * min. Keys >= qlen come from the bf16
// cache, in the same online softmax and split-KV combine as the bf16 kernel
// (attention_pass.cuh). head_dim 64/128/256 with 4 or 8 bits and group a multiple of the warp's
// tile (kivi_tile: 16 keys for 64/128, 8 for 256; 4-head GQA blocks: 16, 8, 4; and of 8) take the
// wide path (16-byte-row layout of the bf16 kernel, 4- or 8-byte code loads per lane); anything
// else (2 bits, other head dims or groups) a generic one. Errors (CTX_CHECK): bits not 2/4/8,
// group < 1, a paged cache, a window, or several queries of one sequence.
void launch_kivi_attention(const AttentionParams& p, cudaStream_t stream);

// Keys per warp step of the wide path for head_dim hd and g query heads per block: the tile
// boundaries chunks and warps are aligned to; a key group must be a multiple of it (and of 8).
__host__ __device__ constexpr int kivi_loads(int hd, int g) { return hd == 64 || g == 4 ? 4 : 8; }
__host__ __device__ constexpr int kivi_tile(int hd, int g) { return (32 / (hd / 8)) * kivi_loads(hd, g); }

}  // namespace ctx::cuda
