"""Fit the GPU model's few calibrated constants on a *fit* measurement file.

Usage (writes ``archsim/gpu/calibrated/<arch>.json`` with provenance)::

    python -m validation.calibrate validation/data/h100_fit.jsonl --arch h100 --write

Only constants that the file's records can inform are fitted (``eff_fa3`` needs cuDNN
records, the power coefficients need NVML energy records...); the rest keep their
first-principles defaults. Each record is predicted as ``archsim validate`` predicts it:
its kernels lowered to a tile program and run by the event engine (``--engine analytic``:
the program's analytic evaluator). The objective is the log-ratio of predicted to measured time
for every record, plus log-ratios of energy, average power and SM clock where NVML
measured them; ``scipy.optimize.least_squares`` (trust-region, soft-L1 loss so that one
odd record cannot dominate) solves it within physical bounds. Where ncu timed a record's
kernels (``ncu_ms``: no launch latency, clean L2) their own duration is a residual too.
``ramp_s`` and ``l2_dirty_frac`` are not fitted (the fit split cannot tell them from
``launch_s``: see their notes in ``archsim.gpu.params``). Never fit on a check file:
the check split is what the accuracy tests hold the model to.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from archsim import Result
from archsim.gpu import GpuCalibration, GpuModel, calibration_path, evaluate_op, gpu_model

from ._predict import (
    UnsupportedRecord,
    device_model,
    harness_dirty_bytes,
    predict_record,
    record_costs,
)
from ._records import Measurement, load_measurements
from ._report import compare_records

__all__ = [
    "BOUNDS",
    "FitResult",
    "fit_calibration",
    "active_parameters",
    "hardware_snapshot",
    "main",
]

#: Physical bounds of each fitted constant.
BOUNDS: dict[str, tuple[float, float]] = {
    "hbm_efficiency": (0.6, 1.0),
    "launch_s": (0.5e-6, 20e-6),
    "gap_s": (0.0, 10e-6),
    "ramp_s": (0.0, 10e-6),
    "l2_dirty_frac": (0.0, 1.0),
    "eff_gemm": (0.4, 1.0),
    "eff_fa2": (0.3, 1.0),
    "eff_fa3": (0.3, 1.0),
    "eff_memeff": (0.15, 1.0),
    "eff_flex": (0.15, 1.0),
    "eff_bwd": (0.3, 1.2),
    "p_tensor_w": (100.0, 2000.0),
    "p_alu_w": (0.0, 1000.0),
    "p_mem_w": (0.0, 1000.0),
    "p_active_w": (0.0, 400.0),
    "v_min_frac": (0.5, 1.0),
}


def active_parameters(records: Sequence[Measurement]) -> list[str]:
    """Constants the records can inform (see module notes)."""
    names = ["hbm_efficiency", "launch_s", "gap_s"] if records else []
    fams: set[str] = set()
    for r in records:
        f = r.fields
        if r.kind in ("gemm", "attn_unfused") or (r.kind == "ceiling" and "M" in f):
            fams.add("eff_gemm")
        if r.kind in ("attn", "decode"):
            b = str(f.get("backend", "")).split(".")[-1].lower()
            fams.add(
                {
                    "flash": "eff_fa2",
                    "flash_attention": "eff_fa2",
                    "cudnn": "eff_fa3",
                    "cudnn_attention": "eff_fa3",
                }.get(b, "eff_memeff")
            )
            if f.get("pass_") == "bwd":
                fams.add("eff_bwd")
        if r.kind == "flex_block_sparse":
            fams.add("eff_flex")
        if "mJ_per_iter" in f or "avg_W" in f or ("sm_clock" in f and r.ms >= 1.0):
            fams.update({"p_tensor_w", "p_mem_w", "p_active_w"})
    return names + [n for n in GpuCalibration.names() if n in fams]


@dataclass(frozen=True)
class FitResult:
    """Fitted calibration, per-group errors on the fit file before/after, and the optimizer cost."""

    calibration: GpuCalibration
    parameters: tuple[str, ...]
    before: dict[str, dict[str, float]]
    after: dict[str, dict[str, float]]
    cost: float


def _clock_residual(r: Measurement, model: GpuModel) -> float | None:
    """Residual of the SM clock the power cap allowed, informative on both sides of boost.

    The clock is the power-cap governor's (``archsim.gpu.evaluate_op``, the clock the tile
    program runs at; see ``mappings._gpu._run``), solved with the boost ceiling lifted (x2),
    so a kernel that the model thinks runs uncapped still tells the fit how far it is from
    the cap. A record
    measured at (near) boost only penalizes a model that would throttle it.
    """
    f = r.fields
    v = f.get("sm_clock")
    # NVML samples the clock every 20 ms: only kernels that dominate that window
    # (energy loops, or calls of >= 1 ms) say what clock the power cap allowed.
    if not (("mJ_per_iter" in f or r.ms >= 1.0) and isinstance(v, (int, float)) and v > 0):
        return None
    _, _, costs = record_costs(f, model)
    boost = model.hw.boost_clock_hz
    op = evaluate_op(
        costs, model, max_clock_hz=2.0 * boost, l2_dirty_bytes=harness_dirty_bytes(model)
    )
    f_free = op.clock_hz
    meas = float(v) * 1e6
    if meas >= 0.97 * boost:
        return math.log(min(f_free, boost) / boost)
    return math.log(f_free / meas)


def _residuals(
    records: Sequence[Measurement],
    model: GpuModel,
    engine: str = "event",
    cache: dict[bytes, Result] | None = None,
) -> np.ndarray:
    res: list[float] = []
    for r in records:
        try:
            p = predict_record(r, model, engine=engine, cache=cache)
        except UnsupportedRecord:
            continue
        res.append(math.log(max(p.pred_ms, 1e-9) / r.ms))
        f = r.fields
        for key, pred in (("mJ_per_iter", p.pred_mJ), ("avg_W", p.pred_W)):
            v = f.get(key)
            if isinstance(v, (int, float)) and v > 0:
                res.append(math.log(max(pred, 1e-9) / float(v)))
        c = _clock_residual(r, model)
        if c is not None:
            res.append(c)
        d = _kernel_residual(r, model, engine, cache)
        if d is not None:
            res.append(d)
    return np.asarray(res)


def _kernel_residual(
    r: Measurement,
    model: GpuModel,
    engine: str = "event",
    cache: dict[bytes, Result] | None = None,
) -> float | None:
    """Log-ratio of the kernels' own duration to ncu's (``ncu_ms``), where ncu measured it.

    ncu times the kernels alone: no launch latency (``launch_s``, ``gap_s``), and its cache
    control leaves L2 clean, so no dirty-line write-back; CUDA events see both. The two
    together tell the launch apart from the in-kernel time.
    """
    v = r.fields.get("ncu_ms")
    if not isinstance(v, (int, float)) or isinstance(v, bool) or v <= 0:
        return None
    p = predict_record(r, model, engine=engine, l2_dirty_bytes=0.0, cache=cache)
    n = len(p.kernels)
    fixed = model.cal.launch_s + (n - 1) * model.cal.gap_s
    return math.log(max(p.pred_ms * 1e-3 - fixed, 1e-9) / (float(v) * 1e-3))


def fit_calibration(
    path: str | Path,
    arch: str = "h100",
    *,
    parameters: Sequence[str] | None = None,
    max_nfev: int = 60,
    engine: str = "event",
    start: str = "defaults",
) -> FitResult:
    """Fit the calibrated constants on the records of ``path``.

    Parameters
    ----------
    path
        A *fit* measurement file (JSON Lines).
    arch
        GPU preset the file was measured on.
    parameters
        Constants to fit (default :func:`active_parameters`).
    max_nfev
        Cap on objective evaluations (each predicts every record).
    engine
        What predicts a record's time during the fit: its kernels lowered to a tile program
        and run by the event engine (``event``, default: ~12 CPU-s per evaluation of the
        H100 fit split, programs met again are not re-run) or bounded by its analytic
        evaluator (``analytic``, ~2 CPU-s).
    start
        Where the optimizer starts: ``defaults`` (the first-principles constants) or
        ``committed`` (the committed calibration of ``arch``: fewer steps to the same
        optimum). The "before" errors are always the first-principles ones.

    Returns
    -------
    FitResult
    """
    from scipy.optimize import least_squares

    mset = load_measurements(path)
    records = list(mset.records)
    if start not in ("defaults", "committed"):
        raise ValueError(f"start: expected 'defaults' or 'committed', got {start!r}")
    first = GpuCalibration()
    base = device_model(gpu_model(arch, first), mset.device)
    start_cal = gpu_model(arch).cal if start == "committed" else first
    names = list(parameters) if parameters is not None else active_parameters(records)
    x0 = np.array([getattr(start_cal, n) for n in names], dtype=float)
    lo = np.array([BOUNDS[n][0] for n in names])
    hi = np.array([BOUNDS[n][1] for n in names])
    x0 = np.clip(x0, lo, hi)
    scale = np.where(x0 != 0, np.abs(x0), 1.0)
    cache: dict[bytes, Result] = {}

    def model_at(z: np.ndarray) -> GpuModel:
        cal = first.with_values(dict(zip(names, z * scale, strict=True)))
        return GpuModel(hw=base.hw, cal=cal)

    def fun(z: np.ndarray) -> np.ndarray:
        return _residuals(records, model_at(z), engine, cache)

    before = compare_records(mset, base, engine=engine).summary("group")
    if names:
        sol = least_squares(
            fun,
            x0 / scale,
            bounds=(lo / scale, hi / scale),
            loss="soft_l1",
            f_scale=0.05,
            max_nfev=max_nfev,
            # the event engine answers in whole cycles and whole schedules: a step of 1%
            # sees its trend where 0.1% sees its steps
            diff_step=1e-2 if engine == "event" else 1e-3,
        )
        z, cost = sol.x, float(sol.cost)
    else:
        z, cost = x0 / scale, 0.0
    fitted = model_at(z)
    after = compare_records(mset, fitted, engine=engine).summary("group")
    prov = {
        "date": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "fit_file": str(path),
        "arch": arch,
        "n_records": len(records),
        "fitted": names,
        "method": "scipy.optimize.least_squares(trf, soft_l1, f_scale=0.05) "
        "on log(pred/meas) of time, energy, power, clock (calls >= 1 ms)",
        "engine": engine,
        "device": {
            k: (mset.device or {}).get(k)
            for k in ("name", "torch", "cuda", "date", "power_limit_w", "idle_power_w")
        },
        "residuals_after": {
            g: {k: round(v, 3) if isinstance(v, float) else v for k, v in st.items()}
            for g, st in after.items()
        },
        "command": f"python -m validation.calibrate {path} --arch {arch} --write"
        + (f" --engine {engine}" if engine != "event" else "")
        + (f" --start {start}" if start != "defaults" else ""),
        "hardware": hardware_snapshot(base),
    }
    cal = GpuCalibration(provenance=prov).with_values(
        {n: getattr(fitted.cal, n) for n in GpuCalibration.names()}
    )
    return FitResult(cal, tuple(names), before, after, cost)


def hardware_snapshot(model: GpuModel) -> dict[str, object]:
    """The preset facts a fit depends on (a changed preset needs a refit; a test checks)."""
    hw = model.hw
    return {
        "sms": hw.sms,
        "hbm_bytes_per_s": hw.hbm_bytes_per_s,
        "boost_clock_hz": hw.boost_clock_hz,
        "tc_flops_per_clk": dict(sorted(hw.tc_flops_per_clk.items())),
        "fp32_ops_per_clk": hw.fp32_ops_per_clk,
        "sfu_ops_per_clk": hw.sfu_ops_per_clk,
        "l2_bytes": hw.l2_bytes,
    }


def _fmt(stats: dict[str, dict[str, float]]) -> str:
    return "\n".join(
        f"  {g:<26} n={s['n']:<4} MAPE={s['mape']:6.2f}% max={s['max_error']:6.2f}%"
        for g, s in stats.items()
    )


def main(argv: Sequence[str] | None = None) -> int:
    """Command line: fit, print before/after, optionally write the JSON."""
    ap = argparse.ArgumentParser(
        prog="python -m validation.calibrate", description=__doc__.split("\n")[0]
    )
    ap.add_argument("fit_file")
    ap.add_argument("--arch", default="h100")
    ap.add_argument("--write", action="store_true", help="write archsim/gpu/calibrated/<arch>.json")
    ap.add_argument("--max-nfev", type=int, default=60)
    ap.add_argument(
        "--engine",
        choices=("event", "analytic"),
        default="event",
        help="what predicts each record during the fit (see fit_calibration); default event",
    )
    ap.add_argument(
        "--start",
        choices=("defaults", "committed"),
        default="defaults",
        help="start the optimizer from the first-principles constants or the committed fit",
    )
    args = ap.parse_args(argv)
    res = fit_calibration(
        args.fit_file, args.arch, max_nfev=args.max_nfev, engine=args.engine, start=args.start
    )
    print("fitted:", ", ".join(f"{n}={getattr(res.calibration, n):.4g}" for n in res.parameters))  # noqa: T201
    print("before (defaults):\n" + _fmt(res.before))  # noqa: T201
    print("after:\n" + _fmt(res.after))  # noqa: T201
    if args.write:
        out = calibration_path(args.arch)
        out.write_text(json.dumps(res.calibration.to_dict(), indent=1) + "\n")
        print(f"wrote {out}")  # noqa: T201
    return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
