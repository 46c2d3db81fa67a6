"""Dense softmax attention: ``mha``, ``gqa`` and ``sqa``.

All three share one cascade builder (:func:`attention_text`): scores
``QK[q..,m,p] = Q . K`` (with the bottom-right causal condition ``m <= p + Skv - Sq`` when
``causal``), then one of the three softmax forms of ``_text.softmax_av``.

- ``mha``: multi-head attention (Vaswani et al., 2017), ``Hkv = H``.
- ``gqa``: grouped-query attention (Ainslie et al., EMNLP'23): ``Hkv`` kv heads each shared
  by ``G = H / Hkv`` query heads via the split ``h -> hkv, g``; MQA is ``Hkv = 1``.
  K/V bytes shrink by ``G``; MACs do not change.
- ``sqa``: Sparse Query Attention (Filipek, arXiv 2510.01817): only ``Hq < H`` query heads
  are computed (``Hkv <= Hq`` kv heads), so attention MACs scale by ``Hq / H``.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from . import _reference as ref
from ._models import ModelPreset
from ._registry import Param, Params, WorkloadDef, register, require
from ._text import Heads, causal_cond, heads, key_index, param_lines, softmax_av, split_lines

__all__ = [
    "attention_params",
    "attention_text",
    "attention_derive",
    "score_line",
    "MHA",
    "GQA",
    "SQA",
]


def attention_params(
    *,
    H: int = 32,
    Hkv: int | None = None,
    S: int = 4096,
    D: int = 128,
    passes: int = 1,
    M0: int = 64,
) -> tuple[Param, ...]:
    """The shape parameters every softmax-attention workload takes."""
    return (
        Param("B", 1, "batch size"),
        Param("H", H, "query heads"),
        Param("Hkv", Hkv, "key/value heads (default H); H % Hkv == 0"),
        Param("Sq", S, "query length, tokens"),
        Param("Skv", None, "key/value length, tokens (default Sq)"),
        Param("D", D, "query/key head dimension, elements"),
        Param("Dv", None, "value head dimension, elements (default D)"),
        Param(
            "causal", False, "causal mask, bottom-right aligned (key m <= p + Skv - Sq)", kind=bool
        ),
        Param(
            "passes",
            passes,
            "softmax form: 3 stable, 2 two-pass, 1 online (FlashAttention)",
            choices=(1, 2, 3),
        ),
        Param("M0", M0, "key tile of the 1/2-pass forms (m -> m1, m0 : M0), keys"),
        Param("dtype_bits", 16, "bits per input element", choices=(4, 8, 16, 32)),
    )


def attention_derive(p: Params, name: str, hq: str = "H") -> None:
    """Defaults ``Skv = Sq``, ``Hkv = H``, ``Dv = D``; check ``H % Hkv`` and causal shapes."""
    p.setdefault("Skv", p["Sq"])
    p.setdefault("Hkv", p[hq])
    p.setdefault("Dv", p["D"])
    require(int(p[hq]) % int(p["Hkv"]) == 0, name, "Hkv", f"a divisor of {hq} = {p[hq]}", p["Hkv"])
    if p.get("causal"):
        require(
            int(p["Sq"]) <= int(p["Skv"]),
            name,
            "Sq",
            f"Sq <= Skv = {p['Skv']} for causal attention (every query sees a key)",
            p["Sq"],
        )


def attention_text(
    p: Params,
    *,
    hq: str = "H",
    extra: tuple[str, ...] = (),
    init: str = "-inf",
    split_scores: bool = True,
) -> str:
    """Cascade text of softmax attention with the parameters ``p``.

    ``extra`` lines (sparsity annotations) go before the Einsums; ``init`` is the
    running-max initial value of the 1/2-pass forms; ``split_scores=False`` writes the
    score Einsum over the whole key rank ``m`` (the softmax still reads it by tiles), which
    a sparsity annotation on ``QK[.., m, p]`` needs.
    """
    passes = int(p["passes"])
    hd = heads(p, hq)
    bits = p["dtype_bits"]
    lines = param_lines(p, ("B", hq, "Hkv", "Sq", "Skv", "D", "Dv", "M0"))
    lines += [
        *hd.lines,
        "rank p : Sq",
        "rank m : Skv",
        "rank e : D",
        "rank f : Dv",
        *split_lines(passes),
        f"tensor Q[b,h,p,e] : bits={bits}",
        f"tensor K[{hd.kv},m,e] : bits={bits}",
        f"tensor V[{hd.kv},m,f] : bits={bits}",
        *extra,
        score_line(p, hd, "m" if not split_scores else key_index(passes)),
    ]
    lines += softmax_av(passes, hd, lambda k: f"V[{hd.kv},{k},f]", init=init)
    return "\n".join(lines) + "\n"


def score_line(p: Params, hd: Heads, mi: str) -> str:
    """``QK[q..,mi,p] = Q[q..,p,e] * K[kv..,mi,e]`` (``mi``: ``m`` or ``m1,m0``), causal."""
    return f"QK[{hd.q},{mi},p] = Q[{hd.q},p,e] * K[{hd.kv},{mi},e]{causal_cond(p)}"


def attention_reference(p: Params, x: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    """``softmax(QK^T) V`` (GQA-aware) with the workload's causal flag."""
    return {"AV": ref.attention(x["Q"], x["K"], x["V"], causal=bool(p["causal"]))}


