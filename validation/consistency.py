"""One model, two paths to it: the dataflow recipes over a cascade vs a record's own kernels.

For every record of a measurement file that maps to a GPU dataflow, compare what each
evaluator of the tile program (``estimate``, and the event engine on a subset) gives for

(a) the record's kernels (``validation._predict.predict_record``, what ``archsim validate``
    reports; here with a clean L2, as a kernel run on its own), and
(b) ``mappings.simulate_workload(arch, workload, dataflow=...)``: the library cascade of
    the same shape mapped by the dataflow's recipe and lowered to a tile program.

Usage::

    python -m validation.consistency validation/data/h100_check.jsonl --arch h100 \
        [--event N] [--json OUT]

prints one row per record (both paths' times per evaluator and their ratio, recipe over
record) and the MAPE of the ratio, overall and per dataflow.
"""

from __future__ import annotations

import argparse
import json
import math
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from archsim.gpu import GpuModel, gpu_model

from ._predict import (
    UnsupportedRecord,
    backend_family,
    device_arch,
    device_model,
    predict_record,
)
from ._records import Measurement, load_measurements

__all__ = [
    "WorkloadCall",
    "record_call",
    "consistency_frame",
    "consistency_summary",
    "event_subset",
    "main",
]

_FLOW = {"flash2": "flash2", "flash3": "flash3", "efficient": "mem_efficient"}


@dataclass(frozen=True)
class WorkloadCall:
    """Arguments of ``mappings.simulate_workload`` reproducing one measured record."""

    workload: str
    params: Mapping[str, object]
    dataflow: str
    knobs: Mapping[str, object]


def record_call(rec: Mapping[str, object]) -> WorkloadCall:
    """The library workload, shape parameters, dataflow and knobs of a record.

    Raises
    ------
    UnsupportedRecord
        Kinds without a dataflow (the device-ceiling copy) and unknown backends.
    """
    kind = rec.get("kind")
    if kind == "gemm" or (kind == "ceiling" and "M" in rec):
        # record fields from JSON: numbers (int() rejects anything else), as below
        if int(rec.get("batch", 1) or 1) != 1:  # type: ignore[call-overload]
            raise UnsupportedRecord("batched GEMM has no gpu_gemm workload parameter")
        p = {k: int(rec[k]) for k in ("M", "N", "K")}  # type: ignore[call-overload]
        return WorkloadCall("gemm", p, "gpu_gemm", {})
    if kind in ("attn", "decode"):
        fam = backend_family(rec.get("backend"))
        Hq, Hkv = int(rec["Hq"]), int(rec["Hkv"])  # type: ignore[call-overload]
        if str(rec.get("gqa_impl", "")) == "expanded_kv":
            Hkv = Hq
        Sq = int(rec.get("Sq", 1) or 1)  # type: ignore[call-overload]
        params = {
            "B": int(rec["B"]),  # type: ignore[call-overload]
            "H": Hq,
            "Hkv": Hkv,
            "Sq": Sq,
            "Skv": int(rec["Skv"]),  # type: ignore[call-overload]
            "D": int(rec["D"]),  # type: ignore[call-overload]
            "causal": bool(rec.get("causal", False)),
        }
        pass_ = str(rec.get("pass_", "fwd"))
        if kind == "decode" or Sq == 1:
            if pass_ != "fwd":
                raise UnsupportedRecord("decode backward")
            flow = "split_kv" if fam == "flash2" else _FLOW[fam]
            return WorkloadCall("decode", params, flow, {})
        return WorkloadCall("gqa", params, _FLOW[fam], {"pass_": pass_})
    if kind == "attn_unfused":
        p = {"B": rec["B"], "H": rec["H"], "Sq": rec["S"], "Skv": rec["S"], "D": rec["D"]}
        return WorkloadCall("mha", {k: int(v) for k, v in p.items()}, "gpu_unfused", {})
    if kind == "flex_block_sparse":
        dens = float(rec.get("density", rec.get("density_target", 1.0)))  # type: ignore[arg-type]
        p = {
            "B": int(rec["B"]),  # type: ignore[call-overload]
            "H": int(rec["H"]),  # type: ignore[call-overload]
            "Sq": int(rec["S"]),  # type: ignore[call-overload]
            "Skv": int(rec["S"]),  # type: ignore[call-overload]
            "D": int(rec["D"]),  # type: ignore[call-overload]
            "block": int(rec.get("block", 128)),  # type: ignore[call-overload]
            "density": dens,
        }
        return WorkloadCall("block_sparse", p, "block_sparse", {"family": "flex"})
    raise UnsupportedRecord(f"no dataflow for kind {kind!r}")


def event_subset(records: Sequence[Measurement], n: int) -> set[int]:
    """Lines of ``n`` records spread over the dataflows (every k-th of each, in file order)."""
    if n <= 0:
        return set()
    by_flow: dict[str, list[int]] = {}
    for m in records:
        try:
            call = record_call(m.fields)
        except UnsupportedRecord:
            continue
        key = call.dataflow + str(call.knobs.get("pass_", ""))
        by_flow.setdefault(key, []).append(m.line)
    picked: list[int] = []
    depth = 0
    while len(picked) < n and any(depth < len(v) for v in by_flow.values()):
        for lines in by_flow.values():
            if depth < len(lines) and len(picked) < n:
                picked.append(lines[(depth * 7) % len(lines)])
        depth += 1
    return set(picked)


