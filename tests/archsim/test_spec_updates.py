"""Architecture.with_updates: dotted paths by name, derived values follow, copies re-validated."""

from __future__ import annotations

import pytest

from archsim.errors import ArchSpecError
from archsim.spec import Architecture, list_presets, load_arch


def test_changing_the_pe_mesh_rescales_throughput_storage_and_area():
    fm = load_arch("fusemax")
    small = fm.with_updates({"compute.pe2d.mesh": [128, 128]})
    assert small.unit("pe2d").ops_per_cycle["mac"] == 128 * 128
    assert small.level("RF2D").mesh == (128, 128)  # mesh_like follows the unit
    assert small.level("RF2D").capacity_bytes == 32 * 128 * 128
    assert small.unit("pe2d").area_mm2 == pytest.approx(fm.unit("pe2d").area_mm2 / 4)
    assert small.area_mm2 < fm.area_mm2
    assert fm.unit("pe2d").ops_per_cycle["mac"] == 65536  # the original is untouched


def test_updates_by_name_for_levels_clock_and_timing():
    fm = load_arch("fusemax")
    new = fm.with_updates({"levels.GLB.capacity_bytes": 8e6, "clock.core_hz": 1e9})
    assert new.level("GLB").capacity_bytes == 8e6
    assert new.clock.core_hz == 1e9
    # DRAM is given in bytes/s, so its bytes/cycle follows the clock
    assert new.dram.read_bw_bytes_per_cycle == pytest.approx(400 * 2**30 / 1e9)
    h = load_arch("h100").with_updates(
        {"levels.HBM.dram.tRCD": 20, "compute.tensor.ops_per_cycle.mac_bf16": 1024}
    )
    assert h.dram.dram.tRCD == 20  # type: ignore[union-attr]
    assert h.unit("tensor").throughput("mac_bf16") == 1024


def test_gpu_sms_update_changes_per_sm_instances_and_peak():
    h = load_arch("h100")
    cut = h.with_updates({"gpu.sms": 114})
    assert cut.unit("tensor").instances == 114
    assert cut.level("SMEM").instances == 114
    assert cut.peak_ops_per_s("mac_bf16", "tensor") == pytest.approx(
        h.peak_ops_per_s("mac_bf16", "tensor") * 114 / 132
    )


def test_l2_capacity_update_keeps_gpu_l2_bytes_consistent():
    h = load_arch("h100").with_updates({"levels.L2.capacity_bytes": 64 * 2**20})
    assert h.gpu is not None
    assert h.gpu.l2_bytes == 64 * 2**20


def test_pim_channel_update_changes_unit_count():
    p = load_arch("hbm3_pim").with_updates(
        {"levels.HBM.dram.channels": 8, "levels.HBM.read_bw_bytes_per_cycle": 256}
    )
    assert p.unit("pim").instances == 8 * 64


def test_unknown_component_name_is_named_with_choices():
    with pytest.raises(ArchSpecError) as info:
        load_arch("fusemax").with_updates({"levels.L9.capacity_bytes": 1})
    assert info.value.path == "levels.L9.capacity_bytes"
    assert info.value.got == "L9"
    assert "GLB" in str(info.value.expected)


def test_unknown_field_lists_allowed_fields():
    with pytest.raises(ArchSpecError) as info:
        load_arch("fusemax").with_updates({"levels.GLB.size": 1})
    assert info.value.got == "size"
    assert "capacity_bytes" in str(info.value.expected)


def test_updating_a_derived_value_points_to_its_source():
    with pytest.raises(ArchSpecError, match="capacity_bytes_per_pe"):
        load_arch("fusemax").with_updates({"levels.RF2D.capacity_bytes": 1024})
    with pytest.raises(ArchSpecError, match="gpu.sms"):
        load_arch("h100").with_updates({"compute.tensor.instances": 100})


def test_invalid_updated_value_is_revalidated():
    with pytest.raises(ArchSpecError) as info:
        load_arch("fusemax").with_updates({"levels.GLB.capacity_bytes": -1})
    assert info.value.path == "levels[1].capacity_bytes"


def test_gpu_update_on_a_spatial_arch_is_refused():
    with pytest.raises(ArchSpecError, match="not set"):
        load_arch("fusemax").with_updates({"gpu.sms": 10})


def test_index_paths_work_too():
    assert (
        load_arch("fusemax")
        .with_updates({"levels.1.latency_cycles": 5})
        .level("GLB")
        .latency_cycles
        == 5
    )


@pytest.mark.parametrize("name", list_presets())
@pytest.mark.parametrize("derived", [False, True])
def test_to_dict_round_trips(name, derived):
    arch = load_arch(name)
    again = Architecture.from_dict(arch.to_dict(derived=derived))
    assert again == arch
    assert hash(again) == hash(arch)


def test_source_form_omits_derived_values():
    d = load_arch("h100").to_dict()
    assert "instances" not in d["levels"][2]  # SMEM is per_sm
    assert "l2_bytes" not in d["gpu"]
    assert load_arch("h100").to_dict(derived=True)["levels"][2]["instances"] == 132
