"""Model specs from presets and config.json; layer graphs (phases, TP split, MoE)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from models import (
    ModelError,
    build_graph,
    expected_experts,
    from_hf_config,
    from_preset,
    load_model,
)

CONFIGS = Path(__file__).resolve().parents[2] / "models" / "configs"
LLAMA_CFG = CONFIGS / "llama3-8b.config.json"

#: DeepSeek-V3's config.json (deepseek-ai/DeepSeek-V3), architecture fields.
DSV3 = {
    "model_type": "deepseek_v3",
    "hidden_size": 7168,
    "num_hidden_layers": 61,
    "num_attention_heads": 128,
    "num_key_value_heads": 128,
    "intermediate_size": 18432,
    "moe_intermediate_size": 2048,
    "n_routed_experts": 256,
    "n_shared_experts": 1,
    "num_experts_per_tok": 8,
    "first_k_dense_replace": 3,
    "q_lora_rank": 1536,
    "kv_lora_rank": 512,
    "qk_nope_head_dim": 128,
    "qk_rope_head_dim": 64,
    "v_head_dim": 128,
    "vocab_size": 129280,
}


def _ops(graph, stage: str) -> dict[str, object]:
    (st,) = [s for s in graph.stages if s.name == stage]
    return {op.name: op for op in st.ops}


def test_config_json_gives_the_preset_shapes_and_8b_parameters() -> None:
    cfg = from_hf_config(LLAMA_CFG)
    pre = from_preset("llama3-8b")
    assert cfg.name == "llama3-8b"
    skip = {"name", "source"}
    assert {k: v for k, v in cfg.to_dict().items() if k not in skip} == {
        k: v for k, v in pre.to_dict().items() if k not in skip
    }
    assert cfg.attention == "gqa"
    assert cfg.ffn == "swiglu"
    assert cfg.norm == "rmsnorm"
    # Meta reports 8.03B parameters for Llama 3 8B
    assert cfg.param_count() / 1e9 == pytest.approx(8.03, abs=0.005)
    # KV cache: 32 layers x (K + V) x 8 heads x 128 x 2 B = 128 KiB per token
    assert cfg.kv_cache_bytes(1, 1) == 131072
    assert cfg.kv_cache_bytes(4, 8192) == 4 * 8192 * 131072


def test_deepseek_v3_config_reads_mla_and_moe_fields() -> None:
    s = from_hf_config(DSV3, name="dsv3")
    assert (s.attention, s.kv_lora_rank, s.rope_dim, s.nope_dim, s.q_lora_rank) == (
        "mla",
        512,
        64,
        128,
        1536,
    )
    assert (s.experts, s.active_experts, s.shared_experts, s.moe_ffn_dim) == (256, 8, 1, 2048)
    assert (s.dense_layers, s.moe_layers) == (3, 58)
    # DeepSeek-V3: 671B total parameters (the MTP module excluded)
    assert s.param_count() / 1e9 == pytest.approx(671, abs=1)
    # the latent cache: (512 + 64) elements per token per layer
    assert s.kv_cache_bytes(1, 1) == 61 * 576 * 2
    assert s.to_dict() == {
        **from_preset("deepseek-v3").to_dict(),
        "name": "dsv3",
        "source": s.source,
    }


@pytest.mark.parametrize(
    ("cfg", "match"),
    [
        ({"model_type": "falcon"}, r"model_type.*one of \['bert'"),
        ({"model_type": "llama"}, r"config\.json\.hidden_size.*missing|missing.*hidden_size"),
        (
            {"model_type": "llama", "hidden_size": "4096", "num_attention_heads": 32},
            r"config\.json\.hidden_size",
        ),
        (
            {
                "model_type": "llama",
                "hidden_size": 4096,
                "num_attention_heads": 32,
                "num_key_value_heads": 5,
                "intermediate_size": 14336,
                "num_hidden_layers": 32,
                "vocab_size": 128256,
            },
            r"kv_heads",
        ),
        (
            {"model_type": "llama", "hidden_size": 4095, "num_attention_heads": 32},
            r"num_attention_heads.*divisor of hidden_size",
        ),
        ({**DSV3, "num_experts_per_tok": 0}, r"num_experts_per_tok"),
        ({**DSV3, "hidden_act": "gelu", "model_type": "llama"}, r"hidden_act"),
    ],
)
def test_bad_config_fields_are_named(cfg: dict, match: str) -> None:
    with pytest.raises(ModelError, match=match):
        from_hf_config(cfg)


def test_bad_config_files(tmp_path: Path) -> None:
    bad = tmp_path / "config.json"
    bad.write_text("{not json")
    with pytest.raises(ModelError, match="not JSON"):
        from_hf_config(bad)
    with pytest.raises(ModelError, match="no such file"):
        load_model(tmp_path / "missing.json")
    with pytest.raises(ModelError, match=r"no layer graph.*llama3-8b"):
        load_model("llama2-7b")
    good = tmp_path / "my-model" / "config.json"
    good.parent.mkdir()
    good.write_text(json.dumps(json.loads(LLAMA_CFG.read_text())))
    assert load_model(good).name == "my-model"


def test_decode_graph_of_llama_70b_split_over_8_devices() -> None:
    g = build_graph(from_preset("llama3-70b"), phase="decode", batch=4, seq=1000, tp=8)
    assert g.tokens == 4
    layer = [s for s in g.stages if s.name == "layer"][0]
    assert layer.repeat == 80
    ops = _ops(g, "layer")
    # 64/8 query heads, 8/8 KV heads; Megatron: column-parallel QKV and gate/up,
    # row-parallel O and down
    assert dict(ops["qkv_proj"].params) == {"M": 4, "K": 8192, "N": (8 + 2) * 128, "dtype_bits": 16}
    assert ops["o_proj"].params["K"] == 8 * 128
    assert ops["ffn_gate_up"].params["N"] == 2 * 28672 // 8
    assert ops["ffn_down"].params["K"] == 28672 // 8
    att = ops["attention"]
    assert att.workload == "decode"
    assert (att.params["B"], att.params["H"], att.params["Hkv"], att.params["Skv"]) == (
        4,
        8,
        1,
        1000,
    )
    ars = [op for op in layer.ops if op.collective == "all_reduce"]
    assert len(ars) == 2
    assert all(op.bytes == 4 * 8192 * 2 for op in ars)
    head = _ops(g, "head")
    assert head["lm_head"].params["N"] == 128256 // 8
    assert head["logits_all_gather"].bytes == 4 * 128256 * 2


def test_prefill_graph_and_one_device() -> None:
    g = build_graph(from_preset("llama3-8b"), phase="prefill", batch=2, seq=512, tp=1)
    assert g.tokens == 1024
    ops = _ops(g, "layer")
    assert not any(op.collective for _, op in g.ops())
    att = ops["attention"]
    assert att.workload == "gqa"
    assert att.params["causal"] is True
    assert (att.params["Sq"], att.params["Skv"], att.params["Hkv"]) == (512, 512, 8)
    assert _ops(g, "head")["lm_head"].params["M"] == 2  # last token of each prompt
    bert = build_graph(from_preset("bert-base"), phase="prefill", batch=1, seq=128)
    bops = _ops(bert, "layer")
    assert bops["attention"].workload == "mha"
    assert bops["attention"].params["causal"] is False
    assert bops["ffn_act"].workload == "gelu"
    assert bops["attn_norm"].workload == "layernorm"
    assert [s.name for s in bert.stages] == ["embed", "layer"]  # an encoder has no LM head


def test_moe_routing_fraction() -> None:
    assert expected_experts(256, 8, 1) == pytest.approx(8)
    assert expected_experts(256, 8, 16) == pytest.approx(256 * (1 - (1 - 8 / 256) ** 16))
    assert expected_experts(256, 8, 100_000) == pytest.approx(256)
    s = from_preset("deepseek-v3")
    one = _ops(build_graph(s, phase="decode", batch=1, seq=64), "moe layer")
    assert (one["experts_gate_up"].params["G"], one["experts_gate_up"].params["M"]) == (8, 1)
    big = _ops(build_graph(s, phase="prefill", batch=1, seq=4096, tp=8), "moe layer")
    gu = big["experts_gate_up"].params
    assert (gu["G"], gu["M"], gu["N"]) == (256, 4096 * 8 // 256, 2 * 2048 // 8)
    assert big["shared_expert_gate_up"].params["N"] == 2 * 2048 // 8
    assert big["attention"].workload == "mla"
    assert big["attention"].params["H"] == 16
    dense = _ops(build_graph(s, phase="decode", batch=1, seq=64), "dense layer")
    assert dense["ffn_gate_up"].params["N"] == 2 * 18432


@pytest.mark.parametrize(
    ("kw", "match"),
    [
        ({"phase": "decode", "tp": 3}, r"tp.*divisor of heads = 64"),
        ({"phase": "decode", "tp": 128}, r"tp.*kv_heads|tp.*heads"),
        ({"phase": "train"}, r"phase.*prefill"),
        ({"phase": "decode", "batch": 0}, r"B.*positive"),
        ({"phase": "decode", "seq": -1}, r"S.*positive"),
    ],
)
def test_bad_graph_requests(kw: dict, match: str) -> None:
    with pytest.raises(ModelError, match=match):
        build_graph(from_preset("llama3-70b"), **kw)


def test_an_encoder_or_a_dit_has_no_decode_step() -> None:
    with pytest.raises(ModelError, match="encoder"):
        build_graph(from_preset("bert-base"), phase="decode")
    with pytest.raises(ModelError, match="diffusion transformer"):
        build_graph(from_preset("wan2.1-14b"), phase="decode")


def test_wan_dit_block() -> None:
    s = from_preset("wan2.1-14b")
    # 40 blocks of self- and cross-attention (8 d^2) and a GELU FFN (2 d ffn): ~14B
    assert s.param_count() / 1e9 == pytest.approx(14.0, abs=0.3)
    assert s.kv_cache_bytes(1, 32760) == 0
    g = build_graph(s, phase="prefill", batch=1, seq=32760, tp=8)
    layer = [st for st in g.stages if st.name == "layer"][0]
    ops = {op.name: op for op in layer.ops}
    assert ops["self_attention"].params["Skv"] == 32760
    assert ops["self_attention"].params["H"] == 40 // 8
    assert ops["cross_attention"].params["Skv"] == 512  # umT5 text tokens
    assert ops["cross_kv_proj"].params["M"] == 512
    assert ops["qkv_proj"].params["N"] == 3 * 5120 // 8
    assert ops["ffn_act"].workload == "gelu"
    names = [op.name for op in layer.ops]
    assert names.count("modulate") == 2
    assert names.count("gated_residual") == 2
    assert sum(op.collective == "all_reduce" for op in layer.ops) == 3
