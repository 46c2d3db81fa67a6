"""Fuzz workload inputs through the CLI (hypothesis): never a traceback; exit 2 naming the field.

Three surfaces, each from real seeds:

* cascade text: the library cascades (``format_cascade``), the examples of
  ``docs/cascade_language.md`` and ``examples/cascades/*.ein``, mutated byte-wise (tokens,
  numbers, huge repeats, raw bytes, deletions, duplicated lines);
* cascade YAML: ``examples/cascades/attention_3pass.yaml`` and the doc's YAML example, with
  one field replaced by a value of the wrong kind, deleted, or joined by an unknown key;
* ``--set KEY=VALUE``: known and unknown keys with numbers, huge numbers, inf/nan, bools
  and text.

Each goes through ``archsim.cli.main`` (``workload check``/``show`` and ``simulate --engine
analytic`` at small shapes). Examples are derandomized (the same in CI) and bounded in time.
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
from archsim.errors import WorkloadError
from workloads import format_cascade, get_workload, list_workloads
from workloads.library._registry import get_def

ROOT = Path(__file__).resolve().parents[2]
DOC = ROOT / "docs" / "cascade_language.md"
_BLOCK = re.compile(r"^```([\w-]+)\n(.*?)^```", re.S | re.M)

FUZZ = settings(
    max_examples=150,
    deadline=timedelta(seconds=5),
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


def _cli(argv: list[str]) -> tuple[int, str, str]:
    """(exit status, stdout, stderr) of ``archsim ARGV`` in this process; a traceback fails
    the test (pytest shows it)."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            rc = main(argv)
        except SystemExit as exc:  # argparse usage errors
            rc = int(exc.code or 0)
    return rc, out.getvalue(), err.getvalue()


def _refused_cleanly(rc: int, err: str) -> None:
    assert rc in (0, 2), (rc, err)
    if rc == 2:
        assert err.startswith("error: ") or "usage:" in err, err
        assert "Traceback" not in err


# --- seeds -----------------------------------------------------------------------------------
_SMALL = {
    "B": 1,
    "H": 2,
    "Hkv": 1,
    "Hc": 2,
    "S": 64,
    "Sq": 64,
    "Skv": 64,
    "D": 16,
    "M": 32,
    "N": 32,
    "K": 32,
}


def _library_texts() -> list[str]:
    """Each library cascade at the smallest of ``_SMALL`` it accepts (one key at a time)."""
    texts = []
    for name in list_workloads():
        keys = {p.name for p in get_def(name).params}
        chosen: dict[str, int] = {}
        for k, v in _SMALL.items():
            if k in keys:
                try:
                    get_workload(name, **chosen, **{k: v})
                except WorkloadError:  # a cross-parameter rule (H % Hkv): keep the default
                    continue
                chosen[k] = v
        texts.append(format_cascade(get_workload(name, **chosen).cascade))
    return texts


TEXT_SEEDS = (
    _library_texts()
    + [body for tag, body in _BLOCK.findall(DOC.read_text()) if tag == "cascade"]
    + [p.read_text() for p in sorted((ROOT / "examples" / "cascades").glob("*.ein"))]
)
YAML_SEEDS = [
    yaml.safe_load((ROOT / "examples" / "cascades" / "attention_3pass.yaml").read_text()),
    yaml.safe_load(next(body for tag, body in _BLOCK.findall(DOC.read_text()) if tag == "yaml")),
]
YAML_SEEDS[0]["params"] = {"B": 1, "H": 2, "S": 64, "D": 16}

_TOKENS = [
    "(", ")", "[", "]", ",", "=", "*", "+", "-", "/", ":", "->", "<=", "#", "\n", "if ",
    " init ", "and", "sum(m) ", "max(", "exp(", "inf", "nan", "1e30", "1e400", "0", "-1",
    "10**19", "99999999999999999999", "param ", "tensor ", "rank ", "sparsity ",
    "block(M=0, density=2)", "bits=0", "bits=100000", "density=0", "\x00", "\u0663", "M",
    "m", "q",
]  # fmt: skip
_NUMBERS = ["0", "-3", "1e30", "99999999999999999999", "inf", "nan", "1.5", "1e12", "2e12"]


