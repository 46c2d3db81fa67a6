"""PIM recipes read the cascade they are given: shape from rank roles, not parameter names."""

from __future__ import annotations

import pytest

from archsim import load_arch
from archsim.errors import MappingError
from mappings import simulate_workload
from workloads import count, get_workload

#: A user's decode cascade: other tensor, rank and parameter names than the library's.
USER_DECODE = """
param B = 2
param H = 32
param NQ = 1
param T = 2048
param Dh = 128
param Dv = 128
param TT = 64
rank q : NQ
rank d : Dh
rank e : Dv
rank t -> t1, t0 : TT
tensor Qx[b,h,q,d] : fp16
tensor Kx[b,h,t,d] : fp16
tensor Vx[b,h,t,e] : fp16
S[b,h,t1,t0,q] = Qx[b,h,q,d] * Kx[b,h,t1,t0,d]
LM[b,h,t1,q] = max(t0) S[b,h,t1,t0,q]
RM[b,h,t1+1,q] = max(RM[b,h,t1,q], LM[b,h,t1,q]) init -inf
SLN[b,h,t1,t0,q] = exp(S[b,h,t1,t0,q] - RM[b,h,t1+1,q])
PRM[b,h,t1,q] = exp(RM[b,h,t1,q] - RM[b,h,t1+1,q])
SLD[b,h,t1,q] = sum(t0) SLN[b,h,t1,t0,q]
SPD[b,h,t1,q] = PRM[b,h,t1,q] * RD[b,h,t1,q]
RD[b,h,t1+1,q] = SPD[b,h,t1,q] + SLD[b,h,t1,q] init 0
SPNV[b,h,t1,q,e] = PRM[b,h,t1,q] * RNV[b,h,t1,q,e]
SLNV[b,h,t1,q,e] = sum(t0) SLN[b,h,t1,t0,q] * Vx[b,h,t1,t0,e]
RNV[b,h,t1+1,q,e] = SPNV[b,h,t1,q,e] + SLNV[b,h,t1,q,e] init 0
O[b,h,q,e] = RNV[b,h,T1,q,e] / RD[b,h,T1,q]
"""


def _decode(arch: str, workload: str, **params: object):
    return simulate_workload(arch, workload, params=params, dataflow="pim_decode")


def test_prefill_is_refused_naming_the_query_length():
    with pytest.raises(MappingError, match="query length") as exc:
        _decode("hbm3_pim", "decode", Sq=2048)
    assert exc.value.got == 2048
    assert exc.value.path == "workload.cascade"
    assert "query length 1" in str(exc.value.expected)


def test_non_pim_architecture_and_multi_pass_cascade_are_refused():
    with pytest.raises(MappingError, match="PIM"):
        _decode("fusemax", "decode")
    with pytest.raises(MappingError, match="pass"):
        _decode("hbm3_pim", "decode", variant="split_kv")


@pytest.mark.parametrize("arch", ["hbm_pim", "hbm3_pim"])
def test_mla_decode_streams_only_the_latent_cache(arch):
    B, L, Dc, Dr, H = 2, 4096, 512, 64, 128
    rep = _decode(arch, "mla", B=B, H=H, Sq=1, Skv=L, Dc=Dc, Dr=Dr)
    meta = rep.plan.meta
    latent = B * L * (Dc + Dr) * 2  # CKV + KR per token, fp16
    assert meta["pim_kv_bytes"] == latent
    assert meta["pim_kv_bytes"] < B * H * L * (128 + 128) * 2 / 16  # far from per-head K/V
    # the units stream CKV for the scores and again for the values, KR once
    assert meta["pim_streamed_bytes"] == B * L * (2 * Dc + Dr) * 2
    assert meta["pim_sharing"] == H  # all query heads read one latent stream
    counts = get_workload("mla", B=B, H=H, Sq=1, Skv=L, Dc=Dc, Dr=Dr).counts()
    assert meta["pim_macs"] + meta["pim_host_macs"] == counts.macs
    assert meta["pim_macs"] == B * H * L * (2 * Dc + Dr)
    assert rep.result.cycles > 0
    assert rep.result.energy_j > 0


