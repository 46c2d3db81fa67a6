"""Pre-flight checks of a sweep: refuse a spec that cannot run before any point runs.

:func:`check_spec` resolves every axis value once — the architecture base and its fixed
updates, each architecture axis value, each workload and each of its parameter values, each
dataflow on the architecture (and its knobs), the mapper, the objectives and constraint
columns — so a typo fails in a second with the field named, instead of turning every point
into the same error. Errors that depend on a *combination* of axis values (``H`` not a
multiple of ``Hkv``, a buffer too small for one length) are left to the points, which record
them (the runner then reports the distinct messages and the CLI exits non-zero).

:func:`count_points` counts a sweep's points without materialising them, so a 10⁹-point
spec is refused (:data:`MAX_POINTS`) before it costs memory.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING

from archsim.errors import ArchsimError, SweepError
from dse._axes import Axis, ChoiceAxis, RangeAxis
from dse._spec import OBJECTIVE_COLUMNS, SweepSpec

if TYPE_CHECKING:  # pragma: no cover
    from archsim import Architecture

__all__ = [
    "MAX_POINTS",
    "CASCADE_SUFFIXES",
    "check_spec",
    "count_points",
    "check_count",
    "known_columns",
    "workload_ref",
]

#: Most points one sweep may have (``archsim sweep --max-points`` raises it). A point costs
#: about 1–2 kB while the sweep runs (its inputs, id and result row), so 10⁶ points stay
#: within a few GB; split a larger space into several sweeps or sample it.
MAX_POINTS = 1_000_000

#: Suffixes that make a workload name a cascade file (as ``mappings.simulate_workload``).
CASCADE_SUFFIXES = (".yaml", ".yml", ".txt", ".cascade", ".ein")

#: Workload errors that depend on a combination of parameter values, not on one value:
#: left to the points.
_COMBINATION = ("inconsistent", "disagree")


def workload_ref(spec: SweepSpec, name: str) -> str:
    """A library workload name as is; a cascade file resolved against the spec's folder."""
    if not name.endswith(CASCADE_SUFFIXES):
        return name
    path = Path(name)
    if not path.is_absolute():
        path = Path(spec.base_dir) / path
    return str(path)


# -- counting -------------------------------------------------------------------------------
def _axis_count(axis: Axis) -> int:
    """Grid values of one axis, at most (rounding to integers may merge some)."""
    if isinstance(axis, ChoiceAxis):
        return len(axis.values)
    assert isinstance(axis, RangeAxis)
    n = int(axis.n or 1)
    if axis.integer:
        n = min(n, math.floor(axis.hi) - math.ceil(axis.lo) + 1)
    return max(1, n)


def _axes(spec: SweepSpec) -> list[tuple[str, Axis]]:
    out: list[tuple[str, Axis]] = [(f"arch.space.{k}", a) for k, a in spec.arch.space.items()]
    out += [(f"workload.params.{k}", a) for k, a in spec.workload.space.items()]
    out += [(f"knobs.{k}", a) for k, a in spec.knob_space.items()]
    return out


def count_points(spec: SweepSpec) -> int:
    """How many points the sweep has, at most, computed without materialising them.

    Grid: the product of the axis sizes; other samplers: ``sampler.n``; both times the
    number of workloads × dataflows × engines. Exact unless duplicates merge (choices
    listed twice, integer ranges rounding two grid values onto one).
    """
    if spec.sampler.kind == "grid":
        draws = math.prod(_axis_count(a) for _, a in _axes(spec))
    else:
        draws = int(spec.sampler.n or 1)
    return draws * len(spec.workload.names) * len(spec.dataflows) * len(spec.engines)


def check_count(spec: SweepSpec, max_points: int = MAX_POINTS) -> int:
    """:func:`count_points`, refused above ``max_points``.

    Raises
    ------
    SweepError
        Too many points; the message gives the count, the largest axes and how to lower it.
    """
    n = count_points(spec)
    if n <= max_points:
        return n
    sizes = sorted(((_axis_count(a), p) for p, a in _axes(spec)), reverse=True)[:3]
    biggest = ", ".join(f"{p} ({k:,} values)" for k, p in sizes) or "sampler.n"
    how = (
        "use fewer values on the largest axes, a smaller range n, or a sampler "
        "(sampler: {kind: lhs, n: 500})"
        if spec.sampler.kind == "grid"
        else "lower sampler.n"
    )
    raise SweepError(
        f"the sweep has {n:,} points, more than the {max_points:,} allowed "
        f"(largest axes: {biggest}); {how}, or raise the bound with --max-points",
        path="sampler" if spec.sampler.kind == "grid" else "sampler.n",
        expected=f"at most {max_points:,} points",
        got=n,
    )


