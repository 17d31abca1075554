#!/usr/bin/env bash
# One device call: the runner on the GPU engine (experiments/configs/gpu_quickstart.ini) and, for
# comparison, the CPU quickstart's sdpa/none/none trial on the same host, both into one run store;
# then ls, compare and the export of both runs.
# Here:   BUNDLE_TESTS=0 BUNDLE_DATASETS=1 bash scripts/device_bundle.sh   (carry is limited to 64 MiB)
# Device: bash bench/gpu/run_runner.sh   (run tool, carry [".device"], kind nvidia-h100-x1)
set -uo pipefail
repo="$(cd "$(dirname "$0")/../.." && pwd)"
# The configs name ../shared/...: give them a working directory whose ../shared is the bundle's.
work=$(mktemp -d) && mkdir -p "$work/main" && ln -s "$repo/.device/shared" "$work/shared" && cd "$work/main"
db=$work/runs.db
ctx() { "$repo/.device/run" ctxlab "$@"; }
ctx run "$repo/experiments/configs/gpu_quickstart.ini" --db "$db" 2>&1 | tail -5
ctx run "$repo/experiments/configs/quickstart.ini" --db "$db" --set grid.kv=none --set grid.quant=none \
  --set grid.attention=sdpa --set experiment.threads=16 2>&1 | tail -3
ctx ls --db "$db"
ids=$(ctx ls --db "$db" 2>/dev/null | awk '$0 ~ /ok/ {print $1}' | grep -E '^[0-9]+$' | tr '\n' ' ')
echo "== compare runs: $ids"
ctx compare $ids --db "$db"
