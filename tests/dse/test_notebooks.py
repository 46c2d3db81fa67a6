"""The example notebooks execute without errors and render their figures inline; archsim's
own plotting never changes the matplotlib backend of the session that calls it."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples"
NOTEBOOKS = sorted(EXAMPLES.glob("*.ipynb"))


def test_committed_notebooks_match_their_generator():
    import importlib.util

    spec = importlib.util.spec_from_file_location("make_notebooks", EXAMPLES / "make_notebooks.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert sorted(module.NOTEBOOKS) == [p.name for p in NOTEBOOKS]
    for path in NOTEBOOKS:  # regenerate with: python examples/make_notebooks.py
        committed = [c.source for c in nbformat.read(path, as_version=4).cells]
        assert committed == [c.source for c in module.NOTEBOOKS[path.name]], path.name


def test_notebooks_select_no_backend_but_inline():
    for path in NOTEBOOKS:
        code = [c.source for c in nbformat.read(path, as_version=4).cells if c.cell_type == "code"]
        assert code[0].startswith("%matplotlib inline"), path.name
        assert not any("matplotlib.use(" in src for src in code), path.name


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_runs_clean_and_shows_its_figures(path):
    nb = nbformat.read(path, as_version=4)
    # run from the repository root, as a user of a checkout would; the notebooks write only
    # to temporary folders. MPLBACKEND is cleared so the notebook's own %matplotlib decides.
    env = {k: v for k, v in os.environ.items() if k != "MPLBACKEND"}
    client = nbclient.NotebookClient(
        nb, timeout=120, kernel_name="python3", resources={"metadata": {"path": str(ROOT)}}
    )
    client.execute(env=env)
    outputs = [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", [])]
    errors = [o for o in outputs if o.get("output_type") == "error"]
    assert not errors, errors[0].get("evalue")
    pngs = [o for o in outputs if "image/png" in o.get("data", {})]
    # every cell that draws a figure shows it: 1 in fusemax_vs_flat, 1 in
    # measured_vs_simulated, 2 (Pareto front, roofline) in dse_pe_buffer
    expected = {"fusemax_vs_flat": 1, "measured_vs_simulated": 1, "dse_pe_buffer": 2}
    assert len(pngs) == expected[path.stem], [o.get("output_type") for o in outputs]


# Calls every plotting entry point of archsim (reproduction PNGs, sweep Pareto and roofline
# plots, the demo's figure, the validation report's plot) in a fresh interpreter whose
# backend is not Agg (svg; Jupyter's inline one), and prints the backend after each. Library
# code must never switch it.
_PLOT_EVERYTHING = textwrap.dedent(
    """
    import sys
    from pathlib import Path

    import matplotlib

    out = Path(sys.argv[1])
    seen = [("start", matplotlib.get_backend())]

    import dse
    import validation
    from validation.reproduce import reproduce, write_outputs

    seen.append(("import", matplotlib.get_backend()))

    write_outputs(reproduce("hydragen", fast=True), out / "rep")  # a real plot, 2 CPU-s
    seen.append(("reproduce write_outputs", matplotlib.get_backend()))

    import pandas as pd
    from archsim import load_arch

    rows = pd.DataFrame({
        "status": ["ok", "ok"], "feasible": [True, True], "dataflow": ["fusemax", "flat"],
        "seconds": [1e-3, 2e-3], "energy_j": [3e-3, 1e-3], "flops": [1e12, 1e12],
        "dram_bytes": [1e8, 2e8],
    })
    dse.pareto_plot(rows, "energy", "latency", path=out / "p.png")
    seen.append(("dse.pareto_plot", matplotlib.get_backend()))
    dse.roofline_plot(rows, load_arch("fusemax"), path=out / "r.png")
    seen.append(("dse.roofline_plot", matplotlib.get_backend()))
    from dse._demo import run_demo  # what `archsim demo` runs

    run_demo(out / "demo", shape={"B": 1, "H": 2, "S": 512, "D": 64}, seq_lens=(512,))
    seen.append(("dse.run_demo", matplotlib.get_backend()))

    data = Path(validation.__file__).parent / "data" / "h100_check.jsonl"
    # the analytic bound: the plot is what is tested here, not the engine (~2 s, not ~30)
    validation.validate_file(data, "h100", engine="analytic").plot(out / "v.png")
    seen.append(("ComparisonReport.plot", matplotlib.get_backend()))
    for png in ("rep/hydragen.png", "p.png", "r.png", "demo/demo.png", "v.png"):
        assert (out / png).read_bytes()[:4] == b"\\x89PNG", png
    for step, backend in seen:
        print(f"{step}: {backend}")
    """
)


@pytest.mark.parametrize(
    "backend", ["svg", "module://matplotlib_inline.backend_inline"], ids=["svg", "inline"]
)
def test_plotting_never_changes_the_backend(tmp_path, backend):
    env = {**os.environ, "MPLBACKEND": backend}
    proc = subprocess.run(
        [sys.executable, "-c", _PLOT_EVERYTHING, str(tmp_path)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    steps = dict(line.split(": ", 1) for line in proc.stdout.splitlines())
    assert steps["start"] == backend
    changed = {step: now for step, now in steps.items() if now != backend}
    assert not changed, f"these calls switched the backend away from {backend}: {changed}"
