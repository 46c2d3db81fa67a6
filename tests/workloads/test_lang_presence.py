"""Presence: counting follows the points the executor computes, for every way of reading a tensor.

The executor's presence masks are the ground truth: for each Einsum, the counted output
elements equal the elements the executor marks present, and the ops of an Einsum without a
reduction equal its present points. Covered here: split tensors read through their parent
rank, through a renamed rank and back through a split pair; split tensors read by another
pair of ranks of the same sizes; output ranks introduced by a condition; stated mask density.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from archsim.errors import WorkloadError
from workloads import (
    Cascade,
    count,
    execute,
    execute_with_presence,
    format_cascade,
    get_workload,
    parse_cascade,
)


def _assert_counts_follow_presence(c: Cascade, params: dict | None, inputs: dict) -> None:
    env = execute_with_presence(c, inputs, params)
    counts = count(c, params)
    for e in c.einsums:
        if e.iterative_rank:
            continue
        present = int(env[e.name].pres.sum())
        got = counts.einsum(e.name)
        assert got.writes_elems[e.name] == present, e.text
        if not e.reduce_ranks and e.map_op not in ("+", "max", "min"):
            assert got.points == present, e.text
            assert sum(got.ops.values()) == present * _ops_per_point(e), e.text


def _ops_per_point(e) -> int:
    return int(e.map_op is not None) + int(e.unary is not None)


# QK computed over the split key rank (m1, m0), then read in every other way.
SPLIT_THEN_WHOLE = """
tensor Q[b,p,e] : bf16
tensor K[b,m,e] : bf16
rank m -> m1, m0 : M0
rank x : M
QK[b,m1,m0,p] = Q[b,p,e] * K[b,m1,m0,e] if COND
SN[b,m,p] = exp(QK[b,m,p])
SD[b,p] = sum(m) SN[b,m,p]
A[b,m,p] = SN[b,m,p] / SD[b,p]
T[b,x,p] = A[b,x,p] * 2
R[b,m1,m0,p] = exp(T[b,m1,m0,p])
RS[b,m1,p] = sum(m0) R[b,m1,m0,p]
"""

SPLIT_CONDITIONS = [
    "m1*M0 + m0 <= p",
    "m <= p",
    "m1 < 2",
    "m <= p and m1 != 1",
    "m0 >= 1 and m <= p + 2",
    "m1 == p - 3",
]


@pytest.mark.parametrize("cond", SPLIT_CONDITIONS)
@pytest.mark.parametrize(("s", "m0"), [(8, 4), (11, 4), (7, 3)])
def test_a_split_tensor_read_through_its_parent_rank_keeps_its_condition(cond, s, m0):
    text = SPLIT_THEN_WHOLE.replace("COND", cond)
    params = {"B": 2, "M": s, "P": s, "E": 2, "M0": m0}
    x = {"Q": np.ones((2, s, 2)), "K": np.ones((2, s, 2))}
    _assert_counts_follow_presence(parse_cascade(text), params, x)


def test_exp_of_causal_scores_read_through_m_counts_the_triangle():
    # the library author's example: 8 x 8 causal scores computed over (m1, m0)
    text = SPLIT_THEN_WHOLE.replace("COND", "m1*M0 + m0 <= p")
    counts = count(parse_cascade(text), {"B": 1, "M": 8, "P": 8, "E": 2, "M0": 4})
    assert counts.einsum("SN").ops == {"exp": 36}  # 8 * 9 / 2, not 64
    assert counts.einsum("SD").ops == {"add": 36}


def test_counting_split_reads_of_a_long_causal_sequence_stays_fast():
    text = SPLIT_THEN_WHOLE.replace("COND", "m <= p")
    s = 20_000
    counts = count(parse_cascade(text), {"B": 1, "M": s, "P": s, "E": 8, "M0": 64})
    assert counts.einsum("SN").ops == {"exp": s * (s + 1) // 2}
    assert counts.einsum("RS").writes_elems == {"RS": sum(-(-(p + 1) // 64) for p in range(s))}


@pytest.mark.parametrize(
    "text",
    [
        "Y[m] = X[m+1] * 2\n",
        "Y[m] = X[m-2] + X[m]\nZ[m] = X[m-2] * X[m+3]\n",
        "rank x : M\nY[x] = X[x+2] * 3 if x >= 1\nZ[m] = exp(Y[m-1])\n",
    ],
)
def test_reads_shifted_out_of_range_are_absent_and_not_counted(text):
    c = parse_cascade("tensor X[m] : fp32\n" + text)
    _assert_counts_follow_presence(c, {"M": 7}, {"X": np.ones(7)})


# ---- output ranks bound by a condition ----------------------------------------------------

ROUTE = """
tensor X[t,d] : bf16
tensor W[d] : bf16
rank w : NW
Y[w,t] = X[t,d] * W[d] if w*T <= t*NW and t*NW < w*T + T
Z[w] = sum(t) Y[w,t]
"""


def test_an_output_rank_may_come_from_the_condition_alone():
    c = parse_cascade(ROUTE)
    params = {"T": 7, "D": 3, "NW": 3}
    rng = np.random.default_rng(0)
    x, w = rng.normal(size=(7, 3)), rng.normal(size=3)
    out = execute(c, {"X": x, "W": w}, params)
    owner = np.arange(7) * 3 // 7  # worker w owns items t with w*T <= t*NW < (w+1)*T
    expect = np.zeros((3, 7))
    expect[owner, np.arange(7)] = x @ w
    np.testing.assert_allclose(out["Y"], expect)
    counts = count(c, params)
    assert counts.einsum("Y").macs == 7 * 3  # each item computed once, by its owner
    _assert_counts_follow_presence(c, params, {"X": x, "W": w})


def test_an_output_rank_in_neither_an_input_nor_the_condition_is_an_error():
    with pytest.raises(WorkloadError, match="output rank w is not produced") as err:
        parse_cascade(ROUTE.replace(" if w*T <= t*NW and t*NW < w*T + T", ""))
    assert "or in the condition" in str(err.value)


# ---- a split tensor indexed by another pair of the same sizes -------------------------------

CHUNKS = """
tensor Q[p,e] : bf16
tensor K[m,e] : bf16
rank p : S
rank m : S
rank p -> pc, pi : C
rank m -> mc, mi : C
A[pc,pi,mi] = Q[pc,pi,e] * K[pc,mi,e] if mi <= pi
"""


@pytest.mark.parametrize(("s", "c"), [(8, 4), (7, 3), (5, 5)])
def test_a_split_tensor_can_be_read_by_the_chunk_of_another_rank(s, c):
    params = {"S": s, "C": c, "E": 2}
    rng = np.random.default_rng(1)
    q, k = rng.normal(size=(s, 2)), rng.normal(size=(s, 2))
    out = execute(parse_cascade(CHUNKS), {"Q": q, "K": k}, params)["A"]
    n = -(-s // c)
    expect = np.zeros((n, c, c))
    for p in range(s):
        for m in range(s):
            if p // c == m // c and m % c <= p % c:
                expect[p // c, p % c, m % c] = q[p] @ k[m]
    np.testing.assert_allclose(out, expect)
    _assert_counts_follow_presence(parse_cascade(CHUNKS), params, {"Q": q, "K": k})
    pairs = sum(1 for p in range(s) for m in range(s) if p // c == m // c and m <= p)
    assert count(parse_cascade(CHUNKS), params).macs == pairs * 2


def test_a_pair_of_other_sizes_does_not_index_a_split_tensor():
    text = CHUNKS.replace("rank m : S", "rank m : SKV")
    with pytest.raises(WorkloadError, match="rank/shape mismatch for K"):
        parse_cascade(text)


def test_a_merged_read_takes_no_offset():
    text = SPLIT_THEN_WHOLE.replace("COND", "m <= p").replace("exp(QK[b,m,p])", "QK[b,m+1,p]")
    with pytest.raises(WorkloadError, match="rank/shape mismatch for QK"):
        parse_cascade(text)


# ---- mask sparsity with a stated density ---------------------------------------------------

MASKED = """
tensor A[m,k] : bf16
tensor B[k,n] : bf16
tensor MASK[m,n] : bool
sparsity C : SPEC
C[m,n] = A[m,k] * B[k,n]
"""


def test_mask_sparsity_counts_its_stated_density():
    params = {"M": 8, "K": 4, "N": 10}
    dense = count(parse_cascade(MASKED.replace("SPEC", "mask(MASK)")), params)
    stated = count(parse_cascade(MASKED.replace("SPEC", "mask(MASK, density=0.3)")), params)
    assert dense.macs == 8 * 4 * 10
    assert stated.macs == pytest.approx(0.3 * 8 * 4 * 10)
    assert stated.einsum("C").writes_elems["C"] == pytest.approx(0.3 * 80)


def test_the_executor_uses_the_mask_itself_whatever_density_is_stated():
    c = parse_cascade(MASKED.replace("SPEC", "mask(MASK, density=0.9)"))
    mask = np.zeros((2, 3), dtype=bool)
    mask[0, 1] = True
    out = execute(c, {"A": np.ones((2, 2)), "B": np.ones((2, 3)), "MASK": mask})
    np.testing.assert_array_equal(out["C"], np.where(mask, 2.0, 0.0))


def test_a_stated_mask_density_round_trips_through_the_text():
    c = parse_cascade(MASKED.replace("SPEC", "mask(MASK, density=0.25)"))
    assert str(c.tensors["C"].sparsity) == "mask(MASK, density=0.25)"
    again = parse_cascade(format_cascade(c))
    assert again.tensors["C"].sparsity == c.tensors["C"].sparsity


@pytest.mark.parametrize(
    ("spec", "words"),
    [
        ("mask(MASK, density=1.5)", "density out of range"),
        ("mask(MASK, dens=0.5)", "unknown mask() argument"),
        ("mask(MASK, density)", "expected '='"),
    ],
)
def test_bad_mask_density_is_an_error(spec, words):
    with pytest.raises(WorkloadError, match=words.replace("(", r"\(").replace(")", r"\)")):
        parse_cascade(MASKED.replace("SPEC", spec))


# ---- library cascades: the same identity on every Einsum ------------------------------------

LIBRARY_CASES = [
    ("mha", {"B": 1, "H": 2, "S": 7, "D": 2, "M0": 3, "passes": 3, "causal": True}),
    ("mha", {"B": 1, "H": 2, "S": 7, "D": 2, "M0": 3, "passes": 2, "causal": True}),
    ("linear", {"B": 1, "H": 2, "S": 7, "D": 2, "C": 3}),
    ("linear", {"B": 1, "H": 1, "S": 9, "D": 2, "C": 4, "decay": 0.5}),
    ("decode", {"B": 1, "H": 2, "Skv": 7, "D": 2, "M0": 2, "variant": "lean", "ctas": 3}),
    (
        "decode",
        {
            "B": 1,
            "H": 2,
            "Sq": 2,
            "Skv": 9,
            "D": 2,
            "variant": "split_kv",
            "splits": 2,
            "causal": True,
        },
    ),
]


@pytest.mark.parametrize(("name", "params"), LIBRARY_CASES)
def test_library_counts_follow_the_executor_presence(name, params):
    w = get_workload(name, **params)
    _assert_counts_follow_presence(w.cascade, None, w.random_inputs(np.random.default_rng(0)))


_TERM = st.tuples(st.integers(-2, 2), st.integers(-2, 2), st.integers(-2, 2), st.integers(-4, 4))
_CMP = st.sampled_from(["<", "<=", "==", "!=", ">="])


@settings(max_examples=60, deadline=None)
@given(
    comps=st.lists(st.tuples(_TERM, _CMP), min_size=1, max_size=2),
    s=st.integers(3, 9),
    m0=st.integers(1, 4),
)
def test_random_linear_conditions_on_split_ranks_count_exactly_through_every_read(comps, s, m0):
    cond = " and ".join(f"{a}*m1 + {b}*m0 + {c}*p {op} {k}" for (a, b, c, k), op in comps)
    text = SPLIT_THEN_WHOLE.replace("COND", cond)
    c = parse_cascade(text)
    params = {"B": 1, "M": s, "P": s, "E": 1, "M0": m0}
    env = execute_with_presence(c, {"Q": np.ones((1, s, 1)), "K": np.ones((1, s, 1))}, params)
    counts = count(c, params)
    for name in ("QK", "SN", "A", "T", "R"):  # no reduction upstream: exact
        assert counts.einsum(name).writes_elems[name] == env[name].pres.sum(), (cond, name)


def test_lean_decode_routes_scores_to_workers_without_an_extra_multiply():
    kw = {"B": 2, "H": 8, "Hkv": 2, "Skv": 4096, "D": 128}
    lean = get_workload("decode", variant="lean", **kw)
    plain = get_workload("decode", **kw).counts()
    counts = lean.counts()
    assert "mul" not in counts.ops
    assert counts.einsum("QK").macs == plain.einsum("QK").macs  # each score once, by its owner
    assert lean.cascade.inputs == ("Q", "K", "V")
