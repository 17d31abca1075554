// The plugin registry: typed parameters, spec texts (command line and canonical), config resolution
// from INI and JSON, listings, and the errors a user gets for each kind of mistake. Test-only fake
// plugins cover every ParamType; the built-in attention backends are tested in tests/plugins.
// Boost.PropertyTree's JSON reader includes the deprecated global bind placeholders.
#define BOOST_BIND_GLOBAL_PLACEHOLDERS
#include <gtest/gtest.h>

#include <boost/property_tree/ini_parser.hpp>
#include <boost/property_tree/json_parser.hpp>
#include <boost/property_tree/ptree.hpp>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <optional>
#include <random>
#include <sstream>

#include "core/base/error.h"
#include "core/plugin/catalog.h"
#include "tests/support/error_of.h"

namespace ctx {
namespace {

using boost::property_tree::ptree;

// A backend that only remembers its parameters.
class FakeBackend : public AttentionBackend {
 public:
  explicit FakeBackend(Params p) : params(std::move(p)) {}
  Support supports(const AttentionParams&, KvLayout) const override { return Support::yes(); }
  void forward(const AttentionParams&, std::span<const AttentionSequence>) const override {}
  Params params;
};

// A second, test-only plugin interface: registries are generic over it.
struct FakeKv {
  Params params;
};

struct TestCatalog {
  Catalog catalog;
  Registry<FakeKv> kv{"kv"};
  TestCatalog() {
    auto backend = [](const Params& p) { return std::make_unique<FakeBackend>(p); };
    catalog.attention.add({"eager", 1, "materialised scores; the reference", {}}, backend);
    catalog.attention.add({"flex", 1, "FlexAttention-style masks with block skipping",
                           {ParamSpec::Choice("mask", "causal", {"causal", "sliding_window", "prefix_lm"}, "mask_mod"),
                            ParamSpec::Int("window", 0, 0, 1 << 20, "sliding window (0: none)"),
                            ParamSpec::Int("block", 64, 16, 1024, "block-mask tile size")}},
                          backend);
    catalog.attention.add({"paged", 3, "KV in fixed-size blocks",
                           {ParamSpec::Int("block_size", 16, 1, 4096, "tokens per block"),
                            ParamSpec::Int("offset", -3, -100, 100, "a signed int"),
                            ParamSpec::Float("scale", 1.0, std::nullopt, std::nullopt, "unbounded float")}},
                          backend);
    kv.add({"l2norm", 2, "keep the lowest-L2-norm keys",
            {ParamSpec::Float("keep_ratio", 0.7, 0.0, 1.0, "fraction of KV entries kept"),
             ParamSpec::Int("prune_after", 512, 0, std::nullopt, "tokens before pruning starts"),
             ParamSpec::IntList("skip_layers", {0, 1}, 0, 255, "layers left untouched"),
             ParamSpec::Bool("per_head", true, "rank per head"),
             ParamSpec::String("tag", "base", "free text"),
             ParamSpec::Choice("order", "lowest", {"lowest", "highest"}, "which end to keep")}},
           [](const Params& p) { return std::make_unique<FakeKv>(FakeKv{p}); });
    kv.add({"none", 1, "keep everything", {}}, [](const Params& p) { return std::make_unique<FakeKv>(FakeKv{p}); });
  }
};

const TestCatalog& cat() {
  static const TestCatalog c;
  return c;
}
const RegistryBase& attention() { return cat().catalog.attention; }
const RegistryBase& kv() { return cat().kv; }

using test::error_of;

void expect_contains(const std::string& msg, std::initializer_list<std::string> parts, const std::string& ctx = "") {
  for (const auto& p : parts) EXPECT_NE(msg.find(p), std::string::npos) << "'" << p << "' not in: " << msg << " " << ctx;
  EXPECT_EQ(msg.find('\n'), std::string::npos) << "not one line: " << msg;
}

ptree ini(const std::string& text) {
  std::istringstream in(text);
  ptree t;
  boost::property_tree::read_ini(in, t);
  return t;
}

ptree json(const std::string& text) {
  std::istringstream in(text);
  ptree t;
  boost::property_tree::read_json(in, t);
  return t;
}

TEST(PluginRegistry, DefaultsAndCreate) {
  const PluginSpec s = attention().resolve("flex");
  EXPECT_EQ(s.kind, "attention");
  EXPECT_EQ(s.name, "flex");
  EXPECT_EQ(s.version, 1);
  EXPECT_EQ(s.params.get_string("mask"), "causal");
  EXPECT_EQ(s.params.get_int("window"), 0);
  EXPECT_EQ(s.params.get_int("block"), 64);
  EXPECT_EQ(s.params.values().size(), 3u);

  const PluginSpec k = kv().resolve("l2norm");
  EXPECT_DOUBLE_EQ(k.params.get_float("keep_ratio"), 0.7);
  EXPECT_EQ(k.params.get_int("prune_after"), 512);
  EXPECT_EQ(k.params.get_int_list("skip_layers"), (std::vector<int64_t>{0, 1}));
  EXPECT_TRUE(k.params.get_bool("per_head"));
  EXPECT_EQ(k.params.get_string("tag"), "base");
  EXPECT_EQ(k.params.get_string("order"), "lowest");

  auto backend = cat().catalog.attention.create("flex:window=128");
  ASSERT_NE(backend, nullptr);
  EXPECT_EQ(static_cast<const FakeBackend&>(*backend).params.get_int("window"), 128);
  EXPECT_EQ(cat().kv.create("l2norm:keep_ratio=0.25")->params.get_float("keep_ratio"), 0.25);
}

TEST(PluginRegistry, CommandLineForm) {
  const PluginSpec s = attention().resolve("flex:mask=sliding_window,window=256");
  EXPECT_EQ(s.params.get_string("mask"), "sliding_window");
  EXPECT_EQ(s.params.get_int("window"), 256);
  EXPECT_EQ(s.params.get_int("block"), 64);

  const PluginSpec k = kv().resolve("l2norm:keep_ratio=0.5,skip_layers=[2,3,5],per_head=off,tag=x y,prune_after=+7");
  EXPECT_EQ(k.params.get_float("keep_ratio"), 0.5);
  EXPECT_EQ(k.params.get_int_list("skip_layers"), (std::vector<int64_t>{2, 3, 5}));
  EXPECT_FALSE(k.params.get_bool("per_head"));
  EXPECT_EQ(k.params.get_string("tag"), "x y");
  EXPECT_EQ(k.params.get_int("prune_after"), 7);

  // Whitespace around every token is tolerated, in both forms.
  EXPECT_EQ(attention().resolve("  flex : mask = sliding_window , window = 256  "), s);
  EXPECT_EQ(attention().resolve(" flex @ 1 { mask = sliding_window , window=256 } "), s);
  EXPECT_EQ(attention().resolve("flex{}"), attention().resolve("flex"));
  EXPECT_EQ(attention().resolve("flex@1"), attention().resolve("flex"));
  EXPECT_EQ(attention().resolve("flex@1:window=3").params.get_int("window"), 3);
  EXPECT_EQ(kv().resolve("l2norm:skip_layers=[ 4 , 5 ]").params.get_int_list("skip_layers"), (std::vector<int64_t>{4, 5}));
  EXPECT_EQ(kv().resolve("l2norm:skip_layers=7").params.get_int_list("skip_layers"), (std::vector<int64_t>{7}));
  EXPECT_TRUE(kv().resolve("l2norm:skip_layers=[]").params.get_int_list("skip_layers").empty());
}

TEST(PluginRegistry, CanonicalForm) {
  EXPECT_EQ(attention().resolve("flex:mask=sliding_window,window=256").canonical(),
            "flex@1{block=64,mask=sliding_window,window=256}");
  EXPECT_EQ(attention().resolve("eager").canonical(), "eager@1{}");
  EXPECT_EQ(attention().resolve("paged").canonical(), "paged@3{block_size=16,offset=-3,scale=1}");
  EXPECT_EQ(kv().resolve("l2norm").canonical(),
            "l2norm@2{keep_ratio=0.7,order=lowest,per_head=true,prune_after=512,skip_layers=[0,1],tag=base}");
  EXPECT_EQ(kv().resolve("l2norm:skip_layers=[],per_head=YES,tag=").canonical(),
            "l2norm@2{keep_ratio=0.7,order=lowest,per_head=true,prune_after=512,skip_layers=[],tag=}");
  EXPECT_EQ(kv().resolve("l2norm:keep_ratio=1e-6").canonical(),
            "l2norm@2{keep_ratio=1e-06,order=lowest,per_head=true,prune_after=512,skip_layers=[0,1],tag=base}");
}

TEST(PluginRegistry, FloatValuesFormatShortestAndRoundTrip) {
  EXPECT_EQ(format_param_value(0.1), "0.1");
  EXPECT_EQ(format_param_value(1e-06), "1e-06");
  EXPECT_EQ(format_param_value(0.1 + 0.2), "0.30000000000000004");
  EXPECT_EQ(format_param_value(256.0), "256");
  EXPECT_EQ(format_param_value(-2.5), "-2.5");
  EXPECT_EQ(format_param_value(1e300), "1e+300");
  EXPECT_EQ(format_param_value(int64_t(-42)), "-42");
  EXPECT_EQ(format_param_value(std::vector<int64_t>{3, -1}), "[3,-1]");
  EXPECT_EQ(format_param_value(false), "false");

  const ParamSpec f = ParamSpec::Float("x", 0, std::nullopt, std::nullopt, "");
  std::mt19937_64 rng(11);
  for (int i = 0; i < 20000; ++i) {
    double v;
    switch (i % 3) {
      case 0: v = std::ldexp(double(rng() >> 11), int(rng() % 200) - 150); break;
      case 1: v = double(int64_t(rng() % 2000001) - 1000000) / 1000.0; break;
      default: {
        uint64_t bits = rng();
        std::memcpy(&v, &bits, sizeof v);
        if (!std::isfinite(v)) continue;
      }
    }
    const std::string text = format_param_value(v);
    const ParamValue back = parse_param_value(f, text, "test");
    ASSERT_EQ(std::get<double>(back), v) << text;
    ASSERT_EQ(format_param_value(back), v == 0 ? "0" : text);
  }
  EXPECT_EQ(format_param_value(parse_param_value(f, "-0", "test")), "0");
  EXPECT_EQ(std::get<double>(parse_param_value(f, "+.5", "test")), 0.5);
  EXPECT_EQ(std::get<double>(parse_param_value(f, " 2E3 ", "test")), 2000.0);
}

TEST(PluginRegistry, RoundTripTextSpecCanonicalSpec) {
  const std::vector<std::pair<const RegistryBase*, std::string>> texts = {
      {&attention(), "eager"},
      {&attention(), "eager@1{}"},
      {&attention(), "flex"},
      {&attention(), "flex:mask=sliding_window,window=256"},
      {&attention(), "flex:mask=prefix_lm,block=16"},
      {&attention(), "flex@1{block=1024,mask=causal,window=1048576}"},
      {&attention(), "paged:offset=-100,scale=-0.1"},
      {&attention(), "paged:scale=0.30000000000000004,block_size=1"},
      {&attention(), "paged:scale=1e-06"},
      {&attention(), "paged:scale=-1.7976931348623157e308"},
      {&attention(), "paged:scale=5e-324"},
      {&attention(), "paged:scale=123456789.125,offset=+99"},
      {&kv(), "l2norm"},
      {&kv(), "l2norm:keep_ratio=0.1,prune_after=0"},
      {&kv(), "l2norm:keep_ratio=1,skip_layers=[]"},
      {&kv(), "l2norm:keep_ratio=0,skip_layers=[0,1,2,3,255]"},
      {&kv(), "l2norm:skip_layers=9,per_head=0,order=highest"},
      {&kv(), "l2norm:tag=a b:c@d=e,keep_ratio=0.30000000000000004"},
      {&kv(), "l2norm:tag=,prune_after=9223372036854775807"},
      {&kv(), "none{}"},
  };
  for (const auto& [reg, text] : texts) {
    const PluginSpec a = reg->resolve(text);
    const std::string canon = a.canonical();
    const PluginSpec b = reg->resolve(canon);
    EXPECT_EQ(a, b) << text << " -> " << canon;
    EXPECT_EQ(b.canonical(), canon) << text;
  }
  EXPECT_EQ(kv().resolve("l2norm:keep_ratio=0.30000000000000004").canonical().find("keep_ratio=0.30000000000000004,"),
            std::string("l2norm@2{").size());
}

// Random specs of every parameter type: canonical text parses back to the same spec.
TEST(PluginRegistry, RandomSpecsRoundTrip) {
  std::mt19937_64 rng(3);
  for (int i = 0; i < 2000; ++i) {
    std::string skip;
    for (int n = int(rng() % 5), j = 0; j < n; ++j) {
      if (j) skip += ',';
      skip += std::to_string(rng() % 256);
    }
    const double ratio = double(rng() % 1000001) / 1000000.0;
    const std::string text = "l2norm:keep_ratio=" + format_param_value(ratio) + ",prune_after=" +
                             std::to_string(rng() >> 1) + ",skip_layers=[" + skip + "],per_head=" +
                             (rng() % 2 ? "on" : "no") + ",tag=t" + std::to_string(rng() % 100) +
                             ",order=" + (rng() % 2 ? "lowest" : "highest");
    const PluginSpec a = kv().resolve(text);
    EXPECT_EQ(a.params.get_float("keep_ratio"), ratio);
    const PluginSpec b = kv().resolve(a.canonical());
    ASSERT_EQ(a, b) << text;
    ASSERT_EQ(a.canonical(), b.canonical());
  }
}

TEST(PluginRegistry, ParameterValueErrors) {
  struct Case {
    const RegistryBase* reg;
    std::string text;
    std::vector<std::string> expect;
  };
  const std::vector<Case> cases = {
      {&attention(), "flex:window=abc", {"attention plugin 'flex'", "'abc'", "'window'", "not an integer", "int in [0, 1048576]"}},
      {&attention(), "flex:window=-1", {"'-1'", "'window'", "out of range", "int in [0, 1048576]"}},
      {&attention(), "flex:window=1048577", {"out of range", "int in [0, 1048576]"}},
      {&attention(), "flex:window=1.0", {"not an integer"}},
      {&attention(), "flex:window=5x", {"'5x'", "not an integer"}},
      {&attention(), "flex:window=", {"'window'", "empty"}},
      {&attention(), "flex:window=+-3", {"not an integer"}},
      {&attention(), "flex:window=99999999999999999999", {"out of range"}},
      {&attention(), "flex:block=8", {"'block'", "int in [16, 1024]"}},
      {&attention(), "flex:mask=sliding", {"'sliding'", "'mask'", "one of causal|sliding_window|prefix_lm"}},
      {&attention(), "flex:mask=Causal", {"'Causal'", "one of causal|sliding_window|prefix_lm"}},
      {&attention(), "paged:scale=nan", {"'nan'", "'scale'", "not finite", "any finite float"}},
      {&attention(), "paged:scale=inf", {"not finite"}},
      {&attention(), "paged:scale=-inf", {"not finite"}},
      {&attention(), "paged:scale=1e999", {"out of range"}},
      {&attention(), "paged:scale=0x10", {"not a number"}},
      {&attention(), "paged:scale=1.5.2", {"not a number"}},
      {&attention(), "paged:scale=1e", {"not a number"}},
      {&attention(), "paged:offset=-101", {"'offset'", "int in [-100, 100]"}},
      {&kv(), "l2norm:keep_ratio=1.5", {"kv plugin 'l2norm'", "'1.5'", "'keep_ratio'", "out of range", "float in [0, 1]"}},
      {&kv(), "l2norm:keep_ratio=-0.01", {"out of range", "float in [0, 1]"}},
      {&kv(), "l2norm:prune_after=-1", {"int >= 0"}},
      {&kv(), "l2norm:per_head=maybe", {"'maybe'", "'per_head'", "true|false"}},
      {&kv(), "l2norm:skip_layers=[0,x]", {"'[0,x]'", "'skip_layers'", "list of int in [0, 255]"}},
      {&kv(), "l2norm:skip_layers=[0,,1]", {"empty"}},
      {&kv(), "l2norm:skip_layers=[256]", {"out of range"}},
      {&kv(), "l2norm:skip_layers=[-1]", {"out of range"}},
      {&kv(), "l2norm:skip_layers=[1]x", {"missing ']'"}},
      {&kv(), "l2norm:skip_layers=[[1]]", {"not an integer"}},
      {&kv(), "l2norm:order=middle", {"one of lowest|highest"}},
      // unknown and repeated parameters
      {&attention(), "flex:windw=3", {"attention plugin 'flex'", "unknown parameter 'windw'", "block, mask, window"}},
      {&attention(), "eager:x=1", {"unknown parameter 'x'", "no parameters"}},
      {&attention(), "flex:window=3,window=4", {"'window'", "given twice"}},
      // unknown plugin and version
      {&attention(), "flash", {"unknown attention plugin 'flash'", "known: eager, flex, paged"}},
      {&kv(), "snapkv:keep_ratio=0.5", {"unknown kv plugin 'snapkv'", "known: l2norm, none"}},
      {&attention(), "flex@2{}", {"attention plugin 'flex'", "version 2", "registered version is 1"}},
      {&attention(), "paged@1", {"version 1", "registered version is 3"}},
  };
  for (const auto& c : cases) {
    const std::string msg = error_of([&] { c.reg->resolve(c.text); });
    for (const auto& e : c.expect) EXPECT_NE(msg.find(e), std::string::npos) << c.text << ": '" << e << "' not in: " << msg;
    EXPECT_EQ(msg.find('\n'), std::string::npos) << msg;
  }
}

TEST(PluginRegistry, MalformedSpecTexts) {
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"", "empty plugin name"},
      {"   ", "empty plugin name"},
      {"[", "expected a plugin name"},
      {"flex:", "expected key=value parameters after ':'"},
      {"flex: ", "expected key=value parameters after ':'"},
      {"flex:window", "expected key=value"},
      {"flex:=3", "missing parameter name"},
      {"flex:win dow=3", "invalid parameter name"},
      {"flex{a=1", "missing '}'"},
      {"flex{", "missing '}'"},
      {"flex@x{}", "expected a version number after '@'"},
      {"flex@{}", "expected a version number after '@'"},
      {"flex@99999999999{}", "expected a version number"},
      {"flex@1{a=1}junk", "unexpected text after '}'"},
      {"flex{}{}", "unexpected text after '}'"},
      {"flex:window=3,", "empty parameter"},
      {"flex:,window=3", "empty parameter"},
      {"flex{window=3,}", "empty parameter"},
      {"flex:a=[1,2", "unbalanced '['"},
      {"flex{a=[1,2}", "unbalanced '['"},
      {"flex:a=1]", "unbalanced ']'"},
      {"flex:a=]1[", "unbalanced ']'"},
      {"flex:a=1}", "unexpected '}'"},
      {"flex:a={1}", "unexpected '{'"},
      {"flex attn", "unexpected 'a' after the name"},
      {"flex;window=3", "unexpected ';'"},
      {"kv.l2norm", "unexpected '.'"},
      {"l2norm:skip_layers=0,1", "list values go in brackets"},
  };
  for (const auto& [text, expect] : cases) {
    const std::string msg = error_of([&] { parse_plugin_spec_text(text, "attention plugin"); });
    expect_contains(msg, {"attention plugin: malformed spec", expect}, text);
    // The registry reports the same error.
    EXPECT_EQ(error_of([&] { attention().resolve(text); }), msg);
  }
  // Control characters in the text are escaped, so the message stays one line.
  expect_contains(error_of([&] { attention().resolve("flex:\nwindow"); }), {"'flex:\\x0awindow'"});
}

