"""Strict YAML loading (archsim.yamlio): duplicate keys, alias bombs, nesting, encodings."""

from __future__ import annotations

import subprocess
import sys
import time

import pytest
import yaml

from archsim.errors import ArchsimError, MappingError, WorkloadError
from archsim.spec import load_arch
from archsim.yamlio import MAX_DEPTH, StrictYAMLError, load_yaml, safe_load

#: the classic "billion laughs": 9 levels of 9 aliases = 9^9 (387 M) strings from ~600 bytes
BOMB = "a: &a [lol, lol, lol, lol, lol, lol, lol, lol, lol]\n" + "".join(
    f"{b}: &{b} [{', '.join([f'*{a}'] * 9)}]\n" for a, b in zip("abcdefgh", "bcdefghi", strict=True)
)


def test_safe_load_equals_yaml_safe_load_on_ordinary_documents():
    text = "a: 1\nb: [x, {c: 2.5}]\nd: &anchor {e: null}\nf: *anchor\n"
    assert safe_load(text) == yaml.safe_load(text)


def test_duplicate_key_is_a_yaml_error_with_its_line():
    with pytest.raises(yaml.YAMLError, match="duplicate key 'b'") as info:
        safe_load("a: 1\nb: 2\nc: {x: 1}\nb: 3\n")
    assert info.value.problem_mark.line == 3


def test_alias_bomb_is_refused_in_well_under_a_second():
    assert len(BOMB) < 700
    start = time.perf_counter()
    with pytest.raises(StrictYAMLError, match="alias"):
        safe_load(BOMB)
    assert time.perf_counter() - start < 1.0


def test_moderate_aliasing_is_allowed():
    text = "base: &b {x: 1, y: [1, 2, 3]}\n" + "".join(f"k{i}: *b\n" for i in range(100))
    assert safe_load(text)["k99"] == {"x": 1, "y": [1, 2, 3]}


def test_nesting_is_bounded_without_recursion_error():
    ok = "a: " + "[" * (MAX_DEPTH - 1) + "]" * (MAX_DEPTH - 1) + "\n"
    assert safe_load(ok) is not None
    with pytest.raises(StrictYAMLError, match=f"nesting deeper than {MAX_DEPTH}"):
        safe_load("a: " + "[" * 100_000 + "]" * 100_000 + "\n")
    with pytest.raises(StrictYAMLError, match="nesting"):
        safe_load("a:\n" + "".join("  " * i + f"k{i}:\n" for i in range(1, 200)))


def test_bytes_must_be_utf8_text():
    assert safe_load("name: caf\u00e9\n".encode()) == {"name": "caf\u00e9"}
    with pytest.raises(StrictYAMLError, match="not a UTF-8 text file: byte 0xff at offset 6"):
        safe_load(b"name: \xff\xfe")
    with pytest.raises(StrictYAMLError, match="NUL byte"):
        safe_load(b"name: a\x00b\n")


def test_load_yaml_raises_the_callers_error_class_with_file_line_and_column(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("a: 1\na: 2\n")
    with pytest.raises(WorkloadError, match="duplicate key 'a'") as info:
        load_yaml(path, error=WorkloadError)
    assert info.value.path == f"{path}: line 2, col 1"
    binary = tmp_path / "b.yaml"
    binary.write_bytes(bytes(range(256)))
    with pytest.raises(MappingError, match="UTF-8"):
        load_yaml(binary, error=MappingError)
    with pytest.raises(ArchsimError, match="cannot read YAML file"):
        load_yaml(tmp_path / "missing.yaml", error=ArchsimError)
    assert load_yaml("x: [1, 2]", is_text=True) == {"x": [1, 2]}


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (BOMB.encode(), "alias"),
        (b"name: " + b"[" * 5000 + b"]" * 5000, "nesting"),
        (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", "UTF-8"),
    ],
)
def test_architecture_files_refuse_bombs_nesting_and_binary(tmp_path, content, message):
    path = tmp_path / "arch.yaml"
    path.write_bytes(content)
    with pytest.raises(ArchsimError, match=message) as info:
        load_arch(str(path))
    assert str(path) in str(info.value)


def test_yamlio_imports_without_pydantic():
    code = (
        "import sys, archsim.yamlio; "
        "assert 'pydantic' not in sys.modules, sorted(m for m in sys.modules if 'pyd' in m)"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
