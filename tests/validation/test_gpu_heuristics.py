"""The libraries' heuristics as coded: FA2 tiles and split counts, cuBLAS-like tiles."""

import pytest

from archsim.gpu import (
    choose_gemm_config,
    fa2_decode_plan,
    fa2_fwd_tiling,
    fa3_fwd_tiling,
    gpu_model,
    num_splits_heuristic,
)


@pytest.fixture(scope="module")
def model():
    return gpu_model("h100")


@pytest.mark.parametrize(("d", "bm", "bn"), [(64, 128, 128), (128, 128, 64), (256, 64, 64)])
def test_fa2_forward_tiles_on_h100(model, d, bm, bn):
    t = fa2_fwd_tiling(model.hw, d, causal=False)
    assert (t.block_m, t.block_n, t.path) == (bm, bn, "mma_sync")


def test_fa2_hdim256_uses_128x64_on_a100():
    t = fa2_fwd_tiling(gpu_model("a100").hw, 256, causal=False)
    assert (t.block_m, t.block_n) == (128, 64)


def test_hopper_kernel_falls_back_to_mma_sync_without_wgmma():
    assert fa3_fwd_tiling(gpu_model("h100").hw, 128, False).path == "wgmma"
    assert fa3_fwd_tiling(gpu_model("a100").hw, 128, False).path == "mma_sync"


def test_no_split_when_heads_fill_the_gpu():
    assert num_splits_heuristic(256, 264, 64) == 1  # 256 >= 0.8 * 264


def test_split_fills_one_wave():
    # 32 heads, 264 slots, 8 key blocks: s=8 gives 256/264 = 0.97 of a wave
    assert num_splits_heuristic(32, 264, 8) == 8


def test_split_skips_ineligible_counts():
    # 5 blocks: s=4 has ceil(5/4) = 2 = ceil(5/3) -> ineligible; s=5 fills 5 of 10 slots
    assert num_splits_heuristic(1, 10, 5) == 5


def test_gqa_decode_swaps_query_heads_into_rows(model):
    plan = fa2_decode_plan(model, B=1, Hq=32, Hkv=8, Sq=1, Skv=8192, D=128)
    assert plan["swapped"] == 1
    assert plan["rows"] == 4
    assert plan["heads"] == 8
    assert plan["splits"] > 1


def test_big_gemm_uses_big_tiles_and_no_split(model):
    cfg = choose_gemm_config(8192, 8192, 8192, model)
    assert cfg.block_m * cfg.block_n >= 128 * 256
    assert cfg.split_k == 1


def test_skinny_deep_gemm_splits_k(model):
    cfg = choose_gemm_config(64, 256, 65536, model)
    assert cfg.split_k > 1
