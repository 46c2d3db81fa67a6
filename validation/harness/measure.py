"""Entry point: ``python3 -m validation.harness.measure --out FILE.jsonl [--suite ...]``.

Writes a ``device`` record, then one record per case of the suite (flushed as it goes);
a failing case writes a record with ``"error"`` and the run goes on. Suites: ``smoke``,
``full`` (timing), ``energy`` (timing + NVML energy loop), ``ncu`` (DRAM bytes per call
under Nsight Compute; see :mod:`validation.harness.ncu_run`). ``--trace-out`` also saves a
PyTorch profiler Chrome trace of a small attention step (see :mod:`.trace`).
"""

from __future__ import annotations

import argparse
import datetime as dt
import gc
import logging
import platform
import re
import socket
import sys
import time

from validation.harness.cases import SUITES, case_key, suite_cases
from validation.harness.records import JsonlWriter, derive_fields

__all__ = ["device_record", "main", "run_case"]

log = logging.getLogger("validation.harness")


def device_record(nvml, command: list[str]) -> dict:  # noqa: ANN001 - Nvml | None
    """The ``device`` record: GPU properties, software versions, clocks, power limit."""
    import torch

    props = torch.cuda.get_device_properties(0)
    try:
        import triton

        triton_version = triton.__version__
    except ImportError:
        triton_version = None
    rec: dict = {
        "kind": "device",
        "name": props.name,
        "sms": props.multi_processor_count,
        "l2_bytes": int(getattr(props, "L2_cache_size", 0)),
        "smem_per_sm": int(getattr(props, "shared_memory_per_multiprocessor", 0)),
        "smem_per_block_optin": int(getattr(props, "shared_memory_per_block_optin", 0)),
        "regs_per_sm": int(getattr(props, "regs_per_multiprocessor", 0)),
        "total_memory_bytes": int(props.total_memory),
        "cc": f"{props.major}.{props.minor}",
        "torch": torch.__version__,
        "cuda": torch.version.cuda,
        "cudnn": torch.backends.cudnn.version(),
        "triton": triton_version,
        "python": platform.python_version(),
        "date": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "hostname": socket.gethostname(),
        "command": " ".join(command),
    }
    if nvml is not None:
        rec.update(
            {
                "driver": nvml.driver(),
                "sm_clock_max_mhz": nvml.max_clock_mhz("sm"),
                "mem_clock_mhz": nvml.max_clock_mhz("mem"),
                "power_limit_w": nvml.power_limit_w(),
                "sm_clock_idle_mhz": nvml.sm_clock_mhz(),
                "nvml_backend": nvml.backend,
            }
        )
    else:
        rec.update(
            {"driver": None, "sm_clock_max_mhz": None, "mem_clock_mhz": None, "power_limit_w": None}
        )
    return rec


def run_case(case: dict, *, sampler=None, nvml=None, energy: bool = False) -> dict:  # noqa: ANN001
    """Time one case (and optionally its energy); return its record (never raises)."""
    import torch

    from validation.harness import kernels
    from validation.harness.timing import bench

    rec = dict(case)
    rec["key"] = case_key(case)
    try:
        fn, info = kernels.build(case)
        rec.update(info)
        t0 = time.perf_counter()
        rec.update(bench(fn))
        t1 = time.perf_counter()
        if sampler is not None:
            rec["sm_clock"] = sampler.median_between(t0, t1)
        if case["kind"] == "attn_unfused":
            parts = kernels.unfused_parts(case)[1]
            for name, part in parts.items():
                rec[f"ms_{name}"] = bench(part)["ms"]
        if energy and nvml is not None:
            from validation.harness.energy import measure_energy

            rec.update(measure_energy(fn, rec["ms"], nvml, sampler))
        rec["timer"] = "cuda_events_l2flush_spin_median"
        rec = derive_fields(rec)
    except Exception as exc:  # noqa: BLE001 - any failure becomes an error record
        msg = f"{type(exc).__name__}: {exc}".replace("\n", " ")
        rec["error"] = msg[:1000]
        for k in ("ms", "ms_p20", "ms_p80", "ms_min", "reps"):
            rec.pop(k, None)
    finally:
        gc.collect()
        torch.cuda.empty_cache()
    return rec


