"""The FuseMax paper's 3-pass baselines on a 2D + 1D spatial array: ``unfused`` and ``flat``.

Both are mapping recipes (:mod:`mappings._flat_mapping`, :mod:`mappings._unfused_mapping`:
the mapping, as data, built from
the cascade's rank roles) lowered by the generic lowering (:func:`mappings._lower.lower`), as
the FuseMax artifact lays out its baselines (FPSG-UIUC/micro24-fusemax-artifact @ f543beb,
``src/accel/{unfused,flat}.py``; numbers in ``reference/papers/fusemax/``). Every cost — ops
of every kind (the unit's ``fused_ops`` applied: FLAT's 1D array runs ``exp(x - max)`` as one
op), buffer and DRAM bytes per tensor, the tiles a condition leaves empty — is counted from the
cascade's Einsums by the lowering; nothing here charges a per-element constant.

* ``flat``: the attention core fused per block of query rows whose score-shaped intermediates
  fit in the buffer (FLAT's head / row granularity), or, when not even an array-wide block of
  them fits, the scores kept off chip and the score, softmax and value stages pipelined.
  Knob ``rows``: query rows per block (scores on chip).
* ``unfused``: score, between (softmax) and value kernels one after the other, the tensors
  between them through DRAM. Knob ``softmax="per_einsum"`` instead runs every Einsum as its
  own kernel (every intermediate round-trips through DRAM); a cascade that is not
  attention-like (``softmax``, ``rmsnorm``, ``gemm``...) always takes that form.

Neither baseline skips dead blocks or slices of a sparsity mask (``FusionGroup.skip`` is the
condition only): such work is executed densely (time of the dense work, energy of the useful
ops); tiles a condition (causal, sliding window) leaves empty are skipped.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping as AbcMapping
from typing import TYPE_CHECKING

from archsim.errors import MappingError
from mappings._attn_common import dram_tensor_bytes, passes_for, pos_int, require_kind
from mappings._fit import fit_group, pick_units, unit_mesh
from mappings._flat_mapping import FLAT_MAX_ROWS, Kernels, flat_mapping, kernels
from mappings._gemm import _known
from mappings._lower import issued, lower, unit_ops
from mappings._mapping import Mapping
from mappings._registry import PassInfo, Plan, register_dataflow
from mappings._roles import AttentionRoles, attention_roles, is_contraction
from mappings._unfused_mapping import unfused_mapping

if TYPE_CHECKING:
    from archsim import Architecture, ComputeUnit
    from workloads import Workload

__all__ = ["unfused_plan", "flat_plan", "FLAT_MAX_ROWS"]


def _issued(workload: Workload, names: tuple[str, ...], unit: ComputeUnit) -> dict[str, float]:
    """Counted ops ``unit`` issues for the Einsums ``names`` (its ``fused_ops`` applied)."""
    from mappings._counts import cached_count
    from mappings._tensors import count_ops

    counts = {ec.name: ec for ec in cached_count(workload.cascade).einsums}
    out: dict[str, float] = {}
    for n in names:
        for k, v in issued(count_ops(counts[n]), unit).items():
            out[k] = out.get(k, 0.0) + v
    return out


def _figures(workload: Workload, arch: Architecture, roles: AttentionRoles, k: Kernels) -> dict:
    """What the 1D array spends per score element, and the 2D utilization that allows."""
    from mappings._counts import cached_count

    big, small = pick_units(arch)
    counts = cached_count(workload.cascade)
    elems = max(float(counts.einsum(roles.score).writes_elems.get(roles.score, 0.0)), 1e-30)
    rate = small.ops_per_cycle
    one = _issued(workload, (*k.between, *k.after), small)
    per_elem = unit_ops({kk: v / elems for kk, v in one.items()}, rate)
    sx = unit_mesh(small)[0] * unit_mesh(small)[1]
    soft = sx * sum(v / rate[kk] for kk, v in per_elem.items())
    macs = _issued(workload, (*k.score, *k.value), big).get("mac", 0.0) / elems
    mx, my = unit_mesh(big)
    bound = min(1.0, (macs / (mx * my)) / (soft / sx)) if soft > 0 else 1.0
    return {"softmax_cycles_per_element": soft, "util_2d_bound": bound}


def _plan(
    name: str,
    workload: Workload,
    arch: Architecture,
    roles: AttentionRoles,
    mapping: Mapping,
    chosen: dict[str, object],
    buffer_formula: str,
    reason: str,
) -> Plan:
    """Lower ``mapping`` and describe it (useful ops, kernels, passes, spilled bytes)."""
    from archsim import TileProgram
    from mappings._splits import apply_splits

    mapping = mapping.model_copy(update={"name": name})
    prog = lower(workload, mapping, arch)
    workload = apply_splits(workload, mapping.splits)  # the tiles the mapping runs
    k = kernels(workload, roles)
    big, small = pick_units(arch)
    inter = set(workload.cascade.intermediates)
    dram = arch.levels[0].name
    spill = sum(v for t, v in dram_tensor_bytes(prog, dram).items() if t in inter)
    core = next(g for g in mapping.groups if roles.score in g.einsums)
    buf = _held(workload, core, inter)
    meta = {
        **prog.meta,
        "dataflow": name,
        **chosen,
        **_figures(workload, arch, roles, k),
        "fused_ops": dict(small.fused_ops),
        "roles": roles.describe(),
        "kernels": {
            "score_2d": list(k.score),
            "between_1d": list(k.between),
            "value_2d": list(k.value),
            "after_1d": list(k.after),
            "pre": list(roles.pre),
            "post": list(roles.post),
        },
        "groups": len(mapping.groups),
    }
    prog = TileProgram(name, prog.phases, clock_hz=prog.clock_hz, meta=meta)
    passes, why = passes_for(workload)
    info = PassInfo(
        passes, buf, buffer_formula, spill_bytes=float(spill), reason=f"{why}, {reason}"
    )
    return Plan(
        program=prog,
        mapping=mapping,
        passes=info,
        meta=meta,
        notes=f"{name}: {', '.join(f'{a}={b}' for a, b in chosen.items())}; "
        f"contractions on {big.name}, {'+'.join((*k.between, *k.after)) or 'nothing'} on "
        f"{small.name}; {len(mapping.groups)} group(s)",
    )


def _held(workload: Workload, group: object, inter: set[str]) -> float:
    """Bytes of on-chip intermediates the group holds in its buffer (level 1), B."""
    from mappings._reuse import footprints
    from mappings._tensors import group_tensors

    per = footprints(group, group_tensors(workload, group), workload.sizes).get(1, {})  # type: ignore[arg-type]
    on = set(getattr(group, "on_chip", ()))
    return float(sum(v for t, v in per.items() if t in inter and t in on))


@register_dataflow("flat")
def flat_plan(workload: Workload, arch: Architecture, knobs: AbcMapping[str, object]) -> Plan:
    """FLAT row-granular fusion of the cascade's attention core (recipe:
    :func:`mappings._flat_mapping.flat_mapping`). Knob: ``rows`` (query rows per block,
    scores on chip; default FLAT's granularity rule).

    Raises
    ------
    MappingError
        The cascade is not attention-like (no score contraction whose keys a value
        contraction sums away; see :func:`mappings._roles.attention_roles`), the architecture
        is not a spatial array, or ``rows`` overflow the buffer.
    """
    _known(knobs, {"rows"})
    require_kind(arch, "spatial", "flat", "flash2/flash3 on a GPU; pim_decode on PIM")
    roles = attention_roles(workload.cascade)
    rows = pos_int(knobs, "rows", 1) if "rows" in knobs else None
    mapping, chosen = flat_mapping(workload, arch, roles, rows=rows)
    how = "scores off chip, stages pipelined" if chosen["scores_offchip"] else "rows on chip"
    return _plan(
        "flat",
        workload,
        arch,
        roles,
        mapping,
        chosen,
        "rows x Skv per intermediate = O(rows x S)",
        how,
    )


@register_dataflow("unfused")
def unfused_plan(workload: Workload, arch: Architecture, knobs: AbcMapping[str, object]) -> Plan:
    """Unfused attention: score, between and value kernels, the score matrix through DRAM
    (recipe: :func:`mappings._unfused_mapping.unfused_mapping`).

    Knobs: ``softmax`` ("row": the artifact's three kernels, a few score rows buffered on chip
    in the between kernel; "per_einsum": one kernel per Einsum of the cascade), ``fill``
    (per_einsum only: fraction of the buffer a tile may use). A cascade that is not
    attention-like (no roles) always runs one kernel per Einsum.
    """
    _known(knobs, {"fill", "softmax"})
    require_kind(arch, "spatial", "unfused", "gpu_unfused on a GPU")
    mode = str(knobs.get("softmax", "row"))
    if mode not in ("row", "per_einsum"):
        raise MappingError(
            "unknown softmax kernel", path="knobs.softmax", expected="row|per_einsum", got=mode
        )
    fill = float(knobs.get("fill", 0.5))  # type: ignore[arg-type]  # untyped knob; float() checks
    if mode == "per_einsum":
        return _unfused_per_einsum(workload, arch, fill)
    try:
        roles = attention_roles(workload.cascade)
    except MappingError as why:
        plan = _unfused_per_einsum(workload, arch, fill)
        note = f"not attention-like, one kernel per Einsum: {why}"
        return dataclasses.replace(plan, meta={**plan.meta, "fallback": note})
    mapping = unfused_mapping(workload, arch, roles)
    core = next(g for g in mapping.groups if roles.query in _ranks(workload, g))
    chosen: dict[str, object] = {"softmax": "row", "q_block": _rows(core, roles.query)}
    return _plan(
        "unfused",
        workload,
        arch,
        roles,
        mapping,
        chosen,
        "O(tile): scores through DRAM",
        "three kernels",
    )


def _ranks(workload: Workload, group: object) -> set[str]:
    from mappings._tensors import group_ranks

    return set(group_ranks(workload, group))  # type: ignore[arg-type]


def _rows(group: object, rank: str) -> int:
    """Query rows per DRAM-level block of a row-block group."""
    levels = getattr(group, "levels", ())
    return int(
        __import__("math").prod(
            int(lm.temporal.get(rank, 1)) * int(lm.spatial.get(rank, 1)) for lm in levels[1:]
        )
    )


def _unfused_per_einsum(workload: Workload, arch: Architecture, fill: float) -> Plan:
    big, small = pick_units(arch)
    groups = []
    for e in workload.cascade.einsums:
        unit = big if is_contraction(e) else small
        groups.append(fit_group(workload, arch, e.name, unit, fill=fill))
    mapping = Mapping(groups=tuple(groups), name="unfused")
    prog = lower(workload, mapping, arch)
    n, why = passes_for(workload)
    inter = workload.cascade.intermediates
    spill = sum(v for k, v in dram_tensor_bytes(prog, arch.levels[0].name).items() if k in inter)
    info = PassInfo(
        n,
        0.0,
        "O(tile): intermediates spilled, S^2 DRAM traffic per pass",
        spill_bytes=spill,
        reason=why,
    )
    return Plan(
        program=prog,
        mapping=mapping,
        passes=info,
        notes=f"one kernel per Einsum; matrix unit {big.name}, vector unit {small.name}",
        meta={
            "dataflow": "unfused",
            "softmax": "per_einsum",
            "bytes_by_level": dict(prog.meta["bytes_by_level"]),
            "ops": dict(prog.meta["ops"]),
        },
    )
