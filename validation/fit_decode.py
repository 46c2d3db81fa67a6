"""Fit the issue-latency scale of the memory-efficient kernel and check decode kernel times.

``python -m validation.fit_decode [--probe FILE] [--arch h100]``

The cutlass memory-efficient forward is instruction-issue-bound (``archsim.gpu.heuristics``,
``memeff_fwd_tiling``). Its issue fraction was counted at full occupancy (2 CTAs of 8 warps
per SM, 4 warps per scheduler); decode at batch 1 runs one CTA per (batch, head), so 32
heads put one CTA on each of 32 SMs: 2 warps per scheduler, less latency hidden, fewer
issue slots used. The model's form is ``issue(W) = f_inf (1 - exp(-W / W0))`` in the warps
``W`` resident per scheduler (:func:`archsim.gpu.heuristics.issue_latency_hiding`); ``W0``
(warps per scheduler) is fitted here by least squares on every ncu count of the head-dim-128
forward kernel (``fmha_cutlassF_*_64x128_rf``): the decode sweep
(``validation/data/h100_decode_probe.jsonl``) and the prefill probe
(``validation/data/h100_kernel_probe.jsonl``). ``f_inf`` is a free parameter of the fit and
not used by the model, which anchors the curve at the counted full-occupancy fraction.

Then it prints, for every decode probe of the sweep, the measured cold-L2 kernel time
(``kernels_cold``, median of the profiled calls) against the kernel model's time of the
same kernel (``evaluate_kernel`` less the inter-kernel ``gap_s``), with the curve (now)
and with a constant issue fraction (before).
"""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path

DATA = Path(__file__).resolve().parent / "data"
PROBE = DATA / "h100_decode_probe.jsonl"
PREFILL_PROBE = DATA / "h100_kernel_probe.jsonl"
_FAMILY = {"cudnn": "flash3", "efficient": "efficient", "flash": "flash2"}
_SCHEDULERS = 4  # per Hopper SM


def issue_points(paths: tuple[Path, ...] = (PROBE, PREFILL_PROBE)) -> list[tuple[float, float]]:
    """``(warps per scheduler, issue fraction)`` of every ncu count of the d = 128
    memory-efficient forward kernel in ``paths``."""
    pts = []
    for path in paths:
        for line in path.read_text().splitlines():
            rec = json.loads(line)
            if rec.get("pass_") != "fwd" or rec.get("D") != 128 or not rec.get("ncu"):
                continue
            for k in rec["ncu"]:
                if "fmha_cutlassF" not in k["name"]:
                    continue
                warps = k["sm__warps_active.avg.pct_of_peak_sustained_active"] / 100 * 64
                issue = k["smsp__issue_active.avg.pct_of_peak_sustained_active"] / 100
                pts.append((warps / _SCHEDULERS, issue))
    if len(pts) < 2:
        raise ValueError(f"need >= 2 ncu counts of the d=128 cutlass forward in {paths}")
    return pts


def fit_scale(pts: list[tuple[float, float]]) -> tuple[float, float, float]:
    """Least squares ``f_inf (1 - exp(-W / W0))``: ``(W0 warps/scheduler, f_inf, rms)``."""
    import numpy as np
    from scipy.optimize import least_squares

    w = np.array([p[0] for p in pts])
    f = np.array([p[1] for p in pts])
    res = least_squares(lambda x: x[0] * (1 - np.exp(-w / x[1])) - f, [0.6, 2.0])
    return float(res.x[1]), float(res.x[0]), float(np.sqrt(np.mean(res.fun**2)))


def kernel_errors(path: Path = PROBE, arch: str = "h100") -> list[dict]:
    """Per decode probe: measured cold kernel us and the kernel model's, now and with a
    constant issue fraction (``issue_frac`` as counted at full occupancy)."""
    from archsim.gpu import decode_costs, gpu_model
    from archsim.gpu import heuristics as hz
    from mappings._gpu._run import run_kernels

    model = gpu_model(arch)
    out = []
    for line in path.read_text().splitlines():
        rec = json.loads(line)
        if rec.get("probe") != "decode_sweep" or not rec.get("kernels_cold"):
            continue
        shape = {k: rec[k] for k in ("B", "Hq", "Hkv", "Skv", "D")}
        fam = _FAMILY[rec["backend"]]
        row = {**shape, "backend": rec["backend"], "meas_us": rec["kernels_cold"][0]["us"]}
        for tag, scale in (("now", hz.ISSUE_WARPS_SCALE), ("before", 0.0)):
            saved = hz.ISSUE_WARPS_SCALE
            try:
                if scale == 0.0:  # constant fraction: the curve flat (W0 -> 0)
                    hz.ISSUE_WARPS_SCALE = 1e-9
                # the kernel alone on the event engine, less its call's launch
                k = decode_costs(model, family=fam, **shape)[0]
                run = run_kernels([k], model, arch).kernels[0]
                t = run.time_s - model.cal.launch_s
            finally:
                hz.ISSUE_WARPS_SCALE = saved
            row[f"{tag}_us"] = t * 1e6
        out.append(row)
    return out


def _mape(rows: list[dict], key: str) -> float:
    return 100 * sum(abs(r[key] / r["meas_us"] - 1) for r in rows) / max(len(rows), 1)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m validation.fit_decode")
    p.add_argument("--probe", default=str(PROBE), help="decode sweep JSONL (kernel_probe)")
    p.add_argument("--arch", default="h100", help="GPU preset the probe ran on")
    args = p.parse_args(argv)
    from archsim.gpu.heuristics import ISSUE_WARPS_SCALE

    pts = issue_points((Path(args.probe), PREFILL_PROBE))
    w0, finf, rms = fit_scale(pts)
    print(f"issue(W) = {finf:.3f} (1 - exp(-W / {w0:.3f})), rms {rms:.4f} over {len(pts)} counts")
    for w, f in sorted(pts):
        print(
            f"  W {w:5.2f} warps/scheduler: ncu {f:.3f}, fit {finf * (1 - math.exp(-w / w0)):.3f}"
        )
    print(f"ISSUE_WARPS_SCALE in archsim/gpu/heuristics.py: {ISSUE_WARPS_SCALE} (fit {w0:.2f})")
    rows = kernel_errors(Path(args.probe), args.arch)
    print(f"\n{'backend':9s} {'B':>2s} {'Hq/Hkv':>6s} {'keys':>6s} {'meas us':>9s} "
          f"{'before':>8s} {'now':>8s}")  # fmt: skip
    for r in rows:
        print(
            f"{r['backend']:9s} {r['B']:2d} {r['Hq']:>3d}/{r['Hkv']:<2d} {r['Skv']:6d} "
            f"{r['meas_us']:9.2f} {100 * (r['before_us'] / r['meas_us'] - 1):+7.1f}% "
            f"{100 * (r['now_us'] / r['meas_us'] - 1):+7.1f}%"
        )
    for backend in ("efficient", "cudnn"):
        sel = [r for r in rows if r["backend"] == backend]
        for b in sorted({r["B"] for r in sel}):
            s = [r for r in sel if r["B"] == b]
            print(
                f"{backend} B={b}: kernel MAPE before {_mape(s, 'before_us'):.1f}%, "
                f"now {_mape(s, 'now_us'):.1f}% ({len(s)} probes)"
            )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
