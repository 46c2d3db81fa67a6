"""archsim: cycle-level simulator and design-space explorer for fused-attention accelerators.

The public names below are loaded lazily (PEP 562), so ``import archsim`` is cheap and the
CLI starts fast; each name lives in the module listed in ``_EXPORTS``.
"""

from __future__ import annotations

import importlib
from typing import Any

from archsim.errors import (
    ArchsimError,
    ArchSpecError,
    InfeasibleMappingError,
    MappingError,
    SpecError,
    SweepError,
    ValidationDataError,
    WorkloadError,
)

#: public name -> module that defines it
_EXPORTS: dict[str, str] = {
    # architecture specs (archsim/spec/)
    "Architecture": "archsim.spec",
    "Clock": "archsim.spec",
    "StorageLevel": "archsim.spec",
    "ComputeUnit": "archsim.spec",
    "Network": "archsim.spec",
    "DramTiming": "archsim.spec",
    "GpuParams": "archsim.spec",
    "PimParams": "archsim.spec",
    "load_arch": "archsim.spec",
    "list_presets": "archsim.spec",
    # tile program (archsim/program.py)
    "Transfer": "archsim.program",
    "Compute": "archsim.program",
    "Step": "archsim.program",
    "Phase": "archsim.program",
    "TileProgram": "archsim.program",
    # evaluators and results
    "simulate": "archsim.engine",
    "validate_program": "archsim.engine",
    "estimate": "archsim._estimate",
    "estimate_cycles": "archsim._estimate",
    "Result": "archsim.result",
    "write_trace": "archsim.trace",
}

__all__ = [
    "ArchsimError",
    "ArchSpecError",
    "InfeasibleMappingError",
    "MappingError",
    "SpecError",
    "SweepError",
    "ValidationDataError",
    "WorkloadError",
    *_EXPORTS,
]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'archsim' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)
