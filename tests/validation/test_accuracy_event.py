"""Issue 12's gate: the event engine (``archsim validate``'s default) on the committed H100
check split (never fitted): time MAPE <= 6% overall and <= 10% for every kernel kind.

Reproduce with ``archsim validate validation/data/h100_check.jsonl --arch h100`` (the
README's accuracy table prints the same figures beside the analytic bound's and the unfitted
model's).
"""

from pathlib import Path

import pytest

from validation._report import error_stats

CHECK = Path(__file__).resolve().parents[2] / "validation/data/h100_check.jsonl"
#: kernel kinds: report group prefixes or record kinds
KINDS = {
    "gemm": ("gemm",),
    "flash fwd/bwd": ("attn/flash/",),
    "cudnn fwd/bwd": ("attn/cudnn/",),
    "efficient fwd/bwd": ("attn/efficient/",),
    "decode": ("decode",),
    "unfused": ("attn_unfused",),
    "flex block-sparse": ("flex_block_sparse",),
}


@pytest.fixture(scope="module")
def frame(h100_check_report):
    return h100_check_report.frame


def _pick(df, prefixes):  # noqa: ANN001, ANN202 - pandas
    keep = [
        any(str(v).startswith(p) for p in prefixes for v in (r.kind, r.group))
        for r in df.itertuples()
    ]
    return df[keep]


def test_event_engine_within_6_percent_overall(frame):
    st = error_stats(frame["measured_ms"], frame["pred_ms"])
    assert st["n"] >= 200
    assert st["mape"] <= 6.0


@pytest.mark.parametrize("kind", list(KINDS))
def test_event_engine_within_10_percent_per_kind(frame, kind):
    sub = _pick(frame, KINDS[kind])
    assert len(sub) >= 5, kind
    assert error_stats(sub["measured_ms"], sub["pred_ms"])["mape"] <= 10.0, kind
