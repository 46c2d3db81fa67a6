"""Sliding-window attention kernels on a CUDA GPU: FlexAttention and FlashAttention-2.

``python3 -m validation.harness.window --out FILE.jsonl [--max-seconds 300]``

Causal sliding window: query ``i`` sees keys ``j`` with ``i - W < j <= i`` (Mistral /
Longformer local attention; ``W = S`` is plain causal attention). bf16, ``D = 128``,
``H = 16``, ``B = 1`` at ``S = 4096`` and ``16384`` and ``B = 4`` at ``S = 4096``; ``W`` in
``{256, 1024, 4096, S}`` and the non-causal full attention at each ``(B, S)``
(:func:`window_cases`). Implementations (``impl``):

- ``flex``: ``torch.compile(flex_attention)`` with ``create_block_mask`` of the window
  ``mask_mod`` (``BLOCK_SIZE`` the default, 128 x 128): blocks wholly outside the window are
  skipped, blocks wholly inside (``full``) run without the mask, the others (``partial``)
  evaluate ``mask_mod`` per score. The full attention passes ``block_mask=None``. The record
  carries the block mask's kept blocks (``partial_blocks``, ``full_blocks``, of
  ``blocks_total`` per batch x head), ``block_size`` and ``mask_sparsity_pct``.
- ``flash_attn``: ``flash_attn.flash_attn_func(q, k, v, causal=True, window_size=(W - 1,
  0))`` ([B, S, H, D] layout) when the package is importable (its version goes in the
  device record as ``flash_attn``; absent, these cases are not written).
- ``sdpa_flash``: PyTorch SDPA's flash backend (PyTorch's own FlashAttention-2 build) at the
  causal and full points only (it has no window argument): the FA2 anchor without the
  package.

Each case: :func:`validation.harness.timing.bench` (cold L2 per call, GPU spin, median of
reps), the median SM clock over the timed window (NVML), the kernels of 3 cold-L2 profiled
calls (:func:`validation.harness.kernel_probe._kernel_events`: the kernel's own time
without the launch), the first call's wall time (``first_call_s``: compilation), and at
``S = 4096, B = 1`` the largest difference from SDPA with the same boolean mask
(``max_abs_diff_vs_masked_sdpa``). ``pairs`` is the exact count of ``(i, j)`` scores inside
the mask per batch x head and ``flops = 4 * B * H * D * pairs``. Standard library + torch.
"""

from __future__ import annotations

import argparse
import gc
import json
import sys
import time
from collections.abc import Callable

__all__ = ["KEY", "WINDOW_DIMS", "window_cases", "window_key", "window_pairs", "main"]

Case = dict[str, object]

#: Fields identifying a ``sliding_window`` record, in key order.
KEY: tuple[str, ...] = ("impl", "B", "H", "S", "D", "W", "causal")

#: ``(B, S)`` of the cases; heads and head dim.
WINDOW_DIMS: tuple[tuple[int, int], ...] = ((1, 4096), (4, 4096), (1, 16384))
_H, _D = 16, 128
_WINDOWS = (256, 1024, 4096)


def window_pairs(s: int, w: int, causal: bool) -> int:
    """Scores inside the mask per batch x head: ``sum_i min(i + 1, W)`` causal, ``S^2`` not.

    Raises
    ------
    ValueError
        ``w`` outside ``1..S``.
    """
    if not 1 <= w <= s:
        raise ValueError(f"W: expected 1 <= W <= S = {s}, got {w}")
    if not causal:
        return s * s
    return w * s - w * (w - 1) // 2


def window_key(case: Case) -> str:
    """``sliding_window|impl=flex|B=1|...``: the record's identity."""
    missing = [k for k in KEY if k not in case]
    if missing:
        raise ValueError(f"sliding_window case lacks fields {missing}: {case}")
    return "|".join(["sliding_window", *(f"{k}={case[k]}" for k in KEY)])


def window_cases(impls: tuple[str, ...] = ("flex", "flash_attn", "sdpa_flash")) -> list[Case]:
    """Every case, in run order (per ``(B, S)``: the windows, causal, then full)."""
    out: list[Case] = []
    for impl in impls:
        for b, s in WINDOW_DIMS:
            points = [(w, True) for w in (*_WINDOWS, s) if w <= s]
            points = list(dict.fromkeys(points)) + [(s, False)]
            if impl == "sdpa_flash":
                points = [(s, True), (s, False)]
            for w, causal in points:
                c: Case = {"kind": "sliding_window", "impl": impl, "B": b, "H": _H, "S": s,
                           "D": _D, "W": w, "causal": causal, "dtype": "bf16"}  # fmt: skip
                pairs = window_pairs(s, w, causal)
                c["pairs"] = pairs
                c["flops"] = 4.0 * b * _H * _D * pairs
                c["key"] = window_key(c)
                out.append(c)
    return out


