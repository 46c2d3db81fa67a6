"""Launch structure of PyTorch's memory-bound kernels: CTAs, bytes in flight, dependent rounds.

A small element-wise, norm or ``cat`` kernel is not bandwidth-bound: a thread issues a few
loads, waits for them (one memory latency), computes, stores, and only then issues the next
loads. Its time is the number of such *dependent rounds* times the latency of the level the
data comes from, plus the per-kernel fixed cost. How many rounds, and how many bytes a CTA
has in flight in each, follows from the kernel's launch rules in PyTorch's source (cited at
each rule, ``pytorch/pytorch``):

* ``vectorized_elementwise_kernel`` (``aten/src/ATen/native/cuda/CUDALoops.cuh``,
  ``launch_vectorized_kernel``): contiguous operands; ``num_threads() = 128`` threads per
  CTA (``thread_constants.h``), ``elems_per_thread<io_size>() = 16`` when the op's input +
  output element sizes sum to 1 byte, else 8; ``grid = ceil(N / (128 x elems_per_thread))``.
  ``elementwise_kernel_helper`` loads every element of a thread, then computes, then stores:
  **one round**.
* ``elementwise_kernel<128, vt>`` (same file, ``gpu_kernel_impl_nocast`` ->
  ``launch_legacy_kernel<128, unroll_factor>``): non-contiguous or broadcast operands;
  ``vt = 2`` for 4-byte outputs and wider, else 4; ``grid = ceil(N / (128 vt))``. Each of a
  thread's ``vt`` elements computes its offsets (``OffsetCalculator``: integer divmod per
  dimension), loads, computes and stores through ``char*`` pointers that may alias, so the
  next element's loads cannot be hoisted above the store: **vt rounds**, each with a
  dependent integer chain (:data:`INT_DEP_CYCLES` per instruction).
* ``vectorized_layer_norm_kernel`` (``layer_norm_kernel.cu``, ``launch_vectorized_layer_norm_
  kernel``; RMSNorm is its ``rms_norm`` instantiation): one CTA per row, ``threads =
  (warp_size, num_threads() / warp_size) = 32 x 4``, ``vec_size = 4`` elements per load.
  ``compute_stats`` reads the row once (mean and variance together, Welford); its loop
  runs ``iters = ceil(N / (4 x 128))`` times, a count known only at run time, so nvcc does
  not unroll it (:data:`UNROLL`) and each iteration's Welford update waits for its load:
  ``iters`` rounds. The normalise loop reloads the row (an L1 hit: this CTA just read it)
  and ``gamma``, and stores ``Y`` through a pointer that may alias ``gamma`` (not
  ``__restrict__``): ``iters`` more rounds.
* ``cublasLt::splitKreduce_kernel<32, 16, ...>`` (cuBLAS's split-K epilogue; closed source,
  the rule is what the H200 layer traces record: block ``32 x 16``, grid ``ceil(N / 32) x
  ceil(M / 16)``): one output element per thread, whose ``split`` fp32 partials the GEMM
  kernel just wrote (in L2) are loaded together, summed and stored: **one round**.
* ``CatArrayBatchedCopy`` (``Shape.cu``, ``getCatGrid``): ``grid = (2 x SMs, tensors)``,
  512 threads (the launch the profiler records), a grid-stride loop of load-then-store;
  each thread first reads its tensor's descriptor (``CatArrInputTensorMetadata``, a kernel
  parameter block read through the constant cache): one round, then one round per element
  it copies.

Latency of a round (:func:`round_latency_s`): the slowest level any operand of the round
comes from. L1 and L2 latencies are the architecture preset's ``latency_cycles`` of its
``SMEM`` and ``L2`` levels at the boost clock (small kernels run unthrottled); an HBM round
costs :data:`HBM_ROUND_S`, fitted on the standalone H200 RMSNorm records
(``python -m validation.fit_elementwise --latency``), because a round of 128 threads' loads
that miss L2 costs more than an idle pointer chase (TLB, DRAM row activation, queueing).
An operand an earlier kernel of the same layer just wrote is in L2 (``src="L2"``); a weight
or a tensor of a standalone, L2-flushed measurement is in HBM (``src="HBM"``).
"""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence
from dataclasses import dataclass

