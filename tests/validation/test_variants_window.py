"""The sliding-window probe's pure parts (case list, exact pair counts, keys) and the
comparison module's arithmetic and input checks (``validation.variants``)."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from validation.harness.window import window_cases, window_key, window_pairs
from validation.variants import (
    compare,
    device_arch,
    load_records,
    mape,
    simulate_record,
    window_ratios,
)


def test_pairs_count_the_window_exactly():
    for s, w in ((7, 3), (16, 16), (33, 1), (128, 40)):
        brute = sum(1 for i in range(s) for j in range(s) if i - w < j <= i)
        assert window_pairs(s, w, True) == brute
    assert window_pairs(8, 8, False) == 64
    with pytest.raises(ValueError, match="1 <= W <= S"):
        window_pairs(8, 9, True)


def test_cases_cover_the_brief_and_keys_are_unique():
    cases = window_cases()
    keys = [c["key"] for c in cases]
    assert len(keys) == len(set(keys))
    flex = [c for c in cases if c["impl"] == "flex"]
    # (B, S) = (1, 4k), (4, 4k), (1, 16k); W in {256, 1024, 4096, S} causal, plus full
    assert {(c["B"], c["S"]) for c in flex} == {(1, 4096), (4, 4096), (1, 16384)}
    assert sorted(c["W"] for c in flex if c["S"] == 16384 and c["causal"]) == [
        256,
        1024,
        4096,
        16384,
    ]
    assert sum(not c["causal"] for c in flex) == 3
    assert all(c["flops"] == 4.0 * c["B"] * 16 * 128 * c["pairs"] for c in cases)
    with pytest.raises(ValueError, match="lacks fields"):
        window_key({"impl": "flex"})


def test_ratios_and_mape_arithmetic():
    df = pd.DataFrame(
        [
            {"impl": "flex", "B": 1, "S": 4096, "W": w, "causal": True, "measured_ms": m,
             "simulated_ms": s, "err_pct": (s / m - 1) * 100}
            for w, m, s in ((256, 0.05, 0.04), (4096, 0.25, 0.2))
        ]
    )  # fmt: skip
    r = window_ratios(df).set_index("W")
    assert r.loc[256, "measured_ratio"] == pytest.approx(0.2)
    assert r.loc[256, "simulated_ratio"] == pytest.approx(0.2)
    assert r.loc[4096, "ratio_err_pct"] == pytest.approx(0.0)
    assert mape(df)["flex"] == pytest.approx(20.0)


def test_each_impl_runs_its_kernels_dataflow_on_the_users_file():
    rec = {"impl": "flex", "B": 1, "H": 16, "S": 4096, "D": 128, "W": 256, "causal": True}
    secs, dataflow, workload = simulate_record(rec, "h200")
    assert (dataflow, workload) == ("block_sparse", "sliding_window.ein")
    _, dataflow2, _ = simulate_record({**rec, "impl": "flash_attn"}, "h200")
    assert dataflow2 == "flash2"
    full, _, wl = simulate_record({**rec, "W": 4096, "causal": False}, "h200")
    assert wl == "block_sparse"
    assert full > 4 * secs
    df = compare([{**rec, "ms": 2e3 * secs}], "h200")
    assert df["err_pct"].iloc[0] == pytest.approx(-50.0)
    with pytest.raises(ValueError, match="impl"):
        simulate_record({**rec, "impl": "xformers"}, "h200")


def test_bad_inputs_name_what_is_wrong(tmp_path):
    p = tmp_path / "x.jsonl"
    p.write_text(json.dumps({"kind": "sliding_window", "ms": 1.0}) + "\n")
    with pytest.raises(ValueError, match="device"):
        load_records(p)
    p.write_text(json.dumps({"kind": "device", "name": "NVIDIA H200"}) + "\n")
    with pytest.raises(ValueError, match="sliding_window records"):
        load_records(p)
    with pytest.raises(ValueError, match="device name"):
        device_arch({"name": "Tesla V100"})
