"""Per-record CPU time of ``archsim validate FILE --engine event`` (profiling, not a test).

Run ``python bench/bench_validate.py [FILE]`` (default ``validation/data/h100_check.jsonl``).
For each record the command validates it builds the same tile program as
``validation._predict.predict_record(engine="event")`` (``validation._predict.engine_program``:
the kernels' costs lowered with their pipelined loads on the file's device architecture, from
the harness's dirty L2), then
times
``archsim.simulate`` on it in this process (CPU seconds, ``time.process_time``). It prints
one line per record (line, kind, shape, body steps, CPU s, how each kernel phase was timed),
then CPU seconds per record kind, the 10 slowest records and the total.

Options: ``--lines 12,40`` times only those records; ``--max-steps N`` skips (and lists)
records whose program has more than ``N`` body steps in all (their size is still printed);
``--dry`` only builds the programs and prints their sizes; ``--check`` also runs the
simulation with ``approx=False`` and reports any cycle difference; ``--bounds`` prints,
for every phase simulated slot by slot, its rigorous bounds (``archsim.engine._bounds``)
against the simulated time: how far each is and whether the midpoint would be taken;
``--where`` ends with where the simulate CPU seconds went: the compiled slot-by-slot loop
(``_fastsim.run_phase``), grouped-lockstep attempts that gave up / succeeded, the bounds,
and the rest (lowering the records, other shortcuts, compiling, accounting).

``--wall [--jobs N]`` instead times the whole ``archsim validate FILE --engine event`` (as
``validation.validate_file(..., jobs=N)``, N default: the usable CPUs) on each FILE given, by
default the committed record sets (``h100_check``, ``h100_fit`` on ``h100``, ``h200_check``
on ``h200``; a file's arch is ``--arch`` if given, else its name's prefix), and prints the
wall and CPU seconds (this process and its workers) per file and in all: issue 12's
"<= 60 s on 2 cores" figure, without the ~1 s of start-up imports per command.
"""

from __future__ import annotations

import argparse
import resource
import sys
import time
from collections import defaultdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def _programs(path: str, arch_name: str, lines: set[int] | None):  # noqa: ANN202 - generator
    """Yield ``(measurement, program, arch, build CPU s)`` of every record the model covers."""
    from archsim.gpu import gpu_model
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
            prog = engine_program(costs, model, arch, f"{flow}:{record_label(m.fields)}")
        except (UnsupportedRecord, ValueError, ArithmeticError) as exc:
            print(f"line {m.line}: skipped ({exc})")
            continue
        except Exception as exc:  # noqa: BLE001 - an ArchsimError the CLI would skip too
            if type(exc).__module__.startswith("archsim"):
                print(f"line {m.line}: skipped ({type(exc).__name__})")
                continue
            raise
        yield m, prog, arch, time.process_time() - t0


def _bounds_text(prog, arch, res) -> str:  # noqa: ANN001 - program, arch, Result
    """Per phase simulated slot by slot: ``L``/``U`` against its simulated cycles (percent)
    and the half-gap over the midpoint (the engine takes the midpoint at <= 2%)."""
    from archsim.engine._bounds import phase_bounds
    from archsim.engine._compile import compile_program

    compiled = compile_program(prog, arch)
    cycles = res.meta["phase_cycles"]
    out = []
    for cp in compiled.phases:
        name = cp.phase.name
        if res.meta["phase_method"].get(name) != "full" or not cycles.get(name):
            continue
        lo, hi = phase_bounds(compiled, cp)
        t = cycles[name]
        out.append(
            f"\n      {name[:32]:32s} L {100 * (lo / t - 1):+6.2f}% U {100 * (hi / t - 1):+6.2f}% "
            f"half-gap {100 * (hi - lo) / (hi + lo):5.2f}% of the midpoint"
        )
    return "".join(out)


#: the committed record sets and their GPUs (``--wall`` without files)
RECORD_SETS = (
    ("validation/data/h100_check.jsonl", "h100"),
    ("validation/data/h100_fit.jsonl", "h100"),
    ("validation/data/h200_check.jsonl", "h200"),
)


