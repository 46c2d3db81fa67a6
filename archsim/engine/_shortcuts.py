"""Exact shortcuts of the event-driven engine (each says why it is exact).

Per phase that runs alone (no other phase uses its servers while it runs; see
``archsim.engine._sim._phases_alone``), :func:`phase_shortcut` picks the first that applies,
else returns None and the phase is simulated slot by slot:

(a) *symmetry*: all slots of a wave run identical items in lockstep, so one representative
    slot with every shared server's capacity divided by its number of sharers gives the wave's
    time (:func:`_symmetric_share`);
(b) *steady state*: the representative's body pipeline stops once it is periodic and the
    remaining trips are extrapolated (``ItemRun._check_steady``);
(c) *classes*: a last wave of identical items that shares grouped servers unevenly (232 CTAs
    on 132 SMs x 2 slots: 100 SMs hold two, 32 hold one) runs one representative per class of
    equally loaded groups, its jobs weighted on the servers all slots share
    (:func:`_class_wave`);
(d) *independent slots*: with ragged trips, when no server instance is shared by two active
    slots, an item's time depends only on its trip count: time each distinct count once and
    list-schedule the items (:func:`_independent_items`);
(e) *leading waves*: with ragged trips whose first whole waves are alike (sorted block-sparse
    rows), those waves are timed by (a) and (b) and the rest of the phase starts from idle
    servers after them (:func:`_leading_waves`);
(f) *grouped lockstep*: with ragged trips of a few distinct counts on grouped slots, one
    representative per class of slots that stay in lockstep, on weighted shared servers,
    with repeated hand-out states skipped by whole periods (:func:`_grouped_lockstep`), and
    repeated states between hand-outs skipped by whole periods of every running item's body
    (``in_item`` in :func:`_quotient`: persistent kernels' one long item per slot, whose
    trips the GPU lowering doubles with one engine load per operand tile).
"""

from __future__ import annotations

import heapq
import math
from dataclasses import replace

import numpy as np

from archsim.engine._compile import CompiledPhase, CompiledProgram, CompiledStep
from archsim.engine._pipeline import ItemRun, PhasePlans, SlotContext, step_plans
from archsim.engine._runtime import (
    Runtime,
    mixed_servers,
    used_servers,
)
from archsim.engine._server import PSServer, Weighted, WeightedPSServer

__all__ = ["phase_shortcut"]


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


_EMPTY = CompiledStep((), (), (), 0.0, 0.0, 0.0, {})


def _cb_key(cb: object) -> object:
    func = getattr(cb, "__func__", None)
    return func.__name__ if func is not None else id(cb)


class _StateWatch:
    """Stop a lone slot's body once its whole engine state repeats ``j`` tiles later.

    NOTE: exact. The engine is deterministic: from a given state (stage flags and counters of
    the pipeline relative to the last stored tile, every job's remaining work on every server,
    every pending latency/deadline event relative to now) the future is fixed up to a time
    shift. Server timeouts are not state: a server departs its jobs when their work is done
    whatever timeout is armed. If the state after the store of tile ``k`` equals the state
    after tile ``k-j`` shifted by ``P``, and neither state yet depends on the trip count
    (``n`` bounds only the loads, at most ``2 depth`` tiles ahead of the last store), then
    ``body(N + j) = body(N) + P`` for every trip count ``N >= m = k + 2 depth + 4``; so
    ``body(n) = body(m') + (n - m') / j * P`` with ``m' >= m``, ``m' = n (mod j)``. This holds
    with load and store sharing a server (a DRAM bus), where ``_check_steady`` does not.
    """

    #: longest period (in tiles) looked for
    MAX_PERIOD = 8
    #: stop looking (and paying for snapshots) after this many tiles without a repeat
    MAX_WATCH = 4096

    def __init__(self, rt: Runtime) -> None:
        self.rt = rt
        self.hist: list[tuple[tuple, float]] = []
        self.found: tuple[int, int, float] | None = None

    @staticmethod
    def margin(run: ItemRun) -> int:
        return 2 * run.d + 3

    def __call__(self, run: ItemRun) -> bool:
        k = run.ks_done - 1
        if k >= self.MAX_WATCH or k + self.margin(run) >= run.n - 1:
            return False
        now = run.env._now
        snap = self._snapshot(run, now)
        tol = 1e-9 * max(1.0, now)
        for j, (old, t_old) in enumerate(reversed(self.hist), start=1):
            if _same(snap, old, tol):
                self.found = (k, j, now - t_old)
                return True
        self.hist.append((snap, now))
        if len(self.hist) > self.MAX_PERIOD:
            del self.hist[0]
        return False

    def extrapolate(self, seg: _Segment, cp: CompiledPhase, run: ItemRun, trips: int) -> float:
        """Body time of ``trips`` tiles from the period found (see the class NOTE)."""
        assert self.found is not None
        k, j, period = self.found
        m = k + self.margin(run) + 1
        m += (trips - m) % j
        return seg.run(cp, "body", m, watch=False) + (trips - m) // j * period

    def _snapshot(self, run: ItemRun, now: float) -> tuple:
        base = run.ks_done
        active = (run.loading, run.computing, run.storing)
        head = (
            active,
            run.kl - base,
            run.kl_done - base,
            run.kc - base,
            run.kc_done - base,
            run.ks - base,
            tuple(run.left[i] if active[i] else 0 for i in range(3)),
            tuple(run.dl[i] - now if active[i] and run.left[i] else 0.0 for i in range(3)),
        )
        jobs = []
        for sv in run.servers:
            if sv is None:
                continue
            server = getattr(sv, "server", sv)  # Weighted handle -> its server
            heap = server.heap
            n = getattr(server, "nw", len(heap))
            v = server.v + ((now - server.t_last) * server.capacity / n if n else 0.0)
            jobs.append(
                tuple((e[0] - v, _cb_key(e[2]), e[3:]) for e in sorted(heap, key=lambda e: e[:2]))
            )
        events = []
        for t, _prio, _eid, ev in sorted(self.rt.clock.queue, key=lambda q: (q[0], q[2])):
            cbs = ev.callbacks or ()
            if not cbs or isinstance(getattr(cbs[0], "__self__", None), PSServer):
                continue
            events.append((t - now, _cb_key(cbs[0]), ev.data))
        return head, tuple(jobs), tuple(events)


