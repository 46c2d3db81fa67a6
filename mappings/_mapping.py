"""The loop-nest mapping: fusion groups, per-level temporal/spatial factors, loop order, bypass.

A :class:`Mapping` covers a whole cascade. ``splits`` sets the inner extent of each split
rank the cascade declares (``m -> m1, m0`` with ``m0: 256``: the key tile the running state
advances by). ``groups`` lists fusion groups: a group is a set of Einsums computed together
under one loop nest; intermediates named in ``on_chip`` never leave the chip; ``units`` binds
Einsums to compute units (Einsums on different units of one group run concurrently on every
tile), ``depth`` is the number of tiles in flight and ``pipelined`` overlaps a group with the
previous one (a producer/consumer pipeline). For every storage level (outermost
first, DRAM first) the group gives

* ``temporal``: rank -> loop factor at that level, iterated in ``order`` (outermost first);
* ``spatial``: rank -> fan-out below that level (over child instances or compute PEs), and
  ``spatial_axis``: which mesh axis (``x`` rows, ``y`` columns) each spatial rank uses;
* ``keep`` / ``bypass``: which tensors are stored at that level.

Tiles need not divide a rank: the outermost loop of a rank takes the remainder (the rank's
factors must multiply to at least its size, and dropping one iteration of the outermost
non-unit factor must undershoot it). The YAML form is the ``to_dict`` form.
"""

from __future__ import annotations

import numbers
from collections.abc import Mapping as AbcMapping
from pathlib import Path
from typing import Annotated, Any, Literal

import numpy as np
import yaml
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError

from archsim.errors import MappingError
from archsim.yamlio import safe_load
from workloads import MAX_EXTENT
from workloads._files import MAX_FILE_BYTES

__all__ = ["LevelMapping", "FusionGroup", "Mapping", "MAX_DEPTH"]

MAX_DEPTH = 1024
"""Most tiles in flight a group may ask for (``depth``; real pipelines use 1-8)."""


def _extent(v: object, what: str, top: int = MAX_EXTENT) -> int:
    """``v`` as an int if it is an integer in ``1 .. top``; a ValueError for a bool (YAML
    ``true``), a fraction, inf/nan, a string, 0, a negative or a huge number. numpy integers
    and integral floats (``2.0``) are accepted."""
    if isinstance(v, (bool, np.bool_)) or not isinstance(v, numbers.Real):
        raise ValueError(f"{what} must be an integer >= 1, got {v!r}")
    if isinstance(v, numbers.Integral):
        n = int(v)
    else:
        f = float(v)
        if not f.is_integer():  # nan and inf are not integers
            raise ValueError(f"{what} must be an integer >= 1, got {v!r}")
        n = int(f)
    if n < 1:
        raise ValueError(f"{what} must be an integer >= 1, got {v!r}")
    if n > top:
        shown = repr(v) if len(repr(v)) <= 40 else f"{repr(v)[:24]}... ({len(repr(v))} digits)"
        raise ValueError(f"{what} must be at most {top}, got {shown}")
    return n


Factor = Annotated[int, BeforeValidator(lambda v: _extent(v, "a loop factor"))]
"""A loop factor (trip count or fan-out): an integer in ``1 .. MAX_EXTENT`` (2**40)."""
SplitExtent = Annotated[int, BeforeValidator(lambda v: _extent(v, "a split extent"))]
"""The inner extent of a split rank (elements): an integer in ``1 .. MAX_EXTENT``."""
Depth = Annotated[
    int | None,
    BeforeValidator(lambda v: None if v is None else _extent(v, "depth", MAX_DEPTH)),
]
"""Tiles in flight: an integer in ``1 .. MAX_DEPTH``, or None."""

_MODEL_OF = {"groups": "FusionGroup", "levels": "LevelMapping"}
"""Field -> the model of its items (to list the known fields of an unknown key's parent)."""


