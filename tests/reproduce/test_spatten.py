"""SpAtten reproduction at CI size (``archsim reproduce spatten --fast``).

Tolerances: the paper's 10.0x (abstract) within 15% is the issue's gate. DRAM bytes are counted
in SpAtten's own scope (its accelerator's read-only bus fetches K and V and the keys' LSBs; the
query comes with the request; mit-han-lab/spatten@a0f1388). The GPT-2 stacks' inputs come from
the authors' released workload traces (per layer the fetched keys and values, heads, bit widths,
keys' LSB refetch), BERT's from the recalled 3.8x / 1.1x ratios (no BERT trace). The 3-stack
mean is 9.55x (pass) while its parts are 9.74x / 14.4x / 4.48x; counting every tensor (Q and the
output too, the earlier accounting) gives 8.10x, an info check. Every model figure is held within
5% of what it gave when this test was written, so a model change is seen. Behaviour: the trace
inputs reach the layers as the traces state them (fetched keys, fetched values: local value
pruning, heads, K/V widths, key-only LSB refetch), the reduction grows with the pruning ratio,
each mechanism a setting has reduces traffic, the answer scales with the dense baseline's width,
the ops in the table are ``workloads.count`` of each layer's cascades, and the annotated
(density) form counts the same bytes as the gathered one.
"""

from __future__ import annotations

import json

import pytest

from archsim.cli import main
from validation.reproduce import reproduce
from validation.reproduce._spatten import (
    BENCHMARKS,
    HEADLINE,
    PAPER,
    SETTINGS,
    TOPK_ROUNDS,
    layer_cascades,
    setting_for,
)
from validation.reproduce._spatten_traces import TRACES
from workloads import count, parse_cascade

#: Model values of the fast run when this test was written (drift reference, not targets).
MODEL_FAST = {
    "dram_access_reduction": 9.551,
    "dram_access_reduction_all_tensors": 8.097,
    "dram_access_reduction_released_traces": 9.455,
    "dram_access_reduction_recalled_ratios": 9.981,
    "dram_access_reduction_stated_schedule": 6.537,
    "annotated_recipe_reduction": 2.437,
}
MODEL_BY_BENCHMARK = {"bert-base": 9.744, "gpt2-small": 14.43, "gpt2-medium": 4.480}
BY_NAME = {b.name: b for b in BENCHMARKS}
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


def test_the_paper_gate_passes_in_spattens_scope_and_its_parts_are_reported(rep):
    assert rep.ok
    head = next(c for c in rep.checks if c.gate and c.name.startswith("DRAM access reduction"))
    assert head.name == "DRAM access reduction, mean of 3 stacks (released traces)"
    assert head.value == pytest.approx(PAPER["dram_access_reduction"], rel=0.15)
    # the parts are far from 10x either way: the pass is a mean, reported as such
    by = rep.summary["dram_access_reduction_by_benchmark"]
    assert by["gpt2-small"] > 1.15 * PAPER["dram_access_reduction"]
    assert by["gpt2-medium"] < 0.85 * PAPER["dram_access_reduction"]
    # the two stacks SpAtten released traces for: within the issue's 15% as well
    traced = rep.summary["dram_access_reduction_released_traces"]
    assert traced == pytest.approx(PAPER["dram_access_reduction"], rel=0.15)


def test_counting_every_tensor_is_the_earlier_miss_and_moves_bert_only(rep):
    every = next(c for c in rep.checks if "every tensor counted" in c.name)
    assert not every.gate
    assert not every.ok  # 8.10x: Q and the output stay 16-bit
    bd = {r["benchmark"]: r for r in rep.tables["breakdown"]}
    # BERT's Q and output are half its attention traffic; generation reads one query
    assert bd["bert-base"]["all, every tensor counted"] < 0.6 * bd["bert-base"]["all mechanisms"]
    for g in ("gpt2-small", "gpt2-medium"):
        assert bd[g]["all, every tensor counted"] == pytest.approx(
            bd[g]["all mechanisms"], rel=0.02
        )
    for r in rep.tables["layers"]:
        # the K/V scope is the K and V bytes of the dense and the pruned (+ LSB refetch) layer
        assert r["pruned_fetch_B"] == pytest.approx(r["pruned_kv_B"] + r["lsb_refetch_B"])
        assert r["dense_kv_B"] < r["dense_dram_B"]


