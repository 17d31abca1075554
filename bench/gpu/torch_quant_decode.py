"""The PyTorch peer of `ctxlab bench gpu-decode --quant ...`: batch-1 greedy decode of a Llama-shaped
model with random weights, written the way gpt-fast writes it (the fastest plain-PyTorch decoder for
weight-only quantization), run in the same device call as ctxlab.

- One decode step: embedding row, per layer RMSNorm + stacked QKV + RoPE + KV write into a static
  cache + SDPA over the cache with a position mask + o_proj + RMSNorm + stacked gate/up + SiLU-mul +
  down_proj, then the final norm, a bf16 classifier and argmax. The layer is one torch.compile'd
  function (inductor, fullgraph), reused by every layer; the whole step, the position increment
  included, is captured in one CUDA graph and replayed.
- Weights (--weights):
    bf16        F.linear on bf16 matrices (cuBLAS).
    int8        gpt-fast's WeightOnlyInt8Linear: F.linear(x, w_int8.to(bf16)) * scale per output
                row, which inductor fuses into one dequantizing GEMV.
    int4_g32,   gpt-fast's WeightOnlyInt4Linear: torch.ops.aten._weight_int4pack_mm (tinygemm),
    int4_g128   asymmetric 4-bit with a bf16 scale and zero per group of 32 / 128 weights,
                inner_k_tiles 8.
  The classifier stays bf16 in every variant (as ctxlab's default, lm_head=false).
- Prints the weight bytes a step reads, ms/token (CUDA events over the replays; median of rounds)
  and the ratio against the card's copy bandwidth measured in the same process.

usage: python3 bench/gpu/torch_quant_decode.py CONFIG.json --weights W [--context 256] [--tokens 64]
"""
import argparse
import json
import statistics
import sys
import time

import torch
import torch.nn.functional as F


def parse():
    ap = argparse.ArgumentParser()
    ap.add_argument("config")
    ap.add_argument("--weights", default="bf16", choices=["bf16", "int8", "int4_g32", "int4_g128"])
    ap.add_argument("--context", type=int, default=256)
    ap.add_argument("--tokens", type=int, default=64)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--no-compile", action="store_true", help="eager layers (no inductor fusion)")
    ap.add_argument("--no-tuning", action="store_true", help="without inductor's coordinate-descent tuning")
    return ap.parse_args()


def copy_bandwidth(dev):
    """Device-to-device copy of 1 GiB, bytes read + written per second (median of 10)."""
    a = torch.empty(1 << 30, dtype=torch.uint8, device=dev).random_()
    b = torch.empty_like(a)
    times = []
    for _ in range(10):
        s, e = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        s.record()
        b.copy_(a)
        e.record()
        e.synchronize()
        times.append(s.elapsed_time(e) / 1e3)
    del a, b
    return 2 * (1 << 30) / statistics.median(times)


class Int8Weight:
    """Per-output-row symmetric int8 (gpt-fast WeightOnlyInt8QuantHandler)."""

    def __init__(self, w):
        scale = w.float().abs().amax(dim=1).clamp(min=1e-8) / 127
        self.q = torch.round(w.float() / scale[:, None]).clamp(-128, 127).to(torch.int8)
        self.scale = scale.to(torch.bfloat16)
        self.tensors = (self.q, self.scale)


