"""Direct numpy implementations: the ground truth every library cascade is checked against.

These are written the plain way (full score matrix, ``np.einsum``, float64), independent of
the cascade forms, so that a test comparing ``execute(cascade)`` with them proves the
cascade. Attention omits the ``1/sqrt(D)`` scale everywhere (fold it into ``Q``), as the
FuseMax cascades do.
"""

from __future__ import annotations

import numpy as np

__all__ = [
    "causal_mask",
    "softmax",
    "attention",
    "mla_attention",
    "linear_attention",
    "rmsnorm",
    "layernorm",
    "swiglu",
]


def causal_mask(sq: int, skv: int) -> np.ndarray:
    """Allowed (query, key) pairs of causal attention, bottom-right aligned.

    Query ``i`` sees key ``j`` iff ``j <= i + (skv - sq)`` (the last query sees every key;
    with ``sq == skv`` this is ``j <= i``). Shape ``(sq, skv)``, dtype bool.
    """
    i = np.arange(sq)[:, None]
    j = np.arange(skv)[None, :]
    return j <= i + (skv - sq)


def softmax(x: np.ndarray, axis: int = -1, mask: np.ndarray | None = None) -> np.ndarray:
    """Numerically stable softmax along ``axis``; ``mask`` False entries get weight 0."""
    x = np.asarray(x, dtype=np.float64)
    if mask is not None:
        x = np.where(mask, x, -np.inf)
    m = np.max(x, axis=axis, keepdims=True)
    e = np.exp(x - m)
    return e / np.sum(e, axis=axis, keepdims=True)


def attention(
    q: np.ndarray,
    k: np.ndarray,
    v: np.ndarray,
    *,
    causal: bool = False,
    mask: np.ndarray | None = None,
) -> np.ndarray:
    """``softmax(Q K^T) V`` with kv-head sharing.

    Parameters
    ----------
    q
        Queries, shape ``(B, H, Sq, D)``.
    k, v
        Keys ``(B, Hkv, Skv, D)`` and values ``(B, Hkv, Skv, Dv)``; query head ``h`` reads
        kv head ``h // (H // Hkv)`` (GQA; MQA is ``Hkv = 1``).
    causal
        Apply :func:`causal_mask`.
    mask
        Extra boolean mask broadcastable to ``(B, H, Sq, Skv)`` (True = attend).

    Returns
    -------
    numpy.ndarray
        ``(B, H, Sq, Dv)``, float64.
    """
    h, hkv = q.shape[1], k.shape[1]
    k = np.repeat(np.asarray(k, np.float64), h // hkv, axis=1)
    v = np.repeat(np.asarray(v, np.float64), h // hkv, axis=1)
    s = np.einsum("bhpe,bhme->bhpm", np.asarray(q, np.float64), k)
    allowed = np.ones(s.shape, dtype=bool)
    if causal:
        allowed &= causal_mask(q.shape[2], k.shape[2])
    if mask is not None:
        allowed &= mask
    return np.einsum("bhpm,bhmf->bhpf", softmax(s, mask=allowed), v)


def mla_attention(
    qn: np.ndarray,
    qr: np.ndarray,
    c: np.ndarray,
    kr: np.ndarray,
    wuk: np.ndarray,
    wuv: np.ndarray,
    *,
    causal: bool = False,
) -> np.ndarray:
    """DeepSeek multi-head latent attention, in its *non-absorbed* (training) form.

    Per-head keys and values are expanded from the latent cache, ``K_h = [C W_UK_h^T, KR]``
    and ``V_h = C W_UV_h``; queries are ``[QN_h, QR_h]``; then plain attention.

    Parameters
    ----------
    qn, qr
        Query parts ``(B, H, Sq, Dn)`` (no RoPE) and ``(B, H, Sq, Dr)`` (decoupled RoPE).
    c, kr
        Latent KV cache ``(B, Skv, Dc)`` and the shared RoPE key ``(B, Skv, Dr)``.
    wuk, wuv
        Up-projections ``(H, Dn, Dc)`` (key) and ``(H, Dc, Dv)`` (value).

    Returns
    -------
    numpy.ndarray
        ``(B, H, Sq, Dv)``.
    """
    k_nope = np.einsum("bmc,hnc->bhmn", c, wuk)
    h = qn.shape[1]
    k_rope = np.broadcast_to(kr[:, None], (kr.shape[0], h, *kr.shape[1:]))
    k = np.concatenate([k_nope, k_rope], axis=-1)
    q = np.concatenate([qn, qr], axis=-1)
    v = np.einsum("bmc,hcf->bhmf", c, wuv)
    return attention(q, k, v, causal=causal)


def linear_attention(q: np.ndarray, k: np.ndarray, v: np.ndarray, decay: float = 1.0) -> np.ndarray:
    """Causal linear attention (no softmax, no normalizer), quadratic direct form.

    ``O[i] = sum_{j <= i} decay**(i - j) (q_i . k_j) v_j`` (Lightning Attention-2 /
    RetNet-style scalar decay; ``decay = 1`` is plain causal linear attention).
    Shapes ``(B, H, S, D)``, ``(B, H, S, D)``, ``(B, H, S, Dv)`` -> ``(B, H, S, Dv)``.
    """
    s = q.shape[2]
    i = np.arange(s)[:, None]
    j = np.arange(s)[None, :]
    with np.errstate(divide="ignore"):
        w = np.where(j <= i, np.power(float(decay), (i - j).clip(min=0)), 0.0)
    scores = np.einsum("bhie,bhje->bhij", q, k) * w
    return np.einsum("bhij,bhjf->bhif", scores, v)


def rmsnorm(x: np.ndarray, g: np.ndarray, eps: float) -> np.ndarray:
    """``x / sqrt(mean(x**2, -1) + eps) * g`` over the last axis."""
    ms = np.mean(np.square(x), axis=-1, keepdims=True)
    return x / np.sqrt(ms + eps) * g


def layernorm(x: np.ndarray, g: np.ndarray, beta: np.ndarray, eps: float) -> np.ndarray:
    """``(x - mean) / sqrt(var + eps) * g + beta`` over the last axis (biased variance)."""
    mu = np.mean(x, axis=-1, keepdims=True)
    var = np.mean(np.square(x - mu), axis=-1, keepdims=True)
    return (x - mu) / np.sqrt(var + eps) * g + beta


def swiglu(x: np.ndarray, w1: np.ndarray, w3: np.ndarray, w2: np.ndarray) -> np.ndarray:
    """SwiGLU FFN ``(silu(x W1) * (x W3)) W2`` (Shazeer 2020; Llama's FFN)."""
    a = x @ w1
    gate = a / (1.0 + np.exp(-a))
    return (gate * (x @ w3)) @ w2
