"""``archsim arch list|show|check``: output and exit codes."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from archsim.cli import main
from archsim.spec import list_presets


def test_arch_list_prints_one_line_per_preset(capsys):
    assert main(["arch", "list"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert [line.split()[0] for line in lines] == list_presets()
    assert any("989 TFLOP/s" in line for line in lines if line.startswith("h100"))


def test_arch_show_summarizes_levels_units_and_peaks(capsys):
    assert main(["arch", "show", "h100"]) == 0
    out = capsys.readouterr().out
    for text in (
        "HBM",
        "L2",
        "SMEM",
        "tensor",
        "wgmma_bf16 989.4 TFLOP/s",
        "1.83 GHz",
        "power cap 700 W",
    ):
        assert text in out


def test_arch_show_json_is_the_full_dict(capsys):
    assert main(["arch", "show", "fusemax", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["name"] == "fusemax"
    assert data["compute"][0]["ops_per_cycle"]["mac"] == 65536


def test_arch_check_good_file_exits_zero(capsys, tmp_path):
    from archsim.spec import load_arch

    path = tmp_path / "mine.yaml"
    path.write_text(json.dumps(load_arch("hbm_pim").to_dict()))  # JSON is YAML
    assert main(["arch", "check", str(path)]) == 0
    assert "ok:" in capsys.readouterr().out


def test_arch_check_bad_file_exits_two_with_the_path(capsys, tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text(
        "name: x\nkind: spatial\nclock: {core_hz: 1.0e+9}\nlevels:\n"
        "  - {name: D, kind: dram, read_bw_bytes_per_cycle: -4}\n"
        "compute: [{name: u, ops_per_cycle: {mac: 1}}]\n"
    )
    assert main(["arch", "check", str(path)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: levels[0].read_bw_bytes_per_cycle")
    assert "expected bytes/cycle in [1e-09, 1e+12]" in err
    assert "got -4" in err


def test_arch_check_syntax_error_and_unknown_name(capsys, tmp_path):
    path = tmp_path / "broken.yaml"
    path.write_text("name: [x\n")
    assert main(["arch", "check", str(path)]) == 2
    assert "line" in capsys.readouterr().err
    assert main(["arch", "show", "no_such_machine"]) == 2
    assert "no architecture preset or file" in capsys.readouterr().err


def test_cli_error_has_no_traceback(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text("name: x\nkind: gpu\n")
    proc = subprocess.run(
        [sys.executable, "-m", "archsim", "arch", "check", str(path)],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr
    assert proc.stderr.startswith("error: ")


def test_arch_list_shows_node_and_area(capsys):
    assert main(["arch", "list"]) == 0
    rows = {line.split()[0]: line for line in capsys.readouterr().out.splitlines()}
    assert "5 nm" in rows["h100"]
    assert "814 mm^2" in rows["h100"]
    assert "45 nm" in rows["fusemax"]


@pytest.mark.parametrize("action", ["list", "show", "check"])
def test_arch_help_pages_end_with_examples_that_parse(capsys, action):
    from archsim.cli import build_parser
    from archsim.cli._help import examples_in

    with pytest.raises(SystemExit):
        main(["arch", action, "--help"])
    commands = examples_in(capsys.readouterr().out)
    assert commands
    assert all(c[:2] == ["arch", action] for c in commands)
    parser = build_parser()
    for words in commands:
        parser.parse_args(words)
        assert main(words) == 0, words
