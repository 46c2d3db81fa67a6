"""Derived values an Architecture fills in before validation (so sweeps stay consistent).

* ``per_sm: true`` on a level/unit: ``instances`` = ``gpu.sms``.
* ``mesh_like: UNIT`` on a level: ``mesh`` = that compute unit's ``mesh``.
* ``gpu.smem_bytes_per_sm`` / ``gpu.l2_bytes`` omitted: taken from the levels named by
  ``gpu.smem_level`` (capacity per instance) / ``gpu.l2_level`` (capacity x instances).

Each function works on the plain-dict form of the spec and reports conflicts with
:func:`archsim.spec._base.fail` (so the error carries the field's path).
"""

from __future__ import annotations

from typing import Any

from archsim.spec._base import close, fail
from archsim.spec._types import INT_MAX

__all__ = [
    "inject_per_sm",
    "inject_mesh_like",
    "inject_gpu_sizes",
    "inject_per_s",
    "inject_per_pim_unit",
]


def _items(data: dict[str, Any], group: str) -> list[tuple[int, dict[str, Any]]]:
    items = data.get(group)
    if not isinstance(items, list):
        return []
    return [(i, x) for i, x in enumerate(items) if isinstance(x, dict)]


def _set_instances(data: dict[str, Any], flag: str, count: int, rule: str) -> None:
    """Set ``instances`` of the levels/units marked ``flag: true`` to ``count``.

    ``rule`` names where ``count`` comes from; a different ``instances`` given is an error.
    """
    for group in ("levels", "compute"):
        for i, item in _items(data, group):
            if item.get(flag) is not True:
                continue
            given = item.get("instances")
            if given is not None and given != count:
                fail(
                    f"{group}[{i}].instances",
                    f"{item.get('name')!r} is {flag}, so its instances must equal {rule}",
                    expected=count,
                    got=given,
                )
            item["instances"] = count


def inject_per_sm(data: dict[str, Any]) -> None:
    """Set ``instances`` of ``per_sm`` levels/units to ``gpu.sms`` (conflict = error)."""
    gpu = data.get("gpu")
    sms = gpu.get("sms") if isinstance(gpu, dict) else None
    if not isinstance(sms, int) or isinstance(sms, bool) or not 1 <= sms <= INT_MAX:
        return
    _set_instances(data, "per_sm", sms, "gpu.sms")


def inject_mesh_like(data: dict[str, Any]) -> None:
    """Copy a compute unit's ``mesh`` into the levels that name it in ``mesh_like``."""
    units = {u.get("name"): u for _, u in _items(data, "compute") if isinstance(u.get("name"), str)}
    for i, level in _items(data, "levels"):
        target = level.get("mesh_like")
        if target is None:
            continue
        if not isinstance(target, str) or target not in units or units[target].get("mesh") is None:
            with_mesh = [str(n) for n, u in units.items() if u.get("mesh") is not None]
            fail(
                f"levels[{i}].mesh_like",
                f"level {level.get('name')!r}: mesh_like must name a compute unit with a mesh",
                expected="one of " + (", ".join(with_mesh) or "(no unit has a mesh)"),
                got=target,
            )
        mesh = units[target]["mesh"]
        if not isinstance(mesh, list | tuple):
            continue  # the unit's own validation reports its malformed mesh
        mesh = list(mesh)
        given = level.get("mesh")
        if given is not None and (not isinstance(given, list | tuple) or list(given) != mesh):
            fail(
                f"levels[{i}].mesh",
                f"level {level.get('name')!r} has mesh_like {target!r}, whose mesh differs",
                expected=mesh,
                got=given,
            )
        level["mesh"] = mesh


def inject_gpu_sizes(data: dict[str, Any]) -> None:
    """Fill ``gpu.smem_bytes_per_sm`` and ``gpu.l2_bytes`` from their levels (or check them)."""
    gpu = data.get("gpu")
    if not isinstance(gpu, dict):
        return
    levels = {
        lvl["name"]: lvl for _, lvl in _items(data, "levels") if isinstance(lvl.get("name"), str)
    }
    for attr, level_key, default, whole in (
        ("smem_bytes_per_sm", "smem_level", "SMEM", False),
        ("l2_bytes", "l2_level", "L2", True),
    ):
        name = gpu.get(level_key, default)
        level = levels.get(name) if isinstance(name, str) else None
        if level is None:
            continue
        try:
            value = float(level["capacity_bytes"]) * (
                int(level.get("instances", 1)) if whole else 1
            )
            given = None if gpu.get(attr) is None else float(gpu[attr])
        except (KeyError, TypeError, ValueError, OverflowError):
            continue  # the level's / gpu's own validation reports it
        if given is not None and not close(given, value):
            fail(
                f"gpu.{attr}",
                f"disagrees with level {level.get('name')!r}",
                expected=value,
                got=given,
            )
        gpu[attr] = value


def inject_per_s(data: dict[str, Any]) -> None:
    """Derive ``*_bw_bytes_per_cycle`` of levels from ``*_bw_bytes_per_s`` / ``clock.core_hz``."""
    clock = data.get("clock")
    try:
        hz = float(clock["core_hz"]) if isinstance(clock, dict) else None
    except (KeyError, TypeError, ValueError, OverflowError):
        hz = None
    if hz is None or hz <= 0:
        return
    for i, level in _items(data, "levels"):
        for kind in ("read", "write"):
            per_s = level.get(f"{kind}_bw_bytes_per_s")
            if per_s is None:
                continue
            try:
                value = float(per_s) / hz
            except (TypeError, ValueError, OverflowError):
                continue  # the level's own validation reports it
            key = f"{kind}_bw_bytes_per_cycle"
            given = level.get(key)
            if given is not None:
                try:
                    agree = close(float(given), value)
                except (TypeError, ValueError, OverflowError):
                    continue
                if not agree:
                    fail(
                        f"levels[{i}].{key}",
                        f"disagrees with {kind}_bw_bytes_per_s / clock.core_hz",
                        expected=value,
                        got=given,
                    )
            level[key] = value


def inject_per_pim_unit(data: dict[str, Any]) -> None:
    """Set ``instances`` of ``per_pim_unit`` components to channels x ``pim.units_per_channel``."""
    pim = data.get("pim")
    items = _items(data, "levels")
    timing = items[0][1].get("dram") if items and items[0][0] == 0 else None
    try:
        per, channels = pim["units_per_channel"], timing["channels"]  # type: ignore[index]
        units = int(per) * int(channels)
    except (KeyError, TypeError, ValueError, OverflowError):
        return  # missing pieces are reported by the Architecture checks
    if isinstance(per, bool) or isinstance(channels, bool) or not 1 <= units <= INT_MAX:
        return  # the pim / dram field validators report the bad count
    _set_instances(data, "per_pim_unit", units, "dram channels x pim.units_per_channel")
