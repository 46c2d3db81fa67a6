"""Checking a workload's cascade against its direct numpy reference."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from workloads import execute
from workloads._limits import check_executable

from ._registry import Workload, get_def, get_workload

__all__ = ["VerifyResult", "verify", "verify_cases", "TOLERANCE"]

TOLERANCE = 1e-9
"""Largest accepted relative error (float64 executor vs float64 reference)."""


@dataclass(frozen=True)
class VerifyResult:
    """One comparison: the workload, its parameters and the max relative error."""

    workload: Workload
    max_rel_error: float

    @property
    def ok(self) -> bool:
        """Whether the error is within :data:`TOLERANCE`."""
        return self.max_rel_error <= TOLERANCE


def verify(w: Workload, rng: np.random.Generator) -> VerifyResult:
    """Run ``w``'s cascade with ``execute`` on random inputs and compare with the reference.

    The error of each output is ``max|got - want| / max(max|want|, 1e-30)``; the result holds
    the largest over outputs (NaN counts as infinite).
    """
    check_executable(w.cascade)  # before drawing inputs of a shape numpy cannot hold
    inputs = w.random_inputs(rng)
    got = execute(w.cascade, inputs)
    want = w.reference(inputs)
    worst = 0.0
    for name, ref in want.items():
        diff = np.abs(got[name] - ref)
        scale = max(float(np.max(np.abs(ref))) if ref.size else 0.0, 1e-30)
        err = float(np.max(diff)) / scale if diff.size else 0.0
        worst = max(worst, err if np.isfinite(err) else float("inf"))
    return VerifyResult(w, worst)


def verify_cases(name: str) -> list[Workload]:
    """The small workloads (one per verification shape) of library workload ``name``."""
    return [get_workload(name, **shape) for shape in get_def(name).verify]
