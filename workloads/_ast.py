"""Typed values of the Einsum-cascade language (frozen dataclasses).

A :class:`Cascade` is an ordered tuple of :class:`Einsum` statements plus the declared
:class:`TensorSpec` of every tensor, the default shape parameters, and the split-rank
declarations. Expressions are small trees of :class:`Num`, :class:`Name`, :class:`TensorRef`,
:class:`Unary` and :class:`Binary`; conditions are :class:`Compare` / :class:`And` trees over
rank variables and parameters.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal, Union

from archsim.errors import WorkloadError

from ._limits import check_extent, check_number, check_points

__all__ = [
    "Index",
    "TensorRef",
    "Num",
    "Name",
    "Unary",
    "Binary",
    "Compare",
    "And",
    "Expr",
    "Cond",
    "Sparsity",
    "TensorSpec",
    "Split",
    "Einsum",
    "Cascade",
    "FrozenMap",
    "expr_refs",
    "expr_names",
    "first_node",
]


class FrozenMap(dict):
    """A read-only, hashable, picklable dict (cascade tables travel to worker processes)."""

    def _readonly(self, *args: object, **kwargs: object) -> None:
        raise TypeError("a cascade's tables are read-only")

    __setitem__ = __delitem__ = update = pop = popitem = clear = setdefault = _readonly  # type: ignore[assignment]
    __ior__ = _readonly  # type: ignore[assignment]

    def __hash__(self) -> int:  # type: ignore[override]
        return hash(tuple(self.items()))

    def __reduce__(self) -> tuple[type, tuple[dict]]:
        return (FrozenMap, (dict(self),))


@dataclass(frozen=True)
class Num:
    """A numeric literal (``0.125``, ``-inf``)."""

    value: float

    def __str__(self) -> str:
        v = self.value
        if math.isinf(v):
            return "inf" if v > 0 else "-inf"
        return str(int(v)) if float(v).is_integer() and abs(v) < 1e15 else repr(v)


@dataclass(frozen=True)
class Name:
    """A bare identifier: a rank variable (in conditions / indices) or a parameter."""

    name: str

    def __str__(self) -> str:
        return self.name


@dataclass(frozen=True)
class Unary:
    """A unary function (``exp``, ``recip``, ...) or negation (``neg``) of a sub-expression."""

    fn: str
    arg: Expr

    def __str__(self) -> str:
        return f"{self.fn}({self.arg})"


@dataclass(frozen=True)
class Binary:
    """A binary map operator: ``*``, ``+``, ``-``, ``/`` (infix) or ``max``/``min`` (call form)."""

    op: str
    left: Expr
    right: Expr

    def __str__(self) -> str:
        if self.op in ("max", "min"):
            return f"{self.op}({self.left}, {self.right})"
        return f"({self.left} {self.op} {self.right})"


@dataclass(frozen=True)
class Index:
    """One index position of a tensor reference.

    Either a rank variable plus an integer ``offset`` (``m1``, ``m1+1``), or a constant
    integer expression ``const`` over parameters (``M1``: the last index of an iterative
    rank, ``0``).
    """

    rank: str | None
    offset: int = 0
    const: Expr | None = None

    def __str__(self) -> str:
        if self.rank is None:
            return str(self.const)
        if self.offset == 0:
            return self.rank
        return f"{self.rank}{self.offset:+d}"


@dataclass(frozen=True)
class TensorRef:
    """A tensor indexed by ranks, e.g. ``QK[b,h,m,p]``."""

    name: str
    indices: tuple[Index, ...]

    @property
    def ranks(self) -> tuple[str, ...]:
        """Rank variables of the reference (constant indices left out), in order."""
        return tuple(i.rank for i in self.indices if i.rank is not None)

    def __str__(self) -> str:
        return f"{self.name}[{','.join(str(i) for i in self.indices)}]"


@dataclass(frozen=True)
class Compare:
    """A comparison of two integer expressions over ranks and parameters (``m <= p``)."""

    op: str
    left: Expr
    right: Expr

    def __str__(self) -> str:
        return f"{_plain(self.left)} {self.op} {_plain(self.right)}"


@dataclass(frozen=True)
class And:
    """A conjunction of comparisons (``m <= p and m >= p - W``)."""

    items: tuple[Compare, ...]

    def __str__(self) -> str:
        return " and ".join(str(c) for c in self.items)


Expr = Union[Num, Name, TensorRef, Unary, Binary]
Cond = Union[Compare, And]


def _plain(e: Expr) -> str:
    text = str(e)
    return text[1:-1] if isinstance(e, Binary) and e.op not in ("max", "min") else text


@dataclass(frozen=True)
class Sparsity:
    """Which elements of a tensor are present.

    Attributes
    ----------
    kind
        ``density``: each element present independently with probability ``density``;
        ``block``: tiles (``tile`` sizes per rank) present or absent as a whole (M x M blocks);
        ``slice``: M x 1 slices (FG-Attn): ``tile`` is M along the last rank, 1 along the
        one before; ``mask``: presence is read from the boolean input tensor ``mask``.
    density
        Fraction of elements (or tiles) present, in (0, 1]. For ``mask`` it is optional:
        the fraction of true elements of the mask as stated by the user (counting uses it;
        the executor always uses the mask itself); None: counted as dense.
    tile
        ``(rank, size)`` pairs: the tile extent per rank of the tensor (elements); ranks of
        the tensor not named have tile extent 1. Sizes may name a parameter.
    mask
        Name of the boolean tensor giving presence (``mask`` kind only).
    """

    kind: Literal["density", "block", "slice", "mask"]
    density: float | None = None
    tile: tuple[tuple[str, int | str], ...] = ()
    mask: str | None = None

    def __str__(self) -> str:
        if self.kind == "mask":
            stated = f", density={self.density}" if self.density is not None else ""
            return f"mask({self.mask}{stated})"
        if self.kind == "density":
            return f"density({self.density})"
        args = ", ".join(f"{k}={v}" for k, v in self.tile)
        return f"{self.kind}({args}, density={self.density})"


@dataclass(frozen=True)
class TensorSpec:
    """A tensor of the cascade.

    Attributes
    ----------
    name
        Tensor name.
    ranks
        Rank names, in storage order.
    dtype_bits
        Bits per element (bf16 = 16, fp8 = 8, bool = 1).
    sparsity
        Presence annotation, or None (dense).
    dtype
        The dtype name as written (``bf16``, ``bits=12``).
    iterative
        Ranks whose extent is one more than the rank size (running state of an iterative
        rank: index 0 holds the initial value, index ``size`` the final one).
    init
        Initial value of an iterative tensor (index 0), or None.
    """

    name: str
    ranks: tuple[str, ...]
    dtype_bits: int = 16
    sparsity: Sparsity | None = None
    dtype: str = "bf16"
    iterative: tuple[str, ...] = ()
    init: float | None = None


@dataclass(frozen=True)
class Split:
    """A split rank ``rank -> outer, inner : tile`` (rank = outer*tile + inner)."""

    rank: str
    outer: str
    inner: str
    tile: str | int


@dataclass(frozen=True)
class Einsum:
    """One Einsum: ``output = [reduce_op(reduce_ranks)] expr [if condition] [init v]``.

    Attributes
    ----------
    output
        The tensor written.
    inputs
        Tensor references read by ``expr``, in order of appearance (duplicates kept once).
    map_op
        The outermost binary operator of ``expr`` (``*``, ``+``, ``-``, ``/``, ``max``), or None.
    reduce_op
        ``sum`` or ``max`` when ranks are reduced, else None.
    reduce_ranks
        Ranks iterated but absent from the output (reduced).
    unary
        The outermost unary function of ``expr`` (``exp``, ``recip``, ...), or None.
    condition
        The condition as text (``m <= p``), or None.
    ranks
        All ranks iterated: output rank variables then reduced ranks.
    line
        Source line (text notation), or None.
    expr
        The full expression tree.
    cond
        The parsed condition, or None.
    init
        Initial value of an iterative output, or None.
    text
        The statement as written.
    iterative_rank
        The rank the output advances along (``m1`` in ``RM[m1+1,p]``), or None.
    """

    output: TensorRef
    inputs: tuple[TensorRef, ...]
    map_op: str | None
    reduce_op: str | None
    reduce_ranks: tuple[str, ...]
    unary: str | None
    condition: str | None
    ranks: tuple[str, ...]
    line: int | None = None
    expr: Expr = field(default=Num(0.0), compare=False)
    cond: Cond | None = field(default=None, compare=False)
    init: float | None = None
    text: str = ""
    iterative_rank: str | None = None

    @property
    def name(self) -> str:
        """The output tensor's name."""
        return self.output.name

    def __str__(self) -> str:
        return self.text or f"{self.output} = {self.expr}"


