// Facts about the build and the host, for `ctxlab doctor` and run provenance. Thread-safe.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace ctx {

struct BuildInfo {
  std::string version, git_commit, compiler, build_type, arch_flags;
  bool cuda = false;            // CUDA code compiled in
  std::string cuda_compiler;    // nvcc version when compiled in
  std::string cuda_gencode;     // targets
};
BuildInfo build_info();

struct HostInfo {
  std::string cpu_model;
  int logical_cpus = 0;
  std::vector<std::string> cpu_features;  // of interest to our kernels: avx2, fma, f16c, avx512f, ...
  int64_t memory_bytes = 0;
  std::string os;
};
HostInfo host_info();

// Peak resident set size of this process since start or the last reset_peak_rss(), in bytes
// (Linux VmHWM; getrusage's lifetime peak where /proc is missing; 0 if unknown).
int64_t peak_rss_bytes();
// Restarts the peak at the current resident size (Linux: "5" to /proc/self/clear_refs), so that
// a runner can measure each example's peak. Returns false where the kernel does not support it.
bool reset_peak_rss();
// Returns freed heap memory to the operating system (glibc malloc_trim), so that the resident size
// after releasing large buffers (a model's weights) is what is still in use.
void release_free_memory();

}  // namespace ctx
