"""Result: energy accounting, traffic, utilization, dict and frame views."""

from __future__ import annotations

import pytest

from archsim import Step, simulate
from tests.archsim.test_engine_toys import load, macs, one_phase, store, toy_arch


def _result():
    arch = toy_arch(dram_bw=10.0, macs=10.0, leak_w=1.0, idle_w=0.5)
    prog = one_phase(
        Step(loads=(load(100),), compute=(macs(50),), stores=(store(20),)),
        trips=10,
        work_items=2,
        slots=2,
    )
    return arch, simulate(prog, arch)


def test_energy_is_actions_times_unit_energy_plus_static() -> None:
    _arch, r = _result()
    occ = 20  # 10 trips x 2 items
    b = r.energy_breakdown_j
    assert b["DRAM.read"] == pytest.approx(occ * 100 * 10.0e-12)
    assert b["BUF.write"] == pytest.approx(occ * 100 * 1.5e-12)
    assert b["BUF.read"] == pytest.approx(occ * 20 * 1.0e-12)
    assert b["DRAM.write"] == pytest.approx(occ * 20 * 12.0e-12)
    assert b["PE.mac"] == pytest.approx(occ * 50 * 0.5e-12)
    assert b["static"] == pytest.approx((1.0 + 0.5) * r.seconds)
    assert r.energy_j == pytest.approx(sum(b.values()))


def test_bytes_per_level_and_tensor() -> None:
    _arch, r = _result()
    assert r.bytes_by_tensor["DRAM.A"] == 20 * 100
    assert r.bytes_by_tensor["BUF.Z"] == 20 * 20
    assert r.bytes_by_level["DRAM"] == r.dram_bytes == 20 * 120
    assert r.area_mm2 == pytest.approx(5.0)


def test_utilization_is_busy_over_instances_times_cycles() -> None:
    _arch, r = _result()
    assert r.utilization["PE"] == pytest.approx(20 * 5 / r.cycles, abs=1e-9)


def test_dict_and_long_frame() -> None:
    _arch, r = _result()
    d = r.to_dict()
    assert d["cycles"] == r.cycles
    assert d["engine"] == "event"
    frame = r.to_frame()
    assert list(frame.columns[:5]) == ["metric", "component", "action", "value", "unit"]
    energy = frame[(frame.metric == "energy") & (frame.component != "total")]
    assert energy.value.sum() == pytest.approx(r.energy_j)
    row = frame[
        (frame.metric == "bytes_tensor") & (frame.action == "A") & (frame.component == "DRAM")
    ]
    assert row.value.item() == 2000
