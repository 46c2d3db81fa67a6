"""Which kernels an op launches, with what launch, and how long each runs (CUDA GPU).

``python3 -m validation.harness.kernel_probe --out FILE.jsonl [--ncu] [--only softmax,...]``

A model of a library kernel needs the launch the library chose (grid, threads, registers,
shared memory) and the kernel's own time, not only the op's. For each probe this harness
times the whole op with :func:`validation.harness.timing.bench` (CUDA events, cold L2 per
call), then runs it twice under ``torch.profiler`` (CUDA activity) and keeps, for the
second call, every kernel's name, duration and the launch fields Kineto records (``grid``,
``block``, ``registers per thread``, ``shared memory``, ``est. achieved occupancy %``).
With ``--ncu`` each probe of :data:`NCU_PROBES` also runs once under Nsight Compute
(``--clock-control none``) for :data:`NCU_METRICS` per kernel.

Probes:

- ``softmax``: ``torch.softmax(x[rows, dim], -1)``, bf16 (and fp32 at three widths), 2^28
  elements (2^27 for fp32) over widths 1024..32768: PyTorch picks the warp softmax, the
  register-resident block softmax or the shared-memory one by width (``SoftMax.cu``
  ``host_softmax``), and the launch differs per path;
- ``attn`` / ``decode``: SDPA cases of :mod:`validation.harness.kernels` (memory-efficient
  forward and backward at head dims 64/128, cuDNN and flash decode at B=1 over context
  lengths), to read the tile shape and split the library chose.

Records: ``{"kind": "kernel_probe", "probe", <shape fields>, "ms", ..., "kernels": [...],
"ncu": [...]}`` after the ``device`` record of :mod:`validation.harness.measure`. A failing
probe writes ``"error"`` and the run goes on. Standard library + torch only.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from collections.abc import Callable
from typing import Any

__all__ = ["NCU_METRICS", "NCU_PROBES", "PROBES", "build", "main"]

Probe = dict[str, Any]

_SOFTMAX_DIMS = (1024, 2048, 2056, 3072, 4096, 6144, 8192, 9216, 10240, 12288, 16384, 32768)
_DECODE_CTX = (1024, 2048, 4096, 4097, 4224, 8192, 8193, 16384, 32768)


def _sdpa(kind: str, b: int, hq: int, hkv: int, sq: int, skv: int, d: int, causal: bool,
          backend: str, pass_: str) -> Probe:  # fmt: skip
    return {
        "probe": kind, "kind": kind, "B": b, "Hq": hq, "Hkv": hkv, "Sq": sq, "Skv": skv, "D": d,
        "causal": causal, "backend": backend, "dtype": "bf16", "pass_": pass_,
    }  # fmt: skip


#: Every probe, in run order.
PROBES: list[Probe] = [
    *({"probe": "softmax", "rows": 2**28 // w, "dim": w, "dtype": "bf16"} for w in _SOFTMAX_DIMS),
    *(
        {"probe": "softmax", "rows": 2**27 // w, "dim": w, "dtype": "fp32"}
        for w in (2048, 4096, 8192)
    ),
    *(
        _sdpa("attn", 4, 16, 16, 4096, 4096, d, c, "efficient", p)
        for d in (64, 96, 128, 256)
        for c in (False, True)
        for p in ("fwd", "bwd")
    ),
    *(_sdpa("decode", 1, 32, 8, 1, s, 128, False, "cudnn", "fwd") for s in _DECODE_CTX),
    *(_sdpa("decode", 1, 32, 32, 1, s, 128, False, "cudnn", "fwd") for s in (4096, 16384)),
    *(_sdpa("decode", 1, 32, 8, 1, s, 128, False, "flash", "fwd") for s in (4097, 32768)),
    *(_sdpa("decode", 8, 32, 8, 1, s, 128, False, "cudnn", "fwd") for s in (4097, 8193)),
    # the memory-efficient kernel at low occupancy (decode: one CTA per batch x head)
    *(_sdpa("decode", b, 32, 32, 1, 16384, 128, False, "efficient", "fwd") for b in (1, 4, 8)),
    # the Llama layer's decode attention: K/V a slice of a longer cache (strided heads)
    *(
        {**_sdpa("decode", 1, 32, 8, 1, s, 128, False, b, "fwd"), "cache_len": 2 * s}
        for s in (4097, 8193)
        for b in ("cudnn", "flash")
    ),
]

#: Probes also run under ncu with ``--ncu``: every softmax width (the three paths), the
#: memory-efficient forward and backward at head dims 64 and 128 (not causal), and its decode.
NCU_PROBES: list[Probe] = [
    p
    for p in PROBES
    if p["probe"] == "softmax"
    or (p["probe"] == "attn" and not p["causal"] and p["D"] in (64, 128))
    or (p["probe"] == "decode" and p["backend"] == "efficient")
]

#: Per-kernel counters: launch, occupancy, issued instructions, local-memory spills, stalls.
NCU_METRICS = (
    "gpu__time_duration.sum",
    "dram__bytes_read.sum",
    "dram__bytes_write.sum",
    "launch__grid_size",
    "launch__block_size",
    "launch__registers_per_thread",
    "launch__occupancy_limit_registers",
    "launch__occupancy_limit_shared_mem",
    "launch__occupancy_limit_warps",
    "sm__warps_active.avg.pct_of_peak_sustained_active",
    "smsp__inst_executed.sum",
    "smsp__issue_active.avg.pct_of_peak_sustained_active",
    "l1tex__t_bytes_pipe_lsu_mem_local_op_ld.sum",
    "smsp__average_warps_issue_stalled_barrier_per_issue_active.ratio",
    "smsp__average_warps_issue_stalled_long_scoreboard_per_issue_active.ratio",
    "smsp__average_warps_issue_stalled_short_scoreboard_per_issue_active.ratio",
    "smsp__average_warps_issue_stalled_math_pipe_throttle_per_issue_active.ratio",
    "smsp__average_warps_issue_stalled_mio_throttle_per_issue_active.ratio",
    "smsp__average_warps_issue_stalled_lg_throttle_per_issue_active.ratio",
    "smsp__average_warps_issue_stalled_wait_per_issue_active.ratio",
    "smsp__inst_executed_pipe_xu.sum",
)


def build(probe: Probe) -> tuple[Callable[[], object], dict]:
    """``(fn, info)``: ``fn`` enqueues one call of the probe's op on random data."""
    import torch

    if probe["probe"] == "softmax":
        dtype = {"bf16": torch.bfloat16, "fp32": torch.float32}[probe["dtype"]]
        x = torch.randn(int(probe["rows"]), int(probe["dim"]), dtype=dtype, device="cuda")
        return (lambda: torch.softmax(x, dim=-1)), {"op": "torch.softmax(x, dim=-1)"}
    if "cache_len" in probe:  # K/V as the first Skv positions of a longer cache
        import torch.nn.functional as F  # noqa: N812
        from torch.nn.attention import sdpa_kernel

        from validation.harness.kernels import _backend

        b, hq, hkv, skv, d = (int(probe[x]) for x in ("B", "Hq", "Hkv", "Skv", "D"))
        cache = [
            torch.randn(b, hkv, int(probe["cache_len"]), d, dtype=torch.bfloat16, device="cuda")
            for _ in range(2)
        ]
        k, v = (c[:, :, :skv] for c in cache)
        q = torch.randn(b, hq, 1, d, dtype=torch.bfloat16, device="cuda")
        backend = _backend(str(probe["backend"]))

        def fn() -> object:
            with sdpa_kernel([backend]):
                return F.scaled_dot_product_attention(q, k, v, enable_gqa=True)

        return fn, {"layout": "K/V = cache[:, :, :Skv] of a [B, Hkv, cache_len, D] cache"}
    from validation.harness import kernels

    return kernels.build(probe)