@dataclass(frozen=True)
class Cascade:
    """An ordered list of Einsums with tensor declarations and shape parameters.

    Build one with :func:`parse_cascade`, :func:`load_cascade` or :class:`CascadeBuilder`;
    those check it. ``params`` holds default shape/tile parameters (rank sizes are the
    parameter named by ``rank_params`` or, by default, the rank name upper-cased: rank
    ``m`` has size ``M``; an outer split rank ``m1`` has size ``ceil(M / M0)``).
    """

    name: str
    einsums: tuple[Einsum, ...]
    tensors: Mapping[str, TensorSpec]
    params: Mapping[str, int | float]
    inputs: tuple[str, ...]
    outputs: tuple[str, ...]
    intermediates: tuple[str, ...]
    splits: Mapping[str, Split] = field(default_factory=lambda: FrozenMap({}))
    rank_params: Mapping[str, str] = field(default_factory=lambda: FrozenMap({}))

    def size_param(self, rank: str) -> str:
        """Name of the parameter giving ``rank``'s size (``m`` -> ``M``)."""
        return self.rank_params.get(rank, rank.upper())

    def all_ranks(self) -> tuple[str, ...]:
        """Every rank used by a tensor, an Einsum or a split, in first-seen order."""
        seen: dict[str, None] = {}
        for spec in self.tensors.values():
            seen.update(dict.fromkeys(spec.ranks))
        for e in self.einsums:
            seen.update(dict.fromkeys(e.ranks))
        for s in self.splits.values():
            seen.update(dict.fromkeys((s.rank, s.outer, s.inner)))
        return tuple(seen)

    def rank_sizes(self, params: Mapping[str, int | float] | None = None) -> dict[str, int]:
        """Size (elements) of every rank under ``params`` (merged over the defaults).

        Raises
        ------
        WorkloadError
            When a rank's size parameter is missing or not a positive integer.
        """
        merged = {**self.params, **(params or {})}
        return _resolve_sizes(self, merged)

    def resolved_params(self, params: Mapping[str, int | float] | None = None) -> dict[str, float]:
        """Defaults, overrides and every rank-size parameter (``M1`` included)."""
        merged: dict[str, float] = {**self.params, **(params or {})}
        for rank, size in self.rank_sizes(params).items():
            merged.setdefault(self.size_param(rank), size)
        return merged


