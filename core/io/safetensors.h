// Safetensors reading and writing (https://huggingface.co/docs/safetensors format):
//   u64 little-endian header length N | N bytes of JSON header | raw tensor bytes.
// The header maps tensor names to {dtype, shape, data_offsets: [begin, end)} relative to the byte
// buffer after the header; an optional "__metadata__" maps strings to strings.
//
// parse_safetensors() validates everything before any tensor is touched: header length within the
// file, valid UTF-8 JSON object, known dtypes, non-negative shapes without overflow, offsets inside
// the buffer, byte size == numel * dtype size, no two tensors overlapping. Any violation throws one
// ctx::Error naming the file (and tensor). It never reads outside [data, data + size).
#pragma once

#include <cstdint>
#include <map>
#include <span>
#include <string>
#include <vector>

#include "core/base/dtype.h"
#include "core/base/mapped_file.h"

namespace ctx {

struct TensorView {
  std::string name;
  DType dtype = DType::F32;
  std::vector<int64_t> shape;
  const uint8_t* data = nullptr;  // points into the mapped file
  size_t nbytes = 0;

  int64_t numel() const;
  std::string shape_str() const;  // "[2, 3]"
};

struct SafetensorsIndex {
  std::vector<TensorView> tensors;  // in file order of data offsets
  std::map<std::string, std::string> metadata;

  const TensorView* find(const std::string& name) const;
};

// Parses and validates a safetensors image held in memory. `source` names it in errors.
SafetensorsIndex parse_safetensors(const uint8_t* data, size_t size, const std::string& source);

// A memory-mapped safetensors file. Views stay valid while the object lives.
class SafetensorsFile {
 public:
  static SafetensorsFile open(const std::string& path);
  const SafetensorsIndex& index() const { return index_; }
  const std::string& path() const { return file_.path(); }

 private:
  MappedFile file_;
  SafetensorsIndex index_;
};

// One tensor to write; `data` must hold numel * dtype_size bytes.
struct TensorToWrite {
  std::string name;
  DType dtype;
  std::vector<int64_t> shape;
  std::span<const uint8_t> data;
};

// Writes a safetensors file (header padded with spaces to a multiple of 8 bytes, as the reference
// writer does). Throws ctx::Error when the file cannot be written.
void write_safetensors(const std::string& path, const std::vector<TensorToWrite>& tensors,
                       const std::map<std::string, std::string>& metadata = {});

}  // namespace ctx
