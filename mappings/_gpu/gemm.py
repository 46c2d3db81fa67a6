"""``gpu_gemm`` (cuBLAS-like tile choice, waves, split-K) and ``gpu_unfused`` (attention as
bmm, softmax, bmm with the scores in HBM).

``gpu_gemm`` knobs: ``tile`` (``"128x256"``...) and ``split_k`` force a configuration.
"""

from __future__ import annotations

from collections.abc import Mapping

from archsim import Architecture
from archsim.gpu import GemmConfig, gemm_costs, unfused_attention_costs
from mappings._registry import PassInfo, Plan, register_dataflow
from workloads import Workload

from ._common import check_knobs, dtype_of, ensure, gpu_plan, model_for, param

__all__ = ["gpu_gemm", "gpu_unfused"]


@register_dataflow("gpu_gemm")
def gpu_gemm(workload: Workload, arch: Architecture, knobs: Mapping[str, object]) -> Plan:
    """cuBLAS-like GEMM on the GPU."""
    check_knobs(knobs, ("tile", "split_k"), "gpu_gemm")
    model = model_for(arch)
    M, N, K = param(workload, "M"), param(workload, "N"), param(workload, "K")
    cfg = None
    if "tile" in knobs or "split_k" in knobs:
        tile = str(knobs.get("tile", "128x128"))
        parts = tile.split("x")
        ensure(
            len(parts) == 2 and all(p.isdigit() for p in parts),
            "bad knob",
            "knobs.tile",
            "'BMxBN' such as '128x256'",
            tile,
        )
        sk = knobs.get("split_k", 1)
        ensure(isinstance(sk, int) and sk >= 1, "bad knob", "knobs.split_k", "int >= 1", sk)
        path = "wgmma" if model.hw.has_path("wgmma") else "mma_sync"
        cfg = GemmConfig(int(parts[0]), int(parts[1]), 64, int(sk), path)  # type: ignore[arg-type]
    costs = gemm_costs(M, N, K, model, dtype=dtype_of(workload), config=cfg)
    meta = costs[0].meta
    passes = PassInfo(
        passes=1, buffer_bytes=0.0, buffer_formula="4 stages x (Bm + Bn) x 64 x bytes"
    )
    return gpu_plan(
        "gpu_gemm",
        workload,
        arch,
        costs,
        model,
        passes=passes,
        notes=f"gpu_gemm: tile {meta['tile']}, split_k {meta['split_k']}",
        extra_meta={"tile": meta["tile"], "split_k": meta["split_k"]},
    )


@register_dataflow("gpu_unfused")
def gpu_unfused(workload: Workload, arch: Architecture, knobs: Mapping[str, object]) -> Plan:
    """Unfused attention: three kernels, scores written to and read back from HBM."""
    check_knobs(knobs, (), "gpu_unfused")
    model = model_for(arch)
    B, H, D = param(workload, "B", 1), param(workload, "H"), param(workload, "D")
    Sq, Skv = param(workload, "Sq"), param(workload, "Skv", workload.params.get("Sq"))
    costs = unfused_attention_costs(model, B=B, H=H, S=Sq, D=D, dtype=dtype_of(workload), Skv=Skv)
    scores = 2.0 * B * H * Sq * Skv * 2
    passes = PassInfo(
        passes=3,
        buffer_bytes=0.0,
        buffer_formula="0 (scores spilled to HBM)",
        spill_bytes=2 * scores,
        reason="softmax needs the full row max and sum",
    )
    return gpu_plan(
        "gpu_unfused",
        workload,
        arch,
        costs,
        model,
        passes=passes,
        notes="gpu_unfused: bmm QK^T, softmax, bmm PV",
    )
