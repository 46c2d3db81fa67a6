"""The reference executor runs attention cascades exactly like direct numpy attention."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from archsim.errors import WorkloadError
from workloads import execute, execute_with_presence, parse_cascade

HEAD = """
tensor Q[b,h,p,e] : bf16
tensor K[b,h,m,e] : bf16
tensor V[b,h,m,f] : bf16
"""

THREE_PASS = (
    HEAD
    + """
QK[b,h,m,p] = Q[b,h,p,e] * K[b,h,m,e] * SCALE   COND
M[b,h,p]    = max(m) QK[b,h,m,p]
SN[b,h,m,p] = exp(QK[b,h,m,p] - M[b,h,p])
SD[b,h,p]   = sum(m) SN[b,h,m,p]
A[b,h,m,p]  = SN[b,h,m,p] / SD[b,h,p]
AV[b,h,p,f] = A[b,h,m,p] * V[b,h,m,f]
"""
)

# FuseMax 1-pass cascade (shared/reference/fusemax_cascades.md; Nayak et al., MICRO'24)
ONE_PASS = (
    HEAD
    + """
rank m -> m1, m0 : M0
QK[b,h,m1,m0,p]   = Q[b,h,p,e] * K[b,h,m1,m0,e] * SCALE   COND
LM[b,h,m1,p]      = max(m0) QK[b,h,m1,m0,p]
RM[b,h,m1+1,p]    = max(RM[b,h,m1,p], LM[b,h,m1,p])  init -inf
SLN[b,h,m1,m0,p]  = exp(QK[b,h,m1,m0,p] - RM[b,h,m1+1,p])
PRM[b,h,m1,p]     = exp(RM[b,h,m1,p] - RM[b,h,m1+1,p])
SPD[b,h,m1,p]     = PRM[b,h,m1,p] * RD[b,h,m1,p]
SLD[b,h,m1,p]     = sum(m0) SLN[b,h,m1,m0,p]
RD[b,h,m1+1,p]    = SPD[b,h,m1,p] + SLD[b,h,m1,p]
SPNV[b,h,m1,f,p]  = PRM[b,h,m1,p] * RNV[b,h,m1,f,p]
SLNV[b,h,m1,f,p]  = sum(m0) SLN[b,h,m1,m0,p] * V[b,h,m1,m0,f]
RNV[b,h,m1+1,f,p] = SPNV[b,h,m1,f,p] + SLNV[b,h,m1,f,p]
AV[b,h,p,f]       = RNV[b,h,M1,f,p] / RD[b,h,M1,p]
"""
)

CAUSAL = {"3": "if m <= p + Skv - Sq", "1": "if m1*M0 + m0 <= p + Skv - Sq"}


def attention(q, k, v, scale, causal):
    """Direct numpy softmax attention; causal is bottom-right aligned (Sq <= Skv)."""
    s = np.einsum("bhpe,bhme->bhpm", q, k) * scale
    sq, skv = q.shape[2], k.shape[2]
    if causal:
        keep = np.arange(skv)[None, :] <= np.arange(sq)[:, None] + skv - sq
        s = np.where(keep, s, -np.inf)
    s = np.exp(s - s.max(-1, keepdims=True))
    return np.einsum("bhpm,bhmf->bhpf", s / s.sum(-1, keepdims=True), v)


def _cascade(form: str, causal: bool):
    text = THREE_PASS if form == "3" else ONE_PASS
    text = text.replace("COND", CAUSAL[form] if causal else "")
    return parse_cascade(text, name=f"{form}pass", params={"M0": 4, "SCALE": 0.125})


@pytest.mark.parametrize("form", ["3", "1"])
@pytest.mark.parametrize("causal", [False, True])
@pytest.mark.parametrize(("sq", "skv"), [(8, 8), (7, 7), (5, 13), (9, 3 * 4)])
def test_attention_cascades_equal_numpy_softmax_attention(form, causal, sq, skv):
    rng = np.random.default_rng(sq * 100 + skv)
    q = rng.standard_normal((2, 3, sq, 6))
    k = rng.standard_normal((2, 3, skv, 6))
    v = rng.standard_normal((2, 3, skv, 5))
    c = _cascade(form, causal)
    out = execute(c, {"Q": q, "K": k, "V": v}, {"Sq": sq, "Skv": skv})
    np.testing.assert_allclose(out["AV"], attention(q, k, v, 0.125, causal), rtol=1e-12, atol=1e-12)


def test_iterative_tensor_keeps_init_at_index_zero_and_final_at_the_end():
    c = _cascade("1", False)
    rng = np.random.default_rng(0)
    q, k, v = (rng.standard_normal((1, 1, 6, 4)) for _ in range(3))
    out = execute(c, {"Q": q, "K": k, "V": v})
    rm = out["RM"]
    assert rm.shape == (1, 1, 3, 6)  # M1 + 1 = ceil(6/4) + 1
    assert np.all(rm[:, :, 0] == -np.inf)
    s = np.einsum("bhpe,bhme->bhmp", q, k) * 0.125
    np.testing.assert_allclose(rm[:, :, 2], s.max(axis=2))
    np.testing.assert_allclose(rm[:, :, 1], s[:, :, :4].max(axis=2))


def test_inputs_of_the_wrong_shape_are_reported():
    c = _cascade("3", False)
    q = np.zeros((1, 1, 4, 3))
    with pytest.raises(WorkloadError, match="shape"):
        execute(c, {"Q": q, "K": np.zeros((1, 1, 5, 2)), "V": np.zeros((1, 1, 5, 2))})
    with pytest.raises(WorkloadError, match="missing input V"):
        execute(c, {"Q": q, "K": np.zeros((1, 1, 5, 3))})


# --- presence semantics ---------------------------------------------------------------------
PRES = """
tensor A[m] : fp32
tensor B[m] : fp32
X[m] = A[m] * 2 if m <= 1
Y[m] = B[m] if m >= 1
P[m] = X[m] * Y[m]
S[m] = X[m] + Y[m]
D[m] = X[m] - Y[m]
E[m] = exp(X[m])
R[m] = max(X[m], Y[m])
T[] = sum(m) X[m] * Y[m]
Z[] = sum(m) X[m] if m >= 2
"""


def test_presence_intersection_union_and_reductions_follow_teaal_semantics():
    a = np.array([1.0, 2.0, 3.0, 4.0])
    b = np.array([10.0, 20.0, 30.0, 40.0])
    env = execute_with_presence(parse_cascade(PRES), {"A": a, "B": b})
    assert env["X"].pres.tolist() == [True, True, False, False]
    assert env["Y"].pres.tolist() == [False, True, True, True]
    assert env["P"].pres.tolist() == [False, True, False, False]  # * intersects
    assert env["D"].pres.tolist() == [False, True, False, False]  # - intersects
    assert env["S"].pres.tolist() == [True, True, True, True]  # + unites
    assert env["E"].pres.tolist() == [True, True, False, False]  # unary keeps presence
    out = execute(parse_cascade(PRES), {"A": a, "B": b})
    assert out["S"].tolist() == [2.0, 24.0, 30.0, 40.0]  # absent counts as 0
    assert out["R"].tolist() == [2.0, 20.0, 30.0, 40.0]  # absent is -inf for max
    assert out["P"].tolist() == [0.0, 80.0, 0.0, 0.0]
    assert float(out["T"]) == 80.0  # reduction skips absent points
    assert not env["Z"].pres  # reduction over only absent elements is absent
    assert float(out["Z"]) == 0.0  # returned as 0


def test_block_sparsity_masks_whole_blocks_and_softmax_renormalises():
    text = THREE_PASS.replace("COND", "") + "sparsity QK : block(M=4, density=0.5)\n"
    c = parse_cascade(text, params={"SCALE": 1.0})
    rng = np.random.default_rng(1)
    q, k, v = (rng.standard_normal((1, 2, 16, 4)) for _ in range(3))
    env = execute_with_presence(c, {"Q": q, "K": k, "V": v})
    mask = env["QK"].pres[0, 0]  # [m, p]
    blocks = mask.reshape(4, 4, 4, 4).transpose(0, 2, 1, 3).reshape(16, 16)
    assert set(blocks.min(axis=1)) == set(blocks.max(axis=1))  # every block all-or-nothing
    assert abs(env["QK"].pres.mean() - 0.5) < 1e-12
    keep = np.swapaxes(env["QK"].pres, 2, 3)  # [b,h,p,m]
    s = np.where(keep, np.einsum("bhpe,bhme->bhpm", q, k), -np.inf)
    w = np.exp(s - s.max(-1, keepdims=True))
    w = np.where(keep, w, 0.0)
    ref = np.einsum("bhpm,bhmf->bhpf", w / np.maximum(w.sum(-1, keepdims=True), 1e-300), v)
    np.testing.assert_allclose(execute(c, {"Q": q, "K": k, "V": v})["AV"], ref, atol=1e-12)


def test_slice_sparsity_gives_m_by_1_slices_and_masks_are_deterministic():
    text = HEAD + "S[b,h,m,p] = Q[b,h,p,e] * K[b,h,m,e]\nsparsity S : slice(M=4, density=0.25)\n"
    c = parse_cascade(text)
    x = np.ones((1, 1, 8, 2))
    p1 = execute_with_presence(c, {"Q": x, "K": x, "V": x})["S"].pres[0, 0]
    p2 = execute_with_presence(c, {"Q": x, "K": x, "V": x})["S"].pres[0, 0]
    assert np.array_equal(p1, p2)
    groups = p1.reshape(8, 2, 4)  # [m, p-group, 4 queries]
    assert np.all(groups.min(-1) == groups.max(-1))  # 4 queries x 1 key slices
    assert p1.sum() == 4 * 4  # 16 slices, a quarter present


def test_explicit_mask_tensor_controls_presence():
    text = HEAD + (
        "tensor MASK[b,h,m,p] : bool\nS[b,h,m,p] = Q[b,h,p,e] * K[b,h,m,e]\n"
        "sparsity S : mask(MASK)\nO[b,h,p] = sum(m) S[b,h,m,p]\n"
    )
    c = parse_cascade(text)
    assert "MASK" in c.inputs
    rng = np.random.default_rng(2)
    q, k = rng.standard_normal((1, 1, 3, 2)), rng.standard_normal((1, 1, 5, 2))
    mask = rng.random((1, 1, 5, 3)) < 0.5
    out = execute(c, {"Q": q, "K": k, "V": k, "MASK": mask})
    s = np.einsum("bhpe,bhme->bhmp", q, k)
    np.testing.assert_allclose(out["O"], np.where(mask, s, 0).sum(2))


def test_unary_functions_scalars_and_params():
    text = """
