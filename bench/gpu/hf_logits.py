"""ctxlab's GPU logits against HF transformers on the same random Llama-2-7B-shaped checkpoint.

Makes the checkpoint with save_pretrained (bf16 safetensors), runs HF's forward in bf16 (sdpa) and in
float32 on a random prompt, then `ctxlab logits --device cuda` on the saved folder, and prints each
bf16 implementation's distance to the float32 logits and to each other: relative L2 error, max |diff|,
and top-1 agreement over the prompt's positions.

usage: python3 bench/gpu/hf_logits.py CONFIG.json [TOKENS] [DIR]   (on the device, after device_bundle.sh)
"""
import json
import subprocess
import sys

import torch
from safetensors.torch import load_file
from transformers import LlamaConfig, LlamaForCausalLM


def compare(name, a, b):
    a, b = a.float(), b.float()
    rel = ((a - b).norm() / b.norm()).item()
    worst_row = ((a - b).norm(dim=-1) / b.norm(dim=-1)).max().item()
    top1 = (a.argmax(-1) == b.argmax(-1)).float().mean().item()
    print(f"| {name} | {rel:.4f} | {worst_row:.4f} | {(a - b).abs().max().item():.4f} | {top1:.3f} |")


def main():
    config_path = sys.argv[1]
    tokens = int(sys.argv[2]) if len(sys.argv) > 2 else 128
    folder = sys.argv[3] if len(sys.argv) > 3 else "/tmp/ctxlab_llama2_7b_random"
    cfg = {k: v for k, v in json.load(open(config_path)).items() if not k.startswith("_")}
    config = LlamaConfig(**cfg)
    config._attn_implementation = "sdpa"
    torch.manual_seed(0)
    dev = torch.device("cuda")
    with dev:
        model = LlamaForCausalLM(config).to(torch.bfloat16)
    model.eval()
    model.save_pretrained(folder)
    ids = torch.randint(3, config.vocab_size, (1, tokens), generator=torch.Generator().manual_seed(1)).to(dev)
    with torch.inference_mode():
        hf_bf16 = model(ids).logits[0].float().cpu()
        model.float()
        hf_f32 = model(ids).logits[0].cpu()
    del model
    torch.cuda.empty_cache()
    out = folder + "/ctxlab_logits.safetensors"
    subprocess.run([".device/run", "ctxlab", "logits", "--device", "cuda", "--model", folder, "--prompt-ids",
                    ",".join(str(int(t)) for t in ids[0]), "--out", out], check=True)
    ours = load_file(out)["logits"][0]
    print(f"\nRandom Llama-2-7B shape (one random prompt of {tokens} tokens), transformers "
          f"{__import__('transformers').__version__}, torch {torch.__version__}\n")
    print("| logits | rel L2 error | worst position rel L2 | max abs diff | top-1 agreement |")
    print("|---|---|---|---|---|")
    compare("ctxlab cuda bf16 vs HF float32", ours, hf_f32)
    compare("HF bf16 (sdpa) vs HF float32", hf_bf16, hf_f32)
    compare("ctxlab cuda bf16 vs HF bf16", ours, hf_bf16)


if __name__ == "__main__":
    main()
