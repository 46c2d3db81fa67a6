"""Dense building blocks: ``gemm``, ``swiglu`` FFN, ``rmsnorm``, ``layernorm``, ``softmax``.

- ``gemm``: ``C[m,n] = A[m,k] * B[k,n]`` (``M x K`` by ``K x N``).
- ``swiglu``: the gated FFN of Llama/DeepSeek (Shazeer, arXiv 2002.05202):
  ``Y = (silu(X W1) * (X W3)) W2`` over ``T`` tokens, width ``Dm``, hidden ``F``.
- ``rmsnorm``: ``Y = X * rsqrt(mean(X^2) + eps) * G`` (Zhang & Sennrich, NeurIPS'19).
- ``layernorm``: ``Y = (X - mean) * rsqrt(var + eps) * G + BETA`` (Ba et al., 2016).
- ``softmax``: the stable 3-pass softmax over rows of ``X[r,n]`` (``R`` rows of ``N``).
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from . import _reference as ref
from ._models import ModelPreset
from ._registry import Param, Params, WorkloadDef, register
from ._text import param_lines

__all__ = ["GEMM", "SWIGLU", "RMSNORM", "LAYERNORM", "SOFTMAX"]

_BITS = Param("dtype_bits", 16, "bits per input element", choices=(4, 8, 16, 32))


def _tensors(bits: object, *decls: str) -> list[str]:
    return [f"tensor {d} : bits={bits}" for d in decls]


def _join(lines: list[str]) -> str:
    return "\n".join(lines) + "\n"


# --- gemm -----------------------------------------------------------------------------------
def _gemm_text(p: Params) -> str:
    return _join(
        param_lines(p, ("M", "N", "K"))
        + _tensors(p["dtype_bits"], "A[m,k]", "B[k,n]")
        + ["C[m,n] = A[m,k] * B[k,n]"]
    )


GEMM = register(
    WorkloadDef(
        name="gemm",
        summary="matrix multiply C[M,N] = A[M,K] B[K,N]",
        params=(
            Param("M", 4096, "rows of A and C"),
            Param("N", 4096, "columns of B and C"),
            Param("K", 4096, "reduction length"),
            _BITS,
        ),
        build=_gemm_text,
        reference=lambda p, x: {"C": x["A"] @ x["B"]},
        from_model=lambda m: {"M": m.batch * m.seq, "K": m.d_model, "N": m.ffn_dim},
        verify=({"M": 3, "N": 5, "K": 4}, {"M": 1, "N": 2, "K": 7}),
    )
)


# --- swiglu ---------------------------------------------------------------------------------
def _ffn_from_model(m: ModelPreset) -> Params:
    return {"T": m.batch * m.seq, "Dm": m.d_model, "F": m.moe_ffn_dim if m.experts else m.ffn_dim}


def _swiglu_text(p: Params) -> str:
    return _join(
        param_lines(p, ("T", "Dm", "F"))
        + ["rank t : T", "rank d : Dm", "rank o : Dm", "rank f : F"]
        + _tensors(p["dtype_bits"], "X[t,d]", "W1[d,f]", "W3[d,f]", "W2[f,o]")
        + [
            "G1[t,f] = X[t,d] * W1[d,f]",
            "U[t,f] = X[t,d] * W3[d,f]",
            "HS[t,f] = silu(G1[t,f]) * U[t,f]",
            "Y[t,o] = HS[t,f] * W2[f,o]",
        ]
    )


SWIGLU = register(
    WorkloadDef(
        name="swiglu",
        summary="SwiGLU FFN: (silu(X W1) * X W3) W2",
        params=(
            Param("T", 4096, "tokens (batch x sequence)"),
            Param("Dm", 4096, "model width d_model, elements"),
            Param("F", 14336, "FFN hidden width, elements (per expert for MoE presets)"),
            _BITS,
        ),
        build=_swiglu_text,
        reference=lambda p, x: {"Y": ref.swiglu(x["X"], x["W1"], x["W3"], x["W2"])},
        from_model=_ffn_from_model,
        verify=({"T": 3, "Dm": 4, "F": 5}, {"T": 2, "Dm": 3, "F": 7}),
    )
)


# --- norms ----------------------------------------------------------------------------------
def _norm_params() -> tuple[Param, ...]:
    return (
        Param("T", 4096, "tokens (rows)"),
        Param("Dm", 4096, "model width, elements"),
        Param("eps", 1e-6, "epsilon added to the variance", kind=float, minimum=0.0),
        _BITS,
    )


def _norm_from_model(m: ModelPreset) -> Params:
    return {"T": m.batch * m.seq, "Dm": m.d_model}


def _rmsnorm_text(p: Params) -> str:
    return _join(
        param_lines({**p, "EPS": p["eps"]}, ("T", "Dm", "EPS"))
        + ["rank t : T", "rank d : Dm"]
        + _tensors(p["dtype_bits"], "X[t,d]", "G[d]")
        + [
            "SS[t] = sum(d) X[t,d] * X[t,d]",
            "RS[t] = rsqrt(SS[t] / Dm + EPS)",
            "Y[t,d] = X[t,d] * RS[t] * G[d]",
        ]
    )


RMSNORM = register(
    WorkloadDef(
        name="rmsnorm",
        summary="RMSNorm: X * rsqrt(mean(X^2) + eps) * G",
        params=_norm_params(),
        build=_rmsnorm_text,
        reference=lambda p, x: {"Y": ref.rmsnorm(x["X"], x["G"], float(p["eps"]))},
        from_model=_norm_from_model,
        verify=({"T": 3, "Dm": 5}, {"T": 1, "Dm": 8, "eps": 0.1}),
    )
)


def _layernorm_text(p: Params) -> str:
    return _join(
        param_lines({**p, "EPS": p["eps"]}, ("T", "Dm", "EPS"))
        + ["rank t : T", "rank d : Dm"]
        + _tensors(p["dtype_bits"], "X[t,d]", "G[d]", "BETA[d]")
        + [
            "SX[t] = sum(d) X[t,d]",
            "XC[t,d] = X[t,d] - SX[t] / Dm",
            "SS[t] = sum(d) XC[t,d] * XC[t,d]",
            "RS[t] = rsqrt(SS[t] / Dm + EPS)",
            "Y[t,d] = XC[t,d] * RS[t] * G[d] + BETA[d]",
        ]
    )


LAYERNORM = register(
    WorkloadDef(
        name="layernorm",
        summary="LayerNorm: (X - mean) * rsqrt(var + eps) * G + BETA",
        params=_norm_params(),
        build=_layernorm_text,
        reference=lambda p, x: {"Y": ref.layernorm(x["X"], x["G"], x["BETA"], float(p["eps"]))},
        from_model=_norm_from_model,
        verify=({"T": 3, "Dm": 5}, {"T": 2, "Dm": 7, "eps": 0.01}),
    )
)


# --- softmax --------------------------------------------------------------------------------
def _softmax_text(p: Params) -> str:
    return _join(
        param_lines(p, ("R", "N"))
        + _tensors(p["dtype_bits"], "X[r,n]")
        + [
            "MX[r] = max(n) X[r,n]",
            "SN[r,n] = exp(X[r,n] - MX[r])",
            "SD[r] = sum(n) SN[r,n]",
            "Y[r,n] = SN[r,n] / SD[r]",
        ]
    )


def _softmax_ref(p: Params, x: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    return {"Y": ref.softmax(x["X"], axis=-1)}


SOFTMAX = register(
    WorkloadDef(
        name="softmax",
        summary="stable softmax over the rows of X[R,N] (max, exp, sum, divide)",
        params=(Param("R", 4096, "rows"), Param("N", 4096, "row length"), _BITS),
        build=_softmax_text,
        reference=_softmax_ref,
        from_model=lambda m: {"R": m.batch * m.heads * m.seq, "N": m.seq},
        verify=({"R": 3, "N": 5}, {"R": 1, "N": 9}),
    )
)
