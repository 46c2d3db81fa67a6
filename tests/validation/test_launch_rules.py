"""PyTorch's launch rules (archsim.gpu.launch) against the launches the H200 traces recorded,
and the dependent-round latency model they feed."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from archsim.gpu import evaluate_op, gpu_model
from archsim.gpu.elementwise import launch_cost
from archsim.gpu.launch import (
    HBM_ROUND_S,
    layer_norm_launch,
    legacy_elementwise_launch,
    level_latency_s,
    vectorized_elementwise_launch,
)

TRACES = Path(__file__).resolve().parents[2] / "validation" / "data" / "traces"
DECODE = sorted(TRACES.glob("h200_llama3_8b_layer_*_decode.trace.json.gz"))
MODEL = gpu_model("h200")


def _device_us(launch, read: float, write: float) -> float:  # noqa: ANN001
    cost = launch_cost(
        MODEL,
        launch,
        name="k",
        category="elementwise",
        read_bytes=read,
        write_bytes=write,
        alu_ops=0.0,
    )
    return (evaluate_op([cost], MODEL).kernels[0].time_s - MODEL.cal.launch_s) * 1e6


@pytest.mark.parametrize("path", DECODE, ids=lambda p: p.name.split(".")[0])
def test_element_wise_and_cat_launches_are_the_traced_grids(path):
    from validation._compare import compare_trace
    from validation._torch_trace import read_torch_trace

    trace = read_torch_trace(path)
    cmp = compare_trace(trace, MODEL, arch="h200")
    checked = 0
    for m in cmp.matches:
        meta = m.sim.meta if m.sim is not None else {}
        if "grid" not in meta or m.kernel.grid is None:
            continue
        assert meta["grid"] == math.prod(m.kernel.grid), (m.kernel.name[:60], m.op_label)
        assert meta["threads"] == math.prod(m.kernel.block or (0,))
        checked += 1
    assert checked >= 30  # the RoPE, residual, SwiGLU, KV-cache and cat kernels of 3 steps


@pytest.mark.parametrize("rows", [1, 8, 32])
def test_the_norm_kernel_is_one_cta_of_128_threads_per_row_as_traced(rows):
    launch = layer_norm_launch(rows, 4096, 2)
    assert (launch.ctas, launch.threads) == (rows, 32 * 4)  # grid (M,1,1), block (32,4,1)
    # 4096 bf16 in 4-element loads by 128 threads: 8 loop trips to read, 8 to normalise
    assert launch.n_rounds == 16


def test_a_wider_row_adds_dependent_hbm_rounds_at_the_fitted_latency():
    one = _device_us(layer_norm_launch(1, 4096, 2), 16384, 8192)
    two = _device_us(layer_norm_launch(1, 8192, 2), 32768, 16384)
    assert two - one == pytest.approx(16 * HBM_ROUND_S * 1e6, rel=1e-6)
    # a batch of rows in one wave costs what one row costs: latency, not bandwidth
    assert _device_us(layer_norm_launch(32, 4096, 2), 32 * 16384, 32 * 8192) == pytest.approx(
        one, rel=1e-6
    )


def test_a_strided_kernel_waits_one_latency_per_element_a_contiguous_one_once():
    n = 4096
    vec = _device_us(vectorized_elementwise_launch(n, [2, 2], 2, src="L2"), 4 * n, 2 * n)
    leg = _device_us(legacy_elementwise_launch(n, [2, 2], 2, src="L2"), 4 * n, 2 * n)
    assert leg - vec == pytest.approx(3 * level_latency_s(MODEL, "L2") * 1e6, rel=1e-6)
    cold = _device_us(vectorized_elementwise_launch(n, [2, 2], 2, src="HBM"), 4 * n, 2 * n)
    assert cold - vec == pytest.approx((HBM_ROUND_S - level_latency_s(MODEL, "L2")) * 1e6)
    # the L2 latency is the preset's L2 level at the boost clock
    assert level_latency_s(MODEL, "L2") == pytest.approx(260 / MODEL.hw.boost_clock_hz)


def test_large_element_wise_kernels_stay_bound_by_hbm_bandwidth():
    n = 8192 * 14336
    cost = launch_cost(
        MODEL,
        vectorized_elementwise_launch(n, [2, 2], 2),
        name="mul",
        category="elementwise",
        read_bytes=4.0 * n,
        write_bytes=2.0 * n,
        alu_ops=float(n),
    )
    timing = evaluate_op([cost], MODEL).kernels[0]
    assert timing.bound == "dram"
    assert timing.time_s - MODEL.cal.launch_s == pytest.approx(
        6.0 * n / MODEL.hbm_eff_bytes_per_s, rel=1e-9
    )


def test_the_fitted_round_latency_is_what_the_fit_script_gives():
    from validation.fit_elementwise import fit_round_latency

    lat, pairs = fit_round_latency()
    assert len(pairs) == 2  # M = 1 and 16 at d = 4096 and 8192
    assert HBM_ROUND_S == pytest.approx(lat, rel=0.005)


def test_cudnn_decode_combine_is_matched_to_its_lean_reduction_kernel():
    from validation._compare import compare_trace
    from validation._torch_trace import read_torch_trace

    path = TRACES / "h200_llama3_8b_layer_b1_decode.trace.json.gz"
    cmp = compare_trace(read_torch_trace(path), MODEL, arch="h200")
    lean = [m for m in cmp.matches if "lean_reduction" in m.kernel.name]
    assert len(lean) == 3
    assert all(m.sim is not None for m in lean)
    # the split count cuDNN launched (grid (32, 8, 1)) is the model's
    attn = next(m for m in cmp.matches if m.kernel.category == "attn_fwd")
    assert attn.sim.meta["splits"] == attn.kernel.grid[0] == 32
    assert not [u for u in cmp.unknown() if "lean_reduction" in u[0]]


@pytest.mark.parametrize(("batch", "grid"), [(1, (32, 8, 1)), (8, (4, 8, 8)), (32, (1, 8, 32))])
def test_cudnn_decode_splits_are_the_traced_grids(batch, grid):
    from archsim.gpu.decode import cudnn_decode_splits

    path = TRACES / f"h200_llama3_8b_layer_b{batch}_decode.trace.json.gz"
    from validation._torch_trace import read_torch_trace

    traced = next(k.grid for k in read_torch_trace(path).kernels if "sdpa" in k.name)
    assert traced == grid
    assert cudnn_decode_splits(MODEL, B=batch, Hkv=8) == grid[0]


def test_a_steps_first_kernel_reads_from_hbm_the_others_from_l2():
    from validation._compare import _input_level
    from validation._torch_trace import read_torch_trace

    trace = read_torch_trace(TRACES / "h200_llama3_8b_layer_b1_decode.trace.json.gz")
    levels = [_input_level(trace, i) for i in range(len(trace.kernels))]
    firsts = {
        i for i, k in enumerate(trace.kernels) if i == 0 or trace.kernels[i - 1].step != k.step
    }
    assert len(firsts) == 3  # three layer steps
    assert all((lvl == "HBM") == (i in firsts) for i, lvl in enumerate(levels))


def test_one_kernel_records_imply_one_timer_overhead():
    """With the fitted round latency, what the CUDA-event timer and launch add to each cold,
    latency-bound one-kernel record (RMSNorm of 1 or 16 rows at two widths, a one-row add)
    is one constant within 1 us (each kernel on the event engine, constants fitted through
    it: 3.0-3.8 us; the closed form the round latency was fitted with: 3.3-4.1 us); the
    preset's 481 ns per round spreads it over ~3 us."""
    from validation.fit_elementwise import implied_overheads

    rows = implied_overheads()
    assert len(rows) == 5
    extra = [meas - model for _, _, meas, model in rows]
    assert max(extra) - min(extra) < 1.0e-6
    assert 2.5e-6 < min(extra)


