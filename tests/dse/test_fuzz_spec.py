"""Fuzz: malformed sweep specs through ``archsim sweep SPEC --dry-run``.

Every mutation of a valid spec below makes it invalid (wrong types, huge numbers, inf/nan,
unknown keys, duplicate keys, non-UTF-8 bytes, deep nesting, empty files). For each one the
command must exit 2 with one ``error: ...`` message that names the mutated field — never a
Python traceback, never a run.
"""

from __future__ import annotations

import contextlib
import io
import tempfile
from pathlib import Path

import hypothesis.strategies as st
import yaml
from hypothesis import given, settings

from archsim.cli import main

BASE: dict = {
    "name": "fuzz",
    "arch": {
        "preset": "fusemax",
        "set": {"clock.core_hz": 1.0e9},
        "space": {"levels.GLB.capacity_bytes": {"log_range": [1.0e6, 64.0e6], "n": 3}},
    },
    "workload": {"name": "mha", "params": {"B": 1, "H": 4, "D": 64, "S": [512, 1024]}},
    "dataflow": ["fusemax", "flat"],
    "engine": "analytic",
    "sampler": {"kind": "grid"},
    "objectives": ["latency", "energy"],
    "constraints": ["area <= 1000"],
}

AXIS = "levels.GLB.capacity_bytes"

#: (path into BASE, field named in the message)
FIELDS = {
    "name": ("name", "name"),
    "arch": ("arch", "arch"),
    "arch.set": ("arch/set", "arch.set"),
    "arch.space": ("arch/space", "arch.space"),
    "axis": (f"arch/space/{AXIS}", AXIS),
    "axis.n": (f"arch/space/{AXIS}/n", AXIS),
    "axis.bounds": (f"arch/space/{AXIS}/log_range", AXIS),
    "workload": ("workload", "workload"),
    "workload.name": ("workload/name", "workload.name"),
    "workload.params": ("workload/params", "workload.params"),
    "S": ("workload/params/S", "workload.params.S"),
    "B": ("workload/params/B", "workload.params.B"),
    "dataflow": ("dataflow", "dataflow"),
    "engine": ("engine", "engine"),
    "sampler": ("sampler", "sampler"),
    "sampler.kind": ("sampler/kind", "sampler.kind"),
    "objectives": ("objectives", "objectives"),
    "constraints": ("constraints", "constraints"),
    "knobs": ("knobs", "knobs"),
    "mapper": ("mapper", "mapper"),
}

#: values of the wrong type for each field
WRONG_TYPES = {
    "name": [[1, 2], {"a": 1}],
    "arch": [5, [1, 2], True],
    "arch.set": [[1, 2], "fast"],
    "arch.space": [[1], 7],
    "axis": ["big", 12.5, True],
    "axis.n": ["many", [3], 2.5],
    "axis.bounds": ["1e6..64e6", [1.0e6], [1.0e6, "x"]],
    "workload": [5, [1]],
    "workload.name": [5, {"a": 1}],
    "workload.params": [[1, 2], "S=1"],
    "S": ["abc", True, {"bundle": 3}],
    "B": ["one", 1.5],
    "dataflow": [7, {"a": 1}, []],
    "engine": [7, "gpu"],
    "sampler": [[1], 3],
    "sampler.kind": ["halton", 3],
    "objectives": [{"x": 1}, 5],
    "constraints": [5, {"a": 1}, ["area <<= 3"]],
    "knobs": [[1], "tile"],
    "mapper": [3, {"objective": "edp"}],
}

#: numeric fields and where a huge / non-finite value there is refused
NUMERIC = {
    "axis.n": "axis.n",
    "S": "S",
    "B": "B",
    "arch.set": "arch.set",  # replaced by {clock.core_hz: value}
    "axis.bounds": "axis.bounds",  # replaced by [1e6, value]
    "sampler.n": "sampler",  # replaced by {kind: lhs, n: value}
    "constraints": "constraints",  # replaced by ["area <= value"]
}
HUGE = [1e30, 10**30, 1e308, 10**400, -1e30, 2**63]
NON_FINITE = [float("inf"), float("-inf"), float("nan")]


def _set(spec: dict, path: str, value: object) -> dict:
    spec = yaml.safe_load(yaml.safe_dump(spec))  # deep copy
    node = spec
    *parents, leaf = path.split("/")
    for key in parents:
        node = node[key]
    node[leaf] = value
    return spec


