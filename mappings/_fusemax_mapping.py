"""FuseMax's binding of an attention cascade, written as a :class:`Mapping` (data).

This is the recipe of the ``fusemax`` dataflow (Nayak et al., MICRO'24; its artifact writes
the same dataflow as a TeAAL mapping spec): the whole cascade in one mapping, lowered by the
generic lowering like any user's mapping. For the cascade given, from its rank roles:

* ``splits``: the key rank's inner part is the key tile, ``M0`` = the 2D mesh's rows.
* One fusion group holds the attention core and its epilogue; every intermediate stays on
  chip. Einsums that iterate the key tile run on the 2D array; the running state and the
  epilogue on the 1D array, concurrently.
* Loops, outermost first: DRAM ``batch, heads, query groups, key tiles``; global buffer
  ``query blocks of the group`` (the key tile stays there while they pass it: K/V stream once
  per group); 2D array: ``features`` in time, ``key tile x query block`` in space.
* Global buffer keeps the key/value tiles, the queries and the running state; the PE
  registers keep the per-tile intermediates.
* Einsums outside the core (projections) are one group each (:func:`mappings._fit.fit_group`).
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Literal

from mappings._fit import pick_units, runs_on
from mappings._groups import own_group
from mappings._mapping import FusionGroup, LevelMapping, Mapping
from mappings._roles import AttentionRoles
from mappings._splits import apply_splits
from mappings._tensors import group_ranks

if TYPE_CHECKING:
    from archsim import Architecture
    from workloads import Workload

__all__ = ["fusemax_mapping", "register_level", "spill_to_buffer"]


def register_level(arch: Architecture, unit: object, after: str) -> str | None:
    """The storage level a unit reads its operands from (its ``level``, else the innermost
    level with the unit's mesh), if it lies inside ``after``."""
    names = [lv.name for lv in arch.levels]
    own = getattr(unit, "level", None)
    if own in names and names.index(own) > names.index(after):
        return str(own)
    mesh = getattr(unit, "mesh", None)
    for lv in arch.levels[names.index(after) + 1 :]:
        if mesh is not None and lv.mesh is not None and tuple(lv.mesh) == tuple(mesh):
            return lv.name
    return None


def fusemax_mapping(
    workload: Workload,
    arch: Architecture,
    roles: AttentionRoles,
    *,
    m0: int,
    p0: int,
    p1: int,
    glb: str,
    skips: tuple[Literal["condition", "block", "slice"], ...],
) -> Mapping:
    """The FuseMax mapping of ``workload``'s cascade (see module doc).

    Parameters
    ----------
    m0, p0
        Key tile (2D mesh rows) and query block (2D mesh columns), elements.
    p1
        Query blocks per group (the running state of ``p1 * p0`` rows stays in ``glb``),
        counted across the query heads that share a key/value head.
    glb
        Name of the global buffer level.
    skips
        Dead tiles the controller skips (``FusionGroup.skip``).
    """
    cas = workload.cascade
    big, small = pick_units(arch)
    by = {e.name: e for e in cas.einsums}
    core = (*roles.core, *roles.epilogue)
    splits: dict[str, int] = {}
    if roles.key_outer is not None and roles.key_split_param is not None:
        splits[roles.key] = m0
    w = apply_splits(workload, splits)
    sizes = dict(w.sizes)
    ranks = group_ranks(w, FusionGroup(einsums=core, levels=(LevelMapping(level="DRAM"),)))
    key_in = roles.key_inner if roles.key_inner in ranks else roles.key
    inner_keys = {r for r in (roles.key, roles.key_inner) if r}
    q = roles.query
    nq = sizes[q]
    qb = math.ceil(nq / p0)
    heads = [h for h in roles.query_heads if h in ranks]
    nh = math.prod(sizes[h] for h in heads)
    # the group of p1 query blocks: whole heads' blocks when p1 spans heads, else part of one
    if p1 >= qb and heads:
        glb_q, glb_h = qb, max(1, min(nh, p1 // qb))
    else:
        glb_q, glb_h = min(p1, qb), 1
    spatial = {key_in: min(m0, sizes[key_in]), q: min(p0, nq)}
    rf_t: dict[str, int] = {}
    glb_t: dict[str, int] = {q: glb_q}
    dram_t: dict[str, int] = {}
    if heads:
        h0 = heads[-1]
        glb_t[h0] = min(glb_h, sizes[h0])
    for r in ranks:
        if r in spatial or r in glb_t:
            continue
        if r in roles.features or r in roles.value_features:
            rf_t[r] = sizes[r]
        else:
            dram_t[r] = sizes[r]
    dram_t[q] = math.ceil(qb / glb_q)
    for h in heads:
        if h in glb_t:
            dram_t[h] = math.ceil(sizes[h] / glb_t[h])
    key_loop = roles.key_outer if roles.key_outer in ranks else None
    if key_loop is not None:
        dram_t[key_loop] = sizes[key_loop]
    elif key_in == roles.key:  # an unsplit key: the DRAM loop walks its tiles
        key_loop = roles.key
        dram_t[key_loop] = math.ceil(sizes[key_in] / spatial[key_in])
    lead = [r for r in (*roles.batch, *heads) if r in dram_t]
    rest = [r for r in dram_t if r not in lead and r not in (q, key_loop)]
    order = (*lead, *rest, q, *([key_loop] if key_loop else []))
    produced = {by[n].output.name for n in core}
    read_outside = {ref.name for e in cas.einsums if e.name not in core for ref in e.inputs} | set(
        cas.outputs
    )
    on_chip = tuple(t for t in produced if t not in read_outside)
    # running state and accumulators over the key tiles stay in the buffer across them
    state = set(roles.iterative) | {
        by[n].output.name
        for n in core
        if key_loop in by[n].ranks and key_loop not in cas.tensors[by[n].output.name].ranks
    }
    group_in = {ref.name for n in core for ref in by[n].inputs} - produced
    glb_keep = tuple(t for t in (*group_in, *state) if t in cas.tensors)
    rf_keep = tuple(t for t in produced if t not in state)
    rf = register_level(arch, big, glb)
    levels = [
        LevelMapping(level=arch.levels[0].name, temporal=_nz(dram_t), order=order),
        LevelMapping(level=glb, temporal=_nz(glb_t), keep=glb_keep),
    ]
    spatial_axis: dict[str, Literal["x", "y"]] = {key_in: "x", q: "y"}
    if rf is not None:
        levels.append(
            LevelMapping(
                level=rf,
                temporal=_nz(rf_t),
                spatial=spatial,
                spatial_axis=spatial_axis,
                keep=rf_keep,
            )
        )
    else:
        glb_t.update(rf_t)
        levels[1] = LevelMapping(
            level=glb,
            temporal=_nz(glb_t),
            spatial=spatial,
            spatial_axis=spatial_axis,
            keep=glb_keep + rf_keep,
        )
    # the running state and epilogue on the vector unit, and any Einsum whose ops the
    # matrix unit lacks (a TPU-like MXU has no exp or max)
    units = {
        n: small.name for n in core if not set(by[n].ranks) & inner_keys or not runs_on(w, n, big)
    }
    fused = FusionGroup(
        einsums=core,
        levels=tuple(levels),
        on_chip=on_chip,
        compute=big.name,
        units=units,
        skip=tuple(skips),
    )
    if rf is not None:
        fused = spill_to_buffer(w, arch, fused, inner_keys)
    groups = [own_group(workload, arch, n) for n in roles.pre]
    groups.append(fused)
    groups += [own_group(workload, arch, n) for n in roles.post]
    return Mapping(groups=tuple(groups), splits=splits, name="fusemax")


def spill_to_buffer(
    w: Workload, arch: Architecture, group: FusionGroup, tile_ranks: set[str]
) -> FusionGroup:
    """``group`` (DRAM, buffer, PE registers) with intermediates moved from the registers to
    the buffer while the registers cannot hold them: first the per-row ones (not over any of
    ``tile_ranks``), then all. ``w`` carries the mapping's splits."""
    from mappings._reuse import footprints
    from mappings._tensors import group_tensors

    if len(group.levels) < 3:
        return group
    cap = arch.level(group.levels[2].level).capacity_bytes
    if cap is None:
        return group
    tensors = group_tensors(w, group)
    for stage in ("rows", "all"):
        glb, rf = group.levels[1], group.levels[2]
        per = footprints(group, tensors, w.sizes).get(2, {})
        if sum(per.values()) <= cap:
            return group
        ranks = {t: w.cascade.tensors[t].ranks for t in per}
        move = [
            t
            for t in per
            if t in (rf.keep or ()) and (stage == "all" or not set(ranks[t]) & tile_ranks)
        ]
        levels = (
            group.levels[0],
            glb.model_copy(update={"keep": (*(glb.keep or ()), *move)}),
            rf.model_copy(update={"keep": tuple(t for t in (rf.keep or ()) if t not in move)}),
        )
        group = group.model_copy(update={"levels": levels})
    return group


def _nz(d: dict[str, int]) -> dict[str, int]:
    return {k: int(v) for k, v in d.items() if int(v) > 1}
