"""Staged form of ``linear_chunked``: the GLA paper's released implementation, one launch per
stage with every intermediate through HBM.

The GLA paper's timing claim (Yang et al., arXiv 2312.06635 v1-v3, abstract: "our Triton-based
implementation performs comparably to CUDA-optimized FlashAttention-2 under the regular 2048
training length setting, while outperforming FlashAttention-2 when training on longer sequences
beyond 4096") was made with the code released beside it, ``berlino/gated_linear_attention``
at commit ``442e096`` ("gla v1", 2023-12-12: ``gla.py``, ``kernels/``). Its forward
(``GatedLinearAttention.gated_linear_attention``) runs, in order:

1. ``rearrange(.., 'b (n c) (h d) -> b h n c d').contiguous()`` of ``q``, ``k``, ``v`` and
   ``gk``: one copy of each input into the chunked layout its kernels index;
2. ``_fwd_preprocess_cumsum_gk`` (Triton, grid ``B*H x chunks``): the gate's cumulative sum
   within each chunk, written out with ``q * exp(cumsum)``, ``k * exp(last - cumsum)`` and
   ``exp(last)``;
3. ``reduce_key^T @ reduce_value`` (PyTorch ``matmul``: a cuBLAS batched GEMM per chunk): the
   chunk's ``K^T V`` contribution, written to HBM;
4. ``_fwd_recurrence`` (Triton, grid ``B*H x Dk/32 x Dv/32``, ``BLOCK_MODEL = 32``): the state
   scan over chunks, reading every chunk's contribution and writing every chunk's state;
5. ``q_exp @ memory_cache`` (batched GEMM): the inter-chunk output;
6. ``_fwd_kernel_compute_A`` (``FlashGRet``, Triton, grid ``chunks x B*H x ceil(Dk/128)``,
   8 warps at a 128-feature block): the intra-chunk scores by *secondary chunking* in 16-row
   sub-chunks: off-diagonal 16x16 sub-blocks with ``tl.dot`` on the tensor cores (bf16), the
   diagonal sub-blocks with ``tl.dot(.., allow_tf32=False)`` on fp32 operands, which runs on
   the FP32 pipes, not the tensor cores; the gate exponentials are recomputed for every
   sub-block pair;
7. ``A.sum(0).to(q.dtype)`` (the feature-block partial sums) and ``A.masked_fill_(mask, 0)``
   (``intra_chunk_contribution/fn.py``): two passes over the score tensor; without gates
   (``gk=None``) the scores are one batched GEMM ``q @ k^T`` and only the mask pass follows;
8. ``A.to(v) @ v`` (batched GEMM): the intra-chunk output;
9. ``o1 + o2``: the two outputs added.

Everything here is read from the cascade (:func:`mappings._gpu.linear.chunk_roles`): stage 3, 5
and 8 are the cascade's contractions other than the score (batched GEMMs whose batch, M, N and K
ranks come from the Einsum's operands), stage 4 its inter-chunk state, stage 6 its score, stage 2
the gate Einsums the contractions and the state read, stage 9 the Einsums after the last
contraction; the bytes between stages are the cascade's tensors at their dtypes. The recipe
(:class:`StagedRecipe`) holds the code's launch facts above, each with where it is written.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

import numpy as np

from archsim.gpu import FAMILIES, GpuModel, KernelCost, gemm_costs, streaming_cost
from archsim.gpu.attention import trip_kernel_cost
from archsim.gpu.heuristics import make_tiling
from workloads import Cascade, CascadeCounts, Einsum

from ._spine import SFU_OPS, _canon_ranks

if TYPE_CHECKING:
    from .linear import ChunkRoles

__all__ = ["StagedRecipe", "STAGED", "staged_costs"]


@dataclass(frozen=True)
class StagedRecipe:
    """Launch facts of the GLA paper's released forward (``berlino/gated_linear_attention``
    at ``442e096``), not cost formulas.

    Attributes
    ----------
    kernel
        Name prefix of the kernels.
    relayout_inputs
        The inputs are copied into the chunked layout first (``gla.py``: ``rearrange(..)
        .contiguous()`` of q, k, v, gk).
    sub_chunk
        Rows of one secondary-chunking sub-block (``_fwd_kernel_compute_A`` walks 16-row
        blocks: ``tl.arange(0, 16)``).
    feature_block
        Key features per score CTA (``BLOCK_DMODEL_QK = min(Dk, 128)``); the partial scores
        of the feature blocks are summed by ``A.sum(0)``.
    score_warps
        Warps per score CTA (``num_warps=8 if BLOCK_DMODEL_QK == 128 else 4``).
    score_path
        Tensor-core path of the off-diagonal sub-blocks: ``mma_sync`` (the 16-row ``tl.dot``
        blocks are below the 64-row warpgroup tile of ``wgmma``, so Triton emits ``mma``).
    scan_block
        State rows and columns per scan CTA (``BLOCK_MODEL = 32`` in
        ``chunk_scan_triton_only_gk.py``).
    family
        Calibrated efficiency family of the Triton kernels (``flex``, as in
        :class:`mappings._gpu.linear.ChunkRecipe`).
    """

    kernel: str = "gla_v1"
    relayout_inputs: bool = True
    sub_chunk: int = 16
    feature_block: int = 128
    score_warps: int = 8
    score_path: str = "mma_sync"
    scan_block: int = 32
    family: str = "flex"


STAGED = StagedRecipe()


def _bytes(cascade: Cascade, name: str, sizes: Mapping[str, int]) -> float:
    spec = cascade.tensors[name]
    elems = math.prod(int(sizes.get(r, 1)) for r in _canon_ranks(cascade, spec.ranks))
    return float(elems) * spec.dtype_bits / 8.0


def _gemm_shape(e: Einsum, sizes: Mapping[str, int]) -> tuple[int, int, int, int]:
    """(batch, M, N, K) of a two-operand contraction: batch ranks in both operands and the
    output, M ranks of the first operand only, N of the second only, K the reduced ones."""
    if len(e.inputs) != 2:
        raise ValueError(f"{e.name}: a batched GEMM needs two operands, got {len(e.inputs)}")
    a, b = (set(r.ranks) for r in e.inputs)
    out, red = set(e.output.ranks), set(e.reduce_ranks)

    def ext(ranks: set[str]) -> int:
        return math.prod(int(sizes[r]) for r in ranks) if ranks else 1

    return ext(a & b & out), ext((a & out) - b), ext((b & out) - a), ext(red)


def _ops_of(counts: CascadeCounts, names: list[str]) -> tuple[float, float]:
    """FP32 ALU ops and SFU ops of Einsums ``names`` (counted, all points)."""
    alu = sfu = 0.0
    for n in names:
        for k, v in counts.einsum(n).ops.items():
            if k in SFU_OPS:
                sfu += float(v)
            else:
                alu += float(v)
    return alu, sfu


def _score_kernel(
    name: str,
    model: GpuModel,
    recipe: StagedRecipe,
    dtype: str,
    *,
    ctas_outer: int,
    chunk: int,
    features: int,
    reads: float,
    writes: float,
) -> KernelCost:
    """``_fwd_kernel_compute_A``: per CTA (one chunk of one head, one feature block), the
    16-row query sub-blocks are the trips; a trip's work is averaged over the sub-blocks."""
    hw = model.hw
    sub = recipe.sub_chunk
    fb = min(features, recipe.feature_block)
    nf = -(-features // fb)
    ns = -(-chunk // sub)
    off_pairs = ns * (ns - 1) // 2
    # tensor cores: off-diagonal sub-blocks (sub x sub x fb each)
    mma = 2.0 * sub * sub * fb * off_pairs / ns
    # FP32 pipes: the diagonal sub-blocks' fp32 dot (one FMA per MAC), the gating multiplies
    # of q and k per block, and the causal select of the diagonal block
    fma_diag = float(sub * sub * fb)
    # gate exponentials (SFU), each with its subtraction and its multiply (FP32): the q gates
    # of every query block in the off-diagonal loop (ns - 1), the k gates of every pair, and
    # the q and k gates of every diagonal block (2 ns)
    gated = float(sub * fb) * ((ns - 1) + off_pairs + 2 * ns) / ns
    select = float(sub * sub)
    sfu = gated
    mul = 2.0 * gated
    ctas = ctas_outer * nf
    chunk_in = 3.0 * chunk * fb * 2.0  # q, k, gate cumsum of one chunk (16-bit), L2-resident
    tiling = make_tiling(
        hw, sub, sub, recipe.score_warps, 255, int(chunk_in), recipe.score_path, None, int(chunk_in)
    )
    eff = float(getattr(model.cal, FAMILIES[recipe.family][0]))
    return trip_kernel_cost(
        name=name,
        category="attn_fwd",
        model=model,
        tiling=tiling,
        eff=eff,
        dtype=dtype,
        trips=np.full(ctas, ns, dtype=np.int64),
        mma_flops_per_trip=mma,
        alu_per_trip=fma_diag + mul + select,
        sfu_per_trip=sfu,
        bytes_per_trip=chunk_in / ns,
        fixed_bytes=float(chunk * chunk * 2),
        dram_read=reads,
        dram_write=writes,
        meta={
            "family": recipe.family,
            "sub_chunk": sub,
            "feature_blocks": nf,
            "fp32_diagonal_macs_per_cta": fma_diag * ns,
            "tensor_macs_per_cta": mma * ns / 2.0,
        },
    )


def staged_costs(
    cascade: Cascade,
    roles: ChunkRoles,
    counts: CascadeCounts,
    sizes: Mapping[str, int],
    model: GpuModel,
    dtype: str,
    recipe: StagedRecipe = STAGED,
) -> list[KernelCost]:
    """The kernels of the staged form for a chunked cascade, in launch order."""
    made = {e.name: e for e in cascade.einsums}
    inputs = [t for t in cascade.tensors if t not in made]
    score, state = roles.attention.score, roles.state
    contractions = [
        n for n, e in made.items() if counts.einsum(n).macs > 0 and n not in (score, state)
    ]
    last = max(list(made).index(n) for n in (*contractions, state))
    after = [n for n in list(made)[last + 1 :] if n not in contractions]
    # gate Einsums: what the contractions and the state read, computed before them
    need: set[str] = set()
    todo = [ref.name for n in (*contractions, state) for ref in made[n].inputs]
    while todo:
        t = todo.pop()
        if t in made and t not in need and t not in (*contractions, state, score):
            need.add(t)
            todo += [ref.name for ref in made[t].inputs]
    gates = [n for n in made if n in need]
    seq = {roles.query_parent, roles.key_parent, roles.query_chunk, roles.key_chunk}
    seq |= {roles.query_pos, roles.key_pos}
    costs: list[KernelCost] = []
    if recipe.relayout_inputs:
        moved = sum(
            _bytes(cascade, t, sizes)
            for t in inputs
            if set(_canon_ranks(cascade, cascade.tensors[t].ranks)) & seq
            and len(cascade.tensors[t].ranks) > 1
        )
        costs.append(
            streaming_cost(
                model,
                name=f"{recipe.kernel}_relayout_copy",
                category="elementwise",
                read_bytes=moved,
                write_bytes=moved,
                alu_ops=0.0,
            )
        )
    # the tensors each later stage reads that the gate stage makes
    gate_out = [
        t
        for t in gates
        if any(ref.name == t for n in made if n not in gates for ref in made[n].inputs)
    ]
    gate_in = sorted(
        {ref.name for n in gates for ref in made[n].inputs if ref.name in inputs},
        key=inputs.index,
    )
    alu, sfu = _ops_of(counts, gates)
    per_cta = math.prod(int(sizes[r]) for r in roles.per_cta)
    chunks = int(sizes[roles.key_chunk])
    if gates:  # an ungated cascade has no gate stage (the code's gk=None path)
        costs.append(
            streaming_cost(
                model,
                name=f"{recipe.kernel}_preprocess_cumsum",
                category="elementwise",
                read_bytes=sum(_bytes(cascade, t, sizes) for t in gate_in),
                write_bytes=sum(_bytes(cascade, t, sizes) for t in gate_out),
                alu_ops=alu + sfu * model.hw.fp32_ops_per_clk / model.hw.sfu_ops_per_clk,
                ctas=per_cta * chunks,
            )
        )
    elt_out = {n: cascade.tensors[n].dtype_bits // 8 for n in made}

    def gemm(n: str) -> list[KernelCost]:
        bt, m, nn, k = _gemm_shape(made[n], sizes)
        out = gemm_costs(m, nn, k, model, dtype=dtype, out_elt=elt_out[n], batch=bt)
        return [_renamed(c, f"{recipe.kernel}_bmm_{n}") for c in out]

    # state path: its contractions, then the scan
    state_need = {ref.name for ref in made[state].inputs}
    for n in contractions:
        if n in state_need:
            costs += gemm(n)
    st_in = [ref.name for ref in made[state].inputs if ref.name != state]
    alu, sfu = _ops_of(counts, [state])
    vb = recipe.scan_block
    tiles = math.prod(-(-int(sizes[r]) // vb) for r in (*roles.features, *roles.value_features))
    costs.append(
        streaming_cost(
            model,
            name=f"{recipe.kernel}_chunk_scan",
            category="elementwise",
            read_bytes=sum(_bytes(cascade, t, sizes) for t in st_in),
            write_bytes=_bytes(cascade, state, sizes),
            alu_ops=alu + sfu,
            ctas=per_cta * tiles,
        )
    )
    for n in contractions:
        if n not in state_need and state in {ref.name for ref in made[n].inputs}:
            costs += gemm(n)
    # the score kernel, its post passes, the contractions that read it
    d = math.prod(int(sizes[r]) for r in roles.features) or 1
    # the score kernel forms its gated operands itself from what they are made of
    s_in = sorted(
        {
            t
            for g in made[score].inputs
            for t in ([ref.name for ref in made[g.name].inputs] if g.name in made else [g.name])
            if t in inputs or t in gate_out
        },
        key=list(cascade.tensors).index,
    )
    a_bytes = _bytes(cascade, score, sizes)
    gated = any(g.name in made for g in made[score].inputs)
    nf = -(-d // min(d, recipe.feature_block)) if gated else 1
    if gated:  # FlashGRet: secondary chunking, then A.sum(0).to(dtype) over feature blocks
        costs.append(
            _score_kernel(
                f"{recipe.kernel}_compute_A",
                model,
                recipe,
                dtype,
                ctas_outer=per_cta * chunks,
                chunk=int(sizes[roles.key_pos]),
                features=d,
                reads=sum(_bytes(cascade, t, sizes) for t in s_in),
                writes=a_bytes * nf,
            )
        )
        passes = ["feature_sum", "mask"]
    else:  # the code's gk=None path: A = q @ k^T, a batched GEMM
        costs += gemm(score)
        passes = ["mask"]
    for p in passes:
        costs.append(
            streaming_cost(
                model,
                name=f"{recipe.kernel}_score_{p}",
                category="elementwise",
                read_bytes=a_bytes * (nf if p == "feature_sum" else 1),
                write_bytes=a_bytes,
                alu_ops=float(counts.einsum(score).points),
            )
        )
    for n in contractions:
        if score in {ref.name for ref in made[n].inputs}:
            costs += gemm(n)
    for n in after:
        alu, sfu = _ops_of(counts, [n])
        costs.append(
            streaming_cost(
                model,
                name=f"{recipe.kernel}_{n}",
                category="elementwise",
                read_bytes=sum(_bytes(cascade, ref.name, sizes) for ref in made[n].inputs),
                write_bytes=_bytes(cascade, n, sizes),
                alu_ops=alu + sfu,
            )
        )
    return costs


def _renamed(c: KernelCost, name: str) -> KernelCost:
    return replace(c, name=name if c.category == "gemm" else f"{name}_{c.name}")
