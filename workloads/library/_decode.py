"""Decode attention: ``Sq`` (default 1) new queries over a KV cache of ``Skv`` tokens.

Variants (``variant=``):

- ``plain``: the attention cascade of ``mha``/``gqa`` (``passes`` selects the softmax form).
- ``split_kv``: flash-decoding (Dao et al., 2023): the key rank is split into ``splits``
  chunks ``m -> s, j : KS`` (``KS = ceil(Skv / splits)``); each chunk yields a partial max
  ``LM``, denominator ``LD`` and output ``LO``; a combine step rescales them by
  ``W = exp(LM - max_s LM)`` and divides ``sum_s W LO`` by ``sum_s W LD``.
- ``lean``: Lean Attention (Sanovar et al., arXiv 2405.10480): the same math with the
  stream-K split. All ``B * H * ceil(Skv / M0)`` key tiles (``m -> m1, m0 : M0``) are dealt
  out in order to ``ctas`` workers, worker ``c`` taking global tiles ``g`` with
  ``c * NT <= g * CTAS < (c + 1) * NT`` (``NT`` = total tiles), so one head's keys are
  split unevenly, at worker boundaries. Per-worker partials (rank ``s`` = worker) are
  combined as in split-KV. The worker rank ``s`` comes from the condition alone
  (``QK[.., s, m1, m0, p] = Q * K if <worker s owns tile m1>``; a rank the condition binds
  may be an output rank), so each score is computed once, by its owner, at no extra cost.

MHA and GQA both work through ``Hkv``.
"""

from __future__ import annotations

from ._attention import attention_derive, attention_params, attention_reference, attention_text
from ._models import ModelPreset
from ._registry import Param, Params, WorkloadDef, register, require
from ._text import Heads, causal_cond, heads, param_lines

__all__ = ["DECODE"]


def _params() -> tuple[Param, ...]:
    base = tuple(q for q in attention_params(S=1) if q.name != "Skv")
    return (
        *base,
        Param("Skv", 4096, "KV cache length, tokens"),
        Param(
            "variant",
            "plain",
            "plain | split_kv (flash-decoding) | lean (stream-K)",
            kind=str,
            choices=("plain", "split_kv", "lean"),
        ),
        Param("splits", 8, "split_kv: number of KV chunks"),
        Param("ctas", 132, "lean: workers (CTAs) sharing the key tiles (H100: 132 SMs)"),
    )


def _derive(p: Params) -> None:
    attention_derive(p, "decode")
    if p["variant"] == "split_kv":
        require(
            int(p["splits"]) <= int(p["Skv"]),
            "decode",
            "splits",
            f"splits <= Skv = {p['Skv']}",
            p["splits"],
        )


def _partials(q: str, kv: str, qk: str, kv_idx: str, red: str) -> list[str]:
    """Per-split softmax partials ``LM, SN, LD, LO`` of the scores ``QK[q,qk,p]``.

    ``red`` are the ranks reduced within a split; ``kv_idx`` indexes ``V`` after ``kv``.
    """
    return [
        f"LM[{q},s,p] = max({red}) QK[{q},{qk},p]",
        f"SN[{q},{qk},p] = exp(QK[{q},{qk},p] - LM[{q},s,p])",
        f"LD[{q},s,p] = sum({red}) SN[{q},{qk},p]",
        f"LO[{q},s,p,f] = sum({red}) SN[{q},{qk},p] * V[{kv},{kv_idx},f]",
    ]


def _combine(q: str) -> list[str]:
    """Combine per-split partials ``LM, LD, LO`` over rank ``s`` into ``AV``."""
    return [
        f"GM[{q},p] = max(s) LM[{q},s,p]",
        f"W[{q},s,p] = exp(LM[{q},s,p] - GM[{q},p])",
        f"GD[{q},p] = sum(s) W[{q},s,p] * LD[{q},s,p]",
        f"GO[{q},p,f] = sum(s) W[{q},s,p] * LO[{q},s,p,f]",
        f"AV[{q},p,f] = GO[{q},p,f] / GD[{q},p]",
    ]


