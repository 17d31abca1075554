// Tile kernels of the FlashAttention-style tiled attention (tiled_attention.h; `flash` and `flex`).
// A tile is `rows` query rows (the heads of one KV group x the query positions of one query block,
// packed row-major [rows, head_dim]) against n keys/values of one KV head, given as n row pointers of
// head_dim floats each (consecutive rows of a contiguous cache, or runs of several paged blocks).
// Scores live in a [rows, lds] buffer, never T x T.
// AVX2/FMA register-blocked micro-kernels; any head_dim (scalar tails). All functions are pure and
// thread-safe on distinct buffers.
#pragma once

#include <cstdint>

namespace ctx::tile {

// Columns of a score row rounded up to whole AVX2 vectors: lds and scratch sizes use this.
constexpr int64_t padded(int64_t n) { return (n + 7) / 8 * 8; }

// s[r * lds + j] = scale * <q_r, k[j]> for r < rows, j < n (lds >= padded(n); columns up to
// padded(n) may be written). With 4 or more rows the keys are first transposed into `kt`
// (head_dim * padded(n) floats of scratch) so that a 6x16 broadcast micro-kernel runs without
// horizontal sums; fewer rows (decode) use direct dot products and leave `kt` untouched.
void scores(const float* q, int64_t rows, const float* const* k, int64_t n, int64_t head_dim, float scale, float* kt,
            float* s, int64_t lds);

// One online-softmax step over a tile, per row r (FlashAttention-2):
//   m' = max(m, max_j s_rj), corr_r = e^(m - m'), s_rj <- e^(s_rj - m'), l <- l * corr_r + sum_j s_rj, m <- m'.
// -inf scores (masked) give weight 0. A row whose scores were all -inf so far keeps m = -inf, l = 0
// and gets corr = 1 and zero weights.
void softmax_step(float* s, int64_t rows, int64_t n, int64_t lds, float* m, float* l, float* corr);

// o_r <- o_r * corr_r + sum_j p_rj v[j] for r < rows (o: [rows, head_dim], p: [rows, lds]).
void accumulate(const float* p, int64_t rows, int64_t n, int64_t lds, const float* const* v, int64_t head_dim,
                const float* corr, float* o);

// out = o / l (0 when l == 0: a row that sees no key).
void normalize(const float* o, float l, int64_t head_dim, float* out);

// Split-KV (Flash-Decoding) reduction of one row computed over `splits` disjoint key ranges, split s
// holding (m_s, l_s, o_s) at m[s * stride], l[s * stride], o[s * stride * head_dim]:
//   M = max_s m_s,  out = sum_s e^(m_s - M) o_s / sum_s e^(m_s - M) l_s   (exactly the unsplit softmax).
void merge_splits(const float* m, const float* l, const float* o, int64_t splits, int64_t stride, int64_t head_dim,
                  float* out);

}  // namespace ctx::tile
