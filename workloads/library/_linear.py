"""Chunked causal linear attention (``linear``): Lightning Attention-2 / GLA without gates.

Linear attention drops the softmax: ``O[i] = sum_{j <= i} g**(i-j) (q_i . k_j) v_j`` with a
scalar decay ``g`` (``decay``; 1 = none, as in Lightning Attention-2, Qin et al.,
arXiv 2401.04658; RetNet-style decay otherwise). The chunked form (GLA, Yang et al.,
ICML'24, Sec. 3) splits positions into chunks of ``C`` (``p -> pc, pi : C`` for queries,
``m -> mc, mi : C`` for keys):

- intra-chunk: masked attention without softmax,
  ``AI[pc,pi,mi] = Q[pc,pi] . K[pc,mi] if mi <= pi``, ``OI = sum AI * V[pc,mi]``;
- inter-chunk: a running state over chunks ``ST[mc+1] = g**C ST[mc] + sum_mi K V`` and
  ``OX = Q . ST[pc]`` (the state before chunk ``pc``);
- ``O = OI + OX``.

With decay, the position factors are small input tables computed from ``decay``:
``DM[pi,mi] = g**(pi-mi)``, ``DK[mi] = g**(C-1-mi)``, ``DQ[pi] = g**(pi+1)``.
The intra-chunk product reads the keys of the query's own chunk, ``K[b,h,pc,mi,e]``: a
split tensor may be indexed by any pair of ranks of the sizes of its split (``pc`` and
``mc`` both have size ``NC``), so counting sees exactly the ``C (C+1) / 2`` pairs per
chunk (and keys past ``S`` in the last chunk are absent).
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from . import _reference as ref
from ._models import ModelPreset
from ._registry import Param, Params, WorkloadDef, register, require
from ._text import param_lines

__all__ = ["LINEAR", "decay_tables"]


def _params() -> tuple[Param, ...]:
    return (
        Param("B", 1, "batch size"),
        Param("H", 32, "heads"),
        Param("S", 4096, "sequence length, tokens"),
        Param("D", 128, "query/key head dimension, elements"),
        Param("Dv", None, "value head dimension, elements (default D)"),
        Param("C", 64, "chunk length, tokens"),
        Param("decay", 1.0, "scalar decay g in (0, 1]; 1 = no decay", kind=float, minimum=1e-9),
        Param("dtype_bits", 16, "bits per input element", choices=(4, 8, 16, 32)),
    )


def _derive(p: Params) -> None:
    p.setdefault("Dv", p["D"])
    require(float(p["decay"]) <= 1.0, "linear", "decay", "0 < decay <= 1", p["decay"])


def _text(p: Params) -> str:
    bits = p["dtype_bits"]
    nc = -(-int(p["S"]) // int(p["C"]))
    decayed = float(p["decay"]) < 1.0
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
    ]
    q, k, a = "Q", "K", "AI"
    if decayed:
        lines += [
            f"param GC = {float(p['decay']) ** int(p['C'])!r}",
            "tensor DM[pi,mi] : fp32",
            "tensor DK[mi] : fp32",
            "tensor DQ[pi] : fp32",
            "QD[b,h,pc,pi,e] = Q[b,h,pc,pi,e] * DQ[pi]",
            "KD[b,h,mc,mi,e] = K[b,h,mc,mi,e] * DK[mi]",
        ]
        q, k, a = "QD", "KD", "AD"
    lines.append("AI[b,h,pc,pi,mi] = Q[b,h,pc,pi,e] * K[b,h,pc,mi,e] if mi <= pi")
    if decayed:
        lines.append("AD[b,h,pc,pi,mi] = AI[b,h,pc,pi,mi] * DM[pi,mi]")
    state = "ST[b,h,mc,e,f] * GC" if decayed else "ST[b,h,mc,e,f]"
    lines += [
        f"OI[b,h,pc,pi,f] = sum(mi) {a}[b,h,pc,pi,mi] * V[b,h,pc,mi,f]",
        f"KV[b,h,mc,e,f] = sum(mi) {k}[b,h,mc,mi,e] * V[b,h,mc,mi,f]",
        f"ST[b,h,mc+1,e,f] = {state} + KV[b,h,mc,e,f] init 0",
        f"OX[b,h,pc,pi,f] = sum(e) {q}[b,h,pc,pi,e] * ST[b,h,pc,e,f]",
        "O[b,h,p,f] = OI[b,h,p,f] + OX[b,h,p,f]",
    ]
    return "\n".join(lines) + "\n"


def decay_tables(decay: float, c: int) -> dict[str, np.ndarray]:
    """``DM[pi,mi]`` (causal within a chunk), ``DK[mi]`` and ``DQ[pi]`` for decay ``g``."""
    i = np.arange(c)
    with np.errstate(divide="ignore"):
        dm = np.where(
            i[None, :] <= i[:, None], np.power(decay, (i[:, None] - i[None, :]).clip(min=0)), 0.0
        )
    return {"DM": dm, "DK": np.power(decay, c - 1 - i), "DQ": np.power(decay, i + 1)}


def _inputs(p: Params, sizes: Mapping[str, int], rng: np.random.Generator) -> dict[str, np.ndarray]:
    if float(p["decay"]) >= 1.0:
        return {}
    return decay_tables(float(p["decay"]), int(p["C"]))


def _reference(p: Params, x: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    return {"O": ref.linear_attention(x["Q"], x["K"], x["V"], float(p["decay"]))}


def _from_model(m: ModelPreset) -> Params:
    return {"B": m.batch, "H": m.heads, "S": m.seq, "D": m.head_dim, "Dv": m.v_head_dim}


LINEAR = register(
    WorkloadDef(
        name="linear",
        summary="chunked causal linear attention (intra-chunk masked + inter-chunk state; decay)",
        params=_params(),
        build=_text,
        reference=_reference,
        derive=_derive,
        from_model=_from_model,
        inputs=_inputs,
        verify=(
            {"B": 1, "H": 2, "S": 7, "D": 3, "C": 3},
            {"B": 2, "H": 1, "S": 8, "D": 2, "Dv": 3, "C": 4},
            {"B": 1, "H": 2, "S": 7, "D": 2, "C": 2, "decay": 0.8},
            {"B": 1, "H": 1, "S": 9, "D": 3, "Dv": 2, "C": 4, "decay": 0.5},
        ),
    )
)
