"""Lowering: (workload, mapping, architecture) -> the engine's tile program.

:func:`lower` is the one entry for every architecture class: a PIM mapping goes to the
in-bank lowering (:mod:`mappings._pim_lower`), a GPU mapping to its kernel's lowering
(:func:`mappings._gpu._mapping.gpu_mapping_plan`), a systolic GEMM mapping (``gemm-*``, as
the ``gemm`` dataflow writes it) to SCALE-Sim's folds (:func:`mappings._gemm.
gemm_mapping_plan`); what follows is the spatial array's loop nest.

One :class:`archsim.Phase` per fusion group (a ``pipelined`` group shares the phase of the
group before it: :func:`pipeline_chains`). Its trips are the iterations of the group's
outermost (DRAM-level) temporal loops; its work items are the DRAM-level spatial fan-out
(over instances of the next level), run ``slots`` at a time. Each trip loads
its tiles, computes, and stores; the bytes of every boundary come from the reuse analysis of
:mod:`mappings._reuse` and are spread evenly over the trips (rounded up to whole bytes, so a
lowered program never moves less than the analysis says).

NOTE: spreading a boundary's bytes evenly over trips is exact for the totals (up to the
rounding) and for steady-state bandwidth; it smooths the burst where a stationary tensor is
re-fetched only every k-th trip, which the event engine would otherwise see as a stall.

Compute-side accesses (buffer-level accesses) are counted per Einsum by
:func:`mappings._reuse.group_moves`: each Einsum reads its operands from the innermost level
of the group that keeps them and writes its output there, with the loop order's reuse (a
stationary operand once per tile, a streamed one per use). An access to a level other than
a register file (the global buffer; DRAM for an operand no on-chip level keeps) is emitted
as a transfer between that level and the register level of the Einsum's compute unit
(``ComputeUnit.level``) -- the path the operand takes into the PEs --, so it is charged the
level's read (write) energy per byte, the registers' write (read) energy and any network's,
and it holds the level's port and the network for its bytes (time where they bound). The
bytes are what the level reads (a multicast network delivers one read to every PE that uses
it), spread over the trips like every boundary's. Accesses to a register file (the unit's
own, or the other array's: FuseMax's 1D array reading the 2D array's registers) are not
emitted: no engine action reads a level without writing another, and a transfer into the
reading unit's registers would hold their write port, which a preset sizes for results, not
operands. Their energy -- read (written) bytes x the register file's own read (write) energy
per byte, :func:`archsim.energy.register_file_energy_j` -- is carried beside the program in
``meta["register_file_energy_j"]`` (``{"RF2D.read": J, "RF2D.write": J}``, the engine's
breakdown keys), for the result to add to its dynamic energy; it takes no time. All
accesses are reported per level in ``TileProgram.meta["buffer_accesses"]`` (``{"level":
{"read": B, "write": B, "not_charged": B}}``) and ``meta["compute_side_bytes"]`` (read plus
write).
An array that a mapping only partly fills (spatial factors below its mesh) takes as long
as a full one: the real op counts are emitted with ``Compute.occupancy`` = the used fraction,
so time is ``ops / (rate x occupancy)`` while energy is charged on the real ops only; the
real op counts are also kept in ``meta["ops"]``.
"""

from __future__ import annotations

import math
from collections.abc import Collection
from collections.abc import Mapping as AbcMapping
from typing import TYPE_CHECKING

from archsim.errors import MappingError
from mappings._check import check_mapping, compute_unit, fanout
from mappings._counts import cached_count, dense_cascade
from mappings._mapping import FusionGroup, Mapping
from mappings._reuse import group_moves
from mappings._tensors import count_ops, group_ops, group_tensors

if TYPE_CHECKING:
    from archsim import Architecture, Phase, TileProgram
    from archsim.spec import ComputeUnit
    from mappings._registry import Plan
    from mappings._roles import AttentionRoles
    from workloads import Cascade, Workload

__all__ = [
    "lower",
    "lower_group",
    "class_plan",
    "refuse_class_lowering",
    "group_trips",
    "pipeline_chains",
    "stored_fractions",
    "scaled_moves",
    "fill_live_fraction",
    "live_tile_fraction",
    "roles_of",
    "group_computes",
    "issued",
    "spatial_fraction",
    "staged_bytes",
]


