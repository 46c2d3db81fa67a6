"""Text builders shared by the attention cascades.

The library writes every cascade in the text notation (``docs/CONTRACTS.md``) and parses it
with ``workloads.parse_cascade``; these helpers emit the common parts: parameter lines,
tensor declarations, head ranks (with the GQA split ``h -> hkv, g``), and the three softmax
forms of FuseMax (Nayak et al., MICRO'24, Sec. 3; ``reference/fusemax_cascades.md``):

* ``passes=3``: stable softmax, ``M = max``, ``SN = exp(QK - M)``, ``SD = sum SN``,
  ``A = SN / SD``, ``AV = sum A V`` (three passes over the key rank ``m``).
* ``passes=2``: pass 1 is the online max + denominator over tiles ``m -> m1, m0 : M0``
  (running ``RM``, ``RD``); pass 2 normalises and multiplies by ``V``.
* ``passes=1``: the FlashAttention / FuseMax online-softmax cascade with running
  ``RM``, ``RD``, ``RNV`` over ``m1`` and a final ``AV = RNV[M1] / RD[M1]``.

Batch/head ranks ride along on every tensor (``b,h`` or ``b,hkv,g``). Query position is
``p`` (size ``Sq``), key position ``m`` (size ``Skv``), Q/K head dim ``e`` (``D``), V head
dim ``f`` (``Dv``). The ``1/sqrt(D)`` scale is folded into Q.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

__all__ = [
    "Heads",
    "heads",
    "param_lines",
    "softmax_av",
    "causal_cond",
    "key_index",
    "split_lines",
    "NEG_INIT",
]

NEG_INIT = "-inf"
"""Initial running max. Sparse cascades use a finite ``-1e30`` instead (see _sparse.py)."""


@dataclass(frozen=True)
class Heads:
    """Index text for query-side and kv-side head ranks, plus declaration lines."""

    q: str
    kv: str
    lines: tuple[str, ...]


def heads(p: Mapping[str, object], h: str = "H", hkv: str = "Hkv") -> Heads:
    """Head ranks: ``b,h`` for MHA; ``b,hkv,g`` with ``rank h -> hkv, g : G`` for GQA.

    ``G = H / Hkv`` query heads share one kv head; ``h = hkv*G + g``, so query head ``h``
    reads kv head ``h // G`` as in GQA (Ainslie et al., EMNLP'23).
    """
    nq, nkv = int(p[h]), int(p[hkv])  # type: ignore[call-overload]
    base = (f"rank h : {h}",)
    if nq == nkv:
        return Heads("b,h", "b,h", base)
    return Heads(
        "b,hkv,g",
        "b,hkv",
        base + (f"param G = {nq // nkv}", "rank h -> hkv, g : G", f"rank hkv : {hkv}"),
    )


def param_lines(p: Mapping[str, object], keys: tuple[str, ...]) -> list[str]:
    """``param K = V`` lines for the numeric parameters ``keys`` (bools as 0/1)."""
    out = []
    for k in keys:
        v = p[k]
        out.append(f"param {k} = {int(v) if isinstance(v, bool) else v}")
    return out


def causal_cond(p: Mapping[str, object], sq: str = "Sq", skv: str = "Skv") -> str:
    """`` if m <= p + Skv - Sq`` (bottom-right aligned causal mask) or ``""``."""
    if not p.get("causal"):
        return ""
    return f" if m <= p + {skv} - {sq}"


def softmax_av(
    passes: int,
    hd: Heads,
    vref: Callable[[str], str],
    f: str = "f",
    score: str = "QK",
    init: str = NEG_INIT,
) -> list[str]:
    """Lines from the scores ``{score}[q..,m,p]`` (split ``m1,m0`` for 1/2 passes) to ``AV``.

    Parameters
    ----------
    passes
        1, 2 or 3 (see module docstring).
    hd
        Head ranks.
    vref
        Key-index text (``m`` or ``m1,m0``) -> the value operand (``V[b,h,m1,m0,f]``).
    f
        The value-dimension rank of ``AV``.
    score
        Name of the score tensor (already computed by the caller's lines).
    init
        Initial value of the running max (``-inf``).
    """
    q = hd.q
    if passes == 3:
        return [
            f"M[{q},p] = max(m) {score}[{q},m,p]",
            f"SN[{q},m,p] = exp({score}[{q},m,p] - M[{q},p])",
            f"SD[{q},p] = sum(m) SN[{q},m,p]",
            f"A[{q},m,p] = SN[{q},m,p] / SD[{q},p]",
            f"AV[{q},p,{f}] = sum(m) A[{q},m,p] * {vref('m')}",
        ]
    running = [
        f"LM[{q},m1,p] = max(m0) {score}[{q},m1,m0,p]",
        f"RM[{q},m1+1,p] = max(RM[{q},m1,p], LM[{q},m1,p]) init {init}",
        f"SLN[{q},m1,m0,p] = exp({score}[{q},m1,m0,p] - RM[{q},m1+1,p])",
        f"PRM[{q},m1,p] = exp(RM[{q},m1,p] - RM[{q},m1+1,p])",
        f"SLD[{q},m1,p] = sum(m0) SLN[{q},m1,m0,p]",
        f"SPD[{q},m1,p] = PRM[{q},m1,p] * RD[{q},m1,p]",
        f"RD[{q},m1+1,p] = SPD[{q},m1,p] + SLD[{q},m1,p] init 0",
    ]
    if passes == 2:
        return running + [
            f"SN[{q},m1,m0,p] = exp({score}[{q},m1,m0,p] - RM[{q},M1,p])",
            f"A[{q},m1,m0,p] = SN[{q},m1,m0,p] / RD[{q},M1,p]",
            f"AV[{q},p,{f}] = sum(m1,m0) A[{q},m1,m0,p] * {vref('m1,m0')}",
        ]
    return running + [
        f"SPNV[{q},m1,p,{f}] = PRM[{q},m1,p] * RNV[{q},m1,p,{f}]",
        f"SLNV[{q},m1,p,{f}] = sum(m0) SLN[{q},m1,m0,p] * {vref('m1,m0')}",
        f"RNV[{q},m1+1,p,{f}] = SPNV[{q},m1,p,{f}] + SLNV[{q},m1,p,{f}] init 0",
        f"AV[{q},p,{f}] = RNV[{q},M1,p,{f}] / RD[{q},M1,p]",
    ]


def key_index(passes: int) -> str:
    """Index text of the key rank in the score Einsum: ``m`` (3-pass) or ``m1,m0``."""
    return "m" if passes == 3 else "m1,m0"


def split_lines(passes: int) -> list[str]:
    """``rank m -> m1, m0 : M0`` for the tiled (1/2-pass) forms."""
    return [] if passes == 3 else ["rank m -> m1, m0 : M0"]
