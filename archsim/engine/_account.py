"""Turn a program's action counts and a cycle count into a :class:`archsim.Result`.

Counts (bytes per level and tensor, ops per unit and kind) do not depend on timing, so both
evaluators share this code and differ only in ``cycles``; static energy is power x time.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Literal

from archsim.engine._compile import CompiledProgram, _builder, op_energy_pj
from archsim.program import Step, TileProgram
from archsim.result import Result

if TYPE_CHECKING:
    from archsim import Architecture

__all__ = ["Counts", "count_actions", "make_result"]

_PJ = 1e-12


class Counts:
    """Action totals of a program (independent of timing)."""

    __slots__ = ("level_bytes", "tensor_bytes", "energy", "unit_busy")

    def __init__(self) -> None:
        self.level_bytes: dict[str, float] = {}
        self.tensor_bytes: dict[str, float] = {}
        self.energy: dict[str, float] = {}
        self.unit_busy: dict[str, float] = {}

    def _add(self, table: dict[str, float], key: str, value: float) -> None:
        table[key] = table.get(key, 0.0) + value


def _count_step(
    c: Counts,
    step: Step,
    occ: float,
    arch: Architecture,
    levels: Mapping,
    units: Mapping,
    nets: Mapping,
) -> None:
    if occ <= 0:
        return
    for t in step.loads + step.stores:
        b = float(t.bytes) * occ
        if b <= 0:
            continue
        src, dst = levels[t.src], levels[t.dst]
        c._add(c.level_bytes, t.src, b)
        c._add(c.level_bytes, t.dst, b)
        c._add(c.tensor_bytes, f"{t.src}.{t.tensor}", b)
        c._add(c.tensor_bytes, f"{t.dst}.{t.tensor}", b)
        c._add(c.energy, f"{t.src}.read", b * float(src.read_energy_pj_per_byte) * _PJ)
        c._add(c.energy, f"{t.dst}.write", b * float(dst.write_energy_pj_per_byte) * _PJ)
        net = nets.get((t.src, t.dst))
        if net is not None:
            c._add(c.energy, f"{net.name}.transfer", b * float(net.energy_pj_per_byte) * _PJ)
    for comp in step.compute:
        unit = units[comp.unit]
        rates = unit.ops_per_cycle
        for kind, ops in comp.ops.items():
            n = float(ops) * occ
            if n <= 0:
                continue
            c._add(c.energy, f"{comp.unit}.{kind}", n * op_energy_pj(unit, kind) * _PJ)
            rate = rates.get(kind, rates.get(kind.split("_", 1)[0]))
            # useful busy cycles: busy time (n / rate / occupancy) x occupancy
            c._add(c.unit_busy, comp.unit, n / float(rate))


def _per_occurrence(arch: Architecture, step: Step) -> Counts:
    """Counts of one occurrence of ``step``, memoized per architecture (steps are frozen)."""
    b = _builder(arch)
    try:
        hit = b.counts.get(step)
    except TypeError:
        hit = None
    if hit is None:
        hit = Counts()
        _count_step(hit, step, 1.0, arch, b.levels, b.units, b.nets)
        try:
            if len(b.counts) >= 4096:
                b.counts.clear()
            b.counts[step] = hit
        except TypeError:
            pass
    return hit


def count_actions(program: TileProgram, arch: Architecture) -> Counts:
    """Bytes, dynamic energy and busy cycles of every action in ``program`` (validated)."""
    c = Counts()
    for p in program.phases:
        parts = [(p.body, float(p.total_trips))]
        for step in (p.prologue, p.epilogue):
            if step is not None:
                parts.append((step, float(p.work_items)))
        for step, occ in parts:
            if occ <= 0:
                continue
            one = _per_occurrence(arch, step)
            for mine, theirs in (
                (c.level_bytes, one.level_bytes),
                (c.tensor_bytes, one.tensor_bytes),
                (c.energy, one.energy),
                (c.unit_busy, one.unit_busy),
            ):
                for key, value in theirs.items():
                    mine[key] = mine.get(key, 0.0) + value * occ
    return c


def program_energy_j(program: TileProgram, arch: Architecture, seconds: float) -> float:
    """Energy (J) of running ``program`` on ``arch`` for ``seconds``: every action's dynamic
    energy from the architecture's tables plus its static power over the time (what a
    :class:`Result` reports; used to re-account one run on another energy table)."""
    return float(sum(count_actions(program, arch).energy.values())) + static_power_w(arch) * float(
        seconds
    )


def static_power_w(arch: Architecture) -> float:
    """Leakage of every level and unit instance plus the architecture's idle power, W."""
    total = float(getattr(arch, "idle_power_w", 0.0) or 0.0)
    for lv in arch.levels:
        total += float(getattr(lv, "leakage_w", 0.0) or 0.0) * lv.instances
    for u in arch.compute:
        total += float(getattr(u, "leakage_w", 0.0) or 0.0) * u.instances
    return total


def _area(arch: Architecture) -> float:
    area = getattr(arch, "area_mm2", None)
    if isinstance(area, (int, float)):
        return float(area)
    return float(
        sum(lv.area_mm2 * lv.instances for lv in arch.levels)
        + sum(u.area_mm2 * u.instances for u in arch.compute)
    )


def make_result(
    program: TileProgram,
    arch: Architecture,
    compiled: CompiledProgram,
    cycles_f: float,
    engine: Literal["event", "analytic"],
    *,
    counts: Counts | None = None,
    trace: tuple | None = None,
    meta: Mapping[str, object] | None = None,
) -> Result:
    """Assemble a :class:`Result` for ``cycles_f`` (fractional cycles, rounded up)."""
    clock_hz = float(program.clock_hz or arch.clock.core_hz)
    cycles = int(math.ceil(cycles_f - 1e-9 * max(1.0, cycles_f))) if cycles_f > 0 else 0
    seconds = cycles / clock_hz
    c = counts if counts is not None else count_actions(program, arch)
    breakdown = dict(sorted(c.energy.items()))
    # register-file accesses that no transfer moves (the lowering's meta): energy, no time
    rf: Any = program.meta.get("register_file_energy_j") or {}
    for key, joules in rf.items():
        breakdown[key] = breakdown.get(key, 0.0) + float(joules)
    breakdown["static"] = static_power_w(arch) * seconds
    units = {u.name: u for u in arch.compute}
    util = {}
    for name, u in units.items():
        busy = c.unit_busy.get(name, 0.0)
        util[name] = min(1.0, busy / (u.instances * cycles)) if cycles > 0 else 0.0
    level_bytes = {lv.name: c.level_bytes.get(lv.name, 0.0) for lv in arch.levels}
    all_meta: dict[str, object] = {"program": program.name, **dict(program.meta)}
    if compiled.notes:
        all_meta["notes"] = list(compiled.notes)
    all_meta.update(meta or {})
    return Result(
        cycles=cycles,
        seconds=seconds,
        clock_hz=clock_hz,
        energy_j=float(sum(breakdown.values())),
        energy_breakdown_j=breakdown,
        bytes_by_level=level_bytes,
        bytes_by_tensor=dict(sorted(c.tensor_bytes.items())),
        dram_bytes=level_bytes.get(arch.levels[0].name, 0.0),
        utilization=util,
        area_mm2=_area(arch),
        engine=engine,
        trace=trace,
        meta=all_meta,
    )
