"""Shared plumbing of the GPU dataflows: model, workload parameters, plan assembly."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from functools import partial
from typing import TYPE_CHECKING

from archsim.errors import MappingError
from archsim.gpu import GpuModel, KernelCost, evaluate_op, gpu_model
from mappings._registry import PassInfo, Plan

from ._lower import costs_to_program, with_board_energy

if TYPE_CHECKING:
    from archsim import Architecture
    from workloads import Workload

__all__ = ["model_for", "param", "dtype_of", "gpu_plan", "check_knobs"]


def model_for(arch: Architecture) -> GpuModel:
    """GPU model of ``arch``.

    Raises
    ------
    MappingError
        When ``arch`` is not a GPU (no ``gpu`` parameters).
    """
    if getattr(arch, "gpu", None) is None:
        raise MappingError(
            "GPU dataflows need a GPU architecture",
            path="arch",
            expected="kind: gpu (h100, h200, a100)",
            got=getattr(arch, "name", arch),
        )
    return gpu_model(arch)


def param(workload: Workload, name: str, default: int | None = None) -> int:
    """Integer shape parameter of a workload (``B``, ``H``, ``Sq``...)."""
    val = workload.params.get(name, default)
    if val is None:
        raise MappingError(
            "workload lacks a parameter this dataflow needs",
            path=f"workload.params.{name}",
            expected="an integer",
            got=None,
        )
    return int(val)


def dtype_of(workload: Workload) -> str:
    """Element type from ``dtype_bits`` (16 -> bf16, 8 -> fp8, 32 -> fp32)."""
    bits = int(workload.params.get("dtype_bits", 16))
    return {16: "bf16", 8: "fp8", 32: "fp32"}.get(bits, "bf16")


def check_knobs(knobs: Mapping[str, object], allowed: Sequence[str], dataflow: str) -> None:
    """Reject unknown knobs with the list of accepted ones."""
    bad = sorted(set(knobs) - set(allowed))
    if bad:
        raise MappingError(
            "unknown knob",
            path=f"knobs.{bad[0]}",
            expected=f"one of {sorted(allowed)} for {dataflow}",
            got=bad[0],
        )


def gpu_plan(
    name: str,
    workload: Workload,
    arch: Architecture,
    costs: list[KernelCost],
    model: GpuModel,
    *,
    passes: PassInfo | None,
    notes: str,
    extra_meta: Mapping[str, object] | None = None,
) -> Plan:
    """Lower the kernels to a tile program and wrap them as a :class:`Plan`.

    Each kernel runs at the SM clock the power-cap governor chose for it
    (:func:`archsim.gpu.evaluate_op`; see ``mappings._gpu._run``); ``plan.meta["kernels"]``
    holds their facts (clock, work, DRAM bytes, CTAs), the engine their time; the plan's
    ``finish`` gives the result the board power model's energy at that time.
    """
    pred = evaluate_op(costs, model)  # the governor: each kernel's clock
    program = costs_to_program(
        f"{name}:{workload.name}",
        costs,
        model,
        arch,
        pred,
        dtype=dtype_of(workload),
        pipelined_loads=True,
    )
    meta = {**program.meta, "dataflow": name, **(extra_meta or {})}
    finish = partial(with_board_energy, model, program.meta, arch.dram.name)
    return Plan(program=program, mapping=None, passes=passes, notes=notes, meta=meta, finish=finish)


def ensure(cond: bool, message: str, path: str, expected: object, got: object) -> None:
    """Raise :class:`MappingError` unless ``cond``."""
    if not cond:
        raise MappingError(message, path=path, expected=expected, got=got)


CostFn = Callable[..., list[KernelCost]]
