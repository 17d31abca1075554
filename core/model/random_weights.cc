// random:CONFIG.json[:SEED] models. Every weight is a pure function of (seed, tensor name, index)
// so the same spec gives bit-identical weights on every machine and thread count. Matrices are
// uniform with the config's initializer_range as standard deviation (default 0.02), norms are 1,
// biases small.
#include <cmath>
#include <nlohmann/json.hpp>

#include "core/base/error.h"
#include "core/base/mapped_file.h"
#include "core/model/model_loader.h"

namespace ctx {
namespace {

uint64_t splitmix64(uint64_t x) {
  x += 0x9e3779b97f4a7c15ull;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
  return x ^ (x >> 31);
}

uint64_t hash_name(const std::string& s, uint64_t seed) {
  uint64_t h = 1469598103934665603ull ^ splitmix64(seed);
  for (unsigned char ch : s) h = (h ^ ch) * 1099511628211ull;
  return h;
}

bool ends_with(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

}  // namespace

std::unique_ptr<Model> make_random_model(const std::string& config_path, uint64_t seed) {
  const std::string text = read_file(config_path);
  auto model = std::make_unique<Model>();
  model->spec = "random:" + config_path + ":" + std::to_string(seed);
  model->format = "random";
  model->config = parse_hf_config(text, config_path);
  model->stop_ids = {};  // random weights: generate exactly the requested number of tokens
  double init = 0.02;
  auto j = nlohmann::json::parse(text);
  if (j.contains("initializer_range") && j["initializer_range"].is_number()) init = j["initializer_range"].get<double>();
  const float amplitude = float(init * std::sqrt(3.0));  // uniform[-a, a] has std a / sqrt(3)

  model->weights = assemble_hf_weights(
      model->config,
      [&](const std::string& name, const std::vector<int64_t>& shape) -> std::optional<RawTensor> {
        size_t n = 1;
        for (int64_t d : shape) n *= size_t(d);
        std::shared_ptr<float[]> buf(new float[n]);
        float* p = buf.get();
        if (ends_with(name, "norm.weight")) {
          std::fill(p, p + n, 1.0f);
        } else {
          const uint64_t base = hash_name(name, seed);
          const float a = ends_with(name, ".bias") ? amplitude * 0.1f : amplitude;
#pragma omp parallel for schedule(static)
          for (int64_t i = 0; i < int64_t(n); ++i) {
            const uint64_t r = splitmix64(base + uint64_t(i));
            p[i] = a * (float(r >> 40) * (2.0f / 16777216.0f) - 1.0f);
          }
        }
        return RawTensor{DType::F32, shape, p, buf};
      },
      config_path);
  return model;
}

}  // namespace ctx
