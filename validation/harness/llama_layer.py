"""Time and trace one Llama-3-8B-shaped decoder layer (prefill and decode) on a CUDA GPU.

``python3 -m validation.harness.llama_layer --out-dir DIR [--batch 1] [--prompt 2048]
[--context 4096] [--profiled-steps 3] [--sdpa-backend auto|flash|efficient|cudnn]``

The layer is written out in plain PyTorch (no model library), bf16, random weights
(timing does not depend on weight values), with the shapes of Llama-3-8B's config:
``d_model`` 4096, 32 query heads and 8 KV heads of 128, SwiGLU FFN 14336, RMSNorm
(eps 1e-5, ``F.rms_norm``), RoPE (theta 500000) as the Hugging Face reference writes it
(``x * cos + rotate_half(x) * sin`` with ``slice``/``neg``/``cat``), and
``F.scaled_dot_product_attention(..., enable_gqa=True)``:

- ``prefill``: ``batch x prompt`` tokens, causal;
- ``decode``: one new token per sequence attending to a KV cache of ``context`` tokens
  (the new K/V are written into a preallocated cache, as serving engines do).

For each phase it writes, under ``--out-dir``:

- ``llama3_8b_layer_{phase}.trace.json``: a ``torch.profiler`` Chrome trace
  (``activities=[CPU, CUDA]``, ``record_shapes=True``) of ``--profiled-steps`` layer calls
  after warm-up, each inside a ``record_function("layer_step_{i}")`` range — the input of
  ``archsim compare --torch-trace`` (no ``--shapes`` needed);
- one ``{"kind": "llama_layer", "phase", <shapes>, "ms", "ms_p20", "ms_p80", "ms_min",
  "reps", "timer", "trace", "sdpa_backend"}`` record in ``llama3_8b_layer.jsonl``, after the
  harness's ``device`` record (GPU, clocks, power limit, driver and library versions,
  command line, UTC date): whole-layer time per call by CUDA events with a cold L2
  (:func:`validation.harness.timing.bench`), eager (``ms``: the kernels and the gaps that
  host dispatch leaves between them) and replayed from one CUDA graph (``graph_ms``).

Standard library + torch only (runs through the harness shim described in
``validation/data/README.md``); nothing here imports archsim.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

__all__ = ["LLAMA3_8B", "LLAMA3_70B", "SHAPES", "DecoderLayer", "main", "run_phase"]

#: Llama-3-8B's decoder-layer shapes (Meta's config.json for Meta-Llama-3-8B).
LLAMA3_8B = {
    "d_model": 4096,
    "n_heads": 32,
    "n_kv_heads": 8,
    "head_dim": 128,
    "ffn": 14336,
    "rms_eps": 1e-5,
    "rope_theta": 500000.0,
}

#: Llama-3-70B's decoder-layer shapes (Meta's config.json for Meta-Llama-3-70B).
LLAMA3_70B = {**LLAMA3_8B, "d_model": 8192, "n_heads": 64, "ffn": 28672}

#: ``--shapes`` name -> layer shapes.
SHAPES = {"llama3-8b": LLAMA3_8B, "llama3-70b": LLAMA3_70B}


def _rotate_half(x):  # noqa: ANN001, ANN202 - torch tensors
    import torch

    half = x.shape[-1] // 2
    return torch.cat((-x[..., half:], x[..., :half]), dim=-1)


class DecoderLayer:
    """One pre-norm Llama decoder layer with a preallocated KV cache.

    Parameters
    ----------
    batch, max_len
        Sequences and the KV cache length (tokens) to allocate.
    device, dtype
        Where and in which dtype the weights and cache live.
    cfg
        Shapes (default :data:`LLAMA3_8B`).
    """

    def __init__(self, batch: int, max_len: int, *, device="cuda", dtype=None, cfg=None) -> None:  # noqa: ANN001
        import torch

        self.cfg = dict(cfg or LLAMA3_8B)
        c = self.cfg
        dtype = dtype or torch.bfloat16
        dm, hq, hkv, d, ff = c["d_model"], c["n_heads"], c["n_kv_heads"], c["head_dim"], c["ffn"]
        gen = torch.Generator(device="cpu").manual_seed(0)

        def w(n_out: int, n_in: int):  # noqa: ANN202
            return (torch.randn(n_out, n_in, generator=gen) * n_in**-0.5).to(device, dtype)

        self.wq, self.wk, self.wv, self.wo = (
            w(hq * d, dm),
            w(hkv * d, dm),
            w(hkv * d, dm),
            w(dm, hq * d),
        )
        self.w1, self.w3, self.w2 = w(ff, dm), w(ff, dm), w(dm, ff)
        self.g_attn = torch.ones(dm, device=device, dtype=dtype)
        self.g_ffn = torch.ones(dm, device=device, dtype=dtype)
        self.k_cache = torch.zeros(batch, hkv, max_len, d, device=device, dtype=dtype)
        self.v_cache = torch.zeros_like(self.k_cache)
        inv = 1.0 / (c["rope_theta"] ** (torch.arange(0, d, 2, dtype=torch.float32) / d))
        ang = torch.outer(torch.arange(max_len, dtype=torch.float32), inv)
        emb = torch.cat((ang, ang), dim=-1)
        self.cos = emb.cos().to(device, dtype)[None, None]  # [1, 1, max_len, d]
        self.sin = emb.sin().to(device, dtype)[None, None]

    def __call__(self, x, pos: int):  # noqa: ANN001, ANN204 - torch tensor in and out
        """Layer output for ``x [B, S, d_model]`` at positions ``pos .. pos+S-1``; K/V of
        these tokens are written into the cache and attention covers ``0 .. pos+S-1``."""
        import torch.nn.functional as F  # noqa: N812

        c = self.cfg
        b, s, dm = x.shape
        hq, hkv, d = c["n_heads"], c["n_kv_heads"], c["head_dim"]
        h = F.rms_norm(x, (dm,), self.g_attn, c["rms_eps"])
        q = F.linear(h, self.wq).view(b, s, hq, d).transpose(1, 2)
        k = F.linear(h, self.wk).view(b, s, hkv, d).transpose(1, 2)
        v = F.linear(h, self.wv).view(b, s, hkv, d).transpose(1, 2)
        cos, sin = self.cos[:, :, pos : pos + s], self.sin[:, :, pos : pos + s]
        q = q * cos + _rotate_half(q) * sin
        k = k * cos + _rotate_half(k) * sin
        self.k_cache[:, :, pos : pos + s] = k
        self.v_cache[:, :, pos : pos + s] = v
        keys, values = self.k_cache[:, :, : pos + s], self.v_cache[:, :, : pos + s]
        o = F.scaled_dot_product_attention(q, keys, values, is_causal=s > 1, enable_gqa=True)
        x = x + F.linear(o.transpose(1, 2).reshape(b, s, hq * d), self.wo)
        h = F.rms_norm(x, (dm,), self.g_ffn, c["rms_eps"])
        return x + F.linear(F.silu(F.linear(h, self.w1)) * F.linear(h, self.w3), self.w2)


def _sdpa_context(backend: str):  # noqa: ANN202 - context manager
    import contextlib

    if backend == "auto":
        return contextlib.nullcontext()
    from torch.nn.attention import SDPBackend, sdpa_kernel

    which = {
        "flash": SDPBackend.FLASH_ATTENTION,
        "efficient": SDPBackend.EFFICIENT_ATTENTION,
        "cudnn": SDPBackend.CUDNN_ATTENTION,
    }[backend]
    return sdpa_kernel([which])


def _graph_timing(layer: DecoderLayer, x, pos: int, bench) -> dict:  # noqa: ANN001
    """The layer captured in one CUDA graph and timed by replay (``graph_ms`` ...): GPU time
    with no host dispatch between kernels, as serving engines run decode. An error is
    recorded as ``graph_error`` (some SDPA backends refuse capture)."""
    import torch

    try:
        side = torch.cuda.Stream()
        side.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(side):
            for _ in range(3):
                layer(x, pos)
        torch.cuda.current_stream().wait_stream(side)
        g = torch.cuda.CUDAGraph()
        with torch.cuda.graph(g):
            layer(x, pos)
        return {f"graph_{k}": v for k, v in bench(g.replay).items()}
    except Exception as exc:  # noqa: BLE001 - the eager timing stands on its own
        return {"graph_error": f"{type(exc).__name__}: {exc}"}


def run_phase(
    phase: str,
    *,
    batch: int,
    prompt: int,
    context: int,
    steps: int,
    backend: str,
    out_dir: Path,
    shapes: str = "llama3-8b",
) -> dict:
    """Time one phase (whole layer, CUDA events) and write its profiler trace; return the
    ``llama_layer`` record."""
    import torch
    from torch.profiler import ProfilerActivity, profile, record_function

    from validation.harness.timing import bench

    tokens, pos = (prompt, 0) if phase == "prefill" else (1, context)
    layer = DecoderLayer(batch, pos + tokens, cfg=SHAPES[shapes])
    gen = torch.Generator(device="cuda").manual_seed(1)
    x = torch.randn(batch, tokens, layer.cfg["d_model"], device="cuda", generator=gen)
    x = x.to(torch.bfloat16)
    trace = out_dir / f"{shapes.replace('-', '_')}_layer_{phase}.trace.json"
    with torch.inference_mode(), _sdpa_context(backend):
        timing = bench(lambda: layer(x, pos))
        graph = _graph_timing(layer, x, pos, bench)
        for _ in range(3):
            layer(x, pos)
        torch.cuda.synchronize()
        acts = [ProfilerActivity.CPU, ProfilerActivity.CUDA]
        with profile(activities=acts, record_shapes=True) as prof:
            for i in range(steps):
                with record_function(f"layer_step_{i}"):
                    layer(x, pos)
            torch.cuda.synchronize()
    prof.export_chrome_trace(str(trace))
    c = layer.cfg
    return {
        "kind": "llama_layer",
        "phase": phase,
        "model_shapes": shapes,
        "B": batch,
        "S": tokens,
        "context": pos + tokens,
        "d_model": c["d_model"],
        "Hq": c["n_heads"],
        "Hkv": c["n_kv_heads"],
        "D": c["head_dim"],
        "ffn": c["ffn"],
        "dtype": "bf16",
        "sdpa_backend": backend,
        "timer": "cuda_events_l2flush_median (validation.harness.timing.bench)",
        **timing,
        **graph,
        "trace": trace.name,
        "profiled_steps": steps,
    }


def main(argv: list[str] | None = None) -> int:
    from validation.harness.energy import Nvml
    from validation.harness.measure import device_record

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out-dir", required=True, help="folder for the traces and the JSONL")
    ap.add_argument("--batch", type=int, default=1)
    ap.add_argument("--prompt", type=int, default=2048, help="prefill tokens per sequence")
    ap.add_argument("--context", type=int, default=4096, help="decode: KV cache tokens")
    ap.add_argument("--profiled-steps", type=int, default=3)
    ap.add_argument(
        "--sdpa-backend", choices=("auto", "flash", "efficient", "cudnn"), default="auto"
    )
    ap.add_argument("--shapes", choices=sorted(SHAPES), default="llama3-8b", help="layer shapes")
    ap.add_argument(
        "--phases", nargs="*", choices=("prefill", "decode"), default=["prefill", "decode"]
    )
    args = ap.parse_args(argv)
    out_dir = Path(args.out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    try:
        nvml = Nvml()
    except (RuntimeError, OSError):
        nvml = None
    with open(out_dir / "llama3_8b_layer.jsonl", "w") as fh:
        fh.write(json.dumps(device_record(nvml, [sys.executable, *sys.argv])) + "\n")
        for phase in args.phases:
            try:
                rec = run_phase(
                    phase,
                    batch=args.batch,
                    prompt=args.prompt,
                    context=args.context,
                    steps=args.profiled_steps,
                    backend=args.sdpa_backend,
                    shapes=args.shapes,
                    out_dir=out_dir,
                )
            except Exception as exc:  # noqa: BLE001 - one failing phase must not end the run
                rec = {
                    "kind": "llama_layer",
                    "phase": phase,
                    "error": f"{type(exc).__name__}: {exc}",
                }
            fh.write(json.dumps(rec) + "\n")
            fh.flush()
            print(json.dumps(rec))  # noqa: T201
    return 0


if __name__ == "__main__":
    sys.exit(main())
