"""The real evaluator through every executor gives the same store."""

from __future__ import annotations

import pandas as pd
import pytest
from tests.dse.conftest import results_only

from dse import load, run_sweep


def test_dask_local_cluster_matches_the_process_pool(real_spec_path, tmp_path):
    distributed = pytest.importorskip("distributed")
    pool = run_sweep(real_spec_path, tmp_path / "pool", workers=2)
    cluster = distributed.LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None, host="127.0.0.1"
    )
    try:
        with distributed.Client(cluster) as client:
            via_dask = run_sweep(real_spec_path, tmp_path / "dask", client=client, batch_size=4)
    finally:
        cluster.close()
    assert pool.computed == via_dask.computed == 36
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
    summary = run_sweep(path, tmp_path, executor="serial")
    df = load(tmp_path)
    assert summary.computed == 4
    assert summary.errors == 3
    ok = df[df.status == "ok"]
    assert len(ok) == 1
    assert ok["dataflow"].item() == "fusemax"
    assert df.loc[df.status == "error", "error"].str.len().gt(0).all()
