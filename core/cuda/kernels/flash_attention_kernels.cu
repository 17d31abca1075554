// Tensor-core prefill attention, FlashAttention-2 style on mma.sync (flash_attention.h has the
// contract; flash_attention_common.cuh the shared pieces).
//
// One block = kWarps warps = kRows query rows of one head; warp w owns rows (w * kMTiles + mt) *
// 16 .. + 15 for mt < kMTiles, thread lane of it rows lane / 4 and lane / 4 + 8 of each (the mma
// C layout, mma_sm80.cuh). Per 64-key tile, from the diagonal tile down to the first tile any row
// sees (FA2's order: the masked tiles come first):
//   wait K[t]; barrier; start V[t] (cp.async)  |  S = Q K[t]^T  |  mask if the tile is cut
//   wait V[t]; barrier; start K[t-1]           |  online softmax of S, rescale O  |  O += P V[t]
// so each load runs under the other half's math; one K and one V buffer suffice (the barriers
// order the reuse). Fragments come from the swizzled tiles with ldmatrix (.trans for V).
// K/V rows are addressed one by one through the Rows policy (kv_rows.cuh: contiguous or paged), so a
// tile may span several pool blocks.
// Rows >= n and keys past the block's last position are zero-filled (never garbage: V rows enter
// P.V even where P is 0); masked scores are -inf. A score mod is the Logits policy
// (logits_transform.cuh), applied to the scaled scores before the mask (flash::transform_slab).
#include <climits>
#include <cstdint>
#include <cmath>

#include "core/base/error.h"
#include "core/cuda/cuda_check.h"
#include "core/cuda/kernels/flash_attention.h"
#include "core/cuda/kernels/flash_attention_common.cuh"
#include "core/cuda/kernels/mma_sm80.cuh"
#include "core/cuda/kernels/pdl.cuh"

