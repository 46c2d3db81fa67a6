"""Compiled (numba) slot-by-slot simulation of one phase: the SimPy engine's own loop, faster.

:func:`run_phase` runs every slot of a phase alone (no other phase on its servers), exactly
as ``Runtime`` + ``PhaseRun`` + ``ItemRun`` + ``PSServer`` do on SimPy, in one compiled loop
of flat arrays: ~0.11 us per event instead of ~2-3 us of Python, ~1.4 us per body step of
a GPU causal-attention phase (``bench/bench_engine.py``, ``bench/bench_validate.py``; those
phases, which no exact shortcut covers, have 1-230 M events).

NOTE: exact (bit-identical cycles to the SimPy engine). It is a line-by-line transcription
of the same state machines with the same floating-point expressions in the same order:

- the event queue orders by ``(time, event id)`` like SimPy's ``(time, NORMAL, eid)`` (the
  engine schedules every event with priority ``NORMAL``; see :func:`_push_q` for the FIFOs
  beside the heap) and ids are given in the same
  scheduling order, so events fire in the same order;
- each processor-sharing instance keeps the same virtual time, arrival counter, generation
  and armed departure as :class:`archsim.engine._server.PSServer` (its heap's order, by
  ``(virtual finish, arrival)``, is unique, so any binary heap pops the same sequence), with
  the same float tolerance for jobs due together and done-callbacks run in pop order;
- stage plans come from :func:`archsim.engine._pipeline.step_plans` with the servers the
  ``Runtime`` would keep private, and the body pipeline, prologue/epilogue and hand-out of
  items (slots freed at one instant take items in slot order, in one zero-delay event; an
  item that takes no time is followed at once by the next) follow ``ItemRun`` and
  ``PhaseRun`` step by step.

Tests (``tests/archsim/test_engine_fastsim.py``) hold it equal to the SimPy loop on random
programs. Traced runs stay on SimPy (the compiled loop records no spans).
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import numpy as np
from numba import njit

from archsim.engine._pipeline import step_plans

if TYPE_CHECKING:
    from archsim.engine._compile import CompiledPhase, CompiledProgram

__all__ = ["run_phase"]

_REL_EPS = 1e-11  # the same as archsim.engine._server._REL_EPS
# event kinds
_TIMEOUT, _LATENCY, _DEADLINE, _DISPATCH = 0, 1, 2, 3
_AMASK = (1 << 24) - 1  # slots and server instances per phase: fewer than 2**24

# All state, the event queue included, lives in two flat arrays, ``IS`` (int64) and ``FS``
# (float64), so that every call passes two arrays: a numba call costs ~5 ns per array
# argument (reference counts), which dominated with one array per table. ``IS[:_HDR]``
# holds the scalars and the offsets of the tables. For the same reason the leaf helpers
# (event queue, server heaps, ``_schedule``, ``_submit``) are inlined into their callers
# (numba ``inline="always"``): causal FA2 32k on h100, 1.67 -> 1.37 us a step with the
# heap's replace-top (:func:`_push`). Inlining the stage and item state machines as well
# saves ~5% more but multiplies the one-off compile (13 -> 72 CPU-s; 26 now).
# scalars in IS
_EID, _HEAP, _NEXT, _FINISHED, _LAUNCHING, _SYNC, _PENDING, _NFREE, _DONE, _ITEMS = range(10)
_DEPTH, _HAS_PRO, _HAS_EPI, _NSRV, _HCAP, _ECAP = range(10, 16)
# FIFO queues (below): their number, capacity each and events in them all
_NQ, _QCAP, _QTOT = 36, 37, 38
# offsets in IS of: plan nshared (9), plan group ranges (9 x 2), group job ranges (G x 2),
# job server kinds (J), instance of (slot, server kind), server ints (ninst x 3), server heap
# ints (ninst x H x 2: seq, slot * 4 + stage), slot state (slots x _NCOL), jobs left (slots x 3),
# freed slots (slots), trips (items)
_O_PN, _O_PG, _O_GJ, _O_JS, _O_INST, _O_SI, _O_HI, _O_S, _O_LEFT, _O_FREE, _O_TRIPS = range(16, 27)
# offsets in IS of FS tables: plan private ends (9) then load delays (9), group latencies
# (G), job work (J), capacities (ninst), server floats (ninst x 3), server heap virtual
# finishes (ninst x H), stage deadlines (slots x 3)
_O_PE, _O_GL, _O_JW, _O_CAP, _O_SF, _O_HV, _O_DL = range(27, 34)
# offsets of the event queue, last in each array (it grows): ids and payloads in IS (2 per
# entry), times in FS
_O_EI, _O_ET = 34, 35
# offsets in IS of: the FIFO of each latency group (G), the FIFOs (NQ x (2 + 2 QCAP): head,
# length, then ids and payloads); in FS: their times (NQ x QCAP)
_O_QG, _O_QI, _O_QT = 39, 40, 41
# offset in IS of each server instance's first heap entry (ninst; its own capacity: the jobs
# the slots on it can have in flight), counted in entries of the heap tables
_O_HO = 42
# 1 while the event heap's root is empty: the last pop left it for the next push to fill
# (see :func:`_push`)
_HOLE = 43
_HDR = 48
# slot state columns
_N, _MODE, _PART, _KL, _KLD, _KC, _KCD, _KS, _KSD, _LOADING, _COMPUTING, _STORING = range(12)
_NCOL = 12
# a _DEADLINE event for "stage" _READY: a load's data is usable (ItemRun._on_ready); plan
# p's load delay is at FS[IS[_O_PE] + 9 + p]
_READY = 3
_PRO, _BODY, _EPI = 0, 1, 2
# server columns: floats (v, t_last, armed departure or NaN), ints (seq, generation, jobs)
_V, _TLAST, _PENDAT = 0, 1, 2
_SEQ, _GEN, _SIZE = 0, 1, 2


@njit(cache=True, inline="always")
def _push(IS, FS, t, typ, a, b, c):  # pragma: no cover - numba
    """Schedule an event at ``t`` (Clock.after / PSServer._schedule).

    The queue is a binary heap on ``(t, event id)``: times at ``FS[IS[_O_ET]:]``, and at
    ``IS[IS[_O_EI]:]`` each entry's id and its packed payload (kind, slot or server, stage or
    generation, group).

    NOTE: exact (any binary heap on the unique keys ``(t, id)`` pops the same sequence).
    :func:`_pop` leaves the root empty (``IS[_HOLE]``); the next push fills it and sifts
    down (a replace-top), and a pop with the root still empty first moves the last entry
    into it. Events are mostly due soon, so a pushed one sinks a few levels from the root
    instead of climbing from a leaf after the last entry sank from the root to a leaf.
    """
    eid = IS[_EID]
    IS[_EID] = eid + 1
    pay = typ | (a << 2) | (b << 26) | (c << 28)
    ot = IS[_O_ET]
    oe = IS[_O_EI]
    pos = IS[_HEAP]
    IS[_HEAP] = pos + 1
    if IS[_HOLE]:
        IS[_HOLE] = 0
        _sift_down(IS, FS, ot, oe, pos + 1, t, eid, pay)
    else:
        _sift_up(IS, FS, ot, oe, pos, t, eid, pay)


@njit(cache=True, inline="always")
def _push_q(IS, FS, q, t, typ, a, b, c):  # pragma: no cover - numba
    """Schedule an event at ``t`` on FIFO ``q``.

    NOTE: exact (same order as one heap). A FIFO takes the events of one constant delay
    (a latency group's, or the hand-out's zero delay): they are scheduled at non-decreasing
    ``now`` with increasing ids, and ``now + delay`` is monotone in ``now`` under float
    rounding, so each FIFO is sorted by ``(t, id)`` and the earliest of the heap's top and
    the FIFOs' heads is the earliest event.
    """
    eid = IS[_EID]
    IS[_EID] = eid + 1
    qcap = IS[_QCAP]
    base = IS[_O_QI] + q * (2 + 2 * qcap)
    pos = IS[base] + IS[base + 1]
    if pos >= qcap:
        pos -= qcap
    IS[base + 2 + 2 * pos] = eid
    IS[base + 3 + 2 * pos] = typ | (a << 2) | (b << 26) | (c << 28)
    FS[IS[_O_QT] + q * qcap + pos] = t
    IS[base + 1] += 1
    IS[_QTOT] += 1


@njit(cache=True, inline="always")
def _sift_up(IS, FS, ov, oh, pos, v, seq, code):  # pragma: no cover - numba
    """Place ``(key v, tie-break seq, payload code)`` at the new leaf ``pos`` of a binary
    min-heap laid out as in :func:`_refill_root` and sift it up."""
    while pos > 0:
        par = (pos - 1) >> 1
        pv = FS[ov + par]
        if pv < v or (pv == v and IS[oh + 2 * par] < seq):
            break
        FS[ov + pos] = pv
        IS[oh + 2 * pos] = IS[oh + 2 * par]
        IS[oh + 2 * pos + 1] = IS[oh + 2 * par + 1]
        pos = par
    FS[ov + pos] = v
    IS[oh + 2 * pos] = seq
    IS[oh + 2 * pos + 1] = code


@njit(cache=True, inline="always")
def _refill_root(IS, FS, ov, oh, n):  # pragma: no cover - numba
    """After a pop from a binary min-heap of ``n + 1`` entries (keys ``FS[ov + k]``, tie-break
    sequence ``IS[oh + 2k]``, payload ``IS[oh + 2k + 1]``): move entry ``n`` into the emptied
    root and sift it down (the two heaps of this module share this layout)."""
    _sift_down(IS, FS, ov, oh, n, FS[ov + n], IS[oh + 2 * n], IS[oh + 2 * n + 1])


@njit(cache=True, inline="always")
def _sift_down(IS, FS, ov, oh, n, lv, ls, lc):  # pragma: no cover - numba
    """Place ``(key lv, tie-break ls, payload lc)`` in the empty root of a heap laid out as
    in :func:`_refill_root` whose other entries are ``1 .. n - 1`` and sift it down."""
    pos = 0
    while True:
        c = 2 * pos + 1
        if c >= n:
            break
        if c + 1 < n and (
            FS[ov + c + 1] < FS[ov + c]
            or (FS[ov + c + 1] == FS[ov + c] and IS[oh + 2 * c + 2] < IS[oh + 2 * c])
        ):
            c += 1
        if FS[ov + c] < lv or (FS[ov + c] == lv and IS[oh + 2 * c] < ls):
            FS[ov + pos] = FS[ov + c]
            IS[oh + 2 * pos] = IS[oh + 2 * c]
            IS[oh + 2 * pos + 1] = IS[oh + 2 * c + 1]
            pos = c
        else:
            break
    FS[ov + pos] = lv
    IS[oh + 2 * pos] = ls
    IS[oh + 2 * pos + 1] = lc


@njit(cache=True, inline="always")
def _pop(IS, FS):  # pragma: no cover - numba
    """Remove the earliest event (heap or FIFO): ``(t, kind, a, b, c)``."""
    ot = IS[_O_ET]
    oe = IS[_O_EI]
    if IS[_HOLE]:  # no push since the last pop from the heap: fill its root
        IS[_HOLE] = 0
        if IS[_HEAP] > 0:
            _refill_root(IS, FS, ot, oe, IS[_HEAP])
    best = -1
    t = 0.0
    e = 0
    if IS[_HEAP] > 0:
        t = FS[ot]
        e = IS[oe]
    if IS[_QTOT] > 0:
        qcap = IS[_QCAP]
        for q in range(IS[_NQ]):
            base = IS[_O_QI] + q * (2 + 2 * qcap)
            if IS[base + 1] == 0:
                continue
            hd = IS[base]
            qt = FS[IS[_O_QT] + q * qcap + hd]
            qe = IS[base + 2 + 2 * hd]
            if (best == -1 and IS[_HEAP] == 0) or qt < t or (qt == t and qe < e):
                best = q
                t = qt
                e = qe
    if best >= 0:
        qcap = IS[_QCAP]
        base = IS[_O_QI] + best * (2 + 2 * qcap)
        hd = IS[base]
        pay = IS[base + 3 + 2 * hd]
        hd += 1
        IS[base] = hd if hd < qcap else 0
        IS[base + 1] -= 1
        IS[_QTOT] -= 1
        typ = pay & 3
        return t, typ, (pay >> 2) & _AMASK, (pay >> 26) & 3, pay >> 28
    pay = IS[oe + 1]
    typ = pay & 3
    a = (pay >> 2) & _AMASK
    if typ == _TIMEOUT:  # b is the server's generation
        b = pay >> 26
        c = 0
    else:
        b = (pay >> 26) & 3
        c = pay >> 28
    IS[_HEAP] -= 1
    IS[_HOLE] = 1  # the root is refilled by the next push or pop (see _push)
    return t, typ, a, b, c


@njit(cache=True, inline="always")
def _hpush(IS, FS, i, v, seq, code):  # pragma: no cover - numba
    """Push a job ``(virtual finish v, seq)`` of ``code = slot * 4 + stage`` on instance ``i``."""
    h0 = IS[IS[_O_HO] + i]
    oh = IS[_O_HI] + 2 * h0
    ov = IS[_O_HV] + h0
    si = IS[_O_SI] + 3 * i + _SIZE
    pos = IS[si]
    IS[si] = pos + 1
    _sift_up(IS, FS, ov, oh, pos, v, seq, code)


@njit(cache=True, inline="always")
def _hpop(IS, FS, i):  # pragma: no cover - numba
    """Pop instance ``i``'s earliest job; returns its ``slot * 4 + stage``."""
    h0 = IS[IS[_O_HO] + i]
    oh = IS[_O_HI] + 2 * h0
    ov = IS[_O_HV] + h0
    si = IS[_O_SI] + 3 * i + _SIZE
    got = IS[oh + 1]
    n = IS[si] - 1
    IS[si] = n
    if n > 0:
        _refill_root(IS, FS, ov, oh, n)
    return got


