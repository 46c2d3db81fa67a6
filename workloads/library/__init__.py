"""The workload library: named attention/GEMM/norm cascades and model presets.

>>> from workloads.library import get_workload
>>> w = get_workload("mha", B=4, H=16, S=4096, D=128, passes=3)
>>> w.counts().macs == 2 * 4 * 16 * 4096**2 * 128
True

Every cascade is written in the text notation and proved equal to a direct numpy
implementation (``Workload.reference``) by ``verify`` on small shapes.
"""

from __future__ import annotations

from . import (  # noqa: F401
    _attention,
    _backward,
    _decode,
    _dense,
    _gla,
    _linear,
    _shared_prefix,
    _sparse,
    _variants,
)
from ._models import ModelPreset, get_model, list_models
from ._params import parse_set_options, parse_value
from ._registry import Param, Workload, WorkloadDef, get_workload, list_workloads
from ._verify import TOLERANCE, VerifyResult, verify, verify_cases

__all__ = [
    "Workload",
    "WorkloadDef",
    "Param",
    "get_workload",
    "list_workloads",
    "ModelPreset",
    "get_model",
    "list_models",
    "parse_set_options",
    "parse_value",
    "verify",
    "verify_cases",
    "VerifyResult",
    "TOLERANCE",
]
