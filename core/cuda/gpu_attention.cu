#include "core/cuda/gpu_attention.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <memory>
#include <numeric>
#include <random>
#include <type_traits>

#include "core/base/dtype.h"
#include "core/base/error.h"
#include "core/cuda/cuda_check.h"
#include "core/cuda/device_allocator.h"
#include "core/cuda/event_timer.h"
#include "core/cuda/gpu_eager_attention.h"
#include "core/cuda/kernels/flash_attention.h"
#include "core/cuda/kernels/kernels.h"
#include "core/cuda/kernels/kivi_kernels.h"

namespace ctx::cuda {

namespace {

FlashConfig flash_config(const GpuAttentionCase& c) {
  FlashConfig f;
  f.impl = c.kernel == AttentionKernel::kFlashWgmma ? FlashImpl::kWgmma
           : c.kernel == AttentionKernel::kFlashTma ? FlashImpl::kWgmmaTma
                                                    : FlashImpl::kMmaSync;
  f.rows = c.flash_rows, f.warps = c.flash_warps;
  f.pingpong = c.flash_pingpong;
  return f;
}

std::vector<int64_t> lengths_of(const GpuAttentionCase& c) {
  return c.batch_lengths.empty() ? std::vector<int64_t>{c.length} : c.batch_lengths;
}

void check_case(const GpuAttentionCase& c) {
  if (c.heads < 1 || c.kv_heads < 1 || c.heads % c.kv_heads != 0)
    fail("gpu_attention: heads ", c.heads, " must be a positive multiple of kv_heads ", c.kv_heads);
  if (c.head_dim < 1 || c.head_dim > 256) fail("gpu_attention: head_dim ", c.head_dim, " outside 1..256");
  if (c.batch_lengths.empty()) {
    if (c.queries < 1 || c.length < c.queries)
      fail("gpu_attention: ", c.queries, " queries need a cache of at least as many positions, not ", c.length);
  } else {
    if (c.queries != 1) fail("gpu_attention: batched decode has one query per sequence, not ", c.queries);
    for (size_t s = 0; s < c.batch_lengths.size(); ++s)
      if (c.batch_lengths[s] < 1 || c.batch_lengths[s] > INT32_MAX)
        fail("gpu_attention: batch_lengths[", s, "] = ", c.batch_lengths[s], " outside 1..2^31-1");
  }
  if (c.splits < 0) fail("gpu_attention: splits ", c.splits, " < 0");
  if (c.kernel == AttentionKernel::kEager) {
    if (c.block_size > 0 || !c.batch_lengths.empty() || c.kivi.enabled())
      fail("gpu_attention: the eager kernel reads one contiguous bf16 sequence (no block_size, batch_lengths or kivi)");
  } else if (c.kernel != AttentionKernel::kSplitKv) {
    if (c.head_dim != 64 && c.head_dim != 128) fail("gpu_attention: the flash kernel needs head_dim 64 or 128, not ", c.head_dim);
    if (!c.batch_lengths.empty() || c.kivi.enabled())
      fail("gpu_attention: the flash kernel reads one bf16 sequence, contiguous or paged (no batch_lengths or kivi)");
    resolve_flash_config(flash_config(c), c.head_dim);  // an unknown block shape is an error naming it
  }
  if (c.spare_capacity < 0 || (c.spare_capacity > 0 && (c.block_size > 0 || !c.batch_lengths.empty() || c.kivi.enabled())))
    fail("gpu_attention: spare_capacity ", c.spare_capacity, " must be >= 0, and 0 unless one contiguous sequence without kivi");
  if (c.block_size < 0 || c.block_size > 1024 || (c.block_size & (c.block_size - 1)) != 0)
    fail("gpu_attention: block_size ", c.block_size, " must be 0 (contiguous) or a power of two <= 1024");
  if (c.kivi.enabled()) {
    if (c.kivi.bits != 2 && c.kivi.bits != 4 && c.kivi.bits != 8)
      fail("gpu_attention: kivi bits ", c.kivi.bits, " must be 2, 4 or 8");
    if (c.kivi.group < 1 || c.kivi.residual < 0)
      fail("gpu_attention: kivi group ", c.kivi.group, " must be >= 1 and residual ", c.kivi.residual, " >= 0");
    if (c.window != 0 || !c.flex.empty()) fail("gpu_attention: KIVI KV is over a cache without a window or flex mask");
  }
  if (!c.score_mod.empty() && (c.block_size > 0 || c.kivi.enabled()))
    fail("gpu_attention: score mods run over a contiguous bf16 cache (no block_size or kivi)");
  int count = 0;
  if (cudaGetDeviceCount(&count) != cudaSuccess || count == 0) {
    cudaGetLastError();
    throw Unsupported("gpu_attention: no CUDA device is available");
  }
  if ((c.kernel == AttentionKernel::kFlashWgmma || c.kernel == AttentionKernel::kFlashTma) &&
      !flash_prefill_wgmma_available())
    throw Unsupported("gpu_attention: the wgmma flash kernels need a compute capability 9.0 GPU");
}

// A paged pool of blocks of block_size rows holding rows[s] rows of each sequence s, K (or V) laid out
// [kv_heads][pool_blocks][block_size][hd] (the CPU BlockPool's layout). The blocks are handed out in
// a shuffled order, so that a kernel must follow the table [sequences][max_blocks].
struct ShuffledPool {
  int64_t block_size = 0, max_blocks = 0, pool_blocks = 0;  // block_size 0: none
  int shift = 0;
  std::vector<int32_t> table;

