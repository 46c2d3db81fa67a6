"""The text notation parses into the documented Cascade/Einsum values and round-trips."""

from __future__ import annotations

import contextlib

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from archsim.errors import WorkloadError
from tests.workloads.test_lang_execute import CAUSAL, ONE_PASS, THREE_PASS  # noqa: I001
from workloads import (
    Cascade,
    CascadeBuilder,
    Sparsity,
    count,
    execute,
    format_cascade,
    load_cascade,
    parse_cascade,
)

CONTRACT_EXAMPLE = """
param M0 = 64                       # shape/tile parameter default
tensor Q[b,h,p,e] : bf16            # dtype: bf16|fp16|fp32|fp8|int8 or bits=N
tensor K[b,h,m,e] : bits=16 density=0.25
tensor V[b,h,m,f] : fp8
tensor MASK[b,h,m,p] : bool         # explicit boolean mask (input)
sparsity A : block(M=64, density=0.3)
rank m -> m1, m0 : M0               # split rank: m = m1*M0 + m0
QK[b,h,m,p] = Q[b,h,p,e] * K[b,h,m,e]  if m <= p
M[b,h,p] = max(m) QK[b,h,m,p]
SN[b,h,m,p] = exp(QK[b,h,m,p] - M[b,h,p])
SD[b,h,p] = sum(m) SN[b,h,m,p]
A[b,h,m,p] = SN[b,h,m,p] / SD[b,h,p]
AV[b,h,p,f] = A[b,h,m,p] * V[b,h,m,f]
S[b,h,m,p] = QK[b,h,m,p] * MASK[b,h,m,p]
"""


def test_contract_example_parses_into_documented_values():
    c = parse_cascade(CONTRACT_EXAMPLE, name="ex")
    assert isinstance(c, Cascade)
    assert c.name == "ex"
    assert c.params == {"M0": 64}
    assert c.inputs == ("Q", "K", "V", "MASK")
    assert c.outputs == ("AV", "S")
    assert c.intermediates == ("QK", "M", "SN", "SD", "A")
    qk, m, sn, sd, a, av, _ = c.einsums
    assert (qk.map_op, qk.reduce_op, qk.reduce_ranks, qk.unary) == ("*", "sum", ("e",), None)
    assert qk.ranks == ("b", "h", "m", "p", "e")
    assert qk.condition == "m <= p"
    assert qk.line == 9
    assert [r.name for r in qk.inputs] == ["Q", "K"]
    assert (m.map_op, m.reduce_op, m.reduce_ranks) == (None, "max", ("m",))
    assert (sn.map_op, sn.unary, sn.reduce_op) == ("-", "exp", None)
    assert (sd.reduce_op, a.map_op, av.reduce_ranks) == ("sum", "/", ("m",))
    assert c.tensors["K"].dtype_bits == 16
    assert c.tensors["K"].sparsity == Sparsity("density", density=0.25)
    assert c.tensors["V"].dtype_bits == 8
    assert c.tensors["MASK"].dtype_bits == 1
    assert c.tensors["A"].sparsity == Sparsity("block", density=0.3, tile=(("M", 64),))
    assert c.splits["m"].outer == "m1"
    assert c.splits["m"].tile == "M0"
    assert c.rank_sizes({"B": 1, "H": 2, "M": 130, "P": 7, "E": 4, "F": 4}) == {
        "b": 1,
        "h": 2,
        "p": 7,
        "e": 4,
        "m": 130,
        "f": 4,
        "m1": 3,
        "m0": 64,
    }


def test_iterative_einsum_values():
    c = parse_cascade(ONE_PASS.replace("COND", ""))
    rm = next(e for e in c.einsums if e.name == "RM")
    assert rm.iterative_rank == "m1"
    assert rm.init == float("-inf")
    assert rm.map_op == "max"
    assert c.tensors["RM"].iterative == ("m1",)
    assert next(e for e in c.einsums if e.name == "RD").init == 0.0
    av = c.einsums[-1]
    assert str(av.inputs[0]) == "RNV[b,h,M1,f,p]"


@pytest.mark.parametrize(
    "text",
    [
        THREE_PASS.replace("COND", CAUSAL["3"]),
        ONE_PASS.replace("COND", CAUSAL["1"]),
        ONE_PASS.replace("COND", ""),
        CONTRACT_EXAMPLE,
    ],
)
def test_format_then_parse_round_trips(text):
    c = parse_cascade(text, params={"SCALE": 1})
    again = parse_cascade(format_cascade(c))
    assert format_cascade(again) == format_cascade(c)

    def key(x):
        return [
            (
                e.output,
                e.inputs,
                e.map_op,
                e.reduce_op,
                e.reduce_ranks,
                e.unary,
                e.condition,
                e.ranks,
                str(e.expr),
                e.init,
            )
            for e in x.einsums
        ]

    assert key(again) == key(c)
    assert dict(again.tensors) == dict(c.tensors)
    assert (again.inputs, again.outputs) == (c.inputs, c.outputs)


