"""The dataflow registry: named functions that turn (workload, architecture, knobs) into a Plan.

Every dataflow — spatial (``unfused``, ``flat``, ``fusemax``, ``gemm``), GPU
(``mappings/_gpu/``) and PIM (``mappings/_pim.py``) — registers here with
:func:`register_dataflow` and is looked up by name with :func:`get_dataflow`.

A dataflow function has the signature::

    fn(workload: Workload, arch: Architecture, knobs: Mapping[str, object]) -> Plan

and raises :class:`archsim.errors.MappingError` for a bad knob (path ``knobs.NAME``) and
:class:`archsim.errors.InfeasibleMappingError` when the problem does not fit the machine.
"""

from __future__ import annotations

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


def register_dataflow(name: str) -> Callable[[DataflowFn], DataflowFn]:
    """Decorator registering ``fn`` as dataflow ``name``.

    Raises
    ------
    ValueError
        If ``name`` is already registered by a different function (a programming error).
    """

    def deco(fn: DataflowFn) -> DataflowFn:
        old = _REGISTRY.get(name)
        if old is not None and old is not fn and old.__qualname__ != fn.__qualname__:
            raise ValueError(f"dataflow {name!r} registered twice ({old!r} and {fn!r})")
        _REGISTRY[name] = fn
        return fn

    return deco


def get_dataflow(name: str) -> DataflowFn:
    """The dataflow function registered as ``name``.

    Raises
    ------
    MappingError
        Unknown name (lists the registered ones).
    """
    _load_builtin()
    try:
        return _REGISTRY[name]
    except KeyError:
        raise MappingError(
            "unknown dataflow", path="dataflow", expected=f"one of {list_dataflows()}", got=name
        ) from None


def list_dataflows() -> list[str]:
    """Names of all registered dataflows, sorted."""
    _load_builtin()
    return sorted(_REGISTRY)


def _load_builtin() -> None:
    """Import the modules that register dataflows (idempotent)."""
    import mappings  # noqa: F401  (package import registers the built-in dataflows)