TEST(PluginRegistry, SpecTextPieces) {
  const PluginSpecText t = parse_plugin_spec_text(" flex @ 7 { b = [ 1 , 2 ] , a = x=y } ", "w");
  EXPECT_EQ(t.name, "flex");
  EXPECT_EQ(t.version, 7);
  ASSERT_EQ(t.args.size(), 2u);
  EXPECT_EQ(t.args[0], (std::pair<std::string, std::string>{"b", "[ 1 , 2 ]"}));
  EXPECT_EQ(t.args[1], (std::pair<std::string, std::string>{"a", "x=y"}));
  EXPECT_FALSE(parse_plugin_spec_text("eager", "w").version.has_value());
}

TEST(PluginRegistry, StringValuesThatCannotRoundTripAreRejected) {
  const ParamSpec s = ParamSpec::String("tag", "", "");
  for (const char* bad : {"a,b", "[x]", "{", "}", " lead", "trail ", "a\tb\x01"})
    EXPECT_THROW(parse_param_value(s, bad, "w"), Error) << bad;
  EXPECT_EQ(std::get<std::string>(parse_param_value(s, "a b=c:d@e", "w")), "a b=c:d@e");
  const ParamSpec b = ParamSpec::Bool("b", false, "");
  for (const char* t : {"true", "1", "yes", "on", "TRUE", " On "}) EXPECT_TRUE(std::get<bool>(parse_param_value(b, t, "w"))) << t;
  for (const char* t : {"false", "0", "no", "off", "False"}) EXPECT_FALSE(std::get<bool>(parse_param_value(b, t, "w"))) << t;
  for (const char* t : {"", "2", "y", "truee"}) EXPECT_THROW(parse_param_value(b, t, "w"), Error) << t;
}

