"""Fit the two constants of :mod:`validation._strided` on a committed profiler trace.

``python -m validation.fit_elementwise [TRACE] [--arch h200]`` (default: the H200 Llama-3-8B
b1 prefill trace, the fit set; every other committed layer trace is the check set).

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

__all__ = ["FIT_TRACE", "fit", "points"]

FIT_TRACE = (
    Path(__file__).resolve().parent / "data/traces/h200_llama3_8b_layer_b1_prefill.trace.json.gz"
)
_MIN_ELEMS = 1 << 22


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


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("trace", nargs="?", default=str(FIT_TRACE))
    ap.add_argument("--arch", default="h200")
    args = ap.parse_args(argv)
    for op, x, y in points(args.trace, args.arch):
        print(f"{op:6s} operands x dims {x:4.0f}  int instructions/element {y:6.1f}")  # noqa: T201
    base, slope, n = fit(args.trace, args.arch)
    print(f"BASE = {base:.1f}  PER_OPERAND_DIM = {slope:.2f}  ({n} kernels)")  # noqa: T201
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
