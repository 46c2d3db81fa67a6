"""The ``gemm`` dataflow on spatial (systolic) arrays: output / weight / input stationary.

Timing follows SCALE-Sim (Samajdar et al., "SCALE-Sim: Systolic CNN Accelerator
Simulator", arXiv:1811.02883, 2018; "A Systematic Methodology for Characterizing Scalability
of DNN Accelerators using SCALE-Sim", ISPASS 2020, Eq. 1; scale-sim-v2's
``scalesim/compute/systolic_compute_{os,ws,is}.py``): an ``Sr x Sc`` array maps an operand
matrix of ``Sr' x Sc'`` onto its rows and columns and streams the third dimension ``T``
through it, in ``ceil(Sr'/Sr) * ceil(Sc'/Sc)`` folds of

* weight / input stationary: ``2*Sr + Sc + T - 2`` cycles: ``Sr`` to load the stationary
  operand, then ``Sr + Sc + T - 2`` to stream ``T`` rows through the skewed array and drain;
* output stationary: ``Sr + Sc + T - 2`` cycles: nothing is preloaded (both operands stream
  in, skewed, for ``T`` cycles; the outputs leave over ``Sr + Sc - 2`` more). SCALE-Sim's OS
  demand matrices per fold are ``T + Sc - 1`` (inputs) / ``T + Sr - 1`` (weights) /
  ``T - 1 + Sr`` (outputs) rows, each skewed by its width, so ``T + Sr + Sc - 2`` rows.

==========  ===========  ===========  =====
stationary  rows (Sr')   cols (Sc')   T
==========  ===========  ===========  =====
output      M            N            K
weight      K            N            M
input       K            M            N
==========  ===========  ===========  =====

SCALE-Sim 3.0.0 reports one cycle less ("Total Cycles" is the index of the last cycle,
``folds * fold_cycles - 1``): ``tests/mappings/data/scalesim_gemm.csv`` holds its figures.

Each fold is one trip of the phase. The array is occupied for the whole fold, so the
fold's compute is issued as ``fold_cycles * macs_per_cycle`` MAC slots (the fill/drain
bubbles included); the real MAC count is kept in ``meta["macs"]``. DRAM traffic comes from a
loop-nest :class:`~mappings._mapping.Mapping` (DRAM -> on-chip buffer tiles chosen to fit
half the buffer, so two tiles can be in flight) through the reuse analysis.
"""

from __future__ import annotations

import math
from collections.abc import Mapping as AbcMapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from archsim.errors import MappingError
from mappings._lower import unit_ops
from mappings._mapping import FusionGroup, LevelMapping, Mapping
from mappings._registry import PassInfo, Plan, register_dataflow
from mappings._reuse import group_moves
from mappings._roles import is_contraction
from mappings._tensors import group_ops, group_tensors

if TYPE_CHECKING:
    from archsim import Architecture
    from archsim.spec import ComputeUnit
    from workloads import Workload

__all__ = [
    "GemmRoles",
    "gemm_roles",
    "systolic_cycles",
    "gemm_plan",
    "gemm_mapping_plan",
    "is_gemm_mapping",
]


STATIONARY = ("output", "weight", "input")
"""What stays in the array's PEs: the rows x columns each fold holds (module doc's table)."""


@dataclass(frozen=True)
class GemmRoles:
    """Which ranks/tensors of a single-Einsum contraction play M, N, K, batch, A, B, C."""

    einsum: str
    m: str
    n: str
    k: str
    batch: tuple[str, ...]
    a: str
    b: str
    c: str


