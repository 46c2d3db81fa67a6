"""Compute occupancy (partly filled arrays) and a DRAM bus shared by reads and writes.

Closed forms on the toy DRAM(10 B/cycle) -> BUF -> PE(10 MAC/cycle, 0.5 pJ/MAC) machine.
"""

from __future__ import annotations

import pytest

from archsim import Compute, Step, estimate, simulate
from archsim.errors import MappingError
from tests.archsim.test_engine_toys import load, one_phase, store, toy_arch


@pytest.mark.parametrize("evaluate", [simulate, estimate])
def test_half_filled_array_takes_twice_the_time_for_the_same_energy(evaluate):
    arch = toy_arch()
    full = one_phase(Step(compute=(Compute("PE", {"mac": 1000.0}),)), trips=4)
    half = one_phase(Step(compute=(Compute("PE", {"mac": 1000.0}, occupancy=0.5),)), trips=4)
    rf, rh = evaluate(full, arch), evaluate(half, arch)
    assert rf.cycles == 400  # 4 x 1000 MACs / 10 per cycle
    assert rh.cycles == 800  # half the lanes: 1000 / (10 x 0.5)
    assert rh.energy_breakdown_j["PE.mac"] == pytest.approx(4000 * 0.5e-12, rel=1e-12)
    assert rh.energy_breakdown_j["PE.mac"] == pytest.approx(rf.energy_breakdown_j["PE.mac"])
    # utilization counts useful work: busy the whole run at half occupancy -> 0.5
    assert rf.utilization["PE"] == pytest.approx(1.0)
    assert rh.utilization["PE"] == pytest.approx(0.5)


@pytest.mark.parametrize("occ", [0.0, -0.1, 1.5, float("nan")])
def test_occupancy_outside_0_1_is_a_mapping_error(occ):
    prog = one_phase(Step(compute=(Compute("PE", {"mac": 10.0}, occupancy=occ),)))
    with pytest.raises(MappingError, match="occupancy"):
        simulate(prog, toy_arch())


def _shared(arch):
    return arch.with_updates({"levels.DRAM.shared_read_write": True})


def test_default_levels_have_separate_read_and_write_ports():
    # a load and a store of 1000 B each run side by side: 1000 / 10 = 100 cycles
    prog = one_phase(Step(loads=(load(1000),), stores=(store(1000),)), depth=1)
    assert simulate(prog, toy_arch()).cycles == 200  # load stage, then store stage
    both = one_phase(Step(loads=(load(1000), store(1000))), depth=1)
    assert simulate(both, toy_arch()).cycles == 100
    assert estimate(both, toy_arch()).cycles == 100


@pytest.mark.parametrize("evaluate", [simulate, estimate])
def test_shared_bus_serves_reads_and_writes_from_one_bandwidth(evaluate):
    # the same concurrent read and write now share 10 B/cycle: 2000 B / 10 = 200 cycles
    both = one_phase(Step(loads=(load(1000), store(1000))), depth=1)
    assert evaluate(both, _shared(toy_arch())).cycles == 200


@pytest.mark.parametrize("trips", [7, 400, 5000])
def test_streaming_over_a_shared_bus_is_bound_by_total_traffic(trips):
    # loads of 300 B and stores of 200 B per tile, compute 20 cycles: the bus needs 50
    # cycles per tile (FuseMax's DRAM model: (reads + writes) / bandwidth)
    body = Step(loads=(load(300),), compute=(Compute("PE", {"mac": 200.0}),), stores=(store(200),))
    arch = _shared(toy_arch())
    ev = simulate(one_phase(body, trips=trips), arch)
    exact = simulate(one_phase(body, trips=trips), arch, shortcuts=False) if trips < 1000 else None
    an = estimate(one_phase(body, trips=trips), arch)
    assert an.cycles <= ev.cycles
    assert ev.cycles >= 50 * trips
    assert ev.cycles <= 50 * trips + 30 + 20 + 20  # + first load, compute and last store
    if exact is not None:  # the steady-state shortcut over a shared bus is exact
        assert ev.cycles == exact.cycles
    sep = simulate(one_phase(body, trips=trips), toy_arch())
    assert sep.cycles < ev.cycles  # separate ports: 30 cycles per tile


def test_ragged_items_over_a_shared_bus_match_the_full_simulation():
    import numpy as np

    body = Step(loads=(load(300),), compute=(Compute("PE", {"mac": 450.0}),), stores=(store(170),))
    arch = _shared(toy_arch(dram_lat=7))
    prog = one_phase(body, trips=np.array([40, 3, 17, 40, 1]), work_items=5, slots=1)
    assert simulate(prog, arch).cycles == simulate(prog, arch, shortcuts=False).cycles


@pytest.mark.parametrize("trips", [5, 60])
def test_lockstep_slots_on_a_shared_bus_match_the_full_simulation(trips):
    body = Step(loads=(load(300),), compute=(Compute("PE", {"mac": 900.0}),), stores=(store(120),))
    arch = _shared(toy_arch(dram_lat=3, pe_instances=4, buf_instances=4))
    prog = one_phase(body, trips=trips, work_items=8, slots=4)
    assert simulate(prog, arch).cycles == simulate(prog, arch, shortcuts=False).cycles


def test_presets_opt_in_to_the_shared_dram_bus():
    from archsim import Architecture, load_arch

    for name in ("fusemax", "flat", "tpu_like"):  # traffic / one bandwidth (FuseMax artifact)
        assert load_arch(name).dram.shared_read_write is True
    assert toy_arch().level("DRAM").shared_read_write is False  # default: separate ports
    assert isinstance(toy_arch(), Architecture)