def _error(err: Any, source: str) -> MappingError:
    """A MappingError at the field pydantic's first error names (``groups.0.levels.2.temporal.e``),
    saying what was expected and what was given."""
    loc = tuple(err["loc"])
    path = ".".join(str(p) for p in loc)
    where = f"{source}: {path}" if path else source
    got = err.get("input")
    if len(repr(got)) > 120:  # a whole subtree: say what it is, not all of it
        got = f"{type(got).__name__} {repr(got)[:100]}..."
    if err["type"] == "value_error":  # ours: the message says what was expected and given
        return MappingError(err["msg"].removeprefix("Value error, "), path=where)
    if err["type"] == "extra_forbidden":
        model = "Mapping"
        for part in reversed(loc[:-1]):
            if isinstance(part, str):
                model = _MODEL_OF.get(part, model)
                break
        fields = sorted(globals()[model].model_fields)
        return MappingError("unknown field", path=where, expected=f"one of {fields}", got=loc[-1])
    return MappingError("bad value", path=where, expected=err["msg"].lower(), got=got)


def _read(path_or_text: str | Path) -> tuple[str, str]:
    """(YAML text, source label) of a mapping file path or of YAML text itself."""
    s = str(path_or_text)
    as_path = isinstance(path_or_text, Path) or (
        "\n" not in s and not s.lstrip().startswith(("groups", "{"))
    )
    if not as_path:
        return s, "<yaml>"
    p = Path(s)
    try:
        exists = p.is_file()
        if exists and p.stat().st_size > MAX_FILE_BYTES:
            raise MappingError(
                "mapping file too large",
                path=s,
                expected=f"at most {MAX_FILE_BYTES} bytes",
                got=f"{p.stat().st_size} bytes",
            )
        data = p.read_bytes() if exists else b""
    except (OSError, ValueError) as exc:  # unreadable, a directory, a name too long, a NUL
        if len(s) > 255 or "\0" in s:
            return s, "<yaml>"
        raise MappingError(
            "cannot read mapping file",
            path=s,
            expected="a readable YAML file",
            got=getattr(exc, "strerror", None) or str(exc),
        ) from None
    if not exists:
        if p.suffix in (".yaml", ".yml") or p.is_dir():
            raise MappingError("no such mapping file", path=s, expected="an existing YAML file")
        return s, "<yaml>"
    try:
        return data.decode("utf-8"), s
    except UnicodeDecodeError as exc:
        raise MappingError(
            "mapping file is not UTF-8 text",
            path=s,
            expected="UTF-8 text",
            got=f"byte 0x{data[exc.start]:02x} at byte offset {exc.start}",
        ) from None


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class LevelMapping(_Frozen):
    """Loops and storage decisions at one storage level of one fusion group."""

    level: str
    """Name of the architecture's storage level (``arch.levels[i].name``)."""
    temporal: dict[str, Factor] = Field(default_factory=dict)
    """Temporal loop factor per rank at this level (trip count; missing ranks have factor 1)."""
    order: tuple[str, ...] = ()
    """Loop order of the temporal loops, outermost first; ranks not listed follow in the
    order of ``temporal``."""
    spatial: dict[str, Factor] = Field(default_factory=dict)
    """Spatial fan-out per rank below this level (child instances or PEs used in parallel)."""
    spatial_axis: dict[str, Literal["x", "y"]] = Field(default_factory=dict)
    """Mesh axis of each spatial rank: ``x`` (rows, mesh[0]) or ``y`` (columns, mesh[1]);
    ranks not listed use ``x``."""
    keep: tuple[str, ...] | None = None
    """Tensors stored at this level; ``None`` means every tensor of the group not bypassed."""
    bypass: tuple[str, ...] = ()
    """Tensors that skip this level (moved straight between its neighbours)."""

    def loop_order(self) -> tuple[str, ...]:
        """Temporal ranks outermost first (``order`` then the rest of ``temporal``)."""
        rest = [r for r in self.temporal if r not in self.order]
        return tuple(self.order) + tuple(rest)

    def keeps(self, tensor: str) -> bool:
        """Whether ``tensor`` is stored at this level."""
        if tensor in self.bypass:
            return False
        return self.keep is None or tensor in self.keep


