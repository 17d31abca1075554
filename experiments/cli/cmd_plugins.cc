// ctxlab plugins [KIND]: every registered plugin with its version, help and parameters (type,
// default, allowed values, help), for all kinds or one.
#include <cstdio>
#include <string>
#include <vector>

#include "core/base/error.h"
#include "experiments/cli/cli_common.h"
#include "experiments/cli/commands.h"
#include "plugins/register_all.h"

namespace ctx::cli {

int cmd_plugins(const Args& args) {
  po::options_description desc("plugins options");
  desc.add_options()("kind", po::value<std::string>(), "attention | kv | kv_quant | quant | dataset | metric (default: all)");
  po::positional_options_description pos;
  pos.add("kind", 1);
  po::variables_map vm;
  if (!parse_options("plugins", "[KIND]", desc, args, vm, &pos)) return 0;
  const Catalog& catalog = builtin_catalog();
  std::vector<const RegistryBase*> shown = catalog.kinds();
  if (vm.count("kind")) {
    const std::string kind = vm["kind"].as<std::string>();
    const RegistryBase* r = catalog.find_kind(kind);
    if (!r) {
      std::string kinds;
      for (const RegistryBase* k : catalog.kinds()) {
        if (!kinds.empty()) kinds += ", ";
        kinds += k->kind();
      }
      fail("unknown plugin kind '", kind, "' (kinds: ", kinds, ")");
    }
    shown = {r};
  }
  for (size_t i = 0; i < shown.size(); ++i) std::printf("%s%s", i ? "\n" : "", shown[i]->describe().c_str());
  return 0;
}

}  // namespace ctx::cli
