"""Spatial attention dataflows: ``unfused``, ``flat`` and ``fusemax`` (2D + 1D arrays).

Shapes come from the workload's parameters (``B, H, Sq, Skv, D``; ``E = F = D``). Binding
follows FuseMax (Nayak et al., MICRO'24; ``reference/fusemax_cascades.md``):

* ``unfused``: one kernel per Einsum of the workload's cascade, each mapped by
  :func:`mappings._fit.fit_group`; contractions on the 2D array, the rest on the 1D array;
  every intermediate (the ``S x S`` scores) goes to DRAM and comes back.
* ``flat`` (Kao et al., ASPLOS'23): row-granular fusion. A block of ``rows`` query rows
  computes its full ``rows x Skv`` score rows on chip: QK and AV on the 2D array, the
  softmax on the 1D array at 4 ops per score element (max, exp, sum, divide). With
  ``2E`` MACs per element on 256x256 PEs against 4 ops on 256 PEs the 2D array is at
  most ``2E/1024`` busy: 0.125 for E=64, 0.25 for E=128 (FuseMax Table/CSVs, ``attn-flat``).
* ``fusemax``: the 1-pass cascade; the 2D array runs QK, LM, SLN (exp = 6 MAC + 1 add),
  SLD and SLNV, busy ``2E + 9`` cycles per ``M0 x P0`` tile; the 1D array runs the
  running-state Einsums (RM, PRM, SPD, RD, SPNV, RNV) of the same tile concurrently, and AV
  once per query block. K/V tiles stream once per group of ``q_group`` query rows whose
  running state stays in the global buffer.
"""

from __future__ import annotations

import math
from collections.abc import Mapping as AbcMapping
from typing import TYPE_CHECKING

from archsim.errors import InfeasibleMappingError, MappingError
from mappings._fit import fit_group, pick_units, unit_mesh
from mappings._gemm import _known
from mappings._lower import lower, unit_ops
from mappings._mapping import Mapping
from mappings._passes import cascade_passes
from mappings._registry import PassInfo, Plan, register_dataflow

if TYPE_CHECKING:
    from archsim import Architecture
    from workloads import Workload

__all__ = ["attention_shape", "unfused_plan", "flat_plan", "fusemax_plan"]


def attention_shape(workload: Workload) -> dict[str, int]:
    """``B, H, Sq, Skv, E, F, bytes, causal`` of an attention workload."""
    p = dict(workload.params)
    try:
        sq = int(p.get("Sq", p.get("S")))
        skv = int(p.get("Skv", p.get("S")))
        d = int(p.get("D", p.get("E")))
    except (TypeError, ValueError):
        raise MappingError("not an attention workload", path="workload.params",
                           expected="Sq, Skv, D (or S, D)", got=sorted(p)) from None
    return {"B": int(p.get("B", 1)), "H": int(p.get("H", 1)), "Sq": sq, "Skv": skv, "E": d,
            "F": int(p.get("Dv", d)), "bytes": int(p.get("dtype_bits", 16)) // 8 or 1,
            "causal": int(bool(p.get("causal", False)))}


def _pos_int(knobs: AbcMapping[str, object], name: str, default: int) -> int:
    v = knobs.get(name, default)
    try:
        iv = int(v)  # type: ignore[call-overload]
    except (TypeError, ValueError):
        iv = -1
    if iv < 1:
        raise MappingError("knob must be a positive integer", path=f"knobs.{name}",
                           expected="int >= 1", got=v)
    return iv


def _causal_fraction(s: dict[str, int]) -> float:
    """Fraction of score elements computed (1, or the lower triangle incl. diagonal)."""
    if not s["causal"]:
        return 1.0
    sq, skv = s["Sq"], s["Skv"]
    return min(1.0, (sq + 1) / (2.0 * skv)) if sq == skv else 1.0


def _passes_for(workload: Workload) -> tuple[int, str]:
    try:
        return cascade_passes(workload.cascade)
    except Exception:  # noqa: BLE001 — a cascade without the expected structure
        return 3, "3-pass stable softmax"


