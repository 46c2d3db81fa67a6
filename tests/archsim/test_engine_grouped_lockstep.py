"""The grouped-lockstep shortcut (ragged trips, few trip classes) equals the full simulation."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from archsim import Phase, Step, TileProgram, simulate
from archsim.engine import _shortcuts
from tests.archsim.test_engine_toys import load, macs, store, toy_arch

_SETTINGS = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _prog(slots: int, trips: np.ndarray, body: Step, depth: int, pro: Step | None) -> TileProgram:
    phase = Phase(
        "p", body, trips=trips, work_items=len(trips), slots=slots, depth=depth, prologue=pro
    )
    return TileProgram("grouped", (phase,))


@_SETTINGS
@given(
    groups=st.integers(2, 6),
    per_group=st.integers(1, 3),
    classes=st.lists(st.integers(1, 30), min_size=1, max_size=3),
    picks=st.lists(st.integers(0, 2), min_size=1, max_size=60),
    order=st.sampled_from(["sorted", "as_drawn"]),
    dram_bw=st.sampled_from([4.0, 10.0, 32.0]),
    lat=st.integers(0, 15),
    load_b=st.integers(1, 300),
    mac_n=st.integers(1, 200),
    store_b=st.integers(0, 100),
    depth=st.integers(1, 3),
    prologue=st.booleans(),
)
def test_grouped_lockstep_equals_full_simulation(
    groups: int,
    per_group: int,
    classes: list[int],
    picks: list[int],
    order: str,
    dram_bw: float,
    lat: int,
    load_b: int,
    mac_n: int,
    store_b: int,
    depth: int,
    prologue: bool,
) -> None:
    # slots share DRAM and, two or three to a group, their group's BUF and PE; items have a
    # few distinct trip counts (block-sparse rows), sorted or in any order
    slots = groups * per_group
    arch = toy_arch(
        dram_bw=dram_bw, dram_lat=lat, buf_instances=groups, pe_instances=groups, macs=4.0
    )
    body = Step(
        loads=(load(load_b),), compute=(macs(mac_n),), stores=(store(store_b),) if store_b else ()
    )
    trips = np.array([classes[i % len(classes)] for i in picks])
    if order == "sorted":
        trips = np.sort(trips)[::-1]
    pro = Step(loads=(load(40, "Q"),)) if prologue else None
    prog = _prog(slots, trips, body, depth, pro)
    direct = _shortcuts._grouped_lockstep(*_compiled(prog, arch))
    full = simulate(prog, arch, shortcuts=False)
    if direct is not None:
        assert direct[0] == pytest.approx(full.cycles, abs=1)
    assert simulate(prog, arch).cycles == pytest.approx(full.cycles, abs=1)


def _compiled(prog: TileProgram, arch: object) -> tuple:
    from archsim.engine._compile import compile_program

    compiled = compile_program(prog, arch)  # type: ignore[arg-type]
    return compiled, compiled.phases[0]


def test_block_sparse_like_phase_uses_classes_and_periods(monkeypatch: pytest.MonkeyPatch) -> None:
    # 2 slots on each of 12 groups; 61 items of 30 trips, then 290 of 29 (sorted rows): after
    # the mixed wave the slots fall into three staggered classes, and their hand-outs repeat
    # (a long DRAM latency: with loads pipelined, a short one leaves the classes' hand-out
    # state unrepeated within the shortcut's event budget, and the phase is simulated)
    arch = toy_arch(dram_bw=40.0, dram_lat=100, buf_instances=12, pe_instances=12, macs=4.0)
    body = Step(loads=(load(200, "K"), load(100, "V")), compute=(macs(300),))
    trips = np.array([30] * 61 + [29] * 290)
    prog = _prog(24, trips, body, 2, None)
    found: list[int] = []

    class Period(_shortcuts._Period):
        def __init__(self, *args: object) -> None:
            super().__init__(*args)  # type: ignore[arg-type]
            found.append(self.items)

    monkeypatch.setattr(_shortcuts, "_Period", Period)
    direct = _shortcuts._grouped_lockstep(*_compiled(prog, arch))
    assert direct is not None
    assert found  # a repeated hand-out state skipped whole periods
    short, full = simulate(prog, arch), simulate(prog, arch, shortcuts=False)
    assert short.meta["phase_method"]["p"] == "shortcut"
    assert short.cycles == pytest.approx(full.cycles, abs=1)
    assert direct[0] == pytest.approx(full.cycles, abs=1)
    assert short.meta["events"] < full.meta["events"] / 5


def test_items_running_out_part_way_through_a_class_split_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # 8 groups x 2 slots; 10 long items, 30 short, 21 long: hand-outs give items of
    # different trips to the slots of one class (and run out part-way through one), so the
    # partition is refined and the quotient re-run
    arch = toy_arch(dram_bw=10.0, dram_lat=3, buf_instances=8, pe_instances=8, macs=4.0)
    body = Step(loads=(load(60),), compute=(macs(90),), stores=(store(20),))
    trips = np.array([7] * 10 + [3] * 30 + [7] * 21)
    prog = _prog(16, trips, body, 2, None)
    splits: list[int] = []

    class Split(_shortcuts._Split):
        def __init__(self, *args: object) -> None:
            super().__init__(*args)  # type: ignore[arg-type]
            splits.append(1)

    monkeypatch.setattr(_shortcuts, "_Split", Split)
    direct = _shortcuts._grouped_lockstep(*_compiled(prog, arch))
    full = simulate(prog, arch, shortcuts=False)
    assert direct is not None
    assert len(splits) >= 2
    assert direct[0] == pytest.approx(full.cycles, abs=1)
