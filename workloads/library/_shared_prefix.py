"""Decode attention over a shared prefix plus per-sequence suffixes (``shared_prefix``).

Every one of ``B`` sequences attends, with ``Sq`` new query tokens, to the same ``Sp``-token
prefix (one K/V copy, ``KP``/``VP``, no batch rank) followed by its own ``Ss``-token suffix
(``KS``/``VS``, with the batch rank). Hydragen (Juravsky et al., arXiv 2402.05099) computes
this exactly as two attentions combined by their log-sum-exp (``variant=``):

- ``hydragen``: the whole decomposition. Prefix attention ``PA``, ``PL`` (output and
  log-sum-exp ``PL = max + log(sum exp)``) over ``m`` against ``KP[h,m,e]``, whose batch
  rank ``b`` is on the query side only -- every sequence's query rows meet one K/V; suffix
  attention ``SA``, ``SL`` over ``n`` per sequence; the combine
  ``AV = (exp(PL - GL) PA + exp(SL - GL) SA) / (exp(PL - GL) + exp(SL - GL))`` with
  ``GL = max(PL, SL)``. Equal to softmax attention over the concatenated keys.
- ``prefix``: the prefix attention alone, in FlashAttention's one-pass online form
  (``m -> m1, m0 : M0``): the batch rank is a query-side rank of the score Einsum next to
  the query position, so a fused decode recipe packs the ``B x Sq`` query rows (times the
  GQA group) of one K/V head into its query tile -- the GEMM-shaped attention.

The baseline without sharing is the ``decode`` workload over ``Sp + Ss`` keys: its
``K[b,h,m,e]`` holds the prefix once per sequence, so each sequence reads it.

MHA and GQA both work through ``Hkv``. The ``1/sqrt(D)`` scale is folded into ``Q``.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from . import _reference as ref
from ._registry import Param, Params, WorkloadDef, register, require
from ._text import Heads, heads, param_lines, softmax_av

__all__ = ["SHARED_PREFIX", "shared_prefix_reference"]


def _params() -> tuple[Param, ...]:
    return (
        Param("B", 8, "sequences sharing the prefix (batch)"),
        Param("H", 40, "query heads"),
        Param("Hkv", None, "key/value heads (default H); H % Hkv == 0"),
        Param("Sq", 1, "new query tokens per sequence (1 = decode)"),
        Param("Sp", 1024, "shared prefix length, tokens"),
        Param("Ss", 256, "per-sequence suffix length, tokens"),
        Param("Skv", None, "keys each sequence attends to, Sp + Ss (derived)"),
        Param("D", 128, "query/key head dimension, elements"),
        Param("Dv", None, "value head dimension, elements (default D)"),
        Param("M0", 64, "prefix key tile of the one-pass form (m -> m1, m0 : M0), keys"),
        Param("dtype_bits", 16, "bits per input element", choices=(4, 8, 16, 32)),
        Param(
            "variant",
            "hydragen",
            "hydragen (prefix + suffix + LSE combine) | prefix (the shared part alone)",
            kind=str,
            choices=("hydragen", "prefix"),
        ),
    )


def _derive(p: Params) -> None:
    total = int(p["Sp"]) + int(p["Ss"])
    p.setdefault("Skv", total)
    require(int(p["Skv"]) == total, "shared_prefix", "Skv", f"Sp + Ss = {total}", p["Skv"])
    p.setdefault("Hkv", p["H"])
    p.setdefault("Dv", p["D"])
    require(
        int(p["H"]) % int(p["Hkv"]) == 0,
        "shared_prefix",
        "Hkv",
        f"a divisor of H = {p['H']}",
        p["Hkv"],
    )


def _shared(hd: Heads) -> str:
    """Head index of the shared prefix K/V: the per-sequence index without the batch rank."""
    return hd.kv.removeprefix("b,")


def _decl(p: Params, hd: Heads) -> list[str]:
    bits = p["dtype_bits"]
    return [
        "rank b : B",
        *hd.lines,
        "rank p : Sq",
        "rank e : D",
        "rank f : Dv",
        f"tensor Q[{hd.q},p,e] : bits={bits}",
    ]


def _stable(pre: str, q: str, key: str, k: str, v: str) -> list[str]:
    """Stable softmax attention of ``Q`` over ``key`` against ``k``/``v``: normalised output
    ``{pre}A`` and log-sum-exp ``{pre}L`` (what a FlashAttention kernel returns)."""
    return [
        f"{pre}QK[{q},{key},p] = Q[{q},p,e] * {k}",
        f"{pre}M[{q},p] = max({key}) {pre}QK[{q},{key},p]",
        f"{pre}SN[{q},{key},p] = exp({pre}QK[{q},{key},p] - {pre}M[{q},p])",
        f"{pre}D[{q},p] = sum({key}) {pre}SN[{q},{key},p]",
        f"{pre}NV[{q},p,f] = sum({key}) {pre}SN[{q},{key},p] * {v}",
        f"{pre}A[{q},p,f] = {pre}NV[{q},p,f] / {pre}D[{q},p]",
        f"{pre}L[{q},p] = {pre}M[{q},p] + log({pre}D[{q},p])",
    ]


def _hydragen_text(p: Params) -> str:
    hd = heads(p)
    q, kv, sh = hd.q, hd.kv, _shared(hd)
    bits = p["dtype_bits"]
    lines = param_lines(p, ("B", "H", "Hkv", "Sq", "Sp", "Ss", "D", "Dv"))
    lines += [
        *_decl(p, hd),
        "rank m : Sp",
        "rank n : Ss",
        f"tensor KP[{sh},m,e] : bits={bits}",
        f"tensor VP[{sh},m,f] : bits={bits}",
        f"tensor KS[{kv},n,e] : bits={bits}",
        f"tensor VS[{kv},n,f] : bits={bits}",
        *_stable("P", q, "m", f"KP[{sh},m,e]", f"VP[{sh},m,f]"),
        *_stable("S", q, "n", f"KS[{kv},n,e]", f"VS[{kv},n,f]"),
        f"GL[{q},p] = max(PL[{q},p], SL[{q},p])",
        f"WP[{q},p] = exp(PL[{q},p] - GL[{q},p])",
        f"WS[{q},p] = exp(SL[{q},p] - GL[{q},p])",
        f"GD[{q},p] = WP[{q},p] + WS[{q},p]",
        f"CP[{q},p,f] = WP[{q},p] * PA[{q},p,f]",
        f"CS[{q},p,f] = WS[{q},p] * SA[{q},p,f]",
        f"GO[{q},p,f] = CP[{q},p,f] + CS[{q},p,f]",
        f"AV[{q},p,f] = GO[{q},p,f] / GD[{q},p]",
    ]
    return "\n".join(lines) + "\n"


def _prefix_text(p: Params) -> str:
    hd = heads(p)
    q, sh = hd.q, _shared(hd)
    bits = p["dtype_bits"]
    lines = param_lines(p, ("B", "H", "Hkv", "Sq", "Sp", "D", "Dv", "M0"))
    lines += [
        *_decl(p, hd),
        "rank m : Sp",
        "rank m -> m1, m0 : M0",
        f"tensor K[{sh},m,e] : bits={bits}",
        f"tensor V[{sh},m,f] : bits={bits}",
        f"QK[{q},m1,m0,p] = Q[{q},p,e] * K[{sh},m1,m0,e]",
        *softmax_av(1, hd, lambda idx: f"V[{sh},{idx},f]"),
    ]
    return "\n".join(lines) + "\n"


def _text(p: Params) -> str:
    return _prefix_text(p) if p["variant"] == "prefix" else _hydragen_text(p)


def shared_prefix_reference(p: Params, x: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Softmax attention of every sequence over its keys, computed directly (numpy).

    ``hydragen``: the prefix K/V broadcast over the batch and concatenated with the suffix;
    ``prefix``: the prefix alone.
    """
    b, h, sq, d = int(p["B"]), int(p["H"]), int(p["Sq"]), int(p["D"])
    hkv, dv = int(p["Hkv"]), int(p["Dv"])
    q = np.asarray(x["Q"]).reshape(b, h, sq, d)
    kp_name, vp_name = ("K", "V") if p["variant"] == "prefix" else ("KP", "VP")
    sp = int(p["Sp"])
    kp = np.broadcast_to(np.asarray(x[kp_name]).reshape(1, hkv, sp, d), (b, hkv, sp, d))
    vp = np.broadcast_to(np.asarray(x[vp_name]).reshape(1, hkv, sp, dv), (b, hkv, sp, dv))
    if p["variant"] == "prefix":
        return {"AV": ref.attention(q, kp, vp)}
    ks = np.asarray(x["KS"]).reshape(b, hkv, -1, d)
    vs = np.asarray(x["VS"]).reshape(b, hkv, -1, dv)
    k = np.concatenate([kp, ks], axis=2)
    v = np.concatenate([vp, vs], axis=2)
    return {"AV": ref.attention(q, k, v)}


SHARED_PREFIX = register(
    WorkloadDef(
        name="shared_prefix",
        summary="decode over a shared prefix + per-sequence suffixes (Hydragen; variant=...)",
        params=_params(),
        build=_text,
        reference=shared_prefix_reference,
        derive=_derive,
        verify=(
            {"B": 3, "H": 2, "Sp": 5, "Ss": 3, "D": 3, "variant": "hydragen"},
            {"B": 2, "H": 4, "Hkv": 2, "Sq": 2, "Sp": 4, "Ss": 2, "D": 2, "variant": "hydragen"},
            {"B": 3, "H": 2, "Sp": 7, "D": 3, "M0": 3, "variant": "prefix"},
            {"B": 2, "H": 4, "Hkv": 2, "Sq": 2, "Sp": 5, "D": 2, "M0": 2, "variant": "prefix"},
        ),
    )
)
