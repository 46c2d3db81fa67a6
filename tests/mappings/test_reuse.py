"""Reuse analysis: refills follow the loop nest and never go below compulsory traffic."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from mappings import FusionGroup, LevelMapping
from mappings._reuse import TensorUse, group_traffic, refill_multiplier


def test_stationary_tensor_is_not_refetched_by_inner_loops_over_other_ranks():
    # for m: for n: for k -> A[m,k] changes with k (innermost): refetched for every n
    loops = [("m", 4), ("n", 3), ("k", 2)]
    assert refill_multiplier(loops, ("m", "k")) == 3
    # for m: for k: for n -> A stays while n turns: fetched once
    assert refill_multiplier([("m", 4), ("k", 2), ("n", 3)], ("m", "k")) == 1
    # C[m,n] under k innermost: written once per (m, n) tile; with k outer: 2 partial visits
    assert refill_multiplier(loops, ("m", "n")) == 1
    assert refill_multiplier([("k", 2), ("m", 4), ("n", 3)], ("m", "n")) == 2


def _gemm_group(order, fm, fn, fk, sm=1, sn=1):
    return FusionGroup(
        einsums=("C",),
        levels=(
            LevelMapping(level="DRAM", temporal={"m": fm, "n": fn, "k": fk}, order=order),
            LevelMapping(level="GLB", spatial={"m": sm, "n": sn}),
        ),
    )


TENSORS = (
    TensorUse("A", ("m", "k"), 64 * 32, 2.0),
    TensorUse("B", ("k", "n"), 32 * 48, 2.0),
    TensorUse("C", ("m", "n"), 64 * 48, 2.0, written=True, read=False),
)


@pytest.mark.parametrize("order", list(itertools.permutations("mnk")))
@pytest.mark.parametrize(("fm", "fn", "fk"), [(1, 1, 1), (4, 3, 2), (64, 1, 32), (2, 48, 1)])
def test_dram_traffic_is_never_below_compulsory(order, fm, fn, fk):
    traffic = {
        (t.level, t.tensor): t for t in group_traffic(_gemm_group(order, fm, fn, fk), TENSORS)
    }
    for t in TENSORS:
        cell = traffic[("DRAM", t.name)]
        moved = cell.write_bytes if t.written else cell.read_bytes
        assert moved >= t.elems * t.bytes_per_elem


def test_traffic_matches_a_direct_count_of_tile_fetches():
    # count, by running the loop nest, how often each tile is (re)loaded into a 1-tile buffer
    order, f = ("n", "m", "k"), {"m": 4, "n": 3, "k": 2}
    tile = {"A": 64 * 32 / 8, "B": 32 * 48 / 6}
    held = {"A": None, "B": None}
    fetched = {"A": 0.0, "B": 0.0}
    for idx in itertools.product(*(range(f[r]) for r in order)):
        at = dict(zip(order, idx, strict=False))
        for name, ranks in (("A", ("m", "k")), ("B", ("k", "n"))):
            key = tuple(at[r] for r in ranks)
            if held[name] != key:
                held[name] = key
                fetched[name] += tile[name] * 2
    traffic = {
        (t.level, t.tensor): t
        for t in group_traffic(_gemm_group(order, f["m"], f["n"], f["k"]), TENSORS)
    }
    for name in ("A", "B"):
        assert traffic[("DRAM", name)].read_bytes == pytest.approx(fetched[name])


def test_partial_sums_are_read_back_when_the_reduction_is_outside():
    g = _gemm_group(("k", "m", "n"), 4, 3, 2)
    cell = {(t.level, t.tensor): t for t in group_traffic(g, TENSORS)}[("DRAM", "C")]
    c = 64 * 48 * 2.0
    assert cell.write_bytes == pytest.approx(2 * c)
    assert cell.read_bytes == pytest.approx(c)


def test_multicast_reads_once_for_all_spatial_copies():
    g = _gemm_group(("m", "n", "k"), 1, 1, 1, sm=4, sn=1)
    plain = {(t.level, t.tensor): t for t in group_traffic(g, TENSORS, multicast=[True, True])}
    nomc = {(t.level, t.tensor): t for t in group_traffic(g, TENSORS, multicast=[True, False])}
    # B[k,n] does not vary with m: 4 copies to the PEs, one GLB read with multicast
    assert nomc[("GLB", "B")].read_bytes == pytest.approx(4 * plain[("GLB", "B")].read_bytes)
    assert np.isclose(plain[("GLB", "A")].read_bytes, nomc[("GLB", "A")].read_bytes)
