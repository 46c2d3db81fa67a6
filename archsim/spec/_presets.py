"""Preset lookup: YAML files shipped in ``archsim/presets/``."""

from __future__ import annotations

import functools
from pathlib import Path

from archsim.errors import ArchSpecError
from archsim.spec._arch import Architecture

__all__ = ["PRESET_DIR", "list_presets", "load_arch", "preset_path"]

#: directory holding the preset YAML files
PRESET_DIR = Path(__file__).resolve().parent.parent / "presets"


def list_presets() -> list[str]:
    """Names of the shipped presets (file stems of ``archsim/presets/*.yaml``), sorted."""
    return sorted(p.stem for p in PRESET_DIR.glob("*.yaml"))


def preset_path(name: str) -> Path:
    """The YAML file of preset ``name`` (raises :class:`ArchSpecError` if there is none)."""
    path = PRESET_DIR / f"{name}.yaml"
    if not path.is_file():
        raise ArchSpecError(
            f"no architecture preset {name!r}",
            expected="one of " + ", ".join(list_presets()),
            got=name,
        )
    return path


@functools.lru_cache(maxsize=64)
def _load_preset(name: str) -> Architecture:
    return Architecture.from_yaml(preset_path(name))


def load_arch(name_or_path: str | Path) -> Architecture:
    """Load a preset by name (``h100``) or a spec from a YAML file path.

    Presets are parsed once and cached (architectures are immutable).

    Raises
    ------
    ArchSpecError
        Neither a preset nor a readable file, or the spec is invalid.
    """
    text = str(name_or_path)
    if isinstance(name_or_path, str) and (PRESET_DIR / f"{text}.yaml").is_file():
        return _load_preset(text)
    path = Path(text)
    if path.is_file():
        return Architecture.from_yaml(path)
    raise ArchSpecError(
        f"no architecture preset or file {text!r}",
        expected="a preset (" + ", ".join(list_presets()) + ") or a YAML path",
        got=text,
    )
