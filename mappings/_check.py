"""Validity checks of a mapping against its workload and architecture.

:func:`check_mapping` raises :class:`archsim.errors.MappingError` with a path such as
``groups[0].levels[1].temporal.m`` and an expected-vs-got message for: unknown Einsums,
levels or tensors; factors that do not cover a rank (or overshoot it by a whole outer
iteration); a spatial factor beyond the fan-out of the level/array below; a tile that
overflows a buffer (by how many bytes); a tensor kept where it cannot live (an on-chip
intermediate with no on-chip level, a DRAM tensor bypassing DRAM). A GPU's grid (the
spatial factors of its outermost level) may exceed the SM count: it runs in waves
(:func:`runs_in_waves`).
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

from archsim.errors import MappingError
from mappings._mapping import FusionGroup, Mapping
from mappings._reuse import footprints
from mappings._tensors import group_ranks, group_tensors

if TYPE_CHECKING:
    from archsim import Architecture
    from workloads import Workload

__all__ = ["check_mapping", "fanout", "runs_in_waves"]


def fanout(arch: Architecture, group: FusionGroup, i: int) -> tuple[int, int]:
    """(x, y) fan-out below level ``i`` of ``group``: child level instances or compute PEs."""
    if i + 1 < len(group.levels):
        child = arch.level(group.levels[i + 1].level)
        parent = arch.level(group.levels[i].level)
        if child.mesh is not None and parent.instances == 1:
            return int(child.mesh[0]), int(child.mesh[1])
        return max(1, int(child.instances // max(parent.instances, 1))), 1
    unit = compute_unit(arch, group)
    if unit.mesh is not None:
        return int(unit.mesh[0]), int(unit.mesh[1])
    return int(unit.instances), 1


def compute_unit(arch: Architecture, group: FusionGroup):  # noqa: ANN201 (archsim.ComputeUnit)
    """The compute unit running ``group`` (its ``compute`` or the architecture's first)."""
    if group.compute is None:
        return arch.compute[0]
    names = [u.name for u in arch.compute]
    if group.compute not in names:
        raise MappingError(
            "unknown compute unit", path="compute", expected=f"one of {names}", got=group.compute
        )
    return arch.unit(group.compute)


def _check_op_kinds(arch: Architecture, workload: Workload, group: FusionGroup, path: str) -> None:
    """Every Einsum runs on a unit that has its op kinds, where some unit of the
    architecture has them."""
    from mappings._fit import missing_kinds
    from mappings._lower import unit_kind

    main = compute_unit(arch, group)
    for e in group.einsums:
        unit = arch.unit(group.units[e]) if e in group.units else main
        for kind in missing_kinds(workload, e, unit):
            able = [u.name for u in arch.compute if unit_kind(kind, u.ops_per_cycle)]
            if able:
                raise MappingError(
                    f"compute unit {unit.name!r} cannot run the {kind!r} ops of {e}",
                    path=f"{path}.units.{e}",
                    expected=f"one of {able}",
                    got=unit.name,
                )


def _check_units(arch: Architecture, group: FusionGroup, path: str) -> None:
    names = [u.name for u in arch.compute]
    for e, unit in group.units.items():
        if e not in group.einsums:
            raise MappingError(
                "unit bound to an Einsum outside the group",
                path=f"{path}.units.{e}",
                expected=f"one of {list(group.einsums)}",
                got=e,
            )
        if unit not in names:
            raise MappingError(
                "unknown compute unit",
                path=f"{path}.units.{e}",
                expected=f"one of {names}",
                got=unit,
            )


def _check_levels(arch: Architecture, group: FusionGroup, path: str) -> None:
    names = [lv.name for lv in arch.levels]
    last = -1
    for i, lm in enumerate(group.levels):
        if lm.level not in names:
            raise MappingError(
                "unknown storage level",
                path=f"{path}.levels[{i}].level",
                expected=f"one of {names}",
                got=lm.level,
            )
        idx = names.index(lm.level)
        if idx <= last:
            raise MappingError(
                "levels must be listed outermost first, each once",
                path=f"{path}.levels[{i}].level",
                expected=f"a level inside {names[last]}",
                got=lm.level,
            )
        last = idx
    if not group.levels or group.levels[0].level != names[0]:
        raise MappingError(
            "the first level of a group must be the outermost (DRAM) level",
            path=f"{path}.levels[0]",
            expected=names[0],
            got=group.levels[0].level if group.levels else None,
        )


def _check_factors(group: FusionGroup, sizes: dict[str, int], path: str) -> None:
    ranks = set(sizes)
    for i, lm in enumerate(group.levels):
        for kind in ("temporal", "spatial"):
            for r in getattr(lm, kind):
                if r not in ranks:
                    raise MappingError(
                        "factor for a rank the group does not iterate",
                        path=f"{path}.levels[{i}].{kind}.{r}",
                        expected=f"one of {sorted(ranks)}",
                        got=r,
                    )
    for r, size in sizes.items():
        fs = group.factors(r)
        total = math.prod(fs)
        if total < size:
            raise MappingError(
                f"factors of rank {r!r} do not cover it",
                path=f"{path}.factors.{r}",
                expected=f"product >= {size}",
                got=f"{' x '.join(map(str, fs))} = {total}",
            )
        outer = next((k for k, f in enumerate(fs) if f > 1), None)
        if outer is not None and (fs[outer] - 1) * (total // fs[outer]) >= size:
            raise MappingError(
                f"factors of rank {r!r} overshoot it by a whole outer iteration",
                path=f"{path}.factors.{r}",
                expected=f"outermost factor ceil({size}/{total // fs[outer]})"
                f" = {math.ceil(size / (total // fs[outer]))}",
                got=fs[outer],
            )


def runs_in_waves(arch: Architecture, group: FusionGroup, i: int) -> bool:
    """Whether the spatial factors of level ``i`` may exceed its fan-out and run in waves:
    the outermost level of a GPU, whose block scheduler hands a grid of any size to its SMs
    as they free up (``ceil(grid / slots)`` waves, the last one partial)."""
    return arch.kind == "gpu" and i == 0


def _check_spatial(arch: Architecture, group: FusionGroup, path: str) -> None:
    for i, lm in enumerate(group.levels):
        if not lm.spatial or runs_in_waves(arch, group, i):
            continue
        fx, fy = fanout(arch, group, i)
        used = {"x": 1, "y": 1}
        for r, f in lm.spatial.items():
            used[lm.spatial_axis.get(r, "x")] *= int(f)
        for ax, cap in (("x", fx), ("y", fy)):
            if used[ax] > cap:
                raise MappingError(
                    "spatial factor beyond the fan-out",
                    path=f"{path}.levels[{i}].spatial ({ax} axis)",
                    expected=f"<= {cap}",
                    got=used[ax],
                )


def _check_storage(arch: Architecture, workload: Workload, group: FusionGroup, path: str) -> None:
    tensors = group_tensors(workload, group)
    names = {t.name for t in tensors}
    for i, lm in enumerate(group.levels):
        for t in (*(lm.keep or ()), *lm.bypass):
            if t not in names:
                raise MappingError(
                    "tensor not used by this group",
                    path=f"{path}.levels[{i}].keep",
                    expected=sorted(names),
                    got=t,
                )
        # on a PIM architecture the DRAM level's keep names what the units hold in their
        # banks (mappings._pim_lower); the rest crosses the channel interface
        pim = arch.kind == "pim"
        if i == 0 and not pim and any(t.in_dram and not lm.keeps(t.name) for t in tensors):
            raise MappingError(
                "a tensor that lives in DRAM cannot bypass the DRAM level",
                path=f"{path}.levels[0].bypass",
                got=list(lm.bypass),
            )
    for use in tensors:
        if not use.in_dram and not any(lm.keeps(use.name) for lm in group.levels[1:]):
            raise MappingError(
                f"on-chip intermediate {use.name!r} has no on-chip level to live in",
                path=f"{path}.on_chip",
                got=use.name,
            )
    sizes = group_ranks(workload, group)
    for i, per in footprints(group, tensors, sizes).items():
        level = arch.level(group.levels[i].level)
        need = sum(per.values())
        if level.capacity_bytes is not None and need > level.capacity_bytes:
            detail = ", ".join(f"{k} {v:,.0f} B" for k, v in per.items())
            raise MappingError(
                f"tile overflows {level.name} by {need - level.capacity_bytes:,.0f} bytes "
                f"({detail})",
                path=f"{path}.levels[{i}]",
                expected=f"<= {level.capacity_bytes:,.0f} B",
                got=f"{need:,.0f} B",
            )


def check_mapping(
    workload: Workload,
    mapping: Mapping,
    arch: Architecture,
    *,
    partial: bool = False,
    storage: bool = True,
) -> None:
    """Raise :class:`MappingError` if ``mapping`` is not valid for ``workload`` on ``arch``.

    ``partial``: the mapping covers only some Einsums (a mapper's candidate for one segment);
    skip the check that every Einsum is mapped. ``storage=False`` skips the per-level
    capacity check (a GPU kernel mapping checks its CTA's SMEM and registers itself).

    Raises
    ------
    MappingError
        The first problem found, with its path and expected-vs-got.
    """
    from mappings._splits import apply_splits

    workload = apply_splits(workload, mapping.splits)
    einsums = [e.name for e in workload.cascade.einsums]
    readers = {e.name: {r.name for r in e.inputs} for e in workload.cascade.einsums}
    for g, group in enumerate(mapping.groups):
        for t in group.on_chip:
            outside = [
                e
                for h, other in enumerate(mapping.groups)
                if h != g
                for e in other.einsums
                if t in readers.get(e, ())
            ]
            if outside:
                raise MappingError(
                    f"on-chip intermediate {t!r} is read by another group",
                    path=f"groups[{g}].on_chip",
                    expected="consumers in the same fusion group",
                    got=outside,
                )
    seen: set[str] = set()
    for g, group in enumerate(mapping.groups):
        path = f"groups[{g}]"
        for e in group.einsums:
            if e not in einsums:
                raise MappingError(
                    "unknown Einsum", path=f"{path}.einsums", expected=f"one of {einsums}", got=e
                )
            seen.add(e)
        compute_unit(arch, group)
        _check_units(arch, group, path)
        _check_op_kinds(arch, workload, group, path)
        _check_levels(arch, group, path)
        _check_factors(group, group_ranks(workload, group), path)
        _check_spatial(arch, group, path)
        if storage:
            _check_storage(arch, workload, group, path)
    missing = [e for e in einsums if e not in seen]
    if missing and not partial:
        raise MappingError(
            "Einsums not mapped by any group",
            path="groups",
            expected="every Einsum in one group",
            got=missing,
        )
