"""Context parallelism (ring attention, K/V all-gather, sharded decode) and expert
parallelism (all-to-all dispatch/combine): closed forms, per-op table, trace, errors."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest

from archsim.cli import main
from models import (
    ModelError,
    System,
    build_graph,
    collective_time,
    from_preset,
    ring_attention_time,
    simulate_model,
)
from models._comm import ring_step_time
from models._parallel import busiest_device_copies

ALPHA, BETA = 1e-6, 450e9


def _system(bw: float = BETA, count: int = 8) -> System:
    return System("t", "h100", count, bw, ALPHA)


def _row(rep, name: str):  # noqa: ANN001, ANN202 - a ModelReport, one of its rows
    (row,) = [r for r in rep.table() if r.op == name and r.stage != "dense layer"]
    return row


def test_ring_attention_time_is_its_closed_form() -> None:
    # compute-bound steps hide every transfer; link-bound steps expose (p-1)(t - c)
    assert ring_attention_time(3.0, 1.0, 8) == 3.0 + 7 * 3.0
    assert ring_attention_time(1.0, 3.0, 8) == 1.0 + 7 * 3.0
    assert ring_step_time(1e6, _system()) == pytest.approx(ALPHA + 1e6 / BETA)


@pytest.mark.parametrize("bw", [BETA, 1e9])  # NVLink: hidden; 1 GB/s: link-bound
def test_ring_attention_row_holds_to_the_closed_form(bw: float) -> None:
    cp, S, B = 4, 8192, 1
    spec = from_preset("llama3-8b")
    rep = simulate_model(
        spec, "h100", phase="prefill", batch=B, seq=S, cp=cp, system=_system(bw, cp),
        engine="analytic",
    )  # fmt: skip
    ring = _row(rep, "ring_attention")
    # the K/V block one device holds and passes on each step: B x S/cp x Hkv x (D + Dv) bf16
    block = B * (S // cp) * spec.kv_heads * 2 * spec.head_dim * 2
    t = ALPHA + block / bw
    c = ring.spans[0][2]  # one step's block compute
    assert ring.seconds == pytest.approx(c + (cp - 1) * max(c, t), rel=1e-12)
    assert ring.comm_s == pytest.approx((cp - 1) * max(0.0, t - c), rel=1e-9, abs=1e-15)
    assert f"Skv={S // cp}" in ring.shape
    assert "causal=True" in ring.shape
    steps = [s for s in ring.spans if s[3] == 0]
    sends = [s for s in ring.spans if s[3] == 1]
    assert len(steps) == cp
    assert len(sends) == cp - 1
    for (_, start, _, _), (_, s_start, s_dur, _) in zip(steps, sends, strict=False):
        assert s_start == start
        assert s_dur == pytest.approx(t)
    assert rep.comm_s == pytest.approx(ring.total_comm_s)
    if bw == BETA:
        assert ring.comm_s == 0
        assert ring.bound == "compute"
    else:
        assert ring.comm_s > 0
        assert ring.bound == "comm"


def test_all_gather_attention_is_the_closed_form_plus_the_same_work() -> None:
    cp, S = 4, 8192
    spec = from_preset("llama3-8b")
    kw = {"phase": "prefill", "seq": S, "cp": cp, "system": _system(count=cp)}
    ag = simulate_model(spec, "h100", cp_mode="all_gather", engine="analytic", **kw)
    gather = _row(ag, "cp_kv_all_gather")
    kv = S * spec.kv_heads * 2 * spec.head_dim * 2  # the whole K/V, gathered
    assert gather.seconds == pytest.approx(collective_time("all_gather", kv, _system(count=cp))[0])
    assert gather.seconds == pytest.approx(3 * ALPHA + 3 / 4 * kv / BETA)
    # causal zig-zag: S/(2 cp) queries against all S keys = the ring's score count
    assert f"Sq={S // 8}, Skv={S}" in _row(ag, "attention").shape


def test_context_parallel_prefill_speedup_at_32k() -> None:
    one = simulate_model("llama3-8b", "h100", phase="prefill", seq=32768, engine="analytic")
    four = simulate_model("llama3-8b", "h100", phase="prefill", seq=32768, cp=4, engine="analytic")
    speedup = one.latency_s / four.latency_s
    print(f"\nllama3-8b prefill S=32768 h100: cp=1 {one.latency_s:.3f} s, cp=4 "  # noqa: T201
          f"{four.latency_s:.3f} s, {speedup:.2f}x")  # fmt: skip
    # the attention does 1/4 of the score work per device, so it speeds up at most 4x;
    # the whole step may exceed 4x by a little: the GPU model runs the M = 8192 GEMMs
    # slightly more efficiently than M = 32768 (ffn_down 4.7x)
    att = _row(one, "attention").total_s / _row(four, "ring_attention").total_s
    assert 3.0 < att <= 4.0 + 1e-9
    assert 3.0 < speedup < 4.2
    assert four.graph.devices == 4
    assert four.energy_j == pytest.approx(
        sum(r.energy_j * r.count * r.repeat for r in four.rows) * 4
    )


def test_context_parallel_decode_shards_the_cache() -> None:
    spec = from_preset("llama3-8b")
    g = build_graph(spec, phase="decode", batch=2, seq=4096, cp=4)
    ops = {op.name: op for _, op in g.ops()}
    assert ops["attention"].params["Skv"] == 1024
    gather = ops["cp_partials_gather"]
    assert gather.collective == "all_gather"
    assert gather.steps == 4
    assert gather.bytes == 2 * 32 * (128 + 1) * 4 * 4  # fp32 partial O + LSE, all devices
    assert ops["qkv_proj"].params["M"] == 2  # the new tokens run on every device
    # any cache length: the busiest device holds ceil(S / cp) positions
    odd = {op.name: op for _, op in build_graph(spec, phase="decode", seq=4097, cp=4).ops()}
    assert odd["attention"].params["Skv"] == 1025


def test_ring_trace_has_one_track_per_device(tmp_path: Path) -> None:
    rep = simulate_model(
        "llama3-8b", "h100", phase="prefill", seq=4096, cp=2, tp=2, engine="analytic"
    )
    events = json.loads(rep.write_trace(tmp_path / "r.json").read_text())["traceEvents"]
    procs = {e["pid"] for e in events if e["name"] == "process_name"}
    assert procs == {0, 1, 2, 3}
    for d in procs:
        mine = [e for e in events if e["ph"] == "X" and e["pid"] == d]
        steps = [e for e in mine if "ring_attention step" in e["name"]]
        sends = [e for e in mine if e["name"].startswith("send K/V block")]
        assert len(steps) == 2 * 32
        assert len(sends) == 32
        assert {e["tid"] for e in sends} == {1}
        end = max(e["ts"] + e["dur"] for e in mine)
        assert end * 1e-6 == pytest.approx(rep.latency_s)


def test_expert_parallel_all_to_all_is_its_closed_form() -> None:
    spec = from_preset("deepseek-v3")
    ep, B = 8, 64
    rep = simulate_model(spec, "h200", phase="decode", batch=B, seq=4096, ep=ep)
    hgx = rep.system
    dispatch, combine = _row(rep, "ep_dispatch"), _row(rep, "ep_combine")
    k = spec.active_experts
    busiest = busiest_device_copies(spec.experts, k, B, ep)
    assert B * k / ep < busiest < B * k / ep * 1.3  # 64 copies on average, the busiest more
    n = max((B // ep) * k, busiest) * spec.d_model * 2  # the busiest device's receive
    a, b = hgx.latency_s, hgx.link_bw_bytes_per_s
    full = (ep - 1) * (a + n / (ep * b))
    assert combine.seconds == pytest.approx(full, rel=1e-12)  # the experts read it: exposed
    # the dispatch runs under the shared expert (which neither feeds it nor reads it)
    shared = sum(_row(rep, f"shared_expert_{x}").seconds for x in ("gate_up", "act", "down"))
    assert dispatch.seconds + dispatch.hidden_s == pytest.approx(full, rel=1e-12)
    assert dispatch.seconds == pytest.approx(max(0.0, full - shared), abs=1e-15)
    assert dispatch.hidden_s == pytest.approx(min(full, shared), rel=1e-12)
    assert dispatch.repeat == spec.moe_layers
    assert dispatch.bound == "comm"
    # each device: 32 of the 256 experts; the busiest device's copies over its experts
    up = _row(rep, "experts_gate_up")
    local = spec.experts // ep
    g = round(local * (1 - (1 - 1 / local) ** busiest))
    rows = math.ceil(busiest / g)
    assert f"G={g}, M={rows}, K={spec.d_model}, N={2 * spec.moe_ffn_dim}" in up.shape
    assert "T=8" in _row(rep, "attn_norm").shape  # attention data-parallel: 64 / 8
    assert rep.comm_s == pytest.approx((dispatch.seconds + combine.seconds) * spec.moe_layers)


@pytest.mark.parametrize(("tp", "ep"), [(2, 4), (4, 2)])
def test_expert_parallel_with_tensor_parallel_attention(tp: int, ep: int) -> None:
    """DeepSeek-V3's layout: attention TP inside ``ep`` data-parallel groups, the routed
    experts whole over all ``tp x ep`` devices; each device dispatches its share of its
    group's tokens. The routing is the same as ``ep = tp x ep`` alone; the attention and
    the group all-reduces are those of ``tp`` on ``B / ep`` sequences."""
    spec = from_preset("deepseek-v3")
    B, p, k = 64, tp * ep, spec.active_experts
    rep = simulate_model(spec, "h200", phase="decode", batch=B, seq=4096, tp=tp, ep=ep)
    assert rep.graph.devices == p
    hgx = rep.system
    group = B // ep  # tokens of one tensor-parallel group
    busiest = busiest_device_copies(spec.experts, k, B, p)
    n = max(math.ceil(group / tp) * k, busiest) * spec.d_model * 2
    full = (p - 1) * (hgx.latency_s + n / (p * hgx.link_bw_bytes_per_s))
    combine = _row(rep, "ep_combine")
    assert combine.seconds == pytest.approx(full, rel=1e-12)
    assert f"{math.ceil(group / tp)} tokens x {k} experts from this device" in combine.note
    # experts whole, E / (tp x ep) per device, as with ep = tp x ep alone
    alone = simulate_model(spec, "h200", phase="decode", batch=B, seq=4096, ep=p)
    assert _row(rep, "experts_gate_up").shape == _row(alone, "experts_gate_up").shape
    assert combine.seconds == pytest.approx(_row(alone, "ep_combine").seconds)
    # attention and the shared expert: Megatron over tp on the group's B / ep sequences
    assert f"B={group}, H={spec.heads // tp}" in _row(rep, "attention").shape
    assert f"N={2 * spec.moe_ffn_dim // tp}" in _row(rep, "shared_expert_gate_up").shape
    ar = _row(rep, "tp_all_reduce")
    t, _ = collective_time("all_reduce", group * spec.d_model * 2, hgx, devices=tp)
    assert ar.seconds == pytest.approx(t)
    assert ar.count == 2


def test_expert_parallel_with_context_parallel_decode_and_prefill() -> None:
    """Decode under cp: the cp devices hold the same new tokens (the cache is sharded), so
    each dispatches 1/(tp cp) of them and the cp devices of a tp rank all-gather their
    slices' routed outputs. Prefill under cp: each device's S/cp positions are its own
    tokens, all of them dispatched, and no gather follows."""
    spec = from_preset("deepseek-v3")
    k, d = spec.active_experts, spec.d_model
    tp, cp, ep, B = 2, 2, 2, 64
    p = tp * cp * ep
    rep = simulate_model(spec, "h200", phase="decode", batch=B, seq=4096, tp=tp, cp=cp, ep=ep)
    hgx = rep.system
    group = B // ep
    busiest = busiest_device_copies(spec.experts, k, B, p)
    n = max(math.ceil(group / (tp * cp)) * k, busiest) * d * 2
    full = (p - 1) * (hgx.latency_s + n / (p * hgx.link_bw_bytes_per_s))
    assert _row(rep, "ep_combine").seconds == pytest.approx(full, rel=1e-12)
    gather = _row(rep, "ep_outputs_gather")
    t, _ = collective_time("all_gather", group // tp * d * 2, hgx, devices=cp)
    assert gather.seconds == pytest.approx(t)
    assert gather.repeat == spec.moe_layers
    # the same routing as ep = 8 alone: experts whole over all 8 devices
    alone = simulate_model(spec, "h200", phase="decode", batch=B, seq=4096, ep=p)
    assert _row(rep, "experts_gate_up").shape == _row(alone, "experts_gate_up").shape
    # prefill: every device dispatches its own (B/ep)(S/cp)/tp tokens; B S tokens in all
    S, B = 1024, 4
    pre = simulate_model(spec, "h200", phase="prefill", batch=B, seq=S, cp=2, ep=4)
    tokens = (B // 4) * (S // 2)
    busiest = busiest_device_copies(spec.experts, k, B * S, 8)
    n = max(tokens * k, busiest) * d * 2
    full = 7 * (hgx.latency_s + n / (8 * hgx.link_bw_bytes_per_s))
    assert _row(pre, "ep_combine").seconds == pytest.approx(full, rel=1e-12)
    assert f"{tokens} tokens x {k} experts from this device" in _row(pre, "ep_combine").note
    assert not [r for r in pre.rows if r.op == "ep_outputs_gather"]
    assert "ring_attention" in {r.op for r in pre.rows}


@pytest.mark.parametrize(("tokens", "ep"), [(64, 8), (16, 4), (512, 8)])
def test_busiest_device_load_matches_a_monte_carlo_routing(tokens: int, ep: int) -> None:
    """Every token picks 8 distinct experts of 256 uniformly; the expected load of the
    busiest device (exact per-device distribution, devices taken as independent) is within
    3% of sampled routings."""
    rng = np.random.default_rng(7)
    trials, experts, k = 400, 256, 8
    picks = np.argsort(rng.random((trials, tokens, experts)), axis=2)[:, :, :k]
    device = picks // (experts // ep)
    loads = np.stack([(device == d).sum(axis=(1, 2)) for d in range(ep)], axis=1)
    sampled = loads.max(axis=1).mean()
    assert loads.mean() == pytest.approx(tokens * k / ep)
    assert busiest_device_copies(experts, k, tokens, ep) == pytest.approx(sampled, rel=0.03)
    assert busiest_device_copies(experts, k, tokens, 1) == pytest.approx(tokens * k)


def test_expert_parallel_trace_puts_the_all_to_alls_on_every_link_track(tmp_path: Path) -> None:
    rep = simulate_model("deepseek-v3", "h200", phase="decode", batch=16, seq=1024, ep=4)
    events = json.loads(rep.write_trace(tmp_path / "ep.json").read_text())["traceEvents"]
    for d in range(4):
        mine = [e for e in events if e["ph"] == "X" and e["pid"] == d]
        a2a = [e for e in mine if e["name"] in ("ep_dispatch", "ep_combine")]
        assert len(a2a) == 2 * from_preset("deepseek-v3").moe_layers
        assert {e["tid"] for e in a2a} == {1}
        dispatch, combine = _row(rep, "ep_dispatch"), _row(rep, "ep_combine")
        full = (dispatch.hidden_s + dispatch.seconds + combine.seconds) * combine.repeat
        assert sum(e["dur"] for e in a2a) * 1e-6 == pytest.approx(full)
        # each dispatch starts with the shared expert's first kernel, on the other thread
        first = min((e for e in a2a if e["name"] == "ep_dispatch"), key=lambda e: e["ts"])
        gate = min(
            (e for e in mine if e["name"] == "shared_expert_gate_up" and e["cat"] == "moe layer 0"),
            key=lambda e: e["ts"],
        )
        assert first["ts"] == pytest.approx(gate["ts"])
        end = max(e["ts"] + e["dur"] for e in mine)
        assert end * 1e-6 == pytest.approx(rep.latency_s)


def test_all_to_all_needs_a_switch() -> None:
    assert collective_time("all_to_all", 8e6, _system())[0] == pytest.approx(
        7 * (ALPHA + 1e6 / BETA)
    )
    ring = System("r", "h100", 8, BETA, ALPHA, topology="ring")
    with pytest.raises(ModelError, match="topology"):
        collective_time("all_to_all", 8e6, ring)


@pytest.mark.parametrize(
    ("kw", "match"),
    [
        ({"model": "llama3-8b", "ep": 2}, "experts"),
        ({"model": "deepseek-v3", "ep": 3}, "ep"),  # 256 experts
        ({"model": "deepseek-v3", "ep": 2, "batch": 3}, "B = 3"),
        ({"model": "deepseek-v3", "ep": 64, "tp": 8, "batch": 64}, "tp x cp x ep"),  # 256
        ({"model": "llama3-8b", "cp": 3, "phase": "prefill", "seq": 1024}, "cp"),
        ({"model": "llama3-8b", "cp": 2, "ep": 2}, "ep"),
        ({"model": "llama3-8b", "cp": 2, "cp_mode": "tree"}, "cp_mode"),
    ],
)
def test_parallel_errors_name_the_field(kw: dict, match: str) -> None:
    args = {"phase": "decode", "batch": 4, "seq": 2048, **kw}
    spec = from_preset(args.pop("model"))
    with pytest.raises(ModelError, match=match):
        build_graph(spec, **args)


def test_cli_cp_and_ep(capsys) -> None:
    argv = ["model", "llama3-8b", "--arch", "h100", "--cp", "4", "--phase", "prefill"]
    assert main([*argv, "--set", "S=8192", "--engine", "analytic"]) == 0
    out = capsys.readouterr().out
    assert "4 x h100 (cp=4, ring attention)" in out
    assert "ring_attention" in out
    argv = ["model", "deepseek-v3", "--arch", "h200", "--ep", "8", "--set", "B=16"]
    assert main([*argv, "--set", "S=1024", "--engine", "analytic"]) == 0
    out = capsys.readouterr().out
    assert "ep_dispatch" in out
    assert "pairwise: all_to_all" in out
    assert main(["model", "llama3-8b", "--arch", "fusemax", "--cp", "2"]) == 2
    assert "system" in capsys.readouterr().err
