"""Concrete presence masks for sparsity annotations (used by the reference executor).

A ``density`` / ``block`` / ``slice`` annotation without an explicit mask tensor gets a
deterministic pseudo-random mask: the tile grid (``ceil(size / tile)`` tiles per rank) is
filled with exactly ``round(density * tiles)`` present tiles (at least one), chosen by
``numpy.random.default_rng(seed ^ crc32(tensor name))``. So the same cascade, tensor and seed
always give the same mask, and the realised density equals the stated one up to rounding and
edge tiles. Counting never uses these masks: it scales by the stated density analytically.
"""

from __future__ import annotations

import zlib
from collections.abc import Mapping, Sequence

import numpy as np

from archsim.errors import WorkloadError

from ._ast import Sparsity
from ._limits import check_extent

__all__ = ["tile_shape", "make_mask"]


def tile_shape(
    sp: Sparsity, ranks: Sequence[str], params: Mapping[str, int | float]
) -> tuple[int, ...]:
    """Tile extent (elements) per rank of a tensor for a sparsity annotation.

    ``M=k`` is shorthand: for ``block`` the last two ranks get ``k`` (an M x M block), for
    ``slice`` the last rank gets ``k`` and the others 1 (an M x 1 slice: M queries of ``p``
    by one key of ``m`` in ``QK[b,h,m,p]``). A key naming a rank sets that rank's extent.
    """
    tile = [1] * len(ranks)
    for key, value in sp.tile:
        size = _value(value, params)
        if key == "M":
            n = 2 if sp.kind == "block" else 1
            for i in range(max(0, len(ranks) - n), len(ranks)):
                tile[i] = size
    for key, value in sp.tile:
        if key != "M":
            tile[list(ranks).index(key)] = _value(value, params)
    return tuple(tile)


def _value(v: int | str, params: Mapping[str, int | float]) -> int:
    if isinstance(v, int):
        return v
    if v not in params:
        raise WorkloadError(
            "unknown tile parameter",
            path=f"sparsity tile {v}",
            expected=f"parameter {v}",
            got=sorted(params),
        )
    return check_extent(params[v], f"param {v}", f"sparsity tile {v}")


def make_mask(
    sp: Sparsity,
    name: str,
    ranks: Sequence[str],
    shape: Sequence[int],
    params: Mapping[str, int | float],
    inputs: Mapping[str, np.ndarray],
    seed: int = 0,
) -> np.ndarray:
    """Boolean presence mask of shape ``shape`` for tensor ``name`` (see module docstring).

    Raises
    ------
    WorkloadError
        When a ``mask(T)`` tensor is missing from ``inputs`` or has the wrong shape.
    """
    shape = tuple(shape)
    if sp.kind == "mask":
        if sp.mask is None or sp.mask not in inputs:
            raise WorkloadError(
                f"mask tensor {sp.mask} for {name} not given",
                path=f"inputs.{sp.mask}",
                expected=f"array of shape {shape}",
                got=None,
            )
        m = np.asarray(inputs[sp.mask])
        if m.shape != shape:
            raise WorkloadError(
                f"mask tensor {sp.mask} has the wrong shape",
                path=f"inputs.{sp.mask}",
                expected=shape,
                got=m.shape,
            )
        return m.astype(bool)
    tile = tile_shape(sp, ranks, params) if sp.kind != "density" else (1,) * len(shape)
    # a tile past its rank is one block of the whole rank: the same mask, no huge repeat
    tile = tuple(min(t, s) for t, s in zip(tile, shape, strict=True))
    grid = tuple(-(-s // t) for s, t in zip(shape, tile, strict=True))
    n = int(np.prod(grid))
    keep = max(1, int(round(float(sp.density or 1.0) * n)))
    rng = np.random.default_rng(seed ^ zlib.crc32(name.encode()))
    flat = np.zeros(n, dtype=bool)
    flat[rng.permutation(n)[:keep]] = True
    mask = flat.reshape(grid)
    for axis, t in enumerate(tile):
        if t > 1:
            mask = np.repeat(mask, t, axis=axis)
    return mask[tuple(slice(0, s) for s in shape)]
