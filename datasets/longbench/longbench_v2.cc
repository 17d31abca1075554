#include "datasets/longbench/longbench_v2.h"

#include "core/base/error.h"
#include "datasets/io/json_records.h"
#include "datasets/prompt_template.h"

namespace ctx::data {

Sample longbench_v2_sample(const nlohmann::json& rec, const std::string& tmpl, const std::string& template_name,
                           const std::string& where) {
  Sample s;
  s.id = json_nonempty_string(rec, "_id", where);
  s.question = std::string(strip(json_nonempty_string(rec, "question", where)));
  for (const char* key : {"choice_A", "choice_B", "choice_C", "choice_D"})
    s.choices.emplace_back(strip(json_nonempty_string(rec, key, where)));
  const std::string answer(strip(json_string(rec, "answer", where)));
  if (answer.empty()) fail(where, ": field \"answer\" is empty");
  if (answer.size() != 1 || answer[0] < 'A' || answer[0] > 'D')
    fail(where, ": answer '", answer, "' is not one of A, B, C, D");
  s.references = {answer};
  s.gold_index = answer[0] - 'A';
  const bool needs_doc = tmpl.find("$DOC$") != std::string::npos;
  if (needs_doc) {
    if (!rec.contains("context"))
      fail(where, ": no \"context\" for template '", template_name, "' (use template=0shot_no_context)");
    s.context = std::string(strip(json_string(rec, "context", where)));
  }
  s.prompt = substitute(tmpl, {{"$DOC$", s.context},
                               {"$Q$", s.question},
                               {"$C_A$", s.choices[0]},
                               {"$C_B$", s.choices[1]},
                               {"$C_C$", s.choices[2]},
                               {"$C_D$", s.choices[3]}});
  s.scoring = "generate";
  s.max_new_tokens = template_name.find("cot") != std::string::npos ? 1024 : 128;
  s.extraction = "longbench_v2";
  s.metric = "accuracy";
  for (const char* key : {"domain", "sub_domain", "difficulty", "length"})
    if (auto v = json_optional_string(rec, key, where)) s.meta[key] = *v;
  s.source = where;
  return s;
}

std::map<std::string, double> longbench_v2_accuracy(const std::vector<Sample>& samples,
                                                    const std::vector<std::optional<char>>& answers) {
  if (samples.size() != answers.size())
    fail("longbench_v2 accuracy: ", samples.size(), " samples but ", answers.size(), " answers");
  std::map<std::string, std::pair<int64_t, int64_t>> count;  // group -> (right, total)
  for (size_t i = 0; i < samples.size(); ++i) {
    const Sample& s = samples[i];
    const bool right = answers[i] && !s.references.empty() && s.references[0] == std::string(1, *answers[i]);
    std::vector<std::string> groups = {"overall"};
    for (const char* key : {"difficulty", "length"})
      if (auto it = s.meta.find(key); it != s.meta.end()) groups.push_back(it->second);
    for (const auto& g : groups) {
      count[g].first += right;
      count[g].second += 1;
    }
  }
  std::map<std::string, double> out;
  for (const auto& [g, c] : count) out[g] = 100.0 * double(c.first) / double(c.second);
  return out;
}

}  // namespace ctx::data