param W = 3
tensor X[i] : fp32
Y[i] = silu(X[i]) + sigmoid(X[i]) * W - rsqrt(square(X[i]) + 1) / 2
"""
    x = np.linspace(-2, 2, 7)
    out = execute(parse_cascade(text), {"X": x})
    sig = 1 / (1 + np.exp(-x))
    np.testing.assert_allclose(out["Y"], x * sig + sig * 3 - 1 / np.sqrt(x * x + 1) / 2)
    text2 = "tensor X[i] : fp32\nS[] = sum(i) X[i] * X[i]\nN[] = sqrt(S[])\n"
    np.testing.assert_allclose(execute(parse_cascade(text2), {"X": x})["N"], np.linalg.norm(x))


def test_transposed_and_renamed_uses_of_a_tensor():
    text = "rank k : I\ntensor X[i,j] : fp32\nY[j,i] = X[i,j] * 1\nG[i,k] = X[i,j] * X[k,j]\n"
    c = parse_cascade(text)
    x = np.arange(6.0).reshape(2, 3)
    out = execute(c, {"X": x})
    np.testing.assert_allclose(out["Y"], x.T)
    np.testing.assert_allclose(out["G"], x @ x.T)


@settings(max_examples=60, deadline=None)
@given(data=st.data())
def test_random_contractions_match_numpy_einsum_and_count_one_mac_per_point(data):
    from workloads import count

    pick = st.lists(st.sampled_from("ijkl"), min_size=1, max_size=3, unique=True)
    a, b = data.draw(pick), data.draw(pick)
    used = sorted(set(a) | set(b))
    out = data.draw(st.lists(st.sampled_from(used), max_size=len(used), unique=True))
    sizes = {r: data.draw(st.integers(1, 4)) for r in used}
    text = (
        f"tensor A[{','.join(a)}] : fp32\ntensor B[{','.join(b)}] : fp32\n"
        f"C[{','.join(out)}] = A[{','.join(a)}] * B[{','.join(b)}]\n"
    )
    c = parse_cascade(text)
    rng = np.random.default_rng(0)
    x = rng.standard_normal([sizes[r] for r in a])
    y = rng.standard_normal([sizes[r] for r in b])
    got = execute(c, {"A": x, "B": y})["C"]
    want = np.einsum(f"{''.join(a)},{''.join(b)}->{''.join(out)}", x, y)
    np.testing.assert_allclose(got, want, atol=1e-12)
    params = {r.upper(): n for r, n in sizes.items()}
    counts = count(c, params)
    points = int(np.prod([sizes[r] for r in used]))
    if set(out) != set(used):
        assert counts.macs == points
    else:
        assert counts.ops == {"mul": points}
