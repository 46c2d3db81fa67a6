"""Architecture specs reject bad input with ArchSpecError naming the field, expected and given."""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

import pytest

from archsim.errors import ArchSpecError
from archsim.spec import Architecture, StorageLevel, load_arch


def toy() -> dict[str, Any]:
    """A small valid spatial spec: DRAM -> GLB -> 4x4 PE array."""
    return {
        "name": "toy",
        "kind": "spatial",
        "clock": {"core_hz": 1.0e9},
        "levels": [
            {"name": "DRAM", "kind": "dram", "read_bw_bytes_per_cycle": 64},
            {
                "name": "GLB",
                "kind": "sram",
                "capacity_bytes": 1 << 20,
                "read_bw_bytes_per_cycle": 256,
            },
        ],
        "compute": [
            {"name": "pe", "mesh": [4, 4], "ops_per_cycle_per_pe": {"mac": 1}, "level": "GLB"}
        ],
    }


def preset(name: str) -> Callable[[], dict[str, Any]]:
    return lambda: load_arch(name).to_dict()


def setp(path: list[Any], value: Any, base: Callable[[], dict[str, Any]] = toy):
    """A case builder: copy of ``base()`` with ``value`` at ``path`` (None value: delete)."""

    def build() -> dict[str, Any]:
        d = copy.deepcopy(base())
        cur = d
        for key in path[:-1]:
            cur = cur[key]
        if value is _DELETE:
            del cur[path[-1]]
        else:
            cur[path[-1]] = value
        return d

    return build


_DELETE = object()


def toy_with(fn: Callable[[dict[str, Any]], None], base: Callable[[], dict[str, Any]] = toy):
    def build() -> dict[str, Any]:
        d = copy.deepcopy(base())
        fn(d)
        return d

    return build


def _swap_levels(d: dict[str, Any]) -> None:
    d["levels"].reverse()


def _add_network(**kw: Any) -> Callable[[dict[str, Any]], None]:
    def fn(d: dict[str, Any]) -> None:
        d["networks"] = [{"name": "n", "src": "DRAM", "dst": "GLB", "bw_bytes_per_cycle": 8, **kw}]

    return fn


def _timing(**kw: Any) -> Callable[[dict[str, Any]], None]:
    def fn(d: dict[str, Any]) -> None:
        d["levels"][0]["dram"] = {**load_arch("hbm_pim").dram.dram.model_dump(), **kw}  # type: ignore[union-attr]

    return fn