namespace ctx::cuda {

namespace {

using flash::kKeys;

template <int kHd, int kWarps, int kMTiles>
constexpr int smem_bytes() {
  return (kWarps * 16 * kMTiles + 2 * kKeys) * kHd * 2;
}

// kWarps warps of kMTiles 16-row slabs each. kMTiles = 1: Q fragments stay in registers; 2: they
// are re-read from shared memory per tile (registers go to the doubled S and O), and every K/V
// fragment feeds two mma.
template <int kHd, int kWarps, int kMTiles, class Mask, class Logits, class Rows>
__global__ void __launch_bounds__(32 * kWarps, kWarps == 4 && kMTiles == 1 ? 2 : 1)
    flash_prefill_kernel(flash::FlashParams p, Mask unbound_mask, Logits logits, Rows rows) {
  constexpr int kThreads = 32 * kWarps;
  constexpr int kRows = kWarps * 16 * kMTiles;
  constexpr int kKSteps = kHd / 16;   // k16 steps of Q.K^T
  constexpr int kDTiles = kHd / 8;    // n8 tiles of O
  constexpr int kNTiles = kKeys / 8;  // n8 tiles of S
  constexpr bool kQInRegs = kMTiles == 1;
  extern __shared__ __align__(128) unsigned char smem[];
  bf16* sQ = reinterpret_cast<bf16*>(smem);
  bf16* sK = sQ + kRows * kHd;
  bf16* sV = sK + kKeys * kHd;

  pdl_wait();
  pdl_trigger();
  const Mask mask = unbound_mask.bound(*p.pos0 + p.n - 1);  // the last cached key
  const int tid = threadIdx.x, warp = tid / 32, lane = tid % 32;
  const flash::BlockWork w = flash::start_block<kRows, kHd, kThreads>(p, mask, rows, sQ, sK, tid);

  // ldmatrix lane addressing. Every tile row used is 8-aligned + (lane & 7), so the swizzle key is
  // lane & 7 and chunk 2i + hi of a row lands at pair_chunk_offset(i, hi ^ (lane & 7)).
  const int l7 = lane & 7;
  const int warp_row = warp * kMTiles * 16;
  const int q_row = warp_row + (lane & 15), q_x = (lane >> 4) ^ l7;         // A: rows 0-15, chunk +0/+1
  const int k_row = l7 + ((lane >> 4) << 3), k_x = ((lane >> 3) & 1) ^ l7;  // B: keys 0-15, chunk +0/+1
  const int v_row = l7 + (((lane >> 3) & 1) << 3), v_x = (lane >> 4) ^ l7;  // B^T: keys 0-15, chunk +0/+1
  const uint32_t sQ_a = mma::smem_addr(sQ), sK_a = mma::smem_addr(sK), sV_a = mma::smem_addr(sV);
  auto q_frag = [&](uint32_t (&a)[4], int mt, int kk) {
    mma::ldmatrix_x4(a, sQ_a + ((q_row + mt * 16) * 64 + flash::pair_chunk_offset<kRows>(kk, q_x)) * 2);
  };

  float o[kMTiles][kDTiles][4];
  float row_max[kMTiles][2], row_sum[kMTiles][2];
#pragma unroll
  for (int mt = 0; mt < kMTiles; ++mt) {
#pragma unroll
    for (int d = 0; d < kDTiles; ++d) o[mt][d][0] = o[mt][d][1] = o[mt][d][2] = o[mt][d][3] = 0.f;
    row_max[mt][0] = row_max[mt][1] = -INFINITY;
    row_sum[mt][0] = row_sum[mt][1] = 0.f;
  }
  uint32_t qf[kQInRegs ? kKSteps : 1][4];

  for (int tile = w.last_tile; tile >= w.first_tile; --tile) {
    const int k0 = tile * kKeys;
    mma::cp_async_wait<0>();
    __syncthreads();  // K[tile] (and Q) landed; every warp is done with V[tile + 1]
    flash::load_tile<kKeys, kHd, kThreads>(sV, w.v, rows, k0, w.k_hi - k0 + 1, tid);
    mma::cp_async_commit();
    if constexpr (kQInRegs) {
      if (tile == w.last_tile)
#pragma unroll
        for (int kk = 0; kk < kKSteps; ++kk) q_frag(qf[kk], 0, kk);
    }

    // S = Q K^T
    float s[kMTiles][kNTiles][4];
#pragma unroll
    for (int mt = 0; mt < kMTiles; ++mt)
#pragma unroll
      for (int j = 0; j < kNTiles; ++j) s[mt][j][0] = s[mt][j][1] = s[mt][j][2] = s[mt][j][3] = 0.f;
#pragma unroll
    for (int kk = 0; kk < kKSteps; ++kk) {
      uint32_t a[kMTiles][4];
#pragma unroll
      for (int mt = 0; mt < kMTiles; ++mt) {
        if constexpr (kQInRegs) {
#pragma unroll
          for (int i = 0; i < 4; ++i) a[mt][i] = qf[kk][i];
        } else {
          q_frag(a[mt], mt, kk);
        }
      }
#pragma unroll
      for (int np = 0; np < kKeys / 16; ++np) {
        uint32_t b[4];
        mma::ldmatrix_x4(b, sK_a + ((16 * np + k_row) * 64 + flash::pair_chunk_offset<kKeys>(kk, k_x)) * 2);
#pragma unroll
        for (int mt = 0; mt < kMTiles; ++mt) {
          mma::mma_bf16_16816(s[mt][2 * np], a[mt], b[0], b[1]);
          mma::mma_bf16_16816(s[mt][2 * np + 1], a[mt], b[2], b[3]);
        }
      }
    }
#pragma unroll
    for (int mt = 0; mt < kMTiles; ++mt)
      flash::transform_slab(s[mt], logits, p, int(blockIdx.x), w.p_lo + warp_row + mt * 16, k0, lane);
    if (mask.cuts(k0, k0 + kKeys, w.p_lo, w.p_hi))
#pragma unroll
      for (int mt = 0; mt < kMTiles; ++mt) flash::mask_slab(s[mt], mask, w.p_lo + warp_row + mt * 16, k0, lane);

    mma::cp_async_wait<0>();
    __syncthreads();  // V[tile] landed; every warp is done with K[tile]
    if (tile > w.first_tile) {
      flash::load_tile<kKeys, kHd, kThreads>(sK, w.k, rows, k0 - kKeys, kKeys, tid);
      mma::cp_async_commit();
    }
#pragma unroll
    for (int mt = 0; mt < kMTiles; ++mt)
      flash::softmax_slab(s[mt], o[mt], row_max[mt], row_sum[mt], flash::softmax_scale_log2<Logits>(p));

    // O += P V: the weights of keys 16kk .. 16kk + 15 are P's A fragment.
#pragma unroll
    for (int kk = 0; kk < kKeys / 16; ++kk) {
      uint32_t a[kMTiles][4];
#pragma unroll
      for (int mt = 0; mt < kMTiles; ++mt) flash::weights_fragment(s[mt], kk, a[mt]);
#pragma unroll
      for (int dp = 0; dp < kHd / 16; ++dp) {
        uint32_t b[4];
        mma::ldmatrix_x4_trans(b, sV_a + ((16 * kk + v_row) * 64 + flash::pair_chunk_offset<kKeys>(dp, v_x)) * 2);
#pragma unroll
        for (int mt = 0; mt < kMTiles; ++mt) {
          mma::mma_bf16_16816(o[mt][2 * dp], a[mt], b[0], b[1]);
          mma::mma_bf16_16816(o[mt][2 * dp + 1], a[mt], b[2], b[3]);
        }
      }
    }
  }
#pragma unroll
  for (int mt = 0; mt < kMTiles; ++mt) flash::store_slab(o[mt], row_sum[mt], w, warp_row + mt * 16, lane);
}

template <int kHd, int kWarps, int kMTiles, class Mask, class Logits, class Rows>
void launch_config(const flash::FlashParams& fp, const Mask& mask, const Logits& logits, const Rows& rows,
                   cudaStream_t stream) {
  constexpr int kRows = kWarps * 16 * kMTiles;
  const dim3 grid(unsigned(fp.heads), unsigned((fp.n + kRows - 1) / kRows));
  launch_pdl(flash_prefill_kernel<kHd, kWarps, kMTiles, Mask, Logits, Rows>, grid, dim3(32 * kWarps),
             size_t(smem_bytes<kHd, kWarps, kMTiles>()), stream, fp, mask, logits, rows);
}

template <int kHd, class Mask, class Logits, class Rows>
void launch_shape(const flash::FlashParams& fp, const Mask& mask, const Logits& logits, const Rows& rows,
                  const FlashConfig& config, cudaStream_t stream) {
  if (config.rows == 64)
    launch_config<kHd, 4, 1>(fp, mask, logits, rows, stream);
  else if (config.warps == 4)
    launch_config<kHd, 4, 2>(fp, mask, logits, rows, stream);
  else
    launch_config<kHd, 8, 1>(fp, mask, logits, rows, stream);
}

}  // namespace

bool flash_prefill_supported(const AttentionParams& p) {
  // Paged: one sequence's row of the block table, blocks of a power of two <= 1024 positions, no score mod.
  const bool layout_ok = !p.pool.paged() || (p.pool.valid() && p.score_mod.empty());
  return (p.hd == 64 || p.hd == 128) && layout_ok && !p.seq_lens && p.kivi.bits == 0 && p.kv_heads > 0 &&
         p.heads % p.kv_heads == 0 && p.n >= 1 && p.n < INT_MAX && p.capacity < INT_MAX;
}

bool flash_prefill_tma_supported(const AttentionParams& p) {
  const auto aligned = [](const void* x) { return reinterpret_cast<uintptr_t>(x) % 16 == 0; };
  // The tensor maps describe a contiguous [kv_heads][capacity][hd] cache: paged K/V is not for them.
  return flash_prefill_supported(p) && !p.pool.paged() && p.score_mod.empty() && aligned(p.q) && aligned(p.k_cache) &&
         aligned(p.v_cache);
}

bool flash_prefill_wgmma_available() {
  int device = 0, major = 0, minor = 0;
  CTX_CUDA_CHECK(cudaGetDevice(&device));
  CTX_CUDA_CHECK(cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, device));
  CTX_CUDA_CHECK(cudaDeviceGetAttribute(&minor, cudaDevAttrComputeCapabilityMinor, device));
  return major == 9 && minor == 0;
}

