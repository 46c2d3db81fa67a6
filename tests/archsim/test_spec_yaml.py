"""YAML loading: safe_load semantics, syntax errors with line/column, duplicate keys."""

from __future__ import annotations

import pytest

from archsim.errors import ArchSpecError
from archsim.spec import Architecture, load_arch

GOOD = """\
name: toy
kind: spatial
clock: {core_hz: 1.0e+9}
levels:
  - {name: DRAM, kind: dram, read_bw_bytes_per_s: 64.0e+9}
  - {name: GLB, kind: sram, capacity_bytes: 1048576, read_bw_bytes_per_cycle: 256}
compute:
  - {name: pe, mesh: [4, 4], ops_per_cycle_per_pe: {mac: 1}}
"""


def test_yaml_file_loads_and_derives(tmp_path):
    path = tmp_path / "toy.yaml"
    path.write_text(GOOD)
    arch = load_arch(str(path))
    assert arch.dram.read_bw_bytes_per_cycle == pytest.approx(64.0)
    assert Architecture.from_yaml(path) == arch


def test_yaml_syntax_error_reports_line_and_column(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text("name: toy\nkind: [spatial\nclock: 3\n")
    with pytest.raises(ArchSpecError, match="YAML syntax error") as info:
        Architecture.from_yaml(path)
    assert "line " in str(info.value.path)
    assert "col " in str(info.value.path)


def test_duplicate_key_is_an_error_with_its_line():
    text = GOOD + "kind: gpu\n"
    with pytest.raises(ArchSpecError, match="duplicate key 'kind'") as info:
        Architecture.from_yaml_text(text)
    assert "line 9" in str(info.value.path)


def test_yaml_anchors_and_merges_are_allowed():
    text = GOOD.replace("  - {name: GLB, kind: sram,", "  - &glb {name: GLB, kind: sram,")
    text = text.replace(
        "compute:\n", "  - {<<: *glb, name: GLB2, capacity_bytes: 2048}\ncompute:\n"
    )
    arch = Architecture.from_yaml_text(text)
    assert arch.level("GLB2").capacity_bytes == 2048
    assert arch.level("GLB2").read_bw_bytes_per_cycle == 256


def test_top_level_must_be_a_mapping():
    with pytest.raises(ArchSpecError, match="mapping"):
        Architecture.from_yaml_text("- 1\n- 2\n")


def test_python_tags_are_rejected_by_safe_loading():
    with pytest.raises(ArchSpecError):
        Architecture.from_yaml_text("name: !!python/object/apply:os.system ['true']\n")


def test_missing_file_and_unknown_preset():
    with pytest.raises(ArchSpecError, match="no architecture preset or file") as info:
        load_arch("no_such_arch")
    assert "h100" in str(info.value.expected)
    with pytest.raises(ArchSpecError, match="cannot read"):
        Architecture.from_yaml("/nonexistent/dir/x.yaml")


def test_error_from_a_file_names_the_file(tmp_path):
    path = tmp_path / "neg.yaml"
    path.write_text(GOOD.replace("read_bw_bytes_per_cycle: 256", "read_bw_bytes_per_cycle: -4"))
    with pytest.raises(ArchSpecError) as info:
        load_arch(str(path))
    assert info.value.path == "levels[1].read_bw_bytes_per_cycle"
    assert "neg.yaml" in str(info.value)


def test_the_documented_example_spec_is_valid():
    import archsim.spec

    doc = archsim.spec.__doc__ or ""
    block = doc.split("A minimal spec (YAML)::", 1)[1].split("\n\n", 2)[1]
    text = "\n".join(line[4:] for line in block.splitlines())
    arch = Architecture.from_yaml_text(text)
    assert arch.level("RF").capacity_bytes == 32 * 256
    assert arch.peak_ops_per_cycle("mac") == 256