def spatial_fraction(
    arch: Architecture,
    group: FusionGroup,
    unit: ComputeUnit | None = None,
    ranks: Collection[str] | None = None,
) -> float:
    """Fraction of a compute unit's PEs the group's innermost spatial factors use.

    ``unit`` defaults to the group's main unit (the one its innermost spatial factors fan out
    over); ``ranks``, when given, are the ranks an Einsum iterates: only the spatial factors
    over them spread its work (a row operation on a 2D array uses one row of PEs).
    """
    i = len(group.levels) - 1
    if unit is None:
        fx, fy = fanout(arch, group, i)
        lanes = fx * fy
    else:
        mesh = getattr(unit, "mesh", None)
        lanes = int(mesh[0]) * int(mesh[1]) if mesh is not None else int(unit.instances)
    factors = group.levels[i].spatial
    if ranks is not None:
        factors = {r: f for r, f in factors.items() if r in set(ranks)}
    used = math.prod(int(f) for f in factors.values())
    return min(1.0, used / float(lanes)) if lanes > 0 else 1.0


def group_computes(workload: Workload, group: FusionGroup, arch: Architecture, per: float) -> list:
    """One :class:`archsim.Compute` per compute unit the group's Einsums run on (they run
    concurrently on every tile), each with its Einsums' ops divided by ``per``.

    Work is counted from the Einsums (:func:`group_work`): the ops a unit runs are the counted
    ops (less those of skipped tiles); its busy time is, per Einsum, the time of the tiles it
    executes (dense) over the fraction of the unit's PEs the Einsum's spatial ranks occupy.
    The ratio of the two is the unit's occupancy."""
    from archsim import Compute

    main = compute_unit(arch, group)
    by_unit: dict[str, list[str]] = {}
    for e in group.einsums:
        by_unit.setdefault(group.unit_of(e) or main.name, []).append(e)
    ranks_of = {e.name: set(e.ranks) for e in workload.cascade.einsums}
    for ranks in ranks_of.values():  # a parent rank is walked by its parts
        for sp in workload.cascade.splits.values():
            if sp.rank in ranks:
                ranks |= {sp.outer, sp.inner}
    run, execd = group_work(workload, group)
    out = []
    for name, einsums in by_unit.items():
        unit = arch.unit(name)
        rates = unit.ops_per_cycle
        ops: dict[str, float] = {}
        t_run = t_busy = 0.0
        for e in einsums:
            o = unit_ops(issued(run.get(e, {}), unit), rates)
            x = unit_ops(issued(execd.get(e, {}), unit), rates)
            frac = spatial_fraction(arch, group, None if unit is main else unit, ranks_of[e])
            t_run += sum(v / float(rates[k]) for k, v in o.items() if rates.get(k))
            t_busy += sum(v / float(rates[k]) for k, v in x.items() if rates.get(k)) / frac
            for k, v in o.items():
                ops[k] = ops.get(k, 0.0) + v
        if not ops:
            continue
        occ = min(1.0, t_run / t_busy) if t_busy > 0 and t_run > 0 else 1.0
        out.append(Compute(unit=unit.name, ops={k: v / per for k, v in ops.items()}, occupancy=occ))
    return out


def group_work(
    workload: Workload, group: FusionGroup
) -> tuple[dict[str, dict[str, float]], dict[str, dict[str, float]]]:
    """(ops run, ops executed) per Einsum of ``group``, op kind -> count.

    Ops run are ``workloads.count`` of each Einsum. When the group holds Einsums of an
    attention core (the score, or a later core Einsum whose operands the condition thins),
    the key tiles it walks are those of its innermost tile (query rank x key rank) that its
    conditions and masks leave live, as far as ``group.skip`` lets it skip
    (:func:`mappings._stream.stream_work` finds them): an Einsum over the key ranks executes
    its dense work on every live tile (a partly masked tile costs a whole one) and runs no op
    on a skipped one (a dead tile leaves the running state unchanged).
    """
    by = {e.name: e for e in workload.cascade.einsums}
    counts = {ec.name: ec for ec in cached_count(workload.cascade).einsums}
    run = {n: count_ops(counts[n]) for n in group.einsums if n in counts}
    live = _live_fraction(workload, group)
    if live is None:
        return run, run
    fraction, key_ranks = live
    from mappings._stream import numeric_params

    cas = dense_cascade(workload.cascade)
    dense_counts = cached_count(cas, numeric_params(workload.params))
    dense = {ec.name: count_ops(ec) for ec in dense_counts.einsums}
    execd: dict[str, dict[str, float]] = {}
    for n, ops in run.items():
        if not set(by[n].ranks) & key_ranks:
            execd[n] = ops
            continue
        ex = {k: v * fraction for k, v in dense.get(n, ops).items()}
        execd[n] = ex
        run[n] = {k: min(v, ex.get(k, v)) for k, v in ops.items()}
    return run, execd


