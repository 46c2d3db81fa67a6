"""cuBLAS-class GEMM pipelines: stages fill the CTA's shared memory, skinny-M tiles for
decode GEMMs (``nvjet_sm90_tst_<BM>x<BN>_64x<stages>`` kernel names in the measured data)."""

import pytest

from archsim.gpu import choose_gemm_config, gemm_costs, gpu_model
from archsim.gpu.gemm import tma_stages


@pytest.fixture(scope="module")
def h100():
    return gpu_model("h100")


# (wgmma rows, wgmma cols, stages) of every nvjet kernel in validation/data (ncu records and
# the H200 layer traces); bf16, K step 64. A "v" kernel's 8-wide side is along M.
NVJET = [
    (64, 48, 15),
    (64, 8, 16),
    (128, 8, 12),
    (128, 64, 8),
    (128, 128, 6),
    (256, 64, 5),
    (256, 128, 4),
    (320, 128, 3),
]


@pytest.mark.parametrize(("a", "b", "stages"), NVJET)
def test_stages_fill_shared_memory_as_in_the_kernel_names(h100, a, b, stages):
    assert tma_stages(h100, a, b, 64, 2) == stages


def test_fp8_tiles_hold_twice_the_stages_up_to_the_cap(h100):
    assert tma_stages(h100, 128, 256, 64, 1) == 2 * tma_stages(h100, 128, 256, 64, 2)
    assert tma_stages(h100, 8, 64, 64, 1) == 16


def test_a_chosen_config_carries_its_stages_into_the_kernel(h100):
    cfg = choose_gemm_config(4096, 4096, 4096, h100)
    assert cfg.stages == tma_stages(h100, cfg.block_m, cfg.block_n, 64, 2)
    cost = gemm_costs(4096, 4096, 4096, h100)[0]
    assert cost.stages == cfg.stages
    tile = (cfg.block_m + cfg.block_n) * 64 * 2
    assert cost.cta_stream_bytes_per_s == pytest.approx(cfg.stages * tile / h100.hw.dram_latency_s)


@pytest.mark.parametrize(("m", "n"), [(1, 4096), (1, 14336), (8, 6144)])
def test_decode_gemms_take_skinny_tiles(h100, m, n):
    """Measured: 1x4096x4096 and 1x14336x4096 run nvjet 64x8 "v" kernels (8 rows of M)."""
    cfg = choose_gemm_config(m, n, 4096, h100)
    assert cfg.block_m == 8
    assert cfg.stages >= 12


def test_square_gemms_keep_big_tiles(h100):
    cfg = choose_gemm_config(8192, 8192, 8192, h100)
    assert cfg.block_m >= 128
    assert cfg.block_n >= 128
