"""pim_decode / pim_gemv build a whole-cascade Mapping: saved as YAML, run back unchanged.

The mapping binds the key-side contractions to the PIM unit (streams over channels, the key
rank over the channel's units), the softmax and epilogue Einsums to the architecture's
non-PIM unit (none on the presets: ``compute`` unset), and names the placement and command
gap; the PIM program builder is its lowering (:mod:`mappings._pim_mapping`).
"""

from __future__ import annotations

import json

import pytest

from archsim import estimate, load_arch, simulate
from archsim.errors import MappingError
from mappings import Mapping, simulate_workload
from mappings._check import check_mapping
from mappings._pim import pim_timing
from mappings._pim_mapping import pim_mapping_plan, stream_factors
from workloads import get_workload

GQA = {"B": 1, "H": 32, "Hkv": 8, "Skv": 4096, "D": 128}


def _plan(arch, workload: str, dataflow: str = "pim_decode", knobs=None, **params):
    return simulate_workload(arch, workload, params=params, dataflow=dataflow, knobs=knobs or {})


def test_decode_mapping_binds_the_key_side_contractions_to_the_banks():
    rep = _plan("hbm3_pim", "decode", **GQA)
    m = rep.plan.mapping
    assert m.name == "pim_decode:bank:power_limited"
    assert m.splits == {"m": 4096}  # PIM does not tile the keys: one tile of the whole context
    on_pim = [g for g in m.groups if g.compute == "pim"]
    assert [g.einsums for g in on_pim] == [("QK",), ("SLNV",)]
    for g in on_pim:
        (lm,) = g.levels
        # 8 K/V heads over 16 channels: each head's keys over 2 channels x 64 banks
        assert lm.level == "HBM"
        assert lm.spatial == {"hkv": 8, "m0": 2 * 64}
        assert lm.temporal["m0"] == 4096 // 128
        assert lm.temporal["g"] == 4  # the GQA group: commands on the open row, innermost
        assert lm.loop_order()[-1] == "g"
    others = [g for g in m.groups if g.compute != "pim"]
    assert all(g.compute is None for g in others)  # the presets declare no buffer-die unit
    mapped = [e for g in m.groups for e in g.einsums]
    assert mapped == [e.name for e in get_workload("decode", **GQA).cascade.einsums]
    check_mapping(get_workload("decode", **GQA), m, load_arch("hbm3_pim"))


@pytest.mark.parametrize(("placement", "units"), [("bank", 16), ("bank_group", 4)])
def test_the_placement_sets_the_units_a_stream_spreads_over(placement, units):
    rep = _plan("aim_pim", "decode", knobs={"placement": placement}, **GQA)
    pim = [g for g in rep.plan.mapping.groups if g.compute == "pim"]
    assert pim[0].levels[0].spatial["m0"] == 2 * units
    assert rep.plan.mapping.name == f"pim_decode:{placement}:unlimited"


def test_mla_streams_the_latent_cache_and_leaves_the_projections_to_the_host():
    params = {"Sq": 1, "Skv": 300}
    m = _plan("hbm3_pim", "mla", **params).plan.mapping
    on_pim = [g.einsums for g in m.groups if g.compute == "pim"]
    assert on_pim == [("QKC",), ("QKR",), ("SLNV",)]
    host = [e for g in m.groups if g.compute is None for e in g.einsums]
    assert "QC" in host
    assert "O" in host
    # one latent stream (B = 1) over all 16 channels x 64 banks: 300 keys, and each key's
    # latent features over 3 units (the bytes spread evenly)
    assert m.groups[1].levels[0].spatial == {"m0": 300, "c": 3}
    check_mapping(get_workload("mla", **params), m, load_arch("hbm3_pim"))