from archsim.errors import ArchSpecError

from .params import GpuModel

__all__ = [
    "CAT_THREADS",
    "HBM_ROUND_S",
    "INT_DEP_CYCLES",
    "LEVELS",
    "UNROLL",
    "Launch",
    "Round",
    "cat_launch",
    "engine_load_latency_s",
    "layer_norm_launch",
    "legacy_elementwise_launch",
    "level_latency_s",
    "round_latency_s",
    "splitk_reduce_launch",
    "vectorized_elementwise_launch",
]

#: Memory levels a round can read from, nearest first.
LEVELS = ("L1", "L2", "HBM")
#: Seconds of one dependent round of loads that miss L2 (128 threads' loads of one CTA).
#: Fitted: ``python -m validation.fit_elementwise --latency`` on the standalone H200
#: ``rms_norm`` records (``validation/data/h200_layer_ops.jsonl``, cold L2): the time added
#: by ``d = 4096 -> 8192`` at fixed ``M`` over the rounds it adds, so the timer's fixed
#: overhead cancels (2026-12-05). Before the fit (first principles) an HBM round cost the
#: preset's HBM ``latency_cycles`` (880 at 1.83 GHz, 481 ns).
HBM_ROUND_S = 3.87e-7
#: Loads of a loop of unknown trip count that are issued together: 1. The CUDA C++ Programming
#: Guide ("#pragma unroll"): "By default, the compiler unrolls small loops with a known trip
#: count"; the row loops of the norm kernel run ``N / (vec x threads)`` times, known only at
#: run time, and carry no ``#pragma unroll``, so each iteration waits for its own loads.
UNROLL = 1
#: SM cycles between dependent integer instructions (IMAD/IADD3 issue-to-use latency on
#: Volta..Hopper, ~4-5 cycles: Jia et al., "Dissecting the NVIDIA Volta GPU Architecture via
#: Microbenchmarking", arXiv 1804.06826, table 4.2). ESTIMATE; not fitted.
INT_DEP_CYCLES = 4.0
#: Threads per CTA of ``CatArrayBatchedCopy`` (the launch recorded in the H200 traces).
CAT_THREADS = 512
_NUM_THREADS = 128  # num_threads() = 4 warps (aten/src/ATen/native/cuda/thread_constants.h)
_LN_VEC = 4  # vec_size of layer_norm_kernel.cu
_DEFAULT_CYCLES = {"L1": 30.0, "L2": 260.0}  # Hopper preset values, when no preset loads


@dataclass(frozen=True)
class Round:
    """``count`` identical dependent rounds of one CTA.

    ``level``: the slowest level any operand of the round is read from (``L1``, ``L2``,
    ``HBM``). ``bytes_per_cta``: bytes the CTA's threads request in one round.
    ``int_ops``: dependent integer instructions a thread executes before the round's loads
    (offset arithmetic).
    """

    count: int
    level: str
    bytes_per_cta: float
    int_ops: float = 0.0


@dataclass(frozen=True)
class Launch:
    """A kernel's launch: ``ctas`` of ``threads`` threads, each CTA running ``rounds``
    (in order). ``kernel`` names the PyTorch kernel the rule describes."""

    kernel: str
    ctas: int
    threads: int
    rounds: tuple[Round, ...]

    @property
    def n_rounds(self) -> int:
        """Dependent rounds of one CTA."""
        return int(sum(r.count for r in self.rounds))

    @property
    def bytes_per_cta(self) -> float:
        """Bytes one CTA requests over all its rounds."""
        return float(sum(r.count * r.bytes_per_cta for r in self.rounds))


def _check_level(level: str) -> str:
    if level not in LEVELS:
        raise ArchSpecError("unknown memory level", path="src", expected=LEVELS, got=level)
    return level


def _slowest(*levels: str) -> str:
    return max((_check_level(x) for x in levels), key=LEVELS.index)


