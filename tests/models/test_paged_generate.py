"""Paged KV cache decode (vLLM's PagedAttention v1/v2) and whole generation."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from archsim.cli import main
from models import (
    ModelError,
    build_graph,
    from_preset,
    paged_version,
    simulate_generation,
    simulate_model,
)


def _rows(rep) -> dict:  # noqa: ANN001 - a ModelReport
    return {r.op: r for r in rep.table()}


def _paged(rep):  # noqa: ANN001, ANN202 - a ModelReport, its paged attention row
    (row,) = [r for r in rep.table() if r.op.startswith("paged_attn")]
    return row


@pytest.mark.parametrize(
    ("seqs", "heads", "max_len", "version"),
    [
        (8, 32, 4096, 2),  # 8 partitions, 256 (seq, head) pairs: too few CTAs for v1
        (32, 32, 4096, 1),  # 1024 pairs > 512: v1 has enough parallelism
        (8, 32, 512, 1),  # one 512-token partition
        (64, 32, 16384, 2),  # > 8192 tokens: always v2
        (1, 8, 8192, 2),
    ],
)
def test_paged_attention_version_is_vllms_rule(
    seqs: int, heads: int, max_len: int, version: int
) -> None:
    assert paged_version(seqs, heads, max_len) == version


def test_paged_decode_reads_whole_pages_through_a_block_table() -> None:
    spec = from_preset("llama3-8b")
    g = build_graph(spec, phase="decode", batch=8, seq=4100, page=16)
    ops = {op.name: op for _, op in g.ops()}
    att = ops["paged_attn_v2"]
    assert att.params["Skv"] == 16 * math.ceil(4100 / 16) == 4112  # the last page whole
    assert att.gpu_dataflow == "split_kv"
    assert dict(att.gpu_knobs) == {"splits": math.ceil(4100 / 512)}  # vLLM: the context
    assert ops["block_table"].bytes == 8 * 257 * 4  # one int32 per page per sequence
    assert "attention" not in ops
    # a batch with > 512 (sequence, head) pairs runs v1: one CTA per pair, no split
    g1 = build_graph(spec, phase="decode", batch=32, seq=4096, page=16)
    v1 = {op.name: op for _, op in g1.ops()}["paged_attn_v1"]
    assert dict(v1.gpu_knobs) == {"splits": 1}


def test_paged_vs_contiguous_decode_and_the_page_size() -> None:
    contiguous = simulate_model("llama3-8b", "h100", phase="decode", batch=8, seq=4100)
    times = {}
    for page in (16, 256, 1024):
        rep = simulate_model("llama3-8b", "h100", phase="decode", batch=8, seq=4100, page=page)
        row, table = _paged(rep), _rows(rep)["block_table"]
        times[page] = row.seconds
        # the padded keys are read: bytes grow with the page's last partial page
        keys = page * math.ceil(4100 / page)
        assert f"Skv={keys}" in row.shape
        assert table.dram_bytes == 8 * math.ceil(4100 / page) * 4
        assert table.bound == "memory"
        assert rep.to_dict()["kv_cache_bytes"] == from_preset("llama3-8b").kv_cache_bytes(8, keys)
        assert rep.latency_s > contiguous.latency_s  # v2 + padding vs flash-decoding
    assert times[16] < times[256] < times[1024]  # 12, 252 and 1020 padded keys
    print(  # noqa: T201 - the figure the brief asks for
        f"\nllama3-8b decode B=8 S=4100 h100: contiguous step {contiguous.latency_s * 1e3:.3f} ms;"
        + "".join(f" page {p}: attention {t * 1e6:.2f} us;" for p, t in times.items())
    )


def test_paged_decode_off_a_gpu_runs_auto_over_the_padded_keys() -> None:
    rep = simulate_model("llama3-8b", "aim_pim", phase="decode", seq=1000, page=16)
    row = _paged(rep)
    assert row.op == "paged_attn"  # no vLLM v1/v2 kernel off a GPU
    assert row.dataflow == "pim_decode"
    assert row.shape == "decode(B=1, H=32, Hkv=8, Skv=1008, D=128, Dv=128)"
    assert rep.complete


def test_a_page_size_needs_a_decode_step() -> None:
    with pytest.raises(ModelError, match="page"):
        build_graph(from_preset("llama3-8b"), phase="prefill", seq=128, page=16)
    with pytest.raises(ModelError, match="page"):
        build_graph(from_preset("llama3-8b"), phase="decode", seq=128, page=-1)


def test_cli_page_size_and_set_page_are_the_same(capsys) -> None:
    base = ["model", "llama3-8b", "--arch", "h100", "--phase", "decode", "--set", "B=8"]
    assert main([*base, "--set", "S=4096", "--page-size", "16", "--json"]) == 0
    a = json.loads(capsys.readouterr().out)
    assert main([*base, "--set", "S=4096", "--set", "page=16", "--json"]) == 0
    b = json.loads(capsys.readouterr().out)
    assert a["page"] == b["page"] == 16
    assert a["latency_s"] == b["latency_s"]
    assert any(op["op"] == "paged_attn_v2" for op in a["ops"])
    assert main([*base, "--set", "S=4096", "--page-size", "16"]) == 0
    out = capsys.readouterr().out
    assert "paged KV cache, 16-token pages" in out
    assert "block_table" in out


def test_cli_page_size_list_compares_decode_steps(capsys) -> None:
    argv = ["model", "llama3-8b", "--arch", "h100", "--phase", "decode", "--engine", "analytic"]
    argv += ["--set", "B=8", "--set", "S=4100", "--page-size", "0,16,1024"]
    assert main(argv) == 0
    lines = capsys.readouterr().out.splitlines()
    rows = {int(line.split()[0]): line.split() for line in lines[3:6]}
    assert sorted(rows) == [0, 16, 1024]
    assert rows[0][1:3] == ["4100", "attention"]
    assert rows[16][1:3] == ["4112", "paged_attn_v2"]
    assert rows[1024][1:3] == ["5120", "paged_attn_v2"]
    assert rows[0][-3] == "+0.00%"
    step = {
        p: simulate_model(
            "llama3-8b", "h100", phase="decode", batch=8, seq=4100, page=p, engine="analytic"
        ).latency_s
        for p in (0, 1024)
    }
    assert rows[1024][-3] == f"{step[1024] / step[0] - 1:+.2%}"
    assert main([*argv[:-1], "16,x"]) == 2
    assert "--page-size" in capsys.readouterr().err
    assert main([*argv, "--json"]) == 2


# -- whole generation ------------------------------------------------------------------------


def test_generation_totals_are_their_definitions() -> None:
    spec = from_preset("llama3-8b")
    gen = simulate_generation(spec, "h100", batch=4, prompt=512, tokens=33, engine="analytic")
    assert gen.ttft_s == gen.prefill.latency_s
    assert gen.prefill.graph.phase == "prefill"
    assert gen.prefill.graph.seq == 512
    assert gen.first_step.graph.seq == 513
    assert gen.last_step.graph.seq == 512 + 32
    assert gen.tpot_s == pytest.approx(gen.decode_s / 32)
    assert gen.total_s == pytest.approx(gen.ttft_s + gen.decode_s)
    assert gen.tokens_per_s == pytest.approx(4 * 33 / gen.total_s)
    assert gen.j_per_token == pytest.approx((gen.prefill.energy_j + gen.decode_j) / (4 * 33))
    # the step cost grows with the context: the mean step lies between the first and last
    assert gen.first_step.latency_s <= gen.tpot_s <= gen.last_step.latency_s
    one = simulate_generation(spec, "h100", batch=4, prompt=512, tokens=1, engine="analytic")
    assert one.total_s == one.ttft_s
    assert one.decode_s == 0


def test_paged_generation_is_the_exact_sum_of_its_steps() -> None:
    spec = from_preset("llama3-8b")
    kw = {"batch": 2, "engine": "analytic"}
    gen = simulate_generation(spec, "h100", prompt=100, tokens=40, page=16, **kw)
    assert gen.method == "pages"
    steps = [
        simulate_model(spec, "h100", phase="decode", seq=c, page=16, **kw) for c in range(101, 140)
    ]
    assert len(gen.samples) == len({math.ceil(c / 16) for c in range(101, 140)}) == 3
    assert gen.decode_s == pytest.approx(sum(s.latency_s for s in steps), rel=1e-12)
    assert gen.decode_j == pytest.approx(sum(s.energy_j for s in steps), rel=1e-12)
    # each sample is the first context of its page and costs what that step costs
    for ctx, secs, joules in gen.sample_costs:
        assert secs == steps[ctx - 101].latency_s
        assert joules == steps[ctx - 101].energy_j


def test_paged_generation_splits_a_page_at_vllms_partitions() -> None:
    """1024-token pages span two 512-token partitions: the v2 kernel changes mid-page."""
    spec = from_preset("llama3-8b")
    kw = {"batch": 1, "engine": "analytic"}
    gen = simulate_generation(spec, "h100", prompt=1499, tokens=62, page=1024, **kw)
    assert gen.samples == (1500, 1537)  # one page (2048 keys read), 3 then 4 partitions
    costs = {c: t for c, t, _ in gen.sample_costs}
    assert costs[1500] != costs[1537]
    every = sum(
        simulate_model(spec, "h100", phase="decode", seq=c, page=1024, **kw).latency_s
        for c in range(1500, 1561)
    )
    assert gen.decode_s == pytest.approx(every, rel=1e-12)


def test_contiguous_generation_integrates_sampled_steps() -> None:
    spec = from_preset("llama3-8b")
    kw = {"batch": 8, "engine": "analytic"}
    gen = simulate_generation(spec, "h100", prompt=2000, tokens=97, **kw)
    assert gen.method == "linear"
    assert len(gen.samples) == 17
    assert gen.samples[0] == 2001
    assert gen.samples[-1] == 2096
    every = sum(
        simulate_model(spec, "h100", phase="decode", seq=c, **kw).latency_s
        for c in range(2001, 2097)
    )
    assert gen.decode_s == pytest.approx(every, rel=5e-3)
    assert gen.integration_check < 5e-3


def test_generation_keeps_its_parallelism_in_both_phases() -> None:
    spec = from_preset("deepseek-v3")
    gen = simulate_generation(spec, "h200", batch=8, prompt=256, tokens=9, ep=4, page=64)
    for rep in (gen.prefill, gen.first_step, gen.last_step):
        assert rep.graph.ep == 4
        assert {r.op for r in rep.table()} >= {"ep_dispatch", "ep_combine"}
    assert gen.first_step.graph.page == 64
    assert gen.prefill.graph.page == 0
    assert gen.method == "pages"
    assert gen.samples == (257,)  # contexts 257..264 share one 64-token page count


def test_generation_says_which_ops_it_left_out(capsys, monkeypatch) -> None:
    """An op no dataflow and no placement rule takes (here: every attention refused) is left
    out of the totals of the phase it belongs to, and the report says so, never silently."""
    import mappings
    from archsim.errors import MappingError
    from models import _simulate

    real = mappings.simulate_workload

    def refuse_attention(arch, workload, **kw):  # noqa: ANN001, ANN003, ANN202 - the wrapped API
        if workload in ("gqa", "decode"):
            raise MappingError("refused here", path="dataflow", expected="x", got="y")
        return real(arch, workload, **kw)

    monkeypatch.setattr(_simulate, "_CACHE", {})
    monkeypatch.setattr(mappings, "simulate_workload", refuse_attention)
    gen = simulate_generation("llama3-8b", "aim_pim", prompt=127, tokens=2, engine="analytic")
    assert not gen.complete
    assert ("prefill", "layer", "attention") in gen.unmapped
    assert ("decode", "layer", "attention") in gen.unmapped
    assert gen.ttft_s == gen.prefill.latency_s  # the mapped ops only
    argv = ["model", "llama3-8b", "--arch", "aim_pim", "--phase", "generate", "--engine"]
    assert main([*argv, "analytic", "--set", "prompt=127", "--set", "tokens=2"]) == 0
    out = capsys.readouterr().out
    assert f"INCOMPLETE: {len(gen.unmapped)} ops" in out
    for phase, stage, op in gen.unmapped:
        assert f"{phase}: {stage} / {op}" in out


def test_cli_generate_prints_ttft_tpot_and_writes_a_trace(capsys, tmp_path: Path) -> None:
    trace = tmp_path / "gen.json"
    argv = ["model", "llama3-8b", "--arch", "h100", "--phase", "generate", "--engine", "analytic"]
    argv += ["--set", "B=2", "--set", "prompt=256", "--set", "tokens=64", "--trace", str(trace)]
    assert main(argv) == 0
    out = capsys.readouterr().out
    for text in ("time to first token", "time per output token", "output tokens/s", "J/token"):
        assert text in out
    events = json.loads(trace.read_text())["traceEvents"]
    assert any(str(e.get("cat", "")).startswith("last step") for e in events)
    assert main([*argv[:-2], "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["tokens"] == 64
    assert data["prompt"] == 256
    assert data["total_s"] == pytest.approx(data["ttft_s"] + data["decode_s"])
    assert [s["context"] for s in data["steps"]] == data["samples"]
    assert main(["model", "llama3-8b", "--arch", "h100", "--set", "tokens=5"]) == 2
    assert "generate" in capsys.readouterr().err
    assert main(["model", "bert-base", "--arch", "h100", "--phase", "generate"]) == 2
    assert "decoder" in capsys.readouterr().err