TEST(PluginRegistry, AllowedTexts) {
  EXPECT_EQ(ParamSpec::Int("a", 0, 0, 10, "").allowed(), "int in [0, 10]");
  EXPECT_EQ(ParamSpec::Int("a", 0, 0, std::nullopt, "").allowed(), "int >= 0");
  EXPECT_EQ(ParamSpec::Int("a", 0, std::nullopt, 5, "").allowed(), "int <= 5");
  EXPECT_EQ(ParamSpec::Int("a", 0, std::nullopt, std::nullopt, "").allowed(), "any int");
  EXPECT_EQ(ParamSpec::Float("a", 0, 0, 0.5, "").allowed(), "float in [0, 0.5]");
  EXPECT_EQ(ParamSpec::Float("a", 0, std::nullopt, std::nullopt, "").allowed(), "any finite float");
  EXPECT_EQ(ParamSpec::Bool("a", false, "").allowed(), "true|false");
  EXPECT_EQ(ParamSpec::Choice("a", "x", {"x", "y"}, "").allowed(), "one of x|y");
  EXPECT_EQ(ParamSpec::IntList("a", {}, 0, std::nullopt, "").allowed(), "list of int >= 0 as [a,b,...]");
  EXPECT_EQ(param_type_name(ParamType::kIntList), "int list");
}

