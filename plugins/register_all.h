// The one list of built-in plugins: register_all() calls every register_<name>(Catalog&).
#pragma once

#include "core/plugin/catalog.h"

namespace ctx {

void register_all(Catalog& catalog);

// A catalog with every built-in plugin (built once, then shared; thread-safe).
const Catalog& builtin_catalog();

}  // namespace ctx
