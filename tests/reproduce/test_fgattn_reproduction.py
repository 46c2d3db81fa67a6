"""FG-Attn reproduction: the headline is the speedup vs the mask's structure at the stated
sparsity; these tests fail when the model drifts, not when the paper's range is missed.

Stated tolerances (docs/reproductions.md, FG-Attn section): at the rule's 70% slice sparsity the
end-to-end speedup over block-sparse stays within 5% of its value when the rule was added --
1.07x (480p) / 1.09x (720p) for the pure local window (the gated figure: a documented miss of
1.41-1.65x), 1.25x / 1.38x with 1% of the kept slices scattered, 1.84x / 2.32x fully scattered;
against dense FA3 1.46x / 1.73x. The gain comes from skipping finer, not from a kernel difference.
"""

from __future__ import annotations

import pytest

from validation.reproduce._fgattn import RULE_SPARSITY, reproduce_fgattn

TOL = 0.05
#: (video, scattered fraction) -> end-to-end speedup over block-sparse (fast set)
EXPECTED = {
    ("480p", 0.0): 1.073,
    ("480p", 0.01): 1.254,
    ("480p", 1.0): 1.838,
    ("720p", 0.0): 1.085,
    ("720p", 0.01): 1.376,
    ("720p", 1.0): 2.317,
}


@pytest.fixture(scope="module")
def rep():
    return reproduce_fgattn(fast=True)


def _rows(rep):
    return {(r["video"], r["scatter_fraction"]): r for r in rep.tables["fgattn"]}


def test_every_rule_mask_has_the_stated_slice_sparsity(rep):
    for row in rep.tables["fgattn"]:
        assert row["slice_density"] == pytest.approx(1 - RULE_SPARSITY, abs=1e-3)
        assert row["scatter_achieved"] == pytest.approx(row["scatter_fraction"], abs=1e-3)
        assert row["block_density"] >= row["slice_density"]


def test_block_density_and_gain_grow_with_the_scattered_fraction(rep):
    for video in ("480p", "720p"):
        pts = sorted((f, r) for (v, f), r in _rows(rep).items() if v == video)
        dens = [r["block_density"] for _, r in pts]
        gain = [r["e2e_speedup"] for _, r in pts]
        assert dens == sorted(dens)
        assert gain == sorted(gain)


def test_speedups_by_structure_have_not_drifted(rep):
    rows = _rows(rep)
    for key, value in EXPECTED.items():
        assert rows[key]["e2e_speedup"] == pytest.approx(value, rel=TOL), key
    assert rep.summary["speedup_vs_dense_480p"] == pytest.approx(1.46, rel=TOL)
    assert rep.summary["speedup_vs_dense_720p"] == pytest.approx(1.73, rel=TOL)


def test_the_rule_figure_is_gated_and_a_documented_miss(rep):
    gated = [c for c in rep.checks if c.gate]
    assert len(gated) == 2
    assert all("local 3D window" in c.name for c in gated)
    assert not any(c.ok for c in gated)  # 1.07x / 1.09x vs 1.41-1.65x
    assert not rep.ok
    info = [c for c in rep.checks if not c.gate]
    assert all(c.ok for c in info)  # the sweep's range contains the paper's averages


def test_at_equal_density_the_two_kernels_take_the_same_time(rep):
    for row in rep.tables["fgattn"]:
        assert row["equal_density_gain"] == pytest.approx(1.0, abs=0.01)


def test_the_gather_hides_at_its_default_cost(rep):
    for row in rep.tables["fgattn"]:
        assert row["break_even_gather_cycles_per_row"] > row["gather_cycles_per_row"]
