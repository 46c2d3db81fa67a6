"""DRAM bytes per call under Nsight Compute (``ncu``).

Parent side (:func:`run_ncu_suite`): for each case, run one child process under::

    ncu --metrics dram__bytes_read.sum,dram__bytes_write.sum,gpu__time_duration.sum
        --csv --print-units base --clock-control none --profile-from-start off
        --target-processes all --log-file TMP python3 -m validation.harness.ncu_run --case JSON

Child side (``python3 -m validation.harness.ncu_run --case JSON``): builds the case, warms
it up (3 calls, not profiled), then wraps exactly one call in ``cudaProfilerStart/Stop``.
So ncu profiles every kernel of one call and nothing else (this plays the role of a
kernel-name filter with ``--launch-skip/--launch-count``, without having to know kernel
names). ncu's default ``--cache-control all`` flushes caches before each kernel, matching
the cold-L2 timing; ``--clock-control none`` leaves the clocks as in the timed runs.

The record gets ``dram_bytes_read`` / ``dram_bytes_write`` (sums over the call's kernels),
``ncu_ms`` (sum of ``gpu__time_duration``) and ``ncu_kernels`` (per kernel). The raw CSV
rows of all cases go to one file, in ncu's own format, with IDs renumbered and a last
column ``Case`` holding the case key.
"""

from __future__ import annotations

import argparse
import csv
import glob
import io
import json
import logging
import os
import shutil
import subprocess
import sys
import tempfile
import time

__all__ = ["METRICS", "kernels_from_ncu_csv", "ncu_path", "ncu_version", "run_ncu_suite"]

log = logging.getLogger("validation.harness")

METRICS = ("dram__bytes_read.sum", "dram__bytes_write.sum", "gpu__time_duration.sum")


def ncu_path() -> str | None:
    """Path of the ``ncu`` executable, or None."""
    found = shutil.which("ncu")
    if found:
        return found
    for pattern in ("/usr/local/cuda*/bin/ncu", "/opt/nvidia/nsight-compute/*/ncu"):
        hits = sorted(glob.glob(pattern))
        if hits:
            return hits[-1]
    return None


def ncu_version() -> str | None:
    """``ncu --version`` last line, or None when ncu is missing."""
    path = ncu_path()
    if path is None:
        return None
    out = subprocess.run([path, "--version"], capture_output=True, text=True, timeout=60)
    lines = [ln for ln in out.stdout.splitlines() if ln.strip()]
    return lines[-1] if lines else None


def _number(text: str) -> float:
    return float(text.replace(",", "")) if text.strip() not in ("", "n/a") else float("nan")


def csv_rows(text: str) -> tuple[list[str], list[list[str]]]:
    """Header and rows of an ncu ``--csv`` output (lines before the header are ignored)."""
    lines = text.splitlines()
    start = next((i for i, ln in enumerate(lines) if ln.startswith('"ID"')), None)
    if start is None:
        return [], []
    reader = csv.reader(io.StringIO("\n".join(lines[start:])))
    header = next(reader)
    rows = [r for r in reader if len(r) == len(header)]
    return header, rows


def kernels_from_ncu_csv(text: str) -> list[dict]:
    """Per-kernel metrics from an ncu ``--csv --print-units base`` output.

    Returns
    -------
    list of dict
        In launch order: ``id``, ``name``, and one entry per metric of :data:`METRICS`
        (bytes and nanoseconds).
    """
    header, rows = csv_rows(text)
    if not header:
        return []
    col = {name: i for i, name in enumerate(header)}
    kernels: dict[str, dict] = {}
    for row in rows:
        kid = row[col["ID"]]
        k = kernels.setdefault(kid, {"id": int(kid), "name": row[col["Kernel Name"]]})
        k[row[col["Metric Name"]]] = _number(row[col["Metric Value"]])
    return sorted(kernels.values(), key=lambda k: k["id"])


