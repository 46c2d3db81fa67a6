"""The event-driven evaluator: run a tile program on SimPy.

``simulate`` compiles the program, then either simulates every slot of every phase on one
SimPy environment, or — for a chain of phases, where it is exact — times each phase with the
shortcuts of :mod:`archsim.engine._shortcuts` (symmetry, steady state, classes of unevenly
shared groups, independent slots) and simulates the phases where none applies.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from archsim.engine._account import make_result
from archsim.engine._compile import CompiledPhase, CompiledProgram, compile_program
from archsim.engine._runtime import TRACE_LIMIT, PhaseRun, Runtime
from archsim.engine._shortcuts import phase_shortcut
from archsim.program import TileProgram
from archsim.result import Result

if TYPE_CHECKING:
    from archsim import Architecture

__all__ = ["TRACE_LIMIT", "simulate"]

#: with trace=True, programs up to this many body steps are simulated without shortcuts
TRACE_FULL_STEPS = 200_000


def _run_joint(
    compiled: CompiledProgram, phases: tuple[CompiledPhase, ...], t0: float, trace: list | None
) -> tuple[float, dict[str, float], int]:
    """Simulate ``phases`` (with their ``after`` dependencies) on one environment."""
    runs = [(cp, min(cp.phase.slots, cp.phase.work_items)) for cp in phases]
    rt = Runtime(compiled, runs, trace=trace, t0=t0)
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
    return end, per_phase, rt.clock.scheduled()


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
        Use the exact phase shortcuts where they apply (symmetry, steady state, classes of
        unevenly shared groups, independent slots; see :mod:`archsim.engine._shortcuts`).
        With or without them, work on a server instance that only one slot and one stage
        use is timed without a queue (exact; see :mod:`archsim.engine._pipeline`), except
        with ``trace``, which keeps every server a queue so that its busy spans are recorded.

    Returns
    -------
    Result
        ``engine="event"``; ``meta`` holds ``events`` (SimPy events scheduled and
        processed),
        ``phase_cycles`` and ``phase_method`` (``"shortcut"``: any of the phase shortcuts;
        ``"full"``: every slot simulated).

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
            got = phase_shortcut(compiled, cp)
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
