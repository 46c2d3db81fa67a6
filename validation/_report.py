"""Measured-vs-predicted comparison of a measurement file: table, metrics, JSON, plot.

Metrics (per kind, per group ``kind/backend/pass`` and overall):

- ``MAPE``: mean of ``|pred - meas| / meas`` in percent;
- ``max_error``: the largest such error in percent;
- ``spearman``: rank correlation of predicted and measured times (scipy.stats.spearmanr),
  which says whether the model orders kernels right even where it is off in scale.

The same errors are computed for DRAM bytes (against ncu's ``dram_bytes_read +
dram_bytes_write``) and energy (against NVML's ``mJ_per_iter``) where measured.
"""

from __future__ import annotations

import json
import math
import multiprocessing as mp
import os
from collections.abc import Iterable, Mapping
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from archsim.errors import ArchsimError, MappingError
from archsim.gpu import GpuModel, gpu_model

from ._predict import (
    ENGINES,
    UnsupportedRecord,
    device_arch,
    device_model,
    predict_record,
    record_label,
)
from ._records import Measurement, MeasurementSet, SkippedRecord, load_measurements

__all__ = [
    "ComparisonReport",
    "compare_records",
    "cost_hint",
    "default_jobs",
    "error_stats",
    "validate_file",
]


def error_stats(meas: Iterable[float], pred: Iterable[float]) -> dict[str, float]:
    """``{"n", "mape", "max_error", "spearman"}`` (percent; spearman NaN for n < 3)."""
    m = np.asarray(list(meas), dtype=float)
    p = np.asarray(list(pred), dtype=float)
    if m.size == 0:
        return {"n": 0, "mape": math.nan, "max_error": math.nan, "spearman": math.nan}
    err = np.abs(p - m) / m * 100.0
    rho = math.nan
    if m.size >= 3 and np.ptp(m) > 0 and np.ptp(p) > 0:
        from scipy.stats import spearmanr

        rho = float(spearmanr(m, p).statistic)
    return {
        "n": int(m.size),
        "mape": float(err.mean()),
        "max_error": float(err.max()),
        "spearman": rho,
    }


