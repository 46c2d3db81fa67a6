"""Einsums outside a fused core, each run as its own generic kernel on a spatial array.

A fused attention recipe maps the score-to-output core of a cascade; the cascade may also
hold projections before it (CCA's Q/K/V, MLA's query absorption, linear attention's state
path) and an output projection after it. Each of those runs as one fusion group of its own
(:func:`mappings._fit.fit_group`: DRAM plus the first on-chip level, contractions on the
matrix unit, everything else on the vector unit) through the generic lowering, so its cost
is counted from its Einsum like any other.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from mappings._fit import fit_group, pick_units
from mappings._lower import lower_group
from mappings._roles import is_contraction

if TYPE_CHECKING:
    from archsim import Architecture, Phase

__all__ = ["einsum_phases"]


def einsum_phases(
    workload: object, arch: Architecture, names: Sequence[str], *, prefix: str
) -> list[Phase]:
    """One phase per Einsum in ``names`` (run in order, each after the previous phase)."""
    if not names:
        return []
    big, small = pick_units(arch)
    by_name = {e.name: e for e in workload.cascade.einsums}  # type: ignore[attr-defined]
    out = []
    for name in names:
        unit = big if is_contraction(by_name[name]) else small
        group = fit_group(workload, arch, name, unit)  # type: ignore[arg-type]
        out.append(lower_group(workload, group, arch, f"{prefix}:{name}"))  # type: ignore[arg-type]
    return out