@njit(cache=True, inline="always")
def _schedule(IS, FS, i, now, at):  # pragma: no cover - numba
    """PSServer._schedule."""
    if at < now:
        at = now
    g = IS[_O_SI] + 3 * i + _GEN
    gen = IS[g] + 1
    IS[g] = gen
    FS[IS[_O_SF] + 3 * i + _PENDAT] = at
    _push(IS, FS, now + (at - now), _TIMEOUT, i, gen, 0)


@njit(cache=True, inline="always")
def _submit(IS, FS, i, now, work, code):  # pragma: no cover - numba
    """PSServer.submit: a job of ``work`` for ``code = slot * 4 + stage``."""
    of = IS[_O_SF] + 3 * i
    oi = IS[_O_SI] + 3 * i
    cap = FS[IS[_O_CAP] + i]
    n = IS[oi + _SIZE]
    if n:
        FS[of + _V] += (now - FS[of + _TLAST]) * cap / n
    FS[of + _TLAST] = now
    seq = IS[oi + _SEQ] + 1
    IS[oi + _SEQ] = seq
    _hpush(IS, FS, i, FS[of + _V] + work, seq, code)
    at = now + (FS[IS[_O_HV] + IS[IS[_O_HO] + i]] - FS[of + _V]) * (n + 1) / cap
    pending = FS[of + _PENDAT]
    if not math.isnan(pending) and pending <= at:
        return
    _schedule(IS, FS, i, now, at)