def test_the_dense_baseline_width_scales_the_answer(rep):
    for r in rep.tables["breakdown"]:
        assert r["all, dense baseline 8-bit"] == pytest.approx(r["all mechanisms"] / 2)
        assert r["all, dense baseline 32-bit"] == pytest.approx(r["all mechanisms"] * 2)


def test_trace_inputs_reach_the_layers_as_the_traces_state_them(rep):
    rows = {
        (r["benchmark"], r["layer"]): r for r in rep.tables["layers"] if r["setting"] == HEADLINE
    }
    for name, t in TRACES.items():
        b = BY_NAME[name]
        assert len(t.key_keep) == len(t.value_keep) == len(t.heads) == b.layers
        for layer in range(b.layers):
            r = rows[(name, layer)]
            assert r["tokens"] == round(t.key_keep[layer] * b.seq)
            assert r["value_tokens"] == round(t.value_keep[layer] * b.seq) <= r["tokens"]
            assert r["heads"] == t.heads[layer]
            # local value pruning and the widths: K at key_bits for the fetched keys, V at
            # value_bits for the fetched values only
            k = r["heads"] * r["tokens"] * b.head_dim * t.key_bits / 8
            v = r["heads"] * r["value_tokens"] * b.head_dim * t.value_bits / 8
            assert r["pruned_kv_B"] == pytest.approx(k + v, rel=1e-4)  # recipe rounding
            # the LSB refetch loads keys only
            lsb = r["heads"] * r["refetch_tokens"] * b.head_dim * t.lsb_bits / 8
            assert r["lsb_refetch_B"] == pytest.approx(lsb, rel=1e-4)
            assert r["refetch_tokens"] == round(t.lsb_share[layer] * r["tokens"])


def test_reduction_grows_with_the_pruning_ratio(rep):
    swept = {r["benchmark"] for r in rep.tables["sweep"]}
    assert swept == {"bert-base", "gpt2-small"}  # --fast; the full run adds gpt2-medium
    for b in (b for b in BENCHMARKS if b.name in swept):
        pts = sorted(
            (r for r in rep.tables["sweep"] if r["benchmark"] == b.name),
            key=lambda r: -r["token_final_keep"],
        )
        for key in ("tokens_only", "all_three"):
            seq = [r[key] for r in pts]
            assert all(y > x for x, y in zip(seq, seq[1:], strict=False)), (b.name, key, seq)
        assert pts[0]["tokens_only"] == pytest.approx(1.0)


def test_each_mechanism_a_setting_has_reduces_traffic(rep):
    bd = {r["benchmark"]: r for r in rep.tables["breakdown"]}
    for r in bd.values():
        for m in ("token pruning", "progressive quantization"):
            assert r[m] > 1.0, (r["benchmark"], m)
        assert r["all mechanisms"] > r["token + head"] >= r["token pruning"]
    # token pruning alone at BERT's recalled ratios: the 3.8x the schedule was solved for
    assert bd["bert-base"]["token pruning"] == pytest.approx(3.8, rel=0.02)
    assert bd["bert-base"]["head pruning"] > 1.0
    # local value pruning is applied where a trace records it (generation), not to BERT
    assert bd["bert-base"]["local value pruning"] == pytest.approx(1.0)
    for g in ("gpt2-small", "gpt2-medium"):
        assert bd[g]["local value pruning"] > 1.5
    # the gpt2-small trace prunes no head, the gpt2-medium one does (16 -> 13 -> 10)
    assert bd["gpt2-small"]["head pruning"] == pytest.approx(1.0)
    assert bd["gpt2-medium"]["head pruning"] > 1.05


def test_counted_ops_equal_workloads_count_of_each_layer(rep):
    rows = {(r["setting"], r["benchmark"], r["layer"]): r for r in rep.tables["layers"]}
    for name in SETTINGS:
        for b in BENCHMARKS:
            s = setting_for(name, b)
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
                assert r["heads"] == lc.heads
                assert r["tokens"] == lc.tokens


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
        assert r["gathered_recipe_dram_B"] == pytest.approx(r["gathered_count_B"], rel=1e-3)
        assert r["pruned_dram_B"] == pytest.approx(
            r["gathered_recipe_dram_B"] - r["value_pruned_B"] + r["lsb_refetch_B"]
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
