// Attention backends for tests, created from the built-in catalog by spec text.
#pragma once

#include <memory>
#include <string_view>
#include <vector>
#include <string>

#include "core/attention/attention_backend.h"

namespace ctx::test {

std::shared_ptr<const AttentionBackend> attention(std::string_view spec = "sdpa");
// Every registered attention backend name (a new backend is tested automatically).
std::vector<std::string> attention_names();

}  // namespace ctx::test
