"""Closed-form microbenchmarks of the event-driven engine (exact or within one cycle)."""

from __future__ import annotations

import numpy as np
import pytest

from archsim import Phase, Step, TileProgram, simulate
from archsim.engine import validate_program
from archsim.errors import MappingError
from tests.archsim.test_engine_toys import load, macs, one_phase, store, toy_arch


@pytest.mark.parametrize("shortcuts", [True, False])
def test_one_transfer_costs_latency_plus_bytes_over_bandwidth(shortcuts: bool) -> None:
    arch = toy_arch(dram_bw=10.0, dram_lat=7)
    r = simulate(one_phase(Step(loads=(load(1000),))), arch, shortcuts=shortcuts)
    assert r.cycles == 7 + 100


def test_two_transfers_share_link_bandwidth() -> None:
    arch = toy_arch(dram_bw=10.0)
    one = simulate(one_phase(Step(loads=(load(1000),))), arch, shortcuts=False)
    two = simulate(one_phase(Step(loads=(load(1000, "A"), load(1000, "B")))), arch, shortcuts=False)
    assert two.cycles == 2 * one.cycles == 200


def test_two_slots_share_dram_but_not_private_buffers() -> None:
    arch = toy_arch(dram_bw=10.0, buf_instances=2)
    prog = one_phase(Step(loads=(load(1000),)), work_items=2, slots=2)
    assert simulate(prog, arch, shortcuts=False).cycles == 200
    assert simulate(prog, arch).cycles == 200  # symmetric shortcut agrees


@pytest.mark.parametrize(("load_b", "mac_n"), [(100, 50), (50, 200), (100, 100)])
@pytest.mark.parametrize("shortcuts", [True, False])
def test_double_buffered_pipeline_is_fill_plus_n_periods(
    load_b: int, mac_n: int, shortcuts: bool
) -> None:
    arch = toy_arch(dram_bw=10.0, macs=10.0)
    n = 40
    lt, ct = load_b / 10.0, mac_n / 10.0
    prog = one_phase(Step(loads=(load(load_b),), compute=(macs(mac_n),)), trips=n, depth=2)
    r = simulate(prog, arch, shortcuts=shortcuts)
    assert r.cycles == pytest.approx(min(lt, ct) + n * max(lt, ct), abs=1)


def test_depth_one_serializes_load_and_compute() -> None:
    arch = toy_arch(dram_bw=10.0, macs=10.0)
    prog = one_phase(Step(loads=(load(100),), compute=(macs(50),)), trips=10, depth=1)
    assert simulate(prog, arch).cycles == 10 * (10 + 5)


def test_buffer_that_fits_one_tile_serializes_the_pipeline() -> None:
    body = Step(loads=(load(100),), compute=(macs(50),), buffer_bytes=100)
    roomy = one_phase(body, trips=10, depth=2, staging="BUF")
    assert simulate(roomy, toy_arch(buf_cap=200)).cycles == 5 + 10 * 10
    tight = simulate(roomy, toy_arch(buf_cap=150))
    assert tight.cycles == 10 * (10 + 5)
    assert any("clamped" in n for n in tight.meta["notes"])
    with pytest.raises(MappingError, match=r"phases\[0\]\.body\.buffer_bytes"):
        validate_program(roomy, toy_arch(buf_cap=150), strict=True)


def test_store_stage_pipelines_with_load_and_compute() -> None:
    arch = toy_arch(dram_bw=10.0, macs=10.0)
    prog = one_phase(
        Step(loads=(load(100),), compute=(macs(50),), stores=(store(30),)), trips=20, depth=2
    )
    # L=10, C=5, S=3: fill L+C+S then 19 more periods of max = 10
    assert simulate(prog, arch).cycles == 10 + 5 + 3 + 19 * 10


def test_compute_bound_program_hits_compute_roof() -> None:
    arch = toy_arch(dram_bw=100.0, macs=10.0)
    prog = one_phase(Step(loads=(load(10),), compute=(macs(1000),)), trips=100)
    r = simulate(prog, arch)
    assert r.cycles == pytest.approx(100 * 100, abs=2)
    assert r.utilization["PE"] == pytest.approx(1.0, abs=1e-3)


def test_memory_bound_program_hits_bandwidth_roof() -> None:
    arch = toy_arch(dram_bw=10.0, macs=100.0)
    prog = one_phase(
        Step(loads=(load(1000),), compute=(macs(10),)), trips=100, work_items=8, slots=4
    )
    r = simulate(prog, arch)
    assert r.cycles == pytest.approx(r.dram_bytes / 10.0, rel=1e-3)


def test_waves_and_tail_fall_out_of_in_order_dispatch() -> None:
    arch = toy_arch(dram_bw=1e6, buf_bw=1e6, macs=1.0, pe_instances=4)
    prog = one_phase(Step(compute=(macs(10),)), trips=1, work_items=9, slots=4)
    assert simulate(prog, arch, shortcuts=False).cycles == 3 * 10
    assert simulate(prog, arch).cycles == 3 * 10


