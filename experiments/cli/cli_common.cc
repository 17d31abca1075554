#include "experiments/cli/cli_common.h"

#include <algorithm>
#include <charconv>
#include <cstdio>
#include <iostream>

#include "core/base/error.h"
#include "core/base/threads.h"
#include "core/quant/quantize_model.h"
#include "plugins/register_all.h"

namespace ctx::cli {

bool parse_options(const std::string& command, const std::string& usage, po::options_description& desc,
                   const std::vector<std::string>& args, po::variables_map& vm,
                   const po::positional_options_description* positional) {
  desc.add_options()("threads", po::value<int>()->default_value(0), "CPU threads (0 = all cores)")("help,h",
                                                                                                   "show this help");
  auto parser = po::command_line_parser(args).options(desc);
  if (positional) parser.positional(*positional);
  po::store(parser.run(), vm);
  if (vm.count("help")) {
    std::cout << "usage: ctxlab " << command << " " << usage << "\n\n" << desc << "\n";
    return false;
  }
  po::notify(vm);
  set_num_threads(vm["threads"].as<int>());
  return true;
}

namespace {
template <class T>
std::vector<T> parse_list(const std::string& text, const std::string& what) {
  std::vector<T> out;
  size_t pos = 0;
  while (pos <= text.size()) {
    size_t comma = text.find(',', pos);
    if (comma == std::string::npos) comma = text.size();
    std::string item = text.substr(pos, comma - pos);
    while (!item.empty() && item.front() == ' ') item.erase(item.begin());
    while (!item.empty() && item.back() == ' ') item.pop_back();
    T v{};
    auto [end, ec] = std::from_chars(item.data(), item.data() + item.size(), v);
    if (item.empty() || ec != std::errc() || end != item.data() + item.size() || v < 0)
      fail(what, ": '", item, "' is not a non-negative integer (expected a comma-separated list like 1,5,9)");
    out.push_back(v);
    pos = comma + 1;
  }
  return out;
}
}  // namespace

std::vector<int32_t> parse_id_list(const std::string& text, const std::string& what) { return parse_list<int32_t>(text, what); }
std::vector<int64_t> parse_size_list(const std::string& text, const std::string& what) { return parse_list<int64_t>(text, what); }


void add_attention_option(po::options_description& desc) {
  desc.add_options()("attention", po::value<std::string>()->default_value("sdpa"),
                     "attention backend spec, e.g. flash or paged:block_size=32 (see `ctxlab plugins attention`)");
}

std::shared_ptr<const AttentionBackend> make_attention(const po::variables_map& vm) {
  return make_attention_spec(vm["attention"].as<std::string>());
}

std::shared_ptr<const AttentionBackend> make_attention_spec(const std::string& spec) {
  return builtin_catalog().attention.create(spec);
}

void add_quant_option(po::options_description& desc) {
  desc.add_options()("quant", po::value<std::string>()->default_value("none"),
                     "weight quantizer spec, e.g. q4_0 or nf4:double_quant=true (see `ctxlab plugins quant`)");
}

std::string apply_quant(const std::string& spec, Model& model) {
  return quantize_model_weights(model.weights, builtin_catalog().quant, spec);
}

std::string apply_quant(const po::variables_map& vm, Model& model) { return apply_quant(vm["quant"].as<std::string>(), model); }

void add_kv_option(po::options_description& desc) {
  desc.add_options()("kv", po::value<std::string>()->default_value("none"),
                     "KV-cache compressor spec, e.g. l2norm:keep_ratio=0.5 (see `ctxlab plugins kv`)");
}

std::shared_ptr<const KvCompressor> make_kv_compressor(const po::variables_map& vm) {
  return builtin_catalog().kv.create(vm["kv"].as<std::string>());
}

void add_kv_quant_option(po::options_description& desc) {
  desc.add_options()("kv-quant", po::value<std::string>()->default_value("none"),
                     "KV-cache quantization spec, e.g. kivi:bits=4,group=32,residual=128 (see `ctxlab plugins kv_quant`)");
}

KvQuantConfig make_kv_quant(const po::variables_map& vm) {
  return resolve_kv_quant(builtin_catalog(), vm["kv-quant"].as<std::string>());
}

std::string human_bytes(double b) {
  const char* unit[] = {"B", "KiB", "MiB", "GiB", "TiB"};
  int u = 0;
  while (b >= 1024 && u < 4) b /= 1024, ++u;
  char buf[32];
  std::snprintf(buf, sizeof buf, u ? "%.2f %s" : "%.0f %s", b, unit[u]);
  return buf;
}

}  // namespace ctx::cli