def _summary(kernels: list[dict]) -> dict:
    def total(metric: str) -> float:
        return float(sum(k.get(metric, 0.0) for k in kernels))

    return {
        "dram_bytes_read": total("dram__bytes_read.sum"),
        "dram_bytes_write": total("dram__bytes_write.sum"),
        "ncu_ms": total("gpu__time_duration.sum") / 1e6,
        "ncu_kernels": [
            {
                "name": k["name"][:160],
                "dram_bytes_read": k.get("dram__bytes_read.sum"),
                "dram_bytes_write": k.get("dram__bytes_write.sum"),
                "ns": k.get("gpu__time_duration.sum"),
            }
            for k in kernels
        ],
    }


def _profile_one(ncu: str, case: dict, timeout_s: float) -> str:
    with tempfile.TemporaryDirectory() as tmp:
        logf = os.path.join(tmp, "ncu.csv")
        cmd = [
            ncu,
            "--metrics",
            ",".join(METRICS),
            "--csv",
            "--print-units",
            "base",
            "--clock-control",
            "none",
            "--profile-from-start",
            "off",
            "--target-processes",
            "all",
            "--log-file",
            logf,
            sys.executable,
            "-m",
            "validation.harness.ncu_run",
            "--case",
            json.dumps(case),
        ]
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout_s)
        text = open(logf, encoding="utf-8").read() if os.path.exists(logf) else ""
        if proc.returncode != 0:
            raise RuntimeError(f"ncu exit {proc.returncode}: {(proc.stderr or text)[-400:]}")
        return text


def run_ncu_suite(
    cases: list[dict],
    writer,
    csv_out: str,
    *,
    deadline: float,  # noqa: ANN001
    timeout_s: float = 180.0,
) -> None:
    """Profile each case in its own ncu child; write records and the combined raw CSV."""
    from validation.harness.cases import case_key
    from validation.harness.records import derive_fields

    ncu = ncu_path()
    next_id = 0
    with open(csv_out, "w", newline="", encoding="utf-8") as fh:
        out = csv.writer(fh, quoting=csv.QUOTE_ALL)
        wrote_header = False
        for i, case in enumerate(cases):
            if time.perf_counter() > deadline:
                log.warning("time limit: %d ncu cases not run", len(cases) - i)
                break
            rec = {**case, "key": case_key(case)}
            try:
                if ncu is None:
                    raise RuntimeError("ncu not found")
                text = _profile_one(ncu, case, timeout_s)
                kernels = kernels_from_ncu_csv(text)
                if not kernels:
                    raise RuntimeError(f"no kernels profiled; ncu log tail: {text[-300:]}")
                rec.update(_summary(kernels))
                header, rows = csv_rows(text)
                if not wrote_header:
                    out.writerow([*header, "Case"])
                    wrote_header = True
                ids: dict[str, str] = {}  # ncu kernel ID -> ID in the merged file
                for row in rows:
                    ids.setdefault(row[0], str(next_id + len(ids)))
                    out.writerow([ids[row[0]], *row[1:], rec["key"]])
                next_id += len(ids)
                fh.flush()
                rec = derive_fields({**rec, "ms": rec["ncu_ms"]})
                rec["ms_source"] = "ncu gpu__time_duration.sum (clock-control none)"
            except Exception as exc:  # noqa: BLE001 - recorded, the suite goes on
                rec["error"] = f"{type(exc).__name__}: {exc}"[:1000]
            writer.write(rec)
            log.info(
                "[ncu %d/%d] %s -> %s",
                i + 1,
                len(cases),
                rec["key"],
                rec.get("error") or (rec["dram_bytes_read"], rec["dram_bytes_write"]),
            )


def _child(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python3 -m validation.harness.ncu_run")
    p.add_argument("--case", required=True, help="case as JSON")
    args = p.parse_args(argv)
    import torch

    from validation.harness import kernels

    torch.manual_seed(0)
    fn, _ = kernels.build(json.loads(args.case))
    for _ in range(3):
        fn()
    torch.cuda.synchronize()
    torch.cuda.profiler.start()
    fn()
    torch.cuda.synchronize()
    torch.cuda.profiler.stop()
    return 0


if __name__ == "__main__":
    sys.exit(_child())
