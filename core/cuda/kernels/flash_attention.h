// Prefill attention on tensor cores, FlashAttention-2 style (internal to core/cuda; issue 7's `flash`
// prefill). Same problem and conventions as launch_attention (kernels.h): n queries at positions
// *pos0 + t (t < n, device memory) over this layer's contiguous bf16 cache [kv_heads][capacity][hd],
// query t seeing keys 0 .. pos0 + t (with window > 0: the last `window` of them), head h reading KV
// head h / (heads / kv_heads), out [n, heads * hd] in bf16. Scores in float32 from bf16 products,
// the softmax weights rounded to bf16 for the P.V product (as FlashAttention does), output divided
// by the float32 row sum and rounded to bf16.
//
// Supported (flash_prefill_supported): head_dim 64 or 128, the bf16 cache of one sequence, contiguous
// or paged (p.pool: that sequence's row of the table, blocks of 1 << p.pool.shift positions
// in the pool [kv_heads][pool_blocks][block_size][hd]; no score mod then, as launch_attention); no
// seq_lens, no KIVI codes: KIVI prefill and batched decode stay on launch_attention. The mma.sync
// and wgmma kernels read K/V through a row-address policy (kv_rows.cuh: ContiguousRows /
// PagedRows), a cp.async per 16 bytes of a row, so a 64-key tile may span several pool blocks of
// any size. p.splits,
// p.partial, p.counters, p.vectorized and p.max_grouped_heads are ignored.
//
// Tiling (the mma.sync kernel; the wgmma one keeps the loop, flash_attention_sm90.cu): a block of
// warps takes 64 or 128 query rows of one head, in 16-row slabs, and walks 64-key tiles from the
// diagonal down (bf16 mma.sync m16n8k16, ldmatrix from XOR-swizzled shared memory, K and V tiles
// loaded with cp.async while the other is in use), with an online softmax in registers (exp2 with
// log2(e) folded into the scale). Tiles wholly masked for every row of the block are skipped; only
// tiles cut by the causal diagonal or the window edge are masked element by element.
//
// The TMA kernel (FlashImpl::kWgmmaTma, flash_attention_sm90_tma.cu; FlashAttention-3's design): a
// producer warp copies Q and 128-key K/V tiles with Hopper's bulk tensor copy engine into a
// two-stage mbarrier ring, two consumer warpgroups (64 query rows each, registers moved to them with
// setmaxnreg) multiply with wgmma and overlap each tile's softmax with the previous tile's P.V. It
// takes every problem flash_prefill_supported accepts (head_dim 64 and 128, GQA, windows, flex
// masks, chunks after cached keys) without a score mod whose q / k_cache / v_cache are 16-byte aligned
// and whose cache is contiguous (flash_prefill_tma_supported: its tensor maps describe one
// [kv_heads][capacity][hd] array); launch_flash_prefill runs anything else asked of it (a score mod
// or paged K/V included) on the wgmma 64x4 kernel instead.
//
// A score mod (p.score_mod: softcap, ALiBi) runs as the kernels' Logits policy
// (logits_transform.cuh) on the scaled scores before the mask, under the flex interval mask policy
// (plain causal as the program [causal]), so that it adds one instantiation per block shape.
#pragma once

#include <cuda_runtime.h>

#include <cstdint>

#include "core/cuda/kernels/kernels.h"

namespace ctx::cuda {

// The engine's prefill takes this kernel from this many tokens on (fewer rows leave most of a
// 64-row tile idle; the split-KV kernel is then as fast).
constexpr int64_t kFlashPrefillMinTokens = 64;

// How the tiles are multiplied: mma.sync m16n8k16 (sm_80+; the default), or Hopper's warpgroup
// wgmma (sm_90 only, flash_prefill_wgmma_available(): S = Q K^T with both operands from shared
// memory, O += P V with P from registers).
// kWgmmaTma: the TMA + warp-specialised wgmma kernel (sm_90 only, one shape: 128 rows x 12 warps).
enum class FlashImpl { kMmaSync, kWgmma, kWgmmaTma };

// Block shape, query rows x warps. mma.sync: 64x4 (16 rows a warp, Q fragments in registers),
// 128x4 (32 rows a warp, Q re-read from shared memory, each K/V fragment used twice), 128x8 (16
// rows a warp). wgmma: 64x4 (one warpgroup), 128x8 (two sharing each K/V tile). rows = warps = 0:
// the default, 128 rows (128x4 at head_dim 64 and 128x8 at 128 for mma.sync; 128x8 for wgmma).
struct FlashConfig {
  FlashImpl impl = FlashImpl::kMmaSync;
  int rows = 0, warps = 0;
  // kWgmmaTma: the two consumer warpgroups take turns issuing their matrix products (FA3's
  // inter-warpgroup ping-pong); false: each issues as soon as its tiles are there.
  bool pingpong = true;
};

// The config with defaults filled in; a shape that does not exist is a ctx::Error naming it.
FlashConfig resolve_flash_config(FlashConfig config, int64_t head_dim);

// Whether the current device runs the wgmma kernels (compute capability 9.0).
bool flash_prefill_wgmma_available();

// Whether launch_flash_prefill can run p (shape and layout only; n may be anything >= 1).
bool flash_prefill_supported(const AttentionParams& p);

// Whether the TMA kernel takes p: flash_prefill_supported, contiguous K/V (not paged), no score
// mod and the copy engine's 16-byte alignment of q, k_cache and v_cache.
bool flash_prefill_tma_supported(const AttentionParams& p);

// Enqueues the prefill attention of p on stream (programmatic dependent launch, as the forward
// pass's other kernels). CTX_CHECKs flash_prefill_supported(p); the wgmma kernels need
// flash_prefill_wgmma_available() (checked).
void launch_flash_prefill(const AttentionParams& p, cudaStream_t stream, const FlashConfig& config = {});

}  // namespace ctx::cuda
