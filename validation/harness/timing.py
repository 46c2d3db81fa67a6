"""Kernel timing with CUDA events (imports torch lazily).

Method (the one of ``triton.testing.do_bench``, re-implemented to also return quantiles
and the repetition count): call once and synchronize (compilation, handle creation),
warm up for ``warmup_ms``, then for each repetition zero a 256 MiB buffer (this evicts
the 50 MB L2 of an H100, so every timed call starts with a cold L2 and inputs smaller
than L2 are read from DRAM, as in a model whose other layers ran in between), then
enqueue a GPU spin of ``SLEEP_CYCLES`` (``torch.cuda._sleep``, ~150 us), record a start
event, call, record an end event. The median over repetitions is reported. The memset
and the spin keep the GPU busy while the CPU enqueues the call, so host-side dispatch
overhead (Python, SDPA backend selection, cuDNN graph lookup: tens of microseconds) stays
out of the measured interval, which holds only the GPU time of the call's kernels and
the gaps between them. (Without the spin, two runs of a 12 us cuDNN decode call measured
12 and 53 us: the dispatch sometimes outlasted the 85 us memset.)
"""

from __future__ import annotations

import statistics
from collections.abc import Callable

__all__ = ["FLUSH_BYTES", "SLEEP_CYCLES", "bench"]

#: Bytes zeroed before every timed call to flush L2 (5x an H100's 50 MB L2).
FLUSH_BYTES = 256 * 2**20

#: GPU spin (clock cycles) enqueued before each timed call: ~150 us at 1.98 GHz.
SLEEP_CYCLES = 300_000

_flush_buf = None


def _flush_buffer():  # noqa: ANN202 - torch tensor, torch imported lazily
    global _flush_buf
    import torch

    if _flush_buf is None:
        _flush_buf = torch.empty(FLUSH_BYTES // 4, dtype=torch.int32, device="cuda")
    return _flush_buf


def bench(
    fn: Callable[[], object],
    *,
    warmup_ms: float = 25.0,
    rep_ms: float = 200.0,
    min_reps: int = 5,
    max_reps: int = 200,
) -> dict[str, float]:
    """Median time of ``fn`` in milliseconds, every call starting with a cold L2.

    Parameters
    ----------
    fn
        Callable that enqueues the GPU work of one call.
    warmup_ms
        Warm-up time before measuring, milliseconds.
    rep_ms
        Target total measured time; the repetition count is ``rep_ms / estimate`` clamped
        to ``[min_reps, max_reps]``.

    Returns
    -------
    dict
        ``ms`` (median), ``ms_p20``, ``ms_p80``, ``ms_min`` (milliseconds) and ``reps``.
    """
    import torch

    flush = _flush_buffer()

    def prepare() -> None:
        flush.zero_()
        torch.cuda._sleep(SLEEP_CYCLES)

    fn()
    torch.cuda.synchronize()
    start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    start.record()
    for _ in range(3):
        flush.zero_()
        fn()
    end.record()
    torch.cuda.synchronize()
    estimate = max(start.elapsed_time(end) / 3.0, 1e-3)
    for _ in range(int(min(max(warmup_ms / estimate, 1), 100))):
        prepare()
        fn()
    reps = int(min(max(rep_ms / estimate, min_reps), max_reps))
    starts = [torch.cuda.Event(enable_timing=True) for _ in range(reps)]
    ends = [torch.cuda.Event(enable_timing=True) for _ in range(reps)]
    for i in range(reps):
        prepare()
        starts[i].record()
        fn()
        ends[i].record()
    torch.cuda.synchronize()
    times = sorted(s.elapsed_time(e) for s, e in zip(starts, ends, strict=False))
    q = statistics.quantiles(times, n=5) if len(times) >= 2 else [times[0]] * 4
    return {
        "ms": statistics.median(times),
        "ms_p20": q[0],
        "ms_p80": q[3],
        "ms_min": times[0],
        "reps": reps,
    }
