"""Mapping representation and check_mapping's errors."""

from __future__ import annotations

import pytest

from archsim.errors import MappingError
from mappings import FusionGroup, LevelMapping, Mapping, check_mapping, lower

from .conftest import make_gemm


def _gemm_mapping(
    top: dict, inner: dict, spatial: dict | None = None, axis: dict | None = None
) -> Mapping:
    return Mapping(
        groups=(
            FusionGroup(
                einsums=("C",),
                compute="pe2d",
                levels=(
                    LevelMapping(level="DRAM", temporal=top, order=tuple(top)),
                    LevelMapping(
                        level="GLB", temporal=inner, spatial=spatial or {}, spatial_axis=axis or {}
                    ),
                ),
            ),
        ),
        name="t",
    )


def test_yaml_round_trip_keeps_every_field(tmp_path):
    m = _gemm_mapping({"m": 4, "n": 2}, {"k": 64, "m": 3}, {"m": 16, "n": 32}, {"n": "y"})
    path = tmp_path / "m.yaml"
    m.to_yaml(path)
    assert Mapping.from_yaml(path) == m
    assert Mapping.from_yaml(m.to_yaml()) == m


def test_unknown_field_in_yaml_names_its_path():
    with pytest.raises(MappingError, match=r"groups\.0\.levels\.0\.tempral"):
        Mapping.from_yaml(
            "groups:\n- einsums: [C]\n  levels:\n  - level: DRAM\n    tempral: {m: 2}\n"
        )


def test_uneven_tiles_are_allowed(tiny_arch):
    w = make_gemm(100, 48, 32)  # m = 100 = 4 x 16 x 2 (remainder tile) -> ceil
    m = _gemm_mapping({"m": 4}, {"m": 2, "n": 3, "k": 32}, {"m": 13, "n": 16}, {"n": "y"})
    check_mapping(w, m, tiny_arch)


def test_factors_that_do_not_cover_a_rank_are_rejected(tiny_arch):
    w = make_gemm(64, 48, 32)
    m = _gemm_mapping({"m": 2}, {"n": 3, "k": 32}, {"m": 16, "n": 16}, {"n": "y"})
    with pytest.raises(MappingError, match=r"factors of rank 'm' do not cover it.*>= 64"):
        check_mapping(w, m, tiny_arch)


def test_a_whole_extra_outer_iteration_is_rejected(tiny_arch):
    w = make_gemm(64, 48, 32)
    m = _gemm_mapping({"m": 5}, {"n": 3, "k": 32}, {"m": 16, "n": 16}, {"n": "y"})
    with pytest.raises(MappingError, match="overshoot"):
        check_mapping(w, m, tiny_arch)


def test_buffer_overflow_says_by_how_many_bytes(tiny_arch):
    w = make_gemm(64, 64, 64)
    # whole problem in a 16 KiB buffer: A, B, C tiles are 8 KiB each -> 24576 B, 8192 over
    m = _gemm_mapping({}, {"m": 4, "n": 4, "k": 64}, {"m": 16, "n": 16}, {"n": "y"})
    with pytest.raises(MappingError, match=r"overflows GLB by 8,192 bytes"):
        check_mapping(w, m, tiny_arch)


def test_spatial_factor_beyond_the_fanout_is_rejected(tiny_arch):
    w = make_gemm(64, 64, 64)
    m = _gemm_mapping({"m": 2, "k": 4}, {"k": 16, "n": 2}, {"m": 32, "n": 32}, {"n": "y"})
    with pytest.raises(MappingError, match=r"spatial factor beyond the fan-out.*<= 16"):
        check_mapping(w, m, tiny_arch)


def test_unknown_level_and_unknown_tensor_are_rejected(tiny_arch):
    w = make_gemm(16, 16, 16)
    bad = Mapping(
        groups=(
            FusionGroup(
                einsums=("C",),
                levels=(LevelMapping(level="DRAM"), LevelMapping(level="L9", temporal={"m": 16})),
            ),
        )
    )
    with pytest.raises(MappingError, match="unknown storage level"):
        check_mapping(w, bad, tiny_arch)
    bad = Mapping(
        groups=(
            FusionGroup(
                einsums=("C",),
                levels=(
                    LevelMapping(level="DRAM", temporal={"m": 16, "n": 16, "k": 16}),
                    LevelMapping(level="GLB", keep=("Z",)),
                ),
            ),
        )
    )
    with pytest.raises(MappingError, match="tensor not used by this group"):
        check_mapping(w, bad, tiny_arch)


