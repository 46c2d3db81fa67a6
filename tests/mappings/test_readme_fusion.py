"""The README's "Searching whole-cascade mappings" block runs as pasted, and the figures the
text quotes for ``tpu_like`` are what the commands print."""

from __future__ import annotations

import re
import shlex
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _section() -> str:
    text = (ROOT / "README.md").read_text()
    return text.split("## Searching whole-cascade mappings", 1)[1].split("\n## ", 1)[0]


def _run(command: str, cwd: Path) -> str:
    argv = shlex.split(command)
    assert argv[0] == "archsim"
    out = subprocess.run(
        [sys.executable, "-m", "archsim", *argv[1:]],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert out.returncode == 0, out.stderr
    return out.stdout


def test_readme_fusion_block_runs_and_its_figures_hold(tmp_path):
    section = _section()
    block = section.split("```bash\n", 1)[1].split("```", 1)[0]
    outs = [_run(line, tmp_path) for line in block.splitlines() if line.strip()]
    assert (tmp_path / "best.yaml").exists()
    mapped = float(re.search(r"#1\s+cycles ([\d,]+)", outs[1]).group(1).replace(",", ""))
    simulated = outs[2]
    quoted_best, quoted_recipe = re.search(
        r"([\d.]+) M cycles against the recipe's ([\d.]+) M", section
    ).groups()
    assert round(mapped / 1e6, 2) == float(quoted_best)
    recipe = _run(
        "archsim simulate --arch tpu_like --workload mha --set S=4096 --set H=16 "
        "--dataflow fusemax --engine analytic",
        tmp_path,
    )
    cycles = float(re.search(r"cycles\s+([\d,]+)", recipe).group(1).replace(",", ""))
    assert round(cycles / 1e6, 2) == float(quoted_recipe)
    assert "cycles" in simulated
