"""GPU recipes over the cascade given: kernels built from counted work, not from shape names.

Every GPU dataflow lowers the *cascade it is given* (see ``shared/DESIGN.md``, "A dataflow is
a mapping recipe, not a cost model"):

* a **fused** attention kernel (``flash2``, ``flash3``, ``mem_efficient``, ``block_sparse``,
  ``fg_sparse``, and the decode kernels of ``split_kv`` / ``lean``) takes its per-trip work
  from :func:`mappings._stream.stream_work`: trips per CTA (conditions and skippable
  sparsity applied), MACs and every other op kind of a dense tile, key-side tile bytes,
  query-side and output bytes per CTA. The kernel family's *timing* (tiling heuristics,
  instruction path, calibrated efficiency, overlap, waves, power) is
  :func:`archsim.gpu.attention.trip_kernel_cost`, the same function ``archsim validate``
  uses. What the family does that the cascade does not state is a named field of
  :class:`FusedRecipe`, not a constant in code;
* the Einsums outside the fused core (``roles.pre``, ``roles.post``: projections, output
  projection, linear attention's state path) run as separate kernels before/after it;
* ``gpu_unfused`` runs every Einsum as its own kernel.

Kernel of one Einsum (:func:`einsum_kernels`): a contraction ``C = sum A * B`` is a GEMM
with ``M`` = product of the output ranks only ``A`` has, ``N`` = those only ``B`` has,
``K`` = product of the reduced ranks, and the output ranks both have (batch, heads) as the
*batch count* of a batched GEMM (cuBLAS strided-batched). A contraction with ``M = N = 1``
(a dot product per output element, e.g. ``X * X`` of a norm) or any other Einsum is a
memory-bound kernel that streams the Einsum's counted reads and writes once
(:func:`workloads.count`), with its counted ops on the FP32 pipes.

Counting rule: ``plan.program.meta["ops"]`` holds the useful ops of the whole cascade by
kind (``mac`` included): the fused kernel's StreamWork totals plus every separate kernel's
Einsum counts; it equals :func:`workloads.count` of the cascade at the mapping's tile.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING

import numpy as np

from archsim.errors import MappingError
from archsim.gpu import FAMILIES, GpuModel, KernelCost, dtype_bytes, gemm_costs, streaming_cost
from archsim.gpu.attention import L2_REUSE, head_major_longest_first, trip_kernel_cost
from archsim.gpu.elementwise import launch_cost
from archsim.gpu.heuristics import AttnTiling
from archsim.gpu.launch import Launch, layer_norm_launch, vectorized_elementwise_launch
from archsim.gpu.softmax import softmax_cost
from mappings._passes import cascade_passes
from mappings._roles import AttentionRoles, attention_roles, is_contraction
from mappings._stream import StreamTiling, StreamWork, add_ops, numeric_params, stream_work

from ._kv_reads import kv_dram_reads

if TYPE_CHECKING:
    from archsim import Architecture
    from mappings._registry import PassInfo, Plan
    from workloads import Cascade, CascadeCounts, Workload

__all__ = [
    "SFU_OPS",
    "FusedRecipe",
    "FusedKernel",
    "check_one_pass",
    "contraction_shape",
    "einsum_kernels",
    "feature_extent",
    "fused_kernel",
    "tensor_bytes",
    "ops_meta",
    "unfused_runs",
    "unfused_sizes",
]

#: Op kinds the special-function units run (MUFU: ex2, rcp, rsqrt, sqrt, lg2, tanh; sigmoid and
#: silu are an ex2 + rcp pair, issued on the SFU). Every other op kind runs on the FP32 pipes.
SFU_OPS = frozenset(
    {"exp", "exp2", "sigmoid", "silu", "recip", "rsqrt", "sqrt", "tanh", "log", "sin", "cos"}
)


@dataclass(frozen=True)
class FusedRecipe:
    """A fused attention kernel family as a recipe over the cascade's roles.

    Attributes
    ----------
    dataflow
        Dataflow name (error messages, notes).
    family
        :mod:`archsim.gpu` kernel family: its tiling heuristics (``fwd_tiling``) and
        calibrated efficiency (``FAMILIES[family][0]``).
    kernel
        Kernel name reported per kernel (the profiler's name of the family's kernel).
    skips
        What the family can skip without computing (``condition``: tiles outside a causal /
        window mask; ``block``: dead M x M blocks; ``slice``: dead M x 1 slices by gather).
    score_overhead_ops
        FP32 ops per score (per point of the score Einsum in a tile) that the kernel executes
        and the cascade does not state: the conversion of P to the MMA input type (bf16) for
        the P V product, and the mask select of the causal/boundary tile. The softmax scale
        is fused with the max subtraction as one FMA (the cascade's ``sub``), so it adds
        nothing. With the cascade's ``max``, ``sub`` and ``sum`` per score this gives the 5
        FP32 ops per score the former closed-form model used.
    mma_accumulates
        The tensor cores add a contraction's result into the accumulator they already hold
        (``RNV = SPNV + SLNV``, MLA's ``QK = QKC + QKR``): an Einsum ``X = Y + C`` with ``C``
        a core contraction costs no FP32 ops.
    lse_bytes_per_row
        Bytes the kernel writes per query row beside the outputs (the fp32 log-sum-exp that
        the backward pass reads); 0 for a kernel that writes none.
    lpt_when_masked
        The persistent scheduler hands out the longest CTAs first when a condition makes CTA
        lengths unequal (FA3 / cuDNN causal): head by head, each head's query blocks last
        (longest) first (:func:`~archsim.gpu.attention.head_major_longest_first`).
    persistent
        The grid is one CTA per slot that walks the work items' tiles (cuDNN's sm90 flash
        forward: grid = SMs in the H200 layer traces); ``None``: the same as
        ``lpt_when_masked`` (only a persistent scheduler chooses the tile order).
    path
        Tensor-core instruction class of the family's MMAs (``mma_sync``: Ampere-style warp
        MMA; ``wgmma``: Hopper warpgroup MMA; a GPU without it runs ``mma_sync``).
    softmax_overlap
        Fraction of the softmax (FP32/SFU) time one CTA hides under its own MMAs by warp
        specialization and ping-pong between consumer warpgroups (FA3: 0.95); None: only
        other resident CTAs hide it.
    producer_warps
        Warps that only issue loads (TMA producer warpgroup of a warp-specialized kernel):
        they hold no accumulators, so the register file of a CTA's accumulators is spread
        over the other warps.
    kv_stages
        K/V pipeline stages in shared memory (the default ``depth`` of the kernel's
        :class:`~mappings.Mapping`).
    loads_per_stage
        K/V tiles one stage keeps in flight from memory (cp.async: the next K or V tile, 1;
        TMA: the K and the V tile of a stage, 2).
    o_staging
        The output tile is staged in shared memory for the (TMA) store.
    score_smem_bytes
        Bytes per score the kernel keeps in shared memory (cutlass keeps the probability tile
        there as the A operand of ``P V``, in bf16/fp16: 2; 0 when scores live in registers
        only).
    smem_union
        The two GEMMs' operands share one buffer (cutlass's ``SharedStorage`` union): shared
        memory is ``max(Q + K, scores + V)``, not their sum.
    """

    dataflow: str
    family: str
    kernel: str
    skips: frozenset[str] = frozenset({"condition"})
    score_overhead_ops: float = 2.0
    mma_accumulates: bool = True
    lse_bytes_per_row: float = 4.0
    lpt_when_masked: bool = False
    persistent: bool | None = None
    path: str = "mma_sync"
    softmax_overlap: float | None = None
    producer_warps: int = 0
    kv_stages: int = 1
    loads_per_stage: int = 1
    o_staging: bool = False
    score_smem_bytes: int = 0
    smem_union: bool = False

    @property
    def is_persistent(self) -> bool:
        """Whether the kernel is persistent (:attr:`persistent`, default ``lpt_when_masked``)."""
        return self.lpt_when_masked if self.persistent is None else self.persistent


@dataclass(frozen=True)
class FusedKernel:
    """A fused kernel's cost and the counted work it was built from."""

    cost: KernelCost
    work: StreamWork
    tiling: AttnTiling
    useful_ops: dict[str, float]
    meta: dict[str, object] = field(default_factory=dict)


