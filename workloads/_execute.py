"""Reference executor: runs any cascade on small numpy arrays (float64).

Presence semantics (as in TeAAL): every tensor value carries a boolean presence mask. An
element not computed (condition false, masked out by sparsity, padding of a split rank that
does not divide) is *absent*. Map ``*``, ``/``, ``-`` and unary functions of an absent operand
give absent; ``+``, ``max``, ``min`` take the union (absent = the identity: 0, -inf, +inf).
Reductions skip absent elements; a reduction over only absent elements is absent. Returned
arrays hold 0 where absent.

Each Einsum is evaluated by broadcasting its operands over its iteration space (output ranks
then reduced ranks) and reducing with numpy, so there is no Python loop over elements. A
group of Einsums tied by an iterative rank (``RD[m1+1] = SPD[m1] + ...`` with
``SPD[m1] = PRM[m1] * RD[m1]``) runs as one loop over that rank, one slice per step.
"""

from __future__ import annotations

import heapq
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from archsim.errors import WorkloadError

from ._ast import Binary, Cascade, Einsum, Expr, Name, Num, TensorRef, Unary
from ._cond import eval_cond, eval_int
from ._limits import check_executable
from ._ops import UNARY, UNION_OPS
from ._refmatch import match_cascade_ref
from ._sparsity import make_mask

__all__ = ["execute", "execute_with_presence", "Value"]

_IDENTITY = {"+": 0.0, "max": -np.inf, "min": np.inf}
_BINOP = {
    "*": np.multiply,
    "/": np.divide,
    "-": np.subtract,
    "+": np.add,
    "max": np.maximum,
    "min": np.minimum,
}


@dataclass
class Value:
    """A tensor's values and presence mask (axes = the tensor's ranks, iterative ranks +1)."""

    val: np.ndarray
    pres: np.ndarray


def execute(
    cascade: Cascade,
    inputs: Mapping[str, np.ndarray],
    params: Mapping[str, int | float] | None = None,
    *,
    seed: int = 0,
) -> dict[str, np.ndarray]:
    """Run ``cascade`` on ``inputs``; return every computed tensor (absent elements as 0).

    Parameters
    ----------
    cascade
        The cascade to run.
    inputs
        One array per cascade input (and per ``mask(T)`` tensor), axes in the declared rank
        order. Rank sizes missing from ``params`` are taken from these shapes.
    params
        Shape/tile parameters overriding the cascade's defaults.
    seed
        Seed of the pseudo-random sparsity masks (see ``workloads._sparsity``).

    Returns
    -------
    dict
        Tensor name -> float64 array over the tensor's ranks. Iterative tensors keep their
        ``size + 1`` extent along the iterative rank (index 0 = init, last = final value).

    Raises
    ------
    WorkloadError
        A missing input, a shape that disagrees with the rank sizes, a missing parameter.
    """
    env = execute_with_presence(cascade, inputs, params, seed=seed)
    return {n: np.where(v.pres, v.val, 0.0) for n, v in env.items() if n not in cascade.inputs}


def _sizes(
    cascade: Cascade, inputs: Mapping[str, np.ndarray], params: Mapping[str, int | float] | None
) -> tuple[dict[str, int], dict[str, float]]:
    merged: dict[str, float] = {**cascade.params, **(params or {})}
    parts = {r for s in cascade.splits.values() for r in (s.outer, s.inner)}
    for name in cascade.inputs:
        if name not in inputs:
            raise WorkloadError(
                f"missing input {name}",
                path=f"inputs.{name}",
                expected=f"array over {list(cascade.tensors[name].ranks)}",
                got=sorted(inputs),
            )
        spec = cascade.tensors[name]
        shape = np.shape(inputs[name])
        if len(shape) != len(spec.ranks):
            raise WorkloadError(
                f"input {name} has the wrong number of axes",
                path=f"inputs.{name}",
                expected=list(spec.ranks),
                got=shape,
            )
        for r, n in zip(spec.ranks, shape, strict=True):
            if r not in parts:
                merged.setdefault(cascade.size_param(r), n)
    sizes = cascade.rank_sizes(merged)
    for name in cascade.inputs:
        spec = cascade.tensors[name]
        want = tuple(sizes[r] for r in spec.ranks)
        if np.shape(inputs[name]) != want:
            raise WorkloadError(
                f"input {name} shape disagrees with the rank sizes",
                path=f"inputs.{name}",
                expected=want,
                got=np.shape(inputs[name]),
            )
    return sizes, cascade.resolved_params(merged)


