"""Per-record CPU time of ``archsim validate FILE --engine event`` (profiling, not a test).

Run ``python bench/bench_validate.py [FILE]`` (default ``validation/data/h100_check.jsonl``).
For each record the command validates it builds the same tile program as
``validation._predict.predict_record(engine="event")`` (``validation._predict.engine_program``:
the kernels' costs lowered with their pipelined loads on the file's device architecture), then
times
``archsim.simulate`` on it in this process (CPU seconds, ``time.process_time``). It prints
one line per record (line, kind, shape, body steps, CPU s, how each kernel phase was timed),
then CPU seconds per record kind, the 10 slowest records and the total.

Options: ``--lines 12,40`` times only those records; ``--max-steps N`` skips (and lists)
records whose program has more than ``N`` body steps in all (their size is still printed);
``--dry`` only builds the programs and prints their sizes; ``--check`` also runs the
simulation with ``approx=False`` and reports any cycle difference.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections import defaultdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def _programs(path: str, arch_name: str, lines: set[int] | None):  # noqa: ANN202 - generator
    """Yield ``(measurement, program, arch, build CPU s)`` of every record the model covers."""
    from archsim.gpu import evaluate_op, gpu_model
    from validation._predict import (
        UnsupportedRecord,
        device_arch,
        device_model,
        engine_program,
        record_costs,
        record_label,
    )
    from validation._records import load_measurements

    mset = load_measurements(path)
    model = device_model(gpu_model(arch_name), mset.device)
    arch = device_arch(model.hw.name, mset.device)
    for m in mset.records:
        if lines is not None and m.line not in lines:
            continue
        t0 = time.process_time()
        try:
            flow, _group, costs = record_costs(m.fields, model)
            op = evaluate_op(costs, model)
            prog = engine_program(costs, op, model, arch, f"{flow}:{record_label(m.fields)}")
        except (UnsupportedRecord, ValueError, ArithmeticError) as exc:
            print(f"line {m.line}: skipped ({exc})")
            continue
        except Exception as exc:  # noqa: BLE001 - an ArchsimError the CLI would skip too
            if type(exc).__module__.startswith("archsim"):
                print(f"line {m.line}: skipped ({type(exc).__name__})")
                continue
            raise
        yield m, prog, arch, time.process_time() - t0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("file", nargs="?", default="validation/data/h100_check.jsonl")
    ap.add_argument("--arch", default="h100")
    ap.add_argument("--lines", default=None, help="comma-separated record lines to time")
    ap.add_argument("--max-steps", type=float, default=float("inf"))
    ap.add_argument("--dry", action="store_true", help="only print program sizes")
    ap.add_argument("--check", action="store_true", help="compare with approx=False")
    args = ap.parse_args(argv)
    from archsim.engine import simulate
    from archsim.errors import ArchsimError
    from validation._predict import record_label

    lines = {int(x) for x in args.lines.split(",")} if args.lines else None
    per_kind: dict[str, float] = defaultdict(float)
    rows: list[tuple[float, int, str, str, int]] = []
    skipped: list[tuple[int, str, int]] = []
    total = 0.0
    for m, prog, arch, build_s in _programs(args.file, args.arch, lines):
        steps = int(prog.total_steps)
        label = record_label(m.fields)
        ragged = sum(1 for p in prog.phases if p.uniform_trips is None)
        if args.dry or steps > args.max_steps:
            if not args.dry:
                skipped.append((m.line, label, steps))
            print(f"{m.line:4d} {m.kind:18s} {label:36s} {steps:>11,d} steps ragged={ragged}")
            continue
        t0 = time.process_time()
        try:
            res = simulate(prog, arch)
        except ArchsimError as exc:  # validate lists the record as skipped
            cpu = time.process_time() - t0 + build_s
            print(f"{m.line:4d} {m.kind:18s} {label:36s} {steps:>11,d} steps {cpu:8.3f} s "
                  f"refused: {type(exc).__name__}", flush=True)  # fmt: skip
            per_kind[m.kind] += cpu
            total += cpu
            rows.append((cpu, m.line, m.kind, label, steps))
            continue
        cpu = time.process_time() - t0 + build_s
        how = dict(res.meta["phase_method"])  # type: ignore[call-overload]  # a dict in meta
        kinds = ",".join(
            f"{v}" for k, v in how.items() if not k.startswith(("launch:", "writeback:"))
        )
        extra = ""
        if args.check:
            exact = simulate(prog, arch, approx=False)
            extra = f" exact_diff={res.cycles - exact.cycles:+d}"
        print(
            f"{m.line:4d} {m.kind:18s} {label:36s} {steps:>11,d} steps {cpu:8.3f} s "
            f"cycles={res.cycles} [{kinds}] mode={res.meta['mode']}{extra}",
            flush=True,
        )
        per_kind[m.kind] += cpu
        total += cpu
        rows.append((cpu, m.line, m.kind, label, steps))
    if args.dry:
        return 0
    print("\nCPU seconds per record kind:")
    for kind, s in sorted(per_kind.items(), key=lambda kv: -kv[1]):
        print(f"  {kind:18s} {s:9.2f}")
    print("\n10 slowest records:")
    for cpu, line, kind, label, steps in sorted(rows, reverse=True)[:10]:
        print(f"  line {line:4d} {kind:18s} {label:36s} {steps:>11,d} steps {cpu:8.2f} s")
    if skipped:
        print(f"\nskipped (more than {args.max_steps:,.0f} steps): {len(skipped)} records")
    print(f"\ntotal simulate CPU s (timed records): {total:.2f} over {len(rows)} records")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
