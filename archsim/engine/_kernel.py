"""numba kernel of the estimator: in-order greedy list scheduling (compiled on first use)."""

from __future__ import annotations

import numpy as np
from numba import njit

__all__ = ["list_schedule"]


@njit(cache=True)
def list_schedule(times: np.ndarray, slots: int) -> float:  # pragma: no cover - numba
    """Makespan when items (durations ``times``, in order) go to the earliest-free slot.

    A binary min-heap of slot free times; O(items x log slots).
    """
    m = min(slots, times.shape[0])
    if m == 0:
        return 0.0
    heap = np.zeros(m)
    end = 0.0
    for i in range(times.shape[0]):
        t = heap[0] + times[i]
        if t > end:
            end = t
        # replace the root and sift down
        j = 0
        while True:
            c = 2 * j + 1
            if c >= m:
                break
            if c + 1 < m and heap[c + 1] < heap[c]:
                c += 1
            if heap[c] < t:
                heap[j] = heap[c]
                j = c
            else:
                break
        heap[j] = t
    return end
