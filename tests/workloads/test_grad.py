"""The gradient cascade of an attention cascade (workloads._grad): the executed backward
equals finite differences of the executed forward; conditions and GQA grouping are kept;
cascades it cannot derive are refused naming the property."""

import numpy as np
import pytest

from archsim.errors import WorkloadError
from workloads import count, execute, get_workload, parse_cascade
from workloads._grad import attention_backward

WINDOW = """
param N = 1
param A = 2
param L = 9
param C = 3
param T = 4
param W = 3
rank i : L
rank j : L
tensor Q[n,a,i,c] : bf16
tensor K[n,a,j,c] : bf16
tensor V[n,a,j,c] : bf16
rank j -> jt, jk : T
S[n,a,jt,jk,i] = Q[n,a,i,c] * K[n,a,jt,jk,c]  if j <= i and i - j < W
LM[n,a,jt,i] = max(jk) S[n,a,jt,jk,i]
RM[n,a,jt+1,i] = max(RM[n,a,jt,i], LM[n,a,jt,i])  init -inf
E[n,a,jt,jk,i] = exp(S[n,a,jt,jk,i] - RM[n,a,jt+1,i])
PRM[n,a,jt,i] = exp(RM[n,a,jt,i] - RM[n,a,jt+1,i])
LD[n,a,jt,i] = sum(jk) E[n,a,jt,jk,i]
SD[n,a,jt,i] = PRM[n,a,jt,i] * RD[n,a,jt,i]
RD[n,a,jt+1,i] = SD[n,a,jt,i] + LD[n,a,jt,i]  init 0
SO[n,a,jt,i,c] = PRM[n,a,jt,i] * RO[n,a,jt,i,c]
LO[n,a,jt,i,c] = sum(jk) E[n,a,jt,jk,i] * V[n,a,jt,jk,c]
RO[n,a,jt+1,i,c] = SO[n,a,jt,i,c] + LO[n,a,jt,i,c]  init 0
O[n,a,i,c] = RO[n,a,JT,i,c] / max(RD[n,a,JT,i], 1e-30)
"""

WINDOW3 = """
param B = 1
param H = 2
param S = 9
param D = 3
param W = 3
rank p : S
rank m : S
rank e : D
rank f : D
tensor Q[b,h,p,e] : bf16
tensor K[b,h,m,e] : bf16
tensor V[b,h,m,f] : bf16
QK[b,h,m,p] = Q[b,h,p,e] * K[b,h,m,e] if m <= p and p - m < W
M[b,h,p] = max(m) QK[b,h,m,p]
SN[b,h,m,p] = exp(QK[b,h,m,p] - M[b,h,p])
SD[b,h,p] = sum(m) SN[b,h,m,p]
A[b,h,m,p] = SN[b,h,m,p] / SD[b,h,p]
AV[b,h,p,f] = sum(m) A[b,h,m,p] * V[b,h,m,f]
"""

SIGMOID = """
param B = 1
param H = 2
param S = 6
param D = 3
param BIAS = -1
rank p : S
rank m : S
tensor Q[b,h,p,e] : bf16
tensor K[b,h,m,e] : bf16
tensor V[b,h,m,f] : bf16
rank e : D
rank f : D
QK[b,h,m,p] = Q[b,h,p,e] * K[b,h,m,e]
P[b,h,m,p] = sigmoid(QK[b,h,m,p] + BIAS)
O[b,h,p,f] = sum(m) P[b,h,m,p] * V[b,h,m,f]
"""


def _lse(cascade, x, out_shape):
    """log-sum-exp per row of the forward's allowed scores (the forward run on V = one-hot
    columns is not needed: the score's presence comes from executing it)."""
    from workloads import execute_with_presence

    r = execute_with_presence(cascade, x)
    score = cascade.einsums[0].name
    s, pres = np.asarray(r[score].val), np.asarray(r[score].pres, bool)
    ranks = cascade.tensors[score].ranks
    # join a key split (the score's key parts are adjacent) and move the key rank last
    key_axes = [
        i for i, rk in enumerate(ranks) if rk not in cascade.tensors[cascade.outputs[0]].ranks
    ]
    shape = [s.shape[i] for i in range(s.ndim) if i not in key_axes]
    order = [i for i in range(s.ndim) if i not in key_axes] + key_axes
    s = np.transpose(s, order).reshape(*shape, -1)
    pres = np.transpose(pres, order).reshape(*shape, -1)
    z = np.where(pres, s, -np.inf)
    mx = z.max(axis=-1, keepdims=True)
    return (mx + np.log(np.exp(z - mx).sum(axis=-1, keepdims=True)))[..., 0].reshape(out_shape)


