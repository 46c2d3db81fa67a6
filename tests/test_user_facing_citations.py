"""User-facing files cite what a reader can follow: papers, datasheets, artifact repositories.

Not the team's own notes: a path into the developers' local reference folder, their design
notes, or an internal issue number means nothing to someone who cloned the repository.
(``archsim ... --help`` is held to the same rule by tests/archsim/test_cli_help.py.)
"""

from __future__ import annotations

import re
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

#: what a user cannot follow
INTERNAL = re.compile(
    r"shared/reference"
    r"|(?<![\w./])reference/(papers/|[\w-]+\.md)"  # the same folder, named relative to it
    r"|\b(DESIGN|STYLE)\.md|\b(paper_targets|FA_NOTES)\.md|shared/seeds"
    r"|/work/"
    r"|\bissues?[ -]?#?\d+",
    re.IGNORECASE,
)

#: lines waiting for their owners to cite the published source (file, fragment); the test
#: fails on any other line.
PENDING: set[tuple[str, str]] = set()


def user_facing_files() -> list[Path]:
    """README, docs, examples, architecture presets and the data sets' READMEs."""
    files = [REPO / "README.md", *sorted((REPO / "docs").rglob("*.md"))]
    files += [
        p
        for p in sorted((REPO / "examples").rglob("*"))
        if p.is_file() and p.suffix in (".md", ".yaml", ".yml", ".ein", ".ipynb", ".py", ".txt")
    ]
    files += sorted((REPO / "archsim" / "presets").glob("*.yaml"))
    files += sorted(REPO.glob("validation/**/README.md"))
    files += sorted(REPO.glob("models/**/*.yaml")) + sorted(REPO.glob("models/**/*.md"))
    return [f for f in files if f.exists()]


def _pending(rel: str, line: str) -> bool:
    return any(rel == f and text in line for f, text in PENDING)


def test_user_facing_files_name_no_internal_notes() -> None:
    files = user_facing_files()
    assert REPO / "docs" / "cascade_language.md" in files
    assert any(f.parent.name == "presets" for f in files)
    found = []
    for path in files:
        rel = path.relative_to(REPO).as_posix()
        for n, line in enumerate(path.read_text(errors="replace").splitlines(), 1):
            if INTERNAL.search(line) and not _pending(rel, line):
                found.append(f"{rel}:{n}: {line.strip()[:120]}")
    assert not found, "cite the published source instead:\n" + "\n".join(found)


def test_the_pattern_catches_what_it_must() -> None:
    for text in (
        "see `shared/reference/hardware.md`",
        "(FuseMax Sec. 3; reference/fusemax_cascades.md)",
        "`reference/papers/fgattn/NOTES.md`",
        "Read /work/shared/DESIGN.md first",
        "the schema of issue 5",
        "the issue-5 schema",
        "Issue #12",
    ):
        assert INTERNAL.search(text), text
    for text in (
        "Nayak et al., MICRO'24, arXiv:2406.10491, Sec. 3",
        "github.com/FPSG-UIUC/micro24-fusemax-artifact, commit f543beb",
        "the reference executor proves every cascade",
    ):
        assert not INTERNAL.search(text), text
