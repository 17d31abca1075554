#include "tests/support/model_check.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstring>

namespace ctx::test {

std::vector<int32_t> ids_tensor(const SafetensorsIndex& index, const std::string& name, std::vector<int64_t>* shape) {
  const TensorView* t = index.find(name);
  if (!t) {
    ADD_FAILURE() << "reference has no tensor " << name;
    return {};
  }
  if (shape) *shape = t->shape;
  std::vector<int32_t> out(size_t(t->numel()));
  for (size_t i = 0; i < out.size(); ++i) {
    if (t->dtype == DType::I64) {
      int64_t v;
      std::memcpy(&v, t->data + i * 8, 8);
      out[i] = int32_t(v);
    } else {
      std::memcpy(&out[i], t->data + i * 4, 4);
    }
  }
  return out;
}

std::vector<float> f32_tensor(const SafetensorsIndex& index, const std::string& name, std::vector<int64_t>* shape) {
  const TensorView* t = index.find(name);
  if (!t || t->dtype != DType::F32) {
    ADD_FAILURE() << "reference has no float32 tensor " << name;
    return {};
  }
  if (shape) *shape = t->shape;
  std::vector<float> out(size_t(t->numel()));
  std::memcpy(out.data(), t->data, t->nbytes);
  return out;
}

HfReference load_hf_reference(const std::string& dir) {
  auto f = SafetensorsFile::open(dir + "/reference.safetensors");
  HfReference r;
  std::vector<int64_t> s_ids, s_logits, s_gen;
  r.input_ids = ids_tensor(f.index(), "input_ids", &s_ids);
  r.logits = f32_tensor(f.index(), "logits", &s_logits);
  r.generated = ids_tensor(f.index(), "generated", &s_gen);
  r.batch = s_ids.at(0);
  r.prompt_len = s_ids.at(1);
  r.vocab = s_logits.at(2);
  r.generated_len = s_gen.at(1);
  return r;
}

double relative_l2(const float* a, const float* ref, size_t n) {
  double num = 0, den = 0;
  for (size_t i = 0; i < n; ++i) {
    if (!std::isfinite(a[i])) return INFINITY;
    num += (double(a[i]) - ref[i]) * (double(a[i]) - ref[i]);
    den += double(ref[i]) * ref[i];
  }
  return std::sqrt(num / den);
}

LogitDiff compare(const float* ours, const float* ref, int64_t n) {
  LogitDiff d;
  for (int64_t i = 0; i < n; ++i) {
    d.max_abs_diff = std::max(d.max_abs_diff, std::fabs(double(ours[i]) - double(ref[i])));
    d.max_abs_ref = std::max(d.max_abs_ref, std::fabs(double(ref[i])));
  }
  return d;
}

}  // namespace ctx::test