def _check_fd(fwd, softmax=True, seed=0):
    rng = np.random.default_rng(seed)
    sizes = fwd.rank_sizes()
    x = {n: rng.standard_normal([sizes[r] for r in fwd.tensors[n].ranks]) for n in fwd.inputs}
    out = fwd.outputs[0]
    o = execute(fwd, x)[out]
    do = rng.standard_normal(o.shape)
    bwd = attention_backward(fwd)
    inputs = {**x, "DO": do}
    if softmax:
        inputs[out] = o
        inputs["LSE"] = _lse(fwd, x, o.shape[:-1])
    got = execute(bwd, inputs)
    q, k, v = bwd.inputs[:3]
    for name, grad in ((q, "DQ"), (k, "DK"), (v, "DV")):
        g = got[grad].reshape(x[name].shape)  # DQ over (hkv, g) where Q is over h
        idx = [tuple(rng.integers(0, n) for n in x[name].shape) for _ in range(4)]
        for i in idx:
            eps = 1e-6
            xp = {**x, name: x[name].copy()}
            xm = {**x, name: x[name].copy()}
            xp[name][i] += eps
            xm[name][i] -= eps
            fd = (np.sum(execute(fwd, xp)[out] * do) - np.sum(execute(fwd, xm)[out] * do)) / (
                2 * eps
            )
            assert g[i] == pytest.approx(fd, rel=1e-5, abs=1e-7), (name, i)
    return bwd


@pytest.mark.parametrize(
    "params",
    [
        {"B": 1, "H": 2, "S": 5, "D": 3, "M0": 2, "causal": True},
        {"B": 1, "H": 2, "Sq": 3, "Skv": 6, "D": 2, "Dv": 3, "M0": 4, "causal": True},
        {"B": 1, "H": 2, "S": 4, "D": 2, "passes": 3},
    ],
)
def test_the_backward_of_mha_equals_finite_differences(params):
    _check_fd(get_workload("mha", **params).cascade)


def test_gqa_backward_sums_dk_dv_over_the_query_heads_of_a_group():
    fwd = get_workload("gqa", B=1, H=4, Hkv=2, S=5, D=2, M0=2, causal=True).cascade
    bwd = _check_fd(fwd, seed=1)
    assert bwd.tensors["DK"].ranks == ("b", "hkv", "m", "e")
    dk = next(e for e in bwd.einsums if e.name == "DK")
    assert set(dk.reduce_ranks) == {"g", "p"}


def test_a_sliding_window_backward_keeps_the_window():
    _check_fd(parse_cascade(WINDOW3, name="window3"), seed=2)
    # the 1-pass form (whose executor runs NaN on key tiles a row's window misses entirely)
    bwd = attention_backward(parse_cascade(WINDOW, name="window"))
    assert "T" not in bwd.params  # the key split is gone with its tile
    s = bwd.einsums[1]
    assert "W" in str(s.condition)
    # the backward's MACs follow the window: 5 score-sized contractions over the live pairs
    for w in (2, 4):
        c = count(bwd, {"W": w, "L": 64})
        live = sum(min(i + 1, w) for i in range(64)) * 2  # heads
        assert c.einsum("DK").macs == live * 3


def test_a_sigmoid_backward_uses_p_times_one_minus_p():
    fwd = parse_cascade(SIGMOID, name="sig")
    bwd = _check_fd(fwd, softmax=False, seed=3)
    assert set(bwd.inputs) == {"Q", "K", "V", "DO"}
    ops = count(bwd).ops
    assert ops["sigmoid"] > 0
    assert not {"exp", "max"} & {k for k, v in ops.items() if v}


@pytest.mark.parametrize(
    ("workload", "missing"),
    [
        ("linear", "softmax over the key rank"),
        ("mla", "score that is one contraction"),
        ("cca", "score contraction S = Q * K of two input tensors"),
    ],
)
def test_cascades_it_cannot_derive_are_refused_naming_the_property(workload, missing):
    with pytest.raises(WorkloadError, match="cannot derive the backward") as exc:
        attention_backward(get_workload(workload).cascade)
    assert missing in str(exc.value)


def test_a_condition_on_the_key_split_parts_is_refused():
    text = WINDOW.replace("if j <= i and i - j < W", "if jt*T + jk <= i")
    with pytest.raises(WorkloadError, match="whole key rank"):
        attention_backward(parse_cascade(text, name="w"))