def gemm_roles(workload: Workload, einsum: str | None = None) -> GemmRoles:
    """Find the contraction ``C[.., m, n] = sum_k A[.., m, k] * B[.., k, n]`` in the workload.

    Raises
    ------
    MappingError
        If the (chosen) Einsum is not a two-input contraction with one reduced rank.
    """
    cands = [e for e in workload.cascade.einsums if is_contraction(e)]
    if einsum is not None:
        cands = [e for e in cands if e.name == einsum]
    if not cands:
        raise MappingError(
            "gemm dataflow needs a two-input contraction",
            path="workload",
            expected="an Einsum like C[m,n] = A[m,k]*B[k,n]",
            got=[e.text or e.name for e in workload.cascade.einsums],
        )
    e = max(cands, key=lambda x: math.prod(workload.sizes.get(r, 1) for r in x.ranks))
    tens = workload.cascade.tensors
    a, b = e.inputs[0].name, e.inputs[1].name
    ra, rb = set(tens[a].ranks), set(tens[b].ranks)
    out = list(tens[e.output.name].ranks)
    k = max(e.reduce_ranks, key=lambda r: workload.sizes.get(r, 1))
    m_c = [r for r in out if r in ra and r not in rb]
    n_c = [r for r in out if r in rb and r not in ra]
    batch = tuple(r for r in e.ranks if r not in (m_c[-1:] + n_c[-1:] + [k]))
    if not m_c or not n_c:
        raise MappingError(
            "gemm dataflow: cannot tell the M and N ranks apart",
            path="workload",
            expected="A and B each with one private output rank",
            got=e.text,
        )
    return GemmRoles(e.name, m_c[-1], n_c[-1], k, batch, a, b, e.output.name)


def systolic_cycles(
    m: int, n: int, k: int, rows: int, cols: int, stationary: str
) -> tuple[int, int]:
    """(folds, cycles per fold) of SCALE-Sim's closed form for one GEMM (module doc):
    ``Sr + Sc + T - 2`` per fold output stationary, ``2*Sr + Sc + T - 2`` otherwise.

    Parameters
    ----------
    m, n, k
        GEMM sizes (C is m x n, reduction k).
    rows, cols
        Array size Sr x Sc (PEs).
    stationary
        ``output``, ``weight`` or ``input``.
    """
    sr_, sc_, t = {"output": (m, n, k), "weight": (k, n, m), "input": (k, m, n)}[stationary]
    folds = math.ceil(sr_ / rows) * math.ceil(sc_ / cols)
    preload = 0 if stationary == "output" else rows  # OS preloads nothing: both stream in
    return folds, preload + rows + cols + t - 2


def _buffer_tiles(
    r: GemmRoles,
    sizes: AbcMapping[str, int],
    rows: int,
    cols: int,
    stationary: str,
    cap_elems: float,
) -> dict[str, int]:
    """Tile extents (m, n, k) held on chip: the largest multiple-of-array tiles in ``cap``."""
    m, n, k = sizes[r.m], sizes[r.n], sizes[r.k]
    unit = {"output": (rows, cols, 1), "weight": (1, cols, rows), "input": (cols, 1, rows)}
    um, un, uk = unit[stationary]
    tm, tn, tk = m, n, k

    def fits() -> bool:
        return tm * tk + tk * tn + tm * tn <= cap_elems

    def traffic(a: int, b: int, c: int) -> float:
        # A re-read per n tile, B per m tile, C written per k tile and re-read between
        return (
            m * k * math.ceil(n / b) + k * n * math.ceil(m / a) + m * n * (2 * math.ceil(k / c) - 1)
        )

    # halve (keeping multiples of the array) the dimension that costs least traffic
    while not fits():
        opts = []
        if tm > um:
            opts.append((max(um, math.ceil(tm / 2 / um) * um), tn, tk))
        if tn > un:
            opts.append((tm, max(un, math.ceil(tn / 2 / un) * un), tk))
        if tk > uk:
            opts.append((tm, tn, max(uk, math.ceil(tk / 2 / uk) * uk)))
        if not opts:
            raise MappingError(
                "gemm tile does not fit the on-chip buffer",
                path="knobs",
                expected=f"<= {cap_elems:.0f} elements",
                got=tm * tk + tk * tn,
            )
        tm, tn, tk = min(opts, key=lambda o: (traffic(*o), -o[0] * o[1] * o[2]))
    return {r.m: min(tm, m), r.n: min(tn, n), r.k: min(tk, k)}


