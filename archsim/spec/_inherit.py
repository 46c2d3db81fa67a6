"""``base:`` inheritance of architecture specs: a preset (or another file) plus overrides.

A spec file may start from another one::

    base: fusemax                     # a preset name, or a path ending in .yaml/.yml
    name: arch_64x64_1MiB             # default: the file's stem
    description: FuseMax with a 64x64 2D array and a 1 MiB global buffer
    compute:
      - {name: pe2d, mesh: [64, 64]}  # matched by name: only mesh changes
      - {name: pe1d, mesh: [1, 64]}
    levels:
      - {name: GLB, capacity_bytes: 1048576}

Merge rule (applied field by field, the overriding file winning):

* ``base:`` names a preset (``fusemax``) or, when it ends in ``.yaml``/``.yml``, a file path
  relative to the directory of the file that names it. A base may itself have a base;
  a cycle of bases is refused, as is a chain deeper than :data:`MAX_BASE_DEPTH`.
* Mappings (``clock``, ``gpu``, ``pim``, a level, a level's ``dram``, ``ops_per_cycle``,
  ...) merge key by key, recursively: keys the override does not name keep the base value.
* The lists ``levels``, ``compute`` and ``networks`` are matched **by name, not by
  position**: an item whose ``name`` is in the base merges into that item (same rule); a
  new name is appended after the base's items (so a new level becomes the innermost);
  ``{name: X, remove: true}`` deletes base item ``X``. Each item of these lists needs a
  ``name``.
* Every other value (numbers, strings, ``null``, other lists such as ``mesh`` or
  ``sources``) replaces the base value whole.

The merged spec is validated like any other. An error names the file that set the bad
field (the override, or the base file it was inherited from).
"""

from __future__ import annotations

import copy
import re
from pathlib import Path
from typing import Any

from archsim.errors import ArchSpecError
from archsim.spec._yaml import load_yaml_mapping

__all__ = ["MAX_BASE_DEPTH", "NAMED_LISTS", "resolve_bases", "provenance_of"]

#: longest chain of ``base:`` files
MAX_BASE_DEPTH = 16
#: lists of named items, merged by name
NAMED_LISTS = ("levels", "compute", "networks")

Provenance = dict[tuple[str, ...], str]


def _preset_dir() -> Path:
    from archsim.spec._presets import PRESET_DIR

    return PRESET_DIR


def _base_file(ref: object, where: str, here: Path | None) -> Path:
    """The file a ``base:`` value names (``where`` = the file naming it, for errors)."""
    if not isinstance(ref, str) or not ref.strip():
        raise ArchSpecError(
            f"base must name a preset or a YAML file (in {where})",
            path="base",
            expected="a preset name (e.g. fusemax) or a path ending in .yaml",
            got=ref,
        )
    if ref.endswith((".yaml", ".yml")):
        path = Path(ref).expanduser()
        if not path.is_absolute():
            path = (here if here is not None else Path.cwd()) / path
        if not path.is_file():
            raise ArchSpecError(
                f"base file not found (in {where}; relative paths are relative to that file)",
                path="base",
                expected="an existing YAML file",
                got=str(path),
            )
        return path.resolve()
    preset = _preset_dir() / f"{ref}.yaml"
    if not preset.is_file():
        from archsim.spec._presets import list_presets

        raise ArchSpecError(
            f"no architecture preset {ref!r} to use as base (in {where})",
            path="base",
            expected="one of " + ", ".join(list_presets()) + " or a path ending in .yaml",
            got=ref,
        )
    return preset.resolve()


def _record(value: Any, prefix: tuple[str, ...], file: str, prov: Provenance) -> None:
    """Mark every leaf under ``prefix`` of ``value`` as set by ``file``."""
    for key in [k for k in prov if k[: len(prefix)] == prefix]:
        del prov[key]
    prov[prefix] = file
    if isinstance(value, dict):
        for key, sub in value.items():
            _record(sub, (*prefix, str(key)), file, prov)
    elif isinstance(value, list) and len(prefix) == 1 and prefix[0] in NAMED_LISTS:
        for item in value:
            if isinstance(item, dict) and isinstance(item.get("name"), str):
                _record(item, (*prefix, item["name"]), file, prov)


def _merge_dict(
    base: dict[str, Any],
    over: dict[str, Any],
    prefix: tuple[str, ...],
    file: str,
    prov: Provenance,
) -> dict[str, Any]:
    out = dict(base)
    for key, value in over.items():
        path = (*prefix, str(key))
        old = out.get(key)
        if not prefix and key in NAMED_LISTS and isinstance(value, list):
            if isinstance(old, list):
                out[key] = _merge_named(old, value, str(key), file, prov)
                continue
        elif isinstance(value, dict) and isinstance(old, dict):
            out[key] = _merge_dict(old, value, path, file, prov)
            continue
        out[key] = copy.deepcopy(value)
        _record(value, path, file, prov)
    return out