def _live_fraction(workload: Workload, group: FusionGroup) -> tuple[float, set[str]] | None:
    """(live key tiles / all key tiles, the key's ranks) for a group holding Einsums of an
    attention core; None for any other group."""
    from mappings._counts import memo

    roles = roles_of(workload)
    if roles is None or not set(roles.core) & set(group.einsums):
        return None
    if not memo(workload.cascade, "masked_core", lambda: _masked(workload.cascade, roles)):
        return 1.0, set(roles.key_ranks)  # no condition or mask: every tile is live
    inner = len(group.levels) - 1
    qt = group.tile(roles.query, inner)
    kt = math.prod(group.tile(r, inner) for r in roles.key_ranks)
    key = (int(qt), int(kt), frozenset(group.skip))
    return live_tile_fraction(workload, key, roles), set(roles.key_ranks)


def _unmasked_cascade(cas: Cascade) -> Cascade:
    """``cas`` without its sparsity annotations (conditions kept), one object per cascade."""
    import dataclasses

    from mappings._counts import memo

    def strip() -> Cascade:
        tensors = {k: dataclasses.replace(v, sparsity=None) for k, v in cas.tensors.items()}
        return dataclasses.replace(cas, tensors=type(cas.tensors)(tensors))  # type: ignore[call-arg]

    return memo(cas, "unmasked", strip)


class _Unmasked:
    """A workload seen without its sparsity annotations (conditions kept): the tiles a group
    that skips no mask block executes (:func:`_live_fraction`)."""

    def __init__(self, workload: Workload) -> None:
        self.name = workload.name
        self.cascade = _unmasked_cascade(workload.cascade)
        self.params = workload.params
        self.sizes = workload.sizes


def stored_fractions(workload: Workload, mapping: Mapping) -> dict[str, float]:
    """Tensor -> fraction of its elements that exist, for the tensors an Einsum writes under
    a condition (causal, a window: its own or one its inputs carry) in a group that skips the
    tiles the condition leaves empty: the elements it never computes are never stored, so
    every move of the tensor, in that group and in the groups that read it, carries only the
    kept ones (counted from the Einsum, sparsity annotations aside: the stored tiles of a mask
    are whole)."""
    from mappings._counts import cached_count

    by = {e.name: e for e in workload.cascade.einsums}
    out: dict[str, float] = {}
    counts = None
    for group in mapping.groups:
        if "condition" not in group.skip:
            continue
        for n in group.einsums:
            e = by.get(n)
            if e is None:
                continue
            if counts is None:
                counts = cached_count(_unmasked_cascade(workload.cascade))
            spec = workload.cascade.tensors[e.output.name]
            dense = float(math.prod(int(workload.sizes.get(r, 1)) for r in spec.ranks))
            kept = float(counts.einsum(n).writes_elems.get(e.output.name, dense))
            if dense > 0:
                out[e.output.name] = min(1.0, kept / dense)
    return out


def access_ends(arch: Architecture, group: FusionGroup, mv: object) -> tuple[str, str] | None:
    """(src, dst) level names of the transfer that charges a compute-side access ``mv`` (a
    :class:`mappings._reuse.Move` with one end the compute unit): between the level that
    holds the tensor and the register level of the unit running the access's Einsum; None
    when the level is a register file (the unit's own, or another array's), the unit names
    no register level, or the access is not counted per Einsum."""
    from mappings._reuse import Move

    assert isinstance(mv, Move)
    if mv.einsum is None:
        return None
    held = mv.src if mv.dst is None else mv.dst
    if held is None:
        return None
    level = group.levels[held].level
    if arch.level(level).kind == "regfile":
        return None  # register to PE: no engine action moves it (reported, not charged)
    name = group.unit_of(mv.einsum) or compute_unit(arch, group).name
    reg = arch.unit(name).level
    if reg is None or reg == level:
        return None
    return (reg, level) if mv.upward else (level, reg)


