"""What a model is made of: :class:`ModelSpec`, from a workloads preset or a HF ``config.json``.

A :class:`ModelSpec` holds the architecture fields a layer graph needs (widths, heads,
attention form, FFN form, norms, MoE and MLA dimensions). It is built either from a model
preset of :mod:`workloads.library` (``llama3-8b``, ``deepseek-v3`` ...) or from a Hugging
Face ``config.json`` (the ``model_type`` selects the reader; an unknown one is an error that
lists the known ones). Every field read from a file is checked: a missing or ill-typed field
raises :class:`ModelError` naming it.
"""

from __future__ import annotations

import builtins
import json
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import Any

from archsim.errors import SpecError

__all__ = [
    "ModelError",
    "ModelSpec",
    "GPT_PRESETS",
    "GPT2_VOCAB",
    "gpt_spec",
    "from_preset",
    "from_hf_config",
    "load_model",
    "list_model_names",
    "HF_MODEL_TYPES",
]


class ModelError(SpecError):
    """A model description (preset name, ``config.json``, phase, shapes) is bad."""


@dataclass(frozen=True)
class ModelSpec:
    """Architecture of one transformer model (all widths in elements).

    Attributes
    ----------
    name
        Preset name or the config file's stem.
    family
        ``decoder`` (causal LM: prefill and decode), ``encoder`` (bidirectional, one
        forward pass: prefill only) or ``dit`` (a diffusion transformer: one denoising
        step over all tokens, with adaLN modulation and cross-attention to a text context;
        prefill only).
    layers, d_model, heads, kv_heads, head_dim, v_head_dim
        Blocks, residual width, query heads, key/value heads, q/k head width, v head width.
    ffn_dim
        Dense FFN hidden width (the width of the dense layers of an MoE model).
    ffn
        ``swiglu`` (gate, up, down; SiLU) or ``gelu`` (up, down; GELU).
    norm
        ``rmsnorm`` or ``layernorm``.
    attention
        ``mha``, ``gqa`` or ``mla`` (DeepSeek latent attention).
    rope
        Rotary position embedding applied to q and k (False: learned absolute positions).
    vocab
        Vocabulary (LM head width); 0 = no LM head.
    q_lora_rank, kv_lora_rank, rope_dim, nope_dim
        MLA: latent query width (0 = a direct q projection), latent KV width, decoupled
        RoPE key width, non-RoPE q/k width.
    experts, active_experts, shared_experts, moe_ffn_dim, dense_layers
        MoE: routed experts, experts per token, always-on shared experts, expert hidden
        width, and how many leading layers are dense (DeepSeek ``first_k_dense_replace``).
    cross_attn_len, text_dim, patch_dim
        DiT: text-context tokens the cross-attention reads, the text encoder's width, and
        the elements of one patch (input channels x patch volume; also the head's output).
    tied_embeddings
        The LM head reuses the embedding matrix (counted once in :meth:`param_count`).
    bias
        Every linear layer of the blocks (QKV, O, FFN up and down) adds a bias vector, and the
        norms are LayerNorms with a gain and a bias (GPT-2 / GPT-3). The graph reads each bias
        in its GEMM's epilogue (a ``fused_read`` row, no kernel of its own).
    positions
        Rows of a learned absolute position table (GPT-2: 1024, GPT-3: 2048); 0 = none or
        not counted.
    dtype_bits
        Bits per weight/activation element (16 for bf16).
    source
        Where the numbers come from.
    """

    name: str
    family: str
    layers: int
    d_model: int
    heads: int
    kv_heads: int
    head_dim: int
    ffn_dim: int
    vocab: int
    v_head_dim: int = 0
    ffn: str = "swiglu"
    norm: str = "rmsnorm"
    attention: str = "gqa"
    rope: bool = True
    q_lora_rank: int = 0
    kv_lora_rank: int = 0
    rope_dim: int = 0
    nope_dim: int = 0
    experts: int = 0
    active_experts: int = 0
    shared_experts: int = 0
    moe_ffn_dim: int = 0
    dense_layers: int = 0
    cross_attn_len: int = 0
    text_dim: int = 0
    patch_dim: int = 0
    tied_embeddings: bool = False
    bias: bool = False
    positions: int = 0
    dtype_bits: int = 16
    source: str = ""

    def __post_init__(self) -> None:
        if self.v_head_dim == 0:
            object.__setattr__(self, "v_head_dim", self.head_dim)
        _check_spec(self)

    @property
    def elt_bytes(self) -> float:
        """Bytes per element."""
        return self.dtype_bits / 8

    @property
    def moe_layers(self) -> int:
        """Layers whose FFN is a mixture of experts."""
        return self.layers - self.dense_layers if self.experts else 0

    def kv_cache_bytes(self, batch: int, context: int) -> float:
        """KV-cache bytes of ``batch`` sequences of ``context`` tokens, all layers.

        GQA/MHA: ``2 * kv_heads * head_dim`` elements per token per layer (K and V; the V
        part uses ``v_head_dim``). MLA: the latent ``kv_lora_rank + rope_dim`` per token
        per layer (DeepSeek-V2 Sec. 2.1.2: only the compressed latent and the RoPE key are
        cached). 0 for an encoder or a DiT, which keep no cache between steps.
        """
        if self.family != "decoder":
            return 0.0
        if self.attention == "mla":
            per_token = self.kv_lora_rank + self.rope_dim
        else:
            per_token = self.kv_heads * (self.head_dim + self.v_head_dim)
        return float(self.layers * per_token * batch * context * self.elt_bytes)

    def param_count(self) -> float:
        """Weights (elements): embeddings and the LM head (once if tied or for an encoder,
        which has none) and the learned position table (``positions`` rows). A model with
        ``bias`` also counts its linear biases and LayerNorm gains and biases (so a GPT-2
        preset's count equals Hugging Face's ``num_parameters()``); other models count no
        norm or bias vectors (under 0.01% of their weights)."""
        d = self.d_model
        if self.attention == "mla":
            qk = self.nope_dim + self.rope_dim
            q = (
                d * self.q_lora_rank + self.q_lora_rank * self.heads * qk
                if self.q_lora_rank
                else d * self.heads * qk
            )
            kv = d * (self.kv_lora_rank + self.rope_dim)
            kv += self.kv_lora_rank * self.heads * (self.nope_dim + self.v_head_dim)
            attn = q + kv + self.heads * self.v_head_dim * d
        else:
            attn = d * (self.heads + self.kv_heads) * self.head_dim
            attn += d * self.kv_heads * self.v_head_dim + self.heads * self.v_head_dim * d
        if self.family == "dit":  # cross-attention (q, k, v, o) and 6 modulation vectors
            attn += 4 * d * d + 6 * d
        mats = 3 if self.ffn == "swiglu" else 2
        dense = mats * d * self.ffn_dim
        moe = (self.experts + self.shared_experts) * mats * d * self.moe_ffn_dim
        moe += d * self.experts  # router
        n_dense = self.layers - self.moe_layers
        body = self.layers * attn + n_dense * dense + self.moe_layers * moe
        if self.bias:  # dense MHA/GQA blocks only (checked)
            qkv = self.heads * self.head_dim + self.kv_heads * (self.head_dim + self.v_head_dim)
            ffn_bias = (mats - 1) * self.ffn_dim + d
            norms = 2 * d * (2 * self.layers + (self.family == "decoder"))  # ln_1, ln_2, ln_f
            body += self.layers * (qkv + d + ffn_bias) + norms
        body += self.positions * d
        tables = 1 if self.tied_embeddings or self.family == "encoder" else 2
        if self.family == "dit":  # patch embed + head, text embed MLP, time projection
            return float(body + 2 * self.patch_dim * d + self.text_dim * d + d * d + 6 * d * d)
        return float(body + tables * self.vocab * d)

    def to_dict(self) -> dict[str, object]:
        """All fields as a plain dict (JSON-ready)."""
        return {f.name: getattr(self, f.name) for f in fields(self)}


