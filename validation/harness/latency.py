"""Load-to-use latency of the GPU's memory levels by pointer chasing (Triton, one thread).

``python3 -m validation.harness.latency --out FILE.jsonl``

One CTA of one warp follows a chain ``i <- next[i]`` through an int32 array: every load's
address is the previous load's value, so the loads cannot overlap and the time per step is
the latency of the level that holds the array. ``next`` is a random single cycle over
``footprint / stride`` slots ``stride`` bytes apart (one slot per cache line or further), so
neither the prefetcher nor a line's neighbours help. Per case the chase runs ``n`` and ``8 n``
steps in one launch each; the latency is the slope ``(t(8 n) - t(n)) / 7 n``, which removes
the launch and the kernel's fixed cost (reported as ``intercept_us``). Time by CUDA events,
median of ``reps``; the SM clock is the board's boost clock under load (report ``sm_clock``
from NVML beside it to turn seconds into cycles).

Cases (``level`` names what holds the chain when the timed launch starts):

- ``l1``: 16 KiB chain, default cache policy (``.ca``), cycled many times in one launch:
  L1 hits (the first lap's misses cancel in the slope);
- ``l2``: 4 MiB chain, loads with ``.cg`` (cache at L2 only), after an untimed warm-up
  chase: L2 hits;
- ``l2_written``: 4 MiB chain rewritten by a PyTorch copy kernel on all SMs just before,
  ``.cg``: L2 lines another SM wrote (the case of a layer's activations);
- ``hbm``: 2 GiB chain (40x the L2), ``.cg``, after a 256 MiB flush: HBM (TLB misses
  included: 2 MiB pages make that a few percent; stated, not removed).

Records: ``device`` (of :mod:`validation.harness.measure`), then one ``{"kind":
"mem_latency", "level", "footprint_bytes", "stride_bytes", "steps", "ns_per_load",
"intercept_us", "reps"}`` per case. Standard library + torch + triton; nothing here imports
archsim.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys

__all__ = ["CASES", "main"]

#: (level, chain footprint in bytes, slot stride in bytes, steps n, cache modifier)
CASES = [
    ("l1", 16 * 2**10, 128, 2000, ""),
    ("l2", 4 * 2**20, 128, 2000, ".cg"),
    ("l2_written", 4 * 2**20, 128, 2000, ".cg"),
    ("hbm", 2 * 2**30, 4096, 1000, ".cg"),
]


def _kernels():  # noqa: ANN202 - triton jit functions, imported lazily
    import triton
    import triton.language as tl

    @triton.jit
    def chase_ca(nxt, out, steps, start):
        i = start
        for _ in range(steps):
            i = tl.load(nxt + i)
        tl.store(out, i)

    @triton.jit
    def chase_cg(nxt, out, steps, start):
        i = start
        for _ in range(steps):
            i = tl.load(nxt + i, cache_modifier=".cg")
        tl.store(out, i)

    return {"": chase_ca, ".cg": chase_cg}


def _chain(footprint: int, stride: int, seed: int = 0):  # noqa: ANN202 - torch tensor
    """int32 ``next`` array: a random single cycle over slots ``stride`` bytes apart."""
    import torch

    n_elem = footprint // 4
    step = stride // 4
    slots = n_elem // step
    g = torch.Generator().manual_seed(seed)
    order = torch.randperm(slots, generator=g) * step
    nxt = torch.zeros(n_elem, dtype=torch.int32)
    nxt[order] = torch.roll(order, -1).to(torch.int32)
    return nxt.cuda(), int(order[0])


def _time_launch(prep, fn, reps: int) -> float:  # noqa: ANN001
    """Median seconds of ``fn()`` by CUDA events, ``prep()`` run before each (untimed)."""
    import torch

    times = []
    for _ in range(reps):
        prep()
        a = torch.cuda.Event(enable_timing=True)
        b = torch.cuda.Event(enable_timing=True)
        a.record()
        fn()
        b.record()
        b.synchronize()
        times.append(a.elapsed_time(b) * 1e-3)
    return statistics.median(times)


def measure(level: str, footprint: int, stride: int, n: int, mod: str, reps: int = 7) -> dict:
    """One case: ns per dependent load (slope over ``n`` and ``8 n`` steps)."""
    import torch

    kern = _kernels()[mod]
    nxt, start = _chain(footprint, stride)
    out = torch.zeros(1, dtype=torch.int32, device="cuda")
    flush = torch.empty(64 * 2**20, dtype=torch.int32, device="cuda")
    src = nxt.clone()

    def chase(steps: int) -> None:
        kern[(1,)](nxt, out, steps, start, num_warps=1)

    def prep() -> None:
        if level == "hbm":
            flush.zero_()  # 256 MiB: evicts the chain from L2
        elif level == "l2_written":
            nxt.copy_(src)  # every SM writes part of the chain: the lines sit in L2, dirty
        elif level == "l2":
            chase(8 * n)  # the chain's first 8 n slots into L2
        # l1: the 16 KiB chain cycles within the launch; its first lap's misses are in
        # both timings and cancel in the slope

    for s in (n, 8 * n):  # compile, and first touch of the pages
        prep()
        chase(s)
    torch.cuda.synchronize()
    t1 = _time_launch(prep, lambda: chase(n), reps)
    t8 = _time_launch(prep, lambda: chase(8 * n), reps)
    per_step = (t8 - t1) / (7 * n)
    return {
        "kind": "mem_latency",
        "level": level,
        "footprint_bytes": footprint,
        "stride_bytes": stride,
        "steps": [n, 8 * n],
        "ns_per_load": per_step * 1e9,
        "intercept_us": (t1 - per_step * n) * 1e6,
        "reps": reps,
        "cache_modifier": mod or ".ca",
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", required=True, help="JSON Lines file to write")
    args = ap.parse_args(argv)
    from validation.harness.energy import Nvml
    from validation.harness.measure import device_record

    try:
        nvml = Nvml()
    except Exception:  # noqa: BLE001 - NVML is optional on the measuring machine
        nvml = None
    with open(args.out, "w") as fh:
        fh.write(json.dumps(device_record(nvml, [sys.executable, *sys.argv])) + "\n")
        for case in CASES:
            try:
                rec = measure(*case)
                if nvml is not None:
                    rec["sm_clock_mhz"] = nvml.sm_clock_mhz()
            except Exception as exc:  # noqa: BLE001 - record the failure, go on
                rec = {"kind": "mem_latency", "level": case[0], "error": repr(exc)}
            fh.write(json.dumps(rec) + "\n")
            print(json.dumps(rec), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
