"""Attention backward: ``mha_bwd`` and ``gqa_bwd`` (gradients of ``mha`` / ``gqa``).

Each is :func:`workloads._grad.attention_backward` of the forward library cascade with the
same parameters: the FlashAttention-2 backward (Dao, arXiv 2307.08691, Algorithm 2) as
Einsums -- recompute ``S = Q K^T`` and ``P = exp(S - LSE)`` from the saved log-sum-exp,
``dV = P^T dO``, ``dP = dO V^T``, ``Delta = rowsum(dO o O)``, ``dS = P o (dP - Delta)``,
``dQ = dS K``, ``dK = dS^T Q`` -- with the forward's causal condition and, for ``gqa_bwd``,
``dK``/``dV`` summed over the query heads of a K/V head. Inputs: ``Q, K, V``, the forward's
output ``AV`` and its fp32 ``LSE``, and ``DO``; outputs ``DQ, DK, DV``.

The reference is the textbook gradient of ``softmax(Q K^T) V`` written independently:
``dS = P o (dP - rowsum(dP o P))`` (not the ``Delta`` identity the cascade uses), and the
verification inputs hold ``AV`` and ``LSE`` computed from ``Q, K, V`` (the backward is only
defined for the forward's own saved tensors).
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from workloads import format_cascade, parse_cascade

from . import _reference as ref
from ._attention import attention_derive, attention_params, attention_text
from ._registry import Param, Params, WorkloadDef, register, require

__all__ = ["MHA_BWD", "GQA_BWD", "backward_reference"]


def _params(hkv: int | None) -> tuple[Param, ...]:
    # the backward keeps no running state along the keys: no pass form, no key tile
    return tuple(p for p in attention_params(Hkv=hkv) if p.name not in ("passes", "M0"))


def _text(p: Params) -> str:
    from workloads._grad import attention_backward  # only when a backward cascade is built

    fwd = parse_cascade(attention_text({**p, "passes": 1, "M0": 64}), name="fwd")
    return format_cascade(attention_backward(fwd, name="bwd"))


def _forward(p: Params, x: Mapping[str, np.ndarray]) -> tuple[np.ndarray, ...]:
    """(Q, K, V expanded to the query heads, P, allowed mask) in float64."""
    q = np.asarray(x["Q"], np.float64)
    h, hkv = q.shape[1], np.asarray(x["K"]).shape[1]
    k = np.repeat(np.asarray(x["K"], np.float64), h // hkv, axis=1)
    v = np.repeat(np.asarray(x["V"], np.float64), h // hkv, axis=1)
    s = np.einsum("bhpe,bhme->bhpm", q, k)
    allowed = np.ones(s.shape, dtype=bool)
    if p.get("causal"):
        allowed &= ref.causal_mask(q.shape[2], k.shape[2])
    return q, k, v, ref.softmax(s, axis=-1, mask=allowed), allowed


def backward_reference(p: Params, x: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    """``dQ, dK, dV`` of ``O = softmax(Q K^T) V`` for the upstream gradient ``DO``."""
    q, k, v, pm, _ = _forward(p, x)
    b, h, sq, _ = q.shape
    hkv = np.asarray(x["K"]).shape[1]
    do = np.asarray(x["DO"], np.float64).reshape(b, h, sq, -1)
    dv = np.einsum("bhpm,bhpf->bhmf", pm, do)
    dp = np.einsum("bhpf,bhmf->bhpm", do, v)
    ds = pm * (dp - np.sum(dp * pm, axis=-1, keepdims=True))
    dq = np.einsum("bhpm,bhme->bhpe", ds, k)
    dk = np.einsum("bhpm,bhpe->bhme", ds, q)
    g = h // hkv

    def group(a: np.ndarray) -> np.ndarray:  # sum the query heads of each K/V head
        return a.reshape(b, hkv, g, *a.shape[2:]).sum(axis=2)

    return {"DQ": dq, "DK": group(dk), "DV": group(dv)}


def _inputs(p: Params, sizes: Mapping[str, int], rng: np.random.Generator) -> dict[str, np.ndarray]:
    """Q, K, V, DO normal; ``AV`` and ``LSE`` the forward's output and log-sum-exp."""
    b, h, hkv = int(p["B"]), int(p["H"]), int(p["Hkv"])
    sq, skv, d, dv = int(p["Sq"]), int(p["Skv"]), int(p["D"]), int(p["Dv"])
    x = {
        "Q": rng.standard_normal((b, h, sq, d)),
        "K": rng.standard_normal((b, hkv, skv, d)),
        "V": rng.standard_normal((b, hkv, skv, dv)),
        "DO": rng.standard_normal((b, h, sq, dv)),
    }
    q, k, v, pm, allowed = _forward(p, x)
    s = np.where(allowed, np.einsum("bhpe,bhme->bhpm", q, k), -np.inf)
    mx = np.max(s, axis=-1, keepdims=True)
    lse = (mx + np.log(np.sum(np.exp(s - mx), axis=-1, keepdims=True)))[..., 0]
    o = np.einsum("bhpm,bhmf->bhpf", pm, v)
    if h != hkv:  # the cascade declares the output-side tensors over (b, hkv, g, ...)
        g = h // hkv
        x["DO"] = x["DO"].reshape(b, hkv, g, sq, dv)
        o, lse = o.reshape(b, hkv, g, sq, dv), lse.reshape(b, hkv, g, sq)
    return {**x, "AV": o, "LSE": lse}


def _mha_derive(p: Params) -> None:
    attention_derive(p, "mha_bwd")
    require(p["Hkv"] == p["H"], "mha_bwd", "Hkv", f"Hkv = H = {p['H']} (gqa_bwd)", p["Hkv"])


MHA_BWD = register(
    WorkloadDef(
        name="mha_bwd",
        summary="gradient of mha (FlashAttention-2 backward: dQ, dK, dV from dO, O, LSE)",
        params=_params(None),
        build=_text,
        reference=backward_reference,
        derive=_mha_derive,
        from_model=lambda m: {
            "B": m.batch,
            "H": m.heads,
            "Hkv": m.heads,
            "Sq": m.seq,
            "D": m.head_dim,
            "Dv": m.v_head_dim,
        },
        aliases={"S": ("Sq", "Skv")},
        inputs=_inputs,
        verify=(
            {"B": 1, "H": 2, "S": 5, "D": 3},
            {"B": 2, "H": 1, "Sq": 3, "Skv": 7, "D": 4, "Dv": 2, "causal": True},
        ),
    )
)

GQA_BWD = register(
    WorkloadDef(
        name="gqa_bwd",
        summary="gradient of gqa: dK/dV summed over the query heads of each kv head",
        params=_params(8),
        build=_text,
        reference=backward_reference,
        derive=lambda p: attention_derive(p, "gqa_bwd"),
        from_model=lambda m: {
            "B": m.batch,
            "H": m.heads,
            "Hkv": m.kv_heads,
            "Sq": m.seq,
            "D": m.head_dim,
            "Dv": m.v_head_dim,
        },
        aliases={"S": ("Sq", "Skv")},
        inputs=_inputs,
        verify=(
            {"B": 1, "H": 4, "Hkv": 2, "S": 5, "D": 3, "causal": True},
            {"B": 1, "H": 3, "Hkv": 1, "Sq": 2, "Skv": 7, "D": 2, "Dv": 3},
        ),
    )
)
