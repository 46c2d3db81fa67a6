"""The one result type both evaluators return."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import TYPE_CHECKING, Literal

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["Result"]


def _freeze(m: Mapping) -> Mapping:
    return MappingProxyType(dict(m))


@dataclass(frozen=True)
class Result:
    """Cycles, time, energy, traffic and utilization of one program on one architecture.

    Attributes
    ----------
    cycles
        Total cycles (integer, rounded up) at ``clock_hz``.
    seconds
        ``cycles / clock_hz``.
    clock_hz
        Clock the cycles count (the program's, else the architecture's core clock), Hz.
    energy_j
        Total energy, J: the sum of ``energy_breakdown_j``.
    energy_breakdown_j
        ``"LEVEL.read"``, ``"LEVEL.write"`` (bytes x pJ/byte), ``"NETWORK.transfer"``,
        ``"UNIT.opkind"`` (ops x pJ/op), ``"static"`` (leakage + idle power x time), J.
    bytes_by_level
        Bytes read plus written at each storage level.
    bytes_by_tensor
        Bytes per ``"LEVEL.tensor"`` (read plus written).
    dram_bytes
        Bytes read plus written at the outermost level.
    utilization
        Compute unit -> fraction of its capacity doing useful work: useful busy cycles
        ``sum(ops / rate)`` / (instances x cycles), in [0, 1]. A unit busy the whole run with
        ``Compute.occupancy = 0.5`` (half its lanes idle, or systolic fill/drain) reports 0.5.
    area_mm2
        Area of the architecture, mm^2.
    engine
        ``"event"`` (:func:`archsim.simulate`) or ``"analytic"`` (:func:`archsim.estimate`).
    trace
        Simulated spans ``(component, track, name, start_cycles, dur_cycles, args)`` or None:
        ``track`` is a server instance or ``(slot, lane)``, ``args`` a dict (bytes, ops,
        level or unit, tile) or None; see ``docs/traces.md``.
    meta
        Provenance and engine notes (program name, events, shortcuts used, per-phase cycles).
    """

    cycles: int
    seconds: float
    clock_hz: float
    energy_j: float
    energy_breakdown_j: Mapping[str, float]
    bytes_by_level: Mapping[str, float]
    bytes_by_tensor: Mapping[str, float]
    dram_bytes: float
    utilization: Mapping[str, float]
    area_mm2: float
    engine: Literal["event", "analytic"]
    trace: tuple | None = None
    meta: Mapping[str, object] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for name in (
            "energy_breakdown_j",
            "bytes_by_level",
            "bytes_by_tensor",
            "utilization",
            "meta",
        ):
            object.__setattr__(self, name, _freeze(getattr(self, name)))

    def __hash__(self) -> int:
        return hash((self.cycles, self.energy_j, self.engine))

    @property
    def buffer_accesses(self) -> Mapping[str, Mapping[str, float]]:
        """Compute-side accesses per storage level, bytes: ``{"GLB": {"read": B, "write": B,
        "not_charged": B}}`` -- what the compute units read from and write to the level that
        holds each operand, counted per Einsum by the generic lowering (the part at register
        files is not in the program, so it is not in ``energy_breakdown_j``); empty for
        programs that do not report them (``meta["buffer_accesses"]``)."""
        acc = self.meta.get("buffer_accesses")
        return acc if isinstance(acc, Mapping) else {}

    def to_dict(self) -> dict[str, object]:
        """Plain JSON-ready dict (the trace is summarized by its length)."""
        return {
            "cycles": self.cycles,
            "seconds": self.seconds,
            "clock_hz": self.clock_hz,
            "energy_j": self.energy_j,
            "energy_breakdown_j": dict(self.energy_breakdown_j),
            "bytes_by_level": dict(self.bytes_by_level),
            "bytes_by_tensor": dict(self.bytes_by_tensor),
            "dram_bytes": self.dram_bytes,
            "utilization": dict(self.utilization),
            "area_mm2": self.area_mm2,
            "engine": self.engine,
            "trace_events": 0 if self.trace is None else len(self.trace),
            "meta": {k: _plain(v) for k, v in self.meta.items()},
        }

    def to_frame(self) -> pd.DataFrame:
        """Long format: one row per number, columns ``metric, component, action, value, unit``.

        ``metric`` is one of ``cycles, seconds, energy, bytes, bytes_tensor, dram_bytes,
        utilization, area``; ``component``/``action`` split the breakdown keys
        (``HBM`` / ``read``; for ``bytes_tensor`` the action is the tensor name).
        """
        rows: list[tuple[str, str, str, float, str]] = [
            ("cycles", "total", "", float(self.cycles), "cycles"),
            ("seconds", "total", "", self.seconds, "s"),
            ("energy", "total", "", self.energy_j, "J"),
            ("dram_bytes", "total", "", self.dram_bytes, "B"),
            ("area", "total", "", self.area_mm2, "mm2"),
        ]
        for key, value in self.energy_breakdown_j.items():
            comp, _, action = key.rpartition(".")
            rows.append(("energy", comp or key, action if comp else "", value, "J"))
        for lvl, value in self.bytes_by_level.items():
            rows.append(("bytes", lvl, "read+write", value, "B"))
        for key, value in self.bytes_by_tensor.items():
            lvl, _, tensor = key.partition(".")
            rows.append(("bytes_tensor", lvl, tensor, value, "B"))
        for unit, value in self.utilization.items():
            rows.append(("utilization", unit, "busy", value, "fraction"))
        import pandas as pd  # only here: pandas costs ~0.2 s of every command's start-up

        frame = pd.DataFrame(rows, columns=["metric", "component", "action", "value", "unit"])
        frame["engine"] = self.engine
        return frame


def _plain(v: object) -> object:
    if isinstance(v, Mapping):
        return {str(k): _plain(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [_plain(x) for x in v]
    if hasattr(v, "item") and callable(v.item):
        return v.item()
    return v
