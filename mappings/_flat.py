"""The FuseMax paper's 3-pass baselines on a 2D + 1D spatial array: ``unfused`` and ``flat``.

Both follow the FuseMax artifact (FPSG-UIUC/micro24-fusemax-artifact @ f543beb,
``src/accel/{unfused,flat,stable_softmax}.py``; numbers in ``reference/papers/fusemax/``):
QK and AV on the 2D array (one MAC per PE per cycle), the stable softmax (M max, SN sub+exp,
SD add, A divide) on the 1D array at one score element per PE per cycle per Einsum, i.e. 4
cycles per element (exp is the pipelined ``mac_exponential`` unit of FLAT's 1D array).

* ``unfused``: three kernels run one after the other, QK, softmax, AV, each pipelined on its
  own (latency ~ max(compute, traffic/BW) per kernel, the artifact's rule). The score matrix
  goes to DRAM: QK writes it, the softmax reads it once (a score row stays in the buffer for
  the max, exp and sum) and writes A, AV reads A: 4 passes of ``B*H*Sq*Skv`` values. Q (or
  the AV output) stays on chip in blocks of half the buffer; K/V re-stream once per block.
  Knob ``softmax="per_einsum"`` instead runs every Einsum of the workload's cascade as its own
  kernel through the generic lowering (every intermediate round-trips through DRAM).
* ``flat`` (Kao et al., ASPLOS'23): fused per block of query rows, the published granularity
  rule of FLAT's mapping table (``flat_validation.csv``): the whole head when its score block
  fits the buffer, else row blocks of a power of two rows (at most 1024, at least the array
  width); what does not fit spills (the 7 buffer accesses per score element of the spilled
  part go to DRAM), and when spilling would cost more than the 4 DRAM passes of keeping QK and
  A off chip (``flat_validation.csv``: ``QK_loc = A_loc = offchip`` from 256K tokens on), FLAT
  keeps them off chip with 1024-row blocks. With E=64 the 2D array is then at most ``2E/1024 =
  0.125`` busy (the artifact's ``util_2d``). FLAT uses the 1D array of the architecture it runs
  on: on the ``fusemax`` preset exp costs 6 cycles (FuseMax's Taylor exp on MACs), making the
  softmax 9 cycles per element; compare FLAT on its own ``flat`` preset.
"""

from __future__ import annotations

import math
from collections.abc import Mapping as AbcMapping
from typing import TYPE_CHECKING, NamedTuple

from archsim.errors import MappingError
from mappings._attn_common import (
    attention_shape,
    causal_fraction,
    dram_tensor_bytes,
    glb_level,
    passes_for,
    pos_int,
    rf_level,
)
from mappings._fit import fit_group, pick_units, unit_mesh
from mappings._gemm import _known
from mappings._lower import lower, unit_ops
from mappings._mapping import Mapping
from mappings._registry import PassInfo, Plan, register_dataflow

if TYPE_CHECKING:
    from archsim import Architecture, ComputeUnit, Transfer
    from workloads import Workload

__all__ = ["unfused_plan", "flat_plan", "flat_granularity", "FLAT_MAX_ROWS"]

#: Largest row block of FLAT's row granularity in its published mapping table
#: (``flat_validation.csv``, cloud rows: P1 in {256, 512, 1024}); also the P1 used when the
#: scores are kept off chip (256K tokens and longer).
FLAT_MAX_ROWS = 1024
#: Buffer accesses per score element of the 3-pass softmax: writes of QK, SN, A and reads
#: M<-QK, SN<-QK, A<-SN, AV<-A (the artifact's spill accounting charges all to DRAM).
SCORE_ACCESSES = 7
#: DRAM passes when QK and A live off chip: QK written, read for M, A written, read by AV.
OFFCHIP_PASSES = 4


def _softmax_ops(n: float, unit: object) -> dict[str, float]:
    # M max, SN exp (its subtract rides in the exp pipeline), SD add, A divide
    return unit_ops({"max": n, "exp": n, "add": n, "div": n}, unit.ops_per_cycle)  # type: ignore[attr-defined]


def flat_granularity(
    sq: int, skv: int, by: int, cap: float, other: float, min_rows: int
) -> dict[str, object]:
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
    dict
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