def _dump(spec: dict) -> bytes:
    return yaml.safe_dump(spec, sort_keys=False).encode()


def _bad_numbers(field: str) -> list[object]:
    """Refused values: a constraint bound may be huge (1e30 s is a bound), not infinite."""
    if field == "constraints":
        return [10**400, *NON_FINITE]
    return HUGE + NON_FINITE


def _numeric(field: str, value: object) -> tuple[bytes, str]:
    if field == "arch.set":
        spec = _set(BASE, "arch/set", {"clock.core_hz": value})
    elif field == "axis.bounds":
        spec = _set(BASE, f"arch/space/{AXIS}/log_range", [1.0e6, value])
    elif field == "sampler.n":
        spec = _set(BASE, "sampler", {"kind": "lhs", "n": value})
    elif field == "constraints":
        return _dump(_set(BASE, "constraints", [f"area <= {value}"])), "constraints[0]"
    else:
        spec = _set(BASE, FIELDS[field][0], value)
    named = "sampler.n" if field == "sampler.n" else FIELDS[NUMERIC[field]][1]
    return _dump(spec), named


def _unknown_key(where: str, key: str) -> tuple[bytes, str]:
    path = {
        "top": "",
        "arch": "arch",
        "workload": "workload",
        "sampler": "sampler",
        "axis": f"arch/space/{AXIS}",
    }[where]
    spec = _set(BASE, f"{path}/{key}" if path else key, 1)
    return _dump(spec), key


def _duplicate(key: str) -> tuple[bytes, str]:
    text = _dump(BASE).decode()
    line = next(ln for ln in text.splitlines() if ln.startswith(f"{key}:"))
    return (text + line + "\n").encode(), key


def _non_utf8(offset: int, junk: bytes) -> tuple[bytes, str]:
    text = _dump(BASE)
    at = min(offset, len(text))
    return text[:at] + junk + text[at:], "UTF-8"


def _nested(depth: int, flow: bool) -> tuple[bytes, str]:
    if flow:
        value = "[" * depth + "1" + "]" * depth
    else:
        value = "{a: " * depth + "1" + "}" * depth
    return _dump(BASE) + f"knobs: {{tile: {value}}}\n".encode(), "nesting"


mutations = st.one_of(
    st.sampled_from(sorted(WRONG_TYPES)).flatmap(
        lambda f: st.sampled_from(WRONG_TYPES[f]).map(
            lambda v, f=f: (_dump(_set(BASE, FIELDS[f][0], v)), FIELDS[f][1])
        )
    ),
    st.sampled_from(sorted(NUMERIC)).flatmap(
        lambda f: st.sampled_from(_bad_numbers(f)).map(lambda v, f=f: _numeric(f, v))
    ),
    st.tuples(
        st.sampled_from(["top", "arch", "workload", "sampler", "axis"]),
        st.sampled_from(["colour", "presett", "n_points", "extra_key"]),
    ).map(lambda t: _unknown_key(*t)),
    st.sampled_from(["name", "arch", "workload", "dataflow", "engine", "objectives"]).map(
        _duplicate
    ),
    st.tuples(
        st.integers(0, 400),
        st.binary(min_size=1, max_size=4).filter(lambda b: _not_utf8(b)),
    ).map(lambda t: _non_utf8(*t)),
    st.tuples(st.integers(65, 3000), st.booleans()).map(lambda t: _nested(*t)),
    st.sampled_from([b"", b"   \n", b"# only a comment\n", b"---\n", b"[]\n", b"42\n"]).map(
        lambda t: (t, "must be a mapping")
    ),
)


def _not_utf8(data: bytes) -> bool:
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        return True
    return False


def _run(text: bytes) -> tuple[int, str]:
    with tempfile.TemporaryDirectory() as tmp:
        spec = Path(tmp) / "sweep.yaml"
        spec.write_bytes(text)
        err = io.StringIO()
        with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
            code = main(["sweep", str(spec), "--out", str(Path(tmp) / "out"), "--dry-run"])
        return code, err.getvalue()


def test_the_base_spec_is_valid():
    code, err = _run(_dump(BASE))
    assert (code, err) == (0, "")


@given(mutations)
@settings(max_examples=250, deadline=None)
def test_a_malformed_spec_is_one_error_line_naming_the_field(mutation):
    text, field = mutation
    code, err = _run(text)
    assert code == 2, (text[:300], err)
    assert err.startswith("error: "), err
    assert "Traceback" not in err
    assert field in err, (text[:300], err)