@dataclass(frozen=True)
class ComparisonReport:
    """Per-record comparison and its metrics.

    Attributes
    ----------
    source : measurement file. arch : GPU name.
    frame : one row per predicted record; columns ``line, kind, group, dataflow, shape,
        backend, measured_ms, pred_ms, err_pct`` and where measured ``meas_dram_bytes,
        pred_dram_bytes, dram_err_pct, meas_mJ, pred_mJ, energy_err_pct, meas_W, pred_W,
        meas_clock_mhz, pred_clock_mhz``.
    skipped : :class:`SkippedRecord` ``(line, field, reason)`` for every line not predicted
        (unreadable, malformed, unsupported), in line order.
    records : the input records with ``pred_*`` fields added (for ``--json``).
    """

    source: str
    arch: str
    frame: pd.DataFrame
    skipped: tuple[SkippedRecord, ...]
    records: tuple[Mapping[str, object], ...]

    def summary(self, by: str = "kind", metric: str = "time") -> dict[str, dict[str, float]]:
        """Error metrics per ``by`` value (``kind`` or ``group``) plus ``"all"``.

        ``metric``: ``time`` (ms), ``dram`` (bytes) or ``energy`` (mJ).
        """
        cols = {
            "time": ("measured_ms", "pred_ms"),
            "dram": ("meas_dram_bytes", "pred_dram_bytes"),
            "energy": ("meas_mJ", "pred_mJ"),
        }[metric]
        df = self.frame
        if cols[0] not in df or df.empty:
            return {}
        df = df.dropna(subset=list(cols))
        out = {"all": error_stats(df[cols[0]], df[cols[1]])} if len(df) else {}
        for key, sub in df.groupby(by, sort=True):
            out[str(key)] = error_stats(sub[cols[0]], sub[cols[1]])
        return out

    def table(self) -> str:
        """Per-record text table."""
        head = (
            f"{'line':>5} {'kind':<18} {'shape':<34} {'backend':<10} {'dataflow':<14} "
            f"{'meas ms':>10} {'pred ms':>10} {'err %':>7}"
        )
        lines = [head, "-" * len(head)]
        for r in self.frame.itertuples(index=False):
            lines.append(
                f"{r.line:>5} {r.group:<18.18} {r.shape:<34.34} {r.backend:<10.10} "
                f"{r.dataflow:<14} {r.measured_ms:>10.4f} {r.pred_ms:>10.4f} {r.err_pct:>+7.1f}"
            )
        return "\n".join(lines)

    def skipped_text(self, limit: int = 20) -> str:
        """The skipped-records section: one line per record (line, field, reason), at most
        ``limit`` of them (all are in ``--json``); empty when none was skipped."""
        if not self.skipped:
            return ""
        out = [f"skipped records ({len(self.skipped)}, not validated):"]
        out += [f"  {s.text()}" for s in self.skipped[:limit]]
        if len(self.skipped) > limit:
            out.append(f"  ... and {len(self.skipped) - limit} more (all in --json)")
        return "\n".join(out)

    def summary_text(self) -> str:
        """Summary lines: overall and per kind/group for time, then DRAM and energy."""
        out = []
        for metric, label in (("time", "time"), ("dram", "DRAM bytes"), ("energy", "energy")):
            by_kind = self.summary("kind", metric)
            if not by_kind:
                continue
            groups = self.summary("group", metric) if metric == "time" else {}
            extra = [(k, v) for k, v in groups.items() if k != "all" and k not in by_kind]
            for key, st in list(by_kind.items()) + extra:
                name = "ALL" if key == "all" else key
                out.append(
                    f"{label:<10} {name:<24} n={st['n']:<4} MAPE={st['mape']:6.2f}% "
                    f"max_error={st['max_error']:6.2f}% spearman={st['spearman']:.3f}"
                )
        out.append(f"validated: {len(self.frame)} records; skipped: {len(self.skipped)} records")
        return "\n".join(out)

    def write_json(self, path: str | Path) -> None:
        """Write ``{"source", "arch", "summary", "records"}`` (records carry ``pred_*``)."""
        doc = {
            "source": self.source,
            "arch": self.arch,
            "summary": {m: self.summary("kind", m) for m in ("time", "dram", "energy")},
            "summary_by_group": self.summary("group", "time"),
            "skipped": [s._asdict() for s in self.skipped],
            "records": list(self.records),
        }
        Path(path).write_text(json.dumps(doc, indent=1, default=_json_default, allow_nan=True))

    def plot(self, path: str | Path) -> None:
        """Predicted vs measured time, log-log, one colour per group, with a +-10% band.

        Draws on a bare :class:`matplotlib.figure.Figure` (no pyplot), so it works headless
        and never touches the caller's backend (a Jupyter session keeps its inline one)."""
        from matplotlib import colormaps
        from matplotlib.figure import Figure

        fig = Figure(figsize=(6.5, 6))
        ax = fig.subplots()
        df = self.frame
        cmap = colormaps["tab20"]
        for i, (key, sub) in enumerate(df.groupby("group", sort=True)):
            ax.scatter(
                sub["measured_ms"],
                sub["pred_ms"],
                s=14,
                label=str(key),
                alpha=0.85,
                color=cmap(i % 20),
                marker="osD^v"[i % 5],
            )
        if len(df):
            lo = float(min(df["measured_ms"].min(), df["pred_ms"].min())) * 0.7
            hi = float(max(df["measured_ms"].max(), df["pred_ms"].max())) * 1.4
            xs = np.array([lo, hi])
            ax.plot(xs, xs, "k-", lw=0.8)
            ax.fill_between(xs, xs * 0.9, xs * 1.1, color="grey", alpha=0.2, label="±10%")
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("measured (ms)")
        ax.set_ylabel(f"predicted by archsim ({self.arch}) (ms)")
        st = self.summary("kind").get("all", {})
        ax.set_title(
            f"{Path(self.source).name}: MAPE {st.get('mape', math.nan):.1f}%, "
            f"spearman {st.get('spearman', math.nan):.3f}"
        )
        if len(df):
            ax.legend(fontsize=7, loc="upper left")
        fig.tight_layout()
        fig.savefig(path, dpi=120)


def _json_default(obj: object) -> object:
    if isinstance(obj, (np.integer,)):
        return int(obj)
    if isinstance(obj, (np.floating,)):
        return float(obj)
    return str(obj)


def _num(rec: Mapping[str, object], key: str) -> float | None:
    v = rec.get(key)
    return float(v) if isinstance(v, (int, float)) and not isinstance(v, bool) else None


#: what one record gives: ``("row", table row, record with pred_* fields)`` or
#: ``("skip", SkippedRecord)``
_Outcome = tuple[str, object, object]


