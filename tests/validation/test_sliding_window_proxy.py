"""A user's sliding-window cascade on ``block_sparse`` against FlexAttention measured on the
H200 with block masks (``validation/data/h200_check.jsonl``, kind ``flex_block_sparse``).

No sliding-window kernel has been measured yet (the window probe,
``validation/harness/window.py``, found no device). Until it is, the same FlexAttention
kernel measured with random 128 x 128 block masks stands in: its time is a straight line in
kept blocks per batch x head (residual < 1% over densities 0.1-1.0 at both shapes), read at
the kept blocks of the window (``validation.variants.window_blocks``). A proxy, not a window
measurement: random masks keep only whole blocks (no ``mask_mod`` per score on partial
blocks, which a window has: 62 of 93 at W = 256, S = 4096), so a real window costs at least
this at small W.

What it shows (event engine, 2026-12-05 constants): within the measured range the model is
-8.7% to +4.6%; at W = 256 (extrapolated 1.5-4.7x below the fewest blocks measured, along a
line whose residual is < 1%) it is short by 20-22%, and so is the W = 256 / W = 4096 ratio
(-20% / -22% vs the brief's 20% target). Cause: the measured line's intercept, 81 us at both
shapes (2048 CTAs each), is FlexAttention's per-CTA cost apart from its blocks; the model's
kernel at W = 1 costs 92 us but its time per kept block at small windows is 1.03 us against
the measured 1.26 us (B = 4, S = 4096). Not tuned here; the gates are the honest figures plus
the proxy's own noise (fit residual 0.8%, run-to-run p90 1.6%: validation/data/README.md).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from validation.variants import proxy_compare, window_blocks

DATA = Path(__file__).resolve().parents[2] / "validation" / "data" / "h200_check.jsonl"


@pytest.fixture(scope="module")
def proxy():  # noqa: ANN201 - pandas DataFrame
    return proxy_compare(DATA)


def test_window_blocks_match_a_per_score_count():
    import numpy as np

    for s, w, blk in ((512, 100, 64), (512, 128, 128), (1024, 1024, 128), (256, 1, 32)):
        i = np.arange(s)
        live = (i[None, :] <= i[:, None]) & (i[:, None] - i[None, :] < w)
        b = live.reshape(s // blk, blk, s // blk, blk)
        kept = int(b.any(axis=(1, 3)).sum())
        full = int(b.all(axis=(1, 3)).sum())
        assert window_blocks(s, w, blk) == (kept, full)
    with pytest.raises(ValueError, match="multiple of 128"):
        window_blocks(1000, 10)


def test_flex_time_is_linear_in_kept_blocks(proxy):
    assert set(zip(proxy["B"], proxy["S"], strict=True)) == {(4, 4096), (1, 16384)}
    assert (proxy["fit_resid_pct"] < 1.5).all()


def test_model_follows_the_window_like_the_measured_kernel(proxy):
    for (_, _), g in proxy.groupby(["B", "S"]):
        g = g.sort_values("W")
        assert g["proxy_ms"].is_monotonic_increasing
        assert g["simulated_ms"].is_monotonic_increasing
        at = g.set_index("W")
        for col in ("proxy_ms", "simulated_ms"):  # W = 256 vs W = 4096
            at[col + "_r"] = at[col] / at.loc[4096, col]
        miss = at.loc[256, "simulated_ms_r"] / at.loc[256, "proxy_ms_r"] - 1.0
        assert abs(miss) <= 0.25, miss  # measured -20.4% (S = 16k), -22.4% (S = 4k)


def test_model_error_against_the_measured_line(proxy):
    inside = proxy[~proxy["extrapolated"]]
    assert len(inside) >= 4
    assert inside["err_pct"].abs().max() <= 11.0  # measured max 8.7%
    assert proxy["err_pct"].abs().max() <= 25.0  # measured max 22.1% (W = 256, extrapolated)