TEST(PluginRegistry, IniConfig) {
  // Top-level key plus a [kind.name] section of parameters.
  const ptree a = ini("attention = flex\n[attention.flex]\nmask = sliding_window\nwindow = 256\n");
  EXPECT_EQ(attention().resolve(a, "attention", "exp.ini").canonical(), "flex@1{block=64,mask=sliding_window,window=256}");
  // A full spec text as the value, plus more parameters in the section.
  const ptree b = ini("attention = flex:mask=sliding_window\n[attention.flex]\nwindow = 256\n");
  EXPECT_EQ(attention().resolve(b, "attention", "exp.ini"), attention().resolve(a, "attention", "exp.ini"));
  // The canonical form works as a config value too.
  const ptree c = ini("kv = l2norm@2{keep_ratio=0.25,skip_layers=[3,4]}\n");
  EXPECT_EQ(kv().resolve(c, "kv", "exp.ini").canonical(),
            "l2norm@2{keep_ratio=0.25,order=lowest,per_head=true,prune_after=512,skip_layers=[3,4],tag=base}");
  // Inside [run]: the caller passes the subtree and the root for the sections. Sections of other
  // plugins are ignored (a sweep may configure several).
  const ptree d = ini("[run]\nkv = l2norm\nattention = eager\n[kv.l2norm]\nkeep_ratio = 0.5\nskip_layers = [0, 2]\n"
                      "[kv.none]\n[attention.flex]\nwindow = 9\n");
  const PluginSpec k = kv().resolve(d.get_child("run"), "kv", "exp.ini", &d);
  EXPECT_EQ(k.params.get_float("keep_ratio"), 0.5);
  EXPECT_EQ(k.params.get_int_list("skip_layers"), (std::vector<int64_t>{0, 2}));
  EXPECT_EQ(attention().resolve(d.get_child("run"), "attention", "exp.ini", &d).canonical(), "eager@1{}");
  // The section alone (without `sections`) is not visible from the subtree.
  EXPECT_EQ(kv().resolve(d.get_child("run"), "kv", "exp.ini").params.get_float("keep_ratio"), 0.7);
  // An INI section named after the key holding name = ... works like a JSON object.
  const ptree e = ini("[attention]\nname = flex\nwindow = 12\n");
  EXPECT_EQ(attention().resolve(e, "attention", "exp.ini").params.get_int("window"), 12);
}

