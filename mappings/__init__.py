"""Mappings: loop-nest mappings, lowering to tile programs, named dataflows, mappers.

>>> from mappings import simulate_workload
>>> rep = simulate_workload("fusemax", "mha", params={"S": 4096, "B": 1, "H": 2, "D": 64},
...                         dataflow="fusemax", engine="analytic")
>>> rep.to_dict()["passes"]["passes"]
1

Built-in dataflows: ``unfused``, ``flat``, ``fusemax``, ``gemm`` (this package), the GPU
ones in ``mappings._gpu`` and the PIM ones in ``mappings._pim``. They are declared in
:data:`mappings._registry.BUILTIN` and their module is imported on first use
(:func:`get_dataflow`); a user's own registers with :func:`register_dataflow`.

The public names below are loaded lazily (PEP 562): ``import mappings`` imports only the
registry, so the CLI and a simulate import only the recipes and mappers they run.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from mappings._registry import (
    DataflowFn,
    PassInfo,
    Plan,
    get_dataflow,
    list_dataflows,
    register_dataflow,
)

if TYPE_CHECKING:  # the lazily loaded names, for type checkers
    from mappings._api import SimulationReport, simulate_workload
    from mappings._check import check_mapping
    from mappings._lower import lower
    from mappings._mappers import RankedMapping, get_mapper, list_mappers
    from mappings._mapping import FusionGroup, LevelMapping, Mapping
    from mappings._passes import cascade_passes

#: public name -> module that defines it (imported on first access)
_EXPORTS: dict[str, str] = {
    "Mapping": "mappings._mapping",
    "FusionGroup": "mappings._mapping",
    "LevelMapping": "mappings._mapping",
    "check_mapping": "mappings._check",
    "lower": "mappings._lower",
    "cascade_passes": "mappings._passes",
    "SimulationReport": "mappings._api",
    "simulate_workload": "mappings._api",
    "RankedMapping": "mappings._mappers",
    "get_mapper": "mappings._mappers",
    "list_mappers": "mappings._mappers",
}

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


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'mappings' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(__all__) | set(globals()))
