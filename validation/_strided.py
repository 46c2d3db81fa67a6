"""PyTorch's element-wise kernels over non-contiguous operands: how many dimensions the
iterator walks, and the integer work that costs.

PyTorch's ``TensorIterator`` drops size-1 dimensions, orders the rest by the output's layout
and merges neighbours that every operand walks contiguously. When one dimension is left and
no operand is broadcast, the op runs ``vectorized_elementwise_kernel`` (16-byte loads,
bandwidth-bound). Otherwise it runs ``elementwise_kernel`` with an offset calculator: for
every element and every remaining dimension, a fast integer division (``IntDivider``:
multiply-high, shift, multiply-subtract) and, per operand, a multiply-add of index and
stride. That is integer work per element that grows with ``operands x dims``, issued on the
INT32 pipes (64 lanes per SM on Ampere and Hopper, half the FP32 lanes: NVIDIA H100 Tensor
Core GPU Architecture whitepaper, SM diagram), so a RoPE ``mul`` over a transposed
``[1, 32, 2048, 128]`` query runs at 1.4 TB/s on an H200 where a contiguous one streams at HBM
speed (``validation/data/h200_llama_layer.jsonl`` traces).

Integer instructions per element = ``BASE + PER_OPERAND_DIM x operands x dims``: two
calibrated constants fitted by :mod:`validation.fit_elementwise` on one committed trace and
checked on the others (see that module).
"""

from __future__ import annotations

from collections.abc import Sequence

__all__ = [
    "BASE",
    "INT32_PER_FP32",
    "PER_OPERAND_DIM",
    "iteration_dims",
    "offset_int_ops",
]

#: Integer instructions per element of a non-vectorised element-wise kernel, whatever its
#: operands (index arithmetic of the grid-stride loop, bounds, load/store address setup).
#: Fitted: ``python -m validation.fit_elementwise`` (H200 b1 prefill trace, 2026-12-05).
BASE = 25.3
#: Integer instructions per element per (operand x iterated dimension): the divmod and the
#: per-operand offset multiply-add of the offset calculator. Fitted with :data:`BASE`.
PER_OPERAND_DIM = 2.77
#: INT32 lanes per FP32 lane of an SM (64 vs 128 on Ampere/Hopper; whitepapers).
INT32_PER_FP32 = 0.5


def _broadcast(shape: Sequence[int], strides: Sequence[int], out: Sequence[int]) -> list[int]:
    """``strides`` of an operand of ``shape`` aligned to ``out`` (0 where it broadcasts)."""
    pad = len(out) - len(shape)
    full = [0] * pad + [int(s) for s in strides]
    dims = [1] * pad + [int(n) for n in shape]
    return [0 if d == 1 and o != 1 else st for d, st, o in zip(dims, full, out, strict=True)]


Operands = Sequence[tuple[Sequence[int], Sequence[int]]]


def iteration_dims(
    out_shape: Sequence[int], operands: Operands, *, dense_output: bool = True
) -> tuple[int, bool]:
    """(dimensions left after merging, vectorisable) for an element-wise op.

    ``operands``: ``(shape, strides)`` of each tensor input (elements). With
    ``dense_output`` the op allocates its output, dense and laid out like the first input of
    the output's shape (PyTorch's rule), else contiguous; without it the first operand is the
    output (``copy_`` into a view).
    """
    out = [int(n) for n in out_shape]
    nd = len(out)
    ins = [_broadcast(sh, st, out) for sh, st in operands if len(sh) == len(st) and sh]
    full = next(
        (_broadcast(sh, st, out) for sh, st in operands if list(sh) == out and len(st) == nd),
        None,
    )
    order = sorted(range(nd), key=lambda d: -(full[d] if full else nd - d))  # outer first
    dense = [0] * nd
    step = 1
    for d in reversed(order):
        dense[d] = step
        step *= out[d]
    strides = [dense, *ins] if dense_output else ins
    dims = [d for d in reversed(order) if out[d] != 1]  # innermost first
    merged: list[tuple[int, list[int]]] = []  # (size, stride per operand)
    for d in dims:
        st = [s[d] for s in strides]
        if merged:
            size, prev = merged[-1]
            if all(b == size * a for a, b in zip(prev, st, strict=True)):
                merged[-1] = (size * out[d], prev)
                continue
        merged.append((out[d], st))
    if not merged:
        return 0, True
    vectorised = len(merged) == 1 and all(s == 1 for s in merged[0][1])
    return len(merged), vectorised


def offset_int_ops(
    out_shape: Sequence[int], operands: Operands, *, dense_output: bool = True
) -> float:
    """Integer instructions per output element of the kernel PyTorch runs (0 when it is the
    vectorised kernel: its address arithmetic is negligible beside its 16-byte loads)."""
    ndim, vectorised = iteration_dims(out_shape, operands, dense_output=dense_output)
    if vectorised:
        return 0.0
    n_operands = int(dense_output) + sum(1 for sh, st in operands if sh and len(sh) == len(st))
    return BASE + PER_OPERAND_DIM * n_operands * ndim