def _check_spec(s: ModelSpec) -> None:
    def bad(field: str, expected: str, got: object) -> ModelError:
        return ModelError("bad model field", path=f"{s.name}.{field}", expected=expected, got=got)

    for f in ("layers", "d_model", "heads", "kv_heads", "head_dim", "ffn_dim"):
        v = getattr(s, f)
        if not isinstance(v, int) or isinstance(v, bool) or v < 1:
            raise bad(f, "a positive integer", v)
    choices = {
        "family": ("decoder", "encoder", "dit"),
        "ffn": ("swiglu", "gelu"),
        "norm": ("rmsnorm", "layernorm"),
        "attention": ("mha", "gqa", "mla"),
    }
    for f, allowed in choices.items():
        if getattr(s, f) not in allowed:
            raise bad(f, f"one of {list(allowed)}", getattr(s, f))
    if s.heads % s.kv_heads:
        raise bad("kv_heads", f"a divisor of heads = {s.heads}", s.kv_heads)
    if s.attention == "mla" and (s.kv_lora_rank < 1 or s.rope_dim < 1 or s.nope_dim < 1):
        raise bad("kv_lora_rank", "MLA widths kv_lora_rank, rope_dim, nope_dim > 0", s.kv_lora_rank)
    if s.bias and (s.attention == "mla" or s.experts or s.family == "dit"):
        raise bad("bias", "false for an MLA, MoE or DiT model (biases: dense MHA/GQA blocks)", True)
    if isinstance(s.positions, bool) or not isinstance(s.positions, int) or s.positions < 0:
        raise bad("positions", "an integer >= 0", s.positions)
    if s.experts:
        if not 1 <= s.active_experts <= s.experts:
            raise bad("active_experts", f"1..experts = {s.experts}", s.active_experts)
        if s.moe_ffn_dim < 1:
            raise bad("moe_ffn_dim", "a positive integer for an MoE model", s.moe_ffn_dim)
        if not 0 <= s.dense_layers < s.layers:
            raise bad("dense_layers", f"0..layers-1 = {s.layers - 1}", s.dense_layers)


