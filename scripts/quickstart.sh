#!/usr/bin/env bash
# Installs dependencies, builds, and runs the main job: the quickstart experiment
# (experiments/configs/quickstart.ini) on the real stories260K model over small slices of MMLU,
# HotpotQA, LongBench multi_news and the needle task, sweeping KV compression x weight quantization
# into a SQLite run store, then lists the runs and renders the Pareto fronts from the store.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install_deps.sh
bash scripts/build.sh
CTX=build/experiments/ctxlab
DB=${CTXLAB_QUICKSTART_DB:-quickstart.db}
OUT=${CTXLAB_QUICKSTART_PLOTS:-quickstart_plots}
rm -f "$DB" "$DB-wal" "$DB-shm"
echo "== ctxlab run experiments/configs/quickstart.ini --db $DB"
$CTX run experiments/configs/quickstart.ini --db "$DB"
echo
echo "== ctxlab ls --db $DB"
$CTX ls --db "$DB"
echo
echo "== ctxlab plot: quality against KV memory and against latency (PNG + SVG + data + script in $OUT/)"
$CTX plot --db "$DB" --experiment quickstart --kind pareto --x kv_mb_p50 --stem quickstart_pareto_kv -o "$OUT"
$CTX plot --db "$DB" --experiment quickstart --kind pareto --x latency_ms_p50 --stem quickstart_pareto_latency -o "$OUT"
$CTX plot --db "$DB" --experiment quickstart --kind compare --y quality -o "$OUT"
echo
echo "Next: $CTX show RUN --db $DB | $CTX compare RUN RUN --db $DB | $CTX rerun RUN --db $DB | $CTX export --experiment quickstart --db $DB"