class Int4Weight:
    """tinygemm's int4: q in 0..15 per weight, w = (q - 8) * scale + zero per group (gpt-fast
    WeightOnlyInt4QuantHandler / torchao's tensor-core-tiled layout)."""

    def __init__(self, w, group, keep_reference=False):
        n, k = w.shape
        g = w.float().reshape(n, k // group, group)
        lo, hi = g.amin(dim=2), g.amax(dim=2)
        scale = ((hi - lo).clamp(min=1e-6) / 15).to(torch.bfloat16)
        zero = (lo + scale.float() * 8).to(torch.bfloat16)
        q = torch.round((g - (zero.float() - scale.float() * 8)[..., None]) / scale.float()[..., None])
        q = q.clamp(0, 15).to(torch.int32).reshape(n, k)
        packed = (q[:, ::2] << 4 | q[:, 1::2]).to(torch.uint8)  # even element in the high nibble
        self.packed = torch.ops.aten._convert_weight_to_int4pack(packed, 8)
        self.sz = torch.stack([scale, zero], dim=2).transpose(0, 1).contiguous()  # [k / group, n, 2]
        self.group = group
        self.tensors = (self.packed, self.sz)
        if keep_reference:  # the dequantized matrix, for check_int4 only
            self.reference = ((q.reshape(n, k // group, group).float() - 8) * scale.float()[..., None] +
                              zero.float()[..., None]).reshape(n, k)


def make_linear(kind):
    """(quantize(w) -> tensors, apply(x, *tensors) -> y) for one weight format."""
    if kind == "bf16":
        return (lambda w: (w,)), (lambda x, w: F.linear(x, w))
    if kind == "int8":
        return (lambda w: Int8Weight(w).tensors), (lambda x, q, s: F.linear(x, q.to(x.dtype)) * s)
    group = int(kind.split("_g")[1])

    def apply4(x, packed, sz):
        shape = x.shape
        y = torch.ops.aten._weight_int4pack_mm(x.reshape(-1, shape[-1]), packed, group, sz)
        return y.reshape(*shape[:-1], y.shape[-1])

    return (lambda w: Int4Weight(w, group).tensors), apply4


def check_int4(group, dev):
    """tinygemm against the dequantized matrix on one [4096, 4096] product: relative L2 error."""
    torch.manual_seed(1)
    w = torch.randn(4096, 4096, device=dev, dtype=torch.bfloat16) * 0.02
    q = Int4Weight(w, group, keep_reference=True)
    x = torch.randn(1, 4096, device=dev, dtype=torch.bfloat16)
    y = torch.ops.aten._weight_int4pack_mm(x, q.packed, group, q.sz).float()
    ref = x.float() @ q.reference.t()
    return ((y - ref).norm() / ref.norm()).item()


def main():
    args = parse()
    dev = torch.device("cuda")
    torch.set_grad_enabled(False)
    cfg = {k: v for k, v in json.load(open(args.config)).items() if not k.startswith("_")}
    d, ff, L = cfg["hidden_size"], cfg["intermediate_size"], cfg["num_hidden_layers"]
    H, Hkv = cfg["num_attention_heads"], cfg.get("num_key_value_heads", cfg["num_attention_heads"])
    hd, V, eps = d // H, cfg["vocab_size"], cfg["rms_norm_eps"]
    theta = cfg.get("rope_theta", 10000.0)
    capacity = args.context + args.tokens + 8  # each round starts again at --context

    print(f"device: {torch.cuda.get_device_name()}, torch {torch.__version__}")
    bw = copy_bandwidth(dev)
    print(f"copy bandwidth: {bw / 1e12:.3f} TB/s")
    if args.weights.startswith("int4"):
        print(f"tinygemm check: rel L2 error {check_int4(int(args.weights.split('_g')[1]), dev):.2e} against the dequantized matrix")

    quantize, apply_linear = make_linear(args.weights)
    torch.manual_seed(0)
    t0 = time.perf_counter()

    def rand(*shape):
        return torch.randn(*shape, device=dev, dtype=torch.bfloat16) * 0.02

    layers = []
    for _ in range(L):
        layers.append(dict(
            attn_norm=torch.ones(d, device=dev, dtype=torch.bfloat16),
            ffn_norm=torch.ones(d, device=dev, dtype=torch.bfloat16),
            wqkv=quantize(rand((H + 2 * Hkv) * hd, d)),
            wo=quantize(rand(d, H * hd)),
            w_gate_up=quantize(rand(2 * ff, d)),
            w_down=quantize(rand(d, ff)),
            k=torch.zeros(1, Hkv, capacity, hd, device=dev, dtype=torch.bfloat16),
            v=torch.zeros(1, Hkv, capacity, hd, device=dev, dtype=torch.bfloat16)))
        layers[-1]["k"][:, :, : args.context].normal_()
        layers[-1]["v"][:, :, : args.context].normal_()
    embed, head = rand(V, d), rand(V, d)
    final_norm = torch.ones(d, device=dev, dtype=torch.bfloat16)
    inv_freq = 1.0 / (theta ** (torch.arange(0, hd, 2, device=dev, dtype=torch.float32) / hd))
    weight_bytes = sum(t.numel() * t.element_size() for l in layers for key in ("wqkv", "wo", "w_gate_up", "w_down")
                       for t in l[key]) + head.numel() * 2 + d * 2 * (2 * L + 1)
    kv_bytes = 2 * L * Hkv * args.context * hd * 2
    print(f"weights {args.weights}: built in {time.perf_counter() - t0:.1f} s; a step reads {weight_bytes / 1e9:.3f} GB "
          f"of weights + {kv_bytes / 1e9:.3f} GB of K/V at {args.context}")

    def rms_norm(x, w):
        xf = x.float()
        return (xf * torch.rsqrt(xf.pow(2).mean(-1, keepdim=True) + eps)).to(torch.bfloat16) * w

    def rope(x, cos, sin):  # HF's rotate_half layout, [1, heads, 1, hd]
        x1, x2 = x.float().chunk(2, dim=-1)
        return torch.cat([x1 * cos - x2 * sin, x2 * cos + x1 * sin], dim=-1).to(torch.bfloat16)

    def layer(x, pos, cos, sin, mask, attn_norm, ffn_norm, wqkv, wo, w_gate_up, w_down, k_cache, v_cache):
        h = rms_norm(x, attn_norm)
        q, k, v = apply_linear(h, *wqkv).split([H * hd, Hkv * hd, Hkv * hd], dim=-1)
        q = rope(q.view(1, 1, H, hd).transpose(1, 2), cos, sin)
        k = rope(k.view(1, 1, Hkv, hd).transpose(1, 2), cos, sin)
        v = v.view(1, 1, Hkv, hd).transpose(1, 2)
        k_cache[:, :, pos] = k  # gpt-fast's KVCache.update
        v_cache[:, :, pos] = v
        o = F.scaled_dot_product_attention(q, k_cache, v_cache, attn_mask=mask, enable_gqa=H != Hkv)
        x = x + apply_linear(o.transpose(1, 2).reshape(1, 1, H * hd), *wo)
        g, u = apply_linear(rms_norm(x, ffn_norm), *w_gate_up).split([ff, ff], dim=-1)
        return x + apply_linear(F.silu(g) * u, *w_down)

    def head_fn(x):
        return torch.argmax(F.linear(rms_norm(x, final_norm), head), dim=-1).view(1)

    if not args.no_compile:
        import torch._inductor.config as ic
        ic.coordinate_descent_tuning = not args.no_tuning  # as gpt-fast sets it
        layer = torch.compile(layer, fullgraph=True, dynamic=False)
        head_fn = torch.compile(head_fn, fullgraph=True, dynamic=False)

    token = torch.zeros(1, dtype=torch.long, device=dev)
    pos = torch.full((1,), args.context, dtype=torch.long, device=dev)
    keys = torch.arange(capacity, device=dev)

    def step():
        x = embed[token].view(1, 1, d)
        angle = pos.float()[:, None] * inv_freq[None, :]
        cos, sin = angle.cos().view(1, 1, 1, -1), angle.sin().view(1, 1, 1, -1)
        mask = (keys <= pos).view(1, 1, 1, capacity)
        for l in layers:
            x = layer(x, pos, cos, sin, mask, l["attn_norm"], l["ffn_norm"], l["wqkv"], l["wo"], l["w_gate_up"],
                      l["w_down"], l["k"], l["v"])
        token.copy_(head_fn(x))
        pos.add_(1)

    t0 = time.perf_counter()
    side = torch.cuda.Stream()
    side.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(side):
        for _ in range(3):  # compiles, then warms cuBLAS and the kernels up
            step()
    torch.cuda.current_stream().wait_stream(side)
    torch.cuda.synchronize()
    print(f"compile + warm-up: {time.perf_counter() - t0:.1f} s ({'eager' if args.no_compile else 'inductor'})")
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        step()

    per_token = []
    for _ in range(args.rounds):
        pos.fill_(args.context)
        graph.replay()  # one untimed step
        s, e = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        s.record()
        for _ in range(args.tokens):
            graph.replay()
        e.record()
        e.synchronize()
        per_token.append(s.elapsed_time(e) / args.tokens)
    ms = statistics.median(per_token)
    ratio = (weight_bytes + kv_bytes) / (ms / 1e3) / bw
    print(f"RESULT torch {args.weights} context {args.context}: {ms:.3f} ms/token "
          f"(rounds {', '.join(f'{t:.3f}' for t in per_token)}), roofline ratio {ratio:.3f}")


if __name__ == "__main__":
    sys.exit(main())
