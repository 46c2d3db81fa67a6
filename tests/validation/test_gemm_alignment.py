"""GEMM copy path from row alignment: TMA/wgmma need 16-byte row strides; misaligned rows
fall back to register-staged mma.sync kernels with one K tile in flight per CTA."""

import pytest

from archsim.gpu import choose_gemm_config, evaluate_op, gemm_costs, gpu_model
from archsim.gpu.gemm import copy_path, tma_aligned


@pytest.fixture(scope="module")
def h100():
    return gpu_model("h100")


@pytest.mark.parametrize(
    ("n", "k", "elt", "aligned"),
    [
        (2560, 2560, 2, True),
        (2500, 2500, 2, False),  # 5000-byte rows
        (1000, 1000, 2, True),  # 2000 = 125 x 16 bytes
        (4096, 4090, 2, False),  # A rows of 8180 bytes
        (4100, 4096, 2, False),  # B and C rows of 8200 bytes
        (4112, 4112, 1, True),  # fp8: 4112 = 257 x 16 bytes
        (4100, 4100, 1, False),
    ],
)
def test_tma_needs_16_byte_rows(n, k, elt, aligned):
    assert tma_aligned(n, k, elt, elt) is aligned


def test_bf16_output_of_fp8_gemm_must_be_aligned_too():
    # fp8 rows of 4112 B are aligned, the bf16 output rows of 8224 B too; 4104 B rows are not
    assert tma_aligned(4112, 4096, 1, 2)
    assert not tma_aligned(4104, 4096, 1, 2)


def test_paths_by_gpu_and_alignment(h100):
    a100 = gpu_model("a100")
    assert copy_path(h100, 4096, 4096, 2, 2) == ("wgmma", "tma")
    assert copy_path(h100, 2500, 2500, 2, 2) == ("mma_sync", "ldg")
    assert copy_path(a100, 4096, 4096, 2, 2) == ("mma_sync", "cp_async")
    assert copy_path(a100, 2500, 2500, 2, 2) == ("mma_sync", "ldg")


def test_misaligned_gemm_uses_the_register_staged_kernel(h100):
    cfg = choose_gemm_config(2500, 2500, 2500, h100)
    # a shared-memory buffer being multiplied and a register buffer being loaded
    assert (cfg.path, cfg.copy, cfg.stages, cfg.block_k) == ("mma_sync", "ldg", 2, 32)
    cost = gemm_costs(2500, 2500, 2500, h100)[0]
    assert cost.stages == 2
    assert cost.meta["copy"] == "ldg"
    assert cost.name.startswith("ampere_gemm_ldg")
    # one K tile of (Bm + Bn) x 32 bf16 in flight per memory latency (TMA: four tiles)
    tile = (cfg.block_m + cfg.block_n) * 32 * 2
    assert cost.cta_stream_bytes_per_s == pytest.approx(tile / h100.hw.dram_latency_s)
    tma = gemm_costs(2560, 2560, 2560, h100)[0]
    tma_tile = sum(int(x) for x in tma.meta["tile"].split("x")[:2]) * 64 * 2
    assert tma.cta_stream_bytes_per_s == pytest.approx(4 * tma_tile / h100.hw.dram_latency_s)


def test_misaligned_gemm_is_over_twice_as_slow_as_its_aligned_neighbours(h100):
    """Measured on H100: 2500^3 bf16 takes 194 us, 5000^3 (aligned, 8x the FLOPs) 381 us."""

    def t(n):
        return evaluate_op(gemm_costs(n, n, n, h100), h100).time_s

    assert t(2500) > 2.0 * t(2496)
    assert t(2500) > 2.0 * t(2504)
    # the register-staged CTA is bound by its one tile in flight, not by the tensor cores
    assert evaluate_op(gemm_costs(2500, 2500, 2500, h100), h100).kernels[0].bound == "latency"


def test_event_engine_agrees_with_the_model_on_the_register_staged_kernel(h100):
    """One tile in flight and one being multiplied: the engine's two-buffer pipeline overlaps
    the next tile's latency with the current tile's MMAs, as the model's stream bound does."""
    from validation._predict import predict_record

    rec = {"kind": "gemm", "M": 2500, "N": 2500, "K": 2500, "dtype": "bf16", "ms": 0.194}
    model = predict_record(rec, h100).pred_ms
    event = predict_record(rec, h100, engine="event").pred_ms
    assert event == pytest.approx(model, rel=0.05)
