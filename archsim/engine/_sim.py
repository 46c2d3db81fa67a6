"""The event-driven evaluator: run a tile program on SimPy.

``simulate`` compiles the program, then times each phase on its own, from the end of the
phases it waits for, with the shortcuts of :mod:`archsim.engine._shortcuts` (symmetry, steady
state, classes of unevenly shared groups, independent slots), simulating alone the phases
where none applies. That is exact when no two phases that run at the same time share a
server (see :func:`_phases_alone`): always for a chain of phases, and for the GPU lowering,
whose write-back phase runs beside its kernel on other ports. Otherwise every slot of every
phase is simulated on one SimPy environment.
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


def _busy_servers(cp: CompiledPhase) -> frozenset[int]:
    """Servers ``cp`` puts work on (none for an empty phase; zero-byte transfers make no job)."""
    p = cp.phase
    if p.work_items == 0:
        return frozenset()
    steps = [cp.prologue, cp.epilogue]
    if p.total_trips > 0:
        steps.append(cp.body)
    return frozenset(s for st in steps if st is not None for s, w in st.work.items() if w > 0)


def _ancestors(compiled: CompiledProgram) -> list[set[int]]:
    """Every phase's transitive dependencies (``after`` names only earlier phases)."""
    anc: list[set[int]] = []
    for cp in compiled.phases:
        mine: set[int] = set()
        for d in cp.deps:
            mine.add(d)
            mine |= anc[d]
        anc.append(mine)
    return anc


def _may_share(compiled: CompiledProgram) -> list[list[int]]:
    """For each phase, the earlier phases it does not wait for that use a server it uses."""
    anc = _ancestors(compiled)
    busy = [_busy_servers(cp) for cp in compiled.phases]
    return [
        [i for i in range(j) if i not in anc[j] and busy[i] & busy[j]] for j in range(len(busy))
    ]


def _phases_alone(
    compiled: CompiledProgram, spans: list | None
) -> tuple[float, dict[str, float], dict[str, str], int] | None:
    """Time every phase alone from the end of its dependencies, or None if that is not exact.

    NOTE: exact when no two phases that share a server run at the same time. The engine is
    deterministic and time-invariant: a phase's timeline is fixed by its start time and by
    the jobs other phases put on the server instances it uses. A phase that waits for
    another (directly or through others) starts after that one's last job has left every
    server. So if, in the schedule built here (each phase timed alone, starting at the latest
    end of its dependencies), every pair of phases that neither waits for the other and that
    share a server have disjoint closed intervals (with a relative tolerance, so touching
    ends count as overlapping), then no job of one phase ever meets a job of another on a
    server: up to the first instant where the full simulation could differ from this
    schedule, both agree on every start, so no phase has yet met a sharer, so they agree at
    that instant too. Hence every phase runs as if alone and the schedule is the full
    simulation's (up to float rounding of time shifts). The GPU lowering's kernel and its
    write-back phase start together and overlap, but the kernel reads HBM/L2 into SMEM and
    computes while the write-back reads SMEM and writes HBM: disjoint servers, so they run
    each alone. Returns None (simulate everything jointly) when some pair does overlap on a
    shared server; each phase alone is timed with the exact phase shortcuts where they apply.
    """
    phases = compiled.phases
    n = len(phases)
    starts = [0.0] * n
    ends = [0.0] * n
    local: list | None = [] if spans is not None else None
    rivals = _may_share(compiled)
    events = 0
    phase_cycles: dict[str, float] = {}
    how: dict[str, str] = {}
    for cp in phases:
        t = max((ends[d] for d in cp.deps), default=0.0)
        starts[cp.index] = t
        got = phase_shortcut(compiled, cp)
        if got is None:
            end, per, ev = _run_joint(compiled, (cp,), t, local)
            how[cp.phase.name] = "full"
        else:
            dur, ev = got
            end, per = t + dur, {cp.phase.name: dur}
            how[cp.phase.name] = "shortcut"
            if local is not None:
                local.append(("phases", 0, cp.phase.name, t, dur))
        ends[cp.index] = end
        events += ev
        phase_cycles.update(per)
        j = cp.index
        tol = 1e-9 * max(1.0, end)
        for i in rivals[j]:  # phases are in dependency order: i is timed already
            if starts[i] <= ends[j] + tol and starts[j] <= ends[i] + tol:
                return None
    total = max(ends, default=0.0)
    if spans is not None and local is not None:
        spans.extend(local)
    return total, phase_cycles, how, events


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
        ``phase_cycles``, ``phase_method`` (``"shortcut"``: any of the phase shortcuts;
        ``"full"``: every slot simulated) and ``phase_schedule`` (``"alone"``: each phase
        timed on its own from its dependencies; ``"joint"``: all phases simulated together
        on one environment).

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
    alone = _phases_alone(compiled, spans) if use_short else None
    if alone is not None:
        total, phase_cycles, how, events = alone
    else:
        total, phase_cycles, events = _run_joint(compiled, compiled.phases, 0.0, spans)
        how = {cp.phase.name: "full" for cp in compiled.phases}
    meta: dict[str, object] = {
        "events": events,
        "phase_cycles": phase_cycles,
        "phase_method": how,
        "phase_schedule": "joint" if alone is None else "alone",
    }
    trace_tuple = None
    if spans is not None:
        trace_tuple = tuple(spans)
        meta["trace_limit"] = TRACE_LIMIT
        meta["trace_complete"] = len(spans) < TRACE_LIMIT and all(v == "full" for v in how.values())
    return make_result(program, arch, compiled, total, "event", trace=trace_tuple, meta=meta)