def _head(p: Params, hd: Heads) -> list[str]:
    bits = p["dtype_bits"]
    return [
        *hd.lines,
        "rank p : Sq",
        "rank m : Skv",
        "rank e : D",
        "rank f : Dv",
        f"tensor Q[b,h,p,e] : bits={bits}",
        f"tensor K[{hd.kv},m,e] : bits={bits}",
        f"tensor V[{hd.kv},m,f] : bits={bits}",
    ]


def _split_kv_text(p: Params) -> str:
    hd = heads(p)
    q, kv = hd.q, hd.kv
    ks = -(-int(p["Skv"]) // int(p["splits"]))
    lines = param_lines({**p, "KS": ks}, ("B", "H", "Hkv", "Sq", "Skv", "D", "Dv", "KS"))
    lines += [
        *_head(p, hd),
        "rank m -> s, j : KS",
        f"QK[{q},s,j,p] = Q[{q},p,e] * K[{kv},s,j,e]{causal_cond(p)}",
        *_partials(q, kv, "s,j", "s,j", "j"),
        *_combine(q),
    ]
    return "\n".join(lines) + "\n"


def _lean_text(p: Params) -> str:
    hd = heads(p)
    q, kv = hd.q, hd.kv
    tiles = -(-int(p["Skv"]) // int(p["M0"]))
    nt = int(p["B"]) * int(p["H"]) * tiles
    lines = param_lines(
        {**p, "NT": nt, "CTAS": p["ctas"]},
        ("B", "H", "Hkv", "Sq", "Skv", "D", "Dv", "M0", "NT", "CTAS"),
    )
    g = "((b*H + h)*M1 + m1)*CTAS"  # global tile index times the worker count
    cond = f"s*NT <= {g} and {g} < s*NT + NT"
    if p["causal"]:
        cond = "m <= p + Skv - Sq and " + cond
    lines += [
        *_head(p, hd),
        "rank m -> m1, m0 : M0",
        "rank s : CTAS",
        f"QK[{q},s,m1,m0,p] = Q[{q},p,e] * K[{kv},m1,m0,e] if {cond}",
        *_partials(q, kv, "s,m1,m0", "m1,m0", "m1,m0"),
        *_combine(q),
    ]
    return "\n".join(lines) + "\n"


def _text(p: Params) -> str:
    if p["variant"] == "split_kv":
        return _split_kv_text(p)
    if p["variant"] == "lean":
        return _lean_text(p)
    return attention_text(p)


def _from_model(m: ModelPreset) -> Params:
    return {
        "B": m.batch,
        "H": m.heads,
        "Hkv": m.kv_heads,
        "Skv": m.seq,
        "D": m.head_dim,
        "Dv": m.v_head_dim,
    }


DECODE = register(
    WorkloadDef(
        name="decode",
        summary="decode attention over a KV cache (variant=plain|split_kv|lean; GQA via Hkv)",
        params=_params(),
        build=_text,
        reference=attention_reference,
        derive=_derive,
        from_model=_from_model,
        aliases={"S": ("Skv",)},
        verify=(
            {"B": 2, "H": 2, "Skv": 7, "D": 3, "M0": 3, "variant": "plain", "passes": 1},
            {"B": 1, "H": 4, "Hkv": 2, "Skv": 5, "D": 2, "variant": "plain", "passes": 3},
            {"B": 2, "H": 2, "Skv": 7, "D": 3, "variant": "split_kv", "splits": 3},
            {
                "B": 1,
                "H": 4,
                "Hkv": 1,
                "Sq": 2,
                "Skv": 9,
                "D": 2,
                "variant": "split_kv",
                "splits": 2,
                "causal": True,
            },
            {"B": 1, "H": 2, "Skv": 7, "D": 3, "M0": 2, "variant": "lean", "ctas": 3},
            {
                "B": 2,
                "H": 4,
                "Hkv": 2,
                "Sq": 2,
                "Skv": 10,
                "D": 2,
                "M0": 3,
                "variant": "lean",
                "ctas": 5,
                "causal": True,
            },
        ),
    )
)
