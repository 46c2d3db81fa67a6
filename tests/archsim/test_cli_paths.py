"""An output or input path the user names that cannot be used is a one-line error naming the
path (exit 2), never a traceback, whichever command meets it."""

from pathlib import Path

import pytest

from archsim.cli import main

DATA = Path(__file__).resolve().parents[2] / "validation" / "data"


@pytest.mark.parametrize(
    "argv",
    [
        ["simulate", "--arch", "fusemax", "--workload", "mha", "--set", "S=512",
         "--trace", "{missing}/x.json"],
        ["validate", str(DATA / "h100_check.jsonl"), "--quiet", "--json", "{missing}/p.jsonl"],
        ["reproduce", "lean", "--fast", "--out", "{file}"],
    ],
)  # fmt: skip
def test_unusable_path_is_a_one_line_error(argv, tmp_path, capsys):
    afile = tmp_path / "afile"
    afile.write_text("x")
    args = [a.format(missing=tmp_path / "nodir", file=afile) for a in argv]
    assert main(args) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1, err
    assert err[0].startswith("error: "), err
    assert str(tmp_path) in err[0]
