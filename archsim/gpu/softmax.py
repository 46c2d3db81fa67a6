"""PyTorch's row softmax on a GPU: which kernel it launches, and why it is issue-bound.

``torch.softmax(x, -1)`` over ``rows x dim`` picks one of four kernels by the row width
(``aten/src/ATen/native/cuda/SoftMax.cu``, ``host_softmax``, v2.10; the kernel names and
launches are confirmed by ``validation/data/h100_kernel_probe.jsonl``):

* ``softmax_warp_forward`` (``PersistentSoftmax.cuh``) when ``dim <= 2048`` and a row is at most
  8 KiB: one warp per row (two when the padded row is <= 128), 128 threads per CTA, each lane
  holding ``next_pow2(dim) / 32`` elements in registers;
* else a CTA of ``block = min(dim, 1024)`` threads per row (``SoftMaxForward_getBlockSize``,
  rounded up to whole warps) and ``reg_cnt = ceil(dim / block)``:
  ``cunn_SoftMaxForwardReg`` when ``reg_cnt < 10`` (the row in registers, scalar loads),
  ``cunn_SoftMaxForwardSmem`` when the row fits the 48 KiB a CTA may use by default (the row in
  shared memory, 16-byte vector loads), else ``cunn_SoftMaxForward`` (the row re-read from
  L1/L2 for the max, the sum and the output passes).

Every path reads the row from DRAM once and writes it once, yet none is bandwidth-bound on a
Hopper GPU: the probe's Nsight Compute counters show 39-107 thread instructions per element
(index arithmetic, predicated register slots, two block reductions) and issue slots 50-82% busy,
and the kernels run 1.5-3x longer than their DRAM bytes allow. (The H200 measures the same
times as the H100 on these kernels, with 1.4x the bandwidth: ``validation/data/h200_check.jsonl``
unfused records, ``ms_softmax``.) So the time is ``max(bytes / bandwidth, instructions /
issue rate)``, where

* **instructions per row** are a linear function of the row's slots per path
  (:data:`INSTRUCTIONS`), fitted by least squares on the probe's ``smsp__inst_executed`` counts
  (``python -m validation.fit_softmax``); the register path executes its predicated-off slots
  too, which is why a row of 2056 costs 1.5x a row of 2048 + 8;
* the **issue rate** is 4 warp schedulers x 32 lanes per SM per clock (NVIDIA Hopper
  architecture whitepaper: four SM sub-partitions, one warp instruction each per clock) times
  the fraction of issue slots a scheduler fills with ``W`` resident warps,
  ``ISSUE_MAX x (1 - exp(-W / ISSUE_WARPS))`` (latency hiding by other warps), fitted on the
  same probe's ``smsp__issue_active`` against ``sm__warps_active``: counters, not times. ``W``
  follows from the launch and the registers the compiled kernel uses (:func:`softmax_launch`).

The kernel times of the probe and the unfused-attention records are the check (never fitted).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from .cost import KernelCost
from .occupancy import ctas_per_sm
from .params import GpuModel, dtype_bytes
from .waves import ctas_per_slot

__all__ = [
    "INSTRUCTIONS",
    "ISSUE_MAX",
    "ISSUE_WARPS",
    "SCHEDULERS_PER_SM",
    "SoftmaxLaunch",
    "issue_efficiency",
    "softmax_cost",
    "softmax_launch",
]

#: Warp schedulers (SM sub-partitions) per SM, each issuing one warp instruction per clock
#: (Volta through Hopper).
SCHEDULERS_PER_SM = 4
#: Thread instructions per row, ``c + a x slots + b x valid`` per kernel path, fitted on the
#: probe's ncu counts (H100, torch 2.11, bf16; fp32 within 6%): ``slots`` are the register
#: or vector slots a row's threads step through, ``valid`` the row's elements.
#: ``python -m validation.fit_softmax`` re-fits them from the probe's records
#: (``validation/data/h100_kernel_probe.jsonl``).
INSTRUCTIONS: dict[str, tuple[float, float, float]] = {
    "warp": (1408.0, 38.0, 0.0),
    "reg": (31065.0, 36.73, 36.73),
    "smem": (113568.0, 0.0, 40.37),
    "global": (113568.0, 0.0, 41.34),  # one width measured: smem's intercept
}
#: Issue slots a scheduler fills with many warps resident, and the warps per scheduler at
#: which it reaches 63% of that (fitted on the probe's ``smsp__issue_active`` vs
#: ``sm__warps_active`` counters, 15 kernels, residual <= 0.08).
ISSUE_MAX = 0.825
ISSUE_WARPS = 6.22
#: Registers per thread of the register-resident kernel by its ``reg_cnt`` template argument
#: (``registers per thread`` in the probe: 28/30/29/37/40 at 3/4/6/8/9; 5 and 7 taken from
#: their neighbours); the other paths: warp ``16 + elements per lane`` (48 at 1024, 80 at
#: 2048), shared-memory and global 32.
_REG_REGS = {3: 28, 4: 30, 5: 30, 6: 29, 7: 37, 8: 37, 9: 40}
_MAX_THREADS = 1024
_SMEM_PER_CTA = 48 * 1024  # sharedMemPerBlock without opt-in
_ILP_BYTES = 16  # sizeof(float4)


@dataclass(frozen=True)
class SoftmaxLaunch:
    """The kernel PyTorch launches for a row softmax.

    ``path``: ``warp``, ``reg``, ``smem`` or ``global``; ``ctas`` of ``threads``;
    ``rows_per_cta``; ``slots``: register / vector slots per row (elements, padding
    included); ``regs``: registers per thread; ``smem``: shared memory per CTA (bytes).
    """

    kernel: str
    path: str
    ctas: int
    threads: int
    rows_per_cta: int
    slots: int
    regs: int
    smem: int

    def instructions_per_row(self, dim: int) -> float:
        """Thread instructions one row costs (:data:`INSTRUCTIONS`)."""
        c, a, b = INSTRUCTIONS[self.path]
        return c + a * self.slots + b * dim


def _next_pow2(n: int) -> int:
    return 1 << max(0, math.ceil(math.log2(max(n, 1))))


def softmax_launch(rows: int, dim: int, elem: int) -> SoftmaxLaunch:
    """PyTorch's choice for ``rows`` rows of ``dim`` elements of ``elem`` bytes (module notes)."""
    rows, dim = max(int(rows), 1), max(int(dim), 1)
    if dim <= 2048 and dim * elem <= 8192:
        padded = _next_pow2(dim)
        per_warp = 2 if padded <= 128 else 1
        rows_per_cta = 4 * per_warp
        regs = 16 + max(padded // 32, 1) * per_warp
        return SoftmaxLaunch(
            "softmax_warp_forward", "warp", math.ceil(rows / rows_per_cta), 128,
            rows_per_cta, padded, regs, 0,
        )  # fmt: skip
    block = min(dim, _MAX_THREADS)
    block = 32 * math.ceil(block / 32)
    reg_cnt = math.ceil(dim / block)
    reduction = block // 32 * 4
    if reg_cnt < 10:
        return SoftmaxLaunch(
            "cunn_SoftMaxForwardReg", "reg", rows, block, 1, reg_cnt * block,
            _REG_REGS.get(reg_cnt, 40), reduction,
        )  # fmt: skip
    ilp = _ILP_BYTES // elem
    vec_slots = math.ceil(dim / ilp / block) * block * ilp
    if dim < (_SMEM_PER_CTA - reduction) // elem and dim % ilp == 0:
        return SoftmaxLaunch(
            "cunn_SoftMaxForwardSmem", "smem", rows, block, 1, vec_slots, 32,
            dim * elem + reduction,
        )  # fmt: skip
    return SoftmaxLaunch("cunn_SoftMaxForward", "global", rows, block, 1, vec_slots, 32, reduction)


def issue_efficiency(warps_per_scheduler: float) -> float:
    """Fraction of a scheduler's issue slots used with this many resident warps."""
    return ISSUE_MAX * (1.0 - math.exp(-max(warps_per_scheduler, 0.0) / ISSUE_WARPS))


def softmax_cost(
    model: GpuModel,
    *,
    rows: int,
    cols: int,
    dtype: str = "bf16",
    read_bytes: float | None = None,
    write_bytes: float | None = None,
) -> KernelCost:
    """Row softmax over ``rows x cols``: PyTorch's kernel for that width (module notes).

    DRAM: the input read once, the output written once (``read_bytes`` / ``write_bytes``
    override them for a fused run that reads or writes other tensors too). SM work: the
    path's instructions per row at the issue rate its occupancy allows; a CTA's cycles include
    the slowdown of the CTAs resident beside it (as :class:`KernelCost` requires).
    """
    hw = model.hw
    e = dtype_bytes(dtype)
    launch = softmax_launch(rows, cols, e)
    cps = ctas_per_sm(
        hw, threads=launch.threads, regs_per_thread=launch.regs, smem_bytes=launch.smem
    )
    resident = min(cps, max(1, math.ceil(launch.ctas / hw.sms)))
    warps = resident * launch.threads / 32 / SCHEDULERS_PER_SM
    lanes = SCHEDULERS_PER_SM * 32 * issue_efficiency(warps)  # thread instructions / clock / SM
    per_cta = launch.instructions_per_row(cols) * launch.rows_per_cta
    n = float(rows) * cols
    read = n * e if read_bytes is None else float(read_bytes)
    write = n * e if write_bytes is None else float(write_bytes)
    # the CTAs one slot runs, folded into one work item (as launch_cost does): a CTA's load
    # latency is hidden by the other warps, which the issue efficiency already counts, so
    # the kernel's one DRAM latency is paid once, not once per wave. NOTE: exact for
    # identical CTAs.
    waves = ctas_per_slot(launch.ctas, hw.sms * resident)
    return KernelCost(
        name=launch.kernel,
        category="softmax",
        cta_cycles=waves * per_cta / lanes * resident,
        cta_bytes=waves * (read + write) / launch.ctas,
        slots=hw.sms * resident,
        cta_stream_bytes_per_s=max(launch.threads * _ILP_BYTES, 4096) / hw.dram_latency_s,
        dram_read_bytes=read,
        dram_write_bytes=write,
        tensor_flops=0.0,
        alu_ops=5.0 * n,
        ctas_per_sm=resident,
        # the event lowering: one trip per CTA (its rows loaded, then its instructions), the
        # SM cycles of the CTA alone (the engine shares the SM between the resident slots),
        # the next CTA's load in flight while one computes (other warps hide the latency)
        trips=waves.astype(np.int64),
        trip_cycles=max(per_cta / lanes, 1.0),
        trip_bytes=max(read / launch.ctas, 1.0),
        stages=2,
        meta={
            "launch": launch.kernel,
            "path": launch.path,
            "threads": launch.threads,
            "regs": launch.regs,
            "ctas_per_sm": resident,
            "issue_efficiency": lanes / (SCHEDULERS_PER_SM * 32),
            "instructions": per_cta * launch.ctas,
            "grid": launch.ctas,
        },
    )
