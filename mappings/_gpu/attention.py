"""GPU prefill attention dataflows: ``flash2``, ``flash3``, ``mem_efficient``.

Each is a :class:`~mappings._gpu._spine.FusedRecipe` over the cascade given (see
:mod:`mappings._gpu._spine`): the family's tile (``archsim.gpu.fwd_tiling`` at the feature
width the score contracts), the cascade's own per-trip work (MACs, softmax or sigmoid ops,
masks skipped per tile), its own K/V and Q/O bytes, and the Einsums outside the fused core
(projections, output projection) as GEMM / memory-bound kernels before and after it.

- ``flash2`` -- FlashAttention-2 (what PyTorch SDPA "flash" runs on Hopper): a CTA owns a
  128-row query tile, streams K/V through shared memory with cp.async, mma.sync tensor-core
  instructions, softmax in the same warps (hidden only by the other resident CTA).
- ``flash3`` -- warp-specialized Hopper kernel (FA3 / cuDNN): a TMA producer warpgroup,
  two wgmma consumer warpgroups with ping-pong softmax, one CTA per SM, longest CTAs first.
- ``mem_efficient`` -- the cutlass memory-efficient kernel (64-row query tiles).

They refuse: a non-GPU architecture, a cascade that is not attention-like or not 1-pass
over the key rank, block/slice sparsity (use ``block_sparse`` / ``fg_sparse``). A decode
shape (query length 1) runs the family's decode recipe (:func:`mappings._gpu.decode.
decode_kernels`: GQA-packed query rows, split K/V, same kernel names as
:func:`archsim.gpu.decode_costs`); ``pass_="bwd"`` (or a gradient cascade such as ``mha_bwd``)
runs the family's key-outer backward over the gradient cascade
(:mod:`mappings._gpu.backward`; a forward cascade's gradient is derived by
:func:`workloads._grad.attention_backward`).
"""

from __future__ import annotations

import math
from collections.abc import Mapping

from archsim import Architecture
from archsim.errors import MappingError
from archsim.gpu import dtype_bytes, fwd_tiling
from mappings._registry import Plan, register_dataflow
from mappings._roles import attention_roles
from mappings._stream import numeric_params
from workloads import Workload

from ._common import check_knobs, dtype_of, model_for
from ._mapping import fused_mapping, fused_plan
from ._spine import FusedRecipe, check_one_pass
from .backward import attention_backward_plan, is_gradient_cascade

__all__ = ["attention_plan", "RECIPES"]

#: The fused prefill recipes (kernel-family facts as named fields, see FusedRecipe).
RECIPES: dict[str, FusedRecipe] = {
    # cp.async prefetches the next K or V tile; one K/V stage; mma.sync; softmax in the
    # same warps (only the other resident CTA hides it)
    "flash2": FusedRecipe("flash2", "flash2", "flash_fwd_kernel"),
    # TMA producer warpgroup + two wgmma consumer warpgroups ping-ponging the softmax;
    # two K/V stages (K and V of a stage in flight); O staged in SMEM for the TMA store
    "flash3": FusedRecipe(
        "flash3",
        "flash3",
        "cudnn_sm90_flash_fprop_wgmma",
        lpt_when_masked=True,
        # one CTA per SM walking tiles head by head, longest first (traced grid [132,1,1])
        persistent=True,
        path="wgmma",
        softmax_overlap=0.95,
        producer_warps=4,
        kv_stages=2,
        loads_per_stage=2,
        o_staging=True,
    ),
    # cutlass: K and V single-buffered; the probability tile in shared memory (bf16) as the
    # A operand of PV, in the bytes Q and K used (SharedStorage union; the recorded launches
    # in validation/data/h100_kernel_probe.jsonl: 18,944 B at d=64, 52,224 B at d=128)
    "mem_efficient": FusedRecipe(
        "mem_efficient",
        "efficient",
        "fmha_cutlassF_bf16_aligned_sm80",
        score_smem_bytes=2,
        smem_union=True,
    ),
}


def attention_plan(
    name: str, family: str, workload: Workload, arch: Architecture, knobs: Mapping[str, object]
) -> Plan:
    """Plan of a fused attention kernel family for the workload's cascade."""
    check_knobs(knobs, ("pass_",), name)
    model = model_for(arch)
    recipe = RECIPES[name]
    pass_ = str(knobs.get("pass_", "fwd"))
    if pass_ not in ("fwd", "bwd"):
        raise MappingError(
            "unknown pass", path="knobs.pass_", expected="fwd or bwd", got=knobs.get("pass_")
        )
    if pass_ == "bwd" or is_gradient_cascade(workload.cascade):
        # the family's key-outer backward over the gradient cascade (derived from a
        # forward one): mappings._gpu.backward
        return attention_backward_plan(name, workload, arch)
    roles = attention_roles(workload.cascade)
    check_one_pass(workload, roles, name)
    dtype = dtype_of(workload)
    elt = dtype_bytes(dtype)

    sizes0 = workload.cascade.rank_sizes(numeric_params(workload.params))
    if int(sizes0[roles.query]) == 1:  # decode: the family's decode kernels
        from .decode import decode_plan

        return decode_plan(name, family, workload, arch, roles=roles)

    # the family's own CTA for this head dim, written as a Mapping and run as one
    d = int(math.prod(sizes0.get(x, 1) for x in roles.features)) or 1
    t = fwd_tiling(family, model, d, False, elt)
    mapping = fused_mapping(workload, arch, roles, recipe, block_m=t.block_m, block_n=t.block_n)
    return fused_plan(name, workload, arch, mapping, roles)


@register_dataflow("flash2")
def flash2(workload: Workload, arch: Architecture, knobs: Mapping[str, object]) -> Plan:
    """FlashAttention-2 (mma.sync, query tile per CTA, K/V streamed)."""
    return attention_plan("flash2", "flash2", workload, arch, knobs)


@register_dataflow("flash3")
def flash3(workload: Workload, arch: Architecture, knobs: Mapping[str, object]) -> Plan:
    """FlashAttention-3 / cuDNN Hopper kernel (TMA, wgmma, warp specialization, ping-pong)."""
    return attention_plan("flash3", "flash3", workload, arch, knobs)


@register_dataflow("mem_efficient")
def mem_efficient(workload: Workload, arch: Architecture, knobs: Mapping[str, object]) -> Plan:
    """cutlass memory-efficient attention (xformers kernels in PyTorch SDPA)."""
    return attention_plan("mem_efficient", "efficient", workload, arch, knobs)
