"""GPU energy in simulate results comes from the board power model (validated against NVML),
at the engine's time — not from per-op energy tables that leave out most of the board."""

import pytest

from archsim import load_arch
from archsim.gpu import gpu_model
from mappings import simulate_workload


@pytest.mark.parametrize(
    ("workload", "params"),
    [
        ("mha", {"S": 2048}),
        ("gemm", {"M": 4096, "N": 4096, "K": 4096}),
        ("decode", {"Skv": 8192}),
    ],
)
def test_gpu_energy_is_board_power_times_engine_time(workload: str, params: dict) -> None:
    rep = simulate_workload("h100", workload, params=params)
    r, meta = rep.result, rep.plan.meta
    model = gpu_model(load_arch("h100"))
    # average board power lies between idle and the power cap
    watts = r.energy_j / r.seconds
    assert model.hw.idle_w < watts <= model.hw.power_cap_w * 1.001
    # the time-proportional parts are the idle power over the engine's time
    assert r.energy_breakdown_j["gpu.idle"] == pytest.approx(model.hw.idle_w * r.seconds)
    assert sum(r.energy_breakdown_j.values()) == pytest.approx(r.energy_j)
    # each kernel at its governor clock for the time the engine gave it: the same energy
    # as the record path (run_kernels) on the same kernels
    times = r.meta["kernel_seconds"]
    assert sum(times.values()) == pytest.approx(r.seconds, rel=1e-9)
    assert len(times) == len(meta["kernels"])
    assert r.meta["component_energy_j"] < r.energy_j


def test_energy_grows_with_work_at_fixed_shape() -> None:
    small = simulate_workload("h100", "mha", params={"S": 1024}).result.energy_j
    big = simulate_workload("h100", "mha", params={"S": 4096}).result.energy_j
    # 16x the score work: between 4x (idle-dominated) and 16x (work-dominated) plus launch
    assert 4 < big / small < 17
