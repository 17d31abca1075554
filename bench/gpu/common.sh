# Pieces the device scripts in bench/gpu share. Sourced first (`. "$(dirname "$0")/common.sh"`): it sets
# bash's error options, moves to the repository root and sets OUT (the run tool's output folder, else a
# temporary one).
set -uo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
OUT=${OUT:-$(mktemp -d)}

# The run tool brings back a limited number of files from $OUT: the outermost script that sources
# this file packs everything it leaves there into one $OUT/logs.tar.gz when it exits.
pack_out() {
  local tmp
  tmp=$(mktemp) || return
  if tar -C "$OUT" -czf "$tmp" --exclude=logs.tar.gz . 2>/dev/null; then
    find "$OUT" -mindepth 1 -maxdepth 1 ! -name logs.tar.gz -exec rm -rf {} +
    mv "$tmp" "$OUT/logs.tar.gz"
  fi
}
if [[ -z "${CTXLAB_OUT_PACKER:-}" ]]; then
  export CTXLAB_OUT_PACKER=$$
  trap pack_out EXIT
fi

# The Nsight Compute binary of the GPU machine.
ncu_path() { command -v ncu || ls /usr/local/cuda/bin/ncu /opt/nvidia/nsight-compute/*/ncu 2>/dev/null | head -1; }

# gpu_attention_test's KIVI cases (quantize kernels against the CPU, every attention variant against
# float64): the summary and each variant's worst error. $1: the heading's detail.
kivi_attention_checks() {
  echo "== gpu_attention_test *Kivi* ($1)"
  timeout 60 .device/run gpu_attention_test --gtest_brief=1 --gtest_filter='*Kivi*' > "$OUT/gpu_attention_test.txt" 2>&1
  echo "rc $?"
  grep -E "FAILED|Failure|PASSED|tests ran" "$OUT/gpu_attention_test.txt" | head -12
  local v
  for v in default tensor-cores tensor-cores-registers tensor-cores-ring2 tensor-cores-ring3 cuda-cores; do
    echo "worst $v: $(grep -E " $v: max" "$OUT/gpu_attention_test.txt" | awk '{print $NF}' | sort -g | tail -1)"
  done
}

# The 8-layer Llama-2-7B shape (random weights) most device scripts decode.
M8=random:.device/bench_configs/llama2_7b_8layers.json

# gpu_engine_test's KIVI cases (the GPU engine against the CPU engine).
kivi_engine_checks() {
  echo "== gpu_engine_test *Kivi* (engines vs the CPU engine)"
  timeout 40 .device/run gpu_engine_test --gtest_brief=1 --gtest_filter='*Kivi*' > "$OUT/gpu_engine_test.txt" 2>&1
  echo "rc $?"
  grep -E "FAILED|Failure|PASSED|tests ran" "$OUT/gpu_engine_test.txt" | head -8
}

# Decode attention at 32k: `kivi_bench LABEL FLAGS...` runs ctxlab bench gpu-attention with the flags and
# prints "label | layout | splits | K+V MB | us | ratio vs copy | time vs bf16 of the same split" rows.
kivi_bench_runs=0
kivi_bench() {
  local label=$1; shift
  kivi_bench_runs=$((kivi_bench_runs + 1))
  local log="$OUT/bench_$kivi_bench_runs.txt"
  timeout 30 .device/run ctxlab bench gpu-attention --context 32768 --copy-mib 512 "$@" > "$log" 2>&1
  echo "  rc $? ($label)"
  grep -m1 "copy bandwidth" "$log" | sed 's/.*copy bandwidth/  copy/'
  grep "^| [0-9]" "$log" | awk -F'|' -v l="$label" '{printf "%s |%s|%s|%s|%s|%s|%s\n", l, $4, $5, $6, $9, $11, $12}'
}
