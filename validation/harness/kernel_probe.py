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
  lengths), to read the tile shape and split the library chose;
- ``decode_sweep``: decode at low occupancy over 256..32k keys (cuDNN GQA at B = 1/4/8 and
  MHA at B = 1, the memory-efficient kernel at B = 1/4/8 and with 8 heads), cold-L2 kernel
  times (median of ``--reps`` profiled calls) and, with ``--ncu`` / ``--ncu-only``, the
  counters of :data:`NCU_EXTRA` on a few (``_SWEEP_NCU``);
- ``wave_tail`` / ``wave_tail_ncu``: FA2's decode kernel around one and two waves; the
  ``_ncu`` probes hold one CTA per SM against two (132 and 264 CTAs) for the counters of
  :data:`WAVE_TAIL_NCU_EXTRA` (issue, pipes, warps per scheduler, every stall reason).

Records: ``{"kind": "kernel_probe", "probe", <shape fields>, "ms", ..., "kernels": [...],
"ncu": [...]}`` after the ``device`` record of :mod:`validation.harness.measure`. A failing
probe writes ``"error"`` and the run goes on. Standard library + torch only.
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import re
import subprocess
import sys
import tempfile
from collections.abc import Callable
from typing import Any

__all__ = ["NCU_METRICS", "NCU_PROBES", "PROBES", "WAVE_TAIL_NCU_EXTRA", "build", "main"]

Probe = dict[str, Any]

_SOFTMAX_DIMS = (1024, 2048, 2056, 3072, 4096, 6144, 8192, 9216, 10240, 12288, 16384, 32768)
_DECODE_CTX = (1024, 2048, 4096, 4097, 4224, 8192, 8193, 16384, 32768)
#: Key counts of the ``decode_sweep`` probes: from one 128-key tile per CTA to many.
_SWEEP_CTX = (256, 512, 1024, 2048, 4096, 8192, 16384, 32768)


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
    # decode at low occupancy, over key counts (brief K1): cuDNN GQA 32/8 at B = 1/4/8 (its
    # split count changes with B), cuDNN MHA at B = 1; the memory-efficient kernel (MHA: it
    # refuses GQA) at B = 1/4/8 with 32 heads (32 / 128 / 256 CTAs of 8 warps) and at B = 1
    # with 8 heads (8 CTAs: one CTA's own stream rate)
    *(
        {**_sdpa("decode", b, 32, 8, 1, s, 128, False, "cudnn", "fwd"), "probe": "decode_sweep"}
        for b in (1, 4, 8)
        for s in _SWEEP_CTX
    ),
    *(
        {**_sdpa("decode", 1, 32, 32, 1, s, 128, False, "cudnn", "fwd"), "probe": "decode_sweep"}
        for s in (1024, 4096, 16384)
    ),
    *(
        {**_sdpa("decode", b, h, h, 1, s, 128, False, "efficient", "fwd"), "probe": "decode_sweep"}
        for b, h in ((1, 32), (4, 32), (8, 32))
        for s in _SWEEP_CTX
    ),
    *(
        {**_sdpa("decode", 1, 8, 8, 1, s, 128, False, "efficient", "fwd"), "probe": "decode_sweep"}
        for s in (1024, 4096, 16384)
    ),
    # a wave's tail: FA2's decode kernel (one 128-row CTA per batch x head, no split once the
    # CTAs fill 0.8 x 2 per SM) at 4 heads and grids around one and two full waves of 2 CTAs
    # per SM on an H100 (132 SMs): does a CTA alone on its SM run faster than two sharing it?
    *(
        {**_sdpa("decode", b, 4, 4, 1, 16384, d, False, "flash", "fwd"), "probe": "wave_tail"}
        for d in (64, 128)
        for b in (17, 33, 50, 66, 76, 83, 99, 132)
    ),
    # the same kernel with one CTA per SM against two, for ncu (brief K4). FA2 splits the keys
    # when B x H x ceil(Sq / 64) < 0.8 x 2 x SMs (``num_splits_heuristic``), so B = 33 at one
    # query token runs the split-KV kernel (grid [1, 2, 132]); 65 query tokens count two
    # 64-row blocks there but fit one 128-row CTA of ``flash_fwd_kernel`` (kBlockM = 128 at
    # hdim 64 and 128), whose work per CTA is the same padded 128-row tile (rows >= Sq are
    # zero-filled, not skipped; neither 1 nor 65 is a multiple of 128, so the same
    # ``Is_even_MN = false`` instance runs). So: Sq = 65 at B = 33 (132 CTAs, one per SM) and
    # B = 66 (264, two per SM), and the wave_tail's Sq = 1 B = 66 as the anchor.
    *(
        {**_sdpa("decode", b, 4, 4, sq, 16384, d, False, "flash", "fwd"), "probe": "wave_tail_ncu"}
        for d in (64, 128)
        for b, sq in ((66, 1), (66, 65), (33, 65))
    ),
]

