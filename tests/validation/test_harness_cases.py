"""Case lists of the measurement harness: coverage, uniqueness, keys."""

from __future__ import annotations

import pytest

from validation.harness.cases import (
    BACKENDS,
    DECODE_KV_CAP_BYTES,
    KEY_FIELDS,
    SUITES,
    case_key,
    suite_cases,
)


def test_every_suite_has_unique_keys():
    for suite in SUITES:
        keys = [case_key(c) for c in suite_cases(suite)]
        assert len(keys) == len(set(keys)), suite


def test_full_suite_covers_every_kind_backend_and_pass():
    cases = suite_cases("full")
    kinds = {c["kind"] for c in cases}
    assert kinds == set(KEY_FIELDS)
    attn = [c for c in cases if c["kind"] == "attn"]
    assert {(c["backend"], c["pass_"]) for c in attn} == {
        (b, p) for b in BACKENDS for p in ("fwd", "bwd")
    }
    assert {c["D"] for c in attn} == {64, 128}
    assert min(c["Sq"] for c in attn) == 512
    assert max(c["Sq"] for c in attn) == 65536
    assert any(c["Hkv"] < c["Hq"] for c in attn)
    assert {c["causal"] for c in attn} == {False, True}


def test_gemm_shapes_span_square_llama_skinny_and_tall():
    gemms = [c for c in suite_cases("full") if c["kind"] == "gemm"]
    assert 55 <= len(gemms) <= 65
    assert {c["M"] for c in gemms if c["group"] == "decode"} == {1, 8, 32, 64, 128, 256}
    assert {c["M"] for c in gemms if c["group"] == "square"} >= {512, 8192}
    assert any(c["M"] >= 64 * c["N"] for c in gemms)


def test_decode_cases_have_one_query_and_respect_the_kv_cap():
    dec = [c for c in suite_cases("full") if c["kind"] == "decode"]
    assert {c["Sq"] for c in dec} == {1}
    assert {c["Skv"] for c in dec} == {1024, 4096, 16384, 32768, 131072}
    assert {c["B"] for c in dec} == {1, 8, 32, 128}
    for c in dec:
        assert 2 * c["B"] * c["Hkv"] * c["Skv"] * c["D"] * 2 <= DECODE_KV_CAP_BYTES


def test_prefill_cases_hold_at_least_16k_tokens_unless_one_sequence():
    for c in suite_cases("full"):
        if c["kind"] == "attn":
            assert c["B"] * c["Sq"] >= 16384 or c["B"] == 1


@pytest.mark.parametrize("suite", ["smoke", "ncu", "energy"])
def test_subsets_are_drawn_from_the_full_suite(suite):
    full = {case_key(c) for c in suite_cases("full")}
    sub = suite_cases(suite)
    assert sub
    assert {case_key(c) for c in sub} <= full


def test_ncu_and_energy_subsets_have_the_required_kinds():
    ncu = suite_cases("ncu")
    assert 15 <= len(ncu) <= 25
    assert {c["kind"] for c in ncu} >= {"gemm", "attn", "decode"}
    assert {c["backend"] for c in ncu if c["kind"] == "attn"} == {"flash", "cudnn"}
    energy = suite_cases("energy")
    assert any(c["kind"] == "gemm" and c["M"] == c["N"] == c["K"] == 8192 for c in energy)
    assert {c["kind"] for c in energy} >= {"gemm", "attn", "decode"}


def test_case_key_is_stable_and_ignores_extra_fields():
    c = {"kind": "gemm", "M": 1, "N": 2, "K": 3, "dtype": "bf16"}
    assert case_key(c) == "gemm|M=1|N=2|K=3|dtype=bf16"
    assert case_key({**c, "ms": 1.0, "group": "x"}) == case_key(c)


def test_case_key_rejects_unknown_kind_and_missing_field():
    with pytest.raises(ValueError, match="kind"):
        case_key({"kind": "conv"})
    with pytest.raises(ValueError, match="'K'"):
        case_key({"kind": "gemm", "M": 1, "N": 2, "dtype": "bf16"})


def test_unknown_suite_is_rejected():
    with pytest.raises(ValueError, match="suite"):
        suite_cases("huge")
