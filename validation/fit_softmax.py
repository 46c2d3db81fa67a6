"""Fit the instruction and issue constants of :mod:`archsim.gpu.softmax` on ncu counters.

``python -m validation.fit_softmax [RECORDS]`` (default
``validation/data/h100_kernel_probe.jsonl``, the ``softmax`` probes with an ``ncu`` entry).

Two fits, both on hardware counters, never on times:

- per kernel path (:func:`archsim.gpu.softmax.softmax_launch` names it from the width),
  thread instructions per row (``smsp__inst_executed.sum x 32 / rows``) by least squares on
  the path's columns of ``[1, slots, valid]`` (``reg``: all three; ``warp``: ``[1, slots]``;
  ``smem``: ``[1, valid]``; ``global``, measured at one width: ``smem``'s intercept and the
  slope through that point);
- the issue efficiency ``ISSUE_MAX x (1 - exp(-W / ISSUE_WARPS))`` against the achieved warps
  per scheduler ``W = sm__warps_active% x 16`` (scipy ``curve_fit``), over every kernel.

Prints the constants beside the module's and, as the check, each probe's kernel time against
the model's (the times are not used by the fit).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

__all__ = ["FIT_RECORDS", "fit", "points"]

FIT_RECORDS = Path(__file__).resolve().parent / "data/h100_kernel_probe.jsonl"
_WARPS_PER_SCHEDULER = 16  # 64 warps per SM / 4 schedulers (Hopper)


def points(path: str | Path = FIT_RECORDS) -> list[dict]:
    """One row per softmax probe with ncu counters: width, dtype, path, instructions per
    row, issue fraction, warps per scheduler, measured kernel microseconds."""
    from archsim.gpu import dtype_bytes
    from archsim.gpu.softmax import softmax_launch

    out = []
    for line in Path(path).read_text().splitlines():
        rec = json.loads(line)
        if rec.get("probe") != "softmax" or not rec.get("ncu"):
            continue
        k = rec["ncu"][0]
        launch = softmax_launch(rec["rows"], rec["dim"], dtype_bytes(rec["dtype"]))
        out.append(
            {
                "dim": rec["dim"],
                "dtype": rec["dtype"],
                "rows": rec["rows"],
                "path": launch.path,
                "slots": launch.slots,
                "instr_per_row": k["smsp__inst_executed.sum"] * 32 / rec["rows"],
                "issue": k["smsp__issue_active.avg.pct_of_peak_sustained_active"] / 100,
                "warps": k["sm__warps_active.avg.pct_of_peak_sustained_active"]
                / 100
                * _WARPS_PER_SCHEDULER,
                "kernel_us": rec["kernels"][0]["us"],
            }
        )
    return out


def fit(pts: list[dict]) -> tuple[dict[str, tuple[float, float, float]], float, float]:
    """``(INSTRUCTIONS, ISSUE_MAX, ISSUE_WARPS)`` from :func:`points` (bf16 rows for the
    instruction counts; every row for the issue curve)."""
    from scipy.optimize import curve_fit

    def lsq(path: str, cols: tuple[bool, bool, bool]) -> tuple[float, float, float]:
        rows = [p for p in pts if p["path"] == path and p["dtype"] == "bf16"]
        full = np.array([[1.0, p["slots"], p["dim"]] for p in rows])
        y = np.array([p["instr_per_row"] for p in rows])
        sol = np.linalg.lstsq(full[:, list(cols)], y, rcond=None)[0]
        it = iter(sol)
        return tuple(float(next(it)) if c else 0.0 for c in cols)  # type: ignore[return-value]

    inst = {
        "warp": lsq("warp", (True, True, False)),
        "reg": lsq("reg", (True, True, True)),
        "smem": lsq("smem", (True, False, True)),
    }
    g = [p for p in pts if p["path"] == "global" and p["dtype"] == "bf16"]
    c0 = inst["smem"][0]
    if g:
        inst["global"] = (
            c0,
            0.0,
            float(np.mean([(p["instr_per_row"] - c0) / p["dim"] for p in g])),
        )
    w = np.array([p["warps"] for p in pts])
    e = np.array([p["issue"] for p in pts])
    (em, w0), _ = curve_fit(lambda x, a, b: a * (1 - np.exp(-x / b)), w, e, p0=(0.8, 6.0))
    return inst, float(em), float(w0)


def main(argv: list[str] | None = None) -> int:
    from archsim.gpu import gpu_model, softmax
    from archsim.gpu.softmax import softmax_cost
    from mappings._gpu._run import run_kernels

    ap = argparse.ArgumentParser(prog="python -m validation.fit_softmax", description=__doc__)
    ap.add_argument("records", nargs="?", default=str(FIT_RECORDS))
    args = ap.parse_args(argv)
    pts = points(args.records)
    inst, em, w0 = fit(pts)
    for path, c in inst.items():
        mod = softmax.INSTRUCTIONS[path]
        print(f"INSTRUCTIONS[{path!r}] = ({c[0]:.0f}, {c[1]:.2f}, {c[2]:.2f})   module {mod}")
    print(f"ISSUE_MAX = {em:.3f} (module {softmax.ISSUE_MAX}); ISSUE_WARPS = {w0:.2f} "
          f"(module {softmax.ISSUE_WARPS})")  # fmt: skip
    model = gpu_model("h100")
    errs = []
    print("check: kernel time, measured vs the event engine (not fitted)")
    for p in pts:
        cost = softmax_cost(model, rows=p["rows"], cols=p["dim"], dtype=p["dtype"])
        # the kernel's own time: its call on the event engine less the call's launch
        k = run_kernels([cost], model).kernels[0]
        t = (k.time_s - model.cal.launch_s) * 1e6
        errs.append(abs(t / p["kernel_us"] - 1))
        print(f"  {p['dim']:>6} {p['dtype']} {p['path']:<6} {p['kernel_us']:8.1f} us  "
              f"{t:8.1f} us  {t / p['kernel_us'] - 1:+.1%}")  # fmt: skip
    print(f"MAPE {100 * float(np.mean(errs)):.1f}% over {len(errs)} kernels")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