# -- pre-flight -----------------------------------------------------------------------------
def _axis_values(axis: Axis) -> Iterator[tuple[int, object]]:
    """(index, value) of the values worth checking: every choice, a range's two ends."""
    if isinstance(axis, ChoiceAxis):
        yield from enumerate(axis.values)
    else:
        assert isinstance(axis, RangeAxis)
        yield 0, axis.at(0.0)
        yield 1, axis.at(1.0)


def _first(axis: Axis) -> object:
    return next(_axis_values(axis))[1]


def _updates(name: str, axis: Axis, value: object) -> dict[str, object]:
    if isinstance(axis, ChoiceAxis) and axis.bundle:
        return dict(value)  # type: ignore[call-overload]
    return {name: value}


def _fail(path: str, exc: BaseException, what: str = "") -> SweepError:
    text = str(exc) if isinstance(exc, ArchsimError) else f"{type(exc).__name__}: {exc}"
    return SweepError(f"{what}{text}"[:1500], path=path)


def _check_arch(spec: SweepSpec) -> Architecture:
    from dse._evaluate import _base_arch
    from dse._points import arch_base

    key = "arch.preset" if spec.arch.preset is not None else "arch.file"
    base_name, _digest = arch_base(spec)
    try:
        base = _base_arch(base_name)
    except Exception as exc:  # noqa: BLE001 - any failure to load is the spec's
        raise _fail(key, exc) from None
    try:
        arch = base.with_updates(dict(spec.arch.set)) if spec.arch.set else base
    except Exception as exc:  # noqa: BLE001
        raise _fail("arch.set", exc) from None
    for name, axis in spec.arch.space.items():
        for i, value in _axis_values(axis):
            try:
                arch.with_updates(_updates(name, axis, value))
            except Exception as exc:  # noqa: BLE001
                raise _fail(f"arch.space.{name}[{i}]", exc) from None
    return arch


def _combination_only(exc: BaseException) -> bool:
    detail = str(getattr(exc, "detail", ""))
    return isinstance(exc, ArchsimError) and any(w in detail for w in _COMBINATION)


def _same(a: object, b: object) -> bool:
    """Equal values of one type, NaN equal to NaN."""
    if type(a) is not type(b):
        return False
    if isinstance(a, float) and math.isnan(a):
        return math.isnan(b)  # type: ignore[arg-type]
    return a == b


def _param_path(exc: BaseException, params: Mapping[str, object]) -> str:
    """``workload.params.KEY`` for the parameter a workload error names, if one was given."""
    named = str(getattr(exc, "path", "") or "").rsplit(".", 1)[-1]
    got = getattr(exc, "got", None)
    for key in (named, got):
        if isinstance(key, str) and key in params:
            return f"workload.params.{key}"
    # an alias (S sets Sq and Skv): the one given parameter holding the refused value
    same = [k for k, v in params.items() if got is not None and _same(v, got)]
    return f"workload.params.{same[0]}" if len(same) == 1 else "workload.params"


def _check_workloads(spec: SweepSpec) -> dict[str, object]:
    """Build every workload with the first value of each axis, then with each axis value;
    returns name -> the workload built with the first values (None if that combination is
    refused as inconsistent)."""
    from mappings._api import resolve_workload
    from workloads.library import list_workloads

    base = dict(spec.workload.params)
    for key, axis in spec.workload.space.items():
        base.update(_updates(key, axis, _first(axis)))
    built: dict[str, object] = {}
    library = set(list_workloads())
    for wi, name in enumerate(spec.workload.names):
        ref = workload_ref(spec, name)
        where = f"workload.name[{wi}]" if len(spec.workload.names) > 1 else "workload.name"
        is_file = name.endswith(CASCADE_SUFFIXES)
        if not is_file and name not in library:
            raise SweepError(
                "unknown workload",
                path=where,
                expected=f"a library workload ({', '.join(sorted(library))}) or a cascade "
                f"file ({', '.join(CASCADE_SUFFIXES)})",
                got=name,
            )
        if is_file and not Path(ref).is_file():
            raise SweepError("no such cascade file", path=where, expected="a file", got=ref)
        try:
            built[name] = resolve_workload(ref, base)
        except Exception as exc:  # noqa: BLE001
            if not _combination_only(exc):
                raise _fail(_param_path(exc, base), exc, f"{name}: ") from None
            built[name] = None
        for key, axis in spec.workload.space.items():
            for i, value in _axis_values(axis):
                try:
                    resolve_workload(ref, {**base, **_updates(key, axis, value)})
                except Exception as exc:  # noqa: BLE001
                    if not _combination_only(exc):
                        raise _fail(f"workload.params.{key}[{i}]", exc, f"{name}: ") from None
    return built


