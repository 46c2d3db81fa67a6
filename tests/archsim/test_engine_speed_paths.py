"""Speed paths of the event engine keep its results: the compiled loop's event heap pops in
``(time, id)`` order, and the grouped-lockstep shortcut's early give-up on a causal staircase
leaves the phase to the exact slot-by-slot simulation."""

from __future__ import annotations

import heapq

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from archsim import Phase, Step, TileProgram, simulate
from archsim.engine import _fastsim as fs
from archsim.engine import _shortcuts
from archsim.engine._compile import compile_program
from tests.archsim.test_engine_toys import load, macs, store, toy_arch

_SETTINGS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _queue(cap: int) -> tuple[np.ndarray, np.ndarray]:
    """``IS``/``FS`` holding only the compiled loop's event heap (no FIFO), ``cap`` entries."""
    ints = np.zeros(fs._HDR + 2 * cap, dtype=np.int64)
    ints[fs._O_EI] = fs._HDR
    ints[fs._O_ET] = 0
    ints[fs._ECAP] = cap
    return ints, np.zeros(cap)


@_SETTINGS
@given(
    ops=st.lists(
        st.one_of(st.none(), st.sampled_from([0.0, 1.0, 1.5, 2.0, 7.25, 1e6])),
        min_size=1,
        max_size=200,
    )
)
def test_event_heap_pops_by_time_then_id_with_pushes_between_pops(ops: list) -> None:
    # None pops, a number pushes an event that far after the last popped time (ties many):
    # pops (whose emptied root the next push or pop fills) give SimPy's order
    ints, floats = _queue(len(ops) + 1)
    model: list[tuple[float, int]] = []
    now = 0.0
    for op in ops:
        if op is None:
            if not model:
                continue
            t, eid = heapq.heappop(model)
            got_t, kind, a, _b, _c = fs._pop(ints, floats)
            assert (got_t, kind, a) == (t, fs._DEADLINE, eid)
            now = t
        else:
            eid = int(ints[fs._EID])
            fs._push(ints, floats, now + op, fs._DEADLINE, eid, 0, 0)
            heapq.heappush(model, (now + op, eid))
        assert ints[fs._HEAP] == len(model)
    while model:
        t, eid = heapq.heappop(model)
        assert fs._pop(ints, floats)[:3:2] == (t, eid)


def _staircase(heads: int, n: int, pairs: bool) -> np.ndarray:
    """Causal trips: per head ``1..n`` tiles (each twice for a persistent kernel's pairs)."""
    per_head = np.repeat(np.arange(1, n + 1), 2 if pairs else 1)
    return np.tile(per_head, heads)


def test_quotient_gives_up_early_on_a_causal_staircase(monkeypatch: pytest.MonkeyPatch) -> None:
    # 8 groups x 2 slots sharing DRAM and their group's buffer and PE; 4 heads of 2 x 48
    # items of 1..48 tiles: every hand-out differs, nothing repeats, so the quotient costs
    # about what the full simulation does; it gives up at a fraction of its budget
    arch = toy_arch(dram_bw=40.0, dram_lat=20, buf_instances=8, pe_instances=8, macs=4.0)
    body = Step(loads=(load(200, "K"), load(100, "V")), compute=(macs(300),))
    trips = _staircase(4, 48, pairs=True)
    phase = Phase("p", body, trips=trips, work_items=len(trips), slots=16, depth=2)
    prog = TileProgram("causal", (phase,))
    compiled = compile_program(prog, arch)
    spent: list[int] = []
    dispatch = _shortcuts._Quotient._dispatch

    def watched(self: _shortcuts._Quotient, ev: object) -> None:
        spent.append(self.rt.clock.scheduled())
        dispatch(self, ev)

    monkeypatch.setattr(_shortcuts._Quotient, "_dispatch", watched)
    assert _shortcuts._grouped_lockstep(compiled, compiled.phases[0]) is None
    budget = int(_shortcuts._BUDGET_PER_STEP * int(trips.sum())) + _shortcuts._BUDGET_FLOOR
    assert spent
    assert max(spent) < budget / 2
    short, full = simulate(prog, arch), simulate(prog, arch, shortcuts=False)
    assert short.meta["phase_method"]["p"] == "full"
    assert short.cycles == full.cycles


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    groups=st.integers(2, 6),
    per_group=st.integers(2, 3),
    heads=st.integers(1, 4),
    n=st.integers(4, 40),
    pairs=st.booleans(),
    dram_bw=st.sampled_from([4.0, 40.0]),
    lat=st.integers(0, 30),
    mac_n=st.integers(20, 300),
    store_b=st.integers(0, 60),
)
def test_causal_staircases_equal_the_full_simulation(
    groups: int,
    per_group: int,
    heads: int,
    n: int,
    pairs: bool,
    dram_bw: float,
    lat: int,
    mac_n: int,
    store_b: int,
) -> None:
    # whichever way the engine takes (grouped lockstep, its early give-up, the compiled
    # loop), a causal staircase on grouped slots gets the slot-by-slot SimPy cycles
    arch = toy_arch(
        dram_bw=dram_bw, dram_lat=lat, buf_instances=groups, pe_instances=groups, macs=4.0
    )
    body = Step(
        loads=(load(120, "K"), load(60, "V")),
        compute=(macs(mac_n),),
        stores=(store(store_b),) if store_b else (),
    )
    trips = _staircase(heads, n, pairs)
    phase = Phase("p", body, trips=trips, work_items=len(trips), slots=groups * per_group)
    prog = TileProgram("causal", (phase,))
    full = simulate(prog, arch, shortcuts=False)
    assert simulate(prog, arch).cycles == pytest.approx(full.cycles, abs=1)