def check_one_pass(workload: Workload, roles: AttentionRoles, dataflow: str) -> None:
    """Refuse a cascade that makes more than one pass over the key rank."""
    n, why = cascade_passes(workload.cascade, roles.key)
    if n > 1:
        raise MappingError(
            f"{dataflow} streams the key rank once, but the cascade needs {n} passes over "
            f"{roles.key!r} ({why}); write it 1-pass (library workloads: passes=1) or map it "
            "with gpu_unfused",
            path="workload.cascade",
            expected=f"a 1-pass cascade over {roles.key!r} (running state)",
            got=f"{n} passes",
        )


def _canon_ranks(cascade: Cascade, ranks: Sequence[str]) -> list[str]:
    """Ranks with a split pair (``m1, m0``) replaced by its parent (``m``); a lone part
    (running state along ``m1``) stays."""
    have = set(ranks)
    pairs = {
        sp.outer: root
        for root, sp in cascade.splits.items()
        if sp.outer in have and sp.inner in have
    }
    inner = {cascade.splits[root].inner for root in pairs.values()}
    out: list[str] = []
    for r in ranks:
        if r in inner:
            continue
        out.append(pairs.get(r, r))
    return out


def tensor_bytes(cascade: Cascade, name: str, sizes: Mapping[str, int]) -> float:
    """Compulsory bytes of tensor ``name`` (split ranks counted once, at the parent's size)."""
    spec = cascade.tensors[name]
    elems = math.prod(int(sizes.get(r, 1)) for r in _canon_ranks(cascade, spec.ranks))
    return float(elems) * spec.dtype_bits / 8.0  # dense storage (sparsity masks the scores)