TEST(PluginRegistry, JsonConfig) {
  const std::string want = "flex@1{block=64,mask=sliding_window,window=256}";
  EXPECT_EQ(attention().resolve(json(R"({"attention": "flex:mask=sliding_window,window=256"})"), "attention", "e.json").canonical(), want);
  EXPECT_EQ(attention().resolve(json(R"({"attention": {"name": "flex", "mask": "sliding_window", "window": 256}})"),
                                "attention", "e.json").canonical(), want);
  EXPECT_EQ(attention().resolve(json(R"({"attention": "flex", "attention.flex": {"mask": "sliding_window", "window": 256}})"),
                                "attention", "e.json").canonical(), want);
  EXPECT_EQ(attention().resolve(json(R"({"attention": {"name": "flex:window=256"}, "attention.flex": {"mask": "sliding_window"}})"),
                                "attention", "e.json").canonical(), want);
  // JSON arrays, numbers and booleans.
  const PluginSpec k = kv().resolve(
      json(R"({"kv": {"name": "l2norm", "skip_layers": [4, 5, 6], "per_head": false, "keep_ratio": 1e-3}})"), "kv", "e.json");
  EXPECT_EQ(k.params.get_int_list("skip_layers"), (std::vector<int64_t>{4, 5, 6}));
  EXPECT_FALSE(k.params.get_bool("per_head"));
  EXPECT_EQ(k.params.get_float("keep_ratio"), 0.001);
  EXPECT_TRUE(kv().resolve(json(R"({"kv": "l2norm", "kv.l2norm": {"skip_layers": []}})"), "kv", "e.json")
                  .params.get_int_list("skip_layers").empty());
  // Nested under another object: pass the subtree and the root.
  const ptree n = json(R"({"run": {"kv": "l2norm"}, "kv.l2norm": {"prune_after": 3}})");
  EXPECT_EQ(kv().resolve(n.get_child("run"), "kv", "e.json", &n).params.get_int("prune_after"), 3);
}

