"""Sparse attention kernels: FG-Attn (M x 1 slices) and block-sparse (M x M blocks) run the
same Hopper kernel with M-row query tiles, so at equal density only the gather differs."""

import pytest

from archsim.gpu import (
    GATHER_CYCLES_PER_ROW,
    block_sparse_costs,
    evaluate_op,
    fg_sparse_costs,
    gpu_model,
)
from mappings import simulate_workload

SHAPE = {"B": 1, "H": 16, "S": 8192, "D": 128}


@pytest.fixture(scope="module")
def model():
    return gpu_model("h100")


def _t(costs, model):
    return evaluate_op(costs, model).time_s


def _block(model, density, M=64):
    return block_sparse_costs(model, block=M, density=density, family="flash3", **SHAPE)


def _fg(model, density, M=64, gather=GATHER_CYCLES_PER_ROW):
    return fg_sparse_costs(model, block=M, density=density, gather_cycles_per_row=gather, **SHAPE)


@pytest.mark.parametrize("M", [64, 128])
@pytest.mark.parametrize("density", [0.25, 0.375, 0.5])
def test_at_equal_density_and_free_gather_both_kernels_take_the_same_time(model, M, density):
    # Densities that are whole numbers of M x M blocks: the same keys in both forms.
    t_block = _t(_block(model, density, M), model)
    t_fg = _t(_fg(model, density, M, gather=0.0), model)
    assert t_fg == pytest.approx(t_block, rel=0.01)


def test_packing_costs_at_most_one_partly_filled_tile_per_query_block(model):
    # 0.3 x 128 blocks = 38.4: fg packs 2458 keys into 39 tiles; block_sparse rounds to 38.
    t_fg = _t(_fg(model, 0.3, gather=0.0), model)
    # (+ the 4 B index per kept key)
    assert _t(_block(model, 38 / 128), model) < t_fg <= 1.01 * _t(_block(model, 39 / 128), model)


@pytest.mark.parametrize(("M", "tile"), [(32, "32x32"), (64, "64x64"), (128, "128x128")])
def test_fg_sparse_query_tiles_have_the_slice_height(model, M, tile):
    (fg,) = _fg(model, 0.3, M)
    (bs,) = _block(model, 0.3, M)
    assert fg.meta["tile"] == bs.meta["tile"] == tile
    assert fg.meta["path"] == bs.meta["path"] == "wgmma"


def test_the_gather_only_ever_costs_time(model):
    t = [_t(_fg(model, 0.3, gather=g), model) for g in (0.0, GATHER_CYCLES_PER_ROW, 64.0, 128.0)]
    assert t[0] <= t[1] < t[2] < t[3]
    # Past the break-even the producer's gather bounds every trip: time ~ linear in its cost.
    assert t[3] / t[2] == pytest.approx(2.0, rel=0.1)


def test_fg_sparse_wins_only_by_skipping_more(model):
    assert _t(_fg(model, 0.3), model) >= _t(_block(model, 0.3), model)
    assert _t(_fg(model, 0.2), model) < _t(_block(model, 0.3), model)


def test_the_workload_block_reaches_fg_sparse_as_its_slice_height():
    kw = {"B": 1, "H": 8, "Sq": 4096, "D": 128, "density": 0.3}
    t = {
        M: simulate_workload(
            "h100",
            "fg_sparse",
            params={**kw, "block": M},
            dataflow="fg_sparse",
            engine="analytic",
        ).result.seconds
        for M in (64, 128)
    }
    assert t[64] > t[128]  # 64-row tiles reuse each K/V tile for half as many queries
