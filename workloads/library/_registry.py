"""The workload registry: named, parameterised cascades with their direct references.

A :class:`WorkloadDef` says how to turn shape parameters into a cascade (text in the
notation of ``docs/CONTRACTS.md``), how to compute the same outputs directly with numpy,
and which small shapes prove the two equal. :func:`get_workload` validates the parameters
and builds a frozen :class:`Workload`.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

import numpy as np

from archsim.errors import WorkloadError
from workloads import Cascade, CascadeCounts, count, parse_cascade
from workloads._limits import MAX_EXTENT

from ._models import ModelPreset, get_model

__all__ = [
    "Param",
    "WorkloadDef",
    "Workload",
    "register",
    "get_workload",
    "list_workloads",
    "get_def",
]

Value = int | float | bool | str
Params = dict[str, Value]
Arrays = dict[str, np.ndarray]


@dataclass(frozen=True)
class Param:
    """One workload parameter.

    Attributes
    ----------
    name
        Key (``B``, ``Sq``, ``causal``).
    default
        Default value; None when derived from other parameters (see ``WorkloadDef.derive``).
    doc
        Meaning and unit.
    kind
        ``int`` (positive unless ``minimum`` says otherwise), ``float``, ``bool`` or ``str``.
    choices
        Allowed values (for ``str`` and enumerated ``int`` parameters); empty = any.
    minimum
        Smallest allowed value for numbers (inclusive); None = no bound.
    """

    name: str
    default: Value | None
    doc: str
    kind: type = int
    choices: tuple[Value, ...] = ()
    minimum: float | None = 1


@dataclass(frozen=True)
class WorkloadDef:
    """How to build one library workload.

    Attributes
    ----------
    name, summary
        Registry key and a one-line description.
    params
        The parameters it accepts.
    build
        Resolved parameters -> cascade text.
    reference
        ``(params, inputs) -> {output: array}``: the direct numpy implementation, arrays in
        the natural layout (reshaped to the cascade's output layout by :class:`Workload`).
    derive
        Fills derived defaults in place and checks cross-parameter constraints (raises
        :class:`WorkloadError`); may be None.
    from_model
        Preset -> shape parameters (used by ``model=NAME``); None if models do not apply.
    aliases
        Short keys that set several parameters (``S`` -> ``Sq``, ``Skv``).
    verify
        Small parameter sets on which the cascade is checked against the reference.
    inputs
        Optional ``(params, sizes, rng) -> arrays`` for inputs that are not Gaussian
        (masks, decay tables); inputs it omits are standard-normal.
    """

    name: str
    summary: str
    params: tuple[Param, ...]
    build: Callable[[Params], str]
    reference: Callable[[Params, Mapping[str, np.ndarray]], Arrays]
    derive: Callable[[Params], None] | None = None
    from_model: Callable[[ModelPreset], Params] | None = None
    aliases: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    verify: tuple[Mapping[str, Value], ...] = ()
    inputs: Callable[[Params, Mapping[str, int], np.random.Generator], Arrays] | None = None


_REGISTRY: dict[str, WorkloadDef] = {}


def register(d: WorkloadDef) -> WorkloadDef:
    """Add a workload definition to the library (names are unique)."""
    if d.name in _REGISTRY:
        raise ValueError(f"workload {d.name} registered twice")
    _REGISTRY[d.name] = d
    return d


_ORDER = (
    "mha",
    "gqa",
    "sqa",
    "mla",
    "cca",
    "ccgqa",
    "linear",
    "block_sparse",
    "fg_sparse",
    "decode",
    "gemm",
    "swiglu",
    "rmsnorm",
    "layernorm",
    "softmax",
)


def list_workloads() -> list[str]:
    """Names of the library workloads: attention forms first, then dense blocks."""
    rank = {n: i for i, n in enumerate(_ORDER)}
    return sorted(_REGISTRY, key=lambda n: (rank.get(n, len(rank)), n))


def get_def(name: str) -> WorkloadDef:
    """The definition of workload ``name`` (raises :class:`WorkloadError` if unknown)."""
    try:
        return _REGISTRY[name]
    except KeyError:
        raise WorkloadError(
            "unknown workload", path="workload", expected=f"one of {list_workloads()}", got=name
        ) from None


@dataclass(frozen=True, eq=False)
class Workload:
    """A library cascade with its resolved parameters.

    Attributes
    ----------
    name
        Library name (``mha``).
    cascade
        The checked cascade (its ``params`` hold every shape/tile parameter it uses).
    params
        Resolved workload parameters, defaults included (``B, H, Hkv, Sq, Skv, D, ...``).
    sizes
        Size of every rank of the cascade (elements).
    """

    name: str
    cascade: Cascade
    params: dict[str, Value]
    sizes: dict[str, int]
    definition: WorkloadDef = field(repr=False)

    def __hash__(self) -> int:
        return hash((self.name, tuple(sorted(self.params.items()))))

    def __eq__(self, other: object) -> bool:
        return (
            isinstance(other, Workload) and other.name == self.name and other.params == self.params
        )

    def counts(self) -> CascadeCounts:
        """MACs, ops, bytes of the cascade (``workloads.count``)."""
        return count(self.cascade)

    def reference(self, inputs: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Direct numpy result for each cascade output, in the cascade's output layout."""
        out = self.definition.reference(self.params, inputs)
        shaped: dict[str, np.ndarray] = {}
        for name, arr in out.items():
            ranks = self.cascade.tensors[name].ranks
            shaped[name] = np.asarray(arr, dtype=np.float64).reshape([self.sizes[r] for r in ranks])
        return shaped

    def random_inputs(self, rng: np.random.Generator) -> dict[str, np.ndarray]:
        """Random inputs of the right shapes (standard normal unless the workload says)."""
        special = (
            self.definition.inputs(self.params, self.sizes, rng) if self.definition.inputs else {}
        )
        arrays: dict[str, np.ndarray] = {}
        for name in self.cascade.inputs:
            if name in special:
                arrays[name] = special[name]
            else:
                shape = [self.sizes[r] for r in self.cascade.tensors[name].ranks]
                arrays[name] = rng.standard_normal(shape)
        for name, arr in special.items():
            arrays.setdefault(name, arr)
        return arrays


def get_workload(name: str, **params: Value) -> Workload:
    """Build library workload ``name`` with shape parameters ``params``.

    ``model=NAME`` fills shape parameters from a model preset (explicit ones win).

    Raises
    ------
    WorkloadError
        Unknown workload or parameter, a value of the wrong type, a non-positive size, or
        inconsistent parameters (``H % Hkv != 0``); the message names the parameter, what
        was expected and what was given.
    """
    d = get_def(name)
    given = dict(params)
    model = given.pop("model", None)
    base: Params = {}
    if model is not None:
        if d.from_model is None:
            raise WorkloadError(
                "this workload takes no model preset",
                path=f"{name}.model",
                expected="no model=",
                got=model,
            )
        base = {k: v for k, v in d.from_model(get_model(str(model))).items()}
    resolved = resolve_params(d, {**base, **_expand_aliases(d, given)})
    text = d.build(resolved)
    cascade = parse_cascade(text, name=name)
    return Workload(name, cascade, resolved, cascade.rank_sizes(), d)


def _expand_aliases(d: WorkloadDef, given: Params) -> Params:
    out: Params = {}
    for key, value in given.items():
        for target in d.aliases.get(key, (key,)):
            if target in given and target != key and given[target] != value:
                raise WorkloadError(
                    f"{key} and {target} disagree",
                    path=f"{d.name}.{target}",
                    expected=f"{target} = {key} = {value}",
                    got=given[target],
                )
            out.setdefault(target, value)
    return out


def resolve_params(d: WorkloadDef, given: Params) -> Params:
    """Check ``given`` against ``d.params``, coerce types, fill defaults, derive the rest."""
    spec = {p.name: p for p in d.params}
    for key in given:
        if key not in spec:
            known = sorted(spec) + sorted(d.aliases) + ["model"]
            raise WorkloadError(
                "unknown parameter", path=f"{d.name}.{key}", expected=f"one of {known}", got=key
            )
    out: Params = {}
    for p in d.params:
        if p.name in given:
            out[p.name] = _coerce(d.name, p, given[p.name])
        elif p.default is not None:
            out[p.name] = p.default
    if d.derive is not None:
        d.derive(out)
    for p in d.params:
        if p.name in out:
            out[p.name] = _coerce(d.name, p, out[p.name])
    return out


def _coerce(wname: str, p: Param, v: Value) -> Value:
    path = f"{wname}.{p.name}"
    if p.kind is bool:
        if isinstance(v, bool):
            return v
        if isinstance(v, int) and v in (0, 1):
            return bool(v)
        if isinstance(v, str) and v.lower() in ("true", "false"):
            return v.lower() == "true"
        raise WorkloadError("bad value", path=path, expected="true or false", got=v)
    if p.kind is str:
        if not isinstance(v, str) or (p.choices and v not in p.choices):
            raise WorkloadError(
                "bad value",
                path=path,
                expected=f"one of {list(p.choices)}" if p.choices else "a string",
                got=v,
            )
        return v
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        raise WorkloadError("bad value", path=path, expected=f"a number ({p.kind.__name__})", got=v)
    if p.kind is int:
        if isinstance(v, float) and not v.is_integer():  # nan and inf included
            raise WorkloadError("bad value", path=path, expected="an integer", got=v)
        if abs(v) > MAX_EXTENT:  # no shape or count parameter is near 10**12
            raise WorkloadError(
                "value too large", path=path, expected=f"at most 2**40 = {MAX_EXTENT}", got=v
            )
        v = int(v)
    else:
        v = float(v)
        if not math.isfinite(v):
            raise WorkloadError("bad value", path=path, expected="a finite number", got=v)
    if p.choices and v not in p.choices:
        raise WorkloadError("bad value", path=path, expected=f"one of {list(p.choices)}", got=v)
    if p.minimum is not None and v < p.minimum:
        what = "a positive size" if p.minimum == 1 and p.kind is int else f">= {p.minimum}"
        raise WorkloadError("bad value", path=path, expected=what, got=v)
    return v


def require(cond: bool, wname: str, key: str, expected: str, got: Value) -> None:
    """Raise a :class:`WorkloadError` at ``wname.key`` unless ``cond``."""
    if not cond:
        raise WorkloadError(
            "inconsistent parameters", path=f"{wname}.{key}", expected=expected, got=got
        )