def feature_extent(work: StreamWork) -> int:
    """Features per key the score contracts (``D``; MLA: the latent width)."""
    return int(math.prod(work.sizes.get(r, 1) for r in work.roles.features)) or 1


def value_extent(work: StreamWork) -> int:
    """Features per output row (``Dv``)."""
    return int(math.prod(work.sizes.get(r, 1) for r in work.roles.value_features)) or 1


def _einsum(cascade: Cascade, name: str):  # noqa: ANN202
    return next(e for e in cascade.einsums if e.name == name)


def _box(cascade: Cascade, work: StreamWork, name: str, *, output: bool = False) -> int:
    """Iteration points of one Einsum in one trip of a dense tile (stream_work's extents);
    ``output``: points of its output only (scores per tile)."""
    r = work.roles
    inner = {x for x in (r.key, r.key_inner) if x}
    box = 1
    e = _einsum(cascade, name)
    for rk in e.output.ranks if output else e.ranks:
        if rk == r.query:
            box *= work.query_tile
        elif rk in inner:
            box *= work.key_tile
        elif rk == r.key_outer or rk in r.batch or rk in r.query_heads:
            continue
        else:
            box *= int(work.sizes.get(rk, 1))
    return box


def _per_trip_exec(cascade: Cascade, work: StreamWork, name: str) -> dict[str, float]:
    """Executed ops of one Einsum per trip of a dense tile."""
    ec = work.counts.einsum(name)
    ops = {k: float(v) for k, v in ec.ops.items() if v}
    if ec.macs:
        ops["mac"] = float(ec.macs)
    if ec.points <= 0:
        return {}
    box = _box(cascade, work, name)
    return {k: v * box / ec.points for k, v in ops.items()}


def _accumulated_in_mma(cascade: Cascade, work: StreamWork) -> list[str]:
    """Core Einsums ``X = Y + C`` where ``C`` is a core contraction (MMA accumulate)."""
    from workloads._ast import Binary, TensorRef

    core = set(work.roles.core)
    contr = {n for n in core if is_contraction(_einsum(cascade, n))}
    out = []
    for n in work.roles.core:
        e = _einsum(cascade, n)
        x = e.expr
        if (
            e.reduce_op is None
            and isinstance(x, Binary)
            and x.op == "+"
            and isinstance(x.left, TensorRef)
            and isinstance(x.right, TensorRef)
            and (x.left.name in contr or x.right.name in contr)
        ):
            out.append(n)
    return out


