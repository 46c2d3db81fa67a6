"""``workloads.count`` remembered per (cascade, parameters): mappers lower thousands of
candidate mappings of one cascade, and counting its Einsums is the costly part of each."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Mapping
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from workloads import Cascade, CascadeCounts

__all__ = ["cached_count", "dense_cascade"]

_SIZE = 64
_COUNTS: OrderedDict[tuple, tuple[Cascade, CascadeCounts]] = OrderedDict()
_DENSE: OrderedDict[int, tuple[Cascade, Cascade]] = OrderedDict()


def _key(cascade: Cascade, params: Mapping[str, float] | None) -> tuple:
    merged = {**dict(cascade.params), **dict(params or {})}
    return (id(cascade), tuple(sorted((k, repr(v)) for k, v in merged.items())))


def cached_count(cascade: Cascade, params: Mapping[str, float] | None = None) -> CascadeCounts:
    """``workloads.count(cascade, params)``, computed once per cascade object and parameters
    (the cascade is held with its entry, so its ``id`` is not reused while cached)."""
    from workloads import count

    key = _key(cascade, params)
    hit = _COUNTS.get(key)
    if hit is not None and hit[0] is cascade:
        _COUNTS.move_to_end(key)
        return hit[1]
    out = count(cascade, params) if params is not None else count(cascade)
    _COUNTS[key] = (cascade, out)
    if len(_COUNTS) > _SIZE:
        _COUNTS.popitem(last=False)
    return out


def dense_cascade(cascade: Cascade) -> Cascade:
    """``cascade`` without conditions and sparsity annotations (what a dense tile runs),
    one object per cascade so its counts are cached too."""
    import dataclasses

    hit = _DENSE.get(id(cascade))
    if hit is not None and hit[0] is cascade:
        return hit[1]
    einsums = tuple(dataclasses.replace(e, cond=None, condition=None) for e in cascade.einsums)
    tensors = {k: dataclasses.replace(v, sparsity=None) for k, v in cascade.tensors.items()}
    dense = dataclasses.replace(cascade, einsums=einsums, tensors=type(cascade.tensors)(tensors))
    _DENSE[id(cascade)] = (cascade, dense)
    if len(_DENSE) > _SIZE:
        _DENSE.popitem(last=False)
    return dense
