"""The real evaluator through every executor gives the same store."""

from __future__ import annotations

import time

import pandas as pd
import pytest

from archsim.cli import main
from dse import load, run_sweep
from tests.dse.conftest import results_only


def test_dask_local_cluster_matches_the_process_pool(real_spec_path, tmp_path, capsys):
    distributed = pytest.importorskip("distributed")
    pool = run_sweep(real_spec_path, tmp_path / "pool", workers=2)
    cluster = distributed.LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None, host="127.0.0.1"
    )
    try:  # through the CLI, as `archsim sweep SPEC --out DIR --scheduler ADDRESS`
        argv = ["sweep", str(real_spec_path), "--out", str(tmp_path / "dask"), "--no-progress"]
        assert main([*argv, "--scheduler", cluster.scheduler_address, "--batch-size", "4"]) == 0
    finally:
        cluster.close()
    assert "36 computed (0 errors)" in capsys.readouterr().out
    assert pool.computed == 36
    a, b = load(tmp_path / "pool"), load(tmp_path / "dask")
    assert (a["status"] == "ok").all()
    pd.testing.assert_frame_equal(results_only(a), results_only(b), check_like=True)


def test_real_points_have_physical_results(real_spec_path, tmp_path):
    run_sweep(real_spec_path, tmp_path, executor="serial")
    df = load(tmp_path)
    assert (df["status"] == "ok").all(), df.loc[df["status"] != "ok", "error"].tolist()
    assert (df["seconds"] > 0).all()
    assert (df["energy_j"] > 0).all()
    assert (df["cycles"] > 0).all()
    assert (df["edp_js"] == df["energy_j"] * df["seconds"]).all()
    # a bigger PE array has more area; area does not depend on the workload
    area = df.groupby("arch.compute.pe2d.mesh")["area_mm2"].agg(["min", "max"])
    assert area.loc["[256, 256]", "min"] > area.loc["[64, 64]", "max"]
    # more sequence -> more work -> more time, for every hardware point and dataflow
    keys = ["arch.compute.pe2d.mesh", "arch.levels.GLB.capacity_bytes", "dataflow"]
    by_s = df.pivot_table(index=keys, columns="param.S", values="seconds")
    assert (by_s[2048] > by_s[512]).all()
    assert {c for c in df.columns if c.startswith("util.")}


def test_event_engine_sweep_completes(write_spec, tmp_path):
    path = write_spec(
        {
            "name": "event-small",
            "arch": {"preset": "fusemax", "space": {"compute.pe2d.mesh": [[64, 64], [128, 128]]}},
            "workload": {"name": "mha", "params": {"B": 1, "H": 2, "D": 64, "S": [256, 512]}},
            "dataflow": ["fusemax", "unfused"],
            "engine": ["event", "analytic"],
        }
    )
    run_sweep(path, tmp_path / "s", workers=2)
    df = load(tmp_path / "s")
    assert len(df) == 16, df["error"].tolist()
    assert (df["status"] == "ok").all(), df["error"].tolist()
    ev = df[df.engine == "event"].set_index(["arch.compute.pe2d.mesh", "param.S", "dataflow"])[
        "cycles"
    ]
    an = df[df.engine == "analytic"].set_index(["arch.compute.pe2d.mesh", "param.S", "dataflow"])[
        "cycles"
    ]
    # the analytical estimate is a lower bound of the event-driven simulation
    assert (ev >= an.loc[ev.index]).all()


def test_bad_points_record_errors_and_the_sweep_goes_on(write_spec, tmp_path):
    path = write_spec(
        {
            "name": "bad",
            "arch": {"preset": "fusemax", "space": {"levels.GLB.capacity_bytes": [1e6, -5]}},
            "workload": {"name": "mha", "params": {"B": 1, "H": 2, "D": 64, "S": 256}},
            "dataflow": ["fusemax", "no_such_dataflow"],
        }
    )
    # check=False skips the pre-flight checks (tests/dse/test_preflight.py), which refuse
    # this spec; the runner itself must still survive points that fail
    summary = run_sweep(path, tmp_path, executor="serial", check=False)
    df = load(tmp_path)
    assert summary.computed == 4
    assert summary.errors == 3
    assert summary.failed == 3
    assert sum("unknown dataflow" in m for m in summary.error_messages) == 1
    ok = df[df.status == "ok"]
    assert len(ok) == 1
    assert ok["dataflow"].item() == "fusemax"
    assert df.loc[df.status == "error", "error"].str.len().gt(0).all()


