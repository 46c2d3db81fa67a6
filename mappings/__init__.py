"""Mappings: loop-nest mappings, lowering to tile programs, named dataflows, mappers.

>>> from mappings import simulate_workload
>>> rep = simulate_workload("fusemax", "mha", params={"S": 4096, "B": 1, "H": 2, "D": 64},
...                         dataflow="fusemax", engine="analytic")
>>> rep.to_dict()["passes"]["passes"]
1

Built-in dataflows: ``unfused``, ``flat``, ``fusemax``, ``gemm`` (this package), the GPU
ones in ``mappings._gpu`` and the PIM ones in ``mappings._pim`` (both optional here; they
register through :func:`register_dataflow` when present).
"""

from __future__ import annotations

import importlib

from mappings import _attention, _gemm  # noqa: F401  (register the spatial dataflows)
from mappings._api import SimulationReport, simulate_workload
from mappings._check import check_mapping
from mappings._lower import lower
from mappings._mappers import RankedMapping, get_mapper, list_mappers
from mappings._mapping import FusionGroup, LevelMapping, Mapping
from mappings._passes import cascade_passes
from mappings._registry import (
    DataflowFn,
    PassInfo,
    Plan,
    get_dataflow,
    list_dataflows,
    register_dataflow,
)

for _mod in ("mappings._gpu", "mappings._pim"):
    try:
        importlib.import_module(_mod)
    except ModuleNotFoundError as _exc:  # only a module that is absent is skipped
        if _exc.name != _mod:
            raise

__all__ = [
    "Mapping",
    "FusionGroup",
    "LevelMapping",
    "check_mapping",
    "lower",
    "cascade_passes",
    "Plan",
    "PassInfo",
    "DataflowFn",
    "register_dataflow",
    "get_dataflow",
    "list_dataflows",
    "SimulationReport",
    "simulate_workload",
    "RankedMapping",
    "get_mapper",
    "list_mappers",
]
