// Prefill attention on Hopper, FlashAttention-3 style (flash_attention.h: FlashImpl::kWgmmaTma;
// flash_attention_common.cuh has the shared pieces: mask policies, the swizzled tile layout, the
// online softmax and the output store).
//
// One block = 3 warpgroups for 128 query rows of one head, walking 128-key tiles from the diagonal
// down (blocks launched longest rows first, as the other flash kernels):
//   warpgroup 0, the producer: gives registers back (setmaxnreg 24); one warp copies Q once and
//     then K[t], V[t] per tile into a ring of kStages K and V buffers with the bulk tensor copy
//     engine (TMA, 128-byte swizzle, the tensor maps made on the host: tensor_map.h), each buffer
//     announced on its full mbarrier and reused once both consumers have arrived on its empty one;
//   warpgroups 1 and 2, the consumers (setmaxnreg 240): each owns 64 rows and per tile computes
//     S = Q K^T (wgmma, both from shared memory), masks it where the tile is cut, the online softmax,
//     and O += P V (wgmma, P from registers, V MN-major from shared memory). Within a warpgroup the
//     next tile's Q K^T is issued before this tile's P V, and the softmax of the next tile runs
//     while P V is in flight (FA3's intra-warpgroup overlap); O is rescaled once P V has landed.
//     With kPingPong the two consumers take turns issuing their wgmma (named barriers 1 and 2, FA3's
//     inter-warpgroup schedule), so that one's softmax runs under the other's matrix products.
// Keys past the last cached one (garbage in the engine's cache) only ever sit in the first tile a
// block reads: its K rows are masked to -inf, its V rows are copied by cp.async with zero fill
// instead (0 x NaN would poison P V), fenced to the async proxy before the producer arrives.
// Rows past n are zero-filled by the copy engine and never stored.
// Built for sm_90a only; other targets get an empty kernel that the launcher never starts.
#include <cmath>

#include "core/cuda/kernels/flash_attention.h"
#include "core/cuda/kernels/flash_attention_common.cuh"
#include "core/cuda/kernels/tma_sm90.cuh"
#include "core/cuda/kernels/wgmma_sm90.cuh"
#include "core/cuda/tensor_map.h"

