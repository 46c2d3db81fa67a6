"""FG-Attn mask: one boolean mask, its M x 1 slice form and the M x M block form derived from it."""

from __future__ import annotations

import numpy as np
import pytest

from validation.reproduce._fgattn import MaskSpec, block_form, video_mask_slices

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
