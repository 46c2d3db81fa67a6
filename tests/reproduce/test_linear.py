"""``archsim reproduce linear`` at CI size: chunked linear attention vs FA2 on ``h100``.

Stated tolerances (docs/reproductions.md, "Chunked linear attention vs FA2 on H100"):

* the FA2 baseline stays within 15% of the FA3 paper's H100 figure for FA2 (causal, hdim 128)
  at every length the figure has;
* GLA's claim, checked on its cascade in the fused chunk form (the paper-era kernel): time over
  FA2 at 2048 within 15% of 0.45 (the value when this was added; "comparable" would be within
  1.5x of 1: the documented miss, at every value block tried), below 1 at every length above
  4096, crossover 1024; the materialized form (FLA's later default) within 15% of 0.83, which is
  "comparable", crossover 2048;
* Lightning Attention-2's fused kernel on the ungated cascade stays within 15% of 0.21 of FA2's
  time at 2048 (the HBM floor: the documented miss of the fused ungated form), its time is flat
  in the length at a fixed token count while DRAM-bound and grows once the grid is too small;
* on fusemax the ``linear`` and ``gla`` cascades run with exactly their counted MACs.
"""

from __future__ import annotations

import json

import pytest

from archsim.cli import main
from validation.reproduce._linear import CLAIM_FORM, FA2_FIGURE_TFLOPS, reproduce_linear

TOL = 0.15
CLAIM_AT_2K = 0.45
CHUNK_FORM_AT_2K = 0.83
LA2_AT_2K = 0.21


@pytest.fixture(scope="module")
def rep():
    return reproduce_linear(fast=True)


def _rows(rep):
    return {r["seq_len"]: r for r in rep.tables["linear"]}


def _check(rep, prefix):
    return next(c for c in rep.checks if c.name.startswith(prefix))


def test_flash2_baseline_matches_the_fa3_paper_figure(rep):
    for s, r in _rows(rep).items():
        if s in FA2_FIGURE_TFLOPS:
            assert r["flash2_s"] == pytest.approx(r["flash2_figure_s"], rel=TOL), s


def test_gla_fused_form_misses_comparable_at_2k_and_is_faster_beyond_4k(rep):
    assert CLAIM_FORM == "gla_fused"
    rows = _rows(rep)
    assert rows[2048]["gla_fused_over_flash2"] == pytest.approx(CLAIM_AT_2K, rel=TOL)
    assert all(r["gla_fused_over_flash2"] < 1.0 for s, r in rows.items() if s > 4096)
    assert not _check(rep, "gla_fused / FA2 time at 2048").ok  # the documented miss
    assert _check(rep, "max gla_fused / FA2 time beyond 4096").ok
    assert rep.summary["crossover_tokens_h100"] == 1024
    assert not rep.ok


def test_the_miss_holds_at_every_value_block_tried(rep):
    lo, hi = rep.summary["gla_fused_over_flash2_at_2048_by_value_block"]
    assert lo <= hi < 1 / 1.5


def test_materialized_gla_form_is_comparable_at_2k(rep):
    rows = _rows(rep)
    assert rows[2048]["gla_chunk_over_flash2"] == pytest.approx(CHUNK_FORM_AT_2K, rel=TOL)
    assert _check(rep, "gla_chunk / FA2 time at 2048").ok
    assert not _check(rep, "gla_chunk / FA2 time at 2048").gate
    assert rep.summary["crossover_tokens_h100_gla_chunk"] == 2048


def test_lightning_attention_2_fused_kernel_sits_at_the_hbm_floor(rep):
    rows = _rows(rep)
    assert rows[2048]["la2_over_flash2"] == pytest.approx(LA2_AT_2K, rel=TOL)
    assert not _check(rep, "la2 / FA2 time at 2048").ok  # the documented miss, not gated
    assert rep.summary["crossover_tokens_h100_la2"] == rep.summary["shortest_length_tried"]
    flat = [rows[s]["la2_s"] for s in (256, 512, 1024, 2048, 4096)]
    assert max(flat) / min(flat) == pytest.approx(1.0, abs=0.05)
    assert {rows[s]["la2_bound"] for s in (256, 1024, 4096)} == {"dram"}
    assert rows[8192]["la2_s"] > 1.05 * rows[4096]["la2_s"]
    assert rows[8192]["la2_ctas"] < 264  # fewer CTAs than 2 per SM on 132 SMs


def test_fusemax_runs_the_cascades_with_their_counted_macs(rep):
    for r in rep.tables["fusemax"]:
        assert r["macs"] == r["counted_macs"]
    s = rep.summary
    assert s["fusemax_linear_macs"] == s["fusemax_gla_macs"]
    assert s["fusemax_linear_macs"] < s["fusemax_mha_causal_macs"] / 10


def test_cli_writes_json_csv_and_plot(tmp_path, capsys):
    code = main(["reproduce", "linear", "--fast", "--json", "--out", str(tmp_path / "lin")])
    data = json.loads(capsys.readouterr().out)
    assert code == 1  # the gated 'comparable at 2048' check fails (documented)
    assert data["reproduction"] == "linear"
    assert data["crossover_tokens_h100"] == 1024
    for f in ("linear.csv", "sensitivity.csv", "fusemax.csv", "linear.png"):
        assert (tmp_path / "lin" / f).stat().st_size > 0
