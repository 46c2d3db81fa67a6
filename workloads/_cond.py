"""Integer expressions and conditions over ranks and parameters.

``eval_cond`` evaluates a condition on broadcast rank coordinates (executor);
``linearize`` turns each comparison into ``sum_r c_r * r + c0  OP  0`` with integer
coefficients (counting), raising when a comparison is not linear in the ranks.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import numpy as np

from archsim.errors import WorkloadError

from ._ast import And, Binary, Compare, Cond, Expr, Name, Num, Unary

__all__ = ["eval_int", "eval_cond", "compares", "linearize", "Linear"]

_CMP = {
    "<": np.less,
    "<=": np.less_equal,
    ">": np.greater,
    ">=": np.greater_equal,
    "==": np.equal,
    "!=": np.not_equal,
}


def eval_int(
    e: Expr,
    params: Mapping[str, float],
    *,
    where: str,
    coords: Mapping[str, np.ndarray] | None = None,
) -> np.ndarray:
    """Evaluate an integer expression of parameters (and rank coordinates, if given)."""
    if isinstance(e, Num):
        return np.asarray(e.value)
    if isinstance(e, Name):
        if coords is not None and e.name in coords:
            return coords[e.name]
        if e.name in params:
            return np.asarray(float(params[e.name]))
        raise _unknown_name(e, where)
    if isinstance(e, Unary) and e.fn == "neg":
        return -eval_int(e.arg, params, where=where, coords=coords)
    if isinstance(e, Binary) and e.op in ("+", "-", "*", "/", "max", "min"):
        a = eval_int(e.left, params, where=where, coords=coords)
        b = eval_int(e.right, params, where=where, coords=coords)
        if e.op == "/":
            return np.floor_divide(a, b)
        fn = {
            "+": np.add,
            "-": np.subtract,
            "*": np.multiply,
            "max": np.maximum,
            "min": np.minimum,
        }[e.op]
        return fn(a, b)
    raise WorkloadError(
        "not an integer expression",
        path=where,
        expected="ranks, parameters, integers and + - * / max min",
        got=str(e),
    )


def _unknown_name(e: Name, where: str) -> WorkloadError:
    """The error for a name that is neither a rank of the Einsum nor a parameter."""
    return WorkloadError(
        f"unknown name {e.name}",
        path=where,
        expected="a rank of the Einsum or a parameter",
        got=e.name,
    )


def compares(c: Cond) -> tuple[Compare, ...]:
    """The comparisons of a condition (a conjunction)."""
    return c.items if isinstance(c, And) else (c,)


def eval_cond(
    c: Cond, coords: Mapping[str, np.ndarray], params: Mapping[str, float], *, where: str
) -> np.ndarray:
    """Boolean array (broadcast over the coordinates) where the condition holds."""
    out = np.asarray(True)
    for cmp in compares(c):
        a = eval_int(cmp.left, params, where=where, coords=coords)
        b = eval_int(cmp.right, params, where=where, coords=coords)
        out = out & _CMP[cmp.op](a, b)
    return out


Linear = tuple[dict[str, int], int]
"""``({rank: coefficient}, constant)``: the value ``sum c_r * r + constant``."""


def _lin(e: Expr, ranks: set[str], params: Mapping[str, float], where: str) -> Linear:
    if isinstance(e, Num):
        return {}, _int(e.value, e, where)
    if isinstance(e, Name):
        if e.name in ranks:
            return {e.name: 1}, 0
        if e.name in params:
            return {}, _int(params[e.name], e, where)
        raise _unknown_name(e, where)
    if isinstance(e, Unary) and e.fn == "neg":
        c, k = _lin(e.arg, ranks, params, where)
        return {r: -v for r, v in c.items()}, -k
    if isinstance(e, Binary) and e.op in ("+", "-"):
        (ca, ka), (cb, kb) = _lin(e.left, ranks, params, where), _lin(e.right, ranks, params, where)
        s = 1 if e.op == "+" else -1
        out = dict(ca)
        for r, v in cb.items():
            out[r] = out.get(r, 0) + s * v
        return {r: v for r, v in out.items() if v}, ka + s * kb
    if isinstance(e, Binary) and e.op == "*":
        (ca, ka), (cb, kb) = _lin(e.left, ranks, params, where), _lin(e.right, ranks, params, where)
        if ca and cb:
            raise _nonlinear(e, where)
        if cb:
            ca, ka, cb, kb = cb, kb, ca, ka
        return {r: v * kb for r, v in ca.items() if v * kb}, ka * kb
    raise _nonlinear(e, where)


def _nonlinear(e: Expr, where: str) -> WorkloadError:
    return WorkloadError(
        "condition is not linear in the ranks (counting needs a linear one)",
        path=where,
        expected="sums of integer multiples of ranks and parameters",
        got=str(e),
    )


def _int(v: float, e: Expr, where: str) -> int:
    if not float(v).is_integer() or math.isinf(v):
        raise WorkloadError(
            "condition constants must be integers", path=where, expected="an integer", got=str(e)
        )
    return int(v)


def linearize(
    c: Cond, ranks: set[str], params: Mapping[str, float], *, where: str
) -> list[tuple[str, dict[str, int], int]]:
    """Each comparison as ``(op, coeffs, const)`` meaning ``sum coeffs*r + const OP 0``.

    ``<`` and ``>`` become ``<=``/``>=`` with the constant shifted (integer ranks), and ``>=``
    is negated into ``<=``, so ops are ``<=``, ``==`` or ``!=``.
    """
    out: list[tuple[str, dict[str, int], int]] = []
    for cmp in compares(c):
        (ca, ka) = _lin(cmp.left, ranks, params, where)
        (cb, kb) = _lin(cmp.right, ranks, params, where)
        coef = dict(ca)
        for r, v in cb.items():
            coef[r] = coef.get(r, 0) - v
        coef = {r: v for r, v in coef.items() if v}
        k = ka - kb
        op = cmp.op
        if op == "<":
            op, k = "<=", k + 1
        elif op == ">":
            op, k = ">=", k - 1
        if op == ">=":
            op, coef, k = "<=", {r: -v for r, v in coef.items()}, -k
        out.append((op, coef, k))
    return out
