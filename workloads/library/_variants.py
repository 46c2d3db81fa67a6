"""Attention variants with projections: ``mla`` (DeepSeek), ``cca`` / ``ccgqa`` (Zyphra).

``mla`` -- Multi-head Latent Attention (DeepSeek-V2, arXiv 2405.04434, Sec. 2.1; DeepSeek-V3,
arXiv 2412.19437, Sec. 2.1) in its *absorbed* inference form: the cache holds one latent
``CKV[b,m,c]`` (``Dc = kv_lora_rank = 512``) and one shared RoPE key ``KR[b,m,r]`` (``Dr = 64``)
per token. ``W_UK`` is absorbed into the query (``QC = QN W_UK``), scores are taken over the
latent plus the RoPE part, the softmax-weighted sum stays in the latent space, and ``W_UV``
is applied last::

    QC[b,h,p,c] = QN[b,h,p,n] * WUK[h,n,c]
    QK[b,h,m,p] = QC . CKV  +  QR . KR           (two contractions, then +)
    AV[b,h,p,c] = sum(m) softmax(QK) * CKV
    O[b,h,p,f]  = AV[b,h,p,c] * WUV[h,c,f]

It is checked against the non-absorbed form (``_reference.mla_attention``).

``cca`` -- Compressed Convolutional Attention (Figliolia et al., Zyphra, arXiv 2510.04476):
attention runs in a latent space ``C`` times smaller than ``d_model = H*D``. We model it as
down-projections of the inputs to ``Hc = H / C`` latent heads of dimension ``D``
(``XQ . WQ``, ``XKV . WK``, ``XKV . WV``), softmax attention among those heads, and an
up-projection ``WO`` back to ``d_model``. The paper's short causal convolutions over q/k and
its value shift are element-wise/small and left out: they do not change the attention MACs,
which shrink by ``C``. ``ccgqa`` adds kv-head sharing in the latent space (``Hkv < Hc``).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

import numpy as np

from . import _reference as ref
from ._attention import attention_derive, attention_params, score_line
from ._models import ModelPreset
from ._registry import Param, Params, WorkloadDef, register, require
from ._text import causal_cond, heads, key_index, param_lines, softmax_av, split_lines

__all__ = ["MLA", "CCA", "CCGQA"]


# --- MLA ------------------------------------------------------------------------------------
def _mla_params() -> tuple[Param, ...]:
    return (
        Param("B", 1, "batch size"),
        Param("H", 128, "attention heads (DeepSeek-V3: 128)"),
        Param("Sq", 4096, "query length, tokens"),
        Param("Skv", None, "key/value (cache) length, tokens (default Sq)"),
        Param("Dc", 512, "latent KV width kv_lora_rank, elements"),
        Param("Dr", 64, "decoupled RoPE key width, elements"),
        Param("Dn", 128, "non-RoPE query/key head width (qk_nope_head_dim), elements"),
        Param("Dv", 128, "value head width, elements"),
        Param("causal", False, "bottom-right aligned causal mask", kind=bool),
        Param("passes", 1, "softmax form (1, 2, 3)", choices=(1, 2, 3)),
        Param("M0", 64, "key tile of the 1/2-pass forms, keys"),
        Param("dtype_bits", 16, "bits per input element", choices=(4, 8, 16, 32)),
    )


def _mla_derive(p: Params) -> None:
    p.setdefault("Skv", p["Sq"])
    if p.get("causal"):
        require(int(p["Sq"]) <= int(p["Skv"]), "mla", "Sq", f"Sq <= Skv = {p['Skv']}", p["Sq"])


def _mla_text(p: Params) -> str:
    passes = int(p["passes"])
    mi = key_index(passes)
    hd = heads({"H": p["H"], "Hkv": p["H"]})
    bits = p["dtype_bits"]
    lines = param_lines(p, ("B", "H", "Sq", "Skv", "Dc", "Dr", "Dn", "Dv", "M0"))
    lines += [
        *hd.lines,
        "rank p : Sq",
        "rank m : Skv",
        "rank c : Dc",
        "rank r : Dr",
        "rank n : Dn",
        "rank f : Dv",
        *split_lines(passes),
    ]
    lines += [
        f"tensor {t} : bits={bits}"
        for t in (
            "QN[b,h,p,n]",
            "QR[b,h,p,r]",
            "CKV[b,m,c]",
            "KR[b,m,r]",
            "WUK[h,n,c]",
            "WUV[h,c,f]",
        )
    ]
    lines += [
        "QC[b,h,p,c] = QN[b,h,p,n] * WUK[h,n,c]",
        f"QKC[b,h,{mi},p] = QC[b,h,p,c] * CKV[b,{mi},c]",
        f"QKR[b,h,{mi},p] = QR[b,h,p,r] * KR[b,{mi},r]",
        f"QK[b,h,{mi},p] = QKC[b,h,{mi},p] + QKR[b,h,{mi},p]{causal_cond(p)}",
        *softmax_av(passes, hd, lambda k: f"CKV[b,{k},c]", f="c"),
        "O[b,h,p,f] = sum(c) AV[b,h,p,c] * WUV[h,c,f]",
    ]
    return "\n".join(lines) + "\n"


def _mla_reference(p: Params, x: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    return {
        "O": ref.mla_attention(
            x["QN"], x["QR"], x["CKV"], x["KR"], x["WUK"], x["WUV"], causal=bool(p["causal"])
        )
    }


def _mla_from_model(m: ModelPreset) -> Params:
    require(m.attention == "mla", "mla", "model", "a preset with MLA dims (deepseek-v3)", m.name)
    return {
        "B": m.batch,
        "H": m.heads,
        "Sq": m.seq,
        "Dc": m.kv_lora_rank,
        "Dr": m.rope_dim,
        "Dn": m.nope_dim,
        "Dv": m.v_head_dim,
    }


MLA = register(
    WorkloadDef(
        name="mla",
        summary="DeepSeek multi-head latent attention, absorbed form (latent cache + RoPE key)",
        params=_mla_params(),
        build=_mla_text,
        reference=_mla_reference,
        derive=_mla_derive,
        from_model=_mla_from_model,
        aliases={"S": ("Sq", "Skv")},
        verify=(
            {"B": 1, "H": 2, "S": 5, "Dc": 4, "Dr": 2, "Dn": 3, "Dv": 2, "M0": 2, "passes": 1},
            {
                "B": 2,
                "H": 1,
                "Sq": 3,
                "Skv": 7,
                "Dc": 3,
                "Dr": 2,
                "Dn": 2,
                "Dv": 3,
                "M0": 3,
                "passes": 1,
                "causal": True,
            },
            {
                "B": 1,
                "H": 2,
                "Sq": 4,
                "Skv": 5,
                "Dc": 3,
                "Dr": 1,
                "Dn": 2,
                "Dv": 2,
                "passes": 3,
                "causal": True,
            },
        ),
    )
)


# --- CCA / CCGQA ----------------------------------------------------------------------------
def _cca_params(hkv_doc: str) -> tuple[Param, ...]:
    base = [q for q in attention_params(H=32, S=4096, D=128) if q.name not in ("Hkv", "Dv")]
    return (
        *base,
        Param("C", 4, "compression factor: latent width = H*D / C"),
        Param("Hkv", None, hkv_doc),
    )


def _cca_derive(name: str, kv_div: int) -> Callable[[Params], None]:
    def derive(p: Params) -> None:
        require(int(p["H"]) % int(p["C"]) == 0, name, "C", f"a divisor of H = {p['H']}", p["C"])
        hc = int(p["H"]) // int(p["C"])
        p.setdefault("Hkv", max(1, hc // kv_div))
        p["Dv"] = p["D"]
        p["Hc"] = hc
        p["Dm"] = int(p["H"]) * int(p["D"])
        attention_derive(p, name, hq="Hc")
        del p["Dv"]

    return derive


def _cca_text(p: Params) -> str:
    passes = int(p["passes"])
    mi = key_index(passes)
    hd = heads({**p}, h="Hc")
    wq, wkv = hd.q[2:], hd.kv[2:]  # head ranks without the batch rank
    bits = p["dtype_bits"]
    lines = param_lines(p, ("B", "Hc", "Hkv", "Sq", "Skv", "D", "Dm", "M0"))
    lines += [
        *hd.lines,
        "rank p : Sq",
        "rank m : Skv",
        "rank e : D",
        "rank f : D",
        "rank d : Dm",
        "rank o : Dm",
        *split_lines(passes),
    ]
    lines += [
        f"tensor {t} : bits={bits}"
        for t in (
            "XQ[b,p,d]",
            "XKV[b,m,d]",
            "WQ[d,h,e]",
            f"WK[d,{wkv},e]",
            f"WV[d,{wkv},f]",
            "WO[h,f,o]",
        )
    ]
    lines += [
        f"Q[{hd.q},p,e] = XQ[b,p,d] * WQ[d,{wq},e]",
        f"K[{hd.kv},m,e] = XKV[b,m,d] * WK[d,{wkv},e]",
        f"V[{hd.kv},m,f] = XKV[b,m,d] * WV[d,{wkv},f]",
        score_line(p, hd, mi),
        *softmax_av(passes, hd, lambda k: f"V[{hd.kv},{k},f]"),
        f"O[b,p,o] = sum({wq},f) AV[{hd.q},p,f] * WO[{wq},f,o]",
    ]
    return "\n".join(lines) + "\n"


def _cca_reference(p: Params, x: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    hc, hkv, d = int(p["Hc"]), int(p["Hkv"]), int(p["D"])
    dm = x["XQ"].shape[-1]
    q = np.einsum("bpd,dhe->bhpe", x["XQ"], x["WQ"].reshape(dm, hc, d))
    k = np.einsum("bmd,dhe->bhme", x["XKV"], x["WK"].reshape(dm, hkv, d))
    v = np.einsum("bmd,dhe->bhme", x["XKV"], x["WV"].reshape(dm, hkv, d))
    o = ref.attention(q, k, v, causal=bool(p["causal"]))
    return {"O": np.einsum("bhpf,hfo->bpo", o, x["WO"].reshape(hc, d, dm))}


def _cca_from_model(m: ModelPreset) -> Params:
    return {"B": m.batch, "H": m.heads, "Sq": m.seq, "D": m.head_dim}


_CCA_SHAPES = (
    {"B": 1, "H": 4, "C": 2, "S": 5, "D": 2, "M0": 2, "passes": 1},
    {"B": 2, "H": 4, "C": 2, "Sq": 3, "Skv": 5, "D": 2, "M0": 3, "passes": 3, "causal": True},
    {"B": 1, "H": 6, "C": 3, "S": 4, "D": 2, "passes": 2, "causal": True, "M0": 3},
)

CCA = register(
    WorkloadDef(
        name="cca",
        summary="Compressed Convolutional Attention: attention among H/C latent heads",
        params=_cca_params("latent kv heads (default H/C: no sharing)"),
        build=_cca_text,
        reference=_cca_reference,
        derive=_cca_derive("cca", 1),
        from_model=_cca_from_model,
        aliases={"S": ("Sq", "Skv")},
        verify=_CCA_SHAPES,
    )
)

CCGQA = register(
    WorkloadDef(
        name="ccgqa",
        summary="CCA with grouped kv heads in the latent space (Hkv < H/C)",
        params=_cca_params("latent kv heads (default H/C/2)"),
        build=_cca_text,
        reference=_cca_reference,
        derive=_cca_derive("ccgqa", 2),
        from_model=_cca_from_model,
        aliases={"S": ("Sq", "Skv")},
        verify=tuple({**s, "H": 8, "C": 2, "Hkv": 2} for s in _CCA_SHAPES[:2]),
    )
)
