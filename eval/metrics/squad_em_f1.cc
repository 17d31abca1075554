#include "eval/metrics/squad_em_f1.h"

#include <algorithm>

#include "core/base/error.h"
#include "eval/metrics/register_metric.h"
#include "eval/metrics/token_f1.h"
#include "eval/text/answer_normalize.h"

namespace ctx {

bool squad_exact_match(std::string_view prediction, std::string_view gold) {
  text::TokenList p, g;
  text::normalize_answer_tokens(prediction, p);
  text::normalize_answer_tokens(gold, g);
  return p == g;
}

double squad_f1(std::string_view prediction, std::string_view gold) {
  text::TokenList p, g;
  text::normalize_answer_tokens(prediction, p);
  text::normalize_answer_tokens(gold, g);
  return token_f1(p, g).f1;
}

namespace {

class SquadEmF1 : public MetricPlugin {
 public:
  explicit SquadEmF1(const Params&) {}
  std::string_view name() const override { return "squad_em_f1"; }
  std::vector<std::string> score_keys() const override { return {"exact_match", "f1"}; }
  Scores scores(std::string_view prediction, const std::vector<std::string>& references,
                const nlohmann::json&) const override {
    if (references.empty()) fail("metric 'squad_em_f1': a case needs at least one reference");
    thread_local text::TokenList pred, gold;  // buffers reused between calls
    text::normalize_answer_tokens(prediction, pred);
    double em = 0, f1 = 0;
    Scores per_ref;
    for (size_t i = 0; i < references.size(); ++i) {
      text::normalize_answer_tokens(references[i], gold);
      const double e = pred == gold ? 1.0 : 0.0, f = token_f1(pred, gold).f1;
      em = std::max(em, e);
      f1 = std::max(f1, f);
      if (references.size() > 1) append_per_reference(per_ref, {{"exact_match", e}, {"f1", f}}, i);
    }
    Scores out{{"exact_match", em}, {"f1", f1}};
    out.insert(out.end(), per_ref.begin(), per_ref.end());
    return out;
  }
};

}  // namespace

void register_squad_em_f1(Catalog& catalog) {
  add_metric<SquadEmF1>(catalog, "squad_em_f1", "SQuAD v1.1 exact match and token F1, max over references");
}

}  // namespace ctx
