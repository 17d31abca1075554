#include "datasets/truncation.h"

#include <span>

#include "core/base/error.h"

namespace ctx::data {

TruncatedText middle_truncate(std::string_view text, const Tokenizer& tokenizer, int64_t max_tokens) {
  if (max_tokens == 1) fail("max_tokens=1 leaves nothing to keep of either half (need >= 2)");
  const std::vector<int32_t> ids = tokenizer.encode(text, /*add_bos=*/true);
  TruncatedText out;
  out.record.original_tokens = int64_t(ids.size());
  if (max_tokens <= 0 || int64_t(ids.size()) <= max_tokens) {
    out.text = std::string(text);
    out.record.kept_tokens = out.record.original_tokens;
    return out;
  }
  const size_t half = size_t(max_tokens / 2);
  const std::span<const int32_t> all(ids);
  // Decoding drops BOS, as skip_special_tokens=True does in LongBench.
  std::vector<int32_t> head(all.begin(), all.begin() + long(half));
  if (!head.empty() && head.front() == tokenizer.bos_id()) head.erase(head.begin());
  out.text = tokenizer.decode(head) + tokenizer.decode(all.subspan(ids.size() - half));
  out.record.kept_tokens = int64_t(2 * half);
  out.record.cut_tokens = out.record.original_tokens - out.record.kept_tokens;
  return out;
}

}  // namespace ctx::data
