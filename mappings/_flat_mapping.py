"""FLAT's binding of an attention cascade, written as a Mapping (data), and the row-block nests
it shares with the unfused baseline (:mod:`mappings._unfused_mapping`).

The recipe of the ``flat`` dataflow (the FuseMax paper's 3-pass baseline;
FPSG-UIUC/micro24-fusemax-artifact @ f543beb, ``src/accel/{flat,unfused}.py``), built for
the cascade given from its rank roles and lowered by the generic lowering
(:func:`mappings._lower.lower`) like any user's mapping. Every group below is one
*row-block nest* (:func:`row_block_group`):

==============  ================================================================================
level           loops (outermost first) and what the level holds
==============  ================================================================================
DRAM            batch, heads, other ranks, blocks of ``rows`` query rows, then a split key's
                outer part (the rank running state advances along)
global buffer   key tiles, then the block's query tiles (1D array: the other way round);
                holds what the recipe keeps there
PE registers    features (in time); key tile x query tile in space (2D array: keys on its rows,
                queries on its columns; 1D array: query rows along it, then keys); holds the
                tile's operands
==============  ================================================================================

Contractions run on the matrix (2D) unit, every other Einsum on the vector (1D) unit; tensors
not kept in the buffer stream from DRAM straight to the PE registers (FLAT's mapping table:
``Q_loc = K_loc = V_loc = offchip``); the keys of a block stream once per block.

* ``flat`` (Kao et al., ASPLOS'23), scores on chip: **one** group holds the whole core; the
  score-shaped intermediates (``QK``, ``SN``, ``A`` for the 3-pass softmax; a 1-pass
  cascade's per-tile scores stay in the PE registers, its running state in the buffer) stay
  in the buffer for a block of query rows: the whole head when it fits, else the largest power of
  two rows (at most :data:`FLAT_MAX_ROWS`) that fits (FLAT's row granularity; a block
  narrower than the array leaves part of the 2D array idle, which the 1D array's softmax
  hides while it is the bottleneck). The buffer accesses per score element are those of the
  mapping: each kept intermediate written once and read once.
* ``flat``, scores off chip (FLAT's rule, from its published table: when its smallest block,
  :data:`FLAT_MIN_BLOCK` query tiles of the array, would spill more than
  :data:`FLAT_MAX_SPILLED` of what it keeps in the buffer -- from 256K tokens on for a 3-pass
  softmax of head dim 64 in 32 MiB --, or when no block fits): three groups
  *pipelined* (``FusionGroup.pipelined``): the score contraction writes the scores to DRAM in
  :data:`FLAT_MAX_ROWS`-row blocks, the 1D array reads them back a few rows at a time, keeping
  those rows' scores and exponentials in the buffer for its passes, and writes the normalised
  scores, which the value contraction reads. The stages overlap, so latency is that of the
  busiest resource (FLAT's rule).
* ``unfused``: the same three groups run one after the other (three kernels); the score and
  value kernels keep a block of query (output) rows in half the buffer while the keys stream
  once per block.

Einsums outside the core (projections) run as one group each, before and after
(:func:`mappings._groups.own_group`).
"""

from __future__ import annotations

import math
from collections.abc import Collection, Sequence
from typing import TYPE_CHECKING, Literal, NamedTuple

from archsim.errors import MappingError
from mappings._fit import pick_units, runs_on, unit_mesh
from mappings._fusemax_mapping import register_level, spill_to_buffer
from mappings._groups import own_group
from mappings._mapping import FusionGroup, LevelMapping, Mapping
from mappings._reuse import footprints
from mappings._roles import AttentionRoles, is_contraction
from mappings._splits import apply_splits
from mappings._tensors import group_ranks, group_tensors

if TYPE_CHECKING:
    from archsim import Architecture
    from workloads import Workload