TEST(PluginRegistry, ConfigErrors) {
  struct Case {
    ptree tree;
    std::string key;
    std::vector<std::string> expect;
  };
  const std::vector<Case> cases = {
      {ini("attention = flex:window=3\n[attention.flex]\nwindow = 4\n"), "attention",
       {"exp: attention:", "'window'", "given both", "[attention.flex]"}},
      {json(R"({"attention": {"name": "flex", "window": 3}, "attention.flex": {"window": 4}})"), "attention",
       {"'window'", "given both"}},
      {ini("attention = flex\n[attention.flex]\nwindow = abc\n"), "attention",
       {"exp: attention: attention plugin 'flex'", "'abc'", "'window'", "int in [0, 1048576]"}},
      {ini("attention = flex\n[attention.flex]\nwindw = 3\n"), "attention", {"unknown parameter 'windw'", "block, mask, window"}},
      {ini("attention = flash\n"), "attention", {"exp: attention: unknown attention plugin 'flash'", "known: eager, flex, paged"}},
      {ini("kv = l2norm\n"), "attention", {"exp: attention: missing", "eager, flex, paged"}},
      {ini("attention = flex{\n"), "attention", {"exp: attention:", "malformed spec", "missing '}'"}},
      {ini("attention = flex@2\n"), "attention", {"version 2", "registered version is 1"}},
      {json(R"({"attention": "flex", "attention": "eager"})"), "attention", {"given 2 times"}},
      {json(R"({"attention": ["flex", "eager"]})"), "attention", {"\"name\""}},
      {json(R"({"attention": {"window": 3}})"), "attention", {"\"name\""}},
      {json(R"({"attention": {"name": {"x": 1}}})"), "attention", {"\"name\" must be"}},
      {json(R"({"attention": {"name": "flex", "window": {"x": 1}}})"), "attention", {"'window'", "not an object"}},
      {json(R"({"attention": "flex", "attention.flex": 3})"), "attention", {"must be a section"}},
      {json(R"({"kv": "l2norm", "kv.l2norm": {"skip_layers": [1, [2]]}})"), "kv", {"'skip_layers'", "not an object"}},
      {json(R"({"kv": "l2norm", "kv.l2norm": {"skip_layers": ["a"]}})"), "kv", {"'[a]'", "'skip_layers'"}},
  };
  for (const auto& c : cases) {
    const RegistryBase& reg = c.key == "kv" ? kv() : attention();
    const std::string msg = error_of([&] { reg.resolve(c.tree, c.key, "exp"); });
    EXPECT_EQ(msg.find('\n'), std::string::npos) << msg;
    for (const auto& e : c.expect) EXPECT_NE(msg.find(e), std::string::npos) << "'" << e << "' not in: " << msg;
  }
}

