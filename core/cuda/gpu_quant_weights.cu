#include "core/cuda/gpu_quant_weights.h"

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstring>
#include <functional>

#include "core/base/dtype.h"
#include "core/base/error.h"
#include "core/cuda/cuda_check.h"
#include "core/cuda/kernels/quant_formats.cuh"

namespace ctx::cuda {

namespace {

using namespace quant_device;

const PackedBuffer& find_buffer(const std::vector<PackedBuffer>& buffers, const char* name, const QuantizedMatrix& m,
                                int64_t expected_bytes) {
  for (const PackedBuffer& b : buffers)
    if (b.name == name) {
      CTX_CHECK(b.bytes == expected_bytes, m.format(), " buffer '", name, "' holds ", b.bytes, " bytes, expected ",
                expected_bytes);
      return b;
    }
  CTX_CHECK(false, m.format(), " has no buffer '", name, "'");
  return buffers.front();
}

template <class T>
DeviceBuffer<T> to_device(DeviceAllocator& alloc, const std::vector<T>& host) {
  DeviceBuffer<T> d(alloc, int64_t(host.size()));
  if (!host.empty()) CTX_CUDA_CHECK(cudaMemcpy(d.get(), host.data(), host.size() * sizeof(T), cudaMemcpyHostToDevice));
  return d;
}

bool same_layout(const PackedLayout& a, const PackedLayout& b) {
  return a.kind == b.kind && a.blocksize == b.blocksize && a.double_quant == b.double_quant &&
         a.code_values == b.code_values && a.outlier_threshold == b.outlier_threshold;
}

// One part as the packer reads it: the code (int8 value, or 4-bit code 0..15) and the scale of
// element (r, c) of the part, r < rows, c < cols.
struct PartSource {
  int64_t rows = 0;
  std::function<int(int64_t r, int64_t c)> code;
  std::function<float(int64_t r, int64_t c)> scale;  // the row's (int8) or the element's group/block multiplier
  std::function<uint16_t(int64_t r, int64_t g)> half_scale;  // q8_0 / q4_0: group g's fp16 d bits
};

// Codes of every (tile, chunk) in fragment order, F's slot map; scales by `put_scales`.
template <class F>
void pack_codes(const QuantMatrixView& v, const std::vector<PartSource>& parts, std::vector<uint8_t>& codes) {
  const int64_t block_bytes = int64_t(kLanes) * F::kLaneBytes;
  codes.assign(size_t(v.tiles * v.chunks * block_bytes), 0);
  // Byte offset and shift of element (i, j) of a tile's chunk.
  int offset[16][64], shift[16][64];
  for (int i = 0; i < 16; ++i)
    for (int j = 0; j < 64; ++j) {
      const Slot p = F::slot(i, j);
      const bool nibble = F::kLaneBytes == 16;
      offset[i][j] = int(lane_byte_offset(p.lane, nibble ? p.slot / 2 : p.slot));
      shift[i][j] = nibble ? 4 * (p.slot % 2) : 0;
    }
  for (int k = 0; k < v.num_parts; ++k) {
    const PartSource& src = parts[size_t(k)];
    const int64_t tiles = (src.rows + 15) / 16;
#pragma omp parallel for schedule(static)
    for (int64_t lt = 0; lt < tiles; ++lt) {
      uint8_t* tile = codes.data() + (v.parts[k].tile0 + lt) * v.chunks * block_bytes;
      for (int i = 0; i < 16 && lt * 16 + i < src.rows; ++i)
        for (int64_t c = 0; c < v.cols; ++c) {
          const int code = src.code(lt * 16 + i, c);
          const int j = int(c % 64);
          uint8_t& dst = tile[(c / 64) * block_bytes + offset[i][j]];
          dst = F::kLaneBytes == 16 ? uint8_t(dst | (code << shift[i][j])) : uint8_t(code);
        }
    }
  }
}

}  // namespace

PackedQuantHost pack_quantized(const std::vector<const QuantizedMatrix*>& parts, const std::string& what) {
  PackedQuantHost packed;
  QuantMatrixView& view = packed.view;
  CTX_CHECK(!parts.empty() && parts.size() <= size_t(kMaxQuantParts), what, ": ", parts.size(), " stacked parts");
  const QuantizedMatrix& first = *parts[0];
  const PackedLayout layout = first.packed_layout();
  const int64_t cols = first.cols();
  auto refuse = [&](const std::string& why) {
    throw Unsupported(str_cat("GPU engine: ", what, " (", first.format(), "): ", why));
  };
  if (layout.kind == PackedKind::kNone)
    refuse("no GPU kernel for this format (supported: int8, llm_int8, q8_0, q4_0, nf4, fp4)");
  int64_t rows = 0, tiles = 0;
  for (size_t k = 0; k < parts.size(); ++k) {
    const QuantizedMatrix* p = parts[k];
    if (!same_layout(p->packed_layout(), layout)) refuse("stacked projections are quantized in different formats");
    CTX_CHECK(p->cols() == cols, what, ": stacked parts with ", p->cols(), " and ", cols, " columns");
    view.parts[k] = QuantPart{rows, p->rows(), tiles};
    rows += p->rows(), tiles += (p->rows() + 15) / 16;
  }
  view.num_parts = int(parts.size());
  view.rows = rows, view.cols = cols, view.chunks = (cols + 63) / 64, view.tiles = tiles;
  const bool rowwise_int8 = layout.kind == PackedKind::kRowwiseInt8 || layout.kind == PackedKind::kLlmInt8;
  if (!rowwise_int8 && cols % 32 != 0)
    refuse(str_cat("the GPU kernel needs cols divisible by 32 (whole groups of 32 in one scale block); the matrix has ",
                   cols));
  std::vector<PartSource> src(parts.size());
  const int64_t groups = cols / 32;
  for (size_t k = 0; k < parts.size(); ++k) {
    const QuantizedMatrix& p = *parts[k];
    const auto buffers = p.buffers();
    src[k].rows = p.rows();
    switch (layout.kind) {
      case PackedKind::kRowwiseInt8:
      case PackedKind::kLlmInt8: {
        const auto* q = static_cast<const int8_t*>(find_buffer(buffers, "int8", p, p.rows() * cols).data);
        const auto* amax = static_cast<const float*>(find_buffer(buffers, "absmax", p, p.rows() * 4).data);
        src[k].code = [q, cols](int64_t r, int64_t c) { return int(uint8_t(q[r * cols + c])); };
        src[k].scale = [amax](int64_t r, int64_t) { return amax[r] / 127.f; };  // the CPU's scale
        break;
      }
      case PackedKind::kGgmlQ8_0:
      case PackedKind::kGgmlQ4_0: {
        const bool q8 = layout.kind == PackedKind::kGgmlQ8_0;
        const int64_t bytes = q8 ? 34 : 18;
        const auto* b = static_cast<const uint8_t*>(find_buffer(buffers, "blocks", p, p.rows() * groups * bytes).data);
        src[k].code = [b, bytes, groups, q8](int64_t r, int64_t c) {
          const uint8_t* qs = b + (r * groups + c / 32) * bytes + 2;
          const int j = int(c % 32);
          return q8 ? int(qs[j]) : (j < 16 ? qs[j] & 0xF : qs[j - 16] >> 4);
        };
        src[k].half_scale = [b, bytes, groups](int64_t r, int64_t g) {
          uint16_t d;
          std::memcpy(&d, b + (r * groups + g) * bytes, 2);
          return d;
        };
        break;
      }
      case PackedKind::kBlockwise4Bit: {
        CTX_CHECK(layout.blocksize >= 32 && std::has_single_bit(uint64_t(layout.blocksize)) && layout.code_values,
                  first.format());
        const int64_t n = p.rows() * cols, nb = (n + layout.blocksize - 1) / layout.blocksize;
        const auto* c4 = static_cast<const uint8_t*>(find_buffer(buffers, "codes", p, n / 2).data);
        src[k].code = [c4, cols](int64_t r, int64_t c) {
          const int64_t e = r * cols + c;
          return (c4[e / 2] >> (e % 2 ? 0 : 4)) & 0xF;
        };
        const int64_t bs = layout.blocksize;
        if (!layout.double_quant) {
          const auto* amax = static_cast<const float*>(find_buffer(buffers, "absmax", p, nb * 4).data);
          src[k].scale = [amax, cols, bs](int64_t r, int64_t c) { return amax[(r * cols + c) / bs]; };
        } else {
          CTX_CHECK(layout.dynamic_map, first.format(), ": double quantization without its map");
          const auto* aq = static_cast<const uint8_t*>(find_buffer(buffers, "absmax_q", p, nb).data);
          const auto* a2 = static_cast<const float*>(find_buffer(buffers, "absmax2", p, (nb + 255) / 256 * 4).data);
          float offset;
          std::memcpy(&offset, find_buffer(buffers, "absmax_offset", p, 4).data, 4);
          const float* map = layout.dynamic_map;
          src[k].scale = [aq, a2, map, offset, cols, bs](int64_t r, int64_t c) {
            const int64_t blk = (r * cols + c) / bs;
            return std::fma(map[aq[blk]], a2[blk / 256], offset);  // as the CPU's block_absmax()
          };
        }
        break;
      }
      case PackedKind::kNone:
        break;
    }
  }
  // Scales in tile order.
  auto scale_at = [&](size_t k, int64_t r, int64_t c) { return src[k].scale(r, c); };
  auto for_rows = [&](auto&& f) {  // f(part, local row, tile, i)
    for (int k = 0; k < view.num_parts; ++k)
      for (int64_t r = 0; r < src[size_t(k)].rows; ++r) f(size_t(k), r, view.parts[k].tile0 + r / 16, int(r % 16));
  };
  switch (layout.kind) {
    case PackedKind::kRowwiseInt8:
    case PackedKind::kLlmInt8: {
      view.format = QuantFormat::kInt8;
      view.int8_activations = layout.kind == PackedKind::kLlmInt8;
      view.outlier_threshold = layout.outlier_threshold;
      pack_codes<Int8Format>(view, src, packed.codes);
      std::vector<float> s(size_t(tiles * 16), 0.f);
      for_rows([&](size_t k, int64_t r, int64_t tile, int i) { s[size_t(tile * 16 + i)] = scale_at(k, r, 0); });
      packed.scales.resize(s.size() * 4);
      std::memcpy(packed.scales.data(), s.data(), packed.scales.size());
      break;
    }
    case PackedKind::kGgmlQ8_0:
    case PackedKind::kGgmlQ4_0: {
      if (layout.kind == PackedKind::kGgmlQ8_0) {
        view.format = QuantFormat::kQ8_0;
        pack_codes<Q8_0Format>(view, src, packed.codes);
      } else {
        view.format = QuantFormat::kQ4_0;
        pack_codes<Q4_0Format>(view, src, packed.codes);
      }
      std::vector<uint16_t> s(size_t(tiles * view.chunks * 32), 0);
      for_rows([&](size_t k, int64_t r, int64_t tile, int i) {
        for (int64_t g = 0; g < groups; ++g)
          s[size_t(((tile * view.chunks + g / 2) * 8 + i % 8) * 4 + (i / 8) * 2 + g % 2)] = src[k].half_scale(r, g);
      });
      packed.scales.resize(s.size() * 2);
      std::memcpy(packed.scales.data(), s.data(), packed.scales.size());
      break;
    }
    case PackedKind::kBlockwise4Bit: {
      std::memcpy(view.code_values, layout.code_values, sizeof view.code_values);
      view.scale_per_chunk = layout.blocksize >= 64 && cols % 64 == 0;
      // Code values that are all bf16 (codes=bfloat16) take one k slot per weight.
      const bool bf16_values = std::all_of(std::begin(view.code_values), std::end(view.code_values),
                                           [](float v) { return bf16_to_f32(f32_to_bf16(v)) == v; });
      if (bf16_values) {
        view.format = QuantFormat::kCode4Bf16;
        pack_codes<Code4PairFormat>(view, src, packed.codes);
      } else {
        view.format = QuantFormat::kCode4;
        pack_codes<Code4Format>(view, src, packed.codes);
      }
      const int per = view.scale_per_chunk ? 2 : 4;
      std::vector<float> s(size_t(tiles * view.chunks * 8 * per), 0.f);
      for_rows([&](size_t k, int64_t r, int64_t tile, int i) {
        for (int64_t g = 0; g < groups; ++g) {
          const int64_t at = (tile * view.chunks + g / 2) * 8 + i % 8;
          if (view.scale_per_chunk) {
            s[size_t(at * 2 + i / 8)] = scale_at(k, r, 64 * (g / 2));
          } else {
            s[size_t(at * 4 + (i / 8) * 2 + g % 2)] = scale_at(k, r, 32 * g);
          }
        }
      });
      packed.scales.resize(s.size() * 4);
      std::memcpy(packed.scales.data(), s.data(), packed.scales.size());
      break;
    }
    case PackedKind::kNone:
      break;
  }
  return packed;
}

GpuQuantMatrix::GpuQuantMatrix(DeviceAllocator& alloc, const std::vector<const QuantizedMatrix*>& parts,
                               const std::string& what) {
  const PackedQuantHost packed = pack_quantized(parts, what);
  view_ = packed.view;
  codes_ = to_device(alloc, packed.codes), scales_ = to_device(alloc, packed.scales);
  view_.codes = codes_.get(), view_.scales = scales_.get();
}

}  // namespace ctx::cuda