def _outcome(m: Measurement, model: GpuModel, engine: str, eng_arch: object | None) -> _Outcome:
    """Predict one record: its table row and output record, or why it was skipped."""
    rec = m.fields
    try:
        p = predict_record(m, model, engine=engine, arch=eng_arch)
    except UnsupportedRecord as exc:
        return ("skip", SkippedRecord(m.line, exc.field, str(exc)), None)
    except ArchsimError as exc:
        path = getattr(exc, "path", None)
        if path in rec:  # a field of the record the model refused
            return ("skip", SkippedRecord(m.line, path, str(exc)), None)
        # the model has no kernel configuration for this shape (e.g. shared memory)
        why = f"the model has no kernel for {m.kind} {record_label(rec)}: {exc}"
        return ("skip", SkippedRecord(m.line, None, why), None)
    except (ValueError, OverflowError, ZeroDivisionError, MemoryError) as exc:
        # fields are checked on reading (``_records``); this keeps one record the model
        # cannot evaluate from stopping the file, and says which exception it was
        why = f"model failed: {type(exc).__name__}: {exc}"
        return ("skip", SkippedRecord(m.line, None, why), None)
    row: dict[str, object] = {
        "line": m.line,
        "kind": m.kind,
        "group": p.group,
        "dataflow": p.dataflow,
        "shape": record_label(rec),
        "backend": str(rec.get("backend", "")),
        "measured_ms": m.ms,
        "pred_ms": p.pred_ms,
        "err_pct": (p.pred_ms - m.ms) / m.ms * 100,
        "pred_clock_mhz": p.pred_clock_mhz,
        "pred_W": p.pred_W,
    }
    extra: dict[str, object] = {
        "pred_ms": p.pred_ms,
        "pred_dataflow": p.dataflow,
        "pred_kernels": list(p.kernels),
    }
    rd, wr = _num(rec, "dram_bytes_read"), _num(rec, "dram_bytes_write")
    if rd is not None or wr is not None:
        meas = (rd or 0.0) + (wr or 0.0)
        row.update(
            meas_dram_bytes=meas,
            pred_dram_bytes=p.pred_dram_bytes,
            dram_err_pct=(p.pred_dram_bytes - meas) / meas * 100 if meas else math.nan,
        )
        extra.update(
            pred_dram_bytes=p.pred_dram_bytes,
            pred_dram_bytes_read=p.pred_dram_read_bytes,
            pred_dram_bytes_write=p.pred_dram_write_bytes,
        )
    mj = _num(rec, "mJ_per_iter")
    if mj is not None:
        row.update(meas_mJ=mj, pred_mJ=p.pred_mJ, energy_err_pct=(p.pred_mJ - mj) / mj * 100)
        extra.update(pred_mJ=p.pred_mJ)
    for src, dst, val in (
        ("avg_W", "meas_W", p.pred_W),
        ("sm_clock", "meas_clock_mhz", p.pred_clock_mhz),
    ):
        v = _num(rec, src)
        if v is not None:
            row[dst] = v
            extra[f"pred_{src}"] = val
    return ("row", row, {**rec, **extra})


def cost_hint(rec: Mapping[str, object]) -> float:
    """A cheap guess of how long the event engine takes on a record (arbitrary units), to
    hand the slowest out first on a pool; only the order of the guesses matters.

    Attention prefill (forward or backward) is the slow kind, ~``B*Hq*Sq*Skv`` tile steps;
    causal attention most of all: its ragged phases have no exact shortcut and run slot by
    slot (``bench/bench_validate.py``). Every other record takes shortcuts (milliseconds)
    and weighs 0, as does one whose fields do not parse (it is skipped at once).
    """
    if rec.get("kind") != "attn":
        return 0.0
    try:
        size = float(rec["B"]) * float(rec["Hq"]) * float(rec["Sq"]) * float(rec["Skv"])  # type: ignore[arg-type]
    except (KeyError, TypeError, ValueError):
        return 0.0
    return size if rec.get("causal") else 0.1 * size