__all__ = [
    "FLAT_MAX_ROWS",
    "FLAT_MAX_SPILLED",
    "FLAT_MIN_BLOCK",
    "Kernels",
    "kernels",
    "row_block_group",
    "flat_mapping",
    "three_kernels",
    "setup",
    "wrap",
]

#: Largest row block of FLAT's row granularity in its published mapping table
#: (``flat_validation.csv``, cloud rows: P1 in {256, 512, 1024}); also the block of the
#: score contraction when the scores are kept off chip.
FLAT_MAX_ROWS = 1024
#: Largest share of a block's scores that FLAT's published mappings spill while still keeping
#: the scores on chip (``flat_validation.csv``, cloud rows: ``proportion_spilled`` 0.502 for
#: BERT/TrXL/T5 at 128K tokens, a 256-row block of 64 MiB of scores in the 32 MiB buffer; at
#: 256K tokens, where such a block would spill three quarters, every model's scores are off
#: chip). With :data:`FLAT_MIN_BLOCK` it is FLAT's off-chip rule (module doc).
FLAT_MAX_SPILLED = 0.502
#: FLAT's smallest row block, in query tiles of the 2D array: its table never blocks fewer rows
#: than the array is wide (cloud P1 >= 256 on the 256-wide array; edge P1 >= 64 on the 32-wide
#: one).
FLAT_MIN_BLOCK = 1

Skip = tuple[Literal["condition", "block", "slice"], ...]


class Kernels(NamedTuple):
    """The core Einsums split as the 3-pass baselines run them (from the dependencies)."""

    score: tuple[str, ...]  # contractions before the value contraction (2D)
    between: tuple[str, ...]  # the rest before it (1D: max, exp, sum, divide, a sigmoid...)
    value: tuple[str, ...]  # the value contraction and the contractions after it (2D)
    after: tuple[str, ...]  # core Einsums after it that are not contractions, the epilogue (1D)


def kernels(workload: Workload, roles: AttentionRoles) -> Kernels:
    """Split the core and epilogue of ``workload``'s cascade into :class:`Kernels`."""
    cas = workload.cascade
    by = {e.name: e for e in cas.einsums}
    users: dict[str, set[str]] = {e.name: set() for e in cas.einsums}
    for e in cas.einsums:
        for ref in e.inputs:
            if ref.name in users and ref.name != e.name:
                users[ref.name].add(e.name)
    after: set[str] = set()
    todo = [roles.value_contraction]
    while todo:
        for y in users.get(todo.pop(), ()):
            if y not in after:
                after.add(y)
                todo.append(y)
    core = [n for n in roles.core if n != roles.value_contraction]
    score = tuple(n for n in core if n not in after and is_contraction(by[n]))
    between = tuple(n for n in core if n not in after and not is_contraction(by[n]))
    later = [n for n in (*roles.core, *roles.epilogue) if n in after]
    value = (roles.value_contraction, *(n for n in later if is_contraction(by[n])))
    rest = tuple(n for n in later if not is_contraction(by[n]))
    return Kernels(score, between, value, rest)


