"""Strict, bounded YAML loading for every archsim input file (no pydantic, no engine).

``yaml.safe_load`` is safe against code execution but not against mistakes or resource
bombs. This module's loaders are ``safe_load`` plus four refusals:

* **duplicate keys** in one mapping (``safe_load`` silently keeps the last one);
* **alias bombs** ("billion laughs"): the document's size with every alias expanded is
  bounded by ``max_nodes`` (default :data:`MAX_NODES`), counted in one streaming pass over
  the parser's events before anything is built, so a 3 kB file that expands to 10^9 nodes
  is refused in milliseconds;
* **deep nesting** beyond ``max_depth`` (default :data:`MAX_DEPTH`) collections, refused
  in the same pass (deep input otherwise ends in ``RecursionError``);
* **non-UTF-8 / binary** input (a clear error naming the byte offset instead of
  ``UnicodeDecodeError``).

Two entry points:

* :func:`safe_load` — drop-in for ``yaml.safe_load(text)``: every refusal is a
  :class:`StrictYAMLError`, a ``yaml.MarkedYAMLError`` subclass, so existing
  ``except yaml.YAMLError`` handlers keep working and keep their own error class.
* :func:`load_yaml` — reads a file (or text), and raises *your*
  :class:`archsim.errors.ArchsimError` subclass with ``path = "FILE: line L, col C"``.

Example::

    from archsim.errors import WorkloadError
    from archsim.yamlio import load_yaml

    data = load_yaml("cascade.yaml", error=WorkloadError)  # dict, list or scalar
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import yaml

from archsim.errors import ArchsimError, SpecError

__all__ = [
    "MAX_DEPTH",
    "MAX_NODES",
    "MAX_BYTES",
    "StrictYAMLError",
    "safe_load",
    "load_yaml",
    "decode_yaml_bytes",
]

#: most nested collections (mappings/lists) a document may open; archsim's own files use < 10
MAX_DEPTH = 64
#: most nodes (scalars + collections) a document may have once every alias is expanded
MAX_NODES = 1_000_000
#: largest input accepted, in bytes (64 MiB)
MAX_BYTES = 64 * 2**20

#: libyaml's parser when PyYAML was built with it (8x faster on a preset), else pure Python;
#: both are safe loaders with the same marks for error messages
_SafeBase = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class StrictYAMLError(yaml.MarkedYAMLError):
    """A refusal of the strict loader (duplicate key, alias bomb, nesting, encoding).

    ``problem`` says what is wrong; ``problem_mark`` (may be None) says where.
    """

    def __init__(self, problem: str, mark: Any = None) -> None:
        super().__init__(problem=problem, problem_mark=mark)


class _StrictLoader(_SafeBase):  # type: ignore[misc,valid-type]
    """``yaml.SafeLoader`` that rejects a key given twice in one mapping."""


def _construct_mapping(loader: _StrictLoader, node: yaml.MappingNode, deep: bool = False) -> Any:
    seen: set[object] = set()
    for key_node, _ in node.value:
        if key_node.tag == "tag:yaml.org,2002:merge":
            continue
        key = loader.construct_object(key_node, deep=True)
        if isinstance(key, list | dict):
            continue  # unhashable; the base constructor reports it
        if key in seen:
            raise StrictYAMLError(
                f"duplicate key {key!r} (each key may appear once per mapping)",
                key_node.start_mark,
            )
        seen.add(key)
    return loader.construct_mapping(node, deep=deep)


_StrictLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)


def decode_yaml_bytes(data: bytes) -> str:
    """``data`` decoded as UTF-8 (a BOM is dropped).

    Raises
    ------
    StrictYAMLError
        Not UTF-8 (the message names the first bad byte's offset) or it holds NUL bytes
        (a binary file).
    """
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise StrictYAMLError(
            f"not a UTF-8 text file: byte 0x{data[exc.start]:02x} at offset {exc.start} "
            "cannot be decoded (save the file as UTF-8)"
        ) from None
    if "\x00" in text:
        raise StrictYAMLError(
            f"not a text file: NUL byte at offset {text.index(chr(0))} (binary data?)"
        )
    return text


def _events(text: str, max_depth: int) -> Iterator[yaml.Event]:
    """The parser's events; libyaml's own nesting limit (PyYAML >= 6.0.4 scans ahead and
    stops near 1000 levels, before this module's check sees the 64th) reads as this
    module's refusal, so the message does not depend on the PyYAML version."""
    try:
        yield from yaml.parse(text, Loader=_SafeBase)
    except yaml.MarkedYAMLError as exc:
        if "nesting depth" not in str(exc.problem or ""):
            raise
        raise StrictYAMLError(
            f"nesting deeper than {max_depth} mappings/lists", exc.problem_mark
        ) from None


def _check_shape(text: str, max_depth: int, max_nodes: int) -> None:
    """Refuse nesting deeper than ``max_depth`` or more than ``max_nodes`` expanded nodes.

    One pass over the parser's events: each anchor remembers the size of its subtree, an
    alias adds that size again, so the alias-expanded size is known without expanding.
    """
    anchors: dict[str, int] = {}
    stack: list[list[Any]] = []  # [anchor, expanded size so far]
    expanded = 0

    def add(size: int, mark: Any) -> None:
        nonlocal expanded
        expanded += size
        if stack:
            stack[-1][1] += size
        if expanded > max_nodes:
            raise StrictYAMLError(
                f"document too large: more than {max_nodes:,} nodes once aliases (*name) are "
                "expanded (an alias bomb?)",
                mark,
            )

    for event in _events(text, max_depth):
        if isinstance(event, yaml.CollectionStartEvent):
            if len(stack) >= max_depth:
                raise StrictYAMLError(
                    f"nesting deeper than {max_depth} mappings/lists", event.start_mark
                )
            stack.append([event.anchor, 0])
            add(1, event.start_mark)
        elif isinstance(event, yaml.CollectionEndEvent):
            anchor, size = stack.pop()
            if anchor is not None:
                anchors[anchor] = size
            if stack:
                stack[-1][1] += size
        elif isinstance(event, yaml.ScalarEvent):
            if event.anchor is not None:
                anchors[event.anchor] = 1
            add(1, event.start_mark)
        elif isinstance(event, yaml.AliasEvent):
            add(anchors.get(event.anchor, 1), event.start_mark)


def safe_load(text: str | bytes, *, max_depth: int = MAX_DEPTH, max_nodes: int = MAX_NODES) -> Any:
    """Like ``yaml.safe_load(text)``, refusing duplicate keys, alias bombs, deep nesting
    and non-UTF-8 bytes.

    Raises
    ------
    yaml.YAMLError
        Syntax errors (as ``yaml.safe_load``) and every refusal, as a
        :class:`StrictYAMLError` (``problem`` and ``problem_mark`` set).
    """
    if isinstance(text, bytes | bytearray):
        if len(text) > MAX_BYTES:
            raise StrictYAMLError(f"file too large: {len(text):,} bytes > {MAX_BYTES:,}")
        text = decode_yaml_bytes(bytes(text))
    elif len(text) > MAX_BYTES:
        raise StrictYAMLError(f"text too large: {len(text):,} characters > {MAX_BYTES:,}")
    _check_shape(text, max_depth, max_nodes)
    return yaml.load(text, Loader=_StrictLoader)  # noqa: S506 - a SafeLoader subclass


def _make_error(
    error: type[ArchsimError], message: str, path: str, expected: object = None
) -> ArchsimError:
    if issubclass(error, SpecError):
        return error(message, path=path, expected=expected)
    return error(f"{path}: {message}")


def load_yaml(
    src: str | Path | bytes,
    *,
    error: type[ArchsimError] = SpecError,
    is_text: bool = False,
    source: str | None = None,
    what: str = "YAML file",
    max_depth: int = MAX_DEPTH,
    max_nodes: int = MAX_NODES,
) -> Any:
    """Read and parse a YAML file (or text/bytes with ``is_text``) with :func:`safe_load`.

    Parameters
    ----------
    src
        A file path, or the YAML itself (``str``/``bytes``) when ``is_text``.
    error
        The :class:`~archsim.errors.ArchsimError` subclass to raise (``ArchSpecError``,
        ``WorkloadError``, ...); a :class:`~archsim.errors.SpecError` subclass gets
        ``path = "FILE: line L, col C"``, others the same text in the message.
    source
        Name used in messages (default: the path, or ``<text>``).
    what
        What the file is, for the "cannot read" message (``"architecture file"``).

    Raises
    ------
    ArchsimError
        (of class ``error``) for an unreadable file, non-UTF-8 or binary content, a
        syntax error, a duplicate key, an alias bomb or too deep nesting.
    """
    where = source or ("<text>" if is_text else str(src))
    if is_text:
        raw: str | bytes = src if isinstance(src, bytes) else str(src)
    else:
        try:
            path = Path(src if not isinstance(src, bytes) else src.decode(errors="replace"))
            size = path.stat().st_size
            if size > MAX_BYTES:
                raise _make_error(
                    error, f"{what} too large ({size:,} bytes)", where, f"<= {MAX_BYTES:,} bytes"
                )
            raw = path.read_bytes()
        except OSError as exc:
            raise _make_error(error, f"cannot read {what}: {exc.strerror or exc}", where) from None
    try:
        return safe_load(raw, max_depth=max_depth, max_nodes=max_nodes)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark
        pos = f": line {mark.line + 1}, col {mark.column + 1}" if mark is not None else ""
        label = "YAML" if isinstance(exc, StrictYAMLError) else "YAML syntax error"
        raise _make_error(error, f"{label}: {exc.problem or exc}", where + pos) from None
    except yaml.YAMLError as exc:
        raise _make_error(error, f"YAML error: {exc}", where) from None
    except RecursionError:  # a safety net: _check_shape bounds nesting first
        raise _make_error(error, "YAML nested too deeply", where) from None
