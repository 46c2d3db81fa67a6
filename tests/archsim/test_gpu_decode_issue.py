"""The memory-efficient kernel at low occupancy (decode): its issue fraction falls with the
warps resident per scheduler, as the committed ncu counts of the decode sweep show, and the
kernel model then follows the measured cold-L2 kernel times of that sweep."""

from __future__ import annotations

import json

import pytest

from archsim.gpu import decode_costs, evaluate_kernel, gpu_model
from archsim.gpu import heuristics as hz
from archsim.gpu.heuristics import issue_latency_hiding, memeff_fwd_tiling
from validation import fit_decode

MODEL = gpu_model("h100")


def _records() -> list[dict]:
    return [
        json.loads(line)
        for line in fit_decode.PROBE.read_text().splitlines()
        if json.loads(line).get("probe") == "decode_sweep"
    ]


def test_full_occupancy_keeps_the_counted_fraction():
    t = memeff_fwd_tiling(MODEL.hw, 128)
    assert t.ctas_per_sm == 2
    assert t.issue_frac_at(t.ctas_per_sm) == pytest.approx(t.issue_frac)
    assert t.issue_frac_at(1) < t.issue_frac


def test_one_cta_per_sm_matches_the_ncu_issue_fraction():
    """B = 1, 32 heads: 32 CTAs of 8 warps, one per SM -> 2 warps per scheduler."""
    t = memeff_fwd_tiling(MODEL.hw, 128)
    counted = [
        k["smsp__issue_active.avg.pct_of_peak_sustained_active"] / 100
        for r in _records()
        if r["backend"] == "efficient" and r["B"] == 1 and r.get("ncu")
        for k in r["ncu"]
    ]
    assert len(counted) >= 3
    for f in counted:
        assert t.issue_frac_at(1) == pytest.approx(f, abs=0.012)


def test_latency_hiding_is_monotone_and_bounded():
    vals = [issue_latency_hiding(w) for w in (0.0, 0.5, 1, 2, 4, 8, 16)]
    assert vals[0] == 0.0
    assert all(a < b for a, b in zip(vals, vals[1:], strict=False))
    assert vals[-1] < 1.0


def test_fit_script_recovers_the_module_constant():
    w0, finf, rms = fit_decode.fit_scale(fit_decode.issue_points())
    assert w0 == pytest.approx(hz.ISSUE_WARPS_SCALE, abs=0.01)
    assert 0.5 < finf < 0.7
    assert rms < 0.015


def _kernel_us(rec: dict) -> float:
    shape = {k: rec[k] for k in ("B", "Hq", "Hkv", "Skv", "D")}
    k = decode_costs(MODEL, family="efficient", **shape)[0]
    return (evaluate_kernel(k, MODEL, first=False).time_s - MODEL.cal.gap_s) * 1e6


def test_batch_one_decode_kernel_within_8_percent(monkeypatch):
    """Measured on the H100 (kernel own time, cold L2). With the fraction counted at full
    occupancy the model ran 20-28% short at >= 1k keys; this holds the mechanism."""
    recs = [
        r for r in _records() if r["backend"] == "efficient" and r["B"] == 1 and r["Skv"] >= 1024
    ]
    assert len(recs) >= 8
    for r in recs:
        meas = r["kernels_cold"][0]["us"]
        assert _kernel_us(r) == pytest.approx(meas, rel=0.08), (r["Hq"], r["Skv"])
    monkeypatch.setattr(hz, "ISSUE_WARPS_SCALE", 1e-9)  # a constant fraction
    short = [_kernel_us(r) / r["kernels_cold"][0]["us"] for r in recs]
    assert max(short) < 0.85
