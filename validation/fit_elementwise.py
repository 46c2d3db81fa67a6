"""Fit the two constants of :mod:`validation._strided` on a committed profiler trace, and the
HBM round latency of :mod:`archsim.gpu.launch` on the standalone layer-op records.

``python -m validation.fit_elementwise [TRACE] [--arch h200]`` (default: the H200 Llama-3-8B
b1 prefill trace, the fit set; every other committed layer trace is the check set).

``python -m validation.fit_elementwise --latency [RECORDS]`` (default
``validation/data/h200_layer_ops.jsonl``): :data:`archsim.gpu.launch.HBM_ROUND_S` from the
standalone, cold-L2 ``rms_norm`` records. At a fixed row count ``M`` (one CTA per row, all in
one wave) a wider row adds only dependent rounds of HBM loads to the one kernel of the call
(:func:`archsim.gpu.launch.layer_norm_launch`), so ``(t(d2) - t(d1)) / (rounds(d2) -
rounds(d1))`` is the latency of one round, free of the timer's and the launch's fixed cost;
the fit is the mean over the ``M`` values with both widths. Prints each pair, the fit and
the fixed cost per call it implies. The layer traces (L2-warm activations) are the check.

For every kernel of a non-vectorised element-wise op in the trace (an op the iterator model
says cannot run the vectorised kernel, with at least 4M output elements, 8 MB in bf16, so
that launch and tail do not matter), the integer instructions per element that the kernel's
measured time allows at the SM's INT32 issue rate (``SMs x FP32 lanes x INT32_PER_FP32 x
boost clock``) are regressed on ``operands x dims`` by least squares: intercept ``BASE``, slope
``PER_OPERAND_DIM``. Prints both and the points used.
"""

from __future__ import annotations

import argparse
import math
from pathlib import Path

import numpy as np

__all__ = ["FIT_RECORDS", "FIT_TRACE", "fit", "fit_round_latency", "implied_overheads", "points"]

FIT_TRACE = (
    Path(__file__).resolve().parent / "data/traces/h200_llama3_8b_layer_b1_prefill.trace.json.gz"
)
_MIN_ELEMS = 1 << 22
FIT_RECORDS = Path(__file__).resolve().parent / "data/h200_layer_ops.jsonl"


def points(trace_path: str | Path, arch: str = "h200") -> list[tuple[str, float, float]]:
    """``(op, operands x dims, measured int instructions per element)`` of the trace's
    non-vectorised element-wise kernels of at least 4M elements."""
    from archsim.gpu import gpu_model
    from validation._strided import INT32_PER_FP32, iteration_dims
    from validation._torch_trace import read_torch_trace
    from validation._trace_ops import _operands

    hw = gpu_model(arch).hw
    rate = hw.sms * hw.fp32_ops_per_clk * INT32_PER_FP32 * hw.boost_clock_hz  # int ops / s
    out = []
    for k in read_torch_trace(trace_path).kernels:
        op = (k.op_name or "").split("::")[-1]
        if op not in ("mul", "add", "neg", "sub", "copy_") or k.category != "elementwise":
            continue
        ops = _operands(k)
        if not ops:
            continue
        dense = op != "copy_"
        shape = ops[0][0] if not dense else tuple(np.broadcast_shapes(*(s for s, _ in ops)))
        elems = math.prod(shape)
        ndim, vectorised = iteration_dims(shape, ops, dense_output=dense)
        if vectorised or elems < _MIN_ELEMS:
            continue
        x = (int(dense) + len(ops)) * ndim
        out.append((op, float(x), k.dur_us * 1e-6 * rate / elems))
    return out


def fit(trace_path: str | Path = FIT_TRACE, arch: str = "h200") -> tuple[float, float, int]:
    """``(BASE, PER_OPERAND_DIM, points)`` fitted on ``trace_path``."""
    pts = points(trace_path, arch)
    if len({x for _, x, _ in pts}) < 2:
        raise ValueError(f"{trace_path}: need points at two operand x dims values, got {pts}")
    x = np.array([p[1] for p in pts])
    y = np.array([p[2] for p in pts])
    slope, intercept = np.polyfit(x, y, 1)
    return float(intercept), float(slope), len(pts)


