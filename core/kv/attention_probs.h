// Attention probabilities for KV compressors that score entries by attention (SnapKV, H2O, TOVA).
// Computed from the step's queries and the layer's keys exactly as eager attention does:
// softmax over visible entries of scale * q.k, causal over stored indices (query row r of the step
// sits at index kv.length - n_new + r). Thread-safe; parallel over KV heads.
#pragma once

#include <cstdint>
#include <vector>

#include "core/kv/kv_compressor.h"

namespace ctx {

// Adds to out[kv_head][j] (j < kv.length; out is resized to [num_kv_heads][kv.length] with zeros
// for new entries) the probabilities of query rows [row_begin, row_end) of `step`, summed over the
// rows and averaged over the query heads that read each KV head (GQA group).
void accumulate_attention(const KvStep& step, int64_t row_begin, int64_t row_end, std::vector<std::vector<float>>& out);

}  // namespace ctx
