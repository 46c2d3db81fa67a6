"""Parsing of ``--set KEY=VALUE`` options (shared by every ``archsim`` sub-command)."""

from __future__ import annotations

from collections.abc import Iterable

from archsim.errors import SpecError

__all__ = ["parse_set_options", "parse_value"]

_TRUE = {"true", "yes", "on"}
_FALSE = {"false", "no", "off"}


def parse_value(text: str) -> int | float | bool | str:
    """Parse one option value: int, then float, then bool (true/false/yes/no/on/off), else str.

    >>> parse_value("4096"), parse_value("0.5"), parse_value("true"), parse_value("split_kv")
    (4096, 0.5, True, 'split_kv')
    """
    s = text.strip()
    if not s.isascii():  # int("\u0663") is 3: only ASCII digits make numbers
        return s
    try:
        return int(s)
    except ValueError:
        pass
    try:
        return float(s)
    except ValueError:
        pass
    if s.lower() in _TRUE:
        return True
    if s.lower() in _FALSE:
        return False
    return s


def parse_set_options(options: Iterable[str] | None) -> dict[str, int | float | bool | str]:
    """Turn ``["B=4", "causal=true"]`` into ``{"B": 4, "causal": True}``.

    Later options override earlier ones.

    Raises
    ------
    SpecError
        When an option is not ``KEY=VALUE`` or the key is not an identifier.
    """
    out: dict[str, int | float | bool | str] = {}
    for opt in options or ():
        key, sep, value = opt.partition("=")
        key = key.strip()
        if not sep or not key.isidentifier() or not value.strip():
            raise SpecError("bad --set option", path="--set", expected="KEY=VALUE", got=opt)
        out[key] = parse_value(value)
    return out
