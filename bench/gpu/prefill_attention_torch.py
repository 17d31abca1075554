"""The PyTorch peer of `ctxlab bench gpu-prefill-attention`, run in the same device call: prefill
attention of one sequence (batch 1), bf16, causal, at the same shapes, through SDPA's flash, cuDNN
and memory-efficient backends and torch.compile'd flex_attention (a causal block mask, and a
sliding-window mask). TFLOP/s with ctxlab's count (core/cuda/gpu_attention.h,
prefill_attention_flops): 4 * heads * head_dim * n^2 / 2 for causal, the visible (query, key) pairs
counted exactly for a window. Each time is the median of CUDA-event timings of `launches`
back-to-back calls after warm-up. A backend that cannot run a shape prints why and the rest go on.

usage: python3 bench/gpu/prefill_attention_torch.py [--tokens 4096,8192,16384,32768] [--heads 32]
           [--kv-heads 32] [--head-dim 128] [--window 4096] [--rounds 10] [--launches 3] [--skip-flex]
"""
import argparse
import statistics
import sys

import torch
import torch.nn.functional as F
from torch.nn.attention import SDPBackend, sdpa_kernel


def median_ms(fn, rounds, launches):
    for _ in range(2):  # warm-up (and compilation)
        fn()
    torch.cuda.synchronize()
    start, stop = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    times = []
    for _ in range(rounds):
        start.record()
        for _ in range(launches):
            fn()
        stop.record()
        stop.synchronize()
        times.append(start.elapsed_time(stop) / launches)
    return statistics.median(times)


def flops(heads, hd, n, window):
    if window == 0:
        pairs = n * n / 2
    else:  # query t sees min(t + 1, window) keys
        w = min(window, n)
        pairs = w * (w + 1) / 2 + (n - w) * w
    return 4.0 * heads * hd * pairs


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--tokens", default="4096,8192,16384,32768")
    ap.add_argument("--heads", type=int, default=32)
    ap.add_argument("--kv-heads", type=int, default=0)
    ap.add_argument("--head-dim", type=int, default=128)
    ap.add_argument("--window", type=int, default=4096, help="flex_attention's sliding window (0: skip)")
    ap.add_argument("--rounds", type=int, default=10)
    ap.add_argument("--launches", type=int, default=3)
    ap.add_argument("--skip-flex", action="store_true")
    args = ap.parse_args()
    heads, hd = args.heads, args.head_dim
    kv_heads = args.kv_heads or heads
    dev = torch.device("cuda")
    print(f"torch {torch.__version__}, {torch.cuda.get_device_name()}; heads {heads}, kv heads {kv_heads}, "
          f"head_dim {hd}, bf16, batch 1; median of {args.rounds} timings of {args.launches} calls")

    # The card's bf16 GEMM rate, for scale.
    x = torch.randn(8192, 8192, dtype=torch.bfloat16, device=dev)
    y = torch.randn(8192, 8192, dtype=torch.bfloat16, device=dev)
    gemm_ms = median_ms(lambda: x @ y, 10, 3)
    print(f"bf16 GEMM 8192^3: {2 * 8192**3 / (gemm_ms * 1e-3) / 1e12:.0f} TFLOP/s")
    del x, y

    flex = None
    if not args.skip_flex:
        from torch.nn.attention.flex_attention import create_block_mask, flex_attention
        flex = torch.compile(flex_attention)
        window = args.window

        def causal(b, h, q_idx, kv_idx):
            return q_idx >= kv_idx

        def sliding(b, h, q_idx, kv_idx):
            return (q_idx >= kv_idx) & (q_idx - kv_idx < window)

    gqa = kv_heads != heads
    print("\n| tokens | backend | window | ms | TFLOP/s |\n|---|---|---|---|---|")
    for n in [int(t) for t in args.tokens.split(",")]:
        torch.manual_seed(0)
        q = torch.randn(1, heads, n, hd, dtype=torch.bfloat16, device=dev)
        k = torch.randn(1, kv_heads, n, hd, dtype=torch.bfloat16, device=dev)
        v = torch.randn(1, kv_heads, n, hd, dtype=torch.bfloat16, device=dev)
        runs = []
        for name, backend in (("sdpa flash", SDPBackend.FLASH_ATTENTION), ("sdpa cudnn", SDPBackend.CUDNN_ATTENTION),
                              ("sdpa efficient", SDPBackend.EFFICIENT_ATTENTION)):
            def call(backend=backend):
                with sdpa_kernel(backend):
                    return F.scaled_dot_product_attention(q, k, v, is_causal=True, enable_gqa=gqa)
            runs.append((name, 0, call))
        if flex is not None:
            masks = [("flex causal", 0, causal)] + ([("flex window", window, sliding)] if window > 0 else [])
            for name, w, mod in masks:
                block_mask = create_block_mask(mod, B=None, H=None, Q_LEN=n, KV_LEN=n, device=dev)
                runs.append((name, w, lambda bm=block_mask: flex(q, k, v, block_mask=bm, enable_gqa=gqa)))
        for name, w, call in runs:
            try:
                ms = median_ms(call, args.rounds, args.launches)
            except Exception as e:  # a backend that does not support the shape or card
                print(f"| {n} | {name} | {w} | unavailable: {str(e).splitlines()[0][:120]} | |")
                continue
            print(f"| {n} | {name} | {w} | {ms:.3f} | {flops(heads, hd, n, w) / (ms * 1e-3) / 1e12:.1f} |")
            sys.stdout.flush()
        del q, k, v
        torch.cuda.empty_cache()


if __name__ == "__main__":
    main()
