"""GPT-2 / GPT-3 presets (PIM-GPT's eight models) and the GPT-2 block of the model graph."""

from __future__ import annotations

import pytest

from models import ModelError, ModelSpec, build_graph, from_hf_config, from_preset, simulate_model
from models._spec import GPT2_VOCAB, GPT_PRESETS

#: Hugging Face ``GPT2LMHeadModel(GPT2Config(n_layer, n_embd, n_head, n_positions))
#: .num_parameters()`` (transformers 5.25, on the meta device): every weight, bias, LayerNorm
#: gain/bias and the position table, the LM head tied to the embedding.
HF_PARAMETERS = {
    "gpt2-small": 124_439_808,
    "gpt2-medium": 354_823_168,
    "gpt2-large": 774_030_080,
    "gpt2-xl": 1_557_611_200,
    "gpt3-xl": 1_315_723_264,  # 16 heads x 128, n_positions 2048
}


def test_pimgpt_models_are_presets_with_the_gpt2_block() -> None:
    assert set(GPT_PRESETS) == {
        "gpt2-small",
        "gpt2-medium",
        "gpt2-large",
        "gpt2-xl",
        "gpt3-small",
        "gpt3-medium",
        "gpt3-large",
        "gpt3-xl",
    }
    for name in GPT_PRESETS:
        s = from_preset(name)
        assert (s.family, s.norm, s.ffn, s.attention) == ("decoder", "layernorm", "gelu", "mha")
        assert not s.rope
        assert s.bias
        assert s.tied_embeddings
        assert s.ffn_dim == 4 * s.d_model
        assert s.heads * s.head_dim == s.d_model
        assert s.vocab == GPT2_VOCAB


@pytest.mark.parametrize("name", sorted(HF_PARAMETERS))
def test_parameter_count_equals_hugging_face(name: str) -> None:
    assert from_preset(name).param_count() == HF_PARAMETERS[name]


def test_gpt3_sizes_match_the_papers_table() -> None:
    # Brown et al. 2020, Table 2.1: 125M, 350M, 760M, 1.3B
    for name, billions in (
        ("gpt3-small", 0.125),
        ("gpt3-medium", 0.350),
        ("gpt3-large", 0.760),
        ("gpt3-xl", 1.3),
    ):
        assert from_preset(name).param_count() / 1e9 == pytest.approx(billions, rel=0.02)


def test_gpt2_config_json_gives_the_preset() -> None:
    cfg = {"model_type": "gpt2", "n_embd": 768, "n_head": 12, "n_layer": 12}
    cfg |= {"vocab_size": 50257, "n_positions": 1024}
    skip = {"name", "source"}
    got = from_hf_config(cfg, name="gpt2").to_dict()
    want = from_preset("gpt2-small").to_dict()
    assert {k: v for k, v in got.items() if k not in skip} == {
        k: v for k, v in want.items() if k not in skip
    }


def test_decode_graph_of_a_gpt2_block() -> None:
    s = from_preset("gpt2-small")
    g = build_graph(s, phase="decode", batch=1, seq=1024)
    embed, layer, head = g.stages
    assert [op.name for op in embed.ops] == ["embed_gather", "pos_embed_add"]
    assert [op.name for op in layer.ops] == [
        "attn_norm",
        "qkv_proj",
        "qkv_proj_bias",
        "kv_cache_write",
        "attention",
        "o_proj",
        "o_proj_bias",
        "residual_add",
        "ffn_norm",
        "ffn_up",
        "ffn_up_bias",
        "ffn_act",
        "ffn_down",
        "ffn_down_bias",
        "residual_add",
    ]
    ops = {op.name: op for op in layer.ops}
    # each bias is read once, in its GEMM's epilogue: N fp16 elements, no kernel of its own
    for gemm in ("qkv_proj", "o_proj", "ffn_up", "ffn_down"):
        bias = ops[f"{gemm}_bias"]
        assert bias.special == "fused_read"
        assert bias.bytes == 2 * ops[gemm].params["N"]
    assert ops["ffn_act"].workload == "gelu"
    assert ops["attention"].params == {
        "B": 1,
        "H": 12,
        "Hkv": 12,
        "Skv": 1024,
        "D": 64,
        "Dv": 64,
        "dtype_bits": 16,
    }
    assert [op.name for op in head.ops] == ["final_norm", "lm_head"]
    assert head.ops[1].params["N"] == GPT2_VOCAB


def test_a_gpu_step_counts_its_kernels() -> None:
    rep = simulate_model("gpt2-small", "h100", phase="decode", batch=1, seq=1024)
    df = rep.to_frame().set_index("op")
    # split-KV decode + combine at 1024 keys; the K = 3072 GEMV runs split-K + reduce (12
    # output tiles of 8x64 fill a tenth of the SMs; cuBLAS's choice weighs the reduce
    # kernel's time, not the host launch gap)
    assert df.loc["attention", "kernels"] == 2
    assert df.loc["ffn_down", "kernels"] == 2
    assert df.loc["qkv_proj_bias", "kernels"] == 0
    # per layer: 2 norms, 4 GEMMs (+1 split-K reduce), K/V write, attention (2), GELU,
    # 2 residual adds = 13; then 2 embedding kernels, the final norm and the LM head
    assert rep.kernels == 12 * 13 + 4
    assert rep.to_dict()["kernels"] == rep.kernels
    assert simulate_model("gpt2-small", "aim_pim", phase="decode", seq=1024).kernels == 0


def test_bias_reads_on_pim_cross_the_host_interface() -> None:
    rep = simulate_model("gpt2-small", "aim_pim", phase="decode", batch=1, seq=1024)
    assert rep.complete
    df = rep.to_frame().set_index("op")
    row = df.loc["ffn_up_bias"]
    # 3072 fp16 elements over the 512 GB/s module interface (aim_pim's DRAM bandwidth)
    assert row["time_s"] == pytest.approx(3072 * 2 / 512e9, rel=0.01)
    assert row["dataflow"] == "in the GEMM epilogue"
    assert df.loc["ffn_up", "dataflow"] == "pim_gemv"
    assert df.loc["attention", "dataflow"] == "pim_decode"


def test_bias_is_refused_where_the_graph_has_no_dense_block() -> None:
    dsv3 = from_preset("deepseek-v3").to_dict()
    dsv3["bias"] = True
    with pytest.raises(ModelError, match="bias"):
        ModelSpec(**dsv3)


def test_cli_runs_a_gpt_preset_and_prints_the_kernels(capsys) -> None:
    from archsim.cli import main

    argv = ["model", "gpt2-small", "--arch", "h100", "--phase", "decode", "--set", "S=1024"]
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert "qkv_proj_bias" in out
    assert "| 160 GPU kernels per device" in out
    assert main(["model", "--list"]) == 0
    assert "gpt3-xl" in capsys.readouterr().out
