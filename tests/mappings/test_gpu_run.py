"""The one way archsim times real GPU kernels (issue 12): a call's kernels lowered to a tile
program and run by the event engine (or bounded by its analytic evaluator); each kernel's
time is its share of the engine's run, its energy the board power model at that time."""

import pytest

import archsim
from archsim import load_arch
from archsim.errors import MappingError
from archsim.gpu import decode_costs, gemm_costs, gpu_model
from archsim.gpu.power import board_energy_parts_j
from mappings._gpu import costs_to_program
from mappings._gpu._run import run_kernels

ARCH = load_arch("h100")
MODEL = gpu_model("h100")


def _split_kv():
    return decode_costs(MODEL, B=1, Hq=32, Hkv=8, Skv=8192, D=128)  # kernel + combine


def test_the_kernels_times_are_the_event_engines_run_split_by_kernel():
    costs = _split_kv()
    op = run_kernels(costs, MODEL, ARCH)
    assert [k.name for k in op.kernels] == [c.name for c in costs]
    program = costs_to_program(
        "call", costs, MODEL, ARCH, archsim.gpu.evaluate_op(costs, MODEL), pipelined_loads=True
    )
    whole = archsim.simulate(program, ARCH).seconds
    assert op.time_s == pytest.approx(whole, rel=1e-12)
    assert all(k.time_s > 0 and k.meta["engine"] == "event" for k in op.kernels)


def test_each_kernels_energy_is_board_power_at_its_engine_time():
    op = run_kernels(gemm_costs(4096, 4096, 4096, MODEL), MODEL, ARCH)
    (k,) = op.kernels
    parts = board_energy_parts_j(
        MODEL,
        k.clock_hz,
        k.time_s,
        tensor_flops=k.tensor_flops,
        alu_ops=k.alu_ops,
        dram_bytes=k.dram_read_bytes + k.dram_write_bytes,
    )
    assert k.energy_j == pytest.approx(sum(parts.values()), rel=1e-12)
    assert k.power_w == pytest.approx(k.energy_j / k.time_s)


def test_the_analytic_evaluator_bounds_the_event_engine():
    costs = _split_kv()
    assert run_kernels(costs, MODEL, ARCH, engine="analytic").time_s <= (
        run_kernels(costs, MODEL, ARCH).time_s * (1 + 1e-9)
    )


def test_a_cached_program_is_not_run_again(monkeypatch):
    calls = []
    real = archsim.simulate

    def counting(program, arch, **kw):
        calls.append(program.name)
        return real(program, arch, **kw)

    monkeypatch.setattr(archsim, "simulate", counting)
    cache: dict = {}
    first = run_kernels(_split_kv(), MODEL, ARCH, cache=cache)
    again = run_kernels(_split_kv(), MODEL, ARCH, cache=cache)
    assert len(calls) == 1
    assert len(cache) == 1
    assert again == first
    # another calibration constant the lowering reads is another program
    other = gpu_model("h100", MODEL.cal.with_values({"launch_s": 2 * MODEL.cal.launch_s}))
    run_kernels(_split_kv(), other, ARCH, cache=cache)
    assert len(calls) == 2


def test_an_unknown_engine_is_refused_naming_it():
    with pytest.raises(MappingError, match="engine"):
        run_kernels(_split_kv(), MODEL, ARCH, engine="model")  # type: ignore[arg-type]
