"""PIM dataflows ``pim_gemv`` and ``pim_decode``: DRAM-PIM MAC streams timed by DRAM commands.

Data (weights for GEMV, the K/V cache for decode attention) is partitioned over the stack's
channels and, inside a channel, over its PIM units (one per bank, per bank group, or per
pseudo-channel on the buffer die). Every unit then streams its share column by column; the
rate is set by the DRAM timing of the ``kind: pim`` architecture (``levels[0].dram``) and its
``pim`` parameters, not by a typed-in bandwidth multiplier:

* **bank** (AttAcc_bank, HBM-PIM): an all-bank MAC command reads one ``burst_bytes`` column in
  every bank of a pseudo-channel at once, at most every ``mac_cmd_gap`` tCK (AttAcc nCCDAB:
  4, or 6 under the power limit). All banks switch rows together, so each ``row_bytes /
  burst_bytes`` columns pay an exposed all-bank precharge + activate (PRE after tRAS/tRTP,
  tRP, ACT, tRCD), measured on the command-level stream of :mod:`archsim.dram`.
* **bank_group**: one unit per bank group reads its banks in turn; consecutive MACs to a bank
  group are ``max(tCCD_L, gap)`` apart and the next bank's activation hides behind the
  current bank's reads (no exposed row switch).
* **buffer_die**: the unit sees the external pseudo-channel interface: one column per
  ``tCCD_S`` plus the row overheads of a bank-group-interleaved host stream
  (:func:`archsim.dram.stream_rate`); the power limit does not bind.

On top of the stream: refresh (tRFC every tREFI) stretches it by the ratio the same
:mod:`archsim.dram` streams show with and without refresh; K/V streams are placed whole on
channels (``ceil(streams / channels)`` on the busiest one); for decode attention the scores
leave the units for the softmax on the buffer die (AttAcc) and the probabilities come back,
``2 x L x dbyte`` bytes per query row over the channel's external interface. The host (GPU)
side -- the non-PIM work -- is the caller's: :func:`decode_attention_timing` returns the PIM
side only.

The dataflows are recipes over the cascade given, never over parameter names:
:mod:`mappings._pim_shapes` reads a decode cascade's rank roles (streams, query rows sharing
a stream, the key-side operands the units stream) or a GEMV's contraction, and
:mod:`mappings._pim_mapping` writes the recipe as a whole-cascade :class:`~mappings.Mapping`
(``plan.mapping``, what ``--save-mapping`` writes), which the lowering runs
(:mod:`mappings._pim_lower`: in-bank streams counted from the loop nest, timed with the
stream timing of this module). The closed forms here (:func:`decode_attention_timing`,
:func:`gemv_timing`, ``_decode_core``) are the reference the lowering is checked against
(``plan.meta["pim_model_cycles"]``, within 1% where the streams factor over the channels) and
what the AttAcc reproduction compares with AttAcc's Ramulator cycles.

The engine program charges the MAC commands the units issue (whole columns, partial last
rows included) at the unit's declared rate; the DRAM timing's idle time is its occupancy.
A command gap shorter than one command's MACs take at the declared rate is refused for the
architecture and knobs, whatever the shape (:func:`check_unit_rate`).

References: AttAcc (Park et al., ASPLOS'24) timing presets and organisation
(``reference/papers/pim/attacc_hbm3_pim_*.csv``); its Ramulator cycle cache is the check
(``validation.reproduce`` prints the error).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import lru_cache, partial
from typing import TYPE_CHECKING

from archsim import DramTiming, Result, TileProgram
from archsim.dram import pim_allbank_stream, stream_rate
from archsim.errors import MappingError
from mappings._pim_shapes import DecodeShape, GemvShape, decode_shape, gemv_shape
from mappings._registry import PassInfo, Plan, register_dataflow

if TYPE_CHECKING:
    from archsim import Architecture, ComputeUnit
    from mappings._mapping import Mapping as LoopMapping
    from workloads import Workload

__all__ = [
    "PLACEMENTS",
    "PimTiming",
    "pim_timing",
    "bandwidth_multipliers",
    "DecodeShape",
    "GemvShape",
    "decode_attention_timing",
    "decode_shape",
    "gemv_shape",
    "gemv_timing",
    "pim_gemv",
    "pim_decode",
    "decode_layout",
    "decode_plan",
    "gemv_plan",
]

#: Placements in the order AttAcc names them (``BA``, ``BG``, ``BUFFER``).
PLACEMENTS: tuple[str, ...] = ("bank", "bank_group", "buffer_die")


@dataclass(frozen=True)
class PimTiming:
    """Per-pseudo-channel MAC-stream timing of one placement, derived from DRAM timing.

    Attributes
    ----------
    placement
        ``bank``, ``bank_group`` or ``buffer_die``.
    power_limited
        Whether the power-limited MAC command gap applies.
    units_per_pc
        PIM units per pseudo-channel.
    column_bytes
        Bytes one unit consumes per MAC command (one column burst), B.
    cycles_per_column
        tCK between consecutive columns of one unit, without row switches.
    row_switch_cycles
        Exposed tCK per row switch of a unit (0 where activations hide).
    columns_per_row
        Columns in one DRAM row.
    refresh_factor
        Stretch from refresh (the archsim.dram stream with refresh over the one without).
    external_bytes_per_cycle_pc
        External (host) bandwidth of one pseudo-channel, B/tCK: one column per ``tCCD_S``
        (capped by the pins, ``bus_bytes_per_cycle / pseudo_channels``).
    pseudo_channels
        Pseudo-channels per channel.
    channels
        Channels of the stack.
    tck_s
        DRAM clock period, s.
    """

    placement: str
    power_limited: bool
    units_per_pc: int
    column_bytes: int
    cycles_per_column: float
    row_switch_cycles: float
    columns_per_row: int
    refresh_factor: float
    external_bytes_per_cycle_pc: float
    pseudo_channels: int
    channels: int
    tck_s: float

    @property
    def sustained_cycles_per_column(self) -> float:
        """tCK per column including the exposed row switches."""
        return self.cycles_per_column + self.row_switch_cycles / self.columns_per_row

    @property
    def peak_bytes_per_cycle_pc(self) -> float:
        """Internal bandwidth of a pseudo-channel's units at the command rate, B/tCK."""
        return self.units_per_pc * self.column_bytes / self.cycles_per_column

    @property
    def sustained_bytes_per_cycle_pc(self) -> float:
        """Internal bandwidth including row switches, B/tCK (refresh excluded)."""
        return self.units_per_pc * self.column_bytes / self.sustained_cycles_per_column

    @property
    def units(self) -> int:
        """PIM units in the whole stack."""
        return self.units_per_pc * self.pseudo_channels * self.channels