_compiled_flex = None


def _flex(case: Case) -> tuple[Callable[[], object], dict]:
    import torch
    from torch.nn.attention.flex_attention import create_block_mask, flex_attention

    global _compiled_flex
    if _compiled_flex is None:
        # one compiled kernel per shape; a recompile per mask must not fall back to eager
        for name in ("cache_size_limit", "recompile_limit"):  # renamed across releases
            if hasattr(torch._dynamo.config, name):
                setattr(torch._dynamo.config, name, 64)
        _compiled_flex = torch.compile(flex_attention, dynamic=False)
    b, h, s, d, w = (int(case[k]) for k in ("B", "H", "S", "D", "W"))  # type: ignore[call-overload]
    q, k, v = (torch.randn(b, h, s, d, dtype=torch.bfloat16, device="cuda") for _ in range(3))
    flex = _compiled_flex
    info: dict = {"layout": "[B,H,S,D] contiguous"}
    if not case["causal"]:
        info["block_mask"] = None
        return (lambda: flex(q, k, v)), info
    w_t = torch.tensor(w, device="cuda")

    def window_mask(b_, h_, q_idx, kv_idx):  # noqa: ANN001, ANN202
        return (kv_idx <= q_idx) & (q_idx - kv_idx < w_t)

    mask = create_block_mask(window_mask, None, None, s, s, device="cuda")
    nb = -(-s // int(mask.BLOCK_SIZE[0])) * -(-s // int(mask.BLOCK_SIZE[1]))
    full = mask.full_kv_num_blocks
    info.update(
        {
            "block_size": [int(x) for x in mask.BLOCK_SIZE],
            "partial_blocks": int(mask.kv_num_blocks.sum().item()),
            "full_blocks": int(full.sum().item()) if full is not None else 0,
            "blocks_total": nb,
            "mask_sparsity_pct": float(mask.sparsity()),
            "mask_mod": "(kv_idx <= q_idx) & (q_idx - kv_idx < W)",
        }
    )
    return (lambda: flex(q, k, v, block_mask=mask)), info


def _flash_attn(case: Case) -> tuple[Callable[[], object], dict]:
    import torch
    from flash_attn import flash_attn_func

    b, h, s, d, w = (int(case[k]) for k in ("B", "H", "S", "D", "W"))  # type: ignore[call-overload]
    q, k, v = (torch.randn(b, s, h, d, dtype=torch.bfloat16, device="cuda") for _ in range(3))
    causal = bool(case["causal"])
    win = (w - 1, 0) if causal and w < s else (-1, -1)
    info = {"layout": "[B,S,H,D] contiguous", "window_size": list(win)}
    return (lambda: flash_attn_func(q, k, v, causal=causal, window_size=win)), info


def _sdpa_flash(case: Case) -> tuple[Callable[[], object], dict]:
    import torch
    import torch.nn.functional as F  # noqa: N812
    from torch.nn.attention import SDPBackend, sdpa_kernel

    b, h, s, d = (int(case[k]) for k in ("B", "H", "S", "D"))  # type: ignore[call-overload]
    q, k, v = (torch.randn(b, h, s, d, dtype=torch.bfloat16, device="cuda") for _ in range(3))
    causal = bool(case["causal"])

    def fn() -> object:
        with sdpa_kernel([SDPBackend.FLASH_ATTENTION]):
            return F.scaled_dot_product_attention(q, k, v, is_causal=causal)

    return fn, {"layout": "[B,H,S,D] contiguous"}


def _check(case: Case, fn: Callable[[], object]) -> float:
    """Largest |difference| from SDPA (efficient backend) with the explicit boolean mask."""
    import torch
    import torch.nn.functional as F  # noqa: N812

    b, h, s, d, w = (int(case[k]) for k in ("B", "H", "S", "D", "W"))  # type: ignore[call-overload]
    out = fn()
    q, k, v = _inputs(fn)
    i = torch.arange(s, device="cuda")
    mask = (i[None, :] <= i[:, None]) & (i[:, None] - i[None, :] < w) if case["causal"] else None
    if case["impl"] == "flash_attn":
        q, k, v = (t.transpose(1, 2) for t in (q, k, v))
        out = out.transpose(1, 2)  # type: ignore[attr-defined]
    ref = F.scaled_dot_product_attention(q.float(), k.float(), v.float(), attn_mask=mask)
    return float((out.float() - ref).abs().max().item())  # type: ignore[attr-defined]


def _inputs(fn: Callable[[], object]) -> tuple:
    """``(q, k, v)`` a case's callable closed over (its closure cells named q, k, v)."""
    cells = dict(zip(fn.__code__.co_freevars, fn.__closure__ or (), strict=True))
    return tuple(cells[n].cell_contents for n in ("q", "k", "v"))


_BUILD = {"flex": _flex, "flash_attn": _flash_attn, "sdpa_flash": _sdpa_flash}


def run_case(case: Case, sampler=None) -> dict:  # noqa: ANN001 - ClockSampler | None
    """Time one case; return its record (an ``error`` record on failure, never raises)."""
    import torch

    from validation.harness.kernel_probe import _kernel_events
    from validation.harness.timing import bench

    rec = dict(case)
    try:
        torch.manual_seed(0)
        fn, info = _BUILD[str(case["impl"])](case)
        rec.update(info)
        t0 = time.perf_counter()
        fn()
        torch.cuda.synchronize()
        rec["first_call_s"] = round(time.perf_counter() - t0, 3)
        if int(case["S"]) == 4096 and int(case["B"]) == 1:  # type: ignore[call-overload]
            rec["max_abs_diff_vs_masked_sdpa"] = _check(case, fn)
        t0 = time.perf_counter()
        rec.update(bench(fn))
        t1 = time.perf_counter()
        if sampler is not None:
            rec["sm_clock"] = sampler.median_between(t0, t1)
        rec["timer"] = "cuda_events_l2flush_spin_median"
        rec["kernels_cold"] = _kernel_events(fn, cold=True, reps=3)
        rec["tflops"] = float(case["flops"]) / (float(rec["ms"]) * 1e-3) / 1e12  # type: ignore[arg-type]
    except Exception as exc:  # noqa: BLE001 - recorded, the run goes on
        rec["error"] = f"{type(exc).__name__}: {exc}".replace("\n", " ")[:1000]
    finally:
        gc.collect()
        torch.cuda.empty_cache()
    return rec


def main(argv: list[str] | None = None) -> int:
    """Run every case (those of an absent ``flash_attn`` left out); exit code 0."""
    p = argparse.ArgumentParser(prog="python3 -m validation.harness.window")
    p.add_argument("--out", required=True, help="JSONL output")
    p.add_argument("--max-seconds", type=float, default=300.0, help="start no case after this")
    args = p.parse_args(argv)
    start = time.perf_counter()
    from validation.harness.energy import ClockSampler, Nvml
    from validation.harness.measure import device_record

    try:
        nvml = Nvml()
    except (RuntimeError, OSError):
        nvml = None
    dev = device_record(
        nvml, [sys.executable, "-m", "validation.harness.window", *(argv or sys.argv[1:])]
    )
    impls: tuple[str, ...] = ("flex", "sdpa_flash")
    try:
        import flash_attn

        dev["flash_attn"] = flash_attn.__version__
        impls = ("flex", "flash_attn", "sdpa_flash")
    except ImportError as exc:
        dev["flash_attn"] = None
        dev["flash_attn_error"] = f"{type(exc).__name__}: {exc}"[:300]
    sampler = ClockSampler(nvml) if nvml is not None else None
    with open(args.out, "w", encoding="utf-8") as out:
        out.write(json.dumps(dev) + "\n")
        for case in window_cases(impls):
            if time.perf_counter() - start > args.max_seconds:
                print(f"time limit: {case['key']} not run", flush=True)
                continue
            rec = run_case(case, sampler)
            out.write(json.dumps(rec) + "\n")
            out.flush()
            print(rec.get("error") or f"{rec['key']} {rec['ms']:.4f} ms "
                  f"{[(k['name'][:40], k['us']) for k in rec.get('kernels_cold', [])]} "
                  f"first {rec['first_call_s']} s diff {rec.get('max_abs_diff_vs_masked_sdpa')}",
                  flush=True)  # fmt: skip
    if sampler is not None:
        sampler.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
