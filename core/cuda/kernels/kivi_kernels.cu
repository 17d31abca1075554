// KIVI quantization of bf16 cache rows (kivi_kernels.h). One block per (key group, KV head): the
// key params per channel over the group's tokens, the value params per token and channel block,
// then the packed code bytes (a thread per byte, so that no two threads write one byte). The
// arithmetic is kv_quant.cc's in float32 with explicit round-to-nearest operations (no contraction
// into FMA) and its fp16 rule for the params (kv_quant.h: min clamped to +-65504 and rounded down,
// the scale from the rounded min, clamped to [2^-14, 65504] and rounded up; a constant block's min
// to nearest), so codes and params are the CPU's bit for bit.
#include "core/cuda/cuda_check.h"
#include "core/cuda/kernels/kivi_kernels.h"
#include "core/kv/kv_quant.h"

namespace ctx::cuda {
namespace {

// kv_quant_fit: the block's (min, scale) in fp16, min rounded down and the scale, from the rounded
// min, rounded up (a constant block: min to nearest, scale 0).
__device__ inline KiviParam fit(float lo, float hi, int bits) {
  const float m = fminf(fmaxf(lo, -kKvQuantParamMax), kKvQuantParamMax);
  if (hi == lo) return __halves2half2(__float2half_rn(m), __float2half_rn(0.f));
  const __half mn = __float2half_rd(m);
  const float s = __fdiv_rn(__fsub_rn(hi, __half2float(mn)), float((1 << bits) - 1));
  return __halves2half2(mn, __float2half_ru(fminf(fmaxf(s, kKvQuantScaleMin), kKvQuantParamMax)));
}

// Codes against the rounded params, as floats (p = (min_h, scale_h)).
__device__ inline unsigned encode(float x, float2 p, int bits) {
  if (p.y == 0.f) return 0;
  const float q = floorf(__fadd_rn(__fdiv_rn(__fsub_rn(x, p.x), p.y), 0.5f));
  return unsigned(fminf(fmaxf(q, 0.f), float((1 << bits) - 1)));
}

// The byte `byte` of a packed row: channels byte * per .. byte * per + per - 1 (< hd), channel c's
// code at bit (c % per) * bits; param_of(c) gives its (min, scale).
template <class ParamOf>
__device__ inline uint8_t pack_byte(const bf16* row, int64_t byte, int64_t hd, int bits, ParamOf param_of) {
  const int per = 8 / bits;
  unsigned b = 0;
  for (int i = 0; i < per; ++i) {
    const int64_t c = byte * per + i;
    if (c < hd) b |= encode(__bfloat162float(row[c]), __half22float2(param_of(c)), bits) << (i * bits);
  }
  return uint8_t(b);
}

__global__ void kivi_quantize_kernel(KiviQuantizeParams p) {
  const KiviKv& kv = p.kv;
  const int bits = kv.bits;
  const int64_t g = kv.group, hd = p.hd;
  int64_t g0 = p.group_begin, g1 = p.group_end;
  const int64_t seq = p.seq_lens ? int64_t(blockIdx.z) : p.seq;
  if (p.seq_lens) {
    const int64_t end = p.seq_lens[seq];
    g0 = kivi_quantized_length(kv, end - p.count) / g, g1 = kivi_quantized_length(kv, end) / g;
  } else if (p.pos0) {
    g0 = kivi_quantized_length(kv, *p.pos0) / g, g1 = kivi_quantized_length(kv, *p.pos0 + p.count) / g;
  }
  if (g0 + int64_t(blockIdx.x) >= g1) return;  // the whole block: before any barrier
  const int64_t G = g0 + blockIdx.x, head = seq * p.kv_heads + blockIdx.y;
  const int64_t rb = (hd * bits + 7) / 8, nb = (hd + g - 1) / g;
  const int64_t code_rows = kivi_code_rows(kv, p.capacity);
  const int64_t row0 = head * code_rows + G * g;  // the group's first code row of this (sequence, head)
  // The bf16 row of the group's token t (a ring holds position j at row j % ring, contiguous or paged;
  // a full copy [kv_heads][src_rows][hd] holds it at row j).
  const KiviBf16Rows rows = p.src_rows > 0 ? KiviBf16Rows{p.src_rows, p.kv_heads, hd}
                                           : KiviBf16Rows{kivi_bf16_rows(kv, p.capacity), p.kv_heads, hd, p.pool};
  const auto bf16_row = [&](int64_t t) { return rows.offset(seq, blockIdx.y, G * g + t); };
  const bf16 *k = p.k_cache, *v = p.v_cache;
  KiviParam* kp = kv.k_params + (head * (code_rows / g) + G) * hd;
  KiviParam* vp = kv.v_params + row0 * nb;
  for (int64_t d = threadIdx.x; d < hd; d += blockDim.x) {
    float lo = __bfloat162float(k[bf16_row(0) + d]), hi = lo;
    for (int64_t t = 1; t < g; ++t) {
      const float x = __bfloat162float(k[bf16_row(t) + d]);
      lo = fminf(lo, x), hi = fmaxf(hi, x);
    }
    kp[d] = fit(lo, hi, bits);
  }
  for (int64_t i = threadIdx.x; i < g * nb; i += blockDim.x) {
    const int64_t t = i / nb, c0 = (i % nb) * g, c1 = c0 + g < hd ? c0 + g : hd;
    const bf16* row = v + bf16_row(t);
    float lo = __bfloat162float(row[c0]), hi = lo;
    for (int64_t c = c0 + 1; c < c1; ++c) {
      const float x = __bfloat162float(row[c]);
      lo = fminf(lo, x), hi = fmaxf(hi, x);
    }
    vp[i] = fit(lo, hi, bits);
  }
  __syncthreads();  // the params written above are read back by other threads of the block
  uint8_t* kc = kv.k_codes + row0 * rb;
  uint8_t* vc = kv.v_codes + row0 * rb;
  for (int64_t i = threadIdx.x; i < g * rb; i += blockDim.x) {
    const int64_t t = i / rb, byte = i % rb;
    kc[i] = pack_byte(k + bf16_row(t), byte, hd, bits, [&](int64_t c) { return kp[c]; });
    vc[i] = pack_byte(v + bf16_row(t), byte, hd, bits, [&](int64_t c) { return vp[t * nb + c / g]; });
  }
}

}  // namespace

void launch_kivi_quantize(const KiviQuantizeParams& p, cudaStream_t stream) {
  const int bits = p.kv.bits;
  CTX_CHECK(bits == 2 || bits == 4 || bits == 8, "KIVI quantization needs 2, 4 or 8 bits");
  CTX_CHECK(p.kv.group >= 1 && p.hd >= 1 && p.count >= 0, "KIVI quantization shape");
  const bool forward = p.pos0 || p.seq_lens;  // the groups a forward completes, found on the device
  CTX_CHECK(forward || (p.group_begin >= 0 && p.group_end * p.kv.group <= kivi_code_rows(p.kv, p.capacity)),
            "KIVI quantization range");
  CTX_CHECK(!p.seq_lens || (p.seqs >= 1 && p.seqs <= 65535), "KIVI quantization: ", p.seqs, " sequences");
  // A forward of count tokens completes at most count / group + 1 groups.
  const int64_t blocks = forward ? p.count / p.kv.group + 1 : p.group_end - p.group_begin;
  if (blocks <= 0 || (forward && p.count == 0)) return;
  const dim3 grid(unsigned(blocks), unsigned(p.kv_heads), unsigned(p.seq_lens ? p.seqs : 1));
  kivi_quantize_kernel<<<grid, 128, 0, stream>>>(p);
  CTX_CUDA_CHECK(cudaGetLastError());
}

namespace {

// The layer's bf16 rows of its one sequence (the slot's block table row when paged).
__device__ inline KiviBf16Rows bf16_rows(const KiviLayerCopy& p) {
  return {kivi_bf16_rows(p.kv, p.capacity), p.kv_heads, p.hd, p.pool};
}

// One block per (entry, KV head), a thread per channel (looping past blockDim).
__global__ void kivi_expand_kernel(KiviLayerCopy p) {
  const int64_t j = blockIdx.x, h = blockIdx.y, hd = p.hd;
  const KiviKv& kv = p.kv;
  const int64_t full_rows = p.full_rows > 0 ? p.full_rows : p.length;
  bf16* k_out = p.k_full + (h * full_rows + j) * hd;
  bf16* v_out = p.v_full + (h * full_rows + j) * hd;
  if (j >= p.quantized) {  // a bf16 row of the ring (or of the capacity rows)
    const int64_t src = bf16_rows(p).offset(0, h, j);
    for (int64_t d = threadIdx.x; d < hd; d += blockDim.x) k_out[d] = p.k_cache[src + d], v_out[d] = p.v_cache[src + d];
    return;
  }
  const int bits = kv.bits;
  const int64_t g = kv.group, rb = (hd * bits + 7) / 8, nb = (hd + g - 1) / g;
  const int64_t code_rows = kivi_code_rows(kv, p.capacity);
  const uint8_t* kc = kv.k_codes + (h * code_rows + j) * rb;
  const uint8_t* vc = kv.v_codes + (h * code_rows + j) * rb;
  const KiviParam* kp = kv.k_params + (h * (code_rows / g) + j / g) * hd;
  const KiviParam* vp = kv.v_params + (h * code_rows + j) * nb;
  const unsigned mask = (1u << bits) - 1;
  for (int64_t d = threadIdx.x; d < hd; d += blockDim.x) {
    const int64_t byte = d * bits / 8, shift = (d * bits) % 8;
    const float ck = float((unsigned(kc[byte]) >> shift) & mask), cv = float((unsigned(vc[byte]) >> shift) & mask);
    // kv_quant.cc's dequantization: min + code * scale (rounded once each, no FMA)
    const float2 a = __half22float2(kp[d]), b = __half22float2(vp[d / g]);
    k_out[d] = __float2bfloat16(__fadd_rn(a.x, __fmul_rn(ck, a.y)));
    v_out[d] = __float2bfloat16(__fadd_rn(b.x, __fmul_rn(cv, b.y)));
  }
}

__global__ void kivi_store_float_kernel(KiviLayerCopy p) {
  const int64_t j = p.quantized + blockIdx.x, h = blockIdx.y, hd = p.hd;
  const int64_t full_rows = p.full_rows > 0 ? p.full_rows : p.length;
  const int64_t dst = bf16_rows(p).offset(0, h, j), src = (h * full_rows + j) * hd;
  for (int64_t d = threadIdx.x; d < hd; d += blockDim.x) p.k_cache[dst + d] = p.k_full[src + d], p.v_cache[dst + d] = p.v_full[src + d];
}

void check_copy(const KiviLayerCopy& p) {
  CTX_CHECK(p.kv.bits == 2 || p.kv.bits == 4 || p.kv.bits == 8, "KIVI layer copy needs 2, 4 or 8 bits");
  CTX_CHECK(p.kv.group >= 1 && p.hd >= 1 && p.kv_heads >= 1 && p.quantized >= 0 && p.quantized <= p.length &&
                p.quantized % p.kv.group == 0 && p.quantized <= kivi_code_rows(p.kv, p.capacity) &&
                p.length - p.quantized <= kivi_bf16_rows(p.kv, p.capacity) && p.full_rows >= 0 &&
                (p.full_rows == 0 || p.full_rows >= p.length),
            "KIVI layer copy: ", p.quantized, " quantized of ", p.length, " entries");
}

unsigned threads_for(int64_t hd) { return unsigned(hd < 256 ? (hd + 31) / 32 * 32 : 256); }

}  // namespace

void launch_kivi_expand(const KiviLayerCopy& p, cudaStream_t stream) {
  check_copy(p);
  if (p.length == 0) return;
  kivi_expand_kernel<<<dim3(unsigned(p.length), unsigned(p.kv_heads)), threads_for(p.hd), 0, stream>>>(p);
  CTX_CUDA_CHECK(cudaGetLastError());
}

void launch_kivi_store_float(const KiviLayerCopy& p, cudaStream_t stream) {
  check_copy(p);
  if (p.length == p.quantized) return;
  kivi_store_float_kernel<<<dim3(unsigned(p.length - p.quantized), unsigned(p.kv_heads)), threads_for(p.hd), 0,
                            stream>>>(p);
  CTX_CUDA_CHECK(cudaGetLastError());
}

}  // namespace ctx::cuda
