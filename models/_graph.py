"""Layer graphs: a model's ops for one step (prefill or decode), split over ``tp`` devices.

A :class:`ModelGraph` is a list of :class:`Stage` s (``embed``, ``layer`` (or ``dense layer``
and ``moe layer``), ``head``), each a sequence of :class:`~models._ops.Op` s run ``repeat``
times. Every op is what *one* device runs; all devices run the same ops (tensor parallelism
is symmetric).

Phases
------
- ``prefill``: ``batch`` prompts of ``seq`` tokens (``T = batch * seq`` tokens; attention
  causal for a decoder, bidirectional for an encoder). The LM head runs on the last token
  of each prompt only (what a serving engine samples from).
- ``decode``: one new token for each of ``batch`` sequences whose cache holds ``seq``
  tokens (``T = batch``; attention reads ``seq`` keys, the new one included).

Tensor parallelism (Megatron-LM, Shoeybi et al., arXiv 1909.08053, Sec. 3)
-------------------------------------------------------------------------
Column-parallel QKV and FFN up/gate (each device owns ``heads / tp`` heads and
``ffn / tp`` hidden columns), row-parallel O and FFN down, so each layer needs one
all-reduce of the ``T x d_model`` activations after attention and one after the FFN. KV
heads are split when ``kv_heads >= tp`` and replicated otherwise (each device keeps the one
KV head its query heads use, as vLLM does). Embedding is vocab-parallel (one all-reduce) and
the LM head column-parallel (one all-gather of the logits). MLA (DeepSeek): the latent
down-projections ``q_a``/``kv_a`` and the router are replicated, ``q_b``, the attention heads
and ``o`` are split. Without ``ep``, MoE experts are split like a dense FFN (each expert's
hidden width over the devices); with ``ep`` they are whole, spread over ``tp x ep`` devices.

Paged KV cache (decode; Kwon et al., "Efficient Memory Management for Large Language Model
Serving with PagedAttention", SOSP'23)
--------------------------------------------------------------------------------------------
With ``page = P`` each sequence's cache is ``ceil(S / P)`` pages reached through a block
table. The attention reads whole pages (the last, partial page too: ``Skv = ceil(S/P) P``
keys are read, the padding masked), plus one 4-byte block-table entry per page per
sequence, read from DRAM once per sequence inside the attention kernel (a ``fused_read``
row). On a GPU the kernel is vLLM's: PagedAttention v1 (one CTA per sequence and head, the
whole context: ``split_kv`` with ``splits = 1``) or v2 (partitions of 512 tokens, one CTA
each, then a reduce kernel: ``splits = ceil(S / 512)``; on other architectures the row is
``paged_attn``, the ``auto`` dataflow over the padded keys), chosen as vLLM's
``vllm/attention/ops/paged_attn.py`` does: v1 when ``max_seq_len <= 8192`` and (one
partition or ``num_seqs * num_heads > 512``). The contiguous baseline (no page) is
flash-decoding with its own split heuristic. Not modelled: the per-page address arithmetic
of the kernel (vLLM's paper, Fig. 18a, measures 20-26% kernel overhead over
FasterTransformer's contiguous kernel) and DRAM row locality across scattered pages.

Sequence/context and expert parallelism
---------------------------------------
``cp`` (with ``tp``: ``tp * cp`` devices) splits the tokens over ``cp`` groups
(:mod:`models._parallel`): prefill ring attention or a K/V all-gather; decode a cache
sharded by position with an all-gather of the partial outputs. ``ep`` spreads whole routed
experts over ``ep`` devices with attention data-parallel (``B / ep`` sequences per device)
and an all-to-all dispatch and combine around the experts.

Mixture of experts
------------------
With ``E`` routed experts, ``k`` per token and ``T`` tokens routed independently and
uniformly (the load-balanced regime the routers are trained for), the expected number of
distinct experts a step touches is ``E (1 - (1 - k/E)^T)``; a step runs ``G = round(that)``
(at least ``k``) experts of ``ceil(T k / G)`` tokens each as one grouped GEMM (``G`` GEMMs
in one kernel, as the fused MoE kernels of serving engines do).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import cast

from models._ops import Op
from models._spec import ModelError, ModelSpec

__all__ = ["Stage", "ModelGraph", "build_graph", "PHASES"]

PHASES = ("prefill", "decode")

#: PagedAttention v2's partition (vLLM ``_PARTITION_SIZE``), tokens.
PAGED_PARTITION = 512


@dataclass(frozen=True)
class Stage:
    """Ops run ``repeat`` times in a row (``repeat`` = layers for a layer stage)."""

    name: str
    repeat: int
    ops: tuple[Op, ...]


@dataclass(frozen=True)
class ModelGraph:
    """One step of a model on ``tp`` devices.

    Attributes
    ----------
    model, phase, batch, seq, tp
        What was built: ``seq`` is the prompt length (prefill) or the cache length (decode).
    tokens
        Tokens the step processes, all devices (``batch * seq`` for prefill, ``batch`` for
        decode).
    stages
        The ops one device runs, in execution order.
    page
        Paged KV cache page size, tokens (0 = contiguous cache).
    cp, ep, cp_mode
        Context-parallel and expert-parallel degrees; ``ring`` or ``all_gather`` attention
        under prefill context parallelism.
    """

    model: ModelSpec
    phase: str
    batch: int
    seq: int
    tp: int
    tokens: int
    stages: tuple[Stage, ...]
    page: int = 0
    cp: int = 1
    ep: int = 1
    cp_mode: str = "ring"

    @property
    def devices(self) -> int:
        """Devices the step runs on (``tp * cp * ep``)."""
        return self.tp * self.cp * self.ep

    def ops(self) -> list[tuple[Stage, Op]]:
        """Every (stage, op) pair, in order (each stage's ops once)."""
        return [(s, op) for s in self.stages for op in s.ops]


def _positive(field: str, v: object) -> int:
    if isinstance(v, bool) or not isinstance(v, int) or v < 1:
        raise ModelError("bad value", path=field, expected="a positive integer", got=v)
    return v


def _split(spec: ModelSpec, tp: int) -> tuple[int, int]:
    """Query heads and KV heads per device."""
    if spec.heads % tp:
        raise ModelError(
            "tensor parallelism must split the attention heads evenly",
            path="tp",
            expected=f"a divisor of heads = {spec.heads} ({spec.name})",
            got=tp,
        )
    kv = spec.kv_heads
    if kv % tp and tp % kv:
        raise ModelError(
            "tensor parallelism must split or replicate the KV heads evenly",
            path="tp",
            expected=f"a divisor or a multiple of kv_heads = {kv} ({spec.name})",
            got=tp,
        )
    for f in ("ffn_dim", "moe_ffn_dim"):
        width = getattr(spec, f)
        if width and width % tp:
            raise ModelError(
                "tensor parallelism must split the FFN width evenly",
                path="tp",
                expected=f"a divisor of {f} = {width} ({spec.name})",
                got=tp,
            )
    return spec.heads // tp, max(1, kv // tp)


def expected_experts(experts: int, active: int, tokens: int) -> float:
    """Distinct experts ``tokens`` independent, uniform top-``active`` routings touch."""
    return experts * (1.0 - (1.0 - active / experts) ** tokens)


def paged_version(seqs: int, heads: int, max_seq_len: int) -> int:
    """vLLM's PagedAttention v1/v2 choice (``vllm/attention/ops/paged_attn.py``): 1 when
    ``max_seq_len <= 8192`` and (one 512-token partition or ``seqs * heads > 512``), else 2."""
    parts = math.ceil(max_seq_len / PAGED_PARTITION)
    return 1 if max_seq_len <= 8192 and (parts == 1 or seqs * heads > 512) else 2


class _Builder:
    def __init__(
        self,
        spec: ModelSpec,
        phase: str,
        batch: int,
        seq: int,
        tp: int,
        page: int = 0,
        cp: int = 1,
        ep: int = 1,
        cp_mode: str = "ring",
    ) -> None:
        self.s = spec
        self.phase = phase
        self.batch = batch
        self.seq = seq
        self.tp = tp
        self.page = page
        self.cp = cp
        self.ep = ep
        self.cp_mode = cp_mode
        # per device: EP splits the sequences (attention data-parallel), prefill CP the tokens
        self.b_local = batch // ep
        self.T = self.b_local * (seq // cp if phase == "prefill" else 1)
        self.bits = spec.dtype_bits
        self.hq, self.hk = _split(spec, tp)

    # -- helpers ------------------------------------------------------------------------------
    def gemm(self, name: str, m: int, k: int, n: int) -> Op:
        return Op(name, "gemm", {"M": m, "K": k, "N": n, "dtype_bits": self.bits})

    def linear(self, name: str, m: int, k: int, n: int) -> list[Op]:
        """A GEMM of the blocks and, for a model with biases, its ``n`` bias elements read in
        the GEMM's epilogue (a ``fused_read``: no kernel of its own; with ``tp`` the
        column-parallel GEMMs' biases are split, the row-parallel ones' are ``d_model``)."""
        ops = [self.gemm(name, m, k, n)]
        if self.s.bias:
            nbytes = float(n * self.s.elt_bytes)
            read = {"bytes": nbytes, "special": "fused_read", "info": "in the GEMM epilogue"}
            ops.append(Op(f"{name}_bias", "bias", {}, **read))  # type: ignore[arg-type]  # by name
        return ops

    def norm(self, name: str, width: int, rows: int | None = None) -> Op:
        rows = self.T if rows is None else rows
        return Op(name, self.s.norm, {"T": rows, "Dm": width, "dtype_bits": self.bits})

    def rms(self, name: str, width: int, rows: int | None = None) -> Op:
        rows = self.T if rows is None else rows
        return Op(name, "rmsnorm", {"T": rows, "Dm": width, "dtype_bits": self.bits})

    def ew(self, name: str, workload: str, **shape: int) -> Op:
        return Op(name, workload, {**shape, "dtype_bits": self.bits})

    def all_reduce(self, name: str = "tp_all_reduce") -> list[Op]:
        if self.tp == 1:
            return []
        nbytes = self.T * self.s.d_model * self.s.elt_bytes
        return [Op(name, "", {}, collective="all_reduce", bytes=float(nbytes), steps=self.tp)]

    # -- attention ----------------------------------------------------------------------------
    def attention(self) -> list[Op]:
        return self._mla() if self.s.attention == "mla" else self._gqa()

    def _kv_read_len(self) -> int:
        """Keys one device's decode attention reads: its shard of the cache (``cp``), whole
        pages when the cache is paged."""
        keys = math.ceil(self.seq / self.cp)
        return math.ceil(keys / self.page) * self.page if self.page else keys

    def _block_table(self) -> list[Op]:
        if not self.page or self.phase != "decode":
            return []
        pages = math.ceil(self.seq / self.cp / self.page)
        nbytes = float(self.b_local * pages * 4)  # int32 entries, once per sequence
        info = "in the attention kernel"
        return [Op("block_table", "block_table", {}, bytes=nbytes, special="fused_read", info=info)]

    def _attn_core(self) -> list[Op]:
        s, b = self.s, self.b_local
        if self.phase == "decode":
            skv = self._kv_read_len()
            p = {"B": b, "H": self.hq, "Hkv": self.hk, "Skv": skv, "D": s.head_dim}
            p["Dv"] = s.v_head_dim
            name, knobs = "attention", cast("tuple[tuple[str, object], ...]", ())
            if self.page:  # vLLM decides on the context itself, not the padded pages
                ctx = math.ceil(self.seq / self.cp)
                v = paged_version(b, self.hq, ctx)
                splits = 1 if v == 1 else math.ceil(ctx / PAGED_PARTITION)
                name, knobs = f"paged_attn_v{v}", (("splits", splits),)
            op = Op(
                name,
                "decode",
                {**p, "dtype_bits": self.bits},
                gpu_dataflow="split_kv" if knobs else None,
                gpu_knobs=knobs,
            )
            return [*self._block_table(), op, *self._cp_decode_combine()]
        causal = s.family == "decoder"
        p = {"B": b, "H": self.hq, "Sq": self.seq, "Skv": self.seq, "D": s.head_dim}
        p.update({"Dv": s.v_head_dim, "causal": causal, "dtype_bits": self.bits})
        wl = "gqa" if self.hk < self.hq else "mha"
        if self.hk < self.hq:
            p["Hkv"] = self.hk
        if self.cp > 1:
            from models._parallel import cp_prefill_attention

            return cp_prefill_attention(self, wl, p)
        return [Op("attention", wl, p)]

    def _cp_decode_combine(self) -> list[Op]:
        """Decode under ``cp``: each device holds ``ceil(S / cp)`` positions of every
        sequence's cache; the partial outputs and log-sum-exps (fp32) are all-gathered and
        merged."""
        if self.cp == 1:
            return []
        nbytes = float(self.b_local * self.hq * (self.s.v_head_dim + 1) * 4 * self.cp)
        gather = {"collective": "all_gather", "bytes": nbytes, "steps": self.cp}
        return [Op("cp_partials_gather", "", {}, **gather)]  # type: ignore[arg-type]  # by name

    def _gqa(self) -> list[Op]:
        s, T = self.s, self.T
        qkv = (self.hq + self.hk) * s.head_dim + self.hk * s.v_head_dim
        ops = self.linear("qkv_proj", T, s.d_model, qkv)
        if s.rope:
            ops.append(self.ew("rope", "rope", T=T, H=self.hq + self.hk, D=s.head_dim))
        if s.family == "decoder":
            kv = self.hk * (s.head_dim + s.v_head_dim)
            ops.append(self.ew("kv_cache_write", "copy", T=T, C=kv))
        ops += self._attn_core()
        ops += self.linear("o_proj", T, self.hq * s.v_head_dim, s.d_model)
        return ops

    def _mla(self) -> list[Op]:
        s, T = self.s, self.T
        qk = s.nope_dim + s.rope_dim
        ops: list[Op] = []
        if s.q_lora_rank:
            ops.append(self.gemm("q_a_proj", T, s.d_model, s.q_lora_rank))
            ops.append(self.norm("q_a_norm", s.q_lora_rank))
            ops.append(self.gemm("q_b_proj", T, s.q_lora_rank, self.hq * qk))
        else:
            ops.append(self.gemm("q_proj", T, s.d_model, self.hq * qk))
        ops.append(self.gemm("kv_a_proj", T, s.d_model, s.kv_lora_rank + s.rope_dim))
        ops.append(self.norm("kv_a_norm", s.kv_lora_rank))
        ops.append(self.ew("rope", "rope", T=T, H=self.hq + 1, D=s.rope_dim))
        ops.append(self.ew("kv_cache_write", "copy", T=T, C=s.kv_lora_rank + s.rope_dim))
        p = {
            "B": self.b_local,
            "H": self.hq,
            "Sq": 1 if self.phase == "decode" else self.seq,
            "Skv": self._kv_read_len() if self.phase == "decode" else self.seq,
            "Dc": s.kv_lora_rank,
            "Dr": s.rope_dim,
            "Dn": s.nope_dim,
            "Dv": s.v_head_dim,
            "causal": self.phase == "prefill",
            "dtype_bits": self.bits,
        }
        if self.phase == "prefill" and self.cp > 1:
            from models._parallel import cp_prefill_attention

            ops += cp_prefill_attention(self, "mla", p)
        else:
            name = "paged_attn" if self.page and self.phase == "decode" else "attention"
            ops += [*self._block_table(), Op(name, "mla", p), *self._cp_decode_combine()]
        ops.append(self.gemm("o_proj", T, self.hq * s.v_head_dim, s.d_model))
        return ops

    # -- FFN ----------------------------------------------------------------------------------
    def ffn(self, width: int, prefix: str = "ffn") -> list[Op]:
        """Up (and gate), activation, down of one FFN ``width`` wide (before the TP split)."""
        T, f, d = self.T, width // self.tp, self.s.d_model
        if self.s.ffn == "swiglu":
            act = self.ew(f"{prefix}_act", "silu_mul", T=T, F=f)
            up = self.linear(f"{prefix}_gate_up", T, d, 2 * f)
        else:
            act = self.ew(f"{prefix}_act", "gelu", T=T, F=f)
            up = self.linear(f"{prefix}_up", T, d, f)
        return [*up, act, *self.linear(f"{prefix}_down", T, f, d)]

    def moe(self) -> list[Op]:
        s, T = self.s, self.T
        ops = [
            self.gemm("router", T, s.d_model, s.experts),
            self.ew("router_softmax", "softmax", R=T, N=s.experts),
        ]
        if s.shared_experts:
            ops += self.ffn(s.shared_experts * s.moe_ffn_dim, "shared_expert")
        if self.ep > 1:
            from models._parallel import ep_experts

            return ops + ep_experts(self)
        g = max(s.active_experts, round(expected_experts(s.experts, s.active_experts, T)))
        rows = math.ceil(T * s.active_experts / g)
        f, d = s.moe_ffn_dim // self.tp, s.d_model
        grouped = {"G": g, "M": rows, "dtype_bits": self.bits}
        ops += [
            Op("experts_gate_up", "grouped_gemm", {**grouped, "K": d, "N": 2 * f}),
            self.ew("experts_act", "silu_mul", T=g * rows, F=f),
            Op("experts_down", "grouped_gemm", {**grouped, "K": f, "N": d}),
        ]
        return ops

    # -- layers and the model -----------------------------------------------------------------
    def layer(self, moe: bool) -> tuple[Op, ...]:
        s, T = self.s, self.T
        ffn = self.moe() if moe else self.ffn(s.ffn_dim)
        res = self.ew("residual_add", "residual_add", T=T, Dm=s.d_model)
        if s.family == "encoder":  # post-LN (BERT): x = LN(x + attn(x)); x = LN(x + ffn(x))
            ops = [*self.attention(), *self.all_reduce(), res, self.norm("attn_norm", s.d_model)]
            ops += [*ffn, *self.all_reduce(), res, self.norm("ffn_norm", s.d_model)]
        else:  # pre-LN: x = x + attn(norm(x)); x = x + ffn(norm(x))
            ops = [self.norm("attn_norm", s.d_model), *self.attention(), *self.all_reduce(), res]
            ops += [self.norm("ffn_norm", s.d_model), *ffn, *self.all_reduce(), res]
        return tuple(ops)

    def dit_layer(self) -> tuple[Op, ...]:
        """A Wan2.1-style DiT block (see :mod:`models._spec`); heads split over ``tp``."""
        s, T, d = self.s, self.T, self.s.d_model
        ctx = self.batch * s.cross_attn_len
        hd = self.hq * s.head_dim  # per-device q/k/v width
        att = {"B": self.batch, "H": self.hq, "D": s.head_dim, "causal": False}
        att["dtype_bits"] = self.bits
        mod = self.ew("modulate", "modulate", T=T, Dm=d)
        gated = self.ew("gated_residual", "gated_add", T=T, Dm=d)
        return (
            self.norm("norm1", d),
            mod,
            self.gemm("qkv_proj", T, d, 3 * hd),
            self.rms("qk_norm", hd),
            self.rms("qk_norm", hd),
            self.ew("rope", "rope", T=T, H=2 * self.hq, D=s.head_dim),
            Op("self_attention", "mha", {**att, "Sq": self.seq, "Skv": self.seq}),
            self.gemm("o_proj", T, hd, d),
            *self.all_reduce(),
            gated,
            self.norm("norm3", d),
            self.gemm("cross_q_proj", T, d, hd),
            self.gemm("cross_kv_proj", ctx, d, 2 * hd),
            self.rms("cross_q_norm", hd),
            self.rms("cross_k_norm", hd, rows=ctx),
            Op("cross_attention", "mha", {**att, "Sq": self.seq, "Skv": s.cross_attn_len}),
            self.gemm("cross_o_proj", T, hd, d),
            *self.all_reduce(),
            self.ew("residual_add", "residual_add", T=T, Dm=d),
            self.norm("norm2", d),
            mod,
            *self.ffn(s.ffn_dim),
            *self.all_reduce(),
            gated,
        )

    def build_dit(self) -> ModelGraph:
        s, T, d, B = self.s, self.T, self.s.d_model, self.batch
        ctx = B * s.cross_attn_len
        embed = (
            self.gemm("patch_embed", T, s.patch_dim, d),
            self.gemm("text_embed_1", ctx, s.text_dim, d),
            self.ew("text_embed_act", "gelu", T=ctx, F=d),
            self.gemm("text_embed_2", ctx, d, d),
            self.gemm("time_projection", B, d, 6 * d),
        )
        head = (
            self.norm("head_norm", d),
            self.ew("head_modulate", "modulate", T=T, Dm=d),
            self.gemm("head_proj", T, d, s.patch_dim),
        )
        stages = (
            Stage("embed", 1, embed),
            Stage("layer", s.layers, self.dit_layer()),
            Stage("head", 1, head),
        )
        return ModelGraph(s, self.phase, B, self.seq, self.tp, T, stages)  # no cp/ep (checked)

    def build(self) -> ModelGraph:
        s, T = self.s, self.T
        if s.family == "dit":
            return self.build_dit()
        embed = [self.ew("embed_gather", "copy", T=T, C=s.d_model)]
        embed += self.all_reduce("embed_all_reduce")
        if not s.rope:
            embed.append(self.ew("pos_embed_add", "residual_add", T=T, Dm=s.d_model))
        stages = [Stage("embed", 1, tuple(embed))]
        if s.experts and s.dense_layers:
            stages.append(Stage("dense layer", s.dense_layers, self.layer(False)))
        if s.experts:
            stages.append(Stage("moe layer", s.moe_layers, self.layer(True)))
        else:
            stages.append(Stage("layer", s.layers, self.layer(False)))
        if s.family == "decoder":
            head = [self.norm("final_norm", s.d_model)]
            if s.vocab:
                vocab = math.ceil(s.vocab / self.tp)
                head.append(self.gemm("lm_head", self.b_local, s.d_model, vocab))
                if self.tp > 1:
                    nbytes = self.b_local * vocab * self.tp * s.elt_bytes
                    head.append(
                        Op(
                            "logits_all_gather",
                            "",
                            {},
                            collective="all_gather",
                            bytes=nbytes,
                            steps=self.tp,
                        )
                    )
            stages.append(Stage("head", 1, tuple(head)))
        tokens = self.batch * self.seq if self.phase == "prefill" else self.batch
        return ModelGraph(
            s,
            self.phase,
            self.batch,
            self.seq,
            self.tp,
            tokens,
            tuple(stages),
            page=self.page,
            cp=self.cp,
            ep=self.ep,
            cp_mode=self.cp_mode,
        )


def build_graph(
    spec: ModelSpec,
    *,
    phase: str,
    batch: int = 1,
    seq: int = 2048,
    tp: int = 1,
    page: int = 0,
    cp: int = 1,
    ep: int = 1,
    cp_mode: str = "ring",
) -> ModelGraph:
    """The op graph of one ``phase`` step of ``spec`` on ``tp * cp * ep`` devices (see the
    module doc). ``page``: paged KV cache page size in tokens (decode; 0 = contiguous).

    Raises
    ------
    ModelError
        Unknown phase, a decode step of an encoder, non-positive sizes, a ``tp`` that does
        not split the heads or the FFN evenly, a page size outside decode, ``cp`` that does
        not split the tokens, ``ep`` without experts or not splitting them and the batch.
    """
    if phase not in PHASES:
        raise ModelError(
            "unknown phase", path="phase", expected=f"one of {list(PHASES)}", got=phase
        )
    if phase == "decode" and spec.family != "decoder":
        what = "an encoder" if spec.family == "encoder" else "a diffusion transformer"
        raise ModelError(
            f"{what} has no decode step",
            path="phase",
            expected=f"prefill for {spec.name} ({what}: one forward pass over all tokens)",
            got=phase,
        )
    _positive("B", batch)
    _positive("S", seq)
    _positive("tp", tp)
    _positive("cp", cp)
    _positive("ep", ep)
    if isinstance(page, bool) or not isinstance(page, int) or page < 0:
        raise ModelError("bad value", path="page", expected="an integer >= 0 (tokens)", got=page)
    if page and phase != "decode":
        raise ModelError(
            "a paged KV cache is read by decode steps",
            path="page",
            expected="--phase decode (or no page size)",
            got=phase,
        )
    if cp > 1 or ep > 1:
        from models._parallel import check_parallel

        check_parallel(spec, phase=phase, batch=batch, seq=seq, tp=tp, cp=cp, ep=ep, mode=cp_mode)
    return _Builder(spec, phase, batch, seq, tp, page, cp, ep, cp_mode).build()
