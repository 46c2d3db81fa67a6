"""Sparse softmax attention: ``block_sparse`` (M x M blocks) and ``fg_sparse`` (M x 1 slices).

Both are dense attention whose score tensor carries a sparsity annotation, so the same
cascade describes the work and the counts scale by ``density``:

- ``block_sparse``: ``sparsity QK : block(M=block, density=d)`` -- whole M x M tiles of
  (key, query) are kept or skipped, as in block-sparse FlashAttention / FlexAttention
  (M = 64 typical).
- ``fg_sparse``: ``sparsity QK : slice(M=block, density=d)`` -- M x 1 slices (M queries
  against one key) are kept or skipped, as in FG-Attn (Durvasula et al., arXiv 2509.16518).

Both derive from one boolean mask over a coarse grid (tiles of ``block x block`` or
``block x 1`` elements of ``QK[.., m, p]``) expanded to elements; the executor draws it
deterministically from the annotation (``workloads`` sparsity masks, seed 0) and the direct
reference applies the very same mask. A query row left with no key outputs 0 (the
FlexAttention convention), so the 1-pass form initialises the running max to a finite
``-1e30`` and guards its final division with ``max(RD, 1e-30)``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

import numpy as np

from workloads import Sparsity
from workloads._sparsity import make_mask

from . import _reference as ref
from ._attention import attention_derive, attention_params, attention_text
from ._models import ModelPreset
from ._registry import Arrays, Param, Params, WorkloadDef, register, require
from ._text import heads

__all__ = ["BLOCK_SPARSE", "FG_SPARSE", "sparse_mask"]

_KIND = {"block_sparse": "block", "fg_sparse": "slice"}


def _params() -> tuple[Param, ...]:
    return (
        *attention_params(Hkv=None),
        Param("block", 64, "tile edge M: M x M blocks (block_sparse) or M x 1 slices"),
        Param("density", 0.5, "fraction of tiles kept, in (0, 1]", kind=float, minimum=1e-9),
    )


def _derive(name: str) -> Callable[[Params], None]:
    def derive(p: Params) -> None:
        attention_derive(p, name)
        require(float(p["density"]) <= 1.0, name, "density", "0 < density <= 1", p["density"])

    return derive


def _text(name: str) -> Callable[[Params], str]:
    def build(p: Params) -> str:
        ann = f"sparsity QK : {_KIND[name]}(M={p['block']}, density={p['density']})"
        text = attention_text(p, extra=(ann,), init="-1e30", split_scores=False)
        if int(p["passes"]) == 1:  # guard rows with no key (AV = 0 there)
            q = heads(p).q
            text = text.replace(f"/ RD[{q},M1,p]", f"/ max(RD[{q},M1,p], 1e-30)")
        return text

    return build


def sparse_mask(kind: str, p: Mapping[str, object]) -> np.ndarray:
    """The boolean (B, H, Sq, Skv) mask the annotation denotes (True = computed)."""
    h, hkv = int(p["H"]), int(p["Hkv"])  # type: ignore[call-overload]
    b, sq, skv = (int(p[k]) for k in ("B", "Sq", "Skv"))  # type: ignore[call-overload]
    block = int(p["block"])  # type: ignore[call-overload]
    density = float(p["density"])  # type: ignore[arg-type]
    sp = Sparsity(kind, density=density, tile=(("M", block),))  # type: ignore[arg-type]
    ranks: tuple[str, ...]
    shape: tuple[int, ...]
    if h == hkv:
        ranks, shape = ("b", "h", "m", "p"), (b, h, skv, sq)
    else:
        ranks, shape = ("b", "hkv", "g", "m", "p"), (b, hkv, h // hkv, skv, sq)
    mask = make_mask(sp, "QK", ranks, shape, {}, {}, seed=0)
    return np.swapaxes(mask.reshape(b, h, skv, sq), 2, 3)


def _reference(name: str) -> Callable[[Params, Mapping[str, np.ndarray]], Arrays]:
    def reference(p: Params, x: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        mask = sparse_mask(_KIND[name], p)
        if p["causal"]:
            mask = mask & ref.causal_mask(int(p["Sq"]), int(p["Skv"]))
        with np.errstate(invalid="ignore"):
            out = ref.attention(x["Q"], x["K"], x["V"], mask=mask)
        return {"AV": np.nan_to_num(out, nan=0.0)}  # rows with no key: 0

    return reference


def _from_model(m: ModelPreset) -> Params:
    return {
        "B": m.batch,
        "H": m.heads,
        "Hkv": m.kv_heads,
        "Sq": m.seq,
        "D": m.head_dim,
        "Dv": m.v_head_dim,
    }


def _verify(name: str) -> tuple[dict, ...]:
    shapes = (
        {"B": 1, "H": 2, "S": 7, "D": 3, "M0": 3, "block": 2, "density": 0.5},
        {"B": 1, "H": 4, "Hkv": 2, "Sq": 5, "Skv": 9, "D": 2, "M0": 4, "block": 3, "density": 0.4},
    )
    return tuple(
        {**s, "passes": passes, "causal": causal}
        for s in shapes
        for passes in (1, 2, 3)
        for causal in (False, True)
    )


BLOCK_SPARSE, FG_SPARSE = (
    register(
        WorkloadDef(
            name=name,
            summary=summary,
            params=_params(),
            build=_text(name),
            reference=_reference(name),
            derive=_derive(name),
            from_model=_from_model,
            aliases={"S": ("Sq", "Skv")},
            verify=_verify(name),
        )
    )
    for name, summary in (
        ("block_sparse", "block-sparse attention: M x M (key, query) blocks kept with density"),
        ("fg_sparse", "fine-grained sparse attention (FG-Attn): M x 1 slices kept with density"),
    )
)