def _tile_grid(s: dict[str, int], rows: int, m0: int, p0: int) -> tuple[int, float]:
    """(tiles of ``p0 x m0`` score elements per block of ``rows`` rows, elements per tile)."""
    frac = causal_fraction(s)
    tiles = max(1, math.ceil(math.ceil(rows / p0) * math.ceil(s["Skv"] / m0) * frac))
    return tiles, rows * s["Skv"] * frac / tiles


class _Array(NamedTuple):
    """The attention shape and the 2D + 1D spatial array both baselines start from."""

    s: dict[str, int]  # attention_shape(workload)
    big: ComputeUnit  # the 2D (matrix) unit
    small: ComputeUnit  # the 1D (vector) unit
    dram: str  # outermost level
    g: str  # global buffer level
    rf2: str  # level the 2D unit reads from (the buffer when none)
    rf1: str  # level the 1D unit reads from (the buffer when none)
    mx: int  # 2D array mesh, x
    my: int  # 2D array mesh, y
    m0: int  # K/V rows per array tile
    p0: int  # query rows per array tile
    cap: float  # buffer capacity, bytes (inf when unbounded)


def _array(workload: Workload, arch: Architecture) -> _Array:
    s = attention_shape(workload)
    glb = glb_level(arch)
    big, small = pick_units(arch)
    g = glb.name
    mx, my = unit_mesh(big)
    return _Array(
        s,
        big,
        small,
        arch.levels[0].name,
        g,
        rf_level(arch, big, g) or g,
        rf_level(arch, small, g) or g,
        mx,
        my,
        min(mx, s["Skv"]),
        min(my, s["Sq"]),
        float(glb.capacity_bytes or float("inf")),
    )


def _xfer(tensor: str, nbytes: float, src: str | None, dst: str | None) -> list[Transfer]:
    from archsim import Transfer

    if src is None or dst is None or src == dst or nbytes <= 0:
        return []
    return [Transfer(tensor, int(math.ceil(nbytes)), src, dst)]


