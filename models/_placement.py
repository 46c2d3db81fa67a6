"""Where an op runs when the architecture's ``auto`` dataflow does not take it as it is.

:func:`simulate_op` simulates one op of a model graph on one device. It runs the op's
cascade with :func:`mappings.simulate_workload` (``dataflow="auto"``, or the GPU dataflow
the op names) and then applies, in this order, the rules below; each rule that fires says
so in the row's note, so the table never shows a placement the reader did not see stated.

1. **Hopper-only kernels on other GPUs.** ``auto`` ranks ``flash3`` (FlashAttention-3 /
   cuDNN's sm90 kernel: TMA loads, wgmma) before ``flash2`` on every GPU. On a GPU without
   the ``wgmma`` instruction path (A100) that kernel does not exist, so a ``flash3`` choice
   there runs the next candidate that simulates it, ``flash2`` (FlashAttention-2, mma.sync:
   what SDPA runs on Ampere) where its tiles fit.
2. **The next dataflow when ``auto``'s choice cannot run the shape.** ``auto`` picks the
   first recipe that accepts the cascade; the mapping can still be infeasible at this
   shape (a CTA larger than the GPU's shared memory: MLA decode, 576-wide keys, on an A100).
   The op then runs on the first of :func:`mappings.auto_candidates` that simulates it
   (``gpu_unfused`` maps any cascade on a GPU), and the note gives the refusal.
3. **Prefill attention on a PIM module, one query at a time.** ``pim_decode`` maps
   single-query attention: the key-side contractions in the bank units, the query vector
   broadcast to them. A PIM unit of this kind multiplies a matrix by one input vector at a
   time (the rule ``pim_gemv`` applies to a prefill GEMM: the weights re-streamed per input
   vector), so an attention of ``Sq`` queries runs as ``B x Sq`` single-query attentions.
   Query ``i`` of a causal attention reads the ``Skv - Sq + 1 + i`` keys of its prefix, on
   average ``mean = Skv - (Sq - 1) / 2``; the op is simulated at ``floor(mean)`` and
   ``ceil(mean)`` keys and interpolated linearly at ``mean`` (exact in the score count; the
   single-query cost is linear in the keys between two adjacent lengths).
4. **Vector ops on a PIM module's host-side controller** (norms, RoPE, activations,
   residual adds, copies, the router softmax): see :func:`host_placement`.

An op none of these takes is ``unmapped``, its reason the simulator's refusal.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

from archsim.errors import ArchsimError, InfeasibleMappingError, MappingError

if TYPE_CHECKING:
    from archsim import Architecture, Result
    from models._ops import Op

__all__ = ["OpCost", "simulate_op", "host_placement", "has_wgmma", "per_query_keys"]

#: An op whose busiest compute unit and DRAM are both below this fraction of their peak is
#: classed ``latency`` bound (launch, fill/drain and per-kernel fixed costs dominate).
LATENCY_BOUND_UTIL = 0.25


@dataclass(frozen=True)
class OpCost:
    """One op instance run alone on one device.

    ``seconds`` (s), ``energy_j`` (J), ``dram_bytes`` (B); ``bound`` is ``compute``,
    ``memory``, ``latency`` or ``unmapped``; ``dataflow`` the dataflow that ran (for an
    unmapped op: the refusal); ``kernels`` the GPU kernels it launches (its time includes
    the first one's launch when > 0); ``note`` the placement rule that fired, if any.
    """

    seconds: float
    energy_j: float
    dram_bytes: float
    bound: str
    dataflow: str
    kernels: int = 0
    note: str = ""


def dram_bw(arch: Architecture) -> float:
    """Peak DRAM read bandwidth of ``arch``, B/s."""
    d = arch.dram
    return float(d.read_bw_bytes_per_cycle * arch.clock.core_hz * d.instances)


def _bound(result: Result, arch: Architecture) -> str:
    secs = float(result.seconds)
    util = max(result.utilization.values(), default=0.0)
    peak = dram_bw(arch)
    dram_util = float(result.dram_bytes) / (secs * peak) if secs > 0 and peak > 0 else 0.0
    if max(util, dram_util) < LATENCY_BOUND_UTIL:
        return "latency"
    return "memory" if dram_util >= util else "compute"


def has_wgmma(arch: Architecture) -> bool:
    """Whether GPU ``arch`` has Hopper's ``wgmma`` tensor-core path (False if not a GPU)."""
    if arch.kind != "gpu":
        return False
    from archsim.gpu import gpu_model

    try:
        return bool(gpu_model(arch).hw.has_path("wgmma"))
    except ArchsimError:
        return False


def _cost(rep: object, arch: Architecture, note: str = "") -> OpCost:
    r = rep.result  # type: ignore[attr-defined]  # a SimulationReport
    launches = sum(str(k).startswith("launch:") for k in r.meta.get("phase_cycles", {}))
    kernels = len(r.meta.get("kernels", ())) or launches if launches else 0
    return OpCost(
        float(r.seconds),
        float(r.energy_j),
        float(r.dram_bytes),
        _bound(r, arch),
        rep.dataflow,  # type: ignore[attr-defined]  # a SimulationReport
        kernels,
        note,
    )


def host_placement(workload: object, arch: Architecture) -> OpCost | None:
    """A vector op no PIM dataflow maps, on the PIM module's host-side controller.

    PIM-GPT (Wu, Wang & Lu, arXiv 2310.09385) places non-linear functions and data movement
    on an ASIC beside its DRAM-PIM chips: the op's operands cross the module's external
    interface once, so it takes one DRAM access latency plus its compulsory bytes (each
    tensor once, :func:`workloads.count`) over the DRAM (host) bandwidth, and costs those
    bytes at the DRAM's per-byte energy plus its arithmetic at the PIM unit's per-op energy
    (ASSUMPTION: the controller's ALUs keep pace with the interface and cost what a PIM MAC
    does; no published figure for PIM-GPT's ASIC could be retrieved). None for a contraction
    (more MACs than elements moved), which the controller (no MAC array modelled) does not
    take."""
    from workloads import count

    c = count(workload.cascade, workload.params)  # type: ignore[attr-defined]  # a Workload
    bits = workload.params.get("dtype_bits", 16)  # type: ignore[attr-defined]  # a Workload
    if c.macs > c.compulsory_bytes / (float(bits) / 8):
        return None
    d = arch.dram
    nbytes = float(c.compulsory_bytes)
    secs = d.latency_cycles / arch.clock.core_hz + nbytes / dram_bw(arch)
    per_op = max((e for u in arch.compute for e in u.energy_pj.values()), default=0.0)
    energy = nbytes * float(d.read_energy_pj_per_byte) * 1e-12 + float(c.flops) * per_op * 1e-12
    energy += float(arch.leakage_w) * secs
    util = nbytes / (secs * dram_bw(arch))
    bound = "memory" if util >= LATENCY_BOUND_UTIL else "latency"
    return OpCost(secs, energy, nbytes, bound, "host")


def per_query_keys(params: dict[str, object]) -> float | None:
    """Mean keys one query of a prefill attention reads (rule 3 of the module doc):
    ``Skv`` without a mask, ``Skv - (Sq - 1) / 2`` causal (bottom-right aligned); None when
    the op is not a multi-query attention (no ``Sq`` > 1 and ``Skv``)."""
    sq, skv = params.get("Sq"), params.get("Skv")
    if not isinstance(sq, int) or not isinstance(skv, int) or sq <= 1:
        return None
    return skv - (sq - 1) / 2 if params.get("causal") else float(skv)


def _per_query(op: Op, arch: Architecture, engine: str) -> OpCost | None:
    """Rule 3: a PIM prefill attention as ``B x Sq`` single-query attentions."""
    from mappings import simulate_workload

    p = dict(op.params)
    mean = per_query_keys(p)
    if mean is None:
        return None
    queries = int(p.get("B", 1)) * int(p["Sq"])  # type: ignore[call-overload]  # checked ints
    lo, hi = math.floor(mean), math.ceil(mean)
    costs = []
    for keys in sorted({lo, hi}):
        one = {**p, "B": queries, "Sq": 1, "Skv": keys, "causal": False}
        try:
            rep = simulate_workload(arch, op.workload, params=one, engine=engine)  # type: ignore[arg-type]  # engine: checked by simulate_workload
        except (MappingError, InfeasibleMappingError):
            return None
        costs.append(_cost(rep, arch))
    a, b = costs[0], costs[-1]
    w = mean - lo

    def mix(x: float, y: float) -> float:
        return x + w * (y - x)

    keys_txt = f"{mean:g}" if lo == hi else f"{mean:g} (interpolated between {lo} and {hi})"
    note = (
        f"one query at a time: {queries} single-query attentions of {keys_txt} keys each "
        f"(a PIM unit multiplies by one input vector at a time)"
    )
    return OpCost(
        mix(a.seconds, b.seconds),
        mix(a.energy_j, b.energy_j),
        mix(a.dram_bytes, b.dram_bytes),
        b.bound,
        f"{b.dataflow} per query",
        0,
        note,
    )


def simulate_op(op: Op, arch: Architecture, engine: str) -> OpCost:
    """One instance of ``op`` alone on ``arch`` with the placement rules of the module doc."""
    from mappings import simulate_workload
    from mappings._api import auto_candidates, resolve_workload
    from models._ops import CASCADES, local_workload

    if op.workload in CASCADES:
        workload: object = local_workload(op.workload, op.params)
        params: dict[str, object] = {}
    else:
        workload, params = op.workload, dict(op.params)
    flow: dict[str, object] = {}
    if arch.kind == "gpu" and op.gpu_dataflow:
        flow = {"dataflow": op.gpu_dataflow, "knobs": dict(op.gpu_knobs)}

    def run(**how: object) -> object:
        return simulate_workload(arch, workload, params=params, engine=engine, **how)  # type: ignore[arg-type]  # engine: checked by simulate_workload

    hopper = has_wgmma(arch)
    try:
        rep = run(**flow)
    except (MappingError, InfeasibleMappingError) as exc:
        raw = str(exc)
        refusal = f"auto's dataflow refused this shape ({raw})"
    else:
        if rep.dataflow != "flash3" or flow or hopper:  # type: ignore[attr-defined]  # a SimulationReport
            return _cost(rep, arch)
        raw = refusal = f"flash3 (Hopper's wgmma/TMA kernel) does not run on {arch.name}"
    if not flow:  # rules 1 and 2: the next candidate that simulates the shape
        for name in auto_candidates(arch):
            if name == "flash3" and arch.kind == "gpu" and not hopper:
                continue
            try:
                rep = run(dataflow=name)
            except (MappingError, InfeasibleMappingError):
                continue
            return _cost(rep, arch, f"{refusal}: {name}")
    if arch.kind == "pim":
        cost = _per_query(op, arch, engine)
        if cost is None:
            cost = host_placement(resolve_workload(workload, params), arch)
        if cost is not None:
            return cost
    return OpCost(0.0, 0.0, 0.0, "unmapped", raw)
