"""Model presets: the shapes of published transformer models.

Each :class:`ModelPreset` records one model's per-layer shapes and cites where they come
from. ``get_workload(NAME, model=PRESET)`` fills a workload's shape parameters from it
(see :meth:`ModelPreset.shape_params`).

Sources (numbers copied from the papers / released configs named in each entry):

- Llama 3: Dubey et al., "The Llama 3 Herd of Models", arXiv 2407.21783, Table 3, and
  ``meta-llama/Meta-Llama-3-{8B,70B}/config.json`` (vocab 128,256; ffn 14,336 / 28,672).
- DeepSeek-V3: DeepSeek-AI, arXiv 2412.19437, Sec. 4.2 and ``config.json``
  (61 layers, d 7168, 128 heads, MLA kv_lora_rank 512, q_lora_rank 1536,
  qk_nope 128, qk_rope 64, v 128; dense ffn 18,432, MoE expert ffn 2,048,
  256 routed experts, 8 active, 1 shared; vocab 129,280).
- BERT: Devlin et al., NAACL'19, Sec. 3 (base L=12 H=768 A=12; large L=24 H=1024 A=16;
  ffn 4H; WordPiece vocab 30,522 in the released checkpoints).
- GPT-3 175B: Brown et al., NeurIPS'20, Table 2.1 (96 layers, d 12288, 96 heads x 128,
  context 2048; ffn 4d); also ``reference/papers/pim/attacc_system_params.json``
  ("GPT-175B": [96, 12288, 96, 128, 4, 1]).
- Wan2.1-14B: Wan team, "Wan: Open and Advanced Large-Scale Video Generative Models",
  arXiv 2503.20314, Table (14B: dim 5120, ffn 13824, 40 heads, 40 layers). Tokens of a
  5 s (81-frame) clip: the VAE compresses 4x in time and 8x8 in space and the DiT patchifies
  1x2x2, so 480p (832x480) gives 21 x 30 x 52 = 32,760 tokens and 720p (1280x720) gives
  21 x 45 x 80 = 75,600 tokens (FG-Attn, arXiv 2509.16518, says "> 30K tokens").
- FuseMax set: ``reference/papers/fusemax/fusemax_workloads.csv`` (FuseMax artifact,
  Nayak et al., MICRO'24): batch 64; BERT 12x64 d768 ffn3072, TrXL 16x64 d1024 ffn4096,
  T5 8x64 d512 ffn2048, XLM 16x128 d2048 ffn8192. FuseMax evaluates one layer; the layer
  counts given are those of the source models (BERT-base 12, Transformer-XL large 18,
  T5-small 6, XLM mlm-en-2048 12) and are not used by the FuseMax reproduction.
"""

from __future__ import annotations

from dataclasses import dataclass, fields

from archsim.errors import WorkloadError

__all__ = ["ModelPreset", "get_model", "list_models"]


@dataclass(frozen=True)
class ModelPreset:
    """Per-layer shapes of one published model.

    Attributes
    ----------
    name
        Preset name (``llama3-8b``).
    layers
        Transformer layers (blocks).
    d_model
        Hidden (residual stream) width, elements.
    heads
        Query heads per layer.
    kv_heads
        Key/value heads (``heads`` for MHA, fewer for GQA/MQA).
    head_dim
        Query/key head dimension, elements (for MLA: nope + rope part).
    ffn_dim
        FFN intermediate width, elements (per expert for MoE models: see ``moe_ffn_dim``).
    vocab
        Vocabulary size, tokens (0 where the model has no LM head, e.g. a video DiT).
    v_head_dim
        Value head dimension, elements (``head_dim`` unless it differs).
    batch
        Default batch for workloads built from the preset.
    seq
        Default sequence length, tokens (the context length used by its paper).
    attention
        ``mha``, ``gqa`` or ``mla``: the attention form of the model.
    ffn
        ``gelu`` (2 matrices) or ``swiglu`` (3 matrices).
    kv_lora_rank, q_lora_rank, rope_dim, nope_dim
        MLA dimensions (DeepSeek): latent KV width, latent Q width, decoupled-RoPE key
        width, non-RoPE query/key width; 0 for non-MLA models.
    moe_ffn_dim, experts, active_experts, shared_experts
        Mixture-of-experts FFN (0 when dense).
    seq_480p, seq_720p
        Tokens of a 5 s clip at 480p / 720p for video models, else 0.
    source
        Where the numbers come from.
    """

    name: str
    layers: int
    d_model: int
    heads: int
    kv_heads: int
    head_dim: int
    ffn_dim: int
    vocab: int
    v_head_dim: int = 0
    batch: int = 1
    seq: int = 2048
    attention: str = "mha"
    ffn: str = "gelu"
    kv_lora_rank: int = 0
    q_lora_rank: int = 0
    rope_dim: int = 0
    nope_dim: int = 0
    moe_ffn_dim: int = 0
    experts: int = 0
    active_experts: int = 0
    shared_experts: int = 0
    seq_480p: int = 0
    seq_720p: int = 0
    source: str = ""

    def __post_init__(self) -> None:
        if self.v_head_dim == 0:
            object.__setattr__(self, "v_head_dim", self.head_dim)

    def to_dict(self) -> dict[str, int | str]:
        """All fields as a plain dict (JSON-ready)."""
        return {f.name: getattr(self, f.name) for f in fields(self)}


