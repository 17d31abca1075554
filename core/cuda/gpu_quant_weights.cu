#include "core/cuda/gpu_quant_weights.h"

#include <bit>
#include <cstring>

#include "core/base/error.h"
#include "core/cuda/cuda_check.h"

namespace ctx::cuda {

namespace {

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

void append(std::vector<uint8_t>& dst, const PackedBuffer& b) {
  const auto* p = static_cast<const uint8_t*>(b.data);
  dst.insert(dst.end(), p, p + b.bytes);
}

template <class T>
DeviceBuffer<T> to_device(DeviceAllocator& alloc, const std::vector<T>& host) {
  DeviceBuffer<T> d(alloc, int64_t(host.size()));
  if (!host.empty()) CTX_CUDA_CHECK(cudaMemcpy(d.get(), host.data(), host.size() * sizeof(T), cudaMemcpyHostToDevice));
  return d;
}

bool same_layout(const PackedLayout& a, const PackedLayout& b) {
  return a.kind == b.kind && a.blocksize == b.blocksize && a.double_quant == b.double_quant &&
         a.code_values == b.code_values;
}

}  // namespace

PackedQuantHost pack_quantized(const std::vector<const QuantizedMatrix*>& parts, const std::string& what) {
  PackedQuantHost packed;
  QuantMatrixView& view = packed.view;
  std::vector<uint8_t>& codes = packed.codes;
  std::vector<uint8_t>& scales = packed.scales;
  CTX_CHECK(!parts.empty() && parts.size() <= size_t(kMaxQuantParts), what, ": ", parts.size(), " stacked parts");
  const QuantizedMatrix& first = *parts[0];
  const PackedLayout layout = first.packed_layout();
  const int64_t cols = first.cols();
  auto refuse = [&](const std::string& why) {
    throw Unsupported(str_cat("GPU engine: ", what, " (", first.format(), "): ", why));
  };
  if (layout.kind == PackedKind::kNone)
    refuse("no GPU kernel for this format (supported: int8, q8_0, q4_0, nf4, fp4)");
  int64_t rows = 0;
  for (const QuantizedMatrix* p : parts) {
    if (!same_layout(p->packed_layout(), layout)) refuse("stacked projections are quantized in different formats");
    CTX_CHECK(p->cols() == cols, what, ": stacked parts with ", p->cols(), " and ", cols, " columns");
    rows += p->rows();
  }
  view.rows = rows, view.cols = cols, view.groups = (cols + 31) / 32;
  const int64_t groups = view.groups;
  switch (layout.kind) {
    case PackedKind::kRowwiseInt8: {
      view.format = QuantFormat::kInt8;
      codes.assign(size_t(rows * groups * 32), 0);  // rows padded with zero codes to whole groups
      int64_t r0 = 0;
      for (const QuantizedMatrix* p : parts) {
        const auto buffers = p->buffers();
        const auto* q = static_cast<const uint8_t*>(find_buffer(buffers, "int8", *p, p->rows() * cols).data);
        for (int64_t r = 0; r < p->rows(); ++r) std::memcpy(codes.data() + (r0 + r) * groups * 32, q + r * cols, size_t(cols));
        append(scales, find_buffer(buffers, "absmax", *p, p->rows() * 4));
        r0 += p->rows();
      }
      break;
    }
    case PackedKind::kGgmlQ8_0:
    case PackedKind::kGgmlQ4_0: {
      view.format = layout.kind == PackedKind::kGgmlQ8_0 ? QuantFormat::kQ8_0 : QuantFormat::kQ4_0;
      const int64_t payload = layout.kind == PackedKind::kGgmlQ8_0 ? 32 : 16;
      CTX_CHECK(cols % 32 == 0, first.format(), " with ", cols, " columns");
      for (const QuantizedMatrix* p : parts) {
        const int64_t blocks = p->rows() * cols / 32;
        const auto* b = static_cast<const uint8_t*>(find_buffer(p->buffers(), "blocks", *p, blocks * (2 + payload)).data);
        for (int64_t i = 0; i < blocks; ++i) {  // {fp16 d, payload}: d to the scales, the codes to 16-byte slots
          const uint8_t* block = b + i * (2 + payload);
          scales.insert(scales.end(), block, block + 2);
          codes.insert(codes.end(), block + 2, block + 2 + payload);
        }
      }
      break;
    }
    case PackedKind::kBlockwise4Bit: {
      if (cols % 32 != 0)
        refuse(str_cat("the GPU kernel needs cols divisible by 32 (whole groups of 32 in one absmax block); the matrix has ",
                       cols));
      CTX_CHECK(layout.blocksize >= 32 && std::has_single_bit(uint64_t(layout.blocksize)) && layout.code_values,
                first.format());
      view.format = QuantFormat::kCode4;
      view.block_shift = std::countr_zero(uint64_t(layout.blocksize));
      view.double_quant = layout.double_quant;
      std::memcpy(view.code_values, layout.code_values, sizeof view.code_values);
      std::vector<float>& absmax2 = packed.absmax2;
      int64_t r0 = 0, blocks = 0;
      for (size_t i = 0; i < parts.size(); ++i) {
        const QuantizedMatrix& p = *parts[i];
        const auto buffers = p.buffers();
        const int64_t n = p.rows() * cols, nb = (n + layout.blocksize - 1) / layout.blocksize;
        append(codes, find_buffer(buffers, "codes", p, n / 2));
        QuantPart part{r0, blocks, int64_t(absmax2.size()), 0.f};
        if (!layout.double_quant) {
          append(scales, find_buffer(buffers, "absmax", p, nb * 4));
        } else {
          append(scales, find_buffer(buffers, "absmax_q", p, nb));
          const int64_t nested = (nb + 255) / 256;
          const auto* a2 = static_cast<const float*>(find_buffer(buffers, "absmax2", p, nested * 4).data);
          absmax2.insert(absmax2.end(), a2, a2 + nested);
          std::memcpy(&part.offset, find_buffer(buffers, "absmax_offset", p, 4).data, 4);
        }
        view.parts[i] = part;
        r0 += p.rows(), blocks += nb;
      }
      view.num_parts = int(parts.size());
      if (layout.double_quant) {
        CTX_CHECK(layout.dynamic_map, first.format(), ": double quantization without its map");
        packed.dynamic_map.assign(layout.dynamic_map, layout.dynamic_map + 256);
      }
      break;
    }
    case PackedKind::kNone:
      break;
  }
  CTX_CHECK(int64_t(codes.size()) == rows * groups * (view.format == QuantFormat::kInt8 || view.format == QuantFormat::kQ8_0 ? 32 : 16),
            what, ": packed codes of ", codes.size(), " bytes");
  return packed;
}

GpuQuantMatrix::GpuQuantMatrix(DeviceAllocator& alloc, const std::vector<const QuantizedMatrix*>& parts,
                               const std::string& what) {
  const PackedQuantHost packed = pack_quantized(parts, what);
  view_ = packed.view;
  codes_ = to_device(alloc, packed.codes), scales_ = to_device(alloc, packed.scales);
  view_.codes = codes_.get(), view_.scales = scales_.get();
  if (view_.double_quant) {
    absmax2_ = to_device(alloc, packed.absmax2), map_ = to_device(alloc, packed.dynamic_map);
    view_.absmax2 = absmax2_.get(), view_.dynamic_map = map_.get();
  }
}

}  // namespace ctx::cuda
