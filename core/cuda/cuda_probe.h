// What CUDA can do here: whether ctxlab was built with CUDA, the driver/runtime versions, each GPU's
// properties, and whether a trivial kernel runs on it and computes the right answer. Never throws:
// problems are reported in the `error` fields. Thread-safe.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace ctx {

struct GpuInfo {
  int index = 0;
  std::string name;
  int cc_major = 0, cc_minor = 0;
  int multiprocessors = 0;
  int64_t total_bytes = 0, free_bytes = 0;
  int64_t l2_bytes = 0;
  bool kernel_ok = false;  // a test kernel ran and its result was verified
  std::string error;
};

struct CudaReport {
  bool built_with_cuda = false;
  int runtime_version = 0;  // e.g. 13000
  int driver_version = 0;   // 0 when no driver is loaded
  std::vector<GpuInfo> gpus;
  std::string error;  // e.g. "no CUDA driver", "no GPU"
};

CudaReport probe_cuda();

}  // namespace ctx
