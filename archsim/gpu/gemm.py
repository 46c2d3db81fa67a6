"""cuBLAS-like GEMM model: tile selection, wave quantization, split-K, L2 reuse.

cuBLAS on Hopper runs warp-specialized TMA + wgmma kernels (``sm90_xmma_gemm_*``,
``nvjet_sm90_tst_*``) with output tiles 128x256, 256x128, 128x128, 128x64, 64x128..., skinny
8- or 16-row tiles for decode GEMMs, K step 64 and as many pipeline stages as shared memory
holds (:func:`tma_stages`: 4 for 128x256, 16 for 8x64), one CTA per SM. Its heuristic
picks the configuration that is fastest for the shape; this model does the same with its
own timing estimate (at boost clock, without the power model) and adds split-K (a
partial-sum workspace and a ``splitKreduce`` kernel) when the output has too few tiles to
fill the SMs.

**Copy path from alignment.** TMA reads a tile through a tensor map whose global strides
must be multiples of 16 bytes (CUDA driver API, ``cuTensorMapEncodeTiled``), and wgmma takes
its operands from shared memory that TMA (or 16-byte ``cp.async``) filled. A row-major
operand whose row is not a multiple of 16 bytes (K = 2500 bf16: 5000 B) rules both out, so
cuBLAS falls back to an Ampere-class kernel: ``mma.sync`` tensor-core instructions fed by
register-staged global loads (each thread loads its share of the next K tile into registers
while the current one is multiplied, then stores it to shared memory). Such a CTA keeps one
K tile in flight, so its operand stream is bounded by one tile per memory latency
(:func:`copy_path`, :data:`_LDG_STAGES`); with 16-byte rows the TMA pipeline keeps
``_STAGES`` tiles in flight. Measured on H100 and H200 (``validation/data``), 2500^3 bf16
takes 194 us, slower than 5000^3's 8x the FLOPs in 381 us; this mechanism alone gives 127 us
(the register-staged kernel's exact tile, K step and occupancy are not known: no ncu record).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import numpy as np

from .cost import KernelCost
from .params import GpuModel, dtype_bytes

__all__ = [
    "GemmConfig",
    "copy_path",
    "gemm_costs",
    "choose_gemm_config",
    "gemm_dram_bytes",
    "pipeline_stages",
    "tma_aligned",
    "tma_stages",
]

# sm90 tiles seen in cuBLAS kernel names (sm90_xmma_gemm_*_tilesize*, nvjet_sm90_tst_*):
# 256x128, 128x256, 192x192, 128x128, 128x64, 64x128, 64x256, 64x64 (and 64x48 for tiny).
_TILES_SM90 = (
    (128, 256),
    (256, 128),
    (192, 192),
    (128, 128),
    (128, 64),
    (64, 128),
    (64, 256),
    (64, 64),
)
_TILES_SM80 = ((256, 128), (128, 256), (128, 128), (128, 64), (64, 128), (64, 64))
_BK = 64
_STAGES = 4
#: Skinny-M tiles (``block_m x block_n`` = 8 or 16 rows x 64 or 128 columns): cuBLAS's
#: ``nvjet_sm90_tst_64x8_..._v`` / ``128x8_..._v`` kernels of the measured decode GEMMs swap
#: the operands so that wgmma's 64-row side runs along N and its 8-wide side along M.
_TILES_SKINNY = ((8, 64), (8, 128), (16, 64), (16, 128))
#: Shared memory a TMA kernel keeps outside its operand stages (epilogue staging, barriers),
#: bytes, and its most stages. With them :func:`tma_stages` gives the stage count in every
#: cuBLAS kernel name of the measured GEMMs (``<BM>x<BN>_64x<stages>``): 64x48 -> 15,
#: 64x8 -> 16, 128x8 -> 12, 128x64 -> 8, 128x128 -> 6, 256x64 -> 5, 256x128 -> 4,
#: 320x128 -> 3 (bf16, 227 KB per CTA); any reserve in (11, 17] KB does.
_SMEM_RESERVE = 16 * 1024
_MAX_STAGES = 16
#: K step of the register-staged (non-TMA) fallback kernels (sm80 cuBLAS/CUTLASS: 32).
_BK_LDG = 32
#: Operand buffers of a register-staged CTA: the K tile in shared memory being multiplied
#: and the next one in flight into registers (so one tile in flight, see :func:`_inflight`).
_LDG_STAGES = 2
#: TMA tensor maps need global strides that are multiples of this many bytes.
TMA_STRIDE_ALIGN = 16
_SPLITS = (1, 2, 3, 4, 6, 8, 12, 16)
#: Share of L2 usable for reuse across concurrently running CTAs: H100's L2 is two
#: partitions and data lives in the far half half of the time (NVIDIA Hopper tuning guide).
L2_REUSE_FRACTION = 0.5


@dataclass(frozen=True)
class GemmConfig:
    """Chosen tile ``block_m x block_n``, K step, split-K factor, instruction path
    (``wgmma``/``mma_sync``), operand copy path (``tma`` or ``cp_async``: asynchronous
    multi-stage copies; ``ldg``: register-staged loads, see :func:`copy_path`) and the K-tile
    buffers of a CTA's pipeline (``stages``: all in flight with asynchronous copies, one with
    ``ldg``)."""

    block_m: int
    block_n: int
    block_k: int
    split_k: int
    path: str
    copy: str = "tma"
    stages: int = _STAGES


def tma_stages(model: GpuModel, block_m: int, block_n: int, block_k: int, elt: int) -> int:
    """Operand stages of a TMA kernel: as many K tiles as fit the CTA's shared memory after
    :data:`_SMEM_RESERVE` (CUTLASS ``StageCountAutoCarveout``), 2 to :data:`_MAX_STAGES`."""
    stage = (block_m + block_n) * block_k * elt
    fit = (model.hw.max_smem_per_cta_bytes - _SMEM_RESERVE) // stage
    return int(min(_MAX_STAGES, max(2, fit)))


def pipeline_stages(
    model: GpuModel, copy: str, block_m: int, block_n: int, block_k: int, elt: int
) -> int:
    """K-tile buffers of a CTA on ``copy`` path: :func:`tma_stages` with TMA, ``_STAGES`` with
    ``cp.async``, ``_LDG_STAGES`` (the tile being multiplied and the next) register-staged."""
    if copy == "tma":
        return tma_stages(model, block_m, block_n, block_k, elt)
    return _STAGES if copy == "cp_async" else _LDG_STAGES


def _inflight(cfg: GemmConfig) -> int:
    """K tiles a CTA keeps in flight: every stage with asynchronous copies (TMA, cp.async),
    one (the register-staged next tile) with ``ldg``."""
    return 1 if cfg.copy == "ldg" else cfg.stages


def tma_aligned(N: int, K: int, elt: int, out_elt: int) -> bool:
    """Whether every row stride of ``C[M,N] = A[M,K] @ B[K,N]`` is a multiple of 16 bytes.

    Row-major A has rows of ``K`` elements, B (``[K,N]``, or ``[N,K]`` for ``x @ W.T``) rows
    of ``N`` (or ``K``) and C rows of ``N``: all of them must be 16-byte multiples for TMA
    (and for 16-byte ``cp.async``). ``elt``/``out_elt``: bytes per input/output element.
    """
    return all((n * e) % TMA_STRIDE_ALIGN == 0 for n, e in ((K, elt), (N, elt), (N, out_elt)))


def copy_path(model: GpuModel, N: int, K: int, elt: int, out_elt: int) -> tuple[str, str]:
    """``(instruction path, copy path)`` a cuBLAS-class kernel can use for this shape.

    16-byte-aligned rows: ``wgmma`` + ``tma`` where the GPU has wgmma (Hopper), else
    ``mma_sync`` + ``cp_async`` (multi-stage 16-byte ``cp.async``; both keep ``_STAGES``
    tiles in flight). Misaligned rows: ``mma_sync`` + ``ldg`` (register-staged, one tile in
    flight) on every GPU (see module notes).
    """
    if not tma_aligned(N, K, elt, out_elt):
        return "mma_sync", "ldg"
    if model.hw.has_path("wgmma"):
        return "wgmma", "tma"
    return "mma_sync", "cp_async"


def gemm_dram_bytes(
    M: int,
    N: int,
    K: int,
    cfg: GemmConfig,
    model: GpuModel,
    *,
    elt: int,
    out_elt: int,
    batch: int = 1,
) -> tuple[float, float]:
    """DRAM bytes (read, write) of a GEMM with L2 reuse between concurrent CTAs.

    If A and B fit in the reusable L2 they are read once. Otherwise each wave of
    concurrent CTAs -- a roughly square patch of ``rm x rn`` output tiles -- reads its
    ``rm`` row panels of A and ``rn`` column panels of B once.

    L2 is write-back: the output tiles of the last wave (about half of them, the rest
    already evicted by later reads) are still dirty in L2 when the kernel ends, so their
    DRAM write lands in a later kernel (ncu: a 512^3 GEMM writes 0 bytes).
    """
    hw = model.hw
    tm, tn = math.ceil(M / cfg.block_m), math.ceil(N / cfg.block_n)
    a_b = (M * K + K * N) * elt
    compulsory = a_b * batch
    out = M * N * out_elt * batch
    deferred = min(out, 0.5 * hw.sms * cfg.block_m * cfg.block_n * out_elt)
    write = out - deferred
    if cfg.split_k > 1:
        write += cfg.split_k * M * N * 4 * batch  # fp32 partials to the workspace
    if a_b * batch <= hw.l2_bytes * L2_REUSE_FRACTION:
        return float(compulsory), float(write)
    slots = hw.sms
    tiles = tm * tn
    per_wave = max(1, min(slots // max(cfg.split_k, 1), tiles))
    rm = max(1, min(tm, round(math.sqrt(per_wave * cfg.block_n / cfg.block_m))))
    rn = max(1, min(tn, math.ceil(per_wave / rm)))
    n_waves = math.ceil(tiles / (rm * rn))
    read = n_waves * (rm * cfg.block_m + rn * cfg.block_n) * K * elt * batch
    return float(max(read, compulsory)), float(write)


def _l2_rows(M: int, N: int, cfg: GemmConfig) -> float:
    """Operand rows one CTA reads from L2 per K step, with TMA multicast in a 2-CTA cluster.

    cuBLAS sm90 kernels launch CTA clusters of 2 (``..._cluster2x1x1_...`` /
    ``cluster1x2x1`` in kernel names); the two CTAs share the tile of the larger operand
    dimension, which TMA reads from L2 once and multicasts to both shared memories. Without
    a wgmma path or a pair of tiles along that dimension there is no cluster.
    """
    rows = float(cfg.block_m + cfg.block_n)
    if cfg.path != "wgmma" or cfg.copy != "tma":
        return rows
    # share B (block_n wide) across two M tiles, or A across two N tiles
    pair_m = math.ceil(M / cfg.block_m) >= 2
    pair_n = math.ceil(N / cfg.block_n) >= 2
    saved = max(cfg.block_n if pair_m else 0, cfg.block_m if pair_n else 0)
    return rows - saved / 2.0


def _tile_cycles(
    cfg: GemmConfig,
    K: int,
    model: GpuModel,
    elt: int,
    out_elt: int,
    dtype: str,
    l2_rows: float,
    ctas: int,
) -> float:
    hw, cal = model.hw, model.cal
    k_iters = math.ceil(K / cfg.split_k / cfg.block_k)
    mma = (
        2.0 * cfg.block_m * cfg.block_n * cfg.block_k / (hw.tc_rate(cfg.path, dtype) * cal.eff_gemm)
    )
    # the SM's own L2 port; the chip-wide L2 bandwidth is left to the engine (it does not
    # bind on the measured GEMMs: see docs/gpu_model.md, "Two evaluators, one answer")
    del l2_rows, ctas
    l2 = (cfg.block_m + cfg.block_n) * cfg.block_k * elt / hw.l2_bytes_per_clk_per_sm
    epilogue = (
        cfg.block_m * cfg.block_n * (4 if cfg.split_k > 1 else out_elt) / hw.l2_bytes_per_clk_per_sm
    )
    return k_iters * max(mma, l2) + epilogue


def _cost_for(
    M: int,
    N: int,
    K: int,
    cfg: GemmConfig,
    model: GpuModel,
    dtype: str,
    out_elt: int,
    batch: int,
    name: str,
) -> KernelCost:
    hw = model.hw
    elt = dtype_bytes(dtype)
    ctas = math.ceil(M / cfg.block_m) * math.ceil(N / cfg.block_n) * cfg.split_k * batch
    l2_rows = _l2_rows(M, N, cfg)
    cyc = _tile_cycles(cfg, K, model, elt, out_elt, dtype, l2_rows, ctas)
    k_iters = math.ceil(K / cfg.split_k / cfg.block_k)
    epi = (
        cfg.block_m * cfg.block_n * (4 if cfg.split_k > 1 else out_elt) / hw.l2_bytes_per_clk_per_sm
    )
    k_len = math.ceil(K / cfg.split_k)
    cta_bytes = (cfg.block_m + cfg.block_n) * k_len * elt + cfg.block_m * cfg.block_n * out_elt
    rd, wr = gemm_dram_bytes(M, N, K, cfg, model, elt=elt, out_elt=out_elt, batch=batch)
    inflight = _inflight(cfg) * (cfg.block_m + cfg.block_n) * cfg.block_k * elt
    return KernelCost(
        trip_l2_bytes=float(l2_rows * cfg.block_k * elt),
        name=name,
        category="gemm",
        cta_cycles=np.full(ctas, cyc),
        cta_bytes=np.full(ctas, float(cta_bytes)),
        slots=hw.sms,
        cta_stream_bytes_per_s=inflight / hw.dram_latency_s,
        dram_read_bytes=rd,
        dram_write_bytes=wr,
        tensor_flops=2.0 * M * N * K * batch,
        meta={
            "tile": f"{cfg.block_m}x{cfg.block_n}x{cfg.block_k}",
            "split_k": cfg.split_k,
            "path": cfg.path,
            "copy": cfg.copy,
            "ctas_per_sm": 1,
            # Hopper cuBLAS kernels (wgmma, TMA) are persistent: grid = SMs in every traced
            # nvjet_sm90 launch (validation/data/traces: grid [2, 66, 1] on 132 SMs), a tile
            # scheduler handing each CTA its next output tile
            "persistent": cfg.path == "wgmma",
            # output bytes still dirty in L2 at the end (written by a later kernel's evictions)
            "deferred_write_bytes": max(
                0.0,
                M * N * out_elt * batch + (cfg.split_k > 1) * cfg.split_k * M * N * 4 * batch - wr,
            ),
        },
        trips=np.full(ctas, k_iters, dtype=np.int64),
        trip_cycles=(cyc - epi) / max(k_iters, 1),
        trip_bytes=float((cfg.block_m + cfg.block_n) * cfg.block_k * elt),
        fixed_bytes=float(cfg.block_m * cfg.block_n * out_elt),
        trip_tensor_flops=2.0 * cfg.block_m * cfg.block_n * cfg.block_k,
        stages=cfg.stages,
    )


def _quick_time(cost: KernelCost, model: GpuModel) -> float:
    hw = model.hw
    n = cost.ctas
    d = max(cost.cta_cycles[0] / hw.boost_clock_hz, cost.cta_bytes[0] / cost.cta_stream_bytes_per_s)
    waves = math.ceil(n / cost.slots)
    return max(waves * (d + hw.dram_latency_s), cost.dram_bytes / model.hbm_eff_bytes_per_s)


def _reduce_cost(
    M: int, N: int, split: int, batch: int, out_elt: int, model: GpuModel
) -> KernelCost:
    """cuBLAS's ``splitKreduce_kernel``: one dependent round of the partials from L2 per
    thread (:func:`archsim.gpu.launch.splitk_reduce_launch`); its DRAM bytes stay the
    partials read and the output written."""
    from .elementwise import launch_cost  # elementwise imports this module
    from .launch import splitk_reduce_launch

    cost = launch_cost(
        model,
        splitk_reduce_launch(M, N, split, batch),
        name="splitKreduce_kernel",
        category="reduce",
        read_bytes=float(split * M * N * 4 * batch),
        write_bytes=float(M * N * out_elt * batch),
        alu_ops=float(split * M * N * batch),
    )
    return replace(cost, meta={**cost.meta, "split_k": split})


def choose_gemm_config(
    M: int,
    N: int,
    K: int,
    model: GpuModel,
    *,
    dtype: str = "bf16",
    out_elt: int | None = None,
    batch: int = 1,
    split_k: bool | None = None,
) -> GemmConfig:
    """cuBLAS-like choice: the (tile, split-K) with the least estimated time.

    Split-K is considered only when the output tiles fill less than one wave. The
    instruction and copy paths follow from the row alignment (:func:`copy_path`).
    ``split_k``: None, the library's own choice as modelled; True / False, only split /
    unsplit configurations (what a profiler trace shows the library launched: a ``splitK``
    kernel and its ``splitKreduce_kernel``); True falls back to the best unsplit one when
    no split is legal for the shape.
    """
    hw = model.hw
    oe = dtype_bytes(dtype) if out_elt is None else out_elt
    path, copy = copy_path(model, N, K, dtype_bytes(dtype), oe)
    tiles = _TILES_SM90 + _TILES_SKINNY if path == "wgmma" else _TILES_SM80
    bk = _BK_LDG if copy == "ldg" else _BK
    best: tuple[float, int, GemmConfig] | None = None
    for rank, (bm, bn) in enumerate(tiles):
        n_tiles = math.ceil(M / bm) * math.ceil(N / bn) * batch
        for s in _SPLITS:
            if s > 1 and (n_tiles * s > 2 * hw.sms or K / s < 4 * _BK or n_tiles >= hw.sms):
                continue
            if split_k is not None and (s > 1) != split_k:
                continue
            stages = pipeline_stages(model, copy, bm, bn, bk, dtype_bytes(dtype))
            cfg = GemmConfig(bm, bn, bk, s, path, copy, stages)
            t = _quick_time(_cost_for(M, N, K, cfg, model, dtype, oe, batch, "gemm"), model)
            if s > 1:  # cuBLAS weighs the reduce kernel's time, not the host launch gap
                t += _quick_time(_reduce_cost(M, N, s, batch, oe, model), model)
            key = (t * (1 + 1e-9 * rank), rank, cfg)
            if best is None or key[:2] < best[:2]:
                best = key
    if best is None and split_k:  # no legal split for this shape: the unsplit choice
        return choose_gemm_config(M, N, K, model, dtype=dtype, out_elt=out_elt, batch=batch)
    assert best is not None
    return best[2]


def gemm_costs(
    M: int,
    N: int,
    K: int,
    model: GpuModel,
    *,
    dtype: str = "bf16",
    out_elt: int | None = None,
    batch: int = 1,
    config: GemmConfig | None = None,
    split_k: bool | None = None,
) -> list[KernelCost]:
    """Kernels of one (batched) GEMM ``C[M,N] = A[M,K] @ B[K,N]``.

    Parameters
    ----------
    M, N, K
        Problem shape (elements). batch : independent GEMMs in one launch (bmm).
    model
        GPU model. dtype : input dtype. out_elt : output bytes/element (default = input).
    config
        Force a tile configuration; default :func:`choose_gemm_config`.
    split_k
        Constrain the choice to split-K (True) or unsplit (False) configurations (see
        :func:`choose_gemm_config`); None: the modelled library choice.

    Returns
    -------
    list of KernelCost
        The GEMM kernel, plus ``splitKreduce_kernel`` when split-K is used.
    """
    oe = dtype_bytes(dtype) if out_elt is None else out_elt
    cfg = config or choose_gemm_config(
        M, N, K, model, dtype=dtype, out_elt=oe, batch=batch, split_k=split_k
    )
    prefix = "sm90_xmma_gemm" if cfg.path == "wgmma" else "ampere_gemm"
    if cfg.copy == "ldg":
        prefix += "_ldg"
    name = f"{prefix}_{dtype}_{cfg.block_m}x{cfg.block_n}x{cfg.block_k}"
    out = [_cost_for(M, N, K, cfg, model, dtype, oe, batch, name)]
    if cfg.split_k > 1:
        out.append(_reduce_cost(M, N, cfg.split_k, batch, oe, model))
    return out
