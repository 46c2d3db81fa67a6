"""Shared machinery of the spec models: the frozen base class and the error helpers.

Every spec model derives from :class:`SpecModel` (frozen, ``extra="forbid"``, field
docstrings become field descriptions). Constructing one with bad values raises
:class:`archsim.errors.ArchSpecError` — never a raw pydantic ``ValidationError`` — with a
dotted/indexed path (``levels[2].read_bw_bytes_per_cycle``), what was expected (with the
unit read off the field name) and what was given.

Validators inside the models signal a problem with :func:`fail`, which raises a
``PydanticCustomError`` carrying a *relative* path; pydantic prefixes the location of the
model being validated, so nested errors still get their full path.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from typing import Any, ClassVar, NoReturn

from pydantic import BaseModel, ConfigDict, PrivateAttr, ValidationError
from pydantic_core import PydanticCustomError

from archsim.errors import ArchSpecError

__all__ = ["SpecModel", "fail", "convert_validation_error", "unit_of", "close"]

#: pydantic error type of the errors raised by :func:`fail`
_OUR_ERROR = "archsim_spec"

#: field-name suffix -> unit (longest suffix first)
_UNITS: tuple[tuple[str, str], ...] = (
    ("_bytes_per_cycle_per_pe", "bytes/cycle per PE"),
    ("_bytes_per_cycle", "bytes/cycle"),
    ("_pj_per_byte", "pJ/byte"),
    ("_pj_per_mac", "pJ/MAC"),
    ("_bytes_per_pe", "bytes per PE"),
    ("_mm2_per_pe", "mm^2 per PE"),
    ("_per_cycle_per_sm", "per cycle per SM"),
    ("_bytes_per_sm", "bytes per SM"),
    ("_bytes_per_s", "bytes/s"),
    ("_hz", "Hz"),
    ("_bytes", "bytes"),
    ("_cycles", "cycles"),
    ("_hz", "Hz"),
    ("_ns", "ns"),
    ("_mm2", "mm^2"),
    ("_w", "W"),
    ("_s", "s"),
)

_DRAM_CYCLE_FIELDS = frozenset(
    "tRCD tRP tRAS tRC tCCD_S tCCD_L tRRD_S tRRD_L tFAW tREFI tRFC tCL tWR tRTP "
    "tWTR_S tWTR_L".split()
)


def unit_of(field: str) -> str:
    """The unit implied by a field name (``read_bw_bytes_per_cycle`` -> ``bytes/cycle``)."""
    if field in _DRAM_CYCLE_FIELDS:
        return "tCK cycles"
    for suffix, unit in _UNITS:
        if field.endswith(suffix):
            return unit
    return ""


def close(a: float, b: float) -> bool:
    """Whether two derived quantities agree (relative tolerance 1e-9)."""
    return math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-12)


def fail(path: str, message: str, *, expected: object = None, got: object = None) -> NoReturn:
    """Raise a validation problem from inside a model validator.

    Parameters
    ----------
    path
        Location relative to the model being validated (``"mesh"``, ``"levels[3].name"``);
        empty for the model itself.
    message
        What is wrong, in words.
    expected, got
        What was expected and what was given (shown after the message).
    """
    raise PydanticCustomError(
        _OUR_ERROR,
        "{msg}",
        {"msg": message, "path": path, "expected": expected, "got": got},
    )


class SpecModel(BaseModel):
    """Frozen, strict base of all architecture spec models.

    Construction errors become :class:`ArchSpecError`. Instances are hashable (by their
    canonical JSON form) so they can key caches even though some fields are mappings.
    """

    model_config = ConfigDict(
        frozen=True,
        extra="forbid",
        # field docstrings document the spec in the source (a test requires one per field);
        # letting pydantic read them parses every model's source at import (~17% of a small
        # simulate's start-up), and nothing at run time uses Field.description
        use_attribute_docstrings=False,
        validate_default=False,
    )
    _hash: int | None = PrivateAttr(default=None)

    #: optional: a readable name of the model kind, used in error messages
    _label: ClassVar[str] = ""

    def __init__(self, **data: Any) -> None:
        try:
            super().__init__(**data)
        except ValidationError as exc:
            raise convert_validation_error(exc, type(self), data) from None

    # NOTE: tells pydantic this __init__ adds nothing to validation, so nested models are
    # validated by pydantic-core directly (errors keep their full location) and only the
    # outermost construction converts ValidationError into ArchSpecError.
    __init__.__pydantic_base_init__ = True  # type: ignore[attr-defined]

    def __hash__(self) -> int:
        if self._hash is None:
            text = json.dumps(self.model_dump(mode="json"), sort_keys=True)
            object.__setattr__(self, "_hash", hash((type(self).__name__, text)))
        return self._hash  # type: ignore[return-value]

    def __eq__(self, other: object) -> bool:
        if type(other) is not type(self):
            return NotImplemented
        return self.model_dump() == other.model_dump()


def _join(loc: tuple[Any, ...]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        elif out:
            out += f".{part}"
        else:
            out = str(part)
    return out


def _join_path(prefix: str, rel: str) -> str:
    if not rel:
        return prefix
    if not prefix:
        return rel
    return prefix + rel if rel.startswith("[") else f"{prefix}.{rel}"


def _model_at(root: type[BaseModel], loc: tuple[Any, ...]) -> type[BaseModel] | None:
    """The spec model class found by walking ``loc`` from ``root`` (None if not a model)."""
    model: type[BaseModel] | None = root
    for part in loc:
        if isinstance(part, int) or model is None:
            continue
        field = model.model_fields.get(str(part))
        if field is None:
            return None
        model = _inner_model(field.annotation)
    return model


def _inner_model(annotation: Any) -> type[BaseModel] | None:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in getattr(annotation, "__args__", ()) or ():
        found = _inner_model(arg)
        if found is not None:
            return found
    return None


def _expected(err: Any, field: str) -> str:
    kind = err["type"]
    ctx = err.get("ctx") or {}
    unit = unit_of(field)
    unit_sp = f"{unit} " if unit else ""
    table = {
        "greater_than": lambda: f"{unit_sp}> {ctx.get('gt')}",
        "greater_than_equal": lambda: f"{unit_sp}>= {ctx.get('ge')}",
        "less_than": lambda: f"{unit_sp}< {ctx.get('lt')}",
        "less_than_equal": lambda: f"{unit_sp}<= {ctx.get('le')}",
        "missing": lambda: f"a value ({unit})" if unit else "a value (required field)",
        "literal_error": lambda: f"one of {ctx.get('expected')}",
        "too_short": lambda: f"at least {ctx.get('min_length')} item(s)",
        "too_long": lambda: f"at most {ctx.get('max_length')} item(s)",
        "int_from_float": lambda: "an integer",
        "int_parsing": lambda: "an integer",
        "int_parsing_size": lambda: "an integer of a sensible size",
        "int_type": lambda: "an integer",
        "float_parsing": lambda: f"a number ({unit})" if unit else "a number",
        "float_type": lambda: f"a number ({unit})" if unit else "a number",
        "finite_number": lambda: "a finite number",
        "string_type": lambda: "a string",
        "bool_type": lambda: "true or false",
        "bool_parsing": lambda: "true or false",
        "tuple_type": lambda: "a list",
        "list_type": lambda: "a list",
        "dict_type": lambda: "a mapping",
        "model_type": lambda: "a mapping",
    }
    maker = table.get(kind)
    return maker() if maker else str(err.get("msg", kind))


def convert_validation_error(
    exc: ValidationError, root: type[BaseModel], data: Mapping[str, Any] | None = None
) -> ArchSpecError:
    """Turn pydantic's ``ValidationError`` into one :class:`ArchSpecError`.

    The first problem gives the error's ``path``/``expected``/``got``; up to three more are
    listed in the message. Unknown keys name the allowed ones. Follow-on errors (a list
    too short because an item failed, a write bandwidth missing because the read one was
    invalid) are dropped. ``data`` (the input) lets messages name the level/unit.
    """
    errors = [e for e in exc.errors(include_url=False)]
    locs = [tuple(e["loc"]) for e in errors]
    kept = []
    for err in errors:
        loc = tuple(err["loc"])
        if err["type"] == "too_short" and any(o[: len(loc)] == loc and o != loc for o in locs):
            continue
        if (
            err["type"] == "missing"
            and loc[-1:] == ("write_bw_bytes_per_cycle",)
            and (*loc[:-1], "read_bw_bytes_per_cycle") in locs
        ):
            continue
        if _follows(loc, locs):
            continue
        kept.append(err)
    converted = [_convert_one(err, root, data) for err in kept or errors]
    path, message, expected, got = converted[0]
    if len(converted) > 1:
        others = "; ".join(f"{p}: {m}" for p, m, _, _ in converted[1:4])
        more = f" (+{len(converted) - 4} more)" if len(converted) > 4 else ""
        message = f"{message} [also: {others}{more}]"
    return ArchSpecError(message, path=path or None, expected=expected, got=got)


def _follows(loc: tuple[Any, ...], locs: list[tuple[Any, ...]]) -> bool:
    """Whether the error at ``loc`` is a derived value whose source also failed.

    ``read_bw_bytes_per_cycle`` derives from ``read_bw_bytes_per_s``, ``X`` from
    ``X_per_pe`` and ``ops_per_cycle.K`` from ``ops_per_cycle_per_pe.K``: report the source.
    """
    if not loc:
        return False
    *head, last = loc
    sources: list[tuple[Any, ...]] = []
    if isinstance(last, str):
        sources.append((*head, last + "_per_pe"))
        if last.endswith("_bw_bytes_per_cycle"):
            sources.append((*head, last[: -len("cycle")] + "s"))
    if len(loc) >= 2 and loc[-2] == "ops_per_cycle":
        sources.append((*loc[:-2], "ops_per_cycle_per_pe", last))
    return any(src in locs for src in sources)


_GROUP_LABEL = {"levels": "level", "compute": "unit", "networks": "network"}


def _name_hint(data: Mapping[str, Any] | None, loc: tuple[Any, ...]) -> str:
    """``"level 'GLB': "`` when ``loc`` points into a named list item of ``data``."""
    if data is None or len(loc) < 2 or loc[0] not in _GROUP_LABEL or not isinstance(loc[1], int):
        return ""
    items = data.get(loc[0])
    try:
        item = items[loc[1]]  # type: ignore[index]
    except (TypeError, IndexError, KeyError):
        return ""
    name = item.get("name") if isinstance(item, Mapping) else getattr(item, "name", None)
    return f"{_GROUP_LABEL[loc[0]]} {name!r}: " if isinstance(name, str) else ""


def _convert_one(
    err: Any, root: type[BaseModel], data: Mapping[str, Any] | None = None
) -> tuple[str, str, object, object]:
    loc = tuple(err["loc"])
    hint = _name_hint(data, loc)
    kind = err["type"]
    ctx = err.get("ctx") or {}
    if kind == _OUR_ERROR:
        return (
            _join_path(_join(loc), ctx.get("path") or ""),
            hint + ctx["msg"],
            ctx.get("expected"),
            ctx.get("got"),
        )
    path = _join(loc)
    field = next((str(p) for p in reversed(loc) if not isinstance(p, int)), "")
    if kind == "extra_forbidden":
        model = _model_at(root, loc[:-1])
        allowed = sorted(model.model_fields) if model is not None else []
        where = f" in {model.__name__}" if model is not None else ""
        return (path, f"{hint}unknown key {field!r}{where}", "one of: " + ", ".join(allowed), field)
    got = err.get("input")
    if kind == "missing" and loc and isinstance(loc[-1], int):
        parent = _join(loc[:-1])
        return (
            parent,
            f"{hint}too few items: item [{loc[-1]}] is missing",
            "[rows, cols]" if parent.endswith("mesh") else f"at least {loc[-1] + 1} items",
            None,
        )
    if kind == "missing":
        want = _expected(err, field)
        if field.endswith("_bw_bytes_per_cycle"):
            want = f"{want}; or {field}_per_pe with a mesh; or {field[: -len('cycle')]}s in bytes/s"
        return path, f"{hint}missing required field {field!r}", want, None
    if isinstance(got, dict | list) and len(repr(got)) > 80:
        got = f"<{type(got).__name__}>"
    expected: object = _expected(err, field)
    if kind in _BOUND_ERRORS:
        expected = _range(root, loc) or expected
    note = _derived_note(data, loc)
    return path, f"{hint}invalid value for {field or 'spec'!r}{note}", expected, got


def _derived_note(data: Mapping[str, Any] | None, loc: tuple[Any, ...]) -> str:
    """``" (derived: X_per_pe x mesh)"`` when the field at ``loc`` was not given but derived."""
    if len(loc) >= 2 and loc[-2] == "ops_per_cycle" and isinstance(data, Mapping):
        return _derived_note_ops(data, loc)
    node: Any = data
    for part in loc[:-1]:
        try:
            node = node[part]
        except (KeyError, IndexError, TypeError):
            return ""
    field = loc[-1] if loc else None
    if not isinstance(node, Mapping) or not isinstance(field, str) or field in node:
        return ""
    sources = (
        (f"{field}_per_pe", f"{field}_per_pe x mesh"),
        (f"{field[: -len('cycle')]}s", f"{field[: -len('cycle')]}s / clock.core_hz"),
        (f"{field}_per_mib", f"{field}_per_mib x capacity_bytes / 2^20"),
    )
    for key, rule in sources:
        if key in node:
            return f" (derived: {rule})"
    return ""


def _derived_note_ops(data: Mapping[str, Any], loc: tuple[Any, ...]) -> str:
    node: Any = data
    for part in loc[:-2]:
        try:
            node = node[part]
        except (KeyError, IndexError, TypeError):
            return ""
    given = node.get("ops_per_cycle") if isinstance(node, Mapping) else None
    per_pe = node.get("ops_per_cycle_per_pe") if isinstance(node, Mapping) else None
    op = loc[-1]
    if (
        isinstance(per_pe, Mapping)
        and op in per_pe
        and not (isinstance(given, Mapping) and op in given)
    ):
        return f" (derived: ops_per_cycle_per_pe.{op} x mesh)"
    return ""


_BOUND_ERRORS = frozenset(("greater_than", "greater_than_equal", "less_than", "less_than_equal"))


def _range(root: type[BaseModel], loc: tuple[Any, ...]) -> str:
    """``"bytes/cycle in [1e-09, 1e+12]"``: the allowed range of the field at ``loc``."""
    names = [p for p in loc if not isinstance(p, int)]
    model = _model_at(root, tuple(loc[:-1])) if names else None
    info = model.model_fields.get(str(loc[-1])) if model is not None else None
    if info is None:  # a dict value (ops_per_cycle.mac): the field is one level up
        model = _model_at(root, tuple(loc[:-2])) if len(loc) >= 2 else None
        info = model.model_fields.get(str(loc[-2])) if model is not None else None
        field = str(loc[-2]) if len(loc) >= 2 else ""
    else:
        field = str(loc[-1])
    if info is None:
        return ""
    low = high = ""
    for meta in _metadata(info.annotation) + list(info.metadata):
        for attr, text in (("gt", "({}"), ("ge", "[{}")):
            if getattr(meta, attr, None) is not None:
                low = text.format(f"{getattr(meta, attr):g}")
        for attr, text in (("lt", "{})"), ("le", "{}]")):
            if getattr(meta, attr, None) is not None:
                high = text.format(f"{getattr(meta, attr):g}")
    if not (low and high):
        return ""
    unit = unit_of(field)
    return f"{unit + ' ' if unit else ''}in {low}, {high}"


def _metadata(annotation: Any) -> list[Any]:
    """Constraint objects inside ``annotation`` (``Annotated``, ``X | None``, ``dict[k, X]``)."""
    out: list[Any] = []
    for meta in getattr(annotation, "__metadata__", ()) or ():
        out += [meta, *getattr(meta, "metadata", ())]  # a FieldInfo holds Ge/Le objects
    for arg in getattr(annotation, "__args__", ()) or ():
        if arg is not type(None):
            out += _metadata(arg)
    return out
