"""The default point evaluator: one design point -> one row of result columns.

It builds the architecture (``archsim.load_arch`` + ``Architecture.with_updates``), runs
``mappings.simulate_workload`` with the point's workload, params, dataflow, knobs and engine
(or first searches a mapping with a named mapper) and flattens the ``SimulationReport``.
Architectures and workload FLOP counts are memoized per process, which is where most of
the per-point overhead of a sweep would otherwise go.
"""

from __future__ import annotations

import functools
import json
import math
from collections.abc import Mapping
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # pragma: no cover
    from archsim import Architecture

from dse._points import DesignPoint

__all__ = ["evaluate_point", "build_arch", "report_columns"]


@functools.lru_cache(maxsize=8)
def _base_arch(name_or_path: str) -> Architecture:
    from archsim import load_arch

    return load_arch(name_or_path)


@functools.lru_cache(maxsize=256)
def _arch_cached(name_or_path: str, updates_json: str) -> Architecture:
    base = _base_arch(name_or_path)
    updates = json.loads(updates_json)
    return base.with_updates(updates) if updates else base


def build_arch(point: DesignPoint) -> Architecture:
    """The point's architecture (base + updates), memoized per process."""
    updates = json.dumps(point.key()["arch_updates"], sort_keys=True)
    return _arch_cached(point.arch, updates)


@functools.lru_cache(maxsize=4096)
def _flops(workload: str, params_json: str) -> float:
    """FLOPs of a library workload or cascade file with these params (memoized)."""
    from mappings._api import resolve_workload

    built = resolve_workload(workload, json.loads(params_json))
    return float(built.counts().flops)  # type: ignore[attr-defined]


def _finite(value: object) -> float:
    try:
        out = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return math.nan
    return out


def report_columns(report: object, arch: Architecture) -> dict[str, object]:
    """Flatten a ``mappings.SimulationReport`` into store columns (see ``dse.load``)."""
    result = report.result  # type: ignore[attr-defined]
    summary = report.to_dict()  # type: ignore[attr-defined]
    seconds = _finite(result.seconds)
    energy = _finite(result.energy_j)
    area = _finite(getattr(result, "area_mm2", math.nan))
    if not area or math.isnan(area):
        area = _finite(arch.area_mm2)
    if not area:  # the spec models no area (GPU presets): unknown, not zero
        area = math.nan
    row: dict[str, object] = {
        "cycles": int(result.cycles),
        "seconds": seconds,
        "energy_j": energy,
        "edp_js": energy * seconds,
        "area_mm2": area,
        "dram_bytes": _finite(result.dram_bytes),
        "passes": summary.get("passes"),
        "dataflow_used": str(summary.get("dataflow", "")),
        "mapping": _mapping_summary(report),
    }
    if isinstance(row["passes"], Mapping):
        row["passes"] = row["passes"].get("passes")
    for level, nbytes in dict(result.bytes_by_level).items():
        row[f"bytes.{level}"] = _finite(nbytes)
    for unit, busy in dict(result.utilization).items():
        row[f"util.{unit}"] = _finite(busy)
    for key, joules in dict(result.energy_breakdown_j).items():
        row[f"energy.{key}"] = _finite(joules)
    return row


def _mapping_summary(report: object) -> str:
    plan = getattr(report, "plan", None)
    if plan is None:
        return ""
    parts = []
    passes = getattr(plan, "passes", None)
    if passes is not None:
        parts.append(f"{passes.passes}-pass, buffer {passes.buffer_bytes:.3g} B")
    notes = str(getattr(plan, "notes", "") or "")
    if notes:
        parts.append(notes)
    program = getattr(plan, "program", None)
    if program is not None and not parts:
        parts.append(f"{len(program.phases)} phases")
    return "; ".join(parts)[:300]


def evaluate_point(point: DesignPoint) -> dict[str, object]:
    """Simulate one design point with the real stack.

    Parameters
    ----------
    point
        The inputs.

    Returns
    -------
    dict
        Result columns (``cycles``, ``seconds``, ``energy_j``, ``edp_js``, ``area_mm2``,
        ``dram_bytes``, ``flops``, ``bytes.<level>``, ``util.<unit>``, ...).

    Raises
    ------
    ArchsimError
        The point is invalid (bad arch update, shape, infeasible mapping); the runner
        records it as an ``error`` row.
    """
    from mappings import simulate_workload

    arch = build_arch(point)
    params = dict(point.params)
    ranked = _search_mapping(point, arch, params) if point.mapper else None
    mapping = ranked.mapping if ranked is not None else None  # type: ignore[attr-defined]
    report = simulate_workload(
        arch,
        point.workload,
        params=params,
        dataflow=point.dataflow,
        knobs=dict(point.knobs),
        mapping=mapping,
        engine=point.engine,  # type: ignore[arg-type]
    )
    row = report_columns(report, arch)
    if ranked is not None:
        row["mapping"] = ranked.describe()  # type: ignore[attr-defined]
    row["flops"] = _flops(point.workload, json.dumps(point.key()["params"], sort_keys=True))
    return row


def _search_mapping(point: DesignPoint, arch: Architecture, params: Mapping[str, object]) -> object:
    """Run the point's mapper (``mapper: {name, objective, budget, seed, ...}``) and return
    its best ``RankedMapping``. Defaults for a sweep: ``top=1`` and ``rescore=0`` (the
    point's own engine evaluates the winner; no extra event-driven re-scoring)."""
    from mappings import get_mapper
    from mappings._api import resolve_workload

    settings = dict(point.mapper)
    mapper = get_mapper(str(settings.pop("name")))
    settings.setdefault("top", 1)
    settings.setdefault("rescore", 0)
    workload = resolve_workload(point.workload, params)
    return mapper(workload, arch, **settings)[0]
