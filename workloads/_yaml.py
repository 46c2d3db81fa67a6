"""Cascades from YAML files (strict loader) and from the Python :class:`CascadeBuilder`.

YAML schema::

    name: attention-3pass            # optional (default: the file's stem)
    params: {M0: 64, E: 64}          # optional: default shape/tile parameters (numbers)
    ranks:                           # optional
      m: {split: [m1, m0], tile: M0} #   split rank m -> m1, m0 : M0
      p: {size: Sq}                  #   size parameter of rank p
    tensors:                         # input tensors (and optional dtypes of computed ones)
      Q: {ranks: [b, h, p, e], dtype: bf16}          # dtype: bf16|fp16|fp32|fp8|int8|bool
      K: {ranks: [b, h, m, e], bits: 16, density: 0.5}
    sparsity:                        # optional: tensor -> spec in the text notation
      QK: block(M=64, density=0.3)
    einsums:                         # Einsums in the text notation, in order
      - QK[b,h,m,p] = Q[b,h,p,e] * K[b,h,m,e]
      - M[b,h,p] = max(m) QK[b,h,m,p]

Files are UTF-8 text of at most 64 MiB read with ``archsim.yamlio.safe_load`` (duplicate keys,
alias bombs and nesting past 64 levels refused). Numbers are numbers: ``true`` is not 1, a
tile is a positive integer (<= 2**40) or a parameter name, names are identifiers. Errors name
the YAML path (``einsums[3]``, ``tensors.Q.dtype``, ``ranks.m.tile``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import yaml

from archsim.errors import WorkloadError
from archsim.yamlio import safe_load

from ._ast import Cascade
from ._check import assemble
from ._files import read_text
from ._lex import Where
from ._limits import MAX_BITS, check_extent
from ._ops import DTYPES
from ._parse import (
    ParamStmt,
    RankSizeStmt,
    SparsityStmt,
    SplitStmt,
    Stmt,
    TensorStmt,
    parse_einsum,
    parse_sparsity,
)

__all__ = ["load_cascade", "cascade_from_dict", "CascadeBuilder"]

_TOP = ("name", "params", "ranks", "tensors", "sparsity", "einsums", "description")


def load_cascade(path: str | Path) -> Cascade:
    """Load and check a cascade from a YAML file (schema in the module docstring).

    Raises
    ------
    WorkloadError
        Unreadable file, YAML syntax error, schema error or cascade error, with its path.
    """
    p = Path(path)
    text = read_text(p)
    try:
        data = safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        loc = f"{p}: line {mark.line + 1}, col {mark.column + 1}" if mark else str(p)
        raise WorkloadError(f"bad YAML: {getattr(exc, 'problem', exc)}", path=loc) from None
    except RecursionError:  # the strict loader bounds nesting first; this is the fallback
        raise WorkloadError(
            "bad YAML: nested too deeply", path=str(p), expected="at most 64 levels"
        ) from None
    return cascade_from_dict(data, source=str(p), default_name=p.stem)


def _need(cond: bool, path: str, what: str, got: object, message: str = "bad cascade YAML") -> None:
    if not cond:
        raise WorkloadError(message, path=path, expected=what, got=got)


def cascade_from_dict(
    data: object, *, source: str = "<dict>", default_name: str = "cascade"
) -> Cascade:
    """Check and build a cascade from a parsed YAML mapping (see module docstring)."""
    _need(
        isinstance(data, dict),
        source,
        "a mapping with keys " + ", ".join(_TOP),
        type(data).__name__,
    )
    assert isinstance(data, dict)
    for key in data:
        _need(key in _TOP, f"{source}: {key}", "one of " + ", ".join(_TOP), key)
    stmts: list[Stmt] = []
    params = _section(data, "params")
    _need(isinstance(params, dict), "params", "a mapping NAME: number", params)
    for k, v in params.items():
        _need(_is_name(k), f"params.{k}", "a parameter name (identifier)", k)
        _need(
            isinstance(v, (int, float)) and not isinstance(v, bool),
            f"params.{k}",
            "a number (true/false are not numbers)",
            v,
        )
        stmts.append(ParamStmt(str(k), v, Where(f"params.{k}", f"{k}: {v}")))
    ranks = _section(data, "ranks")
    _need(isinstance(ranks, dict), "ranks", "a mapping rank: {split, tile} | {size}", ranks)
    for r, spec in ranks.items():
        _need(_is_name(r, lower=True), f"ranks.{r}", "a lower-case rank name", r)
        w = Where(f"ranks.{r}", f"{r}: {spec}")
        _need(
            isinstance(spec, dict) and set(spec) in ({"split", "tile"}, {"size"}),
            f"ranks.{r}",
            "{split: [outer, inner], tile: T} or {size: PARAM}",
            spec,
        )
        if "size" in spec:
            size = spec["size"]
            _need(_is_name(size), f"ranks.{r}.size", "the name of a size parameter", size)
            stmts.append(RankSizeStmt(str(r), size, w))
        else:
            sp = spec["split"]
            _need(
                isinstance(sp, list) and len(sp) == 2 and all(_is_name(x, lower=True) for x in sp),
                f"ranks.{r}.split",
                "[outer, inner] (two lower-case rank names)",
                sp,
            )
            stmts.append(SplitStmt(str(r), sp[0], sp[1], _tile(spec["tile"], f"ranks.{r}.tile"), w))
    tensors = _section(data, "tensors")
    _need(isinstance(tensors, dict), "tensors", "a mapping NAME: {ranks, dtype}", tensors)
    for t, spec in tensors.items():
        _need(_is_name(t), f"tensors.{t}", "a tensor name (identifier)", t)
        stmts.append(_tensor(str(t), spec))
    sparsity = _section(data, "sparsity")
    _need(isinstance(sparsity, dict), "sparsity", "a mapping TENSOR: spec", sparsity)
    for t, spec in sparsity.items():
        _need(_is_name(t), f"sparsity.{t}", "a tensor name (identifier)", t)
        _need(
            isinstance(spec, str), f"sparsity.{t}", "a spec such as block(M=64, density=0.3)", spec
        )
        w = Where(f"sparsity.{t}", str(spec))
        stmts.append(SparsityStmt(str(t), parse_sparsity(w), w))
    einsums = data.get("einsums")
    _need(
        isinstance(einsums, list) and len(einsums) > 0,
        "einsums",
        "a non-empty list of Einsum strings",
        einsums,
    )
    assert isinstance(einsums, list)
    for i, text in enumerate(einsums):
        _need(isinstance(text, str), f"einsums[{i}]", "an Einsum string", text)
        stmts.append(parse_einsum(Where(f"einsums[{i}]", text)))
    name = data.get("name", default_name)
    _need(isinstance(name, str), "name", "a string", name)
    description = data.get("description", "")
    _need(isinstance(description, str), "description", "a string", description)
    return assemble(stmts, name=name)


def _section(data: dict, key: str) -> Any:
    """``data[key]``, ``{}`` when absent or empty (``key:`` with nothing after it); any other
    value is returned as is for the caller's type check (``params: 0`` is an error)."""
    value = data.get(key)
    return {} if value is None else value


