"""Measurement files and `archsim validate`: schema handling, table, summary, outputs."""

import json

import pytest

from archsim.cli import main
from archsim.errors import ValidationDataError
from validation import load_measurements, predict_record, validate_file
from validation._predict import UnsupportedRecord

GEMM = {"kind": "gemm", "M": 4096, "N": 4096, "K": 4096, "dtype": "bf16", "ms": 0.18}
ATTN = {
    "kind": "attn",
    "B": 4,
    "Hq": 32,
    "Hkv": 32,
    "Sq": 4096,
    "Skv": 4096,
    "D": 128,
    "causal": True,
    "backend": "flash",
    "dtype": "bf16",
    "pass_": "fwd",
    "ms": 1.9,
    "dram_bytes_read": 2.0e8,
    "dram_bytes_write": 1.0e8,
    "mJ_per_iter": 500.0,
    "avg_W": 400.0,
    "sm_clock": 1900.0,
}
DECODE = {
    "kind": "decode",
    "B": 8,
    "Hq": 32,
    "Hkv": 8,
    "Sq": 1,
    "Skv": 32768,
    "D": 128,
    "causal": False,
    "backend": "cudnn",
    "dtype": "bf16",
    "pass_": "fwd",
    "ms": 0.37,
}


def _write(tmp_path, records, name="m.jsonl"):
    p = tmp_path / name
    p.write_text("\n".join(r if isinstance(r, str) else json.dumps(r) for r in records) + "\n")
    return p


def test_unknown_kinds_backends_and_error_records_are_skipped(tmp_path):
    p = _write(
        tmp_path,
        [
            {"kind": "device", "name": "H100", "power_limit_w": 700},
            GEMM,
            {**GEMM, "kind": "mystery"},
            {**ATTN, "backend": "math"},
            {"kind": "gemm", "M": 1, "error": "OOM"},
            {"kind": "gemm", "M": 1, "ms": 1},
        ],
    )
    rep = validate_file(p, "h100")
    assert list(rep.frame["line"]) == [2]
    reasons = dict(rep.skipped)
    assert "unknown kind" in reasons[3]
    assert "unknown backend" in reasons[4]
    assert "OOM" in reasons[5]
    assert "missing fields" in reasons[6]


def test_malformed_line_names_file_and_line(tmp_path):
    p = _write(tmp_path, [GEMM, "{not json"])
    with pytest.raises(ValidationDataError, match=r"m\.jsonl:2"):
        load_measurements(p)


def test_cli_malformed_file_exits_2(tmp_path, capsys):
    p = _write(tmp_path, [GEMM, "[1, 2]"])
    assert main(["validate", str(p)]) == 2
    assert "m.jsonl:2" in capsys.readouterr().err


def test_every_kind_is_predicted():
    for rec, flow in (
        (GEMM, "gpu_gemm"),
        (ATTN, "flash2"),
        (DECODE, "flash3"),
        ({"kind": "attn_unfused", "B": 1, "H": 16, "S": 2048, "D": 64}, "gpu_unfused"),
        (
            {
                "kind": "flex_block_sparse",
                "B": 1,
                "H": 16,
                "S": 4096,
                "D": 128,
                "block": 128,
                "density": 0.3,
            },
            "block_sparse",
        ),
        ({**ATTN, "backend": "efficient", "pass_": "bwd"}, "mem_efficient"),
    ):
        from archsim.gpu import gpu_model

        p = predict_record(rec, gpu_model("h100"))
        assert p.dataflow == flow
        assert p.pred_ms > 0
        assert p.pred_dram_bytes > 0


def test_unknown_pass_is_unsupported():
    from archsim.gpu import gpu_model

    with pytest.raises(UnsupportedRecord):
        predict_record({**ATTN, "pass_": "sideways"}, gpu_model("h100"))


def test_validate_prints_table_summary_and_writes_json_and_plot(tmp_path, capsys):
    p = _write(
        tmp_path, [{"kind": "device", "name": "H100"}, GEMM, ATTN, DECODE, {**GEMM, "M": 2048}]
    )
    out_json, out_png = tmp_path / "o.json", tmp_path / "o.png"
    assert (
        main(
            ["validate", str(p), "--arch", "h100", "--json", str(out_json), "--plot", str(out_png)]
        )
        == 0
    )
    text = capsys.readouterr().out
    assert "4096x4096x4096" in text
    assert "MAPE=" in text
    assert "spearman=" in text
    assert "attn/flash/fwd" in text
    assert "DRAM bytes" in text
    assert "energy" in text
    doc = json.loads(out_json.read_text())
    recs = doc["records"]
    assert all("pred_ms" in r for r in recs)
    attn = next(r for r in recs if r["kind"] == "attn")
    assert attn["pred_dram_bytes"] > 0
    assert attn["pred_mJ"] > 0
    assert "pred_mJ" not in next(r for r in recs if r["kind"] == "gemm")
    assert out_png.stat().st_size > 1000


def test_device_record_sets_the_power_limit(tmp_path):
    low = _write(
        tmp_path,
        [{"kind": "device", "power_limit_w": 300}, {**GEMM, "M": 8192, "N": 8192, "K": 8192}],
        "a.jsonl",
    )
    high = _write(
        tmp_path,
        [{"kind": "device", "power_limit_w": 700}, {**GEMM, "M": 8192, "N": 8192, "K": 8192}],
        "b.jsonl",
    )
    t_low = validate_file(low, "h100").frame["pred_ms"].iloc[0]
    t_high = validate_file(high, "h100").frame["pred_ms"].iloc[0]
    assert t_low > 1.2 * t_high
