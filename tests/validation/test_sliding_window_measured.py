"""A user's sliding-window cascade (``examples/cascades/sliding_window.ein``) against
sliding-window kernels measured on an H100 (``validation/data/h100_sliding_window.jsonl``,
FlexAttention with a window ``mask_mod``, and PyTorch's FlashAttention-2 at the causal and
full points; ``python -m validation.variants validation/data/h100_sliding_window.jsonl``).

What it shows (event engine, 2026-12-05 constants, no constant fitted on these records):

* FlashAttention-2 (``flash2``): 1.6% MAPE over the causal and full points.
* FlexAttention (``block_sparse``, blocks skipped by the window's condition): within -12% to
  +7% at W >= 1024; 29-31% short at W = 256, so the time(256) / time(causal) ratio is
  29-34% short. Cause, not modelled: at W = 256 most kept blocks are partial (62 of 93 at
  S = 4096), each evaluating the ``mask_mod`` per score, and FlexAttention pays a per-CTA
  cost apart from its blocks (the block-mask runs of ``h200_check.jsonl`` put it at ~81 us
  for 2048 CTAs). The full non-causal point (no block mask) is 14-18% long: the model runs
  the flex family with its mask machinery on every block.

The gates are those figures with a small margin; a change that moves them is a model change
to report, not a test to loosen.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from validation.variants import compare, device_arch, load_records, mape, window_ratios

DATA = Path(__file__).resolve().parents[2] / "validation" / "data" / "h100_sliding_window.jsonl"


@pytest.fixture(scope="module")
def frame():  # noqa: ANN201 - pandas DataFrame
    dev, recs = load_records(DATA)
    assert dev["name"].startswith("NVIDIA H100")
    return compare(recs, device_arch(dev), engine="event")


def test_the_measurement_covers_windows_and_anchors(frame):
    flex = frame[frame["impl"] == "flex"]
    assert set(flex["W"]) >= {256, 1024, 4096, 16384}
    assert set(zip(frame["B"], frame["S"], strict=True)) == {(1, 4096), (4, 4096), (1, 16384)}
    assert (frame[frame["impl"] == "sdpa_flash"]["dataflow"] == "flash2").all()
    assert (flex["dataflow"] == "block_sparse").all()


def test_flash2_anchor_is_within_a_few_percent(frame):
    assert mape(frame)["sdpa_flash"] <= 4.0  # measured 1.6%


def test_flex_windows_of_1024_and_more_are_within_13_percent(frame):
    flex = frame[(frame["impl"] == "flex") & frame["causal"] & (frame["W"] >= 1024)]
    assert len(flex) == 7  # 1024 and 4096 (the causal case at S = 4096) x 3 shapes, 16384
    assert flex["err_pct"].abs().max() <= 13.0  # measured max 12.0%


def test_the_smallest_window_is_short_by_the_named_cost(frame):
    small = frame[(frame["impl"] == "flex") & (frame["W"] == 256)]
    assert ((small["err_pct"] < -25.0) & (small["err_pct"] > -35.0)).all()  # -29..-31%


def test_simulated_cost_follows_the_window_as_the_kernel_does(frame):
    r = window_ratios(frame[frame["impl"] == "flex"])
    for (_, _), g in r.groupby(["B", "S"]):
        g = g.sort_values("W")
        assert g["measured_ratio"].is_monotonic_increasing
        assert g["simulated_ratio"].is_monotonic_increasing
    at_1k = r[r["W"] == 1024]["ratio_err_pct"].abs()
    assert at_1k.max() <= 20.0  # measured 9.8-16.5%
    at_256 = r[r["W"] == 256]["ratio_err_pct"]
    assert ((at_256 < -25.0) & (at_256 > -38.0)).all()  # measured -29..-34%
