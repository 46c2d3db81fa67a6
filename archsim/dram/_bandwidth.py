"""DRAM levels' bandwidth from the timing model instead of their datasheet figure.

A storage level of kind ``dram`` with ``dram:`` timing can run at the rate the command-level
model (:func:`archsim.dram.stream_rate`) gives for the program's access pattern, instead of
its ``read_bw`` / ``write_bw`` figure. This is opt-in, because the calibrated GPU presets
use measured/datasheet figures (the model's H100 streaming rate, ~3.0 TB/s with refresh, is
below the 3.35 TB/s figure the GPU model was calibrated with):

- per architecture: :func:`with_dram_timing` returns a copy whose DRAM levels carry the
  model's rates (use it for PIM presets, whose host path has no measured figure);
- per level: a level whose ``bandwidth_model`` is ``"timing"`` (a spec field the engine
  honours where the spec has it) gets the model's streaming rate in the engine.

What the rate includes: bank/bank-group parallelism of the pattern, row hits and misses
(tRCD, tRP, tRAS, tRC), tCCD_S/L, tRRD_S/L, tFAW, the data-bus burst time and refresh
(tRFC every tREFI), all on one pseudo-channel scaled by ``channels x pseudo_channels``.
What it leaves out: contention between different patterns on the same channel (a level has
one rate), read/write turnaround (tWTR) and rank-to-rank switching, address mapping beyond
the named patterns, and bank conflicts of real address streams (``random`` draws banks and
rows uniformly). Writes are modelled as a write stream of the same pattern.
"""

from __future__ import annotations

import math
from functools import lru_cache
from typing import TYPE_CHECKING, Literal

from archsim.dram._patterns import Pattern, pattern_requests
from archsim.dram._scheduler import Request, burst_cycles, simulate_dram
from archsim.errors import SpecError

if TYPE_CHECKING:
    from archsim import Architecture, DramTiming, StorageLevel

__all__ = ["STREAM", "level_timing_bandwidth", "timing_rate_bytes_per_s", "with_dram_timing"]

#: the pattern of a streaming (sequential) access: bursts interleaved over bank groups
STREAM: Pattern = "row_hit_bg"
_BURSTS = 4096
_MAX_BURSTS = 16384


@lru_cache(maxsize=256)
def timing_rate_bytes_per_s(timing: DramTiming, pattern: Pattern, write: bool = False) -> float:
    """Whole-memory sustained bandwidth of ``pattern`` in bytes/s (reads, or writes).

    Enough bursts on one pseudo-channel to span about 8 refresh intervals (4096 to 16384,
    so that refresh and row switches are averaged over), scaled by ``channels x
    pseudo_channels`` (one pseudo-channel stands for all: they run the same stream).
    """
    n = min(_MAX_BURSTS, max(_BURSTS, math.ceil(8 * timing.tREFI / burst_cycles(timing))))
    reqs = pattern_requests(timing, pattern, n)
    if write:
        reqs = [Request(r.bank_group, r.bank, r.row, True) for r in reqs]
    stats = simulate_dram(reqs, timing, refresh=True)
    return stats.bytes_per_cycle * timing.channels * timing.pseudo_channels / (timing.tck_ns * 1e-9)


def level_timing_bandwidth(
    level: StorageLevel, core_hz: float, pattern: Pattern = STREAM
) -> tuple[float, float]:
    """``(read, write)`` bytes per core cycle per instance of a DRAM level, from its timing.

    Raises
    ------
    SpecError
        The level is not of kind ``dram`` or has no ``dram`` timing.
    """
    timing = level.dram
    if level.kind != "dram" or timing is None:
        raise SpecError(
            "the DRAM timing model needs a dram level with timing",
            path=f"levels.{level.name}.dram",
            expected="kind: dram with a dram: timing block",
            got=f"kind {level.kind}, dram {'set' if timing is not None else 'None'}",
        )
    per = core_hz * level.instances
    return (
        timing_rate_bytes_per_s(timing, pattern) / per,
        timing_rate_bytes_per_s(timing, pattern, True) / per,
    )


def with_dram_timing(
    arch: Architecture,
    *,
    pattern: Pattern | Literal["stream"] = "stream",
    levels: tuple[str, ...] | None = None,
) -> Architecture:
    """A copy of ``arch`` whose DRAM levels run at the timing model's rate for ``pattern``.

    Parameters
    ----------
    arch
        The architecture.
    pattern
        ``"stream"`` (sequential, bank-group interleaved row hits) or one of
        :func:`archsim.dram.pattern_requests`' names (``"random"``, ``"row_miss"``, ...).
    levels
        Level names to change (default: every level of kind ``dram`` with timing).

    Raises
    ------
    SpecError
        A named level is not a DRAM level with timing.
    """
    pat: Pattern = STREAM if pattern == "stream" else pattern
    names = levels or tuple(lv.name for lv in arch.levels if lv.kind == "dram" and lv.dram)
    updates: dict[str, object] = {}
    core_hz = float(arch.clock.core_hz)
    for name in names:
        lv = arch.level(name)
        read, write = level_timing_bandwidth(lv, core_hz, pat)
        for field, value in (("read", read), ("write", write)):
            if getattr(lv, f"{field}_bw_bytes_per_s") is not None:
                updates[f"levels.{name}.{field}_bw_bytes_per_s"] = value * core_hz
            else:
                updates[f"levels.{name}.{field}_bw_bytes_per_cycle"] = value
    return arch.with_updates(updates) if updates else arch
