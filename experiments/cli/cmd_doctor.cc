// ctxlab doctor: what this build and this machine can do.
#include <cstdio>

#include "core/base/system_info.h"
#include "core/base/threads.h"
#include "core/cuda/cuda_probe.h"
#include "experiments/cli/cli_common.h"
#include "experiments/cli/commands.h"

namespace ctx::cli {

int cmd_doctor(const Args& args) {
  po::options_description desc("doctor options");
  po::variables_map vm;
  if (!parse_options("doctor", "[--threads N]", desc, args, vm)) return 0;
  const BuildInfo b = build_info();
  const HostInfo h = host_info();
  std::printf("ctxlab %s (commit %s)\n", b.version.c_str(), b.git_commit.c_str());
  std::printf("build:    %s, %s, CPU flags '%s'\n", b.build_type.c_str(), b.compiler.c_str(), b.arch_flags.c_str());
  std::printf("cuda:     %s\n", b.cuda ? ("compiled in (nvcc " + b.cuda_compiler + "; " + b.cuda_gencode + ")").c_str()
                                         : "not compiled in");
  std::printf("cpu:      %s, %d logical CPUs\n", h.cpu_model.c_str(), h.logical_cpus);
  std::string feats;
  for (const auto& f : h.cpu_features) feats += f + " ";
  std::printf("features: %s\n", feats.c_str());
  std::printf("memory:   %s\n", human_bytes(double(h.memory_bytes)).c_str());
  std::printf("os:       %s\n", h.os.c_str());
  std::printf("threads:  %d (OpenMP and Eigen)\n", num_threads());
  const CudaReport r = probe_cuda();
  if (r.built_with_cuda)
    std::printf("cuda rt:  runtime %d.%d, driver %d.%d\n", r.runtime_version / 1000, (r.runtime_version % 1000) / 10,
                r.driver_version / 1000, (r.driver_version % 1000) / 10);
  if (r.gpus.empty()) std::printf("gpu:      none (%s)\n", r.error.c_str());
  bool ok = true;
  for (const auto& g : r.gpus) {
    std::printf("gpu %d:    %s, sm_%d%d, %d SMs, %s total / %s free, L2 %s, test kernel %s%s%s\n", g.index, g.name.c_str(),
                g.cc_major, g.cc_minor, g.multiprocessors, human_bytes(double(g.total_bytes)).c_str(),
                human_bytes(double(g.free_bytes)).c_str(), human_bytes(double(g.l2_bytes)).c_str(),
                g.kernel_ok ? "ok" : "FAILED", g.error.empty() ? "" : ": ", g.error.c_str());
    ok = ok && g.kernel_ok;
  }
  return ok ? 0 : 1;
}

}  // namespace ctx::cli