# (id, spec builder, expected error path, text expected somewhere in the message)
BAD_SPECS = [
    (
        "negative_bandwidth",
        setp(["levels", 1, "read_bw_bytes_per_cycle"], -4),
        "levels[1].read_bw_bytes_per_cycle",
        "bytes/cycle in [1e-09, 1e+12]",
    ),
    ("zero_core_clock", setp(["clock", "core_hz"], 0), "clock.core_hz", "Hz in [1000, 1e+12]"),
    ("clock_not_a_number", setp(["clock", "core_hz"], "fast"), "clock.core_hz", "a number"),
    ("missing_clock", setp(["clock"], _DELETE), "clock", "missing required field"),
    ("unknown_top_key", setp(["levles"], []), "levles", "one of: clock"),
    (
        "unknown_level_key",
        setp(["levels", 1, "bandwidth"], 5),
        "levels[1].bandwidth",
        "read_bw_bytes_per_cycle",
    ),
    ("bad_arch_kind", setp(["kind"], "fpga"), "kind", "'spatial'"),
    ("bad_level_kind", setp(["levels", 1, "kind"], "flash"), "levels[1].kind", "'sram'"),
    ("no_levels", setp(["levels"], []), "levels", "at least 1"),
    ("no_compute", setp(["compute"], []), "compute", "at least 1"),
    (
        "negative_capacity",
        setp(["levels", 1, "capacity_bytes"], -1),
        "levels[1].capacity_bytes",
        "bytes in [1, ",
    ),
    ("zero_instances", setp(["levels", 1, "instances"], 0), "levels[1].instances", "in [1, "),
    (
        "fractional_instances",
        setp(["levels", 1, "instances"], 1.5),
        "levels[1].instances",
        "an integer",
    ),
    (
        "negative_energy",
        setp(["levels", 1, "read_energy_pj_per_byte"], -0.5),
        "levels[1].read_energy_pj_per_byte",
        "pJ/byte in [0, ",
    ),
    ("duplicate_level_name", setp(["levels", 1, "name"], "DRAM"), "levels[1].name", "duplicate"),
    ("unit_named_like_level", setp(["compute", 0, "name"], "GLB"), "compute[0].name", "duplicate"),
    (
        "unit_reads_unknown_level",
        setp(["compute", 0, "level"], "L9"),
        "compute[0].level",
        "unknown level",
    ),
    ("dram_not_outermost", toy_with(_swap_levels), "levels[1].kind", "outermost"),
    ("mesh_one_number", setp(["compute", 0, "mesh"], [4]), "compute[0].mesh", ""),
    ("mesh_zero_rows", setp(["compute", 0, "mesh"], [0, 4]), "compute[0].mesh[0]", "in [1, "),
    (
        "unknown_op_kind",
        setp(["compute", 0, "ops_per_cycle_per_pe"], {"fma": 1}),
        "compute[0].ops_per_cycle_per_pe.fma",
        "unknown op kind",
    ),
    (
        "unknown_op_dtype",
        setp(["compute", 0, "ops_per_cycle_per_pe"], {"mac_fp7": 1}),
        "compute[0].ops_per_cycle_per_pe.mac_fp7",
        "unknown op kind",
    ),
    (
        "per_pe_without_mesh",
        setp(["compute", 0, "mesh"], _DELETE),
        "compute[0].ops_per_cycle_per_pe",
        "needs a mesh",
    ),
    (
        "per_pe_disagrees",
        setp(["compute", 0, "ops_per_cycle"], {"mac": 15}),
        "compute[0].ops_per_cycle.mac",
        "disagrees",
    ),
    (
        "unit_without_ops",
        toy_with(lambda d: d["compute"][0].pop("ops_per_cycle_per_pe")),
        "compute[0].ops_per_cycle",
        "at least one op kind",
    ),
    ("network_unknown_src", toy_with(_add_network(src="HBM")), "networks[0].src", "unknown level"),
    ("network_loop", toy_with(_add_network(dst="DRAM")), "networks[0].dst", "itself"),
    (
        "mesh_like_unknown_unit",
        setp(["levels", 1, "mesh_like"], "nope"),
        "levels[1].mesh_like",
        "mesh_like",
    ),
    ("per_sm_without_gpu", setp(["levels", 1, "per_sm"], True), "levels[1].per_sm", "gpu"),
    (
        "dram_timing_on_sram",
        toy_with(lambda d: d["levels"][1].update(dram=load_arch("hbm_pim").dram.dram.model_dump())),
        "levels[1].dram",
        "kind: dram",
    ),
    ("tras_below_trcd", toy_with(_timing(tRAS=10)), "levels[0].dram.tRAS", "tRCD"),
    ("tccd_l_below_tccd_s", toy_with(_timing(tCCD_L=1)), "levels[0].dram.tCCD_L", "tCCD_S"),
    ("trefi_below_trfc", toy_with(_timing(tREFI=100)), "levels[0].dram.tREFI", "tRFC"),
    ("timing_missing_field", toy_with(_timing(tFAW=None)), "levels[0].dram.tFAW", ""),
    (
        "faster_than_pins",
        toy_with(lambda d: (_timing()(d), d["levels"][0].update(read_bw_bytes_per_cycle=1000))),
        "levels[0].read_bw_bytes_per_cycle",
        "pins",
    ),
    ("gpu_kind_without_gpu", setp(["gpu"], _DELETE, preset("h100")), "gpu", "needs gpu"),
    ("gpu_params_on_spatial", setp(["kind"], "spatial", preset("h100")), "gpu", "kind: gpu"),
    (
        "boost_below_base",
        setp(["gpu", "boost_clock_hz"], 1.0e9, preset("h100")),
        "gpu.boost_clock_hz",
        "base",
    ),
    (
        "bad_tensor_core_key",
        setp(["gpu", "tc_flops_per_cycle_per_sm"], {"wgmma": 4096}, preset("h100")),
        "gpu.tc_flops_per_cycle_per_sm.wgmma",
        "{path}_{dtype}",
    ),
    (
        "per_sm_instances_conflict",
        setp(["levels", 2, "instances"], 100, preset("h100")),
        "levels[2].instances",
        "gpu.sms",
    ),
    (
        "l2_size_conflict",
        setp(["gpu", "l2_bytes"], 1.0e6, preset("h100")),
        "gpu.l2_bytes",
        "disagrees",
    ),
    ("pim_kind_without_pim", setp(["pim"], _DELETE, preset("hbm_pim")), "pim", "needs pim"),
    (
        "pim_without_dram_timing",
        setp(["levels", 0, "dram"], _DELETE, preset("hbm_pim")),
        "levels[0].dram",
        "timing",
    ),
    (
        "too_many_pim_units",
        setp(["pim", "units_per_channel"], 64, preset("hbm_pim")),
        "pim.units_per_channel",
        "places",
    ),
    (
        "pim_gap_below_unlimited",
        setp(["pim", "mac_cmd_gap_cycles"], 2, preset("hbm3_pim")),
        "pim.mac_cmd_gap_cycles",
        "shorter",
    ),
    (
        "bad_pim_placement",
        setp(["pim", "placement"], "logic_die", preset("hbm_pim")),
        "pim.placement",
        "'bank'",
    ),
]


