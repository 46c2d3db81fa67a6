"""Safe YAML loading of spec files: syntax errors and duplicate keys become ArchSpecError."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from archsim.errors import ArchSpecError

__all__ = ["load_yaml_mapping"]


#: libyaml's parser when PyYAML was built with it (8x faster on a preset), else pure Python;
#: both are safe loaders with the same marks for error messages
_SafeBase = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class _StrictLoader(_SafeBase):  # type: ignore[misc,valid-type]
    """``yaml.SafeLoader`` that rejects a key given twice in one mapping."""


def _construct_mapping(loader: _StrictLoader, node: yaml.MappingNode, deep: bool = False) -> Any:
    seen: set[object] = set()
    for key_node, _ in node.value:
        if key_node.tag == "tag:yaml.org,2002:merge":
            continue
        key = loader.construct_object(key_node, deep=True)
        if isinstance(key, list | dict):
            continue  # unhashable; safe_load itself reports it
        if key in seen:
            mark = key_node.start_mark
            raise ArchSpecError(
                f"duplicate key {key!r}",
                path=f"line {mark.line + 1}, col {mark.column + 1}",
                expected="each key once per mapping",
                got=key,
            )
        seen.add(key)
    return loader.construct_mapping(node, deep=deep)


_StrictLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)


def load_yaml_mapping(
    src: str | Path, *, is_text: bool = False, source: str | None = None
) -> dict[str, Any]:
    """Parse a YAML file (or text, with ``is_text``) whose top level must be a mapping.

    Raises
    ------
    ArchSpecError
        Unreadable file, YAML syntax error (path ``FILE: line L, col C``), duplicate key,
        or a top level that is not a mapping.
    """
    where = source or ("<text>" if is_text else str(src))
    if is_text:
        text = str(src)
    else:
        try:
            text = Path(src).read_text(encoding="utf-8")
        except OSError as exc:
            raise ArchSpecError(
                f"cannot read architecture file: {exc.strerror or exc}", path=str(src)
            ) from None
    try:
        data = yaml.load(text, Loader=_StrictLoader)  # noqa: S506 - a SafeLoader subclass
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark
        pos = f"line {mark.line + 1}, col {mark.column + 1}" if mark is not None else "?"
        raise ArchSpecError(
            f"YAML syntax error: {exc.problem or exc}", path=f"{where}: {pos}"
        ) from None
    except yaml.YAMLError as exc:
        raise ArchSpecError(f"YAML error: {exc}", path=where) from None
    except ArchSpecError as exc:
        raise ArchSpecError(
            exc.detail, path=f"{where}: {exc.path}", expected=exc.expected, got=exc.got
        ) from None
    if not isinstance(data, dict):
        raise ArchSpecError(
            "an architecture spec must be a YAML mapping",
            path=where,
            expected="a mapping with name, kind, clock, levels, compute",
            got=type(data).__name__,
        )
    return data
