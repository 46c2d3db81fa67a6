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

import importlib

#: public name -> the module that defines it, imported on first use: ``import dse`` (and so
#: ``archsim sweep --help``) loads neither pandas (the store, Pareto fronts) nor matplotlib.
_WHERE = {
    "MAX_POINTS": "dse._check",
    "check_spec": "dse._check",
    "count_points": "dse._check",
    "evaluate_point": "dse._evaluate",
    "pareto": "dse._pareto",
    "pareto_mask": "dse._pareto",
    "DesignPoint": "dse._points",
    "expand_points": "dse._points",
    "SweepSummary": "dse._runner",
    "run_batch": "dse._runner",
    "run_sweep": "dse._runner",
    "get_sampler": "dse._samplers",
    "list_samplers": "dse._samplers",
    "ChoiceAxis": "dse._spec",
    "Constraint": "dse._spec",
    "RangeAxis": "dse._spec",
    "SamplerSpec": "dse._spec",
    "SweepSpec": "dse._spec",
    "load_sweep": "dse._spec",
    "ResultStore": "dse._store",
    "load": "dse._store",
    "arch_peaks": "dse._plots",
    "pareto_plot": "dse._plots",
    "roofline_plot": "dse._plots",
}


def __getattr__(name: str) -> object:
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module 'dse' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value  # later look-ups skip __getattr__
    return value


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
