"""``archsim workload list|show|check|verify`` through ``archsim.cli.main``."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest

from archsim.cli import main
from workloads.library import list_models, list_workloads


def test_list_prints_one_name_per_line(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["workload", "list"]) == 0
    assert capsys.readouterr().out.split() == list_workloads()
    assert main(["workload", "list", "--models"]) == 0
    assert capsys.readouterr().out.split() == list_models()


def test_show_json_reports_exact_mha_macs(capsys: pytest.CaptureFixture[str]) -> None:
    args = [
        "workload",
        "show",
        "mha",
        "--set",
        "B=4",
        "--set",
        "H=16",
        "--set",
        "S=4096",
        "--set",
        "D=128",
        "--json",
    ]
    assert main(args) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["total"]["macs"] == 2 * 4 * 16 * 4096**2 * 128
    assert {"macs", "flops", "compulsory_bytes"} <= set(data["total"])
    assert data["total"]["flops"] >= 2 * data["total"]["macs"]
    for e in data["einsums"]:
        assert set(e) == {"name", "macs", "ops", "reads_bytes", "writes_bytes"}


def test_show_causal_flag_halves_score_work(capsys: pytest.CaptureFixture[str]) -> None:
    base = ["workload", "show", "mha", "--set", "S=64", "--set", "D=8", "--json"]
    main(base)
    dense = json.loads(capsys.readouterr().out)["total"]["macs"]
    main([*base, "--set", "causal=true"])
    causal = json.loads(capsys.readouterr().out)["total"]["macs"]
    assert causal == dense * 65 / 128


def test_show_table_and_model_option(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["workload", "show", "gqa", "--model", "llama3-8b", "--set", "S=128"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("gqa: ")
    assert "Hkv=8" in out
    assert "total: macs=" in out


@pytest.mark.parametrize(
    "args",
    [
        ["workload", "show", "mha", "--set", "Bx=1"],
        ["workload", "show", "mha", "--set", "H"],
        ["workload", "show", "gqa", "--set", "H=6", "--set", "Hkv=4"],
        ["workload", "show", "nosuch"],
        ["workload", "verify", "nosuch"],
    ],
)
def test_bad_show_input_exits_2_with_message(
    args: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(args) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ")
    assert "Traceback" not in err


def test_check_accepts_text_and_yaml(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    text = tmp_path / "mm.cascade"
    text.write_text(
        "param M = 2\nparam N = 3\nparam K = 4\ntensor A[m,k] : bf16\n"
        "tensor B[k,n] : bf16\nC[m,n] = A[m,k] * B[k,n]\n"
    )
    assert main(["workload", "check", str(text)]) == 0
    out = capsys.readouterr().out.strip().splitlines()
    assert len(out) == 1
    assert out[0].startswith("ok: mm:")
    assert "24 MACs" in out[0]
    yml = tmp_path / "mm.yaml"
    yml.write_text(
        "params: {M: 2, N: 3, K: 4}\ntensors:\n  A: {ranks: [m, k]}\n"
        "  B: {ranks: [k, n]}\neinsums:\n  - C[m,n] = A[m,k] * B[k,n]\n"
    )
    assert main(["workload", "check", str(yml)]) == 0
    assert capsys.readouterr().out.startswith("ok: ")


@pytest.mark.parametrize(
    ("name", "body"),
    [
        ("bad.cascade", "tensor A[m,k]\nC[m,n] = A[m,k] * B[k,n]\n"),
        ("bad2.cascade", "C[m] = frob(A[m])\n"),
        ("bad.yaml", "einsums: [\n"),
        ("missing.cascade", None),
    ],
)
def test_check_reports_errors_with_exit_2(
    tmp_path: Path, name: str, body: str | None, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / name
    if body is not None:
        path.write_text(body)
    assert main(["workload", "check", str(path)]) == 2
    captured = capsys.readouterr()
    assert captured.err.startswith("error: ")
    assert "Traceback" not in captured.err
    assert captured.out == ""


def test_verify_one_and_all(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["workload", "verify", "mha", "--seed", "3"]) == 0
    assert capsys.readouterr().out.startswith("ok mha:")
    assert main(["workload", "verify", "all"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert [ln.split()[1].rstrip(":") for ln in lines] == list_workloads()
    assert all(ln.startswith("ok ") for ln in lines)


def test_verify_with_set_checks_one_shape(capsys: pytest.CaptureFixture[str]) -> None:
    args = [
        "workload",
        "verify",
        "decode",
        "--set",
        "variant=lean",
        "--set",
        "Skv=11",
        "--set",
        "M0=3",
        "--set",
        "ctas=4",
        "--set",
        "H=2",
        "--set",
        "D=2",
    ]
    assert main(args) == 0
    assert "decode: 1 shapes" in capsys.readouterr().out


def test_verify_exits_1_when_a_cascade_disagrees(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from workloads.library import _registry
    from workloads.library._dense import GEMM

    wrong = dataclasses.replace(
        GEMM, name="wrong_gemm", reference=lambda p, x: {"C": x["A"] @ x["B"] + 1e-3}
    )
    monkeypatch.setitem(_registry._REGISTRY, "wrong_gemm", wrong)
    assert main(["workload", "verify", "wrong_gemm"]) == 1
    out = capsys.readouterr().out
    assert "FAIL wrong_gemm" in out


@pytest.mark.parametrize("name", list_workloads())
def test_show_json_works_for_every_workload(name: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["workload", "show", name, "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["workload"] == name
    assert data["total"]["flops"] == pytest.approx(
        2 * data["total"]["macs"] + sum(data["total"]["ops"].values())
    )