TEST(PluginRegistry, DescribeListsEveryParameterWithItsDefault) {
  const std::string d = kv().describe();
  expect_contains(d.substr(0, d.find('\n')), {"kv plugins (2)"});
  for (const char* part : {"l2norm@2", "keep the lowest-L2-norm keys", "none@1", "keep everything", "(no parameters)"})
    EXPECT_NE(d.find(part), std::string::npos) << part << "\n" << d;
  // One line per parameter: name, type, default, allowed, help.
  auto line_of = [&](const std::string& name) {
    const size_t at = d.find("    " + name + " ");
    EXPECT_NE(at, std::string::npos) << name << "\n" << d;
    return at == std::string::npos ? "" : d.substr(at, d.find('\n', at) - at);
  };
  expect_contains(line_of("keep_ratio"), {"float", "0.7", "float in [0, 1]", "fraction of KV entries kept"});
  expect_contains(line_of("prune_after"), {"int", "512", "int >= 0", "tokens before pruning starts"});
  expect_contains(line_of("skip_layers"), {"int list", "[0,1]", "list of int in [0, 255]", "layers left untouched"});
  expect_contains(line_of("per_head"), {"bool", "true", "true|false", "rank per head"});
  expect_contains(line_of("tag"), {"string", "base", "free text"});
  expect_contains(line_of("order"), {"choice", "lowest", "one of lowest|highest", "which end to keep"});
  const std::string a = attention().describe();
  const size_t w = a.find("    window ");
  ASSERT_NE(w, std::string::npos) << a;
  expect_contains(a.substr(w, a.find('\n', w) - w), {"0", "int in [0, 1048576]", "sliding window (0: none)"});
  EXPECT_NE(a.find("paged@3  KV in fixed-size blocks"), std::string::npos) << a;
}

TEST(PluginRegistry, CatalogKinds) {
  const Catalog& c = cat().catalog;
  std::vector<std::string> kinds;
  for (const RegistryBase* r : c.kinds()) kinds.push_back(r->kind());
  EXPECT_EQ(kinds, (std::vector<std::string>{"attention", "kv", "kv_quant", "quant", "dataset", "metric"}));
  EXPECT_EQ(c.find_kind("attention"), &c.attention);
  EXPECT_EQ(c.find_kind("metric"), &c.metric);
  EXPECT_EQ(c.find_kind("attn"), nullptr);
  EXPECT_EQ(c.attention.names(), (std::vector<std::string>{"eager", "flex", "paged"}));
  EXPECT_EQ(c.attention.find("nope"), nullptr);
  ASSERT_NE(c.attention.find("paged"), nullptr);
  EXPECT_EQ(c.attention.find("paged")->version, 3);
  expect_contains(error_of([&] { c.attention.get("nope"); }), {"unknown attention plugin 'nope' (known: eager, flex, paged)"});
  expect_contains(error_of([&] { c.quant.resolve("int8"); }), {"unknown quant plugin 'int8' (known: none)"});
}

TEST(PluginRegistryDeathTest, ProgrammerErrorsAbort) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  Registry<FakeKv> r{"kv"};
  auto make = [](const Params& p) { return std::make_unique<FakeKv>(FakeKv{p}); };
  r.add({"a", 1, "", {}}, make);
  EXPECT_DEATH(r.add({"a", 1, "", {}}, make), "registered twice");
  EXPECT_DEATH(r.add({"b", 1, "", {ParamSpec::Int("x", 0, 0, 1, ""), ParamSpec::Int("x", 0, 0, 1, "")}}, make),
               "declared twice");
  EXPECT_DEATH(r.add({"c", 1, "", {ParamSpec::Int("x", 5, 0, 1, "")}}, make), "default");
  EXPECT_DEATH(r.add({"d", 1, "", {ParamSpec::Choice("m", "z", {"x", "y"}, "")}}, make), "default");
  EXPECT_DEATH(r.add({"e f", 1, "", {}}, make), "must be");
  EXPECT_DEATH(kv().resolve("l2norm").params.get_int("keep_ratio"), "not of type int");
  EXPECT_DEATH(kv().resolve("l2norm").params.get_int("nope"), "no parameter 'nope'");
}

