"""Interconnect: a multi-device system description and the closed forms of collectives.

A :class:`System` (YAML, see ``models/systems/*.yaml``) names the device architecture, how
many devices there are, the link bandwidth *per device per direction*, the per-step
latency, the topology (``switch``: every device reaches every other at full link bandwidth
through a crossbar such as NVSwitch; ``ring``: each device reaches its two neighbours) and
the collective algorithm.

Closed forms (``p`` devices, ``n`` bytes, ``beta`` link bandwidth per direction B/s,
``alpha`` per-step latency s; Thakur, Rabenseifner & Gropp, "Optimization of Collective
Communication Operations in MPICH", IJHPCA 19(1), 2005, Sec. 4; the ring all-reduce is
Patarasuk & Yuan, "Bandwidth optimal all-reduce algorithms for clusters of workstations",
JPDC 69(2), 2009, and the NCCL performance notes' ``busbw = algbw * 2(p-1)/p``):

- ring all-reduce: ``2(p-1) alpha + 2 (p-1)/p * n / beta``;
- ring all-gather and ring reduce-scatter: ``(p-1) alpha + (p-1)/p * n / beta``;
- tree all-reduce (binomial-tree reduce, then binomial-tree broadcast; switch only):
  ``2 ceil(log2 p) (alpha + n / beta)``;
- tree all-gather (recursive doubling) and reduce-scatter (recursive halving; switch only):
  ``ceil(log2 p) alpha + (p-1)/p * n / beta``.

- all-to-all (pairwise exchange on a switch: ``p - 1`` rounds, in each every device sends
  its ``n / p`` share to one peer and receives one): ``(p-1) (alpha + n / (p beta))``; ``n``
  is all a device sends, its own share included. On a ``ring`` topology an all-to-all is
  refused (messages would cross several hops; not modelled);
- one ring step (ring attention passes a K/V block to its neighbour while it computes):
  ``alpha + n / beta`` (:func:`ring_step_time`).

``n`` is the buffer each device holds for all-reduce, the gathered result for all-gather
and the input for reduce-scatter. The arithmetic of the reduction itself is not charged
(it runs at the device's memory bandwidth, far above a link's), nor are in-switch
reductions (NVLink SHARP): both are stated limits of the model. ``auto`` takes the faster
of the two algorithms on a switch and the ring on a ring.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from models._spec import ModelError

__all__ = [
    "System",
    "load_system",
    "list_systems",
    "default_system",
    "collective_time",
    "collective_bytes_sent",
    "ring_step_time",
    "COLLECTIVES",
]

COLLECTIVES = ("all_reduce", "all_gather", "reduce_scatter", "all_to_all")
_DIR = Path(__file__).parent / "systems"


@dataclass(frozen=True)
class System:
    """Devices joined by links.

    Attributes
    ----------
    name
        System name.
    device
        Architecture preset name or YAML path (relative paths are against the system file).
    count
        Devices.
    link_bw_bytes_per_s
        Link bandwidth per device per direction, B/s.
    latency_s
        Latency of one step of a collective (one hop plus software), s.
    topology
        ``switch`` or ``ring``.
    algorithm
        ``ring``, ``tree`` or ``auto``.
    link_energy_pj_per_bit
        Energy per bit sent over a link, pJ (0 = not modelled).
    source
        Where the numbers come from.
    """

    name: str
    device: str
    count: int
    link_bw_bytes_per_s: float
    latency_s: float
    topology: str = "switch"
    algorithm: str = "ring"
    link_energy_pj_per_bit: float = 0.0
    source: str = ""

    def __post_init__(self) -> None:
        def bad(field: str, expected: str, got: object) -> ModelError:
            return ModelError(
                "bad system field", path=f"{self.name}.{field}", expected=expected, got=got
            )

        if isinstance(self.count, bool) or not isinstance(self.count, int) or self.count < 1:
            raise bad("count", "a positive integer", self.count)
        for f in ("link_bw_bytes_per_s",):
            v = getattr(self, f)
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not v > 0:
                raise bad("link.bandwidth_GBps", "a positive number", v)
        if (
            isinstance(self.latency_s, bool)
            or not isinstance(self.latency_s, (int, float))
            or (self.latency_s < 0)
        ):
            raise bad("link.latency_us", "a number >= 0", self.latency_s)
        if self.topology not in ("switch", "ring"):
            raise bad("topology", "switch or ring", self.topology)
        if self.algorithm not in ("ring", "tree", "auto"):
            raise bad("algorithm", "ring, tree or auto", self.algorithm)
        if self.algorithm == "tree" and self.topology == "ring":
            raise bad(
                "algorithm", "ring or auto on a ring topology (a tree needs a switch)", "tree"
            )

    def with_count(self, count: int) -> System:
        """The same system with ``count`` devices."""
        from dataclasses import replace

        return replace(self, count=count)


def _num(d: dict[str, Any], key: str, where: str, default: float | None = None) -> float:
    v = d.get(key, default)
    if v is None:
        raise ModelError("missing field", path=f"{where}.{key}", expected="a number", got=None)
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        raise ModelError("bad field", path=f"{where}.{key}", expected="a number", got=v)
    return float(v)


def _only(data: dict[str, Any], known: set[str], where: str) -> None:
    """Refuse a field of ``data`` outside ``known``, naming it and the allowed ones."""
    extra = sorted(set(data) - known)
    if extra:
        raise ModelError(
            "unknown field",
            path=f"{where}.{extra[0]}",
            expected=f"one of {sorted(known)}",
            got=extra[0],
        )


def system_from_dict(
    data: dict[str, Any], *, where: str = "system", base: Path | None = None
) -> System:
    """A :class:`System` from the YAML mapping (see ``models/systems/dgx-h100.yaml``)."""
    if not isinstance(data, dict):
        raise ModelError(
            "not a mapping", path=where, expected="a YAML mapping", got=type(data).__name__
        )
    _only(data, {"name", "device", "count", "link", "topology", "algorithm", "source"}, where)
    link = data.get("link")
    if not isinstance(link, dict):
        raise ModelError(
            "missing link",
            path=f"{where}.link",
            expected="a mapping with bandwidth_GBps, latency_us",
            got=link,
        )
    _only(link, {"bandwidth_GBps", "latency_us", "energy_pj_per_bit"}, f"{where}.link")
    device = data.get("device")
    if not isinstance(device, str) or not device:
        raise ModelError(
            "missing device",
            path=f"{where}.device",
            expected="an architecture preset name or YAML path",
            got=device,
        )
    if base is not None and device.endswith((".yaml", ".yml")) and not Path(device).is_absolute():
        device = str((base / device).resolve())
    count = data.get("count", 1)
    return System(
        name=str(data.get("name", where)),
        device=device,
        count=count,
        link_bw_bytes_per_s=_num(link, "bandwidth_GBps", f"{where}.link") * 1e9,
        latency_s=_num(link, "latency_us", f"{where}.link") * 1e-6,
        topology=str(data.get("topology", "switch")),
        algorithm=str(data.get("algorithm", "ring")),
        link_energy_pj_per_bit=_num(link, "energy_pj_per_bit", f"{where}.link", 0.0),
        source=str(data.get("source", "")),
    )


def list_systems() -> list[str]:
    """Names of the bundled system files (``models/systems/NAME.yaml``)."""
    return sorted(p.stem for p in _DIR.glob("*.yaml"))


def load_system(ref: str | Path) -> System:
    """A :class:`System` from a bundled name (``dgx-h100``) or a YAML path."""
    import yaml

    path = Path(ref)
    if not path.is_file():
        cand = _DIR / f"{ref}.yaml"
        if not cand.is_file():
            raise ModelError(
                "unknown system",
                path="system",
                expected=f"a YAML file or one of {list_systems()}",
                got=str(ref),
            )
        path = cand
    try:
        data = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        raise ModelError(
            f"not YAML ({exc})", path=path.name, expected="a system YAML", got=path.name
        ) from None
    return system_from_dict(data, where=path.stem, base=path.parent)


#: The bundled system of each GPU preset (used by ``--tp N`` without ``--system``).
_DEFAULT_SYSTEMS = {"a100": "dgx-a100", "h100": "dgx-h100", "h200": "hgx-h200"}


def default_system(arch: str, count: int) -> System:
    """The bundled system of preset ``arch`` with ``count`` devices (error if it has none)."""
    name = _DEFAULT_SYSTEMS.get(arch)
    if name is None:
        raise ModelError(
            "no interconnect known for this architecture; describe one with --system FILE",
            path="system",
            expected=f"a system YAML (bundled: {list_systems()}) or an arch of "
            f"{sorted(_DEFAULT_SYSTEMS)}",
            got=arch,
        )
    return load_system(name).with_count(count)


def _steps_log(p: int) -> int:
    return math.ceil(math.log2(p)) if p > 1 else 0


def _time(kind: str, algo: str, p: int, n: float, alpha: float, beta: float) -> float:
    if p == 1 or n == 0:
        return 0.0
    frac = (p - 1) / p
    if kind == "all_to_all":  # pairwise exchange, whatever the system's algorithm
        return (p - 1) * (alpha + n / (p * beta))
    if algo == "ring":
        if kind == "all_reduce":
            return 2 * (p - 1) * alpha + 2 * frac * n / beta
        return (p - 1) * alpha + frac * n / beta
    lg = _steps_log(p)
    if kind == "all_reduce":
        return 2 * lg * (alpha + n / beta)
    return lg * alpha + frac * n / beta


def collective_time(
    kind: str, nbytes: float, system: System, *, devices: int | None = None
) -> tuple[float, str]:
    """Seconds of collective ``kind`` over ``nbytes`` on ``devices`` (default: all) of
    ``system``, and the algorithm used (see the module doc for the formulas)."""
    if kind not in COLLECTIVES:
        raise ModelError(
            "unknown collective",
            path="collective",
            expected=f"one of {list(COLLECTIVES)}",
            got=kind,
        )
    p = system.count if devices is None else devices
    a, b = system.latency_s, system.link_bw_bytes_per_s
    if kind == "all_to_all":
        if system.topology != "switch" and p > 1:
            raise ModelError(
                "an all-to-all needs a switch (on a ring its messages cross several hops; "
                "not modelled)",
                path=f"{system.name}.topology",
                expected="switch",
                got=system.topology,
            )
        return _time(kind, "pairwise", p, nbytes, a, b), "pairwise"
    if system.algorithm == "auto" and system.topology == "switch":
        ring, tree = _time(kind, "ring", p, nbytes, a, b), _time(kind, "tree", p, nbytes, a, b)
        return (ring, "ring") if ring <= tree else (tree, "tree")
    algo = "ring" if system.algorithm == "auto" else system.algorithm
    return _time(kind, algo, p, nbytes, a, b), algo


def ring_step_time(nbytes: float, system: System) -> float:
    """Seconds to pass ``nbytes`` to the next device of a ring: ``alpha + n / beta`` (every
    device sends one block and receives one at once, one link direction each)."""
    return system.latency_s + nbytes / system.link_bw_bytes_per_s


def collective_bytes_sent(kind: str, nbytes: float, p: int) -> float:
    """Bytes one device sends, on average, during the collective (for link energy).

    The same for both algorithms: an all-reduce moves ``(p-1) n`` bytes in its reduce half
    and as many in its broadcast/gather half, spread over ``p`` devices; an all-gather or a
    reduce-scatter moves half that; an all-to-all sends all but its own share.
    """
    if p == 1:
        return 0.0
    return (2 if kind == "all_reduce" else 1) * (p - 1) / p * nbytes
