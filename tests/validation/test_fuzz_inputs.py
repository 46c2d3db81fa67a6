"""Fuzz `archsim validate` and `archsim compare` with malformed inputs (hypothesis).

Rule under test (``validation/_cli.py``): no traceback ever; ``validate`` exits 0 when at
least one record was validated and lists every other line (line, field, reason), and
exits 2 with ``error:`` only when the file is unreadable or nothing could be validated;
``compare`` exits 0 or 2 (``error:`` naming what is wrong).
"""

import json
import math
import os
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from archsim.cli import main

DATA = Path(__file__).resolve().parent / "data"
GEMM = {"kind": "gemm", "M": 2048, "N": 2048, "K": 1024, "dtype": "bf16", "ms": 0.05}
ATTN = {
    "kind": "attn",
    "B": 2,
    "Hq": 16,
    "Hkv": 4,
    "Sq": 1024,
    "Skv": 1024,
    "D": 128,
    "causal": True,
    "backend": "cudnn",
    "dtype": "bf16",
    "pass_": "fwd",
    "ms": 0.2,
    "dram_bytes_read": 1.0e7,
}
DECODE = {**ATTN, "kind": "decode", "Sq": 1, "Skv": 8192, "causal": False, "backend": "flash"}
#: examples per fuzz test; raise it for a deeper run (ARCHSIM_FUZZ_EXAMPLES=2000)
SETTINGS = settings(
    max_examples=int(os.environ.get("ARCHSIM_FUZZ_EXAMPLES", "60")),
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)

BAD_VALUES = st.one_of(
    st.none(),
    st.booleans(),
    st.text(max_size=12),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.sampled_from([math.inf, -math.inf, math.nan, 1e30, 1e308, -0.0, 0.5, 2**63, 10**30]),
    st.lists(st.integers(), max_size=3),
    st.dictionaries(st.text(max_size=3), st.integers(), max_size=2),
)


@st.composite
def measurement_file(draw):
    """(bytes of a JSONL file, {line: field mutated or None for a broken line})."""
    base = [GEMM, ATTN, DECODE]
    lines: list[bytes] = [json.dumps(GEMM).encode()]  # line 1 always valid
    mutated: dict[int, str | None] = {}
    for n in range(2, draw(st.integers(2, 6)) + 1):
        rec = dict(draw(st.sampled_from(base)))
        how = draw(st.sampled_from(["value", "drop", "utf8", "truncate", "garbage", "ok"]))
        if how == "value":
            key = draw(st.sampled_from(sorted(rec)))
            rec[key] = draw(BAD_VALUES)
            mutated[n] = key
            text = json.dumps(rec, allow_nan=True)
            lines.append(text.encode())
        elif how == "drop":
            key = draw(st.sampled_from(sorted(k for k in rec if k != "kind")))
            del rec[key]
            mutated[n] = key
            lines.append(json.dumps(rec).encode())
        elif how == "utf8":
            raw = json.dumps(rec).encode()
            cut = draw(st.integers(1, len(raw) - 1))
            lines.append(raw[:cut] + draw(st.sampled_from([b"\xff", b"\xc3\x28", b"\x80\x80"])))
            mutated[n] = None
        elif how == "truncate":
            raw = json.dumps(rec).encode()
            lines.append(raw[: draw(st.integers(1, len(raw) - 1))])
            mutated[n] = None
        elif how == "garbage":
            lines.append(draw(st.binary(min_size=1, max_size=30)).replace(b"\n", b" "))
            mutated[n] = None
        else:
            lines.append(json.dumps(rec).encode())
    return b"\n".join(lines) + b"\n", mutated