@register_dataflow("unfused")
def unfused_plan(workload: Workload, arch: Architecture, knobs: AbcMapping[str, object]) -> Plan:
    """One kernel per Einsum; every intermediate round-trips through DRAM. Knob: ``fill``
    (fraction of the buffer one tile may use, default 0.5)."""
    _known(knobs, {"fill"})
    fill = float(knobs.get("fill", 0.5))  # type: ignore[arg-type]
    big, small = pick_units(arch)
    groups = []
    for e in workload.cascade.einsums:
        contraction = e.reduce_op == "sum" and e.map_op == "*" and len(e.inputs) == 2
        groups.append(fit_group(workload, arch, e.name, big if contraction else small, fill=fill))
    mapping = Mapping(groups=tuple(groups), name="unfused")
    prog = lower(workload, mapping, arch)
    n, why = _passes_for(workload)
    inter = workload.cascade.intermediates
    spill = sum(v for k, v in _dram_tensor_bytes(prog, arch.levels[0].name).items() if k in inter)
    info = PassInfo(n, 0.0, "O(tile): intermediates spilled, S^2 DRAM traffic per pass",
                    spill_bytes=spill, reason=why)
    return Plan(program=prog, mapping=mapping, passes=info,
                notes=f"one kernel per Einsum; matrix unit {big.name}, vector unit {small.name}",
                meta={"dataflow": "unfused", "bytes_by_level": dict(prog.meta["bytes_by_level"])})


def _dram_tensor_bytes(prog: object, dram: str) -> dict[str, float]:
    """DRAM bytes per tensor of a program's body transfers (reads + writes)."""
    out: dict[str, float] = {}
    for ph in prog.phases:  # type: ignore[attr-defined]
        n = ph.total_trips
        for t in (*ph.body.loads, *ph.body.stores):
            if dram in (t.src, t.dst):
                out[t.tensor] = out.get(t.tensor, 0.0) + t.bytes * n
    return out


def _glb(arch: Architecture) -> object:
    on_chip = [lv for lv in arch.levels[1:] if lv.kind in ("sram", "cache")]
    if not on_chip:
        raise InfeasibleMappingError(f"{arch.name}: attention dataflows need an on-chip buffer")
    return on_chip[0]