  ShuffledPool() = default;
  ShuffledPool(const std::vector<int64_t>& rows, int64_t bs) : block_size(bs) {
    const int64_t seqs = int64_t(rows.size()), longest = *std::max_element(rows.begin(), rows.end());
    while ((int64_t(1) << shift) < block_size) ++shift;
    max_blocks = (longest + block_size - 1) / block_size;
    for (int64_t len : rows) pool_blocks += (len + block_size - 1) / block_size;
    std::vector<int32_t> ids(static_cast<size_t>(pool_blocks));
    std::iota(ids.begin(), ids.end(), 0);
    std::shuffle(ids.begin(), ids.end(), std::mt19937(7));
    table.assign(size_t(seqs * max_blocks), 0);  // entries past a sequence's blocks are never read
    size_t next = 0;
    for (int64_t s = 0; s < seqs; ++s)
      for (int64_t b = 0; b < (rows[size_t(s)] + block_size - 1) / block_size; ++b)
        table[size_t(s * max_blocks + b)] = ids[next++];
  }
  int64_t elements(int64_t kv_heads, int64_t hd) const { return kv_heads * pool_blocks * block_size * hd; }
  // Element offset of row r of (sequence s, KV head h).
  int64_t row(int64_t s, int64_t h, int64_t r, int64_t hd) const {
    const int64_t b = table[size_t(s * max_blocks + r / block_size)];
    return ((h * pool_blocks + b) * block_size + r % block_size) * hd;
  }
  // Uploads the table into `buf` and points p's pool at it.
  void bind(DeviceAllocator& alloc, DeviceBuffer<int32_t>& buf, AttentionParams& p) const {
    buf = DeviceBuffer<int32_t>(alloc, int64_t(table.size()));
    CTX_CUDA_CHECK(cudaMemcpy(buf.get(), table.data(), table.size() * 4, cudaMemcpyHostToDevice));
    p.pool = PagedPool{buf.get(), max_blocks, pool_blocks, shift};
  }
};

// Where the row of (sequence, KV head, position) lives in the device K (and V) buffer.
struct CacheLayout {
  std::vector<int64_t> lengths;
  int64_t kv_heads = 0, hd = 0;
  int64_t region = 0;                                  // contiguous: positions per sequence
  int64_t spare = 0;                                   // of them past the longest: NaN
  ShuffledPool pool;                                   // paged: every position
  int64_t elements = 0;                                // bf16 elements of K (and of V)

