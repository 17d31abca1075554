#include "core/quant/quantize_model.h"

#include <algorithm>
#include <exception>
#include <string>
#include <utility>
#include <vector>

#include "core/base/error.h"

namespace ctx {

QuantizeReport quantize_model_weights(ModelWeights& w, const Quantizer& quantizer) {
  struct Slot {
    WeightMatrix* m;
    std::string name;
  };
  std::vector<Slot> slots;
  for (size_t i = 0; i < w.layers.size(); ++i) {
    LayerWeights& l = w.layers[i];
    const std::string p = "layer " + std::to_string(i) + " ";
    for (auto [m, name] : {std::pair{&l.wq, "self_attn.q_proj"}, {&l.wk, "self_attn.k_proj"}, {&l.wv, "self_attn.v_proj"},
                           {&l.wo, "self_attn.o_proj"}, {&l.w_gate, "mlp.gate_proj"}, {&l.w_up, "mlp.up_proj"},
                           {&l.w_down, "mlp.down_proj"}})
      if (!m->quant && m->data) slots.push_back({m, p + name});
  }
  if (quantizer.quantizes_lm_head() && !w.lm_head.quant && w.lm_head.data) slots.push_back({&w.lm_head, "lm_head"});
  // Quantize everything first, so that an error leaves the weights unchanged. Matrices are quantized
  // in parallel (quantizers are thread-safe; a 7B model has 224 matrices); the first error in layer
  // order is reported, as a serial loop would.
  std::vector<std::shared_ptr<const QuantizedMatrix>> q(slots.size());
  std::vector<std::exception_ptr> errors(slots.size());
  const int64_t count = int64_t(slots.size());
#pragma omp parallel for schedule(dynamic, 1)
  for (int64_t i = 0; i < count; ++i) {
    try {
      q[size_t(i)] = quantizer.quantize(*slots[size_t(i)].m);
    } catch (...) {
      errors[size_t(i)] = std::current_exception();
    }
  }
  for (size_t i = 0; i < slots.size(); ++i) {
    if (!errors[i]) continue;
    const WeightMatrix& m = *slots[i].m;
    try {
      std::rethrow_exception(errors[i]);
    } catch (const Unsupported& e) {
      throw Unsupported(str_cat(slots[i].name, ": ", e.what()));  // the quantizer names the shape
    } catch (const Error& e) {
      fail(slots[i].name, " [", m.rows, ", ", m.cols, "]: ", e.what());
    }
  }
  QuantizeReport report;
  for (size_t i = 0; i < slots.size(); ++i) {
    WeightMatrix& m = *slots[i].m;
    if (!q[i]) {
      ++report.matrices_kept;
      continue;
    }
    CTX_CHECK(q[i]->rows() == m.rows && q[i]->cols() == m.cols);
    ++report.matrices_quantized;
    // An owned buffer is stored as the shared_ptr of exactly this matrix's data; a mapped file's
    // owner points elsewhere and stays.
    // A tied classifier keeps the embedding's buffer (the lookup still reads it).
    const void* data = m.data;
    const auto before = w.storage.size();
    if (data != w.embed.data) std::erase_if(w.storage, [&](const std::shared_ptr<const void>& s) { return s.get() == data; });
    if (w.storage.size() != before) report.float_bytes_released += m.rows * m.cols * 4;
    m.quant = std::move(q[i]);
    m.data = nullptr;
  }
  return report;
}

}  // namespace ctx

namespace ctx {

void register_quantizer(Registry<Quantizer>& registry, PluginInfo info, Registry<Quantizer>::Factory factory) {
  info.schema.push_back(ParamSpec::Bool(
      "lm_head", false, "also quantize the classifier (llama.cpp quantizes output.weight; bitsandbytes keeps it float)"));
  registry.add(std::move(info), [factory = std::move(factory)](const Params& p) {
    std::unique_ptr<Quantizer> q = factory(p);
    q->set_quantizes_lm_head(p.get_bool("lm_head"));
    return q;
  });
}

std::string quantize_model_weights(ModelWeights& w, const Registry<Quantizer>& registry, const std::string& spec) {
  const PluginSpec resolved = registry.resolve(spec);
  const auto quantizer = registry.create(resolved);
  try {
    quantize_model_weights(w, *quantizer);
  } catch (const Unsupported& e) {
    throw Unsupported(str_cat("quant ", spec, ": ", e.what()));
  } catch (const Error& e) {
    fail("quant ", spec, ": ", e.what());
  }
  return resolved.canonical();
}

}  // namespace ctx
