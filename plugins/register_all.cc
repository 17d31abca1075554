#include "plugins/register_all.h"

namespace ctx {

// Each plugin folder defines its register function; this list is the only place that names them all.
void register_eager(Catalog& catalog);
void register_sdpa(Catalog& catalog);
void register_flash(Catalog& catalog);
void register_flex(Catalog& catalog);
void register_paged(Catalog& catalog);
void register_quant_none(Catalog& catalog);
void register_int8(Catalog& catalog);
void register_llm_int8(Catalog& catalog);
void register_nf4(Catalog& catalog);
void register_fp4(Catalog& catalog);
void register_q8_0(Catalog& catalog);
void register_q4_0(Catalog& catalog);
void register_kv_none(Catalog& catalog);
void register_kv_l2norm(Catalog& catalog);
void register_kv_streaming(Catalog& catalog);
void register_kv_snapkv(Catalog& catalog);
void register_kv_h2o(Catalog& catalog);
void register_kv_tova(Catalog& catalog);
void register_kv_random(Catalog& catalog);
void register_kv_quant_none(Catalog& catalog);
void register_kv_quant_kivi(Catalog& catalog);
// Metrics (eval/metrics/<name>.cc).
void register_squad_em_f1(Catalog& catalog);
void register_hotpot_em_f1(Catalog& catalog);
void register_rouge(Catalog& catalog);
void register_longbench(Catalog& catalog);
void register_meteor(Catalog& catalog);
void register_bleu(Catalog& catalog);
void register_choice_accuracy(Catalog& catalog);
// Datasets (datasets/<name>/).
void register_mmlu(Catalog& catalog);
void register_hotpotqa(Catalog& catalog);
void register_narrativeqa(Catalog& catalog);
void register_longbench_dataset(Catalog& catalog);
void register_longbench_v2(Catalog& catalog);
void register_needle(Catalog& catalog);

void register_all(Catalog& catalog) {
  register_eager(catalog);
  register_sdpa(catalog);
  register_flash(catalog);
  register_flex(catalog);
  register_paged(catalog);
  register_quant_none(catalog);
  register_int8(catalog);
  register_llm_int8(catalog);
  register_nf4(catalog);
  register_fp4(catalog);
  register_q8_0(catalog);
  register_q4_0(catalog);
  register_kv_none(catalog);
  register_kv_l2norm(catalog);
  register_kv_streaming(catalog);
  register_kv_snapkv(catalog);
  register_kv_h2o(catalog);
  register_kv_tova(catalog);
  register_kv_random(catalog);
  register_kv_quant_none(catalog);
  register_kv_quant_kivi(catalog);
  register_squad_em_f1(catalog);
  register_hotpot_em_f1(catalog);
  register_rouge(catalog);
  register_longbench(catalog);
  register_meteor(catalog);
  register_bleu(catalog);
  register_choice_accuracy(catalog);
  register_mmlu(catalog);
  register_hotpotqa(catalog);
  register_narrativeqa(catalog);
  register_longbench_dataset(catalog);
  register_longbench_v2(catalog);
  register_needle(catalog);
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