def _dram(arch: Architecture) -> DramTiming:
    dram = arch.dram.dram
    if dram is None or arch.pim is None:
        raise MappingError(
            "PIM dataflows need a PIM architecture with DRAM timing",
            path="arch",
            expected="kind: pim with levels[0].dram and pim (hbm3_pim, hbm_pim, aim_pim)",
            got=arch.name,
        )
    return dram


#: Rows streamed by the command-level DRAM model when deriving a stream's rate.
_STREAM_ROWS = 256


@lru_cache(maxsize=256)
def _bank_stream(dram: DramTiming, gap: int, units: int) -> tuple[float, float]:
    """(exposed row-switch tCK per row, refresh stretch) of the all-bank MAC stream, from
    :func:`archsim.dram.pim_allbank_stream` (PRE after tRAS/tRTP, tRP, all-bank ACT, tRCD)."""
    per_row = max(1, dram.row_bytes // dram.burst_bytes)
    n = per_row * _STREAM_ROWS
    plain = pim_allbank_stream(dram, n, mac_cmd_gap=gap, units=units, refresh=False)
    with_ref = pim_allbank_stream(dram, n, mac_cmd_gap=gap, units=units, refresh=True)
    paced = n * max(gap, dram.tCCD_L)
    return (plain.cycles - paced) / _STREAM_ROWS, with_ref.cycles / plain.cycles


@lru_cache(maxsize=64)
def _host_stream(dram: DramTiming) -> tuple[float, float]:
    """(tCK per column, refresh stretch) of a bank-group-interleaved host read stream on one
    pseudo-channel, from :func:`archsim.dram.stream_rate` (``row_hit_bg``)."""
    n = max(1, dram.row_bytes // dram.burst_bytes) * dram.bank_groups * dram.banks_per_group * 8
    plain = stream_rate(dram, "row_hit_bg", n=n, refresh=False)
    with_ref = stream_rate(dram, "row_hit_bg", n=n, refresh=True)
    return (
        dram.burst_bytes / plain.bytes_per_cycle,
        plain.bytes_per_cycle / with_ref.bytes_per_cycle,
    )


def pim_timing(
    arch: Architecture, placement: str | None = None, power_limited: bool | None = None
) -> PimTiming:
    """MAC-stream timing of ``placement`` on ``arch`` (defaults: the preset's own).

    Row switches and refresh come from the command-level DRAM model (:mod:`archsim.dram`):
    the all-bank MAC stream for per-bank units, the bank-group-interleaved host stream for
    the buffer die. Per-bank-group units hide activations behind their other banks' reads.

    Raises
    ------
    MappingError
        If ``arch`` has no DRAM timing or PIM parameters, or ``placement`` is unknown.
    """
    dram = _dram(arch)
    pim = arch.pim
    placement = placement or pim.placement
    if placement not in PLACEMENTS:
        raise MappingError(
            "unknown PIM placement",
            path="knobs.placement",
            expected=f"one of {list(PLACEMENTS)}",
            got=placement,
        )
    limited = pim.power_limited if power_limited is None else bool(power_limited)
    gap = int(pim.mac_cmd_gap_cycles if limited else pim.mac_cmd_gap_cycles_unlimited)
    pcs = max(1, dram.pseudo_channels)
    ranks_bg = dram.ranks * dram.bank_groups
    col = int(dram.burst_bytes)
    host_cpc, host_refresh = _host_stream(dram)
    if placement == "bank":
        units = max(1, ranks_bg * dram.banks_per_group // pim.banks_per_unit)
        row_switch, refresh = _bank_stream(dram, gap, units)
        cpc = float(gap)
    elif placement == "bank_group":
        units, cpc, row_switch, refresh = ranks_bg, float(max(dram.tCCD_L, gap)), 0.0, host_refresh
    else:  # the buffer die sees the pins: tCCD_S per column, row overheads of a host stream
        units, cpc, refresh = 1, float(dram.tCCD_S), host_refresh
        row_switch = max(0.0, host_cpc - cpc) * max(1, dram.row_bytes // col)
    return PimTiming(
        placement=placement,
        power_limited=limited,
        units_per_pc=units,
        column_bytes=col,
        cycles_per_column=cpc,
        row_switch_cycles=row_switch,
        columns_per_row=max(1, int(dram.row_bytes // col)),
        refresh_factor=refresh,
        external_bytes_per_cycle_pc=min(col / dram.tCCD_S, dram.bus_bytes_per_cycle / pcs),
        pseudo_channels=pcs,
        channels=dram.channels,
        tck_s=dram.tck_ns * 1e-9,
    )


def bandwidth_multipliers(arch: Architecture) -> list[dict[str, float | str | bool]]:
    """Internal / external bandwidth per placement, with and without the power limit.

    Returns one row per (placement, power_limited): ``peak`` (command rate only) and
    ``sustained`` (row switches included) multipliers over the external bandwidth.
    """
    rows: list[dict[str, float | str | bool]] = []
    for placement in PLACEMENTS:
        for limited in (False, True):
            t = pim_timing(arch, placement, limited)
            ext = t.external_bytes_per_cycle_pc
            rows.append(
                {
                    "placement": placement,
                    "power_limited": limited,
                    "units_per_pc": t.units_per_pc,
                    "cycles_per_column": t.cycles_per_column,
                    "row_switch_cycles": t.row_switch_cycles,
                    "peak": t.peak_bytes_per_cycle_pc / ext,
                    "sustained": t.sustained_bytes_per_cycle_pc / ext,
                }
            )
    return rows


def _stream_counts(t: PimTiming, bytes_per_unit: float) -> tuple[int, int]:
    """(columns, rows) one unit opens to stream ``bytes_per_unit``: whole columns, and rows
    of ``columns_per_row`` columns (the last one possibly partial)."""
    cols = math.ceil(bytes_per_unit / t.column_bytes)
    return cols, math.ceil(cols / t.columns_per_row)


def _stream_cycles(t: PimTiming, bytes_per_unit: float, cmds_per_column: int = 1) -> float:
    """Cycles for one unit to stream ``bytes_per_unit`` (whole columns, row switches), issuing
    ``cmds_per_column`` MAC commands per column while its row is open (one per query vector
    the unit cannot apply in the same command)."""
    cols, rows = _stream_counts(t, bytes_per_unit)
    return cols * cmds_per_column * t.cycles_per_column + rows * t.row_switch_cycles


def decode_layout(t: PimTiming, streams: int, *, kv_split: bool) -> tuple[int, int]:
    """(channels one stream's keys are split over, streams on the busiest channel).

    Streams are placed whole on channels (``ceil(streams / channels)`` on the busiest one);
    with ``kv_split`` and fewer streams than channels, a stream's keys are split over
    ``channels // streams`` channels instead (bytes spread evenly: with fewer keys than
    channels a key's features are split over channels)."""
    ch = t.channels
    split = max(1, ch // streams) if kv_split and streams < ch else 1
    return split, (math.ceil(streams / ch) if split == 1 else 1)


def _decode_core(
    t: PimTiming,
    *,
    streams: int,
    sharing: int,
    key_len: int,
    stream_bytes: tuple[float, ...],
    score_bytes: float,
    vectors_per_cmd: int = 1,
    kv_split: bool = False,
) -> dict[str, float]:
    """PIM side of one decode step: ``streams`` independent K/V sets (batch x K/V heads),
    each of ``key_len`` keys, read by ``sharing`` query rows (a GQA group, MLA's heads).

    ``stream_bytes`` are the bytes of one stream that each key-side contraction streams
    through the units (K then V for attention; CKV, KR, then CKV again for MLA). Streams are
    placed whole on channels (``ceil(streams / channels)`` on the busiest one) and spread
    over the channel's units; with ``kv_split`` and fewer streams than channels, a stream's
    keys are split over ``channels // streams`` channels instead. Each column read serves
    ``vectors_per_cmd`` query rows per MAC command (the unit's MACs per command over the
    elements of a column): ``ceil(sharing / vectors_per_cmd)`` commands per column.
    """
    split, spc = decode_layout(t, streams, kv_split=kv_split)
    units_per_ch = t.units_per_pc * t.pseudo_channels
    cmds = max(1, math.ceil(sharing / max(1, vectors_per_cmd)))
    per_unit = [spc * b / split / units_per_ch for b in stream_bytes]
    mac = sum(_stream_cycles(t, b, cmds) for b in per_unit)
    counts = [_stream_counts(t, b) for b in per_unit]
    keys = math.ceil(key_len / split)
    io = (
        2.0
        * spc
        * sharing
        * keys
        * score_bytes
        / (t.external_bytes_per_cycle_pc * t.pseudo_channels)
    )
    cycles = t.refresh_factor * (mac + io)
    return {
        "cycles": cycles,
        "seconds": cycles * t.tck_s,
        "mac_cycles": mac,
        "io_cycles": io,
        "heads_per_channel": float(spc),
        "kv_split_channels": float(split),
        "cmds_per_column": float(cmds),
        "bytes_per_unit": float(sum(per_unit)),
        "mac_cmds_per_unit": float(cmds * sum(c for c, _ in counts)),
        "rows_per_unit": float(sum(r for _, r in counts)),
    }


def decode_attention_timing(
    arch: Architecture,
    *,
    L: int,
    heads: int,
    dhead: int,
    dbyte: int = 2,
    placement: str | None = None,
    power_limited: bool | None = None,
) -> dict[str, float]:
    """PIM side of one decode step of MHA on one stack: ``heads`` (heads x requests) with
    ``L`` cached tokens each, head dim ``dhead``, ``dbyte`` bytes per element (the AttAcc
    shape; :func:`pim_decode` derives the shape of any decode cascade from its roles).

    Returns
    -------
    dict
        ``cycles`` (tCK), ``seconds``, ``mac_cycles`` (K and V GEMV streams), ``io_cycles``
        (scores out / probabilities in), ``heads_per_channel``, ``bytes_per_unit``,
        ``kv_bytes`` (whole stack), ``macs``.
    """
    if min(L, heads, dhead, dbyte) < 1:
        raise MappingError(
            "decode shape must be positive",
            path="workload.params",
            expected="L, heads, dhead, dbyte >= 1",
            got=(L, heads, dhead, dbyte),
        )
    t = pim_timing(arch, placement, power_limited)
    per_head = float(L * dhead * dbyte)  # K (or V) of one head, B
    r = _decode_core(
        t,
        streams=heads,
        sharing=1,
        key_len=L,
        stream_bytes=(per_head, per_head),
        score_bytes=float(dbyte),
    )
    for k in ("kv_split_channels", "cmds_per_column", "mac_cmds_per_unit", "rows_per_unit"):
        del r[k]
    return {**r, "kv_bytes": 2.0 * heads * per_head, "macs": 2.0 * heads * L * dhead}


def gemv_timing(
    arch: Architecture,
    *,
    rows: int,
    cols: int,
    dbyte: int = 2,
    batch: int = 1,
    placement: str | None = None,
    power_limited: bool | None = None,
) -> dict[str, float]:
    """PIM GEMV ``y[rows] = W[rows, cols] x[cols]`` for ``batch`` vectors, ``W`` spread
    evenly over all units of the stack (row blocks per channel, columns per unit).

    The input vector is broadcast into every channel's buffer and the outputs read back,
    both over the external interface; each extra vector re-streams ``W`` (PIM has no reuse).
    """
    t = pim_timing(arch, placement, power_limited)
    w_bytes = float(rows) * cols * dbyte
    mac = batch * _stream_cycles(t, w_bytes / t.units)
    unit_cols, unit_rows = _stream_counts(t, w_bytes / t.units)
    ext_ch = t.external_bytes_per_cycle_pc * t.pseudo_channels
    io = batch * (cols * dbyte + rows * dbyte / t.channels) / ext_ch
    cycles = t.refresh_factor * (mac + io)
    return {
        "cycles": cycles,
        "seconds": cycles * t.tck_s,
        "mac_cycles": mac,
        "io_cycles": io,
        "weight_bytes": w_bytes,
        "macs": float(batch) * rows * cols,
        "mac_cmds_per_unit": float(batch * unit_cols),
        "rows_per_unit": float(batch * unit_rows),
    }


def _pim_energy_parts(
    arch: Architecture, pim_bytes: float, macs: float, io_bytes: float, seconds: float
) -> dict[str, float]:
    pim = arch.pim
    return {
        f"{arch.dram.name}.banks.read": pim_bytes * pim.access_energy_pj_per_byte * 1e-12,
        "pim.mac": macs * pim.energy_pj_per_mac * 1e-12,
        f"{arch.dram.name}.io": io_bytes * arch.dram.read_energy_pj_per_byte * 1e-12,
        "static": arch.idle_power_w * seconds,
    }


def pim_energy_j(
    arch: Architecture, *, pim_bytes: float, macs: float, io_bytes: float, seconds: float
) -> float:
    """Energy of a PIM pass: bank-local reads, MACs, external I/O and static power, J."""
    return float(sum(_pim_energy_parts(arch, pim_bytes, macs, io_bytes, seconds).values()))


def check_unit_rate(arch: Architecture, t: PimTiming) -> tuple[ComputeUnit, str, int]:
    """(unit, op kind, MACs per command) of the PIM unit on ``arch``'s DRAM level, after
    checking that the placement's command gap is no shorter than one command's MACs take at
    the unit's declared rate (a property of the architecture and the knobs, not of the
    shape: ``macs_per_cmd / ops_per_cycle <= cycles_per_column``).

    Raises
    ------
    MappingError
        The timing issues commands faster than the unit is declared to compute: the
        unlimited command gap on a unit declared at the power-limited one, or a placement
        (buffer die) faster than the per-bank unit the preset declares.
    """
    unit = next((u for u in arch.compute if u.level == arch.dram.name), arch.compute[0])
    op = next(iter(unit.ops_per_cycle))
    macs_per_cmd = max(1, t.column_bytes // max(1, arch.pim.dtype_bits // 8))
    need = macs_per_cmd / unit.ops_per_cycle[op]
    if need > t.cycles_per_column * (1.0 + 1e-9):
        own = t.placement == arch.pim.placement
        raise MappingError(
            f"the {t.placement} placement issues MACs faster than unit {unit.name!r} is "
            f"declared to run: one {t.column_bytes}-B column ({macs_per_cmd} MACs) every "
            f"{t.cycles_per_column:g} tCK, where {unit.ops_per_cycle[op]:g} {op} per cycle "
            f"needs {need:g} tCK",
            path="knobs.power_limited" if own else "knobs.placement",
            expected=f"a command gap >= {need:g} tCK (the unit's declared rate), or a unit "
            "declared at macs_per_unit_per_cmd / gap for this variant",
            got=t.power_limited if own else t.placement,
        )
    return unit, op, macs_per_cmd


def _finish_pim(
    arch: Architecture, units: int, pim_bytes: float, macs: float, io_bytes: float, result: Result
) -> Result:
    """``result`` with the stack's in-bank reads counted as DRAM bytes (``LEVEL.banks``:
    the bytes every unit reads from its own banks, which never cross the interface) and
    the energy of :func:`pim_energy_j` at the result's own time."""
    banks = f"{arch.dram.name}.banks"
    energy = pim_energy_j(
        arch, pim_bytes=pim_bytes, macs=macs, io_bytes=io_bytes, seconds=result.seconds
    )
    return dataclasses.replace(
        result,
        bytes_by_level={**result.bytes_by_level, banks: float(pim_bytes)},
        dram_bytes=float(result.dram_bytes + pim_bytes),
        energy_j=float(energy),
        energy_breakdown_j=_pim_energy_parts(arch, pim_bytes, macs, io_bytes, result.seconds),
        meta={
            **result.meta,
            "energy_model": "PIM energy (mappings._pim.pim_energy_j)",
            "component_energy_j": float(result.energy_j),
            "in_bank_bytes_per_unit": float(pim_bytes) / max(1, units),
        },
    )


def _knob_placement(knobs: Mapping[str, object]) -> tuple[str | None, bool | None]:
    bad = sorted(set(knobs) - {"placement", "power_limited"})
    if bad:
        raise MappingError(
            "unknown knob", path=f"knobs.{bad[0]}", expected="placement | power_limited", got=bad[0]
        )
    pl = knobs.get("power_limited")
    if isinstance(pl, str):  # from the command line: --knob power_limited=false
        pl = {"true": True, "1": True, "yes": True, "false": False, "0": False, "no": False}.get(
            pl.strip().lower(), pl
        )
    if pl is not None and not isinstance(pl, (bool, int)):
        raise MappingError("bad knob", path="knobs.power_limited", expected="true | false", got=pl)
    place = knobs.get("placement")
    return (None if place is None else str(place), None if pl is None else bool(pl))


def _pim_plan(
    dataflow: str,
    program: TileProgram,
    passes: PassInfo,
    t: PimTiming,
    r: Mapping[str, float],
    energy_j: float,
    finish: Callable[[Result], Result],
    mapping: LoopMapping,
    reference: bool = True,
) -> Plan:
    """The ``Plan`` of a PIM dataflow lowered from ``mapping``; ``meta`` carries the shape
    keys of the closed-form answer ``r`` and, with ``reference``, its time and energy."""
    timing = {"cycles", "seconds", "mac_cycles", "io_cycles", "heads_per_channel"}
    timing |= {"kv_split_channels", "cmds_per_column", "bytes_per_unit"}
    timing |= {"mac_cmds_per_unit", "rows_per_unit"}
    model = {
        "pim_model_cycles": r["cycles"],
        "pim_model_seconds": r["seconds"],
        "pim_model_energy_j": energy_j,
    }
    meta = {
        "dataflow": dataflow,
        "placement": t.placement,
        "power_limited": t.power_limited,
        **(model if reference else {}),
        **{f"pim_{k}": v for k, v in r.items() if reference or k not in timing},
    }
    return Plan(
        program=program,
        mapping=mapping,
        passes=passes,
        notes=f"{dataflow}: {t.placement}, power_limited={t.power_limited}",
        meta=meta,
        finish=finish,
    )


def _require_pim(arch: Architecture, dataflow: str) -> None:
    if getattr(arch, "kind", None) != "pim":
        raise MappingError(
            f"{dataflow} maps onto DRAM-PIM units; {arch.name!r} is a {arch.kind} architecture",
            path="arch.kind",
            expected="pim (hbm3_pim, hbm_pim, aim_pim)",
            got=arch.kind,
        )


@register_dataflow("pim_decode")
def pim_decode(workload: Workload, arch: Architecture, knobs: Mapping[str, object]) -> Plan:
    """Decode attention on DRAM-PIM: key-side contractions in the units, softmax on the
    buffer die, for the cascade given (shape from its rank roles, :func:`decode_shape`).

    Every key-side tensor a contraction reads (K and V; MLA's latent CKV and KR) is streamed
    through the units, once per contraction that reads it; the query rows sharing a stream
    (a GQA group, MLA's heads) are applied as extra MAC commands on the open row (a unit's
    command applies one query vector to a column), so GQA moves 1/group of MHA's K/V bytes
    but issues as many commands. Streams fewer than channels are split over channels along
    the key rank. The engine runs the DRAM-timing model's stream (``plan.meta``:
    ``pim_model_cycles``, ``pim_model_seconds``, within 1%); ``pim_kv_bytes`` is the K/V cache
    the units read, reported as ``HBM.banks`` bytes of the result.

    The recipe is data: :func:`mappings._pim_mapping.decode_mapping` builds the whole-cascade
    :class:`~mappings.Mapping` (plan.mapping), run by :func:`decode_plan`.
    """
    from mappings._pim_mapping import decode_mapping, pim_mapping_plan

    placement, limited = _knob_placement(knobs)
    _require_pim(arch, "pim_decode")
    t = pim_timing(arch, placement, limited)
    return pim_mapping_plan(
        workload, decode_mapping(workload, arch, t), arch, power_limited=limited
    )


def _lowered(
    workload: Workload, arch: Architecture, t: PimTiming, mapping: LoopMapping
) -> tuple[TileProgram, Callable[[Result], Result]]:
    """The mapping's program (:func:`mappings._pim_lower.lower_pim`) and the finish that adds
    the PIM energy model at the result's time."""
    from mappings._pim_lower import lower_pim

    prog = lower_pim(workload, mapping, arch, t)
    m = prog.meta
    finish = partial(_finish_pim, arch, m["units"], m["in_bank_bytes"], m["macs"], m["io_bytes"])
    return prog, finish


def decode_plan(
    workload: Workload,
    arch: Architecture,
    t: PimTiming,
    mapping: LoopMapping,
    *,
    reference: bool = True,
) -> Plan:
    """The plan of a decode mapping (:func:`mappings._pim_mapping.decode_mapping`, or one
    edited from it): the program is the mapping's lowering; ``meta`` carries the cascade's
    decode shape (``pim_kv_bytes``, ``pim_macs``, ...) and, with ``reference`` (the mapping is
    the recipe's own layout), the closed-form DRAM-timing answer for it (``pim_model_cycles``:
    streams placed round-robin on the channels, the scores' round trip; within 1% of the
    program where the streams factor over the channels)."""
    shape = decode_shape(workload)
    elems_per_col = max(1, t.column_bytes * 8 // max(1, shape.kv_bits))
    vpc = max(1, int(getattr(arch.pim, "macs_per_unit_per_cmd", elems_per_col)) // elems_per_col)
    score_b = max(1, shape.score_bits // 8)
    r = _decode_core(
        t,
        streams=shape.streams,
        sharing=shape.sharing,
        key_len=shape.key_len,
        stream_bytes=tuple(b for _, _, b in shape.streamed),
        score_bytes=float(score_b),
        vectors_per_cmd=vpc,
        kv_split=True,
    )
    streamed_bytes = shape.streams * sum(b for _, _, b in shape.streamed)
    r = {
        **r,
        "kv_bytes": shape.kv_bytes,
        "streamed_bytes": streamed_bytes,
        "macs": shape.pim_macs,
        "host_macs": shape.host_macs,
        "streams": float(shape.streams),
        "sharing": float(shape.sharing),
    }
    io_bytes = 2.0 * shape.streams * shape.sharing * shape.key_len * score_b
    pim_bytes = streamed_bytes * int(r["cmds_per_column"])
    energy = pim_energy_j(
        arch, pim_bytes=pim_bytes, macs=r["macs"], io_bytes=io_bytes, seconds=r["seconds"]
    )
    program, finish = _lowered(workload, arch, t, mapping)
    passes = PassInfo(
        passes=2,
        buffer_bytes=float(shape.key_len * score_b),
        buffer_formula="key_len * score bytes",
        reason="scores leave the units for the softmax, then return",
    )
    return _pim_plan("pim_decode", program, passes, t, r, energy, finish, mapping, reference)


@register_dataflow("pim_gemv")
def pim_gemv(workload: Workload, arch: Architecture, knobs: Mapping[str, object]) -> Plan:
    """GEMV on DRAM-PIM: the single contraction's larger operand (the weights) spread over
    every unit, re-streamed per input vector (shape from :func:`gemv_shape`); the recipe's
    :class:`~mappings.Mapping` is :func:`mappings._pim_mapping.gemv_mapping`."""
    from mappings._pim_mapping import gemv_mapping, pim_mapping_plan

    placement, limited = _knob_placement(knobs)
    _require_pim(arch, "pim_gemv")
    t = pim_timing(arch, placement, limited)
    return pim_mapping_plan(workload, gemv_mapping(workload, arch, t), arch, power_limited=limited)


def gemv_plan(
    workload: Workload,
    arch: Architecture,
    t: PimTiming,
    mapping: LoopMapping,
    *,
    reference: bool = True,
) -> Plan:
    """The plan of a GEMV mapping (:func:`mappings._pim_mapping.gemv_mapping`, or one edited
    from it); ``reference`` as for :func:`decode_plan`."""
    g = gemv_shape(workload)
    M, N, K = g.vectors, g.rows, g.cols
    dbyte = max(1, g.weight_bits // 8)
    r = gemv_timing(
        arch,
        rows=N,
        cols=K,
        dbyte=dbyte,
        batch=M,
        placement=t.placement,
        power_limited=t.power_limited,
    )
    io_bytes = float(M) * (K * t.channels + N) * dbyte
    energy = pim_energy_j(
        arch,
        pim_bytes=M * r["weight_bytes"],
        macs=r["macs"],
        io_bytes=io_bytes,
        seconds=r["seconds"],
    )
    program, finish = _lowered(workload, arch, t, mapping)
    passes = PassInfo(
        passes=1,
        buffer_bytes=float(K * dbyte),
        buffer_formula="K * dbyte",
        reason="the input vector sits in the channel buffer",
    )
    return _pim_plan("pim_gemv", program, passes, t, r, energy, finish, mapping, reference)
