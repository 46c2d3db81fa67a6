"""Memory-bound kernels (elementwise, launch chains) and unfused attention.

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
from .launch import Launch, engine_load_latency_s, round_latency_s
from .params import GpuModel
from .softmax import softmax_cost
from .waves import ctas_per_slot

__all__ = ["launch_cost", "streaming_cost", "softmax_cost", "unfused_attention_costs"]


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
        # the slowdown ``cta_cycles`` includes: the event lowering runs each CTA's own cycles
        # and lets the engine share the SM between the resident CTAs itself
        meta={"sm_sharing": sharing},
    )


def launch_cost(
    model: GpuModel,
    launch: Launch,
    *,
    name: str,
    category: str,
    read_bytes: float,
    write_bytes: float,
    alu_ops: float,
) -> KernelCost:
    """A memory-bound kernel with the launch structure of :mod:`archsim.gpu.launch`.

    Each CTA runs its dependent rounds back to back, ``T = sum(count x round latency)``.
    Resident CTAs per SM follow the thread limit (``slots``); the grid's CTAs run on them in
    waves, and the CTAs one slot runs are folded into one work item (``k`` CTAs: ``k x T``),
    so the kernel's fixed latency (:func:`evaluate_kernel`'s ``+ latency`` per work item) is
    paid once, not once per wave. NOTE: exact for identical CTAs, which a launch rule gives.
    Little's law gives the stream bandwidth: a CTA's DRAM bytes over ``T``
    (``cta_stream_bytes_per_s``), so ``bytes / stream bandwidth = k T`` here. The event
    lowering runs a work item as ``k T / latency`` dependent loads of the engine's DRAM
    latency plus the kernel's fixed latency as one more (what :func:`evaluate_kernel` adds
    per work item), so both evaluators time a latency chain alike. The DRAM bytes
    (``read_bytes + write_bytes``) bound the kernel at the achievable HBM bandwidth as for
    every kernel; ``alu_ops`` run on the FP32 pipes, shared with the CTAs resident beside.
    """
    hw = model.hw
    grid = max(1, int(launch.ctas))
    chain_s = sum(r.count * round_latency_s(model, r) for r in launch.rounds)
    chain_s = chain_s if chain_s > 0 else hw.dram_latency_s
    per_sm = max(1, min(hw.max_threads_per_sm // max(launch.threads, 1), hw.max_ctas_per_sm))
    slots = hw.sms * per_sm
    waves = ctas_per_slot(grid, slots)
    items = waves.size
    sharing = max(1.0, items / hw.sms)
    cta_stream = max(float(read_bytes) if read_bytes > 0 else float(write_bytes), 1.0) / grid
    alone = alu_ops / grid / hw.fp32_ops_per_clk  # SM cycles of one CTA alone on its SM
    # engine loads of one CTA: as many dependent loads as its chain holds
    lat_e = engine_load_latency_s(model)
    rounds = max(1, round(chain_s / lat_e))
    # and the latency evaluate_kernel adds once per work item (the kernel's fixed latency)
    fixed = round(hw.dram_latency_s / lat_e)
    # NOTE: the engine runs a load as its transfer, then its latency, so identical slots in
    # lockstep leave HBM idle while they all wait; when the slots' bytes in flight exceed
    # what HBM moves in one latency (the kernel is bandwidth-bound: Little's law) a slot
    # keeps two rounds in flight, so that the engine reaches the bandwidth the hardware
    # does. A latency-bound chain (few CTAs) keeps one: its rounds are dependent.
    # An issue-bound CTA (its SM cycles, shared with the CTAs resident beside it, outlast
    # its chain: strided kernels' offset arithmetic) hides its rounds the same way: while
    # some warps wait on a load the others issue, so the loads overlap the compute
    # (``evaluate_kernel``'s ``max(cycles / f, bytes / stream bandwidth)``).
    in_flight = items * (float(read_bytes) + float(write_bytes)) / grid / rounds
    issue_bound = alone * sharing / hw.boost_clock_hz > chain_s
    stages = 2 if in_flight > model.hbm_eff_bytes_per_s * lat_e or issue_bound else 1
    return KernelCost(
        name=name,
        category=category,
        cta_cycles=waves * alone * sharing,
        cta_bytes=waves * cta_stream,
        slots=slots,
        cta_stream_bytes_per_s=cta_stream / chain_s,
        dram_read_bytes=float(read_bytes),
        dram_write_bytes=float(write_bytes),
        tensor_flops=0.0,
        alu_ops=float(alu_ops),
        # the event lowering: the chain as dependent engine loads, one after the other
        # (stages 1), each of the engine's DRAM latency; its SM cycles are those of the CTA
        # alone (the engine shares the SM between the resident CTAs itself)
        trips=(waves * rounds + fixed).astype(np.int64),
        trip_cycles=max(alone * grid / items / float(np.mean(waves * rounds + fixed)), 1.0),
        trip_bytes=max(launch.bytes_per_cta / rounds, 1.0),
        ctas_per_sm=per_sm,
        stages=stages,
        meta={
            "launch": launch.kernel,
            "grid": grid,
            "threads": launch.threads,
            "rounds": "+".join(f"{r.count}x{r.level}" for r in launch.rounds),
            "chain_s": chain_s,
        },
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
