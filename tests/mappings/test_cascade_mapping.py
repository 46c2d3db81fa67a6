"""A mapping covers a whole cascade (splits, fusion, units) and one lowering runs it.

The ``fusemax`` dataflow is a recipe that writes such a mapping; the program it simulates is
the generic lowering of that mapping, so the mapping saved as YAML and passed back gives the
same answer, and its counted work is the cascade's own.
"""

from __future__ import annotations

import pytest

from archsim import estimate, load_arch
from archsim.errors import MappingError
from mappings import Mapping
from mappings._api import simulate_workload
from mappings._lower import lower
from mappings._splits import apply_splits
from workloads import count, get_workload


@pytest.fixture(scope="module")
def fusemax():
    return load_arch("fusemax")


def _recipe(arch, name, **params):
    w = get_workload(name, **params)
    rep = simulate_workload(arch, w, dataflow="fusemax", engine="analytic")
    return w, rep


@pytest.mark.parametrize(
    ("name", "params"),
    [
        ("mha", {"S": 1024, "H": 4}),
        ("mha", {"S": 1000, "H": 2, "causal": True}),  # ragged tiles, a condition
        ("gqa", {"S": 2048}),
        ("sqa", {"S": 1024}),
        ("block_sparse", {"S": 2048, "H": 2}),
        ("mla", {"S": 512, "H": 8}),
        ("cca", {"S": 1024}),
    ],
)
def test_recipe_mapping_round_trips_through_yaml_to_the_same_program(fusemax, name, params):
    w, rep = _recipe(fusemax, name, **params)
    m = rep.plan.mapping
    assert m is not None
    assert m.name == "fusemax"
    again = Mapping.from_yaml(m.to_yaml())
    assert again == m
    prog = lower(w, again, fusemax)
    assert estimate(prog, fusemax).cycles == rep.result.cycles
    # every op the cascade counts is in the program: none invented, none lost
    c = count(apply_splits(w, m.splits).cascade)
    ops = prog.meta["ops"]
    assert ops["mac"] == pytest.approx(c.macs, rel=1e-12)
    for kind, n in c.ops.items():
        assert ops.get(kind, 0.0) == pytest.approx(n, rel=1e-12), kind


def test_split_tile_is_the_mappings_choice(fusemax):
    w = get_workload("mha", S=1024, H=1)
    assert w.sizes["m0"] == 64
    split = apply_splits(w, {"m": 256})
    assert (split.sizes["m0"], split.sizes["m1"]) == (256, 4)
    assert apply_splits(w, {"m0": 128}).sizes["m1"] == 8
    with pytest.raises(MappingError, match=r"splits\.p.*no such split rank"):
        apply_splits(w, {"p": 64})
    with pytest.raises(MappingError, match="integer >= 1"):
        apply_splits(w, {"m": 0})


def test_running_state_split_changes_the_row_work(fusemax):
    # a finer key split updates the running state more often: more 1D work, same MACs
    w, rep = _recipe(fusemax, "mha", S=1024, H=1)
    coarse = rep.plan.mapping
    fine = coarse.model_copy(update={"splits": {"m": 128}})
    d = coarse.model_dump()
    dram = d["groups"][0]["levels"][0]["temporal"]
    dram["m1"] = 8
    d["groups"][0]["levels"][2]["spatial"]["m0"] = 128
    d["splits"] = {"m": 128}
    fine = Mapping.from_dict(d)
    a, b = lower(w, coarse, fusemax), lower(w, fine, fusemax)
    assert a.meta["ops"]["mac"] == b.meta["ops"]["mac"]
    assert b.meta["ops"]["exp"] > a.meta["ops"]["exp"]


def test_epilogue_outside_the_key_loop_writes_its_output_once(fusemax):
    # AV does not iterate the key tiles: it sits after their loop (an imperfect nest), so
    # with every query block in one group, DRAM moves Q, K, V and AV exactly once
    w, rep = _recipe(fusemax, "mha", S=4096, H=2)
    assert rep.plan.meta["kv_passes"] == 1
    compulsory = 4 * 4096 * 128 * 2 * 2  # Q, K, V, AV of both heads, bf16
    assert rep.result.dram_bytes == pytest.approx(compulsory, rel=1e-6)


