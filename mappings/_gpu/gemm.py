"""``gpu_gemm`` (one contraction as a cuBLAS-like GEMM: tile choice, waves, split-K) and
``gpu_unfused`` (every Einsum of any cascade as its own kernel, intermediates in HBM).

``gpu_gemm`` reads M, N, K from the cascade's ranks (:func:`mappings._gpu._spine.
contraction_shape`: M = output ranks only A has, N = only B has, K = reduced ranks, ranks
both have = batch count), never from parameter names; it refuses a cascade that is not a
single contraction. Knobs: ``tile`` (``"128x256"``...) and ``split_k`` force a configuration.
"""

from __future__ import annotations

from collections.abc import Mapping

from archsim import Architecture
from archsim.errors import MappingError
from archsim.gpu import GemmConfig, gemm_costs
from mappings._passes import cascade_passes
from mappings._registry import PassInfo, Plan, register_dataflow
from mappings._roles import is_contraction
from mappings._stream import numeric_params
from workloads import Workload, count

from ._common import check_knobs, dtype_of, ensure, model_for
from ._spine import _finish, contraction_shape, einsum_ops, unfused_plan

__all__ = ["gpu_gemm", "gpu_unfused"]


@register_dataflow("gpu_gemm")
def gpu_gemm(workload: Workload, arch: Architecture, knobs: Mapping[str, object]) -> Plan:
    """cuBLAS-like GEMM on the GPU (single-contraction cascades)."""
    from ._common import gpu_plan

    check_knobs(knobs, ("tile", "split_k"), "gpu_gemm")
    model = model_for(arch)
    cascade = workload.cascade
    es = cascade.einsums
    if len(es) != 1 or not is_contraction(es[0]) or len(es[0].inputs) < 2:
        raise MappingError(
            "gpu_gemm maps a single contraction C = sum A * B",
            path="workload.cascade",
            expected="one Einsum C[m,n] = A[m,k] * B[k,n] (two distinct operands)",
            got="; ".join(e.text or e.name for e in es[:4]) + (" ..." if len(es) > 4 else ""),
        )
    num = numeric_params(workload.params)
    sizes = cascade.rank_sizes(num)
    M, N, K, batch = contraction_shape(cascade, es[0].name, sizes)
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
        ok = isinstance(sk, int) and not isinstance(sk, bool) and 1 <= sk <= max(K // 64, 1)
        ensure(ok, "bad knob", "knobs.split_k", f"int in [1, {max(K // 64, 1)}] (K / 64)", sk)
        assert isinstance(sk, int)  # ensure() above raised otherwise
        path = "wgmma" if model.hw.has_path("wgmma") else "mma_sync"
        cfg = GemmConfig(int(parts[0]), int(parts[1]), 64, sk, path)
    out_elt = max(1, cascade.tensors[es[0].name].dtype_bits // 8)
    costs = gemm_costs(
        M, N, K, model, dtype=dtype_of(workload), out_elt=out_elt, batch=batch, config=cfg
    )
    meta = costs[0].meta
    passes = PassInfo(
        passes=1, buffer_bytes=0.0, buffer_formula="4 stages x (Bm + Bn) x 64 x bytes"
    )
    return _finish(
        "gpu_gemm",
        workload,
        arch,
        model,
        costs,
        einsum_ops(count(cascade, num), [es[0].name]),
        passes=passes,
        notes=f"gpu_gemm: {M}x{N}x{K} x{batch}, tile {meta['tile']}, split_k {meta['split_k']}",
        extra_meta={
            "tile": meta["tile"],
            "split_k": meta["split_k"],
            "gemm_shape": {"M": M, "N": N, "K": K, "batch": batch},
        },
        gpu_plan=gpu_plan,
    )


@register_dataflow("gpu_unfused")
def gpu_unfused(workload: Workload, arch: Architecture, knobs: Mapping[str, object]) -> Plan:
    """Every Einsum as its own kernel: contractions as (batched) GEMMs, others memory-bound,
    every intermediate written to and read back from HBM. Any cascade."""
    check_knobs(knobs, ("fuse_elementwise",), "gpu_unfused")
    model = model_for(arch)
    fuse = bool(knobs.get("fuse_elementwise", True))
    plan = unfused_plan("gpu_unfused", workload, arch, model, fuse_elementwise=fuse)
    cascade = workload.cascade
    counts = count(cascade, numeric_params(workload.params))
    inter = set(cascade.tensors) - set(cascade.inputs) - set(cascade.outputs)
    spill = sum(float(ec.writes_bytes) for ec in counts.einsums if ec.name in inter)
    n, why = cascade_passes(cascade)
    passes = PassInfo(
        passes=max(1, n),
        buffer_bytes=0.0,
        buffer_formula="0 (every intermediate in HBM)",
        spill_bytes=2.0 * spill,
        reason=why,
    )
    from dataclasses import replace

    from ._mapping import unfused_mapping

    # the default kernel split is a Mapping (``--save-mapping``); one kernel per Einsum is not
    mapping = unfused_mapping(workload, arch) if fuse else None
    return replace(plan, passes=passes, mapping=mapping)
