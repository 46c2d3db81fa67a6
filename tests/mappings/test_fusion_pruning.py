"""The ``fusion`` mapper's pruning is exact: it returns what searching every segment and every
candidate returns, only faster.

Two prunings: a segment whose cost lower bound (:func:`mappings._bounds.segment_bound`),
added to every partial mapping before it, is dominated by a partition already found is not
searched; a loop nest that differs from a valid one only in which mesh axis each spatial rank
uses is not lowered again (the lowering never reads the axes).
"""

from __future__ import annotations

import pytest

from archsim import TileProgram, load_arch
from archsim._estimate import estimate
from archsim.errors import MappingError
from mappings import check_mapping, get_mapper
from mappings._bounds import segment_bound
from mappings._fit import pick_units
from mappings._fusion_search import _groups, closed_segments
from mappings._lower import lower_group
from mappings._mapping import Mapping
from mappings._splits import apply_splits
from workloads import get_workload

CASES = [
    ("fusemax", "mla", {"S": 128, "H": 2}),
    ("fusemax", "mha", {"S": 1024, "H": 4, "D": 64}),
    ("tpu_like", "mha", {"S": 512, "H": 2, "D": 64}),
    ("flat", "mha", {"S": 512, "H": 2, "D": 64, "passes": 3}),
]


def _evaluate(w, arch, group):
    phase = lower_group(w, group, arch, "+".join(group.einsums))
    return estimate(TileProgram("segment", (phase,), clock_hz=arch.clock.core_hz), arch)


@pytest.mark.parametrize(("arch_name", "name", "params"), CASES[:3])
def test_segment_bound_is_below_every_mapping_of_the_segment(arch_name, name, params):
    arch = load_arch(arch_name)
    w = get_workload(name, **params)
    if w.cascade.splits:
        w = apply_splits(w, {"m": 64})
    names = [e.name for e in w.cascade.einsums]
    big, small = pick_units(arch)
    checked = 0
    for i, j in [(i, i + 1) for i in range(len(names))] + closed_segments(w.cascade):
        lb = segment_bound(w, arch, names[i:j])
        assert lb is not None
        assert lb[0] > 0
        assert lb[1] > 0
        for lean in (False, True):
            for k, group in enumerate(_groups(w, arch, names[i:j], big, small, lean=lean)):
                if k >= 12:
                    break
                try:
                    check_mapping(w, Mapping(groups=(group,)), arch, partial=True)
                except MappingError:
                    continue
                r = _evaluate(w, arch, group)
                assert r.cycles >= lb[0] * (1 - 1e-9), (names[i:j], r.cycles, lb)
                assert r.energy_j >= lb[1] * (1 - 1e-9), (names[i:j], r.energy_j, lb)
                checked += 1
    assert checked > 50


def test_no_bound_where_conditions_thin_the_work():
    w = get_workload("mha", S=512, H=2, D=64, causal=True)
    names = [e.name for e in w.cascade.einsums]
    assert segment_bound(w, load_arch("fusemax"), names) is None


def test_the_lowering_ignores_which_mesh_axis_a_rank_uses():
    arch = load_arch("fusemax")
    w = apply_splits(get_workload("mha", S=1024, H=4, D=64), {"m": 256})
    names = tuple(e.name for e in w.cascade.einsums)
    big, small = pick_units(arch)
    group = next(g for g in _groups(w, arch, names, big, small) if len(g.levels[-1].spatial) == 2)
    swapped = group.model_copy(
        update={
            "levels": (
                *group.levels[:-1],
                group.levels[-1].model_copy(
                    update={
                        "spatial_axis": {
                            r: ("y" if a == "x" else "x")
                            for r, a in group.levels[-1].spatial_axis.items()
                        }
                    }
                ),
            )
        }
    )
    assert swapped != group
    a, b = _evaluate(w, arch, group), _evaluate(w, arch, swapped)
    assert (a.cycles, a.energy_j, a.dram_bytes) == (b.cycles, b.energy_j, b.dram_bytes)


@pytest.mark.parametrize(("arch_name", "name", "params"), CASES)
def test_pruned_search_returns_what_the_full_search_returns(arch_name, name, params, monkeypatch):
    import mappings._bounds
    import mappings._fusion_search as fs

    arch = load_arch(arch_name)
    w = get_workload(name, **params)
    search = get_mapper("fusion")
    pruned: dict[str, float] = {}
    got = {
        obj: search(w, arch, top=6, rescore=0, objective=obj, stats=pruned)
        for obj in ("latency", "pareto")
    }
    monkeypatch.setattr(mappings._bounds, "segment_bound", lambda *a, **k: None)
    monkeypatch.setattr(fs, "LEAN_SLACK", fs.LEAN_SLACK)  # the heuristic stays as it was
    monkeypatch.setattr(fs, "_without_axes", lambda g: g.model_dump_json())
    full: dict[str, float] = {}
    for obj, ranked in got.items():
        want = search(w, arch, top=6, rescore=0, objective=obj, stats=full)
        assert [(r.mapping, r.cycles, r.energy_j) for r in ranked] == [
            (r.mapping, r.cycles, r.energy_j) for r in want
        ]
    assert full["skipped"] == 0
    assert pruned["evaluated"] < full["evaluated"]


def test_lean_retry_screens_slow_bindings_and_keeps_the_fastest_nest(monkeypatch):
    """MLA's heads-rich core fits only on the lean retry; the bindings whose compute floor is
    over LEAN_SLACK x the fastest nest found are not lowered, and the fastest nest is the
    one of the unscreened retry."""
    import math

    import mappings._fusion_search as fs

    arch = load_arch("fusemax").with_updates({"levels.GLB.capacity_bytes": 4 * 2**20})
    w = apply_splits(get_workload("mla", S=256, H=16), {"m": 64})
    names = [e.name for e in w.cascade.einsums]
    core = names[1:15]
    assert core[0] == "QKC"
    assert core[-1] == "AV"
    screened: dict[str, float] = {}
    got = fs.search_segment(w, arch, core, stats=screened)
    monkeypatch.setattr(fs, "LEAN_SLACK", math.inf)
    full: dict[str, float] = {}
    want = fs.search_segment(w, arch, core, stats=full)
    assert screened["screened"] > 0
    assert "screened" not in full
    assert screened["evaluated"] < 0.8 * full["evaluated"]
    assert got[0].cycles == want[0].cycles  # the front's fastest end
    for ch in got:  # every nest kept is at most LEAN_SLACK x the fastest compute floor
        assert fs.compute_floor(w, arch, ch.group) <= fs.LEAN_SLACK * got[0].cycles
    # building the nests binding by binding builds every lean nest once
    big, small = pick_units(arch)
    every = [g.model_dump_json() for g in _groups(w, arch, core, big, small, lean=True)]
    firsts = list(_groups(w, arch, core, big, small, lean=True, firsts=True))
    keys = set(map(fs._binding, firsts))  # (x, y) and (y, x) on a square mesh: one binding
    assert len(keys) > 1
    by_binding = [
        g.model_dump_json()
        for k in keys
        for g in _groups(w, arch, core, big, small, lean=True, binding=k)
    ]
    assert sorted(by_binding) == sorted(every)