@njit(cache=True)
def _submit_group(IS, FS, now, slot, k, g):  # pragma: no cover - numba
    """Submit the jobs of latency group ``g`` for stage ``k`` of ``slot``."""
    ogj = IS[_O_GJ] + 2 * g
    oin = IS[_O_INST] + slot * IS[_NSRV]
    ojs = IS[_O_JS]
    ojw = IS[_O_JW]
    for j in range(IS[ogj], IS[ogj + 1]):
        _submit(IS, FS, IS[oin + IS[ojs + j]], now, FS[ojw + j], slot * 4 + k)


@njit(cache=True)
def _stage(IS, FS, now, slot, k, p):  # pragma: no cover - numba
    """ItemRun._stage of plan ``p`` as stage ``k``: True if it took no time."""
    pn = IS[IS[_O_PN] + p]
    pe = FS[IS[_O_PE] + p]
    if pn == 0:
        if pe <= 0.0:
            return True
        _push(IS, FS, now + pe, _DEADLINE, slot, k, 0)
        return False
    IS[IS[_O_LEFT] + 3 * slot + k] = pn
    FS[IS[_O_DL] + 3 * slot + k] = now + pe
    opg = IS[_O_PG] + 2 * p
    ogl = IS[_O_GL]
    for g in range(IS[opg], IS[opg + 1]):
        lat = FS[ogl + g]
        if lat > 0.0:
            _push_q(IS, FS, IS[IS[_O_QG] + g], now + lat, _LATENCY, slot, k, g)
        else:
            _submit_group(IS, FS, now, slot, k, g)
    return False