def test_causal_trips_array_balances_by_dynamic_dispatch() -> None:
    arch = toy_arch(dram_bw=1e6, buf_bw=1e6, macs=1.0, pe_instances=2)
    prog = one_phase(
        Step(compute=(macs(1),)), trips=np.array([4, 1, 1, 1, 1]), work_items=5, slots=2
    )
    # slot0: item0 (4); slot1: items 1..4 (1 each) -> both end at 4
    assert simulate(prog, arch).cycles == 4


def test_phases_run_in_order_or_after_dependencies() -> None:
    arch = toy_arch(dram_bw=10.0, pe_instances=1, macs=1.0)
    a = Phase("a", Step(loads=(load(100),)))
    b = Phase("b", Step(compute=(macs(10),)), after=())
    c = Phase("c", Step(loads=(load(50),)), after=("a", "b"))
    assert (
        simulate(TileProgram("seq", (a, Phase("b", b.body), Phase("c", c.body))), arch).cycles
        == 10 + 10 + 5
    )
    assert simulate(TileProgram("dag", (a, b, c)), arch).cycles == 10 + 5


def test_prologue_and_epilogue_run_once_per_item() -> None:
    arch = toy_arch(dram_bw=10.0, macs=10.0)
    prog = one_phase(
        Step(compute=(macs(10),)),
        trips=5,
        prologue=Step(loads=(load(200),)),
        epilogue=Step(stores=(store(100),)),
    )
    assert simulate(prog, arch).cycles == 20 + 5 * 1 + 10


def test_same_input_gives_identical_result() -> None:
    arch = toy_arch(dram_bw=10.0, macs=10.0, pe_instances=3, dram_lat=3)
    prog = one_phase(
        Step(loads=(load(100),), compute=(macs(70),), stores=(store(10),)),
        trips=np.arange(1, 12),
        work_items=11,
        slots=3,
    )
    assert simulate(prog, arch) == simulate(prog, arch)


def test_steady_state_shortcut_matches_full_simulation() -> None:
    arch = toy_arch(dram_bw=7.0, macs=3.0, dram_lat=11)
    prog = one_phase(
        Step(loads=(load(100),), compute=(macs(50),), stores=(store(40),)), trips=500, depth=3
    )
    short, full = simulate(prog, arch), simulate(prog, arch, shortcuts=False)
    assert short.cycles == pytest.approx(full.cycles, abs=1)
    assert short.meta["events"] < full.meta["events"] / 10


@pytest.mark.parametrize(
    ("field", "bad", "path"),
    [
        ("src", "L9", r"phases\[0\]\.body\.loads\[0\]\.src"),
        ("dst", "L9", r"phases\[0\]\.body\.loads\[0\]\.dst"),
        ("bytes", -5, r"phases\[0\]\.body\.loads\[0\]\.bytes"),
    ],
)
def test_bad_transfer_is_a_mapping_error_with_path(field: str, bad: object, path: str) -> None:
    kw = {"tensor": "A", "bytes": 10, "src": "DRAM", "dst": "BUF", field: bad}
    from archsim import Transfer

    prog = one_phase(Step(loads=(Transfer(**kw),)))
    with pytest.raises(MappingError, match=path):
        simulate(prog, toy_arch())


def test_unknown_unit_and_op_kind_are_mapping_errors() -> None:
    from archsim import Compute

    with pytest.raises(MappingError, match=r"compute\[0\]\.unit"):
        simulate(one_phase(Step(compute=(Compute("GPU", {"mac": 1}),))), toy_arch())
    with pytest.raises(MappingError, match=r"compute\[0\]\.ops\.div"):
        simulate(one_phase(Step(compute=(Compute("PE", {"div": 1}),))), toy_arch())


def test_single_slot_ragged_items_use_the_per_item_shortcut() -> None:
    arch = toy_arch(dram_bw=10.0, macs=10.0, dram_lat=2)
    prog = one_phase(
        Step(loads=(load(100),), compute=(macs(70),)),
        trips=np.array([30, 5, 30, 0, 12]),
        work_items=5,
        slots=1,
        prologue=Step(loads=(load(40),)),
    )
    short, full = simulate(prog, arch), simulate(prog, arch, shortcuts=False)
    assert short.cycles == pytest.approx(full.cycles, abs=1)
    assert short.meta["phase_method"]["p"] == "shortcut"


def test_network_between_levels_is_a_shared_link() -> None:
    arch = toy_arch(dram_bw=100.0, net_bw=5.0)
    r = simulate(one_phase(Step(loads=(load(100),))), arch)
    assert r.cycles == 20
    assert r.energy_breakdown_j["NOC.transfer"] == pytest.approx(100 * 0.25e-12)
