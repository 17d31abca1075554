#include "core/kv/kv_compressor.h"

#include "core/base/error.h"

namespace ctx {

Support KvCompressor::supports(const ModelConfig& c) const {
  for (size_t l = 0; l < c.layer_window.size(); ++l)
    if (c.layer_window[l] > 0)
      return Support::no(str_cat("layer ", l, " uses a sliding window of ", c.layer_window[l],
                                 " positions; KV compression drops entries, so windows over stored indices "
                                 "would cover the wrong tokens"));
  return Support::yes();
}

bool compress_layer(const KvCompressor& compressor, const ModelConfig& c, int64_t layer, const float* q,
                    int64_t n_new, KvCache& cache, int64_t position) {
  KvStep s;
  s.layer = layer;
  s.num_heads = c.num_heads, s.num_kv_heads = c.num_kv_heads, s.head_dim = c.head_dim;
  s.scale = float(c.softmax_scale());
  s.q = q;
  s.n_new = n_new;
  s.position = position >= 0 ? position : cache.position() + n_new;  // the cache's moves after all layers
  std::vector<float> dequantized;  // KIVI: the layer's quantized prefix as float (KvCache::view)
  s.kv = cache.view(layer, dequantized);
  s.state = &cache.state(layer);
  const KvKeep keep = compressor.after_step(s);
  if (keep.all) return false;
  cache.compact(layer, keep.count, keep.indices, compressor.headroom());
  return true;
}

}  // namespace ctx
