"""Why a whole-cascade mapping costs what it costs, in a few lines a user can read.

For each fusion group: its Einsums and compute units, the intermediates it keeps on chip,
how many times each DRAM tensor is read (``K x2``: two passes over the keys), the buffer
each on-chip level needs against its capacity, and what bounds it (the busiest compute unit
or the DRAM traffic, per trip). :func:`differences` says how two mappings differ.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from mappings._mapping import Mapping

if TYPE_CHECKING:
    from archsim import Architecture
    from workloads import Workload

__all__ = ["explain", "differences"]


def explain(workload: Workload, mapping: Mapping, arch: Architecture) -> list[str]:
    """Lines describing ``mapping`` of ``workload`` on ``arch`` (see module doc)."""
    from mappings._check import compute_unit
    from mappings._lower import group_computes, lower_group
    from mappings._reuse import footprints, group_moves
    from mappings._splits import apply_splits
    from mappings._tensors import group_tensors

    w = apply_splits(workload, mapping.splits)
    out = []
    if mapping.splits:
        out.append("splits: " + ", ".join(f"{r} tile {n}" for r, n in mapping.splits.items()))
    dram = arch.levels[0]
    for g, group in enumerate(mapping.groups):
        main = compute_unit(arch, group).name
        units = sorted({group.unit_of(e) or main for e in group.einsums})
        out.append(f"group {g}: {' '.join(group.einsums)}  on {', '.join(units)}")
        tensors = group_tensors(w, group)
        if group.on_chip:
            out.append(f"  on chip: {', '.join(group.on_chip)}")
        reads = []
        for t in tensors:
            if not t.in_dram or not t.read:
                continue
            moved = sum(
                mv.src_bytes for mv in group_moves(group, [t]) if mv.src == 0 and not mv.upward
            )
            compulsory = t.elems * t.bytes_per_elem
            if compulsory > 0:
                reads.append(f"{t.name} x{moved / compulsory:.3g}")
        if reads:
            out.append(f"  DRAM reads (x compulsory): {', '.join(reads)}")
        for i, per in footprints(group, tensors, w.sizes).items():
            lv = arch.level(group.levels[i].level)
            need = sum(per.values())
            cap = f" of {lv.capacity_bytes:,.0f}" if lv.capacity_bytes else ""
            out.append(f"  {lv.name}: {need:,.0f} B{cap} per tile")
        phase = lower_group(w, group, arch, f"g{g}")
        per_trip = {}
        for c in group_computes(w, group, arch, float(phase.trips * phase.work_items)):
            rates = arch.unit(c.unit).ops_per_cycle
            per_trip[c.unit] = sum(v / rates[k] for k, v in c.ops.items()) / c.occupancy
        bw = dram.read_bw_bytes_per_cycle
        moved = sum(
            t.bytes for t in (*phase.body.loads, *phase.body.stores) if dram.name in (t.src, t.dst)
        )
        if bw:
            per_trip[dram.name] = moved / float(bw)
        if per_trip:
            bound = max(per_trip, key=per_trip.__getitem__)
            detail = ", ".join(f"{k} {v:,.0f}" for k, v in per_trip.items())
            out.append(
                f"  bound: {bound} ({phase.trips:,} trips x {phase.work_items} items; "
                f"cycles per trip: {detail})"
            )
    return out


def differences(a: Mapping, b: Mapping) -> str:
    """How mapping ``a`` differs from ``b``, as ``key: b -> a`` items (first few)."""
    fa, fb = _flat(a), _flat(b)
    keys = [k for k in dict.fromkeys([*fb, *fa]) if fa.get(k) != fb.get(k)]
    if not keys:
        return "same"
    items = [f"{k}: {fb.get(k, '-')} -> {fa.get(k, '-')}" for k in keys[:6]]
    more = f" (+{len(keys) - 6} more)" if len(keys) > 6 else ""
    return "; ".join(items) + more


def _flat(m: Mapping) -> dict[str, object]:
    out: dict[str, object] = {"groups": " | ".join("+".join(g.einsums) for g in m.groups)}
    for r, n in m.splits.items():
        out[f"split {r}"] = n
    for gi, g in enumerate(m.groups):
        for lm in g.levels:
            for r, f in lm.temporal.items():
                out[f"g{gi}.{lm.level}.{r}"] = f
            for r, f in lm.spatial.items():
                out[f"g{gi}.{lm.level}.{r}@{lm.spatial_axis.get(r, 'x')}"] = f
            out[f"g{gi}.{lm.level}.order"] = ">".join(lm.order) if lm.order else None
        for e, u in g.units.items():
            out[f"g{gi}.{e}"] = u
    return {k: v for k, v in out.items() if v is not None}
