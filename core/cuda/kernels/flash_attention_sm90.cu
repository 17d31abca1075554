// Tensor-core prefill attention on Hopper's warpgroup MMA (flash_attention.h: FlashImpl::kWgmma;
// flash_attention_common.cuh has the shared pieces; the mma.sync kernel's structure, FA2's loop).
//
// One block = kWG warpgroups = 64 * kWG query rows of one head; warpgroup g owns rows 64g .. 64g +
// 63 (warp w of it rows 16w .. 16w + 15 in the mma C layout), and all of them share each K and V
// tile. Per 64-key tile, from the diagonal down:
//   wait K[t]; proxy fence; barrier; start V[t]  |  S = Q K[t]^T: hd / 16 wgmma m64n64k16, Q and K
//                                                   from shared memory (K-major descriptors)
//   wait V[t]; proxy fence; barrier; start K[t-1] |  mask if cut, online softmax, rescale O
//                                                 |  O += P V[t]: 4 wgmma m64n{hd}k16, P from
//                                                    registers, V MN-major from shared memory
// Tiles are stored by cp.async in the 128-byte swizzle both the ldmatrix kernel and the tensor
// cores read (flash::tile_offset), 1024-byte aligned; cp.async writes go through the generic
// proxy, hence fence.proxy.async before each barrier that hands a tile to wgmma.
// K/V rows come through the Rows policy (kv_rows.cuh: contiguous or paged, a tile may span several
// pool blocks), one cp.async per 16 bytes as before.
// A score mod is the Logits policy (flash::transform_slab before the mask), as in the mma.sync kernel.
// Built for sm_90a only; other targets get an empty kernel that the launcher never starts
// (flash_prefill_wgmma_available()).
#include <cmath>

#include "core/cuda/kernels/flash_attention.h"
#include "core/cuda/kernels/flash_attention_common.cuh"
#include "core/cuda/kernels/wgmma_sm90.cuh"

