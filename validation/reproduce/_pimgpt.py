"""PIM-GPT (Wu, Wang & Lu, arXiv 2310.09385): one decode step, one graph, PIM and GPU.

Each of PIM-GPT's eight GPT models is a :mod:`models` preset (``gpt2-small`` ...
``gpt3-xl``: the GPT-2 block, pre-LayerNorm, GELU MLP 4 d wide, learned positions, biases,
LM head over 50,257 tokens). One :class:`models.ModelGraph` of a batch-1 decode step over a
``PIMGPT_L``-token cache is built per model and simulated, unchanged, on

- ``aim_pim``: every GEMV (the LM head included) on ``pim_gemv``, the attention on
  ``pim_decode``, norms, GELU, residual adds, the K/V write and the embedding gathers on the
  host-side controller (PIM-GPT's ASIC; :mod:`models._simulate`), biases read in the GEMV
  epilogues;
- each GPU preset of :data:`PIMGPT_GPUS` (``h100`` is the gate): each op a GPU kernel
  (cuBLAS-style GEMMs with split-K where it would split, flash-decoding split-KV attention and
  its combine, element-wise kernels), run back to back: the first kernel pays the calibrated
  launch, every later one the calibrated inter-kernel gap -- what a CUDA-graph replay of the
  step runs, with no Python or framework time.

So the speedup is the ratio of two evaluations of the same graph object.
"""

from __future__ import annotations

from archsim.gpu import gpu_model
from models import ModelGraph, ModelReport, build_graph, from_preset, simulate_graph
from models._spec import GPT_PRESETS

from ._common import Row

__all__ = [
    "PIMGPT_GATE_GPU",
    "PIMGPT_GPUS",
    "PIMGPT_L",
    "PIMGPT_MODELS",
    "PIMGPT_PIM",
    "pimgpt_graph",
    "pimgpt_rows",
]

#: name -> (layers, d_model, heads) of PIM-GPT's eight models (the :mod:`models` presets).
PIMGPT_MODELS: dict[str, tuple[int, int, int]] = {
    name: (layers, d, heads) for name, (layers, d, heads, _) in GPT_PRESETS.items()
}
PIMGPT_L = 1024  # context (tokens) assumed for PIM-GPT's generation; the paper's is not given
PIMGPT_PIM = "aim_pim"
#: GPU presets the graph runs on; the gate is on the first. PIM-GPT's GPU is not named in what
#: could be retrieved; a100 is the older GPU and h200 the one the CUDA-graph measurement
#: (validation/data/h100_gpt_decode_graph.jsonl) ran on.
PIMGPT_GPUS = ("h100", "a100", "h200")
PIMGPT_GATE_GPU = PIMGPT_GPUS[0]


def pimgpt_graph(name: str, context: int = PIMGPT_L) -> ModelGraph:
    """The batch-1 decode step of GPT preset ``name`` over a ``context``-token cache."""
    return build_graph(from_preset(name), phase="decode", batch=1, seq=context)


def _op_s(rep: ModelReport, *ops: str) -> float:
    """Seconds the step spends in the named ops."""
    return sum(r.total_s for r in rep.rows if r.op in ops and r.bound != "unmapped")


def _gpu_columns(rep: ModelReport, gpu: str, pim_s: float, pim_j: float) -> Row:
    """The GPU columns of one row; ``gpu`` names them (no suffix for the gate GPU)."""
    cal = gpu_model(gpu).cal
    # host launch + inter-kernel gaps; the in-kernel ramp (kernel_ramp_s) is kernel time
    fixed = cal.launch_s + (rep.kernels - 1) * cal.gap_s
    sfx = "" if gpu == PIMGPT_GATE_GPU else f"_{gpu}"
    step = rep.latency_s
    return {
        f"gpu_ms_per_token{sfx}": step * 1e3,
        f"gpu_mJ_per_token{sfx}": rep.energy_j * 1e3,
        f"gpu_kernels{sfx}": rep.kernels,
        f"gpu_launch_share{sfx}": fixed / step,
        f"attention_share_gpu{sfx}": _op_s(rep, "attention") / step,
        f"speedup{sfx}": step / pim_s,
        # the same ratio with every launch and inter-kernel gap removed: what the GPU's
        # bandwidth and compute alone give (a floor no real GPU run reaches)
        f"speedup_no_launch{sfx}": (step - fixed) / pim_s,
        f"energy_eff{sfx}": rep.energy_j / pim_j,
    }


def pimgpt_rows(fast: bool) -> list[Row]:
    """One row per model: the decode step on :data:`PIMGPT_PIM` and on each GPU preset.

    Columns: ``pim_ms_per_token``, ``pim_mJ_per_token``, ``pim_host_share`` (time on the
    host-side controller), ``pim_lm_head_share``; per GPU (suffix ``_a100``, ``_h200``; none for
    ``h100``) ``gpu_ms_per_token``, ``gpu_mJ_per_token``, ``gpu_kernels`` (launches per token),
    ``gpu_launch_share`` (``launch_s + (kernels - 1) * gap_s`` over the step; the in-kernel
    ramp of GEMM/attention kernels is not counted), ``attention_share_gpu``, ``speedup``,
    ``speedup_no_launch`` and ``energy_eff`` (GPU over PIM).
    """
    rows: list[Row] = []
    names = ("gpt2-small", "gpt3-xl") if fast else tuple(PIMGPT_MODELS)
    for name in names:
        graph = pimgpt_graph(name)
        pim = simulate_graph(graph, PIMGPT_PIM)  # complete: every op maps or runs on the host
        pim_s, pim_j = pim.latency_s, pim.energy_j
        host = sum(r.total_s for r in pim.rows if r.dataflow == "host")
        row: Row = {
            "setup": "PIM-GPT-like",
            "model": name,
            "batch": 1,
            "context": PIMGPT_L,
            "pim_ms_per_token": pim_s * 1e3,
            "pim_mJ_per_token": pim_j * 1e3,
            "pim_host_share": host / pim_s,
            "pim_lm_head_share": _op_s(pim, "lm_head") / pim_s,
        }
        for gpu in PIMGPT_GPUS:
            row |= _gpu_columns(simulate_graph(graph, gpu), gpu, pim_s, pim_j)
        rows.append(row)
    return rows
