"""dse: design-space exploration for archsim.

Sweep specs (YAML) over architecture fields, workload shapes, dataflows and engines;
samplers (grid, random, Latin hypercube, Sobol); pre-flight checks that refuse a spec
which cannot run (or has too many points) before any point runs; a resumable parallel
runner (local processes or Dask); an append-safe Parquet result store with one writer at a
time; Pareto fronts (one per group, e.g. per sequence length) and plots.

>>> import dse
>>> summary = dse.run_sweep("sweep.yaml", "runs/s1", workers=2)   # doctest: +SKIP
>>> df = dse.load("runs/s1")                                      # doctest: +SKIP
>>> front = dse.pareto(df, "energy_j", "seconds")                 # doctest: +SKIP
"""

from __future__ import annotations

from dse._check import MAX_POINTS, check_spec, count_points
from dse._evaluate import evaluate_point
from dse._pareto import pareto, pareto_mask
from dse._points import DesignPoint, expand_points
from dse._runner import SweepSummary, run_batch, run_sweep
from dse._samplers import get_sampler, list_samplers
from dse._spec import ChoiceAxis, Constraint, RangeAxis, SamplerSpec, SweepSpec, load_sweep
from dse._store import ResultStore, load

_LAZY = {"arch_peaks", "pareto_plot", "roofline_plot"}  # matplotlib: imported on first use


def __getattr__(name: str) -> object:
    if name in _LAZY:
        from dse import _plots

        return getattr(_plots, name)
    raise AttributeError(f"module 'dse' has no attribute {name!r}")


__all__ = [
    "SweepSpec",
    "SamplerSpec",
    "ChoiceAxis",
    "RangeAxis",
    "Constraint",
    "load_sweep",
    "check_spec",
    "count_points",
    "MAX_POINTS",
    "DesignPoint",
    "expand_points",
    "get_sampler",
    "list_samplers",
    "run_sweep",
    "run_batch",
    "SweepSummary",
    "evaluate_point",
    "ResultStore",
    "load",
    "pareto",
    "pareto_mask",
    "pareto_plot",
    "roofline_plot",
    "arch_peaks",
]
