"""Fuzz ``archsim arch check FILE`` with mutated presets: never a traceback, exit 2 with the
field named, and every example answered quickly.

Each example takes a preset's YAML and applies one mutation: a leaf set to a wrong type or
an absurd number (huge, tiny, inf, nan, a boolean, a mapping), an unknown key, a duplicate
key, deep nesting, an alias bomb, or bytes that are not UTF-8 text.
"""

from __future__ import annotations

import math
import time
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from archsim.cli import main
from archsim.spec import PRESET_DIR, list_presets

#: seconds one example may take (the alias bomb of the issue took 50-60 s before)
BOUND_S = 5.0

PRESETS = {
    name: yaml.safe_load((PRESET_DIR / f"{name}.yaml").read_text()) for name in list_presets()
}

#: values that are wrong wherever a number is expected
BAD_FOR_NUMBERS: list[Any] = [
    math.inf,
    -math.inf,
    math.nan,
    True,
    False,
    "abc",
    {"a": 1},
    [1, 2, 3],
    1e300,
    -1e300,
    10**30,
]
#: values that may or may not be valid where they land
OTHER_VALUES: list[Any] = [0, -1, 1e-300, 0.5, None, "", 2**31, "x" * 300]

Path_ = tuple[Any, ...]


def _leaves(node: Any, path: Path_ = ()) -> list[Path_]:
    if isinstance(node, dict):
        return [p for k, v in node.items() for p in _leaves(v, (*path, k))]
    if isinstance(node, list) and node:  # the list itself, and its items
        return [path, *(p for i, v in enumerate(node) for p in _leaves(v, (*path, i)))]
    return [path]


def _mappings(node: Any, path: Path_ = ()) -> list[Path_]:
    out: list[Path_] = []
    if isinstance(node, dict):
        out.append(path)
        for k, v in node.items():
            out += _mappings(v, (*path, k))
    elif isinstance(node, list):
        for i, v in enumerate(node):
            out += _mappings(v, (*path, i))
    return out


def _get(node: Any, path: Path_) -> Any:
    for part in path:
        node = node[part]
    return node


def _set(node: Any, path: Path_, value: Any) -> Any:
    import copy

    node = copy.deepcopy(node)
    _get(node, path[:-1])[path[-1]] = value
    return node


def _field(path: Path_) -> str:
    """The name the error must mention: the last key of the path (mesh for mesh[0])."""
    return next(str(p) for p in reversed(path) if isinstance(p, str))


@st.composite
def mutated(draw: st.DrawFn) -> tuple[bytes, str | None, bool]:
    """(file content, text the error must contain, whether the file must be refused)."""
    name = draw(st.sampled_from(sorted(PRESETS)))
    spec = PRESETS[name]
    kind = draw(
        st.sampled_from(
            ["leaf", "leaf", "leaf", "based", "unknown", "duplicate", "deep", "bomb", "bytes"]
        )
    )
    if kind == "based":  # a file that inherits the preset and overrides one field badly
        group = draw(st.sampled_from(["levels", "compute"]))
        item = draw(st.sampled_from(spec[group]))
        key = draw(st.sampled_from(sorted(k for k in item if k != "name")))
        value = draw(st.sampled_from(BAD_FOR_NUMBERS))
        numeric = isinstance(item[key], int | float) and not isinstance(item[key], bool)
        override = {"base": name, group: [{"name": item["name"], key: value}]}
        return yaml.safe_dump(override).encode(), key, numeric
    if kind == "leaf":
        path = draw(st.sampled_from(_leaves(spec)))
        old = _get(spec, path)
        numeric = isinstance(old, int | float) and not isinstance(old, bool)
        value = draw(st.sampled_from(BAD_FOR_NUMBERS + OTHER_VALUES))
        must_fail = numeric and any(value is v for v in BAD_FOR_NUMBERS)
        text = yaml.safe_dump(_set(spec, path, value), sort_keys=False)
        return text.encode(), _field(path), must_fail
    if kind == "unknown":
        path = draw(st.sampled_from(_mappings(spec)))
        key = draw(st.sampled_from(["zz_unknown", "Capacity_Bytes", "levelz"]))
        target = _get(spec, path)
        if key in target:
            return yaml.safe_dump(spec).encode(), None, False
        text = yaml.safe_dump(_set(spec, (*path, key), 1), sort_keys=False)
        return text.encode(), key, True
    if kind == "duplicate":
        key = draw(st.sampled_from(sorted(spec)))
        text = yaml.safe_dump(spec, sort_keys=False) + yaml.safe_dump({key: spec[key]})
        return text.encode(), f"duplicate key {key!r}", True
    if kind == "deep":
        path = draw(st.sampled_from(_leaves(spec)))
        depth = draw(st.integers(70, 5000))
        text = yaml.safe_dump(_set(spec, path, "deep_here"), sort_keys=False, width=10**9)
        text = text.replace("deep_here", "[" * depth + "]" * depth, 1)
        return text.encode(), "nesting deeper than", True
    if kind == "bomb":
        levels = draw(st.integers(6, 12))
        lines = ["a0: &a0 [lol, lol, lol, lol, lol, lol, lol, lol, lol, lol]"]
        lines += [f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 10)}]" for i in range(1, levels)]
        body = yaml.safe_dump(spec, sort_keys=False)
        return ("\n".join(lines) + "\n" + body).encode(), "alias", True
    raw = yaml.safe_dump(spec, sort_keys=False).encode()
    at = draw(st.integers(0, len(raw)))
    junk = draw(st.sampled_from([b"\xff\xfe", b"\x80", b"\xc3\x28", b"\x00\x01\x02"]))
    want = "NUL byte" if junk.startswith(b"\x00") else "UTF-8"
    return raw[:at] + junk + raw[at:], want, True


@settings(
    max_examples=300,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(case=mutated())
def test_arch_check_never_tracebacks_and_names_the_field(tmp_path: Path, capsys, case):
    content, must_name, must_fail = case
    path = tmp_path / "fuzz.yaml"
    path.write_bytes(content)
    start = time.perf_counter()
    code = main(["arch", "check", str(path)])  # any non-ArchsimError exception fails the test
    elapsed = time.perf_counter() - start
    out, err = capsys.readouterr()
    assert elapsed < BOUND_S, elapsed
    assert code in (0, 2)
    assert "Traceback" not in err
    if must_fail:
        assert code == 2, (must_name, out[:300])
    if code == 2:
        assert err.startswith("error: ")
        assert len(err.splitlines()) == 1
        if must_name is not None:
            assert must_name in err, err
    else:
        assert out.startswith("ok: ")


@pytest.mark.parametrize(
    ("leaf", "value", "field"),
    [
        (("levels", 0, "read_bw_bytes_per_s"), 1e-300, "read_bw_bytes_per_s"),
        (("clock", "core_hz"), True, "clock.core_hz"),
        (("levels", 2, "mesh_like"), {"a": 1}, "mesh_like"),
    ],
)
def test_the_issue_cases_are_refused(tmp_path, capsys, leaf, value, field):
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(_set(PRESETS["fusemax"], leaf, value)))
    assert main(["arch", "check", str(path)]) == 2
    assert field in capsys.readouterr().err


def test_units_per_channel_inf_is_refused(tmp_path, capsys):
    path = tmp_path / "bad.yaml"
    path.write_text(
        yaml.safe_dump(_set(PRESETS["hbm_pim"], ("pim", "units_per_channel"), math.inf))
    )
    assert main(["arch", "check", str(path)]) == 2
    assert "pim.units_per_channel" in capsys.readouterr().err
