"""Recursive-descent parser of the cascade text notation into statement values.

Grammar (one statement per line, ``#`` comments)::

    param NAME = NUMBER
    tensor NAME[r, ...] [: attr ...]          attr: bf16|fp16|fp32|fp8|int8|bool|bits=N|density=F
    sparsity NAME : block(k=v, ..., density=F) | slice(...) | density(F) | mask(NAME[, density=F])
    rank r -> r1, r0 : TILE                   split rank (r = r1*TILE + r0)
    rank r : SIZE                             size parameter of rank r (default: R)
    REF = [sum|max|min(r, ...)] expr [if cond] [init [-]NUMBER|inf]
    expr  := term (("+"|"-") term)*           term := unary (("*"|"/") unary)*
    unary := "-" unary | NUMBER | inf | NAME | REF | FN(expr) | max(expr, expr) | (expr)
    REF   := NAME[index, ...]                 index := rank [+|- INT] | constant (M1, 0)
    cond  := expr CMP expr (and expr CMP expr)*     CMP: < <= > >= == !=

Rank names start with a lower-case letter; an index whose names all start upper-case (or a
number) is a constant (``RNV[M1,f,p]`` reads the last index of an iterative rank).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TypeVar

from ._ast import And, Binary, Compare, Cond, Expr, Index, Name, Num, Sparsity, TensorRef, Unary
from ._lex import Token, Where, tokenize
from ._limits import MAX_BITS, MAX_EXTENT, MAX_NESTING
from ._ops import DTYPES, REDUCE_OPS, UNARY

__all__ = [
    "ParamStmt",
    "TensorStmt",
    "SparsityStmt",
    "SplitStmt",
    "RankSizeStmt",
    "EinsumStmt",
    "Stmt",
    "parse_statements",
    "parse_line",
    "parse_einsum",
    "parse_sparsity",
]


@dataclass(frozen=True)
class ParamStmt:
    name: str
    value: int | float
    where: Where


@dataclass(frozen=True)
class TensorStmt:
    name: str
    ranks: tuple[str, ...]
    dtype: str
    bits: int
    density: float | None
    where: Where


@dataclass(frozen=True)
class SparsityStmt:
    name: str
    sparsity: Sparsity
    where: Where


@dataclass(frozen=True)
class SplitStmt:
    rank: str
    outer: str
    inner: str
    tile: int | str
    where: Where


@dataclass(frozen=True)
class RankSizeStmt:
    rank: str
    size: str
    where: Where


@dataclass(frozen=True)
class EinsumStmt:
    output: TensorRef
    reduce_op: str | None
    reduce_ranks: tuple[str, ...] | None
    expr: Expr
    cond: Cond | None
    init: float | None
    where: Where
    cols: dict  # name -> column of first mention (for error messages)


_N = TypeVar("_N")
Stmt = ParamStmt | TensorStmt | SparsityStmt | SplitStmt | RankSizeStmt | EinsumStmt
_CMP = ("<", "<=", ">", ">=", "==", "!=")


class _Parser:
    def __init__(self, where: Where) -> None:
        self.where = where
        self.toks: list[Token] = tokenize(where.text, where)
        self.i = 0
        self.cols: dict[str, int] = {}
        self.nest = 0  # current recursion depth of unary()
        self.depths: dict[int, tuple[object, int]] = {}  # id(node) -> (node, tree depth)

    # --- token helpers ------------------------------------------------------------------
    @property
    def tok(self) -> Token:
        return self.toks[self.i]

    def peek(self, k: int = 1) -> Token:
        return self.toks[min(self.i + k, len(self.toks) - 1)]

    def take(self) -> Token:
        t = self.toks[self.i]
        self.i = min(self.i + 1, len(self.toks) - 1)
        return t

    def fail(self, message: str, tok: Token | None = None, *, expected: object = None) -> None:
        t = tok or self.tok
        raise self.where.error(message, t.col, expected=expected, got=t.text or "end of line")

    def expect(self, text: str) -> Token:
        if self.tok.text != text or self.tok.kind == "end":
            self.fail(f"expected '{text}'", expected=repr(text))
        return self.take()

    def ident(self, what: str) -> Token:
        if self.tok.kind != "id":
            self.fail(f"expected {what}", expected=what)
        return self.take()

    def at(self, *texts: str) -> bool:
        return self.tok.kind != "end" and self.tok.text in texts

    def end(self) -> None:
        if self.tok.kind != "end":
            self.fail("unexpected text after statement", expected="end of line")

    def number(self) -> float:
        sign = -1.0 if self.at("-") else 1.0
        if self.at("-", "+"):
            self.take()
        if self.tok.kind == "num":
            return sign * float(self.take().text)
        if self.tok.text == "inf":
            self.take()
            return sign * float("inf")
        self.fail("expected a number", expected="a number")
        raise AssertionError  # unreachable

    def made(self, node: _N, *parts: object) -> _N:
        """``node`` (built from ``parts``), refused when its tree is deeper than MAX_NESTING
        (every later pass over the tree recurses; this keeps it far from Python's limit)."""
        d = 1 + max((self.depths.get(id(p), (p, 1))[1] for p in parts), default=0)
        if d > MAX_NESTING:
            self.fail(
                "expression nested too deeply",
                expected=f"at most {MAX_NESTING} levels of operators, calls, indices",
            )
        self.depths[id(node)] = (node, d)
        return node

    # --- statements ---------------------------------------------------------------------
    def statement(self) -> Stmt:
        head = self.tok
        if (
            head.kind == "id"
            and self.peek().text != "["
            and head.text in ("param", "tensor", "sparsity", "rank")
        ):
            self.take()
            stmt = getattr(self, f"_{head.text}")()
        else:
            stmt = self.einsum()
        self.end()
        return stmt

    def _param(self) -> ParamStmt:
        name = self.ident("a parameter name").text
        self.expect("=")
        value = self.number()
        return ParamStmt(name, int(value) if float(value).is_integer() else value, self.where)

    def _rank_list(self, close: str = "]") -> tuple[str, ...]:
        names: list[str] = []
        while True:
            t = self.ident("a rank name")
            if not t.text[0].islower():
                self.fail(
                    "rank names start with a lower-case letter",
                    t,
                    expected="a lower-case rank name",
                )
            names.append(t.text)
            if self.at(","):
                self.take()
                continue
            self.expect(close)
            return tuple(names)

    def _tensor(self) -> TensorStmt:
        name = self.ident("a tensor name").text
        self.expect("[")
        ranks = () if self.at("]") and self.take() else self._rank_list()
        dtype, bits, density = "bf16", 16, None
        if self.at(":"):
            self.take()
            while self.tok.kind == "id":
                t = self.take()
                if t.text in ("bits", "density"):
                    self.expect("=")
                    value = self.number()
                    if t.text == "density":
                        density = self._density(value, t)
                    elif not value.is_integer() or not 1 <= value <= MAX_BITS:
                        self.fail("bad bit width", t, expected=f"bits=N with 1 <= N <= {MAX_BITS}")
                    else:
                        dtype, bits = f"bits={int(value)}", int(value)
                elif t.text in DTYPES:
                    dtype, bits = t.text, DTYPES[t.text]
                else:
                    self.fail("unknown dtype", t, expected="|".join(DTYPES) + "|bits=N")
        return TensorStmt(name, ranks, dtype, bits, density, self.where)

    def _sparsity(self) -> SparsityStmt:
        name = self.ident("a tensor name").text
        self.expect(":")
        return SparsityStmt(name, self.sparsity_spec(), self.where)

    def sparsity_spec(self) -> Sparsity:
        kind_tok = self.ident("block|slice|density|mask")
        kind = kind_tok.text
        self.expect("(")
        if kind == "mask":
            mask = self.ident("a mask tensor name").text
            density = None
            if self.at(","):
                self.take()
                key = self.ident("density=F")
                if key.text != "density":
                    self.fail("unknown mask() argument", key, expected="density=F")
                self.expect("=")
                density = self._density(self.number(), key)
            self.expect(")")
            return Sparsity("mask", density=density, mask=mask)
        if kind == "density":
            d = self.number()
            self.expect(")")
            return Sparsity("density", density=self._density(d, kind_tok))
        if kind not in ("block", "slice"):
            self.fail("unknown sparsity kind", kind_tok, expected="block|slice|density|mask")
        tile: list[tuple[str, int | str]] = []
        density = None
        while not self.at(")"):
            key = self.ident("key=value")
            self.expect("=")
            if key.text == "density":
                density = self._density(self.number(), key)
            elif self.tok.kind == "id":
                tile.append((key.text, self.take().text))
            else:
                v = self.number()
                if not v.is_integer() or not 1 <= v <= MAX_EXTENT:
                    self.fail("bad tile size", key, expected="a positive integer <= 2**40")
                tile.append((key.text, int(v)))
            if not self.at(")"):
                self.expect(",")
        self.take()
        if density is None or not tile:
            self.fail(
                f"{kind}() needs a tile size and a density",
                kind_tok,
                expected=f"{kind}(M=64, density=0.3)",
            )
        return Sparsity(kind, density=density, tile=tuple(tile))  # type: ignore[arg-type]

    def _density(self, d: float, tok: Token) -> float:
        if not 0.0 < d <= 1.0:
            self.fail("density out of range", tok, expected="0 < density <= 1")
        return d

    def _rank(self) -> SplitStmt | RankSizeStmt:
        rank = self.ident("a rank name").text
        if self.at(":"):
            self.take()
            return RankSizeStmt(rank, self.ident("a size parameter").text, self.where)
        self.expect("->")
        outer = self.ident("the outer rank name").text
        self.expect(",")
        inner = self.ident("the inner rank name").text
        self.expect(":")
        if self.tok.kind == "num":
            v = self.number()
            if not v.is_integer() or v < 1:
                self.fail("bad split tile", expected="a positive integer or parameter")
            tile: int | str = int(v)
        else:
            tile = self.ident("a tile size (parameter or integer)").text
        return SplitStmt(rank, outer, inner, tile, self.where)

    # --- Einsums ------------------------------------------------------------------------
    def einsum(self) -> EinsumStmt:
        if self.tok.kind != "id" or self.peek().text != "[":
            self.fail(
                "expected a statement (param, tensor, sparsity, rank, or OUT[...] = ...)",
                expected="a statement",
            )
        out = self.ref()
        self.expect("=")
        reduce_op, reduce_ranks = self.reduction()
        expr = self.expr()
        cond, init = None, None
        while self.at("if", "init"):
            if self.take().text == "if":
                cond = self.condition()
            else:
                init = self.number()
        return EinsumStmt(out, reduce_op, reduce_ranks, expr, cond, init, self.where, self.cols)

    def reduction(self) -> tuple[str | None, tuple[str, ...] | None]:
        t = self.tok
        if t.kind != "id" or t.text not in REDUCE_OPS or self.peek().text != "(":
            return None, None
        k = 2  # lookahead: NAME (, NAME)* ) followed by the start of an expression
        while self.peek(k).kind == "id" and self.peek(k + 1).text in (",", ")"):
            if self.peek(k + 1).text == ")":
                nxt = self.peek(k + 2)
                if nxt.kind in ("id", "num") or nxt.text in ("(", "-"):
                    self.take()
                    self.take()
                    return t.text, self._rank_list(")")
                break
            k += 2
        return None, None

    def ref(self) -> TensorRef:
        name = self.take()
        self.cols.setdefault(name.text, name.col)
        self.expect("[")
        indices: list[Index] = []
        while not self.at("]"):
            indices.append(self.index())
            if not self.at("]"):
                self.expect(",")
        self.take()
        consts = [ix.const for ix in indices if ix.const is not None]
        return self.made(TensorRef(name.text, tuple(indices)), *consts)

    def index(self) -> Index:
        t = self.tok
        if t.kind == "id" and t.text[0].islower():
            self.take()
            self.cols.setdefault(t.text, t.col)
            offset = 0
            if self.at("+", "-"):
                sign = 1 if self.take().text == "+" else -1
                n = self.tok
                if n.kind != "num" or not float(n.text).is_integer():
                    self.fail("a rank offset must be an integer", expected="an integer")
                offset = sign * int(float(self.take().text))
            return Index(t.text, offset)
        const = self.expr()
        if _has_lower_name(const) or not isinstance(const, (Num, Name, Binary, Unary)):
            self.fail(
                "bad index: a rank (+ offset) or a constant of parameters",
                t,
                expected="rank or constant",
            )
        return Index(None, 0, const)

    def expr(self) -> Expr:
        left = self.term()
        while self.at("+", "-"):
            op = self.take().text
            right = self.term()
            left = self.made(Binary(op, left, right), left, right)
        return left

    def term(self) -> Expr:
        left = self.unary()
        while self.at("*", "/"):
            op = self.take().text
            right = self.unary()
            left = self.made(Binary(op, left, right), left, right)
        return left

    def unary(self) -> Expr:
        self.nest += 1
        if self.nest > MAX_NESTING:
            self.fail(
                "expression nested too deeply",
                expected=f"at most {MAX_NESTING} levels of parentheses, signs and calls",
            )
        try:
            return self._unary()
        finally:
            self.nest -= 1

    def _unary(self) -> Expr:
        t = self.tok
        if self.at("-"):
            self.take()
            inner = self.unary()
            if isinstance(inner, Num):
                return Num(-inner.value)
            return self.made(Unary("neg", inner), inner)
        if t.kind == "num":
            return Num(float(self.take().text))
        if self.at("("):
            self.take()
            e = self.expr()
            self.expect(")")
            return e
        if t.kind != "id":
            self.fail("expected an operand", expected="a tensor, number, parameter or function")
        if t.text == "inf":
            self.take()
            return Num(float("inf"))
        nxt = self.peek().text
        if nxt == "[":
            return self.ref()
        if nxt == "(":
            return self.call()
        self.take()
        self.cols.setdefault(t.text, t.col)
        return Name(t.text)

    def call(self) -> Expr:
        t = self.take()
        self.take()
        if t.text in ("max", "min"):
            a = self.expr()
            self.expect(",")
            b = self.expr()
            self.expect(")")
            return self.made(Binary(t.text, a, b), a, b)
        if t.text in REDUCE_OPS:
            self.fail(
                f"'{t.text}(...)' as a reduction must come first on the right-hand side",
                t,
                expected="OUT[...] = sum(r) expr",
            )
        if t.text not in UNARY:
            self.fail(
                "unknown function",
                t,
                expected="one of " + ", ".join(sorted([*UNARY, "max", "min"])),
            )
        arg = self.expr()
        self.expect(")")
        return self.made(Unary(t.text, arg), arg)

    def condition(self) -> Cond:
        items: list[Compare] = []
        while True:
            left = self.expr()
            if not self.at(*_CMP):
                self.fail("expected a comparison", expected=" ".join(_CMP))
            op = self.take().text
            right = self.expr()
            items.append(self.made(Compare(op, left, right), left, right))
            if not self.at("and"):
                break
            self.take()
        return items[0] if len(items) == 1 else And(tuple(items))


def _has_lower_name(e: Expr) -> bool:
    if isinstance(e, Name):
        return e.name[0].islower()
    if isinstance(e, Binary):
        return _has_lower_name(e.left) or _has_lower_name(e.right)
    if isinstance(e, Unary):
        return _has_lower_name(e.arg)
    return False


def parse_line(where: Where) -> Stmt:
    """Parse one statement."""
    return _Parser(where).statement()


def parse_einsum(where: Where) -> EinsumStmt:
    """Parse one Einsum statement (builder, YAML)."""
    p = _Parser(where)
    stmt = p.einsum()
    p.end()
    return stmt


def parse_sparsity(where: Where) -> Sparsity:
    """Parse a sparsity spec such as ``block(M=64, density=0.3)``."""
    p = _Parser(where)
    s = p.sparsity_spec()
    p.end()
    return s


def parse_statements(text: str) -> list[Stmt]:
    """Parse a whole cascade text into statements (blank and comment lines skipped)."""
    out: list[Stmt] = []
    for n, line in enumerate(text.splitlines(), start=1):
        if line.split("#", 1)[0].strip():
            out.append(parse_line(Where(f"line {n}", line)))
    return out