def test_scalar_constants_and_params_in_expressions():
    c = parse_cascade("param SCALE = 0.5\ntensor X[i] : fp32\nY[i] = -X[i] * SCALE + 1e-1\n")
    out = execute(c, {"X": np.array([1.0, 2.0])})
    np.testing.assert_allclose(out["Y"], [-0.4, -0.9])


def test_params_argument_overrides_param_lines():
    c = parse_cascade("param M = 4\ntensor X[m] : fp32\nY[] = sum(m) X[m]\n", params={"M": 6})
    assert c.params["M"] == 6
    assert count(c).einsum("Y").ops == {"add": 6}


def test_yaml_and_builder_give_the_same_cascade_as_text(tmp_path):
    path = tmp_path / "gemm.yaml"
    path.write_text(
        "name: gemm_relu\nparams: {M: 4, K: 8, N: 2, M0: 3}\n"
        "ranks: {m: {split: [m1, m0], tile: M0}}\n"
        "tensors:\n  A: {ranks: [m, k], dtype: fp8}\n  B: {ranks: [k, n], bits: 4}\n"
        "sparsity: {C: 'density(0.5)'}\n"
        "einsums:\n  - C[m1,m0,n] = A[m1,m0,k] * B[k,n]\n  - R[m1,m0,n] = relu(C[m1,m0,n])\n"
    )
    from_yaml = load_cascade(path)
    built = (
        CascadeBuilder("gemm_relu")
        .param("M", 4)
        .param("K", 8)
        .param("N", 2)
        .param("M0", 3)
        .split("m", "m1", "m0", "M0")
        .tensor("A", ["m", "k"], "fp8")
        .tensor("B", ["k", "n"], bits=4)
        .sparsity("C", "density(0.5)")
        .einsum("C[m1,m0,n] = A[m1,m0,k] * B[k,n]")
        .einsum("R[m1,m0,n] = relu(C[m1,m0,n])")
        .build()
    )
    text = parse_cascade(
        "param M = 4\nparam K = 8\nparam N = 2\nparam M0 = 3\n"
        "rank m -> m1, m0 : M0\ntensor A[m,k] : fp8\ntensor B[k,n] : bits=4\n"
        "sparsity C : density(0.5)\nC[m1,m0,n] = A[m1,m0,k] * B[k,n]\n"
        "R[m1,m0,n] = relu(C[m1,m0,n])\n",
        name="gemm_relu",
    )
    for c in (from_yaml, built):
        assert format_cascade(c) == format_cascade(text)
        assert dict(c.tensors) == dict(text.tensors)
    assert from_yaml.tensors["B"].dtype_bits == 4
    counts = count(from_yaml)
    assert counts.einsum("C").macs == pytest.approx(0.5 * 4 * 8 * 2)
    assert counts.einsum("R").ops == {"max": pytest.approx(0.5 * 4 * 2)}


VALID = ONE_PASS.replace("COND", CAUSAL["1"])


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    pos=st.integers(0, len(VALID) - 1),
    cut=st.integers(1, 6),
    insert=st.sampled_from(
        [
            "",
            "[",
            "]",
            "(",
            ")",
            ",",
            "+1",
            "*",
            "=",
            "x",
            "m",
            "M1",
            "max(",
            "if ",
            "init ",
            "\n",
            "#",
            "-",
            "0",
            "QK",
        ]
    ),
)
def test_corrupted_cascades_parse_or_raise_workload_error_only(pos, cut, insert):
    text = VALID[:pos] + insert + VALID[pos + cut :]
    with contextlib.suppress(WorkloadError):  # any other exception fails the test
        parse_cascade(text, params={"M0": 4, "SCALE": 1})


def test_multi_rank_reductions_and_reduce_ops_over_functions():
    text = """
tensor X[m,e] : fp32
T[] = sum(m,e) X[m,e] * X[m,e]
G[e] = max(m) exp(X[m,e])
L[e] = min(m) -X[m,e]
"""
    c = parse_cascade(text)
    t, g, low = c.einsums
    assert (t.reduce_op, t.reduce_ranks, t.map_op) == ("sum", ("m", "e"), "*")
    assert (g.reduce_op, g.unary) == ("max", "exp")
    x = np.arange(6.0).reshape(3, 2) / 5
    out = execute(c, {"X": x})
    np.testing.assert_allclose(out["T"], (x * x).sum())
    np.testing.assert_allclose(out["G"], np.exp(x).max(0))
    np.testing.assert_allclose(out["L"], (-x).min(0))
    counts = count(c, {"M": 3, "E": 2})
    assert counts.einsum("T").macs == 6
    assert counts.einsum("G").ops == {"exp": 6, "max": 6}
    assert counts.einsum("L").ops == {"neg": 6, "min": 6}
