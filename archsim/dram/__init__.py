"""DRAM bank/timing component: command-level model of banks, rows and timing constraints.

Gives the rates of request streams (sequential row hits, row misses, random, all-bank PIM MAC
commands) from :class:`archsim.DramTiming`, so a PIM all-bank stream and a host read stream
get their real rates (``stream_rate``, ``pim_bandwidth_multiplier``).
"""

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
    "DramStats",
    "Pattern",
    "Request",
    "StreamRate",
    "burst_cycles",
    "pattern_requests",
    "peak_pim_multiplier",
    "pim_allbank_stream",
    "pim_bandwidth_multiplier",
    "simulate_dram",
    "stream_rate",
]
