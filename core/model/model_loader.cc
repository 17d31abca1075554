#include "core/model/model_loader.h"

#include <filesystem>

#include "core/base/error.h"
#include "core/base/mapped_file.h"

namespace ctx {

std::unique_ptr<Model> load_model(const std::string& spec) {
  namespace fs = std::filesystem;
  if (spec.rfind("random:", 0) == 0) {
    std::string rest = spec.substr(7);
    uint64_t seed = 0;
    const size_t colon = rest.rfind(':');
    if (colon != std::string::npos && colon + 1 < rest.size() &&
        rest.find_first_not_of("0123456789", colon + 1) == std::string::npos) {
      seed = std::stoull(rest.substr(colon + 1));
      rest = rest.substr(0, colon);
    }
    if (rest.empty()) fail("model spec '", spec, "': expected random:CONFIG.json[:SEED]");
    return make_random_model(rest, seed);
  }
  if (spec.empty()) fail("no model given (expected a checkpoint folder, a llama2.c .bin file or random:CONFIG.json)");
  std::error_code ec;
  if (fs::is_directory(spec, ec)) return load_hf_checkpoint(spec);
  if (fs::is_regular_file(spec, ec)) {
    if (fs::path(spec).extension() == ".bin") return load_llama2c_checkpoint(spec);
    fail(spec, ": unknown checkpoint file type (expected a folder with config.json, or a llama2.c .bin file)");
  }
  fail(spec, ": no such checkpoint folder or file");
}

std::unique_ptr<Tokenizer> load_model_tokenizer(const Model& model, const std::string& explicit_path) {
  const std::string path = explicit_path.empty() ? model.tokenizer_path : explicit_path;
  if (path.empty())
    fail(model.spec, ": no tokenizer found beside the checkpoint (tokenizer.model or tokenizer.bin); pass a tokenizer "
         "(--tokenizer PATH, or `tokenizer` in an experiment config) or give token ids");
  auto tok = load_tokenizer(path, int32_t(model.config.vocab_size));
  if (tok->vocab_size() != model.config.vocab_size)
    fail(path, ": tokenizer has ", tok->vocab_size(), " tokens but the model's vocabulary has ", model.config.vocab_size);
  return tok;
}

}  // namespace ctx