class _Where:
    """CPU seconds spent in the engine's slow paths (``--where``), by wrapping them."""

    def __init__(self) -> None:
        import archsim.engine._fastsim as fast
        import archsim.engine._shortcuts as short
        import archsim.engine._sim as sim

        self.secs: dict[str, float] = defaultdict(float)
        self.calls: dict[str, int] = defaultdict(int)
        run, grouped, bounded = fast.run_phase, short._grouped_lockstep, sim._bounded

        def timed(fn, name):  # noqa: ANN001, ANN202 - a wrapper of any engine function
            def wrapper(*a, **k):  # noqa: ANN002, ANN003, ANN202
                t0 = time.process_time()
                got = fn(*a, **k)
                key = name if name != "grouped lockstep" else f"{name} {'ok' if got else 'gave up'}"
                self.secs[key] += time.process_time() - t0
                self.calls[key] += 1
                return got

            return wrapper

        fast.run_phase = timed(run, "compiled loop")
        short._grouped_lockstep = timed(grouped, "grouped lockstep")
        sim._bounded = timed(bounded, "bounds")

    def report(self, total: float) -> str:
        rows = [f"  {k:26s} {v:8.2f} s  {self.calls[k]:5d} calls" for k, v in self.secs.items()]
        rows.append(f"  {'rest':26s} {total - sum(self.secs.values()):8.2f} s")
        return "\nwhere the simulate CPU seconds went:\n" + "\n".join(rows)


def _cpu_s() -> float:
    """CPU seconds (user + system) of this process and its finished children."""
    me = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    return me.ru_utime + me.ru_stime + kids.ru_utime + kids.ru_stime


def wall(files: list[str], arch: str | None, jobs: int | None) -> int:
    """Time ``validate_file(FILE, arch, engine="event", jobs=jobs)`` per file (see --wall)."""
    from validation._report import default_jobs, validate_file

    n = default_jobs() if jobs is None else jobs
    todo = [(f, arch or Path(f).name.split("_")[0]) for f in files] if files else RECORD_SETS
    tot_w = tot_c = 0.0
    print(f"archsim validate --engine event --jobs {n} (wall and CPU seconds)")
    for path, a in todo:
        c0, t0 = _cpu_s(), time.perf_counter()
        rep = validate_file(path, a, engine="event", jobs=n)
        w, c = time.perf_counter() - t0, _cpu_s() - c0
        tot_w += w
        tot_c += c
        print(
            f"  {Path(path).name:24s} {a:6s} {len(rep.frame):4d} validated "
            f"{len(rep.skipped):3d} skipped  wall {w:7.2f} s  CPU {c:7.2f} s",
            flush=True,
        )
    print(f"  {'all':24s} {'':6s} {'':24s}  wall {tot_w:7.2f} s  CPU {tot_c:7.2f} s")
    return 0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("file", nargs="*", help="measurement files (default: h100_check)")
    ap.add_argument("--arch", default=None, help="GPU preset (default h100; --wall: per file)")
    ap.add_argument("--lines", default=None, help="comma-separated record lines to time")
    ap.add_argument("--max-steps", type=float, default=float("inf"))
    ap.add_argument("--dry", action="store_true", help="only print program sizes")
    ap.add_argument("--check", action="store_true", help="compare with approx=False")
    ap.add_argument("--bounds", action="store_true", help="bounds of the full phases")
    ap.add_argument("--where", action="store_true", help="CPU s per engine path at the end")
    ap.add_argument("--wall", action="store_true", help="time whole validate runs per file")
    ap.add_argument("--jobs", type=int, default=None, help="--wall: processes (default: CPUs)")
    args = ap.parse_args(argv)
    if args.wall:
        return wall(args.file, args.arch, args.jobs)
    if len(args.file) > 1:
        ap.error("give one file (several only with --wall)")
    path = args.file[0] if args.file else "validation/data/h100_check.jsonl"
    arch_name = args.arch or "h100"
    from archsim.engine import simulate
    from archsim.errors import ArchsimError
    from validation._predict import record_label

    lines = {int(x) for x in args.lines.split(",")} if args.lines else None
    where = _Where() if args.where else None
    per_kind: dict[str, float] = defaultdict(float)
    rows: list[tuple[float, int, str, str, int]] = []
    skipped: list[tuple[int, str, int]] = []
    total = 0.0
    for m, prog, arch, build_s in _programs(path, arch_name, lines):
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
        if args.bounds:
            extra += _bounds_text(prog, arch, res)
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
    if where is not None:
        print(where.report(total))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
