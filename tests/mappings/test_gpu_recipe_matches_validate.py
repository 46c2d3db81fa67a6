"""The ``flash3`` recipe (``archsim simulate --dataflow flash3``, ``models``) and ``archsim
validate`` build the same cuDNN sm90 causal forward kernel.

cuDNN's prefill forward is persistent (grid = SMs in the H200 layer traces) and walks its
tiles head by head, each head's query blocks longest first. Both paths must say so: the
same trips, tile order, persistence, bytes and tensor work, and the same time on every
evaluator. The only difference left is the softmax op count (the recipe counts the
cascade's ops, validate the closed-form 5 per score), which the MMAs hide.
"""

from __future__ import annotations

import numpy as np
import pytest

from archsim import load_arch
from archsim.engine import simulate
from archsim.gpu import attention_fwd_costs, gpu_model
from archsim.gpu.attention import fwd_tiling, head_major_longest_first
from mappings._api import plan_for, resolve_workload
from mappings._gpu._spine import fused_kernel
from mappings._gpu.attention import RECIPES
from validation._predict import predict_record

ARCH = load_arch("h100")
MODEL = gpu_model("h100")
SHAPE = {"B": 1, "Hq": 32, "Hkv": 8, "Sq": 2048, "Skv": 2048, "D": 128}
RECORD = {"kind": "attn", "backend": "cudnn", "causal": True, "dtype": "bf16", **SHAPE}


@pytest.fixture(scope="module")
def workload():
    return resolve_workload("gqa", {"S": 2048, "causal": True})


def test_the_recipe_builds_validates_persistent_head_major_kernel(workload):
    fk = fused_kernel(
        workload,
        RECIPES["flash3"],
        MODEL,
        "bf16",
        lambda d, causal: fwd_tiling("flash3", MODEL, d, causal, 2),
    )
    (ref,) = attention_fwd_costs(MODEL, causal=True, family="flash3", **SHAPE)
    got = fk.cost
    assert got.meta["persistent"] is ref.meta["persistent"] is True
    assert np.array_equal(got.trips, ref.trips)
    # 16 query blocks per head: head 0's last (longest) block is handed out first
    assert np.array_equal(got.order, ref.order)
    assert np.array_equal(got.order, head_major_longest_first(32 * 16, 16))
    assert got.order[0] == 15
    assert got.order[16] == 31
    for f in ("trip_bytes", "fixed_bytes", "trip_tensor_flops", "slots", "stages"):
        assert getattr(got, f) == getattr(ref, f), f
    assert got.dram_read_bytes == ref.dram_read_bytes
    assert got.dram_write_bytes == ref.dram_write_bytes
    # the cascade's softmax counts more FP32 ops per trip; the MMAs hide most of them
    assert got.trip_cycles == pytest.approx(ref.trip_cycles, rel=0.005)


@pytest.mark.parametrize("engine", ["analytic", "event"])
def test_the_recipes_plan_times_like_validate_on_every_evaluator(workload, engine):
    _, plan = plan_for(ARCH, workload, dataflow="flash3")
    (kernel,) = plan.meta["kernels"]
    assert kernel["persistent"] is True
    if engine == "analytic":
        from archsim._estimate import estimate

        got = estimate(plan.program, ARCH).seconds
    else:
        got = simulate(plan.program, ARCH).seconds
    want = predict_record(RECORD, MODEL, engine=engine, arch=ARCH).pred_ms * 1e-3
    # before the recipe was persistent and head-major: model -12.4%, event -14.3%
    assert got == pytest.approx(want, rel=0.01)