@pytest.mark.parametrize(
    ("build", "path", "text"), [c[1:] for c in BAD_SPECS], ids=[c[0] for c in BAD_SPECS]
)
def test_bad_spec_raises_archspecerror_with_path(build, path, text):
    with pytest.raises(ArchSpecError) as info:
        Architecture.from_dict(build())
    err = info.value
    assert err.path == path, str(err)
    assert text in str(err)


def test_error_message_names_the_level_and_states_expected_and_given():
    d = toy()
    d["levels"][1]["read_bw_bytes_per_cycle"] = -4
    with pytest.raises(ArchSpecError) as info:
        Architecture.from_dict(d)
    text = str(info.value)
    assert "level 'GLB'" in text
    assert info.value.expected == "bytes/cycle in [1e-09, 1e+12]"
    assert info.value.got == -4
    assert text.startswith("levels[1].read_bw_bytes_per_cycle: ")


def test_unknown_key_error_lists_allowed_keys():
    d = toy()
    d["levels"][1]["size"] = 5
    with pytest.raises(ArchSpecError) as info:
        Architecture.from_dict(d)
    assert info.value.got == "size"
    assert "capacity_bytes" in str(info.value.expected)
    assert "write_energy_pj_per_byte" in str(info.value.expected)


def test_direct_construction_also_raises_archspecerror():
    with pytest.raises(ArchSpecError) as info:
        StorageLevel(name="x", kind="sram", read_bw_bytes_per_cycle=0)
    assert info.value.path == "read_bw_bytes_per_cycle"


def test_valid_toy_spec_derives_mesh_throughput_and_defaults():
    arch = Architecture.from_dict(toy())
    assert arch.unit("pe").ops_per_cycle == {"mac": 16.0}
    assert arch.level("GLB").write_bw_bytes_per_cycle == 256  # defaults to the read figure
    assert arch.dram.name == "DRAM"
    assert arch.peak_ops_per_s("mac_bf16") == pytest.approx(16e9)  # falls back to "mac"


def test_unknown_component_lookup_names_the_choices():
    arch = Architecture.from_dict(toy())
    with pytest.raises(ArchSpecError, match="no storage level 'L2'") as info:
        arch.level("L2")
    assert "GLB" in str(info.value.expected)
    with pytest.raises(ArchSpecError, match="cannot execute 'exp'"):
        arch.unit("pe").throughput("exp")


