"""Counting: MACs, ops by kind, elements and bytes per tensor, compulsory traffic.

Counts are algorithmic (one per iteration point, no reuse) and follow the executor's
presence semantics analytically: each tensor carries a presence formula (linear constraints
from conditions and split padding, and density factors from sparsity annotations), so
causal ``m <= p`` over S x S counts exactly S(S+1)/2 points and a block density of 0.3
scales the work by 0.3. Per Einsum:

- a ``*`` at the top of the expression feeding a ``sum`` reduction is one MAC per present
  iteration point (no separate mul/add);
- every other operator counts one op of its kind (``mul add sub div max min exp recip ...``,
  see ``workloads._ops``) per point where it really operates: where its result is present
  for ``* / -`` and unary functions, where *both* operands are present for the union
  operators ``+ max min`` (elsewhere the value just passes through); operators on constants
  only are folded (0 ops);
- a reduction other than a MAC counts one op of its kind per present iteration point;
- ``reads_elems[T]`` counts the points where T's value is needed, ``writes_elems[out]`` the
  present output elements (an iterative output: one write per update).

A tensor read through other indices than its own ranks keeps its presence exactly
(``workloads._refmatch``): a split pair ``(a, b)`` stands for ``a*T + b`` (plus the padding
bound), and a split tensor read through its parent rank ``x`` gets hidden ranks pinned by
``m1~ * M0 + m0~ == x`` (``_lattice.HIDDEN``), which counting substitutes away for free.

Iterative Einsums count each update once per step of the iterative rank. Evaluating a
condition costs no ops (a mapping enumerates only the points it must compute). Conditions are
counted exactly; ``density``/``block``/``slice`` annotations scale by their density, a
``mask(T, density=F)`` annotation by its stated density ``F`` (without ``density=`` a mask
counts as dense: its density is unknown before run time).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field

from archsim.errors import WorkloadError

from ._ast import (
    Binary,
    Cascade,
    Einsum,
    Expr,
    Name,
    Num,
    TensorRef,
    Unary,
    expr_names,
    expr_refs,
)
from ._cond import eval_int, linearize
from ._lattice import (
    FULL,
    HIDDEN,
    Conj,
    Constraint,
    Factor,
    Presence,
    count_presence,
    eliminate,
    make_constraint,
    pres_and,
    pres_or,
    project,
    substitute,
)
from ._ops import BINARY_KIND, REDUCE_KIND, UNARY, UNION_OPS
from ._refmatch import match_cascade_ref

__all__ = ["count", "CascadeCounts", "EinsumCounts"]


_Form = tuple[tuple[tuple[str, int], ...], int]
"""A linear form ``(((rank, coeff), ...), const)`` of visible ranks (a hidden rank's value)."""


@dataclass(frozen=True)
class EinsumCounts:
    """Counts of one Einsum (elements and ops are expected values: floats)."""

    name: str
    macs: float
    ops: dict[str, float]
    reads_elems: dict[str, float]
    writes_elems: dict[str, float]
    reads_bytes: float
    writes_bytes: float
    points: float = 0.0
    """Present iteration points (the Einsum's work items)."""


@dataclass(frozen=True)
class CascadeCounts:
    """Counts of a whole cascade.

    Attributes
    ----------
    einsums
        Per-Einsum counts, in cascade order.
    macs
        Total multiply-accumulates.
    ops
        Other ops by kind, summed over Einsums.
    flops
        ``2 * macs + sum(ops)`` (a MAC is 2 FLOPs).
    compulsory_bytes
        Every cascade input read once plus every final output written once (bytes, at the
        tensors' dtype widths; sparse inputs scaled by density).
    """

    einsums: tuple[EinsumCounts, ...]
    macs: float
    ops: dict[str, float]
    flops: float
    compulsory_bytes: float
    reads_bytes: float = 0.0
    writes_bytes: float = 0.0
    params: dict[str, float] = field(default_factory=dict)

    def einsum(self, name: str) -> EinsumCounts:
        """The counts of the Einsum computing ``name``."""
        for e in self.einsums:
            if e.name == name:
                return e
        raise KeyError(name)


def count(cascade: Cascade, params: Mapping[str, int | float] | None = None) -> CascadeCounts:
    """Count ``cascade`` at shape ``params`` (merged over the cascade's defaults).

    Runs in time independent of the tensor sizes except for conditions, whose points are
    counted by enumerating all but the largest constrained rank (vectorised): S = 10**6
    causal attention counts in milliseconds.

    Raises
    ------
    WorkloadError
        A missing size parameter, or a condition that is not linear in the ranks.
    """
    sizes = cascade.rank_sizes(params)
    p = cascade.resolved_params(params)
    for e in cascade.einsums:
        _check_names(e, p)
    c = _Counter(cascade, sizes, p)
    per = tuple(c.einsum(e) for e in cascade.einsums)
    macs = sum(ec.macs for ec in per)
    ops: dict[str, float] = {}
    for ec in per:
        for k, v in ec.ops.items():
            ops[k] = ops.get(k, 0.0) + v
    comp = 0.0
    for name in cascade.inputs:
        comp += c.tensor_elems(name) * cascade.tensors[name].dtype_bits / 8
    for name in cascade.outputs:
        comp += c.output_elems(name) * cascade.tensors[name].dtype_bits / 8
    return CascadeCounts(
        einsums=per,
        macs=macs,
        ops=ops,
        flops=2 * macs + sum(ops.values()),
        compulsory_bytes=comp,
        reads_bytes=sum(e.reads_bytes for e in per),
        writes_bytes=sum(e.writes_bytes for e in per),
        params=dict(p),
    )


class _Counter:
    def __init__(self, cascade: Cascade, sizes: dict[str, int], params: dict[str, float]):
        self.c, self.sizes, self.p = cascade, sizes, params
        self.pres: dict[str, Presence] = {}
        self.hidden: dict[tuple[str, _Form], str] = {}
        self.hidden_form: dict[str, _Form] = {}
        self.cache: dict = {}
        for name in cascade.inputs:
            self.pres[name] = self._annotation(name, cascade.tensors[name].ranks)
        for name in cascade.tensors:
            if name not in cascade.inputs and name not in {e.name for e in cascade.einsums}:
                self.pres[name] = FULL

    def _annotation(self, name: str, ranks: tuple[str, ...]) -> Presence:
        sp = self.c.tensors[name].sparsity
        if sp is None or sp.density is None or sp.density >= 1:
            return FULL
        return (Conj(factors=frozenset({(name, float(sp.density), tuple(ranks))})),)

    def tensor_elems(self, name: str) -> float:
        ranks = self.c.tensors[name].ranks
        return count_presence(self.pres.get(name, FULL), ranks, self.sizes, self.cache)

    def output_elems(self, name: str) -> float:
        spec = self.c.tensors[name]
        if spec.iterative:  # the final value only
            return float(math.prod(self.sizes[r] for r in spec.ranks))
        return self.tensor_elems(name)

    # --- presence of references and expressions -----------------------------------------
    def ref_presence(self, ref: TensorRef, e: Einsum) -> Presence:
        """Where the operand ``ref`` is present, over the Einsum's ranks.

        The stored presence of the tensor, renamed through the reference's indices
        (``workloads._refmatch``): a split pair ``(a, b)`` stands for ``a*T + b`` (and adds
        the padding bound ``a*T + b < size``); a split tensor read through its parent rank
        ``x`` gets *hidden* ranks ``m1~x``, ``m0~x`` pinned by ``m1~x * M0 + m0~x == x``,
        so conditions on the split ranks stay exact (this is how the executor reads it).
        """
        spec = self.c.tensors[ref.name]
        if spec.iterative or ref.name not in self.pres:
            return FULL  # running state (init present), or read at its previous value
        mapping: dict[str, tuple[dict[str, int], int] | None] = {}
        extra: set[Constraint] = set()
        pins: list[tuple[set[str], Constraint]] = []
        for seg in match_cascade_ref(self.c, ref):
            sp = seg.split
            if seg.kind == "one":
                (ix,) = seg.index
                if ix.rank is None:
                    assert ix.const is not None  # an index is a rank or a constant
                    const = int(eval_int(ix.const, self.p, where=f"`{e.text}`"))
                    mapping[seg.canon[0]] = ({}, const)
                else:
                    mapping[seg.canon[0]] = ({ix.rank: 1}, ix.offset)
                    if ix.offset:  # positions shifted out of range are absent
                        n = self.sizes[seg.canon[0]]
                        extra.add(make_constraint("<=", {ix.rank: -1}, -ix.offset))
                        extra.add(make_constraint("<=", {ix.rank: 1}, ix.offset - (n - 1)))
                continue
            assert sp is not None
            tile = self.sizes[sp.inner]
            if seg.kind == "pair":
                form = {str(seg.index[0].rank): tile, str(seg.index[1].rank): 1}
                mapping[seg.canon[0]] = (form, 0)
                if self.sizes[sp.rank] % tile:
                    extra.add(make_constraint("<=", form, -(self.sizes[sp.rank] - 1)))
                continue
            x = str(seg.index[0].rank)
            h1, h0 = self._hidden(sp.outer, (((x, 1),), 0)), self._hidden(sp.inner, (((x, 1),), 0))
            mapping[sp.outer], mapping[sp.inner] = ({h1: 1}, 0), ({h0: 1}, 0)
            pins.append(({h1, h0}, make_constraint("==", {h1: tile, h0: 1, x: -1}, 0)))
        terms = []
        for c in self.pres[ref.name]:
            kept = self._retag(c, mapping)
            if kept is None:
                continue
            sub = substitute(kept, mapping)
            used = _ranks_of(sub)
            cons = extra | {pin for hs, pin in pins if hs & used}
            terms.append(Conj(sub.cons | cons, sub.factors))
        return pres_or((), tuple(terms)) if terms else ()

    def _hidden(self, rank: str, form: _Form) -> str:
        """The hidden rank standing for split rank ``rank`` of the parent value ``form``."""
        key = (rank, form)
        if key not in self.hidden:
            name = f"{rank}{HIDDEN}{len(self.hidden)}"
            self.hidden[key] = name
            self.hidden_form[name] = form
            self.sizes[name] = self.sizes[rank]
        return self.hidden[key]

    def _retag(self, c: Conj, mapping: dict[str, tuple[dict[str, int], int] | None]) -> Conj | None:
        """Hidden ranks of a stored presence follow the map of the value they are pinned to
        (added to ``mapping``); where that value has no linear image they are projected out."""
        drop = []
        for h in sorted(_ranks_of(c)):
            if HIDDEN not in h:
                continue
            coeffs, k = self.hidden_form[h]
            new: dict[str, int] = {}
            for r, a in coeffs:
                form = mapping.get(r, ({r: 1}, 0))
                if form is None:
                    drop.append(h)
                    break
                k += a * form[1]
                for r2, b in form[0].items():
                    new[r2] = new.get(r2, 0) + a * b
            else:
                rank = h.split(HIDDEN, 1)[0]
                canon = (tuple(sorted((r, v) for r, v in new.items() if v)), k)
                mapping[h] = self._split_back(rank, canon) or ({self._hidden(rank, canon): 1}, 0)
        return project(c, drop, self.sizes) if drop else c

    def _split_back(self, rank: str, form: _Form) -> tuple[dict[str, int], int] | None:
        """A hidden part of a split pinned to ``a*T + b`` (a pair of that split's sizes) *is*
        ``a`` (outer) or ``b`` (inner): the read went whole and came back split."""
        sp = next((s for s in self.c.splits.values() if rank in (s.outer, s.inner)), None)
        coeffs, k = form
        if sp is None or k != 0 or len(coeffs) != 2:
            return None
        tile = self.sizes[sp.inner]
        (a, ca), (b, cb) = sorted(coeffs, key=lambda rc: -rc[1])
        if (ca, cb) != (tile, 1) or tile == 1:
            return None
        if self.sizes[a] != self.sizes[sp.outer] or self.sizes[b] != tile:
            return None
        return ({a if rank == sp.outer else b: 1}, 0)

    def node_presence(self, x: Expr, e: Einsum, memo: dict[int, Presence]) -> Presence:
        key = id(x)
        if key in memo:
            return memo[key]
        if isinstance(x, (Num, Name)):
            p = FULL
        elif isinstance(x, TensorRef):
            p = self.ref_presence(x, e)
        elif isinstance(x, Unary):
            p = self.node_presence(x.arg, e, memo)
        else:
            assert isinstance(x, Binary)
            a = self.node_presence(x.left, e, memo)
            b = self.node_presence(x.right, e, memo)
            p = pres_or(a, b) if x.op in UNION_OPS else pres_and(a, b)
        memo[key] = p
        return p

    def gate(self, e: Einsum) -> Presence:
        """Own condition, split padding and output sparsity of an Einsum, as a presence."""
        cons: set = set()
        ranks = set(e.ranks)
        if e.cond is not None:
            parents = {
                s.rank: ({s.outer: self.sizes[s.inner], s.inner: 1}, 0)
                for s in self.c.splits.values()
                if s.outer in ranks and s.inner in ranks
            }
            lin = linearize(e.cond, ranks | set(parents), self.p, where=f"`{e.text}`")
            raw = Conj(frozenset(make_constraint(op, co, k) for op, co, k in lin))
            cons |= substitute(raw, parents).cons
        for s in self.c.splits.values():
            if s.outer in ranks and s.inner in ranks and self.sizes[s.rank] % self.sizes[s.inner]:
                cons.add(
                    make_constraint(
                        "<=", {s.outer: self.sizes[s.inner], s.inner: 1}, -(self.sizes[s.rank] - 1)
                    )
                )
        factors: frozenset[Factor] = frozenset()
        spec = self.c.tensors[e.name]
        if not spec.iterative:
            ann = self._annotation(e.name, e.output.ranks)
            factors = ann[0].factors
        return (Conj(frozenset(cons), factors),)

    # --- one Einsum ---------------------------------------------------------------------
    def einsum(self, e: Einsum) -> EinsumCounts:
        memo: dict[int, Presence] = {}
        gate = self.gate(e)
        top = self.node_presence(e.expr, e, memo)
        point = pres_and(top, gate)
        cnt = lambda pr: count_presence(pr, e.ranks, self.sizes, self.cache)  # noqa: E731
        points = cnt(point)
        ops: dict[str, float] = {}
        macs = 0.0
        mac_node = _mac_node(e)

        def add(kind: str, n: float) -> None:
            if n:
                ops[kind] = ops.get(kind, 0.0) + n

        def walk(x: Expr) -> None:
            if not _has_ref(x):
                return
            if isinstance(x, Unary):
                add(UNARY[x.fn].kind, cnt(pres_and(self.node_presence(x, e, memo), gate)))
                walk(x.arg)
            elif isinstance(x, Binary):
                if x.op in UNION_OPS:
                    both = pres_and(
                        self.node_presence(x.left, e, memo), self.node_presence(x.right, e, memo)
                    )
                    add(BINARY_KIND[x.op], cnt(pres_and(both, gate)))
                elif x is not mac_node:
                    add(BINARY_KIND[x.op], cnt(pres_and(self.node_presence(x, e, memo), gate)))
                walk(x.left)
                walk(x.right)

        walk(e.expr)
        if mac_node is not None:
            macs = points
        elif e.reduce_op is not None:
            add(REDUCE_KIND[e.reduce_op], points)
        reads = self._reads(e, point, memo, cnt)
        out_pres = point
        for r in e.reduce_ranks:
            out_pres = tuple(
                x for x in (eliminate(c, r, self.sizes[r]) for c in out_pres) if x is not None
            )
        out_pres = self._unpin(out_pres, set(e.output.ranks))
        if not e.iterative_rank:
            self.pres[e.name] = out_pres
        writes = count_presence(out_pres, e.output.ranks, self.sizes, self.cache)
        rb = sum(n * self.c.tensors[t].dtype_bits / 8 for t, n in reads.items())
        wb = writes * self.c.tensors[e.name].dtype_bits / 8
        return EinsumCounts(
            name=e.name,
            macs=macs,
            ops=ops,
            reads_elems=reads,
            writes_elems={e.name: writes},
            reads_bytes=rb,
            writes_bytes=wb,
            points=points,
        )

    def _unpin(self, pres: Presence, keep: set[str]) -> Presence:
        """Project out hidden ranks hanging on ranks not in ``keep`` (reduced away)."""
        out = []
        for c in pres:
            drop = [
                h
                for h in _ranks_of(c)
                if HIDDEN in h and any(r not in keep for r, _ in self.hidden_form[h][0])
            ]
            pc = project(c, sorted(drop), self.sizes) if drop else c
            if pc is not None:
                out.append(pc)
        return pres_or((), tuple(out)) if out else ()

    def _reads(
        self, e: Einsum, point: Presence, memo: dict[int, Presence], cnt
    ) -> dict[str, float]:
        need: dict[TensorRef, Presence] = {}

        def visit(x: Expr, n: Presence) -> None:
            if isinstance(x, TensorRef):
                need[x] = pres_or(need[x], n) if x in need else n
            elif isinstance(x, Unary):
                visit(x.arg, n)
            elif isinstance(x, Binary):
                for child in (x.left, x.right):
                    visit(
                        child,
                        pres_and(n, self.node_presence(child, e, memo)) if x.op in UNION_OPS else n,
                    )

        visit(e.expr, point)
        reads: dict[str, float] = {}
        for ref, n in need.items():
            reads[ref.name] = reads.get(ref.name, 0.0) + cnt(n)
        return reads


def _check_names(e: Einsum, params: Mapping[str, float]) -> None:
    """Every parameter the Einsum reads (in its expression, condition and constant indices
    such as ``RNV[b,M1,p]``) has a value: a typo is an error here, not a silent count."""
    names = expr_names(e.expr) + (expr_names(e.cond) if e.cond is not None else [])
    for ref in (e.output, *expr_refs(e.expr)):
        for ix in ref.indices:
            if ix.const is not None:
                names += expr_names(ix.const)
    ranks = set(e.ranks)
    for name in dict.fromkeys(names):
        if name not in params and name not in ranks and not name[0].islower():
            text = e.text if len(e.text) <= 160 else f"{e.text[:80]} ... {e.text[-80:]}"
            raise WorkloadError(
                f"unknown parameter {name} in `{text}`",
                path=f"line {e.line}" if e.line else f"Einsum {e.name}",
                expected=f"a parameter with a value: one of {sorted(params)}",
                got=name,
            )


def _ranks_of(c: Conj) -> set[str]:
    """Ranks named by a conjunction's constraints and factors."""
    out = {r for _, coeffs, _ in c.cons for r, _ in coeffs}
    return out | {r for _, _, ranks in c.factors for r in ranks}


def _mac_node(e: Einsum) -> Binary | None:
    """The tensor-by-tensor ``*`` feeding a ``sum`` reduction (scalar factors peeled off)."""
    if e.reduce_op != "sum" or not e.reduce_ranks:
        return None
    x = e.expr
    while isinstance(x, Binary) and x.op == "*":
        left, right = _has_ref(x.left), _has_ref(x.right)
        if left and right:
            return x
        x = x.left if left else x.right
    return None


def _has_ref(x: Expr) -> bool:
    if isinstance(x, TensorRef):
        return True
    if isinstance(x, Unary):
        return _has_ref(x.arg)
    if isinstance(x, Binary):
        return _has_ref(x.left) or _has_ref(x.right)
    return False