def default_jobs() -> int:
    """Processes ``archsim validate`` uses by default: the CPUs this process may run on."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return max(1, os.cpu_count() or 1)


#: (model, engine, arch) of the pool's records: set before the workers fork, read by them
_WORKER: tuple[GpuModel, str, object | None] | None = None


def _worker_outcome(i: int, m: Measurement) -> tuple[int, _Outcome]:
    assert _WORKER is not None  # set by _outcomes before the pool forks
    return i, _outcome(m, *_WORKER)


def _outcomes(
    records: tuple[Measurement, ...],
    model: GpuModel,
    engine: str,
    eng_arch: object | None,
    jobs: int,
) -> list[_Outcome]:
    """Every record's outcome, in file order, on ``jobs`` processes (1: this one).

    NOTE: the same result as in-process. Records are predicted independently (each builds
    its own program and engine state from the shared, read-only model and architecture),
    and the engine is deterministic, so a worker gives bit for bit the outcome this process
    would; outcomes are put back in record order. Workers are forked (they inherit the
    imported modules, the model and the architecture: no start-up import, nothing pickled
    but the records and outcomes) and take records longest-first by :func:`cost_hint`, so
    that the slowest do not form the tail.
    """
    global _WORKER
    jobs = min(jobs, len(records))
    if jobs <= 1 or "fork" not in mp.get_all_start_methods():
        return [_outcome(m, model, engine, eng_arch) for m in records]
    order = sorted(range(len(records)), key=lambda i: -cost_hint(records[i].fields))
    out: list[_Outcome | None] = [None] * len(records)
    _WORKER = (model, engine, eng_arch)
    try:
        with ProcessPoolExecutor(jobs, mp_context=mp.get_context("fork")) as pool:
            futures = [pool.submit(_worker_outcome, i, records[i]) for i in order]
            try:
                for fut in as_completed(futures):
                    i, got = fut.result()
                    out[i] = got
            except BaseException:
                pool.shutdown(wait=False, cancel_futures=True)
                raise
    finally:
        _WORKER = None
    return [o for o in out if o is not None]


def compare_records(
    mset: MeasurementSet,
    model: GpuModel,
    *,
    engine: str = "event",
    arch: object | None = None,
    jobs: int = 1,
) -> ComparisonReport:
    """Predict every record of ``mset``; unknown kinds/backends go to ``skipped``.

    The device record's power limit, max SM clock and idle power replace the preset's
    (:func:`device_model`). ``engine``: ``event`` or ``analytic`` (each record's kernels
    lowered to a tile program and run by the event engine / bounded by ``archsim.estimate``
    on ``arch``, default the preset named like the model; see :func:`predict_record`). ``jobs``:
    processes predicting records at once (1: in this process; the report is the same,
    see :func:`_outcomes`).
    """
    if engine not in ENGINES:  # an argument error, not one record's: stop here
        raise MappingError("unknown engine", path="engine", expected=ENGINES, got=engine)
    if isinstance(jobs, bool) or not isinstance(jobs, int) or jobs < 1:
        raise MappingError(
            "jobs must be a positive integer", path="jobs", expected=">= 1", got=jobs
        )
    model = device_model(model, mset.device)
    eng_arch = device_arch(arch if arch is not None else model.hw.name, mset.device)
    rows: list[dict[str, object]] = []
    skipped = list(mset.skipped)
    out_records: list[Mapping[str, object]] = []
    for kind, a, b in _outcomes(mset.records, model, engine, eng_arch, jobs):
        if kind == "skip":
            skipped.append(a)  # type: ignore[arg-type]  # a SkippedRecord
        else:
            rows.append(a)  # type: ignore[arg-type]  # a row
            out_records.append(b)  # type: ignore[arg-type]  # the record with pred_*
    frame = pd.DataFrame(rows)
    if frame.empty:
        frame = pd.DataFrame(
            columns=[
                "line",
                "kind",
                "group",
                "dataflow",
                "shape",
                "backend",
                "measured_ms",
                "pred_ms",
                "err_pct",
            ]
        )
    return ComparisonReport(
        mset.path,
        model.hw.name,
        frame,
        tuple(sorted(skipped, key=lambda s: s.line)),
        tuple(out_records),
    )


def validate_file(
    path: str | Path,
    arch: object = "h100",
    *,
    model: GpuModel | None = None,
    engine: str = "event",
    jobs: int = 1,
) -> ComparisonReport:
    """Load a measurement file and compare it with the model of ``arch``.

    Parameters
    ----------
    path
        JSON Lines measurement file.
    arch
        Preset name or :class:`archsim.Architecture` (ignored when ``model`` is given).
    model
        A ready GPU model (e.g. with a candidate calibration).
    engine
        ``event`` (default) or ``analytic`` (see :func:`compare_records`).
    jobs
        Processes predicting records at once (1, the default: in this process; the report
        is the same either way).

    Raises
    ------
    ValidationDataError
        Unreadable file (malformed lines and records are reported in ``skipped``).
    """
    mset = load_measurements(path)
    return compare_records(mset, model or gpu_model(arch), engine=engine, arch=arch, jobs=jobs)
