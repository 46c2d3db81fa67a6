"""PIM-GPT's GPU baseline as a model: one GPT decode step run through archsim's GPU model.

PIM-GPT (Wu et al., arXiv 2310.09385) compares token generation on its PIM system with a GPU
running the same model. This module builds that GPU side from the same graph the PIM side
executes, kernel by kernel, and times it with :mod:`archsim.gpu` (the calibrated kernel
models of the ``h100`` / ``a100`` presets):

per layer (GPT-2 block, pre-LayerNorm, batch 1, one new token over a ``context``-token cache)

1. LayerNorm 1 (streaming kernel)
2. QKV projection ``[1, d] x [d, 3d]`` (cuBLAS GEMV-shaped GEMM, bias fused)
3. K/V cache append (a copy kernel writing ``2 d`` elements)
4. decode attention over the cache (FlashAttention-2 split-KV kernel + combine)
5. output projection ``[1, d] x [d, d]``
6. residual add
7. LayerNorm 2
8. FFN up ``[1, d] x [d, 4d]``
9. GELU
10. FFN down ``[1, 4d] x [4d, d]``
11. residual add

then, once per token: token + position embedding gather, final LayerNorm and the LM head
``[1, d] x [d, vocab]``. All kernels are launched back to back in one stream
(:func:`archsim.gpu.evaluate_op`: the first pays the calibrated ``launch_s``, every later one
the calibrated inter-kernel ``gap_s``): a CUDA-graph-like replay with no Python/framework
time between kernels. Energy is the model's board energy (idle power included).
"""

from __future__ import annotations

from archsim.gpu import (
    KernelCost,
    decode_costs,
    evaluate_op,
    gemm_costs,
    gpu_model,
    streaming_cost,
)

__all__ = ["GPT2_VOCAB", "decode_step_kernels", "gpu_decode_step"]

#: GPT-2 BPE vocabulary (Radford et al. 2019); GPT-3 uses the same tokenizer.
GPT2_VOCAB = 50257
_ELT = 2  # fp16


def _stream(model, name: str, read: float, write: float, ops: float) -> KernelCost:  # noqa: ANN001
    return streaming_cost(
        model, name=name, category="elementwise", read_bytes=read, write_bytes=write, alu_ops=ops
    )


def decode_step_kernels(
    model,  # noqa: ANN001 - archsim.gpu.GpuModel
    *,
    layers: int,
    d: int,
    heads: int,
    context: int,
    vocab: int = GPT2_VOCAB,
) -> list[tuple[str, KernelCost]]:
    """The kernels of one batch-1 decode step, in launch order, each with its graph node.

    ``heads`` x ``d // heads`` is the attention width (as on the PIM side).
    """
    dh, ffn, e = d // heads, 4 * d, _ELT
    out: list[tuple[str, KernelCost]] = [
        ("embedding", _stream(model, "embedding_gather", 2 * d * e, d * e, d))
    ]

    def ln(tag: str) -> tuple[str, KernelCost]:
        return (tag, _stream(model, "layer_norm", 3 * d * e, d * e, 8 * d))

    for _ in range(layers):
        out.append(ln("ln1"))
        out += [("qkv", k) for k in gemm_costs(1, 3 * d, d, model, dtype="fp16")]
        out.append(("kv_append", _stream(model, "kv_cache_append", 2 * d * e, 2 * d * e, 0)))
        out += [
            ("attention", k)
            for k in decode_costs(
                model, B=1, Hq=heads, Hkv=heads, Skv=context, D=dh, family="split_kv", dtype="fp16"
            )
        ]
        out += [("out_proj", k) for k in gemm_costs(1, d, d, model, dtype="fp16")]
        out.append(("residual", _stream(model, "residual_add", 2 * d * e, d * e, d)))
        out.append(ln("ln2"))
        out += [("ffn_up", k) for k in gemm_costs(1, ffn, d, model, dtype="fp16")]
        out.append(("gelu", _stream(model, "gelu", ffn * e, ffn * e, 8 * ffn)))
        out += [("ffn_down", k) for k in gemm_costs(1, d, ffn, model, dtype="fp16")]
        out.append(("residual", _stream(model, "residual_add", 2 * d * e, d * e, d)))
    out.append(ln("ln_f"))
    out += [("lm_head", k) for k in gemm_costs(1, vocab, d, model, dtype="fp16")]
    return out


def gpu_decode_step(
    gpu: str, *, layers: int, d: int, heads: int, context: int, vocab: int = GPT2_VOCAB
) -> dict[str, float]:
    """Time and energy of one decode step on the ``gpu`` preset's model.

    Returns
    -------
    dict
        ``ms_per_token``, ``mJ_per_token``, ``kernels`` (launches per token),
        ``fixed_ms`` (the launch + inter-kernel gap part of the time), ``lm_head_ms``,
        ``attention_ms`` and ``dram_mb`` (bytes the kernels read and write).
    """
    model = gpu_model(gpu)
    tagged = decode_step_kernels(
        model, layers=layers, d=d, heads=heads, context=context, vocab=vocab
    )
    op = evaluate_op([k for _, k in tagged], model)
    by_tag: dict[str, float] = {}
    for (tag, _), kt in zip(tagged, op.kernels, strict=True):
        by_tag[tag] = by_tag.get(tag, 0.0) + kt.time_s
    n = len(op.kernels)
    fixed = model.cal.launch_s + (n - 1) * model.cal.gap_s
    return {
        "ms_per_token": op.time_s * 1e3,
        "mJ_per_token": op.energy_j * 1e3,
        "kernels": float(n),
        "fixed_ms": fixed * 1e3,
        "lm_head_ms": by_tag["lm_head"] * 1e3,
        "attention_ms": by_tag["attention"] * 1e3,
        "dram_mb": (op.dram_read_bytes + op.dram_write_bytes) / 1e6,
    }
