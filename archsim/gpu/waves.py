"""CTA scheduling onto SMs: waves, tails and imbalance.

The hardware block scheduler hands CTAs to free slots in launch order (a slot is one
resident CTA position: SMs x CTAs per SM). With equal CTAs this is wave quantization;
with unequal CTAs (causal attention, block sparsity) it is greedy list scheduling, which
:func:`list_schedule` reproduces exactly with a heap.
"""

from __future__ import annotations

import heapq
from dataclasses import dataclass

import numpy as np

__all__ = ["Schedule", "ctas_per_slot", "list_schedule", "waves"]


def waves(work_items: int, slots: int) -> int:
    """Number of waves ``ceil(work_items / slots)`` (0 for no work)."""
    if work_items <= 0:
        return 0
    return -(-int(work_items) // max(1, int(slots)))


def ctas_per_slot(grid: int, slots: int) -> np.ndarray:
    """CTAs each busy slot runs when ``grid`` identical CTAs go to ``slots`` slots: one entry
    per slot in use (``min(grid, slots)``), the first ``grid % slots`` one more (the last,
    partial wave). A kernel that folds a slot's CTAs into one work item scales its per-CTA
    cycles and bytes by this."""
    grid = max(1, int(grid))
    items = min(grid, max(1, int(slots)))
    out = np.full(items, grid // items, dtype=float)
    out[: grid % items] += 1.0
    return out


@dataclass(frozen=True)
class Schedule:
    """Result of scheduling CTAs onto slots.

    Attributes
    ----------
    makespan : finish time of the last slot (same unit as the durations).
    critical : indices of the CTAs that ran on the last-finishing slot, in order.
    slot_of : slot index of every CTA.
    """

    makespan: float
    critical: np.ndarray
    slot_of: np.ndarray


def list_schedule(
    durations: np.ndarray, slots: int, *, order: np.ndarray | None = None
) -> Schedule:
    """Greedy in-order dispatch of CTAs to the first free slot.

    Parameters
    ----------
    durations
        Duration of each CTA (any time unit), shape ``(n,)``.
    slots
        Concurrent positions (SMs x CTAs per SM).
    order
        Dispatch order (indices); default launch order ``0..n-1``.

    Returns
    -------
    Schedule

    Notes
    -----
    NOTE: equal durations take a closed form (``waves x d``) -- exact, because then every
    slot receives CTAs round-robin. Otherwise O(n log slots) with a heap; ties break on
    the slot index, so the result is deterministic.
    """
    d = np.asarray(durations, dtype=float)
    n = d.size
    slots = max(1, int(slots))
    idx = np.arange(n) if order is None else np.asarray(order, dtype=int)
    if n == 0:
        return Schedule(0.0, np.zeros(0, dtype=int), np.zeros(0, dtype=int))
    if np.all(d == d[0]):
        slot_of = np.empty(n, dtype=int)
        slot_of[idx] = np.arange(n) % slots
        last = (n - 1) % slots
        return Schedule(float(waves(n, slots) * d[0]), idx[last::slots].copy(), slot_of)
    heap = [(0.0, s) for s in range(min(slots, n))]
    slot_of = np.empty(n, dtype=int)
    for i in idx:
        t, s = heapq.heappop(heap)
        slot_of[i] = s
        heapq.heappush(heap, (t + d[i], s))
    t_end, s_end = max(heap)
    crit = idx[slot_of[idx] == s_end]
    return Schedule(float(t_end), crit, slot_of)