def scaled_moves(
    workload: Workload, group: FusionGroup, tensors: list, stored: AbcMapping[str, float]
) -> list:
    """:func:`mappings._reuse.group_moves` with what the group never touches taken out.

    * A tensor of which only a fraction exists (:func:`stored_fractions`) moves that fraction.
    * A compute-side access (counted per Einsum) of an Einsum over the key ranks of an
      attention core happens on the key tiles the group executes (:func:`group_work`'s live
      fraction: a partly masked tile is accessed whole, a skipped one not at all); and no
      Einsum reads (writes) an operand more often than it has iteration points
      (``workloads.count``'s ``points``: one element per point at most). The loop-nest count
      is dense over the Einsum's rank space; the bound is what keeps it honest where a
      condition couples ranks and the window rule of :mod:`mappings._reuse` does not apply
      (a convolution ``O[y] = I[u] * W[r] if u - y == r`` walks its input by ``y`` and ``r``
      through the window rule, but a loop over ``u`` outside the taps' own loop still
      re-reads ``W`` per ``(y, u)`` pair, most of which the condition rules out).
    * In a group holding an attention core whose condition leaves tiles empty and that skips
      them, a fill (or write-back) that belongs to a (query extent x key extent) pair with no
      live element does not happen: K and V stream only the key tiles a query block reaches,
      the running state is read and written only for the key tiles that update it. The
      extents of a fill are the tensor's tile at the child level, widened by the loops above
      it that do not refill it (:func:`fill_live_fraction`).
    """
    import dataclasses

    by = {e.name: e for e in workload.cascade.einsums}
    live = None
    out = []
    for mv in group_moves(group, tensors):
        f = stored.get(mv.tensor, 1.0)
        if mv.einsum is not None:  # a compute-side access: the tiles its Einsum executes
            if live is None:
                live = _live_fraction(workload, group) or (1.0, set())
            if set(by[mv.einsum].ranks) & live[1]:
                f = live[0]  # whole tiles: a partly masked tile is read and written whole
            cap = _points(workload, mv.einsum) * workload.cascade.tensors[mv.tensor].dtype_bits / 8
            src, dst = min(mv.src_bytes * f, cap), min(mv.dst_bytes * f, cap)
            out.append(dataclasses.replace(mv, src_bytes=src, dst_bytes=dst))
            continue
        if f >= 1.0 and mv.src is not None and mv.dst is not None:
            use = next(t for t in tensors if t.name == mv.tensor)
            f = fill_live_fraction(workload, group, use, max(mv.src, mv.dst))
        if f < 1.0:
            mv = dataclasses.replace(mv, src_bytes=mv.src_bytes * f, dst_bytes=mv.dst_bytes * f)
        out.append(mv)
    return out


def _points(workload: Workload, einsum: str) -> float:
    """Iteration points of ``einsum`` present under its conditions and masks (its work
    items, ``workloads.count``); +inf when the count has no entry for it."""
    counts = cached_count(workload.cascade)
    try:
        return float(counts.einsum(einsum).points)
    except (KeyError, StopIteration, ValueError):
        return float("inf")


def fill_live_fraction(workload: Workload, group: FusionGroup, t: object, child: int) -> float:
    """Fraction of the fills of tensor ``t`` into level ``child`` of ``group`` that belong to
    a (query extent, key extent) pair with a live element, when the group holds an attention
    core whose condition (causal, window) or sparsity mask (``block``, ``slice``) it skips; 1
    otherwise. A mask the group does not skip leaves every fill in place.

    One fill spans, per rank, the tensor's tile at ``child`` times the loops above it that
    turn after the tensor's innermost own loop (they do not refill it): for K under a
    DRAM-level loop over query blocks, the whole block of rows by one key tile."""
    from mappings._counts import memo
    from mappings._reuse import TensorUse

    assert isinstance(t, TensorUse)
    if not {"condition", "block", "slice"} & set(group.skip):
        return 1.0
    roles = roles_of(workload)
    if roles is None or not set(roles.core) & set(group.einsums):
        return 1.0
    if not memo(workload.cascade, "masked_core", lambda: _masked(workload.cascade, roles)):
        return 1.0
    loops: list[tuple[str, int]] = []
    for lm in group.levels[:child]:
        loops.extend(
            (r, int(lm.temporal.get(r, 1)))
            for r in lm.loop_order()
            if t.loop_ranks is None or r in t.loop_ranks
        )
    own = set(t.ranks)
    last = max((i for i, (r, f) in enumerate(loops) if f > 1 and r in own), default=-1)

    # a split rank's parts walk their parent where an Einsum names the parent (``K[.., m, e]``
    # read by the split score walks ``m`` by ``m1, m0``)
    parent = {x: sp.rank for sp in workload.cascade.splits.values() for x in (sp.outer, sp.inner)}

    def walked(r: str) -> bool:
        return t.loop_ranks is None or r in t.loop_ranks or parent.get(r) in t.loop_ranks

    def extent(names: Collection[str]) -> int:
        e = 1
        for r in names:
            if not walked(r):
                e *= int(workload.sizes.get(r, 1))  # the fill's Einsums do not walk it: all of it
                continue
            e *= group.tile(r, child)
            for rr, f in loops[last + 1 :]:
                if rr == r:
                    e *= f
        return e

    qt = extent([roles.query])
    parts = [r for r in (roles.key_outer, roles.key_inner) if r]  # a split key: its parts
    kt = extent(parts or [roles.key])
    key = (int(qt), int(kt), frozenset(group.skip))
    return live_tile_fraction(workload, key, roles)


