// Corrupted checkpoints of every format must give one ctx::Error naming the file/tensor, never a
// crash; sharded HF checkpoints load bit-identically; random: specs are deterministic; and
// loglikelihood() agrees with log-softmax over Transformer::forward logits.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <nlohmann/json.hpp>

#include "core/base/error.h"
#include "core/base/mapped_file.h"
#include "core/io/safetensors.h"
#include "core/model/generate.h"
#include "core/model/model_loader.h"
#include "core/model/transformer.h"
#include "tests/support/attention.h"
#include "tests/support/model_check.h"
#include "tests/support/test_paths.h"

namespace ctx {
namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;

const char kKProj[] = "model.layers.0.self_attn.k_proj.weight";

std::string llama_dir() { return test::shared_path("fixtures/hf/llama"); }

// A new empty folder under the test's temp dir.
std::string new_dir(const std::string& name) {
  const fs::path p = fs::path(test::temp_dir()) / name;
  fs::remove_all(p);
  fs::create_directories(p);
  return p.string();
}

// A copy of the llama fixture's checkpoint files (not its reference) in a new folder.
std::string copy_llama(const std::string& name, bool with_weights = true) {
  const std::string dir = new_dir(name);
  for (const char* f : {"config.json", "generation_config.json"}) fs::copy_file(llama_dir() + "/" + f, dir + "/" + f);
  if (with_weights) fs::copy_file(llama_dir() + "/model.safetensors", dir + "/model.safetensors");
  return dir;
}

std::string read_bytes(const std::string& path) { return read_file(path); }

void write_bytes(const std::string& path, const std::string& bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(bytes.data(), std::streamsize(bytes.size()));
  ASSERT_TRUE(out.good()) << path;
}

// The message of the ctx::Error that load_model(spec) throws, or "" when it loads. Any other
// exception escapes and fails the test.
std::string load_error(const std::string& spec) {
  try {
    load_model(spec);
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

#define EXPECT_HAS(msg, part) EXPECT_NE((msg).find(part), std::string::npos) << "message: " << (msg)

// Rewrites a safetensors file from the fixture's tensors after `edit` changes the list.
void rewrite_tensors(const std::string& dst, const std::function<void(std::vector<TensorToWrite>&)>& edit) {
  auto src = SafetensorsFile::open(llama_dir() + "/model.safetensors");
  std::vector<TensorToWrite> tensors;
  for (const auto& t : src.index().tensors) tensors.push_back({t.name, t.dtype, t.shape, {t.data, t.nbytes}});
  edit(tensors);
  write_safetensors(dst, tensors);
}

TensorToWrite& find_tensor(std::vector<TensorToWrite>& ts, const std::string& name) {
  for (auto& t : ts)
    if (t.name == name) return t;
  throw std::runtime_error("fixture has no tensor " + name);
}

// Splits a safetensors image into (header JSON, data buffer).
std::pair<json, std::string> split_image(const std::string& img) {
  uint64_t n = 0;
  for (int i = 7; i >= 0; --i) n = (n << 8) | uint8_t(img[size_t(i)]);
  return {json::parse(img.substr(8, n)), img.substr(8 + n)};
}

std::string join_image(const json& header, const std::string& buffer) {
  std::string h = header.dump();
  h.append((8 - h.size() % 8) % 8, ' ');
  std::string out(8, '\0');
  for (int i = 0; i < 8; ++i) out[size_t(i)] = char(uint64_t(h.size()) >> (8 * i));
  return out + h + buffer;
}

// Teacher-forced logits for both reference prompts of `dir`'s fixture, in one batch.
std::vector<float> prompt_logits(const Model& model, const std::vector<int32_t>& ids, int64_t prompt_len) {
  Transformer tf(model, test::attention());
  KvCache c0 = tf.new_cache(), c1 = tf.new_cache();
  std::vector<SequenceStep> steps = {{&c0, std::span<const int32_t>(ids.data(), size_t(prompt_len)), 0},
                                     {&c1, std::span<const int32_t>(ids.data() + prompt_len, size_t(prompt_len)), 0}};
  return tf.forward(steps);
}

struct Reference {
  std::vector<int32_t> input_ids, generated;
  int64_t batch = 0, prompt_len = 0, gen_len = 0;
};

Reference llama_reference() {
  auto f = SafetensorsFile::open(llama_dir() + "/reference.safetensors");
  Reference r;
  std::vector<int64_t> s_ids, s_gen;
  r.input_ids = test::ids_tensor(f.index(), "input_ids", &s_ids);
  r.generated = test::ids_tensor(f.index(), "generated", &s_gen);
  r.batch = s_ids.at(0);
  r.prompt_len = s_ids.at(1);
  r.gen_len = s_gen.at(1);
  return r;
}

// ---- HF folders -----------------------------------------------------------------------------------

TEST(HfCheckpointErrors, UnmodifiedCopyLoads) {
  const std::string dir = copy_llama("ok");
  auto m = load_model(dir);
  EXPECT_EQ(m->format, "hf");
  EXPECT_EQ(m->config.num_layers, 2);
  EXPECT_EQ(m->weights.layers.size(), 2u);
}

TEST(HfCheckpointErrors, ConfigMissingKey) {
  const std::string dir = copy_llama("cfg_missing_key");
  json j = json::parse(read_bytes(dir + "/config.json"));
  j.erase("intermediate_size");
  write_bytes(dir + "/config.json", j.dump(2));
  const std::string msg = load_error(dir);
  EXPECT_HAS(msg, dir + "/config.json");
  EXPECT_HAS(msg, "'intermediate_size'");
}

TEST(HfCheckpointErrors, ConfigEmptyFile) {
  const std::string dir = copy_llama("cfg_empty");
  write_bytes(dir + "/config.json", "");
  const std::string msg = load_error(dir);
  EXPECT_HAS(msg, dir + "/config.json");
  EXPECT_HAS(msg, "not valid JSON");
}

TEST(HfCheckpointErrors, NoConfigOrNoWeights) {
  const std::string empty = new_dir("no_config");
  EXPECT_HAS(load_error(empty), "no config.json");
  const std::string dir = copy_llama("no_weights", /*with_weights=*/false);
  const std::string msg = load_error(dir);
  EXPECT_HAS(msg, dir);
  EXPECT_HAS(msg, "no model.safetensors");
  EXPECT_HAS(load_error(test::temp_dir() + "/does_not_exist"), "no such checkpoint");
}

TEST(HfCheckpointErrors, WeightsTruncatedInData) {
  const std::string dir = copy_llama("trunc_data");
  const std::string path = dir + "/model.safetensors";
  const std::string img = read_bytes(path);
  write_bytes(path, img.substr(0, img.size() / 2));
  const std::string msg = load_error(dir);
  EXPECT_HAS(msg, path);
  EXPECT_HAS(msg, "tensor '");
  EXPECT_HAS(msg, "truncated");
}

TEST(HfCheckpointErrors, WeightsTruncatedInHeader) {
  const std::string dir = copy_llama("trunc_header");
  const std::string path = dir + "/model.safetensors";
  const std::string img = read_bytes(path);
  const auto [header, buffer] = split_image(img);
  const size_t header_len = img.size() - buffer.size() - 8;
  write_bytes(path, img.substr(0, 8 + header_len / 2));
  std::string msg = load_error(dir);
  EXPECT_HAS(msg, path);
  EXPECT_HAS(msg, "larger than the file");
  write_bytes(path, img.substr(0, 5));  // inside the length field
  msg = load_error(dir);
  EXPECT_HAS(msg, path);
  EXPECT_HAS(msg, "need at least 8");
}

TEST(HfCheckpointErrors, HeaderLiesAboutTensorSize) {
  const std::string dir = copy_llama("lying_size");
  const std::string path = dir + "/model.safetensors";
  auto [header, buffer] = split_image(read_bytes(llama_dir() + "/model.safetensors"));
  // Shape grows by one element, byte range unchanged.
  header["model.norm.weight"]["shape"] = {65};
  write_bytes(path, join_image(header, buffer));
  std::string msg = load_error(dir);
  EXPECT_HAS(msg, path);
  EXPECT_HAS(msg, "'model.norm.weight'");
  EXPECT_HAS(msg, "holds 256 bytes");
  EXPECT_HAS(msg, "needs 260");
  // Byte range extends past the end of the file.
  std::tie(header, buffer) = split_image(read_bytes(llama_dir() + "/model.safetensors"));
  const uint64_t end = header[kKProj]["data_offsets"][1].get<uint64_t>();
  header[kKProj]["data_offsets"][1] = end + buffer.size();
  header[kKProj]["shape"] = {int64_t((end + buffer.size() - header[kKProj]["data_offsets"][0].get<uint64_t>()) / 4)};
  write_bytes(path, join_image(header, buffer));
  msg = load_error(dir);
  EXPECT_HAS(msg, path);
  EXPECT_HAS(msg, kKProj);
  EXPECT_HAS(msg, "past the data buffer");
}

TEST(HfCheckpointErrors, TensorWithWrongShape) {
  const std::string dir = copy_llama("wrong_shape");
  rewrite_tensors(dir + "/model.safetensors", [](auto& ts) {
    auto& t = find_tensor(ts, kKProj);
    ASSERT_EQ(t.shape, (std::vector<int64_t>{32, 64}));
    t.shape = {64, 32};  // same bytes, transposed shape
  });
  const std::string msg = load_error(dir);
  EXPECT_HAS(msg, dir + "/model.safetensors");
  EXPECT_HAS(msg, kKProj);
  EXPECT_HAS(msg, "[64, 32]");
  EXPECT_HAS(msg, "expected [32, 64]");
}

TEST(HfCheckpointErrors, TensorWithIntegerDtype) {
  const std::string dir = copy_llama("dtype_i32");
  rewrite_tensors(dir + "/model.safetensors", [](auto& ts) { find_tensor(ts, kKProj).dtype = DType::I32; });
  const std::string msg = load_error(dir);
  EXPECT_HAS(msg, dir + "/model.safetensors");
  EXPECT_HAS(msg, kKProj);
  EXPECT_HAS(msg, "I32");
}

TEST(HfCheckpointErrors, MissingLmHeadWhenNotTied) {
  const std::string dir = copy_llama("no_lm_head");
  rewrite_tensors(dir + "/model.safetensors", [](auto& ts) {
    std::erase_if(ts, [](const TensorToWrite& t) { return t.name == "lm_head.weight"; });
  });
  const std::string msg = load_error(dir);
  EXPECT_HAS(msg, dir + "/model.safetensors");
  EXPECT_HAS(msg, "missing tensor 'lm_head.weight'");
  EXPECT_HAS(msg, "[512, 64]");
}

// ---- sharded checkpoints ----------------------------------------------------------------------------

// Writes the llama fixture as two shards plus model.safetensors.index.json; `edit_index` may break it.
std::string write_sharded(const std::string& name, const std::function<void(json&)>& edit_index = {}) {
  const std::string dir = copy_llama(name, /*with_weights=*/false);
  auto src = SafetensorsFile::open(llama_dir() + "/model.safetensors");
  const auto& all = src.index().tensors;
  std::vector<TensorToWrite> part[2];
  json index = {{"metadata", {{"total_size", 0}}}, {"weight_map", json::object()}};
  uint64_t total = 0;
  for (size_t i = 0; i < all.size(); ++i) {
    const int s = i < all.size() / 2 ? 0 : 1;
    const auto& t = all[i];
    part[s].push_back({t.name, t.dtype, t.shape, {t.data, t.nbytes}});
    index["weight_map"][t.name] = s == 0 ? "model-00001-of-00002.safetensors" : "model-00002-of-00002.safetensors";
    total += t.nbytes;
  }
  index["metadata"]["total_size"] = total;
  write_safetensors(dir + "/model-00001-of-00002.safetensors", part[0]);
  write_safetensors(dir + "/model-00002-of-00002.safetensors", part[1]);
  if (edit_index) edit_index(index);
  write_bytes(dir + "/model.safetensors.index.json", index.dump(2));
  return dir;
}

TEST(ShardedCheckpoint, LoadsAndGivesBitIdenticalLogits) {
  const std::string dir = write_sharded("sharded");
  EXPECT_FALSE(fs::exists(dir + "/model.safetensors"));
  auto sharded = load_model(dir);
  auto single = load_model(llama_dir());
  ASSERT_EQ(sharded->config.vocab_size, 512);
  const Reference ref = llama_reference();
  const auto a = prompt_logits(*sharded, ref.input_ids, ref.prompt_len);
  const auto b = prompt_logits(*single, ref.input_ids, ref.prompt_len);
  ASSERT_EQ(a.size(), size_t(2 * ref.prompt_len * 512));
  ASSERT_EQ(a.size(), b.size());
  EXPECT_EQ(std::memcmp(a.data(), b.data(), a.size() * sizeof(float)), 0);
}

TEST(ShardedCheckpoint, IndexNamingMissingShard) {
  const std::string dir = write_sharded("missing_shard", [](json& idx) {
    idx["weight_map"]["model.norm.weight"] = "model-00003-of-00002.safetensors";
  });
  const std::string msg = load_error(dir);
  EXPECT_HAS(msg, dir + "/model.safetensors.index.json");
  EXPECT_HAS(msg, "'model-00003-of-00002.safetensors'");
  EXPECT_HAS(msg, "does not exist");
}

TEST(ShardedCheckpoint, IndexNamingWrongShardForTensor) {
  std::string moved;
  const std::string dir = write_sharded("wrong_shard", [&](json& idx) {
    // Point a tensor of shard 2 at shard 1.
    for (auto it = idx["weight_map"].begin(); it != idx["weight_map"].end(); ++it)
      if (it.value() == "model-00002-of-00002.safetensors") {
        moved = it.key();
        it.value() = "model-00001-of-00002.safetensors";
        break;
      }
  });
  ASSERT_FALSE(moved.empty());
  const std::string msg = load_error(dir);
  EXPECT_HAS(msg, "model-00001-of-00002.safetensors");
  EXPECT_HAS(msg, "'" + moved + "'");
}

TEST(ShardedCheckpoint, IndexWithoutWeightMapOrEscapingPath) {
  std::string dir = write_sharded("no_weight_map", [](json& idx) { idx.erase("weight_map"); });
  EXPECT_HAS(load_error(dir), "weight_map");
  dir = write_sharded("escaping_shard", [](json& idx) { idx["weight_map"]["model.norm.weight"] = "../llama/model.safetensors"; });
  const std::string msg = load_error(dir);
  EXPECT_HAS(msg, "model.norm.weight");
  EXPECT_HAS(msg, "must be a file in the checkpoint folder");
}

// ---- llama2.c .bin ------------------------------------------------------------------------------------

std::string stories_bin() { return test::shared_path("fixtures/stories260k/stories260K.bin"); }

std::string write_bin(const std::string& name, const std::string& bytes) {
  const std::string path = new_dir("bin_" + name) + "/model.bin";
  write_bytes(path, bytes);
  return path;
}

TEST(Llama2cCheckpointErrors, UnmodifiedCopyLoads) {
  auto m = load_model(write_bin("ok", read_bytes(stories_bin())));
  EXPECT_EQ(m->format, "llama2c");
  EXPECT_EQ(m->config.num_layers, 5);
  EXPECT_EQ(m->config.num_heads, 8);
}

TEST(Llama2cCheckpointErrors, TruncatedBy100Bytes) {
  const std::string img = read_bytes(stories_bin());
  ASSERT_EQ(img.size(), 1056540u);
  const std::string path = write_bin("trunc", img.substr(0, img.size() - 100));
  const std::string msg = load_error(path);
  EXPECT_HAS(msg, path);
  EXPECT_HAS(msg, "truncated");
  EXPECT_HAS(msg, "1056540");
  EXPECT_HAS(msg, "1056440");
}

TEST(Llama2cCheckpointErrors, ZeroHeads) {
  std::string img = read_bytes(stories_bin());
  const int32_t zero = 0;
  std::memcpy(img.data() + 3 * 4, &zero, 4);  // n_heads
  const std::string path = write_bin("zero_heads", img);
  const std::string msg = load_error(path);
  EXPECT_HAS(msg, path);
  EXPECT_HAS(msg, "n_heads = 0");
}

TEST(Llama2cCheckpointErrors, EmptyFile) {
  const std::string path = write_bin("empty", "");
  const std::string msg = load_error(path);
  EXPECT_HAS(msg, path);
  EXPECT_HAS(msg, "too small");
}

TEST(Llama2cCheckpointErrors, ExtraTrailingBytes) {
  const std::string path = write_bin("trailing", read_bytes(stories_bin()) + std::string(12, '\x7f'));
  const std::string msg = load_error(path);
  EXPECT_HAS(msg, path);
  EXPECT_HAS(msg, "12 unexpected bytes");
}

TEST(Llama2cCheckpointErrors, InconsistentHeads) {
  std::string img = read_bytes(stories_bin());
  const int32_t three = 3;
  std::memcpy(img.data() + 4 * 4, &three, 4);  // n_kv_heads = 3 does not divide n_heads = 8
  const std::string path = write_bin("kv3", img);
  const std::string msg = load_error(path);
  EXPECT_HAS(msg, path);
  EXPECT_HAS(msg, "n_kv_heads 3");
}

// ---- random: specs --------------------------------------------------------------------------------

TEST(RandomModel, NonexistentConfig) {
  const std::string missing = test::temp_dir() + "/nope/config.json";
  const std::string msg = load_error("random:" + missing);
  EXPECT_HAS(msg, missing);
  EXPECT_HAS(load_error("random:"), "random:CONFIG.json");
}

TEST(RandomModel, SeedDeterminesWeights) {
  const std::string cfg = llama_dir() + "/config.json";
  const std::vector<int32_t> prompt = {1, 17, 300, 42, 511, 0, 9};
  auto first_logits = [&](const std::string& spec) {
    auto m = load_model(spec);
    EXPECT_EQ(m->format, "random");
    Transformer tf(*m, test::attention());
    KvCache c = tf.new_cache();
    SequenceStep s{&c, prompt, -1};
    return tf.forward({&s, 1});
  };
  const auto a = first_logits("random:" + cfg + ":7");
  const auto b = first_logits("random:" + cfg + ":7");
  const auto c = first_logits("random:" + cfg + ":8");
  const auto d0 = first_logits("random:" + cfg);
  const auto d1 = first_logits("random:" + cfg + ":0");
  ASSERT_EQ(a.size(), 512u);
  EXPECT_EQ(std::memcmp(a.data(), b.data(), a.size() * 4), 0);
  EXPECT_GT(test::compare(a.data(), c.data(), 512).max_abs_diff, 1e-3);
  EXPECT_EQ(std::memcmp(d0.data(), d1.data(), a.size() * 4), 0);
  EXPECT_GT(test::compare(a.data(), d0.data(), 512).max_abs_diff, 1e-3);
  for (float v : a) ASSERT_TRUE(std::isfinite(v));
}

// ---- forward-pass input validation -------------------------------------------------------------

TEST(TransformerInput, TokenOutsideVocabularyIsAnError) {
  auto m = load_model(llama_dir());
  Transformer tf(*m, test::attention());
  for (int32_t bad : {512, 100000, -1}) {
    KvCache good_cache = tf.new_cache(), bad_cache = tf.new_cache();
    const std::vector<int32_t> ok = {1, 2, 3};
    const std::vector<int32_t> toks = {1, 2, bad};
    std::vector<SequenceStep> steps = {{&good_cache, ok, -1}, {&bad_cache, toks, -1}};
    try {
      tf.forward(steps);
      ADD_FAILURE() << "token " << bad << " accepted";
    } catch (const Error& e) {
      EXPECT_HAS(std::string(e.what()), std::to_string(bad));
      EXPECT_HAS(std::string(e.what()), "vocabulary");
    }
    EXPECT_EQ(good_cache.position(), 0);
    EXPECT_EQ(bad_cache.position(), 0);
  }
}

// ---- loglikelihood ---------------------------------------------------------------------------------

// log p(continuation | context) from one forward pass over all requests in one batch (the same batch
// loglikelihood() forms when its token budget is large), log-softmax in double.
std::vector<std::pair<double, bool>> forward_loglik(const Model& model, const std::vector<LoglikRequest>& reqs) {
  Transformer tf(model, test::attention());
  const int64_t vocab = model.config.vocab_size;
  std::vector<std::vector<int32_t>> seqs;
  std::vector<KvCache> caches;
  caches.reserve(reqs.size());
  std::vector<SequenceStep> steps;
  for (const auto& r : reqs) {
    std::vector<int32_t> s = r.context;
    s.insert(s.end(), r.continuation.begin(), r.continuation.end() - 1);
    seqs.push_back(std::move(s));
    caches.push_back(tf.new_cache());
  }
  for (size_t i = 0; i < reqs.size(); ++i) steps.push_back({&caches[i], seqs[i], int64_t(reqs[i].context.size()) - 1});
  const auto logits = tf.forward(steps);
  std::vector<std::pair<double, bool>> out;
  int64_t row = 0;
  for (const auto& r : reqs) {
    double total = 0;
    bool greedy = true;
    for (int32_t target : r.continuation) {
      const float* z = logits.data() + row++ * vocab;
      double mx = -INFINITY;
      for (int64_t i = 0; i < vocab; ++i) mx = std::max(mx, double(z[i]));
      double sum = 0;
      for (int64_t i = 0; i < vocab; ++i) sum += std::exp(double(z[i]) - mx);
      total += double(z[target]) - (mx + std::log(sum));
      greedy = greedy && argmax(z, vocab) == target;
    }
    out.emplace_back(total, greedy);
  }
  EXPECT_EQ(row * vocab, int64_t(logits.size()));
  return out;
}

std::vector<LoglikRequest> greedy_requests(const Reference& ref) {
  std::vector<LoglikRequest> reqs;
  for (int64_t b = 0; b < ref.batch; ++b) {
    const auto* g = ref.generated.data() + b * ref.gen_len;
    reqs.push_back({std::vector<int32_t>(g, g + ref.prompt_len), std::vector<int32_t>(g + ref.prompt_len, g + ref.gen_len)});
    EXPECT_EQ(reqs.back().context,
              std::vector<int32_t>(ref.input_ids.begin() + b * ref.prompt_len, ref.input_ids.begin() + (b + 1) * ref.prompt_len));
  }
  return reqs;
}

TEST(Loglikelihood, GreedyContinuationMatchesForwardLogSoftmax) {
  auto m = load_model(llama_dir());
  const Reference ref = llama_reference();
  ASSERT_EQ(ref.gen_len, ref.prompt_len + 16);
  const auto reqs = greedy_requests(ref);
  Transformer tf(*m, test::attention());
  const auto got = loglikelihood(tf, reqs);
  const auto want = forward_loglik(*m, reqs);
  ASSERT_EQ(got.size(), 2u);
  for (size_t i = 0; i < got.size(); ++i) {
    EXPECT_NEAR(got[i].logprob, want[i].first, 1e-9 * std::abs(want[i].first)) << "request " << i;
    EXPECT_LT(got[i].logprob, 0);
    EXPECT_TRUE(got[i].is_greedy) << "request " << i;
    EXPECT_TRUE(want[i].second) << "request " << i;
  }
}

TEST(Loglikelihood, ChangedTokenIsNotGreedy) {
  auto m = load_model(llama_dir());
  auto reqs = greedy_requests(llama_reference());
  LoglikRequest changed = reqs[0];
  changed.continuation[5] = (changed.continuation[5] + 1) % 512;
  reqs.push_back(changed);
  Transformer tf(*m, test::attention());
  const auto got = loglikelihood(tf, reqs);
  const auto want = forward_loglik(*m, reqs);
  ASSERT_EQ(got.size(), 3u);
  EXPECT_TRUE(got[0].is_greedy);
  EXPECT_TRUE(got[1].is_greedy);
  EXPECT_FALSE(got[2].is_greedy);
  EXPECT_FALSE(want[2].second);
  EXPECT_NEAR(got[2].logprob, want[2].first, 1e-9 * std::abs(want[2].first));
  EXPECT_NE(got[2].logprob, got[0].logprob);
  // Single-token continuations: the argmax is greedy, any other token is not and scores lower.
  const auto& ctx0 = reqs[0].context;
  const int32_t best = reqs[0].continuation[0];
  const auto single = loglikelihood(tf, {{ctx0, {best}}, {ctx0, {(best + 7) % 512}}});
  EXPECT_TRUE(single[0].is_greedy);
  EXPECT_FALSE(single[1].is_greedy);
  EXPECT_GT(single[0].logprob, single[1].logprob);
}

TEST(Loglikelihood, SmallBatchesGiveTheSameResults) {
  auto m = load_model(llama_dir());
  const Reference ref = llama_reference();
  // Short requests of 4, 6 and 8 tokens, so that a budget of 10 packs some of them together.
  std::vector<LoglikRequest> reqs = greedy_requests(ref);
  for (int64_t b = 0; b < ref.batch; ++b)
    for (int k : {1, 3, 5}) {
      const int32_t* p = ref.input_ids.data() + b * ref.prompt_len;
      reqs.push_back({std::vector<int32_t>(p, p + k + 1), std::vector<int32_t>(p + k + 1, p + k + 4)});
    }
  reqs.push_back({{1}, {5}});  // one-token context and continuation
  Transformer tf(*m, test::attention());
  const auto one_batch = loglikelihood(tf, reqs);
  const auto small = loglikelihood(tf, reqs, 10);
  const auto want = forward_loglik(*m, reqs);
  ASSERT_EQ(one_batch.size(), reqs.size());
  ASSERT_EQ(small.size(), reqs.size());
  for (size_t i = 0; i < reqs.size(); ++i) {
    EXPECT_NEAR(one_batch[i].logprob, want[i].first, 1e-9 * std::abs(want[i].first)) << "request " << i;
    // Other batch shapes take other GEMM paths, so float32 rounding may differ slightly.
    EXPECT_NEAR(small[i].logprob, one_batch[i].logprob, 1e-5 * std::abs(one_batch[i].logprob)) << "request " << i;
    EXPECT_EQ(small[i].is_greedy, one_batch[i].is_greedy) << "request " << i;
    EXPECT_EQ(one_batch[i].is_greedy, want[i].second) << "request " << i;
  }
}

TEST(Loglikelihood, InvalidRequestsAreErrors) {
  auto m = load_model(llama_dir());
  Transformer tf(*m, test::attention());
  EXPECT_THROW(loglikelihood(tf, {{{}, {1}}}), Error);
  EXPECT_THROW(loglikelihood(tf, {{{1}, {}}}), Error);
  try {
    loglikelihood(tf, {{{1, 2}, {3, 512}}});
    ADD_FAILURE() << "continuation token 512 accepted";
  } catch (const Error& e) {
    EXPECT_HAS(std::string(e.what()), "512");
  }
}

}  // namespace
}  // namespace ctx

namespace ctx {
namespace {

// ---- float16 storage --------------------------------------------------------------------------------

TEST(HfCheckpointFormats, Float16WeightsAreConvertedExactly) {
  const std::string dir = copy_llama("f16", /*with_weights=*/false);
  std::vector<std::vector<uint16_t>> halves;  // storage for the converted tensors
  rewrite_tensors(dir + "/model.safetensors", [&](std::vector<TensorToWrite>& ts) {
    halves.reserve(ts.size());
    for (auto& t : ts) {
      const float* f = reinterpret_cast<const float*>(t.data.data());
      halves.emplace_back(t.data.size() / 4);
      for (size_t i = 0; i < halves.back().size(); ++i) halves.back()[i] = f32_to_f16(f[i]);
      t.dtype = DType::F16;
      t.data = {reinterpret_cast<const uint8_t*>(halves.back().data()), halves.back().size() * 2};
    }
  });
  auto f16 = load_model(dir);
  auto f32 = load_model(llama_dir());
  // Every weight is exactly the f16 rounding of the float32 original.
  const auto& e16 = f16->weights.embed;
  const auto& e32 = f32->weights.embed;
  for (int64_t i = 0; i < e32.rows * e32.cols; ++i) ASSERT_EQ(e16.data[i], f16_to_f32(f32_to_f16(e32.data[i]))) << i;
  // And the model computes nearly the same logits (f16 rounding of weights only).
  const Reference r = llama_reference();
  const auto a = prompt_logits(*f16, r.input_ids, r.prompt_len), b = prompt_logits(*f32, r.input_ids, r.prompt_len);
  const auto d = test::compare(a.data(), b.data(), int64_t(a.size()));
  EXPECT_GT(d.max_abs_diff, 0.0);
  EXPECT_LE(d.relative(), 5e-3);
}

}  // namespace
}  // namespace ctx
