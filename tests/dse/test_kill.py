"""Kill test: a sweep SIGKILLed mid-run and re-run with the same command resumes exactly."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time

import pandas as pd
import yaml

from dse import ResultStore, load, run_sweep
from tests.dse.conftest import REAL_SPEC, results_only


def _sweep_cmd(spec, out):
    return [
        sys.executable,
        "-m",
        "archsim",
        "sweep",
        str(spec),
        "--out",
        str(out),
        "--workers",
        "2",
        "--batch-size",
        "1",
        "--no-progress",
    ]


def test_sigkill_mid_run_then_rerun_equals_an_uninterrupted_run(tmp_path):
    # 3 meshes × 4 buffers × 3 lengths × 2 dataflows = 72 points, one part file per point
    spec = {
        **REAL_SPEC,
        "arch": {
            "preset": "fusemax",
            "space": {
                "compute.pe2d.mesh": [[64, 64], [128, 128], [256, 256]],
                "levels.GLB.capacity_bytes": {"log_range": [1e6, 32e6], "n": 4},
            },
        },
        "workload": {"name": "mha", "params": {"B": 1, "H": 4, "D": 64, "S": [512, 1024, 2048]}},
    }
    spec_path = tmp_path / "sweep.yaml"
    spec_path.write_text(yaml.safe_dump(spec))
    out = tmp_path / "killed"
    store = ResultStore(out)

    proc = subprocess.Popen(
        _sweep_cmd(spec_path, out),
        start_new_session=True,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    deadline = time.monotonic() + 120
    while len(store.part_files()) < 3 and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.005)
    assert proc.poll() is None, proc.communicate()[1].decode()[-2000:]  # still running
    os.killpg(proc.pid, signal.SIGKILL)  # the runner and its pool workers, mid-run
    proc.communicate()
    before = store.load()
    assert proc.returncode == -signal.SIGKILL
    assert 3 <= len(before) < 72, "the kill must land mid-run"

    rerun = subprocess.run(_sweep_cmd(spec_path, out), capture_output=True, text=True, timeout=300)
    assert rerun.returncode == 0, rerun.stderr
    stored, computed = map(
        int, re.search(r"(\d+) already stored, (\d+) computed", rerun.stdout).groups()
    )
    after = load(out)
    # no finished point lost or recomputed: the rerun computed exactly the missing ones
    assert (stored, computed) == (len(before), 72 - len(before))
    assert after["point_id"].is_unique
    assert len(after) == 72
    kept = after.set_index("point_id").loc[before["point_id"]].reset_index()
    # later points may add columns (other levels/units); for the kept rows those are empty
    extra = kept.columns.difference(before.columns)
    assert kept[extra].isna().all().all()
    pd.testing.assert_frame_equal(
        results_only(kept[before.columns]), results_only(before), check_like=True
    )

    clean = tmp_path / "clean"
    run_sweep(spec_path, clean, executor="serial")
    pd.testing.assert_frame_equal(results_only(after), results_only(load(clean)), check_like=True)
    assert (after["status"] == "ok").all()
