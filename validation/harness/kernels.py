"""Build the GPU callables of each case kind (imports torch lazily; runs on the GPU machine).

:func:`build` turns a case (see :mod:`validation.harness.cases`) into ``(fn, info)``: ``fn``
enqueues one call of the kernel(s) on random bf16 data (``torch.randn``, never zeros) and
``info`` holds extra fields for the record (how GQA was run, exact mask density, ...).

- GEMM: ``torch.matmul(A[M,K], B[K,N], out=C)`` (row-major, cuBLAS/cuBLASLt).
- SDPA: ``F.scaled_dot_product_attention`` on ``[B, H, S, D]`` tensors inside
  ``sdpa_kernel(<one backend>)``. GQA uses ``enable_gqa=True``; when the backend refuses it,
  K/V are expanded to Hq heads *before* timing (``gqa_impl = "expanded_kv"``), so the
  kernel reads Hq KV heads. Backward (``pass_ = "bwd"``) times only
  ``torch.autograd.grad(out, (q, k, v), dout, retain_graph=True)`` after one forward.
- Unfused attention: ``S = Q @ K^T`` (bf16 scores, Q pre-scaled), ``softmax(S)``, ``S @ V``.
- FlexAttention: ``torch.compile(flex_attention)`` with a random 128x128-block mask from
  ``create_block_mask``; the diagonal blocks are always kept; ``density`` is exact.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable

__all__ = ["build"]

Fn = Callable[[], object]

_compiled_flex = None

#: Largest K+V (bytes) materialized for a backend that refuses ``enable_gqa``.
_EXPANDED_KV_CAP_BYTES = 24 * 2**30


def _randn(*shape: int):  # noqa: ANN202 - torch tensor
    import torch

    return torch.randn(*shape, dtype=torch.bfloat16, device="cuda")


def _check_finite(t) -> None:  # noqa: ANN001
    import torch

    if not bool(torch.isfinite(t).all()):
        raise FloatingPointError("non-finite values in the output")


def _gemm(case: dict) -> tuple[Fn, dict]:
    import torch

    m, n, k = int(case["M"]), int(case["N"]), int(case["K"])
    a, b = _randn(m, k), _randn(k, n)
    c = torch.empty(m, n, dtype=torch.bfloat16, device="cuda")

    def fn() -> object:
        return torch.matmul(a, b, out=c)

    fn()
    _check_finite(c)
    return fn, {"layout": "A[M,K] @ B[K,N] row-major"}


def _backend(name: str):  # noqa: ANN202
    from torch.nn.attention import SDPBackend

    table = {
        "flash": SDPBackend.FLASH_ATTENTION,
        "cudnn": SDPBackend.CUDNN_ATTENTION,
        "efficient": SDPBackend.EFFICIENT_ATTENTION,
    }
    if name not in table:
        raise ValueError(f"backend: expected one of {sorted(table)}, got {name!r}")
    return table[name]


def _sdpa_call(q, k, v, backend, causal: bool, gqa: bool):  # noqa: ANN001, ANN202
    import torch.nn.functional as F  # noqa: N812
    from torch.nn.attention import sdpa_kernel

    with sdpa_kernel([backend]):
        if gqa:
            return F.scaled_dot_product_attention(q, k, v, is_causal=causal, enable_gqa=True)
        return F.scaled_dot_product_attention(q, k, v, is_causal=causal)


def _try_sdpa(q, k, v, backend, causal: bool, gqa: bool):  # noqa: ANN001, ANN202
    """Run once; on refusal raise RuntimeError carrying PyTorch's reasons (its warnings)."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            return _sdpa_call(q, k, v, backend, causal, gqa)
        except RuntimeError as exc:
            reasons = "; ".join(str(w.message).splitlines()[0] for w in caught)[:600]
            raise RuntimeError(f"{exc} [{reasons}]") from exc