def _same(a: object, b: object, tol: float) -> bool:
    """Structural equality with floats equal within ``tol``."""
    if isinstance(a, float) or isinstance(b, float):
        return isinstance(a, (int, float)) and isinstance(b, (int, float)) and abs(a - b) <= tol
    if isinstance(a, tuple) and isinstance(b, tuple):
        return len(a) == len(b) and all(_same(x, y, tol) for x, y in zip(a, b, strict=True))
    return a == b


def _same_state(a: tuple[tuple, list[float]], b: tuple[tuple, list[float]], tol: float) -> bool:
    """Two ``(exact part, floats)`` snapshots are equal: the first exactly, the floats
    within ``tol``."""
    if a[0] != b[0] or len(a[1]) != len(b[1]):
        return False
    return all(abs(x - y) <= tol for x, y in zip(a[1], b[1], strict=True))


class _Segment:
    """Time of one segment (prologue, body, epilogue) of one representative slot."""

    def __init__(self, compiled: CompiledProgram, scale: list[float]) -> None:
        self.compiled = compiled
        self.scale = scale
        self.events = 0

    def run(self, cp: CompiledPhase, part: str, trips: int, *, watch: bool = True) -> float:
        rt = Runtime(self.compiled, [(cp, 1)], scale=self.scale)
        ctx = rt.slot(0, cp.phase.name)
        plans = rt.phase_plans(cp)
        box: list[float] = []
        if part == "body":
            steady = _disjoint_stages(self.compiled, cp.body)
            watcher = _StateWatch(rt) if watch and not steady else None
            run = ItemRun(
                ctx,
                PhasePlans(plans.body, None, None),
                trips,
                cp.depth,
                lambda: box.append(0.0),
                steady=steady,
                watch=watcher,
            )
        else:
            serial = plans.prologue if part == "prologue" else plans.epilogue
            if serial is None:
                return 0.0
            empty = step_plans(_EMPTY, rt.private, rt.cap)
            run = ItemRun(ctx, PhasePlans(empty, serial, None), 0, 1, lambda: box.append(0.0))
        run.start()
        rt.env.run()
        self.events += rt.clock.scheduled()
        if part == "body":
            if watcher is not None and watcher.found is not None:
                return watcher.extrapolate(self, cp, run, trips)
            return float(run.body_end if run.body_end is not None else rt.env.now)
        return float(rt.env.now)

    def body_ends(self, cp: CompiledPhase, trips: np.ndarray) -> dict[int, float]:
        """Body time of every distinct trip count in ``trips`` (one slot alone).

        NOTE: exact. With disjoint load/compute/store servers (all private to the slot) a
        tile's completions depend only on earlier tiles (the max-plus recurrence of
        ``ItemRun._check_steady``), so the store end of tile ``n-1`` in one run of
        ``max(trips)`` tiles is the body time of an ``n``-trip item; past the detected
        steady state it is extrapolated by whole periods. Otherwise every distinct count
        is simulated once.
        """
        values = sorted({int(v) for v in trips})
        if not _disjoint_stages(self.compiled, cp.body):
            return {v: self.run(cp, "body", v) for v in values}
        rt = Runtime(self.compiled, [(cp, 1)], scale=self.scale)
        run = ItemRun(
            rt.slot(0, cp.phase.name),
            PhasePlans(rt.phase_plans(cp).body, None, None),
            values[-1],
            cp.depth,
            lambda: None,
            steady=True,
        )
        run.start()
        rt.env.run()
        self.events += rt.clock.scheduled()
        se = run.se
        out: dict[int, float] = {}
        for v in values:
            if v <= 0:
                out[v] = 0.0
            elif v <= len(se):
                out[v] = float(se[v - 1])
            else:  # stopped in steady state after tile k = len(se) - 1
                k = len(se) - 1
                out[v] = float(se[k] + (v - 1 - k) * (se[k] - se[k - 1]))
        return out