#: ``decode_sweep`` probes also run under ncu (``(backend, B, Hq, Hkv, Skv)``): few and many
#: tiles per CTA, low and full occupancy.
_SWEEP_NCU = {
    ("cudnn", 1, 32, 8, 256),
    ("cudnn", 1, 32, 8, 4096),
    ("cudnn", 1, 32, 8, 32768),
    ("cudnn", 8, 32, 8, 4096),
    ("efficient", 1, 32, 32, 1024),
    ("efficient", 1, 32, 32, 16384),
    ("efficient", 8, 32, 32, 16384),
    ("efficient", 1, 8, 8, 4096),
}

#: Probes also run under ncu with ``--ncu``: every softmax width (the three paths), the
#: memory-efficient forward and backward at head dims 64 and 128 (not causal), and its decode.
NCU_PROBES: list[Probe] = [
    p
    for p in PROBES
    if p["probe"] == "softmax"
    or (p["probe"] == "attn" and not p["causal"] and p["D"] in (64, 128))
    or (p["probe"] == "decode" and p["backend"] == "efficient")
    or (
        p["probe"] == "decode_sweep"
        and (p["backend"], p["B"], p["Hq"], p["Hkv"], p["Skv"]) in _SWEEP_NCU
    )
    or p["probe"] == "wave_tail_ncu"
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

#: Extra counters for the decode sweep (kept apart: on failure ncu is rerun without them):
#: SM cycles active (mean and max over SMs) vs elapsed, the SM clock, warps resident per
#: active cycle, DRAM throughput, shared memory per block, waves, and two more stall reasons.
NCU_EXTRA = (
    "sm__cycles_active.avg",
    "sm__cycles_active.max",
    "sm__cycles_elapsed.max",
    "sm__cycles_elapsed.avg.per_second",
    "sm__warps_active.avg.per_cycle_active",
    "dram__throughput.avg.pct_of_peak_sustained_elapsed",
    "launch__shared_mem_per_block_dynamic",
    "launch__shared_mem_per_block_static",
    "launch__waves_per_multiprocessor",
    "smsp__average_warps_issue_stalled_no_instruction_per_issue_active.ratio",
    "smsp__average_warps_issue_stalled_membar_per_issue_active.ratio",
)

#: ``wave_tail_ncu`` counters beyond :data:`NCU_METRICS` + :data:`NCU_EXTRA` (names of Nsight
#: Compute 2025.3 on sm_90; FA2 uses ``mma.sync``, the HMMA pipe, not wgmma). Names the
#: device's ``ncu --query-metrics`` does not list, or that ncu rejects, are dropped and
#: recorded (``ncu_dropped``): per-scheduler issue and warps (resident, eligible), the
#: tensor / FMA / ALU / XU (MUFU) / shared pipes' activity, instructions per pipe, CTAs per
#: SM, L2 hit rate, and every stall reason per issue (warps in that state per issued inst).
WAVE_TAIL_NCU_EXTRA = (
    "smsp__cycles_active.avg",
    "smsp__issue_active.avg.per_cycle_active",
    "smsp__warps_active.avg.per_cycle_active",
    "smsp__warps_eligible.avg.per_cycle_active",
    "sm__ctas_launched.max",
    "sm__ctas_launched.min",
    "sm__pipe_tensor_op_hmma_cycles_active.avg.pct_of_peak_sustained_active",
    "sm__pipe_tensor_cycles_active.avg.pct_of_peak_sustained_active",
    "sm__inst_executed_pipe_tensor_op_hmma.avg.pct_of_peak_sustained_active",
    "smsp__inst_executed_pipe_tensor_op_hmma.sum",
    "smsp__inst_executed_pipe_tensor.sum",
    "sm__pipe_fma_cycles_active.avg.pct_of_peak_sustained_active",
    "sm__pipe_alu_cycles_active.avg.pct_of_peak_sustained_active",
    "sm__pipe_shared_cycles_active.avg.pct_of_peak_sustained_active",
    "sm__inst_executed_pipe_xu.avg.pct_of_peak_sustained_active",
    "sm__inst_executed_pipe_lsu.avg.pct_of_peak_sustained_active",
    "smsp__inst_executed_pipe_fma.sum",
    "smsp__inst_executed_pipe_alu.sum",
    "smsp__inst_executed_pipe_fp16.sum",
    "smsp__inst_executed_pipe_lsu.sum",
    "smsp__inst_executed_op_ldsm.sum",
    "lts__t_sector_hit_rate.pct",
    *(
        f"smsp__average_warps_issue_stalled_{r}_per_issue_active.ratio"
        for r in (
            "branch_resolving",
            "dispatch_stall",
            "drain",
            "imc_miss",
            "misc",
            "not_selected",
            "selected",
            "sleeping",
            "tex_throttle",
        )
    ),
)

#: Metric names ncu rejected in this process (learned once, skipped by later probes).
_NCU_REJECTED: set[str] = set()


def listed_metric_bases(query_text: str) -> set[str]:
    """Base names (``unit__counter``, no rollup) listed by ``ncu --query-metrics``."""
    out = set()
    for line in query_text.splitlines():
        tok = line.strip().split(" ", 1)[0]
        if "__" in tok and tok.replace("_", "").isalnum():
            out.add(tok)
    return out


def rejected_metrics(error_text: str, candidates: tuple[str, ...]) -> list[str]:
    """The candidates whose base name an ncu error message names as a whole word
    (``Failed to find metric X``, ...)."""
    return [
        m
        for m in candidates
        if re.search(rf"(?<![\w]){re.escape(m.split('.')[0])}(?![\w])", error_text)
    ]


@functools.cache
def _ncu_query_bases() -> set[str] | None:
    """Base names the device's ncu lists, or None when the query fails or lists none of
    the known-good :data:`NCU_METRICS` (then every candidate is tried)."""
    from validation.harness.ncu_run import ncu_path

    ncu = ncu_path()
    if ncu is None:
        return None
    try:
        proc = subprocess.run([ncu, "--query-metrics"], capture_output=True, text=True, timeout=120)
    except (OSError, subprocess.TimeoutExpired):
        return None
    bases = listed_metric_bases(proc.stdout)
    known = {m.split(".")[0] for m in NCU_METRICS}
    return bases if known <= bases else None


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


def _kernel_events(fn: Callable[[], object], *, cold: bool = False, reps: int = 1) -> list[dict]:
    """Kernels of one call after a profiled warm-up call, with Kineto's launch fields;
    ``cold``: the L2 flushed before each call (the flush's kernels are left out). With
    ``reps`` > 1 the call is profiled ``reps`` times: ``us`` is each kernel's median and
    ``us_all`` every duration (microseconds)."""
    import statistics

    import torch
    from torch.profiler import ProfilerActivity, profile

    from validation.harness.timing import _flush_buffer

    flush = _flush_buffer()
    calls = 1 + max(int(reps), 1)
    with profile(activities=[ProfilerActivity.CUDA]) as prof:
        for _ in range(calls):
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
    per = len(ks) // calls  # kernels per call (the flush's included when cold)
    groups = [ks[i * per + (1 if cold else 0) : (i + 1) * per] for i in range(1, calls)]
    keep = ("grid", "block", "registers per thread", "shared memory", "est. achieved occupancy %")
    out = []
    for j, e in enumerate(groups[0]):
        rec = {"name": e["name"][:240], "us": e["dur"], **{k: e["args"].get(k) for k in keep}}
        if reps > 1:
            durs = [g[j]["dur"] for g in groups if j < len(g)]
            rec["us"] = statistics.median(durs)
            rec["us_all"] = durs
        out.append(rec)
    return out


def _ncu(probe: Probe, timeout_s: float = 300.0) -> tuple[list[dict], list[str]]:
    """Nsight Compute counters per kernel of one call and the metric names dropped
    (:data:`NCU_METRICS`, for ``decode_sweep`` :data:`NCU_EXTRA` too, for ``wave_tail_ncu``
    also :data:`WAVE_TAIL_NCU_EXTRA`; ncu's default cache control flushes the caches before
    each kernel, so the counts are cold-L2)."""
    if probe["probe"] == "wave_tail_ncu":
        return _ncu_wave_tail(probe, timeout_s)
    return _ncu_plain(probe, timeout_s), []


def _ncu_wave_tail(probe: Probe, timeout_s: float) -> tuple[list[dict], list[str]]:
    """:data:`WAVE_TAIL_NCU_EXTRA` less the names the device does not list; a name ncu
    still rejects is dropped and the run retried (three times, then without extras)."""
    listed = _ncu_query_bases()
    extra = [
        m
        for m in WAVE_TAIL_NCU_EXTRA
        if m not in _NCU_REJECTED and (listed is None or m.split(".")[0] in listed)
    ]
    dropped = [m for m in WAVE_TAIL_NCU_EXTRA if m not in extra]
    for _ in range(3):
        try:
            return _ncu_metrics(probe, NCU_METRICS + NCU_EXTRA + tuple(extra), timeout_s), dropped
        except RuntimeError as exc:
            bad = rejected_metrics(str(exc), tuple(extra))
            print(f"ncu rejected {bad or 'the run'}: {exc}"[:400], flush=True)
            if not bad:
                break
            _NCU_REJECTED.update(bad)
            extra = [m for m in extra if m not in bad]
            dropped += bad
    return _ncu_plain(probe, timeout_s), list(WAVE_TAIL_NCU_EXTRA)


def _ncu_plain(probe: Probe, timeout_s: float) -> list[dict]:
    if probe["probe"] in ("decode_sweep", "wave_tail_ncu"):
        try:
            return _ncu_metrics(probe, NCU_METRICS + NCU_EXTRA, timeout_s)
        except RuntimeError as exc:
            print(f"ncu with NCU_EXTRA failed, retrying without: {exc}"[:300], flush=True)
    return _ncu_metrics(probe, NCU_METRICS, timeout_s)


def _ncu_metrics(probe: Probe, metrics: tuple[str, ...], timeout_s: float) -> list[dict]:
    from validation.harness.ncu_run import kernels_from_ncu_csv, ncu_path

    ncu = ncu_path()
    if ncu is None:
        raise RuntimeError("ncu not found")
    with tempfile.TemporaryDirectory() as tmp:
        logf = os.path.join(tmp, "ncu.csv")
        cmd = [
            ncu, "--metrics", ",".join(metrics), "--csv", "--print-units", "base",
            "--clock-control", "none", "--profile-from-start", "off",
            "--target-processes", "all", "--log-file", logf,
            sys.executable, "-m", "validation.harness.kernel_probe", "--child", json.dumps(probe),
        ]  # fmt: skip
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout_s)
        text = open(logf, encoding="utf-8").read() if os.path.exists(logf) else ""
        if proc.returncode != 0:
            raise RuntimeError(
                f"ncu exit {proc.returncode}: log {text[-400:]!r} stderr {proc.stderr[-400:]!r}"
            )
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
    p.add_argument(
        "--only",
        default="",
        help="comma-separated probe names (softmax, attn, decode, decode_sweep, wave_tail, ...)",
    )
    p.add_argument("--ncu-only", action="store_true", help="only the ncu runs of NCU_PROBES")
    p.add_argument("--reps", type=int, default=1, help="profiled calls per probe (median)")
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
            if args.ncu_only and probe not in NCU_PROBES:
                continue
            rec: dict = {"kind": "kernel_probe", **probe}
            try:
                torch.manual_seed(0)
                fn, info = build(probe)
                rec.update(info)
                if not args.ncu_only:
                    rec.update(bench(fn))
                    rec["timer"] = "cuda_events_l2flush_spin_median"
                    rec["kernels"] = _kernel_events(fn, reps=args.reps)
                    if probe["probe"] in ("decode", "decode_sweep", "wave_tail_ncu"):
                        rec["kernels_cold"] = _kernel_events(fn, cold=True, reps=args.reps)
                del fn
                if (args.ncu or args.ncu_only) and probe in NCU_PROBES:
                    rec["ncu"], dropped = _ncu(probe)
                    if dropped:
                        rec["ncu_dropped"] = dropped
            except Exception as exc:  # noqa: BLE001 - recorded, the run goes on
                rec["error"] = f"{type(exc).__name__}: {exc}"[:1000]
            torch.cuda.empty_cache()
            out.write(json.dumps(rec) + "\n")
            out.flush()
            tag = f"{rec['probe']} {rec.get('backend', '')} B{rec.get('B', '')}"
            print(rec.get("error") or f"{tag} S{rec.get('Skv', '')} {rec.get('ms', 0):.4f} ms "
                  f"{[(k['name'][:30], k['us']) for k in rec.get('kernels_cold', [])]}",
                  flush=True)  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
