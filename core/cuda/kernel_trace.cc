#include "core/cuda/kernel_trace.h"

#include <cupti.h>
#include <cxxabi.h>

#include <cstdlib>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "core/base/dynamic_library.h"
#include "core/base/error.h"
#include "core/cuda/cuda_check.h"

namespace ctx::cuda {

namespace {

struct CuptiApi {
  decltype(&cuptiActivityEnable) enable;
  decltype(&cuptiActivityDisable) disable;
  decltype(&cuptiActivityFlushAll) flush_all;
  decltype(&cuptiActivityGetNextRecord) next_record;
  decltype(&cuptiActivityGetNumDroppedRecords) dropped;
  decltype(&cuptiActivityRegisterCallbacks) register_callbacks;
  decltype(&cuptiGetResultString) result_string;
};

constexpr size_t kBufferBytes = size_t(8) << 20;

// What the callbacks collect (CUPTI may call them from its own thread).
std::mutex mu;
std::vector<KernelRecord> collected;
size_t dropped_records = 0;
bool tracing = false;

std::string demangle(const char* name) {
  if (!name) return "?";
  int status = 0;
  std::unique_ptr<char, void (*)(void*)> d(abi::__cxa_demangle(name, nullptr, nullptr, &status), std::free);
  return status == 0 && d ? std::string(d.get()) : std::string(name);
}

const CuptiApi& api();

void CUPTIAPI buffer_requested(uint8_t** buffer, size_t* size, size_t* max_records) {
  *buffer = static_cast<uint8_t*>(std::aligned_alloc(8, kBufferBytes));
  *size = *buffer ? kBufferBytes : 0;
  *max_records = 0;
}

void CUPTIAPI buffer_completed(CUcontext context, uint32_t stream, uint8_t* buffer, size_t size, size_t valid) {
  (void)size;
  std::vector<KernelRecord> got;
  CUpti_Activity* record = nullptr;
  while (api().next_record(buffer, valid, &record) == CUPTI_SUCCESS) {
    if (record->kind != CUPTI_ACTIVITY_KIND_CONCURRENT_KERNEL && record->kind != CUPTI_ACTIVITY_KIND_KERNEL) continue;
    // The fields read here sit at the same offsets in every kernel record version since 10 (newer
    // versions append fields).
    const auto* k = reinterpret_cast<const CUpti_ActivityKernel10*>(record);
    KernelRecord r;
    r.name = demangle(k->name);
    r.start_ns = k->start, r.end_ns = k->end;
    r.correlation = k->correlationId, r.graph_id = k->graphId, r.graph_node = k->graphNodeId;
    r.grid = int64_t(k->gridX) * k->gridY * k->gridZ, r.block = int64_t(k->blockX) * k->blockY * k->blockZ;
    r.registers = k->registersPerThread;
    got.push_back(std::move(r));
  }
  size_t lost = 0;
  api().dropped(context, stream, &lost);
  std::free(buffer);
  std::lock_guard<std::mutex> lock(mu);
  collected.insert(collected.end(), got.begin(), got.end());
  dropped_records += lost;
}

CuptiApi load() {
  // The loader's path first, then where CUDA toolkits keep CUPTI (outside the loader's usual path).
  const std::string name = "libcupti.so." + std::to_string(CUPTI_API_VERSION / 10000);
  std::vector<std::string> paths{name};
  for (const char* dir : {"/usr/local/cuda/extras/CUPTI/lib64/", "/usr/local/cuda/lib64/", "/usr/local/cuda/lib/"})
    paths.push_back(dir + name);
  const DynamicLibrary lib = DynamicLibrary::open(paths, "kernel trace");
  CuptiApi a{};
  lib.bind(a.enable, "cuptiActivityEnable");
  lib.bind(a.disable, "cuptiActivityDisable");
  lib.bind(a.flush_all, "cuptiActivityFlushAll");
  lib.bind(a.next_record, "cuptiActivityGetNextRecord");
  lib.bind(a.dropped, "cuptiActivityGetNumDroppedRecords");
  lib.bind(a.register_callbacks, "cuptiActivityRegisterCallbacks");
  lib.bind(a.result_string, "cuptiGetResultString");
  return a;  // the library stays loaded for the process's life
}

const CuptiApi& api() {
  static const CuptiApi a = load();
  return a;
}

// Throws `as` (Unsupported or Error) with CUPTI's message when `result` is not success.
template <class As>
void check(CUptiResult result, const char* what) {
  if (result == CUPTI_SUCCESS) return;
  const char* message = nullptr;
  api().result_string(result, &message);
  throw As(str_cat("kernel trace: ", what, ": ", message ? message : "unknown CUPTI error"));
}

}  // namespace

void start_kernel_trace() {
  const CuptiApi& a = api();
  {
    std::lock_guard<std::mutex> lock(mu);
    if (tracing) fail("kernel trace: a trace is already running");
    collected.clear(), dropped_records = 0;
  }
  static std::once_flag registered;
  std::call_once(registered, [&] { check<Unsupported>(a.register_callbacks(buffer_requested, buffer_completed), "cuptiActivityRegisterCallbacks"); });
  CTX_CUDA_CHECK(cudaDeviceSynchronize());  // only what is launched from now on
  check<Unsupported>(a.enable(CUPTI_ACTIVITY_KIND_CONCURRENT_KERNEL), "cuptiActivityEnable(CONCURRENT_KERNEL)");
  std::lock_guard<std::mutex> lock(mu);
  tracing = true;
}

std::vector<KernelRecord> stop_kernel_trace() {
  {
    std::lock_guard<std::mutex> lock(mu);
    if (!tracing) fail("kernel trace: no trace is running");
  }
  CTX_CUDA_CHECK(cudaDeviceSynchronize());
  const CuptiApi& a = api();
  check<Error>(a.disable(CUPTI_ACTIVITY_KIND_CONCURRENT_KERNEL), "cuptiActivityDisable");
  check<Error>(a.flush_all(CUPTI_ACTIVITY_FLAG_FLUSH_FORCED), "cuptiActivityFlushAll");
  std::lock_guard<std::mutex> lock(mu);
  tracing = false;
  if (dropped_records > 0) fail("kernel trace: CUPTI dropped ", dropped_records, " kernel records (buffers of ", kBufferBytes >> 20, " MiB)");
  return std::move(collected);
}

}  // namespace ctx::cuda
