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
:mod:`archsim.dram` streams show with and without refresh; heads are placed whole on channels
(``ceil(heads / channels)`` on the busiest one); for decode attention the scores leave the
units for the softmax on the buffer die (AttAcc) and the probabilities come back, ``2 x L x
dbyte`` bytes per head over the channel's external interface. The host (GPU) side -- the
non-PIM work -- is the caller's: :func:`decode_attention_timing` returns the PIM side only.

References: AttAcc (Park et al., ASPLOS'24) timing presets and organisation
(``reference/papers/pim/attacc_hbm3_pim_*.csv``); its Ramulator cycle cache is the check
(``validation.reproduce`` prints the error).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache
from typing import TYPE_CHECKING

from archsim import Compute, DramTiming, Phase, Step, TileProgram, Transfer
from archsim.dram import pim_allbank_stream, stream_rate
from archsim.errors import MappingError
from mappings._registry import PassInfo, Plan, register_dataflow

if TYPE_CHECKING:
    from archsim import Architecture
    from workloads import Workload

__all__ = [
    "PLACEMENTS",
    "PimTiming",
    "pim_timing",
    "bandwidth_multipliers",
    "decode_attention_timing",
    "gemv_timing",
    "pim_gemv",
    "pim_decode",
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


def _stream_cycles(t: PimTiming, bytes_per_unit: float) -> float:
    """Cycles for one unit to stream ``bytes_per_unit`` (whole columns, row switches)."""
    cols = math.ceil(bytes_per_unit / t.column_bytes)
    rows = math.ceil(cols / t.columns_per_row)
    return cols * t.cycles_per_column + rows * t.row_switch_cycles


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
    """PIM side of one decode step of attention on one stack: ``heads`` (heads x requests)
    with ``L`` cached tokens each, head dim ``dhead``, ``dbyte`` bytes per element.

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
    hpc = math.ceil(heads / t.channels)
    units_per_ch = t.units_per_pc * t.pseudo_channels
    per_head = L * dhead * dbyte  # K (or V) of one head, B
    mac = 2 * _stream_cycles(t, hpc * per_head / units_per_ch)
    io = 2.0 * hpc * L * dbyte / (t.external_bytes_per_cycle_pc * t.pseudo_channels)
    cycles = t.refresh_factor * (mac + io)
    return {
        "cycles": cycles,
        "seconds": cycles * t.tck_s,
        "mac_cycles": mac,
        "io_cycles": io,
        "heads_per_channel": float(hpc),
        "bytes_per_unit": 2.0 * hpc * per_head / units_per_ch,
        "kv_bytes": 2.0 * heads * per_head,
        "macs": 2.0 * heads * L * dhead,
    }


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
    }


def pim_energy_j(
    arch: Architecture, *, pim_bytes: float, macs: float, io_bytes: float, seconds: float
) -> float:
    """Energy of a PIM pass: bank-local reads, MACs, external I/O and static power, J."""
    pim = arch.pim
    ext_pj = arch.dram.read_energy_pj_per_byte
    static_w = arch.idle_power_w
    return (
        pim_bytes * pim.access_energy_pj_per_byte + macs * pim.energy_pj_per_mac + io_bytes * ext_pj
    ) * 1e-12 + static_w * seconds


def _program(
    name: str,
    arch: Architecture,
    t: PimTiming,
    bytes_per_unit: float,
    io_bytes: float,
    repeats: int,
) -> TileProgram:
    """Engine view: each of the placement's units streams its rows (one trip = one DRAM row
    of MACs at the preset's MAC rate), then the host-side I/O moves over the DRAM interface.

    The engine's cycles leave out row switches and refresh (20-25% for per-bank units) and
    use the preset's MAC rate whatever ``power_limited`` says; the DRAM-timing answer is
    ``plan.meta["pim_model_cycles"]``.
    """
    unit = next((u for u in arch.compute if u.level == arch.dram.name), arch.compute[0])
    op = next(iter(unit.ops_per_cycle))
    macs_per_col = max(1, t.column_bytes // max(1, arch.pim.dtype_bits // 8))
    cols = math.ceil(bytes_per_unit / t.column_bytes)
    rows = max(1, repeats * math.ceil(cols / t.columns_per_row))
    body = Step(
        compute=(Compute(unit.name, {op: float(macs_per_col * min(cols, t.columns_per_row))}),)
    )
    mac = Phase("pim_mac", body=body, trips=rows, work_items=t.units, slots=t.units, depth=1)
    io = Phase(
        "host_io",
        body=Step(loads=(Transfer("io", int(io_bytes), arch.dram.name, arch.dram.name),)),
        trips=1,
    )
    return TileProgram(name=name, phases=(mac, io), clock_hz=1.0 / t.tck_s)


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


def _int(workload: Workload, *names: str, default: int | None = None) -> int:
    for n in names:
        if workload.params.get(n) is not None:
            return int(workload.params[n])  # type: ignore[arg-type]
    if default is None:
        raise MappingError(
            "workload lacks a parameter this dataflow needs",
            path=f"workload.params.{names[0]}",
            expected="an integer",
            got=None,
        )
    return default


def _pim_plan(
    dataflow: str,
    program: TileProgram,
    passes: PassInfo,
    t: PimTiming,
    r: Mapping[str, float],
    energy_j: float,
) -> Plan:
    """The ``Plan`` of a PIM dataflow; ``meta`` carries the DRAM-timing answer ``r``."""
    meta = {
        "dataflow": dataflow,
        "placement": t.placement,
        "power_limited": t.power_limited,
        "pim_model_cycles": r["cycles"],
        "pim_model_seconds": r["seconds"],
        "pim_model_energy_j": energy_j,
        **{f"pim_{k}": v for k, v in r.items()},
    }
    return Plan(
        program=program,
        mapping=None,
        passes=passes,
        notes=f"{dataflow}: {t.placement}, power_limited={t.power_limited}",
        meta=meta,
    )


@register_dataflow("pim_decode")
def pim_decode(workload: Workload, arch: Architecture, knobs: Mapping[str, object]) -> Plan:
    """Decode attention on DRAM-PIM: K/V GEMVs in the units, softmax on the buffer die.

    Every query head streams its K/V head through the units (a unit holds one query vector:
    with GQA the shared K/V is re-read per query head, as PIM has no cross-head reuse).
    ``plan.meta`` holds the DRAM-timing answer (``pim_model_cycles``, ``pim_model_seconds``).
    """
    placement, limited = _knob_placement(knobs)
    B, H = _int(workload, "B", default=1), _int(workload, "H")
    L, D = _int(workload, "Skv", "S"), _int(workload, "D")
    dbyte = max(1, _int(workload, "dtype_bits", default=16) // 8)
    t = pim_timing(arch, placement, limited)
    r = decode_attention_timing(
        arch,
        L=L,
        heads=B * H,
        dhead=D,
        dbyte=dbyte,
        placement=t.placement,
        power_limited=t.power_limited,
    )
    io_bytes = 2.0 * B * H * L * dbyte
    program = _program(f"pim_decode:{workload.name}", arch, t, r["bytes_per_unit"], io_bytes, 1)
    energy = pim_energy_j(
        arch, pim_bytes=r["kv_bytes"], macs=r["macs"], io_bytes=io_bytes, seconds=r["seconds"]
    )
    passes = PassInfo(
        passes=2,
        buffer_bytes=float(L * dbyte),
        buffer_formula="L * dbyte",
        reason="scores leave the units for the softmax, then return",
    )
    return _pim_plan("pim_decode", program, passes, t, r, energy)


@register_dataflow("pim_gemv")
def pim_gemv(workload: Workload, arch: Architecture, knobs: Mapping[str, object]) -> Plan:
    """GEMV (``gemm`` with small ``M``) on DRAM-PIM: weights spread over every unit."""
    placement, limited = _knob_placement(knobs)
    M, N, K = _int(workload, "M", default=1), _int(workload, "N"), _int(workload, "K")
    dbyte = max(1, _int(workload, "dtype_bits", default=16) // 8)
    t = pim_timing(arch, placement, limited)
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
    program = _program(
        f"pim_gemv:{workload.name}", arch, t, r["weight_bytes"] / t.units, io_bytes, M
    )
    energy = pim_energy_j(
        arch,
        pim_bytes=M * r["weight_bytes"],
        macs=r["macs"],
        io_bytes=io_bytes,
        seconds=r["seconds"],
    )
    passes = PassInfo(
        passes=1,
        buffer_bytes=float(K * dbyte),
        buffer_formula="K * dbyte",
        reason="the input vector sits in the channel buffer",
    )
    return _pim_plan("pim_gemv", program, passes, t, r, energy)
