"""Registries of operators and functions: how to run each one and how to count it.

Each unary function maps to a numpy implementation (float64, vectorised) and an op kind used
by counting (the op kinds of ``archsim.ComputeUnit.ops_per_cycle``: ``exp``, ``recip``,
``mul``, ``max``, ...). Binary map operators likewise. Adding a function is one line here.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

__all__ = ["UnaryFn", "UNARY", "BINARY_KIND", "REDUCE_KIND", "REDUCE_OPS", "UNION_OPS", "DTYPES"]


@dataclass(frozen=True)
class UnaryFn:
    """A unary function: its numpy implementation and the op kind counted per element."""

    fn: Callable[[np.ndarray], np.ndarray]
    kind: str


def _safe(f: Callable[[np.ndarray], np.ndarray]) -> Callable[[np.ndarray], np.ndarray]:
    def g(x: np.ndarray) -> np.ndarray:
        with np.errstate(all="ignore"):
            return f(x)

    return g


UNARY: dict[str, UnaryFn] = {
    "exp": UnaryFn(_safe(np.exp), "exp"),
    "recip": UnaryFn(_safe(lambda x: 1.0 / x), "recip"),
    "sqrt": UnaryFn(_safe(np.sqrt), "sqrt"),
    "rsqrt": UnaryFn(_safe(lambda x: 1.0 / np.sqrt(x)), "rsqrt"),
    "neg": UnaryFn(np.negative, "neg"),
    "silu": UnaryFn(_safe(lambda x: x / (1.0 + np.exp(-x))), "silu"),
    "sigmoid": UnaryFn(_safe(lambda x: 1.0 / (1.0 + np.exp(-x))), "sigmoid"),
    "square": UnaryFn(np.square, "mul"),
    "abs": UnaryFn(np.abs, "abs"),
    "relu": UnaryFn(lambda x: np.maximum(x, 0.0), "max"),
    "tanh": UnaryFn(np.tanh, "tanh"),
    "log": UnaryFn(_safe(np.log), "log"),
}
"""Unary functions by name (``exp(QK[m,p] - M[p])``)."""

BINARY_KIND: dict[str, str] = {
    "*": "mul",
    "+": "add",
    "-": "sub",
    "/": "div",
    "max": "max",
    "min": "min",
}
"""Binary map operators and their op kind."""

UNION_OPS = frozenset({"+", "max", "min"})
"""Binary operators whose result is present where *either* operand is (absent counts as the
identity: 0 for ``+``, -inf for ``max``, +inf for ``min``); the others need both."""

REDUCE_OPS = ("sum", "max", "min")
REDUCE_KIND: dict[str, str] = {"sum": "add", "max": "max", "min": "min"}
"""Reduction operators and the op kind counted per reduced element."""

DTYPES: dict[str, int] = {
    "bf16": 16,
    "fp16": 16,
    "fp32": 32,
    "fp64": 64,
    "fp8": 8,
    "int8": 8,
    "int4": 4,
    "int16": 16,
    "int32": 32,
    "bool": 1,
}
"""Dtype names and their bits per element (``bits=N`` gives any other width)."""