# --- presets ---------------------------------------------------------------------------------
#: What the workloads presets do not record, per preset: the layer family, the norm, the
#: position encoding and (DeepSeek-V3) the leading dense layers.
#: - BERT (Devlin et al. 2019) and the FuseMax layer set (bidirectional attention in the
#:   FuseMax artifact) are encoders with post-LayerNorm and learned positions; GPT-3 (Brown et
#:   al. 2020, Sec. 2.1: "the same model and architecture as GPT-2") is a pre-LayerNorm
#:   decoder with learned positions and (as GPT-2) a tied LM head; Llama 3 and DeepSeek-V3
#:   use RMSNorm and RoPE.
#: - DeepSeek-V3 ``config.json``: ``first_k_dense_replace: 3`` (the first 3 of 61 layers
#:   have a dense 18,432-wide FFN, the other 58 are MoE).
#: - Wan2.1-14B (``wan/modules/model.py`` and ``wan/configs`` of github.com/Wan-Video/Wan2.1):
#:   a DiT of blocks ``LayerNorm -> adaLN modulate -> self-attention (q/k RMSNorm, 3-D RoPE)
#:   -> gated residual; LayerNorm -> cross-attention to the text (text_len 512 umT5 tokens
#:   of width 4096) -> residual; LayerNorm -> modulate -> GELU(tanh) FFN -> gated residual``;
#:   patch 1x2x2 over 16 latent channels (64 elements per patch, in and out).
_PRESET_EXTRAS: dict[str, dict[str, object]] = {
    "llama3-8b": {},
    "llama3-70b": {},
    "deepseek-v3": {"dense_layers": 3},
    "gpt3-175b": {
        "norm": "layernorm",
        "rope": False,
        "tied_embeddings": True,
        "bias": True,
        "positions": 2048,
    },
    "bert-base": {"family": "encoder", "norm": "layernorm", "rope": False},
    "bert-large": {"family": "encoder", "norm": "layernorm", "rope": False},
    "fusemax-bert": {"family": "encoder", "norm": "layernorm", "rope": False},
    "fusemax-trxl": {"family": "encoder", "norm": "layernorm", "rope": False},
    "fusemax-t5": {"family": "encoder", "norm": "layernorm", "rope": False},
    "fusemax-xlm": {"family": "encoder", "norm": "layernorm", "rope": False},
    "wan2.1-14b": {
        "family": "dit",
        "norm": "layernorm",
        "ffn": "gelu",
        "cross_attn_len": 512,
        "text_dim": 4096,
        "patch_dim": 64,
    },
}