def _list_schedule(times: list[float], slots: int) -> float:
    """Makespan of items (in order) each given to the earliest-free of ``slots`` slots.

    The engine hands each item to a free slot in index order; which of several identical
    free slots gets it does not change the multiset of slot free times, so the makespan is
    that of greedy in-order list scheduling.
    """
    free = [0.0] * min(slots, len(times))
    if not free:
        return 0.0
    for t in times:
        heapq.heapreplace(free, free[0] + t)
    return max(free)


def _independent_items(compiled: CompiledProgram, cp: CompiledPhase) -> tuple[float, int] | None:
    """Ragged trips on slots that share no server instance: list-schedule per-item times.

    NOTE: exact. If every server the phase uses has at least as many instances as there
    are active slots, slot ``i`` is the only user of instance ``i`` of each of them, so no
    item ever waits for or shares with another slot (no other phase uses them meanwhile): each
    item starts on idle servers and takes ``prologue + body(trips) + epilogue`` whatever
    the other slots do. Items go to free slots in order, which is list scheduling.
    Returns None (simulate instead) if the distinct trip counts would cost more body steps
    than the phase itself.
    """
    p = cp.phase
    active = min(p.slots, p.work_items)
    if any(compiled.servers[s].instances < active for s in used_servers(cp)):
        return None
    trips = p.trips_per_item()
    seg = _Segment(compiled, [1.0] * len(compiled.servers))
    if not _disjoint_stages(compiled, cp.body) and int(np.unique(trips).sum()) > p.total_trips:
        return None
    fixed = seg.run(cp, "prologue", 0) + seg.run(cp, "epilogue", 0)
    body = seg.body_ends(cp, trips)
    times = [fixed + body[int(v)] if v > 0 else fixed for v in trips.tolist()]
    return _list_schedule(times, active), seg.events


def _class_wave(
    compiled: CompiledProgram, cp: CompiledPhase, active: int
) -> tuple[float, int] | None:
    """The last wave of identical items on unevenly shared groups, one slot per class.

    NOTE: exact. Let every server the phase uses have 1 instance (shared by all), ``k``
    instances (slot ``i`` on group ``i % k``; one ``k`` for all of them) or at least
    ``active`` (one per slot). With ``active = q k + r`` slots, ``r`` groups hold ``q + 1``
    slots and ``k - r`` hold ``q``. Every permutation of equally loaded groups, and of the
    slots within a group, maps the system onto itself (processor sharing treats jobs
    alike), and all slots start identical items together, so slots of one class stay in
    lockstep: the ``m`` jobs they put on a group's instance are equal (one slot on a
    ``capacity / m`` instance sees the same times), and a class of ``c`` slots puts ``c``
    equal jobs on each all-shared server (one job weighted ``c`` on a weighted server).
    The wave ends when the slower class does. Items must all be alike (uniform trips) and
    no later wave may follow (a class finishing early would start the next items out of
    step): the caller checks both.
    """
    servers = compiled.servers
    used = used_servers(cp)
    ks = {servers[s].instances for s in used if 1 < servers[s].instances < active}
    if len(ks) != 1:
        return None
    k = ks.pop()
    q, r = divmod(active, k)
    if r == 0:
        return None
    trips = cp.phase.uniform_trips
    assert trips is not None
    rt = Runtime(compiled, [])
    mixed = mixed_servers(cp)
    rt.private = [
        s in used and servers[s].instances >= active and s not in mixed for s in range(len(servers))
    ]
    shared: dict[int, WeightedPSServer] = {}
    runs = []
    for cls, (size, count) in enumerate(((q + 1, r * (q + 1)), (q, (k - r) * q))):
        ctx_servers: list[PSServer | Weighted | None] = []
        for idx, sv in enumerate(servers):
            if idx not in used or rt.private[idx]:
                ctx_servers.append(None)
            elif sv.instances == 1:
                if idx not in shared:
                    shared[idx] = WeightedPSServer(rt.clock, sv.capacity, sv.name, 0)
                ctx_servers.append(Weighted(shared[idx], count))
            elif sv.instances == k:
                ctx_servers.append(PSServer(rt.clock, sv.capacity / size, sv.name, cls))
            else:  # a per-slot instance used by two stages of the slot
                ctx_servers.append(PSServer(rt.clock, sv.capacity, sv.name, cls))
        ctx = SlotContext(rt.clock, ctx_servers, cls, cp.phase.name)  # type: ignore[arg-type]  # Weighted: a server handle
        runs.append(ItemRun(ctx, rt.phase_plans(cp), trips, cp.depth, lambda: None))
    for run in runs:
        run.start()
    rt.env.run()
    return float(rt.env.now), rt.clock.scheduled()


