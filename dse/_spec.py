"""Sweep specs: what a design-space sweep varies, how it samples, what it optimizes.

A sweep spec is YAML (or a dict) validated once, here, into frozen Pydantic models. Past
:func:`load_sweep` the runner trusts the typed objects. Example::

    name: fusemax-pe-glb
    arch:
      preset: fusemax                 # or  file: my_arch.yaml
      set: {clock.core_hz: 1.0e9}     # fixed updates applied to every point
      space:                          # axes over any arch field by dotted path
        compute.pe2d.mesh: [[64, 64], [128, 128], [256, 256]]
        levels.GLB.capacity_bytes: {log_range: [1e6, 64e6], n: 4}
    workload:
      name: mha                       # or a list: [mha, gqa]
      params: {B: 1, H: 16, D: 64, S: [1024, 4096, 16384]}   # list / range -> axis
    dataflow: [fusemax, flat, unfused]
    knobs: {}                         # dataflow knobs; list / range -> axis
    engine: analytic                  # or event, or a list
    sampler: {kind: grid}             # random | lhs | sobol: {kind: lhs, n: 200, seed: 0}
    objectives: [latency, energy]     # latency | energy | edp | area | any result column
    constraints: ["area_mm2 <= 500"]

Axis forms: a list of choices (discrete); ``{values: [...]}`` (discrete, for list-valued
choices in ``params``/``knobs``); ``{bundle: [{path: value, ...}, ...]}`` (several fields
changed together, e.g. a PIM placement and its unit count, or heads and head dim);
``{range: [lo, hi], n: K}`` (linear); ``{log_range: [lo, hi], n: K}`` (log-uniform).
``n`` is the number of grid points (needed only by the ``grid`` sampler); ``integer``
(default: both bounds integral) rounds sampled values.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Annotated, Literal

import yaml
from pydantic import Field

from archsim.errors import SweepError
from dse._axes import Axis, ChoiceAxis, Frozen, RangeAxis, as_number, parse_axis, validated

__all__ = [
    "ChoiceAxis",
    "RangeAxis",
    "Axis",
    "ArchSpace",
    "WorkloadSpace",
    "SamplerSpec",
    "Constraint",
    "SweepSpec",
    "load_sweep",
    "OBJECTIVE_COLUMNS",
]

#: objective / constraint aliases -> result column (unit in the column name)
OBJECTIVE_COLUMNS: dict[str, str] = {
    "latency": "seconds",
    "energy": "energy_j",
    "edp": "edp_js",
    "area": "area_mm2",
    "cycles": "cycles",
    "dram": "dram_bytes",
}


class ArchSpace(Frozen):
    """The architecture: a base (preset name or YAML file) plus fixed updates and axes."""

    preset: str | None = None
    """Preset name (``archsim.list_presets()``), e.g. ``fusemax``."""
    file: str | None = None
    """Path to an architecture YAML file (relative to the sweep spec's folder)."""
    set: Mapping[str, object] = Field(default_factory=dict)
    """Fixed updates for every point, dotted path -> value (``Architecture.with_updates``)."""
    space: Mapping[str, Annotated[Axis, Field(union_mode="left_to_right")]] = Field(
        default_factory=dict
    )
    """Axes: dotted path -> axis."""

    @property
    def base(self) -> str:
        """The name or path handed to ``archsim.load_arch``."""
        return self.preset if self.preset is not None else str(self.file)


class WorkloadSpace(Frozen):
    """The workload(s) and their shape parameters."""

    names: tuple[str, ...] = Field(min_length=1)
    """Library workload names (``workloads.list_workloads()``), e.g. ``mha``, or cascade
    files (``.yaml``, ``.ein``, ...; relative to the spec's folder)."""
    params: Mapping[str, object] = Field(default_factory=dict)
    """Fixed shape parameters (e.g. ``B: 1``)."""
    space: Mapping[str, Annotated[Axis, Field(union_mode="left_to_right")]] = Field(
        default_factory=dict
    )
    """Shape-parameter axes (e.g. ``S: [1024, 4096]``)."""


class SamplerSpec(Frozen):
    """How points are drawn from the space."""

    kind: Literal["grid", "random", "lhs", "sobol"] = "grid"
    """``grid``: full product; ``random``: independent uniform draws; ``lhs``: Latin
    hypercube; ``sobol``: scrambled Sobol sequence (both ``scipy.stats.qmc``)."""
    n: int | None = Field(default=None, ge=1)
    """Number of samples (required by random / lhs / sobol)."""
    seed: int = 0
    """Random seed; the same seed gives the same points."""


_CONSTRAINT = re.compile(r"^\s*([A-Za-z_][\w.]*)\s*(<=|>=|==|!=|<|>)\s*([-+0-9.eE]+)\s*$")


class Constraint(Frozen):
    """``column op value``, e.g. ``area_mm2 <= 500`` (aliases: latency, energy, edp, area)."""

    column: str
    """Result column (after alias resolution)."""
    op: Literal["<=", ">=", "==", "!=", "<", ">"]
    """Comparison."""
    value: float
    """Bound, in the column's unit."""

    @classmethod
    def parse(cls, text: str, path: str) -> Constraint:
        """Parse ``"area_mm2 <= 500"``; raise :class:`SweepError` naming ``path``."""
        match = _CONSTRAINT.match(str(text))
        if not match:
            raise SweepError(
                "bad constraint",
                path=path,
                expected="'column <op> number', e.g. 'area_mm2 <= 500'",
                got=text,
            )
        column, op, value = match.groups()
        try:
            bound = float(value)
        except ValueError:
            raise SweepError(
                "bad constraint bound", path=path, expected="a number", got=value
            ) from None
        if not math.isfinite(bound):
            raise SweepError(
                "bad constraint bound", path=path, expected="a finite number", got=value
            )
        return cls(column=OBJECTIVE_COLUMNS.get(column, column), op=op, value=bound)  # type: ignore[arg-type]

    def holds(self, value: float) -> bool:
        """Whether ``value`` satisfies the constraint (NaN never does)."""
        if value is None or (isinstance(value, float) and math.isnan(value)):
            return False
        return {
            "<=": value <= self.value,
            ">=": value >= self.value,
            "==": value == self.value,
            "!=": value != self.value,
            "<": value < self.value,
            ">": value > self.value,
        }[self.op]

    def __str__(self) -> str:
        return f"{self.column} {self.op} {self.value:g}"


class SweepSpec(Frozen):
    """A validated sweep: the space, the sampler, the objectives and constraints."""

    name: str
    """Sweep name (used in the store's manifest)."""
    arch: ArchSpace
    """Architecture base, fixed updates and axes."""
    workload: WorkloadSpace
    """Workload names, fixed params and param axes."""
    dataflows: tuple[str, ...] = ("auto",)
    """Dataflow names (``mappings.list_dataflows()``); several -> an axis."""
    knobs: Mapping[str, object] = Field(default_factory=dict)
    """Fixed dataflow knobs."""
    knob_space: Mapping[str, Annotated[Axis, Field(union_mode="left_to_right")]] = Field(
        default_factory=dict
    )
    """Knob axes."""
    mapper: Mapping[str, object] | None = None
    """Optional mapper settings (``name``, ``objective``, ``budget``, ``seed``): search a
    mapping per point instead of using a named dataflow."""
    engines: tuple[Literal["analytic", "event"], ...] = ("analytic",)
    """Evaluator(s): ``analytic`` (``archsim.estimate``) or ``event`` (``archsim.simulate``)."""
    sampler: SamplerSpec = SamplerSpec()
    """Point sampler."""
    objectives: tuple[str, ...] = ("seconds", "energy_j")
    """Result columns to minimize (aliases resolved)."""
    constraints: tuple[Constraint, ...] = ()
    """Feasibility constraints on result columns."""
    base_dir: str = "."
    """Folder the spec was read from (resolves ``arch.file``)."""

    @classmethod
    def from_dict(
        cls, data: Mapping[str, object], *, source: str = "<dict>", base_dir: str = "."
    ) -> SweepSpec:
        """Validate a sweep spec given as a dict; errors name ``source`` and the YAML path."""
        return _from_dict(data, source, base_dir)

    @classmethod
    def from_yaml(cls, path: str | Path) -> SweepSpec:
        """Read and validate a sweep spec YAML file."""
        return load_sweep(path)


def load_sweep(path: str | Path) -> SweepSpec:
    """Read a sweep spec YAML file.

    Raises
    ------
    SweepError
        The file is missing, not YAML, or not a valid sweep (the message names the YAML path).
    """
    p = Path(path)
    try:
        text = p.read_bytes()  # bytes: the loader names the offset of non-UTF-8 input
    except OSError as exc:
        raise SweepError(f"cannot read sweep spec ({exc.strerror})", path=str(p)) from None
    try:
        data = __import__("archsim.yamlio", fromlist=["safe_load"]).safe_load(text)
    except yaml.YAMLError as exc:
        raise SweepError(f"not valid YAML: {exc}", path=str(p)) from None
    return _from_dict(data, str(p), str(p.parent))


_TOP_KEYS = (
    "name",
    "arch",
    "workload",
    "dataflow",
    "knobs",
    "mapper",
    "engine",
    "sampler",
    "objectives",
    "constraints",
)


def _from_dict(data: object, source: str, base_dir: str) -> SweepSpec:
    if not isinstance(data, Mapping):
        raise SweepError(
            "a sweep spec must be a mapping",
            path=source,
            expected="mapping",
            got=type(data).__name__,
        )
    unknown = [k for k in data if k not in _TOP_KEYS]
    if unknown:
        raise SweepError(
            "unknown key",
            path=f"{source}: {unknown[0]}",
            expected=", ".join(_TOP_KEYS),
            got=unknown[0],
        )
    for key in ("name", "arch", "workload"):
        if key not in data:
            raise SweepError(
                "missing required key", path=f"{source}: {key}", expected=key, got=None
            )
    fields: dict[str, object] = {"name": data["name"], "base_dir": base_dir}
    fields["arch"] = _arch(data["arch"], f"{source}: arch")
    fields["workload"] = _workload(data["workload"], f"{source}: workload")
    fields["dataflows"] = _names(data.get("dataflow", "auto"), f"{source}: dataflow")
    fields["engines"] = _names(data.get("engine", "analytic"), f"{source}: engine")
    fixed, axes = _split(data.get("knobs") or {}, f"{source}: knobs")
    fields["knobs"], fields["knob_space"] = fixed, axes
    if data.get("mapper") is not None:
        if not isinstance(data["mapper"], Mapping) or "name" not in data["mapper"]:
            raise SweepError(
                "bad mapper settings",
                path=f"{source}: mapper",
                expected="{name: random, objective: edp, ...}",
                got=data["mapper"],
            )
        fields["mapper"] = dict(data["mapper"])
    if "sampler" in data:
        fields["sampler"] = _sampler(data["sampler"], f"{source}: sampler")
    fields["objectives"] = _objectives(data.get("objectives"), f"{source}: objectives")
    constraints = data.get("constraints") or []
    if isinstance(constraints, str):
        constraints = [constraints]
    if not isinstance(constraints, (list, tuple)):
        raise SweepError(
            "bad constraints",
            path=f"{source}: constraints",
            expected="a list like ['area <= 500']",
            got=constraints,
        )
    fields["constraints"] = tuple(
        Constraint.parse(c, f"{source}: constraints[{i}]") for i, c in enumerate(constraints)
    )
    spec = validated(SweepSpec, fields, source)
    _check_sampler_needs(spec, source)
    return spec


def _objectives(raw: object, path: str) -> tuple[str, ...]:
    objectives = ["latency", "energy"] if raw is None else raw
    if isinstance(objectives, str):
        objectives = [objectives]
    if not isinstance(objectives, Sequence) or not objectives:
        raise SweepError(
            "bad objectives", path=path, expected="a list like [latency, energy]", got=objectives
        )
    return tuple(OBJECTIVE_COLUMNS.get(str(o), str(o)) for o in objectives)


def _check_sampler_needs(spec: SweepSpec, source: str) -> None:
    """grid needs ``n`` on every range axis; the other samplers need ``sampler.n``."""
    if spec.sampler.kind == "grid":
        for path, axis in _all_axes(spec):
            if isinstance(axis, RangeAxis) and axis.n is None:
                raise SweepError(
                    "a range axis needs n grid points for the grid sampler",
                    path=f"{source}: {path}",
                    expected="n: <int>",
                    got=None,
                )
    elif spec.sampler.n is None:
        raise SweepError(
            f"the {spec.sampler.kind} sampler needs n",
            path=f"{source}: sampler.n",
            expected="n: <int>",
            got=None,
        )


def _all_axes(spec: SweepSpec) -> list[tuple[str, Axis]]:
    out: list[tuple[str, Axis]] = [(f"arch.space.{k}", a) for k, a in spec.arch.space.items()]
    out += [(f"workload.params.{k}", a) for k, a in spec.workload.space.items()]
    out += [(f"knobs.{k}", a) for k, a in spec.knob_space.items()]
    return out


def _reject_unknown(raw: Mapping[str, object], allowed: tuple[str, ...], path: str) -> None:
    """Raise :class:`SweepError` at ``path.KEY`` for the first (sorted) key not in ``allowed``."""
    unknown = sorted(set(raw) - set(allowed))
    if unknown:
        raise SweepError(
            "unknown key", path=f"{path}.{unknown[0]}", expected=", ".join(allowed), got=unknown[0]
        )


def _arch(raw: object, path: str) -> dict[str, object]:
    if isinstance(raw, str):
        raw = {"preset": raw}
    if not isinstance(raw, Mapping):
        raise SweepError(
            "bad arch", path=path, expected="a preset name or {preset|file, set, space}", got=raw
        )
    _reject_unknown(raw, ("preset", "file", "set", "space"), path)
    if ("preset" in raw) == ("file" in raw):
        raise SweepError(
            "give exactly one of preset / file",
            path=path,
            expected="preset: NAME or file: PATH",
            got=dict(raw),
        )
    space = raw.get("space") or {}
    if not isinstance(space, Mapping):
        raise SweepError(
            "bad space", path=f"{path}.space", expected="dotted path -> axis", got=space
        )
    axes = {str(k): parse_axis(v, f"{path}.space.{k}", fixed_ok=False) for k, v in space.items()}
    out = {k: v for k, v in raw.items() if k != "space"}
    out["space"] = axes
    if "set" in out:
        fixed = out["set"] or {}
        if not isinstance(fixed, Mapping):
            raise SweepError(
                "bad set", path=f"{path}.set", expected="dotted path -> value", got=fixed
            )
        out["set"] = {str(k): as_number(v) for k, v in fixed.items()}
    return out


def _workload(raw: object, path: str) -> dict[str, object]:
    if isinstance(raw, str):
        raw = {"name": raw}
    if not isinstance(raw, Mapping) or "name" not in raw:
        raise SweepError(
            "bad workload", path=path, expected="{name: NAME or [NAMES], params: {...}}", got=raw
        )
    _reject_unknown(raw, ("name", "params"), path)
    names = _names(raw["name"], f"{path}.name")
    fixed, axes = _split(raw.get("params") or {}, f"{path}.params")
    return {"names": names, "params": fixed, "space": axes}


def _split(raw: object, path: str) -> tuple[dict[str, object], dict[str, Axis]]:
    """Split a ``{name: value-or-axis}`` mapping into fixed values and axes."""
    if not isinstance(raw, Mapping):
        raise SweepError("expected a mapping", path=path, expected="name -> value or axis", got=raw)
    fixed: dict[str, object] = {}
    axes: dict[str, Axis] = {}
    for key, value in raw.items():
        axis = parse_axis(value, f"{path}.{key}", fixed_ok=True)
        if axis is None:
            fixed[str(key)] = value
        else:
            axes[str(key)] = axis
    return fixed, axes


def _names(raw: object, path: str) -> tuple[str, ...]:
    if isinstance(raw, str):
        return (raw,)
    if isinstance(raw, (list, tuple)) and raw and all(isinstance(x, str) for x in raw):
        return tuple(raw)
    raise SweepError(
        "expected a name or a list of names", path=path, expected="NAME or [NAME, ...]", got=raw
    )


def _sampler(raw: object, path: str) -> SamplerSpec:
    if isinstance(raw, str):
        raw = {"kind": raw}
    if not isinstance(raw, Mapping):
        raise SweepError(
            "bad sampler", path=path, expected="{kind: grid|random|lhs|sobol, n, seed}", got=raw
        )
    spec = validated(SamplerSpec, raw, path)
    assert isinstance(spec, SamplerSpec)
    return spec
