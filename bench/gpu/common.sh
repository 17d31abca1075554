# Pieces the device scripts in bench/gpu share. Sourced first (`. "$(dirname "$0")/common.sh"`): it sets
# bash's error options, moves to the repository root and sets OUT (the run tool's output folder, else a
# temporary one).
set -uo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
export OUT=${OUT:-$(mktemp -d)}  # exported: scripts this one runs write into the same folder

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

# The Llama-2-7B shape and its 8-layer cut (random weights), which most device scripts decode.
M7=random:.device/bench_configs/llama2_7b.json
M8=random:.device/bench_configs/llama2_7b_8layers.json

# A test log's summary lines (not the per-case "worst ... error" reports): summary LOG [LINES].
summary() { grep -E "FAILED|PASSED|Skipped|tests ran|Failure|rror" "$1" | grep -v "worst" | head -"${2:-16}"; }

# decode_7b LABEL TIMEOUT QUANT [FLAGS...]: the 7B's batch-1 decode (`ctxlab bench gpu-decode`, 64 tokens
# x 2 rounds at CONTEXTS, default 256,1024) into $OUT/d7b_LABEL.txt; skipped when the caller's limit
# (LIMIT_S, default 570 s) leaves less than 30 s. Prints the device line, the decode rows and, for
# quantized weights, the GEMV and layer tables.
decode_7b() {
  local label=$1 limit_s=$2 q=$3
  shift 3
  ((SECONDS + 30 < ${LIMIT_S:-570})) || { echo "(no time for $label at $SECONDS s)"; return; }
  local log="$OUT/d7b_${label//[: =]/_}.txt" start=$SECONDS
  timeout "$limit_s" .device/run "${CTXLAB_PROG:-ctxlab}" bench gpu-decode --model "$M7" --context "${CONTEXTS:-256,1024}" \
    --tokens 64 --rounds 2 --copy-mib 512 --no-stages --quant "$q" "$@" > "$log" 2>&1
  echo "== ctxlab 7B $label: exit $? after $((SECONDS - start)) s"
  grep -E "^device|^\| (llama|q_proj|o_proj|gate_proj|down_proj|lm_head|four|one)|rror" "$log" | sed 's/, copy bandwidth.*//'
}

# ff_decode QUANT FF [FLAGS...]: the 8-layer Llama-2-7B shape with intermediate size FF (its plain
# gate_proj GEMV has FF / 16 tiles: 10560 gives 5 per block of an H100's 132, 11008 5.2, 12672 6):
# the GEMV and layer tables and the decode at 256, one process.
ff_decode() {
  local q=$1 ff=$2
  shift 2
  sed "s/\"intermediate_size\": 11008/\"intermediate_size\": $ff/" .device/bench_configs/llama2_7b_8layers.json > "$OUT/ff$ff.json"
  local log="$OUT/ff${ff}_${q%%:*}.txt" start=$SECONDS
  timeout 60 .device/run ctxlab bench gpu-decode --model "random:$OUT/ff$ff.json" --context 256 --tokens 32 --rounds 2 \
    --copy-mib 512 --no-stages --quant "$q" "$@" > "$log" 2>&1
  echo "== 8-layer shape, ff $ff, $q: exit $? after $((SECONDS - start)) s"
  grep -E "^\| (llama|gate_proj|down_proj|four)|rror" "$log" | sed 's/| llama [^|]* //'
}

# Each bundled test program named, whole, into $OUT/NAME.txt (110 s each at most), with its summary.
run_test_programs() {
  local t start
  for t in "$@"; do
    start=$SECONDS
    timeout 110 .device/run "$t" --gtest_brief=1 > "$OUT/$t.txt" 2>&1
    echo "== $t: exit $? after $((SECONDS - start)) s"; summary "$OUT/$t.txt"
  done
}

# gpu_attention_test's paged flash / wgmma / tma cases in log $1: how many, and the worst relative error.
paged_flash_worst() {
  grep -E "_paged(8|16|128)(_flex_[a-z_0-9]+)? (flash|wgmma|tma)" "$1" |
    awk '{w = $NF + 0; if (w > worst) worst = w} END {printf "flash/wgmma/tma paged: %d lines, worst rel err %.3g\n", NR, worst}'
}

# Paged against contiguous KV in prefill: attention alone at 8k (Llama-2-7B's 32 heads of 128; blocks
# of 16 and 128; the mma.sync, wgmma and tma kernels), then TTFT of an 8k prompt on the 8-layer shape
# (--kv-block-size 0 and 16).
paged_prefill_timings() {
  echo "== prefill attention at 8k, 32 heads x 128, contiguous vs paged"
  timeout 20 .device/run ctxlab bench gpu-prefill-attention --tokens 8192 --heads 32 --head-dim 128 \
    --kernel flash,wgmma,tma --block-size 0,16,128 --rounds 3 --launches 2 > "$OUT/prefill_attention.txt" 2>&1
  echo "exit $?"; grep -E "^\||rror" "$OUT/prefill_attention.txt"
  local bs
  for bs in 0 16; do
    echo "== TTFT, 8k prompt, 8-layer Llama-2-7B shape, --kv-block-size $bs"
    timeout 25 .device/run ctxlab bench gpu-decode --model $M8 --context 8192 --tokens 16 --rounds 1 --no-stages \
      --kv-block-size $bs > "$OUT/decode_kv$bs.txt" 2>&1
    echo "exit $?"; grep -E "^device|^\||rror" "$OUT/decode_kv$bs.txt" | head -8
  done
}

# gpu_engine_test's KIVI cases (the GPU engine against the CPU engine).
kivi_engine_checks() {
  echo "== gpu_engine_test *Kivi* (engines vs the CPU engine)"
  timeout 40 .device/run gpu_engine_test --gtest_brief=1 --gtest_filter='*Kivi*' > "$OUT/gpu_engine_test.txt" 2>&1
  echo "rc $?"
  grep -E "FAILED|Failure|PASSED|tests ran" "$OUT/gpu_engine_test.txt" | head -8
}

# An earlier ctxlab build carried as .device/NAME.xz, to time it in the same call: `unpack_ctxlab NAME`
# puts it at .device/bin/NAME (run it with CTXLAB_PROG=NAME kivi_bench ...).
unpack_ctxlab() { .device/run exec true && xz -dc ".device/$1.xz" > ".device/bin/$1" && chmod +x ".device/bin/$1"; }

# Decode attention at 32k: `kivi_bench LABEL FLAGS...` runs ctxlab bench gpu-attention with the flags and
# prints "label | layout | splits | K+V MB | us | ratio vs copy | time vs bf16 of the same split" rows
# (CTXLAB_PROG: another bundled ctxlab, unpack_ctxlab).
kivi_bench_runs=0
kivi_bench() {
  local label=$1; shift
  kivi_bench_runs=$((kivi_bench_runs + 1))
  local log="$OUT/bench_$kivi_bench_runs.txt"
  timeout 30 .device/run "${CTXLAB_PROG:-ctxlab}" bench gpu-attention --context 32768 --copy-mib 512 "$@" > "$log" 2>&1
  echo "  rc $? ($label)"
  grep -m1 "copy bandwidth" "$log" | sed 's/.*copy bandwidth/  copy/'
  grep "^| [0-9]" "$log" | awk -F'|' -v l="$label" '{printf "%s |%s|%s|%s|%s|%s|%s\n", l, $4, $5, $6, $9, $11, $12}'
}