_PRESETS: tuple[ModelPreset, ...] = (
    ModelPreset(
        "llama3-8b",
        32,
        4096,
        32,
        8,
        128,
        14336,
        128256,
        seq=8192,
        attention="gqa",
        ffn="swiglu",
        source="arXiv 2407.21783 Table 3; Meta-Llama-3-8B config.json",
    ),
    ModelPreset(
        "llama3-70b",
        80,
        8192,
        64,
        8,
        128,
        28672,
        128256,
        seq=8192,
        attention="gqa",
        ffn="swiglu",
        source="arXiv 2407.21783 Table 3; Meta-Llama-3-70B config.json",
    ),
    ModelPreset(
        "deepseek-v3",
        61,
        7168,
        128,
        128,
        192,
        18432,
        129280,
        v_head_dim=128,
        seq=4096,
        attention="mla",
        ffn="swiglu",
        kv_lora_rank=512,
        q_lora_rank=1536,
        rope_dim=64,
        nope_dim=128,
        moe_ffn_dim=2048,
        experts=256,
        active_experts=8,
        shared_experts=1,
        source="arXiv 2412.19437 Sec. 4.2; DeepSeek-V3 config.json",
    ),
    ModelPreset(
        "bert-base",
        12,
        768,
        12,
        12,
        64,
        3072,
        30522,
        seq=512,
        source="Devlin et al. NAACL'19 Sec. 3 (BERT-base)",
    ),
    ModelPreset(
        "bert-large",
        24,
        1024,
        16,
        16,
        64,
        4096,
        30522,
        seq=512,
        source="Devlin et al. NAACL'19 Sec. 3 (BERT-large)",
    ),
    ModelPreset(
        "gpt3-175b",
        96,
        12288,
        96,
        96,
        128,
        49152,
        50257,
        seq=2048,
        source="Brown et al. NeurIPS'20 Table 2.1; AttAcc GPT-175B config",
    ),
    ModelPreset(
        "wan2.1-14b",
        40,
        5120,
        40,
        40,
        128,
        13824,
        0,
        seq=32760,
        seq_480p=32760,
        seq_720p=75600,
        source="arXiv 2503.20314 (Wan2.1-14B); 5 s clip token counts derived in "
        "the module docstring",
    ),
    ModelPreset(
        "fusemax-bert",
        12,
        768,
        12,
        12,
        64,
        3072,
        30522,
        batch=64,
        seq=1024,
        source="reference/papers/fusemax/fusemax_workloads.csv (BERT)",
    ),
    ModelPreset(
        "fusemax-trxl",
        18,
        1024,
        16,
        16,
        64,
        4096,
        267735,
        batch=64,
        seq=1024,
        source="reference/papers/fusemax/fusemax_workloads.csv (TrXL)",
    ),
    ModelPreset(
        "fusemax-t5",
        6,
        512,
        8,
        8,
        64,
        2048,
        32128,
        batch=64,
        seq=1024,
        source="reference/papers/fusemax/fusemax_workloads.csv (T5)",
    ),
    ModelPreset(
        "fusemax-xlm",
        12,
        2048,
        16,
        16,
        128,
        8192,
        30145,
        batch=64,
        seq=1024,
        source="reference/papers/fusemax/fusemax_workloads.csv (XLM)",
    ),
)
_BY_NAME = {p.name: p for p in _PRESETS}


def list_models() -> list[str]:
    """Names of the model presets, in a fixed order."""
    return [p.name for p in _PRESETS]


def get_model(name: str) -> ModelPreset:
    """The preset called ``name``.

    Raises
    ------
    WorkloadError
        When no preset has that name (the message lists the known ones).
    """
    try:
        return _BY_NAME[name]
    except KeyError:
        raise WorkloadError(
            "unknown model preset", path="model", expected=f"one of {list_models()}", got=name
        ) from None
