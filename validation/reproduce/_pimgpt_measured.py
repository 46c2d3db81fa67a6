"""PIM-GPT against a *measured* GPU: batch-1 GPT token generation in PyTorch.

Two measurements, each joined with the PIM model's rows:

- :func:`measured_graph_rows`: the decode step captured once in a CUDA graph and replayed
  per token (``validation/harness/gpt_decode.py --graph``; ``graph_ms_per_token`` and the
  profiler's ``kernel_ms_per_token``): kernel time plus the GPU's own inter-kernel gaps, no
  Python or framework time, so it measures what the GPU model of the same graph predicts
  (``model_over_measured``). Read from ``validation/data/h100_gpt_decode_graph.jsonl`` when that
  file exists; no rows otherwise.
- :func:`measured_baseline_rows`: PyTorch eager on an H100. PIM-GPT (Wu et al., arXiv
  2310.09385) compares its PIM system with a GPU running the models in a framework.
  ``validation/harness/gpt_decode.py`` measured such a run on the lent H100
  (``validation/data/h100_gpt_decode.jsonl``; provenance in ``validation/data/README.md``):
  Hugging Face ``GPT2LMHeadModel``, fp16, batch 1, one decode step over a ~1k-token KV
  cache, repeated back to back for >= 2.5 s with NVML's energy counter running
  (``energy_loop_ms_per_token``, ``mJ_per_token``: board energy, idle power included, as a
  wall-plug comparison needs). It is a *framework-overhead comparison*, reported and never
  gated: batch-1 eager decode is bound by Python dispatch and per-op launches (several times
  the GPU model's time for the same kernels, ``eager_over_model_graph`` in the
  reproduction), so the ratio says more about the framework than about the GPU.

The gated PIM-GPT baseline is the same decode graph run through the GPU model
(:mod:`validation.reproduce._pimgpt`).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from ._common import Cell, Row

__all__ = [
    "MEASURED_GPT_DECODE",
    "MEASURED_GPT_DECODE_GRAPH",
    "measured_baseline_rows",
    "measured_graph_rows",
    "graph_device_preset",
]

_DATA = Path(__file__).resolve().parents[1] / "data"
#: the committed measurements (absent in a non-editable install: then no rows)
MEASURED_GPT_DECODE = _DATA / "h100_gpt_decode.jsonl"
MEASURED_GPT_DECODE_GRAPH = _DATA / "h100_gpt_decode_graph.jsonl"
#: GPU preset of a measured device, by the name NVML gives it
_PRESET_OF_DEVICE = {"H200": "h200", "H100": "h100", "A100": "a100"}


def _lines(path: Path) -> list[dict[str, Any]]:
    # Any: parsed JSON records of a measurement file (numbers and strings)
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def _records(path: Path) -> dict[str, Mapping[str, Any]]:
    rows = _lines(path)
    return {str(r["model"]): r for r in rows if r.get("kind") == "gpt_decode" and "error" not in r}


def graph_device_preset(path: Path | None = None) -> str | None:
    """The GPU preset of the device a measurement file's ``device`` record names (``NVIDIA
    H200`` -> ``h200``); None when the file is absent or the device has no preset. ``path``:
    default :data:`MEASURED_GPT_DECODE_GRAPH`."""
    path = MEASURED_GPT_DECODE_GRAPH if path is None else path
    if not path.exists():
        return None
    for r in _lines(path):
        if r.get("kind") == "device":
            name = str(r.get("name", ""))
            return next((p for key, p in _PRESET_OF_DEVICE.items() if key in name), None)
    return None


def measured_graph_rows(
    model_rows: Sequence[Mapping[str, Cell]],
    path: Path | None = None,
    gate_gpu: str = "h100",
) -> list[Row]:
    """Join the PIM-GPT model rows with a measured CUDA-graph decode step.

    Parameters
    ----------
    model_rows
        Rows of :func:`validation.reproduce._pimgpt.pimgpt_rows` (``pim_ms_per_token`` and the
        GPU columns of the measured device's preset: ``gpu_ms_per_token_h200`` ...).
    path
        The measured JSON Lines file (records with ``graph_ms_per_token``); default
        :data:`MEASURED_GPT_DECODE_GRAPH`.
    gate_gpu
        The preset whose columns have no suffix.

    Returns
    -------
    list of dict
        Per model measured: ``measured_graph_ms_per_token``, the GPU model of the same graph
        (``model_ms_per_token``; ``model_over_measured``), the profiler's kernel time and
        kernel count beside the model's time without launches and gaps and its kernel count,
        the eager time of the same file over the graph time (``eager_over_graph``: the
        framework's share; ``static_eager_over_graph``: the same step launched from
        Python), and the PIM ``speedup`` (and ``energy_eff`` when the graph loop's energy
        was measured). Empty when the file is absent, names no device with a preset,
        or has no graph records.
    """
    path = MEASURED_GPT_DECODE_GRAPH if path is None else path
    gpu = graph_device_preset(path)
    if gpu is None:
        return []
    sfx = "" if gpu == gate_gpu else f"_{gpu}"
    measured = _records(path)
    out: list[Row] = []
    for row in model_rows:
        m = measured.get(str(row["model"]))
        if m is None or m.get("graph_ms_per_token") is None:
            continue
        if f"gpu_ms_per_token{sfx}" not in row:
            continue
        graph_ms = float(m["graph_ms_per_token"])
        model_ms = float(row[f"gpu_ms_per_token{sfx}"])
        busy_ms = model_ms * (1.0 - float(row[f"gpu_launch_share{sfx}"]))
        pim_ms = float(row["pim_ms_per_token"])
        r: Row = {
            "setup": f"PIM-GPT vs measured {gpu.upper()}, CUDA-graph replay (no framework time)",
            "model": row["model"],
            "gpu": gpu,
            "measured_graph_ms_per_token": graph_ms,
            "model_ms_per_token": model_ms,
            "model_over_measured": model_ms / graph_ms,
            "model_kernels": row[f"gpu_kernels{sfx}"],
            "model_no_launch_ms_per_token": busy_ms,
            "pim_ms_per_token": pim_ms,
            "speedup": graph_ms / pim_ms,
        }
        if m.get("kernel_ms_per_token") is not None:
            r["measured_kernel_ms_per_token"] = float(m["kernel_ms_per_token"])
            r["model_no_launch_over_kernel"] = busy_ms / float(m["kernel_ms_per_token"])
        if m.get("graph_kernels_per_token") is not None:
            r["measured_kernels"] = float(m["graph_kernels_per_token"])
        eager = m.get("energy_loop_ms_per_token", m.get("ms_per_token"))
        if eager is not None:  # the fixed-cache eager loop where measured (as the eager rows)
            r["eager_over_graph"] = float(eager) / graph_ms
        if m.get("static_eager_ms_per_token") is not None:  # the step uncaptured, from Python
            r["static_eager_over_graph"] = float(m["static_eager_ms_per_token"]) / graph_ms
        if m.get("graph_mJ_per_token") is not None:
            r["measured_graph_mJ_per_token"] = float(m["graph_mJ_per_token"])
            r["energy_eff"] = float(m["graph_mJ_per_token"]) / float(row["pim_mJ_per_token"])
        out.append(r)
    return out


def measured_baseline_rows(
    model_rows: Sequence[Mapping[str, Cell]], path: Path = MEASURED_GPT_DECODE
) -> list[Row]:
    """Join the PIM-GPT model rows with the measured eager-PyTorch H100 decode.

    Parameters
    ----------
    model_rows
        Rows with ``model``, ``pim_ms_per_token`` and ``pim_mJ_per_token``.
    path
        The measured JSON Lines file.

    Returns
    -------
    list of dict
        One row per model measured: measured GPU ms and mJ per token, the PIM model's, and
        the ratios ``speedup`` (GPU time / PIM time) and ``energy_eff`` (GPU energy / PIM
        energy). Empty when the file is absent.
    """
    if not path.exists():
        return []
    measured = _records(path)
    out: list[Row] = []
    for row in model_rows:
        m = measured.get(str(row["model"]))
        if m is None:
            continue
        gpu_ms = float(m["energy_loop_ms_per_token"])
        gpu_mj = float(m["mJ_per_token"])
        pim_ms = float(row["pim_ms_per_token"])
        pim_mj = float(row["pim_mJ_per_token"])
        out.append(
            {
                "setup": "PIM-GPT vs measured H100, PyTorch eager (framework-overhead comparison)",
                "model": row["model"],
                "measured_gpu_ms_per_token": gpu_ms,
                "measured_gpu_mJ_per_token": gpu_mj,
                "measured_avg_W": m["avg_W"],
                "pim_ms_per_token": pim_ms,
                "pim_mJ_per_token": pim_mj,
                "speedup": gpu_ms / pim_ms,
                "energy_eff": gpu_mj / pim_mj,
            }
        )
    return out