def roles_of(workload: Workload) -> AttentionRoles | None:
    """The cascade's attention roles, or None for a cascade that is not attention-like
    (remembered per cascade)."""
    from mappings._counts import memo
    from mappings._roles import attention_roles

    def roles_or_none() -> AttentionRoles | None:
        try:
            return attention_roles(workload.cascade)
        except MappingError:
            return None

    return memo(workload.cascade, "attention_roles", roles_or_none)


def live_tile_fraction(
    workload: Workload, key: tuple[int, int, frozenset[str]], roles: AttentionRoles
) -> float:
    """Live fraction of the (query tile x key tile) grid ``key = (query tile, key tile,
    skips)`` under the cascade's condition and, where ``skips`` names them (``block``,
    ``slice``), its sparsity masks; a mask not skipped leaves a tile the condition reaches
    live. Remembered per workload."""
    from mappings._counts import memo
    from mappings._stream import StreamTiling, stream_work

    def fraction() -> float:
        qt, kt, skips = key
        w: object = workload if {"block", "slice"} & skips else _Unmasked(workload)
        sw = stream_work(w, StreamTiling(qt, kt, skips), roles=roles)  # type: ignore[arg-type]  # a WorkloadLike
        dense = float(sw.dense_trips * sw.work_items)
        return sw.total_trips / dense if dense else 1.0

    return memo(workload, ("fill_live", key), fraction)


def _masked(cascade: Cascade, roles: AttentionRoles) -> bool:
    """Whether a core Einsum has a condition or a core tensor a sparsity annotation."""
    by = {e.name: e for e in cascade.einsums}
    for name in roles.core:
        e = by[name]
        if e.cond is not None:
            return True
        for t in (e.output.name, *(ref.name for ref in e.inputs)):
            if cascade.tensors[t].sparsity is not None:
                return True
    return False


def issued(ops: AbcMapping[str, float], unit: object) -> dict[str, float]:
    """One Einsum's ops as ``unit`` issues them: its ``fused_ops`` (``sub: exp``) ride in
    their host op's pipeline, up to one per host op, and issue nothing of their own."""
    out = {k: float(v) for k, v in ops.items()}
    for op, host in getattr(unit, "fused_ops", {}).items():
        if out.get(op) and out.get(host):
            out[op] -= min(out[op], out[host])
    return {k: v for k, v in out.items() if v > 0}


_ALIAS = {"sub": "add", "mul": "mac", "recip": "div", "div": "recip", "cmp": "max"}


def unit_kind(kind: str, unit_ops_per_cycle: AbcMapping[str, float]) -> str | None:
    """The unit's op kind that runs workload op ``kind`` (``mac`` -> ``mac_bf16``, ``sub`` ->
    ``add``), or None when the unit has no such kind or alias."""
    have = list(unit_ops_per_cycle)
    if kind in have:
        return kind
    base = kind.split("_")[0]
    if base in have:
        return base
    same = [h for h in have if h.split("_")[0] == base]
    other = [h for h in have if h.split("_")[0] == _ALIAS.get(base, "")]
    found = same or other
    return found[0] if found else None


def unit_ops(ops: AbcMapping[str, float], unit_ops_per_cycle: AbcMapping[str, float]) -> dict:
    """Map workload op kinds onto a unit's (:func:`unit_kind`). A kind the unit lacks runs as
    its ``add`` (else its first kind): the approximation for an op no unit of the
    architecture has (``check_mapping`` refuses binding it to such a unit when another unit
    has it)."""
    out: dict[str, float] = {}
    have = list(unit_ops_per_cycle)
    for k, v in ops.items():
        if v <= 0:
            continue
        key = unit_kind(k, unit_ops_per_cycle)
        if key is None:
            key = ([h for h in have if h.startswith("add")] or have)[0]
        out[key] = out.get(key, 0.0) + float(v)
    return out


