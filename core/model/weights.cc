#include "core/model/weights.h"

#include <cstring>

#include "core/base/error.h"
#include "core/quant/quantized_matrix.h"

namespace ctx {
namespace {

std::string shape_str(const std::vector<int64_t>& s) {
  std::string out = "[";
  for (size_t i = 0; i < s.size(); ++i) out += (i ? ", " : "") + std::to_string(s[i]);
  return out + "]";
}

class Assembler {
 public:
  Assembler(const TensorLookup& lookup, std::string source, ModelWeights& w)
      : lookup_(lookup), source_(std::move(source)), w_(w) {}

  // The tensor `name`, which must exist with `shape`.
  RawTensor find(const std::string& name, const std::vector<int64_t>& shape) {
    auto t = lookup_(name, shape);
    if (!t) fail(source_, ": missing tensor '", name, "' (expected shape ", shape_str(shape), ")");
    if (t->shape != shape)
      fail(source_, ": tensor '", name, "' has shape ", shape_str(t->shape), ", expected ", shape_str(shape));
    return *t;
  }
  const float* take(const std::string& name, const std::vector<int64_t>& shape) {
    return as_f32(name, find(name, shape), shape);
  }
  const float* as_f32(const std::string& name, const RawTensor& t, const std::vector<int64_t>& shape) {
    if (t.shape != shape)
      fail(source_, ": tensor '", name, "' has shape ", shape_str(t.shape), ", expected ", shape_str(shape));
    if (t.dtype != DType::F32 && t.dtype != DType::F16 && t.dtype != DType::BF16)
      fail(source_, ": tensor '", name, "' has dtype ", dtype_name(t.dtype), " (supported: F32, F16, BF16)");
    size_t n = 1;
    for (int64_t d : shape) n *= size_t(d);
    if (t.dtype == DType::F32) {
      w_.storage.push_back(t.owner);
      return static_cast<const float*>(t.data);
    }
    std::shared_ptr<float[]> buf(new float[n]);
    convert_to_f32(t.dtype, t.data, buf.get(), n);
    w_.storage.push_back(buf);
    return buf.get();
  }

  WeightMatrix matrix(const std::string& name, int64_t rows, int64_t cols) {
    return {take(name, {rows, cols}), rows, cols, nullptr};
  }
  // Rows [first, first + rows) of the [total_rows, cols] tensor `name`, as a matrix of its own: a
  // view of a float32 tensor, else a converted buffer holding only these rows (so quantizing one
  // part releases only its own buffer).
  WeightMatrix row_block(const std::string& name, int64_t total_rows, int64_t cols, int64_t first, int64_t rows) {
    const std::vector<int64_t> shape = {total_rows, cols};
    const RawTensor t = find(name, shape);
    if (t.dtype == DType::F16 || t.dtype == DType::BF16) {
      RawTensor part = t;
      part.shape = {rows, cols};
      part.data = static_cast<const char*>(t.data) + first * cols * int64_t(dtype_size(t.dtype));
      return {as_f32(name, part, {rows, cols}), rows, cols, nullptr};
    }
    return {as_f32(name, t, shape) + first * cols, rows, cols, nullptr};
  }
  WeightVector vector(const std::string& name, int64_t n) { return {take(name, {n}), n}; }

