"""``archsim reproduce linear`` at CI size: chunked linear attention vs FA2 on ``h100``.

Stated tolerances (docs/reproductions.md, "Chunked linear attention vs FA2 on H100"):

* the FA2 baseline stays within 15% of the FA3 paper's H100 figure for FA2 (causal, hdim 128)
  at every length the figure has from 1024 up; at 512 (2048 short causal CTAs) the event
  engine, which times every kernel since 2026-12-05, runs 16% fast: a known miss, within 20%
  (the closed-form kernel model, which it replaced, gave -12%);
* GLA's claim, checked on its cascade in the staged form of the paper's released code
  (berlino/gated_linear_attention@442e096) at that code's shapes: time over FA2 at 2048 within
  15% of 1.39 (the value when the staged form was added), which is "comparable" (within 1.5x),
  below 1 at every length above 4096, crossover 4096; its time does not depend on the length
  at a fixed token count; at every chunk the code uses (64, 128, 256) the ratio at 2048 lies
  between 1 and 1.6 (64's 1.52 is just outside the 1.5x reading: the check is near its edge);
* FLA's later kernels (fused chunk 0.47, materialized 1.00 of FA2 at 2048) and Lightning
  Attention-2's fused kernel (0.17) stay within 15% of those values, reported, not gated
  (materialized: 0.81 with the closed-form model; the event engine runs its 16,384 short
  output CTAs 23% longer);
* on fusemax the ``linear`` and ``gla`` cascades run with exactly their counted MACs.
"""

from __future__ import annotations

import json

import pytest

from archsim.cli import main
from validation.reproduce._linear import CLAIM_FORM, FA2_FIGURE_TFLOPS, reproduce_linear

TOL = 0.15
CLAIM_AT_2K = 1.39
FUSED_AT_2K = 0.47
CHUNK_FORM_AT_2K = 1.00
LA2_AT_2K = 0.17


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
            tol = TOL if s >= 1024 else 0.20  # 512: the known miss (module notes)
            assert r["flash2_at_figure_setting_s"] == pytest.approx(
                r["flash2_figure_s"], rel=tol
            ), s


def test_paper_code_form_is_comparable_at_2k_and_faster_beyond_4k(rep):
    assert CLAIM_FORM == "gla_paper"
    rows = _rows(rep)
    assert rows[2048]["gla_paper_over_flash2"] == pytest.approx(CLAIM_AT_2K, rel=TOL)
    assert all(r["gla_paper_over_flash2"] < 1.0 for s, r in rows.items() if s > 4096)
    assert _check(rep, "gla_paper / FA2 time at 2048").ok
    assert _check(rep, "gla_paper / FA2 time at 2048").gate
    assert _check(rep, "max gla_paper / FA2 time beyond 4096").ok
    assert rep.summary["crossover_tokens_h100"] == 4096
    assert rep.ok


def test_paper_code_form_time_is_flat_in_the_length_and_hbm_bound(rep):
    rows = _rows(rep)
    t = [rows[s]["gla_paper_s"] for s in rows]
    assert max(t) / min(t) == pytest.approx(1.0, abs=0.02)
    # seven launches stream from HBM; the score kernel (fp32 diagonal sub-blocks), the score
    # feature sum and the mask pass are FP32-pipe bound (since 2026-12-05 a streaming kernel's
    # ALU time counts the CTAs that share an SM: they were 8x too fast)
    assert rows[2048]["gla_paper_bound"] == "dram x7+compute x3"
    us = rep.summary["gla_paper_kernel_us_at_2048"]
    assert len(us) == 10
    assert max(us, key=us.get) == "gla_v1_relayout_copy"


def test_the_2k_ratio_holds_at_every_chunk_the_code_uses(rep):
    by_chunk = rep.summary["gla_paper_over_flash2_at_2048_by_chunk"]
    assert set(by_chunk) == {"64", "128", "256"}
    assert all(1.0 < v < 1.6 for v in by_chunk.values())


def test_later_fla_kernels_and_lightning_attention_2_are_reported_not_gated(rep):
    rows = _rows(rep)
    assert rows[2048]["gla_fused_over_flash2"] == pytest.approx(FUSED_AT_2K, rel=TOL)
    assert rows[2048]["gla_chunk_over_flash2"] == pytest.approx(CHUNK_FORM_AT_2K, rel=TOL)
    assert rows[2048]["la2_over_flash2"] == pytest.approx(LA2_AT_2K, rel=TOL)
    for form in ("gla_fused", "gla_chunk", "la2", "linear_chunk"):
        assert not _check(rep, f"{form} / FA2 time at 2048").gate
    assert not _check(rep, "gla_fused / FA2 time at 2048").ok  # faster than 'comparable'
    # at 2048 the materialized form ties FA2 (1.00x), so its crossover is 2048 or 4096
    assert rep.summary["crossover_tokens_h100_gla_chunk"] in (2048, 4096)
    # FA2's short causal CTAs at 256 tokens run fast on the event engine (its lone CTAs, see
    # the FA2 baseline's known miss): LA2's crossover is the next length (closed form: 256)
    assert rep.summary["crossover_tokens_h100_la2"] == 2 * rep.summary["shortest_length_tried"]
    lo, hi = rep.summary["gla_fused_over_flash2_at_2048_by_value_block"]
    assert lo <= hi < 1 / 1.5


def test_fusemax_runs_the_cascades_with_their_counted_macs(rep):
    for r in rep.tables["fusemax"]:
        assert r["macs"] == r["counted_macs"]
    s = rep.summary
    assert s["fusemax_linear_macs"] == s["fusemax_gla_macs"]
    assert s["fusemax_linear_macs"] < s["fusemax_mha_causal_macs"] / 10


def test_cli_writes_json_csv_and_plot(tmp_path, capsys):
    code = main(["reproduce", "linear", "--fast", "--json", "--out", str(tmp_path / "lin")])
    data = json.loads(capsys.readouterr().out)
    assert code == 0
    assert data["reproduction"] == "linear"
    assert data["crossover_tokens_h100"] == 4096
    for f in ("linear.csv", "sensitivity.csv", "fusemax.csv", "linear.png"):
        assert (tmp_path / "lin" / f).stat().st_size > 0
