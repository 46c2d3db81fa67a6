"""The event-driven evaluator: run a tile program on SimPy.

``simulate`` compiles the program, then either simulates every slot of every phase on one
SimPy environment, or — where it is exact — takes two shortcuts:

(a) *symmetry*: all slots of a wave run identical items in lockstep, so one representative
    slot with every shared server's capacity divided by its number of sharers gives the wave's
    time exactly (see :func:`_symmetric_share`);
(b) *steady state*: the representative's body pipeline stops once it is periodic and the
    remaining trips are extrapolated (see ``ItemRun._check_steady``).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import TYPE_CHECKING

import numpy as np
import simpy

from archsim.engine._account import make_result
from archsim.engine._compile import CompiledPhase, CompiledProgram, CompiledStep, compile_program
from archsim.engine._pipeline import ItemRun, SlotContext
from archsim.engine._server import Clock, PSServer
from archsim.program import TileProgram
from archsim.result import Result

if TYPE_CHECKING:
    from archsim import Architecture

__all__ = ["simulate"]

#: trace spans kept at most (the trace metadata says when more were dropped)
TRACE_LIMIT = 200_000
#: with trace=True, programs up to this many body steps are simulated without shortcuts
TRACE_FULL_STEPS = 200_000


class Runtime:
    """One SimPy environment with lazily created server instances."""

    def __init__(
        self,
        compiled: CompiledProgram,
        scale: list[float] | None = None,
        trace: list | None = None,
        t0: float = 0.0,
    ) -> None:
        self.env = simpy.Environment(initial_time=t0)
        self.clock = Clock(self.env, trace, TRACE_LIMIT)
        self.compiled = compiled
        self.scale = scale
        self.instances: dict[tuple[int, int], PSServer] = {}

    def slot(self, slot: int, pid: str) -> SlotContext:
        servers = []
        for idx, sv in enumerate(self.compiled.servers):
            inst = slot % sv.instances
            key = (idx, inst)
            server = self.instances.get(key)
            if server is None:
                cap = sv.capacity * (self.scale[idx] if self.scale is not None else 1.0)
                server = PSServer(self.clock, cap, sv.name, inst)
                self.instances[key] = server
            servers.append(server)
        return SlotContext(self.clock, servers, slot, pid)


class PhaseRun:
    """Hand a phase's work items to free slots in order; call ``on_done`` at the end."""

    def __init__(
        self,
        rt: Runtime,
        cp: CompiledPhase,
        on_done: Callable[[], None],
        items: int | None = None,
        active_slots: int | None = None,
    ) -> None:
        self.rt = rt
        self.cp = cp
        self.on_done = on_done
        self.trips = cp.phase.trips_per_item()
        self.items = cp.phase.work_items if items is None else items
        self.slots = min(cp.phase.slots if active_slots is None else active_slots, self.items)
        self.next_item = 0
        self.finished = 0
        self.ctx: list[SlotContext] = []
        self.launching = False
        self.sync_done = False
        self.free: list[int] = []
        self.dispatch_pending = False

    def start(self) -> None:
        if self.items == 0:
            self.on_done()
            return
        self.ctx = [self.rt.slot(s, self.cp.phase.name) for s in range(self.slots)]
        for s in range(self.slots):
            if self.next_item >= self.items:
                break
            self._launch(s)

    def _launch(self, s: int) -> None:
        cp = self.cp
        while self.next_item < self.items:
            j = self.next_item
            self.next_item += 1
            self.sync_done = False
            self.launching = True
            ItemRun(
                self.ctx[s],
                cp.body,
                cp.prologue,
                cp.epilogue,
                int(self.trips[j]),
                cp.depth,
                lambda: self._free(s),
            ).start()
            self.launching = False
            if not self.sync_done:
                return
            # the item took no time: slot s is free again, give it the next one (a loop,
            # not recursion, so long runs of empty items cannot overflow the stack)

    def _free(self, s: int) -> None:
        self.finished += 1
        if self.launching:
            self.sync_done = True
        elif self.next_item < self.items:
            # slots freed at the same instant take items in slot-index order: collect them
            # and hand out the items in one zero-delay dispatch event
            self.free.append(s)
            if not self.dispatch_pending:
                self.dispatch_pending = True
                self.rt.clock.after(0.0, self._dispatch)
        if self.finished == self.items:
            self.on_done()

    def _dispatch(self, _ev: object) -> None:
        self.dispatch_pending = False
        free, self.free = sorted(self.free), []
        for s in free:
            if self.next_item >= self.items:
                break
            self._launch(s)


