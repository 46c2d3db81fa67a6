"""PIM recipes as whole-cascade :class:`~mappings.Mapping` data, and their lowering.

``pim_decode`` and ``pim_gemv`` build a mapping for the cascade given (from its rank roles,
:mod:`mappings._pim_shapes`), which ``--save-mapping`` writes and :func:`pim_mapping_plan`
runs back with the same cycles. A decode mapping has, in cascade order:

* one group per **key-side contraction** (``QK`` and ``SLNV``; MLA's ``QKC``, ``QKR``,
  ``SLNV``) on the PIM unit, over the DRAM level alone: the stream ranks (batch x K/V heads)
  ``spatial`` over the channels and ``temporal`` for the streams that share a channel (the
  fewest per channel a product of rank factors reaches; the lowering places streams
  round-robin, ``ceil(streams / channels)`` on the busiest, which a loop nest over several
  stream ranks cannot always say: B=3 x Hkv=10 on 8 channels is 4 round-robin, 5 as a
  product of factors -- the Mapping has no fused spatial rank); the key rank ``spatial``
  over the channel's units (banks, bank groups or the buffer die: the placement) times the
  channels one stream is split over, ``temporal`` for the keys each unit holds (with fewer
  keys than units, the key-side tensor's feature ranks take the rest: the units share a
  key's bytes); features and query heads ``temporal`` (query heads innermost: the commands
  a unit issues on its open row). ``splits`` makes the key tile the whole context (PIM does
  not tile keys: all scores leave the units before the softmax).
* one group per run of the **other Einsums** (softmax, running state, epilogue, MLA's
  projections): on the architecture's non-PIM unit where it declares one (a buffer-die or
  host unit), else ``compute`` unset. Their operands cross the channel interface (the
  scores out, the probabilities back); intermediates read only inside a run stay on chip.

A GEMV mapping is one group: the weight's row ranks ``spatial`` over the channels, its
reduced ranks over the channel's units, the input vectors ``temporal`` outermost (PIM has
no reuse: each vector re-streams the weights).

``Mapping.name`` is ``RECIPE:PLACEMENT:power_limited|unlimited``: the placement (which DRAM
unit runs the contractions) and the command gap are the data the lowering needs beyond the
loop nest.

The lowering is the one entry :func:`mappings._lower.lower`: on a ``kind: pim`` architecture
it counts each PIM group's in-bank streams from the loop nest (:mod:`mappings._pim_lower`:
bytes per unit, columns, rows, commands per column from the loop order, units per channel
from the spatial factors) and times them with the architecture's DRAM command stream (row
switches, refresh, command gap). An edited mapping runs with the cost of its own layout;
:func:`pim_mapping_plan` adds the recipe's closed-form reference (``pim_model_cycles``) only
where the mapping is the recipe's own.
"""

from __future__ import annotations

import itertools
import math
from typing import TYPE_CHECKING, Literal

from archsim.errors import MappingError
from mappings._mapping import FusionGroup, LevelMapping, Mapping
from mappings._pim import PLACEMENTS, PimTiming, decode_layout, pim_timing
from mappings._pim_shapes import decode_shape, gemv_shape
from mappings._roles import attention_roles
from mappings._splits import apply_splits
from mappings._tensors import group_ranks

if TYPE_CHECKING:
    from archsim import Architecture
    from mappings._registry import Plan
    from workloads import Workload

__all__ = ["decode_mapping", "gemv_mapping", "pim_mapping_plan", "stream_factors"]

RECIPES: tuple[str, ...] = ("pim_decode", "pim_gemv")


def _name(recipe: str, t: PimTiming) -> str:
    return f"{recipe}:{t.placement}:{'power_limited' if t.power_limited else 'unlimited'}"


def _units(arch: Architecture) -> tuple[str, str | None]:
    """(PIM unit, the non-PIM unit for the other Einsums or None)."""
    pim = next((u for u in arch.compute if u.level == arch.dram.name), arch.compute[0])
    host = next((u for u in arch.compute if u is not pim and not u.per_pim_unit), None)
    return pim.name, None if host is None else host.name


def stream_factors(ranks: dict[str, int], fanout: int) -> tuple[dict[str, int], dict[str, int]]:
    """(spatial, temporal) factors of ``ranks`` (rank -> size) spread over ``fanout``
    instances: the fewest iterations on the busiest instance (the product of
    ``ceil(size / spatial)``), then the most instances used; spatial product <= ``fanout``."""
    names = list(ranks)
    options = [
        sorted({min(fanout, math.ceil(ranks[r] / k)) for k in range(1, ranks[r] + 1)})
        if ranks[r] <= 4 * fanout
        else list(range(1, fanout + 1))
        for r in names
    ]
    best: tuple[int, int, tuple[int, ...]] | None = None
    for combo in itertools.product(*options):
        used = math.prod(combo)
        if used > fanout:
            continue
        iters = math.prod(math.ceil(ranks[r] / s) for r, s in zip(names, combo, strict=True))
        key = (iters, -used, combo)
        if best is None or key[:2] < best[:2]:
            best = key
    combo = best[2] if best is not None else tuple(1 for _ in names)
    spatial = {r: s for r, s in zip(names, combo, strict=True) if s > 1}
    temporal = {r: math.ceil(ranks[r] / s) for r, s in zip(names, combo, strict=True)}
    return spatial, {r: f for r, f in temporal.items() if f > 1}


