"""The FuseMax paper's 3-pass baselines on a 2D + 1D spatial array: ``unfused`` and ``flat``.

Both are mapping recipes over the cascade given (its rank and Einsum roles from
:func:`mappings._roles.attention_roles`; work counted by :func:`workloads.count`), laid out
as the FuseMax artifact lays out its baselines (FPSG-UIUC/micro24-fusemax-artifact @ f543beb,
``src/accel/{unfused,flat,stable_softmax}.py``; numbers in ``reference/papers/fusemax/``):

========================  =============================================================
recipe field              value
========================  =============================================================
matrix unit (2D array)    every contraction of the core (``S = Q*K``, ``O = sum P*V``...),
                          one MAC per PE per cycle
vector unit (1D array)    every other Einsum of the core and the epilogue (max, exp, sum,
                          divide, a 1-pass cascade's running state, a sigmoid...), each op
                          at the unit's own rate (FLAT's 1D array: a pipelined
                          ``mac_exponential`` unit, one exp per PE per cycle)
fused ops                 the unit's ``fused_ops`` (the ``flat`` preset's 1D array:
                          ``{sub: exp}``, a subtract feeding its exp pipeline, the artifact's
                          accounting), applied per Einsum to the counted ops; energy is
                          charged on the issued ops only, as the artifact does
pre / post Einsums        projections before/after the core (CCA's, MLA's, linear
                          attention's state path): one generic kernel each
                          (:func:`mappings._fit.fit_group`), before/after the core
========================  =============================================================

With the 3-pass ``mha`` cascade the counted ops are the stable softmax's M max, SN sub+exp,
SD add, A divide per score element, i.e. 4 cycles per element on FLAT's 1D array.

* ``unfused``: three kernels one after the other, each pipelined on its own (latency ~
  max(compute, traffic/BW) per kernel, the artifact's rule): the score contraction(s) on the
  2D array; the Einsums between the score and the value contraction on the 1D array; the
  value contraction on the 2D array (with the core Einsums that depend on it and the
  epilogue on the 1D array). Tensors crossing a kernel boundary go through DRAM (bytes from
  the counts: written once, read once by each later kernel). Inside the middle kernel a
  score row stays in the buffer: :data:`ROW_BUFFER` accesses per score element (the
  artifact's max/exp/sum accounting); the part that does not fit goes to DRAM. Q (or the
  value output) stays on chip in blocks of half the buffer; K/V re-stream once per block.
  Knob ``softmax="per_einsum"`` instead runs every Einsum as its own kernel through the
  generic lowering (every intermediate round-trips through DRAM). A cascade that is not
  attention-like (``softmax``, ``rmsnorm``, ``gemm``...) always takes that lowering.
* ``flat`` (Kao et al., ASPLOS'23): fused per block of query rows, the published granularity
  rule of FLAT's mapping table (``flat_validation.csv``): the whole head when its score block
  fits the buffer, else row blocks of a power of two rows (at most 1024, at least the array
  width); what does not fit spills (the :data:`SCORE_ACCESSES` buffer accesses per score
  element of the spilled part go to DRAM), and when spilling would cost more than the
  :data:`OFFCHIP_PASSES` DRAM passes of keeping the score and its normalised form off chip
  (``flat_validation.csv``: ``QK_loc = A_loc = offchip`` from 256K tokens on), FLAT keeps
  them off chip with 1024-row blocks. With E=64 the 2D array is then at most ``2E/1024 =
  0.125`` busy (the artifact's ``util_2d``). FLAT uses the 1D array of the architecture it
  runs on: on the ``fusemax`` preset exp costs 6 cycles (FuseMax's Taylor exp on MACs),
  making the 3-pass softmax 9 cycles per element; compare FLAT on its own ``flat`` preset.
  A 1-pass cascade's running-state Einsums are counted like any other 1D Einsum, at the
  cascade's own key tile parameter (e.g. ``M0``); their per-row state stays on chip.

Shapes (query rows, keys, features, heads) come from the roles and the cascade's rank sizes.
Conditions (causal, sliding window): both recipes compute only the score elements the
condition keeps (each query row's key range is bounded; the count of kept elements sets the
work, element-granular: a partly masked array tile is not charged as a full one).
Sparsity annotations: neither baseline skips dead blocks or slices; such work is executed
densely (``occupancy = useful / dense``: time of the dense work, energy of the useful ops).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping as AbcMapping
from collections.abc import Sequence
from typing import TYPE_CHECKING, NamedTuple, TypedDict

import numpy as np

from archsim.errors import MappingError
from mappings._attn_common import (
    dram_tensor_bytes,
    glb_level,
    passes_for,
    pos_int,
    rf_level,
)
from mappings._fit import fit_group, pick_units, unit_mesh
from mappings._gemm import _known
from mappings._groups import einsum_phases
from mappings._lower import issued, lower, unit_ops
from mappings._mapping import Mapping
from mappings._registry import PassInfo, Plan, register_dataflow
from mappings._roles import AttentionRoles, attention_roles, is_contraction, key_canon
from mappings._stream import numeric_params

if TYPE_CHECKING:
    from archsim import Architecture, ComputeUnit, Phase, Transfer
    from workloads import CascadeCounts, Workload

__all__ = [
    "unfused_plan",
    "flat_plan",
    "FlatGranularity",
    "flat_granularity",
    "FLAT_MAX_ROWS",
    "ROW_BUFFER",
]

#: Largest row block of FLAT's row granularity in its published mapping table
#: (``flat_validation.csv``, cloud rows: P1 in {256, 512, 1024}); also the P1 used when the
#: scores are kept off chip (256K tokens and longer).
FLAT_MAX_ROWS = 1024
#: Buffer accesses per score element of FLAT's fused row (the artifact's spill accounting
#: charges all of them to DRAM for the spilled part): writes of QK, SN, A and reads
#: M<-QK, SN<-QK, A<-SN, AV<-A.
SCORE_ACCESSES = 7
#: DRAM passes when the score and its normalised form live off chip: the score written,
#: read by the 1D array, the normalised scores written, read by the value contraction.
OFFCHIP_PASSES = 4
#: The unfused middle kernel's accesses per score element (the artifact's row softmax): the
#: score read once from DRAM, a score row kept in the buffer for the max, exp and sum passes
#: (the score and the exponentials written to and re-read from the buffer once each).
ROW_BUFFER: dict[str, int] = {"dram_reads": 1, "buffer_writes": 2, "buffer_reads": 2}


def _ops_of(counts: CascadeCounts, names: Sequence[str]) -> dict[str, float]:
    """Counted ops (``mac`` included) of the Einsums ``names``, by kind."""
    out: dict[str, float] = {}
    for n in names:
        ec = counts.einsum(n)
        for k, v in ec.ops.items():
            if v:
                out[k] = out.get(k, 0.0) + float(v)
        if ec.macs:
            out["mac"] = out.get("mac", 0.0) + float(ec.macs)
    return out


def issued_ops(counts: CascadeCounts, names: Sequence[str], unit: ComputeUnit) -> dict[str, float]:
    """Ops ``unit`` issues for ``names``: the counted ops less those its ``fused_ops`` hide
    (per Einsum, up to one fused op per host op: :func:`mappings._lower.issued`)."""
    out: dict[str, float] = {}
    for n in names:
        for k, v in issued(_ops_of(counts, [n]), unit).items():
            out[k] = out.get(k, 0.0) + v
    return out


class _Att(NamedTuple):
    """An attention-like cascade as the 2D + 1D baselines see it (from its roles)."""

    roles: AttentionRoles
    counts: CascadeCounts  # useful work
    dense: CascadeCounts  # the same without sparsity annotations (what the baselines execute)
    bh: int  # work items: batch ranks x query heads
    sq: int  # query rows per work item
    skv: int  # keys per query row (before conditions)
    e: int  # features per query (key) row, bytes-wise: query operand's non-batch ranks
    f: int  # value features per key row
    by: float  # bytes per score element
    frac: float  # fraction of score elements the conditions keep
    score_k: tuple[str, ...]  # kernel 1 (2D): score contractions
    mid: tuple[str, ...]  # kernel 2 (1D): Einsums between the score and value contraction
    av2d: tuple[str, ...]  # kernel 3 (2D): the value contraction (+ later contractions)
    av1d: tuple[str, ...]  # kernel 3 (1D): core Einsums after it, and the epilogue


def _keys_visited(workload: Workload, att: _Att, rows: int) -> float:
    """Mean fraction of the keys a block of ``rows`` query rows reads: the span of its rows'
    key intervals under the conditions (a causal block reads the keys up to its last row;
    the whole head's block, all of them), 1 without conditions. Not ``frac``: a key read
    for one row of a block is read for the block."""
    from mappings._stream import StreamTiling, stream_work

    every = ("condition", "block", "slice")  # only the spans are read: sparsity is not skipped
    w = stream_work(workload, StreamTiling(rows, 1, frozenset(every)), roles=att.roles)
    if w.key_spans is None or "condition" not in w.skipped:
        return 1.0
    f, g = w.key_spans[:, 0], w.key_spans[:, 1]
    seen = np.where(g >= f, g - f + 1, 0).astype(float)
    return float(seen.mean()) / max(1, w.key_len)


def _closure(start: set[str], edges: AbcMapping[str, set[str]]) -> set[str]:
    seen: set[str] = set()
    todo = list(start)
    while todo:
        for y in edges.get(todo.pop(), ()):
            if y not in seen:
                seen.add(y)
                todo.append(y)
    return seen


def _attention(workload: Workload) -> _Att:
    """Roles, shapes and counts of ``workload``'s cascade (MappingError when not attention)."""
    from workloads import count

    cas = workload.cascade
    r = attention_roles(cas)
    num = numeric_params(dict(workload.params))
    sizes = cas.rank_sizes(num)
    counts = count(cas, num)
    sparse = {k: dataclasses.replace(v, sparsity=None) for k, v in cas.tensors.items()}
    if any(v.sparsity is not None for v in cas.tensors.values()):
        dense = count(dataclasses.replace(cas, tensors=sparse), num)
    else:
        dense = counts
    by_name = {e.name: e for e in cas.einsums}
    score = by_name[r.score]
    canon = key_canon(cas)
    # the key extent one query row meets: the key rank, or only its inner part when the
    # score iterates that alone (chunk-local attention, e.g. linear's intra-chunk scores)
    if r.key in score.ranks or (r.key_outer and r.key_outer in score.ranks):
        skv = sizes[r.key]
    else:
        skv = sizes[str(r.key_inner)]
    sq = sizes[r.query]
    bh = math.prod(sizes[x] for x in r.batch) * math.prod(sizes[x] for x in r.query_heads)
    key_side = set(r.batch) | {r.key} | set(r.key_ranks)

    def row_elems(tensor: str, skip: set[str]) -> int:
        spec = cas.tensors[tensor]
        return math.prod(
            sizes.get(x, 1) for x in spec.ranks if x not in skip and canon.get(x, x) not in skip
        )

    q_side = set(r.batch) | {r.query, canon.get(r.query, r.query)} | set(r.query_heads)
    e_ = row_elems(r.query_operand, q_side | key_side)
    f_ = row_elems(r.value_operand, key_side | set(r.query_heads))
    by = cas.tensors[r.score].dtype_bits / 8.0
    # conditions bound the work; sparsity annotations do not (the baselines skip no block)
    elems = float(dense.einsum(r.score).writes_elems.get(r.score, 0.0))
    frac = min(1.0, elems / float(bh * sq * skv)) if bh * sq * skv else 1.0
    # kernels: contractions on the 2D array, the rest on the 1D array
    users: dict[str, set[str]] = {e.name: set() for e in cas.einsums}
    for e in cas.einsums:
        for ref in e.inputs:
            if ref.name in users and ref.name != e.name:
                users[ref.name].add(e.name)
    after = _closure({r.value_contraction}, users)
    core = [n for n in r.core if n != r.value_contraction]
    score_k = tuple(n for n in core if n not in after and is_contraction(by_name[n]))
    mid = tuple(n for n in core if n not in after and not is_contraction(by_name[n]))
    later = [n for n in (*r.core, *r.epilogue) if n in after]
    av2d = (r.value_contraction, *(n for n in later if is_contraction(by_name[n])))
    av1d = tuple(n for n in later if not is_contraction(by_name[n]))
    return _Att(r, counts, dense, bh, sq, skv, e_, f_, by, frac, score_k, mid, av2d, av1d)


def _compute(att: _Att, unit: ComputeUnit, names: Sequence[str], per: float) -> list:
    """One Compute of the issued ops of ``names`` on ``unit`` per trip (``per`` trips);
    occupancy = useful / dense (sparsity the baselines cannot skip)."""
    from archsim import Compute

    useful = issued_ops(att.counts, names, unit)
    if not useful:
        return []
    rate = unit.ops_per_cycle

    def cycles(ops: AbcMapping[str, float]) -> float:
        return sum(v / rate[k] for k, v in unit_ops(ops, rate).items())

    # busy time of the useful ops over that of the dense ops the baseline executes
    occ = min(1.0, cycles(useful) / max(cycles(issued_ops(att.dense, names, unit)), 1e-30))
    ops = unit_ops({k: v / per for k, v in useful.items()}, rate)
    return [Compute(unit.name, ops, occupancy=occ if occ > 0 else 1.0)]


def _boundary_bytes(att: _Att, made: Sequence[str], readers: Sequence[str]) -> float:
    """Bytes of the tensors Einsums ``made`` write that Einsums ``readers`` read (counted
    without sparsity annotations: the baselines store dead blocks too)."""
    cas_reads = {ref for n in readers for ref in att.dense.einsum(n).reads_elems}
    total = 0.0
    for n in made:
        if n in cas_reads:
            ec = att.dense.einsum(n)
            total += ec.writes_bytes
    return total


def _all_ops(counts: CascadeCounts) -> dict[str, float]:
    """Useful ops of the whole cascade by kind (``mac`` included)."""
    out = {k: float(v) for k, v in counts.ops.items() if v}
    if counts.macs:
        out["mac"] = float(counts.macs)
    return out


class FlatGranularity(TypedDict):
    """FLAT's fusion choice for one head (see :func:`flat_granularity`)."""

    granularity: str  # "head" | "row"
    rows: int  # query rows per block
    buffered: float  # fraction of the score block held on chip
    offchip: bool  # QK and A kept in DRAM


def flat_granularity(
    sq: int, skv: int, by: float, cap: float, other: float, min_rows: int
) -> FlatGranularity:
    """FLAT's fusion granularity, row block and spill for one head.

    Parameters
    ----------
    sq, skv
        Query rows and keys.
    by
        Bytes per value.
    cap
        Global-buffer capacity, bytes.
    other
        Bytes the buffer holds besides the score block (K/V tiles), bytes.
    min_rows
        Smallest row block (the 2D array width).

    Returns
    -------
    FlatGranularity
        ``granularity`` ("head" | "row"), ``rows`` (query rows per block), ``buffered``
        (fraction of the score block held on chip), ``offchip`` (QK and A kept in DRAM).
    """
    row_b = skv * by
    if sq * row_b <= cap:
        rows, gran = sq, "head"
    else:
        fit = int(cap // row_b)
        p2 = 1 << (min(FLAT_MAX_ROWS, fit).bit_length() - 1) if fit >= 1 else 0
        rows, gran = min(max(p2, min_rows), sq), "row"
    buffered = min(1.0, max(0.0, cap - other) / (rows * row_b))
    offchip = SCORE_ACCESSES * (1.0 - buffered) > OFFCHIP_PASSES
    if offchip:
        rows, buffered = min(sq, FLAT_MAX_ROWS), 0.0
    return {"granularity": gran, "rows": rows, "buffered": buffered, "offchip": offchip}


def _tile_grid(att: _Att, rows: int, m0: int, p0: int) -> tuple[int, float]:
    """(tiles of ``p0 x m0`` score elements per block of ``rows`` rows, elements per tile)."""
    tiles = max(1, math.ceil(math.ceil(rows / p0) * math.ceil(att.skv / m0) * att.frac))
    return tiles, rows * att.skv * att.frac / tiles


class _Array(NamedTuple):
    """The 2D + 1D spatial array both baselines run on."""

    big: ComputeUnit  # the 2D (matrix) unit
    small: ComputeUnit  # the 1D (vector) unit
    dram: str  # outermost level
    g: str  # global buffer level
    rf2: str  # level the 2D unit reads from (the buffer when none)
    rf1: str  # level the 1D unit reads from (the buffer when none)
    mx: int  # 2D array mesh, x
    my: int  # 2D array mesh, y
    m0: int  # keys per array tile
    p0: int  # query rows per array tile
    cap: float  # buffer capacity, bytes (inf when unbounded)


def _array(att: _Att, arch: Architecture) -> _Array:
    glb = glb_level(arch)
    big, small = pick_units(arch)
    g = glb.name
    mx, my = unit_mesh(big)
    return _Array(
        big,
        small,
        arch.levels[0].name,
        g,
        rf_level(arch, big, g) or g,
        rf_level(arch, small, g) or g,
        mx,
        my,
        min(mx, att.skv),
        min(my, att.sq),
        float(glb.capacity_bytes or float("inf")),
    )


def _xfer(tensor: str, nbytes: float, src: str | None, dst: str | None) -> list[Transfer]:
    from archsim import Transfer

    if src is None or dst is None or src == dst or nbytes <= 0:
        return []
    return [Transfer(tensor, int(math.ceil(nbytes)), src, dst)]


def _program(
    name: str,
    workload: Workload,
    arch: Architecture,
    att: _Att,
    core: list[Phase],
    meta: dict[str, object],
):  # noqa: ANN202
    """The tile program: pre kernels, the core phases, post kernels; useful ops in meta."""
    from archsim import TileProgram

    r = att.roles
    phases = [
        *einsum_phases(workload, arch, r.pre, prefix=f"{name}:pre"),
        *core,
        *einsum_phases(workload, arch, r.post, prefix=f"{name}:post"),
    ]
    meta = {
        **meta,
        "ops": _all_ops(att.counts),
        "fused_ops": dict(pick_units(arch)[1].fused_ops),
        "roles": r.describe(),
        "kernels": {
            "score_2d": list(att.score_k),
            "between_1d": list(att.mid),
            "value_2d": list(att.av2d),
            "after_1d": list(att.av1d),
            "pre": list(r.pre),
            "post": list(r.post),
        },
    }
    return TileProgram(name, tuple(phases), clock_hz=arch.clock.core_hz, meta=meta), meta


@register_dataflow("flat")
def flat_plan(workload: Workload, arch: Architecture, knobs: AbcMapping[str, object]) -> Plan:
    """FLAT row-granular fusion of the cascade's attention core. Knob: ``rows`` (query rows
    per block; default FLAT's granularity rule, :func:`flat_granularity`).

    Raises
    ------
    MappingError
        The cascade is not attention-like (no score contraction whose keys a value
        contraction sums away; see :func:`mappings._roles.attention_roles`).
    """
    from archsim import Phase, Step

    _known(knobs, {"rows"})
    att = _attention(workload)
    big, small, dram, g, rf2, rf1, mx, my, m0, p0, cap = _array(att, arch)
    by, e_, f_, sq, skv = att.by, att.e, att.f, att.sq, att.skv
    other = 2.0 * m0 * (e_ + f_) * by  # double-buffered K/V tile
    rule = flat_granularity(sq, skv, by, cap, other, p0)
    if "rows" in knobs:
        rows = min(pos_int(knobs, "rows", p0), sq)
        block = rows * skv * by
        if block > cap:
            raise MappingError(
                f"{rows} score rows overflow {g} by {block - cap:,.0f} bytes",
                path="knobs.rows",
                expected=f"<= {int(cap // (skv * by))}",
                got=rows,
            )
        rule = {
            "granularity": "row",
            "rows": rows,
            "offchip": False,
            "buffered": min(1.0, max(0.0, cap - other) / block),
        }
    rows, sp, off = int(rule["rows"]), 1.0 - float(rule["buffered"]), bool(rule["offchip"])
    tiles, n = _tile_grid(att, rows, m0, p0)
    frac = att.frac
    nb = n * by
    blocks = math.ceil(sq / rows)
    trips = tiles * att.bh * blocks
    # Q, K, V stream from DRAM straight to the 2D array and O goes back (FLAT's mapping
    # table keeps them off chip: Q_loc = K_loc = V_loc = AV_loc = offchip); each stage of a
    # tile then uses its own servers (loads write the arrays, stores write the buffer/DRAM)
    loads = [
        *_xfer("Q", rows * e_ * by / tiles, dram, rf2),
        *_xfer("KV", skv * (e_ + f_) * by * _keys_visited(workload, att, rows) / tiles, dram, rf2),
    ]
    stores = []
    if off:  # scores in DRAM; a score row is buffered for the exp/sum passes (a row fits)
        # M reads QK from DRAM and keeps the row; SN re-reads it, A reads SN from the buffer
        stores += (
            _xfer("QK", nb, rf2, dram) + _xfer("A", nb, rf1, dram) + _xfer("QK+SN", 2 * nb, rf1, g)
        )
        loads += (
            _xfer("QK", nb, dram, rf1) + _xfer("QK+SN", 2 * nb, g, rf1) + _xfer("A", nb, dram, rf2)
        )
    else:  # scores on chip; the spilled fraction sp of every access goes to DRAM instead
        stores += (
            _xfer("QK", nb * (1 - sp), rf2, g)
            + _xfer("SN+A", 2 * nb * (1 - sp), rf1, g)
            + _xfer("QK.spill", nb * sp, rf2, dram)
            + _xfer("SN+A.spill", 2 * nb * sp, rf1, dram)
        )
        loads += (
            _xfer("QK+SN", 3 * nb * (1 - sp), g, rf1)
            + _xfer("A", nb * (1 - sp), g, rf2)
            + _xfer("QK+SN.spill", 3 * nb * sp, dram, rf1)
            + _xfer("A.spill", nb * sp, dram, rf2)
        )
    stores += _xfer("O", rows * f_ * by / tiles, rf2, dram)
    body = Step(
        loads=tuple(loads),
        compute=(
            *_compute(att, big, (*att.score_k, *att.av2d), trips),
            *_compute(att, small, (*att.mid, *att.av1d), trips),
        ),
        stores=tuple(stores),
        buffer_bytes=int(nb + m0 * (e_ + f_) * by),
    )
    # the blocks of all heads form one double-buffered stream of tiles (the next tile's loads
    # overlap this tile's compute): latency ~ max(traffic/BW, 2D, 1D), the artifact's rule
    phase = Phase("flat", body=body, trips=trips, work_items=1, slots=1, depth=2, staging_level=g)
    sx = unit_mesh(small)[0] * unit_mesh(small)[1]
    elems = max(att.bh * sq * skv * frac, 1e-30)
    per_elem = unit_ops(
        {k: v / elems for k, v in issued_ops(att.counts, (*att.mid, *att.av1d), small).items()},
        small.ops_per_cycle,
    )
    # cycles one 1D PE spends per score element (4 on FLAT's array for the 3-pass softmax,
    # 9 with a 6-cycle exp)
    soft_cycles = sx * sum(v / small.ops_per_cycle[k] for k, v in per_elem.items())
    macs_elem = _ops_of(att.counts, (*att.score_k, *att.av2d)).get("mac", 0.0) / elems
    bound = min(1.0, (macs_elem / (mx * my)) / (soft_cycles / sx)) if soft_cycles > 0 else 1.0
    passes, why = passes_for(workload)
    prog, meta = _program(
        "flat",
        workload,
        arch,
        att,
        [phase],
        {
            "dataflow": "flat",
            "rows": rows,
            "granularity": rule["granularity"],
            "proportion_buffered": 1.0 - sp,
            "proportion_spilled": sp,
            "scores_offchip": off,
            "kv_resident": rows >= sq,
            "softmax_cycles_per_element": soft_cycles,
            "util_2d_bound": bound,
        },
    )
    spill = (OFFCHIP_PASSES if off else SCORE_ACCESSES * sp) * att.bh * sq * skv * frac * by
    info = PassInfo(
        passes,
        float(rows * skv * by * (0 if off else 1)),
        f"rows*Skv*{by:g}B = O(rows x S)",
        spill_bytes=float(spill),
        reason=f"{why}, over score rows kept on chip",
    )
    return Plan(
        program=prog,
        passes=info,
        meta=meta,
        notes=f"FLAT {rule['granularity']} granularity, rows={rows}, "
        f"spilled {sp:.3f}, scores {'off' if off else 'on'} chip; "
        f"contractions on {big.name}, {', '.join(att.mid + att.av1d) or 'nothing'} on "
        f"{small.name} ({soft_cycles:g} cycles per score element per PE)",
    )


@register_dataflow("unfused")
def unfused_plan(workload: Workload, arch: Architecture, knobs: AbcMapping[str, object]) -> Plan:
    """Unfused attention: score, between and value kernels, the score matrix through DRAM.

    Knobs: ``softmax`` ("row": the artifact's kernels, a score row buffered on chip in the
    middle kernel; "per_einsum": one kernel per Einsum of the cascade through the generic
    lowering), ``fill`` (per_einsum only: fraction of the buffer a tile may use). A cascade
    that is not attention-like (no roles) always runs one kernel per Einsum.
    """
    _known(knobs, {"fill", "softmax"})
    mode = str(knobs.get("softmax", "row"))
    if mode not in ("row", "per_einsum"):
        raise MappingError(
            "unknown softmax kernel", path="knobs.softmax", expected="row|per_einsum", got=mode
        )
    fill = float(knobs.get("fill", 0.5))  # type: ignore[arg-type]  # untyped knob; float() checks
    if mode == "per_einsum":
        return _unfused_per_einsum(workload, arch, fill)
    try:
        att = _attention(workload)
    except MappingError as why:
        plan = _unfused_per_einsum(workload, arch, fill)
        note = f"not attention-like, one kernel per Einsum: {why}"
        return dataclasses.replace(plan, meta={**plan.meta, "fallback": note})
    return _unfused_kernels(workload, arch, att)


def _unfused_kernels(workload: Workload, arch: Architecture, att: _Att) -> Plan:
    from archsim import Phase, Step

    big, small, dram, g, rf2, rf1, _, _, m0, p0, cap = _array(att, arch)
    by, e_, f_, sq, skv, bh, frac = att.by, att.e, att.f, att.sq, att.skv, att.bh, att.frac
    # score / value kernels: a block of query rows (Q, or the value output) stays in half the
    # buffer while K (V) streams once per block (reproduces the artifact mapper's traffic,
    # e.g. 8 K/V passes at 1M tokens with 32 MiB)
    half = cap / 2
    qb = min(sq, max(p0, int(half // (max(e_, f_) * by)) // p0 * p0))
    blocks = math.ceil(sq / qb)
    tiles, n = _tile_grid(att, qb, m0, p0)
    nb = n * by
    trips = tiles * bh * blocks
    later = (*att.av2d, *att.av1d)

    def kernel(name: str, d: int, two: Sequence[str], one: Sequence[str], loads, stores) -> Phase:  # noqa: ANN001
        body = Step(
            loads=tuple(loads),
            compute=(*_compute(att, big, two, trips), *_compute(att, small, one, trips)),
            stores=tuple(stores),
            buffer_bytes=int(nb + (p0 + m0) * d * by),
        )
        return Phase(name, body=body, trips=trips, depth=2, staging_level=g)

    # per tile: the block's K (V) stream, per feature (the keys its rows' conditions reach)
    kv = skv * by * _keys_visited(workload, att, qb) / tiles
    score = att.roles.score
    to_mid = _boundary_bytes(att, att.score_k, att.mid)
    to_av = _boundary_bytes(att, (*att.score_k, *att.mid), later)
    scores_out = _boundary_bytes(att, att.score_k, (*att.mid, *later))
    qk = kernel(
        f"unfused:{score}",
        e_,
        att.score_k,
        (),
        _xfer("Q", qb * e_ * by / tiles, dram, g) + _xfer("K", kv * e_, dram, g),
        _xfer(score, scores_out / trips, rf2, dram),
    )
    phases = [qk]
    rows, sp = 0, 0.0
    if att.mid:
        # up to p0 rows at a time (as many as fit); a score row stays in the buffer between
        # the middle kernel's passes unless even one does not fit (then the buffered
        # accesses of the part that does not fit go to DRAM, as in the artifact)
        rows = max(1, min(p0, int(cap // (skv * by))))
        sp = 1.0 - min(1.0, cap / (rows * skv * by))
        # tiles of p0*m0 score elements (a few rows when rows are long), as on the 2D array
        st = max(1, math.ceil(rows * skv * frac / (p0 * m0)))
        mid_trips = st * bh * math.ceil(sq / rows)
        snb = rows * skv * frac / st * by
        wr, rd = ROW_BUFFER["buffer_writes"] * snb, ROW_BUFFER["buffer_reads"] * snb
        mid_out = _boundary_bytes(att, att.mid, later)
        sm_body = Step(
            loads=tuple(
                _xfer(score, ROW_BUFFER["dram_reads"] * to_mid / mid_trips, dram, rf1)
                + _xfer("row", rd * (1 - sp), g, rf1)
                + _xfer("row.spill", rd * sp, dram, rf1)
            ),
            compute=tuple(_compute(att, small, att.mid, mid_trips)),
            stores=tuple(
                _xfer("row", wr * (1 - sp), rf1, g)
                + _xfer("row.spill", wr * sp, rf1, dram)
                + _xfer("+".join(att.mid), mid_out / mid_trips, rf1, dram)
            ),
            buffer_bytes=int(snb),
        )
        phases.append(
            Phase(
                "unfused:" + "+".join(att.mid),
                body=sm_body,
                trips=mid_trips,
                depth=2,
                staging_level=g,
            )
        )
    av = kernel(
        f"unfused:{att.roles.value_contraction}",
        f_,
        att.av2d,
        att.av1d,
        _xfer("scores", to_av / trips, dram, rf2) + _xfer("V", kv * f_, dram, g),
        _xfer("O", qb * f_ * by / tiles, g, dram),
    )
    phases.append(av)
    passes, why = passes_for(workload)
    prog, meta = _program(
        "unfused",
        workload,
        arch,
        att,
        phases,
        {
            "dataflow": "unfused",
            "softmax": "row",
            "q_block": qb,
            "kv_passes": blocks,
            "softmax_rows": rows,
            "proportion_spilled": sp,
        },
    )
    spill = scores_out + _boundary_bytes(att, att.mid, later) + to_mid + to_av
    info = PassInfo(
        passes,
        float(rows * skv * by),
        "O(tile): scores spilled, S^2 DRAM passes",
        spill_bytes=float(spill),
        reason=f"{why}, three kernels",
    )
    return Plan(
        program=prog,
        passes=info,
        meta=meta,
        notes=f"unfused {'+'.join(att.score_k)} -> {'+'.join(att.mid) or '(none)'} -> "
        f"{'+'.join(later)}; matrix unit {big.name}, vector unit {small.name}",
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
