"""End-to-end ``archsim simulate`` on real lowered GPU programs, and CLI start-up.

Run ``python bench/bench_simulate.py`` (prints figures; not a test). Each case runs the
``archsim`` command itself in a fresh process (so start-up, workload parsing, lowering,
simulation and printing all count) and reports its wall-clock and CPU seconds (user +
system of the child, from ``getrusage``); then, in this process, the same lowering and
``archsim.simulate`` call the command makes (``mappings._api.simulate_workload``), to show
where the time goes: the number of SimPy events and how each phase was timed.

Targets (the engine issue): FA2 forward 16 heads x 32k on ``h100`` <= 0.5 s; 40 heads x
75,600 tokens (video DiT, dense ``flash3`` and ``block_sparse``) <= 1 s; causal 16 heads x
128k <= 3 s (exact, or with a stated, tested error bound: the breakdown prints the mode and
bound from ``Result.meta``); ``archsim --help`` and a small ``simulate`` <= 0.4 s. Figures
depend on the machine and its load: CPU seconds are the steadier figure on a shared machine.

The command is the ``archsim`` script beside this interpreter (not a pyenv shim, whose bash
start-up would add ~0.07 s to every figure), run as :mod:`bench_startup` runs it: byte code
is written to a private temporary directory (``PYTHONPYCACHEPREFIX``) and each case runs
once unmeasured first. Where ``PYTHONDONTWRITEBYTECODE`` is set (the shared development
machine) every module edited since its ``.pyc`` was written would otherwise be compiled
again on every run (76 of the 96 modules a small simulate imports, +0.1 CPU-s), which an
installed archsim never pays; ``--as-is`` keeps the environment and skips the warm-up.

Options: ``--only NAME`` (repeatable) runs some cases; ``--timeout S`` stops a case after S
seconds of wall-clock (reported as such, never as a time); ``--repeat N`` keeps the best of
N runs of each command (the line also gives the range of the N CPU figures: the spread on a
busy machine); ``--as-is``; ``--no-breakdown`` skips the in-process breakdown.
"""

from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_startup import command  # noqa: E402 - the one way the benches run archsim

#: name -> (archsim arguments, target seconds or None)
CASES: dict[str, tuple[list[str], float | None]] = {
    "help": (["--help"], 0.4),
    "small": (
        ["simulate", "--arch", "h100", "--workload", "mha", "--dataflow", "flash2"]
        + ["--set", "B=1", "--set", "H=1", "--set", "S=1024", "--set", "D=128"],
        0.4,
    ),
    "small_auto": (  # issue 12's command: --dataflow auto (tries split_kv, linear_chunked)
        ["simulate", "--arch", "h100", "--workload", "mha"]
        + ["--set", "B=1", "--set", "H=1", "--set", "S=1024", "--set", "D=128"],
        0.4,
    ),
    "fa2_16h_32k": (
        ["simulate", "--arch", "h100", "--workload", "mha", "--dataflow", "flash2"]
        + ["--set", "B=1", "--set", "H=16", "--set", "S=32768", "--set", "D=128"],
        0.5,
    ),
    "flash3_40h_75600": (
        ["simulate", "--arch", "h100", "--workload", "mha", "--dataflow", "flash3"]
        + ["--set", "B=1", "--set", "H=40", "--set", "S=75600", "--set", "D=128"],
        1.0,
    ),
    "block_sparse_40h_75600": (
        ["simulate", "--arch", "h100", "--workload", "block_sparse", "--dataflow"]
        + ["block_sparse", "--set", "B=1", "--set", "H=40", "--set", "S=75600"]
        + ["--set", "D=128", "--set", "density=0.348"],
        1.0,
    ),
    "causal_fa2_16h_128k": (
        ["simulate", "--arch", "h100", "--workload", "mha", "--dataflow", "flash2"]
        + ["--set", "B=1", "--set", "H=16", "--set", "S=131072", "--set", "D=128"]
        + ["--set", "causal=true"],
        3.0,
    ),
}