def execute_with_presence(
    cascade: Cascade,
    inputs: Mapping[str, np.ndarray],
    params: Mapping[str, int | float] | None = None,
    *,
    seed: int = 0,
) -> dict[str, Value]:
    """Like :func:`execute` but returns values and presence masks of every tensor."""
    sizes, p = _sizes(cascade, inputs, params)
    check_executable(cascade, sizes=sizes)
    env: dict[str, Value] = {}
    for name in cascade.inputs:
        val = np.asarray(inputs[name], dtype=np.float64)
        pres = np.ones(val.shape, dtype=bool)
        sp = cascade.tensors[name].sparsity
        if sp is not None:
            pres &= make_mask(sp, name, cascade.tensors[name].ranks, val.shape, p, inputs, seed)
        env[name] = Value(val, pres)
    run = _Runner(cascade, env, sizes, p, inputs, seed)
    for group in _schedule(cascade):
        run.group(group)
    return env


def _schedule(cascade: Cascade) -> list[list[int]]:
    """Einsum indices grouped into strongly connected components, in dependency order."""
    es = cascade.einsums
    producer = {e.name: i for i, e in enumerate(es)}
    deps = [{producer[r.name] for r in e.inputs if r.name in producer} for e in es]
    # Tarjan on a tiny graph (edges consumer -> producer)
    index: dict[int, int] = {}
    low: dict[int, int] = {}
    stack: list[int] = []
    comp_of: dict[int, int] = {}
    comps: list[list[int]] = []

    def visit(v: int) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in deps[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w not in comp_of:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp: list[int] = []
            while True:
                w = stack.pop()
                comp_of[w] = len(comps)
                comp.append(w)
                if w == v:
                    break
            comps.append(sorted(comp))

    for v in range(len(es)):
        if v not in index:
            visit(v)
    cdeps = [{comp_of[d] for i in c for d in deps[i]} - {k} for k, c in enumerate(comps)]
    users: list[set[int]] = [set() for _ in comps]
    for k, ds in enumerate(cdeps):
        for d in ds:
            users[d].add(k)
    indeg = [len(d) for d in cdeps]
    heap = [(comps[k][0], k) for k in range(len(comps)) if indeg[k] == 0]
    heapq.heapify(heap)
    order: list[list[int]] = []
    while heap:
        _, k = heapq.heappop(heap)
        order.append(comps[k])
        for u in users[k]:
            indeg[u] -= 1
            if indeg[u] == 0:
                heapq.heappush(heap, (comps[u][0], u))
    return order


class _Runner:
    def __init__(
        self,
        cascade: Cascade,
        env: dict[str, Value],
        sizes: dict[str, int],
        params: dict[str, float],
        inputs: Mapping[str, np.ndarray],
        seed: int,
    ) -> None:
        self.c, self.env, self.sizes, self.p = cascade, env, sizes, params
        self.inputs, self.seed = inputs, seed

    def group(self, idx: list[int]) -> None:
        es = [self.c.einsums[i] for i in idx]
        its = {e.iterative_rank for e in es if e.iterative_rank}
        if not its:
            (e,) = es
            val, pres = self.evaluate(e, {})
            self.env[e.name] = Value(np.where(pres, val, 0.0), pres)
            return
        if len(its) > 1:
            raise WorkloadError(
                "Einsums tied in a loop iterate different ranks",
                path=f"line {es[0].line}",
                expected="one iterative rank",
                got=sorted(its),
            )
        (r,) = its
        for e in es:
            if r not in e.output.ranks:
                raise WorkloadError(
                    f"{e.name} is in the loop over {r} but does not keep {r}",
                    path=f"line {e.line}",
                    expected=f"{r} an output rank of `{e.text}`",
                    got=list(e.output.ranks),
                )
            self._allocate(e, r)
        for i in range(self.sizes[r]):
            for e in es:
                val, pres = self.evaluate(e, {r: i})
                pos = e.output.ranks.index(r)
                off = e.output.indices[[ix.rank for ix in e.output.indices].index(r)].offset
                sl = (slice(None),) * pos + (i + off,)
                dst = self.env[e.name]
                dst.val[sl] = np.where(pres, val, 0.0)
                dst.pres[sl] = pres

    def _allocate(self, e: Einsum, r: str) -> None:
        shape = [self.sizes[x] + (1 if x == e.iterative_rank else 0) for x in e.output.ranks]
        val = np.zeros(shape)
        pres = np.zeros(shape, dtype=bool)
        if e.iterative_rank:
            pos = e.output.ranks.index(e.iterative_rank)
            sl = (slice(None),) * pos + (0,)
            val[sl] = e.init if e.init is not None else 0.0
            pres[sl] = True
        self.env[e.name] = Value(val, pres)

    # --- one Einsum ---------------------------------------------------------------------
    def evaluate(self, e: Einsum, fixed: dict[str, int]) -> tuple[np.ndarray, np.ndarray]:
        ranks = [r for r in e.ranks if r not in fixed]
        gate = self.gate(e, ranks, fixed)
        fast = self.product(e, ranks, fixed, gate)
        if fast is not None:
            return fast
        shape = tuple(self.sizes[r] for r in ranks)
        val, pres = self.expr(e.expr, e, ranks, fixed)
        pres = np.broadcast_to(pres & gate, shape)
        val = np.broadcast_to(val, shape)
        nred = len(e.reduce_ranks)
        if nred:
            axes = tuple(range(len(ranks) - nred, len(ranks)))
            if e.reduce_op == "sum":
                val = np.where(pres, val, 0.0).sum(axis=axes)
            else:
                ident = -np.inf if e.reduce_op == "max" else np.inf
                fn = np.max if e.reduce_op == "max" else np.min
                val = fn(np.where(pres, val, ident), axis=axes)
            pres = np.asarray(pres.any(axis=axes))
        return np.where(pres, val, 0.0), np.array(pres)

    def gate(self, e: Einsum, ranks: list[str], fixed: dict[str, int]) -> np.ndarray:
        """Condition, split padding and output sparsity, broadcastable over ``ranks``."""
        gate = np.ones((1,) * len(ranks), dtype=bool)
        coords = {
            r: np.arange(self.sizes[r]).reshape([-1 if k == j else 1 for k in range(len(ranks))])
            for j, r in enumerate(ranks)
        }
        coords.update({r: np.asarray(v) for r, v in fixed.items()})
        for s in self.c.splits.values():  # padding of a split that does not divide
            if s.outer in coords and s.inner in coords:
                coords.setdefault(s.rank, coords[s.outer] * self.sizes[s.inner] + coords[s.inner])
                gate = gate & (coords[s.rank] < self.sizes[s.rank])
        if e.cond is not None:
            gate = gate & eval_cond(e.cond, coords, self.p, where=f"`{e.text}`")
        spec = self.c.tensors[e.name]
        if spec.sparsity is not None and not spec.iterative:
            out_ranks = list(e.output.ranks)
            mshape = tuple(self.sizes[r] for r in out_ranks)
            mask = make_mask(
                spec.sparsity, e.name, out_ranks, mshape, self.p, self.inputs, self.seed
            )
            mask = mask[tuple(fixed[r] if r in fixed else slice(None) for r in out_ranks)]
            gate = gate & mask.reshape(mask.shape + (1,) * (len(ranks) - mask.ndim))
        return gate

    def product(
        self, e: Einsum, ranks: list[str], fixed: dict[str, int], gate: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray] | None:
        """Fast path: a product of tensors and scalars, summed, as two ``numpy.einsum`` calls.

        NOTE: exact under the presence semantics: absent operands contribute 0 to the value
        sum, and the output is present where the presence product (with the gate) sums > 0.
        """
        factors = _product_factors(e.expr)
        if factors is None or e.reduce_op not in (None, "sum"):
            return None
        scale = 1.0
        letter = {
            r: chr(ord("a") + i) if i < 26 else chr(ord("A") + i - 26) for i, r in enumerate(ranks)
        }
        vals: list[np.ndarray] = []
        press: list[np.ndarray] = []
        subs: list[str] = []
        for f in factors:
            if isinstance(f, TensorRef):
                v, p, labels = self.raw(f, e, fixed)
                vals.append(np.where(p, v, 0.0))
                press.append(p.astype(np.float64))
                subs.append("".join(letter[r] for r in labels))
            else:
                scale *= float(self.expr(f, e, ranks, fixed)[0])
        nout = len(ranks) - len(e.reduce_ranks)
        keep = [i for i, n in enumerate(gate.shape) if n != 1]
        seen = set("".join(subs)) | {letter[ranks[i]] for i in keep}
        if any(letter[r] not in seen for r in ranks[:nout]):  # a rank bound by the condition only
            gate = np.broadcast_to(gate, tuple(self.sizes[r] for r in ranks))
            keep = list(range(len(ranks)))
        g = gate.reshape([gate.shape[i] for i in keep]).astype(np.float64)
        gsub = "".join(letter[ranks[i]] for i in keep)
        spec = ",".join([*subs, gsub]) + "->" + "".join(letter[r] for r in ranks[:nout])
        val = np.einsum(spec, *vals, g, optimize=True) * scale
        pres = np.einsum(spec, *press, g, optimize=True) > 0
        return np.where(pres, val, 0.0), pres

    def expr(
        self, x: Expr, e: Einsum, ranks: list[str], fixed: dict[str, int]
    ) -> tuple[np.ndarray, np.ndarray]:
        if isinstance(x, Num):
            return np.asarray(x.value), np.asarray(True)
        if isinstance(x, Name):
            if x.name not in self.p:
                raise WorkloadError(
                    f"unknown parameter {x.name}",
                    path=f"`{e.text}`",
                    expected="a parameter of the cascade",
                    got=x.name,
                )
            return np.asarray(float(self.p[x.name])), np.asarray(True)
        if isinstance(x, TensorRef):
            return self.view(x, e, ranks, fixed)
        if isinstance(x, Unary):
            v, p = self.expr(x.arg, e, ranks, fixed)
            return UNARY[x.fn].fn(v), p
        assert isinstance(x, Binary)
        a, pa = self.expr(x.left, e, ranks, fixed)
        b, pb = self.expr(x.right, e, ranks, fixed)
        with np.errstate(all="ignore"):
            if x.op in UNION_OPS:
                ident = _IDENTITY[x.op]
                return _BINOP[x.op](np.where(pa, a, ident), np.where(pb, b, ident)), pa | pb
            return _BINOP[x.op](a, b), pa & pb

    def view(
        self, ref: TensorRef, e: Einsum, ranks: list[str], fixed: dict[str, int]
    ) -> tuple[np.ndarray, np.ndarray]:
        """The operand ``ref`` as arrays broadcastable over the iteration space ``ranks``."""
        val, pres, labels = self.raw(ref, e, fixed)
        return _align(val, labels, ranks), _align(pres, labels, ranks)

    def raw(
        self, ref: TensorRef, e: Einsum, fixed: dict[str, int]
    ) -> tuple[np.ndarray, np.ndarray, list[str]]:
        """The operand ``ref`` with one axis per distinct rank variable (``labels``)."""
        v = self.env[ref.name]
        val, pres = v.val, v.pres
        labels: list[str] = []
        axis = 0
        for seg in match_cascade_ref(self.c, ref):
            sp = seg.split
            if seg.kind == "pair":
                assert sp is not None
                val, pres = _split_axis(val, pres, axis, self.sizes[sp.outer], self.sizes[sp.inner])
                labels += [str(ix.rank) for ix in seg.index]
                axis += 2
                continue
            if seg.kind == "merge":
                assert sp is not None
                val, pres = _merge_axes(val, pres, axis, self.sizes[sp.rank])
                labels.append(str(seg.index[0].rank))
                axis += 1
                continue
            (ix,) = seg.index
            extent = val.shape[axis]
            if ix.rank is None:
                assert ix.const is not None  # an index is a rank or a constant
                pos = int(eval_int(ix.const, self.p, where=f"`{e.text}`"))
                if not 0 <= pos < extent:
                    raise WorkloadError(
                        f"constant index out of range in {ref}",
                        path=f"`{e.text}`",
                        expected=f"0..{extent - 1}",
                        got=pos,
                    )
                val, pres = val.take(pos, axis), pres.take(pos, axis)
            elif ix.rank in fixed:
                pos = fixed[ix.rank] + ix.offset
                ok = 0 <= pos < extent
                val = val.take(pos if ok else 0, axis)
                pres = pres.take(pos if ok else 0, axis) & ok
            else:
                n = self.sizes[ix.rank]
                src = np.arange(n) + ix.offset
                ok = (src >= 0) & (src < extent)
                src = np.clip(src, 0, extent - 1)
                shp = [1] * val.ndim
                shp[axis] = n
                val = val.take(src, axis)
                pres = pres.take(src, axis) & ok.reshape(shp)
                labels.append(ix.rank)
                axis += 1
        val, _ = _undiag(val, labels)
        pres, labels = _undiag(pres, labels)
        return val, pres, labels


def _split_axis(
    val: np.ndarray, pres: np.ndarray, axis: int, outer: int, inner: int
) -> tuple[np.ndarray, np.ndarray]:
    n = val.shape[axis]
    pad = outer * inner - n
    if pad:
        widths = [(0, 0)] * val.ndim
        widths[axis] = (0, pad)
        val, pres = np.pad(val, widths), np.pad(pres, widths)  # padding is absent
    shape = val.shape[:axis] + (outer, inner) + val.shape[axis + 1 :]
    return val.reshape(shape), pres.reshape(shape)


def _merge_axes(
    val: np.ndarray, pres: np.ndarray, axis: int, size: int
) -> tuple[np.ndarray, np.ndarray]:
    shape = val.shape[:axis] + (-1,) + val.shape[axis + 2 :]
    sl = (slice(None),) * axis + (slice(0, size),)
    return val.reshape(shape)[sl], pres.reshape(shape)[sl]


def _product_factors(x: Expr) -> list[Expr] | None:
    """The factors of a ``*`` chain of tensors and scalars, or None for any other tree."""
    if isinstance(x, Binary) and x.op == "*":
        a, b = _product_factors(x.left), _product_factors(x.right)
        return None if a is None or b is None else a + b
    if isinstance(x, (TensorRef, Num, Name)):
        return [x]
    return None


def _undiag(a: np.ndarray, labels: list[str]) -> tuple[np.ndarray, list[str]]:
    """Take the diagonal where a rank variable indexes two axes (``X[i,i]``)."""
    while len(set(labels)) != len(labels):
        dup = next(r for r in labels if labels.count(r) > 1)
        i = labels.index(dup)
        j = labels.index(dup, i + 1)
        a = np.diagonal(a, axis1=i, axis2=j)  # the diagonal axis goes last
        labels = [x for n, x in enumerate(labels) if n not in (i, j)] + [dup]
    return a, labels


def _align(a: np.ndarray, labels: list[str], ranks: list[str]) -> np.ndarray:
    order = sorted(range(len(labels)), key=lambda n: ranks.index(labels[n]))
    a = np.transpose(a, order)
    present = [labels[n] for n in order]
    shape = [a.shape[present.index(r)] if r in present else 1 for r in ranks]
    return a.reshape(shape)
