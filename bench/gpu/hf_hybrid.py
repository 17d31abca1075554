"""The PyTorch peer of `ctxlab bench gpu-decode` for hybrid models, run in the same device call:
HF transformers `generate` (bf16, greedy, batch 1) on a random GraniteMoeHybrid model of the given
config, over context lengths: TTFT (generate of 1 token), decode ms/token (from generate of NEW + 1
tokens minus TTFT) and peak device memory (torch.cuda.max_memory_allocated). The Mamba-2 layers run
transformers' torch fallback (torch_forward: the chunked SSD scan in plain torch ops); the CUDA
kernel path is switched off even where mamba_ssm / causal_conv1d are installed. A context that runs
out of device memory is reported as `oom` and the sweep goes on.

usage: python3 bench/gpu/hf_hybrid.py CONFIG.json [CONTEXTS] [NEW]     (CONTEXTS: comma-separated)
"""
import json
import os
import sys

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # the device has no network: no hub kernel downloads

import torch
import transformers
from transformers import GraniteMoeHybridConfig, GraniteMoeHybridForCausalLM
from transformers.models.granitemoehybrid import modeling_granitemoehybrid as hybrid_module

from hf_common import greedy, random_model, timed


def main():
    config_path = sys.argv[1]
    contexts = [int(c) for c in (sys.argv[2] if len(sys.argv) > 2 else "128,512,2048,8192,32768").split(",")]
    new = int(sys.argv[3]) if len(sys.argv) > 3 else 32
    dev = torch.device("cuda")

    cfg = {k: v for k, v in json.load(open(config_path)).items() if not k.startswith("_")}
    want_mamba = sum(t in ("mamba", "linear_attention") for t in cfg["layer_types"])
    # The spelling transformers 5.x writes (tests' granite_hybrid fixture: "linear_attention" = Mamba-2),
    # else the older "mamba" / "attention".
    spelling = {"mamba": "linear_attention", "attention": "full_attention"}
    try:
        config = GraniteMoeHybridConfig(**{**cfg, "layer_types": [spelling.get(t, t) for t in cfg["layer_types"]]})
    except ValueError:
        config = GraniteMoeHybridConfig(**cfg)
    model = random_model(GraniteMoeHybridForCausalLM, config, dev)
    mamba_layers = sum(1 for layer in model.model.layers if getattr(layer, "mamba", None) is not None)
    if mamba_layers != want_mamba:
        sys.exit(f"hf_hybrid.py: transformers built {mamba_layers} Mamba-2 layers, the config has {want_mamba}")
    # The torch fallback path, whatever is installed: the Mamba layers' constructors set this module
    # global from the kernels they found, and forward() reads it.
    fast = getattr(hybrid_module, "is_fast_path_available", None)
    hybrid_module.is_fast_path_available = False
    print(f"transformers {transformers.__version__}, torch {torch.__version__}; Mamba-2 mixer: torch_forward "
          f"(kernels found: {fast})")
    params = sum(p.numel() for p in model.parameters())
    weights_gb = torch.cuda.memory_allocated() / 1e9
    print(f"model: {params / 1e9:.2f} B params, {weights_gb:.2f} GB on the device (bf16), "
          f"{mamba_layers} of {len(model.model.layers)} layers Mamba-2")
    print("\n| context | TTFT ms | prefill tok/s | ms/token | tok/s | peak GB |\n|---|---|---|---|---|---|")
    for context in contexts:
        ids = torch.randint(3, config.vocab_size, (1, context), device=dev)

        def gen(n, ids=ids):
            greedy(model, ids, n)

        reps = 3 if context <= 4096 else 2
        try:
            torch.cuda.empty_cache()
            torch.cuda.reset_peak_memory_stats()
            gen(2)  # warm-up
            t_first = timed(lambda: gen(1), reps)
            t_all = timed(lambda: gen(new + 1), reps)
            peak = torch.cuda.max_memory_allocated() / 1e9
            ms_tok = 1e3 * (t_all - t_first) / new
            print(f"| {context} | {t_first * 1e3:.1f} | {context / t_first:.0f} | {ms_tok:.2f} | {1e3 / ms_tok:.1f} | "
                  f"{peak:.2f} |", flush=True)
        except torch.cuda.OutOfMemoryError:
            print(f"| {context} | oom | | | | > {torch.cuda.get_device_properties(0).total_memory / 1e9:.0f} |", flush=True)
        torch.cuda.empty_cache()


if __name__ == "__main__":
    main()
