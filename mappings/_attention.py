"""Spatial attention dataflows: ``unfused``, ``flat`` and ``fusemax`` (2D + 1D arrays).

Shapes come from the workload's parameters (``B, H, Sq, Skv, D``; ``E = F = D``). Binding
follows FuseMax (Nayak et al., MICRO'24; ``reference/fusemax_cascades.md``) and its artifact
(FPSG-UIUC/micro24-fusemax-artifact @ f543beb):

* ``unfused`` and ``flat`` live in :mod:`mappings._flat` (the artifact's 3-pass baselines).
* ``fusemax``: the 1-pass cascade; the 2D array runs QK, LM, SLN (exp = 6 MAC + 1 add),
  SLD and SLNV, busy ``2E + 9`` cycles per ``M0 x P0`` tile; the 1D array runs the
  running-state Einsums (RM, PRM, SPD, RD, SPNV, RNV: ``10 + 2F`` cycles per tile) of the same
  tile concurrently, and AV (``F`` divides per query row) once per query group. K/V stream
  once per group of ``q_group`` query rows whose running state stays in the global buffer;
  the default group is the artifact's P1 rule (:func:`fusemax_p1`). With FuseMax's numbers
  the 1D array is the bottleneck by one cycle per tile plus the AV divides, which is where
  the artifact's 2D utilization of 0.89 at 1K (0.99 at 1M) comes from.
"""

from __future__ import annotations

import math
from collections.abc import Mapping as AbcMapping
from typing import TYPE_CHECKING

from archsim.errors import InfeasibleMappingError, MappingError
from mappings._attn_common import (
    attention_shape,
    causal_fraction,
    glb_level,
    pos_int,
)
from mappings._fit import pick_units, unit_mesh
from mappings._flat import flat_plan, unfused_plan
from mappings._gemm import _known
from mappings._lower import unit_ops
from mappings._registry import PassInfo, Plan, register_dataflow

if TYPE_CHECKING:
    from archsim import Architecture, Phase
    from workloads import Workload

__all__ = ["attention_shape", "unfused_plan", "flat_plan", "fusemax_plan", "fusemax_p1"]


