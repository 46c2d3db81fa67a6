"""The event engine against published H100 attention throughput never used for fitting
(``python -m validation.published``: the FlashAttention-3 paper's fp16 forward figures,
``validation/data/published/fa3_h100_fwd.csv``).

Measured 2026-12-05 (event engine, committed constants): FlashAttention-3 4.0% (causal) /
5.8% MAPE, FlashAttention-2 9.3% / 9.0%, the paper's cuDNN 13.4% / 10.0% (over-predicted by up
to 27% at head dim 64: the model's Hopper family is fitted on cuDNN 9.19 records, which at
head dim 64 run like the paper's FA3, not like the paper's older cuDNN). Held with a margin
so that a model change that moves them is seen."""

import pytest

from validation.published import compare_published, summary


@pytest.fixture(scope="module")
def frame():
    return compare_published()


def _row(frame, impl, causal):
    s = summary(frame)
    return s[(s["impl"] == impl) & (s["causal"] == causal)].iloc[0]


def test_every_fp16_point_of_the_three_kernels_is_compared(frame):
    assert len(frame) == 108  # 3 kernels x 3 head dims x 2 masks x 6 lengths
    assert set(frame["impl"]) == {"FlashAttention-2", "cuDNN", "FlashAttention-3"}


@pytest.mark.parametrize(
    ("impl", "causal", "bound"),
    [
        ("FlashAttention-3", "causal", 6.0),
        ("FlashAttention-3", "non-causal", 8.0),
        ("FlashAttention-2", "causal", 12.0),
        ("FlashAttention-2", "non-causal", 12.0),
        ("cuDNN", "causal", 16.0),
        ("cuDNN", "non-causal", 13.0),
    ],
)
def test_published_throughput_within_its_measured_band(frame, impl, causal, bound):
    assert _row(frame, impl, causal)["mape"] <= bound


def test_head_dim_64_fa3_is_within_6_percent_everywhere(frame):
    """Where issue 12, when filed, found the then kernel model 17-22% off."""
    fa3 = frame[(frame["impl"] == "FlashAttention-3") & (frame["head_dim"] == 64)]
    assert len(fa3) == 12
    assert fa3["err_pct"].abs().max() <= 6.0