def gemm_mapping(
    workload: Workload,
    arch: Architecture,
    roles: GemmRoles,
    stationary: str,
    unit_name: str,
    rows: int,
    cols: int,
    *,
    depth: int = 2,
    resident: str = "dram",
) -> Mapping:
    """Two-level mapping: DRAM loops over buffer tiles, buffer loops over array folds.

    Named ``gemm-<stationary>`` (``:sram`` appended when the operands are already on chip,
    SCALE-Sim's compute-only setting): :func:`gemm_mapping_plan` runs it back."""
    sizes = workload.sizes
    buf = arch.levels[1]
    bytes_e = workload.cascade.tensors[roles.a].dtype_bits / 8.0
    cap = (buf.capacity_bytes or float("inf")) / 2.0 / bytes_e
    tiles = _buffer_tiles(roles, sizes, rows, cols, stationary, cap)
    sp = {
        "output": {roles.m: rows, roles.n: cols},
        "weight": {roles.k: rows, roles.n: cols},
        "input": {roles.k: rows, roles.m: cols},
    }[stationary]
    top_t: dict[str, int] = {b: int(sizes[b]) for b in roles.batch}
    inner_t: dict[str, int] = {}
    spatial: dict[str, int] = {}
    for rk in (roles.m, roles.n, roles.k):
        s = min(sp.get(rk, 1), tiles[rk])
        spatial[rk] = s
        inner_t[rk] = math.ceil(tiles[rk] / s)
        top_t[rk] = math.ceil(sizes[rk] / (inner_t[rk] * s))
    order_top = (
        [*roles.batch, roles.m, roles.n, roles.k]
        if stationary != "weight"
        else [*roles.batch, roles.n, roles.k, roles.m]
    )
    # the folds (the array's two ranks) outside, the streamed rank inside: a fold's stationary
    # operand is loaded once and the stream passes through it (SCALE-Sim's fold)
    stream = {"output": roles.k, "weight": roles.m, "input": roles.n}[stationary]
    lv0 = LevelMapping(level=arch.levels[0].name, temporal=top_t, order=tuple(order_top))
    lv1 = LevelMapping(
        level=buf.name,
        temporal=inner_t,
        order=(*(r for r in (roles.m, roles.n, roles.k) if r != stream), stream),
        spatial=spatial,
        spatial_axis={k_: ("x" if i == 0 else "y") for i, k_ in enumerate(sp)},
    )
    group = FusionGroup(
        einsums=(roles.einsum,), levels=(lv0, lv1), compute=unit_name, depth=int(depth)
    )
    suffix = ":sram" if resident == "sram" else ""
    return Mapping(groups=(group,), name=f"gemm-{stationary}{suffix}")


def _array(arch: Architecture, unit: str | None) -> tuple[ComputeUnit, int, int]:
    spatial = [u for u in arch.compute if u.mesh is not None]
    if unit is not None:
        u = arch.unit(unit)
    elif spatial:
        u = max(spatial, key=lambda x: x.mesh[0] * x.mesh[1])
    else:
        raise MappingError(
            "gemm dataflow needs a compute unit with a PE mesh",
            path="arch.compute",
            expected="a unit with mesh (rows, cols)",
            got=[x.name for x in arch.compute],
        )
    return u, int(u.mesh[0]), int(u.mesh[1])


@register_dataflow("gemm")
def gemm_plan(workload: Workload, arch: Architecture, knobs: AbcMapping[str, object]) -> Plan:
    """GEMM on a systolic array. Knobs: ``stationary`` (output|weight|input, default output),
    ``unit`` (compute unit name), ``einsum`` (which contraction), ``depth`` (buffer stages),
    ``operands`` (``dram``, default: operands stream from DRAM; ``sram``: already on chip,
    SCALE-Sim's compute-only setting)."""
    if arch.kind == "gpu":
        from mappings._registry import get_dataflow

        return get_dataflow("gpu_gemm")(workload, arch, knobs)
    _known(knobs, {"stationary", "unit", "einsum", "depth", "operands"})
    resident = str(knobs.get("operands", "dram"))
    if resident not in ("dram", "sram"):
        raise MappingError(
            "unknown operand residency", path="knobs.operands", expected="dram|sram", got=resident
        )
    st = str(knobs.get("stationary", "output"))
    if st not in STATIONARY:
        raise MappingError(
            "unknown stationarity", path="knobs.stationary", expected="output|weight|input", got=st
        )
    unit, rows, cols = _array(arch, knobs.get("unit"))  # type: ignore[arg-type]  # knob: a unit name, arch.unit() checks it
    _single_einsum(workload)
    roles = gemm_roles(workload, knobs.get("einsum"))  # type: ignore[arg-type]  # knob: an Einsum name, checked there
    depth = int(knobs.get("depth", 2))  # type: ignore[call-overload]  # knob: user value, int() checks it
    mapping = gemm_mapping(
        workload, arch, roles, st, unit.name, rows, cols, depth=depth, resident=resident
    )
    return _gemm_program(workload, arch, mapping, roles, st, resident)


