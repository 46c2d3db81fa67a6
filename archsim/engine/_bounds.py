"""Bounded approximation of a phase that no exact shortcut covers (ragged trips, shared servers).

:func:`phase_bounds` returns rigorous lower and upper bounds ``L <= T <= U`` on the time
``T`` that slot-by-slot simulation of a phase *running alone* would give (no other phase
uses its servers meanwhile; see ``archsim.engine._sim._phases_alone``), without simulating
it. The engine may then report the midpoint ``(L + U) / 2``, whose error is at most
``(U - L) / 2`` (the *bound*), when that bound is small (see ``archsim.engine._sim``).

NOTE: why the bounds hold.

*Stage times.* A stage's jobs each start ``latency`` after the stage starts (loads: with
the stage, their latency being a delay after the stage that holds no server; see
``archsim.engine._pipeline``). On a server
instance the engine keeps private (one slot, one stage kind) a stage's jobs are folded in
arrival order (``e = max(e, latency) + work / capacity``): that is exact. On a shared
(processor-sharing) instance a job advances at ``capacity / n`` with ``n`` its current
number of jobs, so it takes between ``work / capacity`` (alone) and ``work * n_max /
capacity`` where ``n_max`` bounds the jobs ever on one instance: ``ceil(active /
instances)`` slots share an instance, and one slot has at most one stage of each kind in
flight (prologue, body and epilogue of an item never overlap, items of a slot run one after
another), so at most ``J`` of its jobs are on the instance, ``J`` the most over the body's
three stages together and over any one prologue or epilogue stage. A stage ends when its
last job ends, so each stage's duration lies in ``[lo, hi]``, whatever the other slots do.

*Items.* A slot's body is the max-plus recurrence of ``ItemRun._pump`` (load ``k``'s
transfers after those of load ``k-1`` and compute ``k-depth``; compute ``k`` after compute
``k-1``, load ``k``'s transfers plus the fixed delay, and store ``k-depth``; store ``k``
after store ``k-1`` and compute ``k``), which is monotone in the stage durations; prologue
and epilogue stages run one after another (a load: transfers, then delay). So an item of
``n`` trips takes between ``l(n)`` and ``u(n)``, the recurrence with all ``lo`` and with
all ``hi`` durations.

*Phase.* Lower: the phase lasts at least its longest item (``max l``), at least the items'
total time over the ``active`` slots (each slot runs its items one after another,
``sum l / active``), and at least the work on every server kind over its instances in use
at full capacity. Upper (Graham's list-scheduling argument): item ``j`` is handed out at
``S_j``; before ``S_j`` items were left, so no slot was idle (a freed slot takes the next
item at once), and items are handed out in order, so every slot was busy with items
``i < j``: ``active * S_j <= sum_{i<j} t_i``. Hence ``T = max_j (S_j + t_j) <= max_j
(sum_{i<j} u_i / active + u_j)``, at most ``sum u / active + max u * (1 - 1 / active)``;
the first ``active`` items are handed out at ``S_j = 0`` (every slot idle), so for them
``T_j <= u_j`` (one item per slot, as a persistent kernel's lowering has: ``max u``).
A relative ``1e-9`` widens both for the float tolerance of the servers' departures.

*Where they stay loose* (measured 2026-12-05 with ``bench/bench_validate.py --bounds``):
the GPU lowering's causal FA2 / memory-efficient phases (thousands of ragged items, trips
ascending ``1..n`` per head, 2-4 slots per SM sharing its tensor core) have a half-gap of
3.2-6.1% of the midpoint, e.g. h100_check line 99 (B1 H16 S65536 D64 causal, efficient):
``L`` = the tensor-core floor, 2.2% under the exact time; ``U`` = about the floor plus one
longest item (1024 trips) with its SM shared four ways, 4.1% over. Both terms are attained
by some schedule that agrees with everything the bounds use (per-stage ``[lo, hi]``, hand-out
order, per-server work): the four slots of one SM can take the four last, longest items at
once while the other SMs run dry. So no argument from these quantities reaches 2%; it takes
the order in which the last items actually land on SMs, i.e. simulating the tail, and the
tail's start state depends on the whole run before it. Those phases run in the compiled
loop (``_fastsim``, ~1.4 us a step; 2.5-11 s each, most of ``archsim validate --engine
event``'s time).
"""

from __future__ import annotations

import math

import numpy as np

from archsim.engine._compile import CompiledPhase, CompiledProgram, CompiledStep
from archsim.engine._runtime import _private_servers

__all__ = ["phase_bounds"]

#: relative slack for the servers' float tolerance (``_server._REL_EPS`` and rounding)
_SLACK = 1e-9


def _jobs(step: CompiledStep) -> list[list[tuple[float, float, int]]]:
    """``(latency, work, server)`` of every job of the load, compute and store stages."""
    loads = [(0.0, b, s) for b, _lat, sv in step.loads if b > 0 for s in sv]
    comps = [(0.0, w, s) for s, w in step.computes if w > 0]
    stores = [(max(lat, 0.0), b, s) for b, lat, sv in step.stores if b > 0 for s in sv]
    return [loads, comps, stores]


