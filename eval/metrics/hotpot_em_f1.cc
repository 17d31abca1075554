// HotpotQA official answer EM / F1 (hotpot_evaluate_v1.py exact_match_score, f1_score): SQuAD's
// normalize_answer and token F1, plus the yes/no/noanswer rule: when either normalised side is
// "yes", "no" or "noanswer" and the two differ, F1 = precision = recall = 0. One gold answer.
// Keys: em, f1, precision, recall. Plugin `hotpot_em_f1`.
#include <algorithm>

#include "core/base/error.h"
#include "eval/metrics/register_metric.h"
#include "eval/metrics/token_f1.h"
#include "eval/text/answer_normalize.h"

namespace ctx {
namespace {

bool is_special(const text::TokenList& tokens) {
  return tokens.size() == 1 && (tokens[0] == "yes" || tokens[0] == "no" || tokens[0] == "noanswer");
}

class HotpotEmF1 : public MetricPlugin {
 public:
  explicit HotpotEmF1(const Params&) {}
  std::string_view name() const override { return "hotpot_em_f1"; }
  std::vector<std::string> score_keys() const override { return {"em", "f1", "precision", "recall"}; }
  Scores scores(std::string_view prediction, const std::vector<std::string>& references,
                const nlohmann::json&) const override {
    if (references.size() != 1)
      fail("metric 'hotpot_em_f1': a case needs exactly one gold answer, got ", references.size());
    thread_local text::TokenList pred, gold;  // buffers reused between calls
    text::normalize_answer_tokens(prediction, pred);
    text::normalize_answer_tokens(references[0], gold);
    const bool equal = pred == gold;
    TokenF1 f;
    if (equal || (!is_special(pred) && !is_special(gold))) f = token_f1(pred, gold);
    return {{"em", equal ? 1.0 : 0.0}, {"f1", f.f1}, {"precision", f.precision}, {"recall", f.recall}};
  }
};

}  // namespace

void register_hotpot_em_f1(Catalog& catalog) {
  add_metric<HotpotEmF1>(catalog, "hotpot_em_f1", "HotpotQA answer EM / F1 / precision / recall (yes/no rule)");
}

}  // namespace ctx
