"""A mapping's split tiles applied to its workload: ``splits: {m: 256}`` sets ``M0 = 256``.

A cascade that writes ``m -> m1, m0 : M0`` leaves the inner extent ``M0`` to the mapping (the
key tile the running state advances by). :func:`apply_splits` returns the workload with the
mapping's choice in the cascade's parameters, so the counts, rank sizes and every later stage
see the split the mapping chose.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping as AbcMapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

from archsim.errors import MappingError
from workloads import MAX_EXTENT

if TYPE_CHECKING:
    from workloads import Cascade, CascadeCounts, Workload

__all__ = ["SplitWorkload", "apply_splits"]


@dataclass(frozen=True)
class SplitWorkload:
    """A workload whose cascade carries a mapping's split tiles in its parameters."""

    name: str
    cascade: Cascade
    params: dict[str, object]
    sizes: dict[str, int]

    def counts(self) -> CascadeCounts:
        """MACs, ops and bytes (``workloads.count``)."""
        from mappings._counts import cached_count

        return cached_count(self.cascade)


def apply_splits(workload: Workload, splits: AbcMapping[str, int]) -> Workload:
    """``workload`` with each split's inner extent set to ``splits[rank]``.

    Keys name the split rank (``m``) or its inner rank (``m0``).

    Raises
    ------
    MappingError
        A key that names no split of the cascade, a split whose tile is a fixed number in
        the cascade text, or an extent that is not an integer in ``1 .. 2**40``.
    """
    if not splits:
        return workload
    cas = workload.cascade
    by_key = {}
    for sp in cas.splits.values():
        by_key[sp.rank] = sp
        by_key[sp.inner] = sp
    new: dict[str, int] = {}
    for key, extent in splits.items():
        path = f"splits.{key}"
        found = by_key.get(key)
        if found is None:
            have = [f"{s.rank} -> {s.outer}, {s.inner}" for s in cas.splits.values()]
            raise MappingError(
                "no such split rank in the cascade",
                path=path,
                expected=f"one of {have}" if have else "a cascade with a split rank",
                got=key,
            )
        if not _is_extent(extent):
            raise MappingError(
                "split extent",
                path=path,
                expected=f"an integer >= 1 and <= 2**40 = {MAX_EXTENT}",
                got=extent,
            )
        sp = found
        if not isinstance(sp.tile, str):
            if int(sp.tile) != int(extent):
                raise MappingError(
                    f"the cascade fixes the tile of {sp.rank!r} in its text",
                    path=path,
                    expected=int(sp.tile),
                    got=extent,
                )
            continue
        new[sp.tile] = int(extent)
    if not new:
        return workload
    from mappings._counts import memo

    # the same object for the same choice, so its counts are computed once (mappers lower
    # many candidates with one split)
    return memo(workload, ("splits", tuple(sorted(new.items()))), lambda: _resplit(workload, new))


def _is_extent(v: object) -> bool:
    """``v`` is an integer (not a bool) in ``1 .. MAX_EXTENT``."""
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        return False
    if isinstance(v, float) and not v.is_integer():  # nan and inf included
        return False
    return 1 <= v <= MAX_EXTENT


def _resplit(workload: Workload, new: dict[str, int]) -> Workload:
    cas = workload.cascade
    from archsim.errors import WorkloadError

    cas2 = dataclasses.replace(cas, params={**dict(cas.params), **new})
    params = {**dict(getattr(workload, "params", {})), **new}
    try:
        sizes = cas2.rank_sizes()
    except WorkloadError as exc:  # another parameter is tied to the tile (a chunk count)
        raise MappingError(
            f"the cascade does not resolve with this split tile ({exc})",
            path="splits",
            expected="a tile the cascade's parameters allow",
            got=new,
        ) from None
    return SplitWorkload(workload.name, cas2, params, sizes)  # type: ignore[return-value]
