"""Accuracy of the GPU model on the committed *check* split (never used for fitting).

Targets (issue 5): time MAPE <= 10% overall and <= 15% per kind for GEMM, SDPA flash and
cuDNN forward, and decode; DRAM bytes within 10% of ncu; energy within 15% of NVML.
The figures are printed (run with ``-s``) and written to ``accuracy.json`` in the test's
tmp dir. Reproduce with ``archsim validate validation/data/h100_check.jsonl --arch h100``.
"""

import json
from pathlib import Path

import pytest

CHECK = Path(__file__).resolve().parents[2] / "validation/data/h100_check.jsonl"
TARGET_GROUPS = ("gemm", "attn/flash/fwd", "attn/cudnn/fwd", "decode")


def _group(row) -> str:
    return "decode" if row.kind == "decode" else row.group


@pytest.fixture(scope="module")
def report(h100_check_report):
    return h100_check_report


@pytest.fixture(scope="module")
def figures(report, tmp_path_factory):
    from validation._report import error_stats

    df = report.frame.copy()
    df["target"] = [_group(r) for r in df.itertuples()]
    tgt = df[df["target"].isin(TARGET_GROUPS)]
    out = {
        "time_all_targets": error_stats(tgt["measured_ms"], tgt["pred_ms"]),
        "time_all_records": error_stats(df["measured_ms"], df["pred_ms"]),
    }
    for g in TARGET_GROUPS:
        sub = tgt[tgt["target"] == g]
        out[f"time/{g}"] = error_stats(sub["measured_ms"], sub["pred_ms"])
    out["dram"] = report.summary("kind", "dram").get("all", {})
    out["energy"] = report.summary("kind", "energy").get("all", {})
    path = tmp_path_factory.mktemp("accuracy") / "accuracy.json"
    path.write_text(json.dumps(out, indent=1))
    print("\naccuracy on", CHECK.name, "->", path)  # noqa: T201
    for key, st in out.items():
        print(  # noqa: T201
            f"  {key:<22} n={st.get('n')} MAPE={st.get('mape', float('nan')):.2f}% "
            f"max={st.get('max_error', float('nan')):.2f}% "
            f"spearman={st.get('spearman', float('nan')):.3f}"
        )
    return out


def test_check_split_has_all_target_kinds(figures):
    for g in TARGET_GROUPS:
        assert figures[f"time/{g}"]["n"] >= 5, g


def test_time_mape_overall_within_10_percent(figures):
    assert figures["time_all_targets"]["mape"] <= 10.0


@pytest.mark.parametrize("group", TARGET_GROUPS)
def test_time_mape_per_kind_within_15_percent(figures, group):
    assert figures[f"time/{group}"]["mape"] <= 15.0


def test_model_orders_kernels_right(figures):
    assert figures["time_all_records"]["spearman"] >= 0.98


def test_dram_bytes_within_10_percent_of_ncu(figures):
    assert figures["dram"]["n"] >= 5
    assert figures["dram"]["mape"] <= 10.0


def test_energy_within_15_percent_of_nvml(figures):
    assert figures["energy"]["n"] >= 5
    assert figures["energy"]["mape"] <= 15.0
