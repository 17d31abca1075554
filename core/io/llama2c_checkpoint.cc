// llama2.c checkpoints in the legacy ("version 0") export: a 7 x int32 header
// {dim, hidden_dim, n_layers, n_heads, n_kv_heads, vocab_size, seq_len} followed by float32 weights
// (see ../shared/fixtures/stories260k/README.md). A positive vocab_size means the classifier is the
// token embedding. The weights are exposed under HF tensor names so that one assembler serves both
// formats; RoPE uses the interleaved-pair layout, as run.c does.
#include <cstring>
#include <filesystem>
#include <map>

#include "core/base/error.h"
#include "core/base/mapped_file.h"
#include "core/model/model_loader.h"

namespace ctx {

std::unique_ptr<Model> load_llama2c_checkpoint(const std::string& path) {
  auto file = std::make_shared<MappedFile>(MappedFile::open(path));
  if (file->size() < 28) fail(path, ": too small for a llama2.c checkpoint (", file->size(), " bytes, header needs 28)");
  int32_t h[7];
  std::memcpy(h, file->data(), 28);
  if (uint32_t(h[0]) == 0x616b3432u)
    fail(path, ": llama2.c export version ", h[1], " (magic 'ak42') is not supported; only the legacy format is");
  const char* names[7] = {"dim", "hidden_dim", "n_layers", "n_heads", "n_kv_heads", "vocab_size", "seq_len"};
  for (int i = 0; i < 7; ++i)
    if ((i == 5 ? (h[i] == 0 || h[i] == INT32_MIN) : h[i] <= 0) || std::abs(int64_t(h[i])) > (1 << 24))
      fail(path, ": header field ", names[i], " = ", h[i], " is invalid (not a llama2.c checkpoint?)");
  const int64_t dim = h[0], hidden = h[1], L = h[2], heads = h[3], kv_heads = h[4], seq_len = h[6];
  const bool shared = h[5] > 0;
  const int64_t vocab = std::abs(int64_t(h[5]));
  if (dim % heads != 0 || heads % kv_heads != 0 || (dim / heads) % 2 != 0)
    fail(path, ": header has dim ", dim, ", n_heads ", heads, ", n_kv_heads ", kv_heads,
         ": dim must split into even-sized heads and n_heads must be a multiple of n_kv_heads");

  ModelConfig c;
  c.model_type = "llama2c";
  c.vocab_size = vocab;
  c.hidden_size = dim;
  c.intermediate_size = hidden;
  c.num_layers = L;
  c.num_heads = heads;
  c.num_kv_heads = kv_heads;
  c.head_dim = dim / heads;
  c.max_position_embeddings = seq_len;
  c.rms_norm_eps = 1e-5;
  c.rope.layout = RopeLayout::kInterleaved;
  c.tie_word_embeddings = shared;
  c.layer_window.assign(size_t(L), 0);
  c.bos_token_id = 1;
  c.eos_token_ids = {2};

  const int64_t kvd = c.kv_dim(), hd = c.head_dim;
  // Offsets (in floats) of each block, in file order.
  struct Block {
    const char* name;
    int64_t per_layer_rows, cols;  // shape of one layer's slice; L slices when layered
    bool layered;
  };
  const Block blocks[] = {
      {"embed", vocab, dim, false},   {"rms_att", dim, 1, true},     {"wq", dim, dim, true},
      {"wk", kvd, dim, true},         {"wv", kvd, dim, true},        {"wo", dim, dim, true},
      {"rms_ffn", dim, 1, true},      {"w1", hidden, dim, true},     {"w2", dim, hidden, true},
      {"w3", hidden, dim, true},      {"rms_final", dim, 1, false},  {"freq_cis", seq_len * hd, 1, false},
      {"wcls", shared ? 0 : vocab, dim, false},
  };
  std::map<std::string, int64_t> offset;
  int64_t pos = 0;
  for (const auto& b : blocks) {
    offset[b.name] = pos;
    pos += b.per_layer_rows * b.cols * (b.layered ? L : 1);
  }
  const uint64_t need = 28 + uint64_t(pos) * 4;
  if (file->size() < need)
    fail(path, ": truncated: the header describes ", need, " bytes of checkpoint, the file has ", file->size());
  if (file->size() > need)
    fail(path, ": ", file->size() - need, " unexpected bytes after the weights described by the header (wrong format?)");
  const float* base = reinterpret_cast<const float*>(file->data() + 28);

  std::map<std::string, RawTensor> tensors;
  auto put = [&](const std::string& name, const char* block, int64_t layer, std::vector<int64_t> shape) {
    int64_t n = 1;
    for (int64_t d : shape) n *= d;
    tensors[name] = RawTensor{DType::F32, shape, base + offset.at(block) + layer * n, file};
  };
  put("model.embed_tokens.weight", "embed", 0, {vocab, dim});
  for (int64_t i = 0; i < L; ++i) {
    const std::string p = "model.layers." + std::to_string(i) + ".";
    put(p + "input_layernorm.weight", "rms_att", i, {dim});
    put(p + "self_attn.q_proj.weight", "wq", i, {dim, dim});
    put(p + "self_attn.k_proj.weight", "wk", i, {kvd, dim});
    put(p + "self_attn.v_proj.weight", "wv", i, {kvd, dim});
    put(p + "self_attn.o_proj.weight", "wo", i, {dim, dim});
    put(p + "post_attention_layernorm.weight", "rms_ffn", i, {dim});
    put(p + "mlp.gate_proj.weight", "w1", i, {hidden, dim});
    put(p + "mlp.down_proj.weight", "w2", i, {dim, hidden});
    put(p + "mlp.up_proj.weight", "w3", i, {hidden, dim});
  }
  put("model.norm.weight", "rms_final", 0, {dim});
  if (!shared) put("lm_head.weight", "wcls", 0, {vocab, dim});

  auto model = std::make_unique<Model>();
  model->spec = path;
  model->format = "llama2c";
  model->config = c;
  // run.c ends a generation when the model emits BOS (id 1), which delimits stories in training.
  model->stop_ids = {1};
  model->weights = assemble_hf_weights(
      c, [&](const std::string& name, const std::vector<int64_t>&) -> std::optional<RawTensor> {
        auto it = tensors.find(name);
        if (it == tensors.end()) return std::nullopt;
        return it->second;
      },
      path);
  namespace fs = std::filesystem;
  const fs::path dir = fs::path(path).parent_path();
  for (const std::string& cand : {std::string("tokenizer.bin"), "tok" + std::to_string(vocab) + ".bin"})
    if (fs::exists(dir / cand)) {
      model->tokenizer_path = (dir / cand).string();
      break;
    }
  return model;
}

}  // namespace ctx
