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
from mappings._mapping import FusionGroup
from mappings._roles import is_contraction

if TYPE_CHECKING:
    from archsim import Architecture, Phase
    from workloads import Workload

__all__ = ["einsum_phases", "own_group"]


def own_group(workload: Workload, arch: Architecture, name: str) -> FusionGroup:
    """Einsum ``name`` as its own fusion group: contractions on the matrix unit, everything
    else on the vector unit (:func:`mappings._fit.fit_group`)."""
    big, small = pick_units(arch)
    e = next(x for x in workload.cascade.einsums if x.name == name)
    return fit_group(workload, arch, name, big if is_contraction(e) else small)


def einsum_phases(
    workload: Workload, arch: Architecture, names: Sequence[str], *, prefix: str
) -> list[Phase]:
    """One phase per Einsum in ``names`` (run in order, each after the previous phase)."""
    return [
        lower_group(workload, own_group(workload, arch, name), arch, f"{prefix}:{name}")
        for name in names
    ]
