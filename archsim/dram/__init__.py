"""DRAM bank/timing component: command-level model of banks, rows and timing constraints.

Gives the rates of request streams (sequential row hits, row misses, random, all-bank PIM MAC
commands) from :class:`archsim.DramTiming`, so a PIM all-bank stream and a host read stream
get their real rates (``stream_rate``, ``pim_bandwidth_multiplier``), and DRAM levels their
timing-model bandwidth for an access pattern (``with_dram_timing``, opt-in; the engine
otherwise uses each level's bandwidth figure).

Modelled: per-bank row state (open page), tRCD, tRP, tRAS, tRC, tRTP, tWR, tCCD_S/L,
tRRD_S/L, tFAW (four activations per window), one command per tCK, the data-bus burst time,
refresh (the rank precharges and is busy tRFC every tREFI), bank-group interleaving of the
named address patterns, and all-bank PIM commands (one broadcast ACT/PRE for every bank).

Not modelled: more than one rank per pseudo-channel in the host-side scheduler (ranks only
multiply PIM units), rank-to-rank and read/write bus turnaround (tWTR is a spec field the
scheduler ignores), per-bank refresh, out-of-order (FR-FCFS) reordering beyond overlapping
activations with earlier column commands, address mapping beyond the named patterns, and
bank conflicts between concurrent streams (each stream is timed alone; the engine shares a
level's one rate among its users by processor sharing).
"""

from archsim.dram._bandwidth import (
    STREAM,
    level_timing_bandwidth,
    timing_rate_bytes_per_s,
    with_dram_timing,
)
from archsim.dram._patterns import (
    Pattern,
    StreamRate,
    pattern_requests,
    peak_pim_multiplier,
    pim_allbank_stream,
    pim_bandwidth_multiplier,
    stream_rate,
)
from archsim.dram._scheduler import DramStats, Request, burst_cycles, simulate_dram

__all__ = [
    "STREAM",
    "DramStats",
    "Pattern",
    "Request",
    "StreamRate",
    "burst_cycles",
    "pattern_requests",
    "peak_pim_multiplier",
    "level_timing_bandwidth",
    "pim_allbank_stream",
    "pim_bandwidth_multiplier",
    "simulate_dram",
    "stream_rate",
    "timing_rate_bytes_per_s",
    "with_dram_timing",
]