def _runs(order: list[str], pim: set[str]) -> list[tuple[bool, tuple[str, ...]]]:
    """Einsums in cascade order as groups: each PIM Einsum alone, runs of the others."""
    out: list[tuple[bool, tuple[str, ...]]] = []
    for on_pim, names in itertools.groupby(order, key=lambda n: n in pim):
        names_t = tuple(names)
        out += [(True, (n,)) for n in names_t] if on_pim else [(False, names_t)]
    return out


def _host_group(w: Workload, arch: Architecture, names: tuple[str, ...]) -> FusionGroup:
    level = arch.levels[0].name
    probe = FusionGroup(einsums=names, levels=(LevelMapping(level=level),))
    temporal = {r: n for r, n in group_ranks(w, probe).items() if n > 1}
    return FusionGroup(
        einsums=names,
        levels=(LevelMapping(level=level, temporal=temporal),),
        compute=_units(arch)[1],
    )


def decode_mapping(workload: Workload, arch: Architecture, t: PimTiming) -> Mapping:
    """The ``pim_decode`` mapping of ``workload``'s cascade on ``arch`` with timing ``t``
    (see the module doc).

    Raises
    ------
    MappingError
        The refusals of :func:`mappings._pim_shapes.decode_shape` (a prefill, several passes
        over the keys, no key-side tensor).
    """
    shape = decode_shape(workload)
    cas = workload.cascade
    roles = attention_roles(cas)
    splits = {roles.key: shape.key_len} if roles.key_split_param is not None else {}
    w = apply_splits(workload, splits)
    sizes = w.sizes
    split, _ = decode_layout(t, shape.streams, kv_split=True)
    streams = {r: int(sizes[r]) for r in roles.batch}
    s_temporal: dict[str, int] = {}
    if split > 1:  # fewer streams than channels: every stream has channels of its own
        s_spatial = {r: n for r, n in streams.items() if n > 1}
    else:
        s_spatial, s_temporal = stream_factors(streams, t.channels)
    per_channel = t.units_per_pc * t.pseudo_channels
    pim_unit, _ = _units(arch)
    keys = {roles.key, roles.key_outer, roles.key_inner, *roles.batch}
    streamed = list(dict.fromkeys(n for n, _, _ in shape.streamed))
    # the host issues MAC commands only for live keys: what a condition or the score's
    # sparsity annotation (whole blocks, single-key slices) leaves out is skipped
    sparsity = cas.tensors[roles.score].sparsity
    skip: tuple[Literal["condition", "block", "slice"], ...] = ("condition",)
    if sparsity is not None and sparsity.kind in ("block", "slice"):
        skip = ("condition", sparsity.kind)
    level = arch.levels[0].name
    groups: list[FusionGroup] = []
    for on_pim, names in _runs([e.name for e in cas.einsums], set(streamed)):
        if not on_pim:
            groups.append(_host_group(w, arch, names))
            continue
        probe = FusionGroup(einsums=names, levels=(LevelMapping(level=level),))
        ranks = group_ranks(w, probe)
        key = next(r for r in (roles.key_inner, roles.key) if r is not None and r in ranks)
        spatial = {r: f for r, f in s_spatial.items() if r in ranks}
        spatial[key] = min(split * per_channel, int(ranks[key]))
        # fewer keys than units: the keys' features spread over the rest (bytes evenly)
        spare = split * per_channel // spatial[key]
        for tensor in (x for n, x, _ in shape.streamed if n in names):
            for r in cas.tensors[tensor].ranks:
                if spare > 1 and r in ranks and r not in spatial and r not in keys:
                    spatial[r] = min(spare, int(ranks[r]))
                    spare //= spatial[r]
        temporal = {r: f for r, n in ranks.items() if (f := math.ceil(n / spatial.get(r, 1))) > 1}
        temporal.update({r: f for r, f in s_temporal.items() if r in ranks})
        heads = [r for r in (*roles.query_heads, roles.query) if r in temporal]
        lead = [r for r in (*roles.batch, roles.key_outer, key) if r in temporal]
        order = (*lead, *(r for r in temporal if r not in lead and r not in heads), *heads)
        lm = LevelMapping(
            level=level,
            temporal=temporal,
            order=order,
            spatial={r: f for r, f in spatial.items() if f > 1},
            keep=tuple(dict.fromkeys(x for n, x, _ in shape.streamed if n in names)),
        )
        groups.append(FusionGroup(einsums=names, levels=(lm,), compute=pim_unit, skip=skip))
    return Mapping(groups=tuple(groups), splits=splits, name=_name("pim_decode", t))


