"""Store safety: one writer at a time, kills mid-write leave no part, corrupt files named.

Issue 15: two sweeps writing one ``--out`` stored 480 rows for 240 points; a kill during a
write left a stray ``.tmp`` part; corrupt parts or manifests gave ArrowInvalid /
JSONDecodeError tracebacks at ``pareto``.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import signal
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

import hypothesis.strategies as st
import pyarrow.parquet as pq
import pytest
from hypothesis import given, settings

from archsim.cli import main
from archsim.errors import SweepError
from dse import ResultStore, load, run_sweep
from tests.dse.dse_toy import toy_evaluator
from tests.dse.test_store import SPEC

REPO = Path(__file__).resolve().parents[2]


def _python(code: str) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(code)],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _raw_rows(store: Path) -> list[str]:
    """Every stored point id, duplicates included (``load`` would drop them)."""
    ids: list[str] = []
    for part in ResultStore(store).part_files():
        ids += pq.read_table(part, columns=["point_id"]).column("point_id").to_pylist()
    return ids


def test_a_second_writer_is_refused_while_the_first_holds_the_store(tmp_path, capsys):
    holder = _python(
        f"""
        import time
        from dse import ResultStore
        with ResultStore({str(tmp_path / "store")!r}).lock():
            print("locked", flush=True)
            time.sleep(60)
        """
    )
    try:
        assert holder.stdout.readline().strip() == "locked"
        with pytest.raises(SweepError, match=f"another sweep is writing.*pid {holder.pid}"):
            run_sweep(SPEC, tmp_path / "store", executor="serial", evaluator=toy_evaluator)
        assert _raw_rows(tmp_path / "store") == []
    finally:
        holder.kill()
        holder.communicate()
    # the OS drops the lock of a dead process: the store is writable again
    summary = run_sweep(SPEC, tmp_path / "store", executor="serial", evaluator=toy_evaluator)
    assert summary.computed == 12


def test_two_concurrent_sweeps_into_one_store_keep_one_row_per_point(real_spec_path, tmp_path):
    out = tmp_path / "store"
    cmd = [sys.executable, "-m", "archsim", "sweep", str(real_spec_path), "--out", str(out)]
    cmd += ["--workers", "1", "--batch-size", "1", "--no-progress"]
    procs = [subprocess.Popen(cmd, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE)]
    procs.append(subprocess.Popen(cmd, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE))
    results = [(p.wait(timeout=240), p.communicate()[1].decode()) for p in procs]
    codes = sorted(code for code, _ in results)
    assert codes in ([0, 0], [0, 2]), results
    for code, err in results:
        if code == 2:  # the loser says why, in one line
            assert err.startswith(f"error: {out}: another sweep is writing this result store")
    ids = _raw_rows(out)
    assert len(ids) == len(set(ids)) == 36
    if codes == [0, 0]:  # they did not overlap: the second one resumed and computed nothing
        assert any(b"36 already stored, 0 computed" in p.stdout.read() for p in procs)


def test_a_kill_in_the_middle_of_a_write_leaves_no_part_and_the_rerun_cleans_up(tmp_path):
    store = tmp_path / "store"
    run_sweep(SPEC, store, executor="serial", evaluator=toy_evaluator, batch_size=4)
    before = load(store)
    os.remove(ResultStore(store).part_files()[-1])  # forget the last batch of 4 points
    writer = _python(
        f"""
        import time
        import pandas as pd
        from dse import ResultStore

        def half_write(self, path, **kw):  # write part of the bytes, then hang mid-write
            with open(path, "wb") as fh:
                fh.write(b"PAR1 half of a part")
                fh.flush()
            print("writing", flush=True)
            time.sleep(60)

        pd.DataFrame.to_parquet = half_write
        rows = [{{"point_id": "p", "point_index": 0, "status": "ok"}}]
        ResultStore({str(store)!r}).write_batch(rows)
        """
    )
    assert writer.stdout.readline().strip() == "writing"
    writer.send_signal(signal.SIGKILL)
    writer.communicate()
    strays = list((store / "parts").glob(".tmp-*"))
    assert len(strays) == 1  # the kill left its temp file, never a part
    assert len(load(store)) == 8  # ...which readers ignore
    resumed = run_sweep(SPEC, store, executor="serial", evaluator=toy_evaluator)
    assert (resumed.skipped, resumed.computed) == (8, 4)
    assert not any(s.exists() for s in strays)
    after = load(store)
    assert after["point_id"].tolist() == before["point_id"].tolist()


@pytest.fixture
def store(tmp_path: Path) -> Path:
    out = tmp_path / "store"
    run_sweep(SPEC, out, executor="serial", evaluator=toy_evaluator, batch_size=4)
    return out


@pytest.mark.parametrize(
    "damage", [b"", b"PAR1 not parquet", "truncate"], ids=["empty", "garbage", "truncated"]
)
def test_a_corrupt_part_is_an_error_naming_the_file(store, capsys, damage):
    part = ResultStore(store).part_files()[1]
    data = part.read_bytes()
    part.write_bytes(data[: len(data) // 2] if damage == "truncate" else damage)
    assert main(["pareto", str(store)]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"error: {part}: corrupt result part")
    assert "delete it" in err
    with pytest.raises(SweepError, match="corrupt result part"):
        run_sweep(SPEC, store, executor="serial", evaluator=toy_evaluator)


@pytest.mark.parametrize("text", ["{not json", "[1, 2]", "\xff\xfe"])
def test_a_corrupt_manifest_is_an_error_naming_the_file(store, capsys, text):
    manifest = store / "manifest.json"
    manifest.write_bytes(text.encode("latin-1"))
    assert main(["pareto", str(store)]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"error: {manifest}: corrupt manifest")


def test_orphaned_pool_workers_of_a_killed_sweep_do_not_keep_the_store_locked(
    real_spec_path, tmp_path
):
    out = tmp_path / "store"
    cmd = [sys.executable, "-m", "archsim", "sweep", str(real_spec_path), "--out", str(out)]
    cmd += ["--workers", "2", "--batch-size", "1", "--no-progress"]
    proc = subprocess.Popen(cmd, cwd=REPO, start_new_session=True, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 120
        while not ResultStore(out).part_files() and time.monotonic() < deadline:
            time.sleep(0.01)
        assert proc.poll() is None, proc.communicate()[1]
        os.kill(proc.pid, signal.SIGKILL)  # the runner only: its pool workers are orphaned
        proc.wait()
        # nothing holds the lock now: the re-run resumes at once
        resumed = run_sweep(real_spec_path, out, executor="serial")
        assert resumed.skipped + resumed.computed == 36
        assert resumed.skipped >= 1
        # ...and the orphans notice their parent is gone and exit by themselves
        while _group_alive(proc.pid) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not _group_alive(proc.pid)
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
    assert len(_raw_rows(out)) == len(set(_raw_rows(out))) == 36


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    return True


def test_a_second_lock_in_the_same_process_is_refused_and_keeps_the_first(tmp_path):
    store = ResultStore(tmp_path)
    with store.lock():
        with pytest.raises(SweepError, match=f"locked by pid {os.getpid()}"):
            with ResultStore(tmp_path / "." / "").lock():
                pass
        holder = _python(
            f"""
            from dse import ResultStore
            try:
                with ResultStore({str(tmp_path)!r}).lock():
                    print("got it")
            except Exception as exc:
                print(exc)
            """
        )
        assert "another sweep is writing" in holder.communicate()[0]  # still held


def test_the_lock_records_the_pid_and_is_released_after_a_crash(store):
    def crashing(point):
        raise KeyboardInterrupt  # not an Exception: the runner does not record it, it unwinds

    with pytest.raises(KeyboardInterrupt):
        run_sweep(SPEC, store, executor="serial", evaluator=crashing, retry_errors=True)
    with ResultStore(store).lock():  # free again, and says who holds it
        assert (store / ".lock").read_text().strip() == str(os.getpid())
    assert (store / ".lock").read_text() == ""


_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3)
    ),
    max_leaves=8,
)
_manifests = st.one_of(
    _json,
    st.fixed_dictionaries(
        {},
        optional={
            "objectives": _json | st.lists(st.sampled_from(["latency", "nope", "energy_j"])),
            "constraints": _json | st.lists(st.sampled_from(["area <= 5", "bogus", "x < 1"])),
        },
    ),
)


@given(manifest=_manifests, part=st.binary(max_size=64))
@settings(max_examples=60, deadline=None)
def test_any_manifest_or_part_bytes_give_a_front_or_an_error_naming_the_file(manifest, part):
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "store"
        run_sweep(SPEC, out, executor="serial", evaluator=toy_evaluator, batch_size=6)
        (out / "manifest.json").write_text(json.dumps(manifest))
        code, err = _pareto(out)
        assert code in (0, 2), err
        if code == 2:
            assert err.startswith(f"error: {out / 'manifest.json'}: "), err
        (out / "manifest.json").write_text("{}")
        first = ResultStore(out).part_files()[0]
        first.write_bytes(part)
        code, err = _pareto(out)
        assert code == 2
        assert err.startswith(f"error: {first}: corrupt result part"), err


def _pareto(store: Path) -> tuple[int, str]:
    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        code = main(["pareto", str(store)])
    return code, err.getvalue()