def test_on_chip_intermediate_needs_an_on_chip_level(fusemax):
    from workloads import get_workload

    w = get_workload("mha", S=64, B=1, H=1, D=8, passes=3)
    levels = (
        LevelMapping(level="DRAM", temporal={"m": 64, "p": 64, "e": 8, "h": 1, "b": 1}),
        LevelMapping(level="GLB", bypass=("QK",)),
    )
    groups = [FusionGroup(einsums=("QK", "M"), levels=levels, on_chip=("QK",))]
    m = Mapping(groups=tuple(groups))
    with pytest.raises(MappingError, match="on-chip intermediate 'QK' has no on-chip level"):
        check_mapping(w, m, fusemax)


def test_lower_emits_one_phase_per_group_with_the_analytic_bytes(tiny_arch):
    w = make_gemm(64, 48, 32)
    m = _gemm_mapping({"m": 2, "n": 3}, {"k": 32, "m": 2}, {"m": 16, "n": 16}, {"n": "y"})
    prog = lower(w, m, tiny_arch)
    assert len(prog.phases) == 1
    assert prog.phases[0].trips == 6
    dram = prog.meta["bytes_by_level"]["DRAM"]
    # the transfers to and from DRAM carry the analytic DRAM bytes (the others are the
    # buffer's compute-side reads and writes: mappings._lower module doc)
    moves = [
        t
        for t in (*prog.phases[0].body.loads, *prog.phases[0].body.stores)
        if "DRAM" in (t.src, t.dst)
    ]
    moved = sum(t.bytes * 6 for t in moves)
    assert dram <= moved < dram + 6 * len(moves)  # per-trip bytes are rounded up


def test_fused_group_keeps_its_on_chip_intermediate_out_of_dram(fusemax):
    from workloads import get_workload

    w = get_workload("mha", S=256, B=1, H=1, D=64, passes=3)
    top = LevelMapping(level="DRAM", temporal={"p": 256}, order=("p",))
    glb = LevelMapping(level="GLB", temporal={"m": 256, "e": 64})
    fused = FusionGroup(einsums=("QK", "M", "SN"), levels=(top, glb), on_chip=("QK",))
    spilled = FusionGroup(einsums=("QK", "M", "SN"), levels=(top, glb))
    rest = [
        FusionGroup(
            einsums=(e.name,),
            levels=(
                LevelMapping(level="DRAM", temporal={r: w.sizes[r] for r in e.ranks}),
                LevelMapping(level="GLB"),
            ),
            compute="pe1d",  # the 1D array has the divide the 2D one lacks
        )
        for e in w.cascade.einsums[3:]
    ]
    on = lower(w, Mapping(groups=(fused, *rest)), fusemax).meta["bytes_by_level"]["DRAM"]
    off = lower(w, Mapping(groups=(spilled, *rest)), fusemax).meta["bytes_by_level"]["DRAM"]
    # spilling QK writes it once and reads it back once: 2 x 256 x 256 x 2 bytes
    assert off - on == pytest.approx(2 * 256 * 256 * 2)


def test_on_chip_intermediate_read_by_another_group_is_rejected(fusemax):
    from workloads import get_workload

    w = get_workload("mha", S=64, B=1, H=1, D=8, passes=3)
    groups = [
        FusionGroup(
            einsums=(e.name,),
            on_chip=("QK",) if e.name == "QK" else (),
            levels=(LevelMapping(level="DRAM"), LevelMapping(level="GLB")),
        )
        for e in w.cascade.einsums
    ]
    with pytest.raises(MappingError, match="'QK' is read by another group"):
        check_mapping(w, Mapping(groups=tuple(groups)), fusemax)
