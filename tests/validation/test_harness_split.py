"""Merging ncu/energy results and the deterministic fit/check split."""

from __future__ import annotations

import json

import pytest

from archsim.errors import ValidationDataError
from validation.harness.split import ENERGY_FIELDS, NCU_FIELDS, key_fraction, main, merge, split


def _gemm(m: int, **extra: object) -> dict:
    return {
        "kind": "gemm",
        "M": m,
        "N": 64,
        "K": 64,
        "dtype": "bf16",
        "ms": 0.1,
        "key": f"gemm|M={m}|N=64|K=64|dtype=bf16",
        **extra,
    }


def test_split_is_deterministic_disjoint_and_near_the_fraction():
    recs = [_gemm(m) for m in range(1, 401)]
    fit, check = split(recs, 0.4)
    assert {r["key"] for r in split(list(reversed(recs)), 0.4)[0]} == {r["key"] for r in fit}
    assert {r["key"] for r in fit}.isdisjoint(r["key"] for r in check)
    assert len(fit) + len(check) == 400
    assert 0.3 < len(fit) / 400 < 0.5


def test_every_group_of_two_or_more_lands_on_both_sides():
    recs = [
        _gemm(1),
        _gemm(2),
        {**_gemm(3), "kind": "ceiling", "key": "ceiling|name=a"},
        {**_gemm(4), "kind": "ceiling", "key": "ceiling|name=b"},
    ]
    fit, check = split(recs, 0.4)
    for kind in ("gemm", "ceiling"):
        assert any(r["kind"] == kind for r in fit)
        assert any(r["kind"] == kind for r in check)


def test_split_drops_device_and_error_records():
    recs = [{"kind": "device", "name": "x"}, _gemm(1), {**_gemm(2), "error": "OOM"}]
    fit, check = split(recs)
    assert [r["M"] for r in fit + check] == [1]


def test_key_fraction_is_in_unit_interval():
    assert all(0.0 <= key_fraction(f"k{i}") < 1.0 for i in range(100))


def test_bad_fraction_is_a_validation_data_error():
    with pytest.raises(ValidationDataError, match="fit_fraction"):
        split([_gemm(1)], 1.5)


def test_merge_copies_ncu_and_energy_fields_and_keeps_timed_clock():
    timed = [_gemm(1, sm_clock=1900.0), _gemm(2)]
    ncu = [
        {
            **_gemm(1),
            "ms": 9.0,
            "dram_bytes_read": 5.0,
            "dram_bytes_write": 1.0,
            "ncu_ms": 0.09,
            "ncu_kernels": [],
        }
    ]
    energy = [{**_gemm(1), "mJ_per_iter": 2.0, "avg_W": 700.0, "sm_clock": 1400.0}]
    out = merge(merge(timed, ncu, NCU_FIELDS), energy, ENERGY_FIELDS)
    assert out[0]["ms"] == 0.1  # the timed ms, never the ncu one
    assert out[0]["dram_bytes_read"] == 5.0
    assert out[0]["mJ_per_iter"] == 2.0
    assert out[0]["sm_clock"] == 1400.0
    assert out[0]["sm_clock_timed"] == 1900.0
    assert "dram_bytes_read" not in out[1]


def test_cli_writes_device_first_in_both_files(tmp_path):
    timed = tmp_path / "t.jsonl"
    lines = [{"kind": "device", "name": "gpu"}] + [_gemm(m) for m in range(1, 30)]
    timed.write_text("".join(json.dumps(r) + "\n" for r in lines))
    fit, check = tmp_path / "f.jsonl", tmp_path / "c.jsonl"
    assert main(["--timed", str(timed), "--fit", str(fit), "--check", str(check)]) == 0
    for path in (fit, check):
        first = json.loads(path.read_text().splitlines()[0])
        assert first == {"kind": "device", "name": "gpu"}


def test_first_by_key_keeps_the_first_success_per_key():
    from validation.harness.split import first_by_key

    a = [{"kind": "device", "name": "a"}, _gemm(1, ms=1.0), {**_gemm(2), "error": "OOM"}]
    b = [{"kind": "device", "name": "b"}, _gemm(1, ms=2.0), _gemm(2, ms=3.0), _gemm(3)]
    out = first_by_key([a, b])
    assert out[0]["name"] == "a"
    assert [(r["M"], r["ms"]) for r in out[1:]] == [(1, 1.0), (2, 3.0), (3, 0.1)]