@st.composite
def mutated_text(draw: st.DrawFn) -> bytes:
    """A seed cascade with 1-4 edits: insert a token (or repeat it 50-3000 times), insert raw
    bytes, delete a span, replace a number, duplicate a line."""
    data = bytearray(draw(st.sampled_from(TEXT_SEEDS)).encode())
    for _ in range(draw(st.integers(1, 4))):
        pos = draw(st.integers(0, len(data)))
        kind = draw(st.sampled_from(["token", "repeat", "bytes", "delete", "number", "line"]))
        if kind == "token":
            data[pos:pos] = draw(st.sampled_from(_TOKENS)).encode()
        elif kind == "repeat":
            data[pos:pos] = draw(st.sampled_from(_TOKENS)).encode() * draw(st.integers(50, 3000))
        elif kind == "bytes":
            data[pos:pos] = draw(st.binary(min_size=1, max_size=4))
        elif kind == "delete":
            del data[pos : pos + draw(st.integers(1, 12))]
        elif kind == "number":
            text = data.decode("utf-8", "surrogateescape")
            spots = list(re.finditer(r"\d+(\.\d+)?", text))
            if spots:
                m = spots[draw(st.integers(0, len(spots) - 1))]
                text = text[: m.start()] + draw(st.sampled_from(_NUMBERS)) + text[m.end() :]
                data = bytearray(text.encode("utf-8", "surrogateescape"))
        else:
            lines = data.split(b"\n")
            i = draw(st.integers(0, len(lines) - 1))
            lines.insert(draw(st.integers(0, len(lines))), lines[i])
            data = bytearray(b"\n".join(lines))
    return bytes(data)


# a line/column, a parameter, an Einsum, a cascade or the file: every refusal says where
_WHERE = re.compile(r"line \d+|param \w+|Einsum \w+|cascade \S+|rank \w+|\.ein\b")


@FUZZ
@given(text=mutated_text())
def test_workload_check_of_mutated_cascade_text(tmp_path_factory, text):
    f = tmp_path_factory.mktemp("t") / "c.ein"
    f.write_bytes(text)
    rc, out, err = _cli(["workload", "check", str(f)])
    _refused_cleanly(rc, err)
    if rc == 0:
        assert out.startswith("ok: ")
    else:
        assert _WHERE.search(err), err


def _utf8(b: bytes) -> bool:
    try:
        b.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


@settings(FUZZ, max_examples=40)
@given(text=mutated_text().filter(_utf8))  # binary files: the test below
def test_simulate_of_mutated_cascade_text(tmp_path_factory, text):
    f = tmp_path_factory.mktemp("t") / "c.ein"
    f.write_bytes(text)
    argv = ["simulate", "--arch", "fusemax", "--workload", str(f), "--engine", "analytic"]
    rc, _, err = _cli(argv)
    _refused_cleanly(rc, err)


def test_simulate_names_a_binary_cascade_file_and_the_byte_offset(tmp_path):
    f = tmp_path / "bin.ein"
    f.write_bytes(b"tensor A[m]\n\x80B[m] = A[m]\n")
    rc, _, err = _cli(["simulate", "--arch", "fusemax", "--workload", str(f)])
    assert rc == 2
    assert f"{f}: cascade file is not UTF-8 text" in err
    assert "byte 0x80 at byte offset 12" in err


# --- cascade YAML ----------------------------------------------------------------------------
def _paths(node: object, path: tuple = ()) -> list[tuple]:
    out = [path] if path else []
    if isinstance(node, dict):
        for k, v in node.items():
            out += _paths(v, (*path, k))
    elif isinstance(node, list):
        for i, v in enumerate(node):
            out += _paths(v, (*path, i))
    return out


_BAD_VALUES = st.one_of(
    st.sampled_from([0, -1, True, False, None, [], {}, "x", "1 +", 1.5, 1e30, 2**70, 10**7]),
    st.sampled_from([float("nan"), float("inf"), -float("inf"), {"a": 1}, [1, 2], "\u0663"]),
    st.integers(),
    st.floats(),
    st.text(max_size=6),
)


@st.composite
def mutated_yaml(draw: st.DrawFn) -> tuple[dict, tuple, str]:
    """(cascade dict, the mutated path, what was done): one field replaced (``replace``; by a
    value of its own type: ``content``), deleted, or an unknown key added."""
    seed = copy.deepcopy(draw(st.sampled_from(YAML_SEEDS)))
    path = draw(st.sampled_from(_paths(seed)))
    parent = seed
    for k in path[:-1]:
        parent = parent[k]
    action = draw(st.sampled_from(["replace", "replace", "replace", "delete", "unknown"]))
    old = parent[path[-1]]
    if action == "delete":
        del parent[path[-1]]
    elif action == "unknown" and isinstance(parent, dict):
        parent["zz_unknown"] = 1
        path = (*path[:-1], "zz_unknown")
    else:
        parent[path[-1]] = draw(_BAD_VALUES)
        action = "content" if type(parent[path[-1]]) is type(old) else "replace"
    return seed, path, action