# actions of _advance
_A_SERIAL, _A_AFTER_PRO, _A_PUMP, _A_AFTER_BODY, _A_FINISH, _A_START = range(6)


@njit(cache=True)
def _advance(IS, FS, now, slot, action, arg):  # pragma: no cover - numba
    """ItemRun's state machine from ``action`` (start, serial part, pump, ...) until it waits."""
    o = IS[_O_S] + _NCOL * slot
    while True:
        if action == _A_START:
            if IS[_HAS_PRO]:
                IS[o + _MODE] = _PRO
                action = _A_SERIAL
                arg = 0
            else:
                action = _A_AFTER_PRO
        elif action == _A_SERIAL:
            part = arg
            mode = IS[o + _MODE]
            waiting = False
            while part < 3:
                if not _stage(IS, FS, now, slot, part, mode * 3 + part):
                    IS[o + _PART] = part
                    waiting = True
                    break
                if part == 0:
                    dly = FS[IS[_O_PE] + 9 + mode * 3]
                    if dly > 0.0:
                        IS[o + _PART] = 0
                        _push(IS, FS, now + dly, _DEADLINE, slot, _READY, 0)
                        waiting = True
                        break
                part += 1
            if waiting:
                return
            action = _A_AFTER_PRO if mode == _PRO else _A_FINISH
        elif action == _A_AFTER_PRO:
            IS[o + _MODE] = _BODY
            action = _A_AFTER_BODY if IS[o + _N] <= 0 else _A_PUMP
        elif action == _A_PUMP:
            n = IS[o + _N]
            depth = IS[_DEPTH]
            progressed = True
            while progressed:
                progressed = False
                if not IS[o + _STORING] and IS[o + _KS] < IS[o + _KCD]:
                    IS[o + _STORING] = 1
                    IS[o + _KS] += 1
                    if _stage(IS, FS, now, slot, 2, 5):
                        IS[o + _STORING] = 0
                        IS[o + _KSD] += 1
                    progressed = True
                kc = IS[o + _KC]
                if not IS[o + _COMPUTING] and kc < IS[o + _KLD] and kc - IS[o + _KSD] < depth:
                    IS[o + _COMPUTING] = 1
                    IS[o + _KC] = kc + 1
                    if _stage(IS, FS, now, slot, 1, 4):
                        IS[o + _COMPUTING] = 0
                        IS[o + _KCD] += 1
                    progressed = True
                kl = IS[o + _KL]
                if not IS[o + _LOADING] and kl < n and kl - IS[o + _KCD] < depth:
                    IS[o + _LOADING] = 1
                    IS[o + _KL] = kl + 1
                    if _stage(IS, FS, now, slot, 0, 3):
                        IS[o + _LOADING] = 0
                        dly = FS[IS[_O_PE] + 12]
                        if dly > 0.0:
                            _push(IS, FS, now + dly, _DEADLINE, slot, _READY, 0)
                        else:
                            IS[o + _KLD] += 1
                    progressed = True
            if IS[o + _KSD] == n:
                action = _A_AFTER_BODY
            else:
                return
        elif action == _A_AFTER_BODY:
            if IS[_HAS_EPI]:
                IS[o + _MODE] = _EPI
                action = _A_SERIAL
                arg = 0
            else:
                action = _A_FINISH
        else:  # _A_FINISH: PhaseRun._free
            IS[_FINISHED] += 1
            if IS[_LAUNCHING]:
                IS[_SYNC] = 1
            elif IS[_NEXT] < IS[_ITEMS]:
                IS[IS[_O_FREE] + IS[_NFREE]] = slot
                IS[_NFREE] += 1
                if not IS[_PENDING]:
                    IS[_PENDING] = 1
                    _push_q(IS, FS, 0, now + 0.0, _DISPATCH, 0, 0, 0)
            if IS[_FINISHED] == IS[_ITEMS]:
                IS[_DONE] = 1
            return


