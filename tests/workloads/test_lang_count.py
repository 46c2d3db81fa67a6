"""Counting: exact MAC identities, exact condition counts, sparsity scaling, bytes."""

from __future__ import annotations

import time

import numpy as np
import pytest

from tests.workloads.test_lang_execute import CAUSAL, ONE_PASS, THREE_PASS
from workloads import count, execute_with_presence, parse_cascade

MHA = """
tensor Q[b,h,p,e] : bf16
tensor K[b,h,m,e] : bf16
tensor V[b,h,m,f] : bf16
QK[b,h,m,p] = Q[b,h,p,e] * K[b,h,m,e]  COND
AV[b,h,p,f] = QK[b,h,m,p] * V[b,h,m,f]
"""


def _params(b, h, s, d, m0=64):
    return {"B": b, "H": h, "M": s, "P": s, "E": d, "F": d, "Sq": s, "Skv": s, "M0": m0, "SCALE": 1}


def test_non_causal_mha_macs_are_2_b_h_s2_d_exactly():
    c = parse_cascade(MHA.replace("COND", ""))
    b, h, s, d = 4, 16, 4096, 128
    counts = count(c, _params(b, h, s, d))
    assert counts.macs == 2 * b * h * s * s * d
    assert counts.flops == 4 * b * h * s * s * d  # DESIGN.md: attention FLOPs 4 B H Sq Skv D
    assert counts.einsum("QK").writes_elems == {"QK": b * h * s * s}


def test_causal_counts_s_times_s_plus_1_over_2_points_exactly():
    c = parse_cascade(MHA.replace("COND", "if m <= p"))
    b, h, s, d = 2, 3, 1000, 64
    counts = count(c, _params(b, h, s, d))
    assert counts.einsum("QK").macs == b * h * d * s * (s + 1) // 2
    assert counts.einsum("AV").macs == b * h * d * s * (s + 1) // 2


def test_bottom_right_causal_cross_attention_counts_exactly():
    c = parse_cascade(MHA.replace("COND", "if m <= p + Skv - Sq"))
    sq, skv = 300, 1000
    counts = count(c, {"B": 1, "H": 1, "M": skv, "P": sq, "E": 1, "F": 1, "Sq": sq, "Skv": skv})
    brute = sum(min(skv, p + skv - sq + 1) for p in range(sq))
    assert counts.einsum("QK").macs == brute


@pytest.mark.parametrize("form", ["3", "1"])
def test_counting_a_million_token_causal_cascade_is_instant(form):
    c = parse_cascade((THREE_PASS if form == "3" else ONE_PASS).replace("COND", CAUSAL[form]))
    t0 = time.perf_counter()
    counts = count(c, _params(1, 1, 10**6, 128))
    assert time.perf_counter() - t0 < 5.0
    s = 10**6
    assert counts.einsum("QK").macs == 128 * s * (s + 1) // 2


@pytest.mark.parametrize("form", ["3", "1"])
@pytest.mark.parametrize(("s", "m0", "causal"), [(12, 4, False), (13, 4, True), (9, 5, True)])
def test_counts_match_the_points_the_executor_computes(form, s, m0, causal):
    text = (THREE_PASS if form == "3" else ONE_PASS).replace("COND", CAUSAL[form] if causal else "")
    c = parse_cascade(text)
    params = _params(1, 2, s, 3, m0)
    x = np.ones((1, 2, s, 3))
    env = execute_with_presence(c, {"Q": x, "K": x, "V": x}, params)
    counts = count(c, params)
    for e in c.einsums:
        if e.iterative_rank:
            continue
        got = counts.einsum(e.name).writes_elems[e.name]
        assert got == env[e.name].pres.sum(), e.name


def test_block_sparsity_scales_work_by_density():
    dense = count(parse_cascade(THREE_PASS.replace("COND", "")), _params(1, 1, 256, 64))
    sparse_text = THREE_PASS.replace("COND", "") + "sparsity QK : block(M=64, density=0.25)\n"
    sparse = count(parse_cascade(sparse_text), _params(1, 1, 256, 64))
    for name in ("QK", "SN", "A", "AV"):
        d, s = dense.einsum(name), sparse.einsum(name)
        assert s.macs == pytest.approx(0.25 * d.macs)
        assert sum(s.ops.values()) == pytest.approx(0.25 * sum(d.ops.values()))
    assert sparse.einsum("M").writes_elems == dense.einsum("M").writes_elems


