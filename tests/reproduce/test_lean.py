"""Lean Attention reproduction at CI size (``archsim reproduce lean --fast``).

Tolerances: the mean over FA2 the issue names within 15% of the paper (2.6x on the stated
grid); the mean over FlashDecoding (paper 1.73x) is a known miss since the event engine
times the kernels: its tails run FA2's lone CTAs at twice a pair's rate, which an H100
measurement contradicts at head dim 64 (the reproduction's notes; 1.43x, was 1.65x with the
closed-form model). Both means within 5% of what the model gave when this test was written
(fast grid, a100: 1.432x and 2.684x), so a model change that moves them is seen.
Behaviour: lean never loses to split_kv, the gap over FA2 does not shrink with context, and
the FlashDecoding gap sits where FA2's split heuristic stops splitting.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from archsim.cli import main
from archsim.gpu import gpu_model
from mappings import simulate_workload
from mappings._gpu.decode import LEAN_MAX_CTAS_PER_HEAD, _stream_k
from validation.reproduce import reproduce
from validation.reproduce._lean import PAPER

#: Model values of the fast run when this test was written (drift reference, not targets).
MODEL_FAST = {"speedup_vs_split_kv_mean": 1.432, "speedup_vs_fa2_mean": 2.684}
DRIFT = 0.05


@pytest.fixture(scope="module")
def rep():
    return reproduce("lean", fast=True)


def test_the_fa2_mean_is_within_15_percent_of_the_paper_and_the_fd_mean_a_known_miss(rep):
    s = rep.summary
    assert s["speedup_vs_fa2_mean"] == pytest.approx(PAPER["vs_fa2_mean"], rel=0.15)
    assert rep.ok, [c for c in rep.checks if c.gate and not c.ok]
    # the miss is FA2's no-split regime (cheap tails), not lean's balance where FA2 splits
    assert s["speedup_vs_split_kv_mean"] < PAPER["vs_split_kv_mean"] * 0.85
    assert s["speedup_vs_split_kv_mean_split_regime"] == pytest.approx(1.07, abs=0.05)
    (fd,) = (c for c in rep.checks if c.name.startswith("mean speedup over FlashDecoding"))
    assert not fd.gate


@pytest.mark.parametrize("key", sorted(MODEL_FAST))
def test_means_do_not_drift(rep, key):
    assert rep.summary[key] == pytest.approx(MODEL_FAST[key], rel=DRIFT)


def test_lean_is_never_slower_than_split_kv(rep):
    assert min(r["speedup_vs_split_kv"] for r in rep.tables["lean"]) >= 1.0


def test_fa2_gap_does_not_shrink_with_context_and_shrinks_with_batch_heads(rep):
    rows = rep.tables["lean"]
    for key in {(r["B"], r["H"], r["D"]) for r in rows}:
        seq = sorted((r for r in rows if (r["B"], r["H"], r["D"]) == key), key=lambda r: r["Skv"])
        gaps = [r["speedup_vs_fa2"] for r in seq]
        assert all(b >= a * 0.99 for a, b in zip(gaps, gaps[1:], strict=False)), (key, gaps)
    # fewer (batch, head) CTAs -> more idle SMs under FA2 -> larger gap
    by = {r["BxH"]: r["vs_fa2_mean"] for r in rep.tables["by_batch_heads"]}
    bh = sorted(b for b in by if b <= 512)
    assert all(by[a] >= by[b] * 0.99 for a, b in zip(bh, bh[1:], strict=False)), by
    # beyond: FA2's 1024 CTAs run 4.7 waves whose tail the engine makes cheap (see the
    # reproduction's notes), so the gap there sits near 512's, not below it
    assert by[1024] == pytest.approx(by[512], rel=0.15)
    assert by[bh[0]] > 4.0


def test_flashdecoding_gap_follows_its_split_heuristic(rep):
    slots = 2 * gpu_model("a100").hw.sms
    for r in rep.tables["lean"]:
        assert (r["fd_splits"] == 1) == (r["BxH"] >= 0.8 * slots)
        if r["fd_splits"] > 1:  # split to fill a wave: lean gains its balance only
            assert r["speedup_vs_split_kv"] < 1.2
        else:  # B*H CTAs of the 128-row kernel in waves with a tail
            assert r["speedup_vs_split_kv"] > 1.5
        # stream-K keeps HBM busy (head dim 64: ~0.8-0.87, its 64-row MMA at the capped clock)
        assert r["lean_hbm_frac"] > 0.75


def test_stream_k_partition_is_balanced_and_counts_its_partials():
    heads, n = 5, 7
    k = _stream_k(heads, n, 8)
    assert k.trips.sum() == heads * n
    assert k.trips.max() - k.trips.min() <= 1
    # every CTA past a head's first owner writes one partial; hosts merge them all
    assert k.written.sum() == k.partials == k.merged.sum()
    big = _stream_k(2, 100_000, 216)
    assert big.max_ctas_per_head <= LEAN_MAX_CTAS_PER_HEAD + 1
    small = _stream_k(1, 3, 216)  # at least two tiles per CTA
    assert small.trips.size == 2
    assert np.all(small.trips >= 1)


def test_lean_is_one_launch_reading_the_cache_once():
    p = {"B": 1, "H": 32, "Hkv": 32, "Skv": 65536, "D": 128}
    lean = simulate_workload("a100", "decode", params=p, dataflow="lean", engine="analytic")
    fd = simulate_workload("a100", "decode", params=p, dataflow="split_kv", engine="analytic")
    ks = lean.plan.meta["kernels"]
    assert [k["name"] for k in ks] == ["lean_attention_decode_kernel"]
    kv = 2.0 * 32 * 65536 * 128 * 2
    assert sum(k["dram_bytes"] for k in ks) == pytest.approx(kv, rel=0.02)
    assert [k["name"] for k in fd.plan.meta["kernels"]][-1] == "flash_fwd_splitkv_combine_kernel"


def test_cli_prints_json_with_the_issue_keys_and_writes_csv_and_plot(tmp_path, capsys):
    code = main(["reproduce", "lean", "--fast", "--json", "--out", str(tmp_path / "lean")])
    data = json.loads(capsys.readouterr().out)
    assert code == 0
    assert data["reproduction"] == "lean"
    assert {"speedup_vs_split_kv_mean", "speedup_vs_fa2_mean", "tables", "checks"} <= set(data)
    assert (tmp_path / "lean" / "lean.csv").stat().st_size > 0
    assert (tmp_path / "lean" / "lean.png").stat().st_size > 0
