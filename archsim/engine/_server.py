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
"""

from __future__ import annotations

import heapq
from collections.abc import Callable

import simpy
from simpy.events import Timeout

__all__ = ["PSServer", "Clock"]

_REL_EPS = 1e-11


class Clock:
    """Shared event bookkeeping of one simulation: the SimPy env and an event counter."""

    __slots__ = ("env", "events", "trace", "trace_limit", "trace_dropped")

    def __init__(self, env: simpy.Environment, trace: list | None, trace_limit: int) -> None:
        self.env = env
        self.events = 0
        self.trace = trace
        self.trace_limit = trace_limit
        self.trace_dropped = 0

    def after(self, delay: float, callback: Callable[[object], None]) -> None:
        """Run ``callback(event)`` ``delay`` cycles from now (a SimPy Timeout)."""
        self.events += 1
        ev = Timeout(self.env, delay)
        ev.callbacks.append(callback)

    def span(self, pid: str, tid: int, name: str, start: float, end: float) -> None:
        """Record one trace span (bounded by ``trace_limit``)."""
        tr = self.trace
        if tr is None:
            return
        if len(tr) >= self.trace_limit:
            self.trace_dropped += 1
            return
        tr.append((pid, tid, name, start, end - start))


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
    )

    def __init__(self, clock: Clock, capacity: float, name: str, instance: int) -> None:
        self.clock = clock
        self.capacity = capacity
        self.name = name
        self.instance = instance
        self.v = 0.0
        self.t_last = 0.0
        self.heap: list[tuple[float, int, Callable[[], None]]] = []
        self.seq = 0
        self.gen = 0
        self.pending_at: float | None = None
        self.busy_since = 0.0
        self.busy_cycles = 0.0

    def _advance(self, now: float) -> None:
        n = len(self.heap)
        if n:
            self.v += (now - self.t_last) * self.capacity / n
        self.t_last = now

    def submit(self, work: float, done: Callable[[], None]) -> None:
        """Start a job of ``work`` units; ``done()`` is called when it finishes."""
        now = self.clock.env.now
        heap = self.heap
        n = len(heap)
        if n:
            self.v += (now - self.t_last) * self.capacity / n
        else:
            self.busy_since = now
        self.t_last = now
        self.seq += 1
        heapq.heappush(heap, (self.v + work, self.seq, done))
        # arm: when does the earliest job finish now that n+1 jobs share the server?
        at = now + (heap[0][0] - self.v) * (n + 1) / self.capacity
        pending = self.pending_at
        if pending is not None and pending <= at:
            return  # the scheduled timeout is early or on time: it re-arms when it fires
        self._schedule(now, at)

    def _schedule(self, now: float, at: float) -> None:
        if at < now:
            at = now
        self.gen += 1
        self.pending_at = at
        clock = self.clock
        clock.events += 1
        ev = Timeout(clock.env, at - now)
        ev.gen = self.gen  # type: ignore[attr-defined]
        ev.callbacks.append(self._on_timeout)

    def _on_timeout(self, ev: Timeout) -> None:
        self._fire(ev.gen)  # type: ignore[attr-defined]

    def _arm(self, now: float) -> None:
        heap = self.heap
        if not heap:
            self.pending_at = None
            return
        at = now + (heap[0][0] - self.v) * len(heap) / self.capacity
        pending = self.pending_at
        if pending is not None and pending <= at:
            return
        self._schedule(now, at)

    def _fire(self, gen: int) -> None:
        if gen != self.gen:
            return
        now = self.clock.env.now
        self._advance(now)
        self.pending_at = None
        heap = self.heap
        # due: finishing within float resolution of now (avoids zero-delay re-arm loops)
        slack_t = _REL_EPS * max(1.0, now)
        v_due = self.v + max(
            _REL_EPS * max(1.0, abs(self.v)), slack_t * self.capacity / max(1, len(heap))
        )
        done: list[Callable[[], None]] = []
        while heap and heap[0][0] <= v_due:
            done.append(heapq.heappop(heap)[2])
        if heap:
            self._arm(now)
        else:
            self.busy_cycles += now - self.busy_since
            self.clock.span(self.name, self.instance, "busy", self.busy_since, now)
            # restart virtual time so that it does not drift over long runs
            self.v = 0.0
        for cb in done:
            cb()
