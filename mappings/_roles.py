"""Rank roles of an attention-like cascade, found from its Einsums (never from parameter names).

A fused attention dataflow is a recipe over *roles*: which rank indexes queries, which keys,
which features are contracted, which ranks are batch-like (shared by the query side, the key
side and the output), and which Einsums form the per-tile core. :func:`attention_roles` reads
those from the cascade given:

* the **score** Einsum is the first contraction ``S = A * B`` (a ``*`` feeding a ``sum``) whose
  output keeps ranks of ``A`` only (query side), ranks of ``B`` only (key side) and ranks of
  both (**batch**: the keys belong to the query's batch element and head), and whose key-side
  rank a later contraction sums away against a third operand (the **value**) that carries the
  batch ranks too. (An MLP ``X * W1 -> * W2`` has no batch rank shared with its weights: not
  attention.)
* the **query rank** is the query-side rank of ``A`` stored last before its features (the
  sequence position in the usual ``[batch, heads, seq, feature]`` layout); other query-side
  ranks (a GQA group, MLA's heads over one latent KV) are **query heads**;
* the **key rank** is the key side's rank, taken to its parent when it is split
  (``m -> m1, m0``: ``m1`` is the *key outer* rank along which running state advances);
* the **core** Einsums iterate both the query rank and a key rank: a fused mapping runs them
  tile by tile; **row** Einsums among them iterate only the key outer rank (running state);
* Einsums that need no core result run before (**pre**, e.g. projections); those that do run
  after, as a per-tile **epilogue** when they only read the tile's own rows and reduce
  nothing, else as a separate **post** group.

Anything a recipe relies on that the cascade lacks is a :class:`MappingError` naming the
missing property (``path="workload.cascade"``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

from archsim.errors import MappingError
from workloads._ast import is_contraction, split_parents

if TYPE_CHECKING:
    from workloads import Cascade, Einsum
    from workloads._ast import TensorRef

__all__ = ["AttentionRoles", "attention_roles", "is_contraction", "key_canon"]


#: every split part to its parent rank (``m1 -> m``, ``m0 -> m``); ``is_contraction`` and this
#: are defined beside the cascade types (``workloads._ast``), which workloads shares
key_canon = split_parents


@dataclass(frozen=True)
class AttentionRoles:
    """Roles of the ranks and Einsums of an attention-like cascade (see module doc).

    Rank names are the cascade's own. ``key_outer``/``key_inner`` are the split parts of the
    key rank when the cascade splits it (else None); ``key_split_param`` is the parameter
    giving the inner extent (a tile parameter a recipe may set to its key tile).
    """

    score: str
    value_contraction: str
    query: str
    query_heads: tuple[str, ...]
    key: str
    key_outer: str | None
    key_inner: str | None
    key_split_param: str | None
    batch: tuple[str, ...]
    features: tuple[str, ...]
    value_features: tuple[str, ...]
    core: tuple[str, ...]
    rows: tuple[str, ...]
    pre: tuple[str, ...]
    epilogue: tuple[str, ...]
    post: tuple[str, ...]
    query_operand: str
    key_operand: str
    value_operand: str
    iterative: tuple[str, ...]

    @property
    def key_ranks(self) -> frozenset[str]:
        """Every name the key rank goes by (parent and split parts)."""
        return frozenset(r for r in (self.key, self.key_outer, self.key_inner) if r)

    def describe(self) -> dict[str, object]:
        """Plain dict for ``--json`` output and notes."""
        return {
            "score": self.score,
            "value_contraction": self.value_contraction,
            "query": self.query,
            "query_heads": list(self.query_heads),
            "key": self.key,
            "key_split": [self.key_outer, self.key_inner] if self.key_outer else None,
            "batch": list(self.batch),
            "features": list(self.features),
            "value_features": list(self.value_features),
            "core": list(self.core),
            "pre": list(self.pre),
            "epilogue": list(self.epilogue),
            "post": list(self.post),
        }


def _deps(cascade: Cascade) -> dict[str, set[str]]:
    """Einsum name -> names of the Einsums it reads (directly)."""
    made = {e.name for e in cascade.einsums}
    return {
        e.name: {r.name for r in e.inputs if r.name in made and r.name != e.name}
        for e in cascade.einsums
    }


def _closure(start: set[str], edges: Mapping[str, set[str]]) -> set[str]:
    seen: set[str] = set()
    todo = list(start)
    while todo:
        x = todo.pop()
        for y in edges.get(x, ()):
            if y not in seen:
                seen.add(y)
                todo.append(y)
    return seen


def _missing(what: str, cascade: Cascade, hint: str = "") -> MappingError:
    return MappingError(
        f"cascade {cascade.name!r} has no {what}" + (f" ({hint})" if hint else ""),
        path="workload.cascade",
        expected=what,
        got="; ".join(e.text or str(e) for e in cascade.einsums[:4])
        + (" ..." if len(cascade.einsums) > 4 else ""),
    )


def attention_roles(cascade: Cascade) -> AttentionRoles:
    """The roles of ``cascade``'s ranks and Einsums (see module doc).

    Raises
    ------
    MappingError
        No score contraction whose key side is summed away against a value (the cascade is
        not attention-like: a GEMM, a norm, a softmax alone), or a key side of more than one
        rank.
    """
    canon = key_canon(cascade)
    deps = _deps(cascade)
    users: dict[str, set[str]] = {e.name: set() for e in cascade.einsums}
    for n, ds in deps.items():
        for d in ds:
            users[d].add(n)
    by_name = {e.name: e for e in cascade.einsums}
    order = [e.name for e in cascade.einsums]
    for s in cascade.einsums:
        if not is_contraction(s):
            continue
        a_ref, b_ref = s.inputs[0], s.inputs[1] if len(s.inputs) > 1 else s.inputs[0]
        out = set(s.output.ranks)
        for q_ref, k_ref in ((a_ref, b_ref), (b_ref, a_ref)):
            q_only = [r for r in q_ref.ranks if r in out and r not in k_ref.ranks]
            k_only = [r for r in k_ref.ranks if r in out and r not in q_ref.ranks]
            if not q_only or not k_only:
                continue
            keys = {canon.get(r, r) for r in k_only}
            shared = [r for r in q_ref.ranks if r in out and r in k_ref.ranks]
            if len(keys) != 1 or not shared:
                continue  # a key side of one rank, of the same batch element as the query
            (key,) = keys
            downstream = _closure({s.name}, users)
            for v in cascade.einsums:
                if v.name not in downstream or not is_contraction(v):
                    continue
                if not any(canon.get(r, r) == key for r in v.reduce_ranks):
                    continue
                refs = list(v.inputs)
                val = [r for r in refs if r.name not in downstream and r.name != s.name]
                # the first contraction over the key rank must be against values that carry
                # the key rank and belong to the keys' batch element and head
                if not val or not any(canon.get(r, r) == key for r in val[0].ranks):
                    break
                if not set(shared) <= set(val[0].ranks):
                    break
                return _assemble(
                    cascade, s, v, q_ref, k_ref, val[0], q_only, key, deps, users, by_name, order
                )
    raise _missing(
        "attention structure",
        cascade,
        "a contraction S = Q * K over shared batch ranks whose key-side rank a later "
        "contraction sums against V",
    )


def _assemble(
    cascade: Cascade,
    s: Einsum,
    v: Einsum,
    q_ref: TensorRef,
    k_ref: TensorRef,
    v_ref: TensorRef,
    q_only: list[str],
    key: str,
    deps: dict[str, set[str]],
    users: dict[str, set[str]],
    by_name: Mapping[str, Einsum],
    order: list[str],
) -> AttentionRoles:
    canon = key_canon(cascade)
    query = q_only[-1]
    heads = tuple(r for r in q_only[:-1])
    split = cascade.splits.get(key)
    k_outer = split.outer if split is not None else None
    k_inner = split.inner if split is not None else None
    key_names = {key, k_outer, k_inner} - {None}
    q_names = {query, canon.get(query, query)}
    out = set(s.output.ranks)
    batch = tuple(r for r in s.output.ranks if r in q_ref.ranks and r in k_ref.ranks)
    features = tuple(s.reduce_ranks)
    value_features = tuple(
        r for r in v.output.ranks if r in v_ref.ranks and canon.get(r, r) != key and r not in out
    )
    core, rows = [], []
    for name in order:
        e = by_name[name]
        it = set(e.ranks)
        if it & q_names and it & key_names:
            core.append(name)
            if k_outer and k_outer in it and not (it & ({key, k_inner} - {None})):
                rows.append(name)
    core_set = set(core)
    after = _closure(core_set, users) - core_set
    pre = [n for n in order if n not in core_set and n not in after]
    epi: list[str] = []
    post: list[str] = []
    work_ranks = set(batch) | set(heads) | q_names | set(value_features)
    for name in order:
        if name not in after:
            continue
        e = by_name[name]
        upstream_post = deps[name] & set(post)
        if not e.reduce_ranks and set(e.ranks) <= work_ranks and not upstream_post:
            epi.append(name)
        else:
            post.append(name)
    return AttentionRoles(
        score=s.name,
        value_contraction=v.name,
        query=query,
        query_heads=heads,
        key=key,
        key_outer=k_outer,
        key_inner=k_inner,
        key_split_param=str(split.tile)
        if split is not None and isinstance(split.tile, str)
        else None,
        batch=batch,
        features=features,
        value_features=value_features,
        core=tuple(core),
        rows=tuple(rows),
        pre=tuple(pre),
        epilogue=tuple(epi),
        post=tuple(post),
        query_operand=q_ref.name,
        key_operand=k_ref.name,
        value_operand=v_ref.name,
        iterative=tuple(e.name for e in cascade.einsums if e.iterative_rank and e.name in core_set),
    )
