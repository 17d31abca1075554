#include "plugins/attention/common/tile_kernels.h"

#include <immintrin.h>

#include <algorithm>
#include <cmath>

#include "plugins/attention/common/vec_ops.h"

namespace ctx::tile {
namespace {

// dst[c * ldd + r] = rows[r][d + c] for an 8x8 block.
inline void transpose8x8(const float* const* rows, int64_t d, float* dst, int64_t ldd) {
  const __m256 r0 = _mm256_loadu_ps(rows[0] + d), r1 = _mm256_loadu_ps(rows[1] + d);
  const __m256 r2 = _mm256_loadu_ps(rows[2] + d), r3 = _mm256_loadu_ps(rows[3] + d);
  const __m256 r4 = _mm256_loadu_ps(rows[4] + d), r5 = _mm256_loadu_ps(rows[5] + d);
  const __m256 r6 = _mm256_loadu_ps(rows[6] + d), r7 = _mm256_loadu_ps(rows[7] + d);
  const __m256 t0 = _mm256_unpacklo_ps(r0, r1), t1 = _mm256_unpackhi_ps(r0, r1);
  const __m256 t2 = _mm256_unpacklo_ps(r2, r3), t3 = _mm256_unpackhi_ps(r2, r3);
  const __m256 t4 = _mm256_unpacklo_ps(r4, r5), t5 = _mm256_unpackhi_ps(r4, r5);
  const __m256 t6 = _mm256_unpacklo_ps(r6, r7), t7 = _mm256_unpackhi_ps(r6, r7);
  const __m256 u0 = _mm256_shuffle_ps(t0, t2, _MM_SHUFFLE(1, 0, 1, 0));
  const __m256 u1 = _mm256_shuffle_ps(t0, t2, _MM_SHUFFLE(3, 2, 3, 2));
  const __m256 u2 = _mm256_shuffle_ps(t1, t3, _MM_SHUFFLE(1, 0, 1, 0));
  const __m256 u3 = _mm256_shuffle_ps(t1, t3, _MM_SHUFFLE(3, 2, 3, 2));
  const __m256 u4 = _mm256_shuffle_ps(t4, t6, _MM_SHUFFLE(1, 0, 1, 0));
  const __m256 u5 = _mm256_shuffle_ps(t4, t6, _MM_SHUFFLE(3, 2, 3, 2));
  const __m256 u6 = _mm256_shuffle_ps(t5, t7, _MM_SHUFFLE(1, 0, 1, 0));
  const __m256 u7 = _mm256_shuffle_ps(t5, t7, _MM_SHUFFLE(3, 2, 3, 2));
  _mm256_storeu_ps(dst + 0 * ldd, _mm256_permute2f128_ps(u0, u4, 0x20));
  _mm256_storeu_ps(dst + 1 * ldd, _mm256_permute2f128_ps(u1, u5, 0x20));
  _mm256_storeu_ps(dst + 2 * ldd, _mm256_permute2f128_ps(u2, u6, 0x20));
  _mm256_storeu_ps(dst + 3 * ldd, _mm256_permute2f128_ps(u3, u7, 0x20));
  _mm256_storeu_ps(dst + 4 * ldd, _mm256_permute2f128_ps(u0, u4, 0x31));
  _mm256_storeu_ps(dst + 5 * ldd, _mm256_permute2f128_ps(u1, u5, 0x31));
  _mm256_storeu_ps(dst + 6 * ldd, _mm256_permute2f128_ps(u2, u6, 0x31));
  _mm256_storeu_ps(dst + 7 * ldd, _mm256_permute2f128_ps(u3, u7, 0x31));
}

// kt[d * ldk + j] = k[j][d] for j < n, and 0 for n <= j < padded(n).
void transpose_keys(const float* const* k, int64_t n, int64_t hd, float* kt, int64_t ldk) {
  const int64_t n8 = n / 8 * 8, hd8 = hd / 8 * 8;
  for (int64_t j = 0; j < n8; j += 8) {
    for (int64_t d = 0; d < hd8; d += 8) transpose8x8(k + j, d, kt + d * ldk + j, ldk);
    for (int64_t d = hd8; d < hd; ++d)
      for (int64_t jj = j; jj < j + 8; ++jj) kt[d * ldk + jj] = k[jj][d];
  }
  for (int64_t d = 0; d < hd; ++d) {
    float* row = kt + d * ldk;
    for (int64_t j = n8; j < n; ++j) row[j] = k[j][d];
    for (int64_t j = n; j < padded(n); ++j) row[j] = 0.0f;
  }
}

// The micro-kernels keep MR x NV accumulators in registers; the unroll pragmas make GCC unroll the
// small loops before scalar replacement, which otherwise keeps the accumulator arrays on the stack.

// s[r, 0 .. 8*NV) = scale * q[r, :] . kt[:, 0 .. 8*NV) for MR rows.
template <int MR, int NV>
inline void qk_micro(const float* q, int64_t hd, const float* kt, int64_t ldk, float scale, float* s, int64_t lds) {
  __m256 acc[MR][NV];
#pragma GCC unroll 8
  for (int r = 0; r < MR; ++r)
#pragma GCC unroll 8
    for (int v = 0; v < NV; ++v) acc[r][v] = _mm256_setzero_ps();
  for (int64_t d = 0; d < hd; ++d) {
    __m256 b[NV];
#pragma GCC unroll 8
    for (int v = 0; v < NV; ++v) b[v] = _mm256_loadu_ps(kt + d * ldk + 8 * v);
#pragma GCC unroll 8
    for (int r = 0; r < MR; ++r) {
      const __m256 a = _mm256_broadcast_ss(q + r * hd + d);
#pragma GCC unroll 8
      for (int v = 0; v < NV; ++v) acc[r][v] = _mm256_fmadd_ps(a, b[v], acc[r][v]);
    }
  }
  const __m256 vs = _mm256_set1_ps(scale);
#pragma GCC unroll 8
  for (int r = 0; r < MR; ++r)
#pragma GCC unroll 8
    for (int v = 0; v < NV; ++v) _mm256_storeu_ps(s + r * lds + 8 * v, _mm256_mul_ps(acc[r][v], vs));
}

template <int MR>
void qk_rows(const float* q, int64_t hd, const float* kt, int64_t ldk, int64_t ncols, float scale, float* s,
             int64_t lds) {
  int64_t j = 0;
  for (; j + 16 <= ncols; j += 16) qk_micro<MR, 2>(q, hd, kt + j, ldk, scale, s + j, lds);
  if (j < ncols) qk_micro<MR, 1>(q, hd, kt + j, ldk, scale, s + j, lds);
}

// o[r, d0 .. d0 + 8*NV) = o * corr_r + sum_j p[r, j] v[j][d0 ..) for MR rows (o points at column d0).
template <int MR, int NV>
inline void pv_micro(const float* p, int64_t lds, const float* const* v, int64_t d0, int64_t hd, int64_t n,
                     const float* corr, float* o) {
  __m256 acc[MR][NV];
#pragma GCC unroll 8
  for (int r = 0; r < MR; ++r) {
    const __m256 c = _mm256_set1_ps(corr[r]);
#pragma GCC unroll 8
    for (int x = 0; x < NV; ++x) acc[r][x] = _mm256_mul_ps(_mm256_loadu_ps(o + r * hd + 8 * x), c);
  }
  for (int64_t j = 0; j < n; ++j) {
    __m256 b[NV];
#pragma GCC unroll 8
    for (int x = 0; x < NV; ++x) b[x] = _mm256_loadu_ps(v[j] + d0 + 8 * x);
#pragma GCC unroll 8
    for (int r = 0; r < MR; ++r) {
      const __m256 a = _mm256_broadcast_ss(p + r * lds + j);
#pragma GCC unroll 8
      for (int x = 0; x < NV; ++x) acc[r][x] = _mm256_fmadd_ps(a, b[x], acc[r][x]);
    }
  }
#pragma GCC unroll 8
  for (int r = 0; r < MR; ++r)
#pragma GCC unroll 8
    for (int x = 0; x < NV; ++x) _mm256_storeu_ps(o + r * hd + 8 * x, acc[r][x]);
}

// Calls body.template operator()<MR>(r) for row blocks [r, r + MR) covering [0, rows): blocks of
// kRowBlock rows, then one smaller block for the rest.
constexpr int kRowBlock = 6;  // 6 x 16 accumulators + 2 loads + 1 broadcast fill the 16 ymm registers

template <int MR, class Body>
void row_tail(int64_t left, int64_t r, const Body& body) {
  if constexpr (MR > 0) {
    if (left == MR) return body.template operator()<MR>(r);
    row_tail<MR - 1>(left, r, body);
  }
}

template <class Body>
void row_blocks(int64_t rows, const Body& body) {
  int64_t r = 0;
  for (; r + kRowBlock <= rows; r += kRowBlock) body.template operator()<kRowBlock>(r);
  row_tail<kRowBlock - 1>(rows - r, r, body);
}

template <int MR>
void pv_rows(const float* p, int64_t lds, const float* const* v, int64_t hd, int64_t n, const float* corr, float* o) {
  // Accumulators + loads within the 16 ymm registers (one row: the loads fold into the FMAs).
  constexpr int kWide = MR == 1 ? 8 : MR == 2 ? 4 : 2;
  int64_t d = 0;
  for (; d + 8 * kWide <= hd; d += 8 * kWide) pv_micro<MR, kWide>(p, lds, v, d, hd, n, corr, o + d);
  for (; d + 8 <= hd; d += 8) pv_micro<MR, 1>(p, lds, v, d, hd, n, corr, o + d);
  for (; d < hd; ++d)
    for (int r = 0; r < MR; ++r) {
      float x = o[r * hd + d] * corr[r];
      for (int64_t j = 0; j < n; ++j) x += p[r * lds + j] * v[j][d];
      o[r * hd + d] = x;
    }
}

}  // namespace

void scores(const float* q, int64_t rows, const float* const* k, int64_t n, int64_t hd, float scale, float* kt,
            float* s, int64_t lds) {
  if (rows < 4) {
    for (int64_t r = 0; r < rows; ++r)
      for (int64_t j = 0; j < n; ++j) s[r * lds + j] = scale * vec::dot(q + r * hd, k[j], hd);
    return;
  }
  const int64_t ldk = padded(n);
  transpose_keys(k, n, hd, kt, ldk);
  row_blocks(rows, [&]<int MR>(int64_t r) { qk_rows<MR>(q + r * hd, hd, kt, ldk, ldk, scale, s + r * lds, lds); });
}

void softmax_step(float* s, int64_t rows, int64_t n, int64_t lds, float* m, float* l, float* corr) {
  const int64_t n8 = n / 8 * 8;
  for (int64_t r = 0; r < rows; ++r) {
    float* sr = s + r * lds;
    __m256 vmax = _mm256_set1_ps(-INFINITY);
    for (int64_t j = 0; j < n8; j += 8) vmax = _mm256_max_ps(vmax, _mm256_loadu_ps(sr + j));
    float mx = vec::hmax(vmax);
    for (int64_t j = n8; j < n; ++j) mx = std::max(mx, sr[j]);
    const float m_new = std::max(m[r], mx);
    if (m_new == -INFINITY) {  // nothing visible yet
      std::fill(sr, sr + n, 0.0f);
      corr[r] = 1.0f;
      continue;
    }
    const __m256 vm = _mm256_set1_ps(m_new);
    __m256 vsum = _mm256_setzero_ps();
    for (int64_t j = 0; j < n8; j += 8) {
      const __m256 e = vec::exp(_mm256_sub_ps(_mm256_loadu_ps(sr + j), vm));
      _mm256_storeu_ps(sr + j, e);
      vsum = _mm256_add_ps(vsum, e);
    }
    if (n8 < n) {  // tail through a padded vector so that every weight comes from the same exp
      alignas(32) float tail[8];
      std::fill(tail, tail + 8, -INFINITY);
      std::copy(sr + n8, sr + n, tail);
      const __m256 e = vec::exp(_mm256_sub_ps(_mm256_load_ps(tail), vm));
      _mm256_store_ps(tail, e);
      vsum = _mm256_add_ps(vsum, e);
      std::copy(tail, tail + (n - n8), sr + n8);
    }
    const float c = m[r] == -INFINITY ? 0.0f : std::exp(m[r] - m_new);
    l[r] = l[r] * c + vec::hsum(vsum);
    m[r] = m_new;
    corr[r] = c;
  }
}

void accumulate(const float* p, int64_t rows, int64_t n, int64_t lds, const float* const* v, int64_t hd,
                const float* corr, float* o) {
  row_blocks(rows, [&]<int MR>(int64_t r) { pv_rows<MR>(p + r * lds, lds, v, hd, n, corr + r, o + r * hd); });
}

void normalize(const float* o, float l, int64_t hd, float* out) {
  const float inv = l > 0.0f ? 1.0f / l : 0.0f;
  for (int64_t d = 0; d < hd; ++d) out[d] = o[d] * inv;
}

void merge_splits(const float* m, const float* l, const float* o, int64_t splits, int64_t stride, int64_t hd,
                  float* out) {
  float big = -INFINITY;
  for (int64_t s = 0; s < splits; ++s) big = std::max(big, m[s * stride]);
  std::fill(out, out + hd, 0.0f);
  if (big == -INFINITY) return;  // no split saw a key
  float total = 0.0f;
  for (int64_t s = 0; s < splits; ++s) {
    if (m[s * stride] == -INFINITY) continue;
    const float w = std::exp(m[s * stride] - big);
    total += w * l[s * stride];
    vec::scale_axpy(out, 1.0f, w, o + s * stride * hd, hd);
  }
  for (int64_t d = 0; d < hd; ++d) out[d] /= total;
}

}  // namespace ctx::tile