def _is_name(key: object, *, lower: bool = False) -> bool:
    """``key`` is an identifier (a lower-case one for a rank)."""
    return isinstance(key, str) and key.isidentifier() and (not lower or key[0].islower())


def _tile(tile: object, path: str) -> int | str:
    """A split tile: a positive integer (elements, <= MAX_EXTENT) or a parameter name."""
    if isinstance(tile, str):
        _need(tile.isidentifier(), path, "a positive integer or a parameter name", tile)
        return tile
    try:
        return check_extent(tile, path, "split tile")
    except WorkloadError as exc:
        raise WorkloadError(
            exc.detail, path=path, expected="a positive integer or a parameter name", got=tile
        ) from None


def _tensor(t: str, spec: object) -> TensorStmt:
    path = f"tensors.{t}"
    _need(isinstance(spec, dict), path, "a mapping {ranks, dtype|bits, density}", spec)
    assert isinstance(spec, dict)
    for k in spec:
        _need(
            k in ("ranks", "dtype", "bits", "density"), f"{path}.{k}", "ranks|dtype|bits|density", k
        )
    ranks = spec.get("ranks")
    _need(
        isinstance(ranks, list) and all(isinstance(r, str) and r[:1].islower() for r in ranks),
        f"{path}.ranks",
        "a list of lower-case rank names",
        ranks,
    )
    dtype = spec.get("dtype", "bf16")
    _need(
        isinstance(dtype, str) and dtype in DTYPES,
        f"{path}.dtype",
        "|".join(DTYPES),
        dtype,
        "unknown dtype",
    )
    bits = spec.get("bits", DTYPES[dtype])
    _need(
        isinstance(bits, int) and not isinstance(bits, bool) and 0 < bits <= MAX_BITS,
        f"{path}.bits",
        f"an integer in 1..{MAX_BITS}",
        bits,
    )
    density = spec.get("density")
    _need(
        density is None
        or (
            isinstance(density, (int, float)) and not isinstance(density, bool) and 0 < density <= 1
        ),
        f"{path}.density",
        "0 < density <= 1",
        density,
    )
    name = dtype if "bits" not in spec else f"bits={bits}"
    assert isinstance(ranks, list)
    return TensorStmt(t, tuple(ranks), name, bits, density, Where(path, f"{t}: {spec}"))