def _run_joint(
    compiled: CompiledProgram, phases: tuple[CompiledPhase, ...], t0: float, trace: list | None
) -> tuple[float, dict[str, float], int]:
    """Simulate ``phases`` (with their ``after`` dependencies) on one environment."""
    rt = Runtime(compiled, trace=trace, t0=t0)
    ends: dict[int, float] = {}
    waiting = {
        cp.index: set(d for d in cp.deps if any(p.index == d for p in phases)) for cp in phases
    }
    by_index = {cp.index: cp for cp in phases}

    def finish(i: int) -> None:
        ends[i] = rt.env.now
        rt.clock.span("phases", 0, by_index[i].phase.name, starts[i], rt.env.now)
        for j, deps in waiting.items():
            if i in deps:
                deps.discard(i)
                if not deps and j not in started:
                    launch(j)

    starts: dict[int, float] = {}
    started: set[int] = set()

    def launch(i: int) -> None:
        started.add(i)
        starts[i] = rt.env.now
        PhaseRun(rt, by_index[i], lambda: finish(i)).start()

    for cp in phases:
        if not waiting[cp.index] and cp.index not in started:
            launch(cp.index)
    rt.env.run()
    per_phase = {by_index[i].phase.name: ends[i] - starts[i] for i in sorted(ends)}
    end = max(ends.values(), default=t0)
    return end, per_phase, rt.clock.events


def _symmetric_share(compiled: CompiledProgram, active: int, used: set[int]) -> list[float] | None:
    """Capacity factor per server for ``active`` lockstep slots, or None if not symmetric.

    NOTE: exact only in lockstep. ``active`` slots (0..active-1) running identical items
    from the same start time evolve identically, so a server instance shared by ``m`` of them
    always has ``m`` equal jobs and gives each ``capacity / m``: one slot on a server of
    capacity ``capacity / m`` sees the same times. That holds only if every instance in use
    has the same number of sharers (``active % instances == 0`` or ``active <= instances``);
    otherwise the slots drift apart and we simulate them all.
    """
    scale = []
    for idx, sv in enumerate(compiled.servers):
        k = sv.instances
        if idx in used and active % k and active > k:
            return None
        scale.append(1.0 / max(1, math.ceil(active / k)))
    return scale


def _disjoint_stages(compiled: CompiledProgram, step: CompiledStep) -> bool:
    load = {s for _b, _l, sv in step.loads for s in sv}
    store = {s for _b, _l, sv in step.stores for s in sv}
    comp = {s for s, _w in step.computes}
    return not (load & store or load & comp or store & comp)


class _Segment:
    """Time of one segment (prologue, body, epilogue) of one representative slot."""

    def __init__(self, compiled: CompiledProgram, scale: list[float]) -> None:
        self.compiled = compiled
        self.scale = scale
        self.events = 0

    def run(self, cp: CompiledPhase, part: str, trips: int) -> float:
        rt = Runtime(self.compiled, scale=self.scale)
        ctx = rt.slot(0, cp.phase.name)
        box: list[float] = []
        if part == "body":
            steady = _disjoint_stages(self.compiled, cp.body)
            run = ItemRun(
                ctx, cp.body, None, None, trips, cp.depth, lambda: box.append(0.0), steady=steady
            )
        else:
            step = cp.prologue if part == "prologue" else cp.epilogue
            if step is None:
                return 0.0
            empty = CompiledStep((), (), (), 0.0, 0.0, 0.0, {})
            run = ItemRun(ctx, empty, step, None, 0, 1, lambda: box.append(0.0))
        run.start()
        rt.env.run()
        self.events += rt.clock.events
        if part == "body":
            return float(run.body_end if run.body_end is not None else rt.env.now)
        return float(rt.env.now)


