"""Command-level DRAM model of one pseudo-channel (one rank): banks, rows, timing.

Scheduling policy (documented, deterministic): *in-order with bank-level lookahead*. Requests
are served in arrival order: column commands (RD/WR) issue in request order and so do
activations, but a request's PRE/ACT may issue before the previous request's column command
whenever the timing allows (a controller with a request queue overlapping row activations of
different banks). Pages stay open until a request needs another row of that bank (open-page
policy). One command per tCK on the command bus.

Constraints (all in tCK, fields of :class:`archsim.DramTiming`):

- ACT -> RD/WR same bank: tRCD; PRE -> ACT same bank: tRP; ACT -> PRE same bank: tRAS;
  ACT -> ACT same bank: tRC (tRAS + tRP if not given);
- ACT -> ACT different banks: tRRD_L (same bank group) / tRRD_S; at most 4 ACTs per tFAW;
- column -> column: tCCD_L (same bank group) / tCCD_S; each burst holds the pseudo-channel
  data bus ``burst_bytes / (bus_bytes_per_cycle / pseudo_channels)`` tCK;
- RD -> PRE: tRTP (or one burst if not given); WR -> PRE: tCL + burst + tWR;
- refresh: every tREFI all banks are precharged and the rank is busy tRFC.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from typing import TYPE_CHECKING

from archsim.errors import SpecError

if TYPE_CHECKING:
    from archsim import DramTiming

__all__ = ["DramStats", "Request", "simulate_dram", "burst_cycles"]


@dataclass(frozen=True)
class Request:
    """One burst-sized access of a pseudo-channel: bank group, bank in group, row."""

    bank_group: int
    bank: int
    row: int
    write: bool = False


@dataclass(frozen=True)
class DramStats:
    """Outcome of a request stream on one pseudo-channel.

    Attributes
    ----------
    cycles
        tCK from the first command to the end of the last data burst.
    bytes
        Bytes moved (bursts x ``burst_bytes``).
    row_hits, row_misses
        Requests that found their row open / needed an activation.
    activates, precharges, refreshes
        Commands issued.
    """

    cycles: int
    bytes: int
    row_hits: int
    row_misses: int
    activates: int
    precharges: int
    refreshes: int

    @property
    def bytes_per_cycle(self) -> float:
        """Achieved bytes per tCK on this pseudo-channel."""
        return self.bytes / self.cycles if self.cycles else 0.0


def burst_cycles(timing: DramTiming) -> float:
    """tCK one burst holds a pseudo-channel's data bus."""
    return timing.burst_bytes / (timing.bus_bytes_per_cycle / timing.pseudo_channels)