  // KIVI: the layout of every position (the quantization's source) is contiguous; with block_size the
  // bf16 ring is paged instead (KiviSizes).
  CacheLayout(const GpuAttentionCase& c) : lengths(lengths_of(c)), kv_heads(c.kv_heads), hd(c.head_dim) {
    const int64_t seqs = int64_t(lengths.size()), longest = *std::max_element(lengths.begin(), lengths.end());
    if (c.kivi.enabled() || c.block_size == 0) {
      spare = c.spare_capacity;
      region = longest + spare;
      elements = seqs * kv_heads * region * hd;
      return;
    }
    pool = ShuffledPool(lengths, c.block_size);
    elements = pool.elements(kv_heads, hd);
  }

  bool paged() const { return pool.block_size > 0; }
  int64_t row(int64_t s, int64_t kvh, int64_t pos) const {
    return paged() ? pool.row(s, kvh, pos, hd) : ((s * kv_heads + kvh) * region + pos) * hd;
  }
  int64_t cached_positions() const { return std::accumulate(lengths.begin(), lengths.end(), int64_t(0)); }
};

// Elements of the KIVI buffers of one copy of a layout (kernels.h: KiviKv): codes and params, and
// the bf16 ring of the newest residual + group + queries positions, as small as it may be (ring 0:
// the whole region, when that is not more).
// Paged (block_size): those rows (ring, rounded up to whole blocks, or region) of each sequence in a
// pool of blocks in shuffled order, as the engine's GpuKvCache keeps them.
struct KiviSizes {
  int64_t codes = 0, k_params = 0, v_params = 0, ring = 0, bf16 = 0;
  ShuffledPool pool;  // paged: the bf16 rows
  KiviSizes(const GpuAttentionCase& c, const CacheLayout& l) {
    if (!c.kivi.enabled()) return;
    const int64_t seqs = int64_t(l.lengths.size()), heads = seqs * c.kv_heads, bs = c.block_size;
    ring = c.kivi.residual + c.kivi.group + (c.batch_lengths.empty() ? c.queries : 1);
    if (bs > 0) ring = (ring + bs - 1) / bs * bs;
    if (ring >= l.region) ring = 0;
    const int64_t rows = ring > 0 ? ring : l.region;
    bf16 = heads * rows * c.head_dim;
    if (bs > 0) {
      pool = ShuffledPool(std::vector<int64_t>(size_t(seqs), rows), bs);
      bf16 = pool.elements(c.kv_heads, c.head_dim);
    }
    codes = heads * l.region * kv_quant_row_bytes(c.head_dim, c.kivi.bits);
    k_params = heads * (l.region / c.kivi.group) * c.head_dim;
    v_params = heads * l.region * ((c.head_dim + c.kivi.group - 1) / c.kivi.group);
  }
  int64_t bytes() const { return 2 * codes + int64_t(sizeof(KiviParam)) * (k_params + v_params) + 2 * 2 * bf16; }
  // Element offset of position p's bf16 row of (sequence s, KV head h): row p % rows of the ring
  // (contiguous or paged).
  int64_t row(const CacheLayout& l, int64_t s, int64_t h, int64_t p) const {
    const int64_t rows = ring > 0 ? ring : l.region, r = p % rows;
    return pool.block_size > 0 ? pool.row(s, h, r, l.hd) : ((s * l.kv_heads + h) * rows + r) * l.hd;
  }
};

// Host float rows ([sum of lengths, kv_heads * hd], sequences one after another) -> device bf16 in
// the layout, or with `kivi` in KIVI's bf16 rows (KiviSizes: each sequence's last ring positions,
// position p at row p % ring, kernels.h KiviKv::ring; contiguous or paged).
void upload_cache(std::span<const float> x, const CacheLayout& l, bf16* dst, const KiviSizes* kivi = nullptr) {
  const int64_t seqs = int64_t(l.lengths.size()), ring = kivi ? kivi->ring : 0;
  std::vector<float> t(size_t(kivi ? kivi->bf16 : l.elements), l.spare > 0 ? std::numeric_limits<float>::quiet_NaN() : 0.f);
  int64_t first = 0;
  for (int64_t s = 0; s < seqs; ++s) {
    const int64_t len = l.lengths[size_t(s)];
    for (int64_t p = ring > 0 ? std::max<int64_t>(0, len - ring) : 0; p < len; ++p)
      for (int64_t h = 0; h < l.kv_heads; ++h) {
        const int64_t at = kivi ? kivi->row(l, s, h, p) : l.row(s, h, p);
        std::copy_n(x.data() + ((first + p) * l.kv_heads + h) * l.hd, l.hd, t.data() + at);
      }
    first += len;
  }
  std::vector<uint16_t> b(t.size());
  convert_f32_to_bf16(t.data(), b.data(), t.size());
  CTX_CUDA_CHECK(cudaMemcpy(dst, b.data(), b.size() * 2, cudaMemcpyHostToDevice));
}

// The device side of one case: cache (cache_copies copies of the layout; KIVI: of the bf16 ring and
// the codes, beside one copy of the whole layout, the source of the quantization), queries,
// positions, block table and workspaces.
struct DeviceCase {
  CacheLayout layout;
  KiviSizes kivi;
  int64_t rows;  // query rows
  int64_t cache_elements;  // bf16 elements of K (and V) per copy that the attention reads
  DeviceBuffer<bf16> q, k, v, out;
  DeviceBuffer<bf16> k_whole, v_whole;  // KIVI: every position, quantized from
  DeviceBuffer<int32_t> pos0, seq_lens, table;
  DeviceBuffer<float> partial;
  DeviceBuffer<int> counters;
  DeviceBuffer<uint8_t> k_codes, v_codes;
  DeviceBuffer<KiviParam> k_params, v_params;
  AttentionParams params;  // pointing at copy 0

