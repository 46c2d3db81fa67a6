"""The committed H100 datasets obey the harness schema and the split rules."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from validation.harness.cases import case_key
from validation.harness.records import validate_record
from validation.harness.split import key_fraction

DATA = Path(__file__).resolve().parents[2] / "validation" / "data"
PARTS = ("h100_fit.jsonl", "h100_check.jsonl")
ALL_FILES = (*PARTS, "h200_check.jsonl")


def _load(name: str) -> list[dict]:
    path = DATA / name
    if not path.exists():
        pytest.skip(f"{path} not present")
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


@pytest.mark.parametrize("name", ALL_FILES)
def test_device_record_heads_each_file_and_every_record_is_valid(name):
    recs = _load(name)
    assert recs[0]["kind"] == "device"
    assert recs[0]["sms"] == 132
    for rec in recs:
        assert validate_record(rec) == [], rec.get("key")
    for rec in recs[1:]:
        assert rec["key"] == case_key(rec)


def test_fit_and_check_are_disjoint_and_share_every_kind():
    fit, check = (_load(n)[1:] for n in PARTS)
    assert {r["key"] for r in fit}.isdisjoint(r["key"] for r in check)
    assert (
        {r["kind"] for r in fit}
        == {r["kind"] for r in check}
        == {"gemm", "attn", "decode", "attn_unfused", "flex_block_sparse", "ceiling"}
    )
    moved = [r for r in fit if key_fraction(r["key"]) >= 0.4]
    assert len(moved) <= 10  # only the few records moved to give every group both sides


def test_ncu_and_energy_measurements_are_merged_into_both_parts():
    for name in PARTS:
        recs = _load(name)[1:]
        assert any("dram_bytes_read" in r for r in recs)
        assert any("mJ_per_iter" in r for r in recs)


def test_h200_file_is_a_measured_h200_with_every_kind():
    recs = _load("h200_check.jsonl")
    assert recs[0]["name"] == "NVIDIA H200"
    assert recs[0]["l2_bytes"] > _load("h100_check.jsonl")[0]["l2_bytes"]
    assert {r["kind"] for r in recs[1:]} == {
        "gemm",
        "attn",
        "decode",
        "attn_unfused",
        "flex_block_sparse",
        "ceiling",
    }


@pytest.mark.parametrize("name", ALL_FILES)
def test_times_were_taken_with_the_spin_timer(name):
    for rec in _load(name)[1:]:
        assert rec["timer"] == "cuda_events_l2flush_spin_median", rec["key"]
