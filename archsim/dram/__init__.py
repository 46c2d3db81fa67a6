"""DRAM bank/timing component: command-level model of banks, rows and timing constraints.

Gives the rates of request streams (sequential row hits, row misses, random, all-bank PIM MAC
commands) from :class:`archsim.DramTiming`, so a PIM all-bank stream and a host read stream
get their real rates (``stream_rate``, ``pim_bandwidth_multiplier``), and DRAM levels their
timing-model bandwidth for an access pattern (``with_dram_timing``; see
:mod:`archsim.dram._bandwidth` for what is and is not modelled).
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
