#!/usr/bin/env bash
# One short device call (about 4 minutes) after merging several GPU branches: every GPU test program
# that the merges touched, then the cheapest timings that show each merged change did what it claims
# (on Llama-2-7B's layer shape with 8 layers, bench/configs/llama2_7b_8layers.json, so that a model
# loads in seconds): KV compression per decode step (tova/h2o one-eviction path vs none, 32k), the
# quantized GEMV tables (q4_0, nf4 vs the bf16 GEMV on the same shapes), and the GPU Pareto sweep
# (experiments/configs/gpu_pareto_sweep.ini, stories260K, real tasks) into a store. Full logs in $OUT.
# Here:   BUILD=build BUNDLE_DATASETS=1 BUNDLE_TESTS="gpu_attention_test gpu_engine_test gpu_quant_test" bash scripts/device_bundle.sh
# Device: bash bench/gpu/run_merged.sh   (run tool, carry [".device"], kind nvidia-h100-x1)
set -uo pipefail
repo="$(cd "$(dirname "$0")/../.." && pwd)"
cd "$repo"
OUT=${OUT:-$(mktemp -d)}
M8=random:.device/bench_configs/llama2_7b_8layers.json
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader
for t in gpu_attention_test gpu_engine_test gpu_quant_test; do
  start=$SECONDS
  timeout 100 .device/run "$t" --gtest_brief=1 > "$OUT/$t.txt" 2>&1
  echo "== $t: exit $? after $((SECONDS - start)) s"
  grep -E "FAILED|PASSED|tests ran" "$OUT/$t.txt" | head -12
done
echo "== decode at 32k, KV compression keep 0.25 (8-layer 7B shape)"
timeout 60 stdbuf -oL .device/run ctxlab bench gpu-decode --model $M8 --context 32768 --tokens 32 --rounds 1 \
  --copy-mib 512 --no-stages --kv "none;tova:keep_ratio=0.25;h2o:keep_ratio=0.25;snapkv:keep_ratio=0.25" > "$OUT/kv.txt" 2>&1
echo "exit $?"; grep -E "^device|^\| llama|rror" "$OUT/kv.txt"
for q in q4_0 nf4; do
  echo "== quantized GEMV tables, $q (8-layer 7B shape, 1k)"
  timeout 40 .device/run ctxlab bench gpu-decode --model $M8 --context 1024 --tokens 32 --rounds 1 --copy-mib 512 \
    --no-stages --quant $q > "$OUT/quant_$q.txt" 2>&1
  echo "exit $?"; grep -E "^\||rror" "$OUT/quant_$q.txt" | head -16
done
echo "== experiments/configs/gpu_pareto_sweep.ini"
work=$(mktemp -d) && mkdir -p "$work/main" && ln -s "$repo/.device/shared" "$work/shared"
(cd "$work/main" && timeout 70 "$repo/.device/run" ctxlab run "$repo/experiments/configs/gpu_pareto_sweep.ini" \
  --db "$OUT/gpu_pareto.db" > "$OUT/pareto_run.txt" 2>&1; echo "exit $?")
.device/run ctxlab ls --db "$OUT/gpu_pareto.db" > "$OUT/pareto_ls.txt" 2>&1
cat "$OUT/pareto_ls.txt" | head -30
