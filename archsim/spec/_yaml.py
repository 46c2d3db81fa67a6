"""Architecture YAML: strict :func:`archsim.yamlio.load_yaml`, top level a mapping."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from archsim.errors import ArchSpecError
from archsim.yamlio import load_yaml

__all__ = ["load_yaml_mapping", "ARCH_MAX_NODES"]

#: most YAML nodes (aliases expanded) of one architecture file; presets have < 1,000
ARCH_MAX_NODES = 100_000


def load_yaml_mapping(
    src: str | Path, *, is_text: bool = False, source: str | None = None
) -> dict[str, Any]:
    """Parse a YAML file (or text, with ``is_text``) whose top level must be a mapping.

    Strict loading (:mod:`archsim.yamlio`): duplicate keys, alias bombs, nesting deeper than
    :data:`archsim.yamlio.MAX_DEPTH` and non-UTF-8 files are refused.

    Raises
    ------
    ArchSpecError
        Unreadable file, YAML syntax error (path ``FILE: line L, col C``), duplicate key,
        a refused document, or a top level that is not a mapping.
    """
    where = source or ("<text>" if is_text else str(src))
    data = load_yaml(
        src,
        error=ArchSpecError,
        is_text=is_text,
        source=where,
        what="architecture file",
        max_nodes=ARCH_MAX_NODES,
    )
    if not isinstance(data, dict):
        raise ArchSpecError(
            "an architecture spec must be a YAML mapping",
            path=where,
            expected="a mapping with name, kind, clock, levels, compute",
            got=type(data).__name__,
        )
    return data
