"""The three paper reproductions at CI size: each must stay within the paper's tolerance.

Tolerances (issue 7): FuseMax mean speedup vs FLAT and energy ratio within 15%, FuseMax 2D
utilization >= 85% at >= 4K tokens, FLAT 2D ~10-25%; PIM per-bank multiplier 16x (9x
power-limited) from timing, Ramulator cycles within 10%, AttAcc speedup near 2.81x (PIM-GPT's
gate is a documented miss, held by test_pimgpt_graph.py); FG-Attn end-to-end speedup at the
rule mask inside 1.41-1.65x or within 10% (a documented miss, held by
test_fgattn_reproduction.py).
"""

from __future__ import annotations

import json

import pytest

from archsim.cli import main
from validation.reproduce import REPRODUCTIONS, reproduce


@pytest.fixture(scope="module")
def reps():
    return {name: reproduce(name, fast=True) for name in REPRODUCTIONS}


def _check(rep, prefix):
    return next(c for c in rep.checks if c.name.startswith(prefix))


def test_fusemax_speedup_and_utilization_match_the_artifact(reps):
    rep = reps["fusemax"]
    assert _check(rep, "mean speedup").ok, _check(rep, "mean speedup")
    assert _check(rep, "min FuseMax 2D util").ok
    assert _check(rep, "FLAT 2D util").ok


def test_fusemax_energy_ratio_matches_the_artifact(reps):
    assert _check(reps["fusemax"], "mean energy").ok


def test_pim_reproduction_passes_its_gating_checks_but_pimgpt(reps):
    rep = reps["pim"]
    assert rep.summary["per_bank_multiplier"] == pytest.approx(16.0)
    assert rep.summary["per_bank_multiplier_power_limited"] == pytest.approx(9.0, rel=0.05)
    # PIM-GPT's gate (vs the h100 model of the same decode graph) is a documented miss;
    # tests/reproduce/test_pimgpt_graph.py holds its value
    failed = [c.name for c in rep.checks if c.gate and not c.ok]
    assert failed == ["PIM-GPT speedup vs h100 model, same decode graph (mean of models)"]


def test_fgattn_rule_figure_is_a_documented_miss_inside_the_structure_range(reps):
    rep = reps["fg-attn"]
    # gated: the rule mask (70% slice sparsity, local window) misses 1.41-1.65x; held by
    # tests/reproduce/test_fgattn_reproduction.py. The sweep's range contains the paper.
    assert [c.ok for c in rep.checks if c.gate] == [False, False]
    assert all(c.ok for c in rep.checks if not c.gate)
    assert rep.summary["slice_density_480p"] < rep.summary["block_density_480p"]


def test_summary_keys_of_the_issue_are_present(reps):
    assert {"speedup_vs_flat_mean", "energy_ratio_vs_flat_mean"} <= set(reps["fusemax"].summary)
    assert {"per_bank_multiplier", "per_bank_multiplier_power_limited"} <= set(reps["pim"].summary)
    assert {"speedup_480p", "speedup_720p"} <= set(reps["fg-attn"].summary)


def test_cli_prints_json_and_writes_csv_and_plot(tmp_path, capsys):
    code = main(
        [
            "reproduce",
            "fg-attn",
            "--fast",
            "--json",
            "--out",
            str(tmp_path / "fg"),
            "--plot",
            str(tmp_path / "fg.png"),
        ]
    )
    data = json.loads(capsys.readouterr().out)
    assert code == (0 if data["ok"] else 1)  # 1 today: the documented FG-Attn miss
    assert data["reproduction"] == "fg-attn"
    assert {"speedup_480p", "speedup_720p", "tables", "checks"} <= set(data)
    assert (tmp_path / "fg" / "fgattn.csv").stat().st_size > 0
    assert (tmp_path / "fg.png").stat().st_size > 0
