"""Assemble parsed statements into a checked :class:`Cascade`.

Rules beyond the grammar (``docs/cascade_language.md``): an output rank comes from an
input or from the condition (a rank only the condition binds is broadcast, then gated);
references line up with a tensor's ranks as ``workloads._refmatch`` says.

Every check raises :class:`~archsim.errors.WorkloadError` at the statement's path
(``line L, col C`` or ``einsums[i]``), quoting the statement and saying what was expected
and what was given.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

from archsim.errors import WorkloadError

from ._ast import (
    Binary,
    Cascade,
    Einsum,
    FrozenMap,
    Sparsity,
    Split,
    TensorRef,
    TensorSpec,
    Unary,
    expr_names,
    expr_refs,
    first_node,
)
from ._lex import Where
from ._limits import check_extent, check_number
from ._parse import EinsumStmt, ParamStmt, RankSizeStmt, SparsityStmt, SplitStmt, Stmt, TensorStmt
from ._refmatch import match_ref, same_size

__all__ = ["assemble"]


class _Assembler:
    def __init__(self, name: str, params: Mapping[str, int | float] | None) -> None:
        self.name = name
        self.params: dict[str, int | float] = {}
        self.override = dict(params or {})
        self.decl: dict[str, TensorStmt] = {}
        self.sparsity: dict[str, SparsityStmt] = {}
        self.splits: dict[str, Split] = {}
        self.rank_params: dict[str, str] = {}
        self.einsums: list[Einsum] = []
        self.defined: dict[str, Einsum] = {}
        self.canon: dict[str, tuple[str, ...]] = {}
        self.iterative: dict[str, tuple[str, ...]] = {}
        self.forward: list[tuple[TensorRef, Where, int | None]] = []
        self.all_outputs: set[str] = set()

    # --- declarations -------------------------------------------------------------------
    def param(self, s: ParamStmt) -> None:
        if s.name in self.params:
            raise s.where.error(
                f"duplicate definition of param {s.name}",
                expected="one definition",
                got=f"{s.name} = {s.value}",
            )
        w = s.where.path
        where = w if w.startswith("params.") else f"{w}: param {s.name}"
        self.params[s.name] = check_number(s.value, where)

    def tensor(self, s: TensorStmt) -> None:
        if s.name in self.decl or s.name in self.defined:
            raise s.where.error(
                f"duplicate definition of tensor {s.name}", expected="one declaration", got=s.name
            )
        if len(set(s.ranks)) != len(s.ranks):
            raise s.where.error(
                f"tensor {s.name} repeats a rank", expected="distinct ranks", got=list(s.ranks)
            )
        self.decl[s.name] = s
        self.canon[s.name] = s.ranks

    def split(self, s: SplitStmt) -> None:
        taken = set(self.splits) | {x for sp in self.splits.values() for x in (sp.outer, sp.inner)}
        names = (s.rank, s.outer, s.inner)
        if len(set(names)) != 3 or s.outer in taken or s.inner in taken or s.rank in self.splits:
            raise s.where.error(
                "bad split",
                expected="rank -> new_outer, new_inner : TILE with "
                "three distinct, not yet split ranks",
                got=f"{s.rank} -> {s.outer}, {s.inner}",
            )
        for n in names:
            if not n[0].islower():
                raise s.where.error(
                    "rank names start with a lower-case letter", expected="lower-case rank", got=n
                )
        self.splits[s.rank] = Split(s.rank, s.outer, s.inner, s.tile)
        self.rank_params.setdefault(s.inner, s.tile if isinstance(s.tile, str) else s.inner.upper())
        if isinstance(s.tile, int):
            self.params.setdefault(self.rank_params[s.inner], s.tile)

    def rank_size(self, s: RankSizeStmt) -> None:
        if s.rank in self.rank_params:
            raise s.where.error(
                f"duplicate size for rank {s.rank}", expected="one size", got=s.size
            )
        self.rank_params[s.rank] = s.size

    # --- Einsums ------------------------------------------------------------------------
    def einsum(self, s: EinsumStmt) -> None:
        w, out = s.where, s.output
        col = s.cols.get(out.name)
        if out.name in self.defined:
            raise w.error(
                f"duplicate definition of {out.name}",
                col,
                expected="one Einsum per output",
                got=f"also defined by `{self.defined[out.name].text}`",
            )
        for ix in out.indices:
            if ix.rank is None:
                raise w.error(
                    "output indices must be ranks", col, expected="rank names", got=str(ix)
                )
        ranks_out = out.ranks
        if len(set(ranks_out)) != len(ranks_out):
            raise w.error(
                "output repeats a rank", col, expected="distinct ranks", got=list(ranks_out)
            )
        it = [ix for ix in out.indices if ix.offset]
        if len(it) > 1 or (it and it[0].offset != 1):
            raise w.error(
                "an iterative output advances one rank by +1",
                col,
                expected="e.g. RM[m1+1,p]",
                got=str(out),
            )
        it_rank = it[0].rank if it else None
        if s.init is not None and it_rank is None:
            raise w.error(
                "init is only for iterative outputs", expected="OUT[r+1,...] = ...", got=str(out)
            )
        refs = expr_refs(s.expr)
        if not refs:
            raise w.error(
                "an Einsum needs at least one input tensor",
                expected="a tensor reference on the right",
                got=str(s.expr),
            )
        # canonical ranks of the output
        if out.name in self.decl and self.decl[out.name].ranks != ranks_out:
            raise w.error(
                f"rank/shape mismatch for {out.name}",
                col,
                expected=f"{out.name}[{','.join(self.decl[out.name].ranks)}] (as declared)",
                got=str(out),
            )
        self.canon.setdefault(out.name, ranks_out)
        if it_rank:
            self.iterative[out.name] = (it_rank,)
        in_ranks: dict[str, None] = {}
        for ref in refs:
            in_ranks.update(dict.fromkeys(ref.ranks))
            rc = s.cols.get(ref.name)
            if ref.name == out.name:
                if not it_rank:
                    raise w.error(
                        f"cycle: {ref.name} reads itself",
                        rc,
                        expected="no self-reference (or an iterative rank r+1)",
                        got=str(ref),
                    )
                self._check_ref(ref, ranks_out, w, s.cols)
                self._check_prev(ref, it_rank, w, rc, self_ref=True)
            elif ref.name in self.defined or (
                ref.name in self.decl and ref.name not in self.all_outputs
            ):
                self._check_ref(
                    ref,
                    self.canon[ref.name],
                    w,
                    s.cols,
                    what="declaration" if ref.name in self.decl else "definition",
                )
                if ref.name in self.iterative:
                    self._check_iter_ref(ref, self.iterative[ref.name][0], w, rc)
            elif ref.name in self.all_outputs:
                self.forward.append((ref, w, rc))  # resolved at the end
            else:
                raise w.error(
                    f"undefined tensor {ref.name}",
                    rc,
                    expected="a declared tensor (tensor NAME[...]) or one computed earlier",
                    got=ref.name,
                )
        # ranks: from the inputs, or introduced by the condition (broadcast, then gated)
        bound = set(expr_names(s.cond)) if s.cond is not None else set()
        for r in ranks_out:
            if r not in in_ranks and r not in bound:
                raise w.error(
                    f"output rank {r} is not produced by any input",
                    s.cols.get(r),
                    expected=f"{r} in an input of the right-hand side or in the condition",
                    got=[str(x) for x in refs],
                )
        dropped = tuple(r for r in in_ranks if r not in ranks_out)
        if s.reduce_ranks is not None:
            for r in s.reduce_ranks:
                if r in ranks_out:
                    raise w.error(
                        f"reduced rank {r} is also an output rank",
                        s.cols.get(r),
                        expected="reduced ranks absent from the output",
                        got=r,
                    )
                if r not in in_ranks:
                    raise w.error(
                        f"reduced rank {r} is not in any input",
                        s.cols.get(r),
                        expected=f"one of {list(dropped)}",
                        got=r,
                    )
            if set(s.reduce_ranks) != set(dropped):
                raise w.error(
                    "reduction must list every dropped rank",
                    expected=list(dropped),
                    got=list(s.reduce_ranks),
                )
            reduce_op = s.reduce_op if dropped else None
        else:
            top = s.expr
            while isinstance(top, Unary):
                top = top.arg
            if dropped and isinstance(top, Binary) and top.op in ("max", "min"):
                raise w.error(
                    f"'{top.op}' map with dropped ranks needs an explicit reduction",
                    expected=f"e.g. sum({','.join(dropped)}) or max({','.join(dropped)})",
                    got=list(dropped),
                )
            reduce_op = "sum" if dropped else None
        all_ranks = (*ranks_out, *dropped)
        for name in expr_names(s.expr):
            if name[0].islower():
                raise w.error(
                    f"unknown name {name}",
                    s.cols.get(name),
                    expected="a tensor reference, number or parameter (upper-case)",
                    got=name,
                )
        if s.cond is not None:
            for name in expr_names(s.cond):
                if name[0].islower() and name not in all_ranks and name not in self.splits:
                    raise w.error(
                        f"condition uses rank {name}, which the Einsum does not iterate",
                        s.cols.get(name),
                        expected=list(all_ranks),
                        got=name,
                    )
        unary = first_node(s.expr, Unary)
        top = s.expr
        while isinstance(top, Unary):
            top = top.arg
        einsum = Einsum(
            output=out,
            inputs=tuple(dict.fromkeys(refs)),
            map_op=top.op if isinstance(top, Binary) else None,
            reduce_op=reduce_op,
            reduce_ranks=dropped,
            unary=unary.fn if isinstance(unary, Unary) else None,
            condition=str(s.cond) if s.cond is not None else None,
            ranks=all_ranks,
            line=_line_of(w),
            expr=s.expr,
            cond=s.cond,
            init=(s.init if s.init is not None else (0.0 if it_rank else None)),
            text=w.text.split("#", 1)[0].strip(),
            iterative_rank=it_rank,
        )
        self.einsums.append(einsum)
        self.defined[out.name] = einsum

    def _check_ref(
        self,
        ref: TensorRef,
        canon: Sequence[str],
        w: Where,
        cols: Mapping,
        *,
        what: str = "earlier use",
    ) -> None:
        """A reference matches the tensor's ranks (see ``workloads._refmatch``)."""
        if match_ref(ref.indices, canon, self.splits, self._same_size) is None:
            raise w.error(
                f"rank/shape mismatch for {ref.name}",
                cols.get(ref.name),
                expected=f"{ref.name}[{','.join(canon)}] (as in its {what})",
                got=f"{ref.name}[{','.join(str(i) for i in ref.indices)}]",
            )

    def _same_size(self, a: str, b: str) -> bool:
        return same_size(a, b, self.splits, self.rank_params)

    def _check_prev(
        self, ref: TensorRef, it_rank: str, w: Where, col: int | None, *, self_ref: bool
    ) -> None:
        for ix in ref.indices:
            if ix.rank == it_rank and ix.offset != 0:
                raise w.error(
                    f"cycle: {ref.name} reads its own value being computed",
                    col,
                    expected=f"{ref.name} at {it_rank} (the previous value)",
                    got=str(ref),
                )

    def _check_iter_ref(self, ref: TensorRef, it_rank: str, w: Where, col: int | None) -> None:
        for ix in ref.indices:
            if ix.rank is not None and ix.offset not in (0, 1):
                raise w.error(
                    "bad offset on an iterative rank", col, expected="r or r+1", got=str(ix)
                )

    # --- finish -------------------------------------------------------------------------
    def finish(self) -> Cascade:
        for ref, w, col in self.forward:
            later = self.defined[ref.name]
            it = later.iterative_rank
            if it is None or it not in ref.ranks or any(ix.offset for ix in ref.indices):
                raise w.error(
                    f"{ref.name} used before definition",
                    col,
                    expected=f"{ref.name} computed earlier (or read at the previous "
                    "index of its iterative rank)",
                    got=str(ref),
                )
            self._check_ref(ref, self.canon[ref.name], w, {})
        # sparsity targets
        for name, s in self.sparsity.items():
            if name not in self.canon:
                raise s.where.error(
                    f"sparsity on unknown tensor {name}",
                    expected="a declared or computed tensor",
                    got=name,
                )
            if name in self.iterative:
                raise s.where.error(
                    f"sparsity on iterative tensor {name} is not supported",
                    expected="a non-iterative tensor",
                    got=name,
                )
            sp = s.sparsity
            ranks = self.canon[name]
            if sp.kind == "mask":
                if sp.mask not in self.decl:
                    raise s.where.error(
                        f"undefined mask tensor {sp.mask}",
                        expected="a declared input tensor",
                        got=sp.mask,
                    )
                if len(self.decl[sp.mask].ranks) != len(ranks):
                    raise s.where.error(
                        "mask rank mismatch",
                        expected=list(ranks),
                        got=list(self.decl[sp.mask].ranks),
                    )
            for key, _ in sp.tile:
                if key != "M" and key not in ranks:
                    raise s.where.error(
                        f"tile key {key} is not a rank of {name}", expected=["M", *ranks], got=key
                    )
            if sp.kind in ("block", "slice") and len(ranks) < 2:
                raise s.where.error(
                    f"{sp.kind} sparsity needs a tensor of >= 2 ranks",
                    expected=">= 2 ranks",
                    got=list(ranks),
                )
        for p, v in self.override.items():
            self.params[p] = check_number(v, f"param {p}")
        cascade = self._cascade()
        self._check_sizes(cascade)
        return cascade

    def _check_sizes(self, cascade: Cascade) -> None:
        """Every size or tile parameter given is a positive integer <= ``MAX_EXTENT``, and
        when all are given, every Einsum's iteration space is <= ``MAX_POINTS``
        (``workloads._limits``): a bad size is refused here, not at the first count."""
        outers = {s.outer for s in cascade.splits.values()}
        for rank in cascade.all_ranks():
            name = cascade.size_param(rank)
            if rank not in outers and name in cascade.params:
                check_extent(cascade.params[name], f"param {name}", f"size for rank {rank}")
        needed = {cascade.size_param(r) for r in cascade.all_ranks() if r not in outers}
        if needed <= set(cascade.params):
            cascade.rank_sizes()

    def _cascade(self) -> Cascade:
        read: dict[str, None] = {}
        for e in self.einsums:
            for r in e.inputs:
                if r.name != e.name:
                    read[r.name] = None
        for s in self.sparsity.values():
            if s.sparsity.mask:
                read[s.sparsity.mask] = None
        tensors: dict[str, TensorSpec] = {}
        for name, ranks in self.canon.items():
            if name not in read and name not in self.defined:
                continue  # declared, never used
            d = self.decl.get(name)
            sp = self.sparsity[name].sparsity if name in self.sparsity else None
            if sp is None and d is not None and d.density is not None and d.density < 1:
                sp = Sparsity("density", density=d.density)
            defining = self.defined.get(name)
            tensors[name] = TensorSpec(
                name=name,
                ranks=tuple(ranks),
                dtype_bits=d.bits if d else 16,
                sparsity=sp,
                dtype=d.dtype if d else "bf16",
                iterative=self.iterative.get(name, ()),
                init=defining.init if defining is not None and defining.iterative_rank else None,
            )
        inputs = tuple(n for n in self.decl if n not in self.defined and n in read)
        outputs = tuple(n for n in self.defined if n not in read)
        inter = tuple(n for n in self.defined if n in read)
        return Cascade(
            name=self.name,
            einsums=tuple(self.einsums),
            tensors=FrozenMap(tensors),
            params=FrozenMap(dict(self.params)),
            inputs=inputs,
            outputs=outputs,
            intermediates=inter,
            splits=FrozenMap(dict(self.splits)),
            rank_params=FrozenMap(dict(self.rank_params)),
        )


