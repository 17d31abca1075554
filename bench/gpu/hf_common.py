"""Helpers shared by the PyTorch peers of the GPU benchmarks (hf_decode.py, hf_hybrid.py)."""
import statistics
import time

import torch


def timed(fn, reps):
    """Median wall time of `reps` calls of fn, the device synchronised around each."""
    times = []
    for _ in range(reps):
        torch.cuda.synchronize()
        t0 = time.perf_counter()
        fn()
        torch.cuda.synchronize()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def random_model(model_class, config, dev):
    """model_class(config) with random bf16 weights built on `dev` (seed 0), sdpa attention, eval mode."""
    config._attn_implementation = "sdpa"
    torch.manual_seed(0)
    torch.set_default_dtype(torch.bfloat16)
    with dev:
        model = model_class(config)
    model.eval()
    torch.set_default_dtype(torch.float32)
    return model


def greedy(model, ids, n):
    """Exactly n greedy tokens after the prompt ids [1, context] (no stop token)."""
    with torch.inference_mode():
        out = model.generate(ids, max_new_tokens=n, min_new_tokens=n, do_sample=False, eos_token_id=None, pad_token_id=0)
    assert out.shape[1] == ids.shape[1] + n