def _check_dataflows(spec: SweepSpec, arch: Architecture, built: Mapping[str, object]) -> None:
    """Dataflow names exist; each runs on the architecture's kind and takes the knobs."""
    from mappings import get_mapper, list_dataflows

    if spec.mapper is not None:
        try:
            get_mapper(str(spec.mapper.get("name")))
        except ArchsimError as exc:
            raise _fail("mapper.name", exc) from None
        return
    names = set(list_dataflows())
    for i, dataflow in enumerate(spec.dataflows):
        if dataflow != "auto" and dataflow not in names:
            raise SweepError(
                "unknown dataflow",
                path=f"dataflow[{i}]" if len(spec.dataflows) > 1 else "dataflow",
                expected=f"auto or one of {sorted(names)}",
                got=dataflow,
            )
    knobs = dict(spec.knobs)
    for key, axis in spec.knob_space.items():
        knobs.update(_updates(key, axis, _first(axis)))
    # every knob value, on the first workload that builds (knob errors do not depend on it)
    variants: list[tuple[str, dict[str, object]]] = [("knobs", knobs)]
    for key, axis in spec.knob_space.items():
        for j, value in _axis_values(axis):
            variants.append((f"knobs.{key}[{j}]", {**knobs, **_updates(key, axis, value)}))
    workloads = [w for w in built.values() if w is not None]
    for i, dataflow in enumerate(spec.dataflows):
        where = f"dataflow[{i}]" if len(spec.dataflows) > 1 else "dataflow"
        for k, workload in enumerate(workloads):
            for label, values in variants if k == 0 else variants[:1]:
                _probe(arch, workload, dataflow, values, where, label)


def _probe(
    arch: Architecture,
    workload: object,
    dataflow: str,
    knobs: Mapping[str, object],
    where: str,
    label: str,
) -> None:
    """Plan one point; refuse the spec when the dataflow cannot run on the architecture's
    kind or refuses a knob (name or value). Other failures are left to the points."""
    from mappings._api import plan_for

    try:
        plan_for(arch, workload, dataflow=dataflow, knobs=knobs)
    except ArchsimError as exc:
        path = str(getattr(exc, "path", "") or "")
        if path in ("arch", "arch.kind"):
            raise _fail(where, exc, f"{dataflow} does not run on {arch.name}: ") from None
        if path.startswith("knobs"):
            field = label if label != "knobs" else path
            raise _fail(field, exc, f"{dataflow}: ") from None
    except Exception:  # noqa: BLE001, S110 - other failures are the points' to record
        pass


def known_columns(spec: SweepSpec, arch: Architecture) -> list[str]:
    """Result and input columns an objective or constraint may name on this sweep."""
    from dse._store import RESULT_COLUMNS

    cols = [c for c in RESULT_COLUMNS if c not in ("status", "error", "dataflow_used", "mapping")]
    cols += ["eval_s"]
    cols += [f"bytes.{lv.name}" for lv in arch.levels]
    cols += [f"util.{u.name}" for u in arch.compute]
    cols += [f"arch.{k}" for k in spec.arch.set] + [f"arch.{k}" for k in spec.arch.space]
    cols += [f"param.{k}" for k in (*spec.workload.params, *spec.workload.space)]
    cols += [f"knob.{k}" for k in (*spec.knobs, *spec.knob_space)]
    return cols


def _check_columns(spec: SweepSpec, arch: Architecture) -> None:
    """Objectives and constraint columns name a column the sweep will produce."""
    known = known_columns(spec, arch)

    def ok(column: str) -> bool:
        return column in known or (column.startswith("energy.") and len(column) > 7)

    expected = f"{' | '.join(OBJECTIVE_COLUMNS)} or a column: {', '.join(known)}, energy.*"
    for i, column in enumerate(spec.objectives):
        if not ok(column):
            raise SweepError(
                "unknown objective", path=f"objectives[{i}]", expected=expected, got=column
            )
    for i, constraint in enumerate(spec.constraints):
        if not ok(constraint.column):
            raise SweepError(
                "unknown column in constraint",
                path=f"constraints[{i}]",
                expected=expected,
                got=constraint.column,
            )


def check_spec(spec: SweepSpec, *, max_points: int = MAX_POINTS, source: str = "") -> int:
    """Check a sweep before running it; returns its point count (:func:`count_points`).

    ``source`` (the spec file) prefixes the field paths of the errors.

    Raises
    ------
    SweepError
        Too many points, an architecture that does not load, an update path or value it
        refuses, an unknown workload or parameter, a parameter value the workload refuses,
        an unknown dataflow, one that does not run on the architecture or does not take a
        knob, an unknown mapper, objective or constraint column. The message names the
        spec field (``arch.space.levels.GLB.capacity_bytes[2]``, ``workload.params.S[0]``).
    """
    try:
        n = check_count(spec, max_points)
        arch = _check_arch(spec)
        built = _check_workloads(spec)
        _check_dataflows(spec, arch, built)
        _check_columns(spec, arch)
    except SweepError as exc:
        if not source:
            raise
        where = f"{source}: {exc.path}" if exc.path else source
        raise SweepError(exc.detail, path=where, expected=exc.expected, got=exc.got) from None
    return n
