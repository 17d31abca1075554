#include "tests/support/attention.h"

#include "plugins/register_all.h"

namespace ctx::test {

std::shared_ptr<const AttentionBackend> attention(std::string_view spec) {
  return builtin_catalog().attention.create(spec);
}

std::vector<std::string> attention_names() { return builtin_catalog().attention.names(); }

}  // namespace ctx::test
