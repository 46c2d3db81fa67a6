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


def _two_lengths() -> pd.DataFrame:
    """Two sequence lengths: every S=512 point beats every S=4096 point."""
    return pd.DataFrame(
        {
            "param.S": [512, 512, 512, 4096, 4096, 4096],
            "dataflow": ["a", "b", "c", "a", "b", "c"],
            "energy_j": [1.0, 2.0, 3.0, 10.0, 20.0, 30.0],
            "seconds": [3.0, 2.0, 2.5, 30.0, 20.0, 10.0],
            "status": ["ok"] * 6,
            "feasible": [True] * 6,
        }
    )


def test_group_by_gives_one_front_per_value():
    df = _two_lengths()
    # one front over both lengths holds only S=512 points
    assert set(pareto(df, "energy", "latency")["param.S"]) == {512}
    front = pareto(df, "energy", "latency", group_by="S")
    assert front[["param.S", "dataflow"]].values.tolist() == [
        [512, "a"],
        [512, "b"],
        [4096, "a"],
        [4096, "b"],
        [4096, "c"],
    ]
    for s, part in front.groupby("param.S"):
        alone = pareto(df[df["param.S"] == s], "energy", "latency")
        assert part.index.tolist() == alone.index.tolist()
    both = pareto(df, "energy", "latency", group_by=["param.S", "dataflow"])
    assert len(both) == 6  # every group has one point, its own front


def test_group_by_an_unknown_column_lists_the_valid_ones():
    with pytest.raises(SweepError, match=r"--group-by: unknown column.*param\.S, dataflow"):
        pareto(_two_lengths(), "energy", "latency", group_by="Sq")


def test_cli_group_by_prints_and_plots_one_front_per_value(tmp_path, capsys):
    from archsim.cli import main
    from dse import SweepSpec, load, run_sweep
    from tests.dse.dse_toy import toy_evaluator

    spec = SweepSpec.from_dict(
        {
            "name": "g",
            "arch": {"preset": "fusemax", "space": {"levels.GLB.capacity_bytes": [2e6, 4e6]}},
            "workload": {"name": "mha", "params": {"S": [1024, 4096]}},
        }
    )
    run_sweep(spec, tmp_path, executor="serial", evaluator=toy_evaluator)
    assert main(["pareto", str(tmp_path)]) == 0
    assert "note: the front mixes param.S; --group-by param.S" in capsys.readouterr().out
    png = tmp_path / "f.png"
    assert main(["pareto", str(tmp_path), "--group-by", "S", "--plot", str(png)]) == 0
    text = capsys.readouterr().out
    assert "one front per param.S: 2 points" in text
    assert "mixes" not in text
    assert png.read_bytes()[:4] == b"\x89PNG"
    assert main(["pareto", str(tmp_path), "--group-by", "nope"]) == 2
    assert "expected one of arch, arch.levels.GLB.capacity_bytes" in capsys.readouterr().err
    assert len(load(tmp_path)) == 4


def test_a_column_without_numbers_is_refused_not_an_empty_front():
    with pytest.raises(SweepError, match="dataflow: not a numeric column: expected .*energy_j"):
        pareto(_two_lengths(), "dataflow", "latency")
