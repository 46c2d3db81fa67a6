"""Chunked gated linear attention (``gla``): GLA's chunkwise form with data-dependent gates.

Gated linear attention (Yang et al., ICML'24) keeps a matrix state per head that
decays per key feature with a data-dependent forget gate ``alpha_t`` in ``(0, 1]^D``:
``S_t = diag(alpha_t) S_{t-1} + k_t^T v_t``, ``o_t = q_t S_t``. The input is the log gate
``LG = log alpha`` (``[b,h,p,e]``, fp32; GLA computes it from the token as
``logsigmoid(x W) / tau``). The chunkwise form splits positions into chunks of
``C`` (``p -> pc, pi``, ``m -> mc, mi``) and uses the cumulative log gate within a chunk: a
scan over positions that restarts at every chunk, ``CG[p+1] = CG[p] RS[p] + LG[p]`` with the
input table ``RS[p]`` = 0 at a chunk's first position, else 1 (FLA's kernels take this
"cumulative sum of log decay" precomputed), so ``CI[p] = CG[p+1]`` is the inclusive sum within
the chunk; ``GT[mc]`` is the chunk's total:

- intra-chunk: gated queries and keys ``QG = Q exp(CI)``, ``KG = K exp(-CI)``, masked
  attention without softmax ``AI = QG . KG if mi <= pi`` and ``OI = sum AI * V``;
- inter-chunk: the state over chunks ``ST[mc+1] = ST[mc] exp(GT[mc]) + KD^T V`` with the
  chunk's total log gate ``GT`` and the keys decayed to the chunk's end
  ``KD = K exp(GT - CI)``, and ``OX = QG . ST[pc]``;
- ``O = OI + OX``.

``KG`` grows as ``exp(-CI)`` along a chunk: this is the form GLA calls numerically unstable
for long chunks (its kernel computes the diagonal sub-blocks in log space, secondary
chunking); the cascade states the algorithm's arithmetic, which is the same.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from ._models import ModelPreset
from ._registry import Param, Params, WorkloadDef, register
from ._text import param_lines

__all__ = ["GLA", "chunk_reset", "gated_linear_attention"]


def _params() -> tuple[Param, ...]:
    return (
        Param("B", 1, "batch size"),
        Param("H", 32, "heads"),
        Param("S", 4096, "sequence length, tokens"),
        Param("D", 128, "query/key head dimension (gated features), elements"),
        Param("Dv", None, "value head dimension, elements (default D)"),
        Param("C", 64, "chunk length, tokens"),
        Param(
            "dtype_bits", 16, "bits per Q/K/V/O element (gates are fp32)", choices=(4, 8, 16, 32)
        ),
    )


def _derive(p: Params) -> None:
    p.setdefault("Dv", p["D"])


def _text(p: Params) -> str:
    bits = p["dtype_bits"]
    nc = -(-int(p["S"]) // int(p["C"]))
    lines = param_lines({**p, "NC": nc}, ("B", "H", "S", "D", "Dv", "C", "NC"))
    lines += [
        "rank p : S",
        "rank m : S",
        "rank e : D",
        "rank f : Dv",
        "rank p -> pc, pi : C",
        "rank m -> mc, mi : C",
        "rank pc : NC",
        "rank mc : NC",
        f"tensor Q[b,h,p,e] : bits={bits}",
        f"tensor K[b,h,m,e] : bits={bits}",
        f"tensor V[b,h,m,f] : bits={bits}",
        "tensor LG[b,h,p,e] : fp32",
        "tensor RS[p] : fp32",
        "CG[b,h,p+1,e] = CG[b,h,p,e] * RS[p] + LG[b,h,p,e] init 0",
        "CI[b,h,p,e] = CG[b,h,p+1,e]",
        "GT[b,h,mc,e] = sum(mi) LG[b,h,mc,mi,e]",
        "QG[b,h,pc,pi,e] = Q[b,h,pc,pi,e] * exp(CI[b,h,pc,pi,e])",
        "KG[b,h,mc,mi,e] = K[b,h,mc,mi,e] * exp(-CI[b,h,mc,mi,e])",
        "AI[b,h,pc,pi,mi] = QG[b,h,pc,pi,e] * KG[b,h,pc,mi,e] if mi <= pi",
        "OI[b,h,pc,pi,f] = sum(mi) AI[b,h,pc,pi,mi] * V[b,h,pc,mi,f]",
        "KD[b,h,mc,mi,e] = K[b,h,mc,mi,e] * exp(GT[b,h,mc,e] - CI[b,h,mc,mi,e])",
        "KV[b,h,mc,e,f] = sum(mi) KD[b,h,mc,mi,e] * V[b,h,mc,mi,f]",
        "EG[b,h,mc,e] = exp(GT[b,h,mc,e])",
        "ST[b,h,mc+1,e,f] = ST[b,h,mc,e,f] * EG[b,h,mc,e] + KV[b,h,mc,e,f] init 0",
        "OX[b,h,pc,pi,f] = sum(e) QG[b,h,pc,pi,e] * ST[b,h,pc,e,f]",
        "O[b,h,p,f] = OI[b,h,p,f] + OX[b,h,p,f]",
    ]
    return "\n".join(lines) + "\n"


def gated_linear_attention(
    q: np.ndarray, k: np.ndarray, v: np.ndarray, log_gates: np.ndarray
) -> np.ndarray:
    """The recurrent form, token by token: ``S_t = diag(exp(LG_t)) S_{t-1} + k_t^T v_t``,
    ``o_t = q_t S_t``. Shapes ``(B, H, S, D)`` x3 (``v``: ``Dv``) -> ``(B, H, S, Dv)``."""
    b, h, s, d = q.shape
    state = np.zeros((b, h, d, v.shape[-1]))
    out = np.zeros((b, h, s, v.shape[-1]))
    for t in range(s):
        state = np.exp(log_gates[:, :, t, :])[..., None] * state
        state = state + k[:, :, t, :, None] * v[:, :, t, None, :]
        out[:, :, t, :] = np.einsum("bhd,bhdf->bhf", q[:, :, t, :], state)
    return out


def chunk_reset(s: int, c: int) -> np.ndarray:
    """``RS[p]``: 0 at the first position of every chunk of ``c``, else 1."""
    return (np.arange(s) % c != 0).astype(float)


def _inputs(p: Params, sizes: Mapping[str, int], rng: np.random.Generator) -> dict[str, np.ndarray]:
    shape = (sizes["b"], sizes["h"], sizes["p"], sizes["e"])
    return {
        "LG": rng.uniform(-0.5, 0.0, size=shape),  # gates alpha in [0.61, 1]
        "RS": chunk_reset(int(sizes["p"]), int(p["C"])),
    }


def _reference(p: Params, x: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    return {"O": gated_linear_attention(x["Q"], x["K"], x["V"], x["LG"])}


def _from_model(m: ModelPreset) -> Params:
    return {"B": m.batch, "H": m.heads, "S": m.seq, "D": m.head_dim, "Dv": m.v_head_dim}


GLA = register(
    WorkloadDef(
        name="gla",
        summary="chunked gated linear attention (GLA: per-feature data-dependent forget gates)",
        params=_params(),
        build=_text,
        reference=_reference,
        derive=_derive,
        from_model=_from_model,
        inputs=_inputs,
        verify=(
            {"B": 1, "H": 2, "S": 7, "D": 3, "C": 3},
            {"B": 2, "H": 1, "S": 8, "D": 2, "Dv": 3, "C": 4},
            {"B": 1, "H": 1, "S": 9, "D": 3, "Dv": 2, "C": 2},
        ),
    )
)
