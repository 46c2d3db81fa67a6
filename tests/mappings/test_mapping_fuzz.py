"""Fuzz mapping files through ``archsim simulate --mapping FILE`` (hypothesis).

Seeds are real mappings: what ``simulate --save-mapping`` writes for mha on ``fusemax`` and on
``tpu_like`` at a small shape. One field is replaced by a value of the wrong kind (0, -1, a
bool, inf, nan, 1e30, text, a list ...), deleted, renamed, or joined by an unknown key; or
the file is damaged as text (a duplicated line, raw bytes, deep nesting). Whatever the input:
no traceback, exit 0 or 2, and a refusal names the field. Examples are derandomized.
"""

from __future__ import annotations

import contextlib
import copy
import io
import re
from datetime import timedelta
from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from archsim.cli import main
from archsim.errors import MappingError
from mappings import Mapping

SHAPE = ["--set", "S=256", "--set", "B=1", "--set", "H=2", "--set", "D=64"]
FUZZ = settings(
    max_examples=250,
    deadline=timedelta(seconds=5),
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)


def _cli(argv: list[str]) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            rc = main(argv)
        except SystemExit as exc:
            rc = int(exc.code or 0)
    return rc, out.getvalue(), err.getvalue()


def _simulate(arch: str, mapping: Path) -> tuple[int, str]:
    argv = ["simulate", "--arch", arch, "--workload", "mha", *SHAPE, "--engine", "analytic"]
    rc, _, err = _cli([*argv, "--mapping", str(mapping)])
    assert rc in (0, 2), err
    if rc == 2:
        assert err.startswith("error: "), err
    return rc, err


@pytest.fixture(scope="module")
def seeds(tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict]:
    """arch -> the mapping dict ``simulate --save-mapping`` wrote for it."""
    out = {}
    for arch in ("fusemax", "tpu_like"):
        f = tmp_path_factory.mktemp("seed") / f"{arch}.yaml"
        argv = ["simulate", "--arch", arch, "--workload", "mha", *SHAPE, "--engine", "analytic"]
        rc, _, err = _cli([*argv, "--save-mapping", str(f)])
        assert rc == 0, err
        out[arch] = yaml.safe_load(f.read_text())
    return out


def test_the_seed_mappings_simulate(seeds, tmp_path):
    for arch, data in seeds.items():
        f = tmp_path / f"{arch}.yaml"
        f.write_text(yaml.safe_dump(data))
        assert _simulate(arch, f) == (0, "")


def _paths(node: object, path: tuple = ()) -> list[tuple]:
    out = [path] if path else []
    if isinstance(node, dict):
        for k, v in node.items():
            out += _paths(v, (*path, k))
    elif isinstance(node, list):
        for i, v in enumerate(node):
            out += _paths(v, (*path, i))
    return out


_BAD = st.one_of(
    st.sampled_from([0, -1, True, False, None, [], {}, "x", 1.5, 1e30, 2**70, 10**7, "m"]),
    st.sampled_from([float("nan"), float("inf"), {"a": 1}, [1, 2], "\u0663", "DRAM"]),
    st.integers(),
    st.floats(),
    st.text(max_size=6),
)


_LOCATED = re.compile(r"\bgroups\b|\bsplits\b|m\.yaml")


@FUZZ
@given(data=st.data())
def test_a_mutated_mapping_is_simulated_or_refused_naming_the_field(seeds, tmp_path, data):
    arch = data.draw(st.sampled_from(sorted(seeds)))
    m = copy.deepcopy(seeds[arch])
    path = data.draw(st.sampled_from(_paths(m)))
    parent = m
    for k in path[:-1]:
        parent = parent[k]
    action = data.draw(st.sampled_from(["replace", "replace", "replace", "delete", "key"]))
    old = parent[path[-1]]
    if action == "delete":
        del parent[path[-1]]
    elif action == "key" and isinstance(parent, dict):
        new = data.draw(st.sampled_from(["zz_unknown", "m", "p", "x1", "DRAM"]))
        parent[new] = parent.pop(path[-1])  # a renamed key: unknown field, rank or level
        path = (*path[:-1], new)
    else:
        parent[path[-1]] = data.draw(_BAD)
        if type(parent[path[-1]]) is type(old):  # the right kind, other content
            action = "content"
    f = tmp_path / "m.yaml"
    f.write_text(yaml.safe_dump(m))
    rc, err = _simulate(arch, f)
    if rc == 2 and action in ("delete", "content"):  # what breaks may be another field
        assert _LOCATED.search(err), (path, err)  # (factors of m1 no longer cover it)
    elif rc == 2:
        names = [str(k) for k in path if isinstance(k, str)]
        assert any(n in err for n in names) or str(path[-1]) in err, (path, err)