def _single_einsum(workload: Workload) -> None:
    einsums = workload.cascade.einsums
    if len(einsums) != 1:
        # the systolic closed form times one GEMM; a cascade of several Einsums (SwiGLU, a
        # norm, attention) is another workload: map it with `unfused` (one kernel per Einsum)
        raise MappingError(
            f"gemm dataflow maps a single contraction; cascade {workload.cascade.name!r} has "
            f"{len(einsums)} Einsums",
            path="workload.cascade",
            expected="one Einsum C[m,n] = A[m,k]*B[k,n] (dataflow `unfused` maps several)",
            got=[e.text or e.name for e in einsums],
        )


def is_gemm_mapping(mapping: Mapping) -> bool:
    """Whether ``mapping`` is one :func:`gemm_mapping` writes (its name says so)."""
    st, _, res = mapping.name.removeprefix("gemm-").partition(":")
    return mapping.name.startswith("gemm-") and st in STATIONARY and res in ("", "sram")


def gemm_mapping_plan(workload: Workload, mapping: Mapping, arch: Architecture) -> Plan:
    """The plan of a ``gemm-<stationary>`` mapping (as ``gemm`` writes it), carrying it.

    The array's folds are SCALE-Sim's (module doc), so what the folds are is fixed by the
    stationarity (the name), the unit (``compute``) and the array: the array's spatial
    factors and the buffer level's loop order must be the recipe's. The buffer tiles (how
    each rank's temporal factors split between DRAM and the buffer, and the DRAM loop
    order) and ``depth`` are the mapping's: they set the DRAM traffic.

    Raises
    ------
    MappingError
        The general checks (:func:`mappings._check.check_mapping`); not a single
        contraction; a unit without a PE mesh; spatial factors, the buffer's loop order,
        levels or keep/bypass sets other than the recipe's (path, expected, given).
    """
    from mappings._check import check_mapping

    st, _, res = mapping.name.removeprefix("gemm-").partition(":")
    resident = res or "dram"
    _single_einsum(workload)
    check_mapping(workload, mapping, arch)
    (group,) = mapping.groups
    unit, rows, cols = _array(arch, group.compute)
    roles = gemm_roles(workload, group.einsums[0])
    want = gemm_mapping(
        workload, arch, roles, st, unit.name, rows, cols,
        depth=int(group.depth or 2), resident=resident,
    ).groups[0]  # fmt: skip
    for i, (lm, wl) in enumerate(zip(group.levels, want.levels, strict=False)):
        for field in ("level", "spatial", "spatial_axis", "keep", "bypass"):
            got, exp = getattr(lm, field), getattr(wl, field)
            if field == "spatial":
                got = {r: f for r, f in got.items() if f != 1}
                exp = {r: f for r, f in exp.items() if f != 1}
            if got != exp:
                raise MappingError(
                    f"a {st}-stationary systolic GEMM's folds are SCALE-Sim's: the array's "
                    "mapping is the recipe's (the buffer tiles and depth are free)",
                    path=f"groups[0].levels[{i}].{field}",
                    expected=exp,
                    got=got,
                )
    if len(group.levels) != len(want.levels) or group.levels[1].order != want.levels[1].order:
        raise MappingError(
            "the buffer level streams the fold's third rank innermost",
            path="groups[0].levels[1].order",
            expected=list(want.levels[1].order),
            got=list(group.levels[1].order) if len(group.levels) > 1 else None,
        )
    return _gemm_program(workload, arch, mapping, roles, st, resident)