@pytest.mark.parametrize(
    ("arch", "workload", "dataflow", "knobs", "params"),
    [
        ("aim_pim", "decode", "pim_decode", {}, {"B": 1, "H": 32, "Hkv": 8, "Skv": 131}),
        ("hbm3_pim", "decode", "pim_decode", {}, GQA),
        ("hbm3_pim", "mla", "pim_decode", {}, {"Sq": 1, "Skv": 1000}),
        ("aim_pim", "mla", "pim_decode", {}, {"Sq": 1, "Skv": 7}),
        ("hbm_pim", "decode", "pim_decode", {}, {"B": 1, "H": 8, "Hkv": 2, "Skv": 1}),
        ("aim_pim", "decode", "pim_decode", {"placement": "bank_group"}, GQA),
        ("hbm_pim", "decode", "pim_decode", {}, {"B": 3, "H": 40, "Hkv": 10, "Skv": 512}),
        ("aim_pim", "gemm", "pim_gemv", {}, {"M": 1, "N": 4096, "K": 4096}),
        ("hbm3_pim", "gemm", "pim_gemv", {}, {"M": 4, "N": 1000, "K": 3000}),
    ],
)
def test_saved_mapping_runs_back_with_the_same_cycles_and_energy(
    tmp_path, arch, workload, dataflow, knobs, params
):
    rep = _plan(arch, workload, dataflow, knobs, **params)
    path = tmp_path / "pim.yaml"
    rep.plan.mapping.to_yaml(path)
    a = load_arch(arch)
    w = get_workload(workload, **params)
    check_mapping(w, rep.plan.mapping, a)  # valid data for the generic checker too
    plan = pim_mapping_plan(w, Mapping.from_yaml(path), a)
    again = plan.finish(simulate(plan.program, a))
    assert again.cycles == rep.result.cycles
    assert again.energy_j == rep.result.energy_j
    assert plan.meta["pim_model_cycles"] == rep.plan.meta["pim_model_cycles"]


def test_the_command_gap_travels_with_the_mapping():
    npc = load_arch("hbm3_pim").with_updates(
        {"compute.pim.ops_per_cycle.mac_fp16": 16 / 4, "pim.power_limited": True}
    )
    fast = _plan(npc, "decode", knobs={"power_limited": False}, **GQA)
    slow = _plan(npc, "decode", **GQA)
    assert fast.plan.mapping.name.endswith(":unlimited")
    w = get_workload("decode", **GQA)
    back = pim_mapping_plan(w, fast.plan.mapping, npc)  # the preset's default is limited
    assert back.meta["pim_model_cycles"] == fast.plan.meta["pim_model_cycles"]
    assert back.meta["pim_model_cycles"] < slow.plan.meta["pim_model_cycles"]
    with pytest.raises(MappingError, match="command gap") as exc:
        pim_mapping_plan(w, fast.plan.mapping, npc, power_limited=True)
    assert exc.value.path == "knobs.power_limited"


def test_an_edited_mapping_runs_with_the_cost_of_its_own_layout():
    rep = _plan("hbm3_pim", "decode", **GQA)
    w, arch = get_workload("decode", **GQA), load_arch("hbm3_pim")
    d = rep.plan.mapping.to_dict()
    for g in (0, 2):  # QK and SLNV: each head's keys over one channel's 64 banks, not two
        lm = d["groups"][g]["levels"][0]
        lm["spatial"]["m0"], lm["temporal"]["m0"] = 64, 4096 // 64
    edited = pim_mapping_plan(w, Mapping.from_dict(d), arch)
    assert "pim_model_cycles" not in edited.meta  # the recipe's closed form describes its own
    assert rep.plan.meta["pim_model_cycles"] > 0
    (k_own,) = rep.plan.program.meta["pim_groups"][0]["streams"]
    (k_edit,) = edited.program.meta["pim_groups"][0]["streams"]
    assert k_edit["bytes_per_unit"] == 2 * k_own["bytes_per_unit"]  # half the units
    own = estimate(rep.plan.program, arch).cycles
    assert estimate(edited.program, arch).cycles > 1.8 * (own - 400)  # streams twice as long
    # too many units for one channel is refused, naming the field
    d["groups"][0]["levels"][0]["spatial"]["m0"] = 4096
    d["groups"][0]["levels"][0]["temporal"].pop("m0")
    with pytest.raises(MappingError) as exc:
        pim_mapping_plan(w, Mapping.from_dict(d), arch)
    assert "spatial" in exc.value.path


