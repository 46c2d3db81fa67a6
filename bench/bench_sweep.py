"""Sweep throughput benchmark (issue 6 target: 1,000 analytic points on 2 cores in <= 60 s).

    python bench/bench_sweep.py                 # 1,000-point analytic + 50-point event sweep
    python bench/bench_sweep.py --workers 4 --executor dask

The 1,000 points: the ``fusemax`` preset, 5 PE-array sizes × 10 global-buffer sizes
(1–64 MB, log-spaced) × 20 sequence lengths (512–64K, log-spaced), FuseMax dataflow,
analytical engine. The 50 event-driven points: 5 PE-array sizes × 5 sequence lengths ×
2 dataflows at small shapes. Prints points/s for each; a fresh store each run.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from anywhere in the repo

from dse import SweepSpec, load, run_sweep  # noqa: E402

ANALYTIC = {
    "name": "bench-1000",
    "arch": {
        "preset": "fusemax",
        "space": {
            "compute.pe2d.mesh": [[32, 32], [64, 64], [128, 128], [192, 192], [256, 256]],
            "levels.GLB.capacity_bytes": {"log_range": [1e6, 64e6], "n": 10},
        },
    },
    "workload": {
        "name": "mha",
        "params": {"B": 1, "H": 16, "D": 64, "S": {"log_range": [512, 65536], "n": 20}},
    },
    "dataflow": "fusemax",
    "engine": "analytic",
}

EVENT = {
    "name": "bench-event-50",
    "arch": {
        "preset": "fusemax",
        "space": {
            "compute.pe2d.mesh": [[32, 32], [64, 64], [128, 128], [192, 192], [256, 256]],
        },
    },
    "workload": {
        "name": "mha",
        "params": {"B": 1, "H": 2, "D": 64, "S": [256, 512, 1024, 2048, 4096]},
    },
    "dataflow": ["fusemax", "unfused"],
    "engine": "event",
}


def _run(spec_dict: dict, workers: int, executor: str) -> int:
    spec = SweepSpec.from_dict(spec_dict)
    with tempfile.TemporaryDirectory(prefix="bench-sweep-") as out:
        t0 = time.perf_counter()
        summary = run_sweep(spec, out, workers=workers, executor=executor)  # type: ignore[arg-type]
        wall = time.perf_counter() - t0
        df = load(out)
    ok = int((df["status"] == "ok").sum())
    print(  # noqa: T201
        f"{spec.name}: {summary.computed} points ({ok} ok, {summary.errors} errors) on {workers} "
        f"{executor} workers in {wall:.1f} s = {summary.computed / wall:.1f} points/s; "
        f"mean eval {df['eval_s'].mean() * 1e3:.1f} ms/point"
    )
    if summary.errors:
        print("  first error:", df.loc[df["status"] != "ok", "error"].iloc[0])  # noqa: T201
    return 0 if ok == summary.computed else 1


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--executor", choices=["process", "dask", "serial"], default="process")
    parser.add_argument(
        "--skip-event", action="store_true", help="only the 1,000-point analytic sweep"
    )
    args = parser.parse_args(argv)
    rc = _run(ANALYTIC, args.workers, args.executor)
    if not args.skip_event:
        rc |= _run(EVENT, args.workers, args.executor)
    return rc


if __name__ == "__main__":
    sys.exit(main())
