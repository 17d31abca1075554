#include "plugins/register_all.h"

namespace ctx {

// Each plugin folder defines its register function; this list is the only place that names them all.
void register_eager(Catalog& catalog);
void register_sdpa(Catalog& catalog);
void register_flash(Catalog& catalog);
void register_flex(Catalog& catalog);
void register_paged(Catalog& catalog);
// Metrics (eval/metrics/<name>.cc).
void register_squad_em_f1(Catalog& catalog);
void register_hotpot_em_f1(Catalog& catalog);
void register_rouge(Catalog& catalog);
void register_longbench(Catalog& catalog);
void register_meteor(Catalog& catalog);

void register_all(Catalog& catalog) {
  register_eager(catalog);
  register_sdpa(catalog);
  register_flash(catalog);
  register_flex(catalog);
  register_paged(catalog);
  register_squad_em_f1(catalog);
  register_hotpot_em_f1(catalog);
  register_rouge(catalog);
  register_longbench(catalog);
  register_meteor(catalog);
}

const Catalog& builtin_catalog() {
  static const Catalog* catalog = [] {
    auto* c = new Catalog;
    register_all(*c);
    return c;
  }();
  return *catalog;
}

}  // namespace ctx
