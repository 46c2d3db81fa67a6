"""Counting identities of the library cascades (issue 2, "What it must show")."""

from __future__ import annotations

import pytest

from workloads.library import get_workload

B, H, S, D = 4, 16, 4096, 128
DENSE = 2 * B * H * S * S * D  # QK^T and AV: B*H*S*S*D MACs each


@pytest.mark.parametrize("passes", [1, 2, 3])
def test_mha_noncausal_macs_are_exactly_2_b_h_s2_d(passes: int) -> None:
    w = get_workload("mha", B=B, H=H, S=S, D=D, passes=passes)
    assert w.counts().macs == DENSE


@pytest.mark.parametrize("passes", [1, 2, 3])
def test_causal_counts_score_work_up_to_the_diagonal(passes: int) -> None:
    w = get_workload("mha", B=B, H=H, S=S, D=D, passes=passes, causal=True)
    assert w.counts().macs == 2 * B * H * D * S * (S + 1) // 2


def test_causal_cross_attention_is_bottom_right_aligned() -> None:
    sq, skv = 3, 7  # query i sees keys 0 .. i + 4: 5 + 6 + 7 = 18 pairs
    w = get_workload("mha", B=1, H=1, Sq=sq, Skv=skv, D=1, causal=True, passes=3)
    qk = next(e for e in w.counts().einsums if e.name == "QK")
    assert qk.macs == 18


def test_cross_attention_macs_scale_with_sq_times_skv() -> None:
    w = get_workload("mha", B=2, H=4, Sq=128, Skv=1024, D=64, Dv=32)
    assert w.counts().macs == 2 * 4 * 128 * 1024 * (64 + 32)


@pytest.mark.parametrize("hkv", [8, 1])
def test_gqa_and_mqa_change_compulsory_bytes_not_macs(hkv: int) -> None:
    mha = get_workload("mha", B=B, H=H, S=S, D=D).counts()
    gqa = get_workload("gqa", B=B, H=H, Hkv=hkv, S=S, D=D).counts()
    assert gqa.macs == mha.macs
    elem = 2  # bf16
    q_and_o = 2 * B * H * S * D * elem
    kv = 2 * B * hkv * S * D * elem
    assert gqa.compulsory_bytes == q_and_o + kv
    assert gqa.compulsory_bytes < mha.compulsory_bytes


@pytest.mark.parametrize("hq", [8, 4])
def test_sqa_scales_macs_by_hq_over_h(hq: int) -> None:
    mha = get_workload("mha", B=B, H=H, S=S, D=D).counts()
    sqa = get_workload("sqa", B=B, H=H, Hq=hq, S=S, D=D).counts()
    assert sqa.macs * H == mha.macs * hq


def test_split_kv_and_lean_do_dense_work_plus_a_small_combine() -> None:
    kw = {"B": 2, "H": 8, "Hkv": 2, "Skv": 4096, "D": 128}
    plain = get_workload("decode", **kw).counts().macs
    assert plain == 2 * 2 * 8 * 4096 * 128
    for variant in ("split_kv", "lean"):
        c = get_workload("decode", variant=variant, **kw).counts()
        qk = next(e for e in c.einsums if e.name == "QK").macs
        assert qk == plain / 2
        assert plain <= c.macs < plain * 1.01


@pytest.mark.parametrize("name", ["block_sparse", "fg_sparse"])
def test_sparse_attention_scales_work_by_density(name: str) -> None:
    dense = get_workload("mha", B=1, H=2, S=1024, D=64).counts().macs
    sparse = get_workload(name, B=1, H=2, S=1024, D=64, block=64, density=0.25).counts()
    assert sparse.macs == pytest.approx(0.25 * dense)


def test_linear_attention_macs_follow_the_chunked_algorithm() -> None:
    b, h, s, d, c = 1, 2, 256, 16, 64
    w = get_workload("linear", B=b, H=h, S=s, D=d, C=c)
    n = s // c
    intra = 2 * b * h * n * (c * (c + 1) // 2) * d  # scores and AI.V, causal within chunks
    state = b * h * s * d * d  # K^T V per chunk
    inter = b * h * s * d * d  # Q . state
    assert w.counts().macs == intra + state + inter


def test_gemm_swiglu_norm_counts() -> None:
    assert get_workload("gemm", M=64, N=32, K=16).counts().macs == 64 * 32 * 16
    assert get_workload("swiglu", T=8, Dm=16, F=32).counts().macs == 3 * 8 * 16 * 32
    rms = get_workload("rmsnorm", T=8, Dm=16).counts()
    assert rms.macs == 8 * 16
    assert rms.ops["rsqrt"] == 8
    sm = get_workload("softmax", R=4, N=10).counts()
    assert (sm.ops["exp"], sm.ops["div"]) == (40, 40)


def test_mla_counts_absorbed_projections_and_latent_scores() -> None:
    b, h, s, dc, dr, dn, dv = 1, 4, 32, 16, 4, 8, 8
    w = get_workload("mla", B=b, H=h, S=s, Dc=dc, Dr=dr, Dn=dn, Dv=dv, passes=3)
    expected = b * h * s * (dn * dc + s * dc + s * dr + s * dc + dc * dv)
    assert w.counts().macs == expected


def test_cca_attention_macs_shrink_by_the_compression_factor() -> None:
    kw = {"B": 1, "H": 16, "S": 512, "D": 64}
    mha = get_workload("mha", **kw).counts().macs
    cca = get_workload("cca", C=4, **kw)
    attn = sum(e.macs for e in cca.counts().einsums if e.name in ("QK", "SLNV"))
    assert attn * 4 == mha