class CascadeBuilder:
    """Build a cascade in Python; ``build()`` runs the same checks as the text notation.

    >>> b = CascadeBuilder("gemm").param("M", 4).param("K", 8).param("N", 2)
    >>> b = b.tensor("A", ["m", "k"]).tensor("B", ["k", "n"])
    >>> c = b.einsum("C[m,n] = A[m,k] * B[k,n]").build()
    >>> c.outputs
    ('C',)
    """

    def __init__(self, name: str = "cascade") -> None:
        self.name = name
        self._stmts: list[Stmt] = []

    def _where(self, text: str) -> Where:
        return Where(f"builder[{len(self._stmts)}]", text)

    def param(self, name: str, value: int | float) -> CascadeBuilder:
        """Add a default parameter."""
        self._stmts.append(ParamStmt(name, value, self._where(f"param {name} = {value}")))
        return self

    def tensor(
        self,
        name: str,
        ranks: Sequence[str],
        dtype: str = "bf16",
        *,
        bits: int | None = None,
        density: float | None = None,
    ) -> CascadeBuilder:
        """Declare a tensor (``dtype`` a name of ``DTYPES``, or ``bits`` for any width)."""
        spec: dict[str, object] = {"ranks": list(ranks), "dtype": dtype}
        if bits is not None:
            spec["bits"] = bits
        if density is not None:
            spec["density"] = density
        stmt = _tensor(name, spec)
        self._stmts.append(
            TensorStmt(
                stmt.name,
                stmt.ranks,
                stmt.dtype,
                stmt.bits,
                stmt.density,
                self._where(f"tensor {name}{list(ranks)}"),
            )
        )
        return self

    def split(self, rank: str, outer: str, inner: str, tile: int | str) -> CascadeBuilder:
        """Split ``rank`` into ``outer, inner`` with ``inner`` of size ``tile``."""
        w = self._where(f"rank {rank} -> {outer}, {inner} : {tile}")
        self._stmts.append(SplitStmt(rank, outer, inner, tile, w))
        return self

    def rank(self, rank: str, size: str) -> CascadeBuilder:
        """Name the parameter giving ``rank``'s size."""
        self._stmts.append(RankSizeStmt(rank, size, self._where(f"rank {rank} : {size}")))
        return self

    def sparsity(self, tensor: str, spec: str) -> CascadeBuilder:
        """Annotate ``tensor`` with a sparsity spec in the text notation."""
        w = self._where(f"sparsity {tensor} : {spec}")
        self._stmts.append(SparsityStmt(tensor, parse_sparsity(Where(w.path, spec)), w))
        return self

    def einsum(self, text: str) -> CascadeBuilder:
        """Add an Einsum in the text notation (parsed now: syntax errors raise here)."""
        self._stmts.append(parse_einsum(self._where(text)))
        return self

    def build(self, params: Mapping[str, int | float] | None = None) -> Cascade:
        """Check and return the cascade."""
        return assemble(self._stmts, name=self.name, params=params)
