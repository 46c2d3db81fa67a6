"""Einsum cascades: the language, checking, reference executor, counting and the library.

Write a cascade in the text notation (the full reference: ``docs/cascade_language.md``) and
parse it with :func:`parse_cascade`, load one from YAML with :func:`load_cascade`, or build
one in Python with :class:`CascadeBuilder`. :func:`execute` runs it on numpy arrays (the
ground truth); :func:`count` gives MACs, ops by kind, bytes and compulsory traffic;
:func:`iteration_points` is a microsecond upper bound on the work (dense points) for callers
that must refuse or warn before a huge job. Every size is bounded (``MAX_EXTENT`` = 2**40
elements per rank, ``MAX_POINTS`` = 2**62 points per Einsum, ``MAX_NESTING`` = 64 levels per
expression; ``workloads._limits``) and refused with a message naming the parameter.

>>> from workloads import parse_cascade, count
>>> c = parse_cascade('''
... tensor A[m,k] : bf16
... tensor B[k,n] : bf16
... C[m,n] = A[m,k] * B[k,n]
... ''', params={"M": 4, "K": 8, "N": 2})
>>> count(c).macs
64.0
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ._api import format_cascade, parse_cascade
from ._ast import Cascade, Einsum, Sparsity, TensorRef, TensorSpec
from ._count import CascadeCounts, EinsumCounts, count
from ._execute import execute, execute_with_presence
from ._files import read_text as read_cascade_text
from ._limits import MAX_EXTENT, MAX_NESTING, MAX_POINTS, iteration_points
from ._yaml import CascadeBuilder, load_cascade

if TYPE_CHECKING:  # pragma: no cover
    from workloads.library import (  # noqa: F401
        ModelPreset,
        Workload,
        get_model,
        get_workload,
        list_models,
        list_workloads,
    )

__all__ = [
    "Cascade",
    "Einsum",
    "TensorRef",
    "TensorSpec",
    "Sparsity",
    "parse_cascade",
    "format_cascade",
    "load_cascade",
    "read_cascade_text",
    "CascadeBuilder",
    "execute",
    "execute_with_presence",
    "count",
    "iteration_points",
    "MAX_EXTENT",
    "MAX_POINTS",
    "MAX_NESTING",
    "CascadeCounts",
    "EinsumCounts",
    "get_workload",
    "list_workloads",
    "Workload",
    "get_model",
    "list_models",
    "ModelPreset",
    "parse_set_options",
]

_LIBRARY = (
    "get_workload",
    "list_workloads",
    "Workload",
    "get_model",
    "list_models",
    "ModelPreset",
    "parse_set_options",
)


def __getattr__(name: str) -> object:
    """Re-export the library's names lazily, so this package imports without it."""
    if name in _LIBRARY:
        from workloads import library

        return getattr(library, name)
    raise AttributeError(f"module 'workloads' has no attribute {name!r}")
