"""Analytical evaluator: a lower bound of :func:`archsim.simulate`, in microseconds.

Per phase:

- each stage's time for one slot alone: transfers ``bytes / bandwidth`` (with transfers of
  one step sharing a port; stores also wait their latency first), computes
  ``sum(ops / rate) / occupancy``; a load's data is usable its latency ``D`` after its
  transfers (pipelined loads, see ``archsim.engine._pipeline``);
- per item: ``prologue + body(n) + epilogue`` with ``body(n)`` from :func:`_body_time_scalar`
  (exact for one slot alone); never below ``n`` times the slot's own per-tile work on its
  busiest server;
- items are list-scheduled in order onto the free slots (greedy, as the engine does: waves,
  tails and causal imbalance fall out of a trips array);
- the phase is never shorter than any shared server's total work over the instances in use
  (bandwidth shared by concurrent slots).

Why it is a lower bound: every stage in the engine takes at least its alone time (sharing
only slows jobs); the pipeline and in-order list scheduling are monotone in durations (the
sorted vector of slot free times only grows); no server instance serves more than its
capacity. With one slot alone and no shared ports it equals the engine's answer.
"""

from __future__ import annotations

import heapq
from typing import TYPE_CHECKING

import numpy as np

from archsim.engine._account import make_result
from archsim.engine._compile import CompiledPhase, CompiledProgram, CompiledStep, compile_program
from archsim.program import TileProgram
from archsim.result import Result

if TYPE_CHECKING:
    from archsim import Architecture

__all__ = ["estimate", "estimate_cycles"]

#: trips arrays with more items than this are list-scheduled by the numba kernel
_NUMBA_MIN_ITEMS = 256


def _body_time_scalar(step: CompiledStep, depth: int, n: int) -> float:
    """Body time of ``n`` tiles for one slot alone (cycles).

    NOTE: exact for one slot alone with fixed stage times. With ``T`` the load transfers,
    ``D`` the delay until their data is usable, ``C`` compute and ``S`` store, the body is
    the max-plus recurrence of ``ItemRun._pump``: transfer ``k`` after transfer ``k-1`` and
    compute ``k-d`` (the window: ``d`` tiles loaded or loading, not yet computed); compute
    ``k`` after compute ``k-1``, transfer ``k`` + ``D`` and store ``k-d``; store ``k`` after
    store ``k-1`` and compute ``k``. Its end is the longest path to store ``n-1``: one tile
    passes every stage once (``T + D + C + S``), and each further tile is crossed either by
    one step of a chain (``T``, ``C`` or ``S``) or, ``d`` tiles at once, by a window cycle
    (compute ``k`` -> transfer, delay and compute ``k+d``: ``T + D + C``; compute ``k`` ->
    store ``k``, compute ``k+d``: ``S + C``). Chains and cycles can be taken in any order
    (loads before computes before stores), so the longest path is linear in how many
    ``d``-tile cycles ``y <= q = (n-1) // d`` it takes and its maximum is at ``y = 0`` or
    ``y = q``: ``T + D + C + S + max((n-1) a, q J + ((n-1) - q d) a)`` with ``a =
    max(T, C, S)`` and ``J = max(T + D + C, S + C)``. Per-tile period for long bodies:
    ``max(T, C, S, (T + D + C) / d, (C + S) / d)`` -- the delay is hidden when ``d``
    tiles in flight cover it; before pipelined loads it was ``D + T`` per tile.
    """
    if n <= 0:
        return 0.0
    return float(_body_time(step, depth, np.asarray([n]))[0])


def _body_time(step: CompiledStep, depth: int, trips: np.ndarray) -> np.ndarray:
    """:func:`_body_time_scalar` of every entry of ``trips``."""
    lt, dl, ct, st = step.load_time, step.load_delay, step.compute_time, step.store_time
    d = max(int(depth), 1)
    a = max(lt, ct, st)
    cyc = max(lt + dl + ct, st + ct)
    m = np.maximum(trips - 1, 0)
    q = m // d
    t = lt + dl + ct + st + np.maximum(m * a, q * cyc + (m - q * d) * a)
    t = np.maximum(t, trips * step.self_period)
    return np.where(trips > 0, t, 0.0)