@register_dataflow("flat")
def flat_plan(workload: Workload, arch: Architecture, knobs: AbcMapping[str, object]) -> Plan:
    """FLAT row-granular fusion. Knob: ``rows`` (query rows per block; default: the most
    that fit half the buffer together with resident K/V, at least 1)."""
    from archsim import Compute, Phase, Step, TileProgram, Transfer

    _known(knobs, {"rows"})
    s = attention_shape(workload)
    glb = _glb(arch)
    big, small = pick_units(arch)
    dram = arch.levels[0].name
    cap = float(glb.capacity_bytes or float("inf"))
    by = s["bytes"]
    kv = s["Skv"] * (s["E"] + s["F"]) * by
    row_b = s["Skv"] * by * 2  # score row, double-buffered
    default = max(1, int((cap / 2 - (kv if kv < cap / 2 else 0)) // row_b))
    rows = min(_pos_int(knobs, "rows", min(default, s["Sq"])), s["Sq"])
    if rows * row_b > cap:
        raise MappingError(f"{rows} score rows overflow {glb.name} by "
                           f"{rows * row_b - cap:,.0f} bytes", path="knobs.rows",
                           expected=f"<= {int(cap // row_b)}", got=rows)
    resident = kv + rows * row_b <= cap
    blocks = math.ceil(s["Sq"] / rows)
    frac = _causal_fraction(s)
    n = rows * s["Skv"] * frac  # score elements per block
    two_d = unit_ops({"mac": n * (s["E"] + s["F"])}, big.ops_per_cycle)
    one_d = unit_ops({"max": n, "exp": n, "add": n, "div": n}, small.ops_per_cycle)
    loads = [Transfer("Q", rows * s["E"] * by, dram, glb.name)]
    if not resident:
        loads += [Transfer("K", int(s["Skv"] * s["E"] * by * frac), dram, glb.name),
                  Transfer("V", int(s["Skv"] * s["F"] * by * frac), dram, glb.name)]
    pro = Step(loads=(Transfer("K", s["Skv"] * s["E"] * by, dram, glb.name),
                      Transfer("V", s["Skv"] * s["F"] * by, dram, glb.name))) if resident else None
    body = Step(loads=tuple(loads),
                compute=(Compute(big.name, two_d), Compute(small.name, one_d)),
                stores=(Transfer("O", rows * s["F"] * by, glb.name, dram),),
                buffer_bytes=int(rows * s["Skv"] * by + rows * (s["E"] + s["F"]) * by))
    phase = Phase("flat", body=body, trips=blocks, work_items=s["B"] * s["H"], slots=1,
                  prologue=pro, depth=2, staging_level=glb.name)
    mx, my = unit_mesh(big)
    sx = unit_mesh(small)[0] * unit_mesh(small)[1]
    bound = min(1.0, (2 * s["E"] / (mx * my)) / (4.0 / sx))
    meta = {"dataflow": "flat", "rows": rows, "kv_resident": resident,
            "util_2d_bound": bound}
    prog = TileProgram("flat", (phase,), clock_hz=arch.clock.core_hz, meta=meta)
    info = PassInfo(3, float(rows * row_b), f"rows*Skv*{by}B*2 = O(rows x S)",
                    reason="3-pass softmax (max, sum, normalise) over score rows kept on chip")
    return Plan(program=prog, passes=info, meta=meta,
                notes=f"FLAT rows={rows}; QK/AV on {big.name}, softmax on {small.name}")


@register_dataflow("fusemax")
def fusemax_plan(workload: Workload, arch: Architecture, knobs: AbcMapping[str, object]) -> Plan:
    """FuseMax 1-pass binding. Knobs: ``m0`` (keys per tile, default mesh rows), ``p0``
    (queries per tile, default mesh columns), ``q_group`` (query rows whose running state
    stays on chip while K/V stream once; default the most that fit half the buffer)."""
    from archsim import Compute, Phase, Step, TileProgram, Transfer

    _known(knobs, {"m0", "p0", "q_group"})
    s = attention_shape(workload)
    glb = _glb(arch)
    big, small = pick_units(arch)
    dram = arch.levels[0].name
    mx, my = unit_mesh(big)
    m0 = min(_pos_int(knobs, "m0", mx), s["Skv"])
    p0 = min(_pos_int(knobs, "p0", my), s["Sq"])
    by = s["bytes"]
    cap = float(glb.capacity_bytes or float("inf"))
    tile_b = 2 * m0 * (s["E"] + s["F"]) * by  # double-buffered K/V tile
    row_state = (s["E"] + s["F"] + 2) * by  # Q row + RNV row + RM + RD
    fit_rows = int(max(cap / 2 - tile_b, 0) // row_state)
    default = max(p0, min(s["Sq"], fit_rows // p0 * p0))
    qg = min(_pos_int(knobs, "q_group", default), s["Sq"])
    if qg * row_state + tile_b > cap:
        raise MappingError(f"query group overflows {glb.name} by "
                           f"{qg * row_state + tile_b - cap:,.0f} bytes", path="knobs.q_group",
                           expected=f"<= {int(max(cap - tile_b, 0) // row_state)}", got=qg)
    frac = _causal_fraction(s)
    pb = math.ceil(qg / p0)
    m1 = math.ceil(s["Skv"] / m0)
    trips = max(1, math.ceil(pb * m1 * frac))
    n = m0 * p0
    e_, f_ = s["E"], s["F"]
    # 2D: QK + SLNV (2E MAC), SLN exp = 6 MAC + 1 sub, LM 1 max, SLD 1 add -> 2E+9 per element
    # (the preset's 2D PEs run exp at 1/6 per cycle: the 6-MAC Taylor exp of FuseMax)
    two_d = unit_ops({"mac": 2 * e_ * n, "exp": n, "add": 2 * n, "max": n}, big.ops_per_cycle)
    # 1D: RM max, PRM sub+exp, SPD mul, RD add, SPNV mul (F), RNV add (F), per query row
    one_d = unit_ops({"max": p0, "exp": p0, "add": p0 * (2 + f_), "mul": p0 * (1 + f_)},
                     small.ops_per_cycle)
    kv_tile = int(math.ceil(m1 * m0 * (e_ + f_) * by * frac / trips))  # K/V once per item
    body = Step(loads=(Transfer("KV", kv_tile, dram, glb.name),),
                compute=(Compute(big.name, two_d), Compute(small.name, one_d)),
                buffer_bytes=int(tile_b // 2))
    pro = Step(loads=(Transfer("Q", qg * e_ * by, dram, glb.name),))
    epi = Step(compute=(Compute(small.name, unit_ops({"div": qg * f_}, small.ops_per_cycle)),),
               stores=(Transfer("O", qg * f_ * by, glb.name, dram),))
    items = s["B"] * s["H"] * math.ceil(s["Sq"] / qg)
    phase = Phase("fusemax", body=body, trips=trips, work_items=items, slots=1, prologue=pro,
                  epilogue=epi, depth=2, staging_level=glb.name)
    meta = {"dataflow": "fusemax", "m0": m0, "p0": p0, "q_group": qg,
            "buffer_used_bytes": qg * row_state + tile_b,
            "cycles_2d_per_tile": 2 * e_ + 9}
    prog = TileProgram("fusemax", (phase,), clock_hz=arch.clock.core_hz, meta=meta)
    # the 1-pass class needs only one query tile's running state and a K/V tile on chip;
    # a larger q_group (meta) only cuts K/V re-reads
    info = PassInfo(1, float(p0 * row_state + tile_b),
                    f"P0*(E+F+2)*{by}B + 2*M0*(E+F)*{by}B: independent of S",
                    reason="1 pass over m: running max/denominator (RM, RD, RNV) along m1")
    return Plan(program=prog, passes=info, meta=meta,
                notes=f"FuseMax m0={m0} p0={p0} q_group={qg}")
