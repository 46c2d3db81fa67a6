"""One power model for time and energy: the power cap sets the clock.

Board power is modelled as

    P(f) = P_idle + vn(f)^2 * (p_active + p_tensor * r_tc + p_alu * r_alu) + p_mem * r_mem

where ``r_tc = tensor FLOP/s / (peak FLOP/s at boost)``, ``r_alu`` likewise for FP32/SFU
ops, ``r_mem = DRAM bytes/s / datasheet bandwidth`` and ``vn(f)`` is the supply voltage
relative to its boost value, linear in the clock between ``v_min_frac`` at the minimum
clock and 1 at boost (CMOS dynamic energy per operation scales with V^2; the operation
*rate* already carries the factor f). A kernel whose power at boost exceeds the cap runs
at the highest clock whose power meets it (NVIDIA's power capping lowers the SM clock;
memory clock is fixed) -- so a busy H100 at 700 W runs below its 1980 MHz boost.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from .params import GpuModel

__all__ = ["PowerPoint", "board_energy_parts_j", "board_power_w", "voltage_frac", "solve_clock"]


def voltage_frac(model: GpuModel, clock_hz: float) -> float:
    """Supply voltage at ``clock_hz`` relative to the boost-clock voltage (linear V/f)."""
    hw = model.hw
    span = max(hw.boost_clock_hz - hw.min_clock_hz, 1.0)
    x = min(max((clock_hz - hw.min_clock_hz) / span, 0.0), 1.0)
    return model.cal.v_min_frac + (1.0 - model.cal.v_min_frac) * x


def board_energy_parts_j(
    model: GpuModel,
    clock_hz: float,
    time_s: float,
    *,
    tensor_flops: float,
    alu_ops: float,
    dram_bytes: float,
) -> dict[str, float]:
    """Board energy (J) of ``time_s`` at ``clock_hz`` doing the given work, by term of the
    power model: ``idle`` and ``active`` grow with time, ``tensor``, ``alu`` and ``dram``
    with the work done (FLOP, ops, bytes). The parts sum to ``board_power_w x time_s``."""
    hw, cal = model.hw, model.cal
    peak_tc = hw.tc_rate("wgmma", "bf16") * hw.sms * hw.boost_clock_hz
    peak_alu = (hw.fp32_ops_per_clk + hw.sfu_ops_per_clk) * hw.sms * hw.boost_clock_hz
    vn2 = voltage_frac(model, clock_hz) ** 2
    return {
        "idle": hw.idle_w * time_s,
        "active": vn2 * cal.p_active_w * time_s,
        "tensor": vn2 * cal.p_tensor_w * tensor_flops / peak_tc,
        "alu": vn2 * cal.p_alu_w * alu_ops / peak_alu,
        "dram": cal.p_mem_w * dram_bytes / hw.hbm_bytes_per_s,
    }


def board_power_w(
    model: GpuModel,
    clock_hz: float,
    *,
    tensor_flops_per_s: float,
    alu_ops_per_s: float,
    dram_bytes_per_s: float,
) -> float:
    """Board power (W) at ``clock_hz`` for the given activity rates (per second)."""
    parts = board_energy_parts_j(
        model,
        clock_hz,
        1.0,
        tensor_flops=tensor_flops_per_s,
        alu_ops=alu_ops_per_s,
        dram_bytes=dram_bytes_per_s,
    )
    return float(sum(parts.values()))


@dataclass(frozen=True)
class PowerPoint:
    """Operating point: clock (Hz), duration (s), board power (W), energy (J)."""

    clock_hz: float
    time_s: float
    power_w: float
    energy_j: float
    capped: bool


def solve_clock(
    model: GpuModel,
    time_at: Callable[[float], float],
    *,
    tensor_flops: float,
    alu_ops: float,
    dram_bytes: float,
    cap_w: float | None = None,
    max_clock_hz: float | None = None,
) -> PowerPoint:
    """Highest clock in [min, boost] whose power meets the cap, and time/energy there.

    Parameters
    ----------
    model
        GPU model (clocks, power coefficients).
    time_at
        Kernel duration (s) as a function of the SM clock (Hz).
    tensor_flops, alu_ops, dram_bytes
        Work of the kernel (FLOP, ops, bytes); rates follow from ``time_at``.
    cap_w
        Power limit (W); default the GPU's.
    max_clock_hz
        Highest clock allowed (default boost). Calibration passes a value above boost to
        learn how far *below* the cap a kernel would settle (voltage held at its boost value).

    Notes
    -----
    Power rises monotonically with the clock (rates and voltage both rise), so bisection
    (40 steps, ~1 kHz resolution) finds the operating point.
    """
    hw = model.hw
    cap = hw.power_cap_w if cap_w is None else cap_w

    def point(f: float) -> PowerPoint:
        t = max(time_at(f), 1e-12)
        p = board_power_w(
            model,
            f,
            tensor_flops_per_s=tensor_flops / t,
            alu_ops_per_s=alu_ops / t,
            dram_bytes_per_s=dram_bytes / t,
        )
        return PowerPoint(f, t, p, p * t, False)

    f_top = hw.boost_clock_hz if max_clock_hz is None else max_clock_hz
    top = point(f_top)
    if top.power_w <= cap:
        return top
    lo, hi = hw.min_clock_hz, f_top
    if point(lo).power_w > cap:
        low = point(lo)
        return PowerPoint(lo, low.time_s, low.power_w, low.energy_j, True)
    for _ in range(40):
        mid = 0.5 * (lo + hi)
        if point(mid).power_w <= cap:
            lo = mid
        else:
            hi = mid
    best = point(lo)
    return PowerPoint(lo, best.time_s, best.power_w, best.energy_j, True)
