"""Hydragen reproduction at CI size (``archsim reproduce hydragen --fast``).

Tolerance: the model's figures may not move more than 5% from what the fast run gave when
this test was written (h100 model: attention speedup at a 16K prefix by batch, the 1K->16K
drops at batch 1024, the largest end-to-end speedup), so a model change that moves them is
seen. The paper's figures are end-to-end throughput (up to 32x; Hydragen < 15% drop, baselines
> 90% from 1K to 16K prefix); the model's attention-plus-GEMMs estimate misses the Hydragen
drop (about 30%), a documented miss that this test pins rather than hides. Behaviour: speedup
grows with batch while the prefix runs the split-KV kernel and with prefix length; Hydragen's
attention time grows far less than the baseline's with prefix length; the prefix K/V is read
once per step, not once per sequence.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from archsim.cli import main
from archsim.gpu import gpu_model
from mappings import simulate_workload
from validation.reproduce import reproduce
from validation.reproduce._hydragen import MODEL, PAPER, hydragen_point
from workloads.library import get_workload, verify

#: Model values of the fast run (drift reference, not targets). Re-pinned 2026-12-05 when the
#: event engine replaced the closed-form kernel model as the timer of every kernel: B=8
#: 10.49 -> 8.09 (the baseline's FA2 decode at 320 CTAs on 264 slots: the engine runs its
#: tail CTAs alone on their SMs, see the lean reproduction's notes), B=256 52.3 -> 48.2,
#: B=1024 44.3 -> 47.5; Hydragen's 1K->16K end-to-end drop 0.38 -> 0.30 (closer to the
#: paper's < 15%).
MODEL_FAST_BY_BATCH = {1: 0.9156, 8: 8.085, 64: 34.76, 256: 48.20, 1024: 47.55}
MODEL_FAST = {
    "hydragen_e2e_drop_1k_16k": 0.3020,
    "baseline_e2e_drop_1k_16k": 0.9198,
    "hydragen_attention_growth_1k_16k": 1.709,
    "baseline_attention_growth_1k_16k": 13.71,
    "max_e2e_speedup": 34.88,
}
DRIFT = 0.05


@pytest.fixture(scope="module")
def rep():
    return reproduce("hydragen", fast=True)


def test_gating_checks_pass(rep):
    assert rep.ok, [c for c in rep.checks if c.gate and not c.ok]


@pytest.mark.parametrize("batch", sorted(MODEL_FAST_BY_BATCH))
def test_speedup_by_batch_does_not_drift(rep, batch):
    got = rep.summary["speedup_by_batch"][batch]
    assert got == pytest.approx(MODEL_FAST_BY_BATCH[batch], rel=DRIFT)


@pytest.mark.parametrize("key", sorted(MODEL_FAST))
def test_summary_does_not_drift(rep, key):
    assert rep.summary[key] == pytest.approx(MODEL_FAST[key], rel=DRIFT)


def test_speedup_grows_with_batch_and_prefix(rep):
    by = rep.summary["speedup_by_batch_by_prefix"]
    for S, row in by.items():
        bs = sorted(row)
        split = [
            B
            for B in bs
            if next(r for r in rep.tables["hydragen"] if r["B"] == B and r["Sp"] == S)[
                "prefix_kernel"
            ].endswith("splitkv_kernel")
        ]
        vals = [row[B] for B in split]
        assert all(b >= a * 0.99 for a, b in zip(vals, vals[1:], strict=False)), (S, row)
        assert row[bs[-1]] > 5 * row[bs[0]]  # large batch gains several times batch 1
    bmax = max(by[max(by)])
    assert by[max(by)][bmax] > by[min(by)][bmax]  # longer prefix -> larger speedup


def test_hydragen_time_nearly_flat_in_prefix_at_large_batch(rep):
    s = rep.summary
    # 16x the prefix: baseline attention ~14x the time, Hydragen ~2x
    assert s["baseline_attention_growth_1k_16k"] > 10
    assert s["hydragen_attention_growth_1k_16k"] < s["baseline_attention_growth_1k_16k"] / 4
    assert s["baseline_e2e_drop_1k_16k"] > PAPER["baseline_drop_1k_16k"]
    # the paper's < 15% Hydragen drop is missed (documented): pinned by the drift test
    miss = next(c for c in rep.checks if "Hydragen end-to-end" in c.name)
    assert not miss.gate


def test_prefix_is_read_once_and_batched_into_query_tiles():
    p = hydragen_point(256, 16384, 128)
    H, D = MODEL["H"], MODEL["D"]
    prefix_kv = 2.0 * H * 16384 * D * 2
    per_seq_kv = 2.0 * H * (16384 + 128) * D * 2
    assert p["baseline_dram_mb"] * 1e6 >= 256 * per_seq_kv
    assert p["hydragen_dram_mb"] * 1e6 < 1.5 * (prefix_kv + 256 * 2.0 * H * 128 * D * 2)
    assert p["prefix_rows"] == 256  # the batch packed as query rows of each K/V head


def test_prefix_cascade_lowers_like_gqa_packing():
    """The prefix cascade (K/V without the batch rank) is the GQA decode with the batch as
    the group: same kernels and time under split_kv."""
    a = simulate_workload(
        "h100",
        "shared_prefix",
        params={"B": 64, "H": 8, "Sp": 4096, "D": 128, "variant": "prefix"},
        dataflow="split_kv",
        engine="analytic",
    )
    g = simulate_workload(
        "h100",
        "decode",
        params={"B": 1, "H": 8 * 64, "Hkv": 8, "Skv": 4096, "D": 128},
        dataflow="split_kv",
        engine="analytic",
    )
    assert a.result.seconds == pytest.approx(g.result.seconds)
    assert a.plan.meta["rows"] == 64


def test_hydragen_cascade_is_exact_attention_over_the_concatenation():
    rng = np.random.default_rng(3)
    for params in (
        {"B": 3, "H": 2, "Sp": 6, "Ss": 4, "D": 3},
        {"B": 2, "H": 4, "Hkv": 2, "Sq": 2, "Sp": 5, "Ss": 3, "D": 2},
    ):
        w = get_workload("shared_prefix", variant="hydragen", **params)
        assert verify(w, rng).max_rel_error < 1e-9


def test_baseline_time_is_the_decode_workloads_own():
    p = hydragen_point(8, 2048, 128)
    r = simulate_workload(
        "h100",
        "decode",
        params={"B": 8, "H": MODEL["H"], "Skv": 2048 + 128, "D": MODEL["D"]},
        dataflow="split_kv",
    )
    assert p["baseline_us"] == pytest.approx(r.result.seconds * 1e6, rel=1e-9)
    assert gpu_model("h100").hw.sms == 132


def test_cli_prints_json_with_the_issue_key_and_writes_csv_and_plot(tmp_path, capsys):
    code = main(["reproduce", "hydragen", "--fast", "--json", "--out", str(tmp_path / "h")])
    data = json.loads(capsys.readouterr().out)
    assert code == 0
    assert data["reproduction"] == "hydragen"
    assert {"1", "1024"} <= set(data["speedup_by_batch"])
    assert (tmp_path / "h" / "hydragen.csv").stat().st_size > 0
    assert (tmp_path / "h" / "hydragen.png").stat().st_size > 0