def test_gqa_decode_moves_a_quarter_of_mha_kv_bytes():
    shape = {"B": 2, "H": 32, "Skv": 2048, "D": 128}
    gqa = _decode("hbm3_pim", "decode", Hkv=8, **shape)
    mha = _decode("hbm3_pim", "decode", **shape)
    assert gqa.plan.meta["pim_kv_bytes"] == pytest.approx(mha.plan.meta["pim_kv_bytes"] / 4)
    assert mha.plan.meta["pim_kv_bytes"] == 2 * 2 * 32 * 2048 * 128 * 2
    lib_gqa = _decode("hbm3_pim", "gqa", Sq=1, Hkv=8, **shape)
    assert lib_gqa.plan.meta["pim_model_cycles"] == gqa.plan.meta["pim_model_cycles"]


def test_user_decode_cascade_with_other_names_matches_the_library(tmp_path):
    path = tmp_path / "mydecode.cascade"
    path.write_text(USER_DECODE)
    user = simulate_workload("hbm3_pim", str(path), dataflow="pim_decode")
    lib = _decode("hbm3_pim", "decode", B=2, H=32, Skv=2048, D=128)
    assert user.result.cycles == lib.result.cycles
    for k in ("pim_model_cycles", "pim_kv_bytes", "pim_macs", "pim_model_energy_j"):
        assert user.plan.meta[k] == lib.plan.meta[k]
    with pytest.raises(MappingError, match="query length"):
        simulate_workload("hbm3_pim", str(path), params={"NQ": 16}, dataflow="pim_decode")


def test_pim_gemv_reads_its_shape_from_the_contraction(tmp_path):
    path = tmp_path / "gemv.cascade"
    path.write_text(
        "param NOUT = 4096\nparam KIN = 11008\nrank n : NOUT\nrank k : KIN\n"
        "tensor W[n,k] : fp16\ntensor X[k] : fp16\nY[n] = W[n,k] * X[k]\n"
    )
    user = simulate_workload("aim_pim", str(path), dataflow="pim_gemv")
    lib = simulate_workload(
        "aim_pim", "gemm", params={"M": 1, "N": 4096, "K": 11008}, dataflow="pim_gemv"
    )
    assert user.plan.meta["pim_weight_bytes"] == 4096 * 11008 * 2
    assert user.plan.meta["pim_macs"] == 4096 * 11008
    assert user.plan.meta["pim_model_cycles"] == lib.plan.meta["pim_model_cycles"]
    assert user.result.cycles == lib.result.cycles


def test_pim_gemv_refuses_zero_or_several_contractions(tmp_path):
    two = tmp_path / "two.cascade"
    two.write_text(
        "tensor W1[n,k] : fp16\ntensor W2[o,n] : fp16\ntensor X[k] : fp16\n"
        "H[n] = W1[n,k] * X[k]\nY[o] = W2[o,n] * H[n]\n"
    )
    with pytest.raises(MappingError, match="one contraction.*has 2"):
        simulate_workload(
            "hbm3_pim", str(two), params={"N": 64, "K": 64, "O": 64}, dataflow="pim_gemv"
        )
    with pytest.raises(MappingError, match="has 0"):
        simulate_workload("hbm3_pim", "softmax", dataflow="pim_gemv")
    with pytest.raises(MappingError, match="PIM"):
        simulate_workload("h100", "gemm", dataflow="pim_gemv")


@pytest.mark.parametrize("arch", ["hbm3_pim", "hbm_pim", "aim_pim"])
@pytest.mark.parametrize(
    ("workload", "params"),
    [("decode", {"Skv": 4096}), ("gemm", {"M": 1, "N": 4096, "K": 4096})],
)
@pytest.mark.parametrize("engine", ["event", "analytic"])
def test_cli_answer_is_the_dram_timing_model(arch, workload, params, engine):
    """One PIM model: the engine's cycles are the DRAM-timing stream's (row switches,
    refresh and the command gap as idle lanes), the energy is the PIM energy model's, and
    the in-bank reads are DRAM bytes (at least the compulsory bytes of the cascade)."""
    rep = simulate_workload(arch, workload, params=params, engine=engine)
    r, meta = rep.result, rep.plan.meta
    assert r.cycles == pytest.approx(meta["pim_model_cycles"], rel=0.01)
    assert r.energy_j == pytest.approx(meta["pim_model_energy_j"], rel=0.01)
    dram = load_arch(arch).dram.name
    banks = r.bytes_by_level[f"{dram}.banks"]
    assert banks > 0
    assert r.dram_bytes == pytest.approx(r.bytes_by_level[dram] + banks)
    w = get_workload(workload, **params)
    assert r.dram_bytes >= count(w.cascade, w.params).compulsory_bytes
