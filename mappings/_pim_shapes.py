"""Shapes of the cascades the PIM dataflows map, read from rank roles (not parameter names).

:func:`decode_shape` reads a decode cascade's rank roles (:func:`mappings._roles.attention_roles`:
batch ranks -> independent K/V streams, query heads x query length -> query rows sharing a
stream, key-side operands of the core contractions -> the bytes the units stream, MACs from
:func:`workloads.count`) and refuses a prefill (query length > 1) or a multi-pass cascade;
:func:`gemv_shape` reads the single contraction of a GEMV cascade.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

from archsim.errors import MappingError
from mappings._passes import cascade_passes
from mappings._roles import attention_roles, is_contraction, key_canon
from mappings._stream import numeric_params

if TYPE_CHECKING:
    from workloads import Cascade, Einsum, TensorRef, Workload

__all__ = ["DecodeShape", "GemvShape", "decode_shape", "gemv_shape"]


def _einsum(cascade: Cascade, name: str) -> Einsum:
    return next(e for e in cascade.einsums if e.name == name)


def _bytes(cascade: Cascade, tensor: str, sizes: Mapping[str, int], skip: set[str]) -> float:
    """Bytes of ``tensor`` over its stored ranks, leaving out the ranks in ``skip``."""
    spec = cascade.tensors[tensor]
    return math.prod(sizes.get(r, 1) for r in spec.ranks if r not in skip) * spec.dtype_bits / 8


@dataclass(frozen=True)
class DecodeShape:
    """Shape of a decode cascade as the PIM units see it, read from its rank roles.

    Attributes
    ----------
    streams
        Independent K/V sets: the product of the score's batch ranks (batch x K/V heads).
    sharing
        Query rows reading one stream: query-head ranks (a GQA group, MLA's heads) x the
        query length (1 for decode).
    key_len
        Keys per stream (the size of the key rank).
    streamed
        ``(contraction, key-side tensor, bytes per stream)`` for every key-side operand a
        core contraction streams through the units, in cascade order.
    kv_bytes
        Distinct key-side (cache) bytes of the whole cascade.
    pim_macs, host_macs
        MACs of the streamed contractions / of every other Einsum (:func:`workloads.count`).
    score_bits
        Bits per score element (scores out to the softmax, probabilities back).
    kv_bits
        Bits per element of the streamed tensors.
    """

    streams: int
    sharing: int
    key_len: int
    streamed: tuple[tuple[str, str, float], ...]
    kv_bytes: float
    pim_macs: float
    host_macs: float
    score_bits: int
    kv_bits: int


def decode_shape(workload: Workload) -> DecodeShape:
    """The :class:`DecodeShape` of ``workload``'s cascade, from :func:`attention_roles`.

    Raises
    ------
    MappingError
        Not attention-like; a query length above 1 (a prefill); more than one pass over the
        key rank; no key-side tensor read by a contraction.
    """
    from workloads import count

    cascade: Cascade = workload.cascade
    roles = attention_roles(cascade)
    num = numeric_params(dict(workload.params))
    sizes = cascade.rank_sizes(num)
    qlen = int(sizes[roles.query])
    if qlen != 1:
        raise MappingError(
            f"pim_decode maps one decode step; cascade {cascade.name!r} has query length "
            f"{qlen} (query rank {roles.query!r}): a prefill",
            path="workload.cascade",
            expected="query length 1 (decode)",
            got=qlen,
        )
    n_pass, why = cascade_passes(cascade, roles.key)
    if n_pass != 1:
        raise MappingError(
            f"pim_decode streams the K/V cache once; cascade {cascade.name!r} needs {why}",
            path="workload.cascade",
            expected=f"1 pass over key rank {roles.key!r}",
            got=n_pass,
        )
    canon = key_canon(cascade)
    key_names = roles.key_ranks
    batch = set(roles.batch)
    made = {e.name for e in cascade.einsums}
    core_made = set(roles.core)
    counts = count(cascade, num)
    streamed: list[tuple[str, str, float]] = []
    distinct: dict[str, float] = {}
    for name in roles.core:
        e = _einsum(cascade, name)
        if not is_contraction(e):
            continue
        for ref in e.inputs:
            if ref.name in core_made or (ref.name in made and ref.name not in roles.pre):
                continue  # made in the stream: scores, probabilities
            if not any(canon.get(r, r) == roles.key or r in key_names for r in ref.ranks):
                continue
            streamed.append((name, ref.name, _bytes(cascade, ref.name, sizes, batch)))
            distinct[ref.name] = _bytes(cascade, ref.name, sizes, set())
    if not streamed:
        raise MappingError(
            f"cascade {cascade.name!r} has no key-side tensor read by a contraction",
            path="workload.cascade",
            expected="a K/V cache tensor over the key rank (e.g. K[b,h,m,e])",
            got=[e.text or e.name for e in cascade.einsums[:4]],
        )
    pim = {n for n, _, _ in streamed}
    pim_macs = float(sum(counts.einsum(n).macs for n in pim))
    host = float(sum(counts.einsum(e.name).macs for e in cascade.einsums if e.name not in pim))
    return DecodeShape(
        streams=math.prod(int(sizes[r]) for r in roles.batch),
        sharing=math.prod(int(sizes[r]) for r in roles.query_heads) * qlen,
        key_len=int(sizes[roles.key]),
        streamed=tuple(streamed),
        kv_bytes=float(sum(distinct.values())),
        pim_macs=pim_macs,
        host_macs=host,
        score_bits=int(cascade.tensors[roles.score].dtype_bits),
        kv_bits=int(cascade.tensors[streamed[0][1]].dtype_bits),
    )


@dataclass(frozen=True)
class GemvShape:
    """``y[batch, m, n] = sum_k W[batch, n, k] x[batch, m, k]`` read from one contraction:
    ``weight`` is the larger operand (the second on a tie), ``rows`` the product of its
    private output ranks (x the shared batch ranks: each batch element has its own weights),
    ``cols`` the product of the reduced ranks, ``vectors`` the product of the other operand's
    private output ranks (1 for a plain GEMV)."""

    einsum: str
    weight: str
    rows: int
    cols: int
    vectors: int
    weight_bits: int


def gemv_shape(workload: Workload) -> GemvShape:
    """The :class:`GemvShape` of ``workload``'s single contraction.

    Raises
    ------
    MappingError
        No contraction, or more than one.
    """
    cascade: Cascade = workload.cascade
    cons = [e for e in cascade.einsums if is_contraction(e)]
    if len(cons) != 1:
        raise MappingError(
            f"pim_gemv maps one contraction; cascade {cascade.name!r} has {len(cons)}"
            + (f" ({', '.join(e.name for e in cons)})" if cons else ""),
            path="workload.cascade",
            expected="exactly one contraction y = W * x (sum over the shared rank)",
            got=[e.text or e.name for e in cascade.einsums[:4]],
        )
    (e,) = cons
    others = [o.name for o in cascade.einsums if o is not e]
    if others or len(e.inputs) != 2:
        raise MappingError(
            f"pim_gemv maps a cascade that is one GEMV; cascade {cascade.name!r} "
            + (
                f"also has {', '.join(others)}"
                if others
                else f"contracts {e.inputs[0].name} with itself"
            ),
            path="workload.cascade",
            expected="one Einsum y = W * x over two distinct tensors",
            got=[o.text or o.name for o in cascade.einsums[:4]],
        )
    sizes = cascade.rank_sizes(numeric_params(dict(workload.params)))
    a, b = e.inputs[0], e.inputs[1]
    out = list(e.output.ranks)

    def elems(ref: TensorRef) -> int:
        return math.prod(int(sizes.get(r, 1)) for r in ref.ranks)

    w, x = (a, b) if elems(a) > elems(b) else (b, a)
    own = [r for r in out if r in w.ranks and r not in x.ranks]
    shared = [r for r in out if r in w.ranks and r in x.ranks]
    vec = [r for r in out if r in x.ranks and r not in w.ranks]
    return GemvShape(
        einsum=e.name,
        weight=w.name,
        rows=math.prod(int(sizes[r]) for r in own + shared),
        cols=math.prod(int(sizes[r]) for r in e.reduce_ranks),
        vectors=math.prod(int(sizes[r]) for r in vec),
        weight_bits=int(cascade.tensors[w.name].dtype_bits),
    )
