"""Address patterns, the PIM all-bank MAC stream, and the rates they reach.

The rates are per pseudo-channel in bytes per tCK; :func:`stream_rate` also scales them to
the whole memory (``channels x pseudo_channels``) in bytes/s.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from archsim.dram._scheduler import DramStats, Request, burst_cycles, simulate_dram
from archsim.errors import SpecError

if TYPE_CHECKING:
    from archsim import DramTiming

__all__ = [
    "Pattern",
    "StreamRate",
    "pattern_requests",
    "pim_allbank_stream",
    "peak_pim_multiplier",
    "pim_bandwidth_multiplier",
    "stream_rate",
]

Pattern = Literal["row_hit", "row_hit_bg", "row_miss", "row_miss_banks", "random"]


def pattern_requests(
    timing: DramTiming, pattern: Pattern, n: int, *, seed: int = 0
) -> list[Request]:
    """``n`` burst requests of a named address pattern on one pseudo-channel.

    - ``row_hit``: sequential bursts through the rows of one bank (hits except at row ends);
    - ``row_hit_bg``: sequential bursts interleaved over bank groups (consecutive bursts in
      different groups, as a streaming address map does);
    - ``row_miss``: every burst to a new row of one bank;
    - ``row_miss_banks``: every burst to a new row, rotating over all banks;
    - ``random``: uniformly random bank and row (``seed``).
    """
    per_row = max(1, timing.row_bytes // timing.burst_bytes)
    nbg, nbk = timing.bank_groups, timing.banks_per_group
    if pattern == "row_hit":
        return [Request(0, 0, i // per_row) for i in range(n)]
    if pattern == "row_hit_bg":
        return [Request(i % nbg, (i // nbg) % nbk, i // (nbg * nbk * per_row)) for i in range(n)]
    if pattern == "row_miss":
        return [Request(0, 0, i) for i in range(n)]
    if pattern == "row_miss_banks":
        nb = nbg * nbk
        return [Request(i % nbg, (i // nbg) % nbk, i // nb) for i in range(n)]
    if pattern == "random":
        rng = random.Random(seed)
        rows = 1 << 14
        return [
            Request(rng.randrange(nbg), rng.randrange(nbk), rng.randrange(rows)) for _ in range(n)
        ]
    raise SpecError(
        "unknown DRAM pattern",
        path="pattern",
        expected="one of row_hit, row_hit_bg, row_miss, row_miss_banks, random, pim_allbank",
        got=pattern,
    )


@dataclass(frozen=True)
class StreamRate:
    """Sustained rate of a stream.

    Attributes
    ----------
    bytes_per_cycle
        Per pseudo-channel, bytes per tCK.
    bytes_per_s
        Whole memory (all channels and pseudo-channels), bytes/s.
    stats
        The underlying counts.
    """

    bytes_per_cycle: float
    bytes_per_s: float
    stats: DramStats


def _scale(timing: DramTiming, stats: DramStats) -> StreamRate:
    per = stats.bytes_per_cycle
    return StreamRate(
        per, per * timing.channels * timing.pseudo_channels / (timing.tck_ns * 1e-9), stats
    )


def pim_allbank_stream(
    timing: DramTiming,
    n_cmds: int,
    *,
    mac_cmd_gap: int = 4,
    units: int | None = None,
    refresh: bool = True,
) -> DramStats:
    """All-bank PIM MAC commands on one pseudo-channel.

    Every MAC command makes each of ``units`` PIM units (default: every bank of the
    pseudo-channel, over its ranks) read one burst from its open row. Commands issue every
    ``max(mac_cmd_gap, tCCD_L)`` tCK (AttAcc models its power limit as a gap of 6-8 instead
    of 4: AttAcc, ASPLOS'24). After ``row_bytes / burst_bytes`` commands the rows change: an
    all-bank PRE (no earlier than tRAS after the ACT), tRP, an all-bank ACT, tRCD. An
    all-bank ACT counts as one activation (it is one command; tFAW per-bank accounting does
    not apply to the broadcast). Refresh: tRFC every tREFI.
    """
    if units is None:
        units = timing.ranks * timing.bank_groups * timing.banks_per_group
    gap = max(int(mac_cmd_gap), timing.tCCD_L)
    per_row = max(1, timing.row_bytes // timing.burst_bytes)
    rtp = timing.tRTP if timing.tRTP is not None else burst_cycles(timing)
    t = 0.0
    act = 0.0
    next_ref = float(timing.tREFI) if refresh else float("inf")
    n_act = n_pre = n_ref = 0
    last_mac = -1e18
    issued = 0
    row_left = 0
    while issued < n_cmds:
        if row_left == 0:
            if issued:
                pre = max(last_mac + rtp, act + timing.tRAS)
                n_pre += 1
                t = pre + timing.tRP
            if t >= next_ref:
                t = max(t, next_ref) + timing.tRFC
                n_ref += 1
                next_ref += timing.tREFI
            act = t
            n_act += 1
            t = act + timing.tRCD
            row_left = per_row
        mac = max(t, last_mac + gap)
        last_mac = mac
        issued += 1
        row_left -= 1
        t = mac
    end = last_mac + gap
    return DramStats(
        cycles=int(round(end)),
        bytes=n_cmds * units * timing.burst_bytes,
        row_hits=n_cmds - n_act,
        row_misses=n_act,
        activates=n_act,
        precharges=n_pre,
        refreshes=n_ref,
    )


def stream_rate(
    timing: DramTiming,
    pattern: Pattern | Literal["pim_allbank"],
    *,
    n: int = 4096,
    mac_cmd_gap: int = 4,
    units: int | None = None,
    refresh: bool = True,
    seed: int = 0,
) -> StreamRate:
    """Sustained bandwidth of a named pattern (``n`` bursts or MAC commands).

    Parameters
    ----------
    timing
        DRAM organisation and timing.
    pattern
        One of :func:`pattern_requests`' names, or ``"pim_allbank"``
        (see :func:`pim_allbank_stream`; the bytes are the banks' internal reads).
    n
        Bursts (or MAC commands) simulated; long enough to include refreshes if wanted.
    mac_cmd_gap, units
        PIM all-bank parameters.
    refresh
        Model refresh.
    """
    if pattern == "pim_allbank":
        stats = pim_allbank_stream(timing, n, mac_cmd_gap=mac_cmd_gap, units=units, refresh=refresh)
    else:
        stats = simulate_dram(
            pattern_requests(timing, pattern, n, seed=seed), timing, refresh=refresh
        )
    return _scale(timing, stats)


def pim_bandwidth_multiplier(
    timing: DramTiming,
    *,
    mac_cmd_gap: int = 4,
    units: int | None = None,
    n: int = 8192,
    refresh: bool = True,
) -> float:
    """Internal all-bank PIM bandwidth over the host's streaming read bandwidth.

    Both measured on the same pseudo-channel by the command-level model: the PIM stream of
    ``n`` all-bank MAC commands against ``n`` bank-group-interleaved row-hit host reads.
    In steady state it is ``units x burst_cycles / gap`` less row-switch and refresh
    overheads: for the ``hbm3_pim`` preset (32 banks per pseudo-channel over 2 ranks, a 32 B
    burst holding the bus 2 tCK) a gap of 4 gives ~16x and a gap of 7 ~9x — AttAcc's
    per-bank figures (ASPLOS'24: "16x (9x under the power limit)").
    """
    pim = stream_rate(
        timing, "pim_allbank", n=n, mac_cmd_gap=mac_cmd_gap, units=units, refresh=refresh
    )
    host = stream_rate(timing, "row_hit_bg", n=n, refresh=refresh)
    return pim.bytes_per_cycle / host.bytes_per_cycle


def peak_pim_multiplier(
    timing: DramTiming, *, mac_cmd_gap: int = 4, units: int | None = None
) -> float:
    """Closed-form peak ratio: ``units x host_burst_interval / max(gap, tCCD_L)``.

    The host streams one burst per ``max(burst_cycles, tCCD_S)`` tCK on a pseudo-channel;
    all-bank PIM moves ``units`` bursts per MAC command. Row switches and refresh are left
    out (see :func:`pim_bandwidth_multiplier` for the sustained, simulated ratio).
    """
    if units is None:
        units = timing.ranks * timing.bank_groups * timing.banks_per_group
    host_interval = max(burst_cycles(timing), float(timing.tCCD_S))
    return units * host_interval / max(int(mac_cmd_gap), timing.tCCD_L)
