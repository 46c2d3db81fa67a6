"""Slots that run alone (used by :mod:`archsim.engine._shortcuts`): one representative
slot's prologue, body and epilogue times, the periodic states that let a long body stop
early, and items on slots that share no server (list-scheduled by their times alone)."""

from __future__ import annotations

import heapq

import numpy as np

from archsim.engine._compile import CompiledPhase, CompiledProgram, CompiledStep
from archsim.engine._pipeline import ItemRun, PhasePlans, step_plans
from archsim.engine._runtime import Runtime, used_servers
from archsim.engine._server import PSServer

__all__ = [
    "_Segment",
    "_StateWatch",
    "_cb_key",
    "_disjoint_stages",
    "_independent_items",
    "_one_slot_items",
    "_same",
    "_same_state",
]


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
