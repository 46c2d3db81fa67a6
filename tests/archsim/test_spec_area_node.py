"""Area that follows capacity, a technology node on every preset, one energy basis."""

from __future__ import annotations

import re

import pytest

from archsim import energy
from archsim.cli import main
from archsim.errors import ArchSpecError
from archsim.spec import PRESET_DIR, Architecture, list_presets, load_arch

#: published die areas (mm^2): NVIDIA H100 / A100 whitepapers, Norrie et al. 2021 (TPUv3)
DIE_MM2 = {"h100": 814.0, "h200": 814.0, "a100": 826.0, "tpu_like": 648.0}
#: nodes the presets state (nm)
NODES = {"h100": 5, "h200": 5, "a100": 7, "tpu_like": 16, "fusemax": 45, "flat": 45}


@pytest.mark.parametrize("name", list_presets())
def test_every_preset_has_an_area_and_a_technology_node(name):
    arch = load_arch(name)
    assert arch.area_mm2 > 0
    assert arch.technology is not None
    if name in NODES:
        assert arch.technology.node_nm == NODES[name]
        assert arch.technology.process == "logic"
    else:
        assert arch.kind == "pim"
        assert arch.technology.process == "dram"
        assert arch.unit("pim").area_mm2 > 0


@pytest.mark.parametrize("name", sorted(DIE_MM2))
def test_chip_presets_add_up_to_the_published_die(name):
    assert load_arch(name).area_mm2 == pytest.approx(DIE_MM2[name], abs=0.01)


def test_sram_areas_follow_the_documented_density_rule():
    # 31.8 Mib/mm^2 at N5 (0.021 um^2 cells): 8 Mib per MiB -> 0.2516 mm^2/MiB
    assert energy.sram_mm2_per_mib(5) == pytest.approx(8 / 31.8)
    assert energy.sram_mm2_per_mib(7) == pytest.approx(8 / 31.8 * 0.027 / 0.021)
    for name, node in (("h100", 5), ("a100", 7), ("tpu_like", 16)):
        arch = load_arch(name)
        for lvl in arch.levels:
            if lvl.kind != "dram":
                assert lvl.area_mm2_per_mib == pytest.approx(
                    energy.sram_mm2_per_mib(node), rel=1e-5
                ), (name, lvl.name)
    glb = energy.fusemax_area_mm2(["glb_32mib"]) / 32
    assert load_arch("fusemax").level("GLB").area_mm2_per_mib == pytest.approx(glb, rel=1e-6)
    assert load_arch("flat").level("GLB").area_mm2 == pytest.approx(94.176256)
    mac16 = energy.fusemax_area_mm2(["mac_fp16"], 16)
    assert mac16 == pytest.approx(1545e-6 * (16 / 45) ** 2)
    assert load_arch("tpu_like").unit("mxu").area_mm2_per_pe == pytest.approx(mac16, rel=1e-4)
    for name in ("hbm_pim", "aim_pim", "hbm3_pim"):
        arch = load_arch(name)
        assert arch.unit("pim").area_mm2 == pytest.approx(
            energy.fusemax_area_mm2(["mac_fp16"] * 16, arch.technology.node_nm), rel=1e-6
        )


@pytest.mark.parametrize(
    ("name", "level"), [("fusemax", "GLB"), ("flat", "GLB"), ("h100", "L2"), ("tpu_like", "VMEM")]
)
def test_area_follows_capacity_through_updates(name, level):
    arch = load_arch(name)
    lvl = arch.level(level)
    bigger = arch.with_updates({f"levels.{level}.capacity_bytes": lvl.capacity_bytes * 4})
    grown = bigger.level(level).area_mm2 - lvl.area_mm2
    assert grown == pytest.approx(3 * lvl.area_mm2)
    assert bigger.area_mm2 - arch.area_mm2 == pytest.approx(3 * lvl.instances * lvl.area_mm2)
    # a 64 MiB buffer is not free: it costs 64 x the per-MiB area
    big = arch.with_updates({f"levels.{level}.capacity_bytes": 64 * 2**20})
    assert big.level(level).area_mm2 == pytest.approx(64 * lvl.area_mm2_per_mib)


