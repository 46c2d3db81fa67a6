"""The result store: one row per design point, append-safe, resumable.

Layout of a store folder::

    DIR/manifest.json          the sweep's name, spec, objectives, constraints, point count
    DIR/parts/part-*.parquet   one Parquet file per finished batch of points

A batch is written to ``parts/.tmp-*`` first, flushed with ``fsync``, then atomically
renamed (``os.replace``) and the folder entry flushed too. A process killed at any moment
therefore leaves either a whole part or a stray temp file (removed on the next open) —
never a half-written part — and every point in a part is finished. Re-running a sweep
skips the ids already in ``parts/``. :meth:`ResultStore.compact` merges the parts into one
(crash-safe for the same reason).

One writer at a time: a sweep holds an exclusive lock on ``DIR/.lock`` (which records its
pid) while it writes, and a second sweep into the same folder is refused with an error
naming that pid. The OS drops the lock when the process dies, so a killed sweep never
leaves the store locked. :meth:`ResultStore.load` still drops duplicate ids (first part
wins) should a store be written without the lock. A part or manifest that cannot be read
(truncated, not Parquet/JSON) is a :class:`SweepError` naming the file.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import os
import uuid
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping, Sequence
from pathlib import Path

import pandas as pd
import pyarrow.parquet as pq

from archsim.errors import SweepError
from dse._spec import OBJECTIVE_COLUMNS, Constraint

__all__ = ["ResultStore", "load", "RESULT_COLUMNS"]

log = logging.getLogger(__name__)

#: the result columns every ``ok`` row has (units in the names); see docs of ``dse.load``
RESULT_COLUMNS: tuple[str, ...] = (
    "status",
    "error",
    "cycles",
    "seconds",
    "energy_j",
    "edp_js",
    "area_mm2",
    "dram_bytes",
    "flops",
    "passes",
    "dataflow_used",
    "mapping",
)


#: stores whose writer lock this process holds (POSIX locks do not conflict within a process)
_HELD: set[str] = set()


def _busy(root: Path, holder: object) -> SweepError:
    return SweepError(
        "another sweep is writing this result store",
        path=str(root),
        expected="one writer at a time: wait for it to finish, or use another --out",
        got=f"locked by pid {holder}",
    )


def _fsync_dir(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:  # pragma: no cover - platforms without directory fds
        return
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class ResultStore:
    """A sweep's result folder (created on first write).

    Parameters
    ----------
    root
        The store folder (``archsim sweep --out DIR``).
    """

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)
        self.parts = self.root / "parts"

    # -- writing ---------------------------------------------------------------------
    @contextlib.contextmanager
    def lock(self) -> Iterator[None]:
        """Hold the store's writer lock (``DIR/.lock``) for the block.

        A POSIX record lock (``fcntl.lockf``): the OS releases it when the process dies,
        and a forked pool worker does not inherit it, so orphaned workers of a killed sweep
        never keep the store locked. Within one process a second ``lock()`` of the same
        store is refused too (and nothing else may open ``DIR/.lock``: closing any
        descriptor of the file drops the process's POSIX lock on it).

        Raises
        ------
        SweepError
            Another process (or this one) holds it (the message names the pid), or the
            folder cannot be created.
        """
        if str(self.root.resolve()) in _HELD:  # checked before opening: closing a second fd
            raise _busy(self.root, os.getpid())  # of the file would drop this process's lock
        try:
            self.root.mkdir(parents=True, exist_ok=True)
            key = str(self.root.resolve())
            fd = os.open(self.root / ".lock", os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as exc:
            raise SweepError(
                f"cannot create the result store ({exc.strerror})",
                path=str(self.root),
                expected="a writable folder",
                got=str(self.root),
            ) from None
        try:
            fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            holder = os.pread(fd, 64, 0).decode(errors="replace").strip() or "?"
            os.close(fd)
            raise _busy(self.root, holder) from None
        _HELD.add(key)
        try:
            os.ftruncate(fd, 0)
            os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
            yield
        finally:
            _HELD.discard(key)
            os.ftruncate(fd, 0)
            fcntl.lockf(fd, fcntl.LOCK_UN)
            os.close(fd)

    def open(self, manifest: Mapping[str, object]) -> None:
        """Create the folders, remove stray temp files, write ``manifest.json`` atomically."""
        self.parts.mkdir(parents=True, exist_ok=True)
        for stray in self.parts.glob(".tmp-*"):
            stray.unlink(missing_ok=True)
        self._atomic_write(
            self.root / "manifest.json", json.dumps(manifest, indent=2, default=str).encode()
        )

    def write_batch(self, rows: Sequence[Mapping[str, object]]) -> Path | None:
        """Append finished rows as one new part file (atomic); returns its path."""
        if not rows:
            return None
        first = min(int(r.get("point_index", 0)) for r in rows)  # type: ignore[call-overload]
        final = self.parts / f"part-{first:07d}-{uuid.uuid4().hex[:8]}.parquet"
        tmp = self.parts / f".tmp-{uuid.uuid4().hex}.parquet"
        frame = _arrow_safe(pd.DataFrame(list(rows)))
        frame.to_parquet(tmp, index=False)
        with open(tmp, "rb+") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp, final)
        _fsync_dir(self.parts)
        return final

    def _atomic_write(self, path: Path, data: bytes) -> None:
        tmp = path.with_name(f".tmp-{uuid.uuid4().hex}-{path.name}")
        with open(tmp, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
        _fsync_dir(path.parent)

    # -- reading ---------------------------------------------------------------------
    def part_files(self) -> list[Path]:
        """Finished part files, in name order."""
        if not self.parts.is_dir():
            return []
        return sorted(p for p in self.parts.glob("*.parquet") if not p.name.startswith("."))

    def _read(self, part: Path, columns: Sequence[str] | None = None) -> pd.DataFrame:
        """One part as a DataFrame; an unreadable part is a :class:`SweepError` naming it."""
        try:
            return pq.read_table(part, columns=columns).to_pandas()
        except Exception as exc:  # noqa: BLE001 - ArrowInvalid, OSError, KeyError...
            raise SweepError(
                f"corrupt result part ({type(exc).__name__}: {str(exc)[:200]}); delete it and "
                "re-run the sweep to recompute its points",
                path=str(part),
            ) from None

    def done_ids(self, *, include_errors: bool = True) -> set[str]:
        """Ids of the points already stored (optionally leaving out failed ones)."""
        done: set[str] = set()
        for part in self.part_files():
            table = self._read(part, ["point_id", "status"])
            keep = table if include_errors else table[table["status"] == "ok"]
            done.update(keep["point_id"].tolist())
        return done

    def error_counts(self, ids: Iterable[str] | None = None) -> Counter[str]:
        """Error message -> number of stored points that failed with it (among ``ids``)."""
        wanted = None if ids is None else set(ids)
        counts: Counter[str] = Counter()
        seen: set[str] = set()
        for part in self.part_files():
            table = self._read(part, ["point_id", "status", "error"])
            for pid, status, error in table.itertuples(index=False, name=None):
                if pid in seen or (wanted is not None and pid not in wanted):
                    continue
                seen.add(pid)
                if status != "ok":
                    counts[str(error)] += 1
        return counts

    def manifest(self) -> dict[str, object]:
        """The manifest of the last run (``{}`` if none).

        Raises
        ------
        SweepError
            ``manifest.json`` is not a JSON object (the message names the file).
        """
        path = self.root / "manifest.json"
        if not path.is_file():
            return {}
        try:
            data = json.loads(path.read_bytes())
        except (ValueError, OSError) as exc:
            raise SweepError(
                f"corrupt manifest ({type(exc).__name__}: {exc}); re-run the sweep to rewrite it",
                path=str(path),
            ) from None
        if not isinstance(data, dict):
            what = type(data).__name__
            raise SweepError("corrupt manifest", path=str(path), expected="a JSON object", got=what)
        return data

    def load(self) -> pd.DataFrame:
        """All stored rows as a DataFrame, one row per point id, ordered by ``point_index``.

        Adds ``feasible`` (the manifest's constraints hold and the point ran ``ok``).

        Raises
        ------
        SweepError
            A part or the manifest cannot be read (the message names the file).
        """
        frames = [self._read(p) for p in self.part_files()]
        frames = [f for f in frames if len(f)]
        if not frames:
            return pd.DataFrame(columns=["point_id", "point_index", *RESULT_COLUMNS, "feasible"])
        df = pd.concat(frames, ignore_index=True, sort=False)
        df = df.drop_duplicates(subset="point_id", keep="first")
        df = df.sort_values("point_index", kind="stable").reset_index(drop=True)
        if "cycles" in df:  # integer cycles even where error rows leave gaps
            df["cycles"] = df["cycles"].astype("Int64")
        listed = self.manifest().get("constraints", [])
        constraints = [
            Constraint.parse(str(c), f"{self.root / 'manifest.json'}: constraints[{i}]")
            for i, c in enumerate(listed if isinstance(listed, list) else [])
        ]
        df["feasible"] = feasible(df, constraints)
        return df

    def compact(self) -> Path | None:
        """Merge all parts into one part file (crash-safe: the merged part is renamed into
        place before the old ones are removed, and duplicates are dropped on load), holding
        the writer lock (:meth:`lock`)."""
        with self.lock():  # no sweep may write while the parts are merged
            parts = self.part_files()
            if len(parts) <= 1:
                return parts[0] if parts else None
            df = self.load().drop(columns=["feasible"])
            merged = self.write_batch(df.to_dict("records"))
            for part in parts:
                part.unlink(missing_ok=True)
            _fsync_dir(self.parts)
            return merged


def _arrow_safe(frame: pd.DataFrame) -> pd.DataFrame:
    """Object columns mixing value types (a knob axis ``[64, auto]``) become text, which
    Parquet can store; single-type columns keep their type."""
    for column in frame.columns:
        if frame[column].dtype != object:
            continue
        kinds = {type(v) for v in frame[column] if v is not None and v == v}
        if len(kinds) > 1 and not kinds <= {int, float}:
            frame[column] = [None if v is None else str(v) for v in frame[column]]
    return frame


def feasible(df: pd.DataFrame, constraints: Iterable[Constraint]) -> pd.Series:
    """Boolean Series: row ran ``ok`` and meets every constraint (a missing column fails)."""
    ok = df["status"] == "ok" if "status" in df else pd.Series(False, index=df.index)
    for c in constraints:
        column = OBJECTIVE_COLUMNS.get(c.column, c.column)
        if column not in df:
            return pd.Series(False, index=df.index)
        values = pd.to_numeric(df[column], errors="coerce")
        ok &= values.map(lambda v, c=c: c.holds(float(v)))
    return ok.astype(bool)


def load(path: str | Path) -> pd.DataFrame:
    """Load a sweep's results (``archsim sweep --out DIR``) as a DataFrame.

    Columns: ``point_id`` (stable hash of the inputs), ``point_index``; the inputs
    (``arch``, ``arch.<dotted path>``, ``workload``, ``param.<name>``, ``dataflow``,
    ``knob.<name>``, ``engine``; list values as JSON text); the results ``status``
    (``ok``/``error``), ``error`` (message), ``cycles``, ``seconds``, ``energy_j``,
    ``edp_js`` (J·s), ``area_mm2`` (NaN where the spec models no area), ``dram_bytes``,
    ``flops``, ``passes``, ``dataflow_used``, ``mapping`` (summary), ``bytes.<level>``
    (bytes read+written), ``util.<unit>`` (busy fraction), ``energy.<component.action>``
    (J), ``eval_s`` (wall time of the evaluation); and ``feasible`` (``ok`` and the
    sweep's constraints hold).

    Rows are keyed by their inputs, not by the spec: after re-running a *changed* spec into
    the same folder, rows of points the new spec no longer has are still returned (filter
    on the input columns, or use a fresh folder per spec).

    Raises
    ------
    SweepError
        ``path`` is not a sweep store.
    """
    store = ResultStore(path)
    if not store.root.is_dir() or not (
        store.parts.is_dir() or (store.root / "manifest.json").is_file()
    ):
        raise SweepError(
            "not a sweep store",
            path=str(path),
            expected="a folder written by 'archsim sweep --out'",
            got=str(path),
        )
    return store.load()
