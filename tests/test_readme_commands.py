"""Every command in the README's ```bash blocks runs as pasted and exits 0, and so does
every ```python block (after the commands, which write the sweep it loads).

The commands run in order (later ones read what earlier ones wrote: a sweep, then its Pareto
front), with bash, in a scratch directory that links the repository's folders, so the
files they write land there and not in the checkout. Only the commands in ``SKIPPED`` are
left out, each for the reason given. The README writes every command at settings fast
enough for CI (``--fast`` reproductions, analytic engines where a run is large), so no
command is rewritten: ``SUBSTITUTIONS`` is the place for one that must be, and it is empty.
GPU-only commands live in ```console blocks under "on a GPU machine", never in ```bash.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
#: Documents whose commands run, in this order (examples/README.md reads the README's sweep).
DOCS = (README, ROOT / "examples" / "README.md")

#: Command prefix -> why the test does not run it.
SKIPPED: dict[str, str] = {
    "pip install": "installs the package; the test already runs inside the installed checkout",
    "python -m pytest": "the test suite itself (CI runs it; running it from a test would recurse)",
}

#: Command as written in the README -> what the test runs instead (and why, in a comment).
SUBSTITUTIONS: dict[str, str] = {}

#: Files the README's commands say they write (relative to where they run).
WRITES = (
    "demo_out/demo.png",
    "runs/fusemax/front.png",
    "check.png",
    "merged.json",
    "best.yaml",
    "reproduce_out/hydragen/summary.json",
    "lean_out/summary.json",
)


def tracked_top_level() -> list[str]:
    """The checkout's tracked top-level files and folders (what a fresh clone has); the
    commands read them, so they are linked into the scratch directory. Ignored outputs
    (``runs/``, ``reproduce_out/``) are not, so the commands write their own."""
    out = subprocess.run(
        ["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout
    return sorted({line.split("/", 1)[0] for line in out.splitlines() if line})


def fenced(text: str, lang: str) -> list[str]:
    """The bodies of the fenced blocks of ``text`` tagged ``lang``."""
    return re.findall(rf"^```{lang}\n(.*?)^```", text, flags=re.S | re.M)


def bash_blocks(text: str) -> list[str]:
    """The bodies of the ```bash fenced blocks of ``text``."""
    return fenced(text, "bash")


def commands(text: str) -> list[str]:
    """One entry per command line of the ```bash blocks (backslash continuations joined)."""
    out: list[str] = []
    for block in bash_blocks(text):
        for line in block.replace("\\\n", " ").splitlines():
            if line.strip() and not line.lstrip().startswith("#"):
                out.append(line.strip())
    return out


def skip_reason(command: str) -> str | None:
    """Why ``command`` is not run, or None."""
    for prefix, reason in SKIPPED.items():
        if command.startswith(prefix):
            return reason
    return None


def test_the_readme_has_commands_and_the_parser_finds_them():
    cmds = commands(README.read_text())
    assert len(cmds) >= 20
    # a continuation line is joined to its command, never run on its own
    assert not any(c.startswith("--") for c in cmds)
    assert any(c.startswith("archsim compare") and "--out merged.json" in c for c in cmds)


def test_every_skip_and_substitution_is_used():
    cmds = commands(README.read_text())
    for prefix in SKIPPED:
        assert any(c.startswith(prefix) for c in cmds), f"stale skip {prefix!r}"
    for command in SUBSTITUTIONS:
        assert command in cmds, f"stale substitution {command!r}"


def test_no_placeholder_or_gpu_command_in_a_bash_block():
    for c in commands(README.read_text()):
        # `a | b | c` as a list of choices, `[--opt]`, `my_*.yaml` files that do not exist
        assert not re.search(r"\|\s*[\w-]+\s*\|", c), c
        assert not re.search(r"\[--", c), c
        assert "my_" not in c, c
        assert "validation.harness" not in c, f"needs a GPU; put it in a console block: {c}"


def test_every_readme_command_runs(tmp_path):
    linked = tracked_top_level()
    assert {"archsim", "examples", "validation"} <= set(linked)
    for name in linked:
        (tmp_path / name).symlink_to(ROOT / name)
    env = {k: v for k, v in os.environ.items() if k != "MPLBACKEND"}  # as a user's shell
    failures = []
    ran = 0
    for command in [c for doc in DOCS for c in commands(doc.read_text())]:
        if skip_reason(command):
            continue
        run = SUBSTITUTIONS.get(command, command)
        proc = subprocess.run(
            ["bash", "-o", "pipefail", "-c", run],
            cwd=tmp_path,
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
        )
        ran += 1
        if proc.returncode != 0:
            failures.append(f"$ {run}\nexit {proc.returncode}\n{proc.stderr[-1500:]}")
    for block in fenced(README.read_text(), "python"):
        proc = subprocess.run(
            [sys.executable, "-c", block],
            cwd=tmp_path,
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
        )
        ran += 1
        if proc.returncode != 0:
            failures.append(f">>> {block}\nexit {proc.returncode}\n{proc.stderr[-1500:]}")
    assert not failures, "\n\n".join(failures)
    assert ran >= 20
    missing = [f for f in WRITES if not (tmp_path / f).is_file()]
    assert not missing, f"commands did not write {missing}"


@pytest.mark.parametrize(
    ("command", "reason"),
    [
        ('pip install -e ".[test]"', SKIPPED["pip install"]),
        ('pip install -q -e ".[test]" && python -m pytest -q', SKIPPED["pip install"]),
        ("python -m pytest tests/validation/test_accuracy.py -s -q", SKIPPED["python -m pytest"]),
        ("archsim demo", None),
    ],
)
def test_skip_rules(command, reason):
    assert skip_reason(command) == reason
