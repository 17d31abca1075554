#include "experiments/cli/bench_common.h"

#include <algorithm>
#include <cstdio>

#include "core/base/threads.h"
#include "experiments/cli/cli_common.h"

namespace ctx::cli {

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v.size() % 2 ? v[v.size() / 2] : 0.5 * (v[v.size() / 2 - 1] + v[v.size() / 2]);
}

std::vector<int32_t> synthetic_tokens(int64_t n, int64_t vocab) {
  std::vector<int32_t> t(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) t[size_t(i)] = int32_t(3 + (i * 7919 + 13) % std::max<int64_t>(1, vocab - 3));
  return t;
}

void print_model_line(const Model& m, const std::string& quant) {
  std::printf("model: %s | %s | weights %s (quant %s) | threads %d\n", m.spec.c_str(), m.config.summary().c_str(),
              human_bytes(double(m.weights.bytes_held())).c_str(), quant.c_str(), num_threads());
}

}  // namespace ctx::cli
