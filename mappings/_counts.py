"""Facts about one cascade remembered while a mapper lowers thousands of candidate mappings
of it: ``workloads.count`` per (cascade, parameters), and :func:`memo` for anything else that
depends only on an object (a cascade, a workload) and a hashable key."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Hashable, Mapping
from typing import TYPE_CHECKING, TypeVar

if TYPE_CHECKING:
    from workloads import Cascade, CascadeCounts

__all__ = ["cached_count", "dense_cascade", "memo"]

_SIZE = 64
T = TypeVar("T")
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
    # same concrete class as the cascade's table (FrozenMap, or a dict), which takes a dict;
    # its declared type, Mapping, has no such constructor
    same_kind = type(cascade.tensors)(tensors)  # type: ignore[call-arg]
    dense = dataclasses.replace(cascade, einsums=einsums, tensors=same_kind)
    _DENSE[id(cascade)] = (cascade, dense)
    if len(_DENSE) > _SIZE:
        _DENSE.popitem(last=False)
    return dense


_MEMO: OrderedDict[tuple, tuple[object, object]] = OrderedDict()


def memo(obj: object, key: Hashable, make: Callable[[], T]) -> T:
    """``make()`` computed once per (``obj``, ``key``): ``obj`` is held with the entry so its
    ``id`` is not reused while cached. Callers must not mutate what it returns."""
    k = (id(obj), key)
    hit = _MEMO.get(k)
    if hit is not None and hit[0] is obj:
        _MEMO.move_to_end(k)
        return hit[1]  # type: ignore[return-value]  # stored by make() under this key
    value = make()
    _MEMO[k] = (obj, value)
    if len(_MEMO) > 8 * _SIZE:
        _MEMO.popitem(last=False)
    return value
