"""``archsim simulate`` and ``archsim map``."""

from __future__ import annotations

import contextlib
import io
import json

import pytest

from archsim.cli import main


def _run(args: list[str]) -> tuple[int, str]:
    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        code = main(args)
    return code, buf.getvalue()


def test_simulate_prints_the_headline_numbers():
    code, out = _run(
        [
            "simulate",
            "--arch",
            "fusemax",
            "--workload",
            "mha",
            "--set",
            "S=1024",
            "--set",
            "B=1",
            "--set",
            "H=1",
            "--set",
            "D=64",
            "--dataflow",
            "fusemax",
            "--engine",
            "analytic",
        ]
    )
    assert code == 0
    for word in ("cycles", "time", "energy", "DRAM bytes", "util  pe2d", "passes"):
        assert word in out


def test_simulate_with_a_mapping_file_and_a_trace(tmp_path, tiny_arch):
    from mappings import get_mapper

    from .conftest import GEMM_TEXT, make_gemm

    cas = tmp_path / "gemm.txt"
    cas.write_text("param M = 64\nparam N = 48\nparam K = 32\n" + GEMM_TEXT)
    best = get_mapper("greedy")(make_gemm(64, 48, 32), tiny_arch, top=1, rescore=0)[0]
    mfile = tmp_path / "m.yaml"
    best.mapping.to_yaml(mfile)
    arch = tmp_path / "arch.yaml"
    import yaml

    arch.write_text(yaml.safe_dump(tiny_arch.to_dict()))
    code, out = _run(
        [
            "simulate",
            "--arch",
            str(arch),
            "--workload",
            str(cas),
            "--mapping",
            str(mfile),
            "--json",
            "--trace",
            str(tmp_path / "t.json"),
        ]
    )
    assert code == 0
    d = json.loads(out)
    assert d["dataflow"] == "mapping"
    assert d["cycles"] > 0
    assert (tmp_path / "t.json").exists()


def test_unknown_dataflow_is_a_clean_error(capsys):
    assert main(["simulate", "--arch", "fusemax", "--workload", "mha", "--dataflow", "nope"]) == 2
    assert "unknown dataflow" in capsys.readouterr().err


@pytest.mark.parametrize("mapper", ["greedy", "mip"])
def test_map_lists_ranked_mappings_as_json(mapper):
    code, out = _run(
        [
            "map",
            "--arch",
            "fusemax",
            "--workload",
            "mha",
            "--set",
            "S=512",
            "--set",
            "B=1",
            "--set",
            "H=1",
            "--set",
            "D=64",
            "--set",
            "passes=3",
            "--mapper",
            mapper,
            "--objective",
            "edp",
            "--top",
            "2",
            "--json",
        ]
    )
    assert code == 0
    ranked = json.loads(out)
    assert 1 <= len(ranked) <= 2
    assert ranked[0]["objective"] <= ranked[-1]["objective"]
    assert ranked[0]["mapping"]["groups"][0]["einsums"]
