"""Exact counting of integer points under linear constraints, and presence formulas.

A :class:`Conj` is a conjunction of linear constraints over ranks (``sum c_r r + k OP 0``,
OP one of ``<=``, ``==``, ``!=``) and independent density factors (a sparsity annotation seen
through one reference). A presence formula is a tuple of Conj (a disjunction, DNF).

``count_points`` counts the integer points of the box ``0 <= r < size[r]`` satisfying a
conjunction without enumerating the box: the rank of largest size is solved in closed form
(an interval per point of the others, minus excluded ``!=`` points) and the other constrained
ranks are enumerated as a vectorised numpy grid (chunks of 2**22 points); unconstrained ranks
multiply. For causal ``m <= p`` over S x S this enumerates S values of ``p`` and is exact.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

import numpy as np

from archsim.errors import WorkloadError

__all__ = [
    "Constraint",
    "Factor",
    "Conj",
    "Presence",
    "FULL",
    "conj_and",
    "pres_and",
    "pres_or",
    "count_presence",
    "eliminate",
    "substitute",
    "count_points",
    "project",
    "HIDDEN",
]

HIDDEN = "~"
"""Marks a hidden rank (``m1~x``: the outer part of ``x`` read as a split pair) in counting."""

Constraint = tuple[str, tuple[tuple[str, int], ...], int]
"""``(op, ((rank, coeff), ...), const)``: ``sum coeff*rank + const OP 0``."""
Factor = tuple[str, float, tuple[str, ...]]
"""``(source, density, ranks)``: present with probability ``density``, varying over ``ranks``."""

_GRID_CHUNK = 1 << 22
_GRID_MAX = 1 << 31


def make_constraint(op: str, coeffs: Mapping[str, int], const: int) -> Constraint:
    """A constraint in canonical form (ranks sorted, zero coefficients dropped)."""
    return op, tuple(sorted((r, int(c)) for r, c in coeffs.items() if c)), int(const)


@dataclass(frozen=True)
class Conj:
    """A conjunction of constraints and density factors."""

    cons: frozenset[Constraint] = frozenset()
    factors: frozenset[Factor] = frozenset()


Presence = tuple[Conj, ...]
FULL: Presence = (Conj(),)


def conj_and(a: Conj, b: Conj) -> Conj:
    """Both conjunctions at once."""
    return Conj(a.cons | b.cons, a.factors | b.factors)


def pres_and(a: Presence, b: Presence) -> Presence:
    """Intersection of two presence formulas (distributes over the disjunctions)."""
    return _simplify(tuple(conj_and(x, y) for x in a for y in b))


def pres_or(a: Presence, b: Presence) -> Presence:
    """Union of two presence formulas."""
    return _simplify(a + b)


def _simplify(p: Presence) -> Presence:
    if Conj() in p:
        return FULL
    out = tuple(dict.fromkeys(p))
    # drop a term implied by a smaller one (its constraints and factors a superset)
    keep = [
        c
        for c in out
        if not any(o is not c and o.cons <= c.cons and o.factors <= c.factors for o in out)
    ]
    return tuple(keep)


def substitute(c: Conj, mapping: Mapping[str, tuple[dict[str, int], int] | None]) -> Conj:
    """Rename ranks: each rank maps to a linear form ``({rank: coeff}, const)`` of new ranks.

    A rank mapped to None (not expressible linearly) drops the constraints that use it
    (a relaxation) and the factors that vary over it keep their source.
    """
    cons: set[Constraint] = set()
    for op, coeffs, k in c.cons:
        out: dict[str, int] = {}
        ok = True
        for r, a in coeffs:
            form = mapping.get(r, ({r: 1}, 0))
            if form is None:
                ok = False
                break
            f, k0 = form
            k += a * k0
            for r2, b in f.items():
                out[r2] = out.get(r2, 0) + a * b
        if ok:
            cons.add(make_constraint(op, out, k))
    factors = set()
    for src, d, ranks in c.factors:
        new: list[str] = []
        for r in ranks:
            form = mapping.get(r, ({r: 1}, 0))
            new += list(form[0]) if form else []
        factors.add((src, d, tuple(new)))
    return Conj(frozenset(cons), frozenset(factors))


def eliminate(c: Conj, rank: str, size: int) -> Conj | None:
    """Project out ``rank`` (0 <= rank < size): the points where *some* value of it satisfies.

    Fourier-Motzkin on the ``<=`` constraints (exact when one coefficient of each combined
    pair is +-1, as for ``m <= p`` and ``m1*M0 + m0 <= p``; otherwise the rational relaxation);
    an ``==`` with coefficient +-1 is substituted; other ``==`` and every ``!=`` on the rank
    are dropped (relaxation); factors varying over the rank are dropped (a reduction over
    the rank is present if any element is, which we take as certain). Returns None when the
    projection is empty.
    """
    keep: set[Constraint] = set()
    lower: list[tuple[int, dict[str, int], int]] = [(1, {}, 0)]  # -a*r + rest <= 0
    upper: list[tuple[int, dict[str, int], int]] = [(1, {}, -(size - 1))]  # a*r + rest <= 0
    for op, coeffs, k in sorted(c.cons):
        d = dict(coeffs)
        a = d.pop(rank, 0)
        if a == 0:
            keep.add((op, coeffs, k))
        elif op == "==" and abs(a) == 1:
            sub = ({r: -a * v for r, v in d.items()}, -a * k)  # rank = -(rest)/a
            rest = Conj(frozenset(x for x in c.cons if x != (op, coeffs, k)), c.factors)
            rest = Conj(
                rest.cons
                | {
                    make_constraint("<=", {r: -v for r, v in sub[0].items()}, -sub[1]),
                    make_constraint("<=", sub[0], sub[1] - (size - 1)),
                },
                rest.factors,
            )
            return _check_empty(substitute(rest, {rank: sub}))
        elif op == "<=":
            (upper if a > 0 else lower).append((abs(a), d, k))
    for (al, dl, kl), (au, du, ku) in itertools.product(lower, upper):
        # lower: al*r >= dl+kl (as -al*r + dl + kl <= 0); upper: au*r <= -(du+ku)
        joined = {r: au * v for r, v in dl.items()}
        for r, v in du.items():
            joined[r] = joined.get(r, 0) + al * v
        keep.add(make_constraint("<=", joined, au * kl + al * ku))
    factors = frozenset(f for f in c.factors if rank not in f[2])
    return _check_empty(Conj(frozenset(keep), factors))


def _check_empty(c: Conj) -> Conj | None:
    cons = set()
    for op, coeffs, k in c.cons:
        if not coeffs:
            if not ((op == "<=" and k <= 0) or (op == "==" and k == 0) or (op == "!=" and k)):
                return None
            continue
        cons.add((op, coeffs, k))
    return Conj(frozenset(cons), c.factors)


def count_points(
    cons: Iterable[Constraint], sizes: Mapping[str, int], cache: dict | None = None
) -> int:
    """Number of integer points of the box over the constrained ranks satisfying ``cons``.

    Ranks not named by any constraint are *not* multiplied in (the caller does that).
    """
    cons = tuple(sorted(set(cons)))
    key = (cons, tuple(sorted((r, sizes[r]) for r in {r for _, cs, _ in cons for r, _ in cs})))
    if cache is not None and key in cache:
        return cache[key]
    n = _count(cons, sizes)
    if cache is not None:
        cache[key] = n
    return n


def _count(cons: tuple[Constraint, ...], sizes: Mapping[str, int]) -> int:
    for op, coeffs, k in cons:
        if not coeffs and not (
            (op == "<=" and k <= 0) or (op == "==" and k == 0) or (op == "!=" and k != 0)
        ):
            return 0
    solved = _solve_equalities(tuple(c for c in cons if c[1]), sizes)
    if solved is None:
        return 0
    cons = solved
    ranks = sorted({r for _, cs, _ in cons for r, _ in cs}, key=lambda r: (-sizes[r], r))
    if not ranks:
        return 1
    x, others = ranks[0], ranks[1:]
    grid = math.prod(sizes[r] for r in others)
    if grid > _GRID_MAX:
        raise WorkloadError(
            "condition too large to count exactly",
            path=str(cons),
            expected=f"<= {_GRID_MAX} points over the ranks other than {x}",
            got=grid,
        )
    total = 0
    for start in range(0, grid, _GRID_CHUNK):
        idx = np.arange(start, min(grid, start + _GRID_CHUNK), dtype=np.int64)
        coords: dict[str, np.ndarray] = {}
        for r in reversed(others):
            idx, coords[r] = np.divmod(idx, sizes[r])
        total += _count_chunk(cons, x, sizes[x], coords, len(idx))
    return int(total)


def _solve_equalities(
    cons: tuple[Constraint, ...], sizes: Mapping[str, int]
) -> tuple[Constraint, ...] | None:
    """Substitute away ranks fixed by an ``==`` with a +-1 coefficient (largest rank first).

    NOTE: exact: the substituted rank is a function of the others, so the points of the
    remaining ranks that keep it inside its box (the two bounds added) are in one-to-one
    correspondence with the original points. It shrinks the enumerated grid: the hidden
    ranks of a split read through its parent (``workloads._count``) cost nothing.
    Returns None when a constraint becomes constant and false.
    """
    while True:
        best: tuple[Constraint, str, int] | None = None
        for c in cons:
            if c[0] != "==" or len(c[1]) < 2:
                continue
            for r, a in c[1]:
                if abs(a) == 1 and (best is None or (sizes[r], r) > (sizes[best[1]], best[1])):
                    best = (c, r, a)
        if best is None:
            return cons
        (_, coeffs, k), r, a = best
        form = ({x: -a * v for x, v in coeffs if x != r}, -a * k)  # r = -(rest + k) / a
        rest = Conj(frozenset(x for x in cons if x is not best[0]))
        bounds = {
            make_constraint("<=", {x: -v for x, v in form[0].items()}, -form[1]),
            make_constraint("<=", form[0], form[1] - (sizes[r] - 1)),
        }
        checked = _check_empty(substitute(Conj(rest.cons | bounds), {r: form}))
        if checked is None:
            return None
        cons = tuple(sorted(checked.cons))


def project(c: Conj, ranks: Iterable[str], sizes: Mapping[str, int]) -> Conj | None:
    """Eliminate ``ranks`` (see :func:`eliminate`), those fixed by an ``==`` first."""
    todo = set(ranks)
    cur: Conj | None = c
    while todo and cur is not None:
        pinned = sorted(
            r
            for op, coeffs, _ in cur.cons
            if op == "=="
            for r, a in coeffs
            if r in todo and abs(a) == 1
        )
        r = pinned[0] if pinned else min(todo)
        todo.discard(r)
        cur = eliminate(cur, r, sizes[r])
    return cur


def _count_chunk(
    cons: tuple[Constraint, ...], x: str, nx: int, coords: Mapping[str, np.ndarray], n: int
) -> int:
    lo = np.zeros(n, dtype=np.int64)
    hi = np.full(n, nx - 1, dtype=np.int64)
    excluded: list[np.ndarray] = []
    for op, coeffs, k in cons:
        d = dict(coeffs)
        a = d.pop(x, 0)
        rest = np.full(n, k, dtype=np.int64)
        for r, v in d.items():
            rest = rest + v * coords[r]
        if a == 0:
            ok = rest <= 0 if op == "<=" else (rest == 0 if op == "==" else rest != 0)
            hi = np.where(ok, hi, -1)
        elif op == "<=":
            if a > 0:
                hi = np.minimum(hi, np.floor_divide(-rest, a))
            else:
                lo = np.maximum(lo, -np.floor_divide(-rest, -a))  # ceil(rest / -a)
        elif op == "==":
            q, m = np.divmod(-rest, a)
            lo = np.where(m == 0, np.maximum(lo, q), 1)
            hi = np.where(m == 0, np.minimum(hi, q), 0)
        else:
            q, m = np.divmod(-rest, a)
            excluded.append(np.where(m == 0, q, -1))
    cnt = np.maximum(hi - lo + 1, 0)
    if excluded:
        ex = np.sort(np.stack(excluded, axis=1), axis=1)
        inside = (ex >= lo[:, None]) & (ex <= hi[:, None])
        first = np.ones_like(inside)
        first[:, 1:] = ex[:, 1:] != ex[:, :-1]
        cnt = cnt - (inside & first).sum(axis=1)
    return int(cnt.sum())


def count_presence(
    p: Presence, ranks: Iterable[str], sizes: Mapping[str, int], cache: dict | None = None
) -> float:
    """Expected number of present points of the box over ``ranks``.

    Inclusion-exclusion over the disjunction's terms (exact for independent factors); each
    term is the exact lattice count times the product of its distinct factor densities.
    """
    ranks = tuple(dict.fromkeys(ranks))
    box = math.prod(sizes[r] for r in ranks)
    terms = [c for c in p]
    if len(terms) > 12:
        raise WorkloadError(
            "presence formula too large to count",
            path="count",
            expected="<= 12 alternative terms",
            got=len(terms),
        )
    total = 0.0
    for n in range(1, len(terms) + 1):
        for combo in itertools.combinations(terms, n):
            cons = frozenset().union(*(c.cons for c in combo))
            facs = frozenset().union(*(c.factors for c in combo))
            used = {r for _, cs, _ in cons for r, _ in cs}
            # presence lives on the iterated ranks (and on hidden ranks pinned to them)
            assert all(r in ranks or HIDDEN in r for r in used), (used, ranks)
            free = math.prod(sizes[r] for r in ranks if r not in used)
            dens = math.prod(d for _, d, _ in {(s, d, r) for s, d, r in facs})
            pts = count_points(cons, sizes, cache) * free if cons else box
            total += (-1) ** (n + 1) * pts * dens
    return total