@functools.lru_cache(maxsize=32)
def _preset_levels(name: str) -> tuple[float, float, float, float]:
    """``(L1 cycles, L2 cycles, HBM cycles, HBM bytes/cycle)`` of the architecture preset
    ``name`` (its ``SMEM``, ``L2`` and DRAM levels); zeros for what it lacks, the Hopper
    defaults for L1/L2 when ``name`` is not a loadable preset."""
    try:
        from archsim.spec import load_arch

        arch = load_arch(name)
    except (ImportError, ArchSpecError):
        return _DEFAULT_CYCLES["L1"], _DEFAULT_CYCLES["L2"], 0.0, 0.0
    lat = {lvl.name: float(lvl.latency_cycles) for lvl in getattr(arch, "levels", ())}
    dram = next((lvl for lvl in getattr(arch, "levels", ()) if lvl.kind == "dram"), None)
    return (
        lat.get("SMEM", _DEFAULT_CYCLES["L1"]),
        lat.get("L2", _DEFAULT_CYCLES["L2"]),
        float(dram.latency_cycles) if dram is not None else 0.0,
        float(dram.read_bw_bytes_per_cycle) if dram is not None else 0.0,
    )


def engine_load_latency_s(model: GpuModel, arch: object | None = None) -> float:
    """Seconds the event engine charges one DRAM load of a lowered GPU kernel.

    The engine pays a memory level's ``latency_cycles`` in *program* cycles, and a lowered
    GPU program's cycle is the time base of ``mappings._gpu._lower`` (achievable HBM B/s
    over the DRAM level's B/cycle), so a load costs ``latency_cycles x (B/cycle) /
    (achievable B/s)``. ``arch``: the architecture the program runs on (default: the preset
    named like the model); ``hw.dram_latency_s`` when it has no DRAM level with a latency.
    The one definition: the GPU lowering sizes its loads with it, and :func:`launch_cost
    <archsim.gpu.elementwise.launch_cost>` turns a latency chain into loads with it.

    NOTE: the presets state the latency in SM cycles (h100/h200: 880, "~480 ns pointer-chase
    latency at 1.83 GHz"), but the engine counts them at the time base (1.65 GHz on
    h100/h200 with the fitted ``hbm_efficiency`` 0.900), so it charges 534 ns, 11% over the
    preset's 481 ns; the kernel model uses neither (``hw.dram_latency_s``, 700 ns). The
    right figure for the engine is the preset's 481 ns (the engine adds queueing on its
    bandwidth servers itself); charging it needs the engine to convert ``latency_cycles``
    from the SM clock to the program's clock.
    """
    if arch is None:
        _, _, cycles, per_cycle = _preset_levels(model.hw.name)
    else:
        dram = next(
            (lvl for lvl in getattr(arch, "levels", ()) if lvl.kind == "dram"),
            None,
        )
        cycles = float(dram.latency_cycles) if dram is not None else 0.0
        per_cycle = float(dram.read_bw_bytes_per_cycle) if dram is not None else 0.0
    if cycles <= 0 or per_cycle <= 0:
        return model.hw.dram_latency_s
    return cycles / (model.hbm_eff_bytes_per_s / per_cycle)


def level_latency_s(model: GpuModel, level: str) -> float:
    """Latency (s) of one dependent round of loads served by ``level`` (module notes)."""
    if _check_level(level) == "HBM":
        return HBM_ROUND_S
    l1, l2, _, _ = _preset_levels(model.hw.name)
    return (l1 if level == "L1" else l2) / model.hw.boost_clock_hz


def round_latency_s(model: GpuModel, r: Round) -> float:
    """Seconds of one round: its level's latency after its dependent integer chain."""
    return level_latency_s(model, r.level) + r.int_ops * INT_DEP_CYCLES / model.hw.boost_clock_hz


