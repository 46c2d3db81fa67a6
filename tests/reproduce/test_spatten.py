"""SpAtten reproduction at CI size (``archsim reproduce spatten --fast``).

Tolerances: the paper's 10.0x (abstract) within 15% is the issue's gate; at the recalled
pruning ratios the model gives 7.64x, a documented miss (BERT's attention traffic is half Q and
output, which pruning shrinks but K/V quantization does not narrow; GPT-2 generation alone is
within 15%). Every model figure is held within 5% of what it gave when this test was written,
so a model change is seen. Behaviour: the reduction grows with the pruning ratio, each
mechanism alone reduces traffic, the ops in the table are ``workloads.count`` of each layer's
cascades, and the annotated (density) form counts the same bytes as the gathered one.
"""

from __future__ import annotations

import json

import pytest

from archsim.cli import main
from validation.reproduce import reproduce
from validation.reproduce._spatten import (
    BENCHMARKS,
    PAPER,
    SETTINGS,
    TOPK_ROUNDS,
    head_schedule,
    keep_schedule,
    layer_cascades,
)
from workloads import count, parse_cascade

#: Model values of the fast run when this test was written (drift reference, not targets).
MODEL_FAST = {
    "dram_access_reduction": 7.644,
    "dram_access_reduction_stated_schedule": 5.070,
    "dram_access_reduction_q_at_msb_too": 8.460,
    "annotated_recipe_reduction": 2.246,
}
MODEL_BY_BENCHMARK = {"bert-base": 5.586, "gpt2-small": 9.701}
DRIFT = 0.05


@pytest.fixture(scope="module")
def rep():
    return reproduce("spatten", fast=True)


@pytest.mark.parametrize("key", sorted(MODEL_FAST))
def test_summary_does_not_drift(rep, key):
    assert rep.summary[key] == pytest.approx(MODEL_FAST[key], rel=DRIFT)


@pytest.mark.parametrize("bench", sorted(MODEL_BY_BENCHMARK))
def test_per_benchmark_reduction_does_not_drift(rep, bench):
    got = rep.summary["dram_access_reduction_by_benchmark"][bench]
    assert got == pytest.approx(MODEL_BY_BENCHMARK[bench], rel=DRIFT)


def test_the_paper_gate_is_the_documented_miss_only(rep):
    failed = [c.name for c in rep.checks if c.gate and not c.ok]
    assert failed == ["DRAM access reduction, mean of 2 stacks (recalled ratios)"]
    by = rep.summary["dram_access_reduction_by_benchmark"]
    # generation is K/V-bound: within the issue's 15% of the paper's 10x
    assert by["gpt2-small"] == pytest.approx(PAPER["dram_access_reduction"], rel=0.15)
    # the named mechanism: BERT's Q (and output) are not quantized; quantizing Q too moves
    # BERT, not GPT-2 (one query)
    bd = {r["benchmark"]: r for r in rep.tables["breakdown"]}
    assert bd["bert-base"]["all three, Q at MSB too"] > 1.2 * bd["bert-base"]["all three"]
    assert bd["gpt2-small"]["all three, Q at MSB too"] == pytest.approx(
        bd["gpt2-small"]["all three"], rel=0.01
    )


def test_reduction_grows_with_the_pruning_ratio(rep):
    for b in BENCHMARKS:
        pts = sorted(
            (r for r in rep.tables["sweep"] if r["benchmark"] == b.name),
            key=lambda r: -r["token_final_keep"],
        )
        for key in ("tokens_only", "all_three"):
            seq = [r[key] for r in pts]
            assert all(y > x for x, y in zip(seq, seq[1:], strict=False)), (b.name, key, seq)
        assert pts[0]["tokens_only"] == pytest.approx(1.0)


def test_each_mechanism_alone_reduces_traffic(rep):
    for r in rep.tables["breakdown"]:
        for m in ("token pruning", "head pruning", "progressive quantization"):
            assert r[m] > 1.0, (r["benchmark"], m)
        assert r["all three"] > r["token + head"] > r["token pruning"]
        # token pruning alone: the recalled 3.8x the schedule was solved for (whole tokens)
        assert r["token pruning"] == pytest.approx(3.8, rel=0.02)


def test_counted_ops_equal_workloads_count_of_each_layer(rep):
    rows = {(r["setting"], r["benchmark"], r["layer"]): r for r in rep.tables["layers"]}
    for name, s in SETTINGS.items():
        for b in BENCHMARKS:
            for layer in range(b.layers):
                lc = layer_cascades(b, s, layer)
                r = rows[(name, b.name, layer)]
                att = count(parse_cascade(lc.attention))
                ref = count(parse_cascade(lc.refetch)) if lc.refetch else None
                topk = count(parse_cascade(lc.topk))
                assert r["attn_macs"] == pytest.approx(att.macs + (ref.macs if ref else 0))
                assert r["attn_ops"] == pytest.approx(
                    sum(att.ops.values()) + (sum(ref.ops.values()) if ref else 0)
                )
                assert r["topk_ops"] == pytest.approx(sum(topk.ops.values()))
                assert r["heads"] == head_schedule(s.head_final_keep, b.heads, b.layers)[layer]
                assert r["tokens"] == max(
                    1, round(keep_schedule(s.token_final_keep, b.layers)[layer] * b.seq)
                )


def test_topk_engine_cascade_counts_accumulation_and_selection():
    b, s = BENCHMARKS[1], SETTINGS["stated schedule"]
    lc = layer_cascades(b, s, 5)
    c = {e.name: e.ops for e in count(parse_cascade(lc.topk)).einsums}
    assert c["TI"]["add"] == lc.heads * lc.queries * lc.tokens  # importance: every probability
    assert c["TQ"]["max"] == TOPK_ROUNDS * lc.tokens  # quick-select: R compares per candidate
    assert c["HQ"]["max"] == TOPK_ROUNDS * lc.heads


def test_annotated_cascade_counts_the_gathered_bytes_but_recipes_ignore_it(rep):
    for r in rep.tables["layers"]:
        # the density annotation and the gathered rank describe the same fetch (whole tokens)
        assert r["annotated_count_B"] == pytest.approx(r["gathered_count_B"], rel=0.03)
        # and the recipe on the gathered layer fetches exactly that
        assert r["pruned_dram_B"] - r["lsb_refetch_B"] == pytest.approx(
            r["gathered_count_B"], rel=1e-3
        )
    # no spatial recipe scales an input's fetch by its density: the annotated form keeps only
    # the head and quantization savings
    for st in rep.tables["spatten"]:
        assert st["annotated_recipe_reduction"] < 0.5 * st["dram_access_reduction"]


def test_cli_prints_json_with_the_issue_key_and_writes_csv_and_plot(tmp_path, capsys, rep):
    code = main(["reproduce", "spatten", "--fast", "--json", "--out", str(tmp_path / "sp")])
    data = json.loads(capsys.readouterr().out)
    assert code == (0 if rep.ok else 1)
    assert data["reproduction"] == "spatten"
    assert data["dram_access_reduction"] == pytest.approx(rep.summary["dram_access_reduction"])
    assert {"tables", "checks", "dram_access_reduction_by_benchmark"} <= set(data)
    assert (tmp_path / "sp" / "spatten.csv").stat().st_size > 0
    assert (tmp_path / "sp" / "spatten.png").stat().st_size > 0
