"""The result store: atomic parts, resume without recomputation, errors recorded."""

from __future__ import annotations

import pandas as pd
import pytest

from archsim.errors import SweepError
from dse import ResultStore, SweepSpec, load, run_sweep
from tests.dse.dse_toy import dying_evaluator, toy_evaluator

SPEC = SweepSpec.from_dict(
    {
        "name": "toy",
        "arch": {"preset": "fusemax", "space": {"levels.GLB.capacity_bytes": [1e6, 4e6, 16e6]}},
        "workload": {"name": "mha", "params": {"S": [1024, 4096]}},
        "dataflow": ["fusemax", "flat"],
        "constraints": ["area <= 10"],
    }
)


def test_one_row_per_point_with_errors_recorded(tmp_path):
    summary = run_sweep(SPEC, tmp_path, executor="serial", evaluator=toy_evaluator, batch_size=5)
    df = load(tmp_path)
    assert summary.total == summary.computed == len(df) == 12
    assert df["point_id"].is_unique
    bad = df[df["status"] == "error"]
    assert len(bad) == summary.errors == 2
    assert bad["error"].str.contains("ValueError: buffer too small").all()
    assert (bad["param.S"] == 4096).all()
    # constraint area_mm2 <= 10 drops the 16 MB points from the feasible set
    assert df["feasible"].sum() == 12 - 2 - 4


def test_rerun_skips_finished_points(tmp_path):
    run_sweep(SPEC, tmp_path, executor="serial", evaluator=toy_evaluator)
    calls = []

    def counting(point):
        calls.append(point)
        return toy_evaluator(point)

    again = run_sweep(SPEC, tmp_path, executor="serial", evaluator=counting)
    assert (again.skipped, again.computed, calls) == (12, 0, [])


def test_retry_errors_recomputes_only_failed_points(tmp_path):
    run_sweep(SPEC, tmp_path, executor="serial", evaluator=toy_evaluator)
    again = run_sweep(SPEC, tmp_path, executor="serial", evaluator=toy_evaluator, retry_errors=True)
    assert (again.skipped, again.computed) == (10, 2)
    assert len(load(tmp_path)) == 12


def test_stray_temp_files_are_ignored_and_removed(tmp_path):
    run_sweep(SPEC, tmp_path, executor="serial", evaluator=toy_evaluator, batch_size=4)
    stray = tmp_path / "parts" / ".tmp-deadbeef.parquet"
    stray.write_bytes(b"PAR1 half written")
    assert len(load(tmp_path)) == 12
    run_sweep(SPEC, tmp_path, executor="serial", evaluator=toy_evaluator)
    assert not stray.exists()


def test_compact_merges_parts_and_keeps_rows(tmp_path):
    run_sweep(SPEC, tmp_path, executor="serial", evaluator=toy_evaluator, batch_size=2)
    store = ResultStore(tmp_path)
    before = store.load()
    assert len(store.part_files()) == 6
    store.compact()
    assert len(store.part_files()) == 1
    pd.testing.assert_frame_equal(store.load(), before)


def test_duplicate_rows_from_concurrent_writers_load_once(tmp_path):
    run_sweep(SPEC, tmp_path, executor="serial", evaluator=toy_evaluator)
    store = ResultStore(tmp_path)
    store.write_batch(store.load().drop(columns="feasible").head(3).to_dict("records"))
    assert len(load(tmp_path)) == 12


def test_load_of_a_non_store_is_a_sweep_error(tmp_path):
    with pytest.raises(SweepError, match="not a sweep store"):
        load(tmp_path / "missing")


def test_process_pool_matches_serial(tmp_path):
    run_sweep(SPEC, tmp_path / "a", executor="serial", evaluator=toy_evaluator)
    run_sweep(SPEC, tmp_path / "b", workers=2, evaluator=toy_evaluator, batch_size=3)
    drop = ["eval_s"]
    pd.testing.assert_frame_equal(
        load(tmp_path / "a").drop(columns=drop), load(tmp_path / "b").drop(columns=drop)
    )


def test_mixed_type_axis_values_are_stored(tmp_path):
    spec = SweepSpec.from_dict(
        {
            "name": "mixed",
            "arch": "fusemax",
            "workload": {"name": "mha", "params": {"S": 1024}},
            "knobs": {"tile": [64, "auto"]},
        }
    )
    # one part holds both rows: Parquet cannot store an int and a str in one column
    run_sweep(spec, tmp_path, executor="serial", evaluator=toy_evaluator, batch_size=2)
    df = load(tmp_path)
    assert df["knob.tile"].tolist() == ["64", "auto"]
    assert (df["status"] == "ok").all()


class _Crash(BaseException):
    """Stands in for a kill: not an Exception, so the runner does not record it as an error."""


@pytest.mark.parametrize("crash_at", [0, 1, 5, 11])
def test_resume_after_a_crash_at_any_point_equals_a_clean_run(tmp_path, crash_at):
    calls = []

    def crashing(point):
        if len(calls) == crash_at:
            raise _Crash
        calls.append(point.point_id)
        return toy_evaluator(point)

    with pytest.raises(_Crash):
        run_sweep(SPEC, tmp_path / "crashed", executor="serial", evaluator=crashing, batch_size=2)
    stored = set(load(tmp_path / "crashed")["point_id"])
    assert len(stored) == crash_at - crash_at % 2  # only whole batches were written
    resumed = run_sweep(SPEC, tmp_path / "crashed", executor="serial", evaluator=toy_evaluator)
    assert resumed.computed == 12 - len(stored)
    run_sweep(SPEC, tmp_path / "clean", executor="serial", evaluator=toy_evaluator)
    pd.testing.assert_frame_equal(
        load(tmp_path / "crashed").drop(columns="eval_s"),
        load(tmp_path / "clean").drop(columns="eval_s"),
        check_like=True,
    )


def test_a_dead_worker_is_a_sweep_error_and_the_rerun_resumes(tmp_path):
    with pytest.raises(SweepError, match="worker process died"):
        run_sweep(SPEC, tmp_path, workers=2, evaluator=dying_evaluator, batch_size=1)
    stored = load(tmp_path)
    assert (stored["arch.levels.GLB.capacity_bytes"] != 16e6).all()
    resumed = run_sweep(SPEC, tmp_path, workers=2, evaluator=toy_evaluator)
    assert resumed.computed == 12 - len(stored)
    assert len(load(tmp_path)) == 12
