"""Measured GPU baseline for PIM-GPT: batch-1 GPT token generation in PyTorch (eager).

``python3 -m validation.harness.gpt_decode --out FILE.jsonl [--context 1024] [--tokens 64]``

PIM-GPT (Wu et al., arXiv 2310.09385) compares its PIM system with a GPU *running the
model*: every generated token is one forward pass of a GPT model at batch 1 over a KV
cache, with the framework's per-kernel launch overhead. This harness measures exactly
that on the lent GPU for the eight GPT shapes of the paper (GPT-2 small…XL, GPT-3
small…XL; layers x d_model x heads as in ``validation/reproduce/_pim.py``), using
Hugging Face ``transformers``' ``GPT2LMHeadModel`` with random weights (timing does not
depend on the weight values; no download is needed), fp16, ``use_cache=True``:

- prefill a prompt of ``context - tokens - 4`` random token ids, run 4 warm-up steps, then
  time ``tokens`` decode steps back to back (as ``generate`` runs them: no synchronisation
  per step) with CUDA events; ``ms_per_token`` = elapsed / tokens;
- energy per token from NVML's total-energy counter over a loop of >= 2.5 s of decode
  steps (``validation.harness.energy``), with average power and SM clock.

Records: first the ``device`` record of :mod:`validation.harness.measure`, then one
``{"kind": "gpt_decode", "model", "layers", "d_model", "heads", "context", "batch": 1,
"dtype": "fp16", "ms_per_token", "wall_ms_per_token", "mJ_per_token",
"avg_W", "sm_clock"}`` per model. Standard library + torch + transformers only.
"""

from __future__ import annotations

import argparse
import json
import sys
import time

#: name -> (layers, d_model, heads): PIM-GPT's eight models (GPT-2 and GPT-3 papers' tables).
#: A copy of ``validation.reproduce._pim.PIMGPT_MODELS``: this module runs on the GPU machine
#: with torch alone and cannot import archsim; tests/reproduce/test_pimgpt_measured.py holds
#: the two tables equal (but for GPT-3 XL's heads, below).
GPT_MODELS: dict[str, tuple[int, int, int]] = {
    "gpt2-small": (12, 768, 12),
    "gpt2-medium": (24, 1024, 16),
    "gpt2-large": (36, 1280, 20),
    "gpt2-xl": (48, 1600, 25),
    "gpt3-small": (12, 768, 12),
    "gpt3-medium": (24, 1024, 16),
    "gpt3-large": (24, 1536, 16),
    # GPT-3 XL: 24 heads of 128 give 3072-wide attention in the GPT-3 paper's table; Hugging
    # Face's GPT-2 block needs heads x head_dim = d_model, so it is measured as 16 heads x 128
    "gpt3-xl": (24, 2048, 16),
}


def _model(layers: int, d: int, heads: int, context: int):  # noqa: ANN202 - torch module
    import torch
    from transformers import GPT2Config, GPT2LMHeadModel

    cfg = GPT2Config(n_layer=layers, n_embd=d, n_head=heads, n_positions=context, vocab_size=50257)
    torch.manual_seed(0)
    with torch.device("cuda"):  # initialise on the GPU: CPU init of 1.5B weights is slow
        model = GPT2LMHeadModel(cfg)
    return model.to(dtype=torch.float16).eval()


def measure_model(name: str, context: int, tokens: int, nvml, sampler) -> dict:  # noqa: ANN001
    """Decode latency per token (and energy, when NVML is available) of one GPT shape."""
    import torch

    from validation.harness.energy import measure_energy

    layers, d, heads = GPT_MODELS[name]
    model = _model(layers, d, heads, context)
    gen = torch.Generator(device="cuda").manual_seed(0)
    prompt = torch.randint(0, 50257, (1, context - tokens - 4), device="cuda", generator=gen)
    step_ids = torch.randint(0, 50257, (tokens + 4, 1, 1), device="cuda", generator=gen)
    with torch.inference_mode():
        out = model(input_ids=prompt, use_cache=True)
        for i in range(4):  # warm-up steps: lazy allocations, cuBLAS heuristics
            out = model(input_ids=step_ids[i], past_key_values=out.past_key_values, use_cache=True)
        torch.cuda.synchronize()
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        t0 = time.perf_counter()
        start.record()
        for i in range(4, tokens + 4):  # back to back, as generate() runs: no sync per step
            out = model(input_ids=step_ids[i], past_key_values=out.past_key_values, use_cache=True)
        end.record()
        end.synchronize()
        wall_ms = (time.perf_counter() - t0) * 1e3
        rec = {
            "kind": "gpt_decode",
            "model": name,
            "layers": layers,
            "d_model": d,
            "heads": heads,
            "context": context,
            "batch": 1,
            "dtype": "fp16",
            "ms_per_token": start.elapsed_time(end) / tokens,
            "wall_ms_per_token": wall_ms / tokens,
            "tokens_timed": tokens,
        }
        if nvml is not None:
            cache = model(input_ids=prompt, use_cache=True).past_key_values
            length = cache.get_seq_length()

            def one_token() -> None:
                # one decode step over the prompt's cache, then drop the appended K/V
                # (DynamicCache.crop) so every call of the energy loop does the same work
                model(input_ids=step_ids[0], past_key_values=cache, use_cache=True)
                cache.crop(length)

            e = measure_energy(one_token, rec["ms_per_token"], nvml, sampler)
            rec.update(
                mJ_per_token=e["mJ_per_iter"],
                avg_W=e["avg_W"],
                sm_clock=e["sm_clock"],
                energy_loop_ms_per_token=e["loop_ms_per_iter"],
            )
    return rec  # the model is freed with this frame; main() empties the CUDA cache


def main(argv: list[str] | None = None) -> int:
    from validation.harness.energy import ClockSampler, Nvml
    from validation.harness.measure import device_record

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", required=True)
    ap.add_argument("--context", type=int, default=1024)
    ap.add_argument("--tokens", type=int, default=64)
    ap.add_argument("--models", nargs="*", default=list(GPT_MODELS))
    args = ap.parse_args(argv)
    try:
        nvml = Nvml()
        sampler = ClockSampler(nvml)
    except (RuntimeError, OSError):
        nvml, sampler = None, None
    with open(args.out, "w") as fh:
        fh.write(json.dumps(device_record(nvml, [sys.executable, *sys.argv])) + "\n")
        fh.flush()
        for name in args.models:
            try:
                rec = measure_model(name, args.context, args.tokens, nvml, sampler)
                import torch

                torch.cuda.empty_cache()
            except Exception as exc:  # noqa: BLE001 - one failing model must not end the run
                rec = {"kind": "gpt_decode", "model": name, "error": f"{type(exc).__name__}: {exc}"}
            fh.write(json.dumps(rec) + "\n")
            fh.flush()
            print(json.dumps(rec))
    return 0


if __name__ == "__main__":
    sys.exit(main())
