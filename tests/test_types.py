"""Static types: mypy, configured in pyproject.toml (``[tool.mypy]``), finds no error.

Every module of the packages is checked: :data:`NOT_YET_CLEAN` is empty, so this test is
plain ``python -m mypy``. A file listed there would still be analysed where others import it
(``--follow-imports=silent``), only its own errors would go unreported.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

#: The packages ``[tool.mypy] packages`` names (checked here file by file).
PACKAGES = ("archsim", "workloads", "mappings", "dse", "validation", "models")

#: Files with type errors still to fix (paths from the repository root): none.
NOT_YET_CLEAN: frozenset[str] = frozenset()


def _mypy(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "mypy", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def _checked_files() -> list[str]:
    files = sorted(
        p.relative_to(ROOT).as_posix() for pkg in PACKAGES for p in (ROOT / pkg).rglob("*.py")
    )
    return [f for f in files if f not in NOT_YET_CLEAN]


def test_the_packages_have_no_type_errors():
    files = _checked_files()
    assert len(files) > 100  # the packages were found
    proc = _mypy("--follow-imports=silent", *files)
    assert proc.returncode == 0, f"mypy found type errors:\n{proc.stdout}{proc.stderr}"


def test_not_yet_clean_lists_only_existing_files():
    # a renamed or deleted file must leave the list, or it would hide nothing and rot
    missing = sorted(f for f in NOT_YET_CLEAN if not (ROOT / f).is_file())
    assert not missing


def test_the_configuration_reports_errors_in_unannotated_code_and_stale_ignores(tmp_path):
    # check_untyped_defs: the body of a function without annotations is checked too;
    # warn_unused_ignores and ignore-without-code: a stale or bare ignore is an error
    snippet = (
        "def f():\n"
        "    return 1 + 'a'\n"
        "x: int = 1  # type: ignore[assignment]\n"
        "y: str = 1  # type: ignore\n"
    )
    bad = tmp_path / "bad.py"
    bad.write_text(snippet)
    proc = _mypy(str(bad))
    assert proc.returncode == 1, proc.stdout + proc.stderr
    out = proc.stdout
    assert "[operator]" in out  # 1 + 'a' inside the unannotated f
    assert "[unused-ignore]" in out  # x needs no ignore
    assert "[ignore-without-code]" in out  # y's ignore names no error code
