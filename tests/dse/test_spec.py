"""Sweep specs: axes, samplers' requirements, and errors that name the YAML path."""

from __future__ import annotations

import pytest

from archsim.errors import SweepError
from dse import ChoiceAxis, RangeAxis, SweepSpec, load_sweep

BASE = {
    "name": "s",
    "arch": {"preset": "fusemax", "space": {"compute.pe2d.mesh": [[64, 64], [128, 128]]}},
    "workload": {"name": "mha", "params": {"B": 1, "S": [1024, 2048]}},
}


def spec(**over):
    return SweepSpec.from_dict({**BASE, **over}, source="t.yaml")


def test_lists_become_choice_axes_and_scalars_stay_fixed():
    s = spec()
    assert s.arch.space["compute.pe2d.mesh"] == ChoiceAxis(values=([64, 64], [128, 128]))
    assert s.workload.params == {"B": 1}
    assert s.workload.space["S"].values == (1024, 2048)


def test_log_range_reads_yaml_1e6_strings_and_defaults_to_integer(write_spec):
    path = write_spec(
        {
            **BASE,
            "arch": {
                "preset": "fusemax",
                "space": {"levels.GLB.capacity_bytes": {"log_range": ["1e6", "64e6"], "n": 3}},
            },
        }
    )
    axis = load_sweep(path).arch.space["levels.GLB.capacity_bytes"]
    assert isinstance(axis, RangeAxis)
    assert axis.log
    assert axis.integer
    assert axis.grid() == (1_000_000, 8_000_000, 64_000_000)


def test_linear_range_with_real_bounds_is_continuous():
    s = spec(knobs={"alpha": {"range": [0.5, 1.5], "n": 3}})
    assert s.knob_space["alpha"].grid() == (0.5, 1.0, 1.5)


def test_names_and_engines_accept_one_or_many():
    s = spec(dataflow=["fusemax", "flat"], engine="event")
    assert s.dataflows == ("fusemax", "flat")
    assert s.engines == ("event",)


def test_objective_aliases_and_constraints_resolve_to_columns():
    s = spec(objectives=["latency", "edp"], constraints=["area <= 500", "energy_j < 1e-3"])
    assert s.objectives == ("seconds", "edp_js")
    assert [str(c) for c in s.constraints] == ["area_mm2 <= 500", "energy_j < 0.001"]
    assert s.constraints[0].holds(500.0)
    assert not s.constraints[0].holds(500.1)


@pytest.mark.parametrize(
    ("over", "path", "fragment"),
    [
        ({"bogus": 1}, "t.yaml: bogus", "unknown key"),
        (
            {"arch": {"preset": "fusemax", "space": {"clock.core_hz": 1e9}}},
            "t.yaml: arch.space.clock.core_hz",
            "not an axis",
        ),
        (
            {"arch": {"preset": "fusemax", "file": "x.yaml"}},
            "t.yaml: arch",
            "exactly one of preset / file",
        ),
        (
            {"arch": {"preset": "fusemax", "space": {"a.b": {"log_range": [0, 10], "n": 2}}}},
            "t.yaml: arch.space.a.b.log_range",
            "positive",
        ),
        (
            {"arch": {"preset": "fusemax", "space": {"a.b": {"range": [1, 10]}}}},
            "t.yaml: arch.space.a.b",
            "needs n grid points",
        ),
        ({"sampler": {"kind": "lhs"}}, "t.yaml: sampler.n", "needs n"),
        ({"sampler": {"kind": "halton", "n": 4}}, "t.yaml: sampler.kind", "Input should be"),
        ({"constraints": ["area is small"]}, "t.yaml: constraints[0]", "bad constraint"),
        ({"workload": {"name": "mha", "shape": {}}}, "t.yaml: workload.shape", "unknown key"),
    ],
)
def test_bad_specs_raise_sweep_error_with_yaml_path(over, path, fragment):
    with pytest.raises(SweepError) as info:
        spec(**over)
    assert info.value.path == path
    assert fragment in str(info.value)


def test_missing_file_and_bad_yaml_are_sweep_errors(tmp_path):
    with pytest.raises(SweepError, match="cannot read"):
        load_sweep(tmp_path / "nope.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: [unclosed\n")
    with pytest.raises(SweepError, match="not valid YAML"):
        load_sweep(bad)


def test_spec_is_frozen():
    s = spec()
    with pytest.raises(Exception, match="frozen"):
        s.name = "other"  # type: ignore[misc]


def test_bundle_axes_change_several_fields_together():
    s = spec(
        arch={
            "preset": "fusemax",
            "space": {
                "glb": {
                    "bundle": [
                        {"levels.GLB.capacity_bytes": "8e6", "levels.GLB.area_mm2": 22.5},
                        {"levels.GLB.capacity_bytes": 16e6, "levels.GLB.area_mm2": 45.0},
                    ]
                }
            },
        }
    )
    axis = s.arch.space["glb"]
    assert axis.bundle
    assert axis.values[0] == {"levels.GLB.capacity_bytes": 8e6, "levels.GLB.area_mm2": 22.5}
    with pytest.raises(SweepError) as info:
        spec(arch={"preset": "fusemax", "space": {"glb": {"bundle": [1, 2]}}})
    assert info.value.path == "t.yaml: arch.space.glb.bundle[0]"


def test_example_sweeps_load_and_expand():
    from pathlib import Path

    from dse import expand_points

    examples = sorted((Path(__file__).resolve().parents[2] / "examples").glob("sweep_*.yaml"))
    assert examples
    sizes = {p.name: len(expand_points(load_sweep(p))) for p in examples}
    assert sizes == {"sweep_fusemax.yaml": 128, "sweep_lhs.yaml": 128}
