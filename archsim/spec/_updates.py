"""Dotted-path updates of an Architecture (the engine of ``Architecture.with_updates``).

The spec is dumped to a plain dict, derived values are removed (so they are recomputed
from their inputs), the updates are applied by path, and the caller re-validates.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel

from archsim.errors import ArchSpecError
from archsim.spec._base import _inner_model

if TYPE_CHECKING:
    from archsim.spec._arch import Architecture
    from archsim.spec._components import ComputeUnit, StorageLevel

__all__ = ["apply_updates", "strip_derived"]


def strip_derived(arch: Architecture, raw: dict[str, Any]) -> dict[str, str]:
    """Remove derived values from ``raw``; return {canonical path: what it derives from}."""
    derived: dict[str, str] = {}
    for lvl, d in zip(arch.levels, raw["levels"], strict=True):
        if lvl.mesh_like is not None:
            d.pop("mesh", None)
            derived[f"levels.{lvl.name}.mesh"] = f"compute.{lvl.mesh_like}.mesh (mesh_like)"
        _strip_per_pe(lvl, d, f"levels.{lvl.name}", derived)
        if lvl.area_mm2_per_mib is not None:
            # derived from area_mm2_per_mib x capacity; an update of area_mm2 stays allowed
            # (sweeps written before area followed capacity set both) and must agree with it
            d.pop("area_mm2", None)
        _strip_instances(lvl, d, f"levels.{lvl.name}", derived)
        if (
            lvl.read_bw_bytes_per_s is not None
            and lvl.write_bw_bytes_per_s is None
            and lvl.write_bw_bytes_per_cycle == lvl.read_bw_bytes_per_cycle
        ):
            d.pop("write_bw_bytes_per_cycle", None)  # defaults to the (re-derived) read figure
        for kind in ("read", "write"):
            if getattr(lvl, f"{kind}_bw_bytes_per_s") is not None:
                d.pop(f"{kind}_bw_bytes_per_cycle", None)
                derived[f"levels.{lvl.name}.{kind}_bw_bytes_per_cycle"] = (
                    f"levels.{lvl.name}.{kind}_bw_bytes_per_s / clock.core_hz"
                )
    for unit, d in zip(arch.compute, raw["compute"], strict=True):
        _strip_per_pe(unit, d, f"compute.{unit.name}", derived)
        for key in unit.ops_per_cycle_per_pe or {}:
            d["ops_per_cycle"].pop(key, None)
            derived[f"compute.{unit.name}.ops_per_cycle.{key}"] = (
                f"compute.{unit.name}.ops_per_cycle_per_pe.{key} x mesh"
            )
        _strip_instances(unit, d, f"compute.{unit.name}", derived)
    if arch.gpu is not None:
        names = {lvl.name for lvl in arch.levels}
        for attr, level in (
            ("smem_bytes_per_sm", arch.gpu.smem_level),
            ("l2_bytes", arch.gpu.l2_level),
        ):
            if level in names:
                raw["gpu"].pop(attr, None)
                derived[f"gpu.{attr}"] = f"levels.{level}.capacity_bytes"
    return derived


def _strip_per_pe(
    item: StorageLevel | ComputeUnit, d: dict[str, Any], path: str, derived: dict[str, str]
) -> None:
    """Drop the whole-instance fields of ``item`` (at ``path``) given per PE."""
    for total, per_pe in item.PER_PE_FIELDS:
        if getattr(item, per_pe) is not None:
            d.pop(total, None)
            derived[f"{path}.{total}"] = f"{path}.{per_pe} x mesh"


def _strip_instances(
    item: StorageLevel | ComputeUnit, d: dict[str, Any], path: str, derived: dict[str, str]
) -> None:
    """Drop ``instances`` of ``item`` (at ``path``) when ``per_sm`` / ``per_pim_unit`` set it."""
    if item.per_sm:
        d.pop("instances", None)
        derived[f"{path}.instances"] = "gpu.sms (per_sm)"
    if item.per_pim_unit:
        d.pop("instances", None)
        derived[f"{path}.instances"] = "dram channels x pim.units_per_channel"


def _unknown(path: str, what: str, allowed: list[str], got: object) -> ArchSpecError:
    return ArchSpecError(
        f"unknown {what} in update path {path!r}",
        path=path,
        expected="one of: " + ", ".join(allowed),
        got=got,
    )


def _index(items: list[Any], seg: str, path: str) -> int:
    names = [x.get("name") for x in items]
    if seg in names:
        return names.index(seg)
    if seg.lstrip("-").isdigit() and -len(items) <= int(seg) < len(items):
        return int(seg) % len(items)
    raise _unknown(path, "component", [str(n) for n in names], seg)


def _set_one(
    raw: dict[str, Any], path: str, value: object, root: type[BaseModel], derived: dict[str, str]
) -> None:
    segs = path.split(".")
    cur: Any = raw
    model: type[BaseModel] | None = root
    canon: list[str] = []
    for k, seg in enumerate(segs):
        last = k == len(segs) - 1
        if isinstance(cur, list):
            idx = _index(cur, seg, path)
            canon.append(str(cur[idx].get("name", idx)))
            if last:
                cur[idx] = value
                return
            cur = cur[idx]
            continue
        if not isinstance(cur, dict):
            raise _unknown(path, "key (the value above it is not a mapping)", [], seg)
        if model is not None:
            if seg not in model.model_fields:
                raise _unknown(path, f"key of {model.__name__}", sorted(model.model_fields), seg)
            inner = _inner_model(model.model_fields[seg].annotation)
        else:
            inner = None
        canon.append(seg)
        if last:
            key = ".".join(canon)
            if key in derived:
                raise ArchSpecError(
                    f"{key} is derived from {derived[key]}; update that instead",
                    path=path,
                    expected="an update of the source value",
                    got=value,
                )
            cur[seg] = value
            return
        if cur.get(seg) is None:
            if inner is not None:
                raise ArchSpecError(
                    f"{'.'.join(canon)} is not set in this architecture, so "
                    f"{path!r} cannot be updated",
                    path=path,
                    expected=f"an architecture with {seg}",
                    got=None,
                )
            cur[seg] = {}
        cur = cur[seg]
        model = inner


def apply_updates(arch: Architecture, updates: Mapping[str, object]) -> dict[str, Any]:
    """The plain-dict spec of ``arch`` with ``updates`` (dotted path -> value) applied.

    Raises
    ------
    ArchSpecError
        For an unknown path segment (listing the allowed ones) or an update of a derived
        value (naming the value it derives from).
    """
    if not isinstance(updates, Mapping):
        raise ArchSpecError(
            "updates must be a mapping of dotted path -> value",
            expected="a mapping",
            got=type(updates).__name__,
        )
    raw = arch.to_dict(derived=True)
    derived = strip_derived(arch, raw)
    for path, value in updates.items():
        if not isinstance(path, str) or not path:
            raise ArchSpecError(
                "an update path must be a non-empty string",
                expected="e.g. levels.GLB.capacity_bytes",
                got=path,
            )
        _set_one(raw, path, value, type(arch), derived)
    return raw
