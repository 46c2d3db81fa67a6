"""Placement rules (models/_placement.py): what runs where when ``auto`` does not take an op
as it is, each rule stated in the report."""

from __future__ import annotations

import math

import pytest

from archsim.errors import InfeasibleMappingError, MappingError
from mappings import simulate_workload
from models import simulate_model
from models._placement import has_wgmma, per_query_keys


def _row(rep, op: str, stage: str = "layer"):  # noqa: ANN001, ANN202
    (r,) = [r for r in rep.table() if r.op == op and r.stage == stage]
    return r


@pytest.mark.parametrize(("sq", "skv"), [(1024, 1024), (7, 7), (64, 4096), (3, 10)])
def test_per_query_keys_is_the_mean_causal_prefix(sq: int, skv: int) -> None:
    # bottom-right aligned causal mask: query i (0-based) sees skv - sq + 1 + i keys
    prefix = [skv - sq + 1 + i for i in range(sq)]
    p = {"Sq": sq, "Skv": skv, "causal": True}
    assert per_query_keys(p) * sq == sum(prefix)
    assert per_query_keys({**p, "causal": False}) == skv
    assert per_query_keys({"Sq": 1, "Skv": skv}) is None  # already one query: no rule


def test_a_hopper_kernel_is_not_chosen_on_an_ampere_gpu() -> None:
    """``auto`` ranks flash3 (sm90 wgmma/TMA) first on every GPU; on the A100, which has no
    wgmma path, the model runs FlashAttention-2 instead and says so."""
    from archsim import load_arch

    assert not has_wgmma(load_arch("a100"))
    assert has_wgmma(load_arch("h100"))
    p = {"B": 1, "H": 32, "Hkv": 8, "Sq": 1024, "Skv": 1024, "D": 128, "Dv": 128}
    p |= {"causal": True, "dtype_bits": 16}
    assert simulate_workload("a100", "gqa", params=p, engine="analytic").dataflow == "flash3"
    rep = simulate_model("llama3-8b", "a100", phase="prefill", seq=1024, engine="analytic")
    att = _row(rep, "attention")
    assert att.dataflow == "flash2"
    alone = simulate_workload("a100", "gqa", params=p, dataflow="flash2", engine="analytic")
    assert att.seconds == pytest.approx(float(alone.result.seconds) - _credit("a100"))
    assert any("flash3" in n and "a100" in n and n.startswith("attention:") for n in rep.notes)
    h100 = simulate_model("llama3-8b", "h100", phase="prefill", seq=1024, engine="analytic")
    assert _row(h100, "attention").dataflow == "flash3"


def _credit(arch: str) -> float:
    """Launch minus gap: what a kernel after the first saves in the step."""
    from archsim.gpu import gpu_model

    cal = gpu_model(arch).cal
    return cal.launch_s - cal.gap_s


def test_a_shape_auto_cannot_run_takes_the_next_dataflow_that_can() -> None:
    """DeepSeek-V3's MLA decode (576-wide latent keys) needs a 192 KiB CTA in the decode
    recipes, over the A100's 163 KiB: split_kv refuses it, and the op runs on the next
    candidate that simulates it (``auto`` passes over an infeasible recipe itself)."""
    mla = {"B": 1, "H": 128, "Sq": 1, "Skv": 1024, "Dc": 512, "Dr": 64, "Dn": 128, "Dv": 128}
    mla |= {"causal": False, "dtype_bits": 16}
    with pytest.raises((MappingError, InfeasibleMappingError), match="shared memory"):
        simulate_workload("a100", "mla", params=mla, dataflow="split_kv", engine="analytic")
    assert simulate_workload("a100", "mla", params=mla, engine="analytic").dataflow == "gpu_unfused"
    rep = simulate_model("deepseek-v3", "a100", phase="decode", seq=1024, engine="analytic")
    assert rep.complete
    att = _row(rep, "attention", "moe layer")
    assert att.dataflow == "gpu_unfused"
    alone = simulate_workload("a100", "mla", params=mla, dataflow="gpu_unfused", engine="analytic")
    assert att.seconds == pytest.approx(float(alone.result.seconds) - _credit("a100"))


