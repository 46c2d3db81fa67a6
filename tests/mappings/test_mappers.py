"""Mappers: the fast estimator agrees with lower+estimate; search quality on a small space."""

from __future__ import annotations

import numpy as np
import pytest

from archsim import estimate
from mappings import get_mapper, list_mappers, lower
from mappings._mappers import _axis_ok, _from_indices, options, rank, sample, score
from mappings._mapping import Mapping
from mappings._space import batch_metrics, build_space, to_group

from .conftest import make_gemm


@pytest.fixture(scope="module")
def small_gemm():
    return make_gemm(256, 96, 128)


def test_vectorised_estimator_agrees_with_lower_and_estimate(small_gemm, tiny_arch):
    space = build_space(small_gemm, tiny_arch, "C")
    c = sample(space, 400, np.random.default_rng(3))
    m = batch_metrics(space, c)
    ok = np.flatnonzero(m["valid"] & _axis_ok(c))[:40]
    assert len(ok) >= 20
    for i in ok:
        g = to_group(space, c.t[i], c.s[i], c.axis[i], int(c.order[i]))
        r = estimate(lower(small_gemm, Mapping(groups=(g,)), tiny_arch), tiny_arch)
        assert m["cycles"][i] == pytest.approx(r.cycles, rel=1e-6, abs=1.0)
        assert m["energy_j"][i] == pytest.approx(r.energy_j, rel=1e-6)
        assert m["dram_bytes"][i] == pytest.approx(r.dram_bytes, rel=1e-9)


def test_every_mapper_has_the_same_signature_and_returns_ranked_valid_mappings(
    small_gemm, tiny_arch
):
    assert set(list_mappers()) >= {"exhaustive", "random", "greedy", "mip"}
    for name in ("random", "greedy", "mip"):
        ranked = get_mapper(name)(
            small_gemm, tiny_arch, objective="latency", top=3, seed=1, rescore=1, progress=False
        )
        assert 1 <= len(ranked) <= 3
        assert [r.objective for r in ranked] == sorted(r.objective for r in ranked)
        # re-scored with the event engine: never below the analytical bound
        assert ranked[0].simulated_cycles is not None
        assert ranked[0].simulated_cycles >= ranked[0].cycles - 1


@pytest.mark.parametrize("objective", ["latency", "energy"])
def test_exhaustive_is_optimal_and_mip_is_within_5_percent(small_gemm, tiny_arch, objective):
    space = build_space(small_gemm, tiny_arch, "C")
    best = get_mapper("exhaustive")(
        small_gemm, tiny_arch, objective=objective, top=1, budget=None, rescore=0
    )[0]
    # no sampled candidate beats the exhaustive optimum
    c = sample(space, 20_000, np.random.default_rng(0))
    v = np.where(_axis_ok(c), score(batch_metrics(space, c), objective, space.clock_hz), np.inf)
    assert best.objective <= v.min() * (1 + 1e-9)
    mip = get_mapper("mip")(small_gemm, tiny_arch, objective=objective, top=1, rescore=0)[0]
    assert mip.objective <= 1.05 * best.objective
    rnd = get_mapper("random")(
        small_gemm, tiny_arch, objective=objective, top=1, budget=1000, seed=7, rescore=0
    )[0]
    assert mip.objective <= rnd.objective


def test_random_mapper_is_deterministic_per_seed(small_gemm, tiny_arch):
    a = get_mapper("random")(small_gemm, tiny_arch, top=2, seed=5, budget=500, rescore=0)
    b = get_mapper("random")(small_gemm, tiny_arch, top=2, seed=5, budget=500, rescore=0)
    assert [x.mapping for x in a] == [x.mapping for x in b]


def test_exhaustive_refuses_a_space_beyond_its_budget(small_gemm, tiny_arch):
    from archsim.errors import MappingError

    with pytest.raises(MappingError, match="too large for the exhaustive mapper"):
        get_mapper("exhaustive")(small_gemm, tiny_arch, budget=1000)


def test_unknown_mapper_lists_the_known_ones():
    from archsim.errors import MappingError

    with pytest.raises(MappingError, match="exhaustive"):
        get_mapper("annealing")


@pytest.fixture(scope="module")
def no_static_arch(tpu):
    """TPU-like shrunk to a 16x16 MXU and a 16 KiB VMEM. It has no static power, so the
    energy of a GEMM mapping is its DRAM traffic plus its MACs: hundreds of mappings, from
    the whole array down to one PE, tie on the least energy."""
    return tpu.with_updates({"levels.VMEM.capacity_bytes": 16384, "compute.mxu.mesh": [16, 16]})


def _lexicographic_best(space, first: str, second: str) -> tuple[float, float, float]:
    """Brute force over the whole space: the least ``first``, the least ``second`` among the
    mappings tied on it, and the largest ``second`` among them (the old, untied answer)."""
    opts = options(space)
    dims = [len(o) for o in opts] + [len(space.orders)]
    idx = np.stack(np.unravel_index(np.arange(int(np.prod(dims))), dims), axis=1)
    c = _from_indices(space, opts, idx[:, :-1], idx[:, -1])
    m = batch_metrics(space, c)
    v = np.where(m["valid"] & _axis_ok(c), m[first], np.inf)
    tied = v <= v.min() * (1 + 1e-9)
    return float(v.min()), float(m[second][tied].min()), float(m[second][tied].max())


