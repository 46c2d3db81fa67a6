"""Where one workload starts beating another: the crossover length of two cascades.

``crossover(arch, "linear", "mha", rank_param="S")`` simulates both workloads (each with
``auto`` or a named dataflow) at doubling lengths and reports the first length at which the
first is faster and stays faster at every longer length tried. Both are whatever cascades the
user names, so this answers "beyond what length does my variant pay off on this machine".
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from archsim.errors import MappingError

if TYPE_CHECKING:
    from archsim import Architecture

__all__ = ["Crossover", "crossover"]

_LENGTHS = tuple(2**k for k in range(8, 18))  # default sequence lengths, 256 .. 128 Ki


@dataclass(frozen=True)
class Crossover:
    """Seconds of both workloads per length and the crossover length (None: never)."""

    lengths: tuple[int, ...]
    seconds_a: tuple[float, ...]
    seconds_b: tuple[float, ...]
    dataflows: tuple[str, str]
    length: int | None

    def rows(self) -> list[dict[str, object]]:
        """One dict per length (``length, a_s, b_s, a_over_b``)."""
        return [
            {"length": n, "a_s": a, "b_s": b, "a_over_b": a / b}
            for n, a, b in zip(self.lengths, self.seconds_a, self.seconds_b, strict=True)
        ]


def crossover(
    arch: str | Architecture,
    a: str,
    b: str,
    *,
    params: Mapping[str, object] | None = None,
    length_param: str = "S",
    lengths: Sequence[int] = _LENGTHS,
    dataflow_a: str = "auto",
    dataflow_b: str = "auto",
    engine: Literal["event", "analytic"] = "analytic",
) -> Crossover:
    """Simulate ``a`` and ``b`` at each of ``lengths`` (set as ``length_param``).

    Raises
    ------
    MappingError
        Fewer than two lengths, or either workload cannot be mapped.
    """
    from mappings._api import resolve_arch, simulate_workload

    if len(lengths) < 2:
        raise MappingError("need at least two lengths", path="lengths", got=list(lengths))
    arc = resolve_arch(arch)
    ta, tb, flows = [], [], ("", "")
    for n in lengths:
        p = {**dict(params or {}), length_param: int(n)}
        ra = simulate_workload(arc, a, params=p, dataflow=dataflow_a, engine=engine)
        rb = simulate_workload(arc, b, params=p, dataflow=dataflow_b, engine=engine)
        ta.append(float(ra.result.seconds))
        tb.append(float(rb.result.seconds))
        flows = (ra.dataflow, rb.dataflow)
    length = None
    for i in range(len(lengths)):
        if all(x < y for x, y in zip(ta[i:], tb[i:], strict=True)):
            length = int(lengths[i])
            break
    return Crossover(tuple(int(n) for n in lengths), tuple(ta), tuple(tb), flows, length)