class FusionGroup(_Frozen):
    """Einsums computed together under one loop nest."""

    einsums: tuple[str, ...]
    """Names (output tensors) of the Einsums in this group, in execution order."""
    levels: tuple[LevelMapping, ...]
    """One entry per storage level used, outermost (DRAM) first."""
    on_chip: tuple[str, ...] = ()
    """Intermediates of this group that never go to DRAM (kept in the on-chip levels)."""
    compute: str | None = None
    """Compute unit that runs the group (default: the architecture's first compute unit);
    the innermost level's spatial factors fan out over its mesh."""
    units: dict[str, str] = Field(default_factory=dict)
    """Einsum -> compute unit for Einsums that do not run on ``compute`` (e.g. a 1D array
    running the running-state Einsums beside the 2D array)."""
    skip: tuple[Literal["condition", "block", "slice"], ...] = ("condition",)
    """Dead tiles the group's controller skips: those a condition (causal, window) leaves
    empty, and those of a block / M x 1 slice mask known before the run. A tile that is not
    skipped runs its dense work (energy is charged on the counted ops only)."""
    depth: Depth = None
    """Tiles in flight (buffer stages of the DRAM-level loop); None: 2 where the staging
    level has room for two tiles, else 1."""
    pipelined: bool = False
    """Run concurrently with the previous group, as the consumer stage of a producer/consumer
    pipeline (FLAT's 2D and 1D arrays working on successive tiles): the intermediates still go
    through the level they are kept in (DRAM unless ``on_chip``), but the groups' work
    overlaps instead of running one after the other (:func:`mappings._lower.lower`)."""

    def unit_of(self, einsum: str) -> str | None:
        """Name of the compute unit that runs ``einsum`` (None: the architecture's first)."""
        return self.units.get(einsum, self.compute)

    def factors(self, rank: str) -> list[int]:
        """All factors (temporal and spatial) of ``rank``, outermost first."""
        out: list[int] = []
        for lm in self.levels:
            out.append(int(lm.temporal.get(rank, 1)))
            out.append(int(lm.spatial.get(rank, 1)))
        return out

    def tile(self, rank: str, level_index: int) -> int:
        """Extent of ``rank`` in one instance's tile at level ``level_index`` (elements)."""
        f = 1
        for lm in self.levels[level_index:]:
            f *= int(lm.temporal.get(rank, 1)) * int(lm.spatial.get(rank, 1))
        return f


class Mapping(_Frozen):
    """A complete mapping of a cascade: its fusion groups in execution order."""

    groups: tuple[FusionGroup, ...]
    """Fusion groups, executed one after another."""
    splits: dict[str, SplitExtent] = Field(default_factory=dict)
    """Split rank (its name, ``m``, or its inner rank, ``m0``) -> inner extent: the tile
    parameter of the cascade's ``m -> m1, m0`` split (elements)."""
    name: str = ""
    """Optional label (dataflow name, mapper rank)."""

    def to_dict(self) -> dict[str, object]:
        """Plain dict (the YAML form)."""
        return self.model_dump(mode="json", exclude_defaults=True)

    @classmethod
    def from_dict(cls, data: AbcMapping[str, object], source: str = "<dict>") -> Mapping:
        """Validate ``data`` into a Mapping.

        Raises
        ------
        MappingError
            With the path of the first bad field.
        """
        try:
            return cls.model_validate(dict(data))
        except ValidationError as exc:
            raise _error(exc.errors()[0], source) from None

    def to_yaml(self, path: str | Path | None = None) -> str:
        """YAML text of the mapping; also written to ``path`` when given."""
        text = yaml.safe_dump(self.to_dict(), sort_keys=False)
        if path is not None:
            Path(path).write_text(text)
        return text

    @classmethod
    def from_yaml(cls, path_or_text: str | Path) -> Mapping:
        """Read a mapping from a YAML file path or YAML text.

        Raises
        ------
        MappingError
            Unreadable YAML or a bad field (with the path).
        """
        text, source = _read(path_or_text)
        try:
            data = safe_load(text)
        except yaml.YAMLError as exc:
            raise MappingError(f"not valid YAML ({exc})", path=source) from None
        if not isinstance(data, dict):
            raise MappingError(
                "mapping YAML",
                path=source,
                expected="a mapping with 'groups'",
                got=type(data).__name__,
            )
        return cls.from_dict(data, source=source)
