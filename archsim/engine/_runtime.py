"""Simulation runtime: one SimPy environment, its server instances, and phase dispatch.

:class:`Runtime` owns the environment and decides which servers are *private* (see
:mod:`archsim.engine._pipeline`); :class:`PhaseRun` hands a phase's work items to free slots
in order (dynamic scheduling, like CTAs onto SMs).
"""

from __future__ import annotations

from collections.abc import Callable

import simpy

from archsim.engine._compile import CompiledPhase, CompiledProgram
from archsim.engine._pipeline import ItemRun, PhasePlans, SlotContext, step_plans
from archsim.engine._server import Clock, PSServer
from archsim.engine._trace_labels import PhaseLabels

__all__ = [
    "TRACE_LIMIT",
    "PhaseRun",
    "Runtime",
    "body_stage_servers",
    "mixed_servers",
    "used_servers",
]

#: a phase of at least this many body steps may get the midpoint of its bounds when those
#: are tight (``simulate(approx=True)``, see ``archsim.engine._sim``): slot-by-slot
#: simulation of it would cost ~20 us of Python a step (~40 s here)
APPROX_MIN_STEPS = 2_000_000
#: most body steps simulated slot by slot in one run (a phase no exact shortcut or tight
#: bound covers): about three minutes here.
#: A larger program is refused before it starts, with its size
#: (``archsim.errors.SimulationTooLargeError``), instead of running for hours.
MAX_EVENT_STEPS = 10_000_000
#: seconds one simulated body step costs, for the refusal's estimate (measured on this
#: 2-core machine: flash2 causal, 16 heads x 64K on h100, 59 M SimPy events for 6.3 M body
#: steps in 114 s)
SECONDS_PER_STEP = 18e-6

#: the same limit for a phase simulated alone in the compiled loop (``_fastsim``; any run
#: without a trace): about two minutes here
MAX_COMPILED_STEPS = 60_000_000
#: seconds one body step costs in the compiled loop (measured on this 2-core machine with
#: ``bench/bench_validate.py``: FA2 causal, 16 heads x 64K on h100, 61 M events for 6.3 M
#: body steps in ~8 s)
COMPILED_SECONDS_PER_STEP = 1.5e-6

#: trace spans kept at most (the trace metadata says when more were dropped)
TRACE_LIMIT = 200_000


class Runtime:
    """One SimPy environment with lazily created server instances.

    Parameters
    ----------
    compiled
        The program.
    runs
        ``(phase, active slots)`` of every phase this environment will run; decides which
        server instances are *private* (see :mod:`archsim.engine._pipeline`): a server is
        private when each of its instances serves at most one slot of one phase here and,
        in that phase's body, at most one of the load, compute and store stages. With a
        trace every server is kept shared so that its busy spans are recorded.
    scale
        Capacity factor per server (the symmetry shortcut), or None.
    """

    def __init__(
        self,
        compiled: CompiledProgram,
        runs: list[tuple[CompiledPhase, int]],
        scale: list[float] | None = None,
        trace: list | None = None,
        t0: float = 0.0,
    ) -> None:
        self.env = simpy.Environment(initial_time=t0)
        self.clock = Clock(self.env, trace, TRACE_LIMIT)
        self.compiled = compiled
        self.scale = scale
        self.cap = [
            sv.capacity * (scale[i] if scale is not None else 1.0)
            for i, sv in enumerate(compiled.servers)
        ]
        self.private = (
            _private_servers(compiled, runs) if trace is None else [False] * len(self.cap)
        )
        self.instances: dict[tuple[int, int], PSServer] = {}
        self.plans: dict[int, PhasePlans] = {}

    def phase_plans(self, cp: CompiledPhase) -> PhasePlans:
        """Stage plans of ``cp`` in this runtime (built once per phase)."""
        got = self.plans.get(cp.index)
        if got is None:
            pv, cap = self.private, self.cap
            got = PhasePlans(
                step_plans(cp.body, pv, cap),
                step_plans(cp.prologue, pv, cap) if cp.prologue is not None else None,
                step_plans(cp.epilogue, pv, cap) if cp.epilogue is not None else None,
            )
            self.plans[cp.index] = got
        return got

    def slot(self, slot: int, pid: str) -> SlotContext:
        servers: list[PSServer | None] = []
        for idx, sv in enumerate(self.compiled.servers):
            if self.private[idx]:
                servers.append(None)
                continue
            inst = slot % sv.instances
            key = (idx, inst)
            server = self.instances.get(key)
            if server is None:
                server = PSServer(self.clock, self.cap[idx], sv.name, inst)
                self.instances[key] = server
            servers.append(server)
        return SlotContext(self.clock, servers, slot, pid)


def body_stage_servers(cp: CompiledPhase) -> tuple[set[int], set[int], set[int]]:
    """Servers used by the body's load, compute and store stages."""
    body = cp.body
    return (
        {s for _b, _l, sv in body.loads for s in sv},
        {s for s, _w in body.computes},
        {s for _b, _l, sv in body.stores for s in sv},
    )


def used_servers(cp: CompiledPhase) -> set[int]:
    """Servers used by any step of ``cp``."""
    used: set[int] = set()
    for step in (cp.body, cp.prologue, cp.epilogue):
        if step is not None:
            used.update(step.work)
    return used


def mixed_servers(cp: CompiledPhase) -> set[int]:
    """Servers used by more than one of the body's load, compute and store stages."""
    kinds = body_stage_servers(cp)
    return {s for s in used_servers(cp) if sum(s in k for k in kinds) > 1}


def _private_servers(
    compiled: CompiledProgram, runs: list[tuple[CompiledPhase, int]]
) -> list[bool]:
    """Which servers serve one slot and one stage kind only (see :class:`Runtime`).

    Phases of a chain never overlap (each starts when the one before has ended, and with it
    every stage on every server), so there a server's users are those of its busiest phase;
    otherwise phases may run together and their users add up.
    """
    n = len(compiled.servers)
    users = [0] * n
    mixed: set[int] = set()
    for cp, active in runs:
        for s in used_servers(cp):
            mine = -(-max(active, 1) // compiled.servers[s].instances)
            users[s] = max(users[s], mine) if compiled.chain else users[s] + mine
        mixed |= mixed_servers(cp)
    return [users[s] <= 1 and s not in mixed for s in range(n)]


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
        self.plans: PhasePlans | None = None

    def start(self) -> None:
        if self.items == 0:
            self.on_done()
            return
        self.ctx = [self.rt.slot(s, self.cp.phase.name) for s in range(self.slots)]
        if self.rt.clock.trace is not None:
            labels = PhaseLabels(self.cp.phase)
            for ctx in self.ctx:
                ctx.labels = labels
        self.plans = self.rt.phase_plans(self.cp)
        for s in range(self.slots):
            if self.next_item >= self.items:
                break
            self._launch(s)

    def _launch(self, s: int) -> None:
        cp = self.cp
        plans = self.plans
        assert plans is not None  # set by start(), the only way slots get launched
        while self.next_item < self.items:
            j = self.next_item
            self.next_item += 1
            self.sync_done = False
            self.launching = True
            run = ItemRun(self.ctx[s], plans, int(self.trips[j]), cp.depth, lambda: self._free(s))
            run.item = j
            run.start()
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
