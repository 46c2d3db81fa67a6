"""The README's "Your own attention variant" block runs as pasted (every command exits 0)."""

from __future__ import annotations

import shlex
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _commands() -> list[str]:
    text = (ROOT / "README.md").read_text()
    section = text.split("## Your own attention variant", 1)[1].split("\n## ", 1)[0]
    block = section.split("```bash\n", 1)[1].split("```", 1)[0]
    return [line for line in block.splitlines() if line.strip()]


def test_the_section_has_commands_on_three_architectures():
    archs = {c.split("--arch ")[1].split()[0] for c in _commands() if "--arch " in c}
    assert {"fusemax", "h100", "flat"} <= archs


@pytest.mark.parametrize("command", _commands())
def test_readme_variant_command_runs(command):
    argv = shlex.split(command)
    assert argv[0] == "archsim"
    out = subprocess.run(
        [sys.executable, "-m", "archsim", *argv[1:]],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert out.returncode == 0, out.stderr
    if argv[1] == "crossover":
        assert "crossover: linear is faster from S=4096 on" in out.stdout
