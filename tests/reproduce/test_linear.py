"""``archsim reproduce linear`` at CI size: chunked linear attention vs FA2 on ``h100``.

Stated tolerances (docs/reproductions.md, "Chunked linear attention vs FA2 on H100"):

* the FA2 baseline stays within 15% of the FA3 paper's H100 figure for FA2 (causal, hdim 128)
  at every length the figure has;
* the model's linear / FA2 time ratio at 2048 stays within 15% of 0.21 for the fused kernel
  and of 0.50 for the materialized (two-kernel) form (the values when the reproduction was
  added; GLA's "comparable" would be ~1: an honest miss, see the docs), and linear is faster
  than FA2 at every length above 4096 (GLA's claim, which holds);
* the linear kernel's time is flat in the length at a fixed token count while it is bound by
  the compulsory HBM traffic (256-4096 tokens), and grows once the grid is too small (8k);
* on fusemax the same cascade's MACs are exactly its counted MACs.
"""

from __future__ import annotations

import json

import pytest

from archsim.cli import main
from validation.reproduce._linear import FA2_FIGURE_TFLOPS, reproduce_linear

TOL = 0.15
RATIO_AT_2K = 0.21
MATERIALIZED_RATIO_AT_2K = 0.50


@pytest.fixture(scope="module")
def rep():
    return reproduce_linear(fast=True)


def _rows(rep):
    return {r["seq_len"]: r for r in rep.tables["linear"]}


def test_flash2_baseline_matches_the_fa3_paper_figure(rep):
    for s, r in _rows(rep).items():
        if s in FA2_FIGURE_TFLOPS:
            assert r["flash2_s"] == pytest.approx(r["flash2_figure_s"], rel=TOL), s


def test_ratio_at_2k_and_faster_beyond_4k(rep):
    rows = _rows(rep)
    assert rows[2048]["linear_over_flash2"] == pytest.approx(RATIO_AT_2K, rel=TOL)
    mat = rows[2048]["materialized_over_flash2"]
    assert mat == pytest.approx(MATERIALIZED_RATIO_AT_2K, rel=TOL)
    assert rep.summary["crossover_tokens_h100_materialized"] == 1024
    assert all(r["linear_over_flash2"] < 1.0 for s, r in rows.items() if s > 4096)
    faster = next(c for c in rep.checks if "beyond 4096" in c.name)
    assert faster.ok
    assert faster.gate
    comparable = next(c for c in rep.checks if "at 2048" in c.name)
    assert comparable.gate
    assert not comparable.ok


def test_crossover_is_reported_and_is_the_shortest_length_tried(rep):
    s = rep.summary
    assert s["crossover_tokens_h100"] == min(_rows(rep))
    assert s["crossover_at_shortest_length_tried"] is True


def test_linear_time_is_flat_while_memory_bound_then_grid_limited(rep):
    rows = _rows(rep)
    flat = [rows[s]["linear_s"] for s in (256, 512, 1024, 2048, 4096)]
    assert max(flat) / min(flat) == pytest.approx(1.0, abs=0.05)
    assert {rows[s]["linear_bound"] for s in (256, 1024, 4096)} == {"dram"}
    assert rows[8192]["linear_s"] > 1.05 * rows[4096]["linear_s"]
    assert rows[8192]["linear_ctas"] < 264  # fewer CTAs than 2 per SM on 132 SMs


def test_fusemax_runs_the_cascade_with_its_counted_macs(rep):
    for r in rep.tables["fusemax"]:
        assert r["macs"] == r["counted_macs"]
    s = rep.summary
    assert s["fusemax_linear_macs"] < s["fusemax_mha_causal_macs"] / 10


def test_cli_writes_json_csv_and_plot(tmp_path, capsys):
    code = main(["reproduce", "linear", "--fast", "--json", "--out", str(tmp_path / "lin")])
    data = json.loads(capsys.readouterr().out)
    assert code == 1  # the 'comparable at 2048' check fails (documented)
    assert data["reproduction"] == "linear"
    assert data["crossover_tokens_h100"] == 256
    assert (tmp_path / "lin" / "linear.csv").stat().st_size > 0
    assert (tmp_path / "lin" / "fusemax.csv").stat().st_size > 0
    assert (tmp_path / "lin" / "linear.png").stat().st_size > 0
