"""PIM-GPT: one ``models`` decode graph per GPT model, simulated on ``aim_pim`` and on the GPU
presets (validation/reproduce/_pimgpt.py), and the gate on it.

Stated tolerances (docs/reproductions.md, PIM section): the h100 model of a GPT-2-small
decode step stays within 15% of 0.88 ms per token; the PIM-GPT speedups over it (fast set:
GPT-2 small and GPT-3 XL) within 15% of 10.9x (13.1x before the PIM lowering's crossings)
and 4.43x (without launches and gaps 7.08x and
3.04x). These moved from 1.08 ms, 16.0x, 5.29x (5.19x, 2.79x) when the calibrated
``launch_s`` (12.4 us) was split into host launch (3.8 us), an in-kernel ramp of tensor-core
kernels (2.9 us) and the harness's dirty-L2 write-back, and FFN-down became one skinny-tile
GEMM (no split-K + reduce). The paper's 41-137x is missed against this baseline: the gated
check must stay a miss until the model changes (then update the numbers here and in the
docs), and no measured figure (eager or CUDA-graph) may gate.
"""

from __future__ import annotations

import pytest

from archsim.gpu import gpu_model
from models import simulate_graph
from validation.reproduce._pim import reproduce_pim
from validation.reproduce._pimgpt import PIMGPT_GPUS, PIMGPT_L, PIMGPT_PIM, pimgpt_graph

TOL = 0.15


@pytest.fixture(scope="module")
def rep():
    return reproduce_pim(fast=True)


@pytest.fixture(scope="module")
def rows(rep):
    return {r["model"]: r for r in rep.tables["models"] if r["setup"].startswith("PIM-GPT")}


def _check(rep, prefix):
    return next(c for c in rep.checks if c.name.startswith(prefix))


def test_both_sides_simulate_one_models_graph(rows):
    graph = pimgpt_graph("gpt2-small")
    assert (graph.model.name, graph.phase, graph.batch, graph.seq) == (
        "gpt2-small",
        "decode",
        1,
        PIMGPT_L,
    )
    pim = simulate_graph(graph, PIMGPT_PIM)
    gpu = simulate_graph(graph, "h100")
    row = rows["gpt2-small"]
    assert row["pim_ms_per_token"] == pytest.approx(pim.latency_s * 1e3, rel=1e-12)
    assert row["gpu_ms_per_token"] == pytest.approx(gpu.latency_s * 1e3, rel=1e-12)
    assert row["speedup"] == pytest.approx(gpu.latency_s / pim.latency_s, rel=1e-12)
    # the same ops on both sides, in the same order
    assert [r.op for r in pim.rows] == [r.op for r in gpu.rows]
    assert {"h100", "a100", "h200"} == set(PIMGPT_GPUS)


def test_pim_side_places_every_op(rows):
    pim = simulate_graph(pimgpt_graph("gpt3-xl"), PIMGPT_PIM)
    assert pim.complete
    how = {r.op: r.dataflow for r in pim.rows}
    for gemv in ("qkv_proj", "o_proj", "ffn_up", "ffn_down", "lm_head"):
        assert how[gemv] == "pim_gemv", gemv
    assert how["attention"] == "pim_decode"
    for vector_op in ("attn_norm", "ffn_act", "residual_add", "kv_cache_write", "embed_gather"):
        assert how[vector_op] == "host", vector_op
    # the host-side controller's share is small: the step is the GEMV weight stream
    assert 0 < rows["gpt3-xl"]["pim_host_share"] < 0.05


def test_gpu_step_is_launch_gaps_plus_streamed_weights(rows):
    r = rows["gpt2-small"]
    assert r["gpu_ms_per_token"] == pytest.approx(0.88, rel=TOL)
    # 13 kernels per layer (split-KV attention + combine; FFN-down split-K + reduce, as
    # cuBLAS's nvjet 64x8 splitK kernels run the skinny decode GEMMs in the traces) and 4
    assert r["gpu_kernels"] == 12 * 13 + 4
    cal = gpu_model("h100").cal
    fixed_ms = (cal.launch_s + (r["gpu_kernels"] - 1) * cal.gap_s) * 1e3
    assert r["gpu_launch_share"] == pytest.approx(fixed_ms / r["gpu_ms_per_token"], rel=1e-9)
    # batch-1 decode: host launch + gaps are 36% of the step (the tensor-core kernels'
    # in-kernel ramp, ``ramp_s``, is not in this share; 46% before the 2026-12-05 refit with
    # the issue-bound memory-efficient kernels, which put 1.7 us per gap, not 2.7)
    assert r["gpu_launch_share"] == pytest.approx(0.36, rel=TOL)
    # a bigger model streams more weights per kernel: a smaller launch share
    assert rows["gpt3-xl"]["gpu_launch_share"] < r["gpu_launch_share"]


def test_pimgpt_speedup_vs_the_graph_model_is_stable_and_a_documented_miss(rep, rows):
    # GPT-2 small 13.1x before PIM mappings went through the loop-nest lowering (2026-12-05):
    # its small attention now pays each crossing of the channel interface (query in, scores
    # out, probabilities in, output out) with its DRAM latency: 10.9x
    assert rows["gpt2-small"]["speedup"] == pytest.approx(10.9, rel=TOL)
    assert rows["gpt3-xl"]["speedup"] == pytest.approx(4.43, rel=TOL)
    assert rep.summary["pimgpt_speedup_mean"] == pytest.approx((10.9 + 4.43) / 2, rel=TOL)
    # without launch/gap costs (in-kernel ramps stay) the GPU's bandwidth leaves 3.0-7.1x
    assert rows["gpt2-small"]["speedup_no_launch"] == pytest.approx(7.08, rel=TOL)
    assert rows["gpt3-xl"]["speedup_no_launch"] == pytest.approx(3.04, rel=TOL)
    gate = _check(rep, "PIM-GPT speedup vs h100 model")
    assert gate.gate
    assert not gate.ok
    assert not _check(rep, "PIM-GPT speedup vs a100 model").gate
    assert not _check(rep, "PIM-GPT speedup vs h200 model").gate
    for gpu in ("a100", "h200"):
        assert rows["gpt2-small"][f"speedup_{gpu}"] > 1


def test_eager_pytorch_is_only_a_labelled_framework_overhead_comparison(rep):
    eager = [c for c in rep.checks if "eager" in c.name]
    assert eager
    assert not any(c.gate for c in eager)
    measured = rep.tables["pimgpt_measured_gpu"]
    assert measured
    assert all("framework-overhead" in r["setup"] for r in measured)
    # eager time is several times the model of the same kernels: the framework's share
    assert all(r["eager_over_model_graph"] > 3 for r in measured)


def test_all_other_gates_pass(rep):
    failed = [c.name for c in rep.checks if c.gate and not c.ok]
    assert failed == [_check(rep, "PIM-GPT speedup vs h100 model").name]
