"""Generic work of a streamed attention mapping, counted from the cascade's own Einsums.

A fused attention mapping (FlashAttention, FuseMax, split-KV decode...) gives each *work
item* one tile of ``query_tile`` rows of the query rank (one batch element, one query head)
and streams the key rank through it in *trips* of ``key_tile`` keys. :func:`stream_work`
counts, for the cascade given and its roles (:mod:`mappings._roles`):

* **trips per work item**: the key tiles a work item must visit. Conditions on the core
  Einsums (causal, sliding window, prefix) are applied exactly at tile granularity from the
  per-row key interval they allow; sparsity annotations on core tensors apply as the kernel
  can use them (``skips``): ``block`` skips dead blocks (a tile of ``k`` blocks is live with
  probability ``1 - (1 - d)^k`` for a random block mask of density ``d``), ``slice`` gathers
  the kept keys of M x 1 slices into dense tiles (``ceil(d * keys / key_tile)`` trips per
  query tile), anything the kernel cannot skip costs dense trips;
* **useful ops** per Einsum class (tile, row, epilogue), exactly :func:`workloads.count` of
  the cascade at the mapping's key tile (the key split parameter is set to ``key_tile``, so a
  1-pass cascade's running state advances once per trip);
* **executed ops** per trip: the ops of a dense tile (a masked diagonal tile, a partly empty
  last tile and a sparse tile still occupy the whole tile). A recipe gives the engine the
  useful ops with ``occupancy = useful / executed``: time counts executed work, energy useful;
* **bytes** per trip of every key-side tensor (one key tile) and per work item of every
  query-side input and every output the work item writes.

The totals over all trips and work items equal :func:`workloads.count` (the tests hold this
for every library cascade, tiles that divide and tiles that do not, causal and not).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from archsim.errors import MappingError
from mappings._counts import cached_count, dense_cascade
from mappings._roles import AttentionRoles, attention_roles, key_canon

if TYPE_CHECKING:
    from mappings._registry import WorkloadLike
    from workloads import Cascade, CascadeCounts

__all__ = [
    "StreamTiling",
    "StreamWork",
    "stream_work",
    "exact_round",
    "add_ops",
    "capped",
    "numeric_params",
]

#: What a kernel may skip, by name: tiles a condition leaves empty, dead blocks of a
#: block-sparse tensor, dead M x 1 slices (by gathering the kept keys).
SKIPS = frozenset({"condition", "block", "slice"})
_SKIPPERS = {"block": "block_sparse, fg_sparse, fusemax", "slice": "fg_sparse, fusemax"}


@dataclass(frozen=True)
class StreamTiling:
    """Tile extents of a streamed mapping.

    Attributes
    ----------
    query_tile
        Rows of the query rank per work item (capped at the query extent).
    key_tile
        Keys per trip (capped at the key extent).
    skips
        What the kernel family can skip (subset of ``condition``, ``block``, ``slice``).
    """

    query_tile: int
    key_tile: int
    skips: frozenset[str] = frozenset({"condition"})


def add_ops(into: dict[str, float], ops: Mapping[str, float], scale: float = 1.0) -> None:
    """``into += scale * ops`` by op kind."""
    for k, v in ops.items():
        if v:
            into[k] = into.get(k, 0.0) + scale * float(v)


def capped(
    useful: Mapping[str, float], exec_per_trip: Mapping[str, float], trips: float
) -> dict[str, float]:
    """Useful ops a program runs: at most the executed ops of its ``trips`` trips per kind.

    The running state of a 1-pass cascade is updated once per key tile for every tile, also
    for tiles no key of which is live (the cascade rescales by ``exp(0) = 1`` there); a
    mapping that skips those tiles skips those updates. Kinds without an executed count
    (not run per trip) are kept whole.
    """
    out: dict[str, float] = {}
    for k, v in useful.items():
        x = exec_per_trip.get(k)
        out[k] = float(v) if x is None else min(float(v), float(x) * trips)
    return out


def exact_round(x: np.ndarray) -> np.ndarray:
    """Integers with the same (rounded) total as ``x``: floors plus one for the largest
    fractional parts (deterministic; expected trip counts of sparse masks)."""
    x = np.asarray(x, dtype=float)
    base = np.floor(x).astype(np.int64)
    extra = int(round(float(x.sum()))) - int(base.sum())
    if extra > 0:
        frac = x - base
        idx = np.argsort(-frac, kind="stable")[:extra]
        base[idx] += 1
    return base


@dataclass(frozen=True)
class StreamWork:
    """Counted work of a streamed mapping of one cascade (see module doc).

    Op dicts are keyed by the cascade's op kinds plus ``mac``. ``*_useful`` are totals over
    the whole program; ``*_exec`` are per trip (tile, row) or per work item (epilogue).
    """

    roles: AttentionRoles
    tiling: StreamTiling
    params: dict[str, float]
    sizes: dict[str, int]
    counts: CascadeCounts
    query_len: int
    key_len: int
    query_tile: int
    key_tile: int
    work_items: int
    query_blocks: int
    trips: np.ndarray
    dense_trips: int
    tile_einsums: tuple[str, ...]
    row_einsums: tuple[str, ...]
    epilogue_einsums: tuple[str, ...]
    tile_useful: dict[str, float]
    row_useful: dict[str, float]
    epilogue_useful: dict[str, float]
    tile_exec: dict[str, float]
    row_exec: dict[str, float]
    epilogue_exec: dict[str, float]
    key_tensors: dict[str, float]
    query_tensors: dict[str, float]
    out_tensors: dict[str, float]
    stream_sharing: int
    skipped: dict[str, str] = field(default_factory=dict)
    key_spans: np.ndarray | None = None
    """First and last key tile each query block visits, shape ``(query_blocks, 2)``."""
    live_fraction: np.ndarray | None = None
    """Expected fraction of the tiles in a query block's span that are live (block and
    slice sparsity the kernel skips; 1 where nothing is skipped), shape ``(query_blocks,)``."""

    @property
    def total_trips(self) -> int:
        """Trips over all work items."""
        return int(self.trips.sum())

    @property
    def key_tile_bytes(self) -> float:
        """Bytes of one key tile of every key-side tensor together."""
        return float(sum(self.key_tensors.values()))

    def useful_ops(self) -> dict[str, float]:
        """All useful ops of the streamed Einsums (tile + row + epilogue), as counted."""
        out: dict[str, float] = {}
        for d in (self.tile_useful, self.row_useful, self.epilogue_useful):
            add_ops(out, d)
        return out

    def run_ops(self) -> dict[str, float]:
        """The useful ops the mapping runs: :meth:`useful_ops` less the running-state updates
        of skipped tiles (see :func:`capped`)."""
        out: dict[str, float] = {}
        n = float(self.total_trips)
        add_ops(out, capped(self.tile_useful, self.tile_exec, n))
        add_ops(out, capped(self.row_useful, self.row_exec, n))
        add_ops(out, capped(self.epilogue_useful, self.epilogue_exec, float(self.work_items)))
        return out

    def skipped_ops(self) -> dict[str, float]:
        """Counted ops the mapping does not run (running state of skipped tiles)."""
        run = self.run_ops()
        return {k: v - run.get(k, 0.0) for k, v in self.useful_ops().items() if v > run.get(k, 0.0)}


def _einsum_ops(counts: CascadeCounts, name: str) -> tuple[dict[str, float], float]:
    ec = counts.einsum(name)
    ops = {k: float(v) for k, v in ec.ops.items() if v}
    if ec.macs:
        ops["mac"] = ops.get("mac", 0.0) + float(ec.macs)
    return ops, float(ec.points)


def stream_work(
    workload: WorkloadLike,
    tiling: StreamTiling,
    *,
    roles: AttentionRoles | None = None,
    dataflow: str = "dataflow",
) -> StreamWork:
    """Count the work of a streamed mapping of ``workload``'s cascade (see module doc).

    Parameters
    ----------
    workload
        Anything with ``.cascade`` and ``.params`` (a library ``Workload`` or a file workload).
    tiling
        Query/key tile extents and what the kernel can skip.
    roles
        Precomputed roles (default: :func:`attention_roles` of the cascade).
    dataflow
        Name used in error messages.

    Raises
    ------
    MappingError
        Not attention-like; a core Einsum other than the running state iterates the key's
        outer rank only; a condition over ranks other than the query and key.
    """
    cascade = workload.cascade
    r = roles or attention_roles(cascade)
    params = dict(workload.params)
    sizes0 = cascade.rank_sizes(numeric_params(params))
    score = next(e for e in cascade.einsums if e.name == r.score)
    outer_streamed = r.key_outer is not None and r.key_outer in score.ranks
    if r.key_outer is None or outer_streamed or r.key in score.ranks:
        key_len = sizes0[r.key]
        key_name = r.key
    else:  # only the inner part is iterated (chunk-local attention, e.g. linear's mi)
        key_len = sizes0[str(r.key_inner)]
        key_name = str(r.key_inner)
    query_len = sizes0[r.query]
    kt = max(1, min(int(tiling.key_tile), key_len))
    qt = max(1, min(int(tiling.query_tile), query_len))
    if outer_streamed and r.key_split_param:
        params = {**params, r.key_split_param: kt}
    num = numeric_params(params)
    sizes = cascade.rank_sizes(num)
    counts = cached_count(cascade, num)

    # --- Einsum classes ------------------------------------------------------------------
    inner = {x for x in (r.key, r.key_inner) if x}
    if not outer_streamed and r.key_outer is None:
        inner = {r.key}
    tile_e, row_e = [], []
    for name in r.core:
        e = next(x for x in cascade.einsums if x.name == name)
        if set(e.ranks) & inner:
            tile_e.append(name)
        else:
            row_e.append(name)
    epi_e = list(r.epilogue)

    # --- per-tile extents ------------------------------------------------------------------
    canon = key_canon(cascade)
    q_names = {r.query}
    q_parent = canon.get(r.query)  # a query that is a split part (linear's pi of p)
    ext: dict[str, int] = {}
    for rank in sizes:
        if rank in q_names or (q_parent is not None and rank == q_parent):
            ext[rank] = qt  # a tile's rows, also when read through the parent rank
        elif rank in inner or rank == r.key:
            ext[rank] = kt
        elif rank == r.key_outer or rank in r.batch or rank in r.query_heads:
            ext[rank] = 1
        else:
            ext[rank] = sizes[rank]

    dense = cached_count(dense_cascade(cascade), num)

    def per_point(names: list[str]) -> tuple[dict[str, float], dict[str, float]]:
        useful: dict[str, float] = {}
        execd: dict[str, float] = {}
        for n in names:
            add_ops(useful, _einsum_ops(counts, n)[0])
            ops, pts = _einsum_ops(dense, n)  # a dense tile: no condition, no sparsity
            e = next(x for x in cascade.einsums if x.name == n)
            box = math.prod(ext.get(rk, sizes.get(rk, 1)) for rk in e.ranks)
            if pts > 0:
                add_ops(execd, ops, box / pts)
        return useful, execd

    tile_u, tile_x = per_point(tile_e)
    row_u, row_x = per_point(row_e)
    epi_u, epi_x = per_point(epi_e)

    # --- work items and trips ------------------------------------------------------------
    q_blocks = math.ceil(query_len / qt)
    k_blocks = math.ceil(key_len / kt)
    outer = math.prod(sizes[x] for x in r.batch) * math.prod(sizes[x] for x in r.query_heads)
    spans = _condition_trips(cascade, r, tiling, sizes, num, qt, kt, query_len, key_len, key_name)
    skipped: dict[str, str] = {}
    if spans is not None:
        skipped["condition"] = "tiles outside the condition are skipped"
        in_span = (spans[:, 1] - spans[:, 0] + 1).astype(float)
    else:
        spans = np.stack([np.zeros(q_blocks, np.int64), np.full(q_blocks, k_blocks - 1)], axis=1)
        in_span = np.full(q_blocks, k_blocks, dtype=float)
    per_block = _sparsity_trips(
        cascade, r, tiling, num, in_span, qt, kt, key_len, skipped, dataflow
    )
    live = np.divide(per_block, in_span, out=np.zeros_like(per_block), where=in_span > 0)
    trips = exact_round(np.tile(per_block, outer))
    sharing = math.prod(sizes[x] for x in r.query_heads) * q_blocks

    # --- bytes -------------------------------------------------------------------------------
    streamed = set(tile_e) | set(row_e) | set(epi_e)
    key_t: dict[str, float] = {}
    query_t: dict[str, float] = {}
    out_t: dict[str, float] = {}
    consumed_outside = {
        ref.name for e in cascade.einsums if e.name not in streamed for ref in e.inputs
    }
    for e in cascade.einsums:
        if e.name not in streamed:
            continue
        for ref in e.inputs:
            t = ref.name
            if t in streamed or t in key_t or t in query_t:
                continue  # made inside the stream, or already counted
            spec = cascade.tensors[t]
            read_as = ref.ranks  # the indices it is read through (a split pair, a parent)
            elems = math.prod(_tensor_ext(rk, ext, sizes, r, kt) for rk in read_as)
            if any(canon.get(rk, rk) == r.key or rk in inner for rk in read_as):
                key_t[t] = elems * spec.dtype_bits / 8.0
            else:
                query_t[t] = elems * spec.dtype_bits / 8.0
    for name in streamed:
        if name in cascade.outputs or name in consumed_outside:
            spec = cascade.tensors[name]
            if spec.iterative:
                continue
            e = next(x for x in cascade.einsums if x.name == name)
            elems = math.prod(_tensor_ext(rk, ext, sizes, r, kt) for rk in e.output.ranks)
            out_t[name] = elems * spec.dtype_bits / 8.0
    return StreamWork(
        roles=r,
        tiling=tiling,
        params=dict(num),
        sizes=dict(sizes),
        counts=counts,
        query_len=query_len,
        key_len=key_len,
        query_tile=qt,
        key_tile=kt,
        work_items=int(trips.size),
        query_blocks=q_blocks,
        trips=trips,
        dense_trips=k_blocks,
        tile_einsums=tuple(tile_e),
        row_einsums=tuple(row_e),
        epilogue_einsums=tuple(epi_e),
        tile_useful=tile_u,
        row_useful=row_u,
        epilogue_useful=epi_u,
        tile_exec=tile_x,
        row_exec=row_x,
        epilogue_exec=epi_x,
        key_tensors=key_t,
        query_tensors=query_t,
        out_tensors=out_t,
        stream_sharing=int(sharing),
        skipped=skipped,
        key_spans=spans,
        live_fraction=live,
    )


def numeric_params(params: Mapping[str, object]) -> dict[str, float]:
    """The numeric workload parameters (booleans as 0/1) that size ranks and conditions."""
    out: dict[str, float] = {}
    for k, v in params.items():
        if isinstance(v, bool):
            out[k] = int(v)
        elif isinstance(v, (int, float)):
            out[k] = v
    return out


def _tensor_ext(
    rank: str,
    ext: Mapping[str, int],
    sizes: Mapping[str, int],
    r: AttentionRoles,
    kt: int,
) -> int:
    """Extent of a tensor's rank in one tile (a stored parent rank of a split key: the key tile)."""
    if rank in ext:
        return ext[rank]
    if rank == r.key:
        return kt
    return sizes.get(rank, 1)