#: GPT-2 and GPT-3 models up to 1.5B, the eight PIM-GPT evaluates (Wu, Wang & Lu, arXiv
#: 2310.09385): name -> (layers, d_model, heads, positions).
#: - GPT-2 small..XL: layers and d_model from Radford et al. 2019, Table 2; heads and the
#:   1024-token context from the released checkpoints' ``config.json`` (``n_head`` 12, 16, 20,
#:   25; ``n_positions`` 1024).
#: - GPT-3 Small..XL: Brown et al. 2020, Table 2.1 (layers, d_model, heads x d_head; n_ctx
#:   2048). GPT-3 XL: the table lists 24 heads of 128, which would make the attention 3072
#:   wide and the model 1.5B parameters; 16 heads of 128 (= d_model, as every other row of the
#:   table has) give the 1.3B the same table states, and are what a GPT-2 block runs.
#: All: the GPT-2 block (pre-LayerNorm, GELU MLP 4 d_model wide, learned positions, biases in
#: every linear layer, Radford et al. 2019 Sec. 2.3) and an LM head tied to the 50,257-token
#: BPE embedding. GPT-3's alternating locally banded sparse attention layers (Brown et al.,
#: Sec. 2.1) are not modelled: every layer attends densely.
GPT_PRESETS: dict[str, tuple[int, int, int, int]] = {
    "gpt2-small": (12, 768, 12, 1024),
    "gpt2-medium": (24, 1024, 16, 1024),
    "gpt2-large": (36, 1280, 20, 1024),
    "gpt2-xl": (48, 1600, 25, 1024),
    "gpt3-small": (12, 768, 12, 2048),
    "gpt3-medium": (24, 1024, 16, 2048),
    "gpt3-large": (24, 1536, 16, 2048),
    "gpt3-xl": (24, 2048, 16, 2048),
}
#: GPT-2's BPE vocabulary (Radford et al. 2019, Sec. 2.2); GPT-3 uses the same tokenizer.
GPT2_VOCAB = 50257


def gpt_spec(name: str) -> ModelSpec:
    """The :class:`ModelSpec` of GPT preset ``name`` (:data:`GPT_PRESETS`)."""
    layers, d, heads, positions = GPT_PRESETS[name]
    paper = "Radford et al. 2019 Table 2" if name.startswith("gpt2") else "Brown et al. 2020"
    return ModelSpec(
        name=name,
        family="decoder",
        layers=layers,
        d_model=d,
        heads=heads,
        kv_heads=heads,
        head_dim=d // heads,
        ffn_dim=4 * d,
        vocab=GPT2_VOCAB,
        ffn="gelu",
        norm="layernorm",
        attention="mha",
        rope=False,
        tied_embeddings=True,
        bias=True,
        positions=positions,
        source=f"{paper} (GPT-2 block); PIM-GPT's model set (arXiv 2310.09385)",
    )


def list_model_names() -> list[str]:
    """Preset names a model graph can be built from (the workloads presets with a layer
    family, then the GPT-2/GPT-3 presets of :data:`GPT_PRESETS`)."""
    from workloads import list_models

    return [n for n in list_models() if n in _PRESET_EXTRAS] + list(GPT_PRESETS)


def from_preset(name: str) -> ModelSpec:
    """The :class:`ModelSpec` of preset ``name`` (a workloads model preset or a GPT preset)."""
    from workloads import get_model

    if name in GPT_PRESETS:
        return gpt_spec(name)
    if name not in _PRESET_EXTRAS:
        raise ModelError(
            "no layer graph for this model preset",
            path="model",
            expected=f"one of {list_model_names()} or a config.json path",
            got=name,
        )
    p = get_model(name)
    kw: dict[str, Any] = {
        "name": p.name,
        "family": "decoder",
        "layers": p.layers,
        "d_model": p.d_model,
        "heads": p.heads,
        "kv_heads": p.kv_heads,
        "head_dim": p.head_dim,
        "v_head_dim": p.v_head_dim,
        "ffn_dim": p.ffn_dim,
        "vocab": p.vocab,
        "ffn": p.ffn,
        "norm": "rmsnorm",
        "attention": p.attention,
        "q_lora_rank": p.q_lora_rank,
        "kv_lora_rank": p.kv_lora_rank,
        "rope_dim": p.rope_dim,
        "nope_dim": p.nope_dim,
        "experts": p.experts,
        "active_experts": p.active_experts,
        "shared_experts": p.shared_experts,
        "moe_ffn_dim": p.moe_ffn_dim,
        "source": p.source,
    }
    kw.update(_PRESET_EXTRAS[name])
    return ModelSpec(**kw)