def _parse(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="python3 -m validation.harness.measure",
        description="Time GPU kernels and write JSON Lines.",
    )
    p.add_argument("--out", required=True, help="output JSONL file")
    p.add_argument("--suite", choices=SUITES, default="smoke")
    p.add_argument(
        "--max-seconds",
        type=float,
        default=540.0,
        help="stop starting new cases after this many seconds (default 540)",
    )
    p.add_argument("--only", default=None, help="regex over case keys to keep")
    p.add_argument("--limit", type=int, default=None, help="at most this many cases")
    p.add_argument("--trace-out", default=None, help="also save a profiler trace here")
    p.add_argument("--ncu-csv", default=None, help="ncu suite: combined raw CSV path")
    p.add_argument(
        "--idle-seconds",
        type=float,
        default=2.0,
        help="seconds of idle power measurement (0 to skip)",
    )
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    """Run a suite; return the process exit code (0 even when some cases failed)."""
    args = _parse(argv)
    logging.basicConfig(
        level=logging.INFO, stream=sys.stderr, format="%(asctime)s %(message)s", datefmt="%H:%M:%S"
    )
    import torch

    from validation.harness.energy import ClockSampler, Nvml, idle_power_w

    start = time.perf_counter()
    torch.manual_seed(0)
    try:
        nvml = Nvml()
    except (OSError, RuntimeError) as exc:
        log.warning("NVML unavailable: %s", exc)
        nvml = None
    cases = suite_cases(args.suite)
    if args.only:
        cases = [c for c in cases if re.search(args.only, case_key(c))]
    cases = cases[: args.limit] if args.limit else cases
    with JsonlWriter(args.out) as writer:
        dev = device_record(
            nvml,
            [
                sys.executable,
                "-m",
                "validation.harness.measure",
                *(argv if argv is not None else sys.argv[1:]),
            ],
        )
        if nvml is not None and args.idle_seconds > 0:
            dev["idle_power_w"] = round(idle_power_w(nvml, args.idle_seconds), 2)
        if args.suite == "ncu":
            from validation.harness.ncu_run import ncu_version

            dev["ncu"] = ncu_version()
        writer.write(dev)
        log.info("device: %s", dev)
        sampler = ClockSampler(nvml) if nvml is not None else None
        if args.suite == "ncu":
            from validation.harness.ncu_run import run_ncu_suite

            run_ncu_suite(
                cases,
                writer,
                args.ncu_csv or args.out + ".ncu.csv",
                deadline=start + args.max_seconds,
            )
        else:
            _run_cases(
                cases,
                writer,
                start + args.max_seconds,
                sampler,
                nvml,
                energy=args.suite == "energy",
            )
        if args.trace_out and time.perf_counter() < start + args.max_seconds + 30:
            from validation.harness.trace import attention_step_trace

            try:
                info = attention_step_trace(args.trace_out)
                log.info("trace written: %s %s", args.trace_out, info)
            except Exception as exc:  # noqa: BLE001 - the trace is optional
                log.warning("trace failed: %s", exc)
        if sampler is not None:
            sampler.stop()
    log.info("done: %d records in %.0f s", writer.count, time.perf_counter() - start)
    return 0


def _run_cases(
    cases: list[dict],
    writer: JsonlWriter,
    deadline: float,
    sampler,
    nvml,  # noqa: ANN001
    *,
    energy: bool,
) -> None:
    for i, case in enumerate(cases):
        if time.perf_counter() > deadline:
            log.warning("time limit reached: %d of %d cases not run", len(cases) - i, len(cases))
            return
        rec = run_case(case, sampler=sampler, nvml=nvml, energy=energy)
        try:
            writer.write(rec)
        except ValueError as exc:  # non-finite number in the record
            writer.write({**case, "key": case_key(case), "error": str(exc)})
        outcome = rec.get("ms") if "error" not in rec else str(rec["error"])[:200]
        log.info("[%d/%d] %s -> %s", i + 1, len(cases), rec["key"], outcome)


if __name__ == "__main__":
    sys.exit(main())