def staged_bytes(workload: Workload, group: FusionGroup, tensors: list) -> tuple[int, int]:
    """(bytes per pipeline stage, bytes held across trips) of the staging level's tiles.

    A tensor that moves to or from DRAM and whose tile changes every trip (its ranks include
    the innermost DRAM-level loop that turns) takes one buffer per tile in flight; the others
    are held once: a query block's running state while key tiles stream past it, and the
    on-chip intermediates (``on_chip``), which a tile produces and consumes while it computes
    (the next tile's loads do not need a copy of them).
    """
    from mappings._reuse import footprints

    per = footprints(group, tensors, workload.sizes).get(1, {})
    top = group.levels[0]
    turning = [r for r in top.loop_order() if int(top.temporal.get(r, 1)) > 1]
    inner = turning[-1] if turning else None
    ranks = {t.name: t.ranks for t in tensors if t.in_dram}
    staged = sum(v for k, v in per.items() if inner is not None and inner in ranks.get(k, ()))
    held = sum(per.values()) - staged
    if inner is None:
        staged, held = held, 0.0
    return int(staged), int(held)


def group_trips(group: FusionGroup) -> tuple[int, int]:
    """(trips, work items) of a group: its DRAM-level temporal iterations and spatial fan-out."""
    top = group.levels[0]
    trips = math.prod(int(f) for f in top.temporal.values()) or 1
    items = math.prod(int(f) for f in top.spatial.values()) or 1
    return trips, items


def lower_group(
    workload: Workload,
    group: FusionGroup,
    arch: Architecture,
    name: str,
    *,
    spread: tuple[int, int] | None = None,
    stored: AbcMapping[str, float] | None = None,
) -> Phase:
    """Lower one (already checked) fusion group to a Phase.

    ``spread``: (trips, work items) to spread the group's totals over instead of its own (a
    pipelined group shares its producer's phase, :func:`lower`); ``stored``: the fraction of
    each tensor that exists (:func:`stored_fractions`; default: all of every tensor)."""
    from archsim import Phase, Step, Transfer

    tensors = group_tensors(workload, group)
    trips, items = spread if spread is not None else group_trips(group)
    per = float(trips * items)
    loads: list[Transfer] = []
    stores: list[Transfer] = []
    streams = False  # compute-side operand reads among the loads
    for mv in scaled_moves(workload, group, tensors, stored or {}):
        if mv.dst is None or mv.src is None:
            ends = access_ends(arch, group, mv)
            if ends is None:
                continue
            src, dst = ends
            nbytes = mv.src_bytes
            streams = streams or not mv.upward
        else:
            src, dst = group.levels[mv.src].level, group.levels[mv.dst].level
            nbytes = mv.dst_bytes
        b = int(math.ceil(nbytes / per))
        if b <= 0:
            continue
        t = Transfer(tensor=mv.tensor, bytes=b, src=src, dst=dst)
        (stores if mv.upward else loads).append(t)
    computes = group_computes(workload, group, arch, per)
    staging = group.levels[1].level if len(group.levels) > 1 else None
    buf, fixed = staged_bytes(workload, group, tensors) if staging is not None else (0, 0)
    slots = 1
    if len(group.levels) > 1:
        slots = max(1, min(items, int(arch.level(staging).instances)))
    body = Step(loads=tuple(loads), compute=tuple(computes), stores=tuple(stores), buffer_bytes=buf)
    # double buffering; one more stage when the loads carry compute-side operand reads: they
    # stream into the PEs while the tile computes, which a load stage (transfers, then the
    # largest latency of them, a DRAM fill's) can overlap only with a tile in flight beside
    # the double-buffered fill
    depth = 3 if streams else 2
    if group.depth is not None:
        depth = group.depth
    elif staging is not None and buf > 0:
        cap = arch.level(staging).capacity_bytes
        if cap is not None and fixed + depth * buf > cap:
            depth = 2 if fixed + 2 * buf <= cap else 1  # no room for a second tile: serial
    return Phase(
        name=name,
        body=body,
        trips=trips,
        work_items=items,
        slots=slots,
        depth=depth,
        staging_level=staging,
    )


def pipeline_chains(mapping: Mapping) -> list[list[int]]:
    """Indices of the groups lowered together: a group and the ``pipelined`` groups after it.

    Raises
    ------
    MappingError
        The first group is ``pipelined`` (there is no group before it to overlap with).
    """
    chains: list[list[int]] = []
    for g, group in enumerate(mapping.groups):
        if group.pipelined:
            if not chains:
                raise MappingError(
                    "the first group has no group before it to pipeline with",
                    path="groups[0].pipelined",
                    expected=False,
                    got=True,
                )
            chains[-1].append(g)
        else:
            chains.append([g])
    return chains