class _CmdBus:
    """One command per tCK: the first free cycle at or after ``t``."""

    def __init__(self) -> None:
        self.used: set[int] = set()

    def issue(self, t: float) -> int:
        c = int(-(-t // 1))  # ceil
        while c in self.used:
            c += 1
        self.used.add(c)
        return c


class _Rank:
    def __init__(self, timing: DramTiming, refresh: bool) -> None:
        self.t = timing
        nb = timing.bank_groups * timing.banks_per_group
        self.open_row: list[int | None] = [None] * nb
        self.act_ok = [0.0] * nb  # earliest next ACT (tRP after PRE, tRC after ACT)
        self.col_ok = [0.0] * nb  # earliest column command (tRCD after ACT)
        self.pre_ok = [0.0] * nb  # earliest PRE (tRAS, tRTP, tWR)
        self.acts: deque[float] = deque(maxlen=4)
        self.last_act = -1e18
        self.last_act_bg = -1
        self.last_col = -1e18
        self.last_col_bg = -1
        self.bus_free = 0.0
        self.bus = _CmdBus()
        self.next_ref = float(timing.tREFI) if refresh else float("inf")
        self.n_act = self.n_pre = self.n_ref = 0
        self.trc = timing.tRC if timing.tRC is not None else timing.tRAS + timing.tRP
        self.burst = burst_cycles(timing)

    def refresh_until(self, t: float) -> None:
        """Do every refresh due before ``t``: precharge all, then tRFC busy."""
        tm = self.t
        while t >= self.next_ref:
            start = self.next_ref
            pre_done = start
            for b, row in enumerate(self.open_row):
                if row is not None:
                    pre = self.bus.issue(max(start, self.pre_ok[b]))
                    self.n_pre += 1
                    pre_done = max(pre_done, pre + tm.tRP)
                    self.open_row[b] = None
                else:
                    pre_done = max(pre_done, self.act_ok[b])
            ref = self.bus.issue(pre_done)
            self.n_ref += 1
            ready = ref + tm.tRFC
            self.act_ok = [max(x, ready) for x in self.act_ok]
            self.next_ref += tm.tREFI

    def activate(self, b: int, bg: int, t: float) -> float:
        tm = self.t
        t = max(t, self.act_ok[b], self.last_act)  # ACTs in request order
        if self.last_act_bg >= 0:
            t = max(t, self.last_act + (tm.tRRD_L if bg == self.last_act_bg else tm.tRRD_S))
        if len(self.acts) == 4:
            t = max(t, self.acts[0] + tm.tFAW)
        c = self.bus.issue(t)
        self.acts.append(c)
        self.last_act, self.last_act_bg = c, bg
        self.col_ok[b] = c + tm.tRCD
        self.pre_ok[b] = max(self.pre_ok[b], c + tm.tRAS)
        self.act_ok[b] = c + self.trc
        self.n_act += 1
        return c

    def precharge(self, b: int, t: float) -> float:
        c = self.bus.issue(max(t, self.pre_ok[b]))
        self.act_ok[b] = max(self.act_ok[b], c + self.t.tRP)
        self.open_row[b] = None
        self.n_pre += 1
        return c

    def column(self, b: int, bg: int, write: bool, t: float) -> float:
        tm = self.t
        t = max(t, self.col_ok[b], self.last_col)
        if self.last_col_bg >= 0:
            t = max(t, self.last_col + (tm.tCCD_L if bg == self.last_col_bg else tm.tCCD_S))
        t = max(t, self.bus_free - self.burst)  # data bursts back to back, never overlapping
        c = self.bus.issue(t)
        self.last_col, self.last_col_bg = c, bg
        self.bus_free = max(self.bus_free, c + self.burst)
        if write:
            self.pre_ok[b] = max(self.pre_ok[b], c + tm.tCL + self.burst + tm.tWR)
        else:
            rtp = tm.tRTP if tm.tRTP is not None else self.burst
            self.pre_ok[b] = max(self.pre_ok[b], c + rtp)
        return c


def simulate_dram(
    requests: list[Request] | tuple[Request, ...], timing: DramTiming, *, refresh: bool = True
) -> DramStats:
    """Serve ``requests`` (in order) on one pseudo-channel and count tCK.

    Parameters
    ----------
    requests
        Burst-sized requests; bank indices within ``bank_groups x banks_per_group``.
    timing
        The DRAM's organisation and timing.
    refresh
        Model refresh (tRFC every tREFI).

    Raises
    ------
    SpecError
        A request names a bank outside the pseudo-channel.

    Returns
    -------
    DramStats
        ``cycles`` runs from 0 to the end of the last burst's data (column command + tCL +
        burst for reads; the constant tCL offset does not change streaming rates).
    """
    rank = _Rank(timing, refresh)
    nbg, nbk = timing.bank_groups, timing.banks_per_group
    hits = misses = 0
    end = 0.0
    for i, r in enumerate(requests):
        if not (0 <= r.bank_group < nbg and 0 <= r.bank < nbk):
            raise SpecError(
                "bank outside the pseudo-channel",
                path=f"requests[{i}]",
                expected=f"bank_group < {nbg}, bank < {nbk}",
                got=(r.bank_group, r.bank),
            )
        b = r.bank_group * nbk + r.bank
        rank.refresh_until(max(rank.last_col, 0.0))
        earliest = 0.0
        if rank.open_row[b] == r.row:
            hits += 1
        else:
            misses += 1
            if rank.open_row[b] is not None:
                earliest = rank.precharge(b, earliest) + timing.tRP
            rank.activate(b, r.bank_group, earliest)
            rank.open_row[b] = r.row
        col = rank.column(b, r.bank_group, r.write, 0.0)
        end = max(end, col + timing.tCL + rank.burst)
    return DramStats(
        cycles=int(round(end)),
        bytes=len(requests) * timing.burst_bytes,
        row_hits=hits,
        row_misses=misses,
        activates=rank.n_act,
        precharges=rank.n_pre,
        refreshes=rank.n_ref,
    )
