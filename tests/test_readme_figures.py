"""The README's generated figures are what ``docs/readme_figures.py`` computes today.

Each ``<!-- generated: NAME -->`` block is rerendered (the deterministic, fast ones; the
slow fusion sweep is rerendered only by the script) and must equal the README's text.
If this fails after a change to a model, run ``python docs/readme_figures.py`` and commit
the README with the change.
"""

from __future__ import annotations

import difflib
import importlib.util
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _load():
    spec = importlib.util.spec_from_file_location("readme_figures", ROOT / "docs/readme_figures.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


rf = _load()
CHECKED = [name for name, section in rf.SECTIONS.items() if section.checked]


def test_every_section_has_one_block_and_every_block_a_section():
    found = rf.blocks(rf.README.read_text())
    assert set(found) == set(rf.SECTIONS)


def test_the_slow_blocks_are_few_and_named():
    assert sorted(set(rf.SECTIONS) - set(CHECKED)) == ["fusion-fusemax", "h200"]


@pytest.mark.parametrize("name", CHECKED)
def test_generated_block_is_current(name):
    committed = rf.blocks(rf.README.read_text())[name]
    fresh = rf.SECTIONS[name].render()
    diff = "".join(
        difflib.unified_diff(
            committed.splitlines(True), fresh.splitlines(True), "README.md", "generated"
        )
    )
    assert committed == fresh, f"run `python docs/readme_figures.py --only {name}`:\n{diff}"


def test_apply_rewrites_only_block_bodies():
    text = (
        "intro 1.0\n<!-- generated: a -->\nold a\n<!-- end generated -->\nmiddle 2.0\n"
        "<!-- generated: b -->\nold b\n<!-- end generated -->\n"
    )
    new = rf.apply(text, {"a": "new a\n"})
    assert new == text.replace("old a", "new a")
    with pytest.raises(KeyError, match="c"):
        rf.apply(text, {"c": "x\n"})


def test_a_block_named_twice_is_refused():
    text = "<!-- generated: a -->\nx\n<!-- end generated -->\n" * 2
    with pytest.raises(ValueError, match="twice"):
        rf.blocks(text)


def test_check_mode_reports_a_stale_block(tmp_path, monkeypatch, capsys):
    readme = tmp_path / "README.md"
    # a fast block (the h200 one runs the event engine over 339 records, ~25 s a render)
    readme.write_text("<!-- generated: variant -->\nstale\n<!-- end generated -->\n")
    monkeypatch.setattr(rf, "README", readme)
    assert rf.main(["--check", "--only", "variant"]) == 1
    assert "-stale" in capsys.readouterr().out
    assert readme.read_text().count("stale") == 1  # --check never writes
    assert rf.main(["--only", "variant"]) == 0
    assert "crossover" in readme.read_text()
    assert "stale" not in readme.read_text()
    assert rf.main(["--check", "--only", "variant"]) == 0


def test_reproduction_gates_follow_the_committed_checks():
    import json

    data = json.loads(rf.REPRO_DATA.read_text())
    for name, _what, _paper, _model, selectors in rf.REPRO_ROWS:
        gate = rf._gate(data[name], selectors)
        if selectors is None:
            assert gate == "reported"
            continue
        picked = [
            c for s in selectors for c in data[name]["checks"] if s.lower() in c["name"].lower()
        ]
        assert gate.split(" / ")[0].startswith("pass" if picked[0]["ok"] else "miss")


def test_refresh_reproductions_stores_each_summary_without_tables(tmp_path, monkeypatch):
    import json

    import validation.reproduce as rp

    def toy(fast: bool = False) -> rp.Reproduction:
        assert fast is False  # the README quotes full runs
        return rp.Reproduction(
            name="toy",
            tables={"main": [{"S": 1024, "speedup": 2.0}]},
            summary={"speedup_mean": 2.0, "undefined": float("nan")},
            checks=(rp.Check("mean speedup", 2.0, 2.1, True, "±15%"),),
        )

    monkeypatch.setattr(rp, "REPRODUCTIONS", {"toy": toy})
    monkeypatch.setattr(rf, "REPRO_DATA", tmp_path / "repro.json")
    rf.refresh_reproductions()
    data = json.loads((tmp_path / "repro.json").read_text())
    assert set(data) == {"_meta", "toy"}
    assert "tables" not in data["toy"]
    assert data["toy"]["speedup_mean"] == 2.0
    assert data["toy"]["undefined"] is None
    assert data["toy"]["checks"][0]["ok"] is True
    assert data["_meta"]["command"] == "python docs/readme_figures.py --refresh-reproductions"


def test_the_using_it_table_shows_commands_of_the_block():
    text = rf.README.read_text()
    using = text.split("## Using it", 1)[1].split("<!-- generated: using-it -->", 1)[0]
    assert rf.SIM_FUSEMAX + "\n" in using
    assert rf.SIM_DECODE + " --json\n" in using


def test_every_reproduction_has_a_headline_row_and_committed_data():
    import json

    from validation.reproduce import REPRODUCTIONS

    data = json.loads(rf.REPRO_DATA.read_text())
    rows = {name for name, *_ in rf.REPRO_ROWS}
    assert rows == set(REPRODUCTIONS)
    assert set(REPRODUCTIONS) <= set(data)
