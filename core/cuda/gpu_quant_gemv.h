// The GPU engine's linear-layer kernels (core/cuda/linear_weights.h) on host matrices, outside a model:
// for tests/gpu/gpu_quant_test.cc, which checks them against the CPU quant plugins' dequantized
// matrices, and for `ctxlab bench gpu-decode --quant`'s per-format GEMV bandwidth table.
//
// `parts` is the row-wise stack the engine would build (e.g. {&wq, &wk, &wv}): all float32 (uploaded as
// bf16, the bf16 kernels) or all quantized by one plugin (uploaded in its packed form). llm_int8 runs
// LLM.int8()'s decomposition of the input (gpu_gemv: staged as int8 codes; gpu_gemm: as values).
// Errors as LinearWeights::upload; without CUDA or a GPU every function throws ctx::Unsupported.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "core/model/weights.h"
#include "core/quant/quantized_matrix.h"

namespace ctx::cuda {

struct GpuGemvCase {
  // The input: x [cols] rounded to bf16; or, when norm_weight is given, x is a float32 hidden state and
  // the input is RMSNorm(x) with norm_weight [cols] (rounded to bf16) and eps, fused into the GEMV.
  std::span<const float> x;
  std::span<const float> norm_weight;
  float eps = 1e-5f;
  std::span<const float> bias;  // [rows of the stack], rounded to bf16; empty: none
  float alpha = 1.f;
  std::span<const float> y0;    // [rows]: y = y0 + alpha * (W x + bias); empty: y = alpha * (W x + bias)
  bool swiglu = false;          // the stack is [gate; up]: returns act [rows / 2] (bf16 values)
  // > 1: x holds n input rows [n][cols] and y0 [n][rows]: the batched GEMV of quantized weights
  // (LinearWeights::gemv_rows; no norm_weight), returning [n][rows] (or [n][rows / 2]).
  int64_t n = 1;
  // n == 1 without norm_weight: the staged single-row kernel (LinearWeights::gemv's stage_input)
  // instead of the engine's choice, the batched kernel's one-row form.
  bool stage_input = false;
  // With norm_weight: partial sums of squares standing for sum(x^2) (GemvInput::sumsq), which the GEMV
  // uses where it normalizes without staging (GpuGemvResult::direct_norm) and ignores elsewhere.
  std::span<const float> sumsq;
  // One row, plain, no norm_weight: also return the sums of squares of y's tiles (GemvEpilogue::sumsq).
  bool want_sumsq = false;
};

struct GpuGemvResult {
  std::vector<float> y;      // as gpu_gemv
  std::vector<float> sumsq;  // want_sumsq (quantized weights): per tile of 16 rows; else empty
  bool direct_norm = false;  // the GEMV normalized x with c.sumsq (quant_kernels.h quant_gemv_direct_norm)
};

// One decode GEMV (the engine's launch for n == 1, or for 1 < n <= 8 rows): y [rows], or act [rows / 2]
// with swiglu (times n).
std::vector<float> gpu_gemv(const std::vector<const WeightMatrix*>& parts, const GpuGemvCase& c);
GpuGemvResult gpu_gemv_result(const std::vector<const WeightMatrix*>& parts, const GpuGemvCase& c);

// The greedy pick after the classifier (kernels.h launch_argmax_rows) of logits [rows][vocab]: per row
// the index of the largest value, the lowest index on ties.
std::vector<int32_t> gpu_argmax_rows(std::span<const float> logits, int64_t rows);

// Prefill's product: out [n, rows] = x [n, cols] (rounded to bf16) W^T through cuBLAS; a quantized
// stack is dequantized in tiles of scratch_elems / cols rows (scratch_elems >= cols).
std::vector<float> gpu_gemm(const std::vector<const WeightMatrix*>& parts, std::span<const float> x, int64_t n,
                            int64_t scratch_elems);

// The bf16 values prefill multiplies, rows [r0, r1) of the quantized stack, as float [r1 - r0, cols].
std::vector<float> gpu_dequantize(const std::vector<const WeightMatrix*>& parts, int64_t r0, int64_t r1);

struct GemvTiming {
  int64_t bytes = 0;       // bytes one launch must read: the matrix on the device plus the bf16 input
  double us = 0;           // median microseconds per launch
  double bytes_per_s = 0;  // bytes / time
};
// The decode GEMV on copies of `m` (float32: the bf16 kernel; quantized: the packed kernel), enough
// to defeat the L2 cache: median of `reps` timings of 20 back-to-back launches.
GemvTiming measure_gemv(const WeightMatrix& m, int reps);

// A decoder layer's decode GEMVs after attention, as the GPU engine runs them (all quantized by one
// plugin): hidden += alpha * Wo x; act = swiglu([Wgate; Wup] rmsnorm(hidden, ffn_norm)); hidden +=
// alpha * Wdown act; qkv = [Wq; Wk; Wv] rmsnorm(hidden, attn_norm) (the next layer's).
struct GpuLayerGemvs {
  std::vector<const WeightMatrix*> o, gate_up, down, qkv;  // row-wise stacks, as gpu_gemv's parts
  std::span<const float> x, hidden, ffn_norm, attn_norm;   // x [o cols], hidden and norms [hidden size]
  float eps = 1e-5f, alpha = 1.f;
};
struct GpuLayerGemvsResult {
  std::vector<float> hidden, act, qkv;  // act as bf16 values
};
// chained: the four GEMVs as one persistent kernel (launch_quant_gemv_chain, with a ring of ring_kib
// KiB per block, 0: its default); else four launches, as the engine without the chain.
// barrier_kind as launch_quant_gemv_chain's.
GpuLayerGemvsResult gpu_layer_gemvs(const GpuLayerGemvs& c, bool chained, int ring_kib = 0, int barrier_kind = 0);

struct LayerGemvsTiming {
  int64_t bytes = 0;         // the four packed matrices and their bf16 inputs: what one layer must read
  double separate_us = 0;    // per layer: four launches each (programmatic dependent launch)
  double chain_us[3] = {};   // per layer: the chain with a 48, 96 and 144 KiB ring, generation barrier
  double single_stage_us = 0;  // per layer: each GEMV a chain of one stage (48 KiB), four launches
  double counting_us = 0;      // per layer: the chain (48 KiB) with the counting barrier
  double partials_us = 0;      // per layer: four launches with norm_partials
};
// `layers` layers of c's matrices in a CUDA graph (two copies alternating, each beyond the L2), median
// of `reps` replays; c's x, hidden and norms give the shapes and values.
LayerGemvsTiming measure_layer_gemvs(const GpuLayerGemvs& c, int layers, int reps);

}  // namespace ctx::cuda