def _split_ops(ops: Mapping[str, float]) -> tuple[float, float, float]:
    """(MACs, FP32-pipe ops, SFU ops) of an op dict."""
    mac = float(ops.get("mac", 0.0))
    sfu = sum(float(v) for k, v in ops.items() if k in SFU_OPS)
    alu = sum(float(v) for k, v in ops.items() if k != "mac" and k not in SFU_OPS)
    return mac, alu, sfu


def trip_work(
    cascade: Cascade, work: StreamWork, recipe: FusedRecipe
) -> tuple[float, float, float, dict[str, float]]:
    """(MACs, FP32 ops, SFU ops, executed op dict) per trip of one work item's dense tile.

    The tile's and the running state's executed ops (``tile_exec + row_exec``), minus the
    adds the MMA accumulates (:attr:`FusedRecipe.mma_accumulates`), plus the family's
    per-score overhead (:attr:`FusedRecipe.score_overhead_ops`); the epilogue's per-CTA ops
    are spread over the CTA's trips (mean), so the totals are kept.
    """
    ops: dict[str, float] = {}
    add_ops(ops, work.tile_exec)
    add_ops(ops, work.row_exec)
    if recipe.mma_accumulates:
        for n in _accumulated_in_mma(cascade, work):
            ex = _per_trip_exec(cascade, work, n)
            ops["add"] = max(ops.get("add", 0.0) - ex.get("add", 0.0), 0.0)
    score_pts = float(_box(cascade, work, work.roles.score, output=True))
    ops["overhead"] = recipe.score_overhead_ops * score_pts
    mean_trips = max(float(np.mean(work.trips)) if work.trips.size else 1.0, 1.0)
    add_ops(ops, work.epilogue_exec, 1.0 / mean_trips)
    mac, alu, sfu = _split_ops(ops)
    return mac, alu, sfu, ops