  DeviceCase(DeviceAllocator& alloc, const GpuAttentionCase& c, int64_t cache_copies)
      : layout(c),
        kivi(c, layout),
        rows(c.batch_lengths.empty() ? c.queries : int64_t(c.batch_lengths.size())),
        cache_elements(c.kivi.enabled() ? kivi.bf16 : layout.elements),
        q(alloc, rows * c.heads * c.head_dim),
        k(alloc, cache_copies * cache_elements),
        v(alloc, cache_copies * cache_elements),
        out(alloc, rows * c.heads * c.head_dim),
        pos0(alloc, 1) {
    const bool batched = !c.batch_lengths.empty();
    const int64_t longest = *std::max_element(layout.lengths.begin(), layout.lengths.end());
    const int splits = c.splits > 0    ? c.splits
                       : batched       ? default_batched_splits(longest, rows, c.heads)
                                       : default_attention_splits(c.length, c.queries,
                                                                  c.vectorized && c.tensor_cores != 0 &&
                                                                      uses_tensor_core_gqa(c.heads, c.kv_heads, c.head_dim));
    partial = DeviceBuffer<float>(alloc, rows * c.heads * splits * (c.head_dim + 2));
    counters = DeviceBuffer<int>(alloc, rows * c.heads);
    CTX_CUDA_CHECK(cudaMemset(counters.get(), 0, counters.bytes()));
    const int32_t first = int32_t(c.length - c.queries);
    CTX_CUDA_CHECK(cudaMemcpy(pos0.get(), &first, 4, cudaMemcpyHostToDevice));
    AttentionParams& p = params;
    p.q = q.get(), p.k_cache = k.get(), p.v_cache = v.get(), p.pos0 = pos0.get();
    p.min_chunk = c.min_chunk;
    p.n = rows, p.heads = c.heads, p.kv_heads = c.kv_heads, p.hd = c.head_dim, p.capacity = layout.region;
    if (batched) {
      std::vector<int32_t> lens(layout.lengths.begin(), layout.lengths.end());
      seq_lens = DeviceBuffer<int32_t>(alloc, rows);
      CTX_CUDA_CHECK(cudaMemcpy(seq_lens.get(), lens.data(), lens.size() * 4, cudaMemcpyHostToDevice));
      p.seq_lens = seq_lens.get();
    }
    if (layout.paged()) layout.pool.bind(alloc, table, p);
    p.window = c.window;
    p.scale = c.scale > 0 ? c.scale : float(1.0 / std::sqrt(double(c.head_dim)));
    p.splits = splits, p.partial = partial.get(), p.counters = counters.get(), p.out = out.get();
    p.vectorized = c.vectorized;
    p.max_grouped_heads = c.group_heads;
    p.flex = c.flex;
    p.score_mod = c.score_mod;
    p.prefetch = c.prefetch;
    p.tensor_cores = c.tensor_cores;
    p.kivi_stages = c.kivi_stages;
    if (c.kivi.enabled()) {
      k_whole = DeviceBuffer<bf16>(alloc, layout.elements), v_whole = DeviceBuffer<bf16>(alloc, layout.elements);
      // At least one element each: a cache shorter than a group holds no key params.
      k_codes = DeviceBuffer<uint8_t>(alloc, std::max<int64_t>(1, cache_copies * kivi.codes));
      v_codes = DeviceBuffer<uint8_t>(alloc, std::max<int64_t>(1, cache_copies * kivi.codes));
      k_params = DeviceBuffer<KiviParam>(alloc, std::max<int64_t>(1, cache_copies * kivi.k_params));
      v_params = DeviceBuffer<KiviParam>(alloc, std::max<int64_t>(1, cache_copies * kivi.v_params));
      CTX_CUDA_CHECK(cudaMemset(k_codes.get(), 0, k_codes.bytes()));
      CTX_CUDA_CHECK(cudaMemset(v_codes.get(), 0, v_codes.bytes()));
      CTX_CUDA_CHECK(cudaMemset(k_params.get(), 0, k_params.bytes()));
      CTX_CUDA_CHECK(cudaMemset(v_params.get(), 0, v_params.bytes()));
      p.kivi = {c.kivi.bits,    c.kivi.group,  c.kivi.residual, kivi.ring,
                k_codes.get(), v_codes.get(), k_params.get(),  v_params.get()};
      if (kivi.pool.block_size > 0) kivi.pool.bind(alloc, table, p);  // the bf16 rows in a shuffled pool
    }
  }