def _stage(
    jobs: list[tuple[float, float, int]],
    compiled: CompiledProgram,
    private: list[bool],
    nmax: dict[int, int],
) -> tuple[float, float]:
    """``(lo, hi)`` duration of one stage (see the module NOTE)."""
    lo = hi = 0.0
    ends: dict[int, float] = {}
    for lat, w, s in sorted(jobs, key=lambda j: j[0]):
        cap = compiled.servers[s].capacity
        if private[s]:
            e = ends.get(s, 0.0)
            ends[s] = (e if e > lat else lat) + w / cap
        else:
            lo = max(lo, lat + w / cap)
            hi = max(hi, lat + w * nmax[s] / cap)
    fold = max(ends.values(), default=0.0)
    return max(lo, fold), max(hi, fold)


def _serial(durs: list[tuple[float, float]], delay: float) -> tuple[float, float]:
    """A prologue or epilogue: its stages one after another, the load's delay after it."""
    return sum(d[0] for d in durs) + delay, sum(d[1] for d in durs) + delay


def _body_ends(a: float, b: float, c: float, depth: int, n: int, delay: float) -> np.ndarray:
    """Store end of tile ``k`` (``k < n``) for fixed stage durations (``ItemRun._pump``)."""
    le = np.zeros(n)
    ce = np.zeros(n)
    se = np.zeros(n)
    lprev = cprev = sprev = 0.0
    for k in range(n):
        ls = max(lprev, ce[k - depth] if k >= depth else 0.0)
        lprev = le[k] = ls + a
        cs = max(cprev, lprev + delay, se[k - depth] if k >= depth else 0.0)
        cprev = ce[k] = cs + b
        sprev = se[k] = max(sprev, cprev) + c
    return se


def _item_times(ends: np.ndarray, trips: np.ndarray, fixed: float) -> np.ndarray:
    """``fixed`` plus the body time of each item (``ends[n - 1]`` for ``n`` trips)."""
    if ends.size == 0:
        return np.full(trips.shape, fixed, dtype=float)
    return fixed + np.where(trips > 0, ends[np.maximum(trips, 1) - 1], 0.0)


def phase_bounds(compiled: CompiledProgram, cp: CompiledPhase) -> tuple[float, float]:
    """``(lower, upper)`` bounds on the phase's time alone from idle (see the module NOTE)."""
    p = cp.phase
    active = min(p.slots, p.work_items)
    if active == 0:
        return 0.0, 0.0
    private = _private_servers(compiled, [(cp, active)])
    body = _jobs(cp.body)
    pro = _jobs(cp.prologue) if cp.prologue is not None else None
    epi = _jobs(cp.epilogue) if cp.epilogue is not None else None
    per_slot: dict[int, int] = {}
    count = lambda stage, s: sum(1 for j in stage if j[2] == s)  # noqa: E731
    servers = {j[2] for st in (body, pro or [], epi or []) for stage in st for j in stage}
    for s in servers:
        j = sum(count(stage, s) for stage in body)
        for st in (pro, epi):
            if st is not None:
                j = max(j, max(count(stage, s) for stage in st))
        per_slot[s] = j
    nmax = {s: math.ceil(active / compiled.servers[s].instances) * per_slot[s] for s in servers}
    lo_hi = [_stage(stage, compiled, private, nmax) for stage in body]
    fixed = [0.0, 0.0]
    for st, step in ((pro, cp.prologue), (epi, cp.epilogue)):
        if st is not None and step is not None:
            d = _serial([_stage(stage, compiled, private, nmax) for stage in st], step.load_delay)
            fixed[0] += d[0]
            fixed[1] += d[1]
    trips = p.trips_per_item()
    n = int(trips.max()) if trips.size else 0
    dl = cp.body.load_delay
    lo_ends = _body_ends(lo_hi[0][0], lo_hi[1][0], lo_hi[2][0], cp.depth, n, dl)
    hi_ends = _body_ends(lo_hi[0][1], lo_hi[1][1], lo_hi[2][1], cp.depth, n, dl)
    lo_t = _item_times(lo_ends, trips, fixed[0])
    hi_t = _item_times(hi_ends, trips, fixed[1])
    # work on each server kind over its instances in use, at full capacity
    work: dict[int, float] = {}
    total_trips = float(trips.sum())
    for step, times in (
        (cp.body, total_trips),
        (cp.prologue, p.work_items),
        (cp.epilogue, p.work_items),
    ):
        if step is not None:
            for s, w in step.work.items():
                work[s] = work.get(s, 0.0) + w * times
    floor = max(
        (w / (min(compiled.servers[s].instances, active) * compiled.servers[s].capacity)
         for s, w in work.items()),
        default=0.0,
    )  # fmt: skip
    lower = max(float(lo_t.max()), float(lo_t.sum()) / active, floor)
    before = np.concatenate(([0.0], np.cumsum(hi_t)[:-1])) / active
    before[:active] = 0.0  # the first ``active`` items start at once, on idle slots
    upper = float((before + hi_t).max())
    return lower * (1.0 - _SLACK), upper * (1.0 + _SLACK)
