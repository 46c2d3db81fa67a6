"""The dataflow registry: named functions that turn (workload, architecture, knobs) into a Plan.

Every dataflow — spatial (``unfused``, ``flat``, ``fusemax``, ``gemm``), GPU
(``mappings/_gpu/``) and PIM (``mappings/_pim.py``) — registers here with
:func:`register_dataflow` and is looked up by name with :func:`get_dataflow`.

The built-in ones are declared in :data:`BUILTIN` (name -> module, the architecture kinds
it maps onto and the knobs it takes) and their module is imported on first use, so
``import mappings``, ``archsim --help`` and a simulate that names one dataflow import only
what they run (importing every recipe costs a few tenths of a second of start-up).
:func:`list_dataflows` lists the declared and the registered names alike.

A dataflow function has the signature::

    fn(workload: Workload, arch: Architecture, knobs: Mapping[str, object]) -> Plan

and raises :class:`archsim.errors.MappingError` for a bad knob (path ``knobs.NAME``) and
:class:`archsim.errors.InfeasibleMappingError` when the problem does not fit the machine.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol

from archsim.errors import MappingError

if TYPE_CHECKING:  # imported for annotations only; keeps ``import mappings`` cheap
    from archsim import Architecture, Result, TileProgram
    from mappings._mapping import Mapping as LoopMapping
    from workloads import Cascade, Workload

__all__ = [
    "PassInfo",
    "Plan",
    "DataflowFn",
    "WorkloadLike",
    "register_dataflow",
    "get_dataflow",
    "list_dataflows",
    "BuiltinDataflow",
    "BUILTIN",
    "dataflow_knobs",
    "dataflows_for",
]


class WorkloadLike(Protocol):
    """What the streamed recipes read of a workload: a library ``Workload`` or a cascade
    file's ``FileWorkload`` (:func:`mappings.resolve_workload`)."""

    @property
    def name(self) -> str: ...
    @property
    def cascade(self) -> Cascade: ...
    @property
    def params(self) -> Mapping[str, object]: ...
    @property
    def sizes(self) -> Mapping[str, int]: ...


@dataclass(frozen=True)
class PassInfo:
    """How many passes over the keys/values (or the reduced rank) a mapping makes.

    Attributes
    ----------
    passes
        Number of passes over the input along the reduced rank (FuseMax's 3-, 2- or 1-pass
        classes; 1 for cascades without a softmax-like dependency).
    buffer_bytes
        On-chip buffer the mapping needs to hold its live intermediates, in bytes, for the
        shapes of this run (0 when intermediates are spilled to DRAM instead).
    buffer_formula
        The same buffer as a formula of the shape parameters, e.g. ``"rows*S*2 B"`` or
        ``"O(1) in S"``.
    spill_bytes
        DRAM bytes moved only because of the extra passes (intermediates written and re-read),
        0 for a fully fused mapping.
    reason
        One line: which Einsum forces each extra pass, or which running state removes it.
    """

    passes: int
    buffer_bytes: float
    buffer_formula: str
    spill_bytes: float = 0.0
    reason: str = ""

    def to_dict(self) -> dict[str, object]:
        """JSON-ready dict (the ``passes`` block of ``archsim simulate --json``)."""
        return {
            "passes": self.passes,
            "buffer_bytes": self.buffer_bytes,
            "buffer_formula": self.buffer_formula,
            "spill_bytes": self.spill_bytes,
            "reason": self.reason,
        }


@dataclass(frozen=True)
class Plan:
    """What a dataflow hands to the evaluators.

    Attributes
    ----------
    program
        The tile program (``archsim.TileProgram``) to run with ``simulate`` or ``estimate``.
    mapping
        The loop-nest mapping it was lowered from, when there is one.
    passes
        Pass analysis of the mapping (see :mod:`mappings._passes`), when meaningful.
    notes
        Free text for humans: the binding, which knobs were used.
    meta
        Extra numbers (analytic traffic per level, utilization bounds, knobs resolved).
    finish
        What the architecture class adds to an evaluator's ``Result`` that per-op tables
        cannot give (a GPU's board power model, a PIM stack's in-bank reads), applied by
        :func:`mappings.simulate_workload` to the event and the analytic result alike;
        ``None`` for spatial arrays.
    """

    program: TileProgram
    mapping: LoopMapping | None = None
    passes: PassInfo | None = None
    notes: str = ""
    meta: Mapping[str, object] = field(default_factory=dict)
    finish: Callable[[Result], Result] | None = None


DataflowFn = Callable[["Workload", "Architecture", Mapping[str, object]], Plan]

_REGISTRY: dict[str, DataflowFn] = {}


@dataclass(frozen=True)
class BuiltinDataflow:
    """Declaration of a built-in dataflow, read without importing its module.

    Attributes
    ----------
    module
        The module whose import registers it (``@register_dataflow(name)``).
    kinds
        Architecture kinds (``Architecture.kind``: ``spatial``, ``gpu``, ``pim``) it maps onto.
    knobs
        Knobs it takes, per architecture kind (a kind absent from the dict takes none).
    """

    module: str
    kinds: tuple[str, ...]
    knobs: Mapping[str, tuple[str, ...]]


