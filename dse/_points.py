"""Design points: the concrete inputs of one simulation, with a stable id.

A point's id is a hash of its inputs only (architecture base and updates, workload and
shape params, dataflow, knobs, mapper settings, engine) — never of its position in the
sweep, the sampler or the batch it ran in — so a re-run of the same spec finds the points
it already finished and skips them.
"""

from __future__ import annotations

import hashlib
import itertools
import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from dse._axes import Axis, ChoiceAxis
from dse._check import workload_ref
from dse._samplers import get_sampler
from dse._spec import SweepSpec

__all__ = ["DesignPoint", "expand_points", "jsonable", "arch_base"]


def jsonable(value: object) -> object:
    """A JSON-friendly copy: tuples -> lists, numpy scalars -> Python scalars."""
    if isinstance(value, Mapping):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    if hasattr(value, "item") and callable(value.item):  # numpy scalar
        return value.item()
    return value


@dataclass(frozen=True)
class DesignPoint:
    """The inputs of one simulation.

    Attributes
    ----------
    index
        Position in the sweep's point list (for ordering only; not part of the id).
    arch
        Architecture preset name or YAML path (``archsim.load_arch``).
    arch_digest
        SHA-1 of the architecture file's text (``""`` for a preset), so an edited file
        changes the ids.
    arch_updates
        ``(dotted path, value)`` pairs for ``Architecture.with_updates``.
    workload, params
        Library workload name and shape parameters.
    dataflow, knobs
        Dataflow name and its knobs.
    mapper
        Mapper settings (``name``, ``objective``, ...) or ``()``.
    engine
        ``analytic`` or ``event``.
    """

    index: int
    arch: str
    arch_digest: str
    arch_updates: tuple[tuple[str, object], ...]
    workload: str
    params: tuple[tuple[str, object], ...]
    dataflow: str
    knobs: tuple[tuple[str, object], ...]
    mapper: tuple[tuple[str, object], ...]
    engine: str

    def key(self) -> dict[str, object]:
        """The canonical, JSON-friendly inputs (what the id hashes)."""
        return {
            "arch": self.arch,
            "arch_digest": self.arch_digest,
            "arch_updates": jsonable(dict(self.arch_updates)),
            "workload": self.workload,
            "params": jsonable(dict(self.params)),
            "dataflow": self.dataflow,
            "knobs": jsonable(dict(self.knobs)),
            "mapper": jsonable(dict(self.mapper)),
            "engine": self.engine,
        }

    @property
    def point_id(self) -> str:
        """Stable 16-hex-digit id: SHA-1 of the canonical JSON of :meth:`key`."""
        text = json.dumps(self.key(), sort_keys=True, separators=(",", ":"), default=str)
        return hashlib.sha1(text.encode()).hexdigest()[:16]

    def input_columns(self) -> dict[str, object]:
        """Flat store columns: ``arch``, ``arch.<path>``, ``workload``, ``param.<name>``,
        ``dataflow``, ``knob.<name>``, ``engine``. Lists are stored as JSON text."""
        cols: dict[str, object] = {
            "point_id": self.point_id,
            "point_index": self.index,
            "arch": self.arch,
        }
        for path, value in self.arch_updates:
            cols[f"arch.{path}"] = _cell(value)
        cols["workload"] = self.workload
        for name, value in self.params:
            cols[f"param.{name}"] = _cell(value)
        cols["dataflow"] = self.dataflow
        for name, value in self.knobs:
            cols[f"knob.{name}"] = _cell(value)
        cols["engine"] = self.engine
        return cols


def _cell(value: object) -> object:
    if isinstance(value, (list, tuple, Mapping)):
        return json.dumps(jsonable(value))
    return jsonable(value)


def arch_base(spec: SweepSpec) -> tuple[str, str]:
    """The architecture a sweep's points load (preset name, or the file's path resolved
    against the spec's folder) and the SHA-1 of that file's bytes (``""`` for a preset)."""
    if spec.arch.preset is not None:
        return spec.arch.preset, ""
    path = Path(spec.arch.file or "")
    if not path.is_absolute():
        path = Path(spec.base_dir) / path
    try:
        digest = hashlib.sha1(path.read_bytes()).hexdigest()
    except OSError:
        digest = ""  # load_arch reports the missing file per point
    return str(path), digest


def _named(axes: list[tuple[str, Axis]], values: tuple[object, ...]) -> dict[str, object]:
    """Axis name -> drawn value; a bundle axis contributes each of its paths instead."""
    out: dict[str, object] = {}
    for (name, axis), value in zip(axes, values, strict=True):
        if isinstance(axis, ChoiceAxis) and axis.bundle:
            out.update(value)  # type: ignore[call-overload]
        else:
            out[name] = value
    return out


def expand_points(spec: SweepSpec) -> list[DesignPoint]:
    """All design points of a sweep, in a deterministic order, duplicates removed.

    The sampler draws the numeric axes (architecture space, shape-parameter axes, knob
    axes); the name lists (workloads, dataflows, engines) are crossed with every draw so
    that alternatives are always compared on the same hardware and shapes.
    """
    arch_axes = list(spec.arch.space.items())
    param_axes = list(spec.workload.space.items())
    knob_axes = list(spec.knob_space.items())
    axes: list[Axis] = [a for _, a in arch_axes + param_axes + knob_axes]
    draws = get_sampler(spec.sampler.kind)(axes, spec.sampler.n, spec.sampler.seed)
    base, digest = arch_base(spec)
    mapper = tuple(sorted((str(k), v) for k, v in (spec.mapper or {}).items()))
    n_arch, n_param = len(arch_axes), len(param_axes)
    points: dict[str, DesignPoint] = {}
    combos = itertools.product(draws, spec.workload.names, spec.dataflows, spec.engines)
    for draw, workload, dataflow, engine in combos:
        updates = dict(spec.arch.set)
        updates.update(_named(arch_axes, draw[:n_arch]))
        params = dict(spec.workload.params)
        params.update(_named(param_axes, draw[n_arch : n_arch + n_param]))
        knobs = dict(spec.knobs)
        knobs.update(_named(knob_axes, draw[n_arch + n_param :]))
        point = DesignPoint(
            index=len(points),
            arch=base,
            arch_digest=digest,
            arch_updates=tuple(updates.items()),
            workload=workload_ref(spec, workload),
            params=tuple(params.items()),
            dataflow=dataflow,
            knobs=tuple(knobs.items()),
            mapper=mapper,
            engine=engine,
        )
        points.setdefault(point.point_id, point)
    return list(points.values())