@njit(cache=True)
def _stage_end(IS, FS, now, slot, k):  # pragma: no cover - numba
    """ItemRun._stage_end (``k`` = _READY: ItemRun._on_ready)."""
    o = IS[_O_S] + _NCOL * slot
    mode = IS[o + _MODE]
    if k == _READY:
        if mode == _BODY:
            IS[o + _KLD] += 1
            _advance(IS, FS, now, slot, _A_PUMP, 0)
        else:
            _advance(IS, FS, now, slot, _A_SERIAL, IS[o + _PART] + 1)
        return
    if mode == _BODY:
        if k == 0:
            IS[o + _LOADING] = 0
            dly = FS[IS[_O_PE] + 12]
            if dly > 0.0:
                _push(IS, FS, now + dly, _DEADLINE, slot, _READY, 0)
            else:
                IS[o + _KLD] += 1
        elif k == 1:
            IS[o + _COMPUTING] = 0
            IS[o + _KCD] += 1
        else:
            IS[o + _STORING] = 0
            IS[o + _KSD] += 1
        _advance(IS, FS, now, slot, _A_PUMP, 0)
    else:
        if k == 0:
            dly = FS[IS[_O_PE] + 9 + mode * 3]
            if dly > 0.0:
                _push(IS, FS, now + dly, _DEADLINE, slot, _READY, 0)
                return
        _advance(IS, FS, now, slot, _A_SERIAL, IS[o + _PART] + 1)


