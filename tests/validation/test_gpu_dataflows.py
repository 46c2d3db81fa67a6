"""GPU dataflows: registered, lowered to tile programs that carry the model's traffic."""

import pytest

from archsim import load_arch
from archsim.errors import MappingError
from archsim.gpu import gpu_model
from mappings import get_dataflow, list_dataflows, simulate_workload

CASES = [
    ("flash2", "mha", {"B": 1, "H": 8, "Sq": 1024, "D": 128, "causal": True}),
    ("flash3", "mha", {"B": 1, "H": 8, "Sq": 1024, "D": 128}),
    # a measured shape (h100_check: 0.550 ms; kernel model -18%, event engine -17%). On a
    # sub-wave grid (B=1, H=8: 128 CTAs) the engine, which overlaps the 2-stage K/V pipeline's
    # latency, comes out 21% under the kernel model's per-CTA formula (2026-12-05, pipelined
    # loads): no measurement says which is right there
    ("mem_efficient", "mha", {"B": 16, "H": 16, "Sq": 1024, "D": 64}),
    ("split_kv", "decode", {"B": 1, "H": 32, "Hkv": 8, "Skv": 8192, "D": 128}),
    ("lean", "decode", {"B": 1, "H": 32, "Hkv": 8, "Skv": 8192, "D": 128}),
    (
        "block_sparse",
        "block_sparse",
        {"B": 1, "H": 8, "Sq": 2048, "D": 128, "density": 0.3, "block": 128},
    ),
    ("fg_sparse", "fg_sparse", {"B": 1, "H": 8, "Sq": 2048, "D": 128, "density": 0.3}),
    ("gpu_gemm", "gemm", {"M": 1024, "N": 1024, "K": 1024}),
    ("gpu_unfused", "mha", {"B": 1, "H": 4, "Sq": 1024, "D": 64}),
]


def test_all_gpu_dataflows_registered():
    assert {c[0] for c in CASES} <= set(list_dataflows())


@pytest.mark.parametrize(("dataflow", "workload", "params"), CASES, ids=[c[0] for c in CASES])
def test_program_carries_model_dram_bytes_and_event_is_not_below_analytic(
    dataflow, workload, params
):
    ana = simulate_workload("h100", workload, params=params, dataflow=dataflow, engine="analytic")
    ev = simulate_workload("h100", workload, params=params, dataflow=dataflow, engine="event")
    model_bytes = sum(float(k["dram_bytes"]) for k in ana.plan.meta["kernels"])
    # the model's bytes are those inside the kernel's window (what ncu measures); the result
    # also counts GEMM output still dirty in L2 at the end, which a later kernel writes
    in_window = ana.result.dram_bytes - ana.result.meta["deferred_write_bytes"]
    assert in_window == pytest.approx(model_bytes, rel=0.10)
    assert ana.result.dram_bytes >= model_bytes * (1 - 1e-4)  # per-CTA bytes are whole bytes
    assert ev.result.cycles >= ana.result.cycles
    # the program's time base makes the arch's HBM bytes/cycle the model's achievable
    # bandwidth; each kernel's SM work is at the clock the power model chose for it
    hbm_bytes_per_cycle = load_arch("h100").dram.read_bw_bytes_per_cycle
    engine_hbm = ana.plan.program.clock_hz * hbm_bytes_per_cycle
    assert engine_hbm == pytest.approx(gpu_model("h100").hbm_eff_bytes_per_s)
    assert all(k["clock_hz"] > 0 for k in ana.plan.meta["kernels"])


def test_split_kv_knob_forces_splits():
    rep = simulate_workload(
        "h100",
        "decode",
        params={"B": 1, "H": 32, "Skv": 8192, "D": 128},
        dataflow="split_kv",
        knobs={"splits": 4},
        engine="analytic",
    )
    assert rep.plan.meta["splits"] == 4


def test_gpu_dataflow_on_spatial_arch_is_a_mapping_error():
    with pytest.raises(MappingError, match="GPU"):
        simulate_workload(
            "fusemax",
            "gemm",
            params={"M": 256, "N": 256, "K": 256},
            dataflow="gpu_gemm",
            engine="analytic",
        )


def test_unknown_knob_is_rejected():
    with pytest.raises(MappingError, match="knob"):
        simulate_workload(
            "h100",
            "gemm",
            params={"M": 256, "N": 256, "K": 256},
            dataflow="gpu_gemm",
            knobs={"warp_size": 7},
            engine="analytic",
        )


def test_fg_sparse_matches_block_sparse_on_the_same_kernel_at_equal_density():
    kw = {"B": 1, "H": 8, "Sq": 8192, "D": 128, "density": 0.375, "block": 64}  # 48 of 128 blocks

    def run(dataflow, knobs):
        return simulate_workload(
            "h100", dataflow, params=kw, dataflow=dataflow, knobs=knobs, engine="analytic"
        ).result.seconds

    block = run("block_sparse", {"family": "flash3"})
    assert run("fg_sparse", {"gather_cycles_per_row": 0.0}) == pytest.approx(block, rel=0.01)
    assert run("fg_sparse", {}) >= block * 0.99
    assert get_dataflow("fg_sparse") is not None


@pytest.mark.parametrize(("dataflow", "workload", "params"), CASES, ids=[c[0] for c in CASES])
def test_the_analytic_evaluator_bounds_the_event_engine_closely(dataflow, workload, params):
    """The lowered program (launch phases, CTAs on SM slots, DRAM/L2 split with TMA
    multicast, per-kernel power-capped clock, achievable HBM bandwidth) bounded by
    ``estimate`` is never above the event engine's time, and within 15% of it (gpu_unfused:
    25%, the scores' writes and reads meet on the HBM ports only in the event engine)."""
    ana = simulate_workload("h100", workload, params=params, dataflow=dataflow, engine="analytic")
    ev = simulate_workload("h100", workload, params=params, dataflow=dataflow)
    ratio = ana.result.seconds / ev.result.seconds
    tol = 0.25 if dataflow == "gpu_unfused" else 0.15
    assert 1 - tol < ratio <= 1 + 1e-9
