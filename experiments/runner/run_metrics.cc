#include "experiments/runner/run_metrics.h"

#include <algorithm>
#include <cmath>
#include <map>
#include <set>

namespace ctx::runner {

double percentile(std::vector<double> v, double p) {
  if (v.empty()) return NAN;
  std::sort(v.begin(), v.end());
  const double pos = p / 100 * double(v.size() - 1);
  const size_t lo = size_t(std::floor(pos));
  const size_t hi = std::min(lo + 1, v.size() - 1);
  return v[lo] + (v[hi] - v[lo]) * (pos - double(lo));
}

bool is_measurement_metric(const std::string& name) {
  static const char* const kPrefixes[] = {"ttft_ms", "latency_ms", "prefill_tok_s", "decode_ms",
                                          "tok_per_s", "throughput_tok_s", "peak_mem_gb", "peak_host_mem_gb",
                                          "peak_device_mem_gb", "wall_s"};
  for (const char* p : kPrefixes)
    if (name.rfind(p, 0) == 0) return true;
  return false;
}

namespace {

void add_scope(std::vector<store::MetricRecord>& out, const std::string& scope,
               const std::vector<const store::ExampleRecord*>& ex, int64_t batch_size) {
  auto put = [&](const std::string& name, double value) {
    if (std::isfinite(value)) out.push_back({scope, name, value});
  };
  std::vector<double> prompt, ttft, latency, prefill, decode, rate, host, device, kv;
  for (const auto* e : ex) {
    prompt.push_back(double(e->prompt_tokens));
    ttft.push_back(e->ttft_ms);
    latency.push_back(e->latency_ms);
    prefill.push_back(e->prefill_tok_s);
    if (e->decode_ms_per_token > 0) decode.push_back(e->decode_ms_per_token), rate.push_back(1e3 / e->decode_ms_per_token);
    host.push_back(double(e->peak_host_bytes) / double(1 << 30));
    if (e->peak_device_bytes > 0) device.push_back(double(e->peak_device_bytes) / double(1 << 30));
    kv.push_back(double(e->kv_bytes) / double(1 << 20));
  }
  put("examples", double(ex.size()));
  double sum = 0;
  for (double x : prompt) sum += x;
  put("context_tokens", prompt.empty() ? NAN : sum / double(prompt.size()));
  put("context_tokens_max", percentile(prompt, 100));
  put("ttft_ms_p50", percentile(ttft, 50));
  put("ttft_ms_p95", percentile(ttft, 95));
  put("latency_ms_p50", percentile(latency, 50));
  put("latency_ms_p95", percentile(latency, 95));
  put("prefill_tok_s_p50", percentile(prefill, 50));
  put("decode_ms_per_token_p50", percentile(decode, 50));
  put("tok_per_s_p50", percentile(rate, 50));
  put("throughput_tok_s_p50", percentile(rate, 50) * double(batch_size));
  // peak_mem_gb: the memory of the device that ran the model (the seeds' figure: GPU memory for GPU
  // runs), so CPU and GPU runs plot on one axis; the host and device figures also apart.
  const std::vector<double>& peak = device.size() == ex.size() && !device.empty() ? device : host;
  put("peak_mem_gb_p50", percentile(peak, 50));
  put("peak_mem_gb_p95", percentile(peak, 95));
  put("peak_mem_gb_max", percentile(peak, 100));
  put("peak_host_mem_gb_p95", percentile(host, 95));
  put("peak_device_mem_gb_p95", percentile(device, 95));
  put("kv_mb_p50", percentile(kv, 50));
  put("kv_mb_max", percentile(kv, 100));
}

}  // namespace

std::vector<store::MetricRecord> run_metrics(const std::vector<store::ExampleRecord>& examples, int64_t batch_size,
                                             int64_t weight_bytes) {
  std::vector<store::MetricRecord> out;
  std::vector<const store::ExampleRecord*> all;
  std::vector<std::string> order;  // dataset labels in first-seen order
  std::map<std::string, std::vector<const store::ExampleRecord*>> by_dataset;
  for (const auto& e : examples) {
    all.push_back(&e);
    if (!by_dataset.count(e.dataset)) order.push_back(e.dataset);
    by_dataset[e.dataset].push_back(&e);
  }
  add_scope(out, "", all, batch_size);
  out.push_back({"", "weight_bytes", double(weight_bytes)});
  out.push_back({"", "weight_gb", double(weight_bytes) / double(1 << 30)});
  double quality_sum = 0;
  int64_t quality_n = 0;
  for (const auto& label : order) {
    const auto& ex = by_dataset[label];
    add_scope(out, label, ex, batch_size);
    std::map<std::string, std::pair<double, int64_t>> means;  // key -> (sum, count)
    std::vector<std::string> keys;
    for (const auto* e : ex)
      for (const auto& [k, v] : e->scores) {
        auto& [s, n] = means[k];
        if (n == 0) keys.push_back(k);
        s += v, ++n;
      }
    for (const auto& k : keys) out.push_back({label, k, means[k].first / double(means[k].second)});
    if (means.count("quality")) quality_sum += means["quality"].first / double(means["quality"].second), ++quality_n;
  }
  if (quality_n > 0) out.push_back({"", "quality", quality_sum / double(quality_n)});
  return out;
}

}  // namespace ctx::runner