@register_dataflow("fusemax")
def fusemax_plan(workload: Workload, arch: Architecture, knobs: AbcMapping[str, object]) -> Plan:
    """FuseMax 1-pass binding.

    Knobs: ``m0`` (keys per tile, default mesh rows), ``p0`` (queries per tile, default mesh
    columns), ``q_group`` (query rows whose running state stays on chip while K/V stream
    once; default the artifact's P1 rule, :func:`fusemax_p1`, times ``p0``). When ``q_group``
    does not divide ``Sq`` the last group holds only the remaining rows and costs only their
    tiles (a second phase, ``fusemax_tail``).
    """
    from archsim import Compute, Phase, Step, TileProgram, Transfer

    _known(knobs, {"m0", "p0", "q_group"})
    s = attention_shape(workload)
    glb = glb_level(arch)
    big, small = pick_units(arch)
    dram = arch.levels[0].name
    mx, my = unit_mesh(big)
    m0 = min(pos_int(knobs, "m0", mx), s["Skv"])
    p0 = min(pos_int(knobs, "p0", my), s["Sq"])
    by, e_, f_ = s["bytes"], s["E"], s["F"]
    cap = float(glb.capacity_bytes or float("inf"))
    kv_tile = m0 * (e_ + f_) * by  # one K/V tile (the P1 rule's 2*256*(E+F) bytes)
    row_state = (e_ + f_ + 2) * by  # Q row + RNV row + RM + RD
    p_blocks = math.ceil(s["Sq"] / p0)
    if "q_group" in knobs:
        qg = min(pos_int(knobs, "q_group", p0), s["Sq"])
        p1 = math.ceil(qg / p0)
    else:
        p1 = fusemax_p1(p_blocks, cap, kv_tile, row_state * p0, path="arch.levels.GLB")
        qg = min(p1 * p0, s["Sq"])
    used = qg * row_state + kv_tile
    if used > cap:
        raise MappingError(
            f"query group overflows {glb.name} by {used - cap:,.0f} bytes",
            path="knobs.q_group",
            expected=f"<= {int(max(cap - kv_tile, 0) // row_state)}",
            got=qg,
        )
    frac = causal_fraction(s)
    m1 = math.ceil(s["Skv"] / m0)
    n = m0 * p0
    # 2D: QK + SLNV (2E MAC), SLN exp = 6 MAC + 1 sub, LM 1 max, SLD 1 add -> 2E+9 per element
    # (the preset's 2D PEs run exp at 1/6 per cycle: the 6-MAC Taylor exp of FuseMax)
    two_d = unit_ops({"mac": 2 * e_ * n, "exp": n, "add": 2 * n, "max": n}, big.ops_per_cycle)
    # 1D: RM max, PRM sub+exp, SPD mul, RD add, SPNV mul (F), RNV add (F), per query row
    one_d = unit_ops(
        {"max": p0, "exp": p0, "add": p0 * (2 + f_), "mul": p0 * (1 + f_)}, small.ops_per_cycle
    )
    kv_bytes = s["Skv"] * (e_ + f_) * by * frac  # K/V streamed once per query group

    def phase(name: str, rows: int, groups: int, after: tuple[str, ...] | None) -> Phase:
        tiles = max(1, math.ceil(math.ceil(rows / p0) * m1 * frac))
        # Per tile: its share of the group's K/V stream, Q load, AV (F divides per query row
        # on the 1D array, AV = RNV / RD) and O store. The hardware double-buffers across
        # groups (the next group's Q loads while this one's tiles run), so the groups of all
        # heads form one pipelined stream of tiles: latency ~ max(traffic/BW, compute), the
        # artifact's rule, with one pipeline fill.
        one = dict(one_d)
        for k, v in unit_ops({"div": rows * f_ / tiles}, small.ops_per_cycle).items():
            one[k] = one.get(k, 0.0) + v
        body = Step(
            loads=(
                Transfer("KV", int(math.ceil(kv_bytes / tiles)), dram, glb.name),
                Transfer("Q", int(math.ceil(rows * e_ * by / tiles)), dram, glb.name),
            ),
            compute=(Compute(big.name, two_d), Compute(small.name, one)),
            stores=(Transfer("O", int(math.ceil(rows * f_ * by / tiles)), glb.name, dram),),
            buffer_bytes=int(kv_tile),
        )
        return Phase(
            name,
            body=body,
            trips=tiles * groups,
            work_items=1,
            slots=1,
            depth=2,
            staging_level=glb.name,
            after=after,
        )

    bh = s["B"] * s["H"]
    full, tail = divmod(s["Sq"], qg)
    phases = []
    if full:
        phases.append(phase("fusemax", qg, bh * full, None))
    if tail:
        phases.append(phase("fusemax_tail", tail, bh, ("fusemax",) if full else None))
    meta = {
        "dataflow": "fusemax",
        "m0": m0,
        "p0": p0,
        "q_group": qg,
        "P1": p1,
        "tail_rows": tail,
        "kv_passes": full + (1 if tail else 0),
        "buffer_used_bytes": used,
        "cycles_2d_per_tile": 2 * e_ + 9,
    }
    prog = TileProgram("fusemax", tuple(phases), clock_hz=arch.clock.core_hz, meta=meta)
    # the 1-pass class needs only one query tile's running state and a K/V tile on chip;
    # a larger q_group (meta) only cuts K/V re-reads
    info = PassInfo(
        1,
        float(p0 * row_state + 2 * kv_tile),
        f"P0*(E+F+2)*{by}B + 2*M0*(E+F)*{by}B: independent of S",
        reason="1 pass over m: running max/denominator (RM, RD, RNV) along m1",
    )
    return Plan(
        program=prog,
        passes=info,
        meta=meta,
        notes=f"FuseMax m0={m0} p0={p0} q_group={qg} (P1={p1}, tail {tail} rows)",
    )


def fusemax_p1(
    p_blocks: int,
    cap_bytes: float,
    kv_tile_bytes: float,
    block_state_bytes: float,
    *,
    path: str = "arch",
) -> int:
    """Query blocks per group by the FuseMax artifact's P1 rule.

    ``P1`` = the largest factor of ``P / P0`` that is at most
    ``(L3 - K/V tile) / (state of one P0-row query block)``; with FuseMax's numbers
    ``(L3 - 2*256*(E+F)) / (2*(E+2+F)*256)``, L3 in bytes (``fusemax_arch_params.json``,
    ``P1_tiling_rule``; reproduces the artifact's DRAM traffic, e.g. 2 K/V passes for BERT at
    64K with a 16 MiB buffer). A factor, so every group is full.

    Parameters
    ----------
    p_blocks
        ``ceil(Sq / P0)``, query blocks per head.
    cap_bytes
        Global-buffer capacity in bytes.
    kv_tile_bytes
        Bytes of one ``M0``-key K/V tile.
    block_state_bytes
        Bytes of one query block's on-chip state (Q, RNV, RM, RD rows), ``P0*(E+F+2)*bytes``.

    Returns
    -------
    int
        ``P1 >= 1``.
    """
    limit = (
        int((cap_bytes - kv_tile_bytes) // block_state_bytes)
        if math.isfinite(cap_bytes)
        else p_blocks
    )
    if limit < 1:
        raise InfeasibleMappingError(
            f"{path}: buffer of {cap_bytes:,.0f} B cannot hold one K/V tile "
            f"({kv_tile_bytes:,.0f} B) and one query block's state ({block_state_bytes:,.0f} B)"
        )
    limit = min(limit, p_blocks)
    return max(d for d in range(1, limit + 1) if p_blocks % d == 0)
