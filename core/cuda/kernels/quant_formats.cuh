// The device layout of quantized weights (quant_kernels.h) and its per-format decoding into the
// tensor-core fragments of the GEMV (internal to core/cuda/kernels). Everything here also compiles for
// the host (CTX_HD), so that gpu_quant_weights.cu packs with the same maps and
// tests/gpu/gpu_quant_layout_test.cu can emulate the kernel's fragments without a GPU.
//
// The GEMV multiplies a tile of 16 rows by the input with mma.m16n8k16 (bf16 in, float32 out; every
// column of B holds the same input, so every column of C the same dot product). PTX fragment layout,
// lane l, g = l / 4, t = l % 4:
//   A register a (0..3): row g + 8 (a & 1), k = 2t + 8 (a >> 1) + {0, 1} (low half first)
//   B register b (0, 1): k = 2t + 8b + {0, 1}
//   C c0, c1: row g; c2, c3: row g + 8
// Each format policy F gives
//   kLaneBytes   codes per lane and chunk (16: 4-bit, 32: 8-bit); kSteps k16 steps per chunk
//   kDup         each weight takes two k slots (its value as bf16 hi + lo), B holds x twice
//   slot(i, j)   the lane and code slot of element (row i, column j) of a chunk
//   column(s, t, b, e)            the chunk column of half e of B register b of step s of lane t
//   b_regs(piece, s, b0, b1)      B registers of step s from the lane's 16-byte input piece
//   scale_bytes/scale_ptr/decode_scales   a lane's scales of a chunk (its rows g, g + 8)
//   fragment(codes, s, lut, lane4, a)   A registers of step s from the lane's codes (bf16x2 bits);
//                lut, lane4 = 4 * lane: nf4/fp4's table (Code4Format::kTableWords words)
//   value(view, tile, i, col, code_values)   the element's float value, exactly the CPU plugin's code *
//                scale (code_values: view.code_values or a copy of them)
//   kMaxScaleBytes   a lane's scale bytes per chunk at most (0: int8's row scales, in the epilogue)
//   kLutWords, fill_lut(view, lut, tid, threads)   the shared-memory table fragment() reads (0 words:
//                none), filled by the block's threads tid = 0 .. threads - 1
// Formats with exact small-integer codes (int8, q8_0: -127..127; q4_0: -8..7) become bf16 exactly, so
// the tensor cores' products are exact and only float32 sums remain. nf4/fp4 code values are floats;
// a weight is the pair (hi, lo) = (bf16(v), bf16(v - hi)), |hi + lo - v| <= 2^-18 |v|, multiplied with
// x in two k slots (kDup): the 16 pairs sit in a shared-memory table, one copy per bank. When every
// code value is a bf16 (the plugins' codes=bfloat16) the products are exact with one k slot per weight
// (Code4PairFormat): a register's two codes are one byte, looked up in a table of the 256 bytes' bf16
// pairs, one copy per bank.
#pragma once

#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include <cstdint>
#include <cstring>

#define CTX_HD __host__ __device__

#include "core/cuda/kernels/mma_sm80.cuh"
#include "core/cuda/kernels/quant_kernels.h"

