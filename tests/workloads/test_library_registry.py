"""Workload parameters: defaults, aliases, model presets and clear errors."""

from __future__ import annotations

import dataclasses

import pytest

from archsim.errors import SpecError, WorkloadError
from workloads.library import (
    Workload,
    get_model,
    get_workload,
    list_models,
    list_workloads,
    parse_set_options,
)

REQUIRED = [
    "mha",
    "gqa",
    "mla",
    "sqa",
    "cca",
    "ccgqa",
    "linear",
    "block_sparse",
    "fg_sparse",
    "decode",
    "gemm",
    "swiglu",
    "rmsnorm",
    "layernorm",
    "softmax",
]


def test_library_names_the_required_workloads() -> None:
    assert set(REQUIRED) <= set(list_workloads())


@pytest.mark.parametrize("name", REQUIRED)
def test_every_workload_builds_with_defaults(name: str) -> None:
    w = get_workload(name)
    assert isinstance(w, Workload)
    assert w.cascade.name == name
    assert w.counts().flops > 0
    assert set(w.sizes) == set(w.cascade.rank_sizes())


def test_attention_params_resolve_with_defaults() -> None:
    w = get_workload("mha", B=2, H=4, S=256, D=64)
    assert w.params["Sq"] == w.params["Skv"] == 256
    assert (w.params["Hkv"], w.params["Dv"]) == (4, 64)
    assert w.params["causal"] is False
    assert w.params["passes"] == 1
    assert (w.sizes["m"], w.sizes["m0"], w.sizes["m1"]) == (256, 64, 4)


def test_workload_is_frozen_and_hashable() -> None:
    w = get_workload("gemm", M=2, N=3, K=4)
    with pytest.raises(dataclasses.FrozenInstanceError):
        w.name = "x"  # type: ignore[misc]
    assert w == get_workload("gemm", M=2, N=3, K=4)
    assert len({w, get_workload("gemm", M=2, N=3, K=4)}) == 1


@pytest.mark.parametrize(
    ("name", "params", "path", "fragment"),
    [
        ("mha", {"Bx": 1}, "mha.Bx", "unknown parameter"),
        ("mha", {"H": 0}, "mha.H", "positive size"),
        ("mha", {"D": 2.5}, "mha.D", "an integer"),
        ("gqa", {"H": 6, "Hkv": 4}, "gqa.Hkv", "divisor of H = 6"),
        ("mha", {"H": 8, "Hkv": 2}, "mha.Hkv", "use gqa"),
        ("mha", {"passes": 4}, "mha.passes", "one of [1, 2, 3]"),
        ("mha", {"causal": "maybe"}, "mha.causal", "true or false"),
        ("mha", {"Sq": 8, "Skv": 4, "causal": True}, "mha.Sq", "Sq <= Skv"),
        ("mha", {"S": 8, "Sq": 4}, "mha.Sq", "disagree"),
        ("sqa", {"H": 8, "Hq": 16}, "sqa.Hq", "Hq <= H"),
        ("cca", {"H": 6, "C": 4}, "cca.C", "divisor of H"),
        ("decode", {"variant": "paged"}, "decode.variant", "split_kv"),
        ("block_sparse", {"density": 1.5}, "block_sparse.density", "density <= 1"),
        ("linear", {"decay": 0.0}, "linear.decay", ">= 1e-09"),
        ("mla", {"model": "llama3-8b"}, "mla.model", "MLA"),
        ("nope", {}, "workload", "one of"),
    ],
)
def test_bad_parameters_name_the_parameter_expected_and_given(
    name: str, params: dict, path: str, fragment: str
) -> None:
    with pytest.raises(WorkloadError) as info:
        get_workload(name, **params)
    assert info.value.path == path
    assert fragment in str(info.value)


def test_model_preset_fills_shapes_and_explicit_params_win() -> None:
    w = get_workload("gqa", model="llama3-8b", Sq=128)
    assert (w.params["H"], w.params["Hkv"], w.params["D"]) == (32, 8, 128)
    assert (w.params["Sq"], w.params["Skv"]) == (128, 128)
    mla = get_workload("mla", model="deepseek-v3", S=64)
    assert (mla.params["H"], mla.params["Dc"], mla.params["Dr"]) == (128, 512, 64)
    assert (mla.params["Dn"], mla.params["Dv"]) == (128, 128)
    ffn = get_workload("swiglu", model="llama3-70b", T=16)
    assert (ffn.params["Dm"], ffn.params["F"]) == (8192, 28672)


def test_unknown_model_lists_the_presets() -> None:
    with pytest.raises(WorkloadError, match="llama3-8b"):
        get_model("llama-9")


def test_presets_cover_the_issue_and_carry_sources() -> None:
    names = {
        "llama3-8b",
        "llama3-70b",
        "deepseek-v3",
        "bert-base",
        "bert-large",
        "gpt3-175b",
        "wan2.1-14b",
        "fusemax-bert",
        "fusemax-trxl",
        "fusemax-t5",
        "fusemax-xlm",
    }
    assert names <= set(list_models())
    for n in list_models():
        m = get_model(n)
        assert m.source
        assert m.heads % m.kv_heads == 0
        assert m.v_head_dim > 0


@pytest.mark.parametrize(
    ("name", "heads", "head_dim", "ffn", "d_model"),
    [
        ("fusemax-bert", 12, 64, 3072, 768),
        ("fusemax-trxl", 16, 64, 4096, 1024),
        ("fusemax-t5", 8, 64, 2048, 512),
        ("fusemax-xlm", 16, 128, 8192, 2048),
    ],
)
def test_fusemax_presets_match_the_artifact_table(
    name: str, heads: int, head_dim: int, ffn: int, d_model: int
) -> None:
    m = get_model(name)
    assert (m.heads, m.head_dim, m.ffn_dim, m.d_model, m.batch) == (
        heads,
        head_dim,
        ffn,
        d_model,
        64,
    )


def test_video_dit_preset_exposes_clip_token_counts() -> None:
    m = get_model("wan2.1-14b")
    assert (m.heads, m.head_dim, m.d_model) == (40, 128, 5120)
    assert (m.seq_480p, m.seq_720p) == (21 * 30 * 52, 21 * 45 * 80) == (32760, 75600)
    big = get_model("deepseek-v3")
    assert (big.kv_lora_rank, big.rope_dim, big.nope_dim, big.v_head_dim) == (512, 64, 128, 128)


def test_set_options_parse_ints_floats_bools_and_text() -> None:
    got = parse_set_options(["B=4", "density=0.3", "causal=true", "variant=split_kv", "x=False"])
    assert got == {"B": 4, "density": 0.3, "causal": True, "variant": "split_kv", "x": False}
    assert isinstance(got["B"], int)
    assert got["causal"] is True


@pytest.mark.parametrize("bad", ["B", "=4", "B=", "1x=2"])
def test_set_options_reject_malformed_items(bad: str) -> None:
    with pytest.raises(SpecError, match="KEY=VALUE"):
        parse_set_options([bad])


def test_library_names_are_reexported_by_the_workloads_package() -> None:
    import workloads

    assert workloads.get_workload("gemm", M=2, N=2, K=2).name == "gemm"
    assert workloads.list_workloads() == list_workloads()
    assert workloads.get_model("bert-base").heads == 12
