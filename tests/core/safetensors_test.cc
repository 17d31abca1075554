#include "core/io/safetensors.h"

#include <gtest/gtest.h>

#include <cstring>
#include <fstream>
#include <random>

#include "core/base/error.h"
#include "tests/support/error_of.h"
#include "tests/support/test_paths.h"

namespace ctx {
namespace {

std::string make_image(const std::string& header_json, const std::string& payload) {
  std::string out(8, '\0');
  uint64_t n = header_json.size();
  for (int i = 0; i < 8; ++i) out[i] = char(n >> (8 * i));
  return out + header_json + payload;
}

std::string error_of(const std::string& image) {
  return test::error_of(
      [&] { parse_safetensors(reinterpret_cast<const uint8_t*>(image.data()), image.size(), "t.safetensors"); });
}

TEST(Safetensors, ReadsReferenceFixture) {
  auto f = SafetensorsFile::open(test::shared_path("fixtures/hf/llama/reference.safetensors"));
  const TensorView* logits = f.index().find("logits");
  ASSERT_NE(logits, nullptr);
  EXPECT_EQ(logits->dtype, DType::F32);
  ASSERT_EQ(logits->shape.size(), 3u);
  EXPECT_EQ(logits->shape[0], 2);
  EXPECT_EQ(logits->shape[2], 512);
  const TensorView* ids = f.index().find("input_ids");
  ASSERT_NE(ids, nullptr);
  EXPECT_EQ(ids->dtype, DType::I64);
  EXPECT_EQ(ids->nbytes, size_t(ids->numel() * 8));
}

TEST(Safetensors, ReadsBf16Checkpoint) {
  auto f = SafetensorsFile::open(test::shared_path("fixtures/hf/llama_bf16/model.safetensors"));
  const TensorView* emb = f.index().find("model.embed_tokens.weight");
  ASSERT_NE(emb, nullptr);
  EXPECT_EQ(emb->dtype, DType::BF16);
  EXPECT_EQ(emb->shape_str(), "[512, 64]");
}

TEST(Safetensors, WriteThenReadRoundTrips) {
  std::vector<float> a = {1.5f, -2.f, 3.25f, 0.f, 7.f, 8.f};
  std::vector<int64_t> b = {42, -1};
  std::string path = test::temp_dir() + "/rt.safetensors";
  write_safetensors(path,
                    {{"a", DType::F32, {2, 3}, {reinterpret_cast<const uint8_t*>(a.data()), a.size() * 4}},
                     {"b", DType::I64, {2}, {reinterpret_cast<const uint8_t*>(b.data()), b.size() * 8}}},
                    {{"format", "pt"}});
  auto f = SafetensorsFile::open(path);
  EXPECT_EQ(f.index().metadata.at("format"), "pt");
  const TensorView* ta = f.index().find("a");
  ASSERT_NE(ta, nullptr);
  EXPECT_EQ(ta->shape_str(), "[2, 3]");
  EXPECT_EQ(std::memcmp(ta->data, a.data(), 24), 0);
  const TensorView* tb = f.index().find("b");
  ASSERT_NE(tb, nullptr);
  int64_t v;
  std::memcpy(&v, tb->data, 8);
  EXPECT_EQ(v, 42);
  // The header is padded to a multiple of 8 so that data is aligned.
  EXPECT_EQ(reinterpret_cast<uintptr_t>(ta->data) % 8, 0u);
}

TEST(Safetensors, CorruptInputsGiveClearErrors) {
  EXPECT_NE(error_of("").find("need at least 8"), std::string::npos);
  EXPECT_NE(error_of(std::string(8, '\0') + "").find("not valid JSON"), std::string::npos);
  std::string huge(8, '\xff');
  EXPECT_NE(error_of(huge).find("exceeds the limit"), std::string::npos);
  std::string lying = make_image(R"({"x":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}})", "");
  lying.resize(8 + 10);  // header truncated
  EXPECT_NE(error_of(lying).find("larger than the file"), std::string::npos);
  EXPECT_NE(error_of(make_image(R"({"x":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}})", "1234")).find("past the data buffer"),
            std::string::npos);
  EXPECT_NE(error_of(make_image(R"({"x":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}})", "12345678")).find("needs 12"),
            std::string::npos);
  EXPECT_NE(error_of(make_image(R"({"x":{"dtype":"Q9","shape":[2],"data_offsets":[0,8]}})", "12345678")).find("unknown dtype 'Q9'"),
            std::string::npos);
  EXPECT_NE(error_of(make_image(R"({"x":{"dtype":"F32","shape":[-2],"data_offsets":[0,8]}})", "12345678")).find("non-negative"),
            std::string::npos);
  EXPECT_NE(error_of(make_image(R"({"x":{"dtype":"F32","shape":[4294967296,4294967296,16],"data_offsets":[0,8]}})", "12345678"))
                .find("overflows"),
            std::string::npos);
  EXPECT_NE(error_of(make_image(R"({"x":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"y":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}})",
                                "12345678"))
                .find("overlap"),
            std::string::npos);
  EXPECT_NE(error_of(make_image(R"([1,2])", "")).find("JSON object"), std::string::npos);
  EXPECT_NE(error_of(make_image(R"({"x":{"dtype":"F32","shape":[1],"data_offsets":[8,4]}})", "12345678")).find("begin > end"),
            std::string::npos);
}

// Regressions found by fuzzing (tests/fuzz): an empty tensor sorted between two overlapping ones hid
// the overlap, and numel() overflowed int64 on a valid empty shape.
TEST(Safetensors, OverlapBehindEmptyTensor) {
  const std::string msg = error_of(make_image(
      R"({"a":{"dtype":"U8","shape":[8],"data_offsets":[0,8]},"b":{"dtype":"U8","shape":[0],"data_offsets":[2,2]},)"
      R"("c":{"dtype":"U8","shape":[2],"data_offsets":[4,6]}})",
      "12345678"));
  EXPECT_NE(msg.find("t.safetensors"), std::string::npos) << msg;
  EXPECT_NE(msg.find("'a' and 'c' overlap"), std::string::npos) << msg;
}

TEST(Safetensors, HugeEmptyShapeHasZeroElements) {
  const std::string img =
      make_image(R"({"x":{"dtype":"F32","shape":[4294967296,2147483649,0],"data_offsets":[0,0]}})", "");
  const auto idx = parse_safetensors(reinterpret_cast<const uint8_t*>(img.data()), img.size(), "t.safetensors");
  ASSERT_EQ(idx.tensors.size(), 1u);
  EXPECT_EQ(idx.tensors[0].numel(), 0);
  EXPECT_EQ(idx.tensors[0].nbytes, 0u);
  EXPECT_EQ(idx.tensors[0].shape_str(), "[4294967296, 2147483649, 0]");
}

TEST(Safetensors, EmptyFileIsAnError) {
  std::string path = test::temp_dir() + "/empty.safetensors";
  std::ofstream(path).close();
  EXPECT_THROW(SafetensorsFile::open(path), Error);
  EXPECT_THROW(SafetensorsFile::open(test::temp_dir() + "/missing.safetensors"), Error);
}

// Deterministic mutation fuzzing of a real checkpoint header: every mutated image must either parse
// into tensors that lie inside the image, or throw ctx::Error. (A crash or ASan report fails the test.)
TEST(Safetensors, MutatedImagesNeverCrash) {
  MappedFile f = MappedFile::open(test::shared_path("fixtures/hf/llama/model.safetensors"));
  uint64_t header_len = 0;
  for (int i = 7; i >= 0; --i) header_len = (header_len << 8) | f.data()[i];
  std::string base(reinterpret_cast<const char*>(f.data()), size_t(8 + header_len + 64));
  std::mt19937_64 rng(7);
  int parsed = 0, rejected = 0;
  for (int iter = 0; iter < 3000; ++iter) {
    std::string img = base;
    int edits = 1 + int(rng() % 4);
    for (int e = 0; e < edits; ++e) {
      size_t pos = rng() % img.size();
      switch (rng() % 4) {
        case 0: img[pos] = char(rng()); break;
        case 1: img[pos] = "0123456789[]{},:\""[rng() % 17]; break;
        case 2: img.erase(pos, 1 + rng() % 8); break;
        default: img.resize(pos); break;
      }
    }
    try {
      auto idx = parse_safetensors(reinterpret_cast<const uint8_t*>(img.data()), img.size(), "m");
      for (const auto& t : idx.tensors) {
        ASSERT_GE(t.data, reinterpret_cast<const uint8_t*>(img.data()));
        ASSERT_LE(t.data + t.nbytes, reinterpret_cast<const uint8_t*>(img.data()) + img.size());
      }
      ++parsed;
    } catch (const Error&) {
      ++rejected;
    }
  }
  EXPECT_GT(rejected, 0);
  EXPECT_EQ(parsed + rejected, 3000);
}

}  // namespace
}  // namespace ctx