def _decl(module: str, kinds: tuple[str, ...], *knobs: str) -> BuiltinDataflow:
    return BuiltinDataflow(module, kinds, {k: knobs for k in kinds})


_SPATIAL = ("spatial",)
_GPU = ("gpu",)
_PIM = ("pim",)
_GEMM_KNOBS = ("depth", "einsum", "operands", "stationary", "unit")

#: Built-in dataflows: name -> declaration. tests/test_startup_imports.py holds every entry
#: equal to what its module registers and to the knobs the function accepts.
BUILTIN: dict[str, BuiltinDataflow] = {
    "fusemax": _decl("mappings._attention", _SPATIAL, "m0", "p0", "q_group"),
    "flat": _decl("mappings._flat", _SPATIAL, "rows"),
    "unfused": _decl("mappings._flat", _SPATIAL, "fill", "softmax"),
    "gemm": BuiltinDataflow(
        "mappings._gemm",
        ("spatial", "pim", "gpu"),
        {"spatial": _GEMM_KNOBS, "pim": _GEMM_KNOBS, "gpu": ("split_k", "tile")},
    ),
    "flash2": _decl("mappings._gpu.attention", _GPU, "pass_"),
    "flash3": _decl("mappings._gpu.attention", _GPU, "pass_"),
    "mem_efficient": _decl("mappings._gpu.attention", _GPU, "pass_"),
    "split_kv": _decl("mappings._gpu.decode", _GPU, "splits"),
    "lean": _decl("mappings._gpu.decode", _GPU),
    "gpu_gemm": _decl("mappings._gpu.gemm", _GPU, "split_k", "tile"),
    "gpu_unfused": _decl("mappings._gpu.gemm", _GPU, "fuse_elementwise"),
    "linear_chunked": _decl("mappings._gpu.linear", _GPU, "materialize", "staged", "value_block"),
    "block_sparse": _decl("mappings._gpu.sparse", _GPU, "family"),
    "fg_sparse": _decl("mappings._gpu.sparse", _GPU, "gather_cycles_per_row"),
    "pim_decode": _decl("mappings._pim", _PIM, "placement", "power_limited"),
    "pim_gemv": _decl("mappings._pim", _PIM, "placement", "power_limited"),
}


def register_dataflow(name: str) -> Callable[[DataflowFn], DataflowFn]:
    """Decorator registering ``fn`` as dataflow ``name``.

    Raises
    ------
    ValueError
        If ``name`` is already registered by a different function, or is a built-in name
        (:data:`BUILTIN`) and ``fn`` is not from that built-in's module (a programming error).
    """

    def deco(fn: DataflowFn) -> DataflowFn:
        builtin = BUILTIN.get(name)
        if builtin is not None and fn.__module__ != builtin.module:
            raise ValueError(
                f"dataflow {name!r} is built in ({builtin.module}); register {fn!r} "
                "under another name"
            )
        old = _REGISTRY.get(name)
        if old is not None and old is not fn and old.__qualname__ != fn.__qualname__:
            raise ValueError(f"dataflow {name!r} registered twice ({old!r} and {fn!r})")
        _REGISTRY[name] = fn
        return fn

    return deco


def get_dataflow(name: str) -> DataflowFn:
    """The dataflow function registered as ``name`` (a built-in one's module is imported
    here, on first use).

    Raises
    ------
    MappingError
        Unknown name (lists the registered ones).
    """
    fn = _REGISTRY.get(name)
    if fn is not None:
        return fn
    builtin = BUILTIN.get(name)
    if builtin is not None:
        importlib.import_module(builtin.module)  # registers it (and its module's siblings)
        fn = _REGISTRY.get(name)
    if fn is None:
        raise MappingError(
            "unknown dataflow", path="dataflow", expected=f"one of {list_dataflows()}", got=name
        )
    return fn


def list_dataflows() -> list[str]:
    """Names of all dataflows, built-in (imported or not) and registered, sorted."""
    return sorted(set(BUILTIN) | set(_REGISTRY))


def dataflows_for(kind: str) -> list[str]:
    """Built-in dataflows that map onto architectures of ``kind`` (``spatial``, ``gpu``,
    ``pim``), sorted; imports nothing."""
    return sorted(n for n, d in BUILTIN.items() if kind in d.kinds)


def dataflow_knobs(name: str, kind: str) -> tuple[str, ...] | None:
    """The knobs built-in dataflow ``name`` takes on an architecture of ``kind`` (empty when
    none), read from :data:`BUILTIN` without importing it; None for a name not built in."""
    builtin = BUILTIN.get(name)
    if builtin is None:
        return None
    return tuple(builtin.knobs.get(kind, ()))