@njit(cache=True)
def _launch(IS, FS, now, slot):  # pragma: no cover - numba
    """PhaseRun._launch: give ``slot`` the next item (and the next while items take no time)."""
    o = IS[_O_S] + _NCOL * slot
    while IS[_NEXT] < IS[_ITEMS]:
        j = IS[_NEXT]
        IS[_NEXT] = j + 1
        IS[_SYNC] = 0
        IS[_LAUNCHING] = 1
        for c in range(_NCOL):
            IS[o + c] = 0
        IS[o + _N] = IS[IS[_O_TRIPS] + j]
        _advance(IS, FS, now, slot, _A_START, 0)
        IS[_LAUNCHING] = 0
        if not IS[_SYNC]:
            return


@njit(cache=True)
def _run(IS, FS, t0, nslots, ninst, margin):  # pragma: no cover - numba
    """The phase's event loop; returns ``(finish time, last event time, events scheduled)``."""
    items = IS[_ITEMS]
    order = np.zeros(max(nslots, 1), dtype=np.int64)
    done = np.zeros(max(IS[_HCAP], 1), dtype=np.int64)
    now = t0
    finish = t0
    if items == 0:
        return t0, t0, 0
    for s in range(nslots):
        if IS[_NEXT] >= items:
            break
        _launch(IS, FS, now, s)
    if IS[_DONE] == 1:
        finish = now
        IS[_DONE] = 2
    o_si = IS[_O_SI]
    o_sf = IS[_O_SF]
    o_hv = IS[_O_HV]
    o_cap = IS[_O_CAP]
    o_left = IS[_O_LEFT]
    o_dl = IS[_O_DL]
    o_ho = IS[_O_HO]
    while IS[_HEAP] > 0 or IS[_QTOT] > 0:
        ecap = IS[_ECAP]
        if IS[_HEAP] + margin > ecap:  # double the queue (it is last in both arrays)
            grown_i = np.zeros(IS.size + 2 * ecap, dtype=np.int64)
            grown_i[: IS.size] = IS
            IS = grown_i
            grown = np.zeros(FS.size + ecap)
            grown[: FS.size] = FS
            FS = grown
            IS[_ECAP] = 2 * ecap
        now, typ, a, b, c = _pop(IS, FS)
        if typ == _TIMEOUT:  # PSServer._on_timeout
            i = a
            oi = o_si + 3 * i
            of = o_sf + 3 * i
            if b != IS[oi + _GEN]:
                continue
            cap = FS[o_cap + i]
            n = IS[oi + _SIZE]
            if n:
                FS[of + _V] += (now - FS[of + _TLAST]) * cap / n
            FS[of + _TLAST] = now
            FS[of + _PENDAT] = np.nan
            if not n:
                continue
            v = FS[of + _V]
            slack_t = _REL_EPS * (now if now > 1.0 else 1.0)
            ea = _REL_EPS * max(1.0, abs(v))
            eb = slack_t * cap / max(1, n)
            v_due = v + (ea if ea > eb else eb)
            top = o_hv + IS[o_ho + i]
            if FS[top] > v_due:
                _schedule(IS, FS, i, now, now + (FS[top] - v) * n / cap)
                continue
            nd = 0
            done[nd] = _hpop(IS, FS, i)
            nd += 1
            while IS[oi + _SIZE] and FS[top] <= v_due:
                done[nd] = _hpop(IS, FS, i)
                nd += 1
            if IS[oi + _SIZE]:
                _schedule(IS, FS, i, now, now + (FS[top] - v) * IS[oi + _SIZE] / cap)
            else:
                FS[of + _V] = 0.0
            for q in range(nd):
                slot = done[q] >> 2
                k = done[q] & 3
                ol = o_left + 3 * slot + k
                IS[ol] -= 1
                if not IS[ol]:
                    dlk = FS[o_dl + 3 * slot + k]
                    if dlk > now:
                        _push(IS, FS, now + (dlk - now), _DEADLINE, slot, k, 0)
                    else:
                        _stage_end(IS, FS, now, slot, k)
        elif typ == _LATENCY:
            _submit_group(IS, FS, now, a, b, c)
        elif typ == _DEADLINE:
            _stage_end(IS, FS, now, a, b)
        else:  # _DISPATCH: PhaseRun._dispatch
            IS[_PENDING] = 0
            nf = IS[_NFREE]
            of = IS[_O_FREE]
            order[:nf] = np.sort(IS[of : of + nf])
            IS[_NFREE] = 0
            for q in range(nf):
                if IS[_NEXT] >= items:
                    break
                _launch(IS, FS, now, order[q])
        if IS[_DONE] == 1:
            finish = now
            IS[_DONE] = 2
    return finish, now, IS[_EID]