@pytest.mark.parametrize("name", ["fusemax", "pim_decode:row:unlimited", "pim_gemv:bank"])
def test_a_mapping_without_a_pim_recipe_name_is_refused(name):
    m = _plan("hbm3_pim", "decode", **GQA).plan.mapping.model_copy(update={"name": name})
    with pytest.raises(MappingError, match="RECIPE:PLACEMENT") as exc:
        pim_mapping_plan(get_workload("decode", **GQA), m, load_arch("hbm3_pim"))
    assert exc.value.path == "mapping.name"
    assert exc.value.got == name


def test_stream_factors_place_the_fewest_streams_on_the_busiest_channel():
    assert stream_factors({"h": 130}, 16) == ({"h": 16}, {"h": 9})
    assert stream_factors({"b": 2, "hkv": 8}, 16) == ({"b": 2, "hkv": 8}, {})
    sp, tm = stream_factors({"b": 4, "hkv": 8}, 16)
    assert sp.get("b", 1) * sp.get("hkv", 1) == 16
    assert tm.get("b", 1) * tm.get("hkv", 1) == 2
    # 30 streams on 8 channels: a product of rank factors reaches 5 per channel, not 4
    sp, tm = stream_factors({"b": 3, "hkv": 10}, 8)
    assert tm.get("b", 1) * tm.get("hkv", 1) == 5


def test_cli_save_mapping_writes_the_recipes_mapping(tmp_path, capsys):
    from archsim.cli import main

    out = tmp_path / "pim.yaml"
    args = ["simulate", "--arch", "aim_pim", "--workload", "decode", "--set", "Skv=131"]
    assert main([*args, "--dataflow", "pim_decode", "--json", "--save-mapping", str(out)]) == 0
    first = json.loads(capsys.readouterr().out)
    saved = Mapping.from_yaml(out)
    assert saved.name == "pim_decode:bank:unlimited"
    plan = pim_mapping_plan(get_workload("decode", Skv=131), saved, load_arch("aim_pim"))
    assert plan.finish(simulate(plan.program, load_arch("aim_pim"))).cycles == first["cycles"]


def test_cli_mapping_runs_a_pim_mapping_back(tmp_path, capsys):
    from archsim.cli import main

    out = tmp_path / "pim.yaml"
    args = ["simulate", "--arch", "aim_pim", "--workload", "decode", "--set", "Skv=131"]
    assert main([*args, "--dataflow", "pim_decode", "--json", "--save-mapping", str(out)]) == 0
    first = json.loads(capsys.readouterr().out)
    assert main([*args, "--mapping", str(out), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["cycles"] == first["cycles"]


def test_streams_follow_the_mappings_factors_where_they_do_not_factor_over_the_channels():
    # 30 K/V streams on hbm_pim's 8 channels: a round-robin placement (AttAcc's, the closed
    # form's) puts 4 on the busiest channel; the mapping has no fused spatial rank and says 5,
    # and the lowering runs what the mapping says (a known gap, mappings._pim_lower)
    rep = _plan("hbm_pim", "decode", **{"B": 3, "H": 40, "Hkv": 10, "Skv": 512})
    assert rep.plan.meta["pim_heads_per_channel"] == 4
    (first, *_) = [g for g in rep.plan.mapping.groups if g.compute == "pim"]
    t = first.levels[0].temporal
    assert t.get("b", 1) * t.get("hkv", 1) == 5
    (k,) = rep.plan.program.meta["pim_groups"][0]["streams"]
    t = pim_timing(load_arch("hbm_pim"))
    units = t.units_per_pc * t.pseudo_channels
    assert k["bytes_per_unit"] == 5 * 512 * 128 * 2 / units  # 5 streams over a channel's units