def _attn(case: dict) -> tuple[Fn, dict]:
    import torch

    b, hq, hkv, sq, skv, d = (int(case[x]) for x in ("B", "Hq", "Hkv", "Sq", "Skv", "D"))
    causal, bwd = bool(case["causal"]), case["pass_"] == "bwd"
    backend = _backend(str(case["backend"]))
    q, k, v = _randn(b, hq, sq, d), _randn(b, hkv, skv, d), _randn(b, hkv, skv, d)
    info: dict = {"layout": "[B,H,S,D] contiguous"}
    gqa = hkv != hq
    if gqa:
        info["gqa_impl"] = "enable_gqa"
        try:
            _try_sdpa(q, k, v, backend, causal, True)
        except RuntimeError as exc:
            info["gqa_impl"] = "expanded_kv"
            info["gqa_note"] = str(exc)[:300]
            expanded = 2 * b * hq * skv * d * 2
            if expanded > _EXPANDED_KV_CAP_BYTES:
                raise RuntimeError(
                    f"backend refuses enable_gqa and expanded K/V would take "
                    f"{expanded / 2**30:.0f} GiB (cap "
                    f"{_EXPANDED_KV_CAP_BYTES / 2**30:.0f} GiB)"
                ) from exc
            k = k.repeat_interleave(hq // hkv, dim=1)
            v = v.repeat_interleave(hq // hkv, dim=1)
            gqa = False
    if not bwd:
        out = _try_sdpa(q, k, v, backend, causal, gqa)
        _check_finite(out)
        return (lambda: _sdpa_call(q, k, v, backend, causal, gqa)), info
    for t in (q, k, v):
        t.requires_grad_(True)
    out = _try_sdpa(q, k, v, backend, causal, gqa)
    dout = torch.randn_like(out)
    info["bwd_method"] = "torch.autograd.grad(out, (q,k,v), dout, retain_graph=True)"

    def fn() -> tuple[torch.Tensor, ...]:
        return torch.autograd.grad(out, (q, k, v), dout, retain_graph=True)

    _check_finite(fn()[0])
    return fn, info


def unfused_parts(case: dict) -> tuple[Fn, dict[str, Fn]]:
    """Unfused attention: the whole call and its three parts (``qk``, ``softmax``, ``pv``)."""
    import torch

    b, h, s, d = (int(case[x]) for x in ("B", "H", "S", "D"))
    q = _randn(b, h, s, d) * (d**-0.5)
    kt = _randn(b, h, s, d).transpose(-1, -2)
    v = _randn(b, h, s, d)
    scores = torch.empty(b, h, s, s, dtype=torch.bfloat16, device="cuda")
    out = torch.empty(b, h, s, d, dtype=torch.bfloat16, device="cuda")
    probs = torch.softmax(torch.matmul(q, kt, out=scores), dim=-1)

    def qk() -> object:
        return torch.matmul(q, kt, out=scores)

    def sm() -> object:
        return torch.softmax(scores, dim=-1)

    def pv() -> object:
        return torch.matmul(probs, v, out=out)

    def whole() -> object:
        return torch.matmul(torch.softmax(torch.matmul(q, kt, out=scores), dim=-1), v, out=out)

    whole()
    _check_finite(out)
    return whole, {"qk": qk, "softmax": sm, "pv": pv}


def _flex(case: dict) -> tuple[Fn, dict]:
    import torch
    from torch.nn.attention.flex_attention import create_block_mask, flex_attention

    global _compiled_flex
    if _compiled_flex is None:
        _compiled_flex = torch.compile(flex_attention, dynamic=False)
    b, h, s, d, blk = (int(case[x]) for x in ("B", "H", "S", "D", "block"))
    nb = s // blk
    gen = torch.Generator(device="cuda").manual_seed(int(case.get("seed", 0)))
    table = torch.rand(nb, nb, generator=gen, device="cuda") < float(case["density_target"])
    table.fill_diagonal_(True)

    def mask_mod(b_, h_, q_idx, kv_idx):  # noqa: ANN001, ANN202
        return table[q_idx // blk, kv_idx // blk]

    mask = create_block_mask(mask_mod, None, None, s, s, device="cuda", BLOCK_SIZE=blk)
    q, k, v = _randn(b, h, s, d), _randn(b, h, s, d), _randn(b, h, s, d)
    flex = _compiled_flex

    def fn() -> object:
        return flex(q, k, v, block_mask=mask)

    _check_finite(fn())
    info = {
        "density": float(table.float().mean().item()),
        "blocks_on": int(table.sum().item()),
        "blocks_total": nb * nb,
        "mask_sparsity_pct": float(mask.sparsity()),
    }
    return fn, info


def _ceiling(case: dict) -> tuple[Fn, dict]:
    import torch

    if case["name"] == "d2d_copy":
        n = int(case["bytes"]) // 4
        src = torch.randint(-(2**30), 2**30, (n,), dtype=torch.int32, device="cuda")
        dst = torch.empty_like(src)
        return (lambda: dst.copy_(src)), {}
    if case["name"] == "read_sum":
        x = _randn(int(case["bytes"]) // 2)
        return (lambda: x.sum()), {"op": "bf16 tensor.sum() (reads every byte once)"}
    if case["name"] == "write_fill":
        y = torch.empty(int(case["bytes"]) // 4, dtype=torch.int32, device="cuda")
        return (lambda: y.fill_(7)), {"op": "int32 tensor.fill_(7) (writes every byte once)"}
    return _gemm({"M": case["M"], "N": case["N"], "K": case["K"]})


def build(case: dict) -> tuple[Fn, dict]:
    """Return ``(fn, info)`` for a case; see the module docstring for each kind.

    Raises
    ------
    ValueError
        Unknown kind or backend. PyTorch errors (unsupported backend, out of memory)
        propagate to the caller, which records them.
    """
    kind = case["kind"]
    if kind == "gemm":
        return _gemm(case)
    if kind in ("attn", "decode"):
        return _attn(case)
    if kind == "attn_unfused":
        return unfused_parts(case)[0], {}
    if kind == "flex_block_sparse":
        return _flex(case)
    if kind == "ceiling":
        return _ceiling(case)
    raise ValueError(
        f"kind: expected gemm|attn|decode|attn_unfused|flex_block_sparse|ceiling, got {kind!r}"
    )
