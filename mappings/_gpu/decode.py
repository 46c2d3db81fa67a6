"""GPU decode dataflows: ``split_kv`` (flash-decoding with FA2's split heuristic) and
``lean`` (stream-K decode). Knob ``splits`` forces a split count for ``split_kv``."""

from __future__ import annotations

from collections.abc import Mapping

from archsim import Architecture
from archsim.gpu import decode_costs, fa2_decode_plan, lean_decode_costs
from mappings._registry import PassInfo, Plan, register_dataflow
from workloads import Workload

from ._common import check_knobs, dtype_of, ensure, gpu_plan, model_for, param

__all__ = ["split_kv", "lean"]


def _shape(workload: Workload) -> dict[str, int]:
    H = param(workload, "H")
    return {
        "B": param(workload, "B", 1),
        "Hq": H,
        "Hkv": param(workload, "Hkv", H),
        "Skv": param(workload, "Skv"),
        "D": param(workload, "D"),
    }


def _passes(D: int) -> PassInfo:
    return PassInfo(
        passes=1,
        buffer_bytes=float((64 + 2 * 128) * D * 2),
        buffer_formula="(64 + 2 Bn) * D * bytes per CTA",
        reason="online softmax per split; splits merged by log-sum-exp",
    )


@register_dataflow("split_kv")
def split_kv(workload: Workload, arch: Architecture, knobs: Mapping[str, object]) -> Plan:
    """Flash-decoding: split the K/V range over CTAs when heads alone cannot fill the GPU."""
    check_knobs(knobs, ("splits",), "split_kv")
    model = model_for(arch)
    s = _shape(workload)
    ensure(
        param(workload, "Sq", 1) <= 64,
        "split_kv is a decode dataflow",
        "workload.params.Sq",
        "<= 64 query tokens",
        workload.params.get("Sq"),
    )
    plan = fa2_decode_plan(model, Sq=1, **s)
    splits = knobs.get("splits")
    if splits is not None:
        ensure(
            isinstance(splits, int) and splits >= 1, "bad knob", "knobs.splits", "int >= 1", splits
        )
        import archsim.gpu.decode as dec  # explicit override of the heuristic

        orig = dec.num_splits_heuristic
        dec.num_splits_heuristic = lambda *a, **k: int(splits)  # type: ignore[assignment]
        try:
            costs = decode_costs(model, family="flash2", dtype=dtype_of(workload), **s)
        finally:
            dec.num_splits_heuristic = orig  # type: ignore[assignment]
        plan = {**plan, "splits": int(splits)}
    else:
        costs = decode_costs(model, family="flash2", dtype=dtype_of(workload), **s)
    swapped = bool(plan["swapped"])
    notes = f"split_kv: {plan['splits']} splits (FA2 heuristic), GQA rows swapped={swapped}"
    return gpu_plan(
        "split_kv",
        workload,
        arch,
        costs,
        model,
        passes=_passes(s["D"]),
        notes=notes,
        extra_meta={"splits": plan["splits"]},
    )


@register_dataflow("lean")
def lean(workload: Workload, arch: Architecture, knobs: Mapping[str, object]) -> Plan:
    """Stream-K decode: equal K/V work per CTA across head boundaries, one wave."""
    check_knobs(knobs, (), "lean")
    model = model_for(arch)
    s = _shape(workload)
    costs = lean_decode_costs(model, dtype=dtype_of(workload), **s)
    return gpu_plan(
        "lean",
        workload,
        arch,
        costs,
        model,
        passes=_passes(s["D"]),
        notes="lean: stream-K over (head, K/V block) iterations + combine",
    )
