"""PIM-GPT against measured GPUs: the eager-PyTorch H100 baseline (validation/data/
h100_gpt_decode.jsonl) and the CUDA-graph replay (h100_gpt_decode_graph.jsonl)."""

from __future__ import annotations

import json

import pytest

from validation.reproduce._pimgpt_measured import (
    MEASURED_GPT_DECODE,
    MEASURED_GPT_DECODE_GRAPH,
    graph_device_preset,
    measured_baseline_rows,
    measured_graph_rows,
)

ROW = {"model": "gpt2-small", "pim_ms_per_token": 0.05, "pim_mJ_per_token": 1.0}


def test_committed_measurement_has_every_pimgpt_model_with_provenance():
    lines = [json.loads(x) for x in MEASURED_GPT_DECODE.read_text().splitlines() if x.strip()]
    assert lines[0]["kind"] == "device"
    assert lines[0]["name"].startswith("NVIDIA H100")
    models = {r["model"] for r in lines[1:] if "error" not in r}
    assert {"gpt2-small", "gpt2-xl", "gpt3-small", "gpt3-xl"} <= models
    for r in lines[1:]:
        assert r["energy_loop_ms_per_token"] > 0
        assert r["mJ_per_token"] > 0


def test_ratios_are_measured_over_modelled():
    # gpt2-small in validation/data/h100_gpt_decode.jsonl: 10.906 ms per token in the energy
    # loop, 1191.3 mJ per token (NVML); the PIM row gives 0.05 ms and 1.0 mJ
    (row,) = measured_baseline_rows([ROW])
    assert row["speedup"] == pytest.approx(10.906 / 0.05, rel=1e-4)
    assert row["energy_eff"] == pytest.approx(1191.26 / 1.0, rel=1e-4)


def test_missing_file_or_model_gives_no_rows(tmp_path):
    assert measured_baseline_rows([ROW], tmp_path / "absent.jsonl") == []
    assert measured_baseline_rows([{**ROW, "model": "gpt9"}]) == []


def test_harness_model_table_equals_the_models_presets():
    from models import from_preset
    from validation.harness.gpt_decode import GPT_MODELS, VOCAB
    from validation.reproduce._pim import PIMGPT_MODELS

    assert GPT_MODELS == PIMGPT_MODELS
    for name, (layers, d, heads) in GPT_MODELS.items():
        s = from_preset(name)
        assert (s.layers, s.d_model, s.heads, s.vocab) == (layers, d, heads, VOCAB)


# --- the CUDA-graph measurement (validation/data/h100_gpt_decode_graph.jsonl) -----
GRAPH_ROW = {
    "model": "gpt2-small",
    "pim_ms_per_token": 0.05,
    "pim_mJ_per_token": 1.0,
    "gpu_ms_per_token_h200": 1.2,
    "gpu_launch_share_h200": 0.75,
    "gpu_kernels_h200": 160,
}


def _graph_file(path, device="NVIDIA H200", **fields):
    rec = {
        "kind": "gpt_decode",
        "model": "gpt2-small",
        "ms_per_token": 9.0,
        "energy_loop_ms_per_token": 8.0,
        "graph_ms_per_token": 0.8,
        "kernel_ms_per_token": 0.5,
        "graph_kernels_per_token": 158.0,
        "graph_mJ_per_token": 200.0,
        "static_eager_ms_per_token": 2.0,
        **fields,
    }
    lines = [{"kind": "device", "name": device}, rec]
    path.write_text("\n".join(json.dumps(x) for x in lines) + "\n")
    return path


def test_graph_rows_put_the_model_beside_the_measured_replay(tmp_path):
    path = _graph_file(tmp_path / "h200.jsonl")
    assert graph_device_preset(path) == "h200"
    (row,) = measured_graph_rows([GRAPH_ROW], path)
    assert row["gpu"] == "h200"
    assert row["model_over_measured"] == pytest.approx(1.2 / 0.8)
    assert row["speedup"] == pytest.approx(0.8 / 0.05)
    # the model's step without launches and gaps beside the profiler's kernel sum
    assert row["model_no_launch_ms_per_token"] == pytest.approx(1.2 * 0.25)
    assert row["model_no_launch_over_kernel"] == pytest.approx(0.3 / 0.5)
    assert row["eager_over_graph"] == pytest.approx(8.0 / 0.8)  # the fixed-cache eager loop
    assert row["static_eager_over_graph"] == pytest.approx(2.0 / 0.8)
    assert row["energy_eff"] == pytest.approx(200.0)
    assert "CUDA-graph" in row["setup"]


def test_graph_rows_skip_cleanly(tmp_path):
    assert measured_graph_rows([GRAPH_ROW], tmp_path / "absent.jsonl") == []
    eager_only = _graph_file(tmp_path / "eager.jsonl", graph_ms_per_token=None)
    assert measured_graph_rows([GRAPH_ROW], eager_only) == []
    unknown = _graph_file(tmp_path / "mi300.jsonl", device="AMD Instinct MI300X")
    assert measured_graph_rows([GRAPH_ROW], unknown) == []


def test_reproduction_reports_a_graph_measurement_beside_the_model(tmp_path, monkeypatch):
    import validation.reproduce._pimgpt_measured as pm
    from validation.reproduce._pim import reproduce_pim

    monkeypatch.setattr(pm, "MEASURED_GPT_DECODE_GRAPH", _graph_file(tmp_path / "h200.jsonl"))
    rep = reproduce_pim(fast=True)
    (row,) = rep.tables["pimgpt_measured_graph"]
    pg = [r for r in rep.tables["models"] if str(r["setup"]).startswith("PIM-GPT")]
    model = next(r for r in pg if r["model"] == "gpt2-small")
    assert row["model_ms_per_token"] == model["gpu_ms_per_token_h200"]
    assert rep.summary["pimgpt_speedup_vs_graph_mean"] == row["speedup"]
    checks = [c for c in rep.checks if "CUDA-graph" in c.name]
    assert len(checks) == 2
    assert not any(c.gate for c in checks)


def test_committed_graph_measurement_joins_every_model_on_its_device():
    # validation/data/h100_gpt_decode_graph.jsonl: measured on the lent H100, 2026-12-05
    # the gate GPU (h100) has unsuffixed columns
    h100 = {k.removesuffix("_h200"): v for k, v in GRAPH_ROW.items()}
    rows = [{**h100, "model": m} for m in ("gpt2-small", "gpt3-xl")]
    got = measured_graph_rows(rows)
    assert MEASURED_GPT_DECODE_GRAPH.exists()
    assert graph_device_preset() == "h100"
    assert [r["model"] for r in got] == ["gpt2-small", "gpt3-xl"]
    for r in got:
        # replayed graph: kernels plus the GPU's own gaps, no Python; 1 ms order, not eager's
        assert 0.3 < r["measured_graph_ms_per_token"] < 5.0
        assert r["measured_graph_ms_per_token"] >= r["measured_kernel_ms_per_token"]