def _lower_chain(
    workload: Workload,
    mapping: Mapping,
    chain: list[int],
    arch: Architecture,
    stored: AbcMapping[str, float],
) -> Phase:
    """One Phase for a group and the groups pipelined with it.

    The stages of a producer/consumer pipeline work on successive tiles at once, so the
    phase's step carries every stage's loads, computes and stores, each group's totals spread
    over the trips of the stage with the most (exact for the totals and for the steady-state
    rates; the pipeline's fill and drain, one tile of each stage, are not modelled).
    Stages on the same compute unit share it (their computes run one after the other within
    a step); stages on different units overlap.
    """
    from archsim import Phase, Step

    groups = [mapping.groups[g] for g in chain]
    name = (
        "g"
        + "+".join(str(g) for g in chain)
        + ":"
        + "+".join(e for grp in groups for e in grp.einsums)
    )
    if len(groups) == 1:
        return lower_group(workload, groups[0], arch, name, stored=stored)
    spread = max((group_trips(grp) for grp in groups), key=lambda t: t[0] * t[1])
    parts = [lower_group(workload, grp, arch, name, spread=spread, stored=stored) for grp in groups]
    lead = parts[[group_trips(grp) for grp in groups].index(spread)]
    body = Step(
        loads=tuple(t for p in parts for t in p.body.loads),
        compute=tuple(c for p in parts for c in p.body.compute),
        stores=tuple(t for p in parts for t in p.body.stores),
        buffer_bytes=sum(int(p.body.buffer_bytes) for p in parts),
    )
    return Phase(
        name=name,
        body=body,
        trips=lead.trips,
        work_items=lead.work_items,
        slots=lead.slots,
        depth=min(int(p.depth) for p in parts),
        staging_level=lead.staging_level,
    )


def _count_access(
    arch: Architecture,
    group: FusionGroup,
    mv: object,
    side: dict[str, float],
    accesses: dict[str, dict[str, float]],
    by_level: dict[str, float],
) -> None:
    """Add one compute-side access ``mv`` to the per-level tallies of :func:`lower`: bytes at
    the level that holds the tensor (``side``; ``accesses`` split into read / write and the
    part no transfer charges), and, when a transfer charges it (:func:`access_ends`), at both
    ends of that transfer (``by_level``)."""
    from mappings._reuse import Move

    assert isinstance(mv, Move)
    held = mv.src if mv.dst is None else mv.dst
    if held is None:
        return
    lvl = group.levels[held].level
    nbytes = float(mv.src_bytes)  # what the level reads (writes): one read per multicast
    side[lvl] = side.get(lvl, 0.0) + nbytes
    acc = accesses.setdefault(lvl, {"read": 0.0, "write": 0.0, "not_charged": 0.0})
    acc["write" if mv.upward else "read"] += nbytes
    ends = access_ends(arch, group, mv)
    if ends is None:
        acc["not_charged"] += nbytes
        return
    for end in ends:
        by_level[end] = by_level.get(end, 0.0) + nbytes


def refuse_class_lowering(mapping: Mapping, arch: Architecture) -> None:
    """Refuse a mapping on a GPU that names no GPU kernel.

    On a GPU a mapping lowers as the kernel it names (:func:`lower`): SM slots, L2 reuse
    between concurrent CTAs, launch, instruction path and clock. Lowered as a loop nest over
    the GPU's levels, a renamed ``flash2`` mapping on ``h100`` came out 50x slow with 16x the
    DRAM bytes, with no warning, so a mapping that names no kernel is refused.

    Raises
    ------
    MappingError
        ``arch`` is a GPU and ``mapping.name`` is not a GPU kernel family.
    """
    if arch.kind != "gpu":
        return
    from mappings._gpu._mapping import GPU_MAPPINGS

    if mapping.name in GPU_MAPPINGS:
        return
    raise MappingError(
        "a mapping on a GPU runs as the GPU kernel it names (SM slots, L2 reuse between "
        "CTAs, launch, instruction path, clock); a loop nest over the GPU's levels models "
        "none of these",
        path="mapping.name",
        expected=f"one of {list(GPU_MAPPINGS)} (as --save-mapping writes it)",
        got=mapping.name,
    )