def test_ops_by_kind_of_the_three_pass_cascade():
    b, h, s, d = 1, 2, 100, 8
    counts = count(parse_cascade(THREE_PASS.replace("COND", "")), _params(b, h, s, d))
    n = b * h * s * s
    assert counts.einsum("M").ops == {"max": n}
    assert counts.einsum("SN").ops == {"sub": n, "exp": n}
    assert counts.einsum("SD").ops == {"add": n}
    assert counts.einsum("A").ops == {"div": n}
    assert counts.einsum("QK").ops == {"mul": n * d}  # the SCALE multiply inside the sum
    assert counts.macs == 2 * n * d
    assert counts.flops == 2 * counts.macs + sum(counts.ops.values())


def test_iterative_ranks_count_each_update_once_per_step():
    s, m0 = 256, 64
    counts = count(parse_cascade(ONE_PASS.replace("COND", "")), _params(1, 1, s, 16, m0))
    m1 = s // m0
    assert counts.einsum("RM").ops == {"max": m1 * s}
    assert counts.einsum("RD").ops == {"add": m1 * s}
    assert counts.einsum("RNV").ops == {"add": m1 * 16 * s}
    assert counts.einsum("RM").writes_elems == {"RM": m1 * s}


def test_reads_writes_bytes_and_compulsory_bytes_use_dtype_bits():
    text = """
tensor A[m,k] : fp8
tensor B[k,n] : bf16
tensor C[m,n] : fp32
C[m,n] = A[m,k] * B[k,n]
"""
    counts = count(parse_cascade(text), {"M": 8, "K": 16, "N": 4})
    e = counts.einsum("C")
    assert e.reads_elems == {"A": 512, "B": 512}
    assert e.reads_bytes == 512 * 1 + 512 * 2
    assert e.writes_bytes == 32 * 4
    assert counts.compulsory_bytes == 8 * 16 * 1 + 16 * 4 * 2 + 8 * 4 * 4


def test_union_ops_count_only_where_both_operands_are_present():
    text = "tensor A[m] : fp32\nX[m] = A[m] if m < 3\nY[m] = A[m] if m >= 5\nS[m] = X[m] + Y[m]\n"
    counts = count(parse_cascade(text), {"M": 10})
    assert counts.einsum("S").ops == {}
    assert counts.einsum("S").writes_elems == {"S": 8}


CONDITIONS = [
    "m <= p",
    "m < p",
    "m >= p",
    "m > p",
    "m == p",
    "m != p",
    "2*m <= p + 1",
    "m <= p and m >= p - 3",
    "m != p and m != p - 1",
    "m <= p + Skv - Sq",
    "m1*M0 + m0 <= p",
    "m <= p - 2",
    "-m + p >= 0",
    "m1 < 2",
]


@pytest.mark.parametrize("cond", CONDITIONS)
def test_condition_counts_equal_the_executor_points(cond):
    split = "m1" in cond or "m0" in cond
    key = "m1,m0" if split else "m"
    text = (
        "tensor Q[p,e] : bf16\ntensor K[m,e] : bf16\nrank m -> m1, m0 : M0\n"
        f"S[{key},p] = Q[p,e] * K[{key},e] if {cond}\n"
        f"R[p] = max({key.replace(',', ', ')}) S[{key},p]\n"
    )
    c = parse_cascade(text)
    params = {"M": 11, "P": 9, "E": 2, "M0": 4, "Sq": 9, "Skv": 11}
    env = execute_with_presence(c, {"Q": np.ones((9, 2)), "K": np.ones((11, 2))}, params)
    counts = count(c, params)
    assert counts.einsum("S").writes_elems["S"] == env["S"].pres.sum()
    assert counts.einsum("S").macs == 2 * env["S"].pres.sum()
    if "2*m" not in cond and "!=" not in cond:  # projections exact for unit coefficients
        assert counts.einsum("R").writes_elems["R"] == env["R"].pres.sum()
