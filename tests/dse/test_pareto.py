"""Pareto fronts: dominance, ties, maximization, NaN, feasibility."""

from __future__ import annotations

import hypothesis.extra.numpy as hnp
import hypothesis.strategies as st
import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings

from archsim.errors import SweepError
from dse import pareto, pareto_mask


def test_front_of_a_hand_made_set():
    v = np.array([[1, 5], [2, 3], [3, 4], [4, 1], [2, 3], [5, 5]], dtype=float)
    # (3,4) is dominated by (2,3); (5,5) by everything; the duplicate (2,3) stays
    assert pareto_mask(v).tolist() == [True, True, False, True, True, False]


def test_two_d_sweep_agrees_with_brute_force():
    rng = np.random.default_rng(0)
    v = rng.integers(0, 20, size=(300, 2)).astype(float)
    brute = [not ((v <= p).all(1) & (v < p).any(1)).any() for p in v]
    assert pareto_mask(v).tolist() == brute


def test_three_objectives_and_maximize():
    v = np.array([[1, 1, 1], [0, 2, 2], [2, 2, 0], [2, 2, 2]], dtype=float)
    assert pareto_mask(v).tolist() == [True, True, True, False]
    assert pareto_mask(v, [False, False, False]).tolist() == [False, False, False, True]


def test_nan_rows_are_never_on_the_front():
    v = np.array([[np.nan, 0.0], [1.0, 1.0]])
    assert pareto_mask(v).tolist() == [False, True]


def test_dataframe_front_uses_aliases_and_skips_infeasible_rows():
    df = pd.DataFrame(
        {
            "energy_j": [1.0, 2.0, 0.5, 3.0],
            "seconds": [2.0, 1.0, 0.1, 0.5],
            "status": ["ok", "ok", "ok", "ok"],
            "feasible": [True, True, False, True],
        }
    )
    front = pareto(df, "energy", "latency")
    assert front.index.tolist() == [0, 1, 3]
    assert pareto(df, "energy", "latency", only_feasible=False).index.tolist() == [2]


def test_unknown_column_is_a_sweep_error():
    with pytest.raises(SweepError, match="unknown result column"):
        pareto(pd.DataFrame({"seconds": [1.0]}), "joules", "seconds")


@given(
    hnp.arrays(
        np.float64,
        st.tuples(st.integers(1, 40), st.integers(2, 3)),
        elements=st.integers(0, 6).map(float),
    )
)
@settings(max_examples=60, deadline=None)
def test_front_is_exactly_the_non_dominated_set(v):
    brute = [not ((v <= p).all(1) & (v < p).any(1)).any() for p in v]
    assert pareto_mask(v).tolist() == brute
