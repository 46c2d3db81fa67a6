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
    (:meth:`_Quotient.in_item`: persistent kernels' one long item per slot, whose
    trips the GPU lowering doubles with one engine load per operand tile).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import replace
from typing import Any

import numpy as np

from archsim.engine._compile import CompiledPhase, CompiledProgram
from archsim.engine._pipeline import ItemRun, SlotContext
from archsim.engine._runtime import (
    Runtime,
    mixed_servers,
    used_servers,
)
from archsim.engine._segment import (
    _cb_key,
    _independent_items,
    _one_slot_items,
    _same_state,
    _Segment,
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
    """A class of slots must be refined (its slots get different items): new labels (the
    quotient refines its partition in place, :meth:`_Quotient._split`; this is the record)."""

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
#: ... counting at most this many body steps (~1 s of SimPy): a phase the quotient gives up
#: on is simulated in the compiled loop or, if large, given its bounds. Skipping periods
#: inside the items (``_Quotient.in_item``) makes its cost grow with the hand-outs, not the
#: trips: block-sparse 40 heads x 75,600 on h100 takes 195k events (0.4 s), which the
#: former cap (400k steps: 205k events) left no room for
_BUDGET_STEPS = 1_000_000
#: with nothing skipped yet, give up early once the runs have cost over ``1 /
#: _PROJECT_AFTER`` of the budget and, going on at that rate (events per item handed out),
#: the whole phase would cost over ``_PROJECT_MARGIN`` budgets (see ``_Quotient._dispatch``)
_PROJECT_AFTER = 8
_PROJECT_MARGIN = 2.0
#: most refinements of the partition before giving up (each adds classes to simulate)
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
    what each slot gets, in place (:meth:`_Quotient._split`: refining a lockstep class
    changes no trajectory). Between hand-outs, a state that repeats (relative to the tiles
    each class has stored) is skipped in place by whole periods of the running items (see
    :meth:`_Quotient.in_item`), so long items cost their transients, not their
    trips. Where the hand-out is not uniform and another class frees within float tolerance
    of that instant (the order could differ in the full simulation), an item takes no time,
    or the runs cost more than ``_BUDGET_PER_STEP`` events per body step (plus
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
    # give up (simulate slot by slot, compiled) once the runs have cost about half what
    # that would (at most what _BUDGET_STEPS steps would)
    budget = int(_BUDGET_PER_STEP * min(p.total_trips, _BUDGET_STEPS)) + _BUDGET_FLOOR
    skipped = 0.0
    cls = _refine(labels, k)
    if 2 * len(set(cls)) > active:
        return None
    while True:  # each _Period drops items: this ends
        try:
            end, ev = _quotient(
                compiled, cp, cls, trips, k, active, uniform, budget - events, not events
            )
        except _Period as per:
            # NOTE: exact; see _Period. T(W) = T(W - n X) + n P while W - n X >= next_j.
            events += per.events
            n = (len(trips) - per.next_j) // per.items
            trips = trips[: len(trips) - n * per.items]
            skipped += n * per.period
            continue
        except _Bail:
            return None
        return skipped + end, events + ev


class _Quotient:
    """One representative per class of ``cls`` on weighted servers (see
    :func:`_grouped_lockstep`); :meth:`run` returns ``(phase time, events)``.

    Raises :class:`_Period` or :class:`_Bail` (see there); refines its partition in place
    when a hand-out differs within a class (:meth:`_split`).
    """

    def __init__(
        self,
        compiled: CompiledProgram,
        cp: CompiledPhase,
        cls: list[int],
        trips: list[int],
        k: int | None,
        active: int,
        uniform: int,
        budget: int,
        project: bool = False,
    ) -> None:
        self.cp = cp
        self.servers = compiled.servers
        self.used = used_servers(cp)
        self.trips = trips
        self.k = k
        self.active = active
        self.uniform = uniform
        self.budget = budget
        self.project = project  # may give up early on the projected cost (see _dispatch)
        self.margin = 2 * cp.depth + 1  # tiles an item keeps to store when skipped (in_item)
        rt = self.rt = Runtime(compiled, [])
        mixed = mixed_servers(cp)
        rt.private = [
            s in self.used and sv.instances >= active and s not in mixed
            for s, sv in enumerate(self.servers)
        ]
        self.plans = rt.phase_plans(cp)
        self.next = active  # next item to hand out
        self.launching = False
        self.pending = False
        self.free: list[int] = []
        self.sensitive: list[float] = []  # true times (see ``shift``)
        self.frees: list[float] = []
        # cycles skipped in place by periods inside the items: the quotient's clock runs
        # this much behind the system's (true time = ``rt.env.now + shift``)
        self.shift = 0.0
        # the in-item watch: snapshots (state, clock time, tiles stored per class) since
        # the last hand-out, taken at the stores of class ``pilot``
        self.inner: list[tuple[tuple, float, tuple[int, ...]]] = []
        self.pilot = 0
        self.looks = _MAX_LOOKS
        self.hist: list[tuple[tuple, float, int]] = []  # hand-out snapshots (see _Period)
        self.splits = 0
        self.shared: dict[object, WeightedPSServer] = {}
        self._partition(cls)
        self.runs: list[ItemRun | None] = [None] * self.ncls

    # ---- the partition --------------------------------------------------------------------
    def _partition(self, cls: list[int]) -> None:
        """Classes, contexts and weighted servers of the partition ``cls`` (all-shared
        servers kept from the previous partition; group and per-slot ones made anew)."""
        rt, servers, k, active = self.rt, self.servers, self.k, self.active
        self.cls = cls
        self.ncls = max(cls) + 1
        self.members: list[list[int]] = [[] for _ in range(self.ncls)]
        for s, c in enumerate(cls):
            self.members[c].append(s)
        old = self.shared
        self.shared = {idx: sv for idx, sv in old.items() if isinstance(idx, int)}

        def wps(key: object, idx: int) -> WeightedPSServer:
            got = self.shared.get(key)
            if got is None:
                got = self.shared[key] = WeightedPSServer(rt.clock, servers[idx].capacity, "", 0)
            return got

        self.ctxs: list[SlotContext] = []
        for c in range(self.ncls):
            s0 = self.members[c][0]
            mine = [cls[t] for t in range(s0 % k, active, k)] if k is not None else []
            gtype = tuple(sorted(mine))
            ctx_servers: list[PSServer | Weighted | None] = []
            for idx, sv in enumerate(servers):
                if idx not in self.used or rt.private[idx]:
                    ctx_servers.append(None)
                elif sv.instances == 1:
                    ctx_servers.append(Weighted(wps(idx, idx), len(self.members[c])))
                elif sv.instances == k:
                    ctx_servers.append(Weighted(wps((gtype, idx), idx), mine.count(c)))
                else:  # a per-slot instance used by two stages of the slot
                    ctx_servers.append(PSServer(rt.clock, sv.capacity, sv.name, c))
            self.ctxs.append(SlotContext(rt.clock, ctx_servers, c, self.cp.phase.name))  # type: ignore[arg-type]  # Weighted: a server handle
        objs = [sv for ctx in self.ctxs for sv in ctx.servers if sv is not None]
        self.servers_seen: list[PSServer] = list(
            {id(getattr(sv, "server", sv)): getattr(sv, "server", sv) for sv in objs}.values()
        )
        self.owner: dict[int, int] = {}

    def _split(self, labels: list, freed: list[int]) -> list[int]:
        """Refine the partition by ``labels`` in place, at a hand-out; returns the new
        classes of the slots ``freed`` (whose runs have ended).

        NOTE: exact. Slots of one class follow one trajectory, so every slot of a child
        class has its parent's state: each child's representative is a copy of its parent's
        run (:meth:`ItemRun.clone`), each of the parent's jobs on a server becomes one job
        per child on the matching server with the child's weight there (the weights of the
        children sum to the parent's: same finish, same number of sharers), and each pending
        event of the parent's run one per child. The refined quotient is then in the state
        the refined quotient run from the start would be in now (refining a lockstep class
        changes no trajectory), without running it again.
        """
        self.splits += 1
        if self.splits >= _MAX_SPLITS:
            raise _Bail
        _Split(labels, 0)  # the record of a refinement (tests count them)
        new = _refine(labels, self.k)
        if 2 * (max(new) + 1) > self.active:
            raise _Bail
        old_cls, old_ctxs, old_runs = self.cls, self.ctxs, self.runs
        old_of = {id(r): c for c, r in enumerate(old_runs) if r is not None}

        def owner_of(cb: object) -> int | None:
            """The old class whose run ``cb`` is bound to, else None."""
            run = getattr(cb, "__self__", None)
            c = old_of.get(id(run))
            return c if c is not None and old_runs[c] is run else None

        old_group = {key: sv for key, sv in self.shared.items() if not isinstance(key, int)}
        parent = {c2: old_cls[s] for s, c2 in enumerate(new)}
        self._partition(new)
        children: dict[int, list[int]] = {}
        for c2 in range(self.ncls):
            children.setdefault(parent[c2], []).append(c2)
        runs: list[ItemRun | None] = [None] * self.ncls
        for c2 in range(self.ncls):
            run = old_runs[parent[c2]]
            if run is not None and parent[c2] not in freed:
                runs[c2] = run.clone(self.ctxs[c2], self._on_done(c2), self.in_item)
                self.owner[id(runs[c2])] = c2
        self.runs = runs

        def new_cb(cb: Any, c2: int) -> Any:
            return getattr(runs[c2], cb.__func__.__name__)

        # each new server: its old one (same object for all-shared servers) and its classes'
        # weights there
        weights: dict[int, tuple[PSServer, PSServer, dict[int, int]]] = {}
        for c2, ctx in enumerate(self.ctxs):
            for idx, handle in enumerate(ctx.servers):
                if handle is None:
                    continue
                srv = getattr(handle, "server", handle)
                if self.servers[idx].instances == 1:
                    src = srv
                elif self.servers[idx].instances == self.k:
                    s0 = self.members[c2][0]
                    mine = [parent[self.cls[t]] for t in range(s0 % self.k, self.active, self.k)]
                    src = old_group[(tuple(sorted(mine)), idx)]
                else:
                    src = old_ctxs[parent[c2]].servers[idx]
                got = weights.setdefault(id(srv), (srv, src, {}))
                got[2][c2] = getattr(handle, "mult", 1)
        now = self.rt.env._now
        for srv, src, mult in weights.values():
            entries = sorted(src.heap, key=lambda e: e[:2])
            heap: list[tuple] = []
            for e in entries:
                c = owner_of(e[2])
                assert c is not None  # a job of a running class
                for c2 in children[c]:
                    if c2 in mult:
                        job = (e[0], len(heap), new_cb(e[2], c2))
                        heap.append((*job, mult[c2]) if isinstance(srv, WeightedPSServer) else job)
            if srv is not src:
                srv.v, srv.t_last, srv.busy_since = src.v, src.t_last, src.busy_since
            srv.heap = heap  # sorted: a heap
            srv.seq = len(heap)
            if isinstance(srv, WeightedPSServer):
                srv.nw = sum(e[3] for e in heap)
            if srv is not src and heap:
                if src.pending_at is None:
                    raise _Bail  # not between events (never at a hand-out)
                srv._schedule(now, src.pending_at)
        for _srv, src, _mult in weights.values():
            if src not in self.servers_seen:
                src.gen += 1  # its armed timeout is void: the new servers serve its jobs
                src.heap = []
        copies: list[tuple[float, Any, object]] = []
        for t, _prio, _eid, ev in list(self.rt.clock.queue):
            cb = ev.callbacks[0] if ev.callbacks else None
            c = owner_of(cb)
            if c is None:
                continue
            first, *rest = children[c]
            ev.callbacks = [new_cb(cb, first)]
            copies.extend((t - now, new_cb(cb, c2), ev.data) for c2 in rest)
        for delay, cb, data in copies:
            self.rt.clock.after(delay, cb, data)
        self.hist.clear()
        return sorted({c2 for c2 in range(self.ncls) if parent[c2] in freed})

    # ---- running -----------------------------------------------------------------------
    def run(self) -> tuple[float, int]:
        for c in range(self.ncls):
            self._start(c, self.trips[self.members[c][0]])
        self._new_window()
        rt = self.rt
        rt.env.run()
        if self.sensitive:
            ts = sorted(set(self.frees))
            for t in self.sensitive:
                tol = 1e-9 * max(1.0, t)
                if sum(1 for u in ts if abs(u - t) <= tol) > 1:
                    raise _Bail
        return float(rt.env.now) + self.shift, rt.clock.scheduled()

    def _on_done(self, c: int) -> Callable[[], None]:
        return lambda: self._done(c)

    def _start(self, c: int, n: int) -> None:
        self.launching = True
        run = ItemRun(
            self.ctxs[c], self.plans, n, self.cp.depth, self._on_done(c), watch=self.in_item
        )
        self.runs[c] = run
        self.owner[id(run)] = c
        run.start()
        self.launching = False

    def _done(self, c: int) -> None:
        if self.launching:
            raise _Bail  # an item that takes no time: the engine's hand-out loop differs
        self.frees.append(self.rt.env._now + self.shift)
        self.free.append(c)
        if not self.pending:
            self.pending = True
            self.rt.clock.after(0.0, self._dispatch)

    def _dispatch(self, _ev: object) -> None:
        self.pending = False
        rt = self.rt
        ev = rt.clock.scheduled()
        if ev > self.budget:
            raise _Bail
        # NOTE: giving up is always safe (the phase is then simulated slot by slot, or, if
        # large with tight bounds, given their midpoint, as after any give-up); this only
        # saves cost. With nothing skipped yet (no period, in an item or of hand-outs), the
        # runs cost about as much per item handed out as the full simulation would: a phase
        # whose projected cost is well over the budget (ragged causal attention: 8-32k
        # items of distinct trips on 264 slots, 3-50x over) would hit it anyway.
        if (
            self.project
            and self.shift == 0.0
            and ev * _PROJECT_AFTER > self.budget
            and ev * len(self.trips) > _PROJECT_MARGIN * self.budget * self.next
        ):
            raise _Bail
        self._watch(rt.env._now)
        freed = sorted(self.free)
        self.free.clear()
        members, trips = self.members, self.trips
        slots = sorted(s for c in freed for s in members[c])
        nxt = self.next
        given = {s: trips[nxt + i] for i, s in enumerate(slots[: len(trips) - nxt])}
        self.next = min(len(trips), nxt + len(slots))
        if len(set(given.values())) > 1 or 0 < len(given) < len(slots):
            self.sensitive.append(rt.env._now + self.shift)
        if any(len({given.get(s, -1) for s in members[c]}) > 1 for c in freed):
            cls = self.cls
            labels = [
                (cls[s], given.get(s, -1) if s in given or cls[s] in freed else None)
                for s in range(self.active)
            ]
            freed = self._split(labels, freed)
            members = self.members
        for c in freed:
            n = given.get(members[c][0], -1)
            if n > 0:
                self._start(c, n)
            else:
                self.runs[c] = None  # idle for the rest of the phase
        self._new_window()

    # ---- periods -------------------------------------------------------------------------
    def _key(self, cb: object) -> object:
        return (self.owner.get(id(getattr(cb, "__self__", None))), _cb_key(cb))

    def _snapshot(self, now: float, relative: bool = False) -> tuple[tuple, list[float]]:
        """The quotient's state at ``now`` as ``(exact part, floats)`` (compare with
        :func:`_same_state`); ``relative``: body counters relative to each class's tiles
        stored (the in-item watch)."""
        fl: list[float] = []  # every float of the state, in a fixed order
        head: list[tuple | None] = []  # per class: its run's state, None while it is free
        for c in range(self.ncls):
            run = self.runs[c]
            if run is None or c in self.free:
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
        key = self._key
        jobs = []
        for server in self.servers_seen:
            heap = server.heap
            n = getattr(server, "nw", len(heap))
            v = server.v + ((now - server.t_last) * server.capacity / n if n else 0.0)
            entries = sorted(heap, key=lambda e: e[:2])
            fl.extend(e[0] - v for e in entries)
            jobs.append(tuple((key(e[2]), e[3:]) for e in entries))
        events = []
        for t, _prio, _eid, ev in sorted(self.rt.clock.queue, key=lambda q: (q[0], q[2])):
            cbs = ev.callbacks or ()
            if not cbs or isinstance(getattr(cbs[0], "__self__", None), PSServer):
                continue
            fl.append(t - now)
            events.append((key(cbs[0]), ev.data))
        return (tuple(head), tuple(jobs), tuple(events)), fl

    def _watch(self, now: float) -> None:
        """At a hand-out: raise :class:`_Period` if the state repeats one seen before."""
        nxt = self.next
        if nxt < self.uniform or len(self.trips) - nxt < self.active:
            return
        snap = self._snapshot(now)
        true = now + self.shift
        tol = 1e-9 * max(1.0, true)
        for old, t_old, n_old in reversed(self.hist):
            if nxt > n_old and _same_state(snap, old, tol):
                if (len(self.trips) - nxt) // (nxt - n_old) >= 1:
                    raise _Period(nxt, nxt - n_old, true - t_old, self.rt.clock.scheduled())
        self.hist.append((snap, true, nxt))
        if len(self.hist) > _MAX_HIST:
            del self.hist[0]

    def in_item(self, run: ItemRun) -> bool:
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
        if self.owner.get(id(run)) != self.pilot or self.pending or self.looks <= 0:
            return False
        runs, margin = self.runs, self.margin
        live = [c for c in range(self.ncls) if runs[c] is not None and c not in self.free]
        for c in live:
            r = runs[c]
            assert r is not None
            if not r.in_body() or r.n - r.ks_done <= margin:
                return False
        rt = self.rt
        if rt.clock.scheduled() > self.budget:
            raise _Bail
        self.looks -= 1
        now = rt.env._now
        snap = self._snapshot(now, relative=True)
        done = tuple(r.ks_done if r is not None else 0 for r in runs)
        tol = 1e-9 * max(1.0, now + self.shift)
        for old, t_old, b_old in reversed(self.inner):
            if not _same_state(snap, old, tol):
                continue
            d = {c: done[c] - b_old[c] for c in live}
            if min(d.values()) > 0:
                m = min((runs[c].n - done[c] - margin) // d[c] for c in live)  # type: ignore[union-attr]
                if m > 0:
                    for c in live:
                        runs[c].skip_tiles(m * d[c])  # type: ignore[union-attr]
                    self.shift += m * (now - t_old)
                    self.inner.clear()
                    return False
            break
        self.inner.append((snap, now, done))
        if len(self.inner) > _MAX_INNER:
            del self.inner[0]
        return False

    def _new_window(self) -> None:
        """A hand-out: watch the next window of the items' bodies from scratch."""
        self.inner.clear()
        self.looks = _MAX_LOOKS
        live = [c for c in range(self.ncls) if self.runs[c] is not None]
        self.pilot = min(live) if live else -1


def _quotient(
    compiled: CompiledProgram,
    cp: CompiledPhase,
    cls: list[int],
    trips: list[int],
    k: int | None,
    active: int,
    uniform: int,
    budget: int,
    project: bool = False,
) -> tuple[float, int]:
    """Run one representative per class of ``cls`` (see :class:`_Quotient`)."""
    return _Quotient(compiled, cp, cls, trips, k, active, uniform, budget, project).run()