def _gemm_program(
    workload: Workload,
    arch: Architecture,
    mapping: Mapping,
    roles: GemmRoles,
    st: str,
    resident: str,
) -> Plan:
    """The systolic program of ``mapping`` (one group, a :func:`gemm_mapping`): SCALE-Sim's
    folds as trips, the DRAM traffic of the mapping's buffer tiles spread over them."""
    from archsim import Compute, Phase, Step, TileProgram, Transfer

    group = mapping.groups[0]
    unit, rows, cols = _array(arch, group.compute)
    sizes = workload.sizes
    nb = math.prod(int(sizes[b]) for b in roles.batch)
    folds, fold_cycles = systolic_cycles(
        sizes[roles.m], sizes[roles.n], sizes[roles.k], rows, cols, st
    )
    trips = folds * nb
    arrays = max(1, int(unit.instances))
    per_item = np.full(min(arrays, trips), trips // arrays, dtype=np.int64)
    per_item[: trips % arrays] += 1
    # operands="sram": SCALE-Sim's setting, operands already in the on-chip buffer
    moves = [  # (move, src level index, dst level index)
        (mv, mv.src, mv.dst)
        for mv in group_moves(group, group_tensors(workload, group))
        if mv.src is not None and mv.dst is not None and resident == "dram"
    ]
    loads = tuple(
        Transfer(
            mv.tensor,
            int(math.ceil(mv.dst_bytes / trips)),
            group.levels[src].level,
            group.levels[dst].level,
        )
        for mv, src, dst in moves
        if not mv.upward
    )
    stores = tuple(
        Transfer(
            mv.tensor,
            int(math.ceil(mv.dst_bytes / trips)),
            group.levels[src].level,
            group.levels[dst].level,
        )
        for mv, src, dst in moves
        if mv.upward
    )
    mac_key = next(iter(unit_ops({"mac": 1.0}, unit.ops_per_cycle)))
    mac_rate = float(unit.ops_per_cycle[mac_key])
    # real MACs per fold, run for fold_cycles (SCALE-Sim's fill + stream + drain): occupancy
    # = useful MAC slots / (fold_cycles x array MACs per cycle), so time stays fold_cycles
    # while MAC energy is charged on the M.N.K MACs only
    macs = float(group_ops(workload, group).get("mac", 0.0))
    slots_per_fold = fold_cycles * mac_rate
    per_fold = macs / trips if macs > 0 else slots_per_fold
    occupancy = min(1.0, per_fold / slots_per_fold)
    body = Step(
        loads=loads,
        compute=(Compute(unit.name, {mac_key: per_fold}, occupancy),),
        stores=stores,
        buffer_bytes=0,
    )
    uniform = bool(np.all(per_item == per_item[0]))
    # NOTE: folds are dealt round-robin to the unit's arrays (one work item per array)
    phase = Phase(
        name=f"gemm:{roles.einsum}",
        body=body,
        trips=int(per_item[0]) if uniform else per_item,
        work_items=len(per_item),
        slots=len(per_item),
        depth=int(group.depth or 2),
        staging_level=arch.levels[1].name,
    )
    meta = {
        "dataflow": "gemm",
        "stationary": st,
        "folds": trips,
        "fold_cycles": fold_cycles,
        "arrays": arrays,
        "scalesim_cycles": math.ceil(trips / arrays) * fold_cycles,
        "macs": macs,
        "array": (rows, cols),
    }
    prog = TileProgram(name=f"gemm-{st}", phases=(phase,), clock_hz=arch.clock.core_hz, meta=meta)
    return Plan(
        program=prog,
        mapping=mapping,
        passes=PassInfo(1, 0.0, "none (no reduction chain)"),
        notes=f"{st}-stationary on {unit.name} {rows}x{cols}",
        meta=meta,
    )


def _known(knobs: AbcMapping[str, object], allowed: set[str]) -> None:
    for k in knobs:
        if k not in allowed:
            raise MappingError("unknown knob", path=f"knobs.{k}", expected=sorted(allowed), got=k)
