"""Lowering: (workload, mapping, architecture) -> the engine's tile program.

One :class:`archsim.Phase` per fusion group. Its trips are the iterations of the group's
outermost (DRAM-level) temporal loops; its work items are the DRAM-level spatial fan-out
(over instances of the next level, e.g. GPU SMs), run ``slots`` at a time. Each trip loads
its tiles, computes, and stores; the bytes of every boundary come from the reuse analysis of
:mod:`mappings._reuse` and are spread evenly over the trips (rounded up to whole bytes, so a
lowered program never moves less than the analysis says).

NOTE: spreading a boundary's bytes evenly over trips is exact for the totals (up to the
rounding) and for steady-state bandwidth; it smooths the burst where a stationary tensor is
re-fetched only every k-th trip, which the event engine would otherwise see as a stall.

Compute-side accesses of the innermost kept level (operand reads by the PEs) are not
emitted as transfers; they are reported in ``TileProgram.meta["compute_side_bytes"]``.
An array that a mapping only partly fills (spatial factors below its mesh) takes as long
as a full one: the real op counts are emitted with ``Compute.occupancy`` = the used fraction,
so time is ``ops / (rate x occupancy)`` while energy is charged on the real ops only; the
real op counts are also kept in ``meta["ops"]``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping as AbcMapping
from typing import TYPE_CHECKING

from mappings._check import check_mapping, compute_unit, fanout
from mappings._mapping import FusionGroup, Mapping
from mappings._reuse import group_moves
from mappings._tensors import group_ops, group_tensors

if TYPE_CHECKING:
    from archsim import Architecture, Phase, TileProgram
    from workloads import Workload

__all__ = ["lower", "lower_group", "spatial_fraction"]


def spatial_fraction(arch: Architecture, group: FusionGroup) -> float:
    """Fraction of the compute unit's PEs the group's innermost spatial factors use."""
    i = len(group.levels) - 1
    fx, fy = fanout(arch, group, i)
    used = 1
    for f in group.levels[i].spatial.values():
        used *= int(f)
    return min(1.0, used / float(fx * fy)) if fx * fy > 0 else 1.0


def unit_ops(ops: AbcMapping[str, float], unit_ops_per_cycle: AbcMapping[str, float]) -> dict:
    """Map workload op kinds onto a unit's (``mac`` -> ``mac_bf16``, ``sub`` -> ``add``, ...)."""
    out: dict[str, float] = {}
    have = list(unit_ops_per_cycle)
    alias = {"sub": "add", "mul": "mac", "recip": "div", "div": "recip", "cmp": "max"}
    for k, v in ops.items():
        if v <= 0:
            continue
        key = k
        if key not in have:
            base = k.split("_")[0]
            same = [h for h in have if h.split("_")[0] == base]
            other = [h for h in have if h.split("_")[0] == alias.get(base, "")]
            key = (
                base
                if base in have
                else (same or other or [h for h in have if h.startswith("add")] or have)[0]
            )
        out[key] = out.get(key, 0.0) + float(v)
    return out


def lower_group(workload: Workload, group: FusionGroup, arch: Architecture, name: str) -> Phase:
    """Lower one (already checked) fusion group to a Phase."""
    from archsim import Compute, Phase, Step, Transfer

    tensors = group_tensors(workload, group)
    top = group.levels[0]
    trips = math.prod(int(f) for f in top.temporal.values()) or 1
    items = math.prod(int(f) for f in top.spatial.values()) or 1
    per = float(trips * items)
    loads, stores = [], []
    for mv in group_moves(group, tensors):
        if mv.dst is None or mv.src is None:
            continue
        b = int(math.ceil(mv.dst_bytes / per))
        if b <= 0:
            continue
        src, dst = group.levels[mv.src].level, group.levels[mv.dst].level
        t = Transfer(tensor=mv.tensor, bytes=b, src=src, dst=dst)
        (stores if mv.upward else loads).append(t)
    unit = compute_unit(arch, group)
    frac = spatial_fraction(arch, group)
    ops = unit_ops(group_ops(workload, group), unit.ops_per_cycle)
    comp = Compute(unit=unit.name, ops={k: v / per for k, v in ops.items()}, occupancy=frac)
    staging = group.levels[1].level if len(group.levels) > 1 else None
    buf = 0
    if staging is not None:
        from mappings._reuse import footprints

        sizes = workload.sizes
        buf = int(sum(footprints(group, tensors, sizes).get(1, {}).values()))
    slots = 1
    if len(group.levels) > 1:
        slots = max(1, min(items, int(arch.level(staging).instances)))
    body = Step(loads=tuple(loads), compute=(comp,), stores=tuple(stores), buffer_bytes=buf)
    depth = 2
    if staging is not None and buf > 0:
        cap = arch.level(staging).capacity_bytes
        if cap is not None and 2 * buf > cap:
            depth = 1  # no room for a second tile: loads and compute serialize
    return Phase(
        name=name,
        body=body,
        trips=trips,
        work_items=items,
        slots=slots,
        depth=depth,
        staging_level=staging,
    )


def lower(
    workload: Workload, mapping: Mapping, arch: Architecture, *, check: bool = True
) -> TileProgram:
    """Lower ``mapping`` of ``workload`` on ``arch`` to a tile program.

    Parameters
    ----------
    workload
        The workload (cascade + resolved shapes).
    mapping
        Its mapping; every Einsum must be in one fusion group.
    arch
        The architecture.
    check
        Run :func:`check_mapping` first (default True).

    Returns
    -------
    archsim.TileProgram
        One phase per fusion group, in order; ``meta`` carries the analytic bytes per level
        (``bytes_by_level``), compute-side bytes and real op counts.

    Raises
    ------
    MappingError
        If the mapping is invalid (see :func:`check_mapping`).
    """
    from archsim import TileProgram

    if check:
        check_mapping(workload, mapping, arch)
    phases = []
    by_level: dict[str, float] = {}
    side: dict[str, float] = {}
    ops_total: dict[str, float] = {}
    for g, group in enumerate(mapping.groups):
        phases.append(lower_group(workload, group, arch, f"g{g}:" + "+".join(group.einsums)))
        tensors = group_tensors(workload, group)
        for mv in group_moves(group, tensors):
            ends = ((mv.src, mv.src_bytes, mv.dst), (mv.dst, mv.dst_bytes, mv.src))
            for idx, nbytes, other in ends:
                if idx is None:
                    continue
                lvl = group.levels[idx].level
                bucket = side if other is None else by_level
                bucket[lvl] = bucket.get(lvl, 0.0) + nbytes
        for k, v in group_ops(workload, group).items():
            ops_total[k] = ops_total.get(k, 0.0) + v
    meta = {
        "bytes_by_level": by_level,
        "compute_side_bytes": side,
        "ops": ops_total,
        "mapping": mapping.name,
    }
    return TileProgram(
        name=mapping.name or workload.name,
        phases=tuple(phases),
        clock_hz=arch.clock.core_hz,
        meta=meta,
    )
