// Pieces shared by the ctxlab subcommands: option parsing with uniform --help and error handling,
// id-list parsing, and model/tokenizer loading.
#pragma once

#include <boost/program_options.hpp>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "core/attention/attention_backend.h"
#include "core/kv/kv_compressor.h"
#include "core/model/model_loader.h"
#include "core/tokenizer/tokenizer.h"

namespace ctx::cli {

namespace po = boost::program_options;

// Parses `args` (after the subcommand name) against `desc` plus --help and --threads.
// Returns false when --help was printed. Throws po::error for bad options.
bool parse_options(const std::string& command, const std::string& usage, po::options_description& desc,
                   const std::vector<std::string>& args, po::variables_map& vm,
                   const po::positional_options_description* positional = nullptr);

// "1,5,9" -> {1, 5, 9}. Throws ctx::Error naming `what` on anything else.
std::vector<int32_t> parse_id_list(const std::string& text, const std::string& what);
// Same for 64-bit sizes, e.g. "128,512,2048".
std::vector<int64_t> parse_size_list(const std::string& text, const std::string& what);


// --attention SPEC (an attention plugin spec, default sdpa; see `ctxlab plugins attention`).
void add_attention_option(po::options_description& desc);
std::shared_ptr<const AttentionBackend> make_attention(const po::variables_map& vm);
std::shared_ptr<const AttentionBackend> make_attention_spec(const std::string& spec);

// --quant SPEC (a weight quantizer spec, default none; see `ctxlab plugins quant`).
void add_quant_option(po::options_description& desc);
// Quantizes the model's decoder linear layers with the spec of --quant (core/quant/quantize_model.h);
// returns the canonical spec. Throws ctx::Error / ctx::Unsupported naming the spec and the matrix.
std::string apply_quant(const po::variables_map& vm, Model& model);
std::string apply_quant(const std::string& spec, Model& model);

// --kv SPEC (a KV compressor spec, default none; see `ctxlab plugins kv`).
void add_kv_option(po::options_description& desc);
std::shared_ptr<const KvCompressor> make_kv_compressor(const po::variables_map& vm);

// --kv-quant SPEC (a KV quantization spec, default none, e.g. kivi:bits=4,group=32,residual=128; see
// `ctxlab plugins kv_quant`). Orthogonal to --kv; a compressor that drops entries is refused with it.
void add_kv_quant_option(po::options_description& desc);
KvQuantConfig make_kv_quant(const po::variables_map& vm);

std::string human_bytes(double bytes);

}  // namespace ctx::cli