namespace ctx::cuda {

namespace {

using flash::kKeys;

template <int kHd, int kWG>
constexpr int sm90_smem_bytes() {
  return (64 * kWG + 2 * kKeys) * kHd * 2 + 1024;  // + room to align the tiles to 1024 bytes
}

// O += P V for one k16 slice: m64n{kHd}k16.
template <int kHd>
__device__ __forceinline__ void pv_wgmma(float (&o)[kHd / 8][4], const uint32_t (&a)[4], uint64_t desc_v) {
  if constexpr (kHd == 64)
    wgmma::wgmma_rs_m64n64k16(o, a, desc_v);
  else
    wgmma::wgmma_rs_m64n128k16(o, a, desc_v);
}

template <int kHd, int kWG, class Mask, class Logits, class Rows>
__global__ void __launch_bounds__(128 * kWG, kWG == 1 ? 3 : 1)
    flash_prefill_sm90_kernel(flash::FlashParams p, Mask unbound_mask, Logits logits, Rows rows) {
#if defined(__CUDA_ARCH__) && defined(__CUDA_ARCH_FEAT_SM90_ALL)
  constexpr int kThreads = 128 * kWG, kRows = 64 * kWG;
  constexpr int kKSteps = kHd / 16;   // k16 slices of Q.K^T
  constexpr int kDTiles = kHd / 8;    // n8 tiles of O
  constexpr int kNTiles = kKeys / 8;  // n8 tiles of S
  extern __shared__ unsigned char smem_raw[];
  const uint32_t raw = mma::smem_addr(smem_raw);
  bf16* sQ = reinterpret_cast<bf16*>(smem_raw + ((1024 - (raw & 1023)) & 1023));
  bf16* sK = sQ + kRows * kHd;
  bf16* sV = sK + kKeys * kHd;

  pdl_wait();
  pdl_trigger();
  const Mask mask = unbound_mask.bound(*p.pos0 + p.n - 1);  // the last cached key
  const int tid = threadIdx.x, group = tid / 128, warp = (tid / 32) % 4, lane = tid % 32;
  const flash::BlockWork w = flash::start_block<kRows, kHd, kThreads>(p, mask, rows, sQ, sK, tid);

  // Descriptors (tile_offset's layout: column blocks of 64 elements, rows of 128 bytes). Q and K
  // are K-major: slice kk starts in column block kk / 4, 32 bytes per slice into the row. V is
  // MN-major: slice kk is keys 16kk .. 16kk + 15, 2048 bytes on; its column blocks kKeys rows apart.
  const uint32_t q_base = mma::smem_addr(sQ) + group * 64 * 128, k_base = mma::smem_addr(sK);
  const uint32_t v_base = mma::smem_addr(sV);
  auto q_desc = [&](int kk) { return wgmma::smem_desc(q_base + (kk / 4) * kRows * 128 + (kk % 4) * 32, 16, 1024); };
  auto k_desc = [&](int kk) { return wgmma::smem_desc(k_base + (kk / 4) * kKeys * 128 + (kk % 4) * 32, 16, 1024); };
  auto v_desc = [&](int kk) { return wgmma::smem_desc(v_base + kk * 16 * 128, kKeys * 128, 1024); };

  float o[kDTiles][4];
#pragma unroll
  for (int d = 0; d < kDTiles; ++d) o[d][0] = o[d][1] = o[d][2] = o[d][3] = 0.f;
  float row_max[2] = {-INFINITY, -INFINITY}, row_sum[2] = {0.f, 0.f};
  const int slab_row = group * 64 + warp * 16;  // this warp's first row in the block

  for (int tile = w.last_tile; tile >= w.first_tile; --tile) {
    const int k0 = tile * kKeys;
    mma::cp_async_wait<0>();
    wgmma::fence_proxy_async();
    __syncthreads();  // K[tile] (and Q) landed; every warpgroup is done with V[tile + 1]
    flash::load_tile<kKeys, kHd, kThreads>(sV, w.v, rows, k0, w.k_hi - k0 + 1, tid);
    mma::cp_async_commit();

    float s[kNTiles][4];
    wgmma::fence();
#pragma unroll
    for (int kk = 0; kk < kKSteps; ++kk) wgmma::wgmma_ss_m64n64k16(s, q_desc(kk), k_desc(kk), kk > 0);
    wgmma::commit();
    wgmma::wait<0>();
    wgmma::fence_operands(s);
    flash::transform_slab(s, logits, p, int(blockIdx.x), w.p_lo + slab_row, k0, lane);
    if (mask.cuts(k0, k0 + kKeys, w.p_lo, w.p_hi)) flash::mask_slab(s, mask, w.p_lo + slab_row, k0, lane);

    mma::cp_async_wait<0>();
    wgmma::fence_proxy_async();
    __syncthreads();  // V[tile] landed; every warpgroup is done with K[tile]
    if (tile > w.first_tile) {
      flash::load_tile<kKeys, kHd, kThreads>(sK, w.k, rows, k0 - kKeys, kKeys, tid);
      mma::cp_async_commit();
    }
    flash::softmax_slab(s, o, row_max, row_sum, flash::softmax_scale_log2<Logits>(p));
    uint32_t a[kKeys / 16][4];
#pragma unroll
    for (int kk = 0; kk < kKeys / 16; ++kk) flash::weights_fragment(s, kk, a[kk]);
    wgmma::fence_operands(o);
    wgmma::fence();
#pragma unroll
    for (int kk = 0; kk < kKeys / 16; ++kk) pv_wgmma<kHd>(o, a[kk], v_desc(kk));
    wgmma::commit();
    wgmma::wait<0>();
    wgmma::fence_operands(o);
  }
  flash::store_slab(o, row_sum, w, slab_row, lane);
#endif
}

template <int kHd, int kWG, class Mask, class Logits, class Rows>
void launch_sm90_config(const flash::FlashParams& fp, const Mask& mask, const Logits& logits, const Rows& rows,
                        cudaStream_t stream) {
  constexpr int kRows = 64 * kWG;
  const dim3 grid(unsigned(fp.heads), unsigned((fp.n + kRows - 1) / kRows));
  launch_pdl(flash_prefill_sm90_kernel<kHd, kWG, Mask, Logits, Rows>, grid, dim3(128 * kWG),
             size_t(sm90_smem_bytes<kHd, kWG>()), stream, fp, mask, logits, rows);
}

}  // namespace

namespace flash {

void launch_flash_prefill_sm90(const AttentionParams& p, cudaStream_t stream, int rows_per_block) {
  CTX_CHECK(flash_prefill_wgmma_available(), "flash prefill: the wgmma kernel needs a compute capability 9.0 GPU");
  const FlashParams fp = flash_params(p);
  with_policies(p, [&](auto mask, auto logits, auto rows) {
    if (p.hd == 64)
      rows_per_block == 64 ? launch_sm90_config<64, 1>(fp, mask, logits, rows, stream)
                           : launch_sm90_config<64, 2>(fp, mask, logits, rows, stream);
    else
      rows_per_block == 64 ? launch_sm90_config<128, 1>(fp, mask, logits, rows, stream)
                           : launch_sm90_config<128, 2>(fp, mask, logits, rows, stream);
  });
}

}  // namespace flash

}  // namespace ctx::cuda
