"""GPU prefill attention dataflows: ``flash2``, ``flash3``, ``mem_efficient``.

- ``flash2`` -- FlashAttention-2 (what PyTorch SDPA "flash" runs on Hopper): a CTA owns a
  128-row (hdim <= 64: 128x128 tiles; hdim 128: 128x64) query tile, streams K/V through
  shared memory with cp.async, mma.sync tensor-core instructions, softmax in the same
  warps (hidden only by the other resident CTA).
- ``flash3`` -- warp-specialized Hopper kernel (FA3 / cuDNN): a TMA producer warpgroup,
  two wgmma consumer warpgroups with ping-pong softmax, one CTA per SM.
- ``mem_efficient`` -- the cutlass memory-efficient kernel (64-row query tiles).

Knobs: ``pass_`` (``fwd``/``bwd``), ``family`` is fixed by the dataflow name. A decode
shape (``Sq == 1``) runs the family's decode kernels (:func:`archsim.gpu.decode_costs`),
the same kernels ``archsim validate`` predicts for a measured decode record.
"""

from __future__ import annotations

from collections.abc import Mapping

from archsim import Architecture
from archsim.gpu import (
    attention_bwd_costs,
    attention_fwd_costs,
    decode_costs,
    dtype_bytes,
    fwd_tiling,
)
from mappings._registry import PassInfo, Plan, register_dataflow
from workloads import Workload

from ._common import check_knobs, dtype_of, gpu_plan, model_for, param

__all__ = ["attention_plan"]


def attention_plan(
    name: str, family: str, workload: Workload, arch: Architecture, knobs: Mapping[str, object]
) -> Plan:
    """Plan of a fused attention kernel family for an attention-shaped workload."""
    check_knobs(knobs, ("pass_",), name)
    model = model_for(arch)
    B, H, D = param(workload, "B", 1), param(workload, "H"), param(workload, "D")
    Hkv = param(workload, "Hkv", H)
    Sq, Skv = param(workload, "Sq"), param(workload, "Skv", workload.params.get("Sq"))
    causal = bool(workload.params.get("causal", False))
    dtype = dtype_of(workload)
    kw = dict(B=B, Hq=H, Hkv=Hkv, Sq=Sq, Skv=Skv, D=D, causal=causal, family=family, dtype=dtype)
    bwd = str(knobs.get("pass_", "fwd")) == "bwd"
    if bwd:
        costs = attention_bwd_costs(model, **kw)  # type: ignore[arg-type]
    elif Sq == 1:  # decode: the family's decode kernels (cuDNN splits K/V, as measured)
        costs = decode_costs(
            model, B=B, Hq=H, Hkv=Hkv, Skv=Skv, D=D, family=family, dtype=dtype, causal=causal
        )
    else:
        costs = attention_fwd_costs(model, **kw)  # type: ignore[arg-type]
    t = fwd_tiling(family, model, D, causal, dtype_bytes(dtype))
    passes = PassInfo(
        passes=1,
        buffer_bytes=float(t.smem_bytes),
        buffer_formula=(
            f"(Bm + 2 Bn) * D * bytes = ({t.block_m}+2*{t.block_n})*{D}*{dtype_bytes(dtype)}"
            " per CTA"
        ),
        reason="online softmax: running max/sum rescale the output tile",
    )
    notes = (
        f"{name}: {t.block_m}x{t.block_n} tiles, {t.ctas_per_sm} CTA/SM, {t.path}; "
        f"{'backward' if bwd else 'forward'}"
    )
    return gpu_plan(
        name,
        workload,
        arch,
        costs,
        model,
        passes=passes,
        notes=notes,
        extra_meta={"tile": f"{t.block_m}x{t.block_n}", "path": t.path},
    )


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