def run_phase(
    compiled: CompiledProgram,
    cp: CompiledPhase,
    t0: float = 0.0,
    *,
    items: int | None = None,
    active_slots: int | None = None,
) -> tuple[float, float, int]:
    """Every slot of ``cp`` simulated alone from ``t0`` (cycles), as ``PhaseRun`` on SimPy.

    ``items`` / ``active_slots`` restrict the phase to its first items / slots (as
    ``PhaseRun``'s arguments). Returns ``(finish, last, events)``: the cycle the last item
    ended, the time of the last event processed (what ``env.now`` reads after
    ``env.run()``) and the number of events scheduled (``Clock.scheduled()``).
    """
    from archsim.engine._runtime import _private_servers

    p = cp.phase
    n_items = p.work_items if items is None else items
    nslots = min(p.slots if active_slots is None else active_slots, n_items)
    if nslots >= 1 << 24:
        raise ValueError("the compiled loop takes fewer than 2**24 slots")
    servers = compiled.servers
    private = _private_servers(compiled, [(cp, nslots)])
    capf = [sv.capacity * 1.0 for sv in servers]
    parts = [
        step_plans(step, private, capf) if step is not None else None
        for step in (cp.prologue, cp.body, cp.epilogue)
    ]
    pn = np.zeros(9, dtype=np.int64)
    pe = np.zeros(18)
    pg = np.zeros((9, 2), dtype=np.int64)
    gl: list[float] = []
    gj: list[tuple[int, int]] = []
    jw: list[float] = []
    js: list[int] = []
    jobs_on: dict[int, int] = {}
    for m, plans in enumerate(parts):
        if plans is None:
            continue
        for k, plan in enumerate(plans):
            q = m * 3 + k
            pn[q] = plan.nshared
            pe[q] = plan.private_end
            pe[9 + q] = plan.delay
            pg[q, 0] = len(gl)
            for lat, jobs in plan.shared:
                gl.append(lat)
                gj.append((len(jw), len(jw) + len(jobs)))
                for w, s in jobs:
                    jw.append(w)
                    js.append(s)
                    jobs_on[s] = jobs_on.get(s, 0) + 1
            pg[q, 1] = len(gl)
    # one server instance per (kind, slot % instances) of every kind with shared jobs
    nsrv = len(servers)
    inst = np.full((max(nslots, 1), nsrv), -1, dtype=np.int64)
    ids: dict[tuple[int, int], int] = {}
    cap: list[float] = []
    room: list[int] = []  # heap entries of each instance
    for s in sorted(jobs_on):
        k = servers[s].instances
        for slot in range(nslots):
            key = (s, slot % k)
            if key not in ids:
                ids[key] = len(cap)
                cap.append(capf[s])
                room.append(-(-max(nslots, 1) // k) * jobs_on[s])
            inst[slot, s] = ids[key]
    hcap = max(room, default=1)
    ho = np.concatenate(([0], np.cumsum(room, dtype=np.int64)))
    nheap = int(ho[-1])
    ninst = len(cap)
    trips = np.asarray(p.trips_per_item()[:n_items], dtype=np.int64)
    slots1 = max(nslots, 1)
    ints = [
        pn,
        pg.ravel(),
        np.array(gj, dtype=np.int64).ravel(),
        np.array(js, dtype=np.int64),
        inst.ravel(),
        np.zeros(3 * ninst, dtype=np.int64),
        np.zeros(2 * nheap, dtype=np.int64),
        np.zeros(_NCOL * slots1, dtype=np.int64),
        np.zeros(3 * slots1, dtype=np.int64),
        np.zeros(slots1, dtype=np.int64),
        trips,
    ]
    # FIFO 0: hand-outs (zero delay); one FIFO per distinct latency of the groups
    lats = sorted({lat for lat in gl if lat > 0.0})
    qg = np.array([1 + lats.index(lat) if lat > 0.0 else 0 for lat in gl], dtype=np.int64)
    nq = 1 + len(lats)
    qcap = slots1 * max(len(gl), 1) + 2  # one pending event per slot and group at most
    ints += [qg, np.zeros(nq * (2 + 2 * qcap), dtype=np.int64), ho[:-1]]
    # most events one event's callbacks can schedule (the queue grows to keep this free)
    margin = slots1 * 9 * (len(gl) + len(jw) + 3) + ninst + 16
    ecap = 1024 + 2 * margin
    ints.append(np.zeros(2 * ecap, dtype=np.int64))
    sf = np.zeros((ninst, 3))
    sf[:, 2] = np.nan  # no departure armed
    floats = [
        pe,
        np.array(gl, dtype=np.float64),
        np.array(jw, dtype=np.float64),
        np.array(cap, dtype=np.float64),
        sf.ravel(),
        np.zeros(nheap),
        np.zeros(3 * slots1),
        np.zeros(nq * qcap),
        np.zeros(ecap),
    ]
    head = np.zeros(_HDR, dtype=np.int64)
    head[_ITEMS] = n_items
    head[_DEPTH] = int(cp.depth)
    head[_HAS_PRO] = cp.prologue is not None
    head[_HAS_EPI] = cp.epilogue is not None
    head[_NSRV] = nsrv
    head[_HCAP] = hcap
    head[_ECAP] = ecap
    head[_NQ] = nq
    head[_QCAP] = qcap
    at = _HDR
    order_i = [*range(_O_PN, _O_TRIPS + 1), _O_QG, _O_QI, _O_HO, _O_EI]  # the queue last
    for slot_, arr in zip(order_i, ints, strict=True):
        head[slot_] = at
        at += arr.size
    at = 0
    order_f = [*range(_O_PE, _O_DL + 1), _O_QT, _O_ET]
    for slot_, farr in zip(order_f, floats, strict=True):
        head[slot_] = at
        at += farr.size
    big_i = np.concatenate([head, *ints])
    big_f = np.concatenate(floats)
    finish, last, events = _run(big_i, big_f, float(t0), nslots, ninst, margin)
    return float(finish), float(last), int(events)
