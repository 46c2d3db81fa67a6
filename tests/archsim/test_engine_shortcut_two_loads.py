"""The grouped-lockstep shortcut on long items with two loads per trip equals the full simulation.

The GPU lowering makes each operand load of a forward-attention trip its own engine trip (K,
then V: ``mappings._gpu._lower.loads_per_trip``), which doubles the trips and the depth, and a
persistent kernel runs one long item per slot (``persistent_trips``). The quotient of
``_shortcuts._grouped_lockstep`` then skips whole periods of its state inside the items
(``_shortcuts._Quotient.in_item``): these tests hold it to slot-by-slot simulation.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from archsim import Architecture, Phase, Step, TileProgram, simulate
from archsim.engine import _shortcuts
from archsim.engine._compile import compile_program
from archsim.engine._pipeline import ItemRun
from tests.archsim.test_engine_toys import load, macs, store, toy_arch

_SETTINGS = settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _two_loads(
    slots: int, model_trips: list[int], load_b: int, mac_n: int, stages: int, store_b: int = 0
) -> TileProgram:
    """A phase lowered as ``loads_per_trip = 2`` does: every model trip is two engine trips of
    half its bytes and work (the K tile, then the V tile), ``2 x stages`` of them in flight."""
    body = Step(
        loads=(load(load_b // 2, "KV"),),
        compute=(macs(mac_n // 2),),
        stores=(store(store_b),) if store_b else (),
    )
    trips = 2 * np.asarray(model_trips, dtype=np.int64)
    phase = Phase(
        "p", body, trips=trips, work_items=len(trips), slots=slots, depth=2 * stages,
        prologue=Step(loads=(load(64, "Q"),)),
    )  # fmt: skip
    return TileProgram("two_loads", (phase,))


def _direct(prog: TileProgram, arch: Architecture) -> tuple[float, int] | None:
    compiled = compile_program(prog, arch)
    return _shortcuts._grouped_lockstep(compiled, compiled.phases[0])


def _count_skips(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    skipped: list[int] = []
    orig = ItemRun.skip_tiles

    def spy(self: ItemRun, tiles: int) -> None:
        skipped.append(tiles)
        orig(self, tiles)

    monkeypatch.setattr(ItemRun, "skip_tiles", spy)
    return skipped


def test_persistent_two_loads_per_trip_skips_periods_inside_its_items(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # flash3-like: one item per slot (a persistent CTA), two trip counts (the schedule gave
    # 3 CTAs one tile more), DRAM shared by all, each slot on its own buffer and PE
    arch = toy_arch(dram_bw=16.0, dram_lat=40, buf_instances=12, pe_instances=12, macs=4.0)
    prog = _two_loads(12, [260] * 3 + [240] * 9, load_b=240, mac_n=200, stages=2)
    skipped = _count_skips(monkeypatch)
    direct = _direct(prog, arch)
    full = simulate(prog, arch, shortcuts=False)
    assert direct is not None
    assert direct[0] == pytest.approx(full.cycles, abs=1)
    assert sum(skipped) > 400  # most of the 2 x 480 + 2 x 40 tiles were skipped, not run
    assert direct[1] < full.meta["events"] / 10
    short = simulate(prog, arch)
    assert short.meta["phase_method"]["p"] == "shortcut"
    assert short.cycles == pytest.approx(full.cycles, abs=1)


def test_grouped_two_loads_per_trip_with_hand_outs_equals_the_full_simulation(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # block-sparse-like: 2 slots on each of 6 groups, 13 long rows then 40 shorter ones, so
    # the classes stay staggered; each item's body is periodic between hand-outs
    arch = toy_arch(dram_bw=24.0, dram_lat=30, buf_instances=6, pe_instances=6, macs=4.0)
    prog = _two_loads(12, [61] * 13 + [60] * 40, load_b=300, mac_n=260, stages=2, store_b=16)
    skipped = _count_skips(monkeypatch)
    direct = _direct(prog, arch)
    full = simulate(prog, arch, shortcuts=False)
    assert direct is not None
    assert skipped  # periods inside items were skipped
    assert direct[0] == pytest.approx(full.cycles, abs=1)
    assert simulate(prog, arch).cycles == pytest.approx(full.cycles, abs=1)


def test_skip_tiles_refuses_to_reach_the_trip_count() -> None:
    arch = toy_arch(dram_bw=16.0, dram_lat=4, buf_instances=4, pe_instances=4)
    prog = _two_loads(4, [30] * 4, load_b=100, mac_n=100, stages=2)
    compiled = compile_program(prog, arch)
    from archsim.engine._runtime import Runtime

    rt = Runtime(compiled, [(compiled.phases[0], 1)])
    run = ItemRun(rt.slot(0, "p"), rt.phase_plans(compiled.phases[0]), 60, 4, lambda: None)
    with pytest.raises(ValueError, match="cannot skip"):
        run.skip_tiles(5)  # still in the prologue
    run.start()
    while not run.in_body():
        rt.env.step()
    with pytest.raises(ValueError, match="expected at least 2 depth"):
        run.skip_tiles(60 - 8)
    before = (run.kl, run.kl_done, run.kc, run.kc_done, run.ks, run.ks_done)
    run.skip_tiles(10)
    after = (run.kl, run.kl_done, run.kc, run.kc_done, run.ks, run.ks_done)
    assert after == tuple(k + 10 for k in before)


@_SETTINGS
@given(
    groups=st.integers(2, 5),
    per_group=st.integers(1, 2),
    classes=st.lists(st.integers(20, 90), min_size=1, max_size=3),
    picks=st.lists(st.integers(0, 2), min_size=4, max_size=24),
    dram_bw=st.sampled_from([6.0, 16.0, 48.0]),
    lat=st.integers(0, 60),
    load_b=st.integers(2, 400),
    mac_n=st.integers(2, 300),
    store_b=st.integers(0, 60),
    stages=st.integers(1, 3),
)
def test_two_loads_per_trip_grouped_lockstep_equals_full_simulation(
    groups: int,
    per_group: int,
    classes: list[int],
    picks: list[int],
    dram_bw: float,
    lat: int,
    load_b: int,
    mac_n: int,
    store_b: int,
    stages: int,
) -> None:
    slots = groups * per_group
    arch = toy_arch(
        dram_bw=dram_bw, dram_lat=lat, buf_instances=groups, pe_instances=groups, macs=4.0
    )
    model_trips = [classes[i % len(classes)] for i in picks]
    prog = _two_loads(slots, model_trips, load_b, mac_n, stages, store_b)
    direct = _direct(prog, arch)
    full = simulate(prog, arch, shortcuts=False)
    if direct is not None:
        assert direct[0] == pytest.approx(full.cycles, abs=1)
    assert simulate(prog, arch).cycles == pytest.approx(full.cycles, abs=1)


def _staggered(groups: int, short: int, long: int, extra: int, depth: int) -> TileProgram:
    """Two slots per group: ``groups`` short items, ``groups`` long ones, then ``extra``
    (< groups) more: the short class frees first and the extra items run out part-way
    through it, so the groups differ and the long class must split while it runs."""
    body = Step(loads=(load(120),), compute=(macs(150),), stores=(store(10),))
    trips = np.array([short] * groups + [long] * groups + [short] * extra)
    phase = Phase(
        "p", body, trips=trips, work_items=len(trips), slots=2 * groups, depth=depth,
        prologue=Step(loads=(load(64, "Q"),)),
    )  # fmt: skip
    return TileProgram("staggered", (phase,))


def test_a_hand_out_that_splits_a_running_class_clones_it_in_place(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # a DRAM latency longer than a load's transfer: loads' ready events are pending at the
    # split, and each is copied for every child of its class
    arch = toy_arch(dram_bw=12.0, dram_lat=200, buf_instances=8, pe_instances=8, macs=4.0)
    prog = _staggered(8, 20, 60, 3, 4)
    clones: list[int] = []
    orig = ItemRun.clone

    def spy(self: ItemRun, *args: object, **kw: object) -> ItemRun:
        clones.append(self.ks_done)
        return orig(self, *args, **kw)  # type: ignore[arg-type]

    monkeypatch.setattr(ItemRun, "clone", spy)
    direct = _direct(prog, arch)
    full = simulate(prog, arch, shortcuts=False)
    assert direct is not None
    assert max(clones, default=0) > 0  # running long items were cloned mid-body
    assert direct[0] == pytest.approx(full.meta["phase_cycles"]["p"], rel=1e-9)


@_SETTINGS
@given(
    groups=st.integers(4, 8),
    short=st.integers(1, 30),
    long=st.integers(1, 80),
    extra=st.integers(1, 7),
    dram_bw=st.sampled_from([4.0, 12.0, 40.0]),
    lat=st.integers(0, 400),
    depth=st.integers(1, 6),
)
def test_splitting_running_classes_in_place_equals_full_simulation(
    groups: int, short: int, long: int, extra: int, dram_bw: float, lat: int, depth: int
) -> None:
    arch = toy_arch(
        dram_bw=dram_bw, dram_lat=lat, buf_instances=groups, pe_instances=groups, macs=4.0
    )
    prog = _staggered(groups, short, long, min(extra, groups - 1), depth)
    direct = _direct(prog, arch)
    full = simulate(prog, arch, shortcuts=False)
    if direct is not None:
        # equal up to the servers' float tolerances (departures within 1e-11 relative of
        # each other are one), far inside the one cycle the other shortcut tests allow
        assert direct[0] == pytest.approx(full.meta["phase_cycles"]["p"], rel=1e-7)
    assert simulate(prog, arch).cycles == pytest.approx(full.cycles, abs=1)
