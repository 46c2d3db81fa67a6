"""The power cap sets the clock (the governor, ``evaluate_op``); one power model gives the
energy at the time the event engine gives."""

import pytest

from archsim.gpu import board_power_w, decode_costs, evaluate_op, gemm_costs, gpu_model


@pytest.fixture(scope="module")
def model():
    return gpu_model("h100")


def test_big_gemm_is_capped_below_boost(model):
    op = evaluate_op(gemm_costs(8192, 8192, 8192, model), model)
    k = op.kernels[0]
    assert k.clock_hz < model.hw.boost_clock_hz
    assert k.power_w == pytest.approx(model.hw.power_cap_w, rel=1e-3)


def test_lifting_the_cap_raises_clock_and_shortens_time(model):
    costs = gemm_costs(8192, 8192, 8192, model)
    capped = evaluate_op(costs, model)
    free = evaluate_op(costs, model, cap_w=5000.0)
    assert free.clock_hz == model.hw.boost_clock_hz
    assert free.time_s < capped.time_s
    assert free.avg_power_w > model.hw.power_cap_w
    # lower voltage under the cap: less energy per FLOP despite the longer run
    assert capped.energy_j < free.energy_j


def test_bandwidth_bound_decode_runs_at_boost(model):
    op = evaluate_op(decode_costs(model, B=8, Hq=32, Hkv=8, Skv=32768, D=128), model)
    assert op.kernels[0].clock_hz == model.hw.boost_clock_hz
    assert op.avg_power_w < model.hw.power_cap_w


def test_gemm_energy_matches_nvml(model):
    """A 4096x28672x4096 bf16 GEMM on the lent H100 (check split, never fitted:
    validation/data/h100_check.jsonl): NVML board power 702.16 W over an energy loop of
    1.39547 ms per call = 0.9799 J per call. Timed by the event engine, the board energy at
    that time is -10.2% (its time -9.8%; the record's energy is held by the check split's
    energy MAPE, 6.2% over 9 records); the closed-form model gave -9.5% before the constants
    were refitted through the event engine. Held here within 11% so a drift shows."""
    from archsim import load_arch
    from mappings._gpu._run import run_kernels

    op = run_kernels(gemm_costs(4096, 28672, 4096, model), model, load_arch("h100"))
    assert op.kernels[0].energy_j == pytest.approx(1.3954739 * 702.16070 * 1e-3, rel=0.11)


def test_power_rises_with_clock_and_activity(model):
    lo = board_power_w(model, 1.2e9, tensor_flops_per_s=5e14, alu_ops_per_s=0, dram_bytes_per_s=0)
    hi = board_power_w(model, 1.9e9, tensor_flops_per_s=5e14, alu_ops_per_s=0, dram_bytes_per_s=0)
    idle = board_power_w(model, 1.9e9, tensor_flops_per_s=0, alu_ops_per_s=0, dram_bytes_per_s=0)
    assert lo < hi
    assert idle < hi