# a field of the cascade: what breaks after a deletion may be another one (no tensors: an
# Einsum reads an undefined tensor), and it is named
_FIELD = re.compile(
    r"\b(einsums|params|ranks|tensors|sparsity|name|description)\b|param \w+|Einsum \w+"
)


@settings(FUZZ, max_examples=150)
@given(case=mutated_yaml())
def test_workload_check_of_mutated_cascade_yaml(tmp_path_factory, case):
    data, path, action = case
    f = tmp_path_factory.mktemp("y") / "c.yaml"
    f.write_text(yaml.safe_dump(data))
    rc, out, err = _cli(["workload", "check", str(f)])
    _refused_cleanly(rc, err)
    if rc == 2 and action in ("delete", "content"):
        assert _FIELD.search(err), (path, err)
    elif rc == 2:  # a value of the wrong kind: the message names its key (tensors.Q.bits)
        names = [str(k) for k in path if isinstance(k, str)]
        assert any(n in err for n in names), (path, err)


@settings(FUZZ, max_examples=40)
@given(case=mutated_yaml())
def test_simulate_of_mutated_cascade_yaml(tmp_path_factory, case):
    f = tmp_path_factory.mktemp("y") / "c.yaml"
    f.write_text(yaml.safe_dump(case[0]))
    rc, _, err = _cli(["simulate", "--arch", "flat", "--workload", str(f), "--engine", "analytic"])
    _refused_cleanly(rc, err)


# --- --set values ----------------------------------------------------------------------------
_SET_VALUES = st.one_of(
    st.sampled_from(["1e30", "10**19", "inf", "-inf", "nan", "-1", "0", "true", "x", "1.5"]),
    st.sampled_from(["99999999999999999999999", "1e-300", "2e12", "1099511627777", "\u0663"]),
    st.integers(min_value=-(2**70), max_value=2**70).map(str),
    st.floats().map(repr),
    st.text(alphabet=st.characters(blacklist_categories=["Cs"]), min_size=1, max_size=8),
)
_MHA_KEYS = ["S", "B", "H", "D", "Sq", "Skv", "causal", "passes", "zz_typo"]


@settings(FUZZ, max_examples=150)
@given(key=st.sampled_from(_MHA_KEYS), value=_SET_VALUES)
def test_workload_show_with_a_fuzzed_set_value_names_the_key(key, value):
    rc, out, err = _cli(["workload", "show", "mha", "--set", f"{key}={value}"])
    _refused_cleanly(rc, err)
    if rc == 2:
        named = {"S": ("Sq", "Skv")}.get(key, (key,))
        assert any(n in err for n in named) or "--set" in err, err


_FILES = {
    "examples/cascades/sliding_window.ein": ["L", "W", "T", "A", "C", "zz_typo"],
    "examples/cascades/attention_3pass.yaml": ["S", "D", "H", "B", "zz_typo"],
}


@settings(FUZZ, max_examples=40)
@given(
    workload=st.sampled_from(sorted(_FILES)),
    data=st.data(),
    value=_SET_VALUES,
)
def test_simulate_a_cascade_file_with_a_fuzzed_set_value(workload, data, value):
    key = data.draw(st.sampled_from(_FILES[workload]))
    small = ["--set", "L=128", "--set", "A=1"] if workload.endswith(".ein") else []
    small = [] if key in ("L", "A") else small
    argv = ["simulate", "--arch", "fusemax", "--workload", str(ROOT / workload)]
    rc, _, err = _cli([*argv, "--engine", "analytic", *small, "--set", f"{key}={value}"])
    _refused_cleanly(rc, err)
    if rc == 2 and "arch" not in err and "buffer" not in err:
        assert key in err or "--set" in err, err


@pytest.mark.parametrize("depth", [200, 5000])
def test_deeply_nested_cascade_yaml_is_refused(tmp_path, depth):
    f = tmp_path / "deep.yaml"
    f.write_text("einsums: " + "[" * depth + "]" * depth + "\n")
    rc, _, err = _cli(["workload", "check", str(f)])
    assert rc == 2
    assert "deep.yaml" in err
    assert "nest" in err