namespace ctx::cuda::quant_device {

inline constexpr int kLanes = 32;

CTX_HD inline float bits_float(uint32_t u) {
#if defined(__CUDA_ARCH__)
  return __uint_as_float(u);
#else
  float f;
  std::memcpy(&f, &u, 4);
  return f;
#endif
}
CTX_HD inline uint32_t float_bits(float f) {
#if defined(__CUDA_ARCH__)
  return __float_as_uint(f);
#else
  uint32_t u;
  std::memcpy(&u, &f, 4);
  return u;
#endif
}

// __byte_perm(a, b, sel) for selectors 0..7 (no sign replication).
CTX_HD inline uint32_t byte_perm(uint32_t a, uint32_t b, uint32_t sel) {
#if defined(__CUDA_ARCH__)
  return __byte_perm(a, b, sel);
#else
  const uint64_t src = uint64_t(a) | uint64_t(b) << 32;
  uint32_t r = 0;
  for (int i = 0; i < 4; ++i) r |= uint32_t((src >> (8 * ((sel >> (4 * i)) & 7))) & 0xFF) << (8 * i);
  return r;
#endif
}

// bf16 bits of a finite float, rounded to nearest even.
CTX_HD inline uint32_t bf16_bits(float v) {
  const uint32_t u = float_bits(v);
  return (u + 0x7FFFu + ((u >> 16) & 1u)) >> 16;
}

// The nf4/fp4 table entry of a code value: (hi, lo) bf16 bits in the low and high half.
CTX_HD inline uint32_t code_entry(float v) {
  const uint32_t hi = bf16_bits(v);
  return hi | bf16_bits(v - bits_float(hi << 16)) << 16;
}

CTX_HD inline float half_value(uint16_t h) {
#if defined(__CUDA_ARCH__)
  return __half2float(__ushort_as_half(h));
#else
  __half_raw raw;
  raw.x = h;
  return __half2float(__half(raw));
#endif
}

// Row r of the stack: its tile and row within the tile.
struct RowPos {
  int64_t tile = 0;
  int i = 0;
};
CTX_HD inline RowPos row_pos(const QuantMatrixView& w, int64_t r) {
  RowPos p;
#pragma unroll
  for (int k = 0; k < kMaxQuantParts; ++k) {
    const QuantPart& part = w.parts[k];
    if (k < w.num_parts && r >= part.row0) p = RowPos{part.tile0 + (r - part.row0) / 16, int((r - part.row0) % 16)};
  }
  return p;
}

// Tile T: the stack row of its row 0 and how many of its 16 rows exist (the rest is padding).
struct TileRows {
  int64_t row0 = 0;
  int valid = 0;
};
CTX_HD inline TileRows tile_rows(const QuantMatrixView& w, int64_t tile) {
  TileRows t;
#pragma unroll
  for (int k = 0; k < kMaxQuantParts; ++k) {
    const QuantPart& part = w.parts[k];
    if (k < w.num_parts && tile >= part.tile0) {
      const int64_t local = (tile - part.tile0) * 16;
      t = TileRows{part.row0 + local, int(part.rows - local < 16 ? part.rows - local : 16)};
    }
  }
  return t;
}

struct Slot {
  int lane = 0, slot = 0;
};

// A (tile, chunk) holds kLanes * lane_bytes code bytes as lane_bytes / 16 pieces of kLanes x 16 bytes:
// byte b of lane l's codes sits at (b / 16) * 512 + 16 l + b % 16, so that one 16-byte access per lane
// (the GEMV's cp.async) reads 512 contiguous bytes, whole 32-byte sectors.
CTX_HD inline int64_t lane_byte_offset(int lane, int byte) { return (byte / 16) * (kLanes * 16) + lane * 16 + byte % 16; }
// Piece v (16 bytes) of lane l's codes of a chunk.
CTX_HD inline const uint8_t* lane_piece(const QuantMatrixView& w, int64_t tile, int64_t chunk, int lane, int lane_bytes,
                                        int v) {
  return w.codes + (tile * w.chunks + chunk) * kLanes * lane_bytes + lane_byte_offset(lane, 16 * v);
}
// Lane l's codes of a chunk as the GEMV holds them in registers (F::kLaneBytes / 4 words).
template <int kLaneBytes>
CTX_HD inline void load_lane_codes(const QuantMatrixView& w, int64_t tile, int64_t chunk, int lane,
                                   uint32_t (&codes)[kLaneBytes / 4]) {
  for (int v = 0; v < kLaneBytes / 16; ++v) std::memcpy(codes + 4 * v, lane_piece(w, tile, chunk, lane, kLaneBytes, v), 16);
}
// Code slot `slot` (F::code's argument) of element (i, col) of a tile: the lane's codes gathered.
// The 16-byte piece holding it is read whole (8-bit slots are bytes: the second piece holds 16..31; a
// 4-bit format has one piece).
template <class F>
CTX_HD inline int element_code(const QuantMatrixView& w, int64_t tile, int64_t col, Slot p) {
  const int v = F::kLaneBytes == 32 ? p.slot / 16 : 0;
  const uint8_t* src = lane_piece(w, tile, col / 64, p.lane, F::kLaneBytes, v);  // 16-byte aligned
#if defined(__CUDA_ARCH__)
  const uint4 piece = *reinterpret_cast<const uint4*>(src);
#else
  uint4 piece;
  std::memcpy(&piece, src, 16);
#endif
  return F::code(reinterpret_cast<const uint8_t*>(&piece), p.slot - 16 * v);
}

// The k order inside a chunk is chosen so that lane t's inputs of group grp (columns 32 grp .. + 31)
// are the 8 consecutive columns 32 grp + 8 t .. + 7: one 16-byte load of the input as it is (bf16,
// natural order) gives all of the lane's B registers of the group.
CTX_HD inline int64_t x_piece_index(int64_t chunk, int grp, int t) { return chunk * 8 + grp * 4 + t; }  // in uint4

// Integer formats, steps 2 grp + h of group grp: B register b of step s of lane t holds columns
// 32 (s / 2) + 8 t + 4 (s % 2) + 2 b + {0, 1}; element (i, j) is in register a = 2 b + i / 8 of lane
// 4 (i % 8) + t, half j % 2.
struct IntSlot {
  int lane, s, a, e;
};
CTX_HD inline IntSlot int_slot(int i, int j) {
  const int grp = j / 32, jj = j % 32, t = jj / 8, h = (jj % 8) / 4, b = (jj % 4) / 2;
  return IntSlot{4 * (i % 8) + t, 2 * grp + h, 2 * b + i / 8, jj % 2};
}
CTX_HD inline int int_column(int s, int t, int b, int e) { return 32 * (s / 2) + 8 * t + 4 * (s % 2) + 2 * b + e; }
CTX_HD inline void int_b_regs(const uint4& piece, int s, uint32_t& b0, uint32_t& b1) {
  b0 = s % 2 ? piece.z : piece.x;
  b1 = s % 2 ? piece.w : piece.y;
}

// fp16 d per (row, group), [tiles][chunks][8][2][2]: 8 bytes per lane and chunk.
CTX_HD inline const uint8_t* half_scale_ptr(const QuantMatrixView& w, int64_t tile, int64_t chunk, int g) {
  return static_cast<const uint8_t*>(w.scales) + ((tile * w.chunks + chunk) * 8 + g) * 8;
}
CTX_HD inline void decode_half_scales(const uint32_t (&raw)[4], float (&s)[2][2]) {
  s[0][0] = half_value(uint16_t(raw[0])), s[0][1] = half_value(uint16_t(raw[0] >> 16));
  s[1][0] = half_value(uint16_t(raw[1])), s[1][1] = half_value(uint16_t(raw[1] >> 16));
}

// A lane's scale bytes of a chunk (bytes 8 or 16; 16-byte aligned pieces of 8 are 8-byte aligned).
CTX_HD inline void load_scale_bytes(const uint8_t* p, int bytes, uint32_t (&raw)[4]) {
  if (bytes == 16) {
    const uint4 v = *reinterpret_cast<const uint4*>(p);
    raw[0] = v.x, raw[1] = v.y, raw[2] = v.z, raw[3] = v.w;
  } else {
    const uint2 v = *reinterpret_cast<const uint2*>(p);
    raw[0] = v.x, raw[1] = v.y, raw[2] = raw[3] = 0u;
  }
}

// Every policy's scales of the lane's rows g, g + 8 in a chunk, s[row half][group].
template <class F>
CTX_HD inline void chunk_scales(const QuantMatrixView& w, int64_t tile, int64_t chunk, int g, float (&s)[2][2]) {
  uint32_t raw[4] = {0u, 0u, 0u, 0u};
  if (F::scale_bytes(w) > 0) load_scale_bytes(F::scale_ptr(w, tile, chunk, g), F::scale_bytes(w), raw);
  F::decode_scales(w, raw, s);
}

// Formats whose fragments need no shared-memory table (kLutWords 0).
struct NoLut {
  static constexpr int kLutWords = 0;
  CTX_HD static void fill_lut(const QuantMatrixView&, uint32_t*, int, int) {}
};

// int8 codes (int8 and q8_0): step s in bytes 8s .. 8s + 7, register a in bytes 2a, 2a + 1.
struct Int8Codes : NoLut {
  static constexpr int kLaneBytes = 32, kSteps = 4;
  static constexpr bool kDup = false;
  CTX_HD static Slot slot(int i, int j) {
    const IntSlot p = int_slot(i, j);
    return Slot{p.lane, 8 * p.s + 2 * p.a + p.e};
  }
  CTX_HD static int column(int s, int t, int b, int e) { return int_column(s, t, b, e); }
  CTX_HD static void b_regs(const uint4& piece, int s, uint32_t& b0, uint32_t& b1) { int_b_regs(piece, s, b0, b1); }
  CTX_HD static int code(const uint8_t* c, int slot) { return int(int8_t(c[slot])); }
  CTX_HD static void fragment(const uint32_t (&c)[8], int s, const uint32_t*, uint32_t, uint32_t (&a)[4]) {
#pragma unroll
    for (int h = 0; h < 2; ++h) {
      const uint32_t u = c[2 * s + h] ^ 0x80808080u;  // code + 128 as unsigned bytes
      uint32_t f[4];
#pragma unroll
      for (int m = 0; m < 4; ++m)  // the float 2^23 + byte, minus 2^23 + 128: exact, zero low half
        f[m] = float_bits(bits_float(byte_perm(u, 0x4B000000u, 0x7540u | uint32_t(m))) - 8388736.f);
      a[2 * h] = byte_perm(f[0], f[1], 0x7632u);
      a[2 * h + 1] = byte_perm(f[2], f[3], 0x7632u);
    }
  }
};

struct Int8Format : Int8Codes {
  static constexpr bool kRowScale = true;
  static constexpr int kMaxScaleBytes = 0;
  CTX_HD static int scale_bytes(const QuantMatrixView&) { return 0; }
  CTX_HD static const uint8_t* scale_ptr(const QuantMatrixView& w, int64_t, int64_t, int) {
    return static_cast<const uint8_t*>(w.scales);
  }
  CTX_HD static void decode_scales(const QuantMatrixView&, const uint32_t (&)[4], float (&s)[2][2]) {
    s[0][0] = s[0][1] = s[1][0] = s[1][1] = 1.f;
  }
  CTX_HD static float row_scale(const QuantMatrixView& w, int64_t tile, int i) {
    return static_cast<const float*>(w.scales)[tile * 16 + i];
  }
  CTX_HD static float value(const QuantMatrixView& w, int64_t tile, int i, int64_t col, const float*) {
    const Slot p = slot(i, int(col % 64));
    return float(element_code<Int8Format>(w, tile, col, p)) * row_scale(w, tile, i);
  }
};

// q8_0 and q4_0 (Self): an fp16 scale per 32 columns of each row (half_scale_ptr, decode_half_scales),
// and a weight's value as code x its group's scale.
template <class Self>
struct HalfScaledGroups {
  static constexpr bool kRowScale = false;
  static constexpr int kMaxScaleBytes = 8;
  CTX_HD static int scale_bytes(const QuantMatrixView&) { return 8; }
  CTX_HD static const uint8_t* scale_ptr(const QuantMatrixView& w, int64_t tile, int64_t chunk, int g) {
    return half_scale_ptr(w, tile, chunk, g);
  }
  CTX_HD static void decode_scales(const QuantMatrixView&, const uint32_t (&raw)[4], float (&s)[2][2]) {
    decode_half_scales(raw, s);
  }
  CTX_HD static float value(const QuantMatrixView& w, int64_t tile, int i, int64_t col, const float*) {
    const Slot p = Self::slot(i, int(col % 64));
    float s[2][2];
    chunk_scales<Self>(w, tile, col / 64, i % 8, s);
    return float(element_code<Self>(w, tile, col, p)) * s[i / 8][(col % 64) / 32];
  }
};

struct Q8_0Format : Int8Codes, HalfScaledGroups<Q8_0Format> {};

// q4_0: step s in word s; register a holds nibbles a (low half) and a + 4 (high half), so one mask and
// the bf16 128 + q magic give both: (128 + q) - 136 = q - 8, exact in bf16.
struct Q4_0Format : HalfScaledGroups<Q4_0Format>, NoLut {
  static constexpr int kLaneBytes = 16, kSteps = 4;
  static constexpr bool kDup = false;
  CTX_HD static Slot slot(int i, int j) {
    const IntSlot p = int_slot(i, j);
    return Slot{p.lane, 8 * p.s + p.a + 4 * p.e};  // nibble index: byte slot / 2, high nibble if odd
  }
  CTX_HD static int column(int s, int t, int b, int e) { return int_column(s, t, b, e); }
  CTX_HD static void b_regs(const uint4& piece, int s, uint32_t& b0, uint32_t& b1) { int_b_regs(piece, s, b0, b1); }
  CTX_HD static int code(const uint8_t* c, int slot) { return int((c[slot / 2] >> (4 * (slot % 2))) & 0xF) - 8; }
  CTX_HD static void fragment(const uint32_t (&c)[4], int s, const uint32_t*, uint32_t, uint32_t (&a)[4]) {
#pragma unroll
    for (int r = 0; r < 4; ++r) {
#if defined(__CUDA_ARCH__)
      const uint32_t v = mma::and_or<0x000F000Fu, 0x43004300u>(c[s] >> (4 * r));  // one LOP3, not two
      const __nv_bfloat162 d = __hsub2(*reinterpret_cast<const __nv_bfloat162*>(&v), __floats2bfloat162_rn(136.f, 136.f));
      a[r] = *reinterpret_cast<const uint32_t*>(&d);
#else
      const uint32_t v = ((c[s] >> (4 * r)) & 0x000F000Fu) | 0x43004300u;
      const float lo = bits_float(v << 16) - 136.f, hi = bits_float(v & 0xFFFF0000u) - 136.f;
      a[r] = (float_bits(lo) >> 16) | (float_bits(hi) & 0xFFFF0000u);
#endif
    }
  }
};

// nf4/fp4 (Self): the float absmax per (row, chunk) [tiles][chunks][8][2] (8 bytes per lane), or per
// (row, group) [..][2][2] (16), and a weight's value as code_values[code] x its scale.
template <class Self>
struct Code4Scales {
  static constexpr bool kRowScale = false;
  static constexpr int kMaxScaleBytes = 16;
  CTX_HD static int scale_bytes(const QuantMatrixView& w) { return w.scale_per_chunk ? 8 : 16; }
  CTX_HD static const uint8_t* scale_ptr(const QuantMatrixView& w, int64_t tile, int64_t chunk, int g) {
    return static_cast<const uint8_t*>(w.scales) + ((tile * w.chunks + chunk) * 8 + g) * scale_bytes(w);
  }
  CTX_HD static void decode_scales(const QuantMatrixView& w, const uint32_t (&raw)[4], float (&s)[2][2]) {
    if (w.scale_per_chunk) {
      s[0][0] = s[0][1] = bits_float(raw[0]), s[1][0] = s[1][1] = bits_float(raw[1]);
    } else {
      s[0][0] = bits_float(raw[0]), s[0][1] = bits_float(raw[1]), s[1][0] = bits_float(raw[2]), s[1][1] = bits_float(raw[3]);
    }
  }
  CTX_HD static float value(const QuantMatrixView& w, int64_t tile, int i, int64_t col, const float* code_values) {
    const Slot p = Self::slot(i, int(col % 64));
    float s[2][2];
    chunk_scales<Self>(w, tile, col / 64, i % 8, s);
    return code_values[element_code<Self>(w, tile, col, p)] * s[i / 8][(col % 64) / 32];
  }
};

// w.code_values[k] for a k known only at run time, without indexing the parameter array (which would
// copy it to local memory): one select per entry.
CTX_HD inline float code_value(const QuantMatrixView& w, int k) {
  float v = 0.f;
#pragma unroll
  for (int e = 0; e < 16; ++e)
    if (e == k) v = w.code_values[e];
  return v;
}

// nf4/fp4 with float code values: 8 weights per step (16 k slots), steps 4 grp + h of group grp. B
// register b of step s of lane t holds column 32 (s / 4) + 8 t + 2 (s % 4) + b twice; its weight is
// register a = 2 b + i / 8 of lane 4 (i % 8) + t for row i. Step s's codes: word s / 2, the low
// nibbles of its bytes for even s, the high ones for odd s; byte a for register a.
struct Code4Format : Code4Scales<Code4Format> {
  static constexpr int kLaneBytes = 16, kSteps = 8;
  static constexpr bool kDup = true;
  CTX_HD static Slot slot(int i, int j) {
    const int grp = j / 32, jj = j % 32, t = jj / 8, r = jj % 8;
    const int s = 4 * grp + r / 2, a = 2 * (r % 2) + i / 8;
    return Slot{4 * (i % 8) + t, 8 * (s / 2) + 2 * a + s % 2};
  }
  CTX_HD static int column(int s, int t, int b, int) { return 32 * (s / 4) + 8 * t + 2 * (s % 4) + b; }
  CTX_HD static void b_regs(const uint4& piece, int s, uint32_t& b0, uint32_t& b1) {
    const int h = s % 4;
    const uint32_t word = h == 0 ? piece.x : h == 1 ? piece.y : h == 2 ? piece.z : piece.w;
    b0 = byte_perm(word, word, 0x1010u);  // the low bf16 twice
    b1 = byte_perm(word, word, 0x3232u);  // the high one twice
  }
  CTX_HD static int code(const uint8_t* c, int slot) { return (c[slot / 2] >> (4 * (slot % 2))) & 0xF; }
  // Byte a: the code of register a of step s.
  CTX_HD static uint32_t step_codes(const uint32_t (&c)[4], int s) {
    return (s % 2 ? c[s / 2] >> 4 : c[s / 2]) & 0x0F0F0F0Fu;
  }
  // lut: entry c for lane l at word 64 c + l (code_entry(code_values[c]) in every lane's bank): register a
  // is the word at byte offset 256 code + 4 lane, one byte permute from the codes and lane4.
  static constexpr int kLutWords = 16 * 64;
  CTX_HD static void fill_lut(const QuantMatrixView& w, uint32_t* lut, int tid, int threads) {
    for (int e = tid; e < kLutWords; e += threads) lut[e] = e % 64 < 32 ? code_entry(code_value(w, e / 64)) : 0u;
  }
  CTX_HD static void fragment(const uint32_t (&c)[4], int s, const uint32_t* lut, uint32_t lane4, uint32_t (&a)[4]) {
    const uint32_t codes = step_codes(c, s);
#pragma unroll
    for (int r = 0; r < 4; ++r)
      a[r] = *reinterpret_cast<const uint32_t*>(reinterpret_cast<const char*>(lut) + byte_perm(codes, lane4, 0x5504u | uint32_t(r) << 4));
  }
};

// nf4/fp4 with bf16 code values (codes=bfloat16): q4_0's steps and fragments (int_slot), register a of
// step s from byte a of word s, its low nibble the low half. lut: the bf16 pair (code_values[b & 15],
// code_values[b >> 4]) of byte b for lane l at word 64 b + l, so that register a is the word at byte
// offset 256 b + 4 lane: one byte permute and one conflict-free shared load per 2 weights (64 KiB;
// the upper 32 words of each entry are unused).
struct Code4PairFormat : Code4Scales<Code4PairFormat> {
  static constexpr int kLaneBytes = 16, kSteps = 4;
  static constexpr bool kDup = false;
  CTX_HD static Slot slot(int i, int j) {
    const IntSlot p = int_slot(i, j);
    return Slot{p.lane, 8 * p.s + 2 * p.a + p.e};  // nibble index: byte 4 s + a, the high nibble for half 1
  }
  CTX_HD static int column(int s, int t, int b, int e) { return int_column(s, t, b, e); }
  CTX_HD static void b_regs(const uint4& piece, int s, uint32_t& b0, uint32_t& b1) { int_b_regs(piece, s, b0, b1); }
  CTX_HD static int code(const uint8_t* c, int slot) { return (c[slot / 2] >> (4 * (slot % 2))) & 0xF; }
  static constexpr int kLutWords = 256 * 64;
  CTX_HD static void fill_lut(const QuantMatrixView& w, uint32_t* lut, int tid, int threads) {
    for (int e = tid; e < 16 * 32; e += threads) {  // (low code, lane); the 16 high codes unrolled
      const int lane = e % 32, lo = e / 32;
      const uint32_t low = bf16_bits(code_value(w, lo));
#pragma unroll
      for (int hi = 0; hi < 16; ++hi) lut[(16 * hi + lo) * 64 + lane] = low | bf16_bits(w.code_values[hi]) << 16;
    }
  }
  CTX_HD static void fragment(const uint32_t (&c)[4], int s, const uint32_t* lut, uint32_t lane4, uint32_t (&a)[4]) {
#pragma unroll
    for (int r = 0; r < 4; ++r)
      a[r] = *reinterpret_cast<const uint32_t*>(reinterpret_cast<const char*>(lut) + byte_perm(c[s], lane4, 0x5504u | uint32_t(r) << 4));
  }
};

// Calls f.template operator()<Format>() with the policy of w.format.
template <class F>
void dispatch_format(QuantFormat format, F&& f) {
  switch (format) {
    case QuantFormat::kInt8: return f.template operator()<Int8Format>();
    case QuantFormat::kQ8_0: return f.template operator()<Q8_0Format>();
    case QuantFormat::kQ4_0: return f.template operator()<Q4_0Format>();
    case QuantFormat::kCode4: return f.template operator()<Code4Format>();
    case QuantFormat::kCode4Bf16: return f.template operator()<Code4PairFormat>();
  }
}

}  // namespace ctx::cuda::quant_device