def test_bad_unit_binding_is_refused_with_its_path(fusemax):
    w, rep = _recipe(fusemax, "mha", S=1024, H=1)
    d = rep.plan.mapping.model_dump()
    d["groups"][0]["units"]["RM"] = "tensor_core"
    with pytest.raises(MappingError, match=r"groups\[0\]\.units\.RM.*unknown compute unit"):
        lower(w, Mapping.from_dict(d), fusemax)
    d["groups"][0]["units"] = {"NOPE": "pe1d"}
    with pytest.raises(MappingError, match="outside the group"):
        lower(w, Mapping.from_dict(d), fusemax)
    d["groups"][0]["units"] = {}
    d["groups"][0]["depth"] = 0
    with pytest.raises(MappingError, match="depth"):
        Mapping.from_dict(d)


def test_skipping_dead_tiles_is_a_mapping_choice(fusemax):
    w, rep = _recipe(fusemax, "mha", S=4096, H=1, causal=True)
    m = rep.plan.mapping
    d = m.model_dump()
    d["groups"][0]["skip"] = []
    dense = lower(w, Mapping.from_dict(d), fusemax)
    skipped = estimate(lower(w, m, fusemax), fusemax).cycles
    full = estimate(dense, fusemax).cycles
    # causal leaves 136 of 256 key tiles live (16 x 16 tiles of 256); the final divide runs
    # on every row either way (about 3% of the dense time here)
    assert 136 / 256 < skipped / full < 136 / 256 + 0.03
    # the ops counted are the same either way; only the time spent on dead tiles differs
    assert dense.meta["ops"] == lower(w, m, fusemax).meta["ops"]


def test_save_mapping_from_the_cli_runs_back_unchanged(tmp_path, capsys):
    from archsim.cli import main

    out = tmp_path / "fm.yaml"
    args = ["simulate", "--arch", "fusemax", "--workload", "gqa", "--set", "S=1024"]
    assert (
        main(
            [
                *args,
                "--dataflow",
                "fusemax",
                "--engine",
                "analytic",
                "--json",
                "--save-mapping",
                str(out),
            ]
        )
        == 0
    )
    first = capsys.readouterr().out
    assert main([*args, "--mapping", str(out), "--engine", "analytic", "--json"]) == 0
    again = capsys.readouterr().out
    import json

    assert json.loads(first)["cycles"] == json.loads(again)["cycles"]
    flat = tmp_path / "flat.yaml"  # flat is a mapping recipe too: saved, run back unchanged
    base = [*args, "--dataflow", "flat", "--engine", "analytic", "--json"]
    assert main([*base, "--save-mapping", str(flat)]) == 0
    first = capsys.readouterr().out
    assert main([*args, "--mapping", str(flat), "--engine", "analytic", "--json"]) == 0
    assert json.loads(first)["cycles"] == json.loads(capsys.readouterr().out)["cycles"]


def test_a_missing_mapping_file_is_named():
    with pytest.raises(MappingError, match=r"nope\.yaml.*no such mapping file"):
        Mapping.from_yaml("/nonexistent/nope.yaml")


def test_a_units_fused_ops_ride_in_their_host_pipeline():
    from mappings._lower import issued

    flat_1d = load_arch("flat").unit("pe1d")
    assert flat_1d.fused_ops == {"sub": "exp"}
    # one subtract per exp rides free; a subtract beyond them still issues
    assert issued({"sub": 10.0, "exp": 8.0, "max": 3.0}, flat_1d) == {
        "sub": 2.0,
        "exp": 8.0,
        "max": 3.0,
    }
    assert issued({"sub": 10.0, "exp": 8.0}, load_arch("fusemax").unit("pe1d")) == {
        "sub": 10.0,
        "exp": 8.0,
    }
