"""Memory-bound kernels (softmax, elementwise) and unfused attention.

Unfused attention is three kernels per call: a batched GEMM ``S = Q K^T`` (B*H GEMMs of
S x S x d), a row softmax that reads and writes the S x S scores, and a batched GEMM
``O = P V``. The scores round-trip through HBM: 2 x B H S^2 x bytes each way, which is
what fusion removes.
"""

from __future__ import annotations

import math

import numpy as np

from .cost import KernelCost
from .gemm import gemm_costs
from .params import GpuModel, dtype_bytes

__all__ = ["streaming_cost", "softmax_cost", "unfused_attention_costs"]


def streaming_cost(
    model: GpuModel,
    *,
    name: str,
    category: str,
    read_bytes: float,
    write_bytes: float,
    alu_ops: float,
    ctas: int | None = None,
    bytes_in_flight_per_cta: float = 16384.0,
) -> KernelCost:
    """A kernel that streams ``read_bytes`` in and ``write_bytes`` out with light ALU work."""
    hw = model.hw
    total = read_bytes + write_bytes
    n = ctas or max(1, min(hw.sms * 16, math.ceil(total / 32768)))
    slots = hw.sms * 8
    # a CTA shares its SM's FP32 lanes with the other resident CTAs (KernelCost.cta_cycles
    # includes that slowdown): up to slots/sms of them when the grid fills every slot
    sharing = max(1.0, min(n, slots) / hw.sms)
    return KernelCost(
        name=name,
        category=category,
        cta_cycles=np.full(n, alu_ops / n / hw.fp32_ops_per_clk * sharing),
        cta_bytes=np.full(n, total / n),
        slots=slots,
        cta_stream_bytes_per_s=bytes_in_flight_per_cta / hw.dram_latency_s,
        dram_read_bytes=float(read_bytes),
        dram_write_bytes=float(write_bytes),
        tensor_flops=0.0,
        alu_ops=float(alu_ops),
    )


def softmax_cost(model: GpuModel, *, rows: int, cols: int, dtype: str = "bf16") -> KernelCost:
    """Row softmax over ``rows x cols`` (read once, write once; exp + 4 FP32 ops/element).

    PyTorch's ``cunn_SoftMaxForward`` keeps a row in registers/shared memory when it fits,
    so the scores are read once.
    """
    e = dtype_bytes(dtype)
    n = float(rows) * cols
    return streaming_cost(
        model,
        name="cunn_SoftMaxForward",
        category="softmax",
        read_bytes=n * e,
        write_bytes=n * e,
        alu_ops=5.0 * n,
        ctas=max(1, min(rows, model.hw.sms * 16)),
    )


def unfused_attention_costs(
    model: GpuModel, *, B: int, H: int, S: int, D: int, dtype: str = "bf16", Skv: int | None = None
) -> list[KernelCost]:
    """``Q K^T`` bmm, softmax, ``P V`` bmm as separate kernels (scores in HBM)."""
    skv = S if Skv is None else Skv
    qk = gemm_costs(S, skv, D, model, dtype=dtype, batch=B * H)
    sm = softmax_cost(model, rows=B * H * S, cols=skv, dtype=dtype)
    pv = gemm_costs(S, D, skv, model, dtype=dtype, batch=B * H)
    return [*qk, sm, *pv]
