// Where a GPU decode step's time goes, kernel by kernel, from the start and end times of the kernels
// that ran (core/cuda/kernel_trace.h records them through CUPTI). Host-only: it reads records, it
// does not touch a GPU.
//
// A step replayed from a CUDA graph is one graph launch: its kernels share the launch's correlation
// id. With programmatic dependent launch a kernel starts before the previous one ends (its blocks
// prefetch weights, then wait), so a kernel's own duration overstates what it costs the step. The
// timeline therefore also gives each kernel's increment: how far its end moves the step's end beyond
// every earlier kernel's (the first kernel: its whole duration). The increments of a step add up to
// its span, from the first kernel's start to the latest end.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace ctx {

struct KernelRecord {
  std::string name;                    // demangled (short_kernel_name shortens it)
  uint64_t start_ns = 0, end_ns = 0;   // GPU timestamps
  uint32_t correlation = 0;            // the launching API call's (a graph launch: all its kernels)
  uint32_t graph_id = 0;               // 0: not launched from a graph
  uint64_t graph_node = 0;             // the kernel's node in its graph
  int64_t grid = 0, block = 0;         // blocks, threads per block
  int registers = 0;                   // per thread
};

// The records of each graph launch, each sorted by start, the launches in the order of their first
// kernel's start. A graph launch is the records of one correlation id with a graph id, or with more
// than one kernel (a graph's kernels share their launch's id; a kernel launched alone has its own).
// Where no record has a correlation id, the graph records in start order begin a new launch wherever
// a graph node comes again. Records outside graphs are left out.
std::vector<std::vector<KernelRecord>> graph_launches(const std::vector<KernelRecord>& records);

// A kernel of a step, the same kernel (short name, grid and block) summed over its launches in the
// step and averaged over the steps.
struct TimelineKernel {
  std::string name;         // short_kernel_name
  int64_t grid = 0, block = 0;
  int registers = 0;
  double launches = 0;      // per step
  double duration_us = 0;   // per step: the launches' end - start, summed
  double increment_us = 0;  // per step: the launches' increments, summed
  double gap_us = 0;        // per launch: start - the previous kernel's end (< 0: it started earlier)
};
struct StepTimeline {
  int64_t steps = 0;
  double span_us = 0;  // per step: the first kernel's start to the latest end
  std::vector<TimelineKernel> kernels;  // in the order of their first launch in a step
};

// The mean timeline of `steps` (graph_launches' result; at least one). Fails naming the step when the
// steps do not launch the same sequence of kernels (short name, grid, block).
StepTimeline summarize_steps(const std::vector<std::vector<KernelRecord>>& steps);

// A demangled kernel name without the return type, the argument list and the namespaces ctx::cuda,
// quant_device and (anonymous namespace): "void ctx::cuda::(anonymous namespace)::f<ctx::cuda::
// quant_device::Int8Format, true>(ctx::cuda::(anonymous namespace)::Args)" -> "f<Int8Format, true>".
std::string short_kernel_name(const std::string& demangled);

}  // namespace ctx