# --- Hugging Face config.json ------------------------------------------------------------------
def _tied(cfg: dict[str, Any], default: bool, where: str) -> bool:
    v = cfg.get("tie_word_embeddings", default)
    if not isinstance(v, bool):
        raise ModelError(
            "bad field", path=f"{where}.tie_word_embeddings", expected="true or false", got=v
        )
    return v


class _Reader:
    """Typed access to a config dict; errors name the file and the field."""

    def __init__(self, cfg: dict[str, Any], where: str) -> None:
        self.cfg = cfg
        self.where = where

    def int(self, key: str, default: int | None = None, *, minimum: int = 1) -> int:
        v = self.cfg.get(key)
        if v is None:
            if default is None:
                raise ModelError(
                    "missing field", path=f"{self.where}.{key}", expected="an integer", got=None
                )
            return default
        if isinstance(v, bool) or not isinstance(v, int) or v < minimum:
            raise ModelError(
                "bad field",
                path=f"{self.where}.{key}",
                expected=f"an integer >= {minimum}",
                got=v,
            )
        return v

    def str(self, key: str, default: str) -> str:
        v = self.cfg.get(key, default)
        if v is None:
            return default
        if not isinstance(v, str):
            raise ModelError("bad field", path=f"{self.where}.{key}", expected="a string", got=v)
        return v

    def head_dim(self, d: builtins.int, heads: builtins.int) -> builtins.int:
        # builtins.int: inside this class ``int`` names the reader method above
        if self.cfg.get("head_dim") is not None:
            return self.int("head_dim")
        if d % heads:
            raise ModelError(
                "hidden size not divisible by the heads (and no head_dim given)",
                path=f"{self.where}.num_attention_heads",
                expected=f"a divisor of hidden_size = {d}",
                got=heads,
            )
        return d // heads


def _llama_like(r: _Reader, name: str, *, moe: bool) -> ModelSpec:
    d = r.int("hidden_size")
    heads = r.int("num_attention_heads")
    kv = r.int("num_key_value_heads", heads)
    hd = r.head_dim(d, heads)
    act = r.str("hidden_act", "silu")
    if act not in ("silu", "swish"):
        raise ModelError(
            "unsupported activation for a gated FFN",
            path=f"{r.where}.hidden_act",
            expected="silu",
            got=act,
        )
    kw: dict[str, Any] = {}
    if moe:  # Mixtral: every layer is MoE, experts as wide as intermediate_size
        kw = {
            "experts": r.int("num_local_experts"),
            "active_experts": r.int("num_experts_per_tok"),
            "moe_ffn_dim": r.int("intermediate_size"),
        }
    return ModelSpec(
        name=name,
        family="decoder",
        layers=r.int("num_hidden_layers"),
        d_model=d,
        heads=heads,
        kv_heads=kv,
        head_dim=hd,
        ffn_dim=r.int("intermediate_size"),
        vocab=r.int("vocab_size"),
        attention="gqa" if kv < heads else "mha",
        tied_embeddings=_tied(r.cfg, False, r.where),
        source=f"{r.where} (Hugging Face config.json)",
        **kw,
    )


def _deepseek(r: _Reader, name: str) -> ModelSpec:
    nope = r.int("qk_nope_head_dim")
    rope = r.int("qk_rope_head_dim")
    heads = r.int("num_attention_heads")
    experts = r.int("n_routed_experts", 0, minimum=0)
    return ModelSpec(
        name=name,
        family="decoder",
        layers=r.int("num_hidden_layers"),
        d_model=r.int("hidden_size"),
        heads=heads,
        kv_heads=heads,
        head_dim=nope + rope,
        v_head_dim=r.int("v_head_dim"),
        ffn_dim=r.int("intermediate_size"),
        vocab=r.int("vocab_size"),
        attention="mla",
        q_lora_rank=r.int("q_lora_rank", 0, minimum=0),
        kv_lora_rank=r.int("kv_lora_rank"),
        rope_dim=rope,
        nope_dim=nope,
        experts=experts,
        active_experts=r.int("num_experts_per_tok") if experts else 0,
        shared_experts=r.int("n_shared_experts", 0, minimum=0) if experts else 0,
        moe_ffn_dim=r.int("moe_intermediate_size") if experts else 0,
        dense_layers=r.int("first_k_dense_replace", 0, minimum=0) if experts else 0,
        tied_embeddings=_tied(r.cfg, False, r.where),
        source=f"{r.where} (Hugging Face config.json)",
    )