def _resolve_sizes(cascade: Cascade, merged: Mapping[str, int | float]) -> dict[str, int]:
    """Extent of every rank, each bounded by ``MAX_EXTENT`` and each Einsum's iteration
    space by ``MAX_POINTS``; every parameter a finite number within ``MAX_EXTENT`` in
    magnitude (``workloads._limits``)."""

    def positive(name: str, what: str) -> int:
        if name not in merged:
            raise WorkloadError(
                f"no size for {what}",
                path=f"cascade {cascade.name}",
                expected=f"parameter {name}",
                got=sorted(merged),
            )
        return check_extent(merged[name], f"param {name}", f"size for {what}")

    for name, value in merged.items():  # conditions and expressions read them too
        if name in cascade.params:  # a workload's other settings (causal, variant) are not
            check_number(value, f"param {name}")
    sizes: dict[str, int] = {}
    outers = {s.outer: s for s in cascade.splits.values()}
    inners = {s.inner: s for s in cascade.splits.values()}
    for rank in cascade.all_ranks():
        if rank in sizes or rank in outers or rank in inners:
            continue
        sizes[rank] = positive(cascade.size_param(rank), f"rank {rank}")
    for s in cascade.splits.values():  # splits in declaration order: parents may be splits
        parent = (
            sizes[s.rank]
            if s.rank in sizes
            else positive(cascade.size_param(s.rank), f"rank {s.rank}")
        )
        tile = (
            check_extent(s.tile, f"rank {s.rank}", f"tile of {s.rank}")
            if isinstance(s.tile, int)
            else positive(s.tile, f"tile of {s.rank}")
        )
        sizes[s.rank] = parent
        sizes[s.inner] = tile
        sizes[s.outer] = -(-parent // tile)
        outer_param = cascade.size_param(s.outer)
        given = merged.get(outer_param)
        if given is not None and given != sizes[s.outer]:
            raise WorkloadError(
                f"split {s.rank} -> {s.outer}, {s.inner}: {outer_param} "
                "is derived as ceil(parent / tile)",
                path=f"param {outer_param}",
                expected=sizes[s.outer],
                got=given,
            )
    names = {r: cascade.size_param(r) for r in sizes}
    for e in cascade.einsums:
        check_points(e.ranks, sizes, f"cascade {cascade.name}: Einsum {e.name}", names)
    return sizes


def expr_refs(e: Expr) -> list[TensorRef]:
    """Tensor references of an expression, in order of appearance."""
    if isinstance(e, TensorRef):
        return [e]
    if isinstance(e, Binary):
        return expr_refs(e.left) + expr_refs(e.right)
    if isinstance(e, Unary):
        return expr_refs(e.arg)
    return []


def expr_names(e: object) -> list[str]:
    """Bare names (parameters, ranks) of an expression or condition."""
    if isinstance(e, Name):
        return [e.name]
    out: list[str] = []
    for attr in ("left", "right", "arg"):
        if hasattr(e, attr):
            out += expr_names(getattr(e, attr))
    for item in getattr(e, "items", ()):
        out += expr_names(item)
    return out


def first_node(e: Expr, kind: type) -> object | None:
    """The first node of type ``kind`` in pre-order, or None."""
    if isinstance(e, kind):
        return e
    for attr in ("left", "right", "arg"):
        if hasattr(e, attr):
            found = first_node(getattr(e, attr), kind)
            if found is not None:
                return found
    return None


def is_contraction(e: Einsum) -> bool:
    """``out = sum(...) A * B`` with two tensor operands (a MAC per point)."""
    x = e.expr
    return (
        e.reduce_op == "sum"
        and isinstance(x, Binary)
        and x.op == "*"
        and isinstance(x.left, TensorRef)
        and isinstance(x.right, TensorRef)
    )


def split_parents(cascade: Cascade) -> dict[str, str]:
    """Map every split part to its parent rank (``m1 -> m``, ``m0 -> m``)."""
    out: dict[str, str] = {}
    for s in cascade.splits.values():
        out[s.outer] = s.rank
        out[s.inner] = s.rank
    return out