def _from_model(m: ModelPreset) -> Params:
    return {
        "B": m.batch,
        "H": m.heads,
        "Hkv": m.kv_heads,
        "Sq": m.seq,
        "D": m.head_dim,
        "Dv": m.v_head_dim,
    }


def _mha_derive(p: Params) -> None:
    attention_derive(p, "mha")
    require(p["Hkv"] == p["H"], "mha", "Hkv", f"Hkv = H = {p['H']} (use gqa for fewer)", p["Hkv"])


_SMALL = (
    {"B": 1, "H": 2, "S": 5, "D": 3, "M0": 2},
    {"B": 2, "H": 1, "Sq": 3, "Skv": 7, "D": 4, "Dv": 2, "M0": 3},
)


def _variants(base: tuple[dict, ...]) -> tuple[dict, ...]:
    out = []
    for shape in base:
        for passes in (1, 2, 3):
            for causal in (False, True):
                out.append({**shape, "passes": passes, "causal": causal})
    return tuple(out)


MHA = register(
    WorkloadDef(
        name="mha",
        summary="multi-head softmax attention (passes=1|2|3, causal, Sq != Skv)",
        params=attention_params(),
        build=attention_text,
        reference=attention_reference,
        derive=_mha_derive,
        from_model=lambda m: {**_from_model(m), "Hkv": m.heads},
        aliases={"S": ("Sq", "Skv")},
        verify=_variants(_SMALL),
    )
)

GQA = register(
    WorkloadDef(
        name="gqa",
        summary="grouped-query attention: Hkv kv heads shared by H/Hkv query heads (MQA: Hkv=1)",
        params=attention_params(Hkv=8),
        build=attention_text,
        reference=attention_reference,
        derive=lambda p: attention_derive(p, "gqa"),
        from_model=_from_model,
        aliases={"S": ("Sq", "Skv")},
        verify=_variants(
            (
                {"B": 1, "H": 4, "Hkv": 2, "S": 5, "D": 3, "M0": 2},
                {"B": 1, "H": 3, "Hkv": 1, "Sq": 2, "Skv": 7, "D": 2, "M0": 4},
            )
        ),
    )
)


def _sqa_params() -> tuple[Param, ...]:
    return (
        *attention_params(),
        Param("Hq", None, "query heads actually computed (default H // 2); Hq <= H"),
    )


def _sqa_derive(p: Params) -> None:
    p.setdefault("Hq", max(1, int(p["H"]) // 2))
    require(int(p["Hq"]) <= int(p["H"]), "sqa", "Hq", f"Hq <= H = {p['H']}", p["Hq"])
    attention_derive(p, "sqa", hq="Hq")


def _sqa_text(p: Params) -> str:
    return attention_text(p, hq="Hq")


SQA = register(
    WorkloadDef(
        name="sqa",
        summary="Sparse Query Attention: Hq < H query heads (MACs x Hq/H), Hkv <= Hq kv heads",
        params=_sqa_params(),
        build=_sqa_text,
        reference=attention_reference,
        derive=_sqa_derive,
        from_model=lambda m: {k: v for k, v in _from_model(m).items() if k != "Hkv"},
        aliases={"S": ("Sq", "Skv")},
        verify=(
            {"B": 1, "H": 4, "Hq": 2, "S": 5, "D": 3, "M0": 2, "passes": 1},
            {
                "B": 1,
                "H": 8,
                "Hq": 4,
                "Hkv": 2,
                "Sq": 3,
                "Skv": 7,
                "D": 2,
                "M0": 3,
                "passes": 3,
                "causal": True,
            },
        ),
    )
)
