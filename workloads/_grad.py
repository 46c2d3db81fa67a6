"""The gradient cascade of an attention cascade (the FlashAttention-2 backward, as Einsums).

:func:`attention_backward` reads a forward attention cascade -- the score contraction
``S = Q * K`` of two inputs, the normalisation of the scores (a softmax over the key rank in
any of its 1/2/3-pass forms, or an elementwise ``sigmoid(S + bias)``), the contraction of
the weights with the values ``V`` over the key rank, and the single output ``O`` -- and
writes the cascade that computes ``dQ, dK, dV`` from ``dO`` (Dao, "FlashAttention-2",
arXiv 2307.08691, 2023, Algorithm 2: the backward recomputes the scores from the saved
log-sum-exp ``L`` instead of storing the attention matrix)::

    Delta[rows] = sum(f) dO * O                   (softmax only: rowsum(dO o O))
    S  = Q * K                                    (the forward's condition kept)
    P  = exp(S - L)                               (softmax)  |  the forward's sigmoid(S + c)
    dV = sum(query rows, query heads) P * dO
    dP = sum(f) dO * V                            (the forward's condition kept)
    dS = P * (dP - Delta)                         (softmax)  |  dP * P * (1 - P) (sigmoid)
    dQ = sum(keys) dS * K
    dK = sum(query rows, query heads) dS * Q

Rank names, the conditions (causal, sliding window: applied to ``S`` and ``dP``, so every
masked score costs nothing downstream), the head split of GQA (``dK``/``dV`` summed over the
query heads of a group, which the rank structure gives) and a sparsity annotation of the
score tensor are the forward's own. The key rank is written whole: the backward keeps no
running state along it (the forward's key split and its tile parameter are dropped).

A cascade the derivation does not cover raises :class:`WorkloadError` naming the missing
property: no score contraction of two inputs, a score that is a sum of contractions (MLA)
or a projection's output (CCA: the projections' own gradients are not derived), no softmax
or sigmoid normalisation (linear attention), more than one output, a condition written over
the key split's parts.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from archsim.errors import WorkloadError

from ._api import parse_cascade
from ._ast import (
    Binary,
    Cascade,
    Einsum,
    Name,
    Num,
    TensorRef,
    Unary,
    expr_names,
    is_contraction,
    split_parents,
)

__all__ = ["AttentionGrad", "attention_backward", "grad_structure"]

#: Names of the tensors the backward cascade introduces (renamed if the forward uses them).
_NEW = ("DO", "LSE", "DELTA", "S", "P", "DV", "DP", "DS", "DQ", "DK")


@dataclass(frozen=True)
class AttentionGrad:
    """What :func:`grad_structure` found in a forward attention cascade.

    Attributes
    ----------
    kind
        ``softmax`` or ``sigmoid``.
    score
        The score Einsum ``S = Q * K``.
    query, key, value, output
        Names of the query, key and value input tensors and of the cascade's output.
    query_ref, key_ref, value_ref
        Index ranks the forward reads ``Q``, ``K``, ``V`` through (key split parts joined).
    score_ranks
        Ranks of the score (key split parts joined into the key rank).
    row_ranks
        Ranks of one softmax row (the score's ranks without the key rank).
    output_ranks
        Ranks of the output as the forward writes it.
    key_rank
        The key rank (the parent of a split).
    condition
        The score's condition as text, or None.
    sigmoid
        The sigmoid Einsum (``sigmoid`` kind), else None.
    """

    kind: str
    score: Einsum
    query: str
    key: str
    value: str
    output: str
    query_ref: tuple[str, ...]
    key_ref: tuple[str, ...]
    value_ref: tuple[str, ...]
    score_ranks: tuple[str, ...]
    row_ranks: tuple[str, ...]
    output_ranks: tuple[str, ...]
    key_rank: str
    condition: str | None
    sigmoid: Einsum | None = None


def _error(cascade: Cascade, what: str, got: object) -> WorkloadError:
    return WorkloadError(
        f"cannot derive the backward of cascade {cascade.name!r}: no {what.split(' (')[0]}",
        path=f"cascade {cascade.name}",
        expected=what,
        got=got,
    )


def _join(ranks: Sequence[str], parts: set[str], key: str) -> tuple[str, ...]:
    """``ranks`` with the key split's parts replaced by the key rank (once)."""
    out: list[str] = []
    for r in ranks:
        r2 = key if r in parts else r
        if r2 not in out:
            out.append(r2)
    return tuple(out)


def _downstream(cascade: Cascade, start: str) -> list[Einsum]:
    """Einsums that read ``start`` directly or through others (cascade order)."""
    made = {start}
    out = []
    for e in cascade.einsums:
        if e.name != start and any(r.name in made for r in e.inputs):
            made.add(e.name)
            out.append(e)
    return out


def _find_scores(cascade: Cascade) -> list[tuple[Einsum, TensorRef, TensorRef, str]]:
    """Every contraction ``S = Q * K`` of two inputs over shared ranks (cascade order)."""
    canon = split_parents(cascade)
    inputs = set(cascade.inputs)
    tried = []
    found = []
    for e in cascade.einsums:
        if not is_contraction(e):
            continue
        a, b = e.inputs[0], e.inputs[1]
        out = set(e.output.ranks)
        for q, k in ((a, b), (b, a)):
            q_only = [r for r in q.ranks if r in out and r not in k.ranks]
            k_only = {canon.get(r, r) for r in k.ranks if r in out and r not in q.ranks}
            shared = [r for r in q.ranks if r in out and r in k.ranks]
            if q_only and len(k_only) == 1 and shared:
                if q.name not in inputs or k.name not in inputs:
                    tried.append(e.text or str(e))
                    break
                found.append((e, q, k, next(iter(k_only))))
                break
    if found:
        return found
    raise _error(
        cascade,
        "score contraction S = Q * K of two input tensors over shared batch/head ranks "
        "(the gradients of projections before the score are not derived)",
        tried or [e.text or str(e) for e in cascade.einsums[:3]],
    )


def _sigmoid_arg_ok(x: object, score: str) -> bool:
    """``S``, ``S + c``, ``c + S`` or ``S - c`` with ``c`` a number or a parameter."""
    if isinstance(x, TensorRef):
        return x.name == score
    if isinstance(x, Binary) and x.op in ("+", "-"):
        const = (Num, Name)
        if isinstance(x.left, TensorRef) and isinstance(x.right, const):
            return x.left.name == score
        if x.op == "+" and isinstance(x.right, TensorRef) and isinstance(x.left, const):
            return x.right.name == score
    return False


def grad_structure(cascade: Cascade) -> AttentionGrad:
    """The parts of ``cascade`` its backward needs (see module doc).

    Raises
    ------
    WorkloadError
        A property the derivation needs is missing (the message names it).
    """
    err: WorkloadError | None = None
    for cand in _find_scores(cascade):
        try:
            return _structure(cascade, *cand)
        except WorkloadError as exc:  # a projection that looks like a score: try the next
            err = exc
    assert err is not None
    raise err


def _structure(
    cascade: Cascade, score: Einsum, q_ref: TensorRef, k_ref: TensorRef, key: str
) -> AttentionGrad:
    canon = split_parents(cascade)
    parts = {r for r, p in canon.items() if p == key}
    users = _downstream(cascade, score.name)
    direct = [e for e in users if any(r.name == score.name for r in e.inputs)]
    kind: str | None = None
    sig: Einsum | None = None
    for e in direct:
        x = e.expr
        if (
            isinstance(x, Unary)
            and x.fn == "exp"
            and isinstance(x.arg, Binary)
            and x.arg.op == "-"
            and isinstance(x.arg.left, TensorRef)
            and x.arg.left.name == score.name
        ):
            kind = "softmax"
        elif isinstance(x, Unary) and x.fn == "sigmoid" and e.reduce_op is None:
            if not _sigmoid_arg_ok(x.arg, score.name):
                raise _error(
                    cascade,
                    "sigmoid of the score plus a constant (sigmoid(S + c))",
                    e.text or str(e),
                )
            kind, sig = "sigmoid", e
    if kind is None and any(
        isinstance(e.expr, Binary)
        and e.expr.op == "+"
        and e.reduce_op is None
        and e.iterative_rank is None
        for e in direct
    ):
        raise _error(
            cascade,
            "score that is one contraction (a sum of score contractions, as MLA's, is not derived)",
            [e.text or str(e) for e in direct],
        )
    if kind is None:
        raise _error(
            cascade,
            "softmax over the key rank (exp(S - max), normalised by a sum over the keys) or "
            "elementwise sigmoid(S + c) of the scores",
            [e.text or str(e) for e in direct] or "no Einsum reads the score",
        )
    # the value contraction: sums the key rank against an input V that carries it
    value: TensorRef | None = None
    for e in users:
        if not is_contraction(e) or not any(canon.get(r, r) == key for r in e.reduce_ranks):
            continue
        cand = [r for r in e.inputs if r.name in cascade.inputs]
        if cand and any(canon.get(r, r) == key for r in cand[0].ranks):
            value = cand[0]
            break
    if value is None:
        raise _error(
            cascade,
            f"contraction of the attention weights with an input V over the key rank {key!r}",
            [e.text or str(e) for e in users[:4]],
        )
    if kind == "softmax":
        normalised = any(
            e.reduce_op == "sum"
            and any(canon.get(r, r) == key for r in e.reduce_ranks)
            and value.name not in {r.name for r in e.inputs}
            for e in users
        )
        if not normalised:
            raise _error(
                cascade,
                f"softmax denominator (a sum of exp(S - max) over the key rank {key!r})",
                [e.text or str(e) for e in users[:4]],
            )
    if len(cascade.outputs) != 1:
        raise _error(cascade, "single output O", list(cascade.outputs))
    out_name = cascade.outputs[0]
    out_e = next(e for e in cascade.einsums if e.name == out_name)
    s_ranks = _join(score.output.ranks, parts, key)
    rows = tuple(r for r in s_ranks if r != key)
    v_ranks = _join(value.ranks, parts, key)
    feats = [r for r in out_e.output.ranks if r not in rows]
    if set(out_e.output.ranks) != set(rows) | set(feats) or not set(feats) <= set(v_ranks):
        raise _error(
            cascade,
            f"output over the score's rows {list(rows)} and the value features",
            str(out_e.output),
        )
    cond = None
    for e in [score, *users]:
        if e.cond is None:
            continue
        if e is not score:
            raise _error(
                cascade, "condition on the score Einsum only", e.text or f"{e.name}: {e.cond}"
            )
        bad = sorted(parts & set(expr_names(e.cond)))
        if bad:
            raise _error(
                cascade,
                f"condition over the whole key rank {key!r} (not its split parts {bad})",
                str(e.cond),
            )
        cond = str(e.cond)
    return AttentionGrad(
        kind=kind,
        score=score,
        query=q_ref.name,
        key=k_ref.name,
        value=value.name,
        output=out_name,
        query_ref=_join(q_ref.ranks, parts, key),
        key_ref=_join(k_ref.ranks, parts, key),
        value_ref=v_ranks,
        score_ranks=s_ranks,
        row_ranks=rows,
        output_ranks=tuple(out_e.output.ranks),
        key_rank=key,
        condition=cond,
        sigmoid=sig,
    )


def _ref(name: str, ranks: Sequence[str]) -> str:
    return f"{name}[{','.join(ranks)}]"


def _rename(x: object, old: str, new: str) -> str:
    """Expression text with references to ``old`` written as ``new`` (indices given)."""
    if isinstance(x, TensorRef):
        return new if x.name == old else str(x)
    if isinstance(x, Binary):
        a, b = _rename(x.left, old, new), _rename(x.right, old, new)
        return f"{x.op}({a}, {b})" if x.op in ("max", "min") else f"({a} {x.op} {b})"
    if isinstance(x, Unary):
        return f"{x.fn}({_rename(x.arg, old, new)})"
    return str(x)


def attention_backward(
    cascade: Cascade, *, name: str | None = None, params: Mapping[str, float] | None = None
) -> Cascade:
    """The gradient cascade of a forward attention cascade (see module doc).

    Parameters
    ----------
    cascade
        A forward softmax (any pass form) or sigmoid attention cascade.
    name
        Name of the result (default ``<name>_bwd``).
    params
        Default parameters overriding the forward's.

    Returns
    -------
    Cascade
        Inputs ``Q, K, V`` (the forward's names), ``O`` and ``LSE`` (softmax: the forward's
        output and its fp32 log-sum-exp per row), ``DO``; outputs ``DQ, DK, DV``.

    Raises
    ------
    WorkloadError
        The forward lacks a property the derivation needs (named in the message).
    """
    g = grad_structure(cascade)
    key_split = cascade.splits.get(g.key_rank)
    taken = set(cascade.tensors) | set(cascade.params) | set(cascade.rank_params.values())
    nm = {}
    for n in _NEW:
        new = n
        while new in taken - {g.output} or new in {g.query, g.key, g.value}:
            new += "G"
        nm[n] = new
        taken.add(new)
    t = cascade.tensors
    lines = [f"# gradient of {cascade.name}: FlashAttention-2 backward (Dao 2023, Alg. 2)"]
    dropped = (
        {key_split.tile} if key_split is not None and isinstance(key_split.tile, str) else set()
    )
    for k, v in cascade.params.items():
        if k not in dropped:
            lines.append(f"param {k} = {v}")
    for s in cascade.splits.values():
        if s.rank != g.key_rank:
            lines.append(f"rank {s.rank} -> {s.outer}, {s.inner} : {s.tile}")
    inner = {s.inner for s in cascade.splits.values()}
    for r, size in cascade.rank_params.items():
        if r not in inner:
            lines.append(f"rank {r} : {size}")
    for n in (g.query, g.key, g.value):
        lines.append(f"tensor {_ref(n, t[n].ranks)} : {t[n].dtype}")
    o_dtype = t[g.query].dtype
    o_ranks = g.output_ranks
    S, P = nm["S"], nm["P"]
    s_ref = _ref(S, g.score_ranks)
    p_ref = _ref(P, g.score_ranks)
    do_ref = _ref(nm["DO"], o_ranks)
    q_ref, k_ref, v_ref = (
        _ref(g.query, g.query_ref),
        _ref(g.key, g.key_ref),
        _ref(g.value, g.value_ref),
    )
    cond = f" if {g.condition}" if g.condition else ""
    lines.append(f"tensor {do_ref} : {o_dtype}")
    for n, like in (("DQ", g.query_ref), ("DK", g.key_ref), ("DV", g.value_ref)):
        src = {"DQ": g.query, "DK": g.key, "DV": g.value}[n]
        lines.append(f"tensor {_ref(nm[n], like)} : {t[src].dtype}")
    sp = t[g.score.name].sparsity
    if sp is not None:
        lines.append(f"sparsity {S} : {sp}")
        lines.append(f"sparsity {nm['DP']} : {sp}")
    dp_ref = _ref(nm["DP"], g.score_ranks)
    ds_ref = _ref(nm["DS"], g.score_ranks)
    if g.kind == "softmax":
        rows_l = _ref(nm["LSE"], g.row_ranks)
        rows_d = _ref(nm["DELTA"], g.row_ranks)
        lines += [
            f"tensor {_ref(g.output, o_ranks)} : {o_dtype}",
            f"tensor {rows_l} : fp32",
            f"tensor {rows_d} : fp32",
            f"{rows_d} = {do_ref} * {_ref(g.output, o_ranks)}",
            f"{s_ref} = {q_ref} * {k_ref}{cond}",
            f"{p_ref} = exp({s_ref} - {rows_l})",
        ]
    else:
        assert g.sigmoid is not None
        lines += [
            f"{s_ref} = {q_ref} * {k_ref}{cond}",
            f"{p_ref} = {_rename(g.sigmoid.expr, g.score.name, s_ref)}",
        ]
    lines += [
        f"{_ref(nm['DV'], g.value_ref)} = {p_ref} * {do_ref}",
        f"{dp_ref} = {do_ref} * {v_ref}{cond}",
        f"{ds_ref} = {p_ref} * ({dp_ref} - {_ref(nm['DELTA'], g.row_ranks)})"
        if g.kind == "softmax"
        else f"{ds_ref} = {dp_ref} * {p_ref} * (1 - {p_ref})",
        f"{_ref(nm['DQ'], g.query_ref)} = {ds_ref} * {k_ref}",
        f"{_ref(nm['DK'], g.key_ref)} = {ds_ref} * {q_ref}",
    ]
    return parse_cascade("\n".join(lines) + "\n", name=name or f"{cascade.name}_bwd", params=params)