@SETTINGS
@given(case=measurement_file())
def test_validate_never_stops_at_a_bad_record(tmp_path_factory, case, capsys):
    data, mutated = case
    d = tmp_path_factory.mktemp("v")
    path, out = d / "m.jsonl", d / "o.json"
    path.write_bytes(data)
    rc = main(["validate", str(path), "--quiet", "--json", str(out)])
    err = capsys.readouterr().err
    assert rc == 0, err  # line 1 is always valid, so something was validated
    doc = json.loads(out.read_text())
    first = doc["records"][0]  # line 1, always valid, is validated whatever follows it
    assert (first["kind"], first["M"], first["pred_ms"] > 0) == ("gemm", GEMM["M"], True)
    skipped = {s["line"]: s for s in doc["skipped"]}
    for line, field in mutated.items():
        if line not in skipped or field is None:
            continue
        entry = skipped[line]
        if entry["field"] is None:
            # a valid value the model has no kernel for: the reason gives the whole shape
            assert entry["reason"].startswith("the model has no kernel for"), entry
        else:
            # the report names the field that was changed (or one the kind needs, if dropped)
            assert entry["field"] == field, (field, entry)


def test_validate_exits_2_naming_the_field_when_nothing_is_valid(tmp_path, capsys):
    path = tmp_path / "m.jsonl"
    path.write_text(json.dumps({**GEMM, "M": "big"}) + "\n" + json.dumps({**GEMM, "ms": -1}))
    assert main(["validate", str(path)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error:")
    assert "field 'M'" in err
    assert "field 'ms'" in err


def _small_trace() -> list[dict]:
    """The first ops of the synthetic prefill trace (rmsnorm, GEMMs, RoPE) as events."""
    events = json.loads((DATA / "llama_layer_prefill.trace.json").read_text())["traceEvents"]
    kernels = sorted((e for e in events if e.get("cat") == "kernel"), key=lambda e: e["ts"])
    keep = {e["args"]["correlation"] for e in kernels[:8]}
    return [e for e in events if e.get("cat") != "kernel" or e["args"]["correlation"] in keep]


TRACE = _small_trace()
ARG_KEYS = ["Input Dims", "Input type", "Concrete Inputs", "External id", "correlation", "grid"]


@st.composite
def broken_trace(draw):
    """Bytes of a trace file with one or more fields of its events broken."""
    events = json.loads(json.dumps(TRACE))
    how = draw(st.sampled_from(["fields", "file"]))
    if how == "file":
        doc = draw(
            st.sampled_from(
                [
                    b"",
                    b"\xff\xfe{",
                    b'{"traceEvents": 5}',
                    b"[" * 5000 + b"]" * 5000,
                    json.dumps({"traceEvents": events}).encode()[:500],
                    b'{"traceEvents": [1, "x", null, []]}',
                ]
            )
        )
        return doc
    for _ in range(draw(st.integers(1, 6))):
        ev = draw(st.sampled_from(events))
        where = draw(st.sampled_from(["top", "args"]))
        if where == "top":
            key = draw(st.sampled_from(["ts", "dur", "name", "ph", "cat", "args", "pid", "tid"]))
            ev[key] = draw(BAD_VALUES)
        elif isinstance(ev.get("args"), dict):
            key = draw(st.sampled_from(ARG_KEYS))
            value = draw(
                st.one_of(
                    BAD_VALUES,
                    st.lists(
                        st.one_of(st.lists(st.integers(-(2**66), 2**66), max_size=4), BAD_VALUES),
                        max_size=5,
                    ),
                )
            )
            ev["args"][key] = value
    return json.dumps({"traceEvents": events}, allow_nan=True).encode()


@SETTINGS
@given(data=broken_trace())
def test_compare_never_raises_on_a_broken_trace(tmp_path_factory, data, capsys):
    path = tmp_path_factory.mktemp("c") / "t.json"
    path.write_bytes(data)
    rc = main(["compare", "--torch-trace", str(path)])
    captured = capsys.readouterr()
    assert rc in (0, 2)
    if rc == 2:
        assert captured.err.startswith("error:")
        assert str(path) in captured.err or "t.json" in captured.err
    else:
        assert "measured kernel time" in captured.out


def test_compare_kernel_with_a_bad_duration_names_the_field(tmp_path, capsys):
    events = json.loads(json.dumps(TRACE))
    next(e for e in events if e.get("cat") == "kernel")["dur"] = "fast"
    path = tmp_path / "t.json"
    path.write_text(json.dumps({"traceEvents": events}))
    assert main(["compare", "--torch-trace", str(path)]) == 2
    assert "dur" in capsys.readouterr().err
