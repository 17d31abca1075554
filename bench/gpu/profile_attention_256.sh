#!/usr/bin/env bash
# Nsight Compute (--set full) on decode attention at short context as the engine launches it: the
# 8-layer Llama-2-7B shape in bf16 (decode attention does not depend on the weights' format), 256-key
# prompt, RoPE and the KV write fused into the launch, 6 split-KV chunks of at least 32 keys. Layers 0
# and 1 of the second decode step (the first 8 launches are the warm-up's first step). Each kernel is
# replayed alone, without the overlap programmatic dependent launch gives in the graph: the stall
# reasons say where a block's time goes (the fence and counter of the split-KV combine, the K/V loads,
# the RoPE'd q). Report in $OUT/ncu_attention_256.txt (and .ncu-rep), a summary and the SASS
# instructions with the most warp stall samples on stdout.
# Here: BUILD=build BUNDLE_TESTS=0 bash scripts/device_bundle.sh
. "$(dirname "$0")/common.sh"
NCU=$(ncu_path)
timeout ${NCU_TIMEOUT:-150} .device/run exec "$NCU" --kernel-name regex:attention_partial --launch-skip 8 --launch-count 2 \
  --set full --import-source no -o "$OUT/attention_256" .device/bin/ctxlab bench gpu-decode --model $M8 --context 256 \
  --tokens 3 --rounds 1 --no-stages --quant none --copy-mib 64 > "$OUT/ncu_attention_256_run.txt" 2>&1
echo "== ncu attention at 256: exit $?"
.device/run exec "$NCU" --import "$OUT/attention_256.ncu-rep" > "$OUT/ncu_attention_256.txt" 2>&1
# Per SASS instruction of the first profiled launch: the warp stall samples, the instructions with the
# most printed (where each warp's chain waits).
.device/run exec "$NCU" --import "$OUT/attention_256.ncu-rep" --launch-count 1 --page source --print-source sass --csv \
  > "$OUT/ncu_attention_256_sass.csv" 2>&1
python3 - "$OUT/ncu_attention_256_sass.csv" <<'PY'
import csv, sys
rows = list(csv.reader(open(sys.argv[1], errors="replace")))
head = next((i for i, r in enumerate(rows) if any("Warp Stall Sampling (All" in c for c in r)), None)
if head is None:
    sys.exit("no stall sampling column in the source page")
cols = rows[head]
samples = next(i for i, c in enumerate(cols) if "Warp Stall Sampling (All" in c)
source = next((i for i, c in enumerate(cols) if c.strip() == "Source"), 1)
body = [r for r in rows[head + 1:] if len(r) > samples and r[samples].replace(",", "").strip().isdigit()]
total = sum(int(r[samples].replace(",", "")) for r in body) or 1
print(f"{len(body)} SASS instructions, {total} stall samples; the 30 with the most:")
for r in sorted(body, key=lambda r: -int(r[samples].replace(",", "")))[:30]:
    n = int(r[samples].replace(",", ""))
    print(f"{n:7d} {100 * n / total:5.1f}%  {r[0]:>6}  {r[source].strip()}")
PY
grep -E "  void|attention_partial|Duration|DRAM Throughput|L2 Hit Rate  |Achieved Occupancy|Grid Size|Registers Per|Issue Slots Busy|No Eligible|Warp Cycles Per Issued|Stall|stall|cycles being stalled|Elapsed Cycles|SM Frequency" \
  "$OUT/ncu_attention_256.txt" | sed -E 's/ +/ /g' | head -90