def _gpt2(r: _Reader, name: str) -> ModelSpec:
    d = r.int("n_embd")
    heads = r.int("n_head")
    return ModelSpec(
        name=name,
        family="decoder",
        layers=r.int("n_layer"),
        d_model=d,
        heads=heads,
        kv_heads=heads,
        head_dim=r.head_dim(d, heads),
        ffn_dim=r.int("n_inner", 4 * d),
        vocab=r.int("vocab_size"),
        ffn="gelu",
        norm="layernorm",
        attention="mha",
        rope=False,
        tied_embeddings=_tied(r.cfg, True, r.where),
        bias=True,
        positions=r.int("n_positions", 1024),
        source=f"{r.where} (Hugging Face config.json)",
    )


def _bert(r: _Reader, name: str) -> ModelSpec:
    d = r.int("hidden_size")
    heads = r.int("num_attention_heads")
    return ModelSpec(
        name=name,
        family="encoder",
        layers=r.int("num_hidden_layers"),
        d_model=d,
        heads=heads,
        kv_heads=heads,
        head_dim=r.head_dim(d, heads),
        ffn_dim=r.int("intermediate_size"),
        vocab=r.int("vocab_size"),
        ffn="gelu",
        norm="layernorm",
        attention="mha",
        rope=False,
        source=f"{r.where} (Hugging Face config.json)",
    )


#: ``model_type`` values of ``config.json`` this module reads, and how.
HF_MODEL_TYPES = {
    "llama": lambda r, n: _llama_like(r, n, moe=False),
    "mistral": lambda r, n: _llama_like(r, n, moe=False),
    "qwen2": lambda r, n: _llama_like(r, n, moe=False),
    "mixtral": lambda r, n: _llama_like(r, n, moe=True),
    "deepseek_v2": _deepseek,
    "deepseek_v3": _deepseek,
    "gpt2": _gpt2,
    "bert": _bert,
}


def from_hf_config(cfg: dict[str, Any] | str | Path, *, name: str | None = None) -> ModelSpec:
    """A :class:`ModelSpec` from a Hugging Face ``config.json`` (a path or the parsed dict).

    Only architecture fields are read; ``torch_dtype`` is ignored (the graph runs in 16-bit
    unless :func:`dataclasses.replace` changes ``dtype_bits``).
    """
    where = "config.json"
    if not isinstance(cfg, dict):
        path = Path(cfg)
        where = path.name
        if not path.is_file():
            raise ModelError(
                "no such file", path="model", expected="a config.json path", got=str(path)
            )
        try:
            cfg = json.loads(path.read_text())
        except json.JSONDecodeError as exc:
            raise ModelError(
                f"not JSON ({exc.msg}, line {exc.lineno})",
                path=where,
                expected="a Hugging Face config.json",
                got=path.name,
            ) from None
        stem = path.stem.removesuffix(".config")
        name = name or (path.parent.name if stem == "config" else stem)
    if not isinstance(cfg, dict):
        raise ModelError("not a JSON object", path=where, expected="{...}", got=type(cfg).__name__)
    mt = cfg.get("model_type")
    if mt not in HF_MODEL_TYPES:
        raise ModelError(
            "unknown model_type",
            path=f"{where}.model_type",
            expected=f"one of {sorted(HF_MODEL_TYPES)}",
            got=mt,
        )
    return HF_MODEL_TYPES[mt](_Reader(cfg, where), name or str(mt))


def load_model(model: str | Path | ModelSpec, *, dtype_bits: int | None = None) -> ModelSpec:
    """A :class:`ModelSpec` from a preset name, a ``config.json`` path, or itself."""
    if isinstance(model, ModelSpec):
        spec = model
    elif str(model).endswith(".json") or Path(str(model)).is_file():
        spec = from_hf_config(model)
    else:
        spec = from_preset(str(model))
    if dtype_bits is not None and dtype_bits != spec.dtype_bits:
        spec = replace(spec, dtype_bits=dtype_bits)
    return spec
