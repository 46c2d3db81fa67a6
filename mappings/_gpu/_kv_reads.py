"""K/V bytes a fused attention kernel reads from DRAM: the key tiles its CTAs visit.

CTAs that share a K/V stream (the query blocks of one head, or of one GQA group) run in
near lock-step and stream the keys in the same order, so one DRAM read of a key tile
serves every CTA of the stream that is resident when it is read. A stream whose CTAs span
several waves of the grid is read again by each wave, unless the K/V of every stream in
flight fits in the reusable part of L2 (then each stream is read once).

What a wave reads is the *union* of the key tiles its CTAs visit, not the dense K/V: a
causal wave reads keys up to its last query row, a sliding-window wave the band its rows'
windows cover, and a block-sparse wave the tiles live in any of its CTAs (tiles live
independently with the mask's density, so ``1 - prod(1 - p)`` of a tile's CTAs). Dense
attention reads the whole stream once per wave, as before.
"""

from __future__ import annotations

import math

import numpy as np

from mappings._stream import StreamWork

__all__ = ["kv_dram_reads"]


def kv_dram_reads(
    w: StreamWork,
    *,
    slots: int,
    stream_bytes: float,
    l2_reuse_bytes: float,
    order: np.ndarray | None = None,
) -> float:
    """DRAM bytes of the key-side tensors read by the grid of ``w``.

    Parameters
    ----------
    w
        Counted work of the streamed mapping (work items ordered stream by stream, query
        block innermost; ``key_spans`` and ``live_fraction`` per query block).
    slots
        CTAs resident at once (SMs x CTAs per SM).
    stream_bytes
        Bytes of one whole K/V stream (every key-side tensor of one head / group), B.
    l2_reuse_bytes
        L2 capacity that holds K/V across waves, B.
    order
        Dispatch order of the work items (default: launch order).
    """
    items, sharing = w.work_items, max(1, w.stream_sharing)
    if items == 0 or stream_bytes <= 0:
        return 0.0
    k_blocks = max(1, w.dense_trips)
    qb = max(1, w.query_blocks)
    spans = w.key_spans
    if spans is None:
        spans = np.stack([np.zeros(qb, np.int64), np.full(qb, k_blocks - 1)], axis=1)
    live = w.live_fraction if w.live_fraction is not None else np.ones(qb)
    idx = np.arange(items) if order is None else np.asarray(order)
    stream = idx // sharing
    block = idx % qb
    # the position of each item among its own stream's items, in dispatch order
    seen = np.bincount(stream)
    sort = np.argsort(stream, kind="stable")
    rank = np.empty(items, dtype=np.int64)
    rank[sort] = np.arange(items) - np.repeat(np.cumsum(seen) - seen, seen)
    in_flight = (math.ceil(slots / sharing) + 1) * stream_bytes
    chunk = np.zeros(items, np.int64) if in_flight <= l2_reuse_bytes else rank // max(1, slots)
    n_chunks = int(chunk.max()) + 1
    group = stream * n_chunks + chunk
    _, gid = np.unique(group, return_inverse=True)
    # sweep over the key tiles of each group: every CTA's span opens at its first tile and
    # closes after its last, carrying log(1 - p) (the chance the CTA leaves a tile unread)
    # and a count; sorted by (group, tile) the running sums give, between two consecutive
    # events of a group, the chance no CTA reads a tile and whether any CTA covers it.
    # Each group's events sum to zero, so one global running sum serves every group.
    f, g = spans[block, 0], spans[block, 1]
    ok = g >= f
    lg = np.log(np.clip(1.0 - live[block], 1e-300, 1.0))[ok]
    gid_ok = gid[ok]
    pos = np.concatenate([f[ok], g[ok] + 1])
    grp = np.concatenate([gid_ok, gid_ok])
    dlog = np.concatenate([lg, -lg])
    dcov = np.concatenate([np.ones(lg.size, np.int64), -np.ones(lg.size, np.int64)])
    ev = np.lexsort((pos, grp))
    pos, grp, dlog, dcov = pos[ev], grp[ev], dlog[ev], dcov[ev]
    miss = np.exp(np.minimum(np.cumsum(dlog), 0.0))
    covered = np.cumsum(dcov) > 0
    length = np.where(grp[1:] == grp[:-1], pos[1:] - pos[:-1], 0)
    tiles = float(np.sum(length * np.where(covered[:-1], 1.0 - miss[:-1], 0.0)))
    return tiles * stream_bytes / k_blocks