def test_area_is_derived_and_must_agree_when_given():
    arch = load_arch("fusemax")
    with pytest.raises(ArchSpecError, match="disagrees with area_mm2_per_mib"):
        arch.with_updates({"levels.GLB.area_mm2": 1.0})
    # an update that agrees (as sweeps written before area followed capacity do) is accepted
    same = {"levels.GLB.capacity_bytes": 2**22, "levels.GLB.area_mm2": 47.088128 / 4}
    assert arch.with_updates(same).level("GLB").area_mm2 == pytest.approx(47.088128 / 4)
    raw = arch.to_dict()
    raw["levels"][1]["area_mm2"] = 1.0
    with pytest.raises(ArchSpecError, match="disagrees with area_mm2_per_mib") as info:
        Architecture.from_dict(raw)
    assert info.value.path == "levels[1].area_mm2"
    raw["levels"][1].pop("area_mm2")
    raw["levels"][1].pop("capacity_bytes")
    with pytest.raises(ArchSpecError, match="needs the level's capacity"):
        Architecture.from_dict(raw)
    assert arch.to_dict() == Architecture.from_dict(arch.to_dict()).to_dict()


def test_node_scaling_puts_presets_on_one_basis():
    fusemax, h100 = load_arch("fusemax"), load_arch("h100")
    at5 = energy.scale_architecture(fusemax, 5)
    fe = (5 / 45) * (0.75 / 0.9) ** 2
    assert at5.technology.node_nm == 5
    assert at5.unit("pe2d").energy("mac") == pytest.approx(17.1645 * fe)
    assert at5.level("GLB").read_energy_pj_per_byte == pytest.approx(60.621589 * fe)
    assert at5.dram.read_energy_pj_per_byte == fusemax.dram.read_energy_pj_per_byte  # DRAM kept
    assert at5.level("GLB").leakage_w == fusemax.level("GLB").leakage_w  # leakage kept
    assert at5.area_mm2 == pytest.approx(fusemax.area_mm2 * (5 / 45) ** 2)
    # the area still follows capacity after scaling
    assert at5.with_updates({"levels.GLB.capacity_bytes": 2**25}).level(
        "GLB"
    ).area_mm2 == pytest.approx(2 * at5.level("GLB").area_mm2)
    # h100's tensor energy IS the Horowitz rule at 5 nm; back at 45 nm it is Horowitz's table
    assert energy.scale_architecture(h100, 45).unit("tensor").energy("mac_bf16") == (
        pytest.approx(energy.mac_pj_45nm("bf16"), rel=1e-5)
    )
    assert energy.scale_architecture(h100, 5) == h100.with_updates(
        {
            "technology.notes": energy.scale_architecture(h100, 5).technology.notes,
            "technology.process": "logic",
        }
    )


def test_node_scaling_refuses_what_the_rule_does_not_cover():
    with pytest.raises(ArchSpecError, match="DRAM process"):
        energy.scale_architecture(load_arch("hbm_pim"), 7)
    with pytest.raises(ArchSpecError, match="no supply voltage") as info:
        energy.scale_architecture(load_arch("h100"), 3)
    assert info.value.path == "node"
    raw = load_arch("fusemax").to_dict()
    raw.pop("technology")
    with pytest.raises(ArchSpecError, match="states no technology node"):
        energy.scale_architecture(Architecture.from_dict(raw), 7)


def test_arch_show_node_prints_the_scaled_table(capsys):
    assert main(["arch", "show", "fusemax", "--node", "5"]) == 0
    out = capsys.readouterr().out
    assert "technology: 5 nm (scaled from 45 nm" in out
    mac = re.search(r"energy pJ/op: .*mac ([0-9.]+)", out)
    assert mac is not None
    assert float(mac.group(1)) == pytest.approx(17.1645 * (5 / 45) * (0.75 / 0.9) ** 2, rel=1e-3)
    assert main(["arch", "show", "hbm_pim", "--node", "5"]) == 2
    assert "DRAM process" in capsys.readouterr().err


def test_preset_comments_cite_published_sources_not_local_paths():
    for path in sorted(PRESET_DIR.glob("*.yaml")):
        text = path.read_text()
        for local in ("/work/", "shared/reference", "hardware.md", "energy.md", ".csv", ".json"):
            assert local not in text, (path.name, local)
