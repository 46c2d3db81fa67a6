"""Spatial attention dataflows: ``unfused``, ``flat`` and ``fusemax`` (2D + 1D arrays).

Every recipe maps the cascade it is given from its rank roles (:mod:`mappings._roles`); the
work per tile is counted from the cascade's Einsums (:mod:`mappings._stream`). Binding
follows FuseMax (Nayak et al., MICRO'24; ``reference/fusemax_cascades.md``) and its artifact
(FPSG-UIUC/micro24-fusemax-artifact @ f543beb):

* ``unfused`` and ``flat`` (the artifact's 3-pass baselines) are registered in
  :mod:`mappings._flat`; their mappings are built by :mod:`mappings._flat_mapping` and lowered
  by the generic lowering, as ``fusemax``'s (:mod:`mappings._fusemax_mapping`).
* ``fusemax``: a 1-pass cascade; the 2D array runs the Einsums that iterate the key tile (for
  FuseMax's cascade QK, LM, SLN (exp = 6 MAC + 1 add on the preset), SLD and SLNV: ``2E + 9``
  cycles per ``M0 x P0`` tile); the 1D array runs the running-state Einsums (RM, PRM, SPD, RD,
  SPNV, RNV: ``10 + 2F`` cycles per tile) of the same tile concurrently, and the epilogue (AV,
  ``F`` divides per query row). Key-side tensors stream once per group of ``q_group`` query
  rows whose running state stays in the global buffer; the default group is the artifact's
  P1 rule (:func:`fusemax_p1`). With FuseMax's numbers the 1D array is the bottleneck by one
  cycle per tile plus the AV divides, which is where the artifact's 2D utilization of 0.89
  at 1K (0.99 at 1M) comes from. A variant gets its own counts: SQA fewer heads, a sigmoid
  no max/sum, a sliding window only the tiles its window touches.
"""

from __future__ import annotations

import math
from collections.abc import Mapping as AbcMapping
from typing import TYPE_CHECKING, Literal

from archsim.errors import InfeasibleMappingError, MappingError
from mappings._attn_common import (
    glb_level,
    pos_int,
    require_kind,
    require_one_pass,
)
from mappings._fit import pick_units, unit_mesh
from mappings._flat import flat_plan, unfused_plan
from mappings._fusemax_mapping import fusemax_mapping
from mappings._gemm import _known
from mappings._lower import group_work, lower
from mappings._registry import PassInfo, Plan, register_dataflow
from mappings._roles import attention_roles
from mappings._splits import apply_splits
from mappings._stream import StreamTiling, stream_work
from mappings._tensors import count_ops

if TYPE_CHECKING:
    from archsim import Architecture
    from mappings._stream import StreamWork
    from workloads import Workload

__all__ = ["unfused_plan", "flat_plan", "fusemax_plan", "fusemax_p1"]


#: What the FuseMax controller can skip: tiles a condition leaves empty (causal, windows) and
#: the dead tiles of a block or M x 1 slice mask known before the run (kept keys gathered).
#: The paper's design is dense; skipping known-dead tiles is this recipe's extension, the same
#: control a block-sparse GPU kernel has.
FUSEMAX_SKIPS: frozenset[Literal["condition", "block", "slice"]] = frozenset(
    {"condition", "block", "slice"}
)


