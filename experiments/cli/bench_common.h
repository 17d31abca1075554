// Pieces shared by the `ctxlab bench` subcommands (cmd_bench.cc, cmd_bench_kv.cc, cmd_bench_quant.cc).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "core/model/model_loader.h"
#include "experiments/cli/commands.h"

namespace ctx::cli {

double median(std::vector<double> v);
// Deterministic token ids in [3, vocab) (skips the usual special ids).
std::vector<int32_t> synthetic_tokens(int64_t n, int64_t vocab);
// Lengths for a batch at `context`: sequence 0 gets context, sequence s > 0 context * (1/4 .. 1) by a
// golden-ratio sequence (deterministic, spread evenly). cmd_bench_gpu.cc.
std::vector<int64_t> mixed_lengths(int64_t context, int64_t batch);
// "model: SPEC | shape | weights N (quant Q) | threads T".
void print_model_line(const Model& m, const std::string& quant = "none");

int bench_kv(const Args& args);     // `ctxlab bench kv` (cmd_bench_kv.cc)
int bench_quant(const Args& args);  // `ctxlab bench quant` (cmd_bench_quant.cc)
int bench_gpu_decode(const Args& args);     // `ctxlab bench gpu-decode` (cmd_bench_gpu.cc)
int bench_gpu_attention(const Args& args);  // `ctxlab bench gpu-attention` (cmd_bench_gpu.cc)
int bench_gpu_batch(const Args& args);      // `ctxlab bench gpu-batch` (cmd_bench_gpu_batch.cc)
int bench_gpu_prefill_attention(const Args& args);  // `ctxlab bench gpu-prefill-attention` (cmd_bench_gpu_prefill.cc)
int bench_gpu_timeline(const Args& args);   // `ctxlab bench gpu-timeline` (cmd_bench_gpu_timeline.cc)

}  // namespace ctx::cli
