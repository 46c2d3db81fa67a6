"""PIM-GPT against a *measured* GPU: batch-1 PyTorch eager token generation on an H100.

PIM-GPT (Wu et al., arXiv 2310.09385) compares its PIM system with a GPU running the
models in a framework. ``validation/harness/gpt_decode.py`` measured such a run on the lent
H100 (``validation/data/h100_gpt_decode.jsonl``;
provenance in ``validation/data/README.md``): Hugging Face ``GPT2LMHeadModel``, fp16, batch 1,
one decode step over a ~1k-token KV cache, repeated back to back for >= 2.5 s with NVML's
energy counter running (``energy_loop_ms_per_token``, ``mJ_per_token``: board energy,
idle power included, as a wall-plug comparison needs). These rows put that measured
baseline beside the PIM model's time and energy per token for the same eight shapes.

It is a *framework-overhead comparison*, reported and never gated: batch-1 eager decode is
bound by Python dispatch and per-op launches (several times the GPU model's time for the
same kernels, ``eager_over_model_graph`` in the reproduction), so the ratio says more about
the framework than about the GPU. The gated PIM-GPT baseline is the same decode graph run
through the GPU model (:mod:`validation.reproduce._pimgpt_graph`).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from ._common import Cell, Row

__all__ = ["MEASURED_GPT_DECODE", "measured_baseline_rows"]

#: the committed measurement (absent in a non-editable install: then no rows)
MEASURED_GPT_DECODE = Path(__file__).resolve().parents[1] / "data" / "h100_gpt_decode.jsonl"


def _records(path: Path) -> dict[str, Mapping[str, Any]]:
    # Any: parsed JSON records of the committed measurement (numbers and strings)
    rows = (json.loads(line) for line in path.read_text().splitlines() if line.strip())
    return {str(r["model"]): r for r in rows if r.get("kind") == "gpt_decode" and "error" not in r}


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