@register_dataflow("fusemax")
def fusemax_plan(workload: Workload, arch: Architecture, knobs: AbcMapping[str, object]) -> Plan:
    """FuseMax 1-pass binding of the cascade given (a recipe over its rank roles).

    Tiles of ``m0`` keys (default: the 2D mesh's rows) by ``p0`` query rows (default: its
    columns). Einsums that iterate the key tile (score, exp, sums, the value contraction) run
    on the 2D array; the running state (Einsums that advance along the key's outer rank only)
    and the epilogue (the final divide) on the 1D array, concurrently. The key-side tensors
    stream once per group of ``q_group`` query rows whose running state stays in the global
    buffer (default: the artifact's P1 rule, :func:`fusemax_p1`). Einsums outside the fused
    core (projections, an output projection, linear attention's state path) run before/after
    as one generic kernel each. Knobs: ``m0``, ``p0``, ``q_group``.

    Raises
    ------
    MappingError
        Not attention-like, not 1-pass over the key rank, or a query group overflowing the
        buffer.
    """
    from archsim import TileProgram

    _known(knobs, {"m0", "p0", "q_group"})
    require_kind(arch, "spatial", "fusemax", "flash3, flash2 on a GPU; pim_decode on PIM")
    roles = attention_roles(workload.cascade)
    require_one_pass(workload.cascade, "fusemax")
    glb = glb_level(arch)
    big, _ = pick_units(arch)
    mx, my = unit_mesh(big)
    sw = stream_work(
        workload,
        StreamTiling(pos_int(knobs, "p0", my), pos_int(knobs, "m0", mx), FUSEMAX_SKIPS),
        roles=roles,
        dataflow="fusemax",
    )
    m0, p0 = sw.key_tile, sw.query_tile
    cap = float(glb.capacity_bytes or float("inf"))
    kv_tile = sw.key_tile_bytes
    row_state = (sum(sw.query_tensors.values()) + _state_bytes(workload, sw)) / p0
    p_blocks = sw.query_blocks
    # query blocks reading the same key tiles: a head's blocks, and a GQA group's heads
    share = sw.stream_sharing
    if "q_group" in knobs:
        qg = min(pos_int(knobs, "q_group", p0), sw.query_len * (share // p_blocks))
        p1 = math.ceil(qg / p0)
    else:
        p1 = fusemax_p1(share, cap, kv_tile, row_state * p0, path="arch.levels.GLB")
        qg = min(p1 * p0, sw.query_len * (share // p_blocks))
    used = qg * row_state + kv_tile
    if used > cap:
        raise MappingError(
            f"query group overflows {glb.name} by {used - cap:,.0f} bytes",
            path="knobs.q_group",
            expected=f"<= {int(max(cap - kv_tile, 0) // row_state)}",
            got=qg,
        )
    mapping = fusemax_mapping(
        workload, arch, roles, m0=m0, p0=p0, p1=p1, glb=glb.name, skips=tuple(FUSEMAX_SKIPS)
    )
    prog = lower(workload, mapping, arch)
    fused = next(g for g in mapping.groups if roles.score in g.einsums)
    split = apply_splits(workload, mapping.splits)
    run, _ = group_work(split, fused)
    skipped_ops: dict[str, float] = {}
    for name, ops in run.items():
        for k, v in count_ops(split.counts().einsum(name)).items():
            if v - ops.get(k, 0.0) > 1e-9 * max(1.0, v):
                skipped_ops[k] = skipped_ops.get(k, 0.0) + v - ops.get(k, 0.0)
    meta = {
        **prog.meta,
        "dataflow": "fusemax",
        "m0": m0,
        "p0": p0,
        "q_group": qg,
        "P1": p1,
        "kv_passes": math.ceil(share / p1),
        "tail_rows": sw.query_len % qg,
        "buffer_used_bytes": used,
        "cycles_2d_per_tile": 2 * _extent(sw, roles.features) + 9,
        "skipped_ops": skipped_ops,
        "params": dict(sw.params),
        "roles": roles.describe(),
        "skipped": dict(sw.skipped),
        "trips": int(sw.total_trips),
        "dense_trips": int(sw.dense_trips * sw.work_items),
    }
    prog = TileProgram("fusemax", prog.phases, clock_hz=prog.clock_hz, meta=meta)
    by = kv_tile / max(m0, 1)
    info = PassInfo(
        1,
        float(p0 * row_state + 2 * kv_tile),
        f"P0*{row_state:g}B + 2*M0*{by:g}B: independent of the key length",
        reason="1 pass over " + roles.key + ": running state along " + str(roles.key_outer),
    )
    return Plan(
        program=prog,
        passes=info,
        meta=meta,
        mapping=mapping,
        notes=f"FuseMax m0={m0} p0={p0} q_group={qg} (P1={p1}); "
        + (", ".join(f"{k}: {v}" for k, v in sw.skipped.items()) or "dense"),
    )


def _extent(sw: StreamWork, ranks: tuple[str, ...]) -> int:
    return int(math.prod(sw.sizes[r] for r in ranks))


def _state_bytes(workload: Workload, sw: StreamWork) -> float:
    """Bytes of one work item's running state (outputs of the iterative core Einsums)."""
    r = sw.roles
    total = 0.0
    for e in workload.cascade.einsums:
        if e.name not in r.iterative:
            continue
        spec = workload.cascade.tensors[e.name]
        n = 1
        for rk in e.output.ranks:
            if rk == r.query:
                n *= sw.query_tile
            elif rk in r.key_ranks or rk in r.batch or rk in r.query_heads:
                continue
            else:
                n *= sw.sizes.get(rk, 1)
        total += n * spec.dtype_bits / 8.0
    return total


def fusemax_p1(
    p_blocks: int,
    cap_bytes: float,
    kv_tile_bytes: float,
    block_state_bytes: float,
    *,
    path: str = "arch",
) -> int:
    """Query blocks per group by the FuseMax artifact's P1 rule.

    ``P1`` = the largest factor of ``P / P0`` that is at most
    ``(L3 - K/V tile) / (state of one P0-row query block)``; with FuseMax's numbers
    ``(L3 - 2*256*(E+F)) / (2*(E+2+F)*256)``, L3 in bytes (``fusemax_arch_params.json``,
    ``P1_tiling_rule``; reproduces the artifact's DRAM traffic, e.g. 2 K/V passes for BERT at
    64K with a 16 MiB buffer). A factor, so every group is full.

    Parameters
    ----------
    p_blocks
        ``ceil(Sq / P0)``, query blocks per head.
    cap_bytes
        Global-buffer capacity in bytes.
    kv_tile_bytes
        Bytes of one ``M0``-key K/V tile.
    block_state_bytes
        Bytes of one query block's on-chip state (Q, RNV, RM, RD rows), ``P0*(E+F+2)*bytes``.

    Returns
    -------
    int
        ``P1 >= 1``.
    """
    limit = (
        int((cap_bytes - kv_tile_bytes) // block_state_bytes)
        if math.isfinite(cap_bytes)
        else p_blocks
    )
    if limit < 1:
        raise InfeasibleMappingError(
            f"{path}: buffer of {cap_bytes:,.0f} B cannot hold one K/V tile "
            f"({kv_tile_bytes:,.0f} B) and one query block's state ({block_state_bytes:,.0f} B)"
        )
    limit = min(limit, p_blocks)
    return max(d for d in range(1, limit + 1) if p_blocks % d == 0)
