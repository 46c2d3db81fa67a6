"""Record schema, derived fields and the JSONL writer of the harness."""

from __future__ import annotations

import json

import pytest

from validation.harness.records import JsonlWriter, derive_fields, validate_record


def test_gemm_derived_fields_are_hand_computable():
    rec = derive_fields(
        {"kind": "gemm", "M": 1000, "N": 1000, "K": 1000, "dtype": "bf16", "ms": 1.0}
    )
    assert rec["flops"] == 2e9
    assert rec["tflops"] == pytest.approx(2.0)
    assert rec["min_bytes"] == 6e6
    assert rec["gbps"] == pytest.approx(6.0)


def test_causal_self_attention_counts_half_the_pairs_and_bwd_two_and_a_half():
    base = {
        "kind": "attn",
        "B": 1,
        "Hq": 2,
        "Hkv": 2,
        "Sq": 1000,
        "Skv": 1000,
        "D": 100,
        "causal": False,
        "backend": "flash",
        "dtype": "bf16",
        "pass_": "fwd",
        "ms": 1.0,
    }
    full = derive_fields(base)["flops"]
    assert full == 4 * 2 * 1000 * 1000 * 100
    assert derive_fields({**base, "causal": True})["flops"] == full / 2
    assert derive_fields({**base, "pass_": "bwd"})["flops"] == 2.5 * full


def test_gqa_decode_bytes_count_kv_heads_not_query_heads():
    rec = derive_fields(
        {
            "kind": "decode",
            "B": 1,
            "Hq": 32,
            "Hkv": 8,
            "Sq": 1,
            "Skv": 1024,
            "D": 128,
            "causal": False,
            "backend": "flash",
            "dtype": "bf16",
            "pass_": "fwd",
            "ms": 1.0,
        }
    )
    assert rec["min_bytes"] == 2 * (32 * 128 * 2) + 2 * (8 * 1024 * 128 * 2)


def test_flex_flops_scale_with_density_and_copy_ceiling_counts_read_and_write():
    flex = derive_fields(
        {
            "kind": "flex_block_sparse",
            "B": 1,
            "H": 1,
            "S": 256,
            "D": 64,
            "block": 128,
            "density": 0.5,
            "ms": 1.0,
        }
    )
    assert flex["flops"] == 4 * 256 * 256 * 64 * 0.5
    copy = derive_fields({"kind": "ceiling", "name": "d2d_copy", "bytes": 10**9, "ms": 1.0})
    assert copy["gbps"] == pytest.approx(2000.0)
    assert "tflops" not in copy


def test_error_records_get_no_derived_fields_and_are_valid():
    rec = {"kind": "gemm", "M": 1, "N": 1, "K": 1, "dtype": "bf16", "error": "OOM"}
    assert derive_fields(rec) == rec
    assert validate_record(rec) == []


def test_validate_record_names_missing_fields_and_bad_times():
    assert validate_record({"kind": "conv"}) == ["unknown kind 'conv'"]
    assert validate_record({"kind": "gemm", "M": 1, "N": 1, "dtype": "bf16", "ms": 1.0}) == [
        "gemm: missing field 'K'"
    ]
    assert validate_record(
        {"kind": "gemm", "M": 1, "N": 1, "K": 1, "dtype": "bf16", "ms": -2.0}
    ) == ["gemm: expected ms > 0, got -2.0"]


def test_jsonl_writer_flushes_each_record(tmp_path):
    path = tmp_path / "sub" / "out.jsonl"
    writer = JsonlWriter(path)
    writer.write({"kind": "device", "name": "x"})
    writer.write({"kind": "gemm", "M": 1})
    lines = path.read_text().splitlines()  # readable before close: flushed per record
    assert [json.loads(line)["kind"] for line in lines] == ["device", "gemm"]
    writer.close()
    assert writer.count == 2


def test_jsonl_writer_refuses_non_finite_numbers(tmp_path):
    with JsonlWriter(tmp_path / "o.jsonl") as writer:
        with pytest.raises(ValueError, match="[Oo]ut of range"):
            writer.write({"kind": "gemm", "ms": float("nan")})
        assert writer.count == 0