@pytest.mark.parametrize(("arch", "seq"), [("aim_pim", 255), ("aim_pim", 256), ("hbm3_pim", 128)])
def test_pim_prefill_attention_runs_one_query_at_a_time(arch: str, seq: int) -> None:
    """A PIM unit multiplies by one input vector at a time: ``S`` causal queries are ``S``
    single-query attentions over their mean prefix ``(S + 1) / 2``, interpolated between the
    two adjacent key counts when that is not whole."""
    rep = simulate_model("llama3-8b", arch, phase="prefill", seq=seq, engine="analytic")
    assert rep.complete
    att = _row(rep, "attention")
    assert att.dataflow == "pim_decode per query"
    mean = (seq + 1) / 2

    def one(keys: int) -> float:
        p = {"B": seq, "H": 32, "Hkv": 8, "Sq": 1, "Skv": keys, "D": 128, "Dv": 128}
        p |= {"causal": False, "dtype_bits": 16}
        return float(simulate_workload(arch, "gqa", params=p, engine="analytic").result.seconds)

    lo, hi = math.floor(mean), math.ceil(mean)
    assert att.seconds == pytest.approx(one(lo) + (mean - lo) * (one(hi) - one(lo)), rel=1e-12)
    assert any("one query at a time" in n for n in rep.notes)


def test_an_encoder_on_pim_reads_every_key_per_query() -> None:
    rep = simulate_model("bert-base", "aim_pim", phase="prefill", seq=128, engine="analytic")
    assert rep.complete
    (note,) = [n for n in rep.notes if "one query at a time" in n]
    assert "128 single-query attentions of 128 keys each" in note


def test_a_generation_on_pim_is_complete() -> None:
    from models import simulate_generation

    gen = simulate_generation("llama3-8b", "aim_pim", prompt=127, tokens=2, engine="analytic")
    assert gen.complete
    assert _row(gen.prefill, "attention").seconds > 0


def test_an_fp8_model_on_a_gpu_without_fp8_tensor_cores_is_flagged() -> None:
    from models import load_model

    spec = load_model("llama3-8b", dtype_bits=8)
    a100 = simulate_model(spec, "a100", phase="decode", seq=512, engine="analytic")
    (note,) = [n for n in a100.notes if "fp8" in n]
    assert note.startswith("a100 has no fp8 tensor-core instruction")
    h100 = simulate_model(spec, "h100", phase="decode", seq=512, engine="analytic")
    assert not [n for n in h100.notes if "fp8" in n]
    bf16 = simulate_model("llama3-8b", "a100", phase="decode", seq=512, engine="analytic")
    assert not [n for n in bf16.notes if "fp8" in n]


def test_without_flash3_a_shape_flash2_cannot_tile_takes_the_next_candidate() -> None:
    """DeepSeek-V3's absorbed MLA prefill (576-wide keys) on the A100: flash3 is Hopper-only
    (rule 1), flash2's tiles need 256 KiB of shared memory (rule 2): gpu_unfused runs it."""
    mla = {"B": 1, "H": 128, "Sq": 256, "Skv": 256, "Dc": 512, "Dr": 64, "Dn": 128, "Dv": 128}
    mla |= {"causal": True, "dtype_bits": 16}
    with pytest.raises(InfeasibleMappingError, match="shared memory"):
        simulate_workload("a100", "mla", params=mla, dataflow="flash2", engine="analytic")
    rep = simulate_model("deepseek-v3", "a100", phase="prefill", seq=256, engine="analytic")
    assert rep.complete
    assert _row(rep, "attention", "moe layer").dataflow == "gpu_unfused"
    (note,) = [n for n in rep.notes if n.startswith("attention:")]
    assert note == "attention: flash3 (Hopper's wgmma/TMA kernel) does not run on a100: gpu_unfused"