def fit_round_latency(
    records: str | Path = FIT_RECORDS,
) -> tuple[float, list[tuple[int, int, int, float]]]:
    """``(seconds per HBM round, [(M, d1, d2, seconds per round of that pair)])`` from the
    ``rms_norm`` records of ``records`` (module notes)."""
    import json

    from archsim.gpu.launch import layer_norm_launch

    times: dict[int, dict[int, float]] = {}
    for line in Path(records).read_text().splitlines():
        rec = json.loads(line) if line.strip() else {}
        if rec.get("op") == "rms_norm" and "ms" in rec and "error" not in rec:
            times.setdefault(int(rec["M"]), {})[int(rec["d"])] = float(rec["ms"]) * 1e-3
    pairs = []
    for m, by_d in sorted(times.items()):
        ds = sorted(by_d)
        if len(ds) < 2 or m > 132:  # one CTA per row, one wave: rounds alone set the time
            continue
        d1, d2 = ds[0], ds[-1]
        r1, r2 = (layer_norm_launch(m, d, 2).n_rounds for d in (d1, d2))
        pairs.append((m, d1, d2, (by_d[d2] - by_d[d1]) / (r2 - r1)))
    if not pairs:
        raise ValueError(f"{records}: no rms_norm records at two widths and M <= 132")
    return float(np.mean([p[3] for p in pairs])), pairs


def implied_overheads(
    records: str | Path = FIT_RECORDS, arch: str = "h200"
) -> list[tuple[str, str, float, float]]:
    """``(op, shape, measured s, modelled kernel s)`` of the one-kernel layer-op records that
    run latency-bound (``rms_norm`` with ``M <= 132`` rows, ``add`` of one row), cold L2.
    What the measurement adds to the kernel (CUDA-event timer, launch) should be one constant:
    its spread checks the round model."""
    import json

    from archsim.gpu import gpu_model
    from archsim.gpu.elementwise import launch_cost
    from archsim.gpu.launch import layer_norm_launch, vectorized_elementwise_launch
    from mappings._gpu._run import run_kernels

    model = gpu_model(arch)
    out = []
    for line in Path(records).read_text().splitlines():
        r = json.loads(line) if line.strip() else {}
        if "ms" not in r or "error" in r:
            continue
        if r.get("op") == "rms_norm" and int(r["M"]) <= 132:
            m, d = int(r["M"]), int(r["d"])
            launch, rd, wr = layer_norm_launch(m, d, 2), 2.0 * d * (m + 1), 2.0 * d * m
        elif r.get("op") == "add" and int(r["M"]) == 1:
            m, d = 1, int(r["d"])
            launch, rd, wr = vectorized_elementwise_launch(d, [2, 2], 2), 4.0 * d, 2.0 * d
        else:
            continue
        cost = launch_cost(
            model,
            launch,
            name=r["op"],
            category="elementwise",
            read_bytes=rd,
            write_bytes=wr,
            alu_ops=0.0,
        )
        t = run_kernels([cost], model, arch).kernels[0].time_s - model.cal.launch_s
        out.append((str(r["op"]), f"M={m} d={d}", float(r["ms"]) * 1e-3, t))
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("trace", nargs="?", default=None)
    ap.add_argument("--arch", default="h200")
    ap.add_argument("--latency", action="store_true", help="fit HBM_ROUND_S (see module doc)")
    args = ap.parse_args(argv)
    if args.latency:
        lat, pairs = fit_round_latency(args.trace or FIT_RECORDS)
        for m, d1, d2, per in pairs:
            print(f"rms_norm M={m:<4d} d {d1} -> {d2}: {per * 1e9:6.1f} ns per round")  # noqa: T201
        print(f"HBM_ROUND_S = {lat:.3g}  ({len(pairs)} pairs)")  # noqa: T201
        for op, shape, meas, model in implied_overheads(args.trace or FIT_RECORDS, args.arch):
            print(  # noqa: T201
                f"{op:8s} {shape:<14s} measured {meas * 1e6:6.2f} us, event engine "
                f"{model * 1e6:6.2f} us: timer + launch {(meas - model) * 1e6:5.2f} us"
            )
        return 0
    args.trace = args.trace or str(FIT_TRACE)
    for op, x, y in points(args.trace, args.arch):
        print(f"{op:6s} operands x dims {x:4.0f}  int instructions/element {y:6.1f}")  # noqa: T201
    base, slope, n = fit(args.trace, args.arch)
    print(f"BASE = {base:.1f}  PER_OPERAND_DIM = {slope:.2f}  ({n} kernels)")  # noqa: T201
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
