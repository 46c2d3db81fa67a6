"""The ``fusion`` mapper: search mappings of a *whole cascade* on a spatial architecture.

On a GPU it searches fused attention kernels (family x tiles x stages) and the unfused
kernels instead (:mod:`mappings._gpu.search`).

The search has two levels.

**Partitions.** A mapping runs its fusion groups one after another, so a partition's cost is
the sum of its groups' costs and the best partition is found by dynamic programming over the
cascade's Einsums in order. Every partial mapping (a mapping of Einsums ``0..j``) that another
one beats on both latency and energy is dropped (Pareto dominance, the pruning of AccelForge's
FFM): exact for any objective that grows with both (latency, energy, EDP). The segments tried
are every single Einsum and every *closed* run of Einsums — one whose intermediates, except
those of its last Einsum, are read by no Einsum outside it — so a segment never leaves an
intermediate half on chip and half in DRAM. (A documented heuristic: an open segment could
still win where an intermediate is worth spilling.)

**Pruning.** Exact: a segment is not searched when a lower bound of its cost
(:func:`mappings._bounds.segment_bound`: its ops' least energy and time, its compulsory DRAM
bytes), added to every partial mapping it would extend, is dominated by a partition already
found (segments are searched cheapest bound first); a loop nest that differs from a valid
one only in which mesh axis a rank uses is not lowered again (the lowering never reads the
axes: the same program); a segment that walks no split rank is searched once for all split
choices. A documented heuristic: the lean retry (below) skips a mesh/unit binding whose
compute floor exceeds :data:`LEAN_SLACK` times the fastest nest it has found in the segment.

**Loop nests of one segment.** For a segment and each choice of

* the inner extent of each split rank it walks (``m -> m1, m0``: the 2D mesh's rows, a half,
  a quarter, and the cascade's own),
* the ranks bound to the main compute unit's mesh axes (ordered pairs of the ranks of the
  segment's largest contraction, batch-like and split-outer ranks excluded),
* the unit binding (everything on the matrix unit, or the Einsums that do not iterate the
  rank on the mesh's x axis on the vector unit, concurrently),
* one rank blocked in the global buffer and its factor (the block of query rows whose state
  stays on chip while key tiles stream past: FuseMax's ``P1``),
* the DRAM loop order of the other ranks (batch-like ranks — in every DRAM tensor of the
  segment and reduced by none of its Einsums — go outermost: their position changes no
  tensor's reuse, a symmetric choice; every order of up to three other loops, beyond that
  each loop innermost with the rest in rank order),

the loop nest follows from rules: ranks that some Einsum of the segment reduces with a
dependence that must finish before a later Einsum uses the reduced value (a *pass rank*:
``m`` of a 3-pass softmax, ``m0`` of a 1-pass one) must be whole below DRAM, so a 3-pass
segment holds a whole row of scores in the buffer; remaining ranks that are not batch-like
or split-outer are walked inside the PEs (features). Tensors read from DRAM, running state and
accumulators over a loop above the PEs live in the global buffer; tile-local intermediates in
the PE registers (the per-row ones spill to the buffer when the registers are too small).
When no nest of a segment fits, a *lean* retry walks only the reduced ranks inside the PEs
(the others loop in DRAM; MLA's 128 query heads), binding by binding, least compute floor
first. Each candidate is checked (capacity, factors, fan-out) and lowered by the generic lowering,
and timed with :func:`archsim.estimate`; the best ones are re-scored with the event engine.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal, TypeVar

from archsim.errors import MappingError
from mappings._fit import pick_units, runs_on, unit_mesh
from mappings._mappers import TIE_BREAK, RankedMapping, objective_value, register_mapper
from mappings._mapping import FusionGroup, LevelMapping, Mapping
from mappings._roles import is_contraction
from mappings._splits import apply_splits
from mappings._tensors import group_ranks

if TYPE_CHECKING:
    from archsim import Architecture, ComputeUnit, Result
    from workloads import Cascade, Einsum, Workload

_T = TypeVar("_T")

__all__ = ["fusion_mapper", "closed_segments", "pass_ranks", "SegmentChoice"]


@dataclass(frozen=True)
class SegmentChoice:
    """One evaluated mapping of one segment: its group, cycles and energy."""

    group: FusionGroup
    cycles: float
    energy_j: float


def closed_segments(cascade: Cascade) -> list[tuple[int, int]]:
    """``(i, j)`` runs of Einsums ``i..j-1`` (j - i >= 2) whose intermediates, except those of
    Einsum ``j-1``, are read by no Einsum outside the run (and are not cascade outputs)."""
    es = cascade.einsums
    readers: dict[str, set[int]] = {}
    for k, e in enumerate(es):
        for ref in e.inputs:
            readers.setdefault(ref.name, set()).add(k)
    out = []
    for i in range(len(es)):
        for j in range(i + 2, len(es) + 1):
            inside = set(range(i, j))
            ok = all(
                es[k].output.name not in cascade.outputs
                and readers.get(es[k].output.name, set()) <= inside
                for k in range(i, j - 1)
            )
            if ok:
                out.append((i, j))
    return out


def pass_ranks(cascade: Cascade, einsums: Sequence[str]) -> set[str]:
    """Ranks a segment must hold whole below DRAM: ``r`` such that an Einsum reads a tensor
    ``T`` over ``r`` together with a value reduced over ``r`` that depends on ``T`` (the
    softmax max/sum over the keys before ``exp``/``div`` use each score)."""
    by = {e.name: e for e in cascade.einsums if e.name in einsums}
    deps: dict[str, set[str]] = {}
    for e in cascade.einsums:
        if e.name not in by:
            continue
        d: set[str] = set()
        for ref in e.inputs:
            if ref.name != e.name:
                d |= {ref.name} | deps.get(ref.name, set())
        deps[e.name] = d
    out: set[str] = set()
    for e in by.values():
        names = [ref.name for ref in e.inputs if ref.name in by and ref.name != e.name]
        for t, u in itertools.permutations(names, 2):
            for r in by[u].reduce_ranks:
                if t in deps.get(u, set()) and r in by[t].ranks:
                    out.add(r)
    return out


@register_mapper("fusion")
def fusion_mapper(
    workload: Workload,
    arch: Architecture,
    *,
    objective: str = "latency",
    top: int = 5,
    seed: int = 0,
    budget: int | None = None,
    progress: bool = False,
    einsum: str | None = None,
    rescore: int = 3,
    stats: dict[str, float] | None = None,
) -> list[RankedMapping]:
    """Search fusion partitions and loop nests of the whole cascade (see module doc).

    ``seed`` and ``budget`` are accepted for the common mapper signature; the search is
    exhaustive over its space and deterministic. ``einsum`` must be None (the whole cascade
    is mapped). Returns up to ``top`` mappings, best first; the best ``rescore`` carry
    event-engine cycles. ``stats``, when given, is filled with ``segments``, ``candidates``
    (loop nests built), ``evaluated`` (valid ones lowered and timed) and ``partitions``.

    Raises
    ------
    MappingError
        A PIM architecture (its kernels are recipes), an Einsum given, or no valid mapping.
    """
    del seed, budget
    from archsim import simulate
    from archsim._estimate import estimate

    if einsum is not None:
        raise MappingError(
            "the fusion mapper maps the whole cascade", path="einsum", expected=None, got=einsum
        )
    if arch.kind == "gpu":  # fused kernel families x tiles x stages, and the unfused kernels
        from mappings._gpu.search import gpu_search

        return gpu_search(
            workload,
            arch,
            objective=objective,
            top=top,
            rescore=rescore,
            progress=progress,
            stats=stats,
        )
    if arch.kind != "spatial":
        raise MappingError(
            "the fusion mapper searches spatial and GPU architectures",
            path="arch",
            expected="a spatial array (fusemax, flat, tpu_like ...) or a GPU (h100 ...)",
            got=f"{arch.name} ({arch.kind}): use its dataflow recipes (pim_decode ...)",
        )
    if objective not in ("latency", "energy", "edp", "pareto"):
        raise MappingError(
            "objective", path="objective", expected="latency, energy, edp or pareto", got=objective
        )
    cas = workload.cascade
    names = [e.name for e in cas.einsums]
    segments = [(i, i + 1) for i in range(len(names))] + closed_segments(cas)
    big, _ = pick_units(arch)
    choices = _split_choices(workload, names, big)
    counts = {"segments": 0.0, "candidates": 0.0, "evaluated": 0.0, "skipped": 0.0}
    by_end: dict[int, list[int]] = {}
    for i, j in segments:
        by_end.setdefault(j, []).append(i)
    done: dict[tuple, list[SegmentChoice]] = {}  # (split ranks the segment walks, i, j)
    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=len(choices) * len(segments), desc="fusion", unit="segment")
    finals = []
    for sp in choices:  # one split choice for the whole cascade
        try:
            w = apply_splits(workload, dict(sp))
        except MappingError:  # a split tile the cascade's other parameters do not allow
            continue
        fronts = _partition_fronts(
            w, arch, names, sp, by_end, done, keep=max(top, 4), dp_keep=max(top, 8),
            counts=counts, bar=bar,
        )  # fmt: skip
        for _, _, parts in fronts:
            groups = tuple(ch.group for ch in parts)
            finals.append(Mapping(groups=groups, splits=dict(sp), name="fusion"))
    if bar is not None:
        bar.close()
    counts["partitions"] = float(len(finals))
    if stats is not None:
        stats.update(counts)
    if not finals:
        raise MappingError(
            "no valid mapping of this cascade",
            path="arch",
            expected="an architecture whose levels hold one tile of every Einsum",
            got=arch.name,
        )
    from mappings._lower import lower

    programs = {}
    scored = []
    for m in finals:
        programs[id(m)] = lower(workload, m, arch, check=False)
        scored.append((m, estimate(programs[id(m)], arch)))
    if objective == "pareto":  # the (latency, energy) front, fastest first
        scored.sort(key=lambda mr: (mr[1].cycles, mr[1].energy_j))
        front: list[tuple[Mapping, Result]] = []
        for m, r in scored:
            if not front or r.energy_j < front[-1][1].energy_j:
                front.append((m, r))
        scored = front
    else:
        scored = _rank_with_ties(scored, objective)
    out = []
    for k, (m, r) in enumerate(scored[:top]):
        sim = int(simulate(programs[id(m)], arch).cycles) if k < rescore else None
        out.append(RankedMapping.scored(m, r, objective, sim))
    return out


def _partition_fronts(
    w: Workload,
    arch: Architecture,
    names: list[str],
    sp: tuple[tuple[str, int], ...],
    by_end: dict[int, list[int]],
    done: dict[tuple, list[SegmentChoice]],
    *,
    keep: int,
    dp_keep: int,
    counts: dict[str, float],
    bar: object | None = None,
) -> list[tuple[float, float, tuple]]:
    """The (cycles, energy) front of whole-cascade partitions for one split choice ``sp``:
    ``fronts[j]`` is the front of mappings of Einsums ``0..j-1`` (module doc).

    A segment ``(i, j)`` is searched only if some partition through it could still reach
    ``fronts[j]``: with ``(c, e)`` the lower bound of :func:`mappings._bounds.segment_bound`,
    it is skipped when every point ``p`` of ``fronts[i]`` has ``p + (c, e)`` dominated
    (<= in both, < in one) by a candidate already found for ``fronts[j]``. Every mapping of
    such a segment is then dominated too, and a dominated candidate changes neither the front
    nor which of its points are kept: the result is the one of searching every segment.
    Segments are searched cheapest bound first (so dominators come early) and combined in
    segment order (so ties resolve as before). Results are cached in ``done`` across split
    choices for segments that walk no split rank."""
    from mappings._bounds import segment_bound

    fronts: list[list[tuple[float, float, tuple]]] = [[(0.0, 0.0, ())]]
    by = {e.name: e for e in w.cascade.einsums}
    split_parts = {s.rank: {s.rank, s.outer, s.inner} for s in w.cascade.splits.values()}
    for j in range(1, len(names) + 1):
        bounds = {i: segment_bound(w, arch, names[i:j]) for i in by_end.get(j, [])}
        lead = {
            i: min(c for c, _, _ in fronts[i]) + (b[0] if b is not None else 0.0)
            for i, b in bounds.items()
        }
        found: dict[int, list[SegmentChoice]] = {}
        cands: list[tuple[float, float, tuple]] = []
        retry: list[int] = []  # segments where no nest fits: the lean retry, once all others ran
        for i in sorted(bounds, key=lambda i: (lead[i], j - i)):
            b = bounds[i]
            if b is not None and all(
                _dominated(c0 + b[0], e0 + b[1], cands) for c0, e0, _ in fronts[i]
            ):
                counts["skipped"] += 1
                if bar is not None:
                    bar.update(1)  # type: ignore[attr-defined]
                continue
            ranks = {r for n in names[i:j] for r in by[n].ranks}
            key = (tuple((r, t) for r, t in sp if split_parts.get(r, {r}) & ranks), i, j)
            if key not in done:
                counts["segments"] += 1
                done[key] = search_segment(w, arch, names[i:j], keep=keep, stats=counts, lean=False)
            if not done[key]:
                retry.append(i)
                continue
            found[i] = done[key]
            cands += [
                (c0 + ch.cycles, e0 + ch.energy_j, ()) for ch in found[i] for c0, e0, _ in fronts[i]
            ]
            if bar is not None:
                bar.update(1)  # type: ignore[attr-defined]
        for i in retry:
            b = bounds[i]
            if b is not None and all(
                _dominated(c0 + b[0], e0 + b[1], cands) for c0, e0, _ in fronts[i]
            ):
                counts["skipped"] += 1
            else:  # no lean binding whose floor puts it LEAN_SLACK x over the fastest found
                fastest = min((c for c, _, _ in cands), default=math.inf)
                limit = LEAN_SLACK * fastest - min(c for c, _, _ in fronts[i])
                got = search_segment(
                    w, arch, names[i:j], keep=keep, stats=counts, floor_limit=limit, lean_only=True
                )
                if got:
                    found[i] = got
                    cands += [
                        (c0 + ch.cycles, e0 + ch.energy_j, ())
                        for ch in got
                        for c0, e0, _ in fronts[i]
                    ]
            if bar is not None:
                bar.update(1)  # type: ignore[attr-defined]
        ordered = [
            (c0 + ch.cycles, e0 + ch.energy_j, (*parts, ch))
            for i in sorted(found)
            for ch in found[i]
            for c0, e0, parts in fronts[i]
        ]
        fronts.append(_pareto(ordered, keep=dp_keep))
    return fronts[-1]


def _dominated(c: float, e: float, pts: list[tuple[float, float, tuple]]) -> bool:
    """Whether some point of ``pts`` is <= ``(c, e)`` in both and < in one."""
    return any(pc <= c and pe <= e and (pc < c or pe < e) for pc, pe, _ in pts)


#: Whole-cascade mappings whose objective is within this fraction of the best remaining one
#: tie, and the next objective (:data:`mappings._mappers.TIE_BREAK`) ranks them: the analytic
#: estimate does not resolve 0.1% (pipeline fill, byte rounding), and a mapping 0.02% faster
#: that moves three times the DRAM bytes is not the better answer.
FUSION_TIE_RTOL = 1e-3


def _rank_with_ties(scored: list, objective: str) -> list:
    """``(mapping, result)`` pairs best first: repeatedly take the entries within
    :data:`FUSION_TIE_RTOL` of the best remaining objective, ordered by the tie-break."""
    nxt = TIE_BREAK.get(objective)
    rest = sorted(scored, key=lambda mr: objective_value(mr[1], objective))
    out: list = []
    while rest:
        edge = objective_value(rest[0][1], objective) * (1 + FUSION_TIE_RTOL)
        tied = [mr for mr in rest if objective_value(mr[1], objective) <= edge]
        rest = [mr for mr in rest if objective_value(mr[1], objective) > edge]
        if nxt:
            tied.sort(key=lambda mr: objective_value(mr[1], nxt))
        out.extend(tied)
    return out


def _pareto(cands: list[tuple[float, float, _T]], keep: int) -> list[tuple[float, float, _T]]:
    """Non-dominated (cycles, energy) entries, fastest first, at most ``keep`` spread over the
    front (always its two ends)."""
    cands.sort(key=lambda c: (c[0], c[1]))
    front: list[tuple[float, float, _T]] = []
    for c in cands:
        if not front or c[1] < front[-1][1]:
            front.append(c)
    if len(front) <= keep:
        return front
    idx = sorted({round(k * (len(front) - 1) / (keep - 1)) for k in range(keep)})
    return [front[k] for k in idx]


def search_segment(
    w: Workload,
    arch: Architecture,
    einsums: Sequence[str],
    *,
    keep: int = 4,
    stats: dict[str, float] | None = None,
    lean: bool = True,
    floor_limit: float = math.inf,
    lean_only: bool = False,
) -> list[SegmentChoice]:
    """The Pareto-best (cycles, energy) mappings of one segment as its own fusion group
    (``w`` carries the split tiles chosen for the whole cascade).

    ``lean``: run the lean retry when no nest fits (else return nothing); ``floor_limit``:
    the lean retry also skips a binding whose compute floor exceeds it (cycles);
    ``lean_only``: go straight to the lean retry (the caller found that no nest fits)."""
    from archsim import TileProgram
    from archsim._estimate import estimate
    from mappings._check import check_mapping
    from mappings._lower import lower_group

    big, small = pick_units(arch)
    found: list[tuple[float, float, FusionGroup]] = []
    seen: set[str] = set()
    shapes: set[str] = set()  # valid loop nests, mesh axes left out

    def evaluate(group: FusionGroup) -> None:
        key = group.model_dump_json()
        if key in seen:
            return
        seen.add(key)
        if stats is not None:
            stats["candidates"] = stats.get("candidates", 0.0) + 1
        shape = _without_axes(group)
        if shape in shapes:  # the same nest on the other mesh axes: the same program
            return
        try:
            check_mapping(w, Mapping(groups=(group,)), arch, partial=True)
        except MappingError:
            return
        shapes.add(shape)
        if stats is not None:
            stats["evaluated"] = stats.get("evaluated", 0.0) + 1
        phase = lower_group(w, group, arch, "+".join(einsums))
        r = estimate(TileProgram("segment", (phase,), clock_hz=arch.clock.core_hz), arch)
        found.append((float(r.cycles), float(r.energy_j), group))

    if not lean_only:
        for group in _groups(w, arch, einsums, big, small):
            evaluate(group)
    if not found and lean:  # the lean retry, binding by binding, least compute floor first
        floors = {
            _binding(g): compute_floor(w, arch, g)
            for g in _groups(w, arch, einsums, big, small, lean=True, firsts=True)
        }
        for k in sorted(floors, key=lambda k: floors[k]):
            fastest = min((c for c, _, _ in found), default=math.inf)
            if floors[k] > min(LEAN_SLACK * fastest, floor_limit):
                if stats is not None:
                    stats["screened"] = stats.get("screened", 0.0) + 1
                continue
            for group in _groups(w, arch, einsums, big, small, lean=True, binding=k):
                evaluate(group)
    return [SegmentChoice(group=g, cycles=c, energy_j=e) for c, e, g in _pareto(found, keep)]


#: The lean retry (module doc) skips a mesh and unit binding whose compute floor
#: (:func:`compute_floor`) exceeds this many times the fastest nest it has found in the
#: segment, or puts the partition (the fastest partial mapping before the segment plus the
#: floor) over this many times the fastest partition found through the segment's last Einsum
#: (lean retries run after every other segment ending there): such a binding is that much
#: slower whatever its blocking and loop order, and could enter a front only by spending less
#: energy. A documented heuristic: on MLA (fusemax, S = 1024 and 4096) it returns the best
#: mapping of the unscreened search with a fifth of the nests lowered.
LEAN_SLACK = 2.0


def _binding(group: FusionGroup) -> tuple:
    """The mesh and unit binding of a nest: its innermost spatial factors, main unit and
    per-Einsum units (what fixes its compute time)."""
    return (
        tuple(sorted(group.levels[-1].spatial.items())),
        group.compute,
        tuple(sorted(group.units.items())),
    )


def compute_floor(w: Workload, arch: Architecture, group: FusionGroup) -> float:
    """Cycles the busiest compute unit of ``group`` needs for the segment's ops at the
    group's occupancy (:func:`mappings._lower.group_computes`): a lower bound of its
    estimate, the same for every blocking and loop order of its binding."""
    from mappings._lower import group_computes

    floor = 0.0
    for comp in group_computes(w, group, arch, 1.0):
        rates = arch.unit(comp.unit).ops_per_cycle
        t = sum(v / float(rates[k]) for k, v in comp.ops.items() if rates.get(k))
        floor = max(floor, t / comp.occupancy)
    return floor


def _without_axes(group: FusionGroup) -> str:
    """``group`` as JSON with every level's ``spatial_axis`` left out.

    The lowering reads a level's spatial factors and the mesh's size, never which axis a rank
    is bound to (only :func:`mappings.check_mapping` does: fan-out per axis), so two valid
    nests that differ only in their axes lower to the same program and cost the same; the
    later one is a tie that :func:`_pareto` drops (it keeps the first of equal points).
    ``tests/mappings/test_fusion_pruning.py`` holds the lowering to that."""
    return group.model_copy(
        update={"levels": tuple(lv.model_copy(update={"spatial_axis": {}}) for lv in group.levels)}
    ).model_dump_json()


def _orders(movable: list[str]) -> Iterator[tuple[str, ...]]:
    """DRAM loop orders tried: every permutation of up to three loops; beyond, each loop
    innermost with the others in rank order (the innermost loop decides which tensors stream
    and which stay; a documented narrowing of the k! orders)."""
    if len(movable) <= 3:
        yield from itertools.permutations(movable)
        return
    for r in movable:
        yield (*(x for x in movable if x != r), r)


def _split_choices(
    workload: Workload, einsums: Sequence[str], big: ComputeUnit
) -> list[tuple[tuple[str, int], ...]]:
    """Every combination of inner extents tried for the split ranks ``einsums`` walk: the
    matrix unit's rows, a half, a quarter (capped at the rank) and the cascade's own."""
    cas = workload.cascade
    ranks = {r for e in cas.einsums if e.name in einsums for r in e.ranks}
    mx, _ = unit_mesh(big)
    per_split = []
    for sp in cas.splits.values():
        if sp.outer not in ranks and sp.inner not in ranks:
            continue
        if not isinstance(sp.tile, str):
            continue
        size = int(workload.sizes.get(sp.rank, 1))
        own = int(workload.sizes.get(sp.inner, 1))
        opts = sorted({min(size, max(1, mx >> k)) for k in range(3)} | {own})
        per_split.append([(sp.rank, o) for o in opts])
    return [tuple(c) for c in itertools.product(*per_split)] if per_split else [()]


def _groups(
    w: Workload,
    arch: Architecture,
    einsums: Sequence[str],
    big: ComputeUnit,
    small: ComputeUnit,
    lean: bool = False,
    binding: tuple | None = None,
    firsts: bool = False,
) -> Iterator[FusionGroup]:
    """Every loop nest of the segment in the searched space (see module doc). ``lean``: only
    the ranks the segment reduces are walked inside the PEs (the others loop in DRAM), the
    retry when no nest with the wider PE tile fits (MLA's 128 query heads). ``binding``: only
    the nests of that binding (:func:`_binding`); ``firsts``: only the first nest of each
    binding (both skip building the others)."""
    cas = w.cascade
    by = {e.name: e for e in cas.einsums}
    tranks = {t: _ranks(cas, t) for t in cas.tensors}
    base = FusionGroup(einsums=tuple(einsums), levels=(LevelMapping(level=arch.levels[0].name),))
    ranks = group_ranks(w, base)
    sizes = {r: int(n) for r, n in ranks.items()}
    produced = {by[n].output.name for n in einsums}
    inputs = [ref.name for n in einsums for ref in by[n].inputs if ref.name not in produced]
    inputs = list(dict.fromkeys(inputs))
    outer_ranks = {sp.outer for sp in cas.splits.values()}
    dram_tensors = [*inputs, *(t for t in produced if _leaves(cas, einsums, t))]
    reduced = {r for n in einsums for r in by[n].reduce_ranks}
    batch = [
        r
        for r in ranks
        if dram_tensors
        and r not in reduced
        and all(r in _ranks(cas, t) for t in dram_tensors)
        and sizes[r] > 1
    ]
    must_whole = pass_ranks(cas, einsums)
    main = max(einsums, key=lambda n: (is_contraction(by[n]), _volume(by[n], sizes)))
    mesh_ranks = [
        r for r in by[main].ranks if r in ranks and r not in batch and r not in outer_ranks
    ]
    mesh_ranks = [r for r in mesh_ranks if sizes[r] > 1] or [r for r in ranks if sizes[r] > 1]
    pairs: list[tuple[str, str | None]] = [
        (x, y) for x, y in itertools.permutations(mesh_ranks, 2)
    ] or [(r, None) for r in mesh_ranks]
    if small is big:
        unit_modes: tuple[str, ...] = ("big",)
    elif len(einsums) == 1:
        unit_modes = ("big", "small")
    else:
        unit_modes = ("big", "split")
    on_chip = tuple(t for t in produced if not _leaves(cas, einsums, t))
    for (x, y), mode in itertools.product(pairs, unit_modes):
        main_unit = small if mode == "small" else big
        mx, my = unit_mesh(main_unit)
        spatial = {x: min(mx, sizes[x])}
        if y is not None:
            spatial[y] = min(my, sizes[y])
        rest = {r: math.ceil(sizes[r] / spatial.get(r, 1)) for r in ranks}
        pe_t = {
            r: n
            for r, n in rest.items()
            if n > 1
            and r not in spatial
            and r not in batch
            and r not in outer_ranks
            and r not in must_whole
            and (not lean or r in reduced)
        }
        dram = {r: n for r, n in rest.items() if n > 1 and r not in pe_t}
        whole = {r: dram.pop(r) for r in list(dram) if r in must_whole}
        units = {}
        if mode != "small":  # what the matrix unit cannot run goes to the vector unit
            units = {n: small.name for n in einsums if not runs_on(w, n, big)}
        if mode == "split":
            more = {n: small.name for n in einsums if x not in by[n].ranks}
            if not set(more) - set(units):
                continue
            units |= more
        if len(units) == len(einsums) and len(einsums) > 1:
            continue  # nothing left on the matrix unit: the "small" binding of singles
        if binding is not None and binding != (
            tuple(sorted(spatial.items())),
            main_unit.name,
            tuple(sorted(units.items())),
        ):
            continue
        blockable = [r for r in dram if r not in batch and r not in outer_ranks]
        blocks: list[tuple[str | None, int]] = [(None, 1)]
        for r in blockable:
            blocks += [(r, f) for f in _factors(dram[r])]
        for brank, bf in blocks:
            top = dict(dram)
            glb_t = dict(whole)
            if brank is not None:
                glb_t[brank] = bf
                top[brank] = math.ceil(dram[brank] / bf)
            movable = [r for r in top if r not in batch and top[r] > 1]
            lead = [r for r in batch if top.get(r, 1) > 1]
            for perm in _orders(movable):
                yield _group(
                    w, cas, by, einsums, arch, main_unit, inputs, produced, on_chip, units,
                    top, (*lead, *perm), glb_t, pe_t, spatial, x, y, set(whole), tranks,
                )  # fmt: skip
                if firsts:
                    break
            if firsts:
                break


def _group(
    w: Workload,
    cas: Cascade,
    by: dict,
    einsums: Sequence[str],
    arch: Architecture,
    big: ComputeUnit,
    inputs: list[str],
    produced: set[str],
    on_chip: tuple[str, ...],
    units: dict[str, str],
    top: dict[str, int],
    order: tuple[str, ...],
    glb_t: dict[str, int],
    pe_t: dict[str, int],
    spatial: dict[str, int],
    x: str,
    y: str | None,
    whole: set[str],
    tranks: dict[str, set[str]],
) -> FusionGroup:
    from mappings._fusemax_mapping import register_level, spill_to_buffer

    glb = next(lv.name for lv in arch.levels[1:] if lv.kind in ("sram", "cache"))
    above = set(top) | set(glb_t)
    # running state and accumulators over a loop above the PEs stay in the buffer
    held = {
        by[n].output.name
        for n in einsums
        if by[n].output.name in produced
        and (
            cas.tensors[by[n].output.name].iterative
            or any(r in above and r not in tranks[by[n].output.name] for r in by[n].ranks)
            # a tensor over a pass rank walked in the buffer is kept whole there (3-pass)
            or any(r in whole and r in tranks[by[n].output.name] for r in glb_t)
        )
    }
    glb_keep = tuple(dict.fromkeys([*inputs, *(t for t in produced if t in held)]))
    rf_keep = tuple(t for t in produced if t not in held)
    axis: dict[str, Literal["x", "y"]] = {x: "x"}
    if y:
        axis[y] = "y"
    rf = register_level(arch, big, glb)
    levels = [LevelMapping(level=arch.levels[0].name, temporal=top, order=order)]
    if rf is not None:
        levels.append(LevelMapping(level=glb, temporal=glb_t, keep=glb_keep))
        levels.append(
            LevelMapping(level=rf, temporal=pe_t, spatial=spatial, spatial_axis=axis, keep=rf_keep)
        )
    else:
        levels.append(
            LevelMapping(
                level=glb,
                temporal={**glb_t, **pe_t},
                spatial=spatial,
                spatial_axis=axis,
                keep=glb_keep + rf_keep,
            )
        )
    group = FusionGroup(
        einsums=tuple(einsums),
        levels=tuple(levels),
        on_chip=on_chip,
        compute=big.name,
        units=units,
    )
    return spill_to_buffer(w, arch, group, {x})


def _leaves(cas: Cascade, einsums: Sequence[str], t: str) -> bool:
    """Whether tensor ``t`` produced in the segment is read outside it (or is an output)."""
    if t in cas.outputs:
        return True
    return any(ref.name == t for e in cas.einsums if e.name not in einsums for ref in e.inputs)


def _ranks(cas: Cascade, t: str) -> set[str]:
    spec = cas.tensors[t]
    out = set(spec.ranks)
    for sp in cas.splits.values():
        if sp.rank in out:
            out |= {sp.outer, sp.inner}
    return out


def _volume(e: Einsum, sizes: dict[str, int]) -> int:
    return math.prod(sizes.get(r, 1) for r in e.ranks)


def _factors(n: int) -> list[int]:
    """Block factors tried for a rank of ``n`` DRAM iterations: powers of two below it and
    ``n`` itself (the whole rank on chip)."""
    out = {n}
    f = 2
    while f < n:
        out.add(f)
        f *= 2
    return sorted(out)