@register_dataflow("flat")
def flat_plan(workload: Workload, arch: Architecture, knobs: AbcMapping[str, object]) -> Plan:
    """FLAT row-granular fusion. Knob: ``rows`` (query rows per block; default FLAT's
    granularity rule, :func:`flat_granularity`)."""
    from archsim import Compute, Phase, Step, TileProgram

    _known(knobs, {"rows"})
    s, big, small, dram, g, rf2, rf1, mx, my, m0, p0, cap = _array(workload, arch)
    by, e_, f_ = s["bytes"], s["E"], s["F"]
    other = 2.0 * m0 * (e_ + f_) * by  # double-buffered K/V tile
    rule = flat_granularity(s["Sq"], s["Skv"], by, cap, other, p0)
    if "rows" in knobs:
        rows = min(pos_int(knobs, "rows", p0), s["Sq"])
        block = rows * s["Skv"] * by
        if block > cap:
            raise MappingError(
                f"{rows} score rows overflow {g} by {block - cap:,.0f} bytes",
                path="knobs.rows",
                expected=f"<= {int(cap // (s['Skv'] * by))}",
                got=rows,
            )
        rule = {
            "granularity": "row",
            "rows": rows,
            "offchip": False,
            "buffered": min(1.0, max(0.0, cap - other) / block),
        }
    rows, sp, off = int(rule["rows"]), 1.0 - float(rule["buffered"]), bool(rule["offchip"])
    tiles, n = _tile_grid(s, rows, m0, p0)
    frac = causal_fraction(s)
    nb = n * by
    # Q, K, V stream from DRAM straight to the 2D array and O goes back (FLAT's mapping
    # table keeps them off chip: Q_loc = K_loc = V_loc = AV_loc = offchip); each stage of a
    # tile then uses its own servers (loads write the arrays, stores write the buffer/DRAM)
    loads = [
        *_xfer("Q", rows * e_ * by / tiles, dram, rf2),
        *_xfer("KV", s["Skv"] * (e_ + f_) * by * frac / tiles, dram, rf2),
    ]
    stores = []
    if off:  # QK, A in DRAM; a score row is buffered for the exp/sum passes (a row fits)
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
    two_d = unit_ops({"mac": n * (e_ + f_)}, big.ops_per_cycle)
    body = Step(
        loads=tuple(loads),
        compute=(Compute(big.name, two_d), Compute(small.name, _softmax_ops(n, small))),
        stores=tuple(stores),
        buffer_bytes=int(nb + m0 * (e_ + f_) * by),
    )
    blocks = math.ceil(s["Sq"] / rows)
    # the blocks of all heads form one double-buffered stream of tiles (the next tile's loads
    # overlap this tile's compute): latency ~ max(traffic/BW, 2D, 1D), the artifact's rule
    phase = Phase(
        "flat",
        body=body,
        trips=tiles * s["B"] * s["H"] * blocks,
        work_items=1,
        slots=1,
        depth=2,
        staging_level=g,
    )
    sx = unit_mesh(small)[0] * unit_mesh(small)[1]
    # cycles one 1D PE spends per score element (4 on FLAT's array, 9 with a 6-cycle exp)
    soft_cycles = sx * sum(v / small.ops_per_cycle[k] for k, v in _softmax_ops(1.0, small).items())
    bound = min(1.0, (2 * e_ / (mx * my)) / (soft_cycles / sx))
    meta = {
        "dataflow": "flat",
        "rows": rows,
        "granularity": rule["granularity"],
        "proportion_buffered": 1.0 - sp,
        "proportion_spilled": sp,
        "scores_offchip": off,
        "kv_resident": rows >= s["Sq"],
        "softmax_cycles_per_element": soft_cycles,
        "util_2d_bound": bound,
    }
    prog = TileProgram("flat", (phase,), clock_hz=arch.clock.core_hz, meta=meta)
    spill = (
        (OFFCHIP_PASSES if off else SCORE_ACCESSES * sp)
        * s["B"]
        * s["H"]
        * s["Sq"]
        * s["Skv"]
        * frac
        * by
    )
    info = PassInfo(
        3,
        float(rows * s["Skv"] * by * (0 if off else 1)),
        f"rows*Skv*{by}B = O(rows x S)",
        spill_bytes=float(spill),
        reason="3-pass softmax (max, sum, normalise) over score rows kept on chip",
    )
    return Plan(
        program=prog,
        passes=info,
        meta=meta,
        notes=f"FLAT {rule['granularity']} granularity, rows={rows}, "
        f"spilled {sp:.3f}, scores {'off' if off else 'on'} chip; "
        f"QK/AV on {big.name}, softmax on {small.name} "
        f"({soft_cycles:g} cycles per score element per PE)",
    )


@register_dataflow("unfused")
def unfused_plan(workload: Workload, arch: Architecture, knobs: AbcMapping[str, object]) -> Plan:
    """Unfused attention: QK, softmax and AV as three kernels, scores through DRAM.

    Knobs: ``softmax`` ("row": the artifact's kernel, a score row buffered on chip for
    the max/exp/sum; "per_einsum": one kernel per Einsum of the workload's cascade through
    the generic lowering), ``fill`` (per_einsum only: fraction of the buffer a tile may use).
    """
    _known(knobs, {"fill", "softmax"})
    mode = str(knobs.get("softmax", "row"))
    if mode == "per_einsum":
        return _unfused_per_einsum(workload, arch, float(knobs.get("fill", 0.5)))  # type: ignore[arg-type]
    if mode != "row":
        raise MappingError(
            "unknown softmax kernel", path="knobs.softmax", expected="row|per_einsum", got=mode
        )
    return _unfused_kernels(workload, arch)


