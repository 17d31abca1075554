// libFuzzer target for the safetensors header parser. Beyond "no crash, no sanitizer report", it
// checks the contract of parse_safetensors() (core/io/safetensors.h) on every image it accepts:
// each tensor lies inside the image, holds numel * dtype_size bytes, and no two non-empty tensors
// overlap. A rejected image must throw ctx::Error; any other exception escapes and crashes.
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>

#include "core/base/error.h"
#include "core/io/safetensors.h"

namespace {

[[noreturn]] void violated(const char* what, const std::string& name) {
  std::fprintf(stderr, "safetensors_fuzz: contract violated: %s (tensor '%s')\n", what, name.c_str());
  std::abort();
}

void check_index(const ctx::SafetensorsIndex& index, const uint8_t* data, size_t size) {
  const uint8_t* end = data + size;
  const ctx::TensorView* prev = nullptr;  // the non-empty tensor reaching furthest so far
  for (const auto& t : index.tensors) {
    if (t.data < data || t.data > end || t.nbytes > size_t(end - t.data))
      violated("tensor outside the image", t.name);
    if (uint64_t(t.numel()) * ctx::dtype_size(t.dtype) != t.nbytes) violated("nbytes != numel * dtype size", t.name);
    if (t.shape_str().empty() || index.find(t.name) == nullptr) violated("lookup", t.name);
    if (t.nbytes == 0) continue;
    if (prev && t.data < prev->data + prev->nbytes) violated("overlapping tensors", t.name);
    if (!prev || t.data + t.nbytes > prev->data + prev->nbytes) prev = &t;
  }
  for (size_t i = 1; i < index.tensors.size(); ++i)
    if (index.tensors[i].data < index.tensors[i - 1].data) violated("tensors not in data order", index.tensors[i].name);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  try {
    const ctx::SafetensorsIndex index = ctx::parse_safetensors(data, size, "fuzz");
    check_index(index, data, size);
  } catch (const ctx::Error&) {
    // A clear rejection is the expected outcome for most inputs.
  }
  return 0;
}
