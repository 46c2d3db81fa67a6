# ruff: noqa: E501  (notebook cell sources are kept one statement per line)
"""Generate the example notebooks (``python examples/make_notebooks.py``).

The notebooks are written without outputs; ``tests/dse/test_notebooks.py`` executes them
with nbclient so they never rot. Edit the cells here, not in the .ipynb files.
"""

from __future__ import annotations

from pathlib import Path

import nbformat
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

HERE = Path(__file__).resolve().parent

FUSEMAX_VS_FLAT = [
    new_markdown_cell(
        "# FuseMax vs FLAT vs unfused attention on a spatial array\n\n"
        "FuseMax (Nayak et al., MICRO'24) runs attention's 1-pass softmax cascade fully fused on "
        "a 2D + 1D spatial array; FLAT (Kao et al., ASPLOS'23) fuses QK, softmax and AV per row "
        "tile; unfused attention writes the score matrix to DRAM. This notebook sweeps the "
        "sequence length on the `fusemax` and `flat` architecture presets with the analytical "
        "engine, through the same `dse` sweep API that `archsim sweep` uses."
    ),
    new_code_cell(
        "import tempfile\n"
        "import matplotlib\n"
        "matplotlib.use('Agg')\n"
        "import matplotlib.pyplot as plt\n"
        "import dse\n"
        "from mappings import list_dataflows\n\n"
        "dataflows = [d for d in ('fusemax', 'flat', 'unfused') if d in list_dataflows()]\n"
        "seq_lens = [1024, 2048, 4096, 8192, 16384, 32768, 65536]\n"
        "frames = []\n"
        "for preset in ('fusemax', 'flat'):\n"
        "    spec = dse.SweepSpec.from_dict({\n"
        "        'name': f'seq-{preset}',\n"
        "        'arch': {'preset': preset},\n"
        "        'workload': {'name': 'mha', 'params': {'B': 1, 'H': 16, 'D': 64, 'S': seq_lens}},\n"
        "        'dataflow': dataflows,\n"
        "        'engine': 'analytic',\n"
        "    })\n"
        "    out = tempfile.mkdtemp(prefix=f'nb-{preset}-')\n"
        "    summary = dse.run_sweep(spec, out, executor='serial')\n"
        "    frames.append(dse.load(out).assign(preset=preset))\n"
        "import pandas as pd\n"
        "df = pd.concat(frames, ignore_index=True)\n"
        "print(df['status'].value_counts().to_dict())\n"
        "df[df.status != 'ok'][['preset', 'dataflow', 'param.S', 'error']].head()"
    ),
    new_code_cell(
        "ok = df[df.status == 'ok']\n"
        "fig, axes = plt.subplots(1, 3, figsize=(15, 4))\n"
        "for (preset, dataflow), g in ok.groupby(['preset', 'dataflow']):\n"
        "    axes[0].plot(g['param.S'], g['seconds'] * 1e3, marker='o', label=f'{preset}/{dataflow}')\n"
        "    axes[1].plot(g['param.S'], g['energy_j'] * 1e3, marker='o', label=f'{preset}/{dataflow}')\n"
        "    axes[2].plot(g['param.S'], g['dram_bytes'] / 1e6, marker='o', label=f'{preset}/{dataflow}')\n"
        "for ax, label in zip(axes, ['latency (ms)', 'energy (mJ)', 'DRAM traffic (MB)']):\n"
        "    ax.set_xscale('log', base=2); ax.set_yscale('log'); ax.set_xlabel('sequence length'); ax.set_ylabel(label)\n"
        "axes[0].legend(fontsize=7)\n"
        "fig.tight_layout()"
    ),
    new_code_cell(
        "# speedup of each dataflow over unfused on the same preset and length\n"
        "base = ok[ok.dataflow == 'unfused'].set_index(['preset', 'param.S'])['seconds']\n"
        "speedup = ok.assign(speedup=[base.get((p, s), float('nan')) / t for p, s, t in\n"
        "                             zip(ok.preset, ok['param.S'], ok.seconds)])\n"
        "speedup.pivot_table(index='param.S', columns=['preset', 'dataflow'], values='speedup').round(2)"
    ),
    new_code_cell(
        "util_cols = [c for c in ok.columns if c.startswith('util.')]\n"
        "ok[ok['param.S'] == 16384][['preset', 'dataflow', 'seconds', *util_cols]]"
    ),
]