def consistency_frame(
    path: str,
    arch: str = "h100",
    *,
    event_lines: set[int] | None = None,
    model: GpuModel | None = None,
) -> pd.DataFrame:
    """One row per record with a dataflow: both paths' times under each evaluator.

    Columns: ``line, kind, group, dataflow, shape, measured_ms``, and per evaluator ``E`` in
    (``analytic``, ``event``; NaN where not run): ``E_record_ms`` (the record's kernels),
    ``E_ms`` (the recipe over the cascade), ``E_ratio`` (recipe / record) and ``E_s_wall``
    (seconds the recipe path took).
    """
    from mappings import simulate_workload
    from validation._predict import record_label

    mset = load_measurements(path)
    a = device_arch(arch, mset.device)
    mdl = device_model(model or gpu_model(a), mset.device)
    rows = []
    for m in mset.records:
        try:
            call = record_call(m.fields)
            # simulate_workload times the kernels on their own, with a clean L2: so does this
            pred = predict_record(m, mdl, engine="analytic", arch=a, l2_dirty_bytes=0.0)
        except UnsupportedRecord:
            continue
        row: dict[str, object] = {
            "line": m.line,
            "kind": m.kind,
            "group": pred.group,
            "dataflow": call.dataflow,
            "shape": record_label(m.fields),
            "measured_ms": m.ms,
        }
        engines = ["analytic"] + (["event"] if event_lines and m.line in event_lines else [])
        for eng in ("analytic", "event"):
            for col in ("record_ms", "ms", "s_wall", "ratio"):
                row[f"{eng}_{col}"] = math.nan
        for eng in engines:
            if eng != "analytic":
                pred = predict_record(m, mdl, engine=eng, arch=a, l2_dirty_bytes=0.0)
            t0 = time.perf_counter()
            rep = simulate_workload(
                a,
                call.workload,
                params=call.params,
                dataflow=call.dataflow,
                knobs=call.knobs,
                engine=eng,  # type: ignore[arg-type]
            )
            row[f"{eng}_s_wall"] = time.perf_counter() - t0
            row[f"{eng}_record_ms"] = pred.pred_ms
            row[f"{eng}_ms"] = rep.result.seconds * 1e3
            row[f"{eng}_ratio"] = rep.result.seconds * 1e3 / pred.pred_ms
        rows.append(row)
    return pd.DataFrame(rows)


def _mape(ratio: pd.Series) -> float:
    r = ratio.dropna()
    return float(np.mean(np.abs(r - 1.0)) * 100) if len(r) else math.nan


def _maxerr(ratio: pd.Series) -> float:
    r = ratio.dropna()
    return float(np.max(np.abs(r - 1.0)) * 100) if len(r) else math.nan


def consistency_summary(frame: pd.DataFrame) -> pd.DataFrame:
    """MAPE (%) and max |error| (%) of the recipe path against the record path, for each
    evaluator, per dataflow and all."""
    out = []
    groups = [("all", frame)] + [(str(k), g) for k, g in frame.groupby("dataflow", sort=True)]
    for name, g in groups:
        out.append(
            {
                "dataflow": name,
                "n": len(g),
                "analytic_mape": _mape(g["analytic_ratio"]),
                "analytic_max": _maxerr(g["analytic_ratio"]),
                "n_event": int(g["event_ratio"].notna().sum()),
                "event_mape": _mape(g["event_ratio"]),
                "event_max": _maxerr(g["event_ratio"]),
            }
        )
    return pd.DataFrame(out)


def main(argv: Sequence[str] | None = None) -> int:
    """Command line: print the per-record table and the MAPE between evaluators."""
    ap = argparse.ArgumentParser(prog="python -m validation.consistency", description=__doc__)
    ap.add_argument("file", help="measurement JSON Lines (e.g. validation/data/h100_check.jsonl)")
    ap.add_argument("--arch", default="h100")
    ap.add_argument("--event", type=int, default=12, help="records also run on the event engine")
    ap.add_argument("--json", dest="json_out", metavar="OUT", help="write the rows as JSON")
    args = ap.parse_args(argv)
    mset = load_measurements(args.file)
    lines = event_subset(mset.records, args.event)
    frame = consistency_frame(args.file, args.arch, event_lines=lines)
    cols = [
        "line",
        "dataflow",
        "shape",
        "measured_ms",
        "analytic_record_ms",
        "analytic_ms",
        "event_record_ms",
        "event_ms",
        "analytic_ratio",
        "event_ratio",
    ]
    with pd.option_context("display.width", 200, "display.max_rows", 500):
        print(frame[cols].to_string(index=False, float_format=lambda v: f"{v:.4g}"))  # noqa: T201
        print()  # noqa: T201
        print(consistency_summary(frame).to_string(index=False, float_format=lambda v: f"{v:.3g}"))  # noqa: T201
    if args.json_out:
        with open(args.json_out, "w", encoding="utf-8") as fh:
            json.dump(frame.to_dict(orient="records"), fh, indent=1, default=float)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
