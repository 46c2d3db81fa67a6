"""The cutlass memory-efficient kernels are issue-bound: their instruction counts and issue
fractions are the ncu counters of the committed probe, and they set the model's time."""

from __future__ import annotations

import json

import pytest

from archsim.gpu import attention_bwd_costs, attention_fwd_costs, evaluate_op, gpu_model
from archsim.gpu.heuristics import (
    MEMEFF_BWD_INSTR,
    MEMEFF_INSTR,
    memeff_bwd_tiling,
    memeff_fwd_tiling,
)
from validation.fit_softmax import FIT_RECORDS

HW = gpu_model("h100").hw


def _counted() -> dict[tuple[int, str], tuple[float, float, float]]:
    """(D, pass) -> (thread instructions per score, issue fraction, kernel us) from ncu."""
    out = {}
    for line in FIT_RECORDS.read_text().splitlines():
        r = json.loads(line)
        if r.get("probe") != "attn" or not r.get("ncu"):
            continue
        scores = r["B"] * r["Hq"] * r["Sq"] * r["Skv"]
        k = next(k for k in r["ncu"] if "fmha_cutlass" in k["name"])
        out[(r["D"], r["pass_"])] = (
            k["smsp__inst_executed.sum"] * 32 / scores,
            k["smsp__issue_active.avg.pct_of_peak_sustained_active"] / 100,
            k["gpu__time_duration.sum"] / 1e3,
        )
    return out


@pytest.mark.parametrize("pass_", ["fwd", "bwd"])
def test_instruction_and_issue_constants_are_the_probes_counters(pass_):
    got = _counted()
    c, k = MEMEFF_INSTR if pass_ == "fwd" else MEMEFF_BWD_INSTR
    tiling = memeff_fwd_tiling if pass_ == "fwd" else memeff_bwd_tiling
    for d in (64, 128):
        per_score, issue, _ = got[(d, pass_)]
        assert c + k * d == pytest.approx(per_score, rel=0.005), d
        assert tiling(HW, d).issue_frac == pytest.approx(issue, abs=0.002), d


@pytest.mark.parametrize("pass_", ["fwd", "bwd"])
def test_model_kernel_time_within_12_percent_of_the_probe(pass_):
    model = gpu_model("h100")
    got = _counted()
    for d in (64, 128):
        shape = dict(B=4, Hq=16, Hkv=16, Sq=4096, Skv=4096, D=d, causal=False, family="efficient")
        costs = (attention_fwd_costs if pass_ == "fwd" else attention_bwd_costs)(model, **shape)
        main = next(c for c in costs if "fmha" in c.name)
        t = evaluate_op([main], model).time_s * 1e6
        assert t == pytest.approx(got[(d, pass_)][2], rel=0.12), (d, t)


def test_the_head_dim_ratio_follows_the_instructions_not_the_flops():
    """d=128 does twice the FLOPs of d=64 per score, yet takes ~1.5x: the per-score
    instructions (index arithmetic, ldmatrix, softmax) dominate the mma.sync ones."""
    model = gpu_model("h100")
    t = {}
    for d in (64, 128):
        costs = attention_fwd_costs(
            model, B=4, Hq=16, Hkv=16, Sq=4096, Skv=4096, D=d, causal=False, family="efficient"
        )
        t[d] = evaluate_op(costs, model).time_s
    assert 1.35 < t[128] / t[64] < 1.65