def _merge_named(
    base: list[Any], over: list[Any], group: str, file: str, prov: Provenance
) -> list[Any]:
    out = list(base)
    for i, item in enumerate(over):
        if not isinstance(item, dict) or not isinstance(item.get("name"), str):
            raise ArchSpecError(
                f"an item of {group} in a file with base: is matched by name, so it needs "
                f"one (in {file})",
                path=f"{group}[{i}].name",
                expected="a name (an existing one to change it, a new one to add an item)",
                got=item.get("name") if isinstance(item, dict) else item,
            )
        name = item["name"]
        names = [x.get("name") if isinstance(x, dict) else None for x in out]
        if item.get("remove") is True:
            if name not in names:
                raise ArchSpecError(
                    f"remove: true names an item the base does not have (in {file})",
                    path=f"{group}[{i}].name",
                    expected="one of " + ", ".join(str(n) for n in names),
                    got=name,
                )
            del out[names.index(name)]
            for key in [k for k in prov if k[:2] == (group, name)]:
                del prov[key]
            continue
        if name in names:
            idx = names.index(name)
            out[idx] = _merge_dict(out[idx], item, (group, name), file, prov)
        else:
            out.append(copy.deepcopy(item))
            _record(item, (group, name), file, prov)
    return out


def resolve_bases(
    data: dict[str, Any], source: str, here: Path | None, chain: tuple[Path, ...] = ()
) -> tuple[dict[str, Any], Provenance]:
    """The spec ``data`` (from ``source``, in directory ``here``) with its bases merged in.

    Returns the merged plain dict and, for every field path (list items by name), the
    file that set it. A ``data`` without ``base`` comes back unchanged.

    Raises
    ------
    ArchSpecError
        A base that cannot be found or read, a cycle or too long a chain of bases, or an
        item of a named list without a name.
    """
    if "base" not in data:
        prov: Provenance = {}
        _record(data, (), source, prov)
        return data, prov
    ref = data["base"]
    base_path = _base_file(ref, source, here)
    if base_path in chain:
        loop = " -> ".join(str(p) for p in (*chain, base_path))
        raise ArchSpecError(
            f"cycle of bases: {loop}",
            path="base",
            expected="a chain of bases that ends in a file without base:",
            got=ref,
        )
    if len(chain) >= MAX_BASE_DEPTH:
        raise ArchSpecError(
            f"more than {MAX_BASE_DEPTH} nested bases (in {source})",
            path="base",
            expected=f"at most {MAX_BASE_DEPTH} levels of base:",
            got=ref,
        )
    base_data = load_yaml_mapping(base_path)
    merged_base, prov = resolve_bases(
        base_data, str(base_path), base_path.parent, (*chain, base_path)
    )
    override = {k: v for k, v in data.items() if k != "base"}
    merged = _merge_dict(merged_base, override, (), source, prov)
    if "name" not in override:
        stem = Path(source).stem if source not in ("<text>", "<dict>") else None
        if stem:
            merged["name"] = re.sub(r"[^A-Za-z0-9_\-]", "_", stem)
            if not re.match(r"[A-Za-z_]", merged["name"]):
                merged["name"] = "_" + merged["name"]
            _record(merged["name"], ("name",), source, prov)
    return merged, prov


_TOKEN = re.compile(r"([^.\[\]]+)|\[(\d+)\]")


def provenance_of(error_path: str | None, merged: dict[str, Any], prov: Provenance) -> str | None:
    """The file that set the field at ``error_path`` (``levels[1].capacity_bytes``).

    Indices into the named lists are turned into names through ``merged``; the longest
    recorded prefix wins. None when the path is unknown.
    """
    if not error_path:
        return None
    key: list[str] = []
    node: Any = merged
    for name, index in _TOKEN.findall(error_path.split(":")[-1].strip()):
        if index:
            item = node[int(index)] if isinstance(node, list) and int(index) < len(node) else None
            if len(key) == 1 and key[0] in NAMED_LISTS and isinstance(item, dict):
                key.append(str(item.get("name")))
            else:
                key.append(index)
            node = item
        else:
            key.append(name)
            node = node.get(name) if isinstance(node, dict) else None
    for n in range(len(key), -1, -1):
        if tuple(key[:n]) in prov:
            return prov[tuple(key[:n])]
    return None
