"""The mappers' search space for one Einsum, and a numpy estimator over many candidates.

A candidate maps one Einsum onto (DRAM, on-chip buffer, PE mesh): per rank ``r`` a buffer
factor ``t[r]`` and a spatial factor ``s[r]`` (at most one rank per mesh axis), the DRAM
factor ``ceil(size[r] / (t[r] * s[r]))``, and a DRAM loop order. :func:`batch_metrics`
evaluates thousands of candidates at once with the same rules as :func:`mappings.lower` +
:func:`archsim.estimate` for a one-phase program with one work item (reuse analysis for the
DRAM<->buffer traffic; load/compute/store pipelined with ``depth`` 2 or 1 and loads whose
latency ``D`` follows their transfer ``L``: ``L + D + C + S + max((n-1) max(L, C, S), q J +
r max(L, C, S))`` with ``q, r = divmod(n-1, depth)``, ``J = max(L + D + C, S + C)``, never
below the busiest port's total work). Tests hold the two equal.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

import numpy as np

from mappings._fit import unit_mesh
from mappings._lower import unit_ops
from mappings._mapping import FusionGroup, LevelMapping
from mappings._tensors import group_ops, group_ranks, group_tensors

if TYPE_CHECKING:
    from archsim import Architecture, ComputeUnit
    from workloads import Workload

__all__ = ["Space", "Candidates", "build_space", "batch_metrics", "to_group", "tile_choices"]


@dataclass(frozen=True)
class Space:
    """Everything the vectorised estimator needs about one Einsum on one architecture."""

    einsum: str
    ranks: tuple[str, ...]
    sizes: np.ndarray  # (R,) int64
    tensors: tuple[str, ...]
    tensor_mask: np.ndarray  # (T, R) bool: rank in tensor
    elems: np.ndarray  # (T,) float
    tbytes: np.ndarray  # (T,) bytes per element
    written: np.ndarray  # (T,) bool
    compute_cycles_full: float  # cycles with every PE busy
    unit: str
    mesh: tuple[int, int]
    dram: str
    buf: str
    cap_bytes: float
    dram_rd_bw: float
    dram_wr_bw: float
    buf_rd_bw: float
    buf_wr_bw: float
    dram_lat: float
    buf_lat: float
    e_dram_rd: float
    e_dram_wr: float
    e_buf_rd: float
    e_buf_wr: float
    e_ops: float  # dynamic compute energy, J
    static_w: float
    clock_hz: float
    orders: tuple[tuple[int, ...], ...]  # DRAM loop orders (rank indices, outermost first)
    dram_shared: bool = False  # DRAM reads and writes share one bus (shared_read_write)
    # compute-side accesses (mappings._lower module doc): the unit's operand reads from the
    # buffer and result writes into it, as transfers buffer <-> the unit's register level
    streams: bool = False  # charged (the buffer is no register file; the unit names one)
    points: float = float("inf")  # the Einsum's iteration points (the reads' bound)
    reg_rd_bw: float = float("inf")
    reg_wr_bw: float = float("inf")
    net_bw: float = float("inf")  # network buffer -> registers (inf: none)
    net_up_bw: float = float("inf")  # network registers -> buffer (inf: none)
    reg_lat: float = 0.0
    e_reg_rd: float = 0.0
    e_reg_wr: float = 0.0
    e_net: float = 0.0
    e_net_up: float = 0.0


@dataclass
class Candidates:
    """N candidate mappings: buffer factors, spatial factors, axes (0 none, 1 x, 2 y), order."""

    t: np.ndarray  # (N, R) int64
    s: np.ndarray  # (N, R) int64
    axis: np.ndarray  # (N, R) int8
    order: np.ndarray  # (N,) index into Space.orders

    def __len__(self) -> int:
        return len(self.order)

    def take(self, idx: np.ndarray) -> Candidates:
        """The candidates at ``idx``."""
        return Candidates(self.t[idx], self.s[idx], self.axis[idx], self.order[idx])


def build_space(
    workload: Workload,
    arch: Architecture,
    einsum: str,
    unit: ComputeUnit | None = None,
    max_orders: int = 24,
) -> Space:
    """The search space of ``einsum`` on ``arch`` (buffer = the first on-chip level)."""
    from mappings._fit import pick_units

    if unit is None:
        unit = pick_units(arch)[0]
    base = FusionGroup(einsums=(einsum,), levels=(LevelMapping(level=arch.levels[0].name),))
    sizes = group_ranks(workload, base)
    ranks = tuple(sizes)
    tens = group_tensors(workload, base)
    mask = np.array([[r in t.ranks for r in ranks] for t in tens], dtype=bool)
    ops = unit_ops(group_ops(workload, base), unit.ops_per_cycle)
    cyc = sum(v / float(unit.ops_per_cycle[k]) for k, v in ops.items())
    e_ops = sum(v * float(unit.energy_pj.get(k, 0.0)) for k, v in ops.items()) * 1e-12
    dram, buf = arch.levels[0], arch.levels[1]
    static = (
        sum(lv.leakage_w * lv.instances for lv in arch.levels)
        + sum(u.leakage_w * u.instances for u in arch.compute)
        + float(getattr(arch, "idle_power_w", 0))
    )
    # loop orders: every permutation for small rank counts, else a rotating sample
    perms = list(itertools.permutations(range(len(ranks))))
    if len(perms) > max_orders:
        perms = perms[:: max(1, len(perms) // max_orders)][:max_orders]
    reg = arch.level(unit.level) if unit.level is not None else None
    streams = reg is not None and buf.kind != "regfile" and reg.name != buf.name
    nets = {(n.src, n.dst): n for n in getattr(arch, "networks", ()) or ()}
    down = nets.get((buf.name, reg.name)) if reg is not None else None
    up = nets.get((reg.name, buf.name)) if reg is not None else None
    from mappings._lower import _points

    return Space(
        einsum=einsum,
        ranks=ranks,
        sizes=np.array([sizes[r] for r in ranks], dtype=np.int64),
        tensors=tuple(t.name for t in tens),
        tensor_mask=mask,
        elems=np.array([t.elems for t in tens]),
        tbytes=np.array([t.bytes_per_elem for t in tens]),
        written=np.array([t.written for t in tens]),
        compute_cycles_full=float(cyc),
        unit=unit.name,
        mesh=unit_mesh(unit),
        dram=dram.name,
        buf=buf.name,
        cap_bytes=float(buf.capacity_bytes or np.inf),
        dram_rd_bw=dram.read_bw_bytes_per_cycle,
        dram_wr_bw=(
            dram.read_bw_bytes_per_cycle
            if getattr(dram, "shared_read_write", False)
            else dram.write_bw_bytes_per_cycle
        ),
        buf_rd_bw=buf.read_bw_bytes_per_cycle,
        buf_wr_bw=buf.write_bw_bytes_per_cycle,
        dram_lat=float(dram.latency_cycles),
        buf_lat=float(buf.latency_cycles),
        e_dram_rd=dram.read_energy_pj_per_byte * 1e-12,
        e_dram_wr=dram.write_energy_pj_per_byte * 1e-12,
        e_buf_rd=buf.read_energy_pj_per_byte * 1e-12,
        e_buf_wr=buf.write_energy_pj_per_byte * 1e-12,
        e_ops=e_ops,
        static_w=static,
        clock_hz=float(arch.clock.core_hz),
        orders=tuple(perms),
        dram_shared=bool(getattr(dram, "shared_read_write", False)),
        streams=streams,
        points=_points(workload, einsum),
        reg_rd_bw=float(reg.read_bw_bytes_per_cycle) if reg and streams else float("inf"),
        reg_wr_bw=float(reg.write_bw_bytes_per_cycle) if reg and streams else float("inf"),
        net_bw=float(down.bw_bytes_per_cycle) if down is not None else float("inf"),
        net_up_bw=float(up.bw_bytes_per_cycle) if up is not None else float("inf"),
        reg_lat=float(reg.latency_cycles) if reg and streams else 0.0,
        e_reg_rd=reg.read_energy_pj_per_byte * 1e-12 if reg and streams else 0.0,
        e_reg_wr=reg.write_energy_pj_per_byte * 1e-12 if reg and streams else 0.0,
        e_net=float(getattr(down, "energy_pj_per_byte", 0.0)) * 1e-12 if down else 0.0,
        e_net_up=float(getattr(up, "energy_pj_per_byte", 0.0)) * 1e-12 if up else 0.0,
    )


def tile_choices(size: int, cap: int | None = None) -> list[int]:
    """Candidate factors of a rank of ``size``: powers of two, divisors and ``size`` (<= cap)."""
    lim = size if cap is None else min(size, cap)
    out = {1, lim}
    p = 1
    while p <= lim:
        out.add(p)
        p *= 2
    for d in range(1, int(math.isqrt(size)) + 1):
        if size % d == 0:
            for x in (d, size // d):
                if x <= lim:
                    out.add(x)
    return sorted(out)


def batch_metrics(space: Space, c: Candidates) -> dict[str, np.ndarray]:
    """Estimated ``cycles``, ``energy_j``, ``dram_bytes``, ``buffer_bytes`` and ``valid``.

    Complexity O(N * R * T) numpy operations (no Python loop over candidates).
    """
    size = space.sizes[None, :]
    inner = c.t * c.s
    top = -(-size // inner)  # ceil
    ordr = np.asarray(space.orders, dtype=np.int64)[c.order]  # (N, R)
    f_ord = np.take_along_axis(top, ordr, axis=1)
    pos = np.arange(ordr.shape[1])[None, :]
    trips = np.prod(top, axis=1).astype(np.float64)
    loads = np.zeros(len(c))
    stores = np.zeros(len(c))
    dram_rd = np.zeros(len(c))
    dram_wr = np.zeros(len(c))
    buf = np.zeros(len(c))
    staged = np.zeros(len(c))  # tiles that change every trip: one buffer per tile in flight
    turning = f_ord > 1
    turns = turning.any(axis=1)
    last_turn = ordr.shape[1] - 1 - np.argmax(turning[:, ::-1], axis=1)
    inner_loop = np.take_along_axis(ordr, last_turn[:, None], axis=1)[:, 0]
    n_load = np.zeros(len(c))
    n_store = np.zeros(len(c))
    s_rd = np.zeros(len(c))  # per trip: compute-side reads (buffer -> registers)
    s_wr = np.zeros(len(c))  # per trip: compute-side writes (registers -> buffer)
    t_buf = c.t  # buffer-level factors, in rank order (the buffer's loop order)
    rank_pos = np.arange(len(space.ranks))[None, :]
    for ti in range(len(space.tensors)):
        own = space.tensor_mask[ti]
        own_ord = own[ordr]
        rel = own_ord & (f_ord > 1)
        last = np.where(rel.any(axis=1), ordr.shape[1] - 1 - np.argmax(rel[:, ::-1], axis=1), -1)
        mult = np.prod(np.where((pos <= last[:, None]) & ~own_ord, f_ord, 1), axis=1)
        b = space.elems[ti] * space.tbytes[ti]
        tile = np.prod(np.where(own[None, :], np.minimum(size, inner), 1), axis=1)
        buf += tile * space.tbytes[ti]
        staged += np.where(~turns | own[inner_loop], tile * space.tbytes[ti], 0.0)
        if space.written[ti]:
            wr = b * mult
            back = b * (mult - 1)
            stores += np.ceil(wr / trips)
            n_store += 1
            dram_wr += np.ceil(wr / trips) * trips
            if np.any(back > 0):
                loads += np.ceil(back / trips)
                dram_rd += np.ceil(back / trips) * trips
                n_load += back > 0
        else:
            rd = b * mult
            loads += np.ceil(rd / trips)
            dram_rd += np.ceil(rd / trips) * trips
            n_load += 1
        if space.streams:
            # compute-side refills (mappings._reuse._boundary at the compute unit): the loops
            # of both levels, DRAM first, with the exact count of a remainder's iterations
            own_b = own[None, :] & (t_buf > 1)
            in_buf = own_b.any(axis=1)
            last_b = np.where(in_buf, len(space.ranks) - 1 - np.argmax(own_b[:, ::-1], axis=1), -1)
            g_before = (~own[None, :]) & (t_buf > 1) & (rank_pos < last_b[:, None])
            # a rank's DRAM loop is before the last own loop when that loop is at the buffer,
            # or when it sits before the last own DRAM loop
            d_pos = np.argsort(ordr, axis=1)  # position of each rank in the DRAM order
            d_before = (top > 1) & (in_buf[:, None] | (d_pos < last[:, None])) & ~own[None, :]
            exact = np.minimum(top * t_buf, -(-size // c.s))
            m_r = np.where(g_before, exact, np.where(d_before, top, 1))
            cmult = np.prod(m_r, axis=1).astype(np.float64)
            cap = space.points * space.tbytes[ti]
            if space.written[ti]:
                s_wr += np.ceil(np.minimum(b * cmult, cap) / trips)
                back_c = np.minimum(b * np.maximum(cmult - 1, 0), cap)
                s_rd += np.ceil(back_c / trips)
            else:
                s_rd += np.ceil(np.minimum(b * cmult, cap) / trips)
    used = np.prod(c.s, axis=1).astype(np.float64)
    comp = space.compute_cycles_full * (space.mesh[0] * space.mesh[1]) / used / trips
    # loads are pipelined (archsim.engine._pipeline): transfer, then the latency as a delay;
    # the DRAM fills and the compute-side reads use different ports and run side by side
    down = min(space.buf_rd_bw, space.reg_wr_bw, space.net_bw)
    up = min(space.reg_rd_bw, space.buf_wr_bw, space.net_up_bw)
    lt = np.maximum(
        np.where(loads > 0, loads / min(space.dram_rd_bw, space.buf_wr_bw), 0.0),
        np.where(s_rd > 0, s_rd / down, 0.0),
    )
    dl = np.maximum(
        np.where(loads > 0, float(space.dram_lat), 0.0),
        np.where(s_rd > 0, float(space.buf_lat), 0.0),
    )
    st = np.maximum(
        np.where(stores > 0, space.buf_lat + stores / min(space.buf_rd_bw, space.dram_wr_bw), 0.0),
        np.where(s_wr > 0, space.reg_lat + s_wr / up, 0.0),
    )
    # lower() (staged_bytes) uses depth 2 only when the held tiles and two staged ones fit,
    # 3 when the loads carry compute-side reads and three staged tiles fit
    double = buf + staged <= space.cap_bytes
    triple = buf + 2 * staged <= space.cap_bytes
    depth = np.where(s_rd > 0, np.where(triple, 3, np.where(double, 2, 1)), np.where(double, 2, 1))
    # archsim._estimate._body_time: one tile through every stage, then per further tile a
    # chain step or, per ``depth`` tiles, a window cycle
    chain = np.maximum(np.maximum(lt, comp), st)
    cyc = np.maximum(lt + dl + comp, st + comp)
    m = trips - 1
    q = m // depth
    cycles = lt + dl + comp + st + np.maximum(m * chain, q * cyc + (m - q * depth) * chain)
    # every port's work per trip (engine: CompiledStep.work / capacity)
    busiest = np.maximum.reduce(
        [
            loads / space.dram_rd_bw,
            stores / space.dram_wr_bw,
            (stores + s_rd) / space.buf_rd_bw,
            (loads + s_wr) / space.buf_wr_bw,
            s_rd / min(space.reg_wr_bw, space.net_bw),
            s_wr / min(space.reg_rd_bw, space.net_up_bw),
            comp,
        ]
    )
    if space.dram_shared:  # one DRAM bus serves loads and stores (engine: LEVEL.bus)
        busiest = np.maximum(busiest, (loads + stores) / space.dram_rd_bw)
    cycles = np.maximum(cycles, trips * busiest)
    secs = cycles / space.clock_hz
    energy = (
        dram_rd * (space.e_dram_rd + space.e_buf_wr)
        + dram_wr * (space.e_dram_wr + space.e_buf_rd)
        + s_rd * trips * (space.e_buf_rd + space.e_reg_wr + space.e_net)
        + s_wr * trips * (space.e_reg_rd + space.e_buf_wr + space.e_net_up)
        + space.e_ops  # real ops: occupancy changes time, not energy
        + space.static_w * secs
    )
    valid = (buf <= space.cap_bytes) & np.all(c.t * c.s < size + c.s, axis=1)
    return {
        "cycles": cycles,
        "energy_j": energy,
        "dram_bytes": dram_rd + dram_wr,
        "buffer_bytes": buf,
        "valid": valid,
        "trips": trips,
    }


def to_group(
    space: Space, t: np.ndarray, s: np.ndarray, axis: np.ndarray, order: int
) -> FusionGroup:
    """The FusionGroup of one candidate (row arrays of length R)."""
    top = {r: int(-(-int(space.sizes[i]) // int(t[i] * s[i]))) for i, r in enumerate(space.ranks)}
    top = {r: f for r, f in top.items() if f > 1}  # unit loops do not matter: drop them
    dram_order = tuple(space.ranks[i] for i in space.orders[int(order)] if space.ranks[i] in top)
    spatial = {r: int(s[i]) for i, r in enumerate(space.ranks) if s[i] > 1}
    ax: dict[str, Literal["x", "y"]] = {
        r: ("x" if axis[i] == 1 else "y") for i, r in enumerate(space.ranks) if s[i] > 1
    }
    return FusionGroup(
        einsums=(space.einsum,),
        compute=space.unit,
        levels=(
            LevelMapping(level=space.dram, temporal=top, order=dram_order),
            LevelMapping(
                level=space.buf,
                temporal={r: int(t[i]) for i, r in enumerate(space.ranks) if t[i] > 1},
                spatial=spatial,
                spatial_axis=ax,
            ),
        ),
    )
