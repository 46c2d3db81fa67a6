"""Samplers: grid is the full product; random/lhs/sobol are seeded and land on the axes."""

from __future__ import annotations

import re

import numpy as np
import pytest

from archsim.errors import SweepError
from dse import ChoiceAxis, RangeAxis, SweepSpec, expand_points, get_sampler, list_samplers

MESH = ChoiceAxis(values=([64, 64], [128, 128], [256, 256]))
GLB = RangeAxis(lo=1e6, hi=64e6, log=True, n=4, integer=True)


def test_grid_is_the_full_product_in_axis_order():
    pts = get_sampler("grid")([MESH, GLB], None, 0)
    assert len(pts) == 12
    assert pts[0] == ([64, 64], 1_000_000)
    assert pts[-1] == ([256, 256], 64_000_000)


@pytest.mark.parametrize("name", ["random", "lhs", "sobol"])
def test_stochastic_samplers_are_seeded_and_stay_on_the_axes(name):
    sampler = get_sampler(name)
    a = sampler([MESH, GLB], 16, 7)
    assert a == sampler([MESH, GLB], 16, 7)
    assert a != sampler([MESH, GLB], 16, 8)
    assert len(a) == 16
    for mesh, cap in a:
        assert mesh in MESH.values
        assert isinstance(cap, int)
        assert 1e6 <= cap <= 64e6


def test_lhs_covers_every_stratum_of_a_discrete_axis():
    # 3 choices and n=3: a Latin hypercube puts exactly one sample in each third
    picks = [m for (m,) in get_sampler("lhs")([MESH], 3, 0)]
    assert sorted(picks) == sorted(MESH.values)


def test_log_axis_samples_spread_in_log_space():
    caps = np.array([c for (c,) in get_sampler("sobol")([GLB], 256, 0)], dtype=float)
    # half the log-uniform mass lies below the geometric mean (8e6)
    assert 0.4 < np.mean(caps < 8e6) < 0.6


def test_unknown_sampler_names_the_choices():
    with pytest.raises(
        SweepError, match=re.escape("expected grid | lhs | random | sobol, got 'halton'")
    ):
        get_sampler("halton")
    assert list_samplers() == ["grid", "lhs", "random", "sobol"]


def test_expand_crosses_names_with_sampled_draws_and_ids_are_stable():
    spec = SweepSpec.from_dict(
        {
            "name": "x",
            "arch": {
                "preset": "fusemax",
                "space": {"levels.GLB.capacity_bytes": {"log_range": [1e6, 64e6]}},
            },
            "workload": {"name": "mha", "params": {"S": {"values": [512, 1024]}}},
            "dataflow": ["fusemax", "flat"],
            "sampler": {"kind": "lhs", "n": 5, "seed": 1},
        }
    )
    points = expand_points(spec)
    assert len(points) == 10  # 5 draws × 2 dataflows
    assert [p.dataflow for p in points[:2]] == ["fusemax", "flat"]
    assert [p.point_id for p in points] == [p.point_id for p in expand_points(spec)]
    assert len({p.point_id for p in points}) == 10
    assert [p.index for p in points] == list(range(10))


def test_duplicate_draws_collapse_to_one_point():
    spec = SweepSpec.from_dict(
        {
            "name": "x",
            "arch": "fusemax",
            "workload": {"name": "mha", "params": {"S": [512, 1024]}},
            "sampler": {"kind": "random", "n": 50, "seed": 0},
        }
    )
    assert len(expand_points(spec)) == 2
