"""``block_sparse`` on a cascade with a condition and no sparsity annotation (FlexAttention
with a block mask made from its ``mask_mod``): it skips by the condition only."""

from __future__ import annotations

from pathlib import Path

import pytest

from archsim.errors import MappingError
from mappings import simulate_workload
from mappings._gpu.sparse import FLEX_BLOCK_SIZE

WINDOW = str(Path(__file__).resolve().parents[2] / "examples" / "cascades" / "sliding_window.ein")


def _window(w: int, s: int = 4096, dataflow: str = "block_sparse"):  # noqa: ANN202
    params = {"L": s, "W": w, "C": 128, "A": 16, "N": 1}
    return simulate_workload("h200", WINDOW, params=params, dataflow=dataflow)


def _pairs(s: int, w: int) -> int:
    """Scores inside the causal window, ``sum_i min(i + 1, W)``."""
    return w * s - w * (w - 1) // 2


def test_window_cascade_is_accepted_and_skips_by_its_condition():
    rep = _window(1024)
    meta = rep.plan.meta
    assert meta["skip_by"] == "condition"
    assert meta["block"] == FLEX_BLOCK_SIZE
    assert "no sparsity annotation" in rep.plan.notes
    # 128-row query blocks over 64-key tiles: a 1024-key window spans 16 or 17 tiles (plus
    # the diagonal's partial ones), far fewer than the 64 of a dense row
    assert 0.2 < meta["live_trip_fraction"] < 0.3
    assert meta["density"] == meta["live_trip_fraction"]


def test_live_tiles_follow_the_window():
    s = 16384
    fr = {w: _window(w, s).plan.meta["live_trip_fraction"] for w in (256, 1024, 4096, s)}
    for w in fr:  # whole tiles: at least the window's pairs, at most one tile row more
        exact = _pairs(s, w) / (s * s)
        assert exact <= fr[w] <= exact + 2 * 128 / s + 1e-9, (w, fr[w], exact)
    assert fr[256] < fr[1024] < fr[4096] < fr[s]


def test_time_follows_the_window():
    s = 16384
    t = {w: _window(w, s).result.seconds for w in (256, 4096, s)}
    assert t[256] < t[4096] < t[s]
    # 16x fewer scores from W = 4096 to 256; the partly masked diagonal tiles and the
    # per-CTA fixed costs keep the time ratio above the pair ratio, but not by 2x
    pair_ratio = _pairs(s, 256) / _pairs(s, 4096)
    assert pair_ratio < t[256] / t[4096] < 2.5 * pair_ratio


def test_annotated_cascade_still_skips_by_its_annotation():
    rep = simulate_workload(
        "h100", "block_sparse", params={"density": 0.25}, dataflow="block_sparse"
    )
    assert rep.plan.meta["skip_by"] == "annotation"
    assert rep.plan.meta["density"] == 0.25


def test_dense_unmasked_cascade_is_refused_naming_what_is_missing():
    with pytest.raises(MappingError, match="no block sparsity and no condition") as exc:
        simulate_workload("h200", "mha", params={"S": 4096}, dataflow="block_sparse")
    assert "dense, unmasked" in str(exc.value)


def test_fg_sparse_still_needs_a_slice_annotation():
    with pytest.raises(MappingError, match="no slice sparsity"):
        _window(1024, dataflow="fg_sparse")
