"""A heuristic single-Einsum mapping that fits the buffer (used by ``unfused`` and ``greedy``).

Spread the output ranks over the unit's PE mesh, keep the reduced ranks whole inside the
on-chip buffer (so each output tile is written once), then grow the output tile by doubling
until half the buffer is full (the other half holds the next tile). Remaining iterations go
to DRAM-level loops, output ranks outside, reduced ranks inside. At the buffer level too the
reduced ranks are innermost: each PE accumulates its output over the whole reduction before
it writes it (reduction-outermost would send every partial sum through the buffer).
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Literal

from mappings._mapping import FusionGroup, LevelMapping
from mappings._reuse import footprints
from mappings._tensors import group_ranks, group_tensors

if TYPE_CHECKING:
    from archsim import Architecture, ComputeUnit
    from workloads import Workload

__all__ = ["fit_group", "fit_one", "pick_units", "unit_mesh"]


def unit_mesh(unit: ComputeUnit) -> tuple[int, int]:
    """(x, y) PE mesh of a unit (``instances x 1`` without a mesh)."""
    if unit.mesh is not None:
        return int(unit.mesh[0]), int(unit.mesh[1])
    return int(unit.instances), 1


def pick_units(arch: Architecture) -> tuple[ComputeUnit, ComputeUnit]:
    """(matrix unit, vector unit): the largest 2D mesh and the other (or the same) unit."""
    units = list(arch.compute)
    big = max(
        units, key=lambda u: unit_mesh(u)[0] * unit_mesh(u)[1] * (2 if unit_mesh(u)[1] > 1 else 1)
    )
    rest = [u for u in units if u is not big]
    small = max(rest, key=lambda u: unit_mesh(u)[0] * unit_mesh(u)[1]) if rest else big
    return big, small


def missing_kinds(workload: Workload, einsum: str, unit: ComputeUnit) -> list[str]:
    """The op kinds ``einsum`` counts that ``unit`` has no kind or alias for."""
    from mappings._counts import cached_count
    from mappings._lower import unit_kind
    from mappings._tensors import count_ops

    ec = next((x for x in cached_count(workload.cascade).einsums if x.name == einsum), None)
    if ec is None:
        return []
    return [k for k in count_ops(ec) if unit_kind(k, unit.ops_per_cycle) is None]


def runs_on(workload: Workload, einsum: str, unit: ComputeUnit) -> bool:
    """Whether ``unit`` has every op kind ``einsum`` counts (aliases included)."""
    return not missing_kinds(workload, einsum, unit)


def fit_group(
    workload: Workload, arch: Architecture, einsum: str, unit: ComputeUnit, *, fill: float = 0.5
) -> FusionGroup:
    """A two-level (DRAM, first on-chip level) mapping of one Einsum on ``unit``: the fastest,
    by the analytic estimate of its lowered phase, of :func:`fit_one` over the choices of
    output ranks spread over the mesh (the two largest, or any ordered pair of them).

    Which pair is best depends on the operands' reuse through the buffer: spreading the
    ranks an operand does not have over the mesh multicasts it to the PEs, spreading its own
    ranks makes the PEs read distinct elements (a score tile of FLAT on a 256 x 256 array
    is fastest with the query rows over one axis and the keys over the other).

    Parameters
    ----------
    fill
        Fraction of the on-chip level one tile may use (0.5 leaves room for double buffering).
    """
    import itertools

    from archsim import TileProgram
    from archsim._estimate import estimate_cycles
    from mappings._lower import lower_group

    e = next(x for x in workload.cascade.einsums if x.name == einsum)
    base = FusionGroup(
        einsums=(einsum,), levels=(LevelMapping(level=arch.levels[0].name),), compute=unit.name
    )
    sizes = group_ranks(workload, base)
    outs = [r for r in workload.cascade.tensors[e.name].ranks if sizes.get(r, 1) > 1]
    best: tuple[float, FusionGroup] | None = None
    for pair in (None, *itertools.permutations(outs, 2)):
        g = fit_one(workload, arch, einsum, unit, fill=fill, spread=pair)
        phase = lower_group(workload, g, arch, einsum)
        cycles = estimate_cycles(TileProgram("fit", (phase,), clock_hz=arch.clock.core_hz), arch)
        if best is None or cycles < best[0]:
            best = (cycles, g)
    assert best is not None
    return best[1]


def fit_one(
    workload: Workload,
    arch: Architecture,
    einsum: str,
    unit: ComputeUnit,
    *,
    fill: float = 0.5,
    spread: tuple[str, ...] | None = None,
) -> FusionGroup:
    """A two-level (DRAM, first on-chip level) mapping of one Einsum on ``unit`` (module doc).

    Parameters
    ----------
    fill
        Fraction of the on-chip level one tile may use (0.5 leaves room for double buffering).
    spread
        Output ranks to spread over the mesh axes, largest axis first (None: the largest
        output ranks).
    """
    e = next(x for x in workload.cascade.einsums if x.name == einsum)
    base = FusionGroup(
        einsums=(einsum,), levels=(LevelMapping(level=arch.levels[0].name),), compute=unit.name
    )
    sizes = group_ranks(workload, base)
    out_ranks = [r for r in workload.cascade.tensors[e.name].ranks if r in sizes]
    red = [r for r in e.ranks if r not in out_ranks]
    mx, my = unit_mesh(unit)
    by_size = sorted(out_ranks, key=lambda r: (-sizes[r], -out_ranks.index(r)))
    spatial: dict[str, int] = {}
    axis: dict[str, Literal["x", "y"]] = {}
    free = [r for r in by_size if sizes[r] > 1]
    if spread is not None:
        free = [r for r in spread if r in free] + [r for r in free if r not in spread]
    mesh: tuple[tuple[Literal["x", "y"], int], ...] = (("x", mx), ("y", my))
    for ax, pes in sorted(mesh, key=lambda a: -a[1]):
        if pes > 1 and free:
            r = free.pop(0)
            spatial[r], axis[r] = min(sizes[r], pes), ax
    glb: dict[str, int] = {r: sizes[r] for r in red}
    for r in out_ranks:
        glb.setdefault(r, 1)
    level = arch.levels[1] if len(arch.levels) > 1 else arch.levels[0]
    cap = (level.capacity_bytes or float("inf")) * fill

    def group_for(g: dict[str, int]) -> FusionGroup:
        top = {r: math.ceil(sizes[r] / (g.get(r, 1) * spatial.get(r, 1))) for r in sizes}
        order = tuple(out_ranks) + tuple(red)
        return FusionGroup(
            einsums=(einsum,),
            compute=unit.name,
            levels=(
                LevelMapping(level=arch.levels[0].name, temporal=top, order=order),
                LevelMapping(
                    level=level.name,
                    temporal={r: f for r, f in g.items() if f > 1},
                    order=tuple(out_ranks) + tuple(red),
                    spatial=spatial,
                    spatial_axis=axis,
                ),
            ),
        )

    tensors = group_tensors(workload, base)

    def need(g: dict[str, int]) -> float:
        return sum(footprints(group_for(g), tensors, sizes).get(1, {}).values())

    while need(glb) > cap and any(glb[r] > 1 for r in red):  # shrink the reduction first
        r = max(red, key=lambda x: glb[x])
        glb[r] = math.ceil(glb[r] / 2)
    grew = True
    while grew:
        grew = False
        for r in sorted(out_ranks, key=lambda x: glb[x] * spatial.get(x, 1)):
            room = math.ceil(sizes[r] / spatial.get(r, 1))
            if glb[r] >= room:
                continue
            trial = dict(glb)
            trial[r] = min(room, glb[r] * 2)
            if need(trial) <= cap:
                glb, grew = trial, True
                break
    return group_for(glb)