def _wave(
    compiled: CompiledProgram, cp: CompiledPhase, active: int, used: set[int], last: bool
) -> tuple[float, int] | None:
    """One wave of ``active`` slots running identical items from a common start."""
    trips = cp.phase.uniform_trips
    assert trips is not None
    scale = _symmetric_share(compiled, active, used)
    if scale is not None:
        seg = _Segment(compiled, scale)
        item = seg.run(cp, "prologue", 0) + seg.run(cp, "body", trips) + seg.run(cp, "epilogue", 0)
        return item, seg.events
    if not last:
        return None
    got = _class_wave(compiled, cp, active)
    if got is not None:
        return got
    from archsim.engine._fastsim import run_phase  # numba: imported on first use

    _finish, end, events = run_phase(compiled, cp, items=active, active_slots=active)
    return end, events


def _alone(compiled: CompiledProgram, cp: CompiledPhase) -> tuple[float, int]:
    """Simulate every slot of ``cp`` (alone, from time 0) in the compiled loop (exact: see
    :mod:`archsim.engine._fastsim`)."""
    from archsim.engine._fastsim import run_phase  # numba: imported on first use

    _finish, last, events = run_phase(compiled, cp)
    return last, events


def _leading_waves(
    compiled: CompiledProgram, cp: CompiledPhase, full: int
) -> tuple[float, int] | None:
    """Ragged trips that start with whole waves of alike items: those waves, then the rest.

    NOTE: exact. If the first ``w x full`` items have the same trip count and the ``full``
    slots share every server instance evenly (:func:`_symmetric_share`), each of those
    waves runs identical items in lockstep from a common start, as in the uniform case:
    every slot frees at the same instant, with no job left on any server, and takes the
    next item in slot-index order (the engine hands out items freed at one instant in slot
    order). So after ``w`` waves of ``T`` each the phase is, at ``w T``, exactly a phase of the
    remaining items starting on idle servers: time it alone (by any shortcut that applies,
    else slot by slot) and add ``w T``. Returns None when fewer than one whole wave is alike
    or the sharing is uneven.
    """
    p = cp.phase
    trips = p.trips_per_item()
    first = int(trips[0])
    differ = np.flatnonzero(trips != first)
    alike = int(differ[0]) if differ.size else trips.size
    waves = alike // full
    used = used_servers(cp)
    if waves == 0 or _symmetric_share(compiled, full, used) is None:
        return None
    head = replace(cp, phase=replace(p, trips=first, work_items=full))
    wave = _wave(compiled, head, full, used, last=False)
    assert wave is not None  # symmetric
    cut = waves * full
    rest = replace(cp, phase=replace(p, trips=trips[cut:], work_items=p.work_items - cut))
    got = phase_shortcut(compiled, rest) if rest.phase.work_items else (0.0, 0)
    if got is None:
        got = _alone(compiled, rest)
    return waves * wave[0] + got[0], wave[1] + got[1]


def phase_shortcut(compiled: CompiledProgram, cp: CompiledPhase) -> tuple[float, int] | None:
    """Phase time and events spent via an exact shortcut, or None (simulate the phase).

    The phase must run alone: no other phase may use its servers while it runs.
    """
    p = cp.phase
    if p.work_items == 0:
        return None
    full = min(p.slots, p.work_items)
    if p.uniform_trips is None:
        if full == 1:
            return _one_slot_items(compiled, cp)
        got = _independent_items(compiled, cp)
        if got is None:
            got = _leading_waves(compiled, cp, full)
        return got if got is not None else _grouped_lockstep(compiled, cp)
    used = used_servers(cp)
    waves, tail = divmod(p.work_items, full)
    total = 0.0
    events = 0
    if waves:
        got = _wave(compiled, cp, full, used, last=tail == 0 and waves == 1)
        if got is None:
            return None
        total += waves * got[0]
        events += got[1]
    if tail:
        got = _wave(compiled, cp, tail, used, last=True)
        assert got is not None
        total += got[0]
        events += got[1]
    return total, events


