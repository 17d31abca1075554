#include "core/base/system_info.h"

#include "git_commit.h"  // generated at build time

#include <cpuid.h>
#include <malloc.h>
#include <sys/resource.h>
#include <sys/utsname.h>
#include <unistd.h>

#include <cstdio>
#include <fstream>

namespace ctx {

BuildInfo build_info() {
  BuildInfo b;
  b.version = CTXLAB_VERSION;
  b.git_commit = CTXLAB_GIT_COMMIT;
#if defined(__clang__)
  b.compiler = "clang " __clang_version__;
#elif defined(__GNUC__)
  b.compiler = "gcc " __VERSION__;
#endif
  b.build_type = CTXLAB_BUILD_TYPE;
  b.arch_flags = CTXLAB_ARCH_FLAGS_STR;
#ifdef CTXLAB_WITH_CUDA
  b.cuda = true;
  b.cuda_compiler = CTXLAB_CUDA_COMPILER_VERSION;
  b.cuda_gencode = CTXLAB_CUDA_GENCODE_STR;
#endif
  return b;
}

HostInfo host_info() {
  HostInfo h;
  std::ifstream cpuinfo("/proc/cpuinfo");
  for (std::string line; std::getline(cpuinfo, line);)
    if (line.rfind("model name", 0) == 0) {
      h.cpu_model = line.substr(line.find(':') + 2);
      break;
    }
  h.logical_cpus = int(::sysconf(_SC_NPROCESSORS_ONLN));
  __builtin_cpu_init();
#define CTX_FEATURE(name) \
  if (__builtin_cpu_supports(name)) h.cpu_features.push_back(name);
  CTX_FEATURE("sse4.2")
  CTX_FEATURE("avx")
  CTX_FEATURE("avx2")
  CTX_FEATURE("fma")
  {
    // clang < 15 rejects "f16c" in __builtin_cpu_supports: read CPUID leaf 1, ECX bit 29 instead.
    unsigned eax = 0, ebx = 0, ecx = 0, edx = 0;
    if (__get_cpuid(1, &eax, &ebx, &ecx, &edx) && (ecx & bit_F16C)) h.cpu_features.push_back("f16c");
  }
  CTX_FEATURE("avx512f")
  CTX_FEATURE("avx512bw")
  CTX_FEATURE("avx512vnni")
  CTX_FEATURE("avx512bf16")
#undef CTX_FEATURE
  h.memory_bytes = int64_t(::sysconf(_SC_PHYS_PAGES)) * int64_t(::sysconf(_SC_PAGE_SIZE));
  struct utsname u {};
  if (::uname(&u) == 0) h.os = std::string(u.sysname) + " " + u.release + " " + u.machine;
  return h;
}

int64_t peak_rss_bytes() {
  if (std::FILE* f = std::fopen("/proc/self/status", "r")) {
    char line[256];
    long long kib = -1;
    while (std::fgets(line, sizeof line, f))
      if (std::sscanf(line, "VmHWM: %lld kB", &kib) == 1) break;
    std::fclose(f);
    if (kib >= 0) return int64_t(kib) * 1024;
  }
  struct rusage ru {};
  if (::getrusage(RUSAGE_SELF, &ru) != 0) return 0;
  return int64_t(ru.ru_maxrss) * 1024;
}

void release_free_memory() { ::malloc_trim(0); }

bool reset_peak_rss() {
  std::FILE* f = std::fopen("/proc/self/clear_refs", "w");
  if (!f) return false;
  const bool ok = std::fputs("5", f) >= 0;
  return std::fclose(f) == 0 && ok;
}

}  // namespace ctx