FlashConfig resolve_flash_config(FlashConfig c, int64_t hd) {
  if (c.impl == FlashImpl::kWgmmaTma) {
    if (c.rows == 0 && c.warps == 0) c.rows = 128, c.warps = 12;
    if (c.rows != 128 || c.warps != 12)
      fail("flash prefill: no TMA kernel for ", c.rows, " rows x ", c.warps, " warps (known: 128x12)");
    return c;
  }
  if (c.rows == 0 && c.warps == 0) {
    // Defaults: 128 rows (each K/V tile read from L2 once for 128 rows, as FA2), in the shapes
    // that fit in registers (ptxas -v, sm_90a: 128 rows x 4 warps at head_dim 128 needs 255
    // registers and spills 80 bytes; the others 122-255 registers, none spilled).
    c.rows = 128;
    c.warps = c.impl == FlashImpl::kMmaSync && hd == 64 ? 4 : 8;
  }
  const bool ok = (c.rows == 64 && c.warps == 4) || (c.rows == 128 && c.warps == 8) ||
                  (c.rows == 128 && c.warps == 4 && c.impl == FlashImpl::kMmaSync);
  if (!ok)
    fail("flash prefill: no ", c.impl == FlashImpl::kWgmma ? "wgmma" : "mma.sync", " kernel for ", c.rows, " rows x ",
         c.warps, " warps (known: 64x4, 128x8", c.impl == FlashImpl::kMmaSync ? ", 128x4)" : ")");
  return c;
}

void launch_flash_prefill(const AttentionParams& p, cudaStream_t stream, const FlashConfig& requested) {
  CTX_CHECK(flash_prefill_supported(p), "flash prefill: unsupported shape or layout");
  const FlashConfig config = resolve_flash_config(requested, p.hd);
  if (config.impl == FlashImpl::kWgmmaTma) {
    if (flash_prefill_tma_supported(p))
      flash::launch_flash_prefill_sm90_tma(p, stream, config.pingpong);
    else  // a score mod, paged K/V or unaligned tensors: the same loop without the copy engine
      flash::launch_flash_prefill_sm90(p, stream, 64);
    return;
  }
  if (config.impl == FlashImpl::kWgmma) {
    flash::launch_flash_prefill_sm90(p, stream, config.rows);
    return;
  }
  const flash::FlashParams fp = flash::flash_params(p);
  flash::with_policies(p, [&](auto mask, auto logits, auto rows) {
    if (p.hd == 64)
      launch_shape<64>(fp, mask, logits, rows, config, stream);
    else
      launch_shape<128>(fp, mask, logits, rows, config, stream);
  });
}

}  // namespace ctx::cuda
