// The `needle` dataset: one sample per (context length, depth) of build_haystack (haystack.h), the
// question after the haystack, the needle as the reference. Needs a tokenizer (LoadOptions).
#include "core/base/error.h"
#include "datasets/io/text_source.h"
#include "datasets/needle/haystack.h"
#include "datasets/register_dataset.h"

namespace ctx {
namespace {

class NeedleDataset final : public DatasetPlugin {
 public:
  explicit NeedleDataset(const Params& p)
      : common_(p),
        lengths_(p.get_int_list("context_tokens")),
        depths_(p.get_int_list("depths")),
        seed_(p.get_int("seed")),
        needle_(p.get_string("needle")),
        question_(p.get_string("question")),
        filler_file_(p.get_string("filler_file")) {}
  std::string_view name() const override { return "needle"; }

  LoadedDataset load(const LoadOptions& options) const override {
    if (!options.tokenizer) fail("dataset 'needle' counts tokens: it needs a tokenizer (e.g. --tokenizer PATH)");
    data::HaystackSpec spec;
    spec.needle = needle_;
    if (!filler_file_.empty()) {
      spec.filler = data::split_sentences(data::read_text_file(filler_file_));
      if (spec.filler.empty()) fail(filler_file_, ": no sentences to use as filler");
    }
    data::SampleCollector out(common_, options);
    size_t i = 0;
    const size_t n = lengths_.size() * depths_.size();
    while (out.step([&]() -> std::optional<Sample> {
      if (i == n) return std::nullopt;
      spec.context_tokens = lengths_[i / depths_.size()];
      spec.depth_percent = double(depths_[i % depths_.size()]);
      spec.seed = uint64_t(seed_) + i;
      ++i;
      const data::Haystack h = data::build_haystack(spec, *options.tokenizer);
      Sample s;
      s.id = str_cat("needle/", spec.context_tokens, "/", depths_[(i - 1) % depths_.size()]);
      s.context = h.text;
      s.question = question_;
      s.prompt = h.text + "\n\nAnswer the question using only the text above.\nQuestion: " + question_ + "\nAnswer:";
      s.references = {needle_};
      s.max_new_tokens = 64;
      s.metric = "rouge";
      s.meta["context_tokens"] = std::to_string(h.tokens);
      s.meta["depth_percent"] = std::to_string(int64_t(spec.depth_percent));
      s.meta["needle_token_offset"] = std::to_string(h.needle_token_offset);
      s.source = "needle";
      return s;
    })) {
    }
    return out.take();
  }

 private:
  data::CommonParams common_;
  std::vector<int64_t> lengths_, depths_;
  int64_t seed_;
  std::string needle_, question_, filler_file_;
};

}  // namespace

void register_needle(Catalog& catalog) {
  add_dataset<NeedleDataset>(
      catalog, "needle", "needle in a haystack: a fact at a chosen depth of seeded filler of a chosen token length",
      {ParamSpec::IntList("context_tokens", {1000}, 16, std::nullopt, "haystack lengths in tokens"),
       ParamSpec::IntList("depths", {0, 50, 100}, 0, 100, "needle depths in percent of the haystack"),
       ParamSpec::Int("seed", 0, 0, std::nullopt, "seed of the synthetic filler"),
       ParamSpec::String("needle", "The best thing to do in San Francisco is eat a sandwich and sit in Dolores Park on a sunny day.",
                         "the fact to hide (no commas: it is a spec value)"),
       ParamSpec::String("question", "What is the best thing to do in San Francisco?", "the question asked after the haystack"),
       ParamSpec::String("filler_file", "", "a text file whose sentences are the filler (default: synthetic sentences)")});
}

}  // namespace ctx
