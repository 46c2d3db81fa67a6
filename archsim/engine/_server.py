"""Processor-sharing servers on a SimPy environment.

One :class:`PSServer` is one instance of a shared resource (a level's read port, a network, a
compute unit). While ``n`` jobs are active each advances at ``capacity / n`` per cycle
(processor sharing, not FIFO of whole jobs). The server keeps a *virtual time* ``V`` that
grows at ``capacity / n``; a job of ``work`` arriving at ``V0`` finishes when ``V`` reaches
``V0 + work``, so an arrival or departure costs O(log n), not O(n) (the classic egalitarian
processor-sharing construction).

Only one SimPy timeout is kept per server for its next departure. Arrivals slow everybody
down, so an already scheduled timeout can only be early: it fires, finds nothing due and
re-arms. A departure time that moves earlier (a shorter job arrives) arms a new timeout and
the old one is ignored by its generation number. Ties are broken by an arrival counter.

Events are SimPy events on SimPy's own queue and loop (``Environment.step``), but the
engine schedules them itself with a minimal event object (:class:`Ev`): a ``Timeout`` costs
an ``Event.__init__``, a property and a method call per event, about a third of the engine's
time per event. ``Environment.step`` only reads ``callbacks`` and ``_ok`` of an event.
"""

from __future__ import annotations

import heapq
from collections.abc import Callable
from typing import Any

import simpy

__all__ = ["Clock", "Ev", "PSServer", "Weighted", "WeightedPSServer"]

_REL_EPS = 1e-11
_NORMAL = 1  # simpy.events.NORMAL: the priority of a Timeout
_heappush = heapq.heappush
_heappop = heapq.heappop

# NOTE: the engine relies on three attributes of SimPy 4's Environment (the event heap,
# the event-id counter, the current time); fail loudly at import if a SimPy release renames
# them rather than mis-simulate.
_probe = simpy.Environment()
if not all(hasattr(_probe, a) for a in ("_queue", "_eid", "_now")):  # pragma: no cover
    raise ImportError("archsim.engine needs SimPy 4's Environment._queue/_eid/_now")
del _probe


class Ev:
    """A minimal processed-once SimPy event: ``callbacks``, ``_ok`` and a payload ``data``."""

    __slots__ = ("callbacks", "_ok", "data")
    callbacks: list[Callable[[Ev], None]]
    _ok: bool
    data: Any


class Clock:
    """Shared event bookkeeping of one simulation: the SimPy env and the trace.

    ``after`` puts an :class:`Ev` on the environment's heap exactly as
    ``Environment.schedule`` does (time, priority ``NORMAL``, event id), so event order is
    SimPy's: by time, then by scheduling order.
    """

    __slots__ = ("env", "queue", "eid", "trace", "trace_limit", "trace_dropped")

    def __init__(self, env: simpy.Environment, trace: list | None, trace_limit: int) -> None:
        self.env = env
        # SimPy's event heap, holding this engine's Ev objects too (SimPy's loop reads only
        # their callbacks and _ok)
        self.queue: list[tuple[float, int, int, Ev]] = env._queue  # type: ignore[assignment]
        self.eid = env._eid
        self.trace = trace
        self.trace_limit = trace_limit
        self.trace_dropped = 0

    def after(self, delay: float, callback: Callable[[Ev], None], data: object = None) -> None:
        """Run ``callback(event)`` ``delay`` cycles from now (``event.data`` = ``data``)."""
        ev = Ev()
        ev.callbacks = [callback]
        ev._ok = True
        ev.data = data
        _heappush(self.queue, (self.env._now + delay, _NORMAL, next(self.eid), ev))

    @property
    def now(self) -> float:
        """Current simulated time, cycles."""
        return self.env._now

    def scheduled(self) -> int:
        """SimPy events scheduled on this environment so far (call once, at the end)."""
        return next(self.eid)

    def span(
        self,
        pid: str,
        tid: int | tuple[int, str],
        name: str,
        start: float,
        end: float,
        args: dict[str, object] | None = None,
    ) -> None:
        """Record one trace span (bounded by ``trace_limit``): component ``pid``, track
        ``tid`` (an instance, or ``(slot, lane)``), cycles ``start`` to ``end``, and ``args``
        (see :mod:`archsim.engine._trace_labels`)."""
        tr = self.trace
        if tr is None:
            return
        if len(tr) >= self.trace_limit:
            self.trace_dropped += 1
            return
        tr.append((pid, tid, name, start, end - start, args))


