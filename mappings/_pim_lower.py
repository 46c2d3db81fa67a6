"""Lowering a mapping on a DRAM-PIM architecture: in-bank streams counted from the loop nest.

:func:`mappings._lower.lower` hands a ``kind: pim`` architecture's mapping here. What a group
costs is read from the mapping and the cascade, as for any mapping; what an in-bank read
*takes* is the architecture's DRAM command stream (:class:`mappings._pim.PimTiming`: the
placement's command gap, the exposed all-bank row switch, refresh, all from the command-level
model of :mod:`archsim.dram`), which the loop-nest lowering of spatial arrays lacks.

A group whose compute unit is the PIM unit (a unit on the DRAM level) has one level, the DRAM.
Its ``spatial`` factors are the units it occupies, outermost first: the leading factors whose
product ``p`` stays within the channel count take ``channels // p`` channels each (a K/V stream
per channel, or a stream's keys over two), the rest are spread evenly over those channels'
units, or all units over all channels where they do not fit (:func:`unit_channels`); its
``temporal`` factors and loop order are what each unit walks. Per unit and per input the
group reads:

* **in bank** -- the stored inputs (cascade inputs) the DRAM level keeps (``keep``: the
  recipes name K/V, MLA's latent cache, a GEMV's weights); with ``keep`` unset, the largest
  stored input that has every spatial rank. Each unit holds its own slice. Its bytes per unit
  are the product of the temporal factors of its ranks x its element size, in whole columns
  (``burst_bytes``) of whole or partial rows. Ranks it lacks inside its innermost rank in the
  loop order are applied on the open row: one MAC command per ``vectors_per_cmd`` of them per
  column (a GQA group's query heads); ranks it lacks outside that re-stream it (a GEMV's
  input vectors). A unit's time is ``columns x commands per column x command gap + rows x
  exposed row switch`` per pass, stretched by refresh;
* **broadcast** -- every other input (the query vector, probabilities coming back from the
  host): it crosses the channel interface into each channel whose units need it.

A group of an attention core streams only the live keys of what its ``skip`` names (the
host issues MAC commands for those alone: :func:`live_key_fraction`): a condition (causal,
sliding window) per key, a ``block`` mask per ``M``-key block, a ``slice`` mask per key. A
kept tensor a host group makes (CCA's compressed K/V, written by the host's projection) is a
cache the banks hold, like a cascade input.

The group's outputs (scores leaving for the softmax, a GEMV's result) cross the interface
once. Groups on any other unit, or with ``compute`` unset, are the host's work (AttAcc's
buffer-die softmax, a GPU): only their tensors that cross to or from the PIM groups are
charged, as the broadcast inputs and outputs above. The crossing bytes are timed on the DRAM
level's external bandwidth.

The program: per PIM group one phase of ``units`` slots, one trip per DRAM row a unit opens,
charging the MAC commands it issues at the unit's declared rate with ``occupancy`` = that
rate's time over the stream's (row switches, refresh and the command gap leave the lanes idle);
the interface transfers as serial phases before (broadcast inputs) and after (outputs) it.

NOTE: a stream rank spread over channels by a product of factors puts ``prod(temporal)``
streams on every channel: 30 K/V streams on 8 channels are 5 per channel where a round-robin
placement of the flattened streams (AttAcc) reaches 4; the mapping has no fused rank to say
it. ``meta["pim_groups"]`` holds each group's counted stream.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING

import numpy as np

from archsim import Compute, Phase, Step, TileProgram, Transfer
from archsim.errors import MappingError
from mappings._check import check_mapping, compute_unit
from mappings._pim import PimTiming, check_unit_rate, pim_timing
from mappings._splits import apply_splits
from mappings._tensors import group_ops, group_tensors

if TYPE_CHECKING:
    from archsim import Architecture
    from mappings._mapping import FusionGroup, Mapping
    from mappings._reuse import TensorUse
    from workloads import Workload

__all__ = [
    "InBankStream",
    "PimGroupWork",
    "is_pim_group",
    "live_key_fraction",
    "lower_pim",
    "pim_group_work",
]


def is_pim_group(arch: Architecture, group: FusionGroup) -> bool:
    """Whether ``group`` computes on a PIM unit (a unit on the architecture's DRAM level).
    A group with ``compute`` unset is the host's (the presets declare no buffer-die unit)."""
    if group.compute is None:
        return False
    unit = compute_unit(arch, group)
    return bool(getattr(unit, "per_pim_unit", False)) and unit.level == arch.levels[0].name


@dataclass(frozen=True)
class InBankStream:
    """One in-bank input as one unit streams it (counts per unit, one pass)."""

    tensor: str
    bytes_per_unit: float
    columns: int
    rows: int
    cmds_per_column: int
    passes: int
    cycles: float

    @property
    def commands(self) -> int:
        """MAC commands the unit issues for it over all passes."""
        return self.passes * self.columns * self.cmds_per_column


@dataclass(frozen=True)
class PimGroupWork:
    """What one PIM group costs, counted from its loop nest (see the module doc).

    ``mac_cycles``: tCK of the busiest unit's streams before refresh; ``in_bank_bytes``: bytes
    the units read from their banks (re-reads on the open row included), whole stack;
    ``io_in_bytes`` / ``io_out_bytes``: bytes crossing the channel interface in / out.
    """

    group: int
    units: int
    streams: tuple[InBankStream, ...]
    mac_cycles: float
    rows: int
    issued_macs: float
    useful_macs: float
    in_bank_bytes: float
    io_in_bytes: float
    io_out_bytes: float


def _producers(workload: Workload) -> set[str]:
    return {e.output.name for e in workload.cascade.einsums}


def unit_channels(
    spatial: dict[str, int], channels: int, per_channel: int, path: str = "spatial"
) -> np.ndarray:
    """Channel of every unit the spatial factors occupy (row-major over ``spatial``,
    outermost first; module doc): the leading factors whose product ``p`` stays within the
    channels take ``channels // p`` channels each, and the remaining factors are spread evenly
    over those channels' units; where they need more units than those channels have (MLA's
    7 keys x 36 feature slices on 16 channels), every unit is spread evenly over all channels.

    Raises
    ------
    MappingError
        More units than the stack has.
    """
    sizes = [int(f) for f in spatial.values()]
    lead = 1
    k = 0
    while k < len(sizes) and lead * sizes[k] <= channels:
        lead *= sizes[k]
        k += 1
    inner = math.prod(sizes[k:])
    per_group = channels // lead
    if inner > per_group * per_channel:  # the inner factors need every channel: all spread
        units = lead * inner
        if units > channels * per_channel:
            raise MappingError(
                f"the spatial factors occupy {units} units; the stack has "
                f"{channels * per_channel} ({channels} channels x {per_channel})",
                path=path,
                expected=f"a product <= {channels * per_channel}",
                got=dict(spatial),
            )
        return (np.arange(units) * channels) // units
    group = np.repeat(np.arange(lead), inner)
    within = np.tile(np.arange(inner), lead)
    return group * per_group + (within * per_group) // max(1, inner)


def _channel_replication(
    spatial: dict[str, int], ranks: tuple[str, ...], channel: np.ndarray
) -> float:
    """Channels that need one element of a tensor over ``ranks``: the units sharing it (the
    spatial ranks it lacks) on their channels (:func:`unit_channels`), per distinct element."""
    names = list(spatial)
    if not names:
        return 1.0
    shape = tuple(spatial[r] for r in names)
    idx = np.indices(shape).reshape(len(shape), -1)
    own = [i for i, r in enumerate(names) if r in ranks]
    key = (
        np.ravel_multi_index(tuple(idx[own]), tuple(shape[i] for i in own)) if own else 0 * channel
    )
    pairs = np.unique(np.stack([key, channel]), axis=1).shape[1]
    return pairs / len(np.unique(key))


def _in_bank(
    uses: list[TensorUse],
    keep: tuple[str, ...] | None,
    spatial: dict[str, int],
    produced: set[str],
    host_made: set[str],
) -> set[str]:
    """Inputs the units hold in their banks: the DRAM level's ``keep`` where the mapping names
    it -- a cascade input, or a tensor a host group makes (a K/V cache the host's projection
    writes into the banks, token by token: its write is the host's) --, else the largest
    stored input (a cascade input) that has every spatial rank."""
    inputs = [tu for tu in uses if tu.read and not tu.written]
    if keep is not None:
        return {tu.name for tu in inputs if tu.name in keep and tu.name not in produced - host_made}
    stored = [tu for tu in inputs if tu.name not in produced]
    able = [tu for tu in stored if all(r in tu.ranks for r in spatial)]
    return {max(able, key=lambda tu: tu.elems * tu.bytes_per_elem).name} if able else set()


def live_key_fraction(workload: Workload, group: FusionGroup) -> tuple[float, set[str]] | None:
    """(live key positions / all, the key ranks) of a PIM group holding attention-core
    Einsums, for what its ``skip`` names: the host issues MAC commands only for the keys a
    condition (causal, sliding window) or a skipped mask (``block``: whole ``M``-key blocks of
    the query's block row; ``slice``: single keys) leaves live, so a unit streams only their
    columns. None when the group skips nothing or holds no attention core.

    NOTE: the fraction is the mean over the query rows and streams; keys live unevenly over the
    units (a random block mask) leave the busiest unit somewhat above it."""
    from mappings._lower import live_tile_fraction, roles_of
    from mappings._stream import numeric_params

    skip = frozenset(group.skip)
    roles = roles_of(workload)
    if roles is None or not skip or not set(roles.core) & set(group.einsums):
        return None
    spec = workload.cascade.tensors[roles.score]
    key_tile = 1  # a condition or a slice: single keys
    if spec.sparsity is not None and spec.sparsity.kind == "block" and "block" in skip:
        from workloads._sparsity import tile_shape

        tile = tile_shape(spec.sparsity, spec.ranks, numeric_params(workload.params))
        key_tile = math.prod(
            n for r, n in zip(spec.ranks, tile, strict=True) if r in roles.key_ranks
        )
    query = int(workload.sizes.get(roles.query, 1))
    return live_tile_fraction(workload, (query, key_tile, skip), roles), set(roles.key_ranks)


def _in_bank_stream(
    t: PimTiming,
    tu: TensorUse,
    temporal: dict[str, int],
    order: tuple[str, ...],
    vpc: int,
    live: float = 1.0,
) -> InBankStream:
    per_unit = math.prod(temporal.get(r, 1) for r in tu.ranks) * tu.bytes_per_elem * live
    mine = [i for i, r in enumerate(order) if r in tu.ranks]
    inner = mine[-1] if mine else -1
    outside = math.prod(temporal[r] for r in order[: inner + 1] if r not in tu.ranks)
    on_row = math.prod(temporal[r] for r in order[inner + 1 :] if r not in tu.ranks)
    cmds = max(1, math.ceil(on_row / max(1, vpc)))
    cols = math.ceil(per_unit / t.column_bytes)
    rows = math.ceil(cols / t.columns_per_row)
    cycles = outside * (cols * cmds * t.cycles_per_column + rows * t.row_switch_cycles)
    return InBankStream(tu.name, float(per_unit), cols, rows, cmds, outside, float(cycles))


def pim_group_work(
    workload: Workload,
    group: FusionGroup,
    index: int,
    arch: Architecture,
    t: PimTiming,
    host_made: set[str] = frozenset(),  # type: ignore[assignment]  # read only
) -> PimGroupWork:
    """The counted in-bank streams and interface bytes of PIM group ``index``.

    Raises
    ------
    MappingError
        More than the DRAM level in the group, more units than the placement has, or no input
        the units can hold in their banks.
    """
    path = f"mapping.groups[{index}]"
    dram = arch.levels[0].name
    if len(group.levels) != 1 or group.levels[0].level != dram:
        raise MappingError(
            "a PIM unit computes in the DRAM: its group has the DRAM level alone",
            path=f"{path}.levels",
            expected=f"one level, {dram!r}",
            got=[lm.level for lm in group.levels],
        )
    lm = group.levels[0]
    spatial = {r: int(f) for r, f in lm.spatial.items() if f > 1}
    units = math.prod(spatial.values())
    if units > t.units:
        raise MappingError(
            f"the spatial factors occupy {units} units; the {t.placement} placement has "
            f"{t.units} ({t.channels} channels x {t.units_per_pc * t.pseudo_channels})",
            path=f"{path}.levels[0].spatial",
            expected=f"a product <= {t.units}",
            got=dict(lm.spatial),
        )
    per_channel = t.units_per_pc * t.pseudo_channels
    channel = unit_channels(spatial, t.channels, per_channel, f"{path}.levels[0].spatial")
    temporal = {r: int(f) for r, f in lm.temporal.items() if f > 1}
    order = tuple(r for r in lm.loop_order() if r in temporal)
    produced = _producers(workload)
    macs_per_cmd = check_unit_rate(arch, t)[2]
    streams: list[InBankStream] = []
    in_bank = io_in = io_out = 0.0
    uses = group_tensors(workload, group)
    banked = _in_bank(uses, lm.keep, spatial, produced, host_made)
    live = live_key_fraction(workload, group)
    for tu in uses:
        nbytes = tu.elems * tu.bytes_per_elem
        if tu.written:
            io_out += nbytes
        elif tu.name in banked:
            elems_per_col = max(1, int(t.column_bytes // max(tu.bytes_per_elem, 1e-9)))
            frac = live[0] if live is not None and set(tu.ranks) & live[1] else 1.0
            s = _in_bank_stream(t, tu, temporal, order, macs_per_cmd // elems_per_col, frac)
            streams.append(s)
            in_bank += nbytes * frac * s.passes * s.cmds_per_column
        else:
            io_in += nbytes * _channel_replication(spatial, tu.ranks, channel)
    if not streams:
        raise MappingError(
            "no input of the group stays in the units' banks: an in-bank input is a stored "
            "input (a cascade input) the DRAM level keeps, or with keep unset one that has "
            "every spatial rank (each unit holds its own slice)",
            path=f"{path}.levels[0].keep",
            expected="a stored input of the group (K, V, weights)",
            got=lm.keep,
        )
    commands = sum(s.commands for s in streams)
    return PimGroupWork(
        group=index,
        units=units,
        streams=tuple(streams),
        mac_cycles=float(sum(s.cycles for s in streams)),
        rows=sum(s.passes * s.rows for s in streams),
        issued_macs=float(commands * macs_per_cmd),
        useful_macs=float(group_ops(workload, group).get("mac", 0.0)),
        in_bank_bytes=float(in_bank),
        io_in_bytes=float(io_in),
        io_out_bytes=float(io_out),
    )


def _io_phase(name: str, nbytes: float, arch: Architecture) -> Phase:
    dram = arch.levels[0].name
    return Phase(name, body=Step(loads=(Transfer("io", math.ceil(nbytes), dram, dram),)), trips=1)


def _pim_phase(name: str, work: PimGroupWork, arch: Architecture, t: PimTiming) -> Phase:
    unit, op, _ = check_unit_rate(arch, t)
    trips = max(1, work.rows)
    stream = t.refresh_factor * work.mac_cycles
    occupancy = work.issued_macs / unit.ops_per_cycle[op] / stream if stream > 0 else 1.0
    body = Step(
        compute=(
            Compute(
                unit.name,
                {op: work.issued_macs / trips},
                occupancy=min(1.0, max(occupancy, 1e-9)),
            ),
        )
    )
    return Phase(name, body=body, trips=trips, work_items=work.units, slots=work.units, depth=1)


def timing_of(mapping: Mapping, arch: Architecture) -> PimTiming:
    """The placement and command gap a PIM mapping names (``RECIPE:PLACEMENT:GAP``)."""
    from mappings._pim_mapping import parse_name

    _, placement, limited = parse_name(mapping.name)
    return pim_timing(arch, placement, limited)


def lower_pim(
    workload: Workload,
    mapping: Mapping,
    arch: Architecture,
    t: PimTiming | None = None,
    *,
    check: bool = True,
) -> TileProgram:
    """The tile program of ``mapping`` on the PIM architecture ``arch`` (module doc).

    ``t``: the stream timing (default: the placement and gap the mapping's name gives);
    ``check``: run :func:`mappings._check.check_mapping` first.
    ``meta``: ``pim_groups`` (each PIM group's :class:`PimGroupWork` as a dict), ``in_bank_bytes``,
    ``macs`` (useful, PIM groups), ``io_bytes``, ``units`` (the most any group occupies).
    """
    if check:  # factors cover the ranks, every Einsum in one group, units and op kinds
        check_mapping(workload, mapping, arch)
    t = t or timing_of(mapping, arch)
    w = apply_splits(workload, mapping.splits)
    phases: list[Phase] = []
    works: list[PimGroupWork] = []
    by = {e.name: e for e in w.cascade.einsums}
    host_made = {
        by[n].output.name for g in mapping.groups if not is_pim_group(arch, g) for n in g.einsums
    }
    for i, g in enumerate(mapping.groups):
        if not is_pim_group(arch, g):
            continue  # the host's work: charged only where its tensors cross (module doc)
        work = pim_group_work(w, g, i, arch, t, host_made)
        works.append(work)
        label = f"g{i}:{'+'.join(g.einsums)}"
        if work.io_in_bytes >= 1:
            phases.append(_io_phase(f"{label}:in", work.io_in_bytes, arch))
        phases.append(_pim_phase(label, work, arch, t))
        if work.io_out_bytes >= 1:
            phases.append(_io_phase(f"{label}:out", work.io_out_bytes, arch))
    if not works:
        raise MappingError(
            "no group of the mapping runs on the PIM unit",
            path="mapping.groups",
            expected=f"a group with compute on a unit at {arch.levels[0].name!r}",
            got=[g.compute for g in mapping.groups],
        )
    meta = {
        "pim_groups": [asdict(x) for x in works],
        "in_bank_bytes": sum(x.in_bank_bytes for x in works),
        "macs": sum(x.useful_macs for x in works),
        "io_bytes": sum(x.io_in_bytes + x.io_out_bytes for x in works),
        "mac_cycles": sum(x.mac_cycles for x in works),
        "units": max(x.units for x in works),
        "mapping": mapping.name,
    }
    return TileProgram(
        name=mapping.name or workload.name, phases=tuple(phases), clock_hz=1.0 / t.tck_s, meta=meta
    )