def test_mapper_settings_search_a_mapping_per_point(write_spec, tmp_path):
    path = write_spec(
        {
            "name": "mapper",
            "arch": "tpu_like",
            "workload": {"name": "gemm", "params": {"M": [256, 512], "N": 256, "K": 256}},
            "mapper": {"name": "random", "objective": "edp", "budget": 100, "seed": 0},
        }
    )
    run_sweep(path, tmp_path, executor="serial")
    df = load(tmp_path)
    assert (df["status"] == "ok").all(), df["error"].tolist()
    # the mapping column describes the mapping the mapper chose (levels, factors, loop order)
    assert df["mapping"].str.contains("order").all()
    # twice the rows of output on the same array: more cycles
    assert df.loc[1, "cycles"] > df.loc[0, "cycles"]


def test_bundles_sweep_coupled_arch_fields_and_model_shapes(write_spec, tmp_path):
    # GLB area follows its capacity (preset: 47.09 mm^2 for 16 MiB, Accelergy 45 nm, linear)
    glb = [
        {"levels.GLB.capacity_bytes": c, "levels.GLB.area_mm2": 47.088128 * c / 2**24}
        for c in (2**22, 2**24)
    ]
    path = write_spec(
        {
            "name": "bundles",
            "arch": {"preset": "fusemax", "space": {"glb": {"bundle": glb}}},
            "workload": {
                "name": "mha",
                "params": {
                    "B": 1,
                    "S": 1024,
                    "heads": {"bundle": [{"H": 16, "D": 64}, {"H": 8, "D": 128}]},
                },
            },
            "dataflow": "fusemax",
        }
    )
    run_sweep(path, tmp_path, executor="serial")
    df = load(tmp_path)
    assert len(df) == 4
    assert (df["status"] == "ok").all(), df["error"].tolist()
    assert {
        "arch.levels.GLB.capacity_bytes",
        "arch.levels.GLB.area_mm2",
        "param.H",
        "param.D",
    } <= set(df.columns)
    small, big = (
        df[df["arch.levels.GLB.capacity_bytes"] == c]["area_mm2"].iloc[0] for c in (2**22, 2**24)
    )
    assert big - small == pytest.approx(47.088128 * 0.75)
    # H·D constant: the same matmul FLOPs (4·B·H·S²·D = 4.29e9); only softmax ops (∝ H) differ
    flops = df.groupby("param.H")["flops"].first()
    assert flops[8] == pytest.approx(flops[16], rel=0.01)
    assert flops[16] > flops[8]


def test_gpu_fields_sweep_like_any_other(write_spec, tmp_path):
    path = write_spec(
        {
            "name": "gpu-sms",
            "arch": {"preset": "h100", "space": {"gpu.sms": [66, 132]}},
            "workload": {"name": "mha", "params": {"B": 1, "H": 16, "D": 64, "S": 4096}},
            "dataflow": ["flash2", "gpu_unfused"],
            "constraints": ["area <= 1000"],
        }
    )
    run_sweep(path, tmp_path, executor="serial")
    df = load(tmp_path)
    assert (df["status"] == "ok").all(), df["error"].tolist()
    t = df.set_index(["dataflow", "arch.gpu.sms"])["seconds"]
    # half the SMs: FlashAttention-2 (compute-bound at S=4096) takes longer
    assert t["flash2", 66] > t["flash2", 132]
    # fused attention beats unfused on the same GPU (Dao, FlashAttention-2, ICLR'24)
    assert t["flash2", 132] < t["gpu_unfused", 132]
    # the h100 preset's area follows its SM count (per-SM logic + SRAM): 814 mm^2 at 132 SMs
    area = df.set_index(["dataflow", "arch.gpu.sms"])["area_mm2"]
    assert area["flash2", 132] == pytest.approx(814, rel=0.01)
    assert area["flash2", 66] < area["flash2", 132]
    assert df["feasible"].all()  # area <= 1000 holds


def _unused_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_an_unreachable_dask_scheduler_fails_fast_in_one_line(write_spec, tmp_path, capsys):
    path = write_spec(
        {"name": "d", "arch": "fusemax", "workload": {"name": "mha", "params": {"S": 256}}}
    )
    address = f"tcp://127.0.0.1:{_unused_port()}"
    argv = ["sweep", str(path), "--out", str(tmp_path / "o"), "--no-progress"]
    start = time.perf_counter()
    assert main([*argv, "--scheduler", address, "--connect-timeout", "1"]) == 2
    assert time.perf_counter() - start < 15  # not the 30 s default wait
    err = capsys.readouterr().err
    assert err.count("\n") == 1  # one line, no traceback
    assert err.startswith("error: --scheduler: cannot connect to the Dask scheduler within 1 s")
    assert address in err
    assert main([*argv, "--scheduler", "nota::address"]) == 2
    assert capsys.readouterr().err.startswith("error: --scheduler: bad Dask scheduler address")
