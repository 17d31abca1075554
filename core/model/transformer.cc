#include "core/model/transformer.h"

#include <cmath>
#include <cstring>

#include "core/base/error.h"
#include "core/cpu/linear.h"

namespace ctx {
namespace {

// y = x / sqrt(mean(x^2) + eps) * w, per row (HF LlamaRMSNorm in float32).
void rms_norm(const float* x, int64_t n, int64_t dim, int64_t stride, const WeightVector& w, float eps, float* y,
              int64_t y_stride) {
#pragma omp parallel for schedule(static) if (n * dim > 65536)
  for (int64_t r = 0; r < n; ++r) {
    const float* xr = x + r * stride;
    float* yr = y + r * y_stride;
    float ss = 0;
    for (int64_t i = 0; i < dim; ++i) ss += xr[i] * xr[i];
    const float inv = 1.0f / std::sqrt(ss / float(dim) + eps);
    for (int64_t i = 0; i < dim; ++i) yr[i] = w.data[i] * (xr[i] * inv);
  }
}

// x += scale * y over n * dim floats.
void add_scaled(float* x, const float* y, int64_t count, float scale) {
#pragma omp parallel for schedule(static) if (count > 65536)
  for (int64_t i = 0; i < count; ++i) x[i] += scale == 1.0f ? y[i] : scale * y[i];
}

void grow(std::vector<float>& buf, int64_t n) {
  if (int64_t(buf.size()) < n) buf.resize(size_t(n));
}

}  // namespace

Transformer::Transformer(const Model& model, std::shared_ptr<const AttentionBackend> attention)
    : model_(model), attention_(std::move(attention)), rope_(model.config.rope, model.config.head_dim) {
  CTX_CHECK(attention_ != nullptr);
  for (int64_t l = 0; l < model.config.num_layers; ++l) {
    if (model.config.layer_kind(l) != LayerKind::kAttention) continue;
    const Support s = attention_->supports(attention_params(l), attention_->layout());
    if (!s.ok) throw Unsupported(str_cat("attention backend cannot run layer ", l, " of ", model.spec, ": ", s.reason));
  }
  if (attention_->layout() == KvLayout::kPaged)
    pool_ = std::make_shared<BlockPool>(model.config, attention_->block_size());
  if (model.config.num_mamba_layers() > 0)
    mamba_ = std::make_unique<Mamba2Mixer>(model.config.mamba, float(model.config.rms_norm_eps));
}

AttentionParams Transformer::attention_params(int64_t layer) const {
  const ModelConfig& c = model_.config;
  return {c.num_heads, c.num_kv_heads, c.head_dim, float(c.softmax_scale()), c.layer_window[size_t(layer)]};
}

void Transformer::set_kv_compressor(std::shared_ptr<const KvCompressor> compressor) {
  if (compressor) {
    const Support s = compressor->supports(model_.config);
    if (!s.ok) throw Unsupported(str_cat("KV compressor cannot serve ", model_.spec, ": ", s.reason));
  }
  compressor_ = std::move(compressor);
}

void Transformer::set_kv_quantization(const KvQuantConfig& config) { quant_ = config; }

KvCache Transformer::new_cache(int64_t capacity) const {
  KvCache cache = pool_ ? KvCache(model_.config, pool_) : KvCache(model_.config, capacity);
  if (quant_.enabled()) cache.set_quantization(quant_);
  return cache;
}

// Attention over h_ (the normalised input) into mix_: K/V appended to KV layer kv_layer(layer) of
// each sequence's cache, then compression and quantization of that layer.
void Transformer::attention_layer(int64_t layer, std::span<const SequenceStep> steps,
                                  const std::vector<int64_t>& row_begin, const std::vector<int64_t>& pos,
                                  std::vector<char>& compressed) {
  const ModelConfig& c = model_.config;
  const LayerWeights& lw = model_.weights.layers[size_t(layer)];
  const int64_t n = row_begin.back(), qd = c.q_dim(), kvd = c.kv_dim(), hd = c.head_dim, kl = c.kv_layer(layer);
  const float eps = float(c.rms_norm_eps);
  float *h = h_.data(), *q = q_.data(), *k = k_.data(), *v = v_.data(), *attn = attn_.data();
  linear(lw.wq, h, n, q, lw.bq);
  linear(lw.wk, h, n, k, lw.bk);
  linear(lw.wv, h, n, v, lw.bv);
  if (c.qk_norm) {  // Qwen3: RMSNorm over each head's vector, before RoPE
    rms_norm(q, n * c.num_heads, hd, hd, lw.q_norm, eps, q, hd);
    rms_norm(k, n * c.num_kv_heads, hd, hd, lw.k_norm, eps, k, hd);
  }
  if (c.use_rope) {
    rope_.apply(q, n, qd, c.num_heads, pos.data());
    rope_.apply(k, n, kvd, c.num_kv_heads, pos.data());
  }
  seqs_.clear();
  for (size_t si = 0; si < steps.size(); ++si) {
    KvCache& cache = *steps[si].cache;
    const int64_t r0 = row_begin[si], nr = row_begin[si + 1] - r0, past = cache.length(kl);
    if (nr == 0) continue;
    for (int64_t t = 0; t < nr; ++t)
      for (int64_t g = 0; g < c.num_kv_heads; ++g) {
        std::memcpy(cache.key_slot(kl, g, past + t), k + (r0 + t) * kvd + g * hd, size_t(hd) * 4);
        std::memcpy(cache.value_slot(kl, g, past + t), v + (r0 + t) * kvd + g * hd, size_t(hd) * 4);
      }
    cache.append(kl, nr);  // the cache's position moves after all layers
    seqs_.push_back({q + r0 * qd, nr, cache.view(kl, kv_scratch_[si]), attn + r0 * qd, int64_t(si)});
  }
  attention_->forward(attention_params(layer), seqs_);
  for (size_t si = 0; si < steps.size() && quant_.enabled(); ++si) steps[si].cache->flush(kl);
  if (compressor_)
    for (size_t si = 0; si < steps.size(); ++si)
      if (const int64_t nr = row_begin[si + 1] - row_begin[si]; nr > 0)
        compressed[si] |= compress_layer(*compressor_, c, kl, q + row_begin[si] * qd, nr, *steps[si].cache);
  linear(lw.wo, attn, n, mix_.data(), lw.bo);
}

// Mamba-2 over h_ into mix_, each sequence continuing from (and advancing) its recurrent state.
void Transformer::mamba_layer(int64_t layer, std::span<const SequenceStep> steps, const std::vector<int64_t>& row_begin) {
  mamba_seqs_.clear();
  for (size_t si = 0; si < steps.size(); ++si) {
    RecurrentState& state = steps[si].cache->recurrent();
    mamba_seqs_.push_back({row_begin[si], row_begin[si + 1] - row_begin[si], state.conv(layer), state.ssm(layer)});
  }
  mamba_->forward(model_.weights.layers[size_t(layer)].mamba, h_.data(), row_begin.back(), mamba_seqs_, mix_.data());
}

std::vector<float> Transformer::forward(std::span<const SequenceStep> steps) {
  const ModelConfig& c = model_.config;
  const ModelWeights& w = model_.weights;
  const int64_t d = c.hidden_size, qd = c.q_dim(), kvd = c.kv_dim(), ff = c.intermediate_size;
  const float eps = float(c.rms_norm_eps), res = float(c.residual_multiplier);

  // Row bookkeeping: row i belongs to steps[seq_of[i]] at absolute position pos[i].
  int64_t n = 0;
  for (const auto& s : steps) {
    CTX_CHECK(s.cache != nullptr);
    CTX_CHECK(s.cache->layout() == attention_->layout(), "cache layout does not match the attention backend; use new_cache()");
    CTX_CHECK(s.cache->quantization() == quant_, "cache quantization does not match the Transformer's; use new_cache()");
    for (int32_t t : s.tokens)
      if (t < 0 || t >= c.vocab_size) fail("token id ", t, " is outside the vocabulary [0, ", c.vocab_size, ")");
    n += int64_t(s.tokens.size());
  }
  std::vector<int64_t> pos(static_cast<size_t>(n)), row_begin(steps.size() + 1);
  for (size_t si = 0, r = 0; si < steps.size(); ++si) {
    row_begin[si] = int64_t(r);
    for (size_t t = 0; t < steps[si].tokens.size(); ++t, ++r) pos[r] = steps[si].cache->position() + int64_t(t);
    steps[si].cache->reserve(steps[si].cache->position() + int64_t(steps[si].tokens.size()));
  }
  row_begin[steps.size()] = n;

  grow(x_, n * d), grow(h_, n * d), grow(q_, n * qd), grow(k_, n * kvd), grow(v_, n * kvd), grow(attn_, n * qd);
  grow(gate_, n * ff), grow(up_, n * ff), grow(mix_, n * d);
  float *x = x_.data(), *h = h_.data(), *gate = gate_.data(), *up = up_.data(), *mix = mix_.data();

  // Embedding (Granite scales it).
  const float emb_mul = float(c.embedding_multiplier);
  for (size_t si = 0; si < steps.size(); ++si)
    for (size_t t = 0; t < steps[si].tokens.size(); ++t) {
      const float* e = w.embed.data + int64_t(steps[si].tokens[t]) * d;
      float* xr = x + (row_begin[si] + int64_t(t)) * d;
      for (int64_t i = 0; i < d; ++i) xr[i] = e[i] * emb_mul;
    }

  if (kv_scratch_.size() < steps.size()) kv_scratch_.resize(steps.size());
  std::vector<char> compressed(steps.size(), 0);
  for (int64_t l = 0; l < c.num_layers; ++l) {
    const LayerWeights& lw = w.layers[size_t(l)];
    // Mixer: attention or Mamba-2, from rms_norm(x) in h to its output in mix.
    rms_norm(x, n, d, d, lw.attn_norm, eps, h, d);
    if (c.layer_kind(l) == LayerKind::kMamba2)
      mamba_layer(l, steps, row_begin);
    else
      attention_layer(l, steps, row_begin, pos, compressed);
    add_scaled(x, mix, n * d, res);

    rms_norm(x, n, d, d, lw.ffn_norm, eps, h, d);
    linear(lw.w_gate, h, n, gate, lw.b_gate);
    linear(lw.w_up, h, n, up, lw.b_up);
#pragma omp parallel for schedule(static) if (n * ff > 65536)
    for (int64_t i = 0; i < n * ff; ++i) gate[i] = gate[i] / (1.0f + std::exp(-gate[i])) * up[i];
    linear(lw.w_down, gate, n, h, lw.b_down);
    add_scaled(x, h, n * d, res);
  }

  // Final norm and classifier for the requested rows only.
  std::vector<int64_t> out_rows;
  for (size_t si = 0; si < steps.size(); ++si) {
    const int64_t nr = row_begin[si + 1] - row_begin[si];
    if (nr == 0) continue;
    const int64_t from = steps[si].logits_from < 0 ? nr - 1 : std::min(steps[si].logits_from, nr);
    for (int64_t t = from; t < nr; ++t) out_rows.push_back(row_begin[si] + t);
  }
  const int64_t m = int64_t(out_rows.size());
  for (int64_t i = 0; i < m; ++i) rms_norm(x + out_rows[size_t(i)] * d, 1, d, d, w.final_norm, eps, h + i * d, d);
  std::vector<float> logits(size_t(m * c.vocab_size));
  linear(w.lm_head, h, m, logits.data());
  if (c.logits_scaling != 1.0) {
    const float scaling = float(c.logits_scaling);
    for (float& z : logits) z /= scaling;
  }
  for (size_t si = 0; si < steps.size(); ++si) {
    steps[si].cache->advance(int64_t(steps[si].tokens.size()));
    if (compressed[si]) steps[si].cache->trim();
  }
  return logits;
}

}  // namespace ctx