@pytest.mark.parametrize("name", ["exhaustive", "random", "greedy", "mip"])
def test_energy_ties_are_broken_by_latency_in_every_mapper(no_static_arch, name):
    # issue 11: with --objective energy the exhaustive mapper's top answers all tied on
    # energy and #1 ran on a single PE (tpu_like, 4096^3 GEMM: 68.7 G cycles, 16,000x the
    # MIP's answer). Here (128x64x64, 16x16 array) the energy-optimal mappings run from
    # 2,258 to 562,718 cycles; the old exhaustive #1 took 562,718, random 17,618 and greedy
    # 3,282. Energy ties must go to the fastest mapping.
    w = make_gemm(128, 64, 64)
    space = build_space(w, no_static_arch, "C")
    assert space.static_w == 0.0
    e_min, c_best, c_worst = _lexicographic_best(space, "energy_j", "cycles")
    assert c_worst > 100 * c_best  # the ties are real and wide
    kw = {"budget": None} if name == "exhaustive" else {}
    ranked = get_mapper(name)(w, no_static_arch, objective="energy", top=3, seed=0, rescore=0, **kw)
    best = ranked[0]
    assert best.energy_j == pytest.approx(e_min, rel=1e-9)
    if name in ("exhaustive", "mip"):
        assert best.cycles == pytest.approx(c_best, abs=1.0)
    else:  # sampled / local search: the fastest of the ties it saw, never a one-PE mapping
        # (now: random 1.2-1.5x, greedy 1.0x the optimum; before: 7.8x and 1.45x)
        assert best.cycles <= {"random": 2.0, "greedy": 1.25}[name] * c_best
    # the list itself is ranked by energy, then cycles
    for a, b in zip(ranked, ranked[1:], strict=False):
        assert a.energy_j < b.energy_j * (1 - 1e-9) or (
            a.energy_j == pytest.approx(b.energy_j, rel=1e-9) and a.cycles <= b.cycles
        )


def test_rank_orders_by_objective_then_tie_break_and_ties_rounding_noise():
    # columns: objective, tie-break (energy for latency, cycles for energy)
    v = np.array(
        [
            [100.0, 9.0],
            [100.0 * (1 + 1e-12), 1.0],  # rounding noise above 100: a tie, better tie-break
            [99.0, 50.0],  # strictly better objective wins whatever its tie-break
            [np.inf, 0.0],  # invalid last
            [100.0, 5.0],
        ]
    )
    assert rank(v).tolist() == [2, 1, 4, 0, 3]


@pytest.mark.parametrize("shape", [(64, 48, 32), (96, 64, 40), (128, 128, 64)])
@pytest.mark.parametrize("objective", ["latency", "energy", "edp"])
def test_mip_optimum_equals_exhaustive_search_on_small_cases(tiny_arch, shape, objective):
    w = make_gemm(*shape)
    ex = get_mapper("exhaustive")(w, tiny_arch, objective=objective, top=1, budget=None, rescore=0)
    mip = get_mapper("mip")(w, tiny_arch, objective=objective, top=1, rescore=0)
    assert mip[0].objective == pytest.approx(ex[0].objective, rel=1e-9)


def test_pairwise_polish_reaches_what_one_rank_moves_cannot(small_gemm, tiny_arch):
    # the MIP's energy answer for 256x96x128 before the pairwise polish: m 16 PEs on x, k 16
    # on y, n whole in the buffer. The optimum (1.286e-4 J vs 1.527e-4) puts n on y and k in
    # the buffer: one rank at a time, each step takes the y axis twice or over-fills the
    # buffer, so coordinate descent stays put; moving two ranks at once gets there.
    from mappings._mappers import hill_climb
    from mappings._mip import pair_climb
    from mappings._space import Candidates

    space = build_space(small_gemm, tiny_arch, "C")
    assert space.ranks == ("m", "n", "k")
    start = Candidates(
        t=np.array([[2, 96, 1]]),
        s=np.array([[16, 1, 16]]),
        axis=np.array([[1, 0, 2]], dtype=np.int8),
        order=np.array([space.orders.index((0, 2, 1))]),
    )
    e_min, c_best, _ = _lexicographic_best(space, "energy_j", "cycles")
    _, hv = hill_climb(space, start, "energy")
    assert hv[rank(hv)[0], 0] > 1.15 * e_min
    pc, pv = pair_climb(space, start, "energy")
    best = rank(pv)[0]
    assert pv[best, 0] == pytest.approx(e_min, rel=1e-9)
    assert pv[best, 1] == pytest.approx(c_best, rel=1e-9)  # and the fastest of the ties
    found = pc.take(np.array([best]))
    assert batch_metrics(space, found)["valid"][0]
    assert _axis_ok(found)[0]


def test_mip_charges_only_the_buffer_loops_a_stream_cannot_reuse(small_gemm, tiny_arch):
    # batch_metrics charges a tensor's compute-side reads per buffer loop over a rank it lacks
    # only before its last own buffer loop: C[m,n] keeps its tile in the registers across a
    # buffer loop over k (the last rank). The MIP's stream terms follow that rule, so its
    # energy answers for 256x96x128 (one-rank polish only) come within 10% of the optimum;
    # charging every such buffer loop (k in the buffer taxed for C) left them 19% above.
    from mappings._mappers import _every_order, _objective_values, hill_climb
    from mappings._mip import _share_variants, solve_allocation

    space = build_space(small_gemm, tiny_arch, "C")
    e_min, _, _ = _lexicographic_best(space, "energy_j", "cycles")
    best = np.inf
    for shares in _share_variants(len(space.tensors)):
        sol = solve_allocation(space, shares, "energy")
        assert sol is not None
        t, s, ax = sol
        c = _every_order(t[None], s[None], ax[None], len(space.orders))
        v = _objective_values(space, c, "energy")
        _, hv = hill_climb(space, c.take(rank(v)[:1]), "energy")
        best = min(best, float(hv[:, 0].min()))
    assert e_min <= best <= 1.10 * e_min