def _list_schedule_py(times: np.ndarray, slots: int) -> float:
    free = [0.0] * min(slots, len(times))
    heapq.heapify(free)
    for t in times.tolist():
        heapq.heapreplace(free, free[0] + t)
    return max(free, default=0.0)


_kernel = None


def _list_schedule(times: np.ndarray, slots: int) -> float:
    """Makespan of in-order greedy list scheduling of ``times`` onto ``slots`` slots."""
    if len(times) < _NUMBA_MIN_ITEMS:
        return _list_schedule_py(times, slots)
    global _kernel
    if _kernel is None:
        from archsim.engine._kernel import list_schedule

        _kernel = list_schedule
    return float(_kernel(np.ascontiguousarray(times, dtype=np.float64), int(slots)))


def _phase_bound(compiled: CompiledProgram, cp: CompiledPhase) -> tuple[float, str]:
    p = cp.phase
    items = p.work_items
    if items == 0:
        return 0.0, "empty"
    pro, epi, body = cp.prologue, cp.epilogue, cp.body
    fixed = (pro.serial_time if pro is not None else 0.0) + (
        epi.serial_time if epi is not None else 0.0
    )
    trips = p.trips
    active = p.slots if p.slots < items else items
    if isinstance(trips, int):
        item = fixed + _body_time_scalar(body, cp.depth, trips)
        sched = -(-items // active) * item
        total_trips = float(trips * items)
    else:
        times = fixed + _body_time(body, cp.depth, trips)
        sched = _list_schedule(np.asarray(times, dtype=np.float64), active)
        total_trips = float(trips.sum())
    best, why = sched, "schedule"
    servers = compiled.servers
    if pro is None and epi is None:
        work = body.work
        scale = total_trips
    else:
        work = {s: w * total_trips for s, w in body.work.items()}
        for step in (pro, epi):
            if step is not None:
                for s, w in step.work.items():
                    work[s] = work.get(s, 0.0) + w * items
        scale = 1.0
    for s, w in work.items():
        sv = servers[s]
        inst = sv.instances if sv.instances < active else active
        bound = w * scale / (sv.capacity * inst)
        if bound > best:
            best, why = bound, sv.name
    return best, why


def _program_bound(compiled: CompiledProgram) -> tuple[float, dict[str, float], dict[str, str]]:
    ends: list[float] = []
    per: dict[str, float] = {}
    why: dict[str, str] = {}
    for cp in compiled.phases:
        start = max((ends[d] for d in cp.deps), default=0.0)
        dur, reason = _phase_bound(compiled, cp)
        ends.append(start + dur)
        per[cp.phase.name] = dur
        why[cp.phase.name] = reason
    return max(ends, default=0.0), per, why


def estimate_cycles(program: TileProgram, arch: Architecture) -> float:
    """Lower bound of the simulated cycles (fractional), without building a Result.

    The fast path for mappers; :func:`estimate` wraps it with energy and traffic.
    """
    return _program_bound(compile_program(program, arch))[0]


def estimate(program: TileProgram, arch: Architecture) -> Result:
    """Analytical lower bound of :func:`archsim.simulate` with the same energy and traffic.

    Parameters
    ----------
    program, arch
        The tile program and architecture (validated as by ``simulate``).

    Returns
    -------
    Result
        ``engine="analytic"``; ``meta["phase_cycles"]`` per phase and ``meta["bound"]``
        naming what bounds each phase (``"schedule"`` or the saturated server, e.g.
        ``"HBM.read"``).

    Raises
    ------
    MappingError
        If the program does not fit the architecture.
    """
    compiled = compile_program(program, arch)
    total, per, why = _program_bound(compiled)
    return make_result(
        program, arch, compiled, total, "analytic", meta={"phase_cycles": per, "bound": why}
    )
