"""Samplers: turn axes into points in unit-free index/value space.

Every sampler has one signature, ``sampler(axes, n, seed) -> list[tuple[value, ...]]``,
and is looked up by name (:func:`get_sampler`), like the mappers. ``grid`` is the full
product (range axes contribute their ``n`` grid values); ``random`` draws each axis
independently; ``lhs`` and ``sobol`` draw unit-cube samples from ``scipy.stats.qmc`` and map
each coordinate onto its axis: a discrete axis with ``k`` choices takes choice
``floor(u*k)``, a range axis takes ``lo + u*(hi-lo)`` (or the log-space equivalent).
"""

from __future__ import annotations

import itertools
import math
import warnings
from collections.abc import Callable, Sequence

import numpy as np

from archsim.errors import SweepError
from dse._axes import Axis, ChoiceAxis, RangeAxis

__all__ = ["Sampler", "get_sampler", "list_samplers", "grid", "random", "lhs", "sobol", "map_unit"]

Sampler = Callable[[Sequence[Axis], "int | None", int], list[tuple[object, ...]]]


def map_unit(axis: Axis, u: float) -> object:
    """Map a unit sample ``u`` in [0, 1) onto ``axis`` (discrete: choice ``floor(u*k)``)."""
    if isinstance(axis, ChoiceAxis):
        k = len(axis.values)
        return axis.values[min(int(math.floor(u * k)), k - 1)]
    return axis.at(u)


def grid(axes: Sequence[Axis], n: int | None = None, seed: int = 0) -> list[tuple[object, ...]]:
    """Full factorial product of the axes (``n`` and ``seed`` are ignored).

    Complexity: the product of the axis sizes.
    """
    del n, seed
    values = [a.values if isinstance(a, ChoiceAxis) else a.grid() for a in axes]
    return [tuple(p) for p in itertools.product(*values)]


def _from_unit(axes: Sequence[Axis], unit: np.ndarray) -> list[tuple[object, ...]]:
    return [tuple(map_unit(a, float(u)) for a, u in zip(axes, row, strict=True)) for row in unit]


def _need_n(n: int | None, name: str) -> int:
    if n is None or n < 1:
        raise SweepError(
            f"the {name} sampler needs n >= 1", path="sampler.n", expected="n >= 1", got=n
        )
    return int(n)


def random(axes: Sequence[Axis], n: int | None = None, seed: int = 0) -> list[tuple[object, ...]]:
    """``n`` independent uniform draws per axis (``numpy.random.default_rng(seed)``)."""
    n = _need_n(n, "random")
    if not axes:
        return [()]
    unit = np.random.default_rng(seed).random((n, len(axes)))
    return _from_unit(axes, unit)


def lhs(axes: Sequence[Axis], n: int | None = None, seed: int = 0) -> list[tuple[object, ...]]:
    """``n`` Latin-hypercube samples (``scipy.stats.qmc.LatinHypercube``)."""
    n = _need_n(n, "lhs")
    if not axes:
        return [()]
    from scipy.stats import qmc

    unit = qmc.LatinHypercube(d=len(axes), rng=np.random.default_rng(seed)).random(n)
    return _from_unit(axes, unit)


def sobol(axes: Sequence[Axis], n: int | None = None, seed: int = 0) -> list[tuple[object, ...]]:
    """First ``n`` points of a scrambled Sobol sequence (``scipy.stats.qmc.Sobol``).

    Sobol's balance properties hold for powers of two; other ``n`` are allowed (scipy's
    warning about it is silenced).
    """
    n = _need_n(n, "sobol")
    if not axes:
        return [()]
    from scipy.stats import qmc

    engine = qmc.Sobol(d=len(axes), scramble=True, rng=np.random.default_rng(seed))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        unit = engine.random(n)
    return _from_unit(axes, unit)


_SAMPLERS: dict[str, Sampler] = {"grid": grid, "random": random, "lhs": lhs, "sobol": sobol}


def list_samplers() -> list[str]:
    """Names accepted by :func:`get_sampler`."""
    return sorted(_SAMPLERS)


def get_sampler(name: str) -> Sampler:
    """Look a sampler up by name.

    Raises
    ------
    SweepError
        Unknown name.
    """
    try:
        return _SAMPLERS[name]
    except KeyError:
        raise SweepError(
            "unknown sampler", path="sampler.kind", expected=" | ".join(list_samplers()), got=name
        ) from None


def axis_size(axis: Axis) -> int | None:
    """Number of distinct values on a grid (``None`` for an unbounded continuous axis)."""
    if isinstance(axis, ChoiceAxis):
        return len(axis.values)
    assert isinstance(axis, RangeAxis)
    return len(axis.grid()) if axis.n else None
