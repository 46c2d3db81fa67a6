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
    by_line = {s.line: s for s in rep.skipped}
    assert set(by_line) == {3, 4, 5, 6}
    assert by_line[3].field == "kind"
    assert "unknown kind" in by_line[3].reason
    assert by_line[4].field == "backend"
    assert "unknown backend" in by_line[4].reason
    assert "OOM" in by_line[5].reason
    assert by_line[6].field == "N"
    assert "missing fields" in by_line[6].reason


def test_malformed_lines_are_reported_and_the_rest_is_read(tmp_path):
    p = tmp_path / "m.jsonl"
    p.write_bytes(
        b"\n".join(
            [
                json.dumps(GEMM).encode(),
                b"{not json",
                b"[1, 2]",
                b'{"kind": "gemm", "M": \xff\xfe}',
                json.dumps(GEMM)[:20].encode(),  # truncated
                json.dumps({**GEMM, "M": 2048}).encode(),
            ]
        )
    )
    mset = load_measurements(p)
    assert [m.line for m in mset.records] == [1, 6]
    reasons = {s.line: s.reason for s in mset.skipped}
    assert "malformed JSON" in reasons[2]
    assert "expected a JSON object" in reasons[3]
    assert "not UTF-8" in reasons[4]
    assert "malformed JSON" in reasons[5]


@pytest.mark.parametrize(
    ("change", "field", "words"),
    [
        ({"dtype": "fp4"}, "dtype", "unknown dtype 'fp4'"),
        ({"M": "4096"}, "M", "positive integer"),
        ({"M": 1.5}, "M", "positive integer"),
        ({"M": -3}, "M", "[1, 2147483647]"),
        ({"K": 1e30}, "K", "[1, 2147483647]"),
        ({"M": 2**20, "N": 2**20}, "M", "exceeds the model's bound"),
        ({"N": 2**25}, "N", "exceeds the model's bound"),
        ({"ms": float("inf")}, "ms", "finite number > 0"),
        ({"ms": None}, "ms", "finite number > 0"),
        ({"dram_bytes_read": float("nan")}, "dram_bytes_read", "finite"),
        ({"causal": "false"}, "causal", "true or false"),
    ],
)
def test_a_bad_field_skips_its_record_only_and_is_named(tmp_path, change, field, words):
    p = _write(tmp_path, [GEMM, {**GEMM, **change}, DECODE])
    rep = validate_file(p, "h100")
    assert list(rep.frame["line"]) == [1, 3]
    (skip,) = rep.skipped
    assert (skip.line, skip.field) == (2, field)
    assert words in skip.reason


def test_cli_reports_skipped_records_in_output_and_json_and_exits_0(tmp_path, capsys):
    p = _write(tmp_path, [GEMM, {**GEMM, "dtype": "fp4"}, "[1, 2]"])
    out_json = tmp_path / "o.json"
    assert main(["validate", str(p), "--quiet", "--json", str(out_json)]) == 0
    text = capsys.readouterr().out
    assert "skipped records (2, not validated):" in text
    assert "line 2: field 'dtype': unknown dtype 'fp4'" in text
    assert "line 3: expected a JSON object" in text
    assert "validated: 1 records; skipped: 2 records" in text
    doc = json.loads(out_json.read_text())
    assert doc["skipped"][0] == {
        "line": 2,
        "field": "dtype",
        "reason": doc["skipped"][0]["reason"],
    }
    assert "unknown dtype" in doc["skipped"][0]["reason"]
    assert doc["skipped"][1]["line"] == 3
    assert doc["skipped"][1]["field"] is None
    assert [r["M"] for r in doc["records"]] == [4096]


def test_cli_exits_2_when_nothing_could_be_validated(tmp_path, capsys):
    p = _write(tmp_path, [{**GEMM, "dtype": "fp4"}, "{oops"])
    assert main(["validate", str(p)]) == 2
    err = capsys.readouterr().err
    assert "no record could be validated" in err
    assert "line 1: field 'dtype'" in err
    assert "line 2: malformed JSON" in err


def test_cli_exits_2_on_an_unreadable_file(tmp_path, capsys):
    assert main(["validate", str(tmp_path / "missing.jsonl")]) == 2
    assert "cannot read measurement file" in capsys.readouterr().err
    with pytest.raises(ValidationDataError, match="cannot read"):
        load_measurements(tmp_path)


def test_validate_bad_arch_yaml_shows_the_spec_error(tmp_path, capsys):
    p = _write(tmp_path, [GEMM])
    arch = tmp_path / "bad.yaml"
    arch.write_text("name: broken\nkind: gpu\nclock: {core_hz: fast}\n")
    assert main(["validate", str(p), "--arch", str(arch)]) == 2
    err = capsys.readouterr().err
    assert "unknown GPU" not in err
    assert "bad.yaml" in err
    assert "clock" in err


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


def test_plot_works_headless_and_leaves_the_callers_backend_alone(tmp_path):
    """A library must not switch matplotlib's backend (a Jupyter session would lose its
    inline plots); the plot still renders with no display."""
    import subprocess
    import sys

    data = _write(tmp_path, [GEMM, ATTN, DECODE])
    png = tmp_path / "p.png"
    code = (
        "import matplotlib; matplotlib.use('svg'); import sys\n"
        "from validation import validate_file\n"
        f"validate_file({str(data)!r}, 'h100').plot({str(png)!r})\n"
        "assert matplotlib.get_backend() == 'svg', matplotlib.get_backend()\n"
        "assert 'matplotlib.pyplot' not in sys.modules\n"
    )
    env = {k: v for k, v in __import__("os").environ.items() if k not in ("DISPLAY", "MPLBACKEND")}
    run = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_a_shape_the_model_has_no_kernel_for_is_skipped_with_the_shape(tmp_path):
    p = _write(tmp_path, [GEMM, {**DECODE, "D": 606, "backend": "flash"}])
    rep = validate_file(p, "h100")
    (skip,) = rep.skipped
    assert skip.field is None
    assert skip.reason.startswith("the model has no kernel for decode B8 H32/8 S1x32768 D606")
    assert "shared memory" in skip.reason


def test_cli_predicts_with_the_event_engine_unless_told(tmp_path):
    """Issue 12: the event engine is `archsim validate`'s default; `--engine analytic` is its
    bound on the same tile program; the retired closed-form kernel model is no engine."""
    p = _write(tmp_path, [GEMM])
    outs = {}
    for engine in (None, "event", "analytic"):
        out = tmp_path / f"{engine}.json"
        args = ["validate", str(p), "--quiet", "--jobs", "1", "--json", str(out)]
        assert main(args + (["--engine", engine] if engine else [])) == 0
        outs[engine] = json.loads(out.read_text())["records"][0]["pred_ms"]
    assert outs[None] == outs["event"]
    assert outs["analytic"] <= outs["event"] * (1 + 1e-9)
    with pytest.raises(SystemExit) as exc:
        main(["validate", str(p), "--quiet", "--engine", "model"])
    assert exc.value.code == 2