class PSServer:
    """One instance of a processor-sharing resource.

    Parameters
    ----------
    clock
        The simulation's :class:`Clock`.
    capacity
        Work served per cycle when one job is active (bytes/cycle, or 1 for compute units,
        whose work is measured in cycles at full throughput).
    name, instance
        For traces.
    """

    __slots__ = (
        "clock",
        "env",
        "capacity",
        "name",
        "instance",
        "v",
        "t_last",
        "heap",
        "seq",
        "gen",
        "pending_at",
        "busy_since",
        "busy_cycles",
        "_cb",
        "queue",
        "eid",
        "served",
    )

    def __init__(self, clock: Clock, capacity: float, name: str, instance: int) -> None:
        self.clock = clock
        self.env = clock.env
        self.capacity = capacity
        self.name = name
        self.instance = instance
        self.v = 0.0
        self.t_last = 0.0
        # (virtual finish, arrival seq, done callback[, multiplicity in WeightedPSServer])
        self.heap: list[tuple[Any, ...]] = []
        self.seq = 0
        self.gen = 0
        self.pending_at: float | None = None
        self.busy_since = 0.0
        self.busy_cycles = 0.0
        self._cb = self._on_timeout
        self.queue = clock.queue
        self.eid = clock.eid
        self.served: dict[str, float] | None = None

    def note(self, label: str, work: float) -> None:
        """Traced runs only: a job of ``work`` from the stage ``label`` is submitted next
        (the busy span that serves it is named after the stages it served)."""
        served = self.served
        if served is None:
            self.served = served = {}
        served[label] = served.get(label, 0.0) + work

    def submit(self, work: float, done: Callable[[], None]) -> None:
        """Start a job of ``work`` units; ``done()`` is called when it finishes."""
        now = self.env._now
        heap = self.heap
        n = len(heap)
        if n:
            self.v += (now - self.t_last) * self.capacity / n
        else:
            self.busy_since = now
        self.t_last = now
        self.seq += 1
        _heappush(heap, (self.v + work, self.seq, done))
        # arm: when does the earliest job finish now that n+1 jobs share the server?
        at = now + (heap[0][0] - self.v) * (n + 1) / self.capacity
        pending = self.pending_at
        if pending is not None and pending <= at:
            return  # the scheduled timeout is early or on time: it re-arms when it fires
        self._schedule(now, at)

    def _schedule(self, now: float, at: float) -> None:
        if at < now:
            at = now
        gen = self.gen + 1
        self.gen = gen
        self.pending_at = at
        # Clock.after, inlined (one call less per departure)
        ev = Ev()
        ev.callbacks = [self._cb]
        ev._ok = True
        ev.data = gen
        _heappush(self.queue, (now + (at - now), _NORMAL, next(self.eid), ev))

    def _on_timeout(self, ev: Ev) -> None:
        if ev.data != self.gen:
            return
        now = self.env._now
        heap = self.heap
        n = len(heap)
        if n:
            self.v += (now - self.t_last) * self.capacity / n
        self.t_last = now
        self.pending_at = None
        if not n:
            return
        # due: finishing within float resolution of now (avoids zero-delay re-arm loops)
        v = self.v
        slack_t = _REL_EPS * (now if now > 1.0 else 1.0)
        a = _REL_EPS * max(1.0, abs(v))
        b = slack_t * self.capacity / max(1, n)
        v_due = v + (a if a > b else b)
        if heap[0][0] > v_due:
            self._schedule(now, now + (heap[0][0] - v) * n / self.capacity)
            return
        first = _heappop(heap)[2]
        if not heap or heap[0][0] > v_due:
            if heap:
                self._schedule(now, now + (heap[0][0] - v) * len(heap) / self.capacity)
            else:
                self._idle(now)
            first()
            return
        done = [first]
        while heap and heap[0][0] <= v_due:
            done.append(_heappop(heap)[2])
        if heap:
            self._schedule(now, now + (heap[0][0] - v) * len(heap) / self.capacity)
        else:
            self._idle(now)
        for cb in done:
            cb()

    def _idle(self, now: float) -> None:
        self.busy_cycles += now - self.busy_since
        if self.clock.trace is not None:
            from archsim.engine._trace_labels import busy_name, server_args

            served, self.served = self.served or {}, None
            args = server_args(self.name, self.instance, served)
            self.clock.span(self.name, self.instance, busy_name(served), self.busy_since, now, args)
        # restart virtual time so that it does not drift over long runs
        self.v = 0.0


