"""The real libraries' tiling and split heuristics, as data.

Each function states the code it mirrors. These choices decide grid sizes, occupancy and
waves, so they are what makes a prediction track a backend rather than an ideal kernel.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

from .occupancy import ctas_per_sm
from .params import GpuHardware
from .softmax import SCHEDULERS_PER_SM

__all__ = [
    "AttnTiling",
    "make_tiling",
    "fa2_fwd_tiling",
    "fa2_bwd_tiling",
    "fa2_splitkv_tiling",
    "fa3_fwd_tiling",
    "fa3_bwd_tiling",
    "memeff_fwd_tiling",
    "memeff_bwd_tiling",
    "flex_fwd_tiling",
    "num_splits_heuristic",
    "ISSUE_WARPS_SCALE",
    "issue_latency_hiding",
]

#: Warps per scheduler over which an issue-bound attention kernel hides its dependent
#: instruction latency: its issue fraction follows ``1 - exp(-W / ISSUE_WARPS_SCALE)`` in
#: the warps ``W`` resident per scheduler. Least squares (``python -m
#: validation.fit_decode``) on the ncu counters of the cutlass forward at head dim 128:
#: issue slots 40.6 / 41.6 / 41.4% busy at 2.0 warps per scheduler (decode, B = 1: 32 heads
#: at 1k and 16k keys, 8 heads), 52.1% at 3.75 (decode, B = 8) and 55.0% at 3.95 (B4 H16
#: S4096 prefill) (``validation/data/h100_decode_probe.jsonl``, ``h100_kernel_probe.jsonl``;
#: rms 0.007). Physically: one warp issues again only after its dependent instruction's
#: latency; more warps per scheduler fill those gaps.
ISSUE_WARPS_SCALE = 1.74


def issue_latency_hiding(warps_per_scheduler: float) -> float:
    """Relative issue rate ``1 - exp(-W / ISSUE_WARPS_SCALE)`` at ``W`` warps per scheduler
    (dimensionless; see :data:`ISSUE_WARPS_SCALE`)."""
    return 1.0 - math.exp(-max(warps_per_scheduler, 0.0) / ISSUE_WARPS_SCALE)


@dataclass(frozen=True)
class AttnTiling:
    """One attention kernel's CTA shape.

    Attributes
    ----------
    block_m, block_n : query rows and key columns per tile.
    threads : threads per CTA. regs : registers per thread. smem_bytes : shared memory per CTA.
    path : tensor-core instruction path (``mma_sync`` or ``wgmma``).
    overlap : fraction of the softmax (FP32/SFU) time hidden under tensor-core time when
        ``ctas_per_sm`` CTAs are resident. intra_overlap : the part a single CTA hides by
        itself (warp specialization / ping-pong; 0 for FA2-style kernels).
    inflight_bytes : bytes one CTA keeps in flight from memory (cp.async/TMA stages).
    ctas_per_sm : occupancy on the given GPU.
    instr_per_score : thread instructions the kernel issues per score (0: not issue-bound,
        the tensor/softmax model alone). issue_frac : fraction of the SM's issue slots the
        kernel fills (ncu ``smsp__issue_active``) at full occupancy; with ``instr_per_score``
        a trip takes at least ``instructions / (issue slots x issue_frac_at(resident))``.
    """

    block_m: int
    block_n: int
    threads: int
    regs: int
    smem_bytes: int
    path: str
    overlap: float
    inflight_bytes: int
    ctas_per_sm: int
    intra_overlap: float = 0.0
    instr_per_score: float = 0.0
    issue_frac: float = 1.0

    def issue_frac_at(self, resident: int) -> float:
        """Issue fraction with ``resident`` CTAs on the SM: ``issue_frac`` was counted at
        full occupancy (``ctas_per_sm``); fewer resident warps hide less of each warp's
        dependent-instruction latency (:func:`issue_latency_hiding`). Decode runs the
        memory-efficient kernel with one CTA per (batch, head): at B = 1 with 32 heads,
        one 8-warp CTA per SM, 2 warps per scheduler, issue 42% busy, not 55%."""
        warps = self.threads / 32 / SCHEDULERS_PER_SM
        full = issue_latency_hiding(self.ctas_per_sm * warps)
        if full <= 0.0:
            return self.issue_frac
        return self.issue_frac * issue_latency_hiding(max(resident, 1) * warps) / full

    def overlap_with(self, resident: int) -> float:
        """Softmax overlap with ``resident`` CTAs on the SM (other CTAs' warps fill gaps)."""
        return max(self.intra_overlap, 1.0 - 1.0 / max(resident, 1))


def make_tiling(
    hw: GpuHardware,
    bm: int,
    bn: int,
    warps: int,
    regs: int,
    smem: int,
    path: str,
    overlap: float | None,
    inflight: int,
) -> AttnTiling:
    """Tiling with occupancy computed; ``overlap=None`` means only co-resident CTAs hide softmax."""
    if path == "wgmma" and not hw.has_path("wgmma"):
        path = "mma_sync"
    cps = ctas_per_sm(hw, threads=warps * 32, regs_per_thread=regs, smem_bytes=smem)
    # Warps of other resident CTAs fill the tensor pipe while one CTA does its softmax.
    intra = 0.0 if overlap is None else overlap
    ov = max(intra, 1.0 - 1.0 / cps)
    return AttnTiling(bm, bn, warps * 32, regs, smem, path, ov, inflight, cps, intra)


def fa2_fwd_tiling(hw: GpuHardware, d: int, causal: bool, elt: int = 2) -> AttnTiling:
    """FlashAttention-2 forward (``flash_fwd_launch_template.h``, run_mha_fwd_hdim*; no dropout).

    hdim<=64: 128x128, 4 warps; hdim<=128: 128x64 (A100/H100); hdim<=160: 128x32;
    hdim<=192: 128x64, 8 warps; hdim 256: 64x64 on H100 (2 CTAs/SM), 128x64 8 warps on A100.
    Shared memory holds Q, K and V tiles: (Bm + 2 Bn) * d * elt. FA2 hdim128 kernels use 255
    registers per thread (ptxas), which limits H100 to 2 CTAs per SM.
    """
    del causal  # the H100/A100 choice does not depend on it for d in {64, 128}
    if d <= 64:
        bm, bn, warps = 128, 128, 4
    elif d <= 128:
        bm, bn, warps = 128, 64, 4
    elif d <= 160:
        bm, bn, warps = 128, 32, 4
    elif d <= 192:
        bm, bn, warps = 128, 64, 8
    elif hw.max_smem_per_cta_bytes >= 2 * 256 * 256 and hw.smem_bytes_per_sm < 4 * 256 * 192:
        bm, bn, warps = 128, 64, 8
    else:
        bm, bn, warps = 64, 64, 4
    regs = 192 if d <= 64 else 255
    smem = (bm + 2 * bn) * d * elt
    return make_tiling(hw, bm, bn, warps, regs, smem, "mma_sync", None, bn * d * elt)


def fa2_bwd_tiling(hw: GpuHardware, d: int, elt: int = 2) -> AttnTiling:
    """FlashAttention-2 backward (``flash_bwd_launch_template.h``, smem >= 144 KB branch).

    hdim<=64: Bm=128, Bn=128, 8 warps; hdim<=128: Bm=64, Bn=128, 8 warps; else 64x64.
    One CTA per key block iterates over query blocks (seqk-parallel).
    """
    if d <= 64:
        bm, bn = 128, 128
    elif d <= 128:
        bm, bn = 64, 128
    else:
        bm, bn = 64, 64
    smem = min((2 * bm + 2 * bn) * d * elt + bm * bn * elt * 2, hw.max_smem_per_cta_bytes)
    return make_tiling(hw, bm, bn, 8, 255, smem, "mma_sync", None, 2 * bm * d * elt)


def fa2_splitkv_tiling(hw: GpuHardware, d: int, elt: int = 2) -> AttnTiling:
    """FlashAttention-2 split-KV forward (``run_mha_fwd_splitkv_dispatch``).

    Bm = 64; Bn = 256 (hdim<=64), 128 (hdim<=128), 64 otherwise; 4 warps.
    """
    bn = 256 if d <= 64 else (128 if d <= 128 else 64)
    smem = (64 + 2 * bn) * d * elt
    return make_tiling(hw, 64, bn, 4, 255 if d > 64 else 192, smem, "mma_sync", None, bn * d * elt)


def num_splits_heuristic(
    batch_nheads_mblocks: int, num_sms: int, num_n_blocks: int, max_splits: int = 128
) -> int:
    """FlashAttention-2's ``num_splits_heuristic`` (``flash_api.cpp``), verbatim logic.

    ``num_sms`` is what the caller passes: FA2 >= 2.5 passes ``2 x multiProcessorCount``
    (two CTAs per SM). Picks the smallest split count whose wave efficiency
    ``n_waves / ceil(n_waves)`` is within 85% of the best.
    """
    if batch_nheads_mblocks >= 0.8 * num_sms:
        return 1
    max_splits = min(max_splits, num_sms, num_n_blocks)

    def eligible(s: int) -> bool:
        return s == 1 or math.ceil(num_n_blocks / s) != math.ceil(num_n_blocks / (s - 1))

    eff: list[float] = []
    for s in range(1, max_splits + 1):
        if not eligible(s):
            eff.append(0.0)
            continue
        n_waves = batch_nheads_mblocks * s / num_sms
        eff.append(n_waves / math.ceil(n_waves))
    best = max(eff) if eff else 0.0
    for s in range(1, max_splits + 1):
        if eligible(s) and eff[s - 1] >= 0.85 * best:
            return s
    return 1


def fa3_fwd_tiling(hw: GpuHardware, d: int, causal: bool, elt: int = 2) -> AttnTiling:
    """Hopper warp-specialized forward (FA3 paper, arXiv 2407.08608, sec. 4; cuDNN alike).

    hdim 64: 192x128; hdim 128: 128x128 (non-causal 128x176 in later FA3, paper 128x128);
    hdim 256: 128x80. One producer warpgroup (TMA) + two consumer warpgroups (wgmma,
    ping-pong softmax): softmax of one warpgroup hides under the other's GEMMs, so the
    overlap is near complete. Two K/V stages in shared memory; one CTA per SM.
    """
    del causal
    if d <= 64:
        bm, bn = 192, 128
    elif d <= 128:
        bm, bn = 128, 128
    else:
        bm, bn = 128, 80
    stages = 2
    smem = (bm * d + stages * 2 * bn * d) * elt + bm * d * elt
    smem = min(smem, hw.max_smem_per_cta_bytes)
    return make_tiling(hw, bm, bn, 12, 168, smem, "wgmma", 0.95, stages * 2 * bn * d * elt)


def fa3_bwd_tiling(hw: GpuHardware, d: int, elt: int = 2) -> AttnTiling:
    """Hopper backward (FA3 bwd: hdim 64: 128x128; hdim 128: 64x128; 2 consumer warpgroups)."""
    bm, bn = (128, 128) if d <= 64 else (64, 128)
    smem = min((2 * bm + 2 * bn) * d * elt * 2, hw.max_smem_per_cta_bytes)
    return make_tiling(hw, bm, bn, 12, 168, smem, "wgmma", 0.8, 2 * bm * d * elt)


#: Thread instructions per score of the cutlass forward, ``c + k x head dim``, through the
#: two ncu counts of ``validation/data/h100_kernel_probe.jsonl`` (d = 64 and 128).
MEMEFF_INSTR = (30.23, 0.1372)
#: The same for the cutlass backward (its five GEMMs, the softmax recompute, dQ atomics).
MEMEFF_BWD_INSTR = (26.19, 0.6770)


def memeff_fwd_tiling(hw: GpuHardware, d: int, elt: int = 2) -> AttnTiling:
    """cutlass memory-efficient forward (xformers ``fmha_cutlassF_*_sm80`` in PyTorch).

    The kernel PyTorch launches, as recorded (``validation/data/h100_kernel_probe.jsonl``:
    ``block``, ``registers per thread``, ``shared memory``): hdim<=64 ``64x64_rf``, 4 warps,
    128 registers, 18,944 B; hdim<=128 ``64x128_rf``, 8 warps, 128 registers, 52,224 B;
    above ``32x128_gmem`` (output accumulated in global memory), 4 warps, 122 registers,
    51,200 B. K and V single-buffered (one K/V tile in flight). Shared memory below from the
    buffer layout, within 3 KB of the recorded bytes (same occupancy).
    """
    if d <= 64:
        bm, bn, warps, regs = 64, 64, 4, 128
    elif d <= 128:
        bm, bn, warps, regs = 64, 128, 8, 128
    else:  # the gmem kernel walks the head dim in chunks: its buffer does not grow with d
        bm, bn, warps, regs = 32, 128, 4, 128
    # Q + K for QK^T, then the same bytes hold P (bf16) + V for PV (SharedStorage union);
    # 2,560 / 3,072 B of row statistics beside them are not counted
    smem = max(bm * d + bn * d, bm * bn + bn * d) * elt if d <= 128 else 51200
    t = make_tiling(hw, bm, bn, warps, regs, smem, "mma_sync", None, bn * d * elt)
    # Issue-bound (ncu on the probe's B4 H16 S4096 forward, H100): 39.0 / 47.8 thread
    # instructions per score at d = 64 / 128 (mma.sync is ~1% of them: index arithmetic,
    # ldmatrix, the softmax in the MMA warps), issue slots 67% / 55% busy; the tensor pipe
    # alone would take a third of the time. The gmem kernel (d > 128) was not counted: the
    # d <= 128 kernel's issue fraction.
    frac = 0.671 if d <= 64 else 0.550
    return replace(t, instr_per_score=MEMEFF_INSTR[0] + MEMEFF_INSTR[1] * d, issue_frac=frac)


def memeff_bwd_tiling(hw: GpuHardware, d: int, elt: int = 2) -> AttnTiling:
    """cutlass memory-efficient backward (``fmha_cutlassB_*_sm80``), as recorded (probe file
    above): hdim<=64 ``64x64_k64``, 4 warps, 162 registers, 42,240 B; hdim<=128
    ``128x128_k128``, 16 warps, 128 registers, 133,632 B (one CTA per SM); above
    ``128x64_k65536``, 8 warps, 151 registers, 60,928 B. A CTA owns a key block (grid = key
    blocks x heads x batch) and streams the query blocks.
    """
    del elt
    if d <= 64:
        bm, bn, warps, regs, smem = 64, 64, 4, 162, 42240
    elif d <= 128:
        bm, bn, warps, regs, smem = 128, 128, 16, 128, 133632
    else:
        bm, bn, warps, regs, smem = 128, 64, 8, 151, 60928
    smem = min(smem, hw.max_smem_per_cta_bytes)
    t = make_tiling(hw, bm, bn, warps, regs, smem, "mma_sync", None, bm * d * 2)
    # Issue-bound like the forward (ncu, same probe): 69.5 / 112.9 thread instructions per
    # score at d = 64 / 128, issue slots 38% / 41% busy; above 128 not counted.
    frac = 0.384 if d <= 64 else 0.405
    return replace(
        t, instr_per_score=MEMEFF_BWD_INSTR[0] + MEMEFF_BWD_INSTR[1] * d, issue_frac=frac
    )


def flex_fwd_tiling(hw: GpuHardware, d: int, elt: int = 2) -> AttnTiling:
    """Triton FlexAttention forward defaults on H100 (torch ``_get_default_config_fwd``).

    (BLOCK_M, BLOCK_N, warps, stages) = (128, 64, 4, 3) for hdim<=128, (64, 64, 4, 2) above;
    Triton emits wgmma on sm90 but does not warp-specialize, so only other CTAs hide
    softmax.
    """
    bm, bn, stages = (128, 64, 3) if d <= 128 else (64, 64, 2)
    smem = (bm * d + stages * 2 * bn * d) * elt
    smem = min(smem, hw.max_smem_per_cta_bytes)
    return make_tiling(
        hw, bm, bn, 4, 255 if d > 64 else 168, smem, "wgmma", None, stages * 2 * bn * d * elt
    )
