"""Pipelined loads: several loads in flight per slot (cp.async / TMA stages, DMA engines).

A load occupies its bandwidth servers for its transfer only; the slot may start the next
tile's load when that transfer ends (while fewer than ``depth`` tiles are loaded or loading
but not yet computed); the data is usable the source's latency after the transfer. Toy
numbers (``toy_arch``): DRAM 10 B/cycle, so ``load(100)`` transfers in 10 cycles; the PE
does 10 MACs/cycle, so ``macs(100)`` computes in 10 cycles.
"""

from __future__ import annotations

import pytest

from archsim import Step, estimate, simulate
from archsim._estimate import _body_time_scalar
from archsim.engine._compile import compile_program
from tests.archsim.test_engine_toys import load, macs, one_phase, store, toy_arch

T, C, LAT, N = 10.0, 10.0, 50, 20


def _expected(depth: int, n: int = N, t: float = T, c: float = C, d: float = LAT) -> float:
    """Hand count: one tile through every stage, then per further tile the longer of the
    transfer chain and the window cycle (transfer, latency, compute per ``depth`` tiles)."""
    q, r = divmod(n - 1, depth)
    return t + d + c + max((n - 1) * max(t, c), q * (t + d + c) + r * max(t, c))


@pytest.mark.parametrize(
    ("depth", "cycles"),
    [
        (1, 20 * 70.0),  # one load at a time: latency, transfer and compute per tile
        (2, 70 + 9 * 70 + 10),  # two in flight: the latency is half hidden
        (4, 70 + 4 * 70 + 3 * 10),
        (8, 70 + 19 * 10),  # the window covers the latency: transfer-bound
    ],
)
def test_one_slot_hides_the_latency_behind_depth_loads_in_flight(depth: int, cycles: float) -> None:
    arch = toy_arch(dram_lat=LAT)
    prog = one_phase(Step(loads=(load(100),), compute=(macs(100),)), trips=N, depth=depth)
    assert cycles == _expected(depth)
    assert simulate(prog, arch).cycles == pytest.approx(cycles)
    assert simulate(prog, arch, shortcuts=False).cycles == pytest.approx(cycles)
    # the analytic evaluator is exact for one slot alone
    assert estimate(prog, arch).cycles == pytest.approx(cycles)


def test_stores_wait_for_the_window_and_the_estimate_is_exact_alone() -> None:
    # a store of 50 B to DRAM (5 cycles; the BUF source has no latency); depth 3, 20 tiles:
    # 10 + 50 + 10 + 5 for the first tile, then 6 window cycles of 70 and one transfer of 10
    arch = toy_arch(dram_lat=LAT)
    body = Step(loads=(load(100),), compute=(macs(100),), stores=(store(50),))
    prog = one_phase(body, trips=N, depth=3)
    step = compile_program(prog, arch).phases[0].body
    assert (step.load_time, step.load_delay, step.compute_time, step.store_time) == (
        T,
        LAT,
        C,
        5.0,
    )
    expected = 75.0 + 6 * 70 + 10
    assert simulate(prog, arch, shortcuts=False).cycles == pytest.approx(expected)
    assert simulate(prog, arch).cycles == pytest.approx(expected)
    assert estimate(prog, arch).cycles == pytest.approx(expected)
    assert _body_time_scalar(step, 3, N) == pytest.approx(expected)


def test_lockstep_slots_on_shared_dram_run_at_its_bandwidth_not_latency_plus_bandwidth() -> None:
    # 8 slots, 10 tiles of 100 B each on one 10 B/cycle DRAM: 800 cycles of transfers. Each
    # slot sees 10/8 B/cycle (80 cycles a transfer); with 4 tiles in flight the 50-cycle
    # latency hides: 80 + 50 + 10 for the first tile, then 80 per tile (one load at a time
    # paid 50 + 80 per tile: 1310)
    arch = toy_arch(dram_lat=LAT, buf_instances=8, pe_instances=8)
    prog = one_phase(
        Step(loads=(load(100),), compute=(macs(100),)), trips=10, work_items=8, slots=8, depth=4
    )
    expected = 80 + 50 + 10 + 9 * 80.0
    assert simulate(prog, arch).cycles == pytest.approx(expected)
    assert simulate(prog, arch, shortcuts=False).cycles == pytest.approx(expected)
    assert estimate(prog, arch).cycles <= expected * (1 + 1e-9)
    assert estimate(prog, arch).cycles >= 800.0  # the DRAM's work bounds it


def test_a_serial_load_is_its_transfer_then_its_latency() -> None:
    # prologue: load (10 + 50), compute 10; body: one tile (70); epilogue: load again (60)
    arch = toy_arch(dram_lat=LAT)
    pro = Step(loads=(load(100, "Q"),), compute=(macs(100),))
    epi = Step(loads=(load(100, "R"),))
    prog = one_phase(
        Step(loads=(load(100),), compute=(macs(100),)), trips=1, prologue=pro, epilogue=epi
    )
    assert simulate(prog, arch).cycles == pytest.approx(70.0 + 70.0 + 60.0)
    assert simulate(prog, arch, shortcuts=False).cycles == pytest.approx(200.0)
    assert estimate(prog, arch).cycles == pytest.approx(200.0)


def test_the_delay_holds_no_server_a_second_slot_transfers_meanwhile() -> None:
    # two slots on one DRAM, one tile each, depth 1: each transfer shares the DRAM (20 cycles
    # for both), then both wait the latency together: 20 + 50 + 10
    arch = toy_arch(dram_lat=LAT, buf_instances=2, pe_instances=2)
    prog = one_phase(
        Step(loads=(load(100),), compute=(macs(100),)), trips=1, work_items=2, slots=2, depth=1
    )
    assert simulate(prog, arch, shortcuts=False).cycles == pytest.approx(80.0)
    assert simulate(prog, arch).cycles == pytest.approx(80.0)
