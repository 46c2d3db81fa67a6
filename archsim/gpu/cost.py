"""A kernel's work description, and the power-cap governor's estimate of it.

Every kernel model (GEMM, attention, decode, softmax...) reduces a launch to a
:class:`KernelCost`: per-CTA SM cycles and streamed bytes, the number of concurrent slots,
and whole-kernel DRAM traffic and FLOPs. The tile program it lowers to
(``mappings._gpu._lower``), run by the event engine, is what times it
(``mappings._gpu._run.run_kernels``). The program needs each kernel's SM clock, which the
power cap sets from the kernel's work rates; :func:`evaluate_kernel` is that governor: it
finds the highest clock whose board power meets the cap, with the kernel's closed-form
duration at each clock as the rate estimate (its time and energy are reported nowhere):

    CTA time(f)    = max(cycles / f, bytes / per-CTA stream bandwidth) + DRAM latency
    kernel time(f) = launch + max(list-schedule makespan(f), DRAM bytes / achievable BW)

The CTA schedule (which CTAs end up on the last-finishing slot) is computed once at the
boost clock; at other clocks the makespan is the sum over that critical slot.
NOTE: exact when all CTAs scale alike (all compute- or all memory-bound); otherwise the
critical slot may change by less than one CTA duration.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from .params import GpuModel
from .power import PowerPoint, solve_clock
from .waves import list_schedule

__all__ = [
    "RAMP_CATEGORIES",
    "KernelCost",
    "KernelTiming",
    "OpPrediction",
    "dirty_writebacks",
    "evaluate_kernel",
    "evaluate_op",
    "kernel_ramp_s",
]


@dataclass(frozen=True)
class KernelCost:
    """Work of one kernel launch.

    Attributes
    ----------
    name : kernel name (as a profiler would show a family of it, e.g. ``flash_fwd_kernel``).
    category : ``gemm``, ``attn_fwd``, ``attn_bwd``, ``softmax``, ``elementwise``, ``reduce``.
    cta_cycles : SM cycles each CTA needs at full speed, shape ``(ctas,)``; already
        includes the slowdown from sharing its SM with the other resident CTAs.
    cta_bytes : bytes each CTA streams from L2/HBM, shape ``(ctas,)``.
    slots : concurrent CTAs (SMs x CTAs per SM).
    cta_stream_bytes_per_s : bandwidth one CTA can sustain (bytes in flight / latency).
    dram_read_bytes, dram_write_bytes : whole-kernel DRAM traffic (bytes).
    tensor_flops : tensor-core FLOPs (a multiply-add counts 2).
    alu_ops : FP32 + SFU operations (softmax etc.).
    order : CTA dispatch order (default launch order).
    meta : tiling and heuristics chosen (tile shape, CTAs/SM, splits...).
    trips : per-CTA main-loop trip counts (None for kernels without a tiled main loop).
    trip_cycles : SM cycles of one trip for one CTA alone on its SM (no sharing).
    trip_bytes : bytes one trip loads into shared memory. fixed_bytes : per-CTA bytes
        outside the loop (prologue loads + epilogue stores).
    trip_tensor_flops : tensor FLOPs of one trip. trip_alu_ops : FP32/SFU ops of one trip
        by kind (``exp``, ``add``, ``max``, ``mul``).
    ctas_per_sm : resident CTAs per SM. stages : shared-memory pipeline stages.
    trip_l2_bytes : bytes one trip reads from L2 when a CTA cluster multicasts a shared
        tile with TMA (read once from L2, written to every CTA of the cluster); None =
        ``trip_bytes``.
    ramp_s : in-kernel fixed time (s): prologue and epilogue around the CTAs' work, part of
        a profiler's kernel duration; None = :func:`kernel_ramp_s`'s rule.
    """

    name: str
    category: str
    cta_cycles: np.ndarray
    cta_bytes: np.ndarray
    slots: int
    cta_stream_bytes_per_s: float
    dram_read_bytes: float
    dram_write_bytes: float
    tensor_flops: float
    alu_ops: float = 0.0
    order: np.ndarray | None = None
    meta: Mapping[str, object] = field(default_factory=dict)
    trips: np.ndarray | None = None
    trip_cycles: float = 0.0
    trip_bytes: float = 0.0
    fixed_bytes: float = 0.0
    trip_tensor_flops: float = 0.0
    trip_alu_ops: Mapping[str, float] = field(default_factory=dict)
    ctas_per_sm: int = 1
    stages: int = 2
    trip_l2_bytes: float | None = None
    ramp_s: float | None = None

    @property
    def ctas(self) -> int:
        """Number of CTAs in the grid."""
        return int(np.asarray(self.cta_cycles).size)

    @property
    def dram_bytes(self) -> float:
        """DRAM bytes read + written."""
        return self.dram_read_bytes + self.dram_write_bytes


@dataclass(frozen=True)
class KernelTiming:
    """A kernel's predicted duration (s), clock (Hz), power (W), energy (J), DRAM bytes,
    tensor FLOPs and FP32/SFU ops."""

    name: str
    category: str
    time_s: float
    clock_hz: float
    power_w: float
    energy_j: float
    dram_read_bytes: float
    dram_write_bytes: float
    tensor_flops: float
    bound: str
    meta: Mapping[str, object] = field(default_factory=dict)
    alu_ops: float = 0.0


@dataclass(frozen=True)
class OpPrediction:
    """A sequence of kernels (one user-level operation) and its totals."""

    kernels: tuple[KernelTiming, ...]

    @property
    def time_s(self) -> float:
        """Total duration (s), kernels back to back."""
        return float(sum(k.time_s for k in self.kernels))

    @property
    def energy_j(self) -> float:
        """Total board energy (J), idle power included."""
        return float(sum(k.energy_j for k in self.kernels))

    @property
    def dram_read_bytes(self) -> float:
        """DRAM bytes read by all kernels."""
        return float(sum(k.dram_read_bytes for k in self.kernels))

    @property
    def dram_write_bytes(self) -> float:
        """DRAM bytes written by all kernels."""
        return float(sum(k.dram_write_bytes for k in self.kernels))

    @property
    def avg_power_w(self) -> float:
        """Time-averaged board power (W)."""
        t = self.time_s
        return self.energy_j / t if t > 0 else 0.0

    @property
    def clock_hz(self) -> float:
        """Time-weighted SM clock (Hz)."""
        t = self.time_s
        return sum(k.clock_hz * k.time_s for k in self.kernels) / t if t > 0 else 0.0


#: Kernel categories that pay the calibrated in-kernel ramp (``ramp_s``): tensor-core
#: kernels with a multi-stage prologue and an epilogue. Memory-bound element-wise, softmax and
#: reduce kernels carry their own launch structure (:mod:`archsim.gpu.launch`).
RAMP_CATEGORIES = frozenset({"gemm", "attn_fwd", "attn_bwd"})


def kernel_ramp_s(cost: KernelCost, model: GpuModel) -> float:
    """In-kernel fixed time of ``cost`` (s): its own ``ramp_s``, else the calibrated
    ``ramp_s`` for tensor-core kernels (:data:`RAMP_CATEGORIES`) and 0 for the rest."""
    if cost.ramp_s is not None:
        return float(cost.ramp_s)
    return model.cal.ramp_s if cost.category in RAMP_CATEGORIES else 0.0


def evaluate_kernel(
    cost: KernelCost,
    model: GpuModel,
    *,
    cap_w: float | None = None,
    max_clock_hz: float | None = None,
    first: bool = True,
    writeback_bytes: float = 0.0,
) -> KernelTiming:
    """Time, clock and energy of one kernel under the power cap (see module notes).

    ``max_clock_hz`` lifts the boost-clock ceiling (calibration only, see ``solve_clock``).
    ``writeback_bytes``: dirty L2 lines left by earlier work that this kernel's fills evict
    (DRAM writes, bytes). The kernel pays ``launch_s`` (first) or ``gap_s`` (outside the
    kernel) plus its in-kernel ramp (:func:`kernel_ramp_s`).
    """
    hw, cal = model.hw, model.cal
    cyc = np.asarray(cost.cta_cycles, dtype=float)
    byt = np.asarray(cost.cta_bytes, dtype=float)
    bw_cta = max(cost.cta_stream_bytes_per_s, 1.0)
    lat = hw.dram_latency_s

    def durations(f: float) -> np.ndarray:
        return np.maximum(cyc / f, byt / bw_cta) + lat

    sched = list_schedule(durations(hw.boost_clock_hz), cost.slots, order=cost.order)
    crit = sched.critical
    t_dram = (cost.dram_bytes + writeback_bytes) / model.hbm_eff_bytes_per_s

    fixed = (cal.launch_s if first else cal.gap_s) + kernel_ramp_s(cost, model)

    def time_at(f: float) -> float:
        span = float(durations(f)[crit].sum()) if crit.size else 0.0
        return fixed + max(span, t_dram)

    pp: PowerPoint = solve_clock(
        model,
        time_at,
        tensor_flops=cost.tensor_flops,
        alu_ops=cost.alu_ops,
        dram_bytes=cost.dram_bytes + writeback_bytes,
        cap_w=cap_w,
        max_clock_hz=max_clock_hz,
    )
    span = float(durations(pp.clock_hz)[crit].sum()) if crit.size else 0.0
    if t_dram >= span:
        bound = "dram"
    elif crit.size and float((byt[crit] / bw_cta).sum()) > float((cyc[crit] / pp.clock_hz).sum()):
        bound = "latency"
    else:
        bound = "compute"
    return KernelTiming(
        name=cost.name,
        category=cost.category,
        time_s=pp.time_s,
        clock_hz=pp.clock_hz,
        power_w=pp.power_w,
        energy_j=pp.energy_j,
        dram_read_bytes=cost.dram_read_bytes,
        dram_write_bytes=cost.dram_write_bytes,
        tensor_flops=cost.tensor_flops,
        bound=bound,
        meta={**cost.meta, "ctas": cost.ctas, "slots": cost.slots},
        alu_ops=cost.alu_ops,
    )


def evaluate_op(
    costs: Sequence[KernelCost],
    model: GpuModel,
    *,
    cap_w: float | None = None,
    max_clock_hz: float | None = None,
    l2_dirty_bytes: float = 0.0,
) -> OpPrediction:
    """Evaluate the kernels of one call, launched back to back.

    The first pays ``launch_s``; each later one only ``gap_s`` (its launch overlapped the
    previous kernel's run). ``l2_dirty_bytes``: L2 lines left dirty by earlier work when the
    call starts (the measurement harness's flush); the kernels' DRAM reads evict them in
    order, each evicted line a DRAM write (:func:`dirty_writebacks`).
    """
    wbs = dirty_writebacks(costs, l2_dirty_bytes)
    return OpPrediction(
        tuple(
            evaluate_kernel(
                c, model, cap_w=cap_w, max_clock_hz=max_clock_hz, first=i == 0, writeback_bytes=wb
            )
            for i, (c, wb) in enumerate(zip(costs, wbs, strict=True))
        )
    )


def dirty_writebacks(costs: Sequence[KernelCost], l2_dirty_bytes: float) -> list[float]:
    """Bytes of dirty L2 lines each kernel's DRAM reads evict, in launch order (each read
    fills a line; a dirty victim is written back): ``min(dirty left, bytes read)``."""
    left = max(float(l2_dirty_bytes), 0.0)
    out = []
    for c in costs:
        wb = min(left, float(c.dram_read_bytes))
        left -= wb
        out.append(wb)
    return out
