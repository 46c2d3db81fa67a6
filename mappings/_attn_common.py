"""Shared helpers of the spatial attention dataflows (``unfused``, ``flat``, ``fusemax``)."""

from __future__ import annotations

from collections.abc import Mapping as AbcMapping
from typing import TYPE_CHECKING

from archsim.errors import InfeasibleMappingError, MappingError
from mappings._passes import cascade_passes

if TYPE_CHECKING:
    from archsim import Architecture, ComputeUnit, StorageLevel, TileProgram
    from workloads import Cascade, Workload

__all__ = [
    "pos_int",
    "passes_for",
    "glb_level",
    "dram_tensor_bytes",
    "rf_level",
]


def pos_int(knobs: AbcMapping[str, object], name: str, default: int) -> int:
    """Knob ``name`` as an int >= 1 (``default`` when absent); MappingError otherwise."""
    v = knobs.get(name, default)
    try:
        iv = -1 if isinstance(v, bool) else int(v)  # type: ignore[call-overload]  # knob: user value, int() checks it
    except (TypeError, ValueError, OverflowError):
        iv = -1
    if iv < 1 or iv > 2**40:
        raise MappingError(
            "knob must be a positive integer",
            path=f"knobs.{name}",
            expected="int in [1, 2^40]",
            got=v,
        )
    return iv


def passes_for(workload: Workload) -> tuple[int, str]:
    """Passes class of the workload's cascade (3 when it has no recognisable structure)."""
    try:
        return cascade_passes(workload.cascade)
    except Exception:  # noqa: BLE001 — a cascade without the expected structure
        return 3, "3-pass stable softmax"


def glb_level(arch: Architecture) -> StorageLevel:
    """The first on-chip SRAM/cache level (the global buffer)."""
    on_chip = [lv for lv in arch.levels[1:] if lv.kind in ("sram", "cache")]
    if not on_chip:
        raise InfeasibleMappingError(f"{arch.name}: attention dataflows need an on-chip buffer")
    return on_chip[0]


def rf_level(arch: Architecture, unit: ComputeUnit, glb: str) -> str | None:
    """The storage level a compute unit reads from, if it is a level other than ``glb``."""
    name = getattr(unit, "level", None)
    if name is None or name == glb or name not in {lv.name for lv in arch.levels}:
        return None
    return str(name)


def dram_tensor_bytes(prog: TileProgram, dram: str) -> dict[str, float]:
    """DRAM bytes per tensor of a program's body transfers (reads + writes)."""
    out: dict[str, float] = {}
    for ph in prog.phases:
        n = ph.total_trips
        for t in (*ph.body.loads, *ph.body.stores):
            if dram in (t.src, t.dst):
                out[t.tensor] = out.get(t.tensor, 0.0) + t.bytes * n
    return out


def require_one_pass(cascade: Cascade, dataflow: str) -> None:
    """Raise :class:`MappingError` unless ``cascade`` makes one pass over its streamed rank.

    A fused streaming dataflow visits each key tile once; a cascade whose softmax needs the
    whole row's max (or sum) before it can use a score needs more passes than it makes.
    """
    n, why = cascade_passes(cascade)
    if n > 1:
        raise MappingError(
            f"{dataflow} streams the keys once, but cascade "
            f"{getattr(cascade, 'name', '?')!r} needs {n} passes ({why})",
            path="workload.cascade",
            expected="a 1-pass cascade (running state along the key's outer rank), "
            "e.g. --set passes=1, or the unfused/flat dataflows",
            got=f"{n} passes",
        )


def require_kind(arch: Architecture, kind: str, dataflow: str, instead: str) -> None:
    """Raise :class:`MappingError` unless ``arch.kind == kind`` (``instead``: what to use)."""
    if arch.kind != kind:
        raise MappingError(
            f"{dataflow} is a {kind} dataflow",
            path="arch",
            expected=f"a {kind} architecture (or, on {arch.kind}: {instead})",
            got=f"{arch.name} ({arch.kind})",
        )
