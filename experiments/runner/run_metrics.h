// A run's metrics from its stored examples (what `show`, `compare`, `export` and the plots read).
// For the whole run (scope "") and for each dataset (scope = its label):
//   examples; context_tokens (mean prompt tokens) and context_tokens_max;
//   ttft_ms_p50/p95, latency_ms_p50/p95, prefill_tok_s_p50, decode_ms_per_token_p50,
//   tok_per_s_p50 (per-sequence decode rate, 1000 / decode_ms_per_token) and throughput_tok_s_p50
//   (x batch_size), over examples that decoded; peak_mem_gb_p50/p95/max (GiB: the device
//   allocator's peak for GPU runs, host RSS otherwise), peak_host_mem_gb_p95 and (GPU runs)
//   peak_device_mem_gb_p95,
//   kv_mb_p50/max (KV bytes reserved, MiB);
//   quality: per dataset the mean of the examples' "quality"; for the run the mean over datasets.
// Per dataset also the mean of every other score key (meteor, rouge1_fmeasure, em, accuracy, ...).
// Run scope only: weight_gb and weight_bytes.
// Percentiles interpolate linearly between order statistics (numpy.percentile's default).
// Pure; thread-safe.
#pragma once

#include <cstdint>
#include <vector>

#include "experiments/store/run_store.h"

namespace ctx::runner {

double percentile(std::vector<double> values, double p);  // p in [0, 100]; NaN for no values

std::vector<store::MetricRecord> run_metrics(const std::vector<store::ExampleRecord>& examples, int64_t batch_size,
                                             int64_t weight_bytes);

// True for metrics that measure time or memory (they vary between identical runs); false for
// quality metrics and counts, which `rerun` requires to be identical.
bool is_measurement_metric(const std::string& name);

}  // namespace ctx::runner
