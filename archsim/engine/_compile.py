"""Check a tile program against an architecture and resolve it into plain numbers.

Both evaluators start here: names become *servers* (a level's read or write port, or its one
``LEVEL.bus`` when ``shared_read_write`` is set; a network; a compute unit) with a capacity per
instance, transfers become ``(bytes, latency, servers)`` and computes become
``(server, work cycles)`` with work ``sum(ops / rate) / occupancy``. Errors name the offending
field with a path like ``phases[1].body.loads[0].src``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import cached_property
from typing import TYPE_CHECKING

import numpy as np

from archsim.errors import MappingError
from archsim.program import Compute, Phase, Step, TileProgram, Transfer

if TYPE_CHECKING:
    from archsim import Architecture
    from archsim.engine._account import Counts
    from archsim.spec import ComputeUnit, StorageLevel

__all__ = [
    "CompiledPhase",
    "CompiledProgram",
    "CompiledStep",
    "Server",
    "compile_program",
    "op_rate",
    "validate_program",
]


@dataclass(frozen=True)
class Server:
    """A shared resource kind: ``instances`` copies, each serving ``capacity`` per cycle.

    ``capacity`` is bytes/cycle for ports and networks, 1 (work cycles per cycle) for units.
    """

    name: str
    instances: int
    capacity: float


@dataclass(frozen=True)
class CompiledStep:
    """A step in numbers.

    ``loads``/``stores``: tuples of ``(bytes, latency_cycles, server_indices)``;
    ``computes``: tuples of ``(server_index, work_cycles)``; ``*_time``: the stage's time for
    one slot alone (exact lower bound used by the estimator), for loads their transfers only
    (pipelined loads: see ``archsim.engine._pipeline``), ``load_delay`` the cycles after them
    until the data is usable (their largest latency); ``work``: per-server work of one
    occurrence (bytes or cycles) as ``{server_index: amount}``; ``self_period``: the largest
    ``work / capacity`` over servers (a slot's own per-tile floor when stages share a port).
    """

    loads: tuple[tuple[float, float, tuple[int, ...]], ...]
    computes: tuple[tuple[int, float], ...]
    stores: tuple[tuple[float, float, tuple[int, ...]], ...]
    load_time: float
    compute_time: float
    store_time: float
    work: dict[int, float]
    self_period: float = 0.0
    load_delay: float = 0.0

    @cached_property
    def load_groups(self) -> tuple:
        """Loads as ``(job count, ((latency, ((bytes, servers), ...)), ...))`` for the engine."""
        return _group(self.loads)

    @cached_property
    def store_groups(self) -> tuple:
        """Stores grouped like :attr:`load_groups`."""
        return _group(self.stores)

    @property
    def serial_time(self) -> float:
        """Load (transfers, then delay), compute and store one after the other, alone."""
        return self.load_time + self.load_delay + self.compute_time + self.store_time


def _group(transfers: tuple[tuple[float, float, tuple[int, ...]], ...]) -> tuple:
    by_lat: dict[float, list[tuple[float, tuple[int, ...]]]] = {}
    jobs = 0
    for nbytes, lat, servers in transfers:
        if nbytes > 0:
            by_lat.setdefault(max(lat, 0.0), []).append((nbytes, servers))
            jobs += len(servers)
    return jobs, tuple((lat, tuple(js)) for lat, js in by_lat.items())


@dataclass(frozen=True)
class CompiledPhase:
    """A phase in numbers; ``depth`` is the effective depth after the capacity clamp."""

    index: int
    phase: Phase
    body: CompiledStep
    prologue: CompiledStep | None
    epilogue: CompiledStep | None
    depth: int
    deps: tuple[int, ...]


@dataclass(frozen=True)
class CompiledProgram:
    """Servers plus compiled phases; ``chain`` is True when phases run strictly one by one."""

    servers: tuple[Server, ...]
    phases: tuple[CompiledPhase, ...]
    chain: bool
    notes: tuple[str, ...]


def op_rate(unit: ComputeUnit, kind: str) -> float | None:
    """Ops per cycle of ``unit`` for op ``kind``, falling back from ``mac_bf16`` to ``mac``."""
    rates = unit.ops_per_cycle
    if kind in rates:
        return float(rates[kind])
    base = kind.split("_", 1)[0]
    if base != kind and base in rates:
        return float(rates[base])
    return None


def op_energy_pj(unit: ComputeUnit, kind: str) -> float:
    """Energy per op of ``unit`` for ``kind`` (fallback as in :func:`op_rate`; 0 if unknown)."""
    table = unit.energy_pj
    if kind in table:
        return float(table[kind])
    base = kind.split("_", 1)[0]
    return float(table.get(base, 0.0))


def _level_bandwidth(lv: StorageLevel, core_hz: float) -> tuple[float, float]:
    """``(read, write)`` bytes/cycle per instance of a level's ports.

    The level's figures, unless it opts in to the DRAM timing model with
    ``bandwidth_model == "timing"`` (kind ``dram`` with ``dram:`` timing): then the model's
    streaming rate (:func:`archsim.dram.level_timing_bandwidth`).
    """
    if getattr(lv, "bandwidth_model", "figure") == "timing":
        from archsim.dram import level_timing_bandwidth

        return level_timing_bandwidth(lv, core_hz)
    return float(lv.read_bw_bytes_per_cycle), float(lv.write_bw_bytes_per_cycle)


class _Builder:
    """Per-architecture tables: every port, network and unit gets a fixed server index, and
    compiled steps are memoized (steps are frozen and hashable; the cache is bounded)."""

    _CACHE_MAX = 4096

    def __init__(self, arch: Architecture) -> None:
        self.arch = arch
        self.levels = {lv.name: lv for lv in arch.levels}
        self.units = {u.name: u for u in arch.compute}
        self.nets = {(n.src, n.dst): n for n in getattr(arch, "networks", ()) or ()}
        self.servers: list[Server] = []
        self.index: dict[str, int] = {}
        self.steps: dict[Step, CompiledStep] = {}
        self.counts: dict[Step, Counts] = {}  # per occurrence of a step
        self.port_bw: dict[tuple[str, str], float] = {}
        self.port_name: dict[tuple[str, str], str] = {}
        for lv in arch.levels:
            read, write = _level_bandwidth(lv, float(arch.clock.core_hz))
            if getattr(lv, "shared_read_write", False):
                # one bus of the read bandwidth serves both directions (DRAM channel)
                for port in ("read", "write"):
                    self.port_bw[(lv.name, port)] = read
                    self.port_name[(lv.name, port)] = f"{lv.name}.bus"
                self.server(f"{lv.name}.bus", lv.instances, read)
                continue
            self.port_bw[(lv.name, "read")] = read
            self.port_bw[(lv.name, "write")] = write
            self.port_name[(lv.name, "read")] = f"{lv.name}.read"
            self.port_name[(lv.name, "write")] = f"{lv.name}.write"
            self.server(f"{lv.name}.read", lv.instances, read)
            self.server(f"{lv.name}.write", lv.instances, write)
        for net in self.nets.values():
            self.server(f"{net.name}.transfer", 1, float(net.bw_bytes_per_cycle))
        for u in arch.compute:
            self.server(f"{u.name}.compute", u.instances, 1.0)
        self.frozen_servers = tuple(self.servers)

    def cached_step(self, s: Step, path: str) -> CompiledStep:
        try:
            hit = self.steps.get(s)
        except TypeError:  # unhashable contents (e.g. a list of ops): compile every time
            return self.step(s, path)
        if hit is None:
            hit = self.step(s, path)
            if len(self.steps) >= self._CACHE_MAX:
                self.steps.clear()
            self.steps[s] = hit
        return hit

    def server(self, name: str, instances: int, capacity: float) -> int:
        idx = self.index.get(name)
        if idx is None:
            idx = len(self.servers)
            self.servers.append(Server(name, max(1, int(instances)), float(capacity)))
            self.index[name] = idx
        return idx

    def level(self, name: str, path: str) -> StorageLevel:
        lv = self.levels.get(name)
        if lv is None:
            raise MappingError(
                "unknown storage level",
                path=path,
                expected=f"one of {sorted(self.levels)}",
                got=name,
            )
        return lv

    def transfer(self, t: Transfer, path: str) -> tuple[float, float, tuple[int, ...]]:
        if not isinstance(t, Transfer):
            raise MappingError(
                "not a Transfer", path=path, expected="Transfer", got=type(t).__name__
            )
        if not (t.bytes >= 0) or not math.isfinite(t.bytes):
            raise MappingError(
                "negative or non-finite bytes",
                path=f"{path}.bytes",
                expected="bytes >= 0",
                got=t.bytes,
            )
        src = self.level(t.src, f"{path}.src")
        dst = self.level(t.dst, f"{path}.dst")
        servers = []
        for lv, port in ((src, "read"), (dst, "write")):
            bw = self.port_bw[(lv.name, port)]
            if not bw > 0:
                raise MappingError(
                    f"level {lv.name} has no {port} bandwidth",
                    path=f"{path}.{'src' if port == 'read' else 'dst'}",
                    expected="bytes/cycle > 0",
                    got=bw,
                )
            servers.append(self.server(self.port_name[(lv.name, port)], lv.instances, bw))
        net = self.nets.get((t.src, t.dst))
        if net is not None and net.bw_bytes_per_cycle > 0:
            servers.append(self.server(f"{net.name}.transfer", 1, net.bw_bytes_per_cycle))
        return float(t.bytes), float(src.latency_cycles), tuple(servers)

    def compute(self, c: Compute, path: str) -> list[tuple[int, float]]:
        if not isinstance(c, Compute):
            raise MappingError("not a Compute", path=path, expected="Compute", got=type(c).__name__)
        unit = self.units.get(c.unit)
        if unit is None:
            raise MappingError(
                "unknown compute unit",
                path=f"{path}.unit",
                expected=f"one of {sorted(self.units)}",
                got=c.unit,
            )
        occ = getattr(c, "occupancy", 1.0)
        if not (0.0 < occ <= 1.0):
            raise MappingError(
                "occupancy must be a fraction of the unit's lanes",
                path=f"{path}.occupancy",
                expected="0 < occupancy <= 1",
                got=occ,
            )
        work = 0.0
        for kind, count in c.ops.items():
            rate = op_rate(unit, kind)
            if rate is None or not rate > 0:
                raise MappingError(
                    f"unit {c.unit} cannot do op kind {kind!r}",
                    path=f"{path}.ops.{kind}",
                    expected=f"one of {sorted(unit.ops_per_cycle)}",
                    got=kind,
                )
            if not (count >= 0) or not math.isfinite(count):
                raise MappingError(
                    "negative or non-finite op count",
                    path=f"{path}.ops.{kind}",
                    expected="count >= 0",
                    got=count,
                )
            work += float(count) / rate
        work /= float(occ)  # only occ of the lanes do useful work: the ops take 1/occ longer
        if work <= 0:
            return []
        return [(self.server(f"{unit.name}.compute", unit.instances, 1.0), work)]

    def step(self, s: Step, path: str) -> CompiledStep:
        if not isinstance(s, Step):
            raise MappingError("not a Step", path=path, expected="Step", got=type(s).__name__)
        if s.buffer_bytes < 0:
            raise MappingError(
                "negative buffer",
                path=f"{path}.buffer_bytes",
                expected="bytes >= 0",
                got=s.buffer_bytes,
            )
        loads = tuple(self.transfer(t, f"{path}.loads[{i}]") for i, t in enumerate(s.loads))
        stores = tuple(self.transfer(t, f"{path}.stores[{i}]") for i, t in enumerate(s.stores))
        computes = tuple(
            x for i, c in enumerate(s.compute) for x in self.compute(c, f"{path}.compute[{i}]")
        )
        work: dict[int, float] = {}
        for nbytes, _lat, servers in loads + stores:
            for sv in servers:
                work[sv] = work.get(sv, 0.0) + nbytes
        for sv, w in computes:
            work[sv] = work.get(sv, 0.0) + w
        return CompiledStep(
            loads=loads,
            computes=computes,
            stores=stores,
            load_time=self._stage_time(tuple((b, 0.0, sv) for b, _lat, sv in loads)),
            compute_time=self._compute_time(computes),
            store_time=self._stage_time(stores),
            work=work,
            self_period=max((w / self.servers[sv].capacity for sv, w in work.items()), default=0.0),
            load_delay=max((max(lat, 0.0) for b, lat, _sv in loads if b > 0), default=0.0),
        )

    def _stage_time(self, transfers: tuple[tuple[float, float, tuple[int, ...]], ...]) -> float:
        """Lower bound of a set of concurrent transfers run by one slot alone.

        Exact when transfers sharing a port have equal latency (processor sharing of jobs
        that start together ends at ``latency + sum(bytes) / bandwidth``).
        """
        best = 0.0
        per_server: dict[int, tuple[float, float]] = {}
        for nbytes, lat, servers in transfers:
            if nbytes <= 0:
                continue
            cap = min(self.servers[s].capacity for s in servers)
            best = max(best, lat + nbytes / cap)
            for s in servers:
                lo, tot = per_server.get(s, (lat, 0.0))
                per_server[s] = (min(lo, lat), tot + nbytes)
        for s, (lo, tot) in per_server.items():
            best = max(best, lo + tot / self.servers[s].capacity)
        return best

    @staticmethod
    def _compute_time(computes: tuple[tuple[int, float], ...]) -> float:
        per: dict[int, float] = {}
        for sv, w in computes:
            per[sv] = per.get(sv, 0.0) + w
        return max(per.values(), default=0.0)


_BUILDERS: dict[int, _Builder] = {}


def _builder(arch: Architecture) -> _Builder:
    """The cached tables of ``arch`` (keyed by identity; the entry holds the arch alive)."""
    b = _BUILDERS.get(id(arch))
    if b is None or b.arch is not arch:
        if len(_BUILDERS) >= 64:
            _BUILDERS.clear()
        b = _Builder(arch)
        _BUILDERS[id(arch)] = b
    return b


def _check_phase_fields(p: Phase, path: str) -> None:
    for field, value, low in (
        ("work_items", p.work_items, 0),
        ("slots", p.slots, 1),
        ("depth", p.depth, 1),
    ):
        if not isinstance(value, (int, np.integer)) or value < low:
            raise MappingError(
                f"bad {field}", path=f"{path}.{field}", expected=f"integer >= {low}", got=value
            )
    trips = p.trips
    if isinstance(trips, int):
        if trips < 0:
            raise MappingError("negative trips", path=f"{path}.trips", expected=">= 0", got=trips)
    else:
        if trips.shape != (p.work_items,):
            raise MappingError(
                "trips array has the wrong shape",
                path=f"{path}.trips",
                expected=f"shape ({p.work_items},)",
                got=trips.shape,
            )
        if trips.size and int(trips.min()) < 0:
            raise MappingError(
                "negative trips", path=f"{path}.trips", expected=">= 0", got=int(trips.min())
            )


def _effective_depth(b: _Builder, p: Phase, path: str, strict: bool) -> int:
    if p.staging_level is None or p.body.buffer_bytes <= 0:
        return p.depth
    lv = b.level(p.staging_level, f"{path}.staging_level")
    cap = lv.capacity_bytes
    if cap is None:
        return p.depth
    sharers = math.ceil(min(p.slots, max(p.work_items, 1)) / max(1, lv.instances))
    per_slot = float(cap) / max(1, sharers)
    fits = int(per_slot // p.body.buffer_bytes)
    if fits < 1 or (strict and fits < p.depth):
        raise MappingError(
            f"buffer does not fit {p.staging_level} ({sharers} slot(s) per instance share "
            f"{float(cap):.0f} bytes)",
            path=f"{path}.body.buffer_bytes",
            expected=f"buffer_bytes x depth <= {per_slot:.0f}",
            got=f"{p.body.buffer_bytes} x {p.depth}",
        )
    return min(p.depth, fits)


def _deps(program: TileProgram) -> tuple[tuple[tuple[int, ...], ...], bool]:
    names: dict[str, int] = {}
    out = []
    chain = True
    for i, p in enumerate(program.phases):
        if p.name in names:
            raise MappingError(
                "duplicate phase name", path=f"phases[{i}].name", expected="unique name", got=p.name
            )
        if p.after is None:
            deps: tuple[int, ...] = (i - 1,) if i else ()
        else:
            dl = []
            for j, name in enumerate(p.after):
                if name not in names:
                    raise MappingError(
                        "after names an unknown or later phase",
                        path=f"phases[{i}].after[{j}]",
                        expected=f"one of {sorted(names)}",
                        got=name,
                    )
                dl.append(names[name])
            deps = tuple(sorted(set(dl)))
            if i and (i - 1) not in deps:
                chain = False
            if not i and deps:
                chain = False
        names[p.name] = i
        out.append(deps)
    # a phase waiting for i-1 also waits for everything i-1 waited for only in a chain
    return tuple(out), chain


def compile_program(
    program: TileProgram, arch: Architecture, *, strict: bool = False
) -> CompiledProgram:
    """Validate ``program`` against ``arch`` and resolve it into servers and numbers.

    Parameters
    ----------
    program, arch
        The tile program and the architecture it runs on.
    strict
        If True, ``buffer_bytes x depth`` larger than the slot's share of the staging level
        is an error; otherwise the depth is clamped to what fits (at least one tile must fit).

    Raises
    ------
    MappingError
        Unknown level/unit/op kind, negative bytes or trips, bad shapes, a buffer that does
        not fit; the error's ``path`` points at the field (``phases[1].body.loads[0].src``).
    """
    if not isinstance(program, TileProgram):
        raise MappingError(
            "not a TileProgram", path="program", expected="TileProgram", got=type(program).__name__
        )
    b = _builder(arch)
    deps, chain = _deps(program)
    phases = []
    notes = []
    for i, p in enumerate(program.phases):
        path = f"phases[{i}]"
        _check_phase_fields(p, path)
        body = b.cached_step(p.body, f"{path}.body")
        pro = b.cached_step(p.prologue, f"{path}.prologue") if p.prologue is not None else None
        epi = b.cached_step(p.epilogue, f"{path}.epilogue") if p.epilogue is not None else None
        depth = _effective_depth(b, p, path, strict)
        if depth < p.depth:
            notes.append(
                f"{p.name}: depth {p.depth} clamped to {depth} by {p.staging_level} capacity"
            )
        phases.append(CompiledPhase(i, p, body, pro, epi, depth, deps[i]))
    return CompiledProgram(b.frozen_servers, tuple(phases), chain, tuple(notes))


def validate_program(program: TileProgram, arch: Architecture, *, strict: bool = True) -> None:
    """Raise :class:`MappingError` if ``program`` does not fit ``arch`` (see compile_program)."""
    compile_program(program, arch, strict=strict)
