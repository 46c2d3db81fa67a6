"""How the indices of a tensor reference line up with the tensor's ranks.

One function, :func:`match_ref`, used by the checker, the executor and counting alike, so
that the three always agree. A tensor's *canonical* ranks are those of its declaration (an
input) or of the Einsum computing it. Each index position of a reference covers:

- ``one``: one canonical rank, by a rank of the same size (``K[b,h,x,e]`` for ``K[b,h,m,e]``
  when ``x`` and ``m`` have the same size parameter), with an optional offset, or by a
  constant (``RNV[M1,p]``);
- ``pair``: a split canonical rank ``m`` (``rank m -> m1, m0 : M0``) read as two indices
  ``(a, b)`` standing for ``a*M0 + b``: ``(m1, m0)`` itself, or any two ranks of the same
  sizes as ``(m1, m0)`` (``K[b,h,pc,mi,e]`` reads key chunk ``pc`` when ``mc`` and ``pc``
  have the same size): positions past the end of ``m`` are absent (split padding);
- ``merge``: two canonical ranks ``(m1, m0)`` of a split read through one index ``x`` of
  the size of ``m`` (``m1 = x // M0``, ``m0 = x % M0``).

Exact names always match. A ``pair`` by other names is tried only when the reference has
more indices left than the tensor has ranks left, a ``merge`` by another name only when it
has fewer, so matching is never ambiguous.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

from archsim.errors import WorkloadError

from ._ast import Cascade, Index, Split, TensorRef

__all__ = ["Seg", "match_ref", "match_cascade_ref", "same_size"]


@dataclass(frozen=True)
class Seg:
    """One piece of a reference: which canonical ranks it covers with which indices.

    Attributes
    ----------
    kind
        ``one``, ``pair`` or ``merge`` (module docstring).
    canon
        Canonical ranks covered: ``(r,)`` for ``one`` and ``pair``, ``(outer, inner)`` for
        ``merge``.
    index
        Index positions used: one for ``one``/``merge``, two (outer, inner) for ``pair``.
    split
        The split involved (``pair``, ``merge``), else None.
    """

    kind: Literal["one", "pair", "merge"]
    canon: tuple[str, ...]
    index: tuple[Index, ...]
    split: Split | None = None


def same_size(a: str, b: str, splits: Mapping[str, Split], rank_params: Mapping[str, str]) -> bool:
    """Whether ranks ``a`` and ``b`` have the same size by construction.

    True when the names are equal, when their size parameters are equal, or when both are
    outer ranks of splits whose parents and tiles have the same size.
    """
    if a == b or rank_params.get(a, a.upper()) == rank_params.get(b, b.upper()):
        return True
    sa = next((s for s in splits.values() if s.outer == a), None)
    sb = next((s for s in splits.values() if s.outer == b), None)
    return bool(
        sa
        and sb
        and same_size(sa.rank, sb.rank, splits, rank_params)
        and same_size(sa.inner, sb.inner, splits, rank_params)
    )


def match_ref(
    indices: Sequence[Index],
    canon: Sequence[str],
    splits: Mapping[str, Split],
    same: Callable[[str, str], bool],
) -> tuple[Seg, ...] | None:
    """Line up ``indices`` with the ranks ``canon``; None when they do not match.

    ``same(a, b)`` says whether two ranks have the same size (see :func:`same_size`).
    """
    idx, out = list(indices), []
    k = j = 0
    while k < len(idx) and j < len(canon):
        r, ix = canon[j], idx[k]
        extra = (len(idx) - k) - (len(canon) - j)
        if k + 1 < len(idx):
            sp = _pair_split(r, ix, idx[k + 1], extra > 0, splits, same)
            if sp is not None:
                out.append(Seg("pair", (r,), (ix, idx[k + 1]), sp))
                k, j = k + 2, j + 1
                continue
        merged = next(
            (
                s
                for s in splits.values()
                if j + 1 < len(canon) and canon[j] == s.outer and canon[j + 1] == s.inner
            ),
            None,
        )
        if merged and ix.rank and ix.offset == 0:
            if ix.rank == merged.rank or (extra < 0 and same(ix.rank, merged.rank)):
                out.append(Seg("merge", (canon[j], canon[j + 1]), (ix,), merged))
                k, j = k + 1, j + 2
                continue
        if ix.rank is not None and not same(ix.rank, r):
            return None
        out.append(Seg("one", (r,), (ix,)))
        k, j = k + 1, j + 1
    if k != len(idx) or j != len(canon):
        return None
    return tuple(out)


def _pair_split(
    r: str,
    a: Index,
    b: Index,
    loose: bool,
    splits: Mapping[str, Split],
    same: Callable[[str, str], bool],
) -> Split | None:
    """The split by which ``(a, b)`` reads canonical rank ``r`` as a pair, or None.

    Exact: ``r``'s own split by its own names. Loose (only when ``loose``): any split of a
    rank of ``r``'s size whose outer and inner ranks have the sizes of ``a`` and ``b``.
    """
    if not (a.rank and b.rank and a.offset == 0 and b.offset == 0):
        return None
    own = splits.get(r)
    if own is not None and a.rank == own.outer and b.rank == own.inner:
        return own
    if not loose:
        return None
    cands = ([own] if own is not None else []) + [s for s in splits.values() if s is not own]
    for s in cands:
        if same(s.rank, r) and same(a.rank, s.outer) and same(b.rank, s.inner):
            return s
    return None


def match_cascade_ref(cascade: Cascade, ref: TensorRef) -> tuple[Seg, ...]:
    """:func:`match_ref` of a reference of a checked cascade.

    Raises
    ------
    WorkloadError
        When the reference does not match (a cascade built without the checker).
    """
    spec = cascade.tensors[ref.name]
    segs = match_ref(
        ref.indices,
        spec.ranks,
        cascade.splits,
        lambda a, b: same_size(a, b, cascade.splits, cascade.rank_params),
    )
    if segs is None:
        raise WorkloadError(
            f"rank/shape mismatch for {ref.name}",
            path=f"cascade {cascade.name}",
            expected=f"{ref.name}[{','.join(spec.ranks)}]",
            got=str(ref),
        )
    return segs
