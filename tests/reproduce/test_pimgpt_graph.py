"""PIM-GPT's GPU baseline: the same decode graph through the GPU model (validation/reproduce/
_pimgpt_graph.py), and the gate on it.

Stated tolerances (docs/reproductions.md, PIM section): the h100 model of a GPT-2-small decode
step stays within 10% of 1.03 ms per token; the PIM-GPT speedup over it (fast set: GPT-2 small
and GPT-3 XL) within 15% of its value when the graph baseline was added (mean 10.5x, 16.2x and
4.8x). The paper's 41-137x is missed against this baseline: the gated check must stay a miss
until the model changes (then update the numbers here and in the docs), and the eager-PyTorch
figure must never gate.
"""

from __future__ import annotations

import pytest

from archsim.gpu import gpu_model
from validation.reproduce._pim import PIMGPT_MODELS, reproduce_pim
from validation.reproduce._pimgpt_graph import GPT2_VOCAB, decode_step_kernels, gpu_decode_step

TOL = 0.15


@pytest.fixture(scope="module")
def rep():
    return reproduce_pim(fast=True)


def _check(rep, prefix):
    return next(c for c in rep.checks if c.name.startswith(prefix))


def test_the_step_has_every_kernel_of_the_graph_once():
    model = gpu_model("h100")
    layers, d, h = PIMGPT_MODELS["gpt2-small"]
    tags = [t for t, _ in decode_step_kernels(model, layers=layers, d=d, heads=h, context=1024)]
    assert tags[0] == "embedding"
    assert tags[-2:] == ["ln_f", "lm_head"]
    for node in ("ln1", "kv_append", "ln2", "gelu"):
        assert tags.count(node) == layers, node
    for node in ("qkv", "out_proj", "ffn_up", "ffn_down"):  # GEMM (+ split-K reduce)
        assert tags.count(node) in (layers, 2 * layers), node
    assert tags.count("ffn_down") == 2 * layers  # K = 3072: cuBLAS-style split-K at M = 1
    assert tags.count("residual") == 2 * layers
    assert tags.count("attention") == 2 * layers  # split-KV kernel + combine at context 1024


def test_step_time_is_launch_gaps_plus_streamed_weights():
    layers, d, h = PIMGPT_MODELS["gpt2-small"]
    r = gpu_decode_step("h100", layers=layers, d=d, heads=h, context=1024)
    assert r["ms_per_token"] == pytest.approx(1.03, rel=0.10)
    weights_mb = 2 * (layers * 12 * d * d + GPT2_VOCAB * d) / 1e6
    assert r["dram_mb"] > weights_mb  # every weight streamed once, plus the K/V cache
    assert 0.5 < r["fixed_ms"] / r["ms_per_token"] < 0.9  # batch-1 decode: launch-bound


def test_pimgpt_speedup_vs_the_graph_model_is_stable_and_a_documented_miss(rep):
    rows = {r["model"]: r for r in rep.tables["models"] if r["setup"].startswith("PIM-GPT")}
    assert rows["gpt2-small"]["speedup"] == pytest.approx(16.2, rel=TOL)
    assert rows["gpt3-xl"]["speedup"] == pytest.approx(4.8, rel=TOL)
    assert rep.summary["pimgpt_speedup_mean"] == pytest.approx(10.5, rel=TOL)
    # without launch/gap costs the GPU's bandwidth alone leaves 2.3-4.7x
    assert rows["gpt2-small"]["speedup_no_launch"] == pytest.approx(4.75, rel=TOL)
    assert rows["gpt3-xl"]["speedup_no_launch"] == pytest.approx(2.34, rel=TOL)
    gate = _check(rep, "PIM-GPT speedup vs h100 model")
    assert gate.gate
    assert not gate.ok
    assert not _check(rep, "PIM-GPT speedup vs a100 model").gate


def test_eager_pytorch_is_only_a_labelled_framework_overhead_comparison(rep):
    eager = [c for c in rep.checks if "eager" in c.name]
    assert eager
    assert not any(c.gate for c in eager)
    rows = rep.tables["pimgpt_measured_gpu"]
    assert rows
    assert all("framework-overhead" in r["setup"] for r in rows)
    # eager time is several times the model of the same kernels: the framework's share
    assert all(r["eager_over_model_graph"] > 3 for r in rows)


def test_all_other_gates_pass(rep):
    failed = [c.name for c in rep.checks if c.gate and not c.ok]
    assert failed == [_check(rep, "PIM-GPT speedup vs h100 model").name]