def row_block_group(
    w: Workload,
    arch: Architecture,
    roles: AttentionRoles,
    einsums: Sequence[str],
    *,
    rows: int,
    m0: int,
    p0: int,
    glb: str,
    keep_glb: Collection[str],
    on_chip: Collection[str] = (),
    skip: Skip = ("condition",),
    pipelined: bool = False,
) -> FusionGroup:
    """One row-block nest (see the module doc) of ``einsums``.

    Parameters
    ----------
    w
        The workload with the mapping's splits applied.
    rows
        Query rows per DRAM-level block.
    m0, p0
        Key tile and query tile of the array (elements).
    glb
        The global buffer level.
    keep_glb
        Tensors the buffer holds (the others stream between DRAM and the PE registers).
    on_chip
        Intermediates that never go to DRAM.
    """
    big, small = pick_units(arch)
    by = {e.name: e for e in w.cascade.einsums}
    matrix = any(is_contraction(by[n]) for n in einsums)
    unit = big if matrix else small
    ranks = group_ranks(w, FusionGroup(einsums=tuple(einsums), levels=(LevelMapping(level=glb),)))
    sizes = {r: int(n) for r, n in ranks.items()}
    q = roles.query if roles.query in sizes else None
    key = next((r for r in (roles.key_inner, roles.key) if r and r in sizes), None)
    outer = roles.key_outer if roles.key_outer in sizes else None
    mx, my = unit_mesh(unit)
    spatial: dict[str, int] = {}
    axis: dict[str, Literal["x", "y"]] = {}
    if mx > 1 and my > 1:  # a 2D array: keys on its rows, queries on its columns
        if key is not None:
            spatial[key], axis[key] = min(m0, mx, sizes[key]), "x"
        if q is not None:
            spatial[q], axis[q] = min(p0, my, sizes[q], rows), "y"
    else:  # a 1D array: query rows along it (each lane keeps its rows' state), then keys
        ax: Literal["x", "y"] = "x" if mx > 1 else "y"
        lanes = max(mx, my)
        along = 1
        if q is not None:
            along = min(lanes, sizes[q], rows)
            spatial[q], axis[q] = along, ax
        if key is not None and lanes // along > 1:
            spatial[key], axis[key] = min(lanes // along, sizes[key]), ax
    dram_t: dict[str, int] = {}
    glb_t: dict[str, int] = {}
    rf_t: dict[str, int] = {}
    # features, and any other rank an Einsum of the group sums away (MLA's rope part), run
    # in time inside the PE registers
    features = {*roles.features, *roles.value_features}
    for n in einsums:
        features |= set(by[n].reduce_ranks)
    if q is not None:
        sq = spatial.get(q, 1)
        block = min(rows, sizes[q])
        glb_t[q] = math.ceil(block / sq)
        dram_t[q] = math.ceil(sizes[q] / (glb_t[q] * sq))
    if outer is not None:  # a split key's outer part: running state advances along it
        dram_t[outer] = sizes[outer]
    if key is not None:
        glb_t[key] = math.ceil(sizes[key] / spatial.get(key, 1))
    for r, size in sizes.items():
        if r in (q, key, outer):
            continue
        (rf_t if r in features else dram_t)[r] = size
    lead = [r for r in (*roles.batch, *roles.query_heads) if r in dram_t]
    tail = [r for r in (q, outer) if r is not None]
    dram_order = (*lead, *(r for r in dram_t if r not in lead and r not in tail), *tail)
    # 2D array: key tiles outside the block's query tiles (a key tile streams once per
    # block); 1D array: query rows outside their keys (a row's max and sum stay in its lane)
    glb_order = tuple(r for r in ((key, q) if unit is big else (q, key)) if r is not None)
    used = [t.name for t in group_tensors(w, FusionGroup(einsums=tuple(einsums), levels=()))]
    # every operand and result of a tile passes through the PE registers
    rf_keep = tuple(used)
    rf = register_level(arch, unit, glb)
    units = {n: small.name for n in einsums if not is_contraction(by[n]) or not runs_on(w, n, big)}
    if unit is small:
        units = {}
    levels = [
        LevelMapping(level=arch.levels[0].name, temporal=_nz(dram_t), order=dram_order),
    ]
    kept = tuple(t for t in used if t in keep_glb)
    if rf is not None:
        levels.append(LevelMapping(level=glb, temporal=_nz(glb_t), order=glb_order, keep=kept))
        levels.append(
            LevelMapping(
                level=rf, temporal=_nz(rf_t), spatial=spatial, spatial_axis=axis, keep=rf_keep
            )
        )
    else:
        levels.append(
            LevelMapping(
                level=glb,
                temporal=_nz({**glb_t, **rf_t}),
                order=glb_order,
                spatial=spatial,
                spatial_axis=axis,
                keep=tuple(dict.fromkeys((*kept, *rf_keep))),
            )
        )
    group = FusionGroup(
        einsums=tuple(einsums),
        levels=tuple(levels),
        on_chip=tuple(t for t in on_chip if t in used),
        compute=unit.name,
        units=units,
        skip=skip,
        pipelined=pipelined,
    )
    if rf is not None:
        tile = {r for r in (key, outer) if r}
        group = spill_to_buffer(w, arch, group, tile)
        once = tuple(
            lm.model_copy(update={"keep": tuple(dict.fromkeys(lm.keep))})
            if lm.keep is not None
            else lm
            for lm in group.levels
        )
        group = group.model_copy(update={"levels": once})  # each kept tensor named once
    return group


def buffer_need(w: Workload, group: FusionGroup) -> float:
    """Bytes the group's tiles take in its buffer (level 1), from the generic footprints."""
    per = footprints(group, group_tensors(w, group), w.sizes).get(1, {})
    return float(sum(per.values()))


class Setup(NamedTuple):
    """The array's tiles and buffer for one workload (:func:`setup`)."""

    w: Workload  # the workload with the mapping's splits applied
    splits: dict[str, int]  # the mapping's splits
    glb: str
    cap: float
    m0: int
    p0: int
    k: Kernels


def setup(workload: Workload, arch: Architecture, roles: AttentionRoles) -> Setup:
    """The array's tiles for ``workload``: keys per tile (a split key's inner part) by query
    rows per tile, and the mapping's splits."""
    from mappings._attn_common import glb_level

    g = glb_level(arch)
    big, _ = pick_units(arch)
    mx, my = unit_mesh(big)
    splits: dict[str, int] = {}
    if roles.iterative and roles.key_outer is not None and roles.key_split_param is not None:
        # running state along the key's outer part (a 1-pass softmax): it advances by the
        # array's key tile, as FuseMax's does (a split that is the algorithm's own, such as
        # linear attention's chunk, is kept)
        splits[roles.key] = max(1, min(mx, int(workload.sizes.get(roles.key, 1))))
    w = apply_splits(workload, splits)
    sizes = w.sizes
    m0 = max(1, min(mx, int(sizes.get(roles.key_inner or roles.key, 1))))
    p0 = max(1, min(my, int(sizes.get(roles.query, 1))))
    cap = float(g.capacity_bytes or float("inf"))
    return Setup(w, splits, g.name, cap, m0, p0, kernels(workload, roles))


def wrap(
    workload: Workload, arch: Architecture, roles: AttentionRoles, core: list[FusionGroup]
) -> list[FusionGroup]:
    return [
        *(own_group(workload, arch, n) for n in roles.pre),
        *core,
        *(own_group(workload, arch, n) for n in roles.post),
    ]


def _row_candidates(nq: int, p0: int, top: int) -> list[int]:
    """The whole head, then powers of two from ``top`` down to ``p0`` (at most ``nq``)."""
    out = [nq]
    r = 1 << (max(top, 1).bit_length() - 1)
    while r >= p0:
        if r < nq:
            out.append(r)
        r //= 2
    if p0 < nq and p0 not in out:
        out.append(p0)
    return out


def _held_in_buffer(s: Setup, roles: AttentionRoles, inter: Sequence[str]) -> tuple[str, ...]:
    """The intermediates the buffer holds: all but those of one key tile of a split key (over
    its inner part only: a 1-pass cascade's per-tile scores live in the PE registers while
    the running state advances); a score over the whole key rank (3-pass) is held for the
    block's rows until its reduction has seen every key."""
    inner = roles.key_inner
    out = []
    for t in inter:
        ranks = set(s.w.cascade.tensors[t].ranks)
        if inner is not None and inner in ranks and roles.key not in ranks:
            continue
        out.append(t)
    return tuple(out)


def flat_mapping(
    workload: Workload, arch: Architecture, roles: AttentionRoles, *, rows: int | None = None
) -> tuple[Mapping, dict[str, object]]:
    """FLAT's mapping of ``workload``'s cascade (see module doc) and what it chose.

    ``rows`` fixes the query rows per block (scores on chip); default: FLAT's granularity
    rule. Returns the mapping and ``{"rows", "granularity", "scores_offchip"}``.

    Raises
    ------
    MappingError
        ``rows`` whose scores overflow the buffer (path ``knobs.rows``).
    """
    s = setup(workload, arch, roles)
    core = (*roles.core, *roles.epilogue)
    inter = _score_intermediates_of(s, core)
    q_in = roles.query_operand
    nq = int(s.w.sizes[roles.query])

    def fused(r: int) -> FusionGroup:
        return row_block_group(
            s.w,
            arch,
            roles,
            core,
            rows=r,
            m0=s.m0,
            p0=s.p0,
            glb=s.glb,
            keep_glb=(*_held_in_buffer(s, roles, inter), q_in, *_outputs(s.w, core)),
            on_chip=inter,
        )

    if rows is not None:
        r = min(rows, nq)
        g = fused(r)
        need = buffer_need(s.w, g)
        if need > s.cap:
            raise MappingError(
                f"{r} query rows of scores overflow {s.glb} by {need - s.cap:,.0f} bytes",
                path="knobs.rows",
                expected=f"fewer rows (the buffer holds {s.cap:,.0f} B)",
                got=rows,
            )
        chosen: dict[str, object] = {
            "rows": r,
            "granularity": "head" if r >= nq else "row",
            "scores_offchip": False,
        }
        return Mapping(groups=tuple(wrap(workload, arch, roles, [g])), splits=s.splits), chosen
    groups = three_kernels(s, arch, roles, rows=min(nq, FLAT_MAX_ROWS), pipelined=True)
    off = Mapping(groups=tuple(wrap(workload, arch, roles, groups)), splits=s.splits)
    off_chosen = {"rows": min(nq, FLAT_MAX_ROWS), "granularity": "row", "scores_offchip": True}
    smallest = min(nq, FLAT_MIN_BLOCK * s.p0)
    if buffer_need(s.w, fused(smallest)) * (1.0 - FLAT_MAX_SPILLED) > s.cap:
        return off, off_chosen  # FLAT's smallest block would spill too much: off chip
    # the largest block that fits whole (FLAT spills a part of a block that does not; the
    # mapping keeps whole tiles, so a block that fits stands in for it)
    for r in _row_candidates(nq, 1, FLAT_MAX_ROWS):
        g = fused(r)
        if buffer_need(s.w, g) <= s.cap:
            on = Mapping(groups=tuple(wrap(workload, arch, roles, [g])), splits=s.splits)
            return on, {
                "rows": r,
                "granularity": "head" if r >= nq else "row",
                "scores_offchip": False,
            }
    return off, off_chosen


def _outputs(w: Workload, einsums: Sequence[str]) -> tuple[str, ...]:
    """Outputs of ``einsums`` that leave them (read later or a cascade output)."""
    by = {e.name: e for e in w.cascade.einsums}
    produced = [by[n].output.name for n in einsums]
    outside = {
        ref.name for e in w.cascade.einsums if e.name not in einsums for ref in e.inputs
    } | set(w.cascade.outputs)
    return tuple(t for t in produced if t in outside)


def three_kernels(
    s: Setup,
    arch: Architecture,
    roles: AttentionRoles,
    *,
    rows: int | None,
    pipelined: bool,
) -> list[FusionGroup]:
    """Score, between and value groups; the tensors between them go through DRAM.

    ``rows``: query rows per block of the score and value groups (None: as many as fit in
    half the buffer, the other half holding the next block). The between group takes as many
    rows (up to the array's query tile) as fit in the buffer with their scores.
    """
    k = s.k
    nq = int(s.w.sizes[roles.query])
    state_between = _score_intermediates_of(s, k.between)
    state_value = _score_intermediates_of(s, (*k.value, *k.after))

    def block(names: Sequence[str], r: int, keep: Collection[str], on: Collection[str], pipe: bool):  # noqa: ANN202
        return row_block_group(
            s.w,
            arch,
            roles,
            names,
            rows=r,
            m0=s.m0,
            p0=s.p0,
            glb=s.glb,
            keep_glb=keep,
            on_chip=on,
            pipelined=pipe,
        )

    def fit(
        names: Sequence[str],
        keep: Collection[str],
        on: Collection[str],
        top: int,
        frac: float,
        pipe: bool,
    ):  # noqa: ANN202, E501
        # the most rows (up to ``top``, powers of two below it) whose tiles fit ``frac`` of it
        r = min(nq, top)
        while True:
            g = block(names, r, keep, on, pipe)
            if buffer_need(s.w, g) <= s.cap * frac:
                return g
            if r == 1:
                raise MappingError(
                    f"not one query row of {'+'.join(names)} fits {s.glb}",
                    path=f"arch.levels.{s.glb}.capacity_bytes",
                    expected=f">= {buffer_need(s.w, g) / frac:,.0f} B",
                    got=s.cap,
                )
            r = 1 << ((r - 1).bit_length() - 1)

    def blocked(names: Sequence[str], on: Collection[str], pipe: bool) -> FusionGroup:
        # a block of query (output) rows stays in half the buffer while the keys stream past
        # (outputs summed over the keys accumulate there; the others stream out to DRAM)
        keys = roles.key_ranks
        acc = [t for t in _outputs(s.w, names) if not keys & set(s.w.cascade.tensors[t].ranks)]
        keep = (roles.query_operand, *acc, *on)
        if rows is not None:
            return block(names, rows, keep, on, pipe)
        lo, hi = 1, math.ceil(nq / s.p0)  # whole query tiles per block: the most that fit
        if buffer_need(s.w, block(names, s.p0, keep, on, pipe)) > s.cap / 2:
            return fit(names, keep, on, s.p0, 0.5, pipe)
        while lo < hi:
            mid = (lo + hi + 1) // 2
            if buffer_need(s.w, block(names, min(nq, mid * s.p0), keep, on, pipe)) <= s.cap / 2:
                lo = mid
            else:
                hi = mid - 1
        return block(names, min(nq, lo * s.p0), keep, on, pipe)

    groups: list[FusionGroup] = []
    if k.score:
        groups.append(blocked(k.score, (), False))
    if k.between:
        # a few rows' scores (and their exponentials) stay in the buffer for the passes
        keep = (*_inputs_of(s, k.between), *state_between)
        # (a split key's tile at a time when the running state advances along it: then rows
        # are not bounded by a whole score row, only by the buffer)
        split = roles.key_outer in s.w.sizes and bool(roles.iterative)
        top, frac = (nq, 0.5) if split else (s.p0, 1.0)
        groups.append(fit(k.between, keep, state_between, top, frac, pipelined and bool(groups)))
    groups.append(blocked((*k.value, *k.after), state_value, pipelined and bool(groups)))
    return groups


def _inputs_of(s: Setup, names: Sequence[str]) -> tuple[str, ...]:
    by = {e.name: e for e in s.w.cascade.einsums}
    produced = {by[n].output.name for n in names}
    return tuple(
        dict.fromkeys(ref.name for n in names for ref in by[n].inputs if ref.name not in produced)
    )


def _score_intermediates_of(s: Setup, names: Sequence[str]) -> tuple[str, ...]:
    """Outputs of ``names`` read only by ``names`` (they stay on chip within the group)."""
    by = {e.name: e for e in s.w.cascade.einsums}
    produced = [by[n].output.name for n in names]
    outside = {
        ref.name for e in s.w.cascade.einsums if e.name not in names for ref in e.inputs
    } | set(s.w.cascade.outputs)
    return tuple(t for t in produced if t not in outside)


def _nz(d: dict[str, int]) -> dict[str, int]:
    return {k: int(v) for k, v in d.items() if int(v) > 1}
