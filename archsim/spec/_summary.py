"""Readable text summary of an Architecture (for ``archsim arch show``)."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from archsim.spec._arch import Architecture
    from archsim.spec._components import ComputeUnit, StorageLevel

__all__ = ["summarize", "fmt_si"]


def fmt_si(value: float | None, unit: str) -> str:
    """``1.5e12, "B/s"`` -> ``1.5 TB/s``; binary-free SI prefixes; None -> ``unbounded``."""
    if value is None:
        return "unbounded"
    for factor, prefix in ((1e15, "P"), (1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "k")):
        if abs(value) >= factor:
            return f"{value / factor:.4g} {prefix}{unit}"
    return f"{value:.4g} {unit}"


def summarize(arch: Architecture) -> str:
    """Multi-line summary: clock, levels, units (with peaks), networks, area, power."""
    hz = arch.clock.core_hz
    first = arch.description.splitlines()[0] if arch.description else ""
    tech = arch.technology
    node = (
        f"  technology: {tech.node_nm:g} nm{' DRAM process' if tech.process == 'dram' else ''}"
        + (f" ({tech.notes})" if tech.notes else "")
        if tech is not None
        else "  technology: not stated (energies cannot be scaled to another node)"
    )
    lines = [
        f"{arch.name} ({arch.kind}): {first}",
        f"  clock: core {fmt_si(hz, 'Hz')}"
        + (f", memory {fmt_si(arch.clock.memory_hz, 'Hz')}" if arch.clock.memory_hz else ""),
        node,
    ]
    lines.append("  levels (outermost first):")
    for lvl in arch.levels:
        mesh = f" mesh {lvl.mesh[0]}x{lvl.mesh[1]}" if lvl.mesh else ""
        lines.append(
            f"    {lvl.name:<8} {lvl.kind:<7} {lvl.instances:>4} x "
            f"{fmt_si(lvl.capacity_bytes, 'B')}"
            f"{mesh}; read {fmt_si(lvl.read_bw_bytes_per_cycle * hz * lvl.instances, 'B/s')}"
            f" ({lvl.read_bw_bytes_per_cycle:g} B/cycle each); "
            f"{lvl.read_energy_pj_per_byte:g}/{lvl.write_energy_pj_per_byte:g} pJ/B r/w; "
            f"latency {lvl.latency_cycles} cycles"
        )
        if lvl.dram is not None:
            t = lvl.dram
            lines.append(
                f"             DRAM: {t.channels} ch x {t.pseudo_channels} pc x {t.ranks} rank x "
                f"{t.bank_groups} bg x {t.banks_per_group} banks, row {t.row_bytes} B, tCK "
                f"{t.tck_ns:g} ns, pins {fmt_si(t.peak_bytes_per_s, 'B/s')}; tRCD/tRP/tRAS "
                f"{t.tRCD}/{t.tRP}/{t.tRAS}, tCCD_S/L {t.tCCD_S}/{t.tCCD_L}, tFAW {t.tFAW}"
            )
    lines.append("  compute units:")
    for unit in arch.compute:
        mesh = f" mesh {unit.mesh[0]}x{unit.mesh[1]}" if unit.mesh else ""
        peaks = ", ".join(
            f"{op} {fmt_si(rate * unit.instances * hz, 'op/s')}"
            for op, rate in sorted(unit.ops_per_cycle.items())
        )
        lines.append(f"    {unit.name:<8} {unit.instances:>4} x{mesh}: {peaks}")
        if unit.energy_pj:
            pj = ", ".join(f"{op} {e:.4g}" for op, e in sorted(unit.energy_pj.items()))
            lines.append(f"             energy pJ/op: {pj}")
    for net in arch.networks:
        lines.append(
            f"  network {net.name}: {net.src} -> {net.dst} "
            f"{net.bw_bytes_per_cycle:g} B/cycle{' multicast' if net.multicast else ''}"
        )
    if arch.gpu is not None:
        g = arch.gpu
        tc = ", ".join(
            f"{k} {fmt_si(v * g.sms * hz, 'FLOP/s')}"
            for k, v in sorted(g.tc_flops_per_cycle_per_sm.items())
        )
        lines.append(
            f"  gpu: {g.sms} SMs, smem {fmt_si(g.smem_bytes_per_sm, 'B')}/SM, L2 "
            f"{fmt_si(g.l2_bytes, 'B')}, boost {fmt_si(g.boost_clock_hz, 'Hz')}; "
            f"tensor peaks: {tc}"
        )
    if arch.pim is not None:
        p = arch.pim
        dram = arch.dram.dram
        units = p.units_per_channel * (dram.channels if dram else 1)
        rate = units * p.macs_per_tck_per_unit() / (dram.tck_s if dram else 1.0)
        lines.append(
            f"  pim: {units} {p.placement} units, {p.macs_per_unit_per_cmd} MAC/cmd, "
            f"gap {p.gap_cycles} tCK -> {fmt_si(2 * rate, 'FLOP/s')}"
        )
    power = f", power cap {arch.power_cap_w:g} W" if arch.power_cap_w else ""
    lines.append(f"  area {arch.area_mm2:.4g} mm^2, static {arch.leakage_w:.4g} W{power}")
    items: tuple[StorageLevel | ComputeUnit, ...] = (*arch.levels, *arch.compute)
    parts = [f"{x.name} {x.instances * x.area_mm2:.4g}" for x in items if x.area_mm2 > 0]
    if arch.uncore_area_mm2:
        parts.append(f"uncore {arch.uncore_area_mm2:.4g}")
    if parts:
        lines.append("  area by component (mm^2, all instances): " + ", ".join(parts))
    return "\n".join(lines)