def run_cli(
    prefix: list[str], env: dict[str, str], args: list[str], timeout: float
) -> tuple[float, float, int] | None:
    """``(wall s, CPU s, exit code)`` of one run of ``prefix + args`` (the ``archsim``
    command), or None if it timed out."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    try:
        proc = subprocess.run(
            prefix + args, capture_output=True, text=True, timeout=timeout, check=False, env=env
        )
    except subprocess.TimeoutExpired:
        return None
    wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    if proc.returncode:
        sys.stderr.write(proc.stderr)
    return wall, cpu, proc.returncode


def breakdown(args: list[str]) -> str:
    """Lowering and simulation of a ``simulate`` case in this process, as the CLI does them."""
    if not args or args[0] != "simulate":
        return ""
    from archsim import simulate
    from mappings._api import plan_for, resolve_arch, resolve_workload
    from mappings._cli import _kv

    opts = dict(zip(args[1::2], args[2::2], strict=False))
    sets = [args[i + 1] for i, a in enumerate(args) if a == "--set"]
    t0 = time.process_time()
    arch = resolve_arch(opts["--arch"])
    wl = resolve_workload(opts["--workload"], _kv(sets, "--set"))
    name, plan = plan_for(arch, wl, dataflow=opts.get("--dataflow", "auto"))
    t1 = time.process_time()
    res = simulate(plan.program, arch)
    t2 = time.process_time()
    steps = plan.program.total_steps
    methods = ", ".join(f"{k}: {v}" for k, v in res.meta["phase_method"].items())
    bound = float(res.meta.get("bound_cycles", 0.0))
    mode = res.meta.get("mode", "exact")
    if bound:
        mode = f"{mode}, within {bound:,.0f} cycles ({bound / res.cycles:.2%}) of exact"
    return (
        f"    {name}: lower {t1 - t0:.3f} s (first call: lazy imports included), "
        f"simulate {t2 - t1:.3f} s CPU; {steps:,} tile steps, "
        f"{res.meta['events']:,} SimPy events, cycles {res.cycles:,} ({mode}); phases "
        f"{res.meta['phase_schedule']} ({methods})"
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--only", action="append", choices=sorted(CASES), help="run only NAME")
    ap.add_argument("--timeout", type=float, default=600.0, help="seconds per command")
    ap.add_argument("--repeat", type=int, default=3, help="best of N runs per command")
    ap.add_argument("--as-is", action="store_true", help="no private byte-code cache, no warm-up")
    ap.add_argument("--no-breakdown", action="store_true", help="skip the in-process breakdown")
    opts = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="archsim_pyc_") as tmp:
        _bench(opts, None if opts.as_is else tmp)


def _bench(opts: argparse.Namespace, pycache: str | None) -> None:
    prefix, env = command(False, None, pycache)
    load = os.getloadavg()
    where = "as is" if pycache is None else "byte code cached, 1 warm-up"
    print(  # noqa: T201
        f"command: {' '.join(prefix)}  ({where}; cpus: {os.cpu_count()}, "
        f"load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f})"
    )
    for name in opts.only or list(CASES):
        args, target = CASES[name]
        if pycache is not None:
            run_cli(prefix, env, args, opts.timeout)  # writes the byte code; not measured
        runs: list[tuple[float, float, int]] = []
        for _ in range(max(1, opts.repeat)):
            got = run_cli(prefix, env, args, opts.timeout)
            if got is None:
                runs = []
                break
            runs.append(got)
        goal = f"target <= {target:g} s" if target is not None else ""
        if not runs:
            print(f"{name:<24} timed out after {opts.timeout:g} s wall  {goal}")  # noqa: T201
            continue
        wall, cpu, rc = min(runs, key=lambda r: r[1])
        spread = f"(CPU {min(r[1] for r in runs):.3f}-{max(r[1] for r in runs):.3f} s, "
        spread += f"{len(runs)} runs)"
        ok = "" if target is None else ("  ok" if cpu <= target else "  OVER")
        status = "" if rc == 0 else f"  exit {rc}"
        print(  # noqa: T201
            f"{name:<24} wall {wall:7.3f} s  cpu {cpu:7.3f} s {spread}  {goal}{ok}{status}"
        )
        if not opts.no_breakdown:
            line = breakdown(args)
            if line:
                print(line)  # noqa: T201


if __name__ == "__main__":
    main()