def _kernel_events(fn: Callable[[], object], *, cold: bool = False) -> list[dict]:
    """Kernels of the second of two profiled calls, with Kineto's launch fields; ``cold``:
    the L2 flushed before each call (the flush's kernels are left out)."""
    import torch
    from torch.profiler import ProfilerActivity, profile

    from validation.harness.timing import _flush_buffer

    flush = _flush_buffer()
    with profile(activities=[ProfilerActivity.CUDA]) as prof:
        for _ in range(2):
            if cold:
                flush.zero_()
                torch.cuda.synchronize()
            fn()
            torch.cuda.synchronize()
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "t.json")
        prof.export_chrome_trace(path)
        with open(path, encoding="utf-8") as fh:
            events = json.load(fh)["traceEvents"]
    ks = sorted((e for e in events if e.get("cat") == "kernel"), key=lambda e: e["ts"])
    if cold:  # the flush is the first kernel of each call: keep what follows the last one
        ks = ks[len(ks) // 2 + 1 :]
    else:
        ks = ks[len(ks) // 2 :]  # the second call (both calls launch the same kernels)
    keep = ("grid", "block", "registers per thread", "shared memory", "est. achieved occupancy %")
    return [
        {"name": e["name"][:240], "us": e["dur"], **{k: e["args"].get(k) for k in keep}} for e in ks
    ]


def _ncu(probe: Probe, timeout_s: float = 300.0) -> list[dict]:
    from validation.harness.ncu_run import kernels_from_ncu_csv, ncu_path

    ncu = ncu_path()
    if ncu is None:
        raise RuntimeError("ncu not found")
    with tempfile.TemporaryDirectory() as tmp:
        logf = os.path.join(tmp, "ncu.csv")
        cmd = [
            ncu, "--metrics", ",".join(NCU_METRICS), "--csv", "--print-units", "base",
            "--clock-control", "none", "--profile-from-start", "off",
            "--target-processes", "all", "--log-file", logf,
            sys.executable, "-m", "validation.harness.kernel_probe", "--child", json.dumps(probe),
        ]  # fmt: skip
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout_s)
        text = open(logf, encoding="utf-8").read() if os.path.exists(logf) else ""
        if proc.returncode != 0:
            raise RuntimeError(f"ncu exit {proc.returncode}: {(proc.stderr or text)[-400:]}")
    return [{**k, "name": k["name"][:240]} for k in kernels_from_ncu_csv(text)]


def _child(probe: Probe) -> int:
    import torch

    torch.manual_seed(0)
    fn, _ = build(probe)
    for _ in range(3):
        fn()
    torch.cuda.synchronize()
    torch.cuda.profiler.start()
    fn()
    torch.cuda.synchronize()
    torch.cuda.profiler.stop()
    return 0


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python3 -m validation.harness.kernel_probe")
    p.add_argument("--out", help="JSONL output")
    p.add_argument("--ncu", action="store_true", help="also profile NCU_PROBES under ncu")
    p.add_argument("--only", default="", help="comma-separated probe names (softmax,attn,decode)")
    p.add_argument("--child", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.child:
        return _child(json.loads(args.child))
    if not args.out:
        p.error("--out is required")
    import torch

    from validation.harness.energy import Nvml
    from validation.harness.measure import device_record
    from validation.harness.timing import bench

    try:
        nvml = Nvml()
    except (RuntimeError, OSError):
        nvml = None
    only = {x for x in args.only.split(",") if x}
    with open(args.out, "w", encoding="utf-8") as out:
        out.write(json.dumps(device_record(nvml, [sys.executable, *sys.argv])) + "\n")
        for probe in PROBES:
            if only and probe["probe"] not in only:
                continue
            rec: dict = {"kind": "kernel_probe", **probe}
            try:
                torch.manual_seed(0)
                fn, info = build(probe)
                rec.update(info)
                rec.update(bench(fn))
                rec["timer"] = "cuda_events_l2flush_spin_median"
                rec["kernels"] = _kernel_events(fn)
                if probe["probe"] == "decode":
                    rec["kernels_cold"] = _kernel_events(fn, cold=True)
                del fn
                if args.ncu and probe in NCU_PROBES:
                    rec["ncu"] = _ncu(probe)
            except Exception as exc:  # noqa: BLE001 - recorded, the run goes on
                rec["error"] = f"{type(exc).__name__}: {exc}"[:1000]
            torch.cuda.empty_cache()
            out.write(json.dumps(rec) + "\n")
            out.flush()
            print(rec.get("error") or f"{rec['probe']} {rec.get('ms', 0):.4f} ms "
                  f"{[k['name'][:50] for k in rec.get('kernels', [])]}", flush=True)  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