def _condition_trips(
    cascade: Cascade,
    r: AttentionRoles,
    tiling: StreamTiling,
    sizes: Mapping[str, int],
    params: Mapping[str, float],
    qt: int,
    kt: int,
    query_len: int,
    key_len: int,
    key_name: str,
) -> np.ndarray | None:
    """First and last live key tile of each query block, shape ``(query blocks, 2)``, from
    the core Einsums' conditions (None: none apply; a block with none live has ``(0, -1)``).

    Every ``<=`` comparison linear in the query and key positions bounds each query row's key
    interval; a tile is live when one of its rows' intervals meets it. The live tiles of a
    query block are the span of its rows' intervals (exact when adjacent rows' intervals
    overlap, as for causal, sliding-window and prefix masks; a superset otherwise).
    """
    from workloads._cond import linearize

    conds = []
    for name in r.core:
        e = next(x for x in cascade.einsums if x.name == name)
        if e.cond is None:
            continue
        allowed = {r.query, key_name}
        if r.key_outer and key_name == r.key:
            allowed |= {r.key}
        lin = linearize(e.cond, set(e.ranks) | {r.key}, params, where=f"`{e.text}`")
        for op, coeffs, k in lin:
            bad = set(coeffs) - allowed
            if bad:
                raise MappingError(
                    f"condition of {name} uses rank(s) {sorted(bad)} that the streamed mapping "
                    "does not index by position",
                    path=f"workload.cascade.{name}.condition",
                    expected=f"a condition over query rank {r.query!r} and key rank {key_name!r}",
                    got=e.condition,
                )
            conds.append((op, coeffs, k))
    if not conds or "condition" not in tiling.skips:
        return None
    q = np.arange(query_len, dtype=np.int64)
    lo = np.zeros(query_len, dtype=np.int64)
    hi = np.full(query_len, key_len - 1, dtype=np.int64)
    for op, coeffs, k in conds:
        a = int(coeffs.get(key_name, 0))
        b = int(coeffs.get(r.query, 0))
        rest = b * q + int(k)  # a*key + rest (op) 0
        if a == 0:
            ok = rest <= 0 if op == "<=" else (rest == 0 if op == "==" else np.ones_like(q, bool))
            hi = np.where(ok, hi, -1)
        elif op == "<=":
            if a > 0:
                hi = np.minimum(hi, np.floor_divide(-rest, a))
            else:
                lo = np.maximum(lo, -np.floor_divide(rest, a))
        elif op == "==":
            v, m = np.divmod(-rest, a)
            lo = np.where(m == 0, np.maximum(lo, v), 1)
            hi = np.where(m == 0, np.minimum(hi, v), 0)
    live = lo <= hi
    big = np.iinfo(np.int64).max
    first = np.where(live, lo // kt, big)
    last = np.where(live, hi // kt, -1)
    starts = np.arange(0, query_len, qt)
    f = np.minimum.reduceat(first, starts)
    g = np.maximum.reduceat(last, starts)
    return np.stack([np.where(g >= f, f, 0), np.where(g >= f, g, -1)], axis=1)


def _sparsity_trips(
    cascade: Cascade,
    r: AttentionRoles,
    tiling: StreamTiling,
    params: Mapping[str, float],
    per_block: np.ndarray,
    qt: int,
    kt: int,
    key_len: int,
    skipped: dict[str, str],
    dataflow: str,
) -> np.ndarray:
    """Expected live trips per query block under the sparsity annotations of core tensors."""
    from workloads._sparsity import tile_shape

    core = set(r.core)
    seen: set[str] = set()
    for e in cascade.einsums:
        if e.name not in core:
            continue
        for t in (e.name, *(ref.name for ref in e.inputs)):
            spec = cascade.tensors[t]
            sp = spec.sparsity
            if t in seen or sp is None or sp.density is None or sp.density >= 1:
                continue
            seen.add(t)
            d = float(sp.density)
            if sp.kind in ("block", "slice"):
                shape = dict(zip(spec.ranks, tile_shape(sp, spec.ranks, params), strict=True))
                bq = max(1, shape.get(r.query, 1))
                bk = max(1, max((v for k, v in shape.items() if k in r.key_ranks), default=1))
            if sp.kind == "slice" and "slice" in tiling.skips:
                # the kept keys of the query tile's M x 1 slices are gathered into dense tiles
                kept = 1.0 - (1.0 - d) ** max(1, math.ceil(qt / bq))
                per_block = np.ceil(kept * per_block)
                skipped[t] = f"slice {bq}x1, density {d}: kept keys gathered, {kept:.3f} of keys"
            elif sp.kind in ("block", "slice") and "block" in tiling.skips:
                n = math.ceil(qt / bq) * math.ceil(kt / bk)
                live = 1.0 - (1.0 - d) ** n
                per_block = per_block * live
                skipped[t] = f"{sp.kind} density {d}: {live:.3f} of {qt}x{kt} tiles live"
            elif sp.kind in ("block", "slice"):
                raise MappingError(
                    f"{dataflow} cannot skip the {sp} sparsity of {t}",
                    path=f"workload.cascade.tensors.{t}.sparsity",
                    expected="a dataflow that skips "
                    + sp.kind
                    + " sparsity"
                    + (
                        " (block_sparse, fg_sparse, fusemax)"
                        if sp.kind == "block"
                        else " (fg_sparse, fusemax)"
                    ),
                    got=str(sp),
                )
            else:  # unstructured density or a mask: no tile is known dead before run time
                skipped.setdefault(t, f"{sp}: not skippable, dense tiles (occupancy = density)")
    return per_block
