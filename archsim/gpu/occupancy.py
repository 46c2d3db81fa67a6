"""Occupancy: how many CTAs of a kernel fit on one SM at once.

The four limits are the CUDA occupancy calculator's: threads, registers (allocated per
warp in units of 256), shared memory (allocated in 1 KB units plus 1 KB reserved per CTA on
sm80/sm90), and the hardware CTA limit.
"""

from __future__ import annotations

from archsim.errors import InfeasibleMappingError

from .params import GpuHardware

__all__ = ["ctas_per_sm"]

_REG_UNIT = 256  # registers are allocated per warp in chunks of 256
_SMEM_UNIT = 1024  # shared memory allocation granularity (bytes)
_SMEM_RESERVED = 1024  # per-CTA system reservation on sm80+/sm90 (bytes)


def ctas_per_sm(hw: GpuHardware, *, threads: int, regs_per_thread: int, smem_bytes: int) -> int:
    """Resident CTAs per SM.

    Parameters
    ----------
    hw
        GPU hardware facts.
    threads
        Threads per CTA.
    regs_per_thread
        Registers per thread (<= 255).
    smem_bytes
        Dynamic + static shared memory per CTA (bytes).

    Returns
    -------
    int
        ``min`` of the thread, register, shared-memory and CTA limits (>= 1).

    Raises
    ------
    InfeasibleMappingError
        When one CTA does not fit (too much shared memory, too many threads/registers).
    """
    if threads <= 0 or regs_per_thread <= 0 or smem_bytes < 0:
        raise InfeasibleMappingError(
            f"bad CTA resources: threads={threads}, regs={regs_per_thread}, smem={smem_bytes}"
        )
    if smem_bytes > hw.max_smem_per_cta_bytes:
        raise InfeasibleMappingError(
            f"CTA needs {smem_bytes} B shared memory; {hw.name} allows "
            f"{hw.max_smem_per_cta_bytes} B per CTA"
        )
    warps = -(-threads // 32)
    regs_per_warp = -(-regs_per_thread * 32 // _REG_UNIT) * _REG_UNIT
    by_threads = hw.max_threads_per_sm // (warps * 32)
    by_regs = hw.regs_per_sm // (regs_per_warp * warps)
    smem_alloc = -(-smem_bytes // _SMEM_UNIT) * _SMEM_UNIT + _SMEM_RESERVED
    by_smem = hw.smem_bytes_per_sm // smem_alloc
    n = min(by_threads, by_regs, by_smem, hw.max_ctas_per_sm)
    if n < 1:
        raise InfeasibleMappingError(
            f"no CTA fits on an SM of {hw.name}: threads->{by_threads}, regs->{by_regs}, "
            f"smem->{by_smem}"
        )
    return int(n)
