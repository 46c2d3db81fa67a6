"""A sweep with a bad spec is refused before any point runs; failing points exit non-zero.

Issue 15: a wrong architecture path or an unknown workload parameter used to turn every
point into the same error, printed as "(128 errors)", with exit 0.
"""

from __future__ import annotations

import re
import time
import tracemalloc

import pytest

from archsim.cli import main
from archsim.errors import SweepError
from dse import SweepSpec, expand_points, load
from dse._check import MAX_POINTS, check_spec, count_points
from tests.dse.conftest import REAL_SPEC

SMALL = {
    "name": "small",
    "arch": {"preset": "fusemax", "space": {"levels.GLB.capacity_bytes": [1e6, 4e6]}},
    "workload": {"name": "mha", "params": {"B": 1, "H": 2, "D": 64, "S": [256, 512]}},
    "dataflow": ["fusemax", "flat"],
}


def _with(**changes: object) -> dict:
    spec = {**SMALL}
    for dotted, value in changes.items():
        node = spec
        *parents, leaf = dotted.split("__")
        for key in parents:
            node[key] = dict(node[key])
            node = node[key]
        node[leaf] = value
    return spec


@pytest.mark.parametrize(
    ("changes", "field", "words"),
    [
        ({"arch": {"file": "no_such_arch.yaml"}}, "arch.file", "no architecture preset or file"),
        ({"arch": "fusemaxx"}, "arch.preset", "no architecture preset or file"),
        (
            {"arch__set": {"levels.GLBX.capacity_bytes": 1e6}},
            "arch.set",
            "unknown component",
        ),
        (
            {"arch__space": {"levels.GLB.capacity_bytes": [1e6, -5]}},
            "arch.space.levels.GLB.capacity_bytes[1]",
            "capacity_bytes",
        ),
        ({"workload__name": "mhaa"}, "workload.name", "unknown workload"),
        (
            {"workload__params": {"S": [256, 512], "Sx": 3}},
            "workload.params.Sx",
            "unknown parameter",
        ),
        ({"workload__params": {"S": [256, -1]}}, "workload.params.S[1]", "bad value"),
        ({"workload__params": {"S": "abc"}}, "workload.params.S", "bad value"),
        ({"dataflow": ["fusemax", "no_such"]}, "dataflow[1]", "unknown dataflow"),
        ({"dataflow": ["fusemax", "flash2"]}, "dataflow[1]", "flash2 does not run on fusemax"),
        ({"knobs": {"tilee": [64, 128]}}, "knobs.tilee", "unknown knob"),
        (
            {"dataflow": "fusemax", "knobs": {"m0": [64, -1]}},
            "knobs.m0[1]",
            "knob must be a positive integer",
        ),
        ({"objectives": ["latency", "energyy"]}, "objectives[1]", "unknown objective"),
        ({"constraints": ["aera <= 5"]}, "constraints[0]", "unknown column"),
        ({"mapper": {"name": "no_such_mapper"}}, "mapper.name", "unknown mapper"),
    ],
)
def test_a_bad_spec_exits_2_before_computing_and_names_the_field(
    write_spec, tmp_path, capsys, changes, field, words
):
    spec = write_spec(_with(**changes))
    out = tmp_path / "store"
    assert main(["sweep", str(spec), "--out", str(out), "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"error: {spec}: {field}: "), err
    assert words in err
    assert not out.exists()  # refused before the store was even created
    assert main(["sweep", str(spec), "--out", str(out), "--dry-run"]) == 2
    assert f"{field}: " in capsys.readouterr().err


def test_check_spec_accepts_the_real_spec_and_returns_its_count():
    spec = SweepSpec.from_dict(REAL_SPEC)
    assert check_spec(spec) == len(expand_points(spec)) == 36


def test_points_that_fail_anyway_print_their_distinct_errors_and_exit_1(
    write_spec, tmp_path, capsys
):
    # H=8 with Hkv=16 is an inconsistent *combination* (Hkv must divide H): the spec is
    # fine, that one point fails; the rerun (nothing computed) still reports it
    spec = write_spec(_with(workload__params={"S": 256, "H": [8, 16], "Hkv": [16]}))
    out = tmp_path / "store"
    for _ in range(2):
        assert main(["sweep", str(spec), "--out", str(out), "--no-progress"]) == 1
        err = capsys.readouterr().err
        assert "error: 4 of 8 points failed (1 distinct errors):" in err
        assert "  4 x WorkloadError: mha.Hkv: inconsistent parameters" in err
        assert "--retry-errors" in err
    df = load(out)
    assert (df.loc[df["param.H"] == 16, "status"] == "ok").all()


def test_count_points_matches_the_expanded_points():
    specs = [
        REAL_SPEC,
        {**REAL_SPEC, "sampler": {"kind": "lhs", "n": 7, "seed": 1}},
        {
            **SMALL,
            "arch": {"preset": "fusemax", "space": {"compute.pe2d.mesh": [[8, 8], [16, 16]]}},
            "workload": {"name": "mha", "params": {"S": {"range": [256, 260], "n": 3}}},
            "engine": ["analytic", "event"],
        },
    ]
    for raw in specs:
        spec = SweepSpec.from_dict(raw)
        assert count_points(spec) == len(expand_points(spec))


def test_integer_ranges_count_at_most_their_distinct_values():
    spec = SweepSpec.from_dict(
        {**SMALL, "workload": {"name": "mha", "params": {"S": {"range": [256, 259], "n": 10**9}}}}
    )
    # 4 distinct integers, not 10^9 grid values: counted without building the grid
    assert count_points(spec) == 4 * 2 * 2 == len(expand_points(spec))


HUGE = {
    "name": "huge",
    "arch": {
        "preset": "fusemax",
        "space": {
            "levels.GLB.capacity_bytes": {"log_range": [1e6, 64e6], "n": 1000},
            "levels.DRAM.read_bw_bytes_per_cycle": {"range": [1, 1000], "n": 1000},
        },
    },
    "workload": {"name": "mha", "params": {"S": {"range": [1024, 65536], "n": 1000}}},
}


def test_a_billion_point_sweep_is_refused_at_once_without_materialising(
    write_spec, tmp_path, capsys
):
    spec = write_spec(HUGE)
    tracemalloc.start()
    start = time.perf_counter()
    try:
        code = main(["sweep", str(spec), "--out", str(tmp_path / "o"), "--dry-run"])
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert code == 2
    assert time.perf_counter() - start < 10
    assert peak < 50e6  # bytes: nothing of size 10^9 was built
    err = capsys.readouterr().err
    assert "the sweep has 1,000,000,000 points" in err
    assert f"more than the {MAX_POINTS:,} allowed" in err
    assert "--max-points" in err
    assert "sampler" in err
    assert "workload.params.S (1,000 values)" in err


def test_max_points_lowers_or_raises_the_bound(write_spec, tmp_path, capsys):
    spec = write_spec(SMALL)
    out = str(tmp_path / "o")
    assert main(["sweep", str(spec), "--out", out, "--dry-run", "--max-points", "5"]) == 2
    assert "the sweep has 8 points, more than the 5 allowed" in capsys.readouterr().err
    assert main(["sweep", str(spec), "--out", out, "--dry-run", "--max-points", "8"]) == 0


def test_dry_run_prints_the_count_and_a_cost_estimate(write_spec, tmp_path, capsys):
    spec = write_spec(SMALL)
    assert main(["sweep", str(spec), "--out", str(tmp_path / "o"), "--dry-run"]) == 0
    text = capsys.readouterr().out
    assert "small: 8 points, 0 already in" in text
    # a warm-up point, then the first, middle and last points are timed
    assert re.search(
        r"estimate \(analytic\): [0-9.e-]+ s per point \(mean of 3 timed\); "
        r"8 points on \d+ workers ~ [0-9.e-]+ s",
        text,
    ), text
    assert not (tmp_path / "o").exists()


def test_workers_are_bounded_and_the_message_names_the_flag(write_spec, tmp_path, capsys):
    spec = write_spec(SMALL)
    assert main(["sweep", str(spec), "--out", str(tmp_path / "o"), "--workers", "100000"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: --workers: too many workers")
    assert "got 100000" in err


def test_run_sweep_refuses_a_bad_spec_object():
    spec = SweepSpec.from_dict(_with(workload__params={"S": 256, "Sx": 1}))
    with pytest.raises(SweepError, match=r"workload\.params\.Sx: .*unknown parameter"):
        check_spec(spec)


CASCADE = """
name: attention-3pass
params: {B: 1, H: 2, S: 256, D: 64}
ranks:
  q: {size: S}
  k: {size: S}
tensors:
  Q: {ranks: [b, h, q, d], dtype: bf16}
  K: {ranks: [b, h, k, d], dtype: bf16}
  V: {ranks: [b, h, k, d], dtype: bf16}
einsums:
  - QK[b,h,k,q] = Q[b,h,q,d] * K[b,h,k,d]
  - MX[b,h,q] = max(k) QK[b,h,k,q]
  - SN[b,h,k,q] = exp(QK[b,h,k,q] - MX[b,h,q])
  - SD[b,h,q] = sum(k) SN[b,h,k,q]
  - A[b,h,k,q] = SN[b,h,k,q] / SD[b,h,q]
  - AV[b,h,q,d] = A[b,h,k,q] * V[b,h,k,d]
"""


def test_a_cascade_file_workload_is_found_next_to_the_spec_and_its_params_checked(
    write_spec, tmp_path, capsys, monkeypatch
):
    (tmp_path / "mine.yaml").write_text(CASCADE)
    mine = {"name": "mine.yaml", "params": {"S": [256, 512]}}
    spec = write_spec(_with(workload=mine, dataflow=["flat", "unfused"]))  # 3-pass cascade
    monkeypatch.chdir(tmp_path.parent)  # the file resolves against the spec, not the cwd
    out = tmp_path / "o"
    assert main(["sweep", str(spec), "--out", str(out), "--no-progress", "--workers", "1"]) == 0
    df = load(out)
    assert (df["status"] == "ok").all(), df["error"].tolist()
    assert sorted(set(df["param.S"])) == [256, 512]
    flops = df.groupby("param.S")["flops"].first()
    assert flops[512] == pytest.approx(4 * flops[256])  # the file's cascade, at each S: S^2
    bad = write_spec(_with(workload={"name": "mine.yaml", "params": {"M": [256]}}), "bad.yaml")
    assert main(["sweep", str(bad), "--out", str(tmp_path / "o2"), "--dry-run"]) == 2
    err = capsys.readouterr().err
    assert "workload.params.M: " in err
    assert "unknown parameter: expected one of ['B', 'D', 'H', 'S']" in err
    gone = write_spec(_with(workload={"name": "gone.yaml"}), "gone_spec.yaml")
    assert main(["sweep", str(gone), "--out", str(tmp_path / "o3"), "--dry-run"]) == 2
    assert "workload.name: no such cascade file" in capsys.readouterr().err
