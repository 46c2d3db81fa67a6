"""A closed-form toy evaluator for runner-plumbing tests (the real one is used elsewhere)."""

from __future__ import annotations


def toy_evaluator(point):
    """Closed-form stand-in used only where a test is about the runner's plumbing.

    seconds = S / capacity; fails (raises) for S == 4096 on the smallest buffer.
    """
    params = dict(point.params)
    updates = dict(point.arch_updates)
    capacity = float(updates.get("levels.GLB.capacity_bytes", 1e6))
    if params.get("S") == 4096 and capacity < 2e6:
        raise ValueError("buffer too small for S=4096")
    seconds = params.get("S", 1) / capacity
    return {
        "cycles": int(seconds * 1e9),
        "seconds": seconds,
        "energy_j": 2 * seconds,
        "area_mm2": capacity / 1e6,
    }


def dying_evaluator(point):
    """Like ``toy_evaluator``, but the worker process dies hard on the 16 MB-buffer points."""
    import os

    if dict(point.arch_updates).get("levels.GLB.capacity_bytes") == 16e6:
        os._exit(9)
    return toy_evaluator(point)