def fused_kernel(
    workload: Workload,
    recipe: FusedRecipe,
    model: GpuModel,
    dtype: str,
    tiling_fn: Callable[[int, bool], AttnTiling],
    *,
    roles: AttentionRoles | None = None,
    name: str | None = None,
    issue_cycles_per_trip: float = 0.0,
    extra_bytes_per_trip: float = 0.0,
    extra_dram_read: float = 0.0,
    meta: Mapping[str, object] | None = None,
    fp32_einsums: Sequence[str] = (),
) -> FusedKernel:
    """The fused kernel of ``recipe`` for ``workload``'s cascade.

    ``tiling_fn(D, causal) -> AttnTiling`` gives the family's tile for feature width ``D``;
    the key tile comes from it, then the work is counted again if a condition is present.
    ``fp32_einsums``: core contractions a mapping binds to the CUDA cores instead of the
    tensor cores (each MAC is then two FP32-pipe ops, a multiply and an add).
    """
    cascade = workload.cascade
    r = roles or attention_roles(cascade)
    elt = dtype_bytes(dtype)
    # feature width from the roles at the workload's own sizes, then the family's tile
    sizes0 = cascade.rank_sizes(numeric_params(workload.params))
    d = int(math.prod(sizes0.get(x, 1) for x in r.features)) or 1
    t0 = tiling_fn(d, False)
    w = stream_work(
        workload,
        StreamTiling(t0.block_m, t0.block_n, recipe.skips),
        roles=r,
        dataflow=recipe.dataflow,
    )
    masked = "condition" in w.skipped and w.total_trips < w.work_items * w.dense_trips
    t = tiling_fn(d, masked)
    if (t.block_m, t.block_n) != (t0.block_m, t0.block_n):
        w = stream_work(
            workload,
            StreamTiling(t.block_m, t.block_n, recipe.skips),
            roles=r,
            dataflow=recipe.dataflow,
        )
    mac, alu, sfu, ops = trip_work(cascade, w, recipe)
    for n in fp32_einsums:
        moved = _per_trip_exec(cascade, w, n).get("mac", 0.0)
        mac, alu = mac - moved, alu + 2.0 * moved
    sizes = w.sizes
    q_in = sum(tensor_bytes(cascade, n, sizes) for n in w.query_tensors)
    k_in = sum(tensor_bytes(cascade, n, sizes) for n in w.key_tensors)
    out = sum(tensor_bytes(cascade, n, sizes) for n in w.out_tensors)
    groups = max(1, w.work_items // max(w.stream_sharing, 1))  # distinct K/V streams
    # the kernel's tile order: head by head, each head's query blocks longest first (the
    # order archsim.gpu.attention_fwd_costs gives cuDNN's causal forward)
    order = (
        head_major_longest_first(w.work_items, max(w.query_blocks, 1))
        if recipe.lpt_when_masked and masked
        else None
    )
    kv_read = kv_dram_reads(
        w,
        slots=model.hw.sms * t.ctas_per_sm,
        stream_bytes=k_in / groups,
        l2_reuse_bytes=model.hw.l2_bytes * L2_REUSE,
        order=order,
    )
    factor = kv_read / k_in if k_in > 0 else 1.0
    rows = w.work_items // max(w.query_blocks, 1) * w.query_len
    write = out + recipe.lse_bytes_per_row * rows
    eff = float(getattr(model.cal, FAMILIES[recipe.family][0]))
    cost = trip_kernel_cost(
        name=name or recipe.kernel,
        category="attn_fwd",
        model=model,
        tiling=t,
        eff=eff,
        dtype=dtype,
        trips=w.trips,
        mma_flops_per_trip=2.0 * mac,
        alu_per_trip=alu,
        sfu_per_trip=sfu,
        bytes_per_trip=w.key_tile_bytes + extra_bytes_per_trip,
        fixed_bytes=float(sum(w.query_tensors.values()) + sum(w.out_tensors.values())),
        dram_read=q_in + kv_read + extra_dram_read,
        dram_write=write,
        order=order,
        persistent=recipe.is_persistent,
        meta={"family": recipe.family, "kv_reread": factor, **(meta or {})},
        issue_cycles_per_trip=issue_cycles_per_trip,
    )
    del elt
    return FusedKernel(cost, w, t, w.useful_ops(), {"masked": masked, "trip_ops": ops})


# --- kernels of single Einsums ------------------------------------------------------------


def contraction_shape(cascade: Cascade, name: str, sizes: Mapping[str, int]) -> tuple[int, ...]:
    """``(M, N, K, batch)`` of a contraction Einsum (see module doc)."""
    e = _einsum(cascade, name)
    a, b = e.inputs[0], e.inputs[1]
    out = list(e.output.ranks)
    ra, rb = set(a.ranks), set(b.ranks)
    red = [x for x in e.reduce_ranks if x not in out]

    def prod(rs: Sequence[str]) -> int:
        return int(math.prod(int(sizes.get(x, 1)) for x in rs))

    m = prod([x for x in out if x in ra and x not in rb])
    n = prod([x for x in out if x in rb and x not in ra])
    batch = prod([x for x in out if x in ra and x in rb])
    return m, n, prod(red), batch


def einsum_kernels(
    cascade: Cascade,
    name: str,
    counts: CascadeCounts,
    sizes: Mapping[str, int],
    model: GpuModel,
    dtype: str,
) -> list[KernelCost]:
    """One Einsum as its own kernel(s): a GEMM or a memory-bound kernel (module doc)."""
    e = _einsum(cascade, name)
    ec = counts.einsum(name)
    if is_contraction(e) and len(e.inputs) >= 2:
        m, n, k, batch = contraction_shape(cascade, name, sizes)
        if m * n > 1 and k >= 1:
            out_elt = max(1, cascade.tensors[name].dtype_bits // 8)
            costs = gemm_costs(m, n, k, model, dtype=dtype, out_elt=out_elt, batch=batch)
            return [replace(c, meta={**c.meta, "einsum": name}) for c in costs]
    alu = float(ec.macs) * 2.0 + float(sum(ec.ops.values()))
    return [
        replace(
            streaming_cost(
                model,
                name=f"einsum_{name}",
                category="elementwise",
                read_bytes=distinct_read_bytes(cascade, ec.reads_elems, sizes),
                write_bytes=float(ec.writes_bytes),
                alu_ops=alu,
            ),
            meta={"einsum": name},
        )
    ]


def distinct_read_bytes(
    cascade: Cascade, reads_elems: Mapping[str, float], sizes: Mapping[str, int]
) -> float:
    """Bytes a streaming kernel reads from DRAM: each element of each operand once.

    ``workloads.count`` counts an operand once per iteration point that reads it; an operand
    broadcast over some ranks (a norm's per-row scale, a per-channel weight, RoPE's tables
    over heads) is read from DRAM once and served from cache/registers after that, so the
    reads of a tensor are capped at its size."""
    total = 0.0
    for t, n in reads_elems.items():
        spec = cascade.tensors[t]
        elems = math.prod(int(sizes.get(r, 1)) for r in spec.ranks)
        total += min(float(n), float(elems)) * spec.dtype_bits / 8.0
    return total


def einsum_ops(counts: CascadeCounts, names: Sequence[str]) -> dict[str, float]:
    """Useful ops (``mac`` included) of the named Einsums."""
    out: dict[str, float] = {}
    for n in names:
        ec = counts.einsum(n)
        add_ops(out, {k: float(v) for k, v in ec.ops.items()})
        if ec.macs:
            add_ops(out, {"mac": float(ec.macs)})
    return out


def ops_meta(ops: Mapping[str, float]) -> dict[str, float]:
    """Op dict with zero entries dropped and floats."""
    return {k: float(v) for k, v in sorted(ops.items()) if v}


def recipe_plan(
    name: str,
    workload: Workload,
    arch: Architecture,
    model: GpuModel,
    core: FusedKernel | Sequence[KernelCost],
    *,
    work: StreamWork | None = None,
    passes: PassInfo | None,
    notes: str,
    extra_meta: Mapping[str, object] | None = None,
) -> Plan:
    """Plan of a fused core plus the cascade's ``pre`` / ``post`` Einsums as separate kernels.

    ``core`` is a :class:`FusedKernel` or the core's kernels (with ``work`` then given).
    ``plan.program.meta["ops"]`` holds the useful ops of all kernels by kind (``mac`` too),
    ``meta["kernel_einsums"]`` which Einsums each kernel group runs.
    """
    from ._common import dtype_of, gpu_plan

    w: StreamWork | None
    if isinstance(core, FusedKernel):
        core_costs, w = [core.cost], core.work
    else:
        core_costs, w = list(core), work
    assert w is not None
    cascade = workload.cascade
    dtype = dtype_of(workload)
    r = w.roles
    pre: list[KernelCost] = []
    for n in r.pre:
        pre += einsum_kernels(cascade, n, w.counts, w.sizes, model, dtype)
    post: list[KernelCost] = []
    for n in r.post:
        post += einsum_kernels(cascade, n, w.counts, w.sizes, model, dtype)
    ops = w.useful_ops()
    add_ops(ops, einsum_ops(w.counts, [*r.pre, *r.post]))
    groups = {
        "pre": list(r.pre),
        "core": [*w.tile_einsums, *w.row_einsums, *w.epilogue_einsums],
        "post": list(r.post),
    }
    return _finish(
        name,
        workload,
        arch,
        model,
        [*pre, *core_costs, *post],
        ops,
        passes=passes,
        notes=notes,
        extra_meta={**(extra_meta or {}), "einsum_groups": groups, "roles": r.describe()},
        gpu_plan=gpu_plan,
    )


def _finish(
    name: str,
    workload: Workload,
    arch: Architecture,
    model: GpuModel,
    costs: list[KernelCost],
    ops: Mapping[str, float],
    *,
    passes: PassInfo | None,
    notes: str,
    extra_meta: Mapping[str, object],
    gpu_plan: Callable[..., Plan],
) -> Plan:
    plan = gpu_plan(
        name, workload, arch, costs, model, passes=passes, notes=notes, extra_meta=extra_meta
    )
    om = ops_meta(ops)
    program = replace(plan.program, meta={**plan.program.meta, "ops": om})
    return replace(plan, program=program, meta={**plan.meta, "ops": om})


def _is_gemm(cascade: Cascade, name: str, sizes: Mapping[str, int]) -> bool:
    e = _einsum(cascade, name)
    if not is_contraction(e) or len(e.inputs) < 2:
        return False
    m, n, _, _ = contraction_shape(cascade, name, sizes)
    return m * n > 1


def unfused_plan(
    name: str,
    workload: Workload,
    arch: Architecture,
    model: GpuModel,
    *,
    fuse_elementwise: bool = True,
    notes: str = "",
    runs: Sequence[Sequence[str]] | None = None,
) -> Plan:
    """Every Einsum of the cascade outside any fused loop nest (any cascade).

    Contractions run as (batched) GEMMs; the other Einsums are memory-bound. With
    ``fuse_elementwise`` a run of consecutive memory-bound Einsums is one kernel (as a
    library softmax / norm kernel keeps a row on chip): it reads the tensors the run does not
    make and writes those read after it (or cascade outputs); else each is its own kernel.
    ``runs`` gives the kernels instead (each a list of Einsums, as :func:`unfused_runs`
    returns them: a GEMM alone, memory-bound Einsums in runs).
    """
    from workloads import count

    from ._common import dtype_of, gpu_plan

    cascade = workload.cascade
    num = numeric_params(workload.params)
    num = _whole_key(cascade, num)
    counts = count(cascade, num)
    sizes = cascade.rank_sizes(num)
    dtype = dtype_of(workload)
    costs: list[KernelCost] = []
    names = [e.name for e in cascade.einsums]
    if runs is None:
        runs = unfused_runs(cascade, sizes, fuse_elementwise=fuse_elementwise)
    for run in runs:
        if len(run) == 1:
            costs += einsum_kernels(cascade, run[0], counts, sizes, model, dtype)
            continue
        made = set(run)
        reads = {ref.name for n in run for ref in _einsum(cascade, n).inputs} - made
        later = {ref.name for e in cascade.einsums if e.name not in made for ref in e.inputs} | set(
            cascade.outputs
        )
        writes = made & later
        ops = einsum_ops(counts, run)
        read_b = sum(tensor_bytes(cascade, t, sizes) for t in reads)
        write_b = sum(tensor_bytes(cascade, t, sizes) for t in writes)
        alu = 2.0 * ops.get("mac", 0.0) + sum(v for k, v in ops.items() if k != "mac")
        name = "fused_elementwise_" + "_".join(run)
        row = softmax_row(cascade, run, ops, sizes)
        launch = run_launch(cascade, run, reads, writes, sizes) if row is None else None
        rb, wb = float(read_b), float(write_b)
        if row is not None:
            cost = softmax_cost(
                model, rows=row[0], cols=row[1], dtype=dtype, read_bytes=rb, write_bytes=wb
            )
        elif launch is not None:
            cost = launch_cost(
                model, launch, name=name, category="elementwise",
                read_bytes=rb, write_bytes=wb, alu_ops=alu,
            )  # fmt: skip
        else:
            cost = streaming_cost(
                model, name=name, category="elementwise",
                read_bytes=rb, write_bytes=wb, alu_ops=alu,
            )  # fmt: skip
        costs.append(replace(cost, meta={**cost.meta, "einsums": run}))
    return _finish(
        name,
        workload,
        arch,
        model,
        costs,
        einsum_ops(counts, names),
        passes=None,
        notes=notes or f"{name}: {len(names)} Einsums as {len(costs)} kernels",
        extra_meta={"einsum_groups": {"kernels": [list(r) for r in runs]}},
        gpu_plan=gpu_plan,
    )


def softmax_row(
    cascade: Cascade, run: Sequence[str], ops: Mapping[str, float], sizes: Mapping[str, int]
) -> tuple[int, int] | None:
    """``(rows, cols)`` when a fused run is a row softmax (a ``max`` reduction and ``exp``s
    over the same row): the library runs it as its softmax kernel, whose cost is not a
    latency chain but instruction issue (:mod:`archsim.gpu.softmax`). None otherwise."""
    red = next((_einsum(cascade, n) for n in run if _einsum(cascade, n).reduce_op == "max"), None)
    if red is None or not red.reduce_ranks or ops.get("exp", 0.0) <= 0:
        return None
    cols = int(math.prod(int(sizes.get(r, 1)) for r in red.reduce_ranks))
    rows = int(math.prod(int(sizes.get(r, 1)) for r in red.output.ranks))
    return rows, cols


def run_launch(
    cascade: Cascade,
    run: Sequence[str],
    reads: set[str],
    writes: set[str],
    sizes: Mapping[str, int],
) -> Launch | None:
    """The launch of a fused run of memory-bound Einsums (:mod:`archsim.gpu.launch`), as the
    library kernel that runs it: a run with a reduction is a row kernel (PyTorch's
    ``vectorized_layer_norm_kernel``: one CTA per row of the reduced ranks, a statistics
    pass over the row, then the normalise pass that also reads the per-column tensors, e.g.
    a norm's ``G``/``BETA``); a run without one is ``vectorized_elementwise_kernel`` over its
    largest output. Inputs come from HBM (a standalone call). None when the run writes
    nothing (no launch to derive)."""
    red = next(
        (_einsum(cascade, n) for n in run if _einsum(cascade, n).reduce_op is not None), None
    )

    def elems(t: str) -> int:
        return int(
            math.prod(int(sizes.get(r, 1)) for r in _canon_ranks(cascade, cascade.tensors[t].ranks))
        )

    def elt(t: str) -> int:
        return max(1, cascade.tensors[t].dtype_bits // 8)

    if not writes:
        return None
    if red is not None and red.reduce_ranks:
        reduced = set(red.reduce_ranks)
        cols = int(math.prod(int(sizes.get(r, 1)) for r in reduced))
        rows = int(math.prod(int(sizes.get(r, 1)) for r in red.output.ranks))
        row = set(red.output.ranks)
        has = {t: set(_canon_ranks(cascade, cascade.tensors[t].ranks)) for t in reads}
        row_in = [t for t in sorted(reads) if reduced <= has[t] and row & has[t]]
        per_col = [t for t in sorted(reads) if reduced <= has[t] and not row & has[t]]
        if row_in:
            return layer_norm_launch(rows, cols, max(elt(t) for t in row_in), weights=len(per_col))
    out = max(writes, key=elems)
    n = elems(out)
    ins = [elt(t) for t in sorted(reads) if elems(t) >= n]  # operands streamed with the output
    return vectorized_elementwise_launch(n, ins or [elt(out)], elt(out))


def unfused_runs(
    cascade: Cascade, sizes: Mapping[str, int], *, fuse_elementwise: bool = True
) -> list[list[str]]:
    """The kernels of :func:`unfused_plan`: each GEMM alone; with ``fuse_elementwise`` each
    run of consecutive memory-bound Einsums one kernel, else each Einsum its own."""
    runs: list[list[str]] = []
    for e in cascade.einsums:
        n = e.name
        if _is_gemm(cascade, n, sizes) or not fuse_elementwise:
            runs.append([n])
        elif runs and not _is_gemm(cascade, runs[-1][-1], sizes):
            runs[-1].append(n)
        else:
            runs.append([n])
    return runs


def unfused_sizes(workload: Workload) -> tuple[dict[str, float], dict[str, int]]:
    """(numeric parameters, rank sizes) of the unfused mapping: the key rank whole
    (:func:`_whole_key`)."""
    num = _whole_key(workload.cascade, numeric_params(workload.params))
    return num, workload.cascade.rank_sizes(num)


def _whole_key(cascade: Cascade, num: dict[str, float]) -> dict[str, float]:
    """Unfused mapping: the key rank is not tiled. When an attention cascade splits its key
    rank only to carry running state across key tiles (the score iterates the outer part),
    the split's tile parameter is set to the whole key length, so the running-state Einsums
    take one step (a mapping choice, as a fused recipe sets it to its key tile). Chunked
    algorithms whose score iterates only the inner part (linear attention) keep their chunk.
    """
    try:
        r = attention_roles(cascade)
    except MappingError:
        return num
    if not (r.key_outer and r.key_split_param):
        return num
    score = _einsum(cascade, r.score)
    if r.key_outer not in score.ranks:
        return num
    sizes = cascade.rank_sizes(num)
    return {**num, r.key_split_param: int(sizes[r.key])}