def _line_of(w: Where) -> int | None:
    return int(w.path[5:]) if w.path.startswith("line ") and w.path[5:].isdigit() else None


def assemble(
    stmts: Iterable[Stmt], *, name: str = "cascade", params: Mapping[str, int | float] | None = None
) -> Cascade:
    """Check statements and build the :class:`Cascade` (see module docstring)."""
    a = _Assembler(name, params)
    stmts = list(stmts)
    # declarations first (they may follow the Einsums that use them), Einsums in order
    for s in stmts:
        if isinstance(s, ParamStmt):
            a.param(s)
        elif isinstance(s, TensorStmt):
            a.tensor(s)
        elif isinstance(s, SplitStmt):
            a.split(s)
        elif isinstance(s, RankSizeStmt):
            a.rank_size(s)
    for s in stmts:
        if isinstance(s, SparsityStmt):
            if s.name in a.sparsity:
                raise s.where.error(
                    f"duplicate sparsity for {s.name}", expected="one", got=str(s.sparsity)
                )
            a.sparsity[s.name] = s
    a.all_outputs = {s.output.name for s in stmts if isinstance(s, EinsumStmt)}
    n = 0
    for s in stmts:
        if isinstance(s, EinsumStmt):
            a.einsum(s)
            n += 1
    if n == 0:
        raise WorkloadError(
            "a cascade needs at least one Einsum",
            path=f"cascade {name}",
            expected=">= 1 Einsum",
            got=0,
        )
    return a.finish()
