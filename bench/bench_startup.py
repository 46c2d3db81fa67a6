"""Start-up time of the ``archsim`` command: help pages and small simulations.

Run ``python bench/bench_startup.py`` (prints figures; not a test). Each command runs ``N``
times in a fresh process (``--repeat``, default 7); the table gives the median wall-clock
seconds and the median CPU seconds (user + system of the child, from ``getrusage``).
Target (issue 12): ``archsim --help`` and a small ``simulate`` start in <= 0.4 s.

On a shared machine the wall-clock figure includes waiting for a core: read the CPU figure
(and the load average printed in the header) before quoting a wall one.

Byte code: where ``PYTHONDONTWRITEBYTECODE`` is set (as on the shared development machine)
every module edited since its ``.pyc`` was written is compiled again on each run, which an
installed archsim never pays; so the commands run with byte code written to a private
directory (``PYTHONPYCACHEPREFIX``, a temporary one) and one unmeasured warm-up run each.
``--as-is`` keeps the environment as it is instead.

Instructions: ``--instructions`` adds a column with the user-space instructions of one run,
counted by valgrind (``cachegrind --cache-sim=no``; about 20x slower): unlike seconds, the
count does not change with the machine's load, so it compares two trees on a busy machine.

Options: ``--repeat N``; ``--as-is``; ``--instructions``; ``--only NAME`` (repeatable);
``--python-m`` runs ``python -m archsim`` instead of the installed ``archsim`` script;
``--root DIR`` runs the sources under DIR instead (``python -m archsim`` from DIR with
``PYTHONPATH=DIR``), e.g. an older commit unpacked with ``git archive REV | tar -x -C DIR``,
to compare before and after on the same machine in the same minute.
"""

from __future__ import annotations

import argparse
import os
import re
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

#: name -> archsim arguments
CASES: dict[str, list[str]] = {
    "help": ["--help"],
    "simulate_help": ["simulate", "--help"],
    "validate_help": ["validate", "--help"],
    "compare_help": ["compare", "--help"],
    "model_help": ["model", "--help"],
    "simulate_h100": ["simulate", "--arch", "h100", "--workload", "mha", "--set", "S=1024"],
    "simulate_small": (  # issue 12's command (dataflow auto)
        ["simulate", "--arch", "h100", "--workload", "mha", "--set", "B=1", "--set", "H=1"]
        + ["--set", "S=1024", "--set", "D=128"]
    ),
    "simulate_fusemax": ["simulate", "--arch", "fusemax", "--workload", "mha", "--set", "S=1024"],
}


def command(
    python_m: bool, root: Path | None, pycache: str | None
) -> tuple[list[str], dict[str, str]]:
    """The ``archsim`` command line prefix and its environment (byte code written under
    ``pycache`` when given)."""
    env = dict(os.environ)
    if pycache is not None:
        env.pop("PYTHONDONTWRITEBYTECODE", None)
        env["PYTHONPYCACHEPREFIX"] = pycache
    if root is not None:
        env["PYTHONPATH"] = str(root) + os.pathsep + env.get("PYTHONPATH", "")
        os.chdir(root)  # python -m puts the working directory first on sys.path
        return [sys.executable, "-m", "archsim"], env
    script = Path(sys.executable).with_name("archsim")  # the real script, not a pyenv shim
    if python_m or not script.exists():
        return [sys.executable, "-m", "archsim"], env
    return [str(script)], env


def run_once(argv: list[str], env: dict[str, str]) -> tuple[float, float]:
    """(wall s, CPU s) of one run of ``argv``; raises if it fails."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    proc = subprocess.run(argv, capture_output=True, text=True, env=env, check=False)
    wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if proc.returncode:
        raise RuntimeError(f"{' '.join(argv)} exited {proc.returncode}: {proc.stderr[-400:]}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu


def instructions(argv: list[str], env: dict[str, str]) -> int | None:
    """User-space instructions of one run of ``argv`` under valgrind; None without valgrind."""
    valgrind = shutil.which("valgrind")
    if valgrind is None:
        return None
    if not argv[0].endswith(("python", "python3", Path(sys.executable).name)):
        argv = [sys.executable, *argv]  # the console script: valgrind runs the interpreter
    vg = [valgrind, "--tool=cachegrind", "--cache-sim=no", "--cachegrind-out-file=/dev/null"]
    proc = subprocess.run(vg + argv, capture_output=True, text=True, env=env, check=False)
    found = re.search(r"I\s+refs:\s+([\d,]+)", proc.stderr)
    if proc.returncode or found is None:
        raise RuntimeError(f"valgrind {' '.join(argv)} failed: {proc.stderr[-400:]}")
    return int(found.group(1).replace(",", ""))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--repeat", type=int, default=7, help="runs per command (median)")
    ap.add_argument("--only", action="append", choices=sorted(CASES), help="case (repeatable)")
    ap.add_argument("--python-m", action="store_true", help="run python -m archsim")
    ap.add_argument("--root", type=Path, help="source tree to run instead (python -m archsim)")
    ap.add_argument("--as-is", action="store_true", help="no private byte-code cache, no warm-up")
    ap.add_argument(
        "--instructions", action="store_true", help="also count instructions (valgrind)"
    )
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="archsim_pyc_") as tmp:
        return _bench(args, None if args.as_is else tmp)


def _bench(args: argparse.Namespace, pycache: str | None) -> int:
    prefix, env = command(args.python_m, args.root and args.root.resolve(), pycache)
    warm = 0 if pycache is None else 1
    load = os.getloadavg()
    where = "as is" if pycache is None else "byte code cached, 1 warm-up"
    print(f"# {' '.join(prefix)}  (median of {args.repeat} runs, {where}; ", end="")
    print(f"cores {os.cpu_count()}, ", end="")
    print(f"load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f})")
    base = [run_once([sys.executable, "-c", "pass"], env) for _ in range(warm + args.repeat)]
    base = base[warm:]
    where_code = "import archsim, os; print(os.path.dirname(os.path.dirname(archsim.__file__)))"
    src = subprocess.run(
        [sys.executable, "-c", where_code], capture_output=True, text=True, env=env, check=True
    ).stdout.strip()
    print(f"# sources: {src}")
    ir_head = f" {'instr. 1e6':>10}" if args.instructions else ""
    print(f"{'case':<18} {'wall s':>8} {'CPU s':>8}{ir_head}  command")
    wall = statistics.median(w for w, _c in base)
    cpu = statistics.median(c for _w, c in base)
    ir = _ir_text(args.instructions, [sys.executable, "-c", "pass"], env)
    print(f"{'python -c pass':<18} {wall:8.3f} {cpu:8.3f}{ir}  (the interpreter alone)")
    for name, case in CASES.items():
        if args.only and name not in args.only:
            continue
        runs = [run_once(prefix + case, env) for _ in range(warm + args.repeat)][warm:]
        wall = statistics.median(w for w, _c in runs)
        cpu = statistics.median(c for _w, c in runs)
        ir = _ir_text(args.instructions, prefix + case, env)
        print(f"{name:<18} {wall:8.3f} {cpu:8.3f}{ir}  archsim {' '.join(case)}")
    return 0


def _ir_text(wanted: bool, argv: list[str], env: dict[str, str]) -> str:
    if not wanted:
        return ""
    count = instructions(argv, env)
    return f" {'n/a':>10}" if count is None else f" {count / 1e6:10.0f}"


if __name__ == "__main__":
    sys.exit(main())
