"""Every ``archsim`` sub-command's ``--help`` shows examples that parse, and no internals.

The walk goes through :func:`archsim.cli.main` exactly as a user types ``archsim ... --help``,
down every level of sub-commands (``archsim workload show --help``).
"""

from __future__ import annotations

import argparse
import importlib.metadata
import re
from pathlib import Path

import pytest

from archsim.cli import COMMANDS, build_parser, main
from archsim.cli._help import commands_of, examples_in
from tests.test_user_facing_citations import INTERNAL

REPO = Path(__file__).resolve().parents[2]

#: reST / Markdown markup that must not reach a terminal
MARKUP = re.compile(r"``|\*\*|:(class|func|mod|meth|attr|data):|`[^`\s][^`]*`")

#: examples cheap enough to run for real here (seconds, no files written); each must be an
#: example of some help page, so that the help cannot drop them unnoticed
RUN = (
    ("workload", "list"),
    ("workload", "check", "examples/cascades/sigmoid.ein", "--json"),
    ("workload", "verify", "mha"),
    ("simulate", "--arch", "hbm_pim", "--workload", "decode", "--set", "Skv=32768", "--json"),
    ("simulate", "--arch", "tpu_like", "--workload", "gemm", "--set", "M=512", "--set", "N=512",
     "--set", "K=512"),
    ("sweep", "examples/sweep_fusemax.yaml", "--out", "runs/fusemax", "--dry-run"),
)  # fmt: skip


def _help(argv: list[str], capsys: pytest.CaptureFixture[str]) -> str:
    with pytest.raises(SystemExit) as exit_:
        main([*argv, "--help"])
    assert exit_.value.code == 0, argv
    return capsys.readouterr().out


def _commands() -> list[list[str]]:
    """Every command path: ``[workload]``, ``[workload, show]``, ``[simulate]``, ..."""
    out: list[list[str]] = []

    def walk(prefix: list[str], parser: argparse.ArgumentParser) -> None:
        for name in commands_of(parser):
            path = [*prefix, name]
            out.append(path)
            sub = next(
                a for a in parser._actions if isinstance(a, argparse._SubParsersAction)
            ).choices[name]
            walk(path, sub)

    walk([], build_parser())
    return out


COMMAND_PATHS = _commands()


def test_the_walk_reaches_every_listed_command() -> None:
    listed = {name for cmds in COMMANDS.values() for name, _h in cmds}
    assert listed <= {p[0] for p in COMMAND_PATHS}
    assert ["workload", "show"] in COMMAND_PATHS
    assert ["arch", "check"] in COMMAND_PATHS


@pytest.mark.parametrize("path", COMMAND_PATHS, ids=" ".join)
def test_help_has_examples_that_parse(path: list[str], capsys, monkeypatch) -> None:
    monkeypatch.chdir(REPO)
    text = _help(path, capsys)
    found = examples_in(text)
    assert found, f"archsim {' '.join(path)} --help has no examples: section"
    for words in found:
        assert words[: len(path)] == path, f"an example of {path} runs another command: {words}"
        args = build_parser(words).parse_args(words)  # exits (test error) if it does not parse
        assert callable(getattr(args, "func", None)), words
        for word in words:  # files named by an example exist (outputs are --out/--plot/...)
            if word.startswith(("examples/", "validation/", "archsim/presets/")):
                assert (REPO / word).exists(), f"example names a missing file: {word}"


@pytest.mark.parametrize("path", [[], *COMMAND_PATHS], ids=lambda p: " ".join(p) or "archsim")
def test_help_shows_no_markup_and_no_internal_notes(path: list[str], capsys) -> None:
    """No reST markup; no issue number, local reference folder or design note (the rule of
    tests/test_user_facing_citations.py)."""
    text = _help(path, capsys)
    assert not MARKUP.search(text), MARKUP.search(text)
    assert not INTERNAL.search(text), INTERNAL.search(text)


def test_simulate_help_lists_registered_choices(capsys) -> None:
    from mappings._registry import list_dataflows
    from workloads.library import list_workloads

    text = _help(["simulate"], capsys)
    listed = {
        line.split()[0] for line in text.splitlines() if line.startswith("  ") and line[2] != " "
    }
    assert set(list_dataflows()) <= listed
    assert set(list_workloads()) <= listed
    # knobs as each dataflow reports them, and the auto order per preset
    assert re.search(r"fusemax\s+FuseMax .*Knobs:\s+m0, p0, q_group", " ".join(text.split()))
    assert re.search(r"split_kv .*Knobs: splits\.", " ".join(text.split()))
    assert re.search(r"a100, h100, h200\s+split_kv > ", text)
    assert "listed by the error" not in text  # every dataflow's knobs were found
    # a workload's parameters with their defaults
    assert re.search(r"gemm\s+matrix multiply .*\[M=4096 N=4096 K=4096", " ".join(text.split()))


def test_map_help_lists_every_mapper(capsys) -> None:
    from mappings._mappers import list_mappers

    text = _help(["map"], capsys)
    section = text.split("mappers (--mapper NAME):", 1)[1]
    assert {line.split()[0] for line in section.splitlines()[1:6]} == set(list_mappers())


def test_an_unknown_mapper_is_refused_with_the_list(capsys) -> None:
    argv = ["map", "--arch", "tpu_like", "--workload", "gemm", "--mapper", "nope"]
    assert main(argv) == 2
    assert "unknown mapper" in capsys.readouterr().err


def test_cheap_examples_are_listed_and_run(capsys, monkeypatch, tmp_path) -> None:
    monkeypatch.chdir(REPO)
    everything = [tuple(w) for p in COMMAND_PATHS for w in examples_in(_help(p, capsys))]
    for argv in RUN:
        assert argv in everything, f"not an example any more: archsim {' '.join(argv)}"
    for argv in RUN:
        words = list(argv)
        if words[0] == "sweep":  # the dry run reads the store: point it at an empty folder
            words[words.index("--out") + 1] = str(tmp_path / "store")
        assert main(words) == 0, argv
        assert capsys.readouterr().out.strip(), argv


def test_version_is_the_installed_package_version(capsys) -> None:
    with pytest.raises(SystemExit) as exit_:
        main(["--version"])
    assert exit_.value.code == 0
    assert capsys.readouterr().out.strip() == f"archsim {importlib.metadata.version('archsim')}"