def _one_slot_items(compiled: CompiledProgram, cp: CompiledPhase) -> tuple[float, int]:
    """One slot runs the items one after another: sum per-item times (memoized by trips).

    NOTE: exact. With a single slot (and no other phase using its servers) every item
    starts on idle servers, so an item's time depends only on its trip count.
    """
    seg = _Segment(compiled, [1.0] * len(compiled.servers))
    fixed = seg.run(cp, "prologue", 0) + seg.run(cp, "epilogue", 0)
    values, counts = np.unique(cp.phase.trips_per_item(), return_counts=True)
    body = seg.body_ends(cp, values)
    total = sum(int(c) * (fixed + body[int(v)]) for v, c in zip(values, counts, strict=True))
    return float(total), seg.events


def _refine(labels: list, k: int | None) -> list[int]:
    """Coarsest equitable refinement of ``labels`` over the groups ``{s : s % k == g}``.

    Two slots end in one class only if they have one label and their groups hold the same
    multiset of classes (iterated to a fixed point, like colour refinement).
    """
    n = len(labels)
    ids = {lab: i for i, lab in enumerate(sorted(set(labels), key=repr))}
    cls = [ids[lab] for lab in labels]
    if k is None:
        return cls
    while True:
        groups: dict[int, list[int]] = {}
        for s in range(n):
            groups.setdefault(s % k, []).append(cls[s])
        keys = [(cls[s], tuple(sorted(groups[s % k]))) for s in range(n)]
        ids2 = {key: i for i, key in enumerate(sorted(set(keys)))}
        new = [ids2[key] for key in keys]
        if len(ids2) == len(set(cls)):
            return new
        cls = new


class _Split(Exception):
    """A class of slots must be refined (its slots get different items): new labels."""

    def __init__(self, labels: list, events: int) -> None:
        super().__init__()
        self.labels = labels
        self.events = events


class _Period(Exception):
    """The quotient's state at a hand-out repeats: ``items`` items later, ``period`` later.

    NOTE: exact. The quotient is deterministic and time-invariant; its future from a
    hand-out is fixed by its state then (each class idle or its item's pipeline counters,
    every job's remaining work on every server, every pending latency/deadline relative to
    now; armed server timeouts are not state) and by the items left, which matter only
    through their trips and, once fewer than the freed slots, their number. If the state at
    hand-out ``j`` equals that at hand-out ``i`` shifted by ``P``, ``X`` items apart, and
    every item from ``next_i`` on has one trip count, then a run of ``W + X`` items (``W >=
    next_j``) agrees with a run of ``W`` items up to ``j`` and from there repeats the
    ``W``-item run from ``i`` shifted by ``P``: ``T(W + X) = T(W) + P``.
    """

    def __init__(self, next_j: int, items: int, period: float, events: int) -> None:
        super().__init__()
        self.next_j = next_j
        self.items = items
        self.period = period
        self.events = events


class _Bail(Exception):
    """The quotient cannot follow the full simulation here (zero-time items, near ties)."""


#: hand-outs kept to look for a repeated state (see :class:`_Period`)
_MAX_HIST = 24
#: SimPy events per body step the quotient's runs may cost in all: slot by slot costs ~9
#: events a step, but in the compiled loop (``_fastsim``, ~0.25 us an event) where the
#: quotient's are SimPy's (~2 us), so it gives up after about half the compiled loop's cost
_BUDGET_PER_STEP = 0.5
#: ... plus this many (small phases)
_BUDGET_FLOOR = 5_000
#: ... counting at most this many body steps (~0.4 s of SimPy): on the H100 validation
#: records the quotient succeeded within 25,000 events or not at all, and a phase it gives up
#: on is simulated in the compiled loop or, if large, given its bounds
_BUDGET_STEPS = 400_000
#: most classes tried before giving up (each split re-runs the quotient from the start)
_MAX_SPLITS = 12
#: snapshots kept to look for a repeated state inside the items (see :func:`_quotient`)
_MAX_INNER = 8
#: snapshots taken between two hand-outs before giving up looking there (a state that does
#: not repeat within this many tiles of the watched class rarely repeats later)
_MAX_LOOKS = 512


