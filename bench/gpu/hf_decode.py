"""The PyTorch peer of `ctxlab bench gpu-decode`, run in the same device call: the card's copy
bandwidth and bf16 GEMM rate, then HF transformers `generate` (sdpa, bf16, greedy) on a random model
of the same config, batch 1, a prompt of CONTEXT tokens and NEW timed tokens.

usage: python3 bench/gpu/hf_decode.py CONFIG.json [CONTEXT] [NEW]
"""
import json
import sys

import torch
from transformers import LlamaConfig, LlamaForCausalLM

from hf_common import greedy, random_model, timed


def main():
    config_path = sys.argv[1]
    context = int(sys.argv[2]) if len(sys.argv) > 2 else 1024
    new = int(sys.argv[3]) if len(sys.argv) > 3 else 128
    dev = torch.device("cuda")

    # The card: device-to-device copy (bytes read + written) and an 8192^3 bf16 GEMM on random data.
    a = torch.empty(1 << 30, dtype=torch.uint8, device=dev).random_()
    b = torch.empty_like(a)
    copy_s = timed(lambda: b.copy_(a), 20)
    x = torch.randn(8192, 8192, dtype=torch.bfloat16, device=dev)
    y = torch.randn(8192, 8192, dtype=torch.bfloat16, device=dev)
    gemm_s = timed(lambda: x @ y, 20)
    del a, b, x, y
    print(f"torch copy bandwidth: {2 * (1 << 30) / copy_s / 1e12:.3f} TB/s; bf16 GEMM 8192^3: {2 * 8192**3 / gemm_s / 1e12:.0f} TFLOP/s")

    cfg = {k: v for k, v in json.load(open(config_path)).items() if not k.startswith("_")}
    config = LlamaConfig(**cfg)
    model = random_model(LlamaForCausalLM, config, dev)
    ids = torch.randint(3, config.vocab_size, (1, context), device=dev)

    def gen(n):
        greedy(model, ids, n)

    gen(8)  # warm-up
    t_first = timed(lambda: gen(1), 3)
    t_all = timed(lambda: gen(new + 1), 3)
    tok_s = new / (t_all - t_first)
    params = sum(p.numel() for p in model.parameters())
    print(f"HF transformers {__import__('transformers').__version__} generate (sdpa, bf16, greedy), {params / 1e9:.2f} B params, "
          f"context {context}: TTFT {t_first * 1e3:.1f} ms, decode {1e3 / tok_s:.2f} ms/token = {tok_s:.1f} tok/s")


if __name__ == "__main__":
    main()
