"""``base:`` inheritance of architecture specs: merge by name, provenance, cycles."""

from __future__ import annotations

import textwrap

import pytest

from archsim.errors import ArchSpecError
from archsim.spec import Architecture, load_arch

#: the 64x64 / 1 MiB example of the README (examples/arch_64x64_1MiB.yaml has the same text)
EXAMPLE = textwrap.dedent(
    """\
    # FuseMax with a 64x64 2D array, a 64-PE 1D array and a 1 MiB global buffer;
    # everything else (clock, DRAM, energies, areas per PE and per MiB) comes from the preset.
    base: fusemax
    description: FuseMax-like array, 64x64 2D + 64-PE 1D, 1 MiB global buffer
    compute:
      - {name: pe2d, mesh: [64, 64]}
      - {name: pe1d, mesh: [1, 64]}
    levels:
      - {name: GLB, capacity_bytes: 1048576}
    """
)


def write(tmp_path, name, text):
    path = tmp_path / name
    path.write_text(textwrap.dedent(text))
    return path


def test_the_64x64_example_is_fusemax_with_three_changes(tmp_path):
    path = write(tmp_path, "arch_64x64_1MiB.yaml", EXAMPLE)
    arch = load_arch(str(path))
    base = load_arch("fusemax")
    assert arch.name == "arch_64x64_1MiB"  # the file's stem, not the base's name
    assert arch.unit("pe2d").mesh == (64, 64)
    assert arch.peak_ops_per_cycle("mac", "pe2d") == 64 * 64
    assert arch.level("RF2D").mesh == (64, 64)  # mesh_like follows the unit
    assert arch.level("GLB").capacity_bytes == 2**20
    assert arch.level("GLB").area_mm2 == pytest.approx(base.level("GLB").area_mm2 / 16)
    # untouched fields are the preset's, field for field
    assert arch.clock == base.clock
    assert arch.dram == base.dram
    assert arch.level("GLB").read_energy_pj_per_byte == base.level("GLB").read_energy_pj_per_byte
    assert arch.unit("pe2d").energy_pj == base.unit("pe2d").energy_pj
    assert arch.networks == base.networks
    assert arch.technology == base.technology
    # the same spec written out in full is the same architecture
    full = base.with_updates(
        {
            "compute.pe2d.mesh": [64, 64],
            "compute.pe1d.mesh": [1, 64],
            "levels.GLB.capacity_bytes": 1048576,
            "name": "arch_64x64_1MiB",
            "description": arch.description,
        }
    )
    assert full == arch


def test_lists_merge_by_name_not_position_and_items_can_be_added_or_removed(tmp_path):
    path = write(
        tmp_path,
        "mine.yaml",
        """\
        base: fusemax
        levels:
          - {name: RF1D, capacity_bytes_per_pe: 128}      # the 4th level, named first
          - {name: DRAM, read_energy_pj_per_byte: 20.0}
        networks:
          - {name: pe2d_to_pe1d, remove: true}
          - {name: glb_to_rf1d_fast, src: GLB, dst: RF1D, bw_bytes_per_cycle: 4096}
        """,
    )
    arch = load_arch(str(path))
    assert [lvl.name for lvl in arch.levels] == ["DRAM", "GLB", "RF2D", "RF1D"]
    assert arch.level("RF1D").capacity_bytes == 128 * 256
    assert arch.level("DRAM").read_energy_pj_per_byte == 20.0
    assert arch.level("DRAM").write_energy_pj_per_byte == 31.2  # the rest of the item merged
    assert [n.name for n in arch.networks] == ["glb_to_pe2d", "glb_to_pe1d", "glb_to_rf1d_fast"]


