"""Physics of the kernel models: waves, causal halving, bandwidth-bound decode, Hopper paths."""

import math

import pytest

from archsim.gpu import (
    attention_flops,
    attention_fwd_costs,
    block_sparse_costs,
    decode_costs,
    evaluate_op,
    gemm_costs,
    gpu_model,
    unfused_attention_costs,
)


@pytest.fixture(scope="module")
def model():
    return gpu_model("h100")


def _t(costs, model):
    return evaluate_op(costs, model).time_s


def test_one_more_tile_than_slots_costs_a_wave(model):
    from archsim.gpu import GemmConfig

    cfg = GemmConfig(128, 128, 64, 1, "wgmma")
    full = _t(gemm_costs(128 * 12, 128 * 11, 4096, model, config=cfg), model)  # 132 tiles
    over = _t(gemm_costs(128 * 133, 128, 4096, model, config=cfg), model)  # 133 tiles
    assert over / full == pytest.approx(2.0, rel=0.15)


def test_causal_attention_takes_about_half(model):
    kw = dict(B=4, Hq=32, Hkv=32, Sq=4096, Skv=4096, D=128, family="flash2")
    full = _t(attention_fwd_costs(model, causal=False, **kw), model)
    causal = _t(attention_fwd_costs(model, causal=True, **kw), model)
    assert 0.5 < causal / full < 0.65


def test_hopper_kernel_beats_flash2_at_hdim128(model):
    kw = dict(B=4, Hq=32, Hkv=32, Sq=4096, Skv=4096, D=128, causal=False)
    fa2 = _t(attention_fwd_costs(model, family="flash2", **kw), model)
    fa3 = _t(attention_fwd_costs(model, family="flash3", **kw), model)
    assert fa2 / fa3 > 1.4


def test_decode_is_bandwidth_bound(model):
    B, Hq, Hkv, S, D = 8, 32, 8, 32768, 128
    op = evaluate_op(decode_costs(model, B=B, Hq=Hq, Hkv=Hkv, Skv=S, D=D), model)
    kv_bytes = B * Hkv * S * D * 2 * 2
    assert op.dram_read_bytes == pytest.approx(kv_bytes, rel=0.02)
    assert kv_bytes / op.time_s > 0.8 * model.hbm_eff_bytes_per_s
    intensity = 4 * B * Hq * S * D / kv_bytes  # FLOP per DRAM byte
    ridge = (
        model.hw.tc_rate("wgmma", "bf16")
        * model.hw.sms
        * model.hw.boost_clock_hz
        / model.hw.hbm_bytes_per_s
    )
    assert intensity < ridge / 50


def test_gemm_dram_bytes_are_compulsory_when_operands_fit_l2(model):
    op = evaluate_op(gemm_costs(2048, 2048, 2048, model), model)
    assert op.dram_read_bytes == 2 * 2048 * 2048 * 2
    # the last wave's output tiles stay dirty in L2 (write-back) when the kernel ends
    assert 0 < op.dram_write_bytes < 2048 * 2048 * 2
    small = evaluate_op(gemm_costs(512, 512, 512, model), model)
    assert small.dram_write_bytes == 0  # ncu: a 512^3 GEMM writes nothing to DRAM
    big = evaluate_op(gemm_costs(8192, 8192, 8192, model), model)
    assert big.dram_write_bytes > 0.95 * 8192 * 8192 * 2


def test_unfused_attention_round_trips_the_scores(model):
    B, H, S, D = 1, 16, 4096, 64
    op = evaluate_op(unfused_attention_costs(model, B=B, H=H, S=S, D=D), model)
    assert op.dram_write_bytes >= B * H * S * S * 2 * 2  # scores and probabilities written
    assert [k.category for k in op.kernels] == ["gemm", "softmax", "gemm"]


def test_block_sparse_time_scales_with_density(model):
    t = [
        _t(block_sparse_costs(model, B=1, H=16, S=8192, D=128, block=128, density=d), model)
        for d in (0.25, 0.5, 1.0)
    ]
    assert t[0] < t[1] < t[2]
    assert t[2] / t[0] == pytest.approx(4.0, rel=0.3)


def test_flops_convention():
    assert attention_flops(1, 1, 1024, 1024, 64, False) == 4 * 1024 * 1024 * 64
    assert attention_flops(1, 1, 1024, 1024, 64, True) == 2 * 1024 * 1024 * 64
    assert math.isclose(attention_flops(2, 3, 1, 10, 8, True), 4 * 2 * 3 * 10 * 8)


def test_model_reads_the_architecture_spec():
    from archsim import load_arch

    full = gpu_model(load_arch("h100"))
    half = gpu_model(load_arch("h100").with_updates({"gpu.sms": 66}))
    assert half.hw.sms == 66
    t_full = _t(gemm_costs(8192, 8192, 8192, full), full)
    t_half = _t(gemm_costs(8192, 8192, 8192, half), half)
    assert 1.6 < t_half / t_full < 2.2


def test_h200_decode_gains_its_bandwidth_ratio():
    h100, h200 = gpu_model("h100"), gpu_model("h200")
    kw = dict(B=8, Hq=32, Hkv=8, Skv=32768, D=128)  # split-KV: bandwidth-bound
    k100 = evaluate_op(decode_costs(h100, **kw), h100).kernels[0]
    k200 = evaluate_op(decode_costs(h200, **kw), h200).kernels[0]
    assert k100.bound == "dram"
    ratio = k100.time_s / k200.time_s
    assert ratio == pytest.approx(h200.hw.hbm_bytes_per_s / h100.hw.hbm_bytes_per_s, rel=0.1)


def test_unsplit_gqa_decode_is_tensor_bound_in_fa2():
    """B*Hkv fills the GPU, so FA2 skips the split and runs its 128-row prefill tile with
    only Hq/Hkv = 4 real rows: 32x wasted MMA work makes it compute-bound (measured
    2.6 TB/s on the H100), so a faster memory barely helps."""
    h100, h200 = gpu_model("h100"), gpu_model("h200")
    kw = dict(B=32, Hq=32, Hkv=8, Skv=32768, D=128)
    k100 = evaluate_op(decode_costs(h100, **kw), h100).kernels[0]
    k200 = evaluate_op(decode_costs(h200, **kw), h200).kernels[0]
    assert k100.name == "flash_fwd_kernel"
    assert k100.bound == "compute"
    assert k100.time_s / k200.time_s < 1.1