@pytest.mark.parametrize("batch", [1, 8, 32])
def test_cudnn_decode_kernel_is_the_traced_sm80_wmma_tile(batch):
    """cuDNN's decode kernel as the trace records it: ``..._sm80_flash_fprop_wmma_..._16x128x
    128_...``, 128 threads, 86,336 B of shared memory, one CTA per (split, K/V head, batch)."""
    import gzip
    import json
    import re

    from archsim.gpu import decode_costs
    from archsim.gpu.decode import cudnn_decode_tiling

    path = TRACES / f"h200_llama3_8b_layer_b{batch}_decode.trace.json.gz"
    events = json.loads(gzip.decompress(path.read_bytes()))["traceEvents"]
    k = next(e for e in events if e.get("cat") == "kernel" and "sdpa" in e["name"])
    assert "_sm80_" in k["name"]
    assert "_wmma_" in k["name"]
    bm, bn, d = (int(x) for x in re.search(r"_(\d+)x(\d+)x(\d+)_", k["name"]).groups())
    t = cudnn_decode_tiling(MODEL, d)
    assert (t.block_m, t.block_n) == (bm, bn) == (16, 128)
    assert t.threads == math.prod(k["args"]["block"]) == 128
    assert t.path == "mma_sync"  # an sm80 warp-level MMA, not Hopper's wgmma
    assert t.smem_bytes == pytest.approx(k["args"]["shared memory"], rel=0.005)
    assert t.ctas_per_sm == 2  # two 86 KB CTAs fit an SM's 228 KB
    (kernel, *_) = decode_costs(
        MODEL, B=batch, Hq=32, Hkv=8, Skv=8193, D=128, family="flash3", dtype="bf16"
    )
    assert kernel.meta["tile"] == "16x128"
    assert kernel.meta["path"] == "mma_sync"
    assert kernel.ctas == math.prod(k["args"]["grid"])
