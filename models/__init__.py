"""Whole models: layer graphs of cascades, prefill and decode, tensor parallelism.

A model (a workloads preset such as ``llama3-70b``, or a Hugging Face ``config.json``) is
turned into a :class:`ModelGraph` of ops, each a library cascade with its shapes (QKV/O
projections and FFN matrices as ``gemm``, attention as ``gqa``/``mha``/``decode``/``mla``,
norms, RoPE, activations, residual adds, MoE experts with routing fractions, the LM head)
plus the collectives tensor, context and expert parallelism need (a paged KV cache reads
whole pages through a block table); :func:`simulate_model` simulates each distinct op shape
once with :func:`mappings.simulate_workload` and times collectives on a :class:`System` by
their closed forms; :func:`simulate_generation` runs a prefill and the decode steps of a
whole generation (TTFT, TPOT, tokens/s, J/token).

>>> from models import simulate_model
>>> rep = simulate_model("llama3-8b", "h100", phase="decode", batch=1, seq=1024)
>>> round(rep.latency_s * 1e3, 1) > 0
True

This package sits above ``mappings`` (like ``dse``); nothing below imports it.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # the lazily loaded names, for type checkers
    from pathlib import Path

    from models._comm import (
        COLLECTIVES,
        System,
        collective_time,
        default_system,
        list_systems,
        load_system,
        system_from_dict,
    )
    from models._generate import GenerationReport, simulate_generation
    from models._graph import (
        PAGED_PARTITION,
        PHASES,
        ModelGraph,
        Stage,
        build_graph,
        expected_experts,
        paged_version,
    )
    from models._ops import Op
    from models._parallel import CP_MODES, ring_attention_time
    from models._simulate import ModelReport, OpRow, simulate_graph
    from models._spec import (
        HF_MODEL_TYPES,
        ModelError,
        ModelSpec,
        from_hf_config,
        from_preset,
        list_model_names,
        load_model,
    )

#: public name -> module that defines it (imported on first access, PEP 562): ``import
#: models`` (and ``archsim model --help``, which imports ``models._cli``) loads none of them
_EXPORTS: dict[str, str] = {
    "COLLECTIVES": "models._comm",
    "System": "models._comm",
    "collective_time": "models._comm",
    "default_system": "models._comm",
    "list_systems": "models._comm",
    "load_system": "models._comm",
    "system_from_dict": "models._comm",
    "GenerationReport": "models._generate",
    "simulate_generation": "models._generate",
    "PAGED_PARTITION": "models._graph",
    "PHASES": "models._graph",
    "ModelGraph": "models._graph",
    "Stage": "models._graph",
    "build_graph": "models._graph",
    "expected_experts": "models._graph",
    "paged_version": "models._graph",
    "Op": "models._ops",
    "CP_MODES": "models._parallel",
    "ring_attention_time": "models._parallel",
    "ModelReport": "models._simulate",
    "OpRow": "models._simulate",
    "simulate_graph": "models._simulate",
    "HF_MODEL_TYPES": "models._spec",
    "ModelError": "models._spec",
    "ModelSpec": "models._spec",
    "from_hf_config": "models._spec",
    "from_preset": "models._spec",
    "list_model_names": "models._spec",
    "load_model": "models._spec",
}

__all__ = [
    "ModelSpec",
    "ModelError",
    "from_preset",
    "from_hf_config",
    "load_model",
    "list_model_names",
    "HF_MODEL_TYPES",
    "Op",
    "Stage",
    "ModelGraph",
    "build_graph",
    "expected_experts",
    "PHASES",
    "PAGED_PARTITION",
    "paged_version",
    "CP_MODES",
    "ring_attention_time",
    "System",
    "load_system",
    "list_systems",
    "default_system",
    "system_from_dict",
    "collective_time",
    "COLLECTIVES",
    "OpRow",
    "ModelReport",
    "simulate_graph",
    "simulate_model",
    "simulate_generation",
    "GenerationReport",
]


def simulate_model(
    model: str | Path | ModelSpec,
    arch: str,
    *,
    phase: str = "decode",
    batch: int = 1,
    seq: int = 2048,
    tp: int = 1,
    system: str | Path | System | None = None,
    engine: str = "event",
    page: int = 0,
    cp: int = 1,
    ep: int = 1,
    cp_mode: str = "ring",
) -> ModelReport:
    """Simulate one ``phase`` step of ``model`` on ``tp`` devices of ``arch``.

    Parameters
    ----------
    model
        Preset name (``llama3-70b``), ``config.json`` path, or a :class:`ModelSpec`.
    arch
        Device architecture: preset name or YAML path.
    phase
        ``prefill`` (``batch`` prompts of ``seq`` tokens) or ``decode`` (one new token per
        sequence over a ``seq``-token cache).
    tp
        Tensor-parallel degree.
    system
        Interconnect (bundled name, YAML path or :class:`System`); default for more than
        one device: the bundled system of ``arch`` (``h100`` -> ``dgx-h100``, ``h200`` ->
        ``hgx-h200``).
    engine
        ``event`` or ``analytic``.
    page
        Paged KV cache page size, tokens (decode; 0 = contiguous).
    cp, cp_mode
        Context-parallel degree and prefill attention form (``ring`` or ``all_gather``).
    ep
        Expert-parallel degree (MoE models).
    """
    from models._comm import System, default_system, load_system
    from models._graph import build_graph
    from models._simulate import simulate_graph
    from models._spec import load_model

    spec = load_model(model)
    sysobj: System | None
    if isinstance(system, System):
        sysobj = system
    elif system is not None:
        sysobj = load_system(system)
    else:
        n = tp * cp * ep
        sysobj = default_system(arch, n) if n > 1 else None
    graph = build_graph(
        spec, phase=phase, batch=batch, seq=seq, tp=tp, page=page, cp=cp, ep=ep, cp_mode=cp_mode
    )
    return simulate_graph(graph, arch, system=sysobj, engine=engine)


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'models' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(__all__) | set(globals()))
