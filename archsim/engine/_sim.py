"""The event-driven evaluator: run a tile program on SimPy.

``simulate`` compiles the program, then times each phase on its own, from the end of the
phases it waits for, with the shortcuts of :mod:`archsim.engine._shortcuts` (symmetry, steady
state, classes of unevenly shared groups, independent slots, grouped lockstep), simulating
alone the phases where none applies (in the compiled loop of :mod:`archsim.engine._fastsim`,
bit-identical to the SimPy loop and ~10x faster; traced runs stay on SimPy), or, for a large
phase whose rigorous bounds are tight, giving it their midpoint
(:mod:`archsim.engine._bounds`; ``Result.meta`` says so and gives the bound). That is exact
when no two phases that run at the same time share a server (see :func:`_phases_alone`):
always for a chain of phases, and for the GPU lowering, whose write-back phase runs beside
its kernel on other ports. Otherwise every slot of every phase is simulated on one SimPy
environment.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from archsim.engine._account import make_result
from archsim.engine._bounds import phase_bounds
from archsim.engine._compile import CompiledPhase, CompiledProgram, compile_program
from archsim.engine._runtime import (
    APPROX_MIN_STEPS,
    COMPILED_SECONDS_PER_STEP,
    MAX_COMPILED_STEPS,
    MAX_EVENT_STEPS,
    SECONDS_PER_STEP,
    TRACE_LIMIT,
    PhaseRun,
    Runtime,
)
from archsim.engine._shortcuts import phase_shortcut
from archsim.engine._trace_labels import phase_args
from archsim.errors import SimulationTooLargeError
from archsim.program import TileProgram
from archsim.result import Result

if TYPE_CHECKING:
    from archsim import Architecture

__all__ = ["TRACE_LIMIT", "simulate"]

#: with trace=True, programs up to this many body steps are simulated without shortcuts
TRACE_FULL_STEPS = 200_000
#: ... and only if the bound (half the gap between the phase's lower and upper bounds) is at
#: most this fraction of the reported time
APPROX_MAX_RELATIVE = 0.02


def _refuse_if_huge(
    phases: tuple[CompiledPhase, ...],
    limit: int | None = None,
    per_step: float | None = None,
) -> None:
    """Raise :class:`SimulationTooLargeError` when simulating ``phases`` slot by slot would
    take more than ``limit`` body steps (``per_step`` seconds each; default
    :data:`MAX_EVENT_STEPS` and the SimPy loop's cost)."""
    limit = MAX_EVENT_STEPS if limit is None else limit
    per_step = SECONDS_PER_STEP if per_step is None else per_step
    steps = sum(int(cp.phase.total_trips) for cp in phases)
    if steps <= limit:
        return
    big = max(phases, key=lambda cp: int(cp.phase.total_trips)).phase
    raise SimulationTooLargeError(
        f"the event engine would simulate {steps:,} tile steps one by one (phase "
        f"{big.name!r}: {int(big.total_trips):,} over {big.work_items:,} work items; about "
        f"{steps * per_step / 60:,.0f} min): no exact shortcut or bound within "
        f"{APPROX_MAX_RELATIVE:.0%} covers it. Use --engine analytic (the bound), a smaller "
        f"shape, or raise archsim.engine._runtime.MAX_EVENT_STEPS (SimPy loop) or "
        f"MAX_COMPILED_STEPS (compiled loop)"
    )


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
        if rt.clock.trace is not None:
            ph = by_index[i].phase
            rt.clock.span("phases", 0, ph.name, starts[i], rt.env.now, phase_args(ph, "full"))
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


def _bounded(compiled: CompiledProgram, cp: CompiledPhase) -> tuple[float, float] | None:
    """``(midpoint, bound)`` of a large phase whose bounds are tight enough, else None.

    See :mod:`archsim.engine._bounds`: the phase's exact (slot-by-slot) time lies within
    ``bound`` cycles of ``midpoint``.
    """
    if cp.phase.total_trips < APPROX_MIN_STEPS:
        return None
    lower, upper = phase_bounds(compiled, cp)
    mid, half = (lower + upper) / 2, (upper - lower) / 2
    if not mid > 0 or half > APPROX_MAX_RELATIVE * mid:
        return None
    return mid, half


def _phases_alone(
    compiled: CompiledProgram, spans: list | None, approx: bool = False
) -> tuple[float, dict[str, float], dict[str, str], int, dict[str, float]] | None:
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
    bounds: dict[str, float] = {}
    # earliest start / latest end of each phase given the bounds of the phases before it
    slack = [0.0] * n
    for cp in phases:
        t = max((ends[d] for d in cp.deps), default=0.0)
        starts[cp.index] = t
        slack[cp.index] = max((slack[d] for d in cp.deps), default=0.0)
        got = phase_shortcut(compiled, cp)
        approx_got = _bounded(compiled, cp) if got is None and approx else None
        if approx_got is not None:
            dur, half = approx_got
            end, per, ev = t + dur, {cp.phase.name: dur}, 0
            how[cp.phase.name] = "bounded"
            bounds[cp.phase.name] = half
            slack[cp.index] += half
            if local is not None:
                local.append(("phases", 0, cp.phase.name, t, dur, phase_args(cp.phase, "bounded")))
        elif got is None and local is None:
            _refuse_if_huge((cp,), MAX_COMPILED_STEPS, COMPILED_SECONDS_PER_STEP)
            from archsim.engine._fastsim import run_phase  # numba: imported on first use

            end, _last, ev = run_phase(compiled, cp, t)  # exact: see _fastsim
            per = {cp.phase.name: end - t}
            how[cp.phase.name] = "full"
        elif got is None:
            _refuse_if_huge((cp,))
            end, per, ev = _run_joint(compiled, (cp,), t, local)
            how[cp.phase.name] = "full"
        else:
            dur, ev = got
            end, per = t + dur, {cp.phase.name: dur}
            how[cp.phase.name] = "shortcut"
            if local is not None:
                local.append(("phases", 0, cp.phase.name, t, dur, phase_args(cp.phase, "shortcut")))
        ends[cp.index] = end
        events += ev
        phase_cycles.update(per)
        j = cp.index
        tol = 1e-9 * max(1.0, end)
        for i in rivals[j]:  # phases are in dependency order: i is timed already
            si, sj = slack[i] + tol, slack[j] + tol
            if starts[i] <= ends[j] + si + sj and starts[j] <= ends[i] + si + sj:
                return None
    total = max(ends, default=0.0)
    if spans is not None and local is not None:
        spans.extend(local)
    return total, phase_cycles, how, events, bounds


def simulate(
    program: TileProgram,
    arch: Architecture,
    *,
    trace: bool = False,
    shortcuts: bool = True,
    approx: bool = True,
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
    approx
        With ``shortcuts`` (and no full ``trace``), a phase that no exact shortcut covers,
        of at least ``APPROX_MIN_STEPS`` body steps, whose rigorous lower and upper bounds
        (see :mod:`archsim.engine._bounds`) lie within ``2 * APPROX_MAX_RELATIVE`` of their
        midpoint, gets that midpoint instead of slot-by-slot simulation. ``False`` keeps
        every result the slot-by-slot simulation's (up to the exact shortcuts).

    Returns
    -------
    Result
        ``engine="event"``; ``meta`` holds ``events`` (SimPy events scheduled and
        processed), ``phase_cycles``, ``phase_method`` (``"shortcut"``: any of the phase
        shortcuts; ``"full"``: every slot simulated; ``"bounded"``: the midpoint of its
        bounds), ``phase_schedule`` (``"alone"``: each phase timed on its own from its
        dependencies; ``"joint"``: all phases simulated together on one environment),
        ``mode`` (``"exact"``, or ``"bounded"`` when some phase got the midpoint of its
        bounds) and ``bound_cycles`` (0 when exact; else the most the unrounded cycles can
        differ from the slot-by-slot simulation's: the sum of the bounded phases'
        half-gaps), with ``phase_bound_cycles`` per bounded phase.

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
    alone = _phases_alone(compiled, spans, approx=approx) if use_short else None
    bounds: dict[str, float] = {}
    if alone is not None:
        total, phase_cycles, how, events, bounds = alone
    else:
        _refuse_if_huge(tuple(compiled.phases))
        total, phase_cycles, events = _run_joint(compiled, compiled.phases, 0.0, spans)
        how = {cp.phase.name: "full" for cp in compiled.phases}
    meta: dict[str, object] = {
        "events": events,
        "phase_cycles": phase_cycles,
        "phase_method": how,
        "phase_schedule": "joint" if alone is None else "alone",
        "mode": "bounded" if bounds else "exact",
        "bound_cycles": float(sum(bounds.values())),
    }
    if bounds:
        meta["phase_bound_cycles"] = bounds
    trace_tuple = None
    if spans is not None:
        trace_tuple = tuple(spans)
        meta["trace_limit"] = TRACE_LIMIT
        meta["trace_complete"] = len(spans) < TRACE_LIMIT and all(v == "full" for v in how.values())
    return make_result(program, arch, compiled, total, "event", trace=trace_tuple, meta=meta)
