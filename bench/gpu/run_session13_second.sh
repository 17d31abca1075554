#!/usr/bin/env bash
# Thirteenth session (2026-12-07), second call, on branch pagedparams (the two pending patches of the
# time + PagedPool in the params + GpuEngine::set_weight_l2_prefetch_bytes; the L2 prefetch was not
# merged; its code: bench/gpu/pending/l2prefetch.patch as of commit f9cb77d, plus the one-engine sweep): the first call's tests all passed, but its
# decode runs with --l2-prefetch-mib 0,16,32 built an engine per value and ran past their timeouts
# (bf16 conversion and 4-bit repacking per engine). Now one engine per process times each value.
# The 7B's batch-1 decode at contexts 256 and 1024: this build ("new": xregs, nf4 pair, prefetch off /
# 16 / 32 MiB), the same binary on main's GEMV input paths ("old": CTXLAB_QGEMV_X_REGS=0
# CTXLAB_QGEMV_STAGE_INPUT=1), and main's binary for q4_0 while time is left.
# Here: BUILD=build BUNDLE_TESTS="gpu_engine_test" bash scripts/device_bundle.sh, then main's stripped
# ctxlab as .device/ctxlab_main.xz (xz -6).
. "$(dirname "$0")/common.sh"
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader
unpack_ctxlab ctxlab_main
limit=${LIMIT_S:-540}
GTEST_FILTER='*L2Prefetch*' run_test_programs gpu_engine_test
# decode LABEL TIMEOUT PROG QUANT [FLAGS...]: the 7B's batch-1 decode at 256 and 1024.
decode() {
  local label=$1 limit_s=$2 prog=$3 q=$4
  shift 4
  ((SECONDS + limit_s / 2 < limit)) || { echo "(no time for $label at $SECONDS s)"; return; }
  local log="$OUT/d7b_${label//[: =]/_}.txt" start=$SECONDS
  timeout "$limit_s" stdbuf -oL .device/run "$prog" bench gpu-decode --model "$M7" --context 256,1024 --tokens 64 \
    --rounds 2 --copy-mib 512 --no-stages --quant "$q" "$@" > "$log" 2>&1
  echo "== 7B $label: exit $? after $((SECONDS - start)) s"
  grep -E "^device|^\| llama|^\| [a-z_]+ \[|rror" "$log" | sed 's/, copy bandwidth.*//; s/^| llama [^|]*/| 7B /'
}
decode "none new" 75 ctxlab none --l2-prefetch-mib 0,16,32
decode "q4_0 new" 100 ctxlab q4_0 --l2-prefetch-mib 0,16,32
decode "int8 new" 75 ctxlab int8 --l2-prefetch-mib 0,16,32
decode "nf4 codes=bfloat16 new" 100 ctxlab nf4:codes=bfloat16 --l2-prefetch-mib 0,16,32
CTXLAB_QGEMV_X_REGS=0 CTXLAB_QGEMV_STAGE_INPUT=1 decode "q4_0 old" 100 ctxlab q4_0 --l2-prefetch-mib 0,32
decode "q4_0 main" 80 ctxlab_main q4_0