MEASURED_VS_SIMULATED = [
    new_markdown_cell(
        "# Measured vs simulated on the H100 datasets\n\n"
        "The `validation` package compares kernel measurements from a real H100 (PyTorch SDPA "
        "flash/cuDNN backends, cuBLAS GEMMs, decode; JSON Lines with provenance under "
        "`validation/data/`) with the simulator's predictions for the same shapes. If the dataset "
        "or the comparison API is missing in this checkout, the notebook says so and stops cleanly."
    ),
    new_code_cell(
        "from pathlib import Path\n"
        "import importlib\n"
        "import archsim\n\n"
        "root = Path(archsim.__file__).resolve().parent.parent\n"
        "data = root / 'validation' / 'data' / 'h100_check.jsonl'\n"
        "try:\n"
        "    validation = importlib.import_module('validation')\n"
        "    validate_file = getattr(validation, 'validate_file', None)\n"
        "except ImportError:\n"
        "    validate_file = None\n"
        "ready = data.is_file() and validate_file is not None\n"
        "if not data.is_file():\n"
        "    print(f'dataset missing: {data} -- skipping the comparison')\n"
        "elif validate_file is None:\n"
        "    print('validation.validate_file is not available in this checkout -- skipping')\n"
        "else:\n"
        "    print(f'dataset: {data} ({sum(1 for _ in data.open())} records)')"
    ),
    new_code_cell(
        "import pandas as pd\n"
        "report = validate_file(data) if ready else None\n"
        "def as_frame(r):\n"
        "    if r is None:\n"
        "        return pd.DataFrame()\n"
        "    if isinstance(r, pd.DataFrame):\n"
        "        return r\n"
        "    for attr in ('frame', 'df', 'to_frame'):\n"
        "        v = getattr(r, attr, None)\n"
        "        if v is not None:\n"
        "            return v() if callable(v) else v\n"
        "    return pd.DataFrame(r)\n"
        "cmp = as_frame(report)\n"
        "print(f'{len(cmp)} compared kernels')\n"
        "cmp.head(10)"
    ),
    new_code_cell(
        "import numpy as np\n"
        "import matplotlib\n"
        "matplotlib.use('Agg')\n"
        "import matplotlib.pyplot as plt\n"
        "def pick(df, *names):\n"
        "    return next((n for n in names if n in df.columns), None)\n"
        "mcol = pick(cmp, 'measured_s', 'measured_seconds', 'measured')\n"
        "scol = pick(cmp, 'simulated_s', 'simulated_seconds', 'simulated', 'predicted_s')\n"
        "if ready and mcol and scol:\n"
        "    err = cmp[scol] / cmp[mcol] - 1\n"
        "    print(f'latency error: median {np.median(np.abs(err)) * 100:.1f}%, max {np.max(np.abs(err)) * 100:.1f}%')\n"
        "    fig, ax = plt.subplots(figsize=(5, 5))\n"
        "    ax.loglog(cmp[mcol], cmp[scol], 'o', alpha=0.7)\n"
        "    lo, hi = cmp[[mcol, scol]].min().min(), cmp[[mcol, scol]].max().max()\n"
        "    ax.plot([lo, hi], [lo, hi], 'k--', lw=1)\n"
        "    ax.set_xlabel('measured (s)'); ax.set_ylabel('simulated (s)')\n"
        "else:\n"
        "    print('nothing to plot' if not ready else f'columns: {list(cmp.columns)}')"
    ),
]

DSE_PE_BUFFER = [
    new_markdown_cell(
        "# DSE: PE-array size × on-chip buffer size for attention\n\n"
        "How big should the 2D PE array and the global buffer be for FuseMax-style attention? "
        "A grid over the `fusemax` preset's `compute.pe2d.mesh` and `levels.GLB.capacity_bytes`, "
        "two sequence lengths, analytical engine, run on 2 local worker processes. The store is "
        "resumable: run the cell twice and the second run computes nothing."
    ),
    new_code_cell(
        "import json\n"
        "import tempfile\n"
        "import matplotlib\n"
        "matplotlib.use('Agg')\n"
        "import dse\n\n"
        "spec = dse.SweepSpec.from_dict({\n"
        "    'name': 'pe-x-buffer',\n"
        "    'arch': {'preset': 'fusemax', 'space': {\n"
        "        'compute.pe2d.mesh': [[32, 32], [64, 64], [128, 128], [256, 256]],\n"
        "        'levels.GLB.capacity_bytes': {'log_range': [1e6, 64e6], 'n': 4},\n"
        "    }},\n"
        "    'workload': {'name': 'mha', 'params': {'B': 1, 'H': 16, 'D': 64, 'S': [4096, 16384]}},\n"
        "    'dataflow': 'fusemax',\n"
        "    'engine': 'analytic',\n"
        "    'objectives': ['latency', 'area'],\n"
        "    'constraints': ['area <= 800'],\n"
        "})\n"
        "out = tempfile.mkdtemp(prefix='nb-dse-')\n"
        "summary = dse.run_sweep(spec, out, workers=2)\n"
        "again = dse.run_sweep(spec, out, workers=2)\n"
        "print(summary)\n"
        "print('second run computed', again.computed, 'points')\n"
        "df = dse.load(out)\n"
        "df['pes'] = [json.loads(m)[0] * json.loads(m)[1] for m in df['arch.compute.pe2d.mesh']]\n"
        "df[['arch.compute.pe2d.mesh', 'arch.levels.GLB.capacity_bytes', 'param.S', 'status', 'seconds', 'energy_j', 'area_mm2']].head(8)"
    ),
    new_code_cell(
        "ok = df[df.status == 'ok']\n"
        "table = ok[ok['param.S'] == 16384].pivot_table(index='pes', columns='arch.levels.GLB.capacity_bytes',\n"
        "                                              values='seconds')\n"
        "(table * 1e3).round(3)  # latency in ms at S = 16384"
    ),
    new_code_cell(
        "front = dse.pareto(df[df['param.S'] == 16384], 'area', 'latency')\n"
        "fig = dse.pareto_plot(df[df['param.S'] == 16384], 'area', 'latency', hue='arch.compute.pe2d.mesh')\n"
        "front[['arch.compute.pe2d.mesh', 'arch.levels.GLB.capacity_bytes', 'area_mm2', 'seconds']]"
    ),
    new_code_cell(
        "from archsim import load_arch\n"
        "fig = dse.roofline_plot(ok, load_arch('fusemax'), hue='arch.compute.pe2d.mesh')"
    ),
]

NOTEBOOKS = {
    "fusemax_vs_flat.ipynb": FUSEMAX_VS_FLAT,
    "measured_vs_simulated.ipynb": MEASURED_VS_SIMULATED,
    "dse_pe_buffer.ipynb": DSE_PE_BUFFER,
}


def main() -> None:
    for name, cells in NOTEBOOKS.items():
        nb = new_notebook(
            cells=cells,
            metadata={
                "kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"},
                "language_info": {"name": "python"},
            },
        )
        nbformat.write(nb, HERE / name)


if __name__ == "__main__":
    main()
