"""Timing a call's GPU kernels: the tile program they lower to, run by an engine.

This is the one way archsim times real GPU kernels (``archsim validate``, the calibration,
``archsim compare``, the reproductions): the kernels of one call
(:class:`archsim.gpu.KernelCost`, built by a recipe or from a measured record) are lowered
with :func:`mappings._gpu.costs_to_program` and run by the event engine
(:func:`archsim.simulate`) or bounded by its analytic evaluator (:func:`archsim.estimate`).
Each kernel's time is its launch phase plus its kernel phase as the engine ran them; its
energy is the board power model (:mod:`archsim.gpu.power`) at that time and the kernel's
clock.

NOTE: the SM clock of each kernel comes from the power-cap governor
(:func:`archsim.gpu.evaluate_op`): the highest clock in [min, boost] whose power at the
kernel's work rates meets the cap. The governor estimates those rates with the kernel's
closed-form duration (its CTAs list-scheduled on the SM slots, bounded by DRAM bandwidth) --
the clock is an input of the lowering, so it cannot come from the engine's own answer
without iterating. That estimate sets only the clock; no time, energy or bytes reported here
come from it.
"""

from __future__ import annotations

import hashlib
import pickle
from collections.abc import MutableMapping, Sequence
from dataclasses import replace
from typing import Literal

from archsim import Result, TileProgram
from archsim.gpu import GpuModel, KernelCost, KernelTiming, OpPrediction, evaluate_op
from archsim.gpu.power import board_energy_parts_j

from ._lower import costs_to_program, kernel_seconds

__all__ = ["ENGINES", "call_program", "run_kernels"]

#: The evaluators of a GPU call's tile program.
ENGINES: tuple[str, ...] = ("event", "analytic")


def _resolve_arch(arch: object, model: GpuModel) -> object:
    """``arch`` as an architecture: a preset name or YAML path is loaded; None is the preset
    named like the model's hardware."""
    from archsim.spec import Architecture, load_arch

    return arch if isinstance(arch, Architecture) else load_arch(str(arch or model.hw.name))


def call_program(
    costs: Sequence[KernelCost],
    model: GpuModel,
    arch: object = None,
    *,
    name: str = "call",
    dtype: str = "bf16",
    l2_dirty_bytes: float = 0.0,
    cap_w: float | None = None,
) -> tuple[TileProgram, OpPrediction]:
    """The tile program :func:`run_kernels` runs for a call's kernels, and the governor's
    view of them (each kernel's clock): ``costs_to_program`` with the kernels' pipelined
    loads, each kernel at its governed clock. ``arch``: see :func:`run_kernels`."""
    arch = _resolve_arch(arch, model)
    governor = evaluate_op(costs, model, cap_w=cap_w, l2_dirty_bytes=l2_dirty_bytes)
    program = costs_to_program(
        name,
        costs,
        model,
        arch,
        governor,
        dtype=dtype,
        pipelined_loads=True,
        l2_dirty_bytes=l2_dirty_bytes,
    )
    return program, governor


def run_kernels(
    costs: Sequence[KernelCost],
    model: GpuModel,
    arch: object = None,
    *,
    engine: Literal["event", "analytic"] = "event",
    name: str = "call",
    dtype: str = "bf16",
    l2_dirty_bytes: float = 0.0,
    cap_w: float | None = None,
    cache: MutableMapping[bytes, Result] | None = None,
) -> OpPrediction:
    """Time the kernels of one call, launched back to back, on ``arch``'s engine.

    Parameters
    ----------
    costs
        The call's kernels, in launch order (the first pays ``launch_s``, the rest ``gap_s``).
    model
        GPU model (hardware facts and calibrated constants) the kernels were built with.
    arch
        The architecture the tile program runs on (its SMs, L2, HBM servers): an
        ``Architecture``, a preset name or YAML path, or None for the preset named like the
        model's hardware.
    engine
        ``event`` (:func:`archsim.simulate`) or ``analytic`` (:func:`archsim.estimate`).
    l2_dirty_bytes
        Dirty L2 bytes the call starts with; its first DRAM reads write them back.
    cap_w
        Board power cap (W) for the clock governor (default: the hardware's).
    cache
        Engine results by a digest of what the tile program is built from: a program met
        again is not run again (the calibration's finite differences change few
        programs per step).

    Returns
    -------
    OpPrediction
        One :class:`KernelTiming` per kernel: time (s) from the engine, clock (Hz) from the
        governor, energy (J) from the board power model at that time, DRAM bytes of the
        lowering (the same as the kernel's), ``meta["engine"]``.
    """
    if engine not in ENGINES:
        from archsim.errors import MappingError

        raise MappingError("unknown engine", path="engine", expected=ENGINES, got=engine)
    from archsim import estimate, simulate

    arch = _resolve_arch(arch, model)
    program, governor = call_program(
        costs, model, arch, name=name, dtype=dtype, l2_dirty_bytes=l2_dirty_bytes, cap_w=cap_w
    )
    key = b""
    if cache is not None:  # what the lowering reads: the kernels, their clocks, the fixed
        # costs, the time base and the machine (architectures hold read-only mappings,
        # which do not pickle: by their repr)
        cal = model.cal
        fixed = (cal.launch_s, cal.gap_s, cal.ramp_s, model.hbm_eff_bytes_per_s)
        clocks = [k.clock_hz for k in governor.kernels]
        blob = (
            pickle.dumps((engine, name, dtype, l2_dirty_bytes, list(costs), clocks, fixed))
            + (repr(model.hw) + repr(arch)).encode()
        )
        key = hashlib.blake2b(blob, digest_size=20).digest()
    if cache is not None and key in cache:
        res = cache[key]
    else:
        run = estimate if engine == "analytic" else simulate
        res = run(program, arch)
        if cache is not None:
            cache[key] = res
    out: list[KernelTiming] = []
    for k, t in zip(governor.kernels, kernel_seconds(program.meta, res), strict=True):
        parts = board_energy_parts_j(
            model,
            k.clock_hz,
            t,
            tensor_flops=k.tensor_flops,
            alu_ops=k.alu_ops,
            dram_bytes=k.dram_read_bytes + k.dram_write_bytes,
        )
        e = float(sum(parts.values()))
        meta = {**k.meta, "engine": engine}
        out.append(replace(k, time_s=t, energy_j=e, power_w=e / t if t > 0 else 0.0, meta=meta))
    return OpPrediction(tuple(out))