class WeightedPSServer(PSServer):
    """A processor-sharing instance whose jobs each stand for ``mult`` identical jobs.

    Used by the class shortcut (see :mod:`archsim.engine._shortcuts`): one representative
    slot stands for ``mult`` slots in lockstep, so each of its jobs counts ``mult`` times in
    the number of sharers; every one of the ``mult`` copies advances at ``capacity / n``
    with ``n`` the weighted job count, exactly as the copies would on a plain server.
    """

    __slots__ = ("nw",)

    def __init__(self, clock: Clock, capacity: float, name: str, instance: int) -> None:
        super().__init__(clock, capacity, name, instance)
        self.nw = 0

    def submit_weighted(self, work: float, done: Callable[[], None], mult: int) -> None:
        """Start ``mult`` identical jobs of ``work``; ``done()`` is called once, at their end."""
        now = self.env._now
        heap = self.heap
        n = self.nw
        if n:
            self.v += (now - self.t_last) * self.capacity / n
        else:
            self.busy_since = now
        self.t_last = now
        self.seq += 1
        self.nw = n + mult
        _heappush(heap, (self.v + work, self.seq, done, mult))
        at = now + (heap[0][0] - self.v) * self.nw / self.capacity
        pending = self.pending_at
        if pending is not None and pending <= at:
            return
        self._schedule(now, at)

    def submit(self, work: float, done: Callable[[], None]) -> None:
        """Start one job (multiplicity 1)."""
        self.submit_weighted(work, done, 1)

    def _on_timeout(self, ev: Ev) -> None:
        if ev.data != self.gen:
            return
        now = self.env._now
        heap = self.heap
        n = self.nw
        if n:
            self.v += (now - self.t_last) * self.capacity / n
        self.t_last = now
        self.pending_at = None
        if not heap:
            return
        v = self.v
        slack_t = _REL_EPS * (now if now > 1.0 else 1.0)
        a = _REL_EPS * max(1.0, abs(v))
        b = slack_t * self.capacity / max(1, n)
        v_due = v + (a if a > b else b)
        done = []
        while heap and heap[0][0] <= v_due:
            entry = _heappop(heap)
            self.nw -= entry[3]
            done.append(entry[2])
        if heap:
            self._schedule(now, now + (heap[0][0] - v) * self.nw / self.capacity)
        else:
            self._idle(now)
        for cb in done:
            cb()


class Weighted:
    """A slot's handle on a :class:`WeightedPSServer`: its jobs count ``mult`` times."""

    __slots__ = ("server", "mult")

    def __init__(self, server: WeightedPSServer, mult: int) -> None:
        self.server = server
        self.mult = mult

    def submit(self, work: float, done: Callable[[], None]) -> None:
        """Start ``mult`` identical jobs of ``work``; ``done()`` once at their end."""
        self.server.submit_weighted(work, done, self.mult)