def gemv_mapping(workload: Workload, arch: Architecture, t: PimTiming) -> Mapping:
    """The ``pim_gemv`` mapping of ``workload``'s single contraction (see the module doc).

    Raises
    ------
    MappingError
        The refusals of :func:`mappings._pim_shapes.gemv_shape`.
    """
    g = gemv_shape(workload)
    e = next(x for x in workload.cascade.einsums if x.name == g.einsum)
    sizes = workload.sizes
    w_ref = next(r for r in e.inputs if r.name == g.weight)
    x_ref = next(r for r in e.inputs if r.name != g.weight)
    out = list(e.output.ranks)
    rows = {r: int(sizes[r]) for r in out if r in w_ref.ranks}
    cols = {r: int(sizes[r]) for r in e.reduce_ranks}
    vecs = {r: int(sizes[r]) for r in out if r in x_ref.ranks and r not in w_ref.ranks}
    r_sp, r_t = stream_factors(rows, t.channels)
    c_sp, c_t = stream_factors(cols, t.units_per_pc * t.pseudo_channels)
    temporal = {**{r: n for r, n in vecs.items() if n > 1}, **r_t, **c_t}
    lm = LevelMapping(
        level=arch.levels[0].name,
        temporal=temporal,
        order=tuple(temporal),
        spatial={**r_sp, **c_sp},
        keep=(g.weight,),
    )
    group = FusionGroup(einsums=(e.name,), levels=(lm,), compute=_units(arch)[0])
    return Mapping(groups=(group,), name=_name("pim_gemv", t))


def _first_difference(given: object, canon: object, path: str) -> tuple[str, object, object]:
    """(path, recipe's value, given value) of the first place two YAML trees differ."""
    if isinstance(given, dict) and isinstance(canon, dict):
        for k in list(canon) + [k for k in given if k not in canon]:
            if given.get(k) != canon.get(k):
                return _first_difference(given.get(k), canon.get(k), f"{path}.{k}")
    if isinstance(given, list) and isinstance(canon, list) and len(given) == len(canon):
        for i, (a, b) in enumerate(zip(given, canon, strict=True)):
            if a != b:
                return _first_difference(a, b, f"{path}[{i}]")
    return path, canon, given


def parse_name(name: str) -> tuple[str, str, bool]:
    parts = name.split(":")
    if (
        len(parts) != 3
        or parts[0] not in RECIPES
        or parts[1] not in PLACEMENTS
        or parts[2] not in ("power_limited", "unlimited")
    ):
        raise MappingError(
            "a PIM mapping names its recipe, placement and command gap",
            path="mapping.name",
            expected=f"RECIPE:PLACEMENT:power_limited|unlimited with RECIPE in {list(RECIPES)}, "
            f"PLACEMENT in {list(PLACEMENTS)} (as pim_decode/pim_gemv --save-mapping write)",
            got=name,
        )
    return parts[0], parts[1], parts[2] == "power_limited"


def pim_mapping_plan(
    workload: Workload,
    mapping: Mapping,
    arch: Architecture,
    *,
    power_limited: bool | None = None,
) -> Plan:
    """Run a PIM ``mapping`` (as :func:`decode_mapping` / :func:`gemv_mapping` build it, or
    edited) on ``arch`` through the lowering (:func:`mappings._pim_lower.lower_pim`: in-bank
    streams counted from its loop nest). ``power_limited`` (the recipe's knob) must agree with
    the name's. Where ``mapping`` is the recipe's own layout for the cascade, ``plan.meta``
    also carries the closed-form DRAM-timing reference (``pim_model_cycles`` ...).

    Raises
    ------
    MappingError
        Not a PIM architecture; a name that is not ``RECIPE:PLACEMENT:GAP``; the recipe's
        refusals of the cascade (a prefill for ``pim_decode``); the lowering's (more units
        than the placement has, no input the units can hold).
    """
    from mappings._pim import _require_pim, decode_plan, gemv_plan

    recipe, placement, limited = parse_name(mapping.name)
    _require_pim(arch, recipe)
    if power_limited is not None and bool(power_limited) != limited:
        raise MappingError(
            "the mapping's command gap differs from the knob",
            path="knobs.power_limited",
            expected=limited,
            got=power_limited,
        )
    t = pim_timing(arch, placement, limited)
    build = decode_mapping if recipe == "pim_decode" else gemv_mapping
    canon = build(workload, arch, t) == mapping  # the recipe's own layout: its reference applies
    if recipe == "pim_gemv":
        return gemv_plan(workload, arch, t, mapping, reference=canon)
    return decode_plan(workload, arch, t, mapping, reference=canon)