// Thousands of random mutations of valid spec texts and configs: each either resolves (and then its
// canonical text round-trips) or throws ctx::Error; nothing else may happen.
TEST(PluginRegistry, MutatedSpecTextsNeverCrash) {
  const std::vector<std::pair<const RegistryBase*, std::string>> seeds = {
      {&attention(), "flex:mask=sliding_window,window=256"},
      {&attention(), "flex@1{block=64,mask=sliding_window,window=256}"},
      {&attention(), "paged@3{block_size=16,offset=-3,scale=1e-06}"},
      {&kv(), "l2norm@2{keep_ratio=0.7,order=lowest,per_head=true,prune_after=512,skip_layers=[0,1],tag=base}"},
      {&kv(), "l2norm:skip_layers=[ 1 , 2 ],keep_ratio=0.30000000000000004"},
      {&attention(), "eager"},
  };
  const std::string alphabet = "@:{}[],= .-+eE0123456789abcflexwindowmask_\t\n";
  std::mt19937_64 rng(5);
  int resolved = 0, rejected = 0;
  const int kIters = 6000;
  for (int iter = 0; iter < kIters; ++iter) {
    const auto& [reg, seed] = seeds[rng() % seeds.size()];
    std::string s = seed;
    const int edits = 1 + int(rng() % 4);
    for (int e = 0; e < edits; ++e) {
      const size_t pos = s.empty() ? 0 : rng() % (s.size() + 1);
      switch (rng() % 6) {
        case 0: if (pos < s.size()) s[pos] = char(rng()); break;
        case 1: if (pos < s.size()) s[pos] = alphabet[rng() % alphabet.size()]; break;
        case 2: s.insert(pos, 1, alphabet[rng() % alphabet.size()]); break;
        case 3: if (pos < s.size()) s.erase(pos, 1 + rng() % 6); break;
        case 4: s.insert(pos, s.substr(rng() % (s.size() + 1), rng() % 8)); break;  // duplicate a piece
        default: s.resize(pos); break;
      }
    }
    std::optional<PluginSpec> spec;
    try {
      parse_plugin_spec_text(s, "fuzz");
      spec = reg->resolve(s);
      ++resolved;
    } catch (const Error& e) {
      ASSERT_EQ(std::string(e.what()).find('\n'), std::string::npos) << e.what();
      ++rejected;
    }
    if (spec) {  // outside the try: a canonical text that fails to parse back is a test failure
      PluginSpec back;
      ASSERT_NO_THROW(back = reg->resolve(spec->canonical())) << s << " -> " << spec->canonical();
      ASSERT_EQ(back, *spec) << s;
    }
    // The same text through the config path, as INI-like key/value and inside a section.
    ptree t;
    t.put_child(ptree::path_type("x", '/'), ptree(s));
    ptree sec;
    sec.put_child(ptree::path_type("window", '/'), ptree(s.substr(0, 12)));
    t.add_child(ptree::path_type("x.flex", '/'), sec);
    try {
      reg->resolve(t, "x", "fuzz");
    } catch (const Error&) {
    }
  }
  std::printf("%d resolved, %d rejected\n", resolved, rejected);
  EXPECT_GT(resolved, 100);
  EXPECT_GT(rejected, 1000);
  EXPECT_EQ(resolved + rejected, kIters);
}

}  // namespace
}  // namespace ctx

namespace ctx {
namespace {

TEST(Params, StringListParsesFormatsAndRejects) {
  const ParamSpec s = ParamSpec::StringList("subjects", {}, "");
  auto parse = [&](const char* t) { return std::get<std::vector<std::string>>(parse_param_value(s, t, "dataset 'mmlu'")); };
  EXPECT_EQ(parse("[anatomy, virology]"), (std::vector<std::string>{"anatomy", "virology"}));
  EXPECT_EQ(parse("anatomy"), std::vector<std::string>{"anatomy"});
  EXPECT_TRUE(parse("[]").empty());
  EXPECT_TRUE(parse("").empty());
  EXPECT_EQ(format_param_value(std::vector<std::string>{"a", "b"}), "[a,b]");
  EXPECT_EQ(parse(format_param_value(std::vector<std::string>{"x_y", "z"}).c_str()), (std::vector<std::string>{"x_y", "z"}));
  for (const char* bad : {"[a,]", "[a", "[a{b}]"}) {
    try {
      parse_param_value(s, bad, "dataset 'mmlu'");
      ADD_FAILURE() << bad;
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find("parameter 'subjects'"), std::string::npos) << e.what();
    }
  }
  EXPECT_EQ(s.allowed(), "list of text without , [ ] { } as [a,b,...]");
  EXPECT_EQ(param_type_name(ParamType::kStringList), "string list");
}

}  // namespace
}  // namespace ctx