def _grouped_lockstep(compiled: CompiledProgram, cp: CompiledPhase) -> tuple[float, int] | None:
    """Ragged trips on grouped slots: one representative per class of lockstep slots.

    NOTE: exact (up to float rounding of the shared rates). Let every server the phase uses
    have 1 instance (shared by all active slots), ``k`` instances (slot ``s`` on group
    ``s % k``) or at least one per slot. Partition the slots into classes so that slots of a
    class start identical items together and every group holds the same multiset of classes
    as every other group of its *type* (an equitable partition, :func:`_refine`). If all
    slots of a class follow one trajectory, each group instance of a type sees ``m_c`` equal
    jobs of each class ``c`` at the same times, and each all-shared server sees ``|c|`` equal
    jobs of class ``c``: one representative per class on one weighted instance per (group
    type, server) and weighted all-shared servers (``WeightedPSServer``: a job of weight
    ``m`` counts ``m`` times in the number of sharers) gets every job's rate right. So the
    lifted trajectory solves the full system, which is deterministic: it is the full
    simulation's. A class's slots free together; the engine hands the next items to the
    slots freed at one instant in slot-index order. If those items differ within a class
    (ragged trips, or items run out part-way through a class), the partition is refined by
    what each slot gets and the quotient re-run from the start (refining a lockstep class
    changes no trajectory). Between hand-outs, a state that repeats (relative to the tiles
    each class has stored) is skipped in place by whole periods of the running items (see
    ``in_item`` in :func:`_quotient`), so long items cost their transients, not their
    trips. Where the hand-out is not uniform and another class frees within float tolerance
    of that instant (the order could differ in the full simulation), an item takes no time,
    or the re-runs cost more than ``_BUDGET_PER_STEP`` events per body step (plus
    ``_BUDGET_FLOOR``), returns None and the phase is simulated slot by slot.
    """
    p = cp.phase
    active = min(p.slots, p.work_items)
    if active < 4:
        return None
    servers = compiled.servers
    used = used_servers(cp)
    ks = {servers[s].instances for s in used if 1 < servers[s].instances < active}
    if len(ks) > 1:
        return None
    k = ks.pop() if ks else None
    trips = [int(t) for t in p.trips_per_item()]
    if min(trips) <= 0:
        return None
    labels: list = trips[:active]
    # uniform[i]: every item from i on has the trips of item i (periods are sought there)
    uniform = len(trips)
    while uniform > 0 and trips[uniform - 1] == trips[-1]:
        uniform -= 1
    events = 0
    # give up (simulate slot by slot, compiled) once the re-runs have cost about half what
    # that would (at most what _BUDGET_STEPS steps would)
    budget = int(_BUDGET_PER_STEP * min(p.total_trips, _BUDGET_STEPS)) + _BUDGET_FLOOR
    skipped = 0.0
    tries = 0
    while tries < _MAX_SPLITS:
        tries += 1
        cls = _refine(labels, k)
        if 2 * len(set(cls)) > active:
            return None
        try:
            end, ev = _quotient(compiled, cp, cls, trips, k, active, uniform, budget - events)
        except _Split as split:
            events += split.events
            labels = split.labels
            continue
        except _Period as per:
            # NOTE: exact; see _Period. T(W) = T(W - n X) + n P while W - n X >= next_j.
            events += per.events
            n = (len(trips) - per.next_j) // per.items
            trips = trips[: len(trips) - n * per.items]
            skipped += n * per.period
            tries -= 1  # a reduction is progress, not a split
            continue
        except _Bail:
            return None
        return skipped + end, events + ev
    return None