 private:
  const TensorLookup& lookup_;
  std::string source_;
  ModelWeights& w_;
};

int64_t vec_bytes(const WeightVector& v) { return v.empty() ? 0 : v.size * 4; }
int64_t mat_bytes(const WeightMatrix& m) { return m.bytes(); }

int64_t layer_bytes(const LayerWeights& l) {
  int64_t b = 0;
  const Mamba2Weights& m = l.mamba;
  for (const auto* x : {&l.wq, &l.wk, &l.wv, &l.wo, &l.w_gate, &l.w_up, &l.w_down, &m.in_proj, &m.out_proj})
    b += mat_bytes(*x);
  for (const auto* v : {&l.attn_norm, &l.ffn_norm, &l.bq, &l.bk, &l.bv, &l.bo, &l.q_norm, &l.k_norm, &l.b_gate,
                        &l.b_up, &l.b_down, &m.in_bias, &m.out_bias, &m.conv_weight, &m.conv_bias, &m.dt_bias,
                        &m.a_log, &m.d, &m.norm})
    b += vec_bytes(*v);
  return b;
}

Mamba2Weights assemble_mamba2(const Mamba2Config& m, int64_t d, const std::string& p, Assembler& a) {
  Mamba2Weights w;
  const int64_t inner = m.intermediate(), conv = m.conv_dim(), h = m.num_heads;
  w.in_proj = a.matrix(p + "in_proj.weight", m.in_proj_dim(), d);
  w.out_proj = a.matrix(p + "out_proj.weight", d, inner);
  if (m.proj_bias) {
    w.in_bias = a.vector(p + "in_proj.bias", m.in_proj_dim());
    w.out_bias = a.vector(p + "out_proj.bias", d);
  }
  w.conv_weight = {a.take(p + "conv1d.weight", {conv, 1, m.conv_kernel}), conv * m.conv_kernel};
  if (m.conv_bias) w.conv_bias = a.vector(p + "conv1d.bias", conv);
  w.dt_bias = a.vector(p + "dt_bias", h);
  w.a_log = a.vector(p + "A_log", h);
  w.d = a.vector(p + "D", h);
  w.norm = a.vector(p + "norm.weight", inner);
  return w;
}

}  // namespace

int64_t WeightMatrix::bytes() const {
  if (quant) return quant->bytes();
  return data ? rows * cols * 4 : 0;
}

int64_t ModelWeights::bytes_read_per_token() const {
  int64_t b = embed.cols * 4 + vec_bytes(final_norm) + mat_bytes(lm_head);
  for (const auto& l : layers) b += layer_bytes(l);
  return b;
}

int64_t ModelWeights::bytes_held() const {
  int64_t b = mat_bytes(embed) + vec_bytes(final_norm) + (lm_head.data == embed.data ? 0 : mat_bytes(lm_head));
  for (const auto& l : layers) b += layer_bytes(l);
  return b;
}

ModelWeights assemble_hf_weights(const ModelConfig& c, const TensorLookup& lookup, const std::string& source) {
  ModelWeights w;
  Assembler a(lookup, source, w);
  const int64_t d = c.hidden_size, qd = c.q_dim(), kvd = c.kv_dim(), ff = c.intermediate_size;
  w.embed = a.matrix("model.embed_tokens.weight", c.vocab_size, d);
  for (int64_t i = 0; i < c.num_layers; ++i) {
    const std::string p = "model.layers." + std::to_string(i) + ".";
    LayerWeights l;
    l.attn_norm = a.vector(p + "input_layernorm.weight", d);
    l.ffn_norm = a.vector(p + "post_attention_layernorm.weight", d);
    if (c.model_type == "granitemoehybrid") {
      // Dense shared MLP: input_linear stacks gate (first half of the rows) and up.
      const std::string in = p + "shared_mlp.input_linear.weight";
      l.w_gate = a.row_block(in, 2 * ff, d, 0, ff);
      l.w_up = a.row_block(in, 2 * ff, d, ff, ff);
      l.w_down = a.matrix(p + "shared_mlp.output_linear.weight", d, ff);
    }
    if (c.layer_kind(i) == LayerKind::kMamba2) {
      l.mamba = assemble_mamba2(c.mamba, d, p + "mamba.", a);
      w.layers.push_back(l);
      continue;
    }
    l.wq = a.matrix(p + "self_attn.q_proj.weight", qd, d);
    l.wk = a.matrix(p + "self_attn.k_proj.weight", kvd, d);
    l.wv = a.matrix(p + "self_attn.v_proj.weight", kvd, d);
    l.wo = a.matrix(p + "self_attn.o_proj.weight", d, qd);
    if (c.qkv_bias) {
      l.bq = a.vector(p + "self_attn.q_proj.bias", qd);
      l.bk = a.vector(p + "self_attn.k_proj.bias", kvd);
      l.bv = a.vector(p + "self_attn.v_proj.bias", kvd);
    }
    if (c.o_bias) l.bo = a.vector(p + "self_attn.o_proj.bias", d);
    if (c.qk_norm) {
      l.q_norm = a.vector(p + "self_attn.q_norm.weight", c.head_dim);
      l.k_norm = a.vector(p + "self_attn.k_norm.weight", c.head_dim);
    }
    if (c.model_type == "granitemoehybrid") {
      w.layers.push_back(l);
      continue;
    }
    l.w_gate = a.matrix(p + "mlp.gate_proj.weight", ff, d);
    l.w_up = a.matrix(p + "mlp.up_proj.weight", ff, d);
    l.w_down = a.matrix(p + "mlp.down_proj.weight", d, ff);
    if (c.mlp_bias) {
      l.b_gate = a.vector(p + "mlp.gate_proj.bias", ff);
      l.b_up = a.vector(p + "mlp.up_proj.bias", ff);
      l.b_down = a.vector(p + "mlp.down_proj.bias", d);
    }
    w.layers.push_back(l);
  }
  w.final_norm = a.vector("model.norm.weight", d);
  if (c.tie_word_embeddings) {
    w.lm_head = w.embed;
  } else {
    w.lm_head = a.matrix("lm_head.weight", c.vocab_size, d);
  }
  return w;
}

}  // namespace ctx
