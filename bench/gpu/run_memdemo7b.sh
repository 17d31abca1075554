#!/usr/bin/env bash
# Issue 8's memory demo on the Llama-2-7B shape itself (random weights, 32 layers) under 20 GiB, the
# budget the issue names (the 8-layer cut under 5.6 GiB is bench/gpu/run_memdemo.sh). One device call:
#  1. contexts (batch 1) for baseline, paged_l2norm_int8w and l2norm_kivi8_int8w, 8k .. 64k
#     (stop_at_oom: a setting's longer contexts are not run after its first oom);
#  2. batches at 8k for baseline, paged_int8w and kivi8_int8w (1, 2, 4, 8).
# Both into $OUT/memdemo7b.db (packed into logs.tar.gz); ctxlab ls / export / plot read it anywhere.
# Here:   BUILD=build BUNDLE_TESTS="gpu_engine_test" bash scripts/device_bundle.sh
# Device: bash bench/gpu/run_memdemo7b.sh   (run tool, carry [".device"], kind nvidia-h100-x1)
#         CONTEXT_SETTINGS / BATCH_SETTINGS / CONTEXTS / BATCHES narrow it; RUN_TIMEOUT bounds each run.
. "$(dirname "$0")/common.sh"
repo=$PWD
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader
# The demo's config with only the settings named in $1 (its [experiment] and [datasets] as they are).
config_with() {
  awk -v keep="$1" '
    BEGIN { n = split(keep, k, " "); for (i = 1; i <= n; ++i) want["[setting." k[i] "]"] = 1; on = 1 }
    /^\[/ { on = ($0 ~ /^\[setting\./) ? ($0 in want) : 1 }
    on' experiments/configs/gpu_memory_scaling.ini
}
config_with "${CONTEXT_SETTINGS:-baseline paged_l2norm_int8w l2norm_kivi8_int8w}" > "$OUT/contexts.ini"
config_with "${BATCH_SETTINGS:-baseline paged_int8w kivi8_int8w}" > "$OUT/batches.ini"
# The config names ../shared/...: a working directory whose ../shared is the bundle's.
work=$(mktemp -d) && mkdir -p "$work/main" && ln -s "$repo/.device/shared" "$work/shared" && cd "$work/main"
demo() {  # $1: config, then --set overrides
  local ini=$1 start=$SECONDS; shift
  echo "== ctxlab run $(basename "$ini") $*"
  timeout "${RUN_TIMEOUT:-280}" "$repo/.device/run" ctxlab run "$ini" --db "$OUT/memdemo7b.db" \
    --set "model=random:$repo/.device/bench_configs/llama2_7b.json" --set memory_limit_mb=20480 "$@" \
    >> "$OUT/run.log" 2>&1
  echo "exit $? after $((SECONDS - start)) s"
}
# CONTEXT_SETTINGS="" or BATCH_SETTINGS="" skips that part; BATCH_EXTRA="key=value" adds one --set to
# the batch part (e.g. prefill_chunk=512: KIVI's bf16 ring per slot is residual + group + chunk rows).
[[ -n "${CONTEXT_SETTINGS-x}" ]] &&
  demo "$OUT/contexts.ini" --set batch_sizes=1 --set "context_lengths=${CONTEXTS:-8192,16384,32768,65536}"
[[ -n "${BATCH_SETTINGS-x}" ]] &&
  demo "$OUT/batches.ini" --set "batch_sizes=${BATCHES:-1,2,4,8}" --set context_lengths=8192 ${BATCH_EXTRA:+--set "$BATCH_EXTRA"}
grep -E "not run|rror" "$OUT/run.log" | head -20
"$repo/.device/run" ctxlab export --experiment gpu_memory_scaling --format jsonl --db "$OUT/memdemo7b.db" \
  > "$OUT/export.jsonl" 2>&1
"$repo/.device/run" ctxlab ls --db "$OUT/memdemo7b.db" | tee "$OUT/ls.txt"
