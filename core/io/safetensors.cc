#include "core/io/safetensors.h"

#include <algorithm>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "core/base/error.h"

namespace ctx {
namespace {

constexpr uint64_t kMaxHeaderBytes = 100u << 20;  // the reference implementation's limit

bool mul_overflows(uint64_t a, uint64_t b, uint64_t* out) { return __builtin_mul_overflow(a, b, out); }

uint64_t read_u64_le(const uint8_t* p) {
  uint64_t v = 0;
  for (int i = 7; i >= 0; --i) v = (v << 8) | p[i];
  return v;
}

}  // namespace

int64_t TensorView::numel() const {
  // Unsigned (wrapping) product: a prefix such as [2^32, 2^31 + 1] of a valid empty shape
  // [2^32, 2^31 + 1, 0] exceeds int64 (parse_safetensors only rejects prefixes past 2^64), while
  // the full product of a validated view is at most its byte size, so the result is exact.
  uint64_t n = 1;
  for (int64_t d : shape) n *= uint64_t(d);
  return int64_t(n);
}

std::string TensorView::shape_str() const {
  std::string s = "[";
  for (size_t i = 0; i < shape.size(); ++i) s += (i ? ", " : "") + std::to_string(shape[i]);
  return s + "]";
}

const TensorView* SafetensorsIndex::find(const std::string& name) const {
  for (const auto& t : tensors)
    if (t.name == name) return &t;
  return nullptr;
}

SafetensorsIndex parse_safetensors(const uint8_t* data, size_t size, const std::string& source) {
  if (size < 8) fail(source, ": not a safetensors file: ", size, " bytes, need at least 8 for the header length");
  const uint64_t header_len = read_u64_le(data);
  if (header_len > kMaxHeaderBytes)
    fail(source, ": safetensors header length ", header_len, " exceeds the limit of ", kMaxHeaderBytes, " bytes");
  if (header_len > size - 8)
    fail(source, ": safetensors header length ", header_len, " is larger than the file (", size - 8,
         " bytes after the length field): file truncated?");
  const char* hbegin = reinterpret_cast<const char*>(data + 8);
  nlohmann::json header;
  try {
    header = nlohmann::json::parse(hbegin, hbegin + header_len);
  } catch (const nlohmann::json::exception& e) {
    fail(source, ": safetensors header is not valid JSON: ", e.what());
  }
  if (!header.is_object()) fail(source, ": safetensors header must be a JSON object");

  const uint8_t* buffer = data + 8 + header_len;
  const uint64_t buffer_size = size - 8 - header_len;
  SafetensorsIndex index;
  for (auto it = header.begin(); it != header.end(); ++it) {
    const std::string& name = it.key();
    const auto& v = it.value();
    if (name == "__metadata__") {
      if (!v.is_object()) fail(source, ": __metadata__ must be an object of strings");
      for (auto m = v.begin(); m != v.end(); ++m) {
        if (!m.value().is_string()) fail(source, ": __metadata__ value of '", m.key(), "' is not a string");
        index.metadata[m.key()] = m.value().get<std::string>();
      }
      continue;
    }
    const std::string where = source + ": tensor '" + name + "'";
    if (!v.is_object()) fail(where, ": entry must be an object with dtype, shape, data_offsets");
    auto dt = v.find("dtype");
    auto sh = v.find("shape");
    auto off = v.find("data_offsets");
    if (dt == v.end() || !dt->is_string()) fail(where, ": missing or non-string 'dtype'");
    if (sh == v.end() || !sh->is_array()) fail(where, ": missing or non-array 'shape'");
    if (off == v.end() || !off->is_array() || off->size() != 2) fail(where, ": 'data_offsets' must be [begin, end]");
    TensorView t;
    t.name = name;
    auto parsed = parse_dtype(dt->get<std::string>());
    if (!parsed) fail(where, ": unknown dtype '", dt->get<std::string>(), "'");
    t.dtype = *parsed;
    uint64_t numel = 1;
    for (const auto& d : *sh) {
      if (!d.is_number_integer() || d.get<int64_t>() < 0) fail(where, ": shape entries must be non-negative integers");
      uint64_t dim = d.get<uint64_t>();
      if (mul_overflows(numel, dim, &numel)) fail(where, ": shape overflows");
      t.shape.push_back(int64_t(dim));
    }
    for (const auto& o : *off)
      if (!o.is_number_unsigned() && !(o.is_number_integer() && o.get<int64_t>() >= 0))
        fail(where, ": data_offsets must be non-negative integers");
    const uint64_t begin = (*off)[0].get<uint64_t>(), end = (*off)[1].get<uint64_t>();
    if (begin > end) fail(where, ": data_offsets [", begin, ", ", end, "] has begin > end");
    if (end > buffer_size)
      fail(where, ": data_offsets end ", end, " is past the data buffer (", buffer_size, " bytes): file truncated?");
    uint64_t expect;
    if (mul_overflows(numel, dtype_size(t.dtype), &expect) || expect != end - begin)
      fail(where, ": holds ", end - begin, " bytes but dtype ", dtype_name(t.dtype), " x shape ", t.shape_str(),
           " needs ", numel * dtype_size(t.dtype));
    t.data = buffer + begin;
    t.nbytes = end - begin;
    index.tensors.push_back(std::move(t));
  }
  std::sort(index.tensors.begin(), index.tensors.end(),
            [](const TensorView& a, const TensorView& b) { return a.data < b.data || (a.data == b.data && a.nbytes < b.nbytes); });
  // Compare each non-empty tensor with the one reaching furthest so far, not just its neighbour:
  // an empty tensor sorted in between must not hide an overlap.
  const TensorView* reach = nullptr;
  for (const auto& b : index.tensors) {
    if (b.nbytes == 0) continue;
    if (reach && reach->data + reach->nbytes > b.data)
      fail(source, ": tensors '", reach->name, "' and '", b.name, "' overlap in the data buffer");
    if (!reach || b.data + b.nbytes > reach->data + reach->nbytes) reach = &b;
  }
  return index;
}

SafetensorsFile SafetensorsFile::open(const std::string& path) {
  SafetensorsFile f;
  f.file_ = MappedFile::open(path);
  f.index_ = parse_safetensors(f.file_.data(), f.file_.size(), path);
  return f;
}

void write_safetensors(const std::string& path, const std::vector<TensorToWrite>& tensors,
                       const std::map<std::string, std::string>& metadata) {
  nlohmann::ordered_json header = nlohmann::ordered_json::object();
  if (!metadata.empty()) header["__metadata__"] = metadata;
  uint64_t offset = 0;
  for (const auto& t : tensors) {
    uint64_t numel = 1;
    for (int64_t d : t.shape) numel *= uint64_t(d);
    CTX_CHECK(numel * dtype_size(t.dtype) == t.data.size(), "tensor ", t.name, " byte size mismatch");
    header[t.name] = {{"dtype", std::string(dtype_name(t.dtype))}, {"shape", t.shape},
                      {"data_offsets", {offset, offset + t.data.size()}}};
    offset += t.data.size();
  }
  std::string h = header.dump();
  h.append((8 - h.size() % 8) % 8, ' ');
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  if (!out) fail(path, ": cannot open for writing");
  uint8_t len[8];
  for (int i = 0; i < 8; ++i) len[i] = uint8_t(uint64_t(h.size()) >> (8 * i));
  out.write(reinterpret_cast<const char*>(len), 8);
  out.write(h.data(), std::streamsize(h.size()));
  for (const auto& t : tensors) out.write(reinterpret_cast<const char*>(t.data.data()), std::streamsize(t.data.size()));
  out.close();
  if (!out) fail(path, ": write failed (disk full?)");
}

}  // namespace ctx
