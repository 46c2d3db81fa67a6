"""Passes analysis: how many passes over the streamed rank a cascade forces.

FuseMax (Nayak et al., MICRO'24, Sec. 3) classes softmax cascades by the number of passes
they make over the key rank ``m``: the stable 3-pass form (max, then denominator, then
normalise-and-multiply), a 2-pass form, and the 1-pass online form with running state.
The rule, derived from the cascade's dependency graph:

* an Einsum that iterates (a component of) rank ``R`` and whose output keeps none of ``R``'s
  components *fully reduces* over ``R`` (unless it is iterative over ``R`` — running state);
* an Einsum that iterates ``R`` again and consumes (directly or through other Einsums) a
  fully reduced value must wait for the previous pass to finish: it starts a new pass.

Splitting ``m -> m1, m0`` and carrying running maxima/denominators along the iterative rank
``m1`` removes those barriers, which is why FuseMax's cascade is 1-pass.

The buffer a mapping implies follows from its pass count and fusion: a 3-pass *unfused*
mapping spills the ``M x P`` scores to DRAM (no buffer, ``S^2`` traffic per pass); a
3-pass *row-fused* mapping (FLAT) keeps whole score rows, ``O(rows x S)``; a 1-pass mapping
keeps only running state and one tile, independent of ``S``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from workloads import Cascade, Einsum, TensorRef

__all__ = ["cascade_passes", "streamed_rank"]


def _components(cascade: Cascade, rank: str) -> set[str]:
    """The rank and its split parts (``m`` -> {m, m1, m0})."""
    out = {rank}
    for root, sp in getattr(cascade, "splits", {}).items():
        if rank in (root, sp.outer, sp.inner):
            out |= {root, sp.outer, sp.inner}
    return out


def streamed_rank(cascade: Cascade) -> str | None:
    """The rank the cascade streams over: the key rank of an attention cascade
    (:func:`mappings._roles.attention_roles`), else the root of the reduced rank that a later
    Einsum iterates again most often, else the first reduced rank."""
    from archsim.errors import MappingError
    from mappings._roles import attention_roles

    try:
        return attention_roles(cascade).key
    except MappingError:
        pass  # not attention: find the rank from the reductions
    reduced = [r for e in cascade.einsums for r in e.reduce_ranks]
    if not reduced:
        iters = [e.iterative_rank for e in cascade.einsums if e.iterative_rank]
        return iters[0] if iters else None
    roots = []
    for r in reduced:
        root = r
        for name, sp in getattr(cascade, "splits", {}).items():
            if r in (sp.outer, sp.inner):
                root = name
        roots.append(root)
    iter_roots = []
    for e in cascade.einsums:
        if e.iterative_rank:
            iter_roots += [
                r for r in dict.fromkeys(roots) if e.iterative_rank in _components(cascade, r)
            ]
    cands = list(dict.fromkeys(iter_roots + roots))
    best, best_n = cands[0], 0
    for root in cands:
        n, _ = _passes_over(cascade, root)
        if n > best_n:
            best, best_n = root, n
    return best


def _reads_final(cascade: Cascade, ref: TensorRef, comps: set[str], e: Einsum) -> bool:
    """Whether ``ref`` reads a tensor at a fixed index of the streamed rank (``RM[.., M1, ..]``:
    the final running state, available only after the pass)."""
    ranks = cascade.tensors[ref.name].ranks
    for pos, idx in enumerate(getattr(ref, "indices", ())):
        if pos < len(ranks) and ranks[pos] in comps:
            if idx.rank is None or idx.rank not in e.ranks:
                return True
    return False


def _passes_over(cascade: Cascade, rank: str) -> tuple[int, list[str]]:
    comps = _components(cascade, rank)
    producer = {e.name: e for e in cascade.einsums}
    pass_of: dict[str, int] = {}
    reduced: dict[str, bool] = {}
    reasons: list[str] = []
    passes = 1
    for e in cascade.einsums:
        iterates = bool(comps & set(e.ranks)) or e.iterative_rank in comps
        p = 1
        for ref in e.inputs:
            t = ref.name
            if t == e.name:
                continue
            base = pass_of.get(t, 1)
            done = reduced.get(t, False) or _reads_final(cascade, ref, comps, e)
            if done and iterates and e.iterative_rank not in comps:
                base += 1
                reasons.append(f"{e.name} re-iterates {rank} after reduction {t}")
            p = max(p, base)
        pass_of[e.name] = p
        out_ranks = set(cascade.tensors[e.name].ranks)
        full = iterates and not (comps & out_ranks) and e.iterative_rank not in comps
        inherited = any(reduced.get(r.name, False) for r in e.inputs if r.name in producer)
        reduced[e.name] = full or (inherited and not (comps & set(e.ranks)))
        if iterates:
            passes = max(passes, p)
    return passes, reasons


def cascade_passes(cascade: Cascade, rank: str | None = None) -> tuple[int, str]:
    """(passes over the streamed rank, one-line reason) for ``cascade``.

    Parameters
    ----------
    cascade
        The cascade.
    rank
        The streamed rank; default :func:`streamed_rank`.

    Returns
    -------
    (int, str)
        Number of passes (>= 1) and which Einsums force the extra passes.
    """
    rank = rank or streamed_rank(cascade)
    if rank is None:
        return 1, "no reduction"
    n, reasons = _passes_over(cascade, rank)
    if n == 1:
        iters = [e.name for e in cascade.einsums if e.iterative_rank]
        why = f"running state along {', '.join(iters)}" if iters else "no re-iteration"
        return 1, f"1 pass over {rank}: {why}"
    return n, f"{n} passes over {rank}: " + "; ".join(dict.fromkeys(reasons))
