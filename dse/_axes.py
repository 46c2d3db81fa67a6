"""Axes of a sweep: discrete choices, bundles of coupled choices, linear/log ranges.

Parsed from YAML values by :func:`parse_axis` (errors name the YAML path); the samplers map
unit samples onto them (:meth:`RangeAxis.at`, ``floor(u * k)`` for choices).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import TypeVar, Union

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from archsim.errors import SweepError

__all__ = ["ChoiceAxis", "RangeAxis", "Axis", "parse_axis", "as_number", "validated", "Frozen"]


def as_number(value: object) -> object:
    """YAML 1.1 reads ``1e6`` (no dot) as a string; accept it as a float."""
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            return value
    return value


class Frozen(BaseModel):
    """Base of the sweep-spec models: immutable, unknown keys rejected."""

    model_config = ConfigDict(frozen=True, extra="forbid")


class ChoiceAxis(Frozen):
    """A discrete axis: one of the listed values (any JSON-like value, lists included)."""

    values: tuple[object, ...] = Field(min_length=1)
    """The choices, in order."""
    bundle: bool = False
    """Each choice maps several fields to values applied together (``NAME: {bundle:
    [{pim.placement: bank, pim.units_per_channel: 16}, ...]}``), for fields that must
    change in step; the axis name is only a label."""

    @field_validator("values", mode="before")
    @classmethod
    def _numbers(cls, v: object) -> object:
        if isinstance(v, (list, tuple)):
            return tuple(as_number(x) for x in v)
        return v


class RangeAxis(Frozen):
    """A continuous axis between two bounds, linear or logarithmic."""

    lo: float
    """Lower bound (inclusive), in the field's unit."""
    hi: float
    """Upper bound (inclusive), in the field's unit; ``hi >= lo``."""
    log: bool = False
    """Sample log-uniformly (bounds must be > 0)."""
    n: int | None = Field(default=None, ge=1)
    """Grid points along the axis (``grid`` sampler only)."""
    integer: bool = False
    """Round sampled values to integers."""

    def at(self, u: float) -> float | int:
        """Map a unit sample ``u`` in [0, 1] onto the axis."""
        if self.log:
            value = math.exp(math.log(self.lo) + u * (math.log(self.hi) - math.log(self.lo)))
        else:
            value = self.lo + u * (self.hi - self.lo)
        value = min(max(value, self.lo), self.hi)
        return int(round(value)) if self.integer else float(value)

    def grid(self) -> tuple[float | int, ...]:
        """The ``n`` grid values (both bounds included), duplicates after rounding removed.

        An integer axis whose grid steps are all below 1 takes every integer between its
        bounds (each one is then the nearest to some grid value): built directly, so a huge
        ``n`` costs nothing.
        """
        n = self.n or 1
        if self.integer and n > 2:
            lo, hi = math.ceil(self.lo), math.floor(self.hi)
            if self.log:
                step = self.hi * (1 - (self.lo / self.hi) ** (1 / (n - 1)))
            else:
                step = (self.hi - self.lo) / (n - 1)
            if step < 1:
                return tuple(range(lo, hi + 1))
        values = [self.at(0.5 if n == 1 else i / (n - 1)) for i in range(n)]
        return tuple(dict.fromkeys(values))


Axis = Union[ChoiceAxis, RangeAxis]


def parse_axis(raw: object, path: str, *, fixed_ok: bool) -> Axis | None:
    """Turn a YAML value into an axis; ``None`` means a fixed (non-axis) value."""
    if isinstance(raw, (list, tuple)):
        if not raw:
            raise SweepError(
                "empty list of choices", path=path, expected="at least one value", got=raw
            )
        return ChoiceAxis(values=tuple(raw))
    if not isinstance(raw, Mapping):
        if fixed_ok:
            return None
        raise SweepError(
            "not an axis",
            path=path,
            expected="a list of choices, {values: [...]}, {range: [lo, hi]} or "
            "{log_range: [lo, hi]} (fixed values go under arch.set)",
            got=raw,
        )
    keys = set(raw)
    if keys <= {"values"} and "values" in keys:
        return validated(ChoiceAxis, {"values": raw["values"]}, path)
    if keys == {"bundle"}:
        return _bundle(raw["bundle"], path)
    for kind in ("range", "log_range"):
        if kind in keys:
            return _range(raw, kind, path)
    if fixed_ok:
        return None
    raise SweepError(
        "not an axis",
        path=path,
        expected="a list of choices, {values: [...]}, {range: [lo, hi]} or {log_range: [lo, hi]}",
        got=dict(raw),
    )


def _range(raw: Mapping[str, object], kind: str, path: str) -> RangeAxis:
    """``{range|log_range: [lo, hi], n: K, integer: bool}`` -> :class:`RangeAxis`."""
    extra = set(raw) - {kind, "n", "integer"}
    if extra:
        first = sorted(extra)[0]
        raise SweepError(
            "unknown key in axis", path=f"{path}.{first}", expected=f"{kind}, n, integer", got=first
        )
    where = f"{path}.{kind}"
    bounds = raw[kind]
    if not (isinstance(bounds, (list, tuple)) and len(bounds) == 2):
        raise SweepError("bad bounds", path=where, expected="[lo, hi]", got=bounds)
    lo_raw, hi_raw = (as_number(b) for b in bounds)
    if not all(isinstance(b, (int, float)) and not isinstance(b, bool) for b in (lo_raw, hi_raw)):
        raise SweepError("bounds must be numbers", path=where, expected="[lo, hi]", got=bounds)
    try:
        lo, hi = float(lo_raw), float(hi_raw)  # type: ignore[arg-type]
    except OverflowError:
        lo = hi = math.inf
    if not (math.isfinite(lo) and math.isfinite(hi)):
        raise SweepError("bounds must be finite", path=where, expected="[lo, hi]", got=bounds)
    if hi < lo:
        raise SweepError(
            "upper bound below lower bound", path=where, expected="lo <= hi", got=bounds
        )
    if kind == "log_range" and lo <= 0:
        raise SweepError(
            "log_range needs positive bounds", path=where, expected="lo > 0", got=bounds
        )
    fields = {
        "lo": lo,
        "hi": hi,
        "log": kind == "log_range",
        "n": raw.get("n"),
        "integer": raw.get("integer", lo.is_integer() and hi.is_integer()),
    }
    return validated(RangeAxis, fields, path)


def _bundle(raw: object, path: str) -> ChoiceAxis:
    if not isinstance(raw, (list, tuple)) or not raw:
        raise SweepError(
            "a bundle is a list of update mappings",
            path=f"{path}.bundle",
            expected="[{dotted.path: value, ...}, ...]",
            got=raw,
        )
    for i, choice in enumerate(raw):
        if not isinstance(choice, Mapping) or not choice:
            raise SweepError(
                "a bundle choice must map dotted paths to values",
                path=f"{path}.bundle[{i}]",
                expected="{dotted.path: value}",
                got=choice,
            )
    values = tuple({str(k): as_number(v) for k, v in c.items()} for c in raw)
    return ChoiceAxis(values=values, bundle=True)


M = TypeVar("M", bound=BaseModel)


def validated(model: type[M], data: Mapping[str, object], path: str) -> M:
    """``model.model_validate(data)``; a validation error becomes a :class:`SweepError` at
    ``path`` plus the field's location."""
    try:
        return model.model_validate(dict(data))
    except ValidationError as exc:
        err = exc.errors()[0]
        loc = ".".join(str(p) for p in err["loc"])
        raise SweepError(
            err["msg"], path=f"{path}.{loc}" if loc else path, got=err.get("input")
        ) from None
