// kv_quant `kivi` (KIVI): keys quantized per channel over groups of tokens, values per token over
// groups of channels, the recent tokens kept in float (core/kv/kv_quant.h has the scheme).
#include <memory>

#include "core/base/error.h"
#include "core/plugin/catalog.h"

namespace ctx {

void register_kv_quant_kivi(Catalog& catalog) {
  const ParamSchema schema = {
      ParamSpec::Int("bits", 4, 2, 8, "bits per code: 2, 4 or 8"),
      ParamSpec::Int("group", 32, 1, 4096, "tokens per key group (per-channel params) and channels per value group"),
      ParamSpec::Int("residual", 128, 0, std::nullopt, "recent tokens always kept in float32"),
  };
  catalog.kv_quant.add(
      {"kivi", 1, "KIVI: per-channel keys, per-token values, asymmetric int codes, float residual window", schema},
      [](const Params& p) {
        auto c = std::make_unique<KvQuantConfig>();
        c->bits = int(p.get_int("bits"));
        if (c->bits != 2 && c->bits != 4 && c->bits != 8)
          fail("kv_quant plugin 'kivi': bits=", c->bits, " is not supported (allowed: 2, 4, 8)");
        c->group = p.get_int("group");
        c->residual = p.get_int("residual");
        return c;
      });
}

}  // namespace ctx
