"""GPU dataflow ``linear_chunked``: chunkwise-parallel causal linear attention in one kernel.

The mapping of Lightning Attention-2's forward kernel (Qin et al., arXiv 2401.04658,
``lightning_attn2.py`` ``_fwd_kernel``), which is also the non-materialising chunkwise form
of GLA (Yang et al., ICML'24, Sec. 3; FLA ``fused_chunk``):

* one CTA per (batch element, head, block of :attr:`ChunkRecipe.value_block` value
  features); the grid is ``batch x heads x ceil(Dv / value_block)``;
* each CTA walks the chunks of the sequence in order (one *trip* per chunk of ``C``
  positions): it loads the chunk's queries and keys (all ``D`` features) and its values
  (the CTA's value block), computes the masked intra-chunk product ``(Q_c K_c^T) V_c`` and
  the inter-chunk product ``Q_c S`` on the tensor cores, writes the chunk's outputs, and
  adds ``K_c^T V_c`` to the state ``S`` (``D x value_block``, fp32), which stays on chip
  for the whole walk;
* the intra-chunk scores do not depend on the value block, so every CTA of a head computes
  them again (``ceil(Dv / value_block)`` times): executed MACs exceed the cascade's useful
  MACs by that recomputation, the masked half of each score tile and the padding of a last
  partial chunk.

Knob ``materialize=1`` maps the materialized chunk form instead (FLA ``chunk``; GLA paper:
"materialization"): a state kernel walks the chunks as above but runs only the state path and
writes the state before every chunk to HBM (the cascade's state tensor at its dtype), then an
output kernel runs the rest with one CTA per (chunk, value block), parallel along the sequence.

Knob ``staged=1`` maps the GLA paper's released code instead (:mod:`mappings._gpu.linear_staged`):
one launch per stage (relayout copies, gate cumsum, batched GEMMs, state scan, the score kernel
with secondary chunking, score passes, add) with every intermediate through HBM.

Everything is read from the cascade (:func:`chunk_roles`): the chunk split of the query and
key ranks, the state Einsum (iterative along the key-chunk rank, no query rank), the value
features. Per-trip work is each Einsum's counted ops (:func:`workloads.count`) per iteration
point times the points of one trip's dense tile; bytes come from the tensors' ranks. The
timing is :func:`archsim.gpu.attention.trip_kernel_cost` with the calibrated efficiency of
the Triton kernel family (``flex``), the same function the fused attention recipes use.

It refuses (MappingError naming the property) a cascade that is not attention-like, whose key
or query rank is not split into chunks of one size, that has no inter-chunk state, or that
reduces over the keys with anything but a sum (softmax); and a non-GPU architecture.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace

import numpy as np

from archsim import Architecture
from archsim.errors import MappingError
from archsim.gpu import FAMILIES, GpuModel, KernelCost, dtype_bytes
from archsim.gpu.attention import kv_reread_factor, trip_kernel_cost
from archsim.gpu.heuristics import AttnTiling, make_tiling
from mappings._registry import PassInfo, Plan, WorkloadLike, register_dataflow
from mappings._roles import AttentionRoles, attention_roles, key_canon
from mappings._stream import add_ops, numeric_params
from workloads import Cascade, CascadeCounts, Workload, count

from ._common import check_knobs, dtype_of, gpu_plan, model_for
from ._spine import SFU_OPS, _canon_ranks, _finish, einsum_ops
from .linear_staged import staged_costs

__all__ = [
    "ChunkRecipe",
    "ChunkRoles",
    "RECIPE",
    "chunk_roles",
    "chunk_kernel",
    "chunk_plan",
    "linear_chunked",
    "state_path",
]


@dataclass(frozen=True)
class ChunkRecipe:
    """The chunked linear-attention kernel family as named facts (not cost formulas).

    Attributes
    ----------
    dataflow, kernel
        Dataflow name; kernel name reported per kernel.
    family
        :mod:`archsim.gpu` family whose calibrated efficiency applies: ``flex`` (Triton on
        sm90, the only Triton family the model is calibrated on; Lightning Attention-2 and
        FLA are Triton kernels).
    path
        Tensor-core instruction path (Triton emits ``wgmma`` on sm90).
    value_block
        Value features per CTA (``BLOCK_MODEL = min(next_pow2(e), 32)`` in
        ``lightning_attn2.py``).
    warps
        Warps per CTA (Triton's default ``num_warps = 4``; the launch sets none).
    stages
        Chunk loads in flight (Triton's default ``num_stages = 3`` on sm80+); shared memory
        holds that many chunks of every streamed input.
    regs_per_thread
        Registers per thread: the model's Triton convention (``flex_fwd_tiling``: 255 for
        head dims above 64, 168 otherwise).
    score_overhead_ops
        FP32 ops per score the kernel executes and the cascade does not state: the causal
        select (``tl.where``) and the conversion of the fp32 scores to the MMA operand type
        for the product with ``V`` (the same 2 per score as :class:`FusedRecipe`).
    """

    dataflow: str = "linear_chunked"
    kernel: str = "lightning_attn2_fwd_kernel"
    family: str = "flex"
    path: str = "wgmma"
    value_block: int = 32
    warps: int = 4
    stages: int = 3
    regs_per_thread: tuple[int, int] = (168, 255)
    score_overhead_ops: float = 2.0


RECIPE = ChunkRecipe()


@dataclass(frozen=True)
class ChunkRoles:
    """Ranks of a chunked linear-attention cascade (the cascade's own names).

    ``query_chunk``/``key_chunk`` are the outer parts of the query/key splits (one trip
    each), ``query_pos``/``key_pos`` the inner parts (positions in a chunk), ``state`` the
    Einsum carried across chunks, ``per_cta`` the ranks one CTA fixes (batch, heads).
    """

    attention: AttentionRoles
    query_parent: str
    key_parent: str
    query_chunk: str
    key_chunk: str
    query_pos: str
    key_pos: str
    state: str
    per_cta: tuple[str, ...]
    features: tuple[str, ...]
    value_features: tuple[str, ...]


def _refuse(what: str, expected: str, got: object) -> MappingError:
    return MappingError(
        f"linear_chunked needs {what}", path="workload.cascade", expected=expected, got=got
    )


def chunk_roles(cascade: Cascade) -> ChunkRoles:
    """Find the chunked linear-attention structure of ``cascade``.

    Raises
    ------
    MappingError
        Not attention-like; no key split into chunks; queries not split like the keys; a
        reduction over the keys other than a sum (softmax normalisation); no inter-chunk
        state (an Einsum iterative along the key-chunk rank that holds no query rank).
    """
    r = attention_roles(cascade)
    canon = key_canon(cascade)
    if not (r.key_outer and r.key_inner):
        raise _refuse(
            "the key rank split into chunks",
            f"a split {r.key} -> chunk, position : C",
            f"{r.key!r} unsplit",
        )
    q_parent = canon.get(r.query, r.query)
    q_split = cascade.splits.get(q_parent)
    if q_split is None or q_split.inner != r.query or q_split.outer not in r.batch:
        raise _refuse(
            "the query rank chunked like the keys (queries of a chunk against keys of the "
            "same chunk)",
            f"a split {q_parent} -> chunk, position : C whose chunk rank the score shares",
            f"query rank {r.query!r}, batch ranks {list(r.batch)}",
        )
    if str(q_split.tile) != str(cascade.splits[r.key].tile):
        raise _refuse(
            "query and key chunks of one size",
            f"both splits by {cascade.splits[r.key].tile}",
            f"{q_split.tile} and {cascade.splits[r.key].tile}",
        )
    keys = r.key_ranks
    for e in cascade.einsums:
        if e.reduce_op not in (None, "sum") and set(e.reduce_ranks) & keys:
            raise _refuse(
                "reductions over the keys that are sums (no softmax normalisation)",
                "sum over key positions",
                f"{e.name}: {e.reduce_op} over {list(e.reduce_ranks)}",
            )
    q_names = {r.query, q_parent, q_split.outer}
    states = [
        e.name
        for e in cascade.einsums
        if e.iterative_rank == r.key_outer and not (set(e.output.ranks) & q_names)
    ]
    if not states:
        per_row = [e.name for e in cascade.einsums if e.iterative_rank]
        raise _refuse(
            "an inter-chunk state (an Einsum iterative along the key-chunk rank with no "
            "query rank, S += K_c^T V_c)",
            f"X[..., {r.key_outer}+1, ...] = X[..., {r.key_outer}, ...] + ... without query ranks",
            f"iterative Einsums {per_row}" if per_row else "no iterative Einsum",
        )
    return ChunkRoles(
        attention=r,
        query_parent=q_parent,
        key_parent=r.key,
        query_chunk=q_split.outer,
        key_chunk=r.key_outer,
        query_pos=r.query,
        key_pos=r.key_inner,
        state=states[0],
        per_cta=tuple(x for x in r.batch if x != q_split.outer) + tuple(r.query_heads),
        features=tuple(r.features),
        value_features=tuple(r.value_features),
    )


def _extent(rank: str, cr: ChunkRoles, sizes: Mapping[str, int], vblock: int) -> int:
    """Points of ``rank`` in one trip of one CTA."""
    if rank in cr.per_cta or rank in (cr.query_chunk, cr.key_chunk):
        return 1
    if rank in (cr.query_parent, cr.key_parent):
        return int(sizes[cr.query_pos])  # one chunk of the whole sequence
    if rank in cr.value_features:
        return min(vblock, int(sizes[rank]))
    return int(sizes.get(rank, 1))


def _value_blocks(cr: ChunkRoles, sizes: Mapping[str, int], vblock: int) -> int:
    return math.prod(-(-int(sizes[f]) // vblock) for f in cr.value_features) or 1


def _trip_exec(
    cascade: Cascade, cr: ChunkRoles, counts: CascadeCounts, sizes: Mapping[str, int], vb: int
) -> dict[str, dict[str, float]]:
    """Executed ops per trip (one chunk of one CTA), by Einsum: the counted ops per point
    times the points of a dense tile (masked and padded points still occupy it)."""
    out: dict[str, dict[str, float]] = {}
    for e in cascade.einsums:
        ec = counts.einsum(e.name)
        if ec.points <= 0:
            continue
        box = math.prod(_extent(x, cr, sizes, vb) for x in e.ranks)
        ops = {k: float(v) for k, v in ec.ops.items() if v}
        if ec.macs:
            ops["mac"] = float(ec.macs)
        out[e.name] = {k: v * box / ec.points for k, v in ops.items()}
    return out


def _tile_bytes(cascade: Cascade, cr: ChunkRoles, name: str, sizes: Mapping[str, int], vb: int):
    """Bytes of tensor ``name`` one trip touches and whether it streams (has a chunk rank)."""
    spec = cascade.tensors[name]
    ranks = _canon_ranks(cascade, spec.ranks)
    seq = {cr.query_parent, cr.key_parent, cr.query_chunk, cr.key_chunk}
    elems = math.prod(_extent(x, cr, sizes, vb) for x in ranks)
    return float(elems) * spec.dtype_bits / 8.0, bool(set(ranks) & seq)


def _tensor_total(cascade: Cascade, name: str, sizes: Mapping[str, int]) -> float:
    spec = cascade.tensors[name]
    elems = math.prod(int(sizes.get(x, 1)) for x in _canon_ranks(cascade, spec.ranks))
    return float(elems) * spec.dtype_bits / 8.0


@dataclass(frozen=True)
class ChunkKernel:
    """The kernels' costs and what they were counted from."""

    costs: list[KernelCost]
    roles: ChunkRoles
    tiling: AttnTiling
    counts: CascadeCounts
    trip_ops: dict[str, float]
    ctas: int
    chunks: int
    value_blocks: int
    features: int
    value_block: int
    materialized: bool

    @property
    def cost(self) -> KernelCost:
        """The (last) kernel: the fused one, or the output kernel of the materialized form."""
        return self.costs[-1]


@dataclass(frozen=True)
class _Ctx:
    cascade: Cascade
    cr: ChunkRoles
    counts: CascadeCounts
    sizes: Mapping[str, int]
    model: GpuModel
    recipe: ChunkRecipe
    dtype: str
    nv: int


def _walk_kernel(
    x: _Ctx,
    name: str,
    einsums: list[str],
    reads: list[str],
    writes: list[str],
    ctas: int,
    trips: int,
    stages: int | None = None,
    where: str = "depth",
) -> tuple[KernelCost, AttnTiling, dict[str, float]]:
    """``ctas`` CTAs that each run ``trips`` chunk trips of ``einsums`` (executed ops of a
    dense chunk tile), reading ``reads`` and writing ``writes`` (tensors of the cascade).

    ``stages``: chunk loads in flight a mapping asks for (at most ``trips``), refused at
    ``where`` if they overflow shared memory; None: the recipe's, as many as fit."""
    cascade, cr, sizes, vb = x.cascade, x.cr, x.sizes, x.recipe.value_block
    per = _trip_exec(cascade, cr, x.counts, sizes, vb)
    ops: dict[str, float] = {}
    for n in einsums:
        add_ops(ops, per.get(n, {}))
    if cr.attention.score in einsums:
        score_pts = math.prod(
            _extent(r, cr, sizes, vb) for r in cascade.tensors[cr.attention.score].ranks
        )
        ops["overhead"] = x.recipe.score_overhead_ops * score_pts
    mac = ops.get("mac", 0.0)
    sfu = sum(v for k, v in ops.items() if k in SFU_OPS)
    alu = sum(v for k, v in ops.items() if k != "mac" and k not in SFU_OPS)
    trip_in = fixed_in = trip_out = 0.0
    for t in reads:
        b, streamed = _tile_bytes(cascade, cr, t, sizes, vb)
        if streamed:
            trip_in += b
        else:
            fixed_in += b
    for t in writes:
        trip_out += _tile_bytes(cascade, cr, t, sizes, vb)[0]
    hw = x.model.hw
    d = math.prod(int(sizes[r]) for r in cr.features) or 1
    regs = x.recipe.regs_per_thread[1] if d > 64 else x.recipe.regs_per_thread[0]
    cap = int(hw.max_smem_per_cta_bytes)
    if stages is None:
        stages = max(1, min(x.recipe.stages, trips))
        while stages > 1 and stages * trip_in + fixed_in > cap:
            stages -= 1
    else:
        stages = max(1, min(int(stages), trips))
        if stages * trip_in + fixed_in > cap:
            raise MappingError(
                f"{stages} chunk stages of {name} overflow shared memory "
                f"({stages} x {trip_in:,.0f} B streamed + {fixed_in:,.0f} B held)",
                path=where,
                expected=f"<= {cap:,} B per CTA on {hw.name}",
                got=f"{stages * trip_in + fixed_in:,.0f} B",
            )
    smem = int(stages * trip_in + fixed_in)
    chunk = int(sizes[cr.key_pos])
    tiling = make_tiling(
        hw, chunk, chunk, x.recipe.warps, regs, smem, x.recipe.path, None, int(trip_in)
    )
    # DRAM: the value-feature blocks of a head read the tensors without value features (Q, K)
    # in near lock-step (the reuse rule of a head's K/V in FlashAttention).
    fv = set(cr.value_features)

    def no_value(t: str) -> bool:
        return not (set(_canon_ranks(cascade, cascade.tensors[t].ranks)) & fv)

    shared_in = sum(_tensor_total(cascade, t, sizes) for t in reads if no_value(t))
    own_in = sum(_tensor_total(cascade, t, sizes) for t in reads if not no_value(t))
    groups = max(1, ctas // x.nv)
    factor = kv_reread_factor(x.model, x.nv, hw.sms * tiling.ctas_per_sm, shared_in / groups)
    eff = float(getattr(x.model.cal, FAMILIES[x.recipe.family][0]))
    cost = trip_kernel_cost(
        name=name,
        category="attn_fwd",
        model=x.model,
        tiling=tiling,
        eff=eff,
        dtype=x.dtype,
        trips=np.full(ctas, trips, dtype=np.int64),
        mma_flops_per_trip=2.0 * mac,
        alu_per_trip=alu,
        sfu_per_trip=sfu,
        bytes_per_trip=trip_in + trip_out,
        fixed_bytes=fixed_in,
        dram_read=shared_in * factor + own_in,
        dram_write=sum(_tensor_total(cascade, t, sizes) for t in writes),
        meta={
            "family": x.recipe.family,
            "qk_reread": factor,
            "value_blocks": x.nv,
            "stages": stages,
        },
    )
    return cost, tiling, ops


def state_path(cascade: Cascade, cr: ChunkRoles) -> list[str]:
    """The state Einsum and the Einsums only it needs (``K^T V`` of a chunk, key decay)."""
    made = {e.name: e for e in cascade.einsums}
    need, todo = {cr.state}, [cr.state]
    while todo:
        for ref in made[todo.pop()].inputs:
            if ref.name in made and ref.name not in need:
                need.add(ref.name)
                todo.append(ref.name)
    return [e.name for e in cascade.einsums if e.name in need]


def _output_path(cascade: Cascade, cr: ChunkRoles, rest: list[str]) -> list[str]:
    """``rest`` plus what it needs from the state path other than the state itself (gate
    prefixes, decayed queries): recomputed by the output kernel, not read from HBM."""
    made = {e.name: e for e in cascade.einsums}
    need, todo = set(rest), list(rest)
    while todo:
        for ref in made[todo.pop()].inputs:
            if ref.name in made and ref.name not in need and ref.name != cr.state:
                need.add(ref.name)
                todo.append(ref.name)
    return [e.name for e in cascade.einsums if e.name in need]


def chunk_kernel(
    workload: WorkloadLike,
    model: GpuModel,
    recipe: ChunkRecipe = RECIPE,
    dtype: str | None = None,
    *,
    materialize: bool = False,
    stages: Sequence[int] | None = None,
) -> ChunkKernel:
    """The kernels of ``recipe`` for ``workload``'s chunked cascade.

    Fused (default, Lightning Attention-2): one kernel, ``batch x heads x value blocks``
    CTAs that walk all chunks with the state on chip. ``materialize`` (the materialized form,
    FLA ``chunk``): a state kernel walks the chunks as above running only the state path
    and writes the state before every chunk to HBM (the cascade's state tensor, at its
    dtype); an output kernel then runs every other Einsum with one CTA per chunk and value
    block, reading its chunk's state (parallel along the sequence). ``stages``: each
    kernel's chunk stages as a mapping's groups name them (checked against shared memory);
    None: the recipe's, as many as fit.
    """
    cascade = workload.cascade
    cr = chunk_roles(cascade)
    num = numeric_params(workload.params)
    sizes = cascade.rank_sizes(num)
    counts = count(cascade, num)
    dtype = dtype or dtype_of(workload)  # type: ignore[arg-type]  # it reads .params only
    vb = recipe.value_block
    nv = _value_blocks(cr, sizes, vb)
    x = _Ctx(cascade, cr, counts, sizes, model, recipe, dtype, nv)
    ctas = math.prod(int(sizes[r]) for r in cr.per_cta) * nv
    chunks = int(sizes[cr.key_chunk])
    made = {e.name: e for e in cascade.einsums}
    inputs = [t for t in cascade.tensors if t not in made]

    def reads_of(names: list[str]) -> list[str]:
        used = {ref.name for n in names for ref in made[n].inputs}
        return [t for t in inputs if t in used]

    names = list(made)
    st = list(stages) if stages is not None else [None, None]
    if not materialize:
        cost, tiling, ops = _walk_kernel(
            x, recipe.kernel, names, inputs, list(cascade.outputs), ctas, chunks, st[0],
            "groups[0].depth",
        )  # fmt: skip
        costs = [cost]
    else:
        state = state_path(cascade, cr)
        rest = _output_path(cascade, cr, [n for n in names if n not in state])
        k1, _, _ = _walk_kernel(
            x, f"{recipe.kernel}_state", state, reads_of(state), [cr.state], ctas, chunks,
            st[0], "groups[0].depth",
        )  # fmt: skip
        cost, tiling, ops = _walk_kernel(
            x,
            f"{recipe.kernel}_output",
            rest,
            [*reads_of(rest), cr.state],
            list(cascade.outputs),
            ctas * chunks,
            1,
            st[1],
            "groups[1].depth",
        )
        costs = [k1, cost]
    d = math.prod(int(sizes[r]) for r in cr.features) or 1
    vbe = min(vb, math.prod(int(sizes[r]) for r in cr.value_features) or 1)
    return ChunkKernel(costs, cr, tiling, counts, ops, ctas, chunks, nv, d, vbe, materialize)


def chunked_plan(
    workload: Workload,
    arch: Architecture,
    knobs: Mapping[str, object],
    recipe: ChunkRecipe = RECIPE,
) -> Plan:
    """Plan of the chunked kernel(s), carrying its mapping; useful ops = :func:`workloads.count`.

    Knobs: ``value_block`` (value features per CTA), ``materialize`` (0/1: the two-kernel
    form with the per-chunk states in HBM, see :func:`chunk_kernel`), ``staged`` (0/1: the
    GLA paper's released code, one launch per stage, see :mod:`mappings._gpu.linear_staged`).
    """
    from .linear_mapping import chunk_mapping

    check_knobs(knobs, ("value_block", "materialize", "staged"), recipe.dataflow)
    if "value_block" in knobs:
        vb = int(knobs["value_block"])  # type: ignore[call-overload]  # knob: user value, int() checks it
        if vb < 1:
            raise MappingError(
                "value_block must be positive", path="knobs.value_block", expected=">= 1", got=vb
            )
        recipe = replace(recipe, value_block=vb)
    mat = str(knobs.get("materialize", "0")).lower() in ("1", "true", "yes")
    staged = str(knobs.get("staged", "0")).lower() in ("1", "true", "yes")
    if staged and mat:
        raise MappingError(
            "staged and materialize are two forms; pick one",
            path="knobs",
            expected="staged=1 or materialize=1",
            got=dict(knobs),
        )
    form = "staged" if staged else "materialized" if mat else "fused"
    plan = chunk_plan(workload, arch, recipe, form=form)
    used = plan.meta.get("stages")
    mapping = chunk_mapping(workload, arch, recipe, form=form, stages=used)  # type: ignore[arg-type]  # list[int] or None
    return replace(plan, mapping=mapping)


def chunk_plan(
    workload: Workload,
    arch: Architecture,
    recipe: ChunkRecipe = RECIPE,
    *,
    form: str = "fused",
    stages: Sequence[int] | None = None,
) -> Plan:
    """Plan of one form (``fused``, ``materialized``, ``staged``) of the chunked kernels, no
    mapping attached; ``stages``: each kernel's chunk stages (None: the recipe's, as many as
    fit; ``meta["stages"]`` says which ran)."""
    model = model_for(arch)
    cascade = workload.cascade
    if form == "staged":
        return _staged_plan(workload, arch, model, recipe)
    mat = form == "materialized"
    k = chunk_kernel(workload, model, recipe, materialize=mat, stages=stages)
    names = [e.name for e in cascade.einsums]
    elt = dtype_bytes(dtype_of(workload))
    d, vb = k.features, k.value_block
    where = (
        f"states of every chunk in HBM ({cascade.tensors[k.roles.state].dtype_bits}-bit)"
        if mat
        else f"state {d}x{vb} fp32 ({d * vb * 4} B) in registers"
    )
    passes = PassInfo(
        passes=1,
        buffer_bytes=float(k.tiling.smem_bytes),
        buffer_formula=(
            f"stages x chunk inputs = {k.tiling.smem_bytes} B per CTA; {where} ({elt} B inputs)"
        ),
        reason="inter-chunk state carried across chunks"
        + (" through HBM (materialized)" if mat else " on chip"),
    )
    notes = (
        f"{recipe.dataflow}: {k.ctas} CTAs ({k.value_blocks} value blocks of {vb}) x "
        f"{k.chunks} chunks of {k.tiling.block_m}; state {k.roles.state} "
        + ("materialized: state kernel + one output CTA per chunk" if mat else "on chip")
        + f"; {k.tiling.ctas_per_sm} CTA/SM, {k.tiling.path}"
    )
    return _finish(
        recipe.dataflow,
        workload,
        arch,
        model,
        list(k.costs),
        einsum_ops(k.counts, names),
        passes=passes,
        notes=notes,
        extra_meta={
            **_roles_meta(k.roles),
            "trip_ops": dict(k.trip_ops),
            "value_blocks": k.value_blocks,
            "chunks": k.chunks,
            "ctas": k.ctas,
            "materialized": mat,
            "staged": False,
            "stages": [int(c.meta["stages"]) for c in k.costs],  # type: ignore[call-overload]  # set by _walk_kernel
        },
        gpu_plan=gpu_plan,
    )


def _roles_meta(cr: ChunkRoles) -> dict[str, object]:
    return {
        "chunk_roles": {
            "query_chunk": cr.query_chunk,
            "key_chunk": cr.key_chunk,
            "state": cr.state,
            "per_cta": list(cr.per_cta),
            "value_features": list(cr.value_features),
        },
        "roles": cr.attention.describe(),
    }


def _staged_plan(
    workload: Workload, arch: Architecture, model: GpuModel, recipe: ChunkRecipe
) -> Plan:
    """Plan of the staged form (:mod:`mappings._gpu.linear_staged`)."""
    cascade = workload.cascade
    cr = chunk_roles(cascade)
    num = numeric_params(workload.params)
    sizes = cascade.rank_sizes(num)
    counts = count(cascade, num)
    costs = staged_costs(cascade, cr, counts, sizes, model, dtype_of(workload))
    passes = PassInfo(
        passes=1,
        buffer_bytes=0.0,
        buffer_formula="no buffer carried between launches; states of every chunk in HBM "
        f"({cascade.tensors[cr.state].dtype_bits}-bit)",
        reason="inter-chunk state carried across chunks through HBM (staged)",
    )
    notes = (
        f"{recipe.dataflow} staged (the GLA paper's released code: {len(costs)} launches, "
        "every intermediate in HBM): " + ", ".join(c.name for c in costs)
    )
    return _finish(
        recipe.dataflow,
        workload,
        arch,
        model,
        costs,
        einsum_ops(counts, [e.name for e in cascade.einsums]),
        passes=passes,
        notes=notes,
        extra_meta={
            **_roles_meta(cr),
            "chunks": int(sizes[cr.key_chunk]),
            "ctas": max(c.ctas for c in costs),
            "materialized": False,
            "staged": True,
        },
        gpu_plan=gpu_plan,
    )


@register_dataflow("linear_chunked")
def linear_chunked(workload: Workload, arch: Architecture, knobs: Mapping[str, object]) -> Plan:
    """Chunked causal linear attention (Lightning Attention-2 / GLA fused chunk kernel; FLA's
    materialized and the GLA paper code's staged forms by knob)."""
    return chunked_plan(workload, arch, knobs)
