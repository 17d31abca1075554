// A FlexAttention mask for the GPU kernels: the `flex` plugin's named masks (plugins/attention/flex/
// flex_attention.h) joined by and/or, as a postfix program small enough to pass by value to a
// kernel. Every named mask lets query position q see one interval of key positions that contains q,
// so every and/or of them does too (and: the intersection; or: the union of two intervals that share
// q), and the kernels need only interval(q) = [first, last]:
//   causal          [0, q]
//   sliding_window  [q - window + 1, q]
//   prefix_lm       [0, max(q, prefix - 1)]              (bidirectional inside the prefix)
//   chunked         [q - q % chunk, q]
//   document        [start of q's document, q]           (documents by length; positions past the
//                                                         last listed document belong to the last)
//   key_window      [q - window + 1, +inf)               (the model's own window, anded in)
// The flash prefill kernel classifies each (query block, key tile) from the intervals of the block's
// first and last rows (the intervals' ends never decrease with q), skipping tiles no row sees and
// testing elements only in tiles some row sees partly; keys past the cached ones are never visible.
// Plain data; interval() runs on the host and the device.
#pragma once

#include <cstdint>

#ifdef __CUDACC__
#define CTX_HOST_DEVICE __host__ __device__
#else
#define CTX_HOST_DEVICE
#endif

namespace ctx::cuda {

struct FlexMask {
  enum Op : int32_t { kCausal, kSlidingWindow, kPrefixLm, kChunked, kDocument, kKeyWindow, kAnd, kOr };
  static constexpr int kMaxOps = 16, kMaxDocuments = 64;
  static constexpr int64_t kUnbounded = int64_t(1) << 40;

  int32_t count = 0;          // ops in postfix order; 0: no flex mask (plain causal)
  int32_t ops[kMaxOps] = {};
  int64_t args[kMaxOps] = {};  // window, prefix or chunk of the op
  int32_t documents = 0;      // document: their start positions, increasing, starts[0] == 0
  int64_t starts[kMaxDocuments] = {};

  bool empty() const { return count == 0; }

  CTX_HOST_DEVICE void interval(int64_t q, int64_t& first, int64_t& last) const {
    int64_t f[kMaxOps], l[kMaxOps];
    int top = 0;
    for (int i = 0; i < count; ++i) {
      const int64_t a = args[i];
      switch (ops[i]) {
        case kCausal: f[top] = 0, l[top] = q; break;
        case kSlidingWindow: f[top] = q - a + 1, l[top] = q; break;
        case kPrefixLm: f[top] = 0, l[top] = q > a - 1 ? q : a - 1; break;
        case kChunked: f[top] = q - q % a, l[top] = q; break;
        case kDocument: {
          int d = 0;
          while (d + 1 < documents && starts[d + 1] <= q) ++d;
          f[top] = starts[d], l[top] = q;
          break;
        }
        case kKeyWindow: f[top] = q - a + 1, l[top] = kUnbounded; break;
        case kAnd:
        case kOr: {
          --top;
          const bool both = ops[i] == kAnd;
          const int64_t f1 = f[top - 1], l1 = l[top - 1], f2 = f[top], l2 = l[top];
          f[top - 1] = both ? (f1 > f2 ? f1 : f2) : (f1 < f2 ? f1 : f2);
          l[top - 1] = both ? (l1 < l2 ? l1 : l2) : (l1 > l2 ? l1 : l2);
          continue;
        }
      }
      ++top;
    }
    first = f[0] > 0 ? f[0] : 0, last = l[0];
  }
};

}  // namespace ctx::cuda
