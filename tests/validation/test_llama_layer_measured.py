"""The measured Llama-3-8B decoder layer (H200, 2026-12-05) against `archsim compare`.

Data: `validation/data/h200_llama_layer.jsonl` and its profiler traces (recorded with
`record_shapes=True` by `validation/harness/llama_layer.py`; provenance in
`validation/data/README.md`). No shapes file is used: every kernel's shape comes from the trace.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

DATA = Path(__file__).resolve().parents[2] / "validation" / "data"
RECORDS = [
    r
    for r in map(json.loads, (DATA / "h200_llama_layer.jsonl").read_text().splitlines())
    if r.get("kind") == "llama_layer" and "trace" in r
]


@pytest.fixture(scope="module")
def h200():
    from archsim.gpu import gpu_model

    return gpu_model("h200")


def _compare(rec: dict, model):  # noqa: ANN001, ANN202
    from validation._compare import compare_trace
    from validation._torch_trace import read_torch_trace

    return compare_trace(read_torch_trace(DATA / rec["trace"]), model, arch="h200")


def test_the_dataset_carries_its_provenance_and_both_phases():
    lines = [json.loads(x) for x in (DATA / "h200_llama_layer.jsonl").read_text().splitlines()]
    devices = [r for r in lines if r["kind"] == "device"]
    assert devices
    assert all(d["name"] == "NVIDIA H200" and "llama_layer" in d["command"] for d in devices)
    assert {r["phase"] for r in RECORDS} == {"prefill", "decode"}
    assert all(r["graph_ms"] <= r["ms"] * 1.05 for r in RECORDS)  # a graph has no host gaps


@pytest.mark.parametrize("rec", RECORDS, ids=lambda r: Path(r["trace"]).name.split(".")[0])
def test_every_layer_trace_is_simulated_kernel_by_kernel(rec, h200):
    cmp = _compare(rec, h200)
    # >= 95% of the measured kernel time is simulated; the rest is listed, never dropped
    assert cmp.simulated_fraction >= 0.95
    unknown = sum(total for *_, total, _reason in cmp.unknown())
    assert unknown == pytest.approx(cmp.measured_us * (1 - cmp.simulated_fraction))
    ((_, all_us, meas_us, sim_us),) = [s for s in cmp.steps() if s[0] == "layer_step_1"]
    err = (sim_us - meas_us) / meas_us
    # the target for the whole layer, prefill and decode (decode: -5 to -7% since the
    # split-K reduce kernels a trace shows are simulated; -11 to -15% before the launch rules
    # of archsim.gpu.launch)
    assert abs(err) <= 0.10


def test_prefill_gemms_are_within_fifteen_percent(h200):
    rec = next(r for r in RECORDS if r["phase"] == "prefill" and r["B"] == 1 and r["S"] == 2048)
    cmp = _compare(rec, h200)
    gemms = [m for m in cmp.matches if m.kernel.category == "gemm" and m.sim is not None]
    step = [m for m in gemms if m.kernel.step == "layer_step_1"]
    layer_us = next(s[1] for s in cmp.steps() if s[0] == "layer_step_1")
    big = [m for m in step if m.meas_us > 0.05 * layer_us]  # ops over 5% of the layer
    assert len(big) == 5  # q_proj, o_proj, gate, up, down
    assert all(abs(m.err_pct) <= 15.0 for m in big), [(m.op_label, m.err_pct) for m in big]


def _ops(cmp, step="layer_step_1"):
    """Per op instance of one layer step (its kernels summed, keyed by the launching CPU op):
    ``(label, measured us, simulated us, share of the step's kernel time)``."""
    ms = [m for m in cmp.matches if m.kernel.step == step]
    total = sum(m.kernel.dur_us for m in ms)
    ops: dict = {}
    for m in ms:
        o = ops.setdefault((m.kernel.external_id, m.op_label), [0.0, 0.0])
        o[0] += m.kernel.dur_us
        o[1] += m.sim_us or 0.0
    return [(k[1], meas, sim, meas / total) for k, (meas, sim) in ops.items()]


@pytest.mark.parametrize("rec", RECORDS, ids=lambda r: Path(r["trace"]).name.split(".")[0])
def test_every_op_over_5_percent_of_a_layer_is_within_15_percent(rec, h200):
    """Issue 14's per-op target, on every H200 layer trace. The one miss: cuDNN's batch-1
    decode attention (its kernel 10 us measured vs 7.9 simulated; with its reduction kernel
    -15.7%): per-CTA fixed work and lockstep first tiles, measured (ncu, the H100 decode
    sweep) and not modelled -- held within 20% so that it cannot get worse unseen."""
    for label, meas, sim, share in _ops(_compare(rec, h200)):
        if share <= 0.05:
            continue
        err = sim / meas - 1
        known = label.startswith("decode B1 ") and rec["sdpa_backend"] != "flash"
        assert abs(err) <= (0.20 if known else 0.15), (label, round(100 * err, 1))


def test_fp8_gemms_of_the_layer_ops_validate_through_the_gemm_kind(tmp_path):
    from archsim.cli import main
    from validation.layer_ops_records import to_validate_records

    src = (DATA / "h200_layer_ops.jsonl").read_text().splitlines()
    recs = list(to_validate_records(src))
    assert recs[0]["kind"] == "device"
    assert len(recs) == 1 + sum('"scaled_mm_fp8"' in line for line in src)
    assert all(r["dtype"] == "fp8" for r in recs[1:])
    f = tmp_path / "ops.jsonl"
    f.write_text("".join(json.dumps(r) + "\n" for r in recs))
    out = tmp_path / "pred.json"
    assert main(["validate", str(f), "--arch", "h200", "--quiet", "--json", str(out)]) == 0
    preds = json.loads(out.read_text())["records"]
    big = [p for p in preds if p.get("M", 0) >= 2048]
    assert len(big) == 5
    # never fitted on fp8: the big ones come out long by 5-18% (README)
    assert all(0.0 < p["pred_ms"] / p["ms"] - 1 < 0.20 for p in big)