def vectorized_elementwise_launch(
    n: int, in_sizes: Sequence[int], out_size: int, *, src: str = "HBM"
) -> Launch:
    """``vectorized_elementwise_kernel`` over ``n`` contiguous elements (module notes).

    ``in_sizes``: bytes per element of each tensor input; ``out_size``: of the output;
    ``src``: level the inputs are read from.
    """
    io = int(sum(in_sizes)) + int(out_size)
    ept = 16 if io == 1 else 8
    ctas = max(1, math.ceil(max(int(n), 1) / (_NUM_THREADS * ept)))
    per = float(_NUM_THREADS * ept * sum(in_sizes))
    return Launch(
        "vectorized_elementwise_kernel",
        ctas,
        _NUM_THREADS,
        (Round(1, _check_level(src), per),),
    )


def legacy_elementwise_launch(
    n: int, in_sizes: Sequence[int], out_size: int, *, src: str = "HBM", int_ops: float = 0.0
) -> Launch:
    """``elementwise_kernel<128, vt>`` over ``n`` strided elements (module notes).

    ``int_ops``: the offset calculator's integer instructions per element
    (:func:`validation._strided.offset_int_ops`).
    """
    vt = 2 if out_size >= 4 else 4
    n = max(int(n), 1)
    ctas = math.ceil(n / (_NUM_THREADS * vt))
    rounds = min(vt, math.ceil(n / _NUM_THREADS))  # a grid of one short CTA: fewer rounds
    per = float(_NUM_THREADS * sum(in_sizes))
    return Launch(
        "elementwise_kernel",
        ctas,
        _NUM_THREADS,
        (Round(rounds, _check_level(src), per, float(int_ops)),),
    )


def layer_norm_launch(
    rows: int,
    cols: int,
    elem: int,
    *,
    src: str = "HBM",
    weights: int = 1,
    weight_src: str = "HBM",
    stat_passes: int = 1,
) -> Launch:
    """``vectorized_layer_norm_kernel``: ``rows`` rows of ``cols`` elements of ``elem`` bytes.

    ``weights``: per-column tensors the normalise loop reads (``gamma``; ``beta`` too for
    LayerNorm), from ``weight_src``. ``stat_passes``: reads of the row before the normalise
    loop (1: PyTorch's Welford pass).
    """
    it = max(1, math.ceil(int(cols) / (_LN_VEC * _NUM_THREADS)))
    vec_bytes = float(_NUM_THREADS * _LN_VEC * elem)
    stat_rounds = max(1, stat_passes) * math.ceil(it / UNROLL)
    stats = Round(stat_rounds, _check_level(src), UNROLL * vec_bytes)
    # the normalise loop: the row again (this CTA just read it: L1) and the weights
    level = _slowest("L1", weight_src) if weights > 0 else "L1"
    norm = Round(it, level, vec_bytes * (1 + weights))
    return Launch("vectorized_layer_norm_kernel", max(1, int(rows)), _NUM_THREADS, (stats, norm))


def splitk_reduce_launch(M: int, N: int, split: int, batch: int = 1) -> Launch:
    """``splitKreduce_kernel`` of a split-K GEMM with an ``M x N`` output (module notes)."""
    ctas = math.ceil(int(N) / 32) * math.ceil(int(M) / 16) * max(1, int(batch))
    return Launch(
        "splitKreduce_kernel",
        max(1, ctas),
        32 * 16,
        (Round(1, "L2", float(32 * 16 * int(split) * 4)),),
    )


def cat_launch(
    sms: int, tensors: int, max_elems: int, elem: int, *, src: str = "HBM", int_ops: float = 0.0
) -> Launch:
    """``CatArrayBatchedCopy`` of ``tensors`` inputs of up to ``max_elems`` elements."""
    ctas = 2 * int(sms) * max(1, int(tensors))
    per_thread = max(1, math.ceil(int(max_elems) / (2 * int(sms) * CAT_THREADS)))
    return Launch(
        "CatArrayBatchedCopy",
        ctas,
        CAT_THREADS,
        (
            Round(1, "HBM", 0.0),  # the input descriptor (kernel parameter block)
            Round(per_thread, _check_level(src), float(CAT_THREADS * elem), float(int_ops)),
        ),
    )