def _quotient(
    compiled: CompiledProgram,
    cp: CompiledPhase,
    cls: list[int],
    trips: list[int],
    k: int | None,
    active: int,
    uniform: int,
    budget: int,
) -> tuple[float, int]:
    """Run one representative per class of ``cls`` (see :func:`_grouped_lockstep`).

    Raises :class:`_Split`, :class:`_Period` or :class:`_Bail` (see there).
    """
    servers = compiled.servers
    used = used_servers(cp)
    mixed = mixed_servers(cp)
    rt = Runtime(compiled, [])
    rt.private = [
        s in used and servers[s].instances >= active and s not in mixed for s in range(len(servers))
    ]
    plans = rt.phase_plans(cp)
    ncls = max(cls) + 1
    members: list[list[int]] = [[] for _ in range(ncls)]
    for s, c in enumerate(cls):
        members[c].append(s)
    shared: dict[object, WeightedPSServer] = {}

    def wps(key: object, idx: int) -> WeightedPSServer:
        got = shared.get(key)
        if got is None:
            got = shared[key] = WeightedPSServer(rt.clock, servers[idx].capacity, "", 0)
        return got

    ctxs = []
    for c in range(ncls):
        s0 = members[c][0]
        if k is not None:
            mine = [cls[t] for t in range(s0 % k, active, k)]
            gtype = tuple(sorted(mine))
        ctx_servers: list[PSServer | Weighted | None] = []
        for idx, sv in enumerate(servers):
            if idx not in used or rt.private[idx]:
                ctx_servers.append(None)
            elif sv.instances == 1:
                ctx_servers.append(Weighted(wps(idx, idx), len(members[c])))
            elif sv.instances == k:
                ctx_servers.append(Weighted(wps((gtype, idx), idx), mine.count(c)))
            else:  # a per-slot instance used by two stages of the slot
                ctx_servers.append(PSServer(rt.clock, sv.capacity, sv.name, c))
        ctxs.append(SlotContext(rt.clock, ctx_servers, c, cp.phase.name))  # type: ignore[arg-type]  # Weighted: a server handle

    state = {"next": active, "launching": False, "pending": False}
    free: list[int] = []
    sensitive: list[float] = []  # true times (see ``shift``)
    frees: list[float] = []
    # cycles skipped in place by periods inside the items: the quotient's clock runs this
    # much behind the system's (true time = ``rt.env.now + shift[0]``)
    shift = [0.0]
    # the in-item watch: snapshots (state, clock time, tiles stored per class) since the
    # last hand-out, taken at the stores of class ``pilot``
    inner: list[tuple[tuple, float, tuple[int, ...]]] = []
    look = {"pilot": 0, "left": _MAX_LOOKS}

    runs: list[ItemRun | None] = [None] * ncls
    owner: dict[int, int] = {}
    hist: list[tuple[tuple, float, int]] = []
    objs = [sv for ctx in ctxs for sv in ctx.servers if sv is not None]
    servers_seen = list(
        {id(getattr(sv, "server", sv)): getattr(sv, "server", sv) for sv in objs}.values()
    )

    def start(c: int, n: int) -> None:
        state["launching"] = True
        run = ItemRun(ctxs[c], plans, n, cp.depth, lambda: done(c), watch=in_item)
        runs[c] = run
        owner[id(run)] = c
        run.start()
        state["launching"] = False

    def key(cb: object) -> object:
        return (owner.get(id(getattr(cb, "__self__", None))), _cb_key(cb))

    def snapshot(now: float, relative: bool = False) -> tuple[tuple, list[float]]:
        """The quotient's state at ``now`` as ``(exact part, floats)`` (compare with
        :func:`_same_state`); ``relative``: body counters relative to each class's tiles
        stored (the in-item watch)."""
        fl: list[float] = []  # every float of the state, in a fixed order
        head: list[tuple | None] = []  # per class: its run's state, None while it is free
        for c in range(ncls):
            run = runs[c]
            if run is None or c in free:
                head.append(None)
                continue
            act = (run.loading, run.computing, run.storing)
            b = run.ks_done if relative else 0
            left = tuple(run.left[i] if act[i] else 0 for i in range(3))
            head.append(
                (run.mode, run.part, run.kl - b, run.kl_done - b, run.kc - b, run.kc_done - b,
                 run.ks - b, run.ks_done - b, act, left)
            )  # fmt: skip
            fl.extend(run.dl[i] - now if left[i] else 0.0 for i in range(3))
        jobs = []
        for server in servers_seen:
            heap = server.heap
            n = getattr(server, "nw", len(heap))
            v = server.v + ((now - server.t_last) * server.capacity / n if n else 0.0)
            entries = sorted(heap, key=lambda e: e[:2])
            fl.extend(e[0] - v for e in entries)
            jobs.append(tuple((key(e[2]), e[3:]) for e in entries))
        events = []
        for t, _prio, _eid, ev in sorted(rt.clock.queue, key=lambda q: (q[0], q[2])):
            cbs = ev.callbacks or ()
            if not cbs or isinstance(getattr(cbs[0], "__self__", None), PSServer):
                continue
            fl.append(t - now)
            events.append((key(cbs[0]), ev.data))
        return (tuple(head), tuple(jobs), tuple(events)), fl

    def watch(now: float) -> None:
        nxt = state["next"]
        if nxt < uniform or len(trips) - nxt < active:
            return
        snap = snapshot(now)
        true = now + shift[0]
        tol = 1e-9 * max(1.0, true)
        for old, t_old, n_old in reversed(hist):
            if nxt > n_old and _same_state(snap, old, tol):
                if (len(trips) - nxt) // (nxt - n_old) >= 1:
                    raise _Period(nxt, nxt - n_old, true - t_old, rt.clock.scheduled())
        hist.append((snap, true, nxt))
        if len(hist) > _MAX_HIST:
            del hist[0]

    def in_item(run: ItemRun) -> bool:
        """After a store of class ``pilot``: skip whole periods of a repeated state.

        NOTE: exact (up to float rounding of the shifted times). Between two hand-outs no
        class starts or stops an item, so the quotient's future is fixed by its state (as in
        :class:`_Period`, with each running class's body counters taken relative to its
        tiles stored ``b_c``) and by the tiles each class has left, ``r_c = n_c - b_c``. A
        load is issued only while ``kl < n`` and ``kl - kc_done < depth``, ``kc - ks_done <
        depth``, so ``kl < b_c + 2 depth``: while ``r_c >= 2 depth`` the trip count decides
        nothing. If the state after this store equals the state ``P`` earlier with every
        running class ``d_c > 0`` tiles further, every class ``r_c - d_c >= 2 depth`` (so
        that ``n`` decided nothing in between), then from a state ``(S, r + d)`` the system
        reaches ``(S, r)`` ``P`` later whenever ``r >= 2 depth``; so it reaches ``(S, r - m
        d)`` ``m P`` later: advance every running class ``m d_c`` tiles in place
        (:meth:`ItemRun.skip_tiles`) and let the quotient's clock fall ``m P`` behind the
        system's (``shift``). Nothing in the quotient depends on absolute time but the float
        tolerances. This is the steady state of long items (a persistent kernel's one item
        per slot, each operand load its own engine trip) that the hand-out periods of
        :class:`_Period` never see.
        """
        if owner.get(id(run)) != look["pilot"] or state["pending"] or look["left"] <= 0:
            return False
        margin = 2 * cp.depth + 1
        live = [c for c in range(ncls) if runs[c] is not None and c not in free]
        for c in live:
            r = runs[c]
            assert r is not None
            if not r.in_body() or r.n - r.ks_done <= margin:
                return False
        if rt.clock.scheduled() > budget:
            raise _Bail
        look["left"] -= 1
        now = rt.env._now
        snap = snapshot(now, relative=True)
        done_tiles = tuple(r.ks_done if r is not None else 0 for r in runs)
        tol = 1e-9 * max(1.0, now + shift[0])
        for old, t_old, b_old in reversed(inner):
            if not _same_state(snap, old, tol):
                continue
            d = {c: done_tiles[c] - b_old[c] for c in live}
            if min(d.values()) > 0:
                m = min((runs[c].n - done_tiles[c] - margin) // d[c] for c in live)  # type: ignore[union-attr]
                if m > 0:
                    for c in live:
                        runs[c].skip_tiles(m * d[c])  # type: ignore[union-attr]
                    shift[0] += m * (now - t_old)
                    inner.clear()
                    return False
            break
        inner.append((snap, now, done_tiles))
        if len(inner) > _MAX_INNER:
            del inner[0]
        return False

    def new_window() -> None:
        """A hand-out: watch the next window of the items' bodies from scratch."""
        inner.clear()
        look["left"] = _MAX_LOOKS
        live = [c for c in range(ncls) if runs[c] is not None]
        look["pilot"] = min(live) if live else -1

    def done(c: int) -> None:
        if state["launching"]:
            raise _Bail  # an item that takes no time: the engine's hand-out loop differs
        frees.append(rt.env._now + shift[0])
        free.append(c)
        if not state["pending"]:
            state["pending"] = True
            rt.clock.after(0.0, dispatch)

    def dispatch(_ev: object) -> None:
        state["pending"] = False
        if rt.clock.scheduled() > budget:
            raise _Bail
        watch(rt.env._now)
        freed = sorted(free)
        free.clear()
        slots = sorted(s for c in freed for s in members[c])
        nxt = state["next"]
        given = {s: trips[nxt + i] for i, s in enumerate(slots[: len(trips) - nxt])}
        state["next"] = min(len(trips), nxt + len(slots))
        if len(set(given.values())) > 1 or 0 < len(given) < len(slots):
            sensitive.append(rt.env._now + shift[0])
        split = False
        for c in freed:
            got = {given.get(s, -1) for s in members[c]}
            if len(got) > 1:
                split = True
        if split:
            new = [
                (cls[s], given.get(s, -1) if s in given or cls[s] in freed else None)
                for s in range(active)
            ]
            raise _Split(new, rt.clock.scheduled())
        for c in freed:
            n = given.get(members[c][0], -1)
            if n > 0:
                start(c, n)
            else:
                runs[c] = None  # idle for the rest of the phase
        new_window()

    for c in range(ncls):
        start(c, trips[members[c][0]])
    new_window()
    rt.env.run()
    if sensitive:
        ts = sorted(set(frees))
        for t in sensitive:
            tol = 1e-9 * max(1.0, t)
            if sum(1 for u in ts if abs(u - t) <= tol) > 1:
                raise _Bail
    return float(rt.env.now) + shift[0], rt.clock.scheduled()