def class_plan(workload: Workload, mapping: Mapping, arch: Architecture) -> Plan | None:
    """The plan of a mapping its architecture class lowers other than as a spatial loop nest
    (GPU kernels, PIM in-bank streams, a ``gemm-*`` systolic GEMM's folds), with what the
    class adds to a result (``finish``); None for a spatial array's loop nest.

    Raises
    ------
    MappingError
        A GPU mapping that names no GPU kernel (:func:`refuse_class_lowering`), or what the
        class's reader refuses.
    """
    refuse_class_lowering(mapping, arch)
    if arch.kind == "gpu":  # kernels: CTAs on SM slots, waves, L2 reuse, launch, clock
        from mappings._gpu._mapping import gpu_mapping_plan

        return gpu_mapping_plan(workload, mapping, arch)
    if arch.kind == "pim":  # in-bank streams: the DRAM command stream of the PIM units
        from mappings._pim_mapping import pim_mapping_plan

        return pim_mapping_plan(workload, mapping, arch)
    from mappings._gemm import gemm_mapping_plan, is_gemm_mapping

    if is_gemm_mapping(mapping):  # a systolic GEMM: SCALE-Sim's folds over the array
        return gemm_mapping_plan(workload, mapping, arch)
    return None


def lower(
    workload: Workload, mapping: Mapping, arch: Architecture, *, check: bool = True
) -> TileProgram:
    """Lower ``mapping`` of ``workload`` on ``arch`` to a tile program.

    The one entry for every architecture class. A spatial array lowers the loop nest as this
    module describes; a PIM stack lowers each group's in-bank streams to the DRAM command
    stream of its PIM units (:func:`mappings._pim_lower.lower_pim`); a GPU lowers the mapping
    as the kernel it names -- its CTAs on SM slots in waves, L2 reuse between them, launch,
    instruction path and clock, with per-trip work counted from the Einsums
    (:func:`mappings._gpu._mapping.gpu_mapping_plan`). What a class adds to an evaluator's
    result (a GPU's board power, the PIM energy) is the plan's ``finish``
    (:func:`mappings.plan_for`), not part of the program.

    Parameters
    ----------
    workload
        The workload (cascade + resolved shapes).
    mapping
        Its mapping; every Einsum must be in one fusion group.
    arch
        The architecture.
    check
        Run :func:`check_mapping` first (default True).

    Returns
    -------
    archsim.TileProgram
        One phase per fusion group, in order; ``meta`` carries the analytic bytes per level
        (``bytes_by_level``: every transfer the program holds, compute-side ones included),
        the compute-side accesses per level (``buffer_accesses``, ``compute_side_bytes``;
        module doc), the register-file access energy no transfer charges
        (``register_file_energy_j``) and real op counts.

    Raises
    ------
    MappingError
        If the mapping is invalid (see :func:`check_mapping`), names no GPU kernel on a GPU
        (:func:`refuse_class_lowering`), or its kernel refuses the cascade.
    """
    from archsim import TileProgram
    from mappings._splits import apply_splits

    if arch.kind == "pim":  # the program alone: no energy finish, no closed-form reference
        from mappings._pim_lower import lower_pim

        return lower_pim(workload, mapping, arch, check=check)
    plan = class_plan(workload, mapping, arch)
    if plan is not None:
        return plan.program
    if check:
        check_mapping(workload, mapping, arch)
    workload = apply_splits(workload, mapping.splits)
    phases = []
    by_level: dict[str, float] = {}
    side: dict[str, float] = {}
    ops_total: dict[str, float] = {}
    stored = stored_fractions(workload, mapping)
    for chain in pipeline_chains(mapping):
        phases.append(_lower_chain(workload, mapping, chain, arch, stored))
    accesses: dict[str, dict[str, float]] = {}
    for group in mapping.groups:
        tensors = group_tensors(workload, group)
        for mv in scaled_moves(workload, group, tensors, stored):
            if mv.src is None or mv.dst is None:
                _count_access(arch, group, mv, side, accesses, by_level)
                continue
            for idx, nbytes in ((mv.src, mv.src_bytes), (mv.dst, mv.dst_bytes)):
                lvl = group.levels[idx].level
                by_level[lvl] = by_level.get(lvl, 0.0) + nbytes
        for k, v in group_ops(workload, group).items():
            ops_total[k] = ops_total.get(k, 0.0) + v
    from archsim.energy import register_file_energy_j

    meta = {
        "bytes_by_level": by_level,
        "compute_side_bytes": side,
        "buffer_accesses": accesses,
        "register_file_energy_j": register_file_energy_j(arch, accesses),
        "ops": ops_total,
        "mapping": mapping.name,
    }
    return TileProgram(
        name=mapping.name or workload.name,
        phases=tuple(phases),
        clock_hz=arch.clock.core_hz,
        meta=meta,
    )