  // The params pointing at copy i of the cache (and of the KIVI buffers).
  AttentionParams at_copy(int64_t i) const {
    AttentionParams p = params;
    p.k_cache = k.get() + i * cache_elements, p.v_cache = v.get() + i * cache_elements;
    if (p.kivi.bits != 0) {
      p.kivi.k_codes += i * kivi.codes, p.kivi.v_codes += i * kivi.codes;
      p.kivi.k_params += i * kivi.k_params, p.kivi.v_params += i * kivi.v_params;
    }
    return p;
  }

  // Quantizes each sequence's prefix from k_whole / v_whole into the codes of the copy that p
  // points at (KIVI on).
  void quantize(const GpuAttentionCase& c, const AttentionParams& p) const {
    for (size_t s = 0; s < layout.lengths.size(); ++s) {
      KiviQuantizeParams qp;
      qp.k_cache = k_whole.get(), qp.v_cache = v_whole.get(), qp.kv = p.kivi;
      qp.kv.ring = 0;  // the whole layout
      qp.kv_heads = c.kv_heads, qp.hd = c.head_dim, qp.capacity = layout.region, qp.seq = int64_t(s);
      const int64_t first_query = layout.lengths[s] - (c.batch_lengths.empty() ? c.queries : 1);
      qp.group_end = c.kivi.quantized_length(first_query) / c.kivi.group;
      launch_kivi_quantize(qp, nullptr);
    }
  }
};

// Uploads a case's q, k and v (sizes checked) to copy 0 and, with KIVI, quantizes the prefixes.
void upload_case(const GpuAttentionCase& c, DeviceCase& d, std::span<const float> q, std::span<const float> k,
                 std::span<const float> v) {
  const size_t q_size = size_t(d.rows * c.heads * c.head_dim);
  const size_t kv_size = size_t(d.layout.cached_positions() * c.kv_heads * c.head_dim);
  if (q.size() != q_size || k.size() != kv_size || v.size() != kv_size)
    fail("gpu_attention: tensor sizes q ", q.size(), ", k ", k.size(), ", v ", v.size(), " do not match the case (", q_size,
         ", ", kv_size, ", ", kv_size, ")");
  std::vector<uint16_t> qb(q_size);
  convert_f32_to_bf16(q.data(), qb.data(), q_size);
  CTX_CUDA_CHECK(cudaMemcpy(d.q.get(), qb.data(), q_size * 2, cudaMemcpyHostToDevice));
  if (!c.kivi.enabled()) {
    upload_cache(k, d.layout, d.k.get());
    upload_cache(v, d.layout, d.v.get());
    return;
  }
  upload_cache(k, d.layout, d.k_whole.get());
  upload_cache(v, d.layout, d.v_whole.get());
  d.quantize(c, d.params);
  // The attention's bf16 rows: the last positions in the ring only (ring 0: the whole layout).
  upload_cache(k, d.layout, d.k.get(), &d.kivi);
  upload_cache(v, d.layout, d.v.get(), &d.kivi);
}

// kernel = kEager: the cuBLAS handle and the EagerAttention, its workspace from the case's allocator.
struct EagerRunner {
  cublasHandle_t blas = nullptr;
  std::unique_ptr<EagerAttention> attention;
  EagerRunner(DeviceAllocator& alloc, const GpuAttentionCase& c) {
    if (c.kernel != AttentionKernel::kEager) return;
    CTX_CUBLAS_CHECK(cublas().create(&blas));
    attention = std::make_unique<EagerAttention>(alloc, blas);
  }
  ~EagerRunner() {
    if (blas) cublas().destroy(blas);
  }
  EagerRunner(const EagerRunner&) = delete;
  EagerRunner& operator=(const EagerRunner&) = delete;
};

void launch_case(const GpuAttentionCase& c, const AttentionParams& p, const EagerRunner& eager) {
  if (c.kernel == AttentionKernel::kSplitKv)
    launch_attention(p, nullptr);
  else if (c.kernel == AttentionKernel::kEager)
    eager.attention->run(p, c.length - c.queries, nullptr);
  else
    launch_flash_prefill(p, nullptr, flash_config(c));
}

// Bytes a KIVI decode launch reads for sequences of these lengths (one query each): codes and
// params of the quantized prefix and the bf16 K and V rows of the rest.
int64_t kivi_read_bytes(const GpuAttentionCase& c, const std::vector<int64_t>& lengths) {
  int64_t bytes = 0;
  for (int64_t len : lengths)
    bytes += kivi_head_bytes(c.kivi.bits, c.kivi.group, c.head_dim, len, c.kivi.quantized_length(len - 1));
  return bytes * c.kv_heads;
}

}  // namespace

std::vector<float> gpu_attention(const GpuAttentionCase& c, std::span<const float> q, std::span<const float> k,
                                 std::span<const float> v) {
  check_case(c);
  DeviceAllocator alloc;
  DeviceCase d(alloc, c, 1);
  upload_case(c, d, q, k, v);
  const EagerRunner eager(alloc, c);
  launch_case(c, d.params, eager);
  CTX_CUDA_CHECK(cudaDeviceSynchronize());
  const size_t q_size = q.size();
  std::vector<uint16_t> ob(q_size);
  CTX_CUDA_CHECK(cudaMemcpy(ob.data(), d.out.get(), q_size * 2, cudaMemcpyDeviceToHost));
  std::vector<float> out(q_size);
  convert_to_f32(DType::BF16, ob.data(), out.data(), q_size);
  return out;
}

KiviPrefix gpu_kivi_quantize(const GpuAttentionCase& c, std::span<const float> k, std::span<const float> v) {
  if (!c.kivi.enabled() || !c.batch_lengths.empty()) fail("gpu_kivi_quantize: needs kivi bits and one sequence");
  check_case(c);
  DeviceAllocator alloc;
  DeviceCase d(alloc, c, 1);
  upload_case(c, d, std::vector<float>(size_t(c.queries * c.heads * c.head_dim)), k, v);
  CTX_CUDA_CHECK(cudaDeviceSynchronize());
  const auto fetch = [](const auto& buf) {
    std::vector<std::remove_cvref_t<decltype(*buf.get())>> host(size_t(buf.size()));
    CTX_CUDA_CHECK(cudaMemcpy(host.data(), buf.get(), size_t(buf.bytes()), cudaMemcpyDeviceToHost));
    return host;
  };
  const auto kc = fetch(d.k_codes), vc = fetch(d.v_codes);
  const auto kp = fetch(d.k_params), vp = fetch(d.v_params);
  KiviPrefix out;
  const int64_t g = c.kivi.group, hd = c.head_dim, len = c.length, groups = len / g;
  out.qlen = c.kivi.quantized_length(len - c.queries);
  out.row_bytes = kv_quant_row_bytes(hd, c.kivi.bits), out.value_blocks = (hd + g - 1) / g;
  const auto param = [](KiviParam x) {  // the fp16 bits, as the CPU's
    const __half2_raw r = x;
    return KvQuantParam{r.x, r.y};
  };
  for (int64_t h = 0; h < c.kv_heads; ++h) {
    // The device's rows of head h start at h * length (one sequence, region = length).
    const auto codes = [&](const std::vector<uint8_t>& src, std::vector<uint8_t>& dst) {
      const auto at = src.begin() + h * len * out.row_bytes;
      dst.insert(dst.end(), at, at + out.qlen * out.row_bytes);
    };
    codes(kc, out.k_codes);
    codes(vc, out.v_codes);
    for (int64_t i = 0; i < out.qlen / g * hd; ++i) out.k_params.push_back(param(kp[size_t(h * groups * hd + i)]));
    for (int64_t i = 0; i < out.qlen * out.value_blocks; ++i)
      out.v_params.push_back(param(vp[size_t(h * len * out.value_blocks + i)]));
  }
  return out;
}

AttentionTiming measure_decode_attention(const GpuAttentionCase& c0, int reps) {
  GpuAttentionCase c = c0;
  c.queries = 1;
  check_case(c);
  const CacheLayout layout(c);
  AttentionTiming t;
  t.kv_bytes = c.kivi.enabled() ? kivi_read_bytes(c, layout.lengths)
                                : 2 * layout.cached_positions() * c.kv_heads * c.head_dim * 2;  // K and V, bf16
  t.reserved_bytes = c.kivi.enabled() ? KiviSizes(c, layout).bytes() : 2 * layout.elements * 2;
  const int64_t copies = copies_beyond_l2(t.reserved_bytes, 1);
  DeviceAllocator alloc;
  DeviceCase d(alloc, c, copies);
  launch_fill_random(d.q.get(), d.q.size(), 1, nullptr);
  launch_fill_random(d.k.get(), d.k.size(), 2, nullptr);
  launch_fill_random(d.v.get(), d.v.size(), 3, nullptr);
  if (c.kivi.enabled()) {
    launch_fill_random(d.k_whole.get(), d.k_whole.size(), 4, nullptr);
    launch_fill_random(d.v_whole.get(), d.v_whole.size(), 5, nullptr);
    for (int64_t i = 0; i < copies; ++i) d.quantize(c, d.at_copy(i));
  }
  constexpr int kLaunches = 20;
  int64_t next = 0;
  const double ms = median_ms(reps, [&] {
    for (int i = 0; i < kLaunches; ++i) launch_attention(d.at_copy(next++ % copies), nullptr);
  });
  t.splits = c.kivi.enabled() ? kivi_attention_splits(d.params) : d.params.splits;  // KIVI may take fewer
  t.us = ms * 1e3 / kLaunches;
  t.bytes_per_s = double(t.kv_bytes) / (t.us * 1e-6);
  return t;
}

PrefillTiming measure_prefill_attention(const GpuAttentionCase& c, int reps, int launches) {
  check_case(c);
  if (!c.batch_lengths.empty() || c.kivi.enabled())
    fail("measure_prefill_attention: one bf16 sequence (contiguous or paged) only");
  DeviceAllocator alloc;
  DeviceCase d(alloc, c, 1);
  launch_fill_random(d.q.get(), d.q.size(), 1, nullptr);
  launch_fill_random(d.k.get(), d.k.size(), 2, nullptr);
  launch_fill_random(d.v.get(), d.v.size(), 3, nullptr);
  const EagerRunner eager(alloc, c);
  const double ms = median_ms(reps, [&] {
    for (int i = 0; i < launches; ++i) launch_case(c, d.params, eager);
  });
  PrefillTiming t;
  t.peak_bytes = alloc.stats().peak_bytes;
  t.us = ms * 1e3 / launches;
  t.flops = prefill_attention_flops(c);
  t.tflops = t.flops / (t.us * 1e-6) / 1e12;
  return t;
}

}  // namespace ctx::cuda
