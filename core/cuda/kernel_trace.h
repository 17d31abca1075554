// The kernels this process runs on the GPU, with their start and end times, recorded through CUPTI's
// activity API (internal to ctxlab's tools: `ctxlab bench gpu-timeline`). Concurrent-kernel records:
// tracing does not serialise kernels, so programmatic dependent launch still overlaps them, and the
// kernels a CUDA graph replays are recorded with the graph's id and the launch's correlation id.
// libcupti.so.<major of the headers> is dlopened on first use, as cuBLAS is (cublas_api.h): the GPU
// machine's CUDA toolkit has it and ctxlab does not link it. One trace at a time per process.
#pragma once

#include <vector>

#include "core/instruments/kernel_timeline.h"

namespace ctx::cuda {

// Starts recording the kernels of every stream. Throws ctx::Unsupported when CUPTI cannot be loaded or
// refuses (naming the library and CUPTI's message; without CUDA: always), ctx::Error when a trace is
// already running.
void start_kernel_trace();

// Waits for the device, stops recording and returns the kernels recorded since start_kernel_trace(),
// their names demangled. Throws ctx::Error without a running trace, or when CUPTI dropped records.
std::vector<KernelRecord> stop_kernel_trace();

}  // namespace ctx::cuda
