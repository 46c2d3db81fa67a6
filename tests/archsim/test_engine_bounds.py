"""The bounded mode: a phase's rigorous bounds hold the slot-by-slot simulation's time."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from archsim import Phase, Step, TileProgram, simulate
from archsim.engine import _sim
from archsim.engine._bounds import phase_bounds
from archsim.engine._compile import compile_program
from tests.archsim.test_engine_toys import load, macs, store, toy_arch

_SETTINGS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _ragged(
    groups: int, per_group: int, trips: list[int], depth: int, pro: bool, epi: bool, **kw: int
) -> tuple[TileProgram, object]:
    arch = toy_arch(
        dram_bw=kw["dram_bw"],
        dram_lat=kw["lat"],
        buf_instances=groups,
        pe_instances=kw["pe"] if kw["pe"] else groups,
        macs=4.0,
    )
    body = Step(
        loads=(load(kw["load_b"]), load(kw["load_b"] // 2 + 1, "V")),
        compute=(macs(kw["mac_n"]),),
        stores=(store(kw["store_b"]),) if kw["store_b"] else (),
    )
    phase = Phase(
        "p",
        body,
        trips=np.array(trips),
        work_items=len(trips),
        slots=groups * per_group,
        depth=depth,
        prologue=Step(loads=(load(40, "Q"),), compute=(macs(30),)) if pro else None,
        epilogue=Step(stores=(store(50),)) if epi else None,
    )
    return TileProgram("ragged", (phase,)), arch


@_SETTINGS
@given(
    groups=st.integers(1, 5),
    per_group=st.integers(1, 3),
    trips=st.lists(st.integers(0, 40), min_size=1, max_size=40),
    sort=st.booleans(),
    dram_bw=st.sampled_from([4, 10, 32, 100]),
    lat=st.integers(0, 15),
    pe=st.sampled_from([0, 1]),
    load_b=st.integers(1, 300),
    mac_n=st.integers(0, 200),
    store_b=st.integers(0, 100),
    depth=st.integers(1, 3),
    pro=st.booleans(),
    epi=st.booleans(),
)
def test_bounds_hold_the_full_simulation(
    groups: int,
    per_group: int,
    trips: list[int],
    sort: bool,
    depth: int,
    pro: bool,
    epi: bool,
    **kw: int,
) -> None:
    # ragged items on slots that share DRAM, their group's BUF and (pe=1) one PE for all
    prog, arch = _ragged(groups, per_group, sorted(trips) if sort else trips, depth, pro, epi, **kw)
    compiled = compile_program(prog, arch)  # type: ignore[arg-type]
    lower, upper = phase_bounds(compiled, compiled.phases[0])
    exact = simulate(prog, arch, shortcuts=False).meta["phase_cycles"]["p"]  # type: ignore[arg-type]
    assert lower <= exact <= upper
    # so the midpoint is within the stated bound
    assert abs((lower + upper) / 2 - exact) <= (upper - lower) / 2


def test_bounded_mode_is_chosen_and_reported_only_where_the_bound_holds(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # many short ragged items on 8 groups x 2 slots sharing DRAM: no exact shortcut, and the
    # list-scheduling gap (one item over the total) is small
    rng = np.random.default_rng(0)
    trips = rng.integers(20, 40, size=600).tolist()
    prog, arch = _ragged(
        8, 2, trips, 2, True, False, dram_bw=1000, lat=5, pe=0, load_b=64, mac_n=400, store_b=0
    )
    exact = simulate(prog, arch, approx=False)  # type: ignore[arg-type]
    assert exact.meta["mode"] == "exact"
    assert exact.meta["bound_cycles"] == 0.0
    assert exact.meta["phase_method"]["p"] == "full"
    monkeypatch.setattr(_sim, "APPROX_MIN_STEPS", 1000)
    got = simulate(prog, arch)  # type: ignore[arg-type]
    assert got.meta["phase_method"]["p"] == "bounded"
    assert got.meta["mode"] == "bounded"
    bound = got.meta["bound_cycles"]
    assert 0 < bound <= _sim.APPROX_MAX_RELATIVE * got.cycles
    assert got.meta["phase_bound_cycles"] == {"p": bound}
    assert abs(got.cycles - exact.cycles) <= bound + 1
    # a tighter demand than the bound gives: simulated exactly again
    monkeypatch.setattr(_sim, "APPROX_MAX_RELATIVE", bound / got.cycles / 2)
    assert simulate(prog, arch).cycles == exact.cycles  # type: ignore[arg-type]
    # below the size threshold, never bounded
    monkeypatch.setattr(_sim, "APPROX_MIN_STEPS", 10**9)
    assert simulate(prog, arch).meta["mode"] == "exact"  # type: ignore[arg-type]


def test_a_simulation_too_large_for_the_event_budget_is_refused_with_its_size(monkeypatch):
    """What no shortcut or tight bound covers is simulated slot by slot only up to
    MAX_COMPILED_STEPS body steps (MAX_EVENT_STEPS on the SimPy loop, with a trace); beyond,
    the engine says how big it is and simulates nothing."""
    from archsim.errors import SimulationTooLargeError

    trips = [int(t) for t in np.random.default_rng(3).integers(20, 200, size=64)]
    prog, arch = _ragged(
        8, 2, trips, 2, True, False, dram_bw=1000, lat=5, pe=0, load_b=64, mac_n=400, store_b=0
    )
    steps = sum(trips)
    exact = simulate(prog, arch, approx=False)  # type: ignore[arg-type]
    assert exact.meta["phase_method"]["p"] == "full"
    monkeypatch.setattr(_sim, "MAX_COMPILED_STEPS", steps - 1)
    with pytest.raises(SimulationTooLargeError, match=f"{steps:,} tile steps"):
        simulate(prog, arch, approx=False)  # type: ignore[arg-type]
    monkeypatch.setattr(_sim, "MAX_COMPILED_STEPS", steps)
    assert simulate(prog, arch, approx=False).cycles == exact.cycles  # type: ignore[arg-type]


def test_one_item_per_slot_is_bounded_by_its_longest_item_alone():
    # a persistent kernel's lowering: as many items as slots, every one handed out at time 0,
    # so the upper bound is the longest item's (not Graham's sum / slots + longest)
    kw = dict(dram_bw=10, lat=5, pe=0, load_b=120, mac_n=150, store_b=0)
    ragged, arch = _ragged(2, 3, [40, 3, 22, 9, 31, 1], 2, False, False, **kw)
    even, _ = _ragged(2, 3, [40] * 6, 2, False, False, **kw)
    c_r, c_e = compile_program(ragged, arch), compile_program(even, arch)  # type: ignore[arg-type]
    lower, upper = phase_bounds(c_r, c_r.phases[0])
    assert upper == pytest.approx(phase_bounds(c_e, c_e.phases[0])[1], rel=1e-12)
    exact = simulate(ragged, arch, shortcuts=False).meta["phase_cycles"]["p"]  # type: ignore[arg-type]
    assert lower <= exact <= upper
