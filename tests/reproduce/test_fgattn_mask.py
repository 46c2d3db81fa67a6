"""FG-Attn masks: one boolean mask, its M x 1 slice form and the M x M block form derived from
it; the rule masks keep the stated share of each query block's slices, nearest keys first."""

from __future__ import annotations

import numpy as np
import pytest

from validation.reproduce._fgattn import (
    RULE_SPARSITY,
    MaskSpec,
    block_form,
    rule_densities,
    rule_mask,
    video_mask_slices,
)

GRID = (3, 5, 7)  # 105 tokens: small enough to build the element mask directly


def _element_mask(grid, spec):
    T, Hh, W = grid
    idx = np.arange(T * Hh * W)
    t, y, x = idx // (Hh * W), (idx // W) % Hh, idx % W
    m = (
        (abs(t[:, None] - t[None]) <= spec.frames)
        & (abs(y[:, None] - y[None]) <= spec.radius)
        & (abs(x[:, None] - x[None]) <= spec.radius)
    )
    if spec.long_range:
        keys = np.random.default_rng(spec.seed).integers(
            0, idx.size, size=(idx.size, spec.long_range)
        )
        m[np.repeat(idx, spec.long_range), keys.ravel()] = True
    return m


@pytest.mark.parametrize(
    "spec", [MaskSpec(1, 1, 0, 8), MaskSpec(0, 2, 3, 8, seed=5), MaskSpec(1, 0, 1, 16)]
)
def test_slice_form_is_the_or_over_each_query_block(spec):
    elem = _element_mask(GRID, spec)
    S, M = elem.shape[0], spec.block
    nq = -(-S // M)
    expected = np.array([elem[b * M : (b + 1) * M].any(axis=0) for b in range(nq)])
    np.testing.assert_array_equal(video_mask_slices(GRID, spec), expected)


def test_block_form_keeps_a_block_iff_any_element_is():
    spec = MaskSpec(1, 1, 2, 8, seed=3)
    elem = _element_mask(GRID, spec)
    blocks = block_form(video_mask_slices(GRID, spec), 8)
    for b in range(blocks.shape[0]):
        for j in range(blocks.shape[1]):
            assert blocks[b, j] == elem[b * 8 : (b + 1) * 8, j * 8 : (j + 1) * 8].any()


def test_fine_grained_form_never_keeps_more_than_the_block_form():
    spec = MaskSpec(frames=1, radius=2, long_range=2, block=16)
    sl = video_mask_slices((4, 8, 12), spec)
    assert sl.mean() <= block_form(sl, 16).mean()


def test_mask_is_deterministic_for_a_seed_and_changes_with_it():
    a = video_mask_slices((4, 8, 12), MaskSpec(1, 2, 2, 16, seed=1))
    b = video_mask_slices((4, 8, 12), MaskSpec(1, 2, 2, 16, seed=1))
    c = video_mask_slices((4, 8, 12), MaskSpec(1, 2, 2, 16, seed=2))
    assert (a == b).all()
    assert not (a == c).all()


@pytest.mark.parametrize("scatter", [0.0, 0.1, 1.0])
def test_rule_mask_keeps_the_stated_share_of_each_blocks_slices(scatter):
    grid = (4, 6, 10)  # 240 tokens
    S = 240
    m = rule_mask(grid, scatter, block=16)
    k = round((1 - RULE_SPARSITY) * S)
    assert (m.sum(axis=1) == k).all()
    (dens,) = rule_densities(grid, (scatter,), block=16)
    assert dens["slice_density"] == pytest.approx(m.mean())
    assert dens["block_density"] == pytest.approx(block_form(m, 16).mean())


def test_rule_mask_local_part_is_the_nearest_keys():
    grid = (4, 6, 10)
    T, Hh, W = grid
    m = rule_mask(grid, 0.0, block=16)
    idx = np.arange(T * Hh * W)
    t, y, x = idx // (Hh * W), (idx // W) % Hh, idx % W
    for b in range(m.shape[0]):
        q = idx[b * 16 : (b + 1) * 16]
        d = np.max(
            np.abs(np.stack([t[:, None] - t[q], y[:, None] - y[q], x[:, None] - x[q]])), axis=0
        ).min(axis=1)  # Chebyshev distance of each key to the nearest query of the block
        kept, dropped = d[m[b]], d[~m[b]]
        assert kept.max() <= dropped.min()  # nothing farther is kept while a nearer key is not


def test_rule_mask_depends_only_on_its_own_fraction_and_seed():
    grid = (4, 6, 10)
    a = rule_mask(grid, 0.1, block=16)
    assert (a == rule_mask(grid, 0.1, block=16)).all()
    assert not (a == rule_mask(grid, 0.1, block=16, seed=1)).all()