def _unfused_kernels(workload: Workload, arch: Architecture) -> Plan:
    from archsim import Compute, Phase, Step, TileProgram

    s, big, small, dram, g, rf2, rf1, _, _, m0, p0, cap = _array(workload, arch)
    by, e_, f_, bh = s["bytes"], s["E"], s["F"], s["B"] * s["H"]
    frac = causal_fraction(s)
    # QK / AV: a block of query rows (Q, or the AV output) stays in half the buffer while K
    # (V) streams once per block (reproduces the artifact mapper's traffic, e.g. 8 K/V passes
    # at 1M tokens with 32 MiB)
    half = cap / 2
    qb = min(s["Sq"], max(p0, int(half // (max(e_, f_) * by)) // p0 * p0))
    blocks = math.ceil(s["Sq"] / qb)
    tiles, n = _tile_grid(s, qb, m0, p0)
    nb = n * by

    def gemm(name: str, d: int, loads: list, stores: list) -> Phase:
        body = Step(
            loads=tuple(loads),
            compute=(Compute(big.name, unit_ops({"mac": n * d}, big.ops_per_cycle)),),
            stores=tuple(stores),
            buffer_bytes=int(nb + (p0 + m0) * d * by),
        )
        return Phase(name, body=body, trips=tiles * bh * blocks, depth=2, staging_level=g)

    kv = s["Skv"] * by * frac / tiles  # per tile: the block's K (V) stream, per head dim
    qk = gemm(
        "unfused:QK",
        e_,
        _xfer("Q", qb * e_ * by / tiles, dram, g) + _xfer("K", kv * e_, dram, g),
        _xfer("QK", nb, rf2, dram),
    )
    # softmax: up to p0 rows at a time (as many as fit); a score row stays in the buffer
    # between the max, exp and sum passes unless even one does not fit (then the buffered
    # accesses of the part that does not fit go to DRAM, as in the artifact)
    rows = max(1, min(p0, int(cap // (s["Skv"] * by))))
    sp = 1.0 - min(1.0, cap / (rows * s["Skv"] * by))
    # tiles of p0*m0 score elements (a few rows when rows are long), as on the 2D array
    st = max(1, math.ceil(rows * s["Skv"] * frac / (p0 * m0)))
    sn = rows * s["Skv"] * frac / st
    snb = sn * by
    # M reads QK from DRAM and keeps the row (QK written to the buffer); SN re-reads QK, A
    # reads SN from the buffer; A goes to DRAM
    sm_body = Step(
        loads=tuple(
            _xfer("QK", snb, dram, rf1)
            + _xfer("QK+SN", 2 * snb * (1 - sp), g, rf1)
            + _xfer("QK+SN.spill", 2 * snb * sp, dram, rf1)
        ),
        compute=(Compute(small.name, _softmax_ops(sn, small)),),
        stores=tuple(
            _xfer("QK+SN", 2 * snb * (1 - sp), rf1, g)
            + _xfer("QK+SN.spill", 2 * snb * sp, rf1, dram)
            + _xfer("A", snb, rf1, dram)
        ),
        buffer_bytes=int(snb),
    )
    soft = Phase(
        "unfused:softmax",
        body=sm_body,
        trips=st * bh * math.ceil(s["Sq"] / rows),
        depth=2,
        staging_level=g,
    )
    av = gemm(
        "unfused:AV",
        f_,
        _xfer("A", nb, dram, rf2) + _xfer("V", kv * f_, dram, g),
        _xfer("O", qb * f_ * by / tiles, g, dram),
    )
    meta = {
        "dataflow": "unfused",
        "softmax": "row",
        "q_block": qb,
        "kv_passes": blocks,
        "softmax_rows": rows,
        "proportion_spilled": sp,
    }
    prog = TileProgram("unfused", (qk, soft, av), clock_hz=arch.clock.core_hz, meta=meta)
    spill = OFFCHIP_PASSES * bh * s["Sq"] * s["Skv"] * frac * by
    info = PassInfo(
        3,
        float(rows * s["Skv"] * by),
        "O(tile): scores spilled, 4 S^2 DRAM passes",
        spill_bytes=float(spill),
        reason="3-pass stable softmax, three kernels",
    )
    return Plan(
        program=prog,
        passes=info,
        meta=meta,
        notes=f"unfused QK -> softmax -> AV; matrix unit {big.name}, vector unit {small.name}",
    )


def _unfused_per_einsum(workload: Workload, arch: Architecture, fill: float) -> Plan:
    big, small = pick_units(arch)
    groups = []
    for e in workload.cascade.einsums:
        contraction = e.reduce_op == "sum" and e.map_op == "*" and len(e.inputs) == 2
        groups.append(fit_group(workload, arch, e.name, big if contraction else small, fill=fill))
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
        },
    )