def _phase_shortcut(compiled: CompiledProgram, cp: CompiledPhase) -> tuple[float, int] | None:
    """Phase time via symmetry (+ steady state), or None if the shortcut is not exact."""
    p = cp.phase
    if p.work_items == 0:
        return None
    trips = p.uniform_trips
    full = min(p.slots, p.work_items)
    if trips is None:
        return _one_slot_items(compiled, cp) if full == 1 else None
    used = {
        s for step in (cp.body, cp.prologue, cp.epilogue) if step is not None for s in step.work
    }
    waves, tail = divmod(p.work_items, full)
    total = 0.0
    events = 0
    for active, count in ((full, waves), (tail, 1 if tail else 0)):
        if count == 0:
            continue
        scale = _symmetric_share(compiled, active, used)
        if scale is None:
            if active == full:
                return None
            rt = Runtime(compiled)
            PhaseRun(rt, cp, lambda: None, items=active, active_slots=active).start()
            rt.env.run()
            total += rt.env.now
            events += rt.clock.events
            continue
        seg = _Segment(compiled, scale)
        item = seg.run(cp, "prologue", 0) + seg.run(cp, "body", trips) + seg.run(cp, "epilogue", 0)
        total += count * item
        events += seg.events
    return total, events


def _one_slot_items(compiled: CompiledProgram, cp: CompiledPhase) -> tuple[float, int]:
    """One slot runs the items one after another: sum per-item times (memoized by trips).

    NOTE: exact. With a single slot (and, in a chain, no other phase running) every item
    starts on idle servers, so an item's time depends only on its trip count.
    """
    seg = _Segment(compiled, [1.0] * len(compiled.servers))
    fixed = seg.run(cp, "prologue", 0) + seg.run(cp, "epilogue", 0)
    values, counts = np.unique(cp.phase.trips_per_item(), return_counts=True)
    total = sum(
        int(c) * (fixed + seg.run(cp, "body", int(v))) for v, c in zip(values, counts, strict=True)
    )
    return float(total), seg.events


def simulate(
    program: TileProgram, arch: Architecture, *, trace: bool = False, shortcuts: bool = True
) -> Result:
    """Run ``program`` on ``arch`` with the SimPy event-driven engine.

    Parameters
    ----------
    program
        The tile program (see :mod:`archsim.program` for the semantics).
    arch
        The architecture.
    trace
        Keep the simulated timeline (spans per slot stage and per busy server instance,
        at most ``TRACE_LIMIT``) in ``Result.trace``. Programs of at most
        ``TRACE_FULL_STEPS`` body steps are then simulated without shortcuts.
    shortcuts
        Use the exact symmetry and steady-state shortcuts where they apply.

    Returns
    -------
    Result
        ``engine="event"``; ``meta`` holds ``events`` (SimPy events scheduled),
        ``phase_cycles`` and ``phase_method`` (``"shortcut"``: symmetry / steady state /
        per-item; ``"full"``: every slot simulated).

    Raises
    ------
    MappingError
        If the program does not fit the architecture (see ``compile_program``).
    """
    compiled = compile_program(program, arch)
    spans: list | None = [] if trace else None
    use_short = shortcuts and not (trace and program.total_steps <= TRACE_FULL_STEPS)
    events = 0
    phase_cycles: dict[str, float] = {}
    how: dict[str, str] = {}
    if compiled.chain and use_short:
        t = 0.0
        for cp in compiled.phases:
            got = _phase_shortcut(compiled, cp)
            if got is None:
                end, per, ev = _run_joint(compiled, (cp,), t, spans)
                how[cp.phase.name] = "full"
            else:
                dur, ev = got
                end, per = t + dur, {cp.phase.name: dur}
                how[cp.phase.name] = "shortcut"
                if spans is not None:
                    spans.append(("phases", 0, cp.phase.name, t, dur))
            events += ev
            phase_cycles.update(per)
            t = end
        total = t
    else:
        total, phase_cycles, events = _run_joint(compiled, compiled.phases, 0.0, spans)
        how = {cp.phase.name: "full" for cp in compiled.phases}
    meta: dict[str, object] = {"events": events, "phase_cycles": phase_cycles, "phase_method": how}
    trace_tuple = None
    if spans is not None:
        trace_tuple = tuple(spans)
        meta["trace_limit"] = TRACE_LIMIT
        meta["trace_complete"] = len(spans) < TRACE_LIMIT and all(v == "full" for v in how.values())
    return make_result(program, arch, compiled, total, "event", trace=trace_tuple, meta=meta)
