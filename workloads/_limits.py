"""Bounds on every size a cascade may ask for, checked before anything is allocated or counted.

A malformed or hostile input (``--set S=1e30``, ``B=10**19``, ``param L = inf``, a tile of 0,
an expression nested 10,000 deep) must be refused with a message naming the parameter, not
surface as an ``OverflowError``, a ``RecursionError`` or numpy trying to allocate petabytes.

========================  =======  =====================================================
bound                     value    meaning
========================  =======  =====================================================
``MAX_EXTENT``            2**40    elements of one rank (a size or tile parameter), and
                                   the magnitude of any parameter
``MAX_POINTS``            2**62    iteration points of one Einsum (product of the
                                   extents of its ranks; fits a signed int64)
``MAX_NESTING``           64       depth of one expression tree (parentheses,
                                   operators, function calls, index constants)
``MAX_BITS``              1024     bits of one element (``bits=N``)
``MAX_EXECUTE_POINTS``    2**30    points of one Einsum the reference executor runs
``MAX_EXECUTE_ELEMENTS``  2**27    elements of one tensor it holds (float64: 1 GiB)
========================  =======  =====================================================

2**40 elements is ~10**12 (a 1 T-token context); every shape archsim models is far below.
The executor bounds keep ``archsim workload verify`` interactive: mha at S=512, H=32,
D=128 (QK iterates exactly 2**30 points) verifies in 32 s with a 1.3 GB peak (measured
with ``/usr/bin/time -v archsim workload verify mha --set S=512`` on the 2-core dev box).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING

from archsim.errors import WorkloadError

if TYPE_CHECKING:  # pragma: no cover
    from ._ast import Cascade

__all__ = [
    "MAX_EXTENT",
    "MAX_POINTS",
    "MAX_NESTING",
    "MAX_BITS",
    "MAX_EXECUTE_POINTS",
    "MAX_EXECUTE_ELEMENTS",
    "check_executable",
    "check_extent",
    "check_number",
    "check_points",
    "iteration_points",
]

MAX_EXTENT = 2**40
MAX_POINTS = 2**62
MAX_NESTING = 64
MAX_BITS = 1024
MAX_EXECUTE_POINTS = 2**30
MAX_EXECUTE_ELEMENTS = 2**27


def check_number(value: object, path: str) -> int | float:
    """``value`` if it is a finite real number (not a bool) of magnitude <= ``MAX_EXTENT``,
    else a :class:`WorkloadError`.

    ``path`` names the parameter (``param L``, ``params.L``, ``mha.Sq``).
    """
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise WorkloadError("bad parameter value", path=path, expected="a number", got=value)
    if isinstance(value, float) and not math.isfinite(value):
        raise WorkloadError("bad parameter value", path=path, expected="a finite number", got=value)
    if abs(value) > MAX_EXTENT:  # sizes, windows, offsets: all far below; keeps int64 safe
        raise WorkloadError(
            "parameter too large",
            path=path,
            expected=f"at most 2**40 = {MAX_EXTENT} in magnitude",
            got=value,
        )
    return value


def check_extent(value: object, path: str, what: str = "size") -> int:
    """``value`` as an int if it is an integer in ``1 .. MAX_EXTENT``, else a WorkloadError.

    ``what`` says what the value sizes (``rank m``, ``tile of m``) for the message.
    """
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise WorkloadError(
            f"bad {what}", path=path, expected="a positive integer (elements)", got=value
        )
    if isinstance(value, float) and not value.is_integer():  # nan and inf included
        raise WorkloadError(
            f"bad {what}", path=path, expected="a positive integer (elements)", got=value
        )
    if value <= 0:
        raise WorkloadError(
            f"bad {what}", path=path, expected="a positive integer (elements)", got=value
        )
    if value > MAX_EXTENT:
        raise WorkloadError(
            f"{what} too large",
            path=path,
            expected=f"at most 2**40 = {MAX_EXTENT} elements",
            got=value,
        )
    return int(value)


def check_points(
    ranks: Iterable[str],
    sizes: Mapping[str, int],
    path: str,
    size_param: Mapping[str, str],
    *,
    limit: int = MAX_POINTS,
    what: str = "iteration space too large",
) -> int:
    """The product of ``sizes`` over ``ranks``; a WorkloadError past ``limit`` points.

    ``size_param`` maps a rank to the parameter naming its size, so the message says which
    parameters to lower.
    """
    ranks = tuple(dict.fromkeys(ranks))
    total = math.prod(sizes[r] for r in ranks)
    if total > limit:
        shown = ", ".join(f"{size_param.get(r, r)}={sizes[r]}" for r in ranks)
        bound = f"2**{limit.bit_length() - 1}" if limit & (limit - 1) == 0 else str(limit)
        raise WorkloadError(
            what,
            path=path,
            expected=f"at most {bound} points (product of {shown})",
            got=total,
        )
    return total


def check_executable(
    cascade: Cascade,
    params: Mapping[str, int | float] | None = None,
    *,
    sizes: Mapping[str, int] | None = None,
) -> None:
    """Refuse a shape the reference executor cannot run: it holds every tensor as a dense
    float64 numpy array (each bounded by ``MAX_EXECUTE_ELEMENTS``, 2**27 elements) and
    broadcasts over an Einsum's ranks (each bounded by ``MAX_EXECUTE_POINTS``, 2**30
    points), checked before any input is drawn. ``sizes`` (rank -> extent), when given,
    replaces resolving them from ``params``.

    Raises
    ------
    WorkloadError
        Naming the Einsum and every extent of its iteration space.
    """
    if sizes is None:
        sizes = cascade.rank_sizes(params)
    names = {r: cascade.size_param(r) for r in sizes}
    for e in cascade.einsums:
        check_points(
            e.ranks,
            sizes,
            f"cascade {cascade.name}: Einsum {e.name}",
            names,
            limit=MAX_EXECUTE_POINTS,
            what="too large for the reference executor (dense numpy arrays)",
        )
    for name, spec in cascade.tensors.items():
        check_points(
            spec.ranks,
            sizes,
            f"cascade {cascade.name}: tensor {name}",
            names,
            limit=MAX_EXECUTE_ELEMENTS,
            what="too large for the reference executor (dense numpy arrays)",
        )


def iteration_points(cascade: Cascade, params: Mapping[str, int | float] | None = None) -> int:
    """Dense iteration points of the whole cascade: the sum over its Einsums of the product
    of their rank extents (points, an exact integer; no condition or sparsity applied).

    A cheap upper bound on the work (microseconds, nothing allocated, no condition counted):
    callers use it to refuse or warn before a job whose cost grows with the shape, e.g. an
    event-driven simulation at ``S = 10**7``. ``workloads.count`` gives the present points.

    >>> from workloads import parse_cascade
    >>> c = parse_cascade("tensor A[m,k]\\ntensor B[k,n]\\nC[m,n] = A[m,k] * B[k,n]",
    ...                   params={"M": 4, "K": 8, "N": 2})
    >>> iteration_points(c), iteration_points(c, {"M": 1024})
    (64, 16384)

    Raises
    ------
    WorkloadError
        A size parameter missing, not a positive integer, above ``MAX_EXTENT``, or an
        Einsum above ``MAX_POINTS``.
    """
    sizes = cascade.rank_sizes(params)
    return sum(math.prod(sizes[r] for r in dict.fromkeys(e.ranks)) for e in cascade.einsums)