@settings(FUZZ, max_examples=100)
@given(data=st.data())
def test_a_damaged_mapping_text_is_simulated_or_refused_naming_the_file(seeds, tmp_path, data):
    arch = data.draw(st.sampled_from(sorted(seeds)))
    text = bytearray(yaml.safe_dump(seeds[arch]).encode())
    for _ in range(data.draw(st.integers(1, 3))):
        pos = data.draw(st.integers(0, len(text)))
        piece = data.draw(
            st.one_of(
                st.binary(min_size=1, max_size=3),
                st.sampled_from(
                    [b"\n", b": ", b"- ", b"[", b"{", b"&a ", b"*a", b"!!python/int 1"]
                ),
                st.sampled_from([b"  ", b"\t", b"---\n", b"\x00", b"1e30", b"true"]),
            )
        )
        text[pos:pos] = piece
    f = tmp_path / "m.yaml"
    f.write_bytes(bytes(text))
    rc, err = _simulate(arch, f)
    if rc == 2:
        assert _LOCATED.search(err), err


@pytest.mark.parametrize(
    ("where", "value", "field"),
    [
        (("levels", 2, "temporal", "e"), 0, r"levels\.2\.temporal\.e: a loop factor .* got 0$"),
        (("levels", 2, "temporal", "e"), True, r"temporal\.e: .* an integer >= 1, got True$"),
        (("levels", 2, "temporal", "e"), 1e30, r"temporal\.e: .* at most 1099511627776, got"),
        (("levels", 2, "spatial", "p"), 2**70, r"spatial\.p: .* at most 1099511627776, got"),
        (("levels", 2, "spatial", "p"), "64", r"spatial\.p: .* got '64'$"),
        (("levels", 2, "spatial", "p"), float("nan"), r"spatial\.p: .* got nan$"),
        (("depth",), 10**9, r"groups\.0\.depth: depth must be at most 1024"),
        (("depth",), 0, r"groups\.0\.depth: depth must be an integer >= 1, got 0$"),
        (("levels", 0, "tempral"), {"h": 2}, r"levels\.0\.tempral: unknown field: .*'temporal'"),
        (("levels", 0, "level"), 5, r"levels\.0\.level: bad value: .*string, got 5$"),
    ],
)
def test_bad_factors_and_fields_name_their_path(seeds, tmp_path, where, value, field):
    m = copy.deepcopy(seeds["fusemax"])
    node = m["groups"][0]
    for k in where[:-1]:
        node = node[k]
    node[where[-1]] = value
    f = tmp_path / "m.yaml"
    f.write_text(yaml.safe_dump(m))
    with pytest.raises(MappingError, match=field):
        Mapping.from_yaml(f)
    assert _simulate("fusemax", f)[0] == 2


@pytest.mark.parametrize(
    ("value", "expected"),
    [(0, ">= 1"), (True, "got True"), (2**41, "at most"), ("m0", "got 'm0'"), (1.5, "got 1.5")],
)
def test_a_bad_split_extent_is_refused_naming_splits(seeds, tmp_path, value, expected):
    m = copy.deepcopy(seeds["fusemax"])
    m["splits"] = {"m": value}
    f = tmp_path / "m.yaml"
    f.write_text(yaml.safe_dump(m))
    rc, err = _simulate("fusemax", f)
    assert rc == 2
    assert "splits.m" in err
    assert expected in err


def test_a_duplicate_key_in_a_mapping_file_is_refused(seeds, tmp_path):
    text = yaml.safe_dump(seeds["fusemax"])
    f = tmp_path / "m.yaml"
    f.write_text(text + "name: again\n")
    rc, err = _simulate("fusemax", f)
    assert rc == 2
    assert "duplicate" in err


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (b"groups: []\nname: \xff\n", "byte 0xff at byte offset 17"),
        (b"groups: " + b"[" * 3000 + b"]" * 3000 + b"\n", "nest"),
        (b"- 1\n- 2\n", "expected a mapping with 'groups'"),
        (b"groups: [\n", "not valid YAML"),
    ],
    ids=["binary", "deep", "a-list", "truncated"],
)
def test_a_damaged_mapping_file_is_refused_naming_the_file(tmp_path, content, expected):
    f = tmp_path / "m.yaml"
    f.write_bytes(content)
    rc, err = _simulate("fusemax", f)
    assert rc == 2
    assert str(f) in err
    assert expected in err


def test_a_missing_mapping_file_or_a_directory_is_named(tmp_path):
    for target in (tmp_path / "none.yaml", tmp_path):
        rc, err = _simulate("fusemax", target)
        assert rc == 2
        assert str(target) in err


@pytest.mark.parametrize(
    ("arch", "dataflow", "expected"),
    [("h100", "lean", "query length <= 16"), ("hbm3_pim", "pim_decode", "query length 1")],
)
def test_decode_dataflows_refuse_a_prefill_naming_the_query_length(arch, dataflow, expected):
    argv = ["simulate", "--arch", arch, "--workload", "decode", "--dataflow", dataflow]
    rc, _, err = _cli([*argv, "--set", "Sq=2048", "--engine", "analytic"])
    assert rc == 2
    assert "query length" in err
    assert expected in err
    assert "got 2048" in err