def test_nested_mappings_merge_key_by_key_and_scalars_replace(tmp_path):
    path = write(
        tmp_path,
        "h.yaml",
        """\
        base: h100
        name: h100_more_sms
        gpu: {sms: 144}
        compute:
          - {name: tensor, ops_per_cycle: {mac_fp8: 8192}}
        """,
    )
    arch = load_arch(str(path))
    h100 = load_arch("h100")
    assert arch.gpu.sms == 144
    assert arch.level("SMEM").instances == 144  # per_sm follows
    assert arch.gpu.regs_per_sm == h100.gpu.regs_per_sm
    assert arch.unit("tensor").ops_per_cycle["mac_fp8"] == 8192
    assert arch.unit("tensor").ops_per_cycle["mac_bf16"] == 2048


def test_a_base_may_be_a_file_relative_to_the_file_naming_it(tmp_path):
    (tmp_path / "sub").mkdir()
    write(tmp_path, "arch_64x64_1MiB.yaml", EXAMPLE)
    path = write(
        tmp_path / "sub",
        "bigger.yaml",
        "base: ../arch_64x64_1MiB.yaml\nlevels:\n  - {name: GLB, capacity_bytes: 4194304}\n",
    )
    arch = load_arch(str(path))
    assert arch.name == "bigger"
    assert arch.unit("pe2d").mesh == (64, 64)  # from the middle file
    assert arch.level("GLB").capacity_bytes == 4 * 2**20


def test_errors_name_the_file_that_set_the_bad_field(tmp_path):
    middle = write(
        tmp_path,
        "middle.yaml",
        "base: fusemax\nlevels:\n  - {name: GLB, latency_cycles: -1}\n",
    )
    top = write(tmp_path, "top.yaml", "base: middle.yaml\nclock: {core_hz: 1.0e+9}\n")
    with pytest.raises(ArchSpecError) as info:
        load_arch(str(top))
    assert info.value.path == "levels[1].latency_cycles"
    assert f"(in {middle.resolve()}, base of {top})" in str(info.value)
    bad_top = write(
        tmp_path,
        "top2.yaml",
        "base: middle.yaml\nlevels:\n  - {name: GLB, latency_cycles: 3}\n"
        "  - {name: RF2D, read_bw_bytes_per_cycle_per_pe: 0}\n",
    )
    with pytest.raises(ArchSpecError) as info:
        load_arch(str(bad_top))
    assert info.value.path == "levels[2].read_bw_bytes_per_cycle_per_pe"
    assert f"(in {bad_top})" in str(info.value)


@pytest.mark.parametrize(
    ("files", "message"),
    [
        ({"a.yaml": "base: a.yaml\n"}, "cycle of bases"),
        ({"a.yaml": "base: b.yaml\n", "b.yaml": "base: a.yaml\n"}, "cycle of bases"),
        ({"a.yaml": "base: nosuch\n"}, "no architecture preset 'nosuch' to use as base"),
        ({"a.yaml": "base: missing.yaml\n"}, "base file not found"),
        ({"a.yaml": "base: 3\n"}, "base must name a preset"),
        ({"a.yaml": "base: fusemax\nlevels:\n  - {capacity_bytes: 1}\n"}, "needs one"),
        ({"a.yaml": "base: fusemax\nlevels:\n  - {name: X, remove: true}\n"}, "does not have"),
    ],
)
def test_bad_bases_are_refused_with_the_file(tmp_path, files, message):
    for name, text in files.items():
        write(tmp_path, name, text)
    with pytest.raises(ArchSpecError, match=message) as info:
        load_arch(str(tmp_path / "a.yaml"))
    assert "a.yaml" in str(info.value) or "nosuch" in str(info.value)


def test_dict_and_text_specs_take_a_base_too():
    arch = Architecture.from_dict({"base": "tpu_like", "name": "tpu2", "gpu": None})
    assert arch.name == "tpu2"
    assert arch.unit("mxu").mesh == (128, 128)
    text = Architecture.from_yaml_text("base: h200\nname: h200b\n")
    assert text == load_arch("h200").with_updates({"name": "h200b"})