namespace ctx::cuda {

namespace {

constexpr int kRows = 128;       // query rows per block: 2 consumer warpgroups of 64
constexpr int kTileKeys = 128;   // keys per tile
constexpr int kStages = 2;       // K and V buffers each
constexpr int kThreads = 384;    // producer warpgroup + 2 consumers
[[maybe_unused]] constexpr int kProducerRegs = 24, kConsumerRegs = 240;

struct TmaMaps {
  CUtensorMap q, k, v;  // q: [n][heads * hd]; k, v: [kv_heads][capacity][hd]
};

template <int kHd>
struct Smem {
  static constexpr int kQBytes = kRows * kHd * 2, kTileBytes = kTileKeys * kHd * 2;
  static constexpr int kK = kQBytes, kV = kK + kStages * kTileBytes, kBars = kV + kStages * kTileBytes;
  // q_full, k_full[kStages], v_full[kStages], k_empty[kStages], v_empty[kStages]
  static constexpr int kBarCount = 1 + 4 * kStages;
  static constexpr int kBytes = kBars + 8 * kBarCount + 1024;  // + room to align the tiles to 1024 bytes
};

// S = Q K^T over k16 slice kk: m64n128k16.
[[maybe_unused]] __device__ __forceinline__ void qk_wgmma(float (&s)[kTileKeys / 8][4], uint64_t desc_q, uint64_t desc_k, int kk) {
  wgmma::wgmma_ss_m64n128k16(s, desc_q, desc_k, kk > 0);
}

// O += P V for k16 slice kk: m64n{kHd}k16.
template <int kHd>
[[maybe_unused]] __device__ __forceinline__ void pv_wgmma(float (&o)[kHd / 8][4], const uint32_t (&a)[4], uint64_t desc_v) {
  if constexpr (kHd == 64)
    wgmma::wgmma_rs_m64n64k16(o, a, desc_v);
  else
    wgmma::wgmma_rs_m64n128k16(o, a, desc_v);
}

template <int kHd, bool kPingPong, class Mask>
__global__ void __launch_bounds__(kThreads, 1)
    flash_prefill_tma_kernel(flash::FlashParams p, Mask unbound_mask, const __grid_constant__ TmaMaps maps) {
#if defined(__CUDA_ARCH__) && defined(__CUDA_ARCH_FEAT_SM90_ALL)
  using S = Smem<kHd>;
  constexpr int kKSteps = kHd / 16;        // k16 slices of Q K^T
  constexpr int kDTiles = kHd / 8;         // n8 tiles of O
  constexpr int kNTiles = kTileKeys / 8;   // n8 tiles of S
  constexpr int kPSteps = kTileKeys / 16;  // k16 slices of P V
  constexpr int kColBlocks = kHd / 64;     // 64-element column blocks of a tile (one TMA box each)
  extern __shared__ unsigned char smem_raw[];
  const uint32_t raw = mma::smem_addr(smem_raw);
  unsigned char* smem = smem_raw + ((1024 - (raw & 1023)) & 1023);
  const uint32_t base = mma::smem_addr(smem);
  const uint32_t sQ = base;  // Q first, then the K and V rings (Smem)
  auto sK = [&](int stage) { return base + S::kK + stage * S::kTileBytes; };
  auto sV = [&](int stage) { return base + S::kV + stage * S::kTileBytes; };
  const uint32_t q_full = base + S::kBars;
  auto k_full = [&](int stage) { return q_full + 8 * (1 + stage); };
  auto v_full = [&](int stage) { return q_full + 8 * (1 + kStages + stage); };
  auto k_empty = [&](int stage) { return q_full + 8 * (1 + 2 * kStages + stage); };
  auto v_empty = [&](int stage) { return q_full + 8 * (1 + 3 * kStages + stage); };

  const int tid = threadIdx.x, wg = tid / 128, lane = tid % 32;
  if (tid == 0) {
    tma::mbar_init(q_full, 1);
    for (int s = 0; s < kStages; ++s) {
      tma::mbar_init(k_full(s), 1), tma::mbar_init(v_full(s), 1);
      tma::mbar_init(k_empty(s), 2), tma::mbar_init(v_empty(s), 2);  // one thread of each consumer
    }
    tma::fence_barrier_init();
  }
  __syncthreads();

  pdl_wait();
  pdl_trigger();
  const int kv_last = *p.pos0 + p.n - 1;  // the last cached key
  const Mask mask = unbound_mask.bound(kv_last);
  // The block's work (flash::block_work's, with 128-key tiles).
  const int h = blockIdx.x;
  const int m0 = (gridDim.y - 1 - blockIdx.y) * kRows;  // the longest rows first
  const int rows_valid = min(kRows, p.n - m0);
  const int p_lo = *p.pos0 + m0, p_hi = p_lo + rows_valid - 1;
  const int k_hi = mask.last_key(p_hi);
  const int first_tile = mask.first_key(p_lo) / kTileKeys, last_tile = k_hi / kTileKeys;
  const int tiles = last_tile - first_tile + 1;
  const int kvh = h / p.group;

  if (wg == 0) {  // producer
    tma::regs_dealloc<kProducerRegs>();
    if (tid >= 32) return;
    if (lane == 0) {
      tma::mbar_arrive_expect_tx(q_full, S::kQBytes);
#pragma unroll
      for (int cb = 0; cb < kColBlocks; ++cb)
        tma::load_2d(sQ + cb * kRows * 128, &maps.q, q_full, h * kHd + cb * 64, m0);
    }
    for (int j = 0; j < tiles; ++j) {
      const int stage = j % kStages, use = j / kStages, k0 = (last_tile - j) * kTileKeys;
      if (use > 0) tma::mbar_wait(k_empty(stage), (use - 1) & 1);
      if (lane == 0) {
        tma::mbar_arrive_expect_tx(k_full(stage), S::kTileBytes);
#pragma unroll
        for (int cb = 0; cb < kColBlocks; ++cb)
          tma::load_3d(sK(stage) + cb * kTileKeys * 128, &maps.k, k_full(stage), cb * 64, k0, kvh);
      }
      if (use > 0) tma::mbar_wait(v_empty(stage), (use - 1) & 1);
      if (k0 + kTileKeys - 1 > kv_last) {  // keys past the cached ones: zero-filled, never garbage
        // (flash::load_tile's copy, rolled: the producer has 24 registers)
        const bf16* v = p.v + (int64_t(kvh) * p.capacity + k0) * kHd;
        const int valid = kv_last - k0 + 1;
#pragma unroll 1
        for (int idx = lane; idx < kTileKeys * kHd / 8; idx += 32) {
          const int r = idx / (kHd / 8), c = idx % (kHd / 8);
          const bool ok = r < valid;
          mma::cp_async_16(sV(stage) + flash::tile_offset<kTileKeys>(r, c) * 2, v + (ok ? r * kHd + c * 8 : 0), ok ? 16 : 0);
        }
        mma::cp_async_commit();
        mma::cp_async_wait<0>();
        wgmma::fence_proxy_async();
        __syncwarp();
        if (lane == 0) tma::mbar_arrive(v_full(stage));
      } else if (lane == 0) {
        tma::mbar_arrive_expect_tx(v_full(stage), S::kTileBytes);
#pragma unroll
        for (int cb = 0; cb < kColBlocks; ++cb)
          tma::load_3d(sV(stage) + cb * kTileKeys * 128, &maps.v, v_full(stage), cb * 64, k0, kvh);
      }
    }
    return;
  }

  // Consumers: warpgroup g = wg - 1 owns block rows 64g .. 64g + 63 (warp w of it 16 rows each).
  tma::regs_alloc<kConsumerRegs>();
  const int g = wg - 1, warp = (tid / 32) % 4;
  const bool signals = tid % 128 == 0;  // the thread that arrives on empty barriers for its warpgroup
  const int slab_row = g * 64 + warp * 16;
  const int g_lo = p_lo + g * 64, g_hi = max(g_lo, min(p_hi, g_lo + 63));  // this warpgroup's positions

  // Descriptors (tile_offset's layout: 64-element column blocks of 128-byte rows). Q and K are
  // K-major: slice kk starts in column block kk / 4, 32 bytes per slice into the row. V is MN-major:
  // slice kk is keys 16kk .. 16kk + 15, 2048 bytes on; its column blocks kTileKeys rows apart.
  const uint32_t q_base = sQ + g * 64 * 128;
  auto q_desc = [&](int kk) { return wgmma::smem_desc(q_base + (kk / 4) * kRows * 128 + (kk % 4) * 32, 16, 1024); };
  auto k_desc = [&](int stage, int kk) {
    return wgmma::smem_desc(sK(stage) + (kk / 4) * kTileKeys * 128 + (kk % 4) * 32, 16, 1024);
  };
  auto v_desc = [&](int stage, int kk) { return wgmma::smem_desc(sV(stage) + kk * 16 * 128, kTileKeys * 128, 1024); };

  float o[kDTiles][4];
#pragma unroll
  for (int d = 0; d < kDTiles; ++d) o[d][0] = o[d][1] = o[d][2] = o[d][3] = 0.f;
  float row_max[2] = {-INFINITY, -INFINITY}, row_sum[2] = {0.f, 0.f}, correction[2];
  float s[kNTiles][4];
  uint32_t pw[kPSteps][4];  // the weights P as bf16 A fragments

  auto issue_qk = [&](int stage) {
#pragma unroll
    for (int kk = 0; kk < kKSteps; ++kk) qk_wgmma(s, q_desc(kk), k_desc(stage, kk), kk);
    wgmma::commit();
  };
  auto issue_pv = [&](int stage) {
#pragma unroll
    for (int kk = 0; kk < kPSteps; ++kk) pv_wgmma<kHd>(o, pw[kk], v_desc(stage, kk));
    wgmma::commit();
  };
  auto mask_scores = [&](int j) {
    const int k0 = (last_tile - j) * kTileKeys;
    if (mask.cuts(k0, k0 + kTileKeys, g_lo, g_hi)) flash::mask_slab(s, mask, p_lo + slab_row, k0, lane);
  };
  auto to_weights = [&] {
#pragma unroll
    for (int kk = 0; kk < kPSteps; ++kk) flash::weights_fragment(s, kk, pw[kk]);
  };
  // Turns (kPingPong): consumer g issues after waiting on barrier 1 + g and then lets the other
  // one go (arrives on 2 - g). Consumer 0 goes first (it arrives on its own barrier once) and at
  // the end takes the hand-over of consumer 1's last turn, so that every barrier phase completes.
  // (No branch between issue and wait: ptxas would serialise the wgmma.)
  auto turn_wait = [&] {
    if constexpr (kPingPong) tma::named_sync(1 + g, 256);
  };
  auto turn_pass = [&] {
    if constexpr (kPingPong) tma::named_arrive(2 - g, 256);
  };
  if constexpr (kPingPong)
    if (g == 0) tma::named_arrive(1, 256);

  // Tile 0 (the diagonal one): S, softmax, P.
  tma::mbar_wait(q_full, 0);
  tma::mbar_wait(k_full(0), 0);
  turn_wait();
  wgmma::fence();
  issue_qk(0);
  turn_pass();
  wgmma::wait<0>();
  wgmma::fence_operands(s);
  if (signals) tma::mbar_arrive(k_empty(0));
  mask_scores(0);
  flash::softmax_scores(s, row_max, row_sum, p.scale_log2, correction);  // O is still 0
  to_weights();

  for (int j = 1; j < tiles; ++j) {
    const int stage = j % kStages, prev = (j - 1) % kStages;
    tma::mbar_wait(k_full(stage), (j / kStages) & 1);
    turn_wait();
    wgmma::fence();
    issue_qk(stage);  // S of tile j ...
    tma::mbar_wait(v_full(prev), ((j - 1) / kStages) & 1);
    issue_pv(prev);  // ... then O += P V of tile j - 1
    turn_pass();
    wgmma::wait<1>();
    wgmma::fence_operands(s);
    if (signals) tma::mbar_arrive(k_empty(stage));
    mask_scores(j);
    flash::softmax_scores(s, row_max, row_sum, p.scale_log2, correction);  // while P V runs
    wgmma::wait<0>();
    wgmma::fence_operands(o);
    wgmma::fence_operands(pw);
    if (signals) tma::mbar_arrive(v_empty(prev));
    flash::rescale_rows(o, correction);
    to_weights();
  }
  const int stage = (tiles - 1) % kStages;
  tma::mbar_wait(v_full(stage), ((tiles - 1) / kStages) & 1);
  turn_wait();
  wgmma::fence();
  issue_pv(stage);
  turn_pass();
  wgmma::wait<0>();
  wgmma::fence_operands(o);
  wgmma::fence_operands(pw);
  if constexpr (kPingPong)
    if (g == 0) tma::named_sync(1, 256);

  flash::BlockWork w;
  w.rows_valid = rows_valid, w.q_stride = int64_t(p.heads) * kHd;
  w.out = p.out + int64_t(m0) * w.q_stride + int64_t(h) * kHd;
  flash::store_slab(o, row_sum, w, slab_row, lane);
#endif
}

template <int kHd, bool kPingPong, class Mask>
void launch_tma(const AttentionParams& p, const flash::FlashParams& fp, const Mask& mask, cudaStream_t stream) {
  constexpr auto kKernel = flash_prefill_tma_kernel<kHd, kPingPong, Mask>;
  constexpr int kSmem = Smem<kHd>::kBytes;
  TmaMaps maps;
  const uint64_t row = uint64_t(p.heads * kHd) * 2, head = uint64_t(p.capacity) * kHd * 2;
  maps.q = make_bf16_tensor_map(p.q, {uint64_t(p.heads * kHd), uint64_t(p.n)}, {row}, {64, kRows});
  maps.k = make_bf16_tensor_map(p.k_cache, {uint64_t(kHd), uint64_t(p.capacity), uint64_t(p.kv_heads)},
                                {uint64_t(kHd) * 2, head}, {64, kTileKeys, 1});
  maps.v = make_bf16_tensor_map(p.v_cache, {uint64_t(kHd), uint64_t(p.capacity), uint64_t(p.kv_heads)},
                                {uint64_t(kHd) * 2, head}, {64, kTileKeys, 1});
  const dim3 grid(unsigned(fp.heads), unsigned((fp.n + kRows - 1) / kRows));
  launch_pdl(kKernel, grid, dim3(kThreads), size_t(kSmem), stream, fp, mask, maps);
}

}  // namespace

namespace flash {

void launch_flash_prefill_sm90_tma(const AttentionParams& p, cudaStream_t stream, bool pingpong) {
  CTX_CHECK(flash_prefill_wgmma_available(), "flash prefill: the TMA kernel needs a compute capability 9.0 GPU");
  CTX_CHECK(flash_prefill_tma_supported(p), "flash prefill: the TMA kernel does not take this problem");
  const FlashParams fp = flash_params(p);
  with_mask(p, [&](auto mask) {
    if (p.hd == 64)
      pingpong ? launch_tma<64, true>(p, fp, mask, stream) : launch_tma<64, false>(p, fp, mask, stream);
    else
      pingpong ? launch_tma<128, true>(p, fp, mask, stream) : launch_tma<128, false>(p, fp, mask, stream);
  });
}

}  // namespace flash

}  // namespace ctx::cuda