def test_specs_are_frozen_and_hashable():
    arch = Architecture.from_dict(toy())
    with pytest.raises(Exception):  # noqa: B017, PT011 - pydantic's frozen-instance error
        arch.name = "other"  # type: ignore[misc]
    assert hash(arch) == hash(Architecture.from_dict(toy()))
    assert arch == Architecture.from_dict(toy())
    assert {arch: 1}[Architecture.from_dict(toy())] == 1


def test_every_field_has_a_description():
    from archsim.spec import Clock, ComputeUnit, DramTiming, GpuParams, Network, PimParams

    for model in (
        Architecture,
        Clock,
        StorageLevel,
        ComputeUnit,
        Network,
        DramTiming,
        GpuParams,
        PimParams,
    ):
        for name in model.model_fields:
            assert _field_docstring(model, name), f"{model.__name__}.{name} has no docstring"


def _field_docstring(model: type, name: str) -> str:
    """The string literal right after field ``name``'s annotation in the class that declares
    it (the attribute-docstring convention), or ``""``."""
    import ast
    import inspect
    import textwrap

    owner = next(c for c in model.__mro__ if name in getattr(c, "__annotations__", {}))
    body = ast.parse(textwrap.dedent(inspect.getsource(owner))).body[0].body  # type: ignore[attr-defined]
    for stmt, nxt in zip(body, body[1:], strict=False):
        target = getattr(stmt, "target", None)
        if isinstance(stmt, ast.AnnAssign) and isinstance(target, ast.Name) and target.id == name:
            if isinstance(nxt, ast.Expr) and isinstance(nxt.value, ast.Constant):
                return str(nxt.value.value).strip()
    return ""


def test_timing_bandwidth_model_needs_dram_timing():
    from archsim import ArchSpecError, load_arch

    arch = load_arch("fusemax")
    glb = next(lv for lv in arch.levels if lv.kind == "sram").name
    with pytest.raises(ArchSpecError, match="bandwidth_model"):
        arch.with_updates({f"levels.{glb}.bandwidth_model": "timing"})
    pim = load_arch("hbm_pim")
    timed = pim.with_updates({f"levels.{pim.dram.name}.bandwidth_model": "timing"})
    assert timed.dram.bandwidth_model == "timing"


@pytest.mark.parametrize(
    ("update", "path", "source"),
    [
        (
            {"levels.PEREG.read_bw_bytes_per_cycle_per_pe": 2**31},
            "levels[2].read_bw_bytes_per_cycle",
            "read_bw_bytes_per_cycle_per_pe x mesh",
        ),
        (
            {"compute.mxu.ops_per_cycle_per_pe.mac_bf16": 1e17},
            "compute[0].ops_per_cycle.mac_bf16",
            "ops_per_cycle_per_pe.mac_bf16 x mesh",
        ),
        (
            {"levels.VMEM.area_mm2_per_mib": 1e17},
            "levels[1].area_mm2",
            "area_mm2_per_mib x capacity_bytes",
        ),
        (
            {"levels.HBM.read_bw_bytes_per_s": 1e16, "clock.core_hz": 1e3},
            "levels[0].read_bw_bytes_per_cycle",
            "read_bw_bytes_per_s / clock.core_hz",
        ),
    ],
)
def test_an_out_of_range_derived_value_names_its_source(update, path, source):
    from archsim.spec import load_arch

    with pytest.raises(ArchSpecError) as info:
        load_arch("tpu_like").with_updates(update)
    assert info.value.path == path
    assert f"(derived: {source}" in str(info.value)


@pytest.mark.parametrize("value", [True, False])
@pytest.mark.parametrize(
    "path",
    ["clock.core_hz", "levels.GLB.capacity_bytes", "compute.pe2d.mesh", "levels.GLB.instances"],
)
def test_booleans_are_not_numbers(path, value):
    from archsim.spec import load_arch

    update = {path: [value, 4] if path.endswith("mesh") else value}
    with pytest.raises(ArchSpecError, match="a boolean where a number is expected"):
        load_arch("fusemax").with_updates(update)


def test_from_dict_leaves_the_callers_dict_alone():
    import copy

    from archsim.spec import load_arch

    raw = load_arch("h100").to_dict()
    before = copy.deepcopy(raw)
    Architecture.from_dict(raw)
    assert raw == before
