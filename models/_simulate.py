"""Simulate a model graph: every distinct op shape once, collectives by closed form.

Each compute op of a :class:`~models._graph.ModelGraph` goes through
:func:`mappings.simulate_workload` (``dataflow="auto"``) on the device architecture; ops
that repeat in every layer have one shape, so an 80-layer model costs as many simulations
as one layer has distinct ops (results are cached per architecture, engine and shape). An op
that no dataflow maps on the architecture is kept in the table as ``unmapped`` with the
reason, and the totals say they are incomplete.

Schedule and overlap rule
-------------------------
All devices run the same ops (symmetric tensor parallelism). A collective may overlap
compute only with ops that neither produce its input nor read its output. In a
Megatron layer every op after an all-reduce (residual add, norm, the next projection)
reads its result and every op before it produces its input, so within one step nothing
overlaps: the step time is the sum of the compute ops and the collectives, and every
collective second is exposed. (Overlap would need a second, independent stream of work,
e.g. two micro-batches interleaved; such schedules are not built here.) Where an op's
inputs allow it the rule does overlap: an expert-parallel dispatch runs under the shared
expert (``Op.overlaps_prev``), and ring attention passes K/V under its block computes.

A ``ring`` op (ring attention, :mod:`models._parallel`) simulates one step's attention
block and times the ring as ``c + (cp - 1) max(c, t)``; its exposed communication is
``(cp - 1) max(0, t - c)``, the rest of the link time hides under the block computes.

Placement: where the ``auto`` dataflow does not take an op as it is (a Hopper-only kernel on
another GPU, a shape its choice cannot run, prefill attention or a vector op on a PIM
module), :mod:`models._placement` states the rule that places it; the row's note says which
rule fired. An op none of them takes stays ``unmapped``.

GPU ops are simulated alone, so each pays the calibrated kernel launch; run back to back in a
step, every op after the first pays the inter-kernel gap instead (its time shrinks by
``launch_s - gap_s`` and its energy in proportion), as the GPU lowering
(``mappings._gpu._lower.costs_to_program``) charges the kernels of one call.

Energy: each device's op energy (the architecture's dynamic energy plus its static power
over the op) times the devices (``tp * cp * ep``), plus, during collectives, every
device's static power (``Architecture.leakage_w``) and the link energy ``pJ/bit x bits
sent`` when the system gives one.
"""

from __future__ import annotations

import hashlib
import json
import math
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING

from models._comm import System, collective_bytes_sent, collective_time, ring_step_time
from models._graph import ModelGraph, Stage
from models._ops import Op
from models._placement import LATENCY_BOUND_UTIL, OpCost, dram_bw, simulate_op

if TYPE_CHECKING:
    import pandas as pd

    from archsim import Architecture

__all__ = ["OpRow", "ModelReport", "simulate_graph", "LATENCY_BOUND_UTIL"]

_CACHE: dict[tuple[object, ...], OpCost] = {}


@dataclass(frozen=True)
class OpRow:
    """One op of the graph, simulated.

    ``seconds``, ``energy_j`` and ``dram_bytes`` are for one instance on one device;
    ``count`` instances run per stage repetition (an op that occurs twice in a layer, such
    as the residual add, has ``count`` 2 in :meth:`ModelReport.table`) and the stage repeats
    ``repeat`` times.
    ``bound`` is ``compute``, ``memory``, ``latency``, ``comm`` (a collective) or
    ``unmapped`` (no dataflow: ``note`` says why, and the op adds nothing to the totals).
    ``comm_s``: seconds of one instance that are exposed communication (a collective's
    whole time; a ring's link time not hidden under its computes). ``spans``: for a ring,
    one device's ``(step, start s, duration s, thread)`` spans of one instance.
    ``hidden_s``: seconds of a collective that ran under the compute ops before it (not in
    ``seconds``, which is its exposed part); ``lead_s``: how long before the row's place in
    the sequence it started (the time of those ops). ``kernels``: GPU kernels one instance
    launches (0 on other architectures, for a collective or a ``fused_read``).
    """

    stage: str
    op: str
    shape: str
    count: int
    repeat: int
    seconds: float
    energy_j: float
    dram_bytes: float
    bound: str
    dataflow: str
    note: str = ""
    comm_s: float = 0.0
    spans: tuple[tuple[int, float, float, int], ...] = ()
    hidden_s: float = 0.0
    lead_s: float = 0.0
    kernels: int = 0

    @property
    def total_s(self) -> float:
        """Seconds this op adds to the step (all its instances and repetitions)."""
        return self.seconds * self.count * self.repeat

    @property
    def total_comm_s(self) -> float:
        """Exposed communication seconds this op adds to the step."""
        return self.comm_s * self.count * self.repeat


def row(
    stage: Stage,
    op: Op,
    seconds: float,
    energy_j: float,
    dram_bytes: float,
    bound: str,
    dataflow: str,
    note: str = "",
    comm_s: float = 0.0,
    spans: tuple[tuple[int, float, float, int], ...] = (),
    hidden_s: float = 0.0,
    lead_s: float = 0.0,
    kernels: int = 0,
) -> OpRow:
    """The :class:`OpRow` of one instance of ``op`` in ``stage``."""
    return OpRow(
        stage.name,
        op.name,
        op.describe(),
        1,
        stage.repeat,
        seconds,
        energy_j,
        dram_bytes,
        bound,
        dataflow,
        note,
        comm_s,
        spans,
        hidden_s,
        lead_s,
        kernels,
    )


@dataclass(frozen=True)
class ModelReport:
    """A simulated model step.

    Attributes
    ----------
    graph
        The graph simulated.
    arch
        Device architecture name.
    system
        The interconnect (None for one device).
    engine
        ``event`` or ``analytic``.
    rows
        One :class:`OpRow` per op of each stage, in execution order.
    static_w
        Static power of one device, W (charged over collectives).
    wall_s, simulations
        Wall-clock seconds the simulation took and how many op shapes were simulated
        (cache misses).
    """

    graph: ModelGraph
    arch: str
    system: System | None
    engine: str
    rows: tuple[OpRow, ...]
    static_w: float
    wall_s: float = 0.0
    simulations: int = 0
    notes: tuple[str, ...] = field(default_factory=tuple)

    @property
    def latency_s(self) -> float:
        """Seconds of the step (sum of every mapped op's ``total_s``)."""
        return sum(r.total_s for r in self.rows if r.bound != "unmapped")

    @property
    def comm_s(self) -> float:
        """Seconds of the step spent in exposed communication (collectives, and the link
        time of a ring not hidden under its computes; see the module doc)."""
        return sum(r.total_comm_s for r in self.rows)

    @property
    def kernels(self) -> int:
        """GPU kernels one device launches in the step (0 on other architectures)."""
        return sum(r.kernels * r.count * r.repeat for r in self.rows if r.bound != "unmapped")

    @property
    def energy_j(self) -> float:
        """Joules of the step, all devices."""
        return sum(r.energy_j * r.count * r.repeat for r in self.rows) * self.graph.devices

    @property
    def new_tokens(self) -> int:
        """Tokens the step processes (prompt tokens for prefill, new tokens for decode)."""
        return self.graph.tokens

    @property
    def tokens_per_s(self) -> float:
        """``new_tokens / latency_s``."""
        return self.new_tokens / self.latency_s if self.latency_s else float("nan")

    @property
    def j_per_token(self) -> float:
        """``energy_j / new_tokens``."""
        return self.energy_j / self.new_tokens

    @property
    def unmapped(self) -> list[OpRow]:
        """Ops no dataflow maps on the architecture (not in the totals)."""
        return [r for r in self.rows if r.bound == "unmapped"]

    def table_unmapped(self) -> list[OpRow]:
        """The unmapped rows of :meth:`table` (each distinct op once)."""
        return [r for r in self.table() if r.bound == "unmapped"]

    @property
    def complete(self) -> bool:
        """Whether every op was simulated."""
        return not self.unmapped

    def table(self) -> list[OpRow]:
        """The rows with identical ops of a stage merged (``count`` = occurrences per
        stage repetition), in order of first occurrence."""
        merged: dict[tuple[str, str, str], OpRow] = {}
        for r in self.rows:
            k = (r.stage, r.op, r.shape)
            merged[k] = replace(merged[k], count=merged[k].count + r.count) if k in merged else r
        return list(merged.values())

    def to_frame(self) -> pd.DataFrame:
        """One row per op of :meth:`table`: ``stage, op, shape, count, repeat``, ``time_s``
        (one instance), ``total_s`` (all instances), ``share`` (of the step), ``energy_j``
        (all instances, all devices), ``comm_s`` (exposed communication) and ``hidden_s``
        (communication under independent compute), all instances, ``dram_bytes`` (one
        instance, one device), ``kernels`` (GPU kernels of one instance), ``bound, dataflow,
        note``."""
        import pandas as pd

        lat = self.latency_s or float("nan")
        return pd.DataFrame(
            [
                {
                    "stage": r.stage,
                    "op": r.op,
                    "shape": r.shape,
                    "count": r.count,
                    "repeat": r.repeat,
                    "time_s": r.seconds,
                    "total_s": r.total_s,
                    "share": r.total_s / lat,
                    "energy_j": r.energy_j * r.count * r.repeat * self.graph.devices,
                    "comm_s": r.total_comm_s,
                    "hidden_s": r.hidden_s * r.count * r.repeat,
                    "dram_bytes": r.dram_bytes,
                    "kernels": r.kernels,
                    "bound": r.bound,
                    "dataflow": r.dataflow,
                    "note": r.note,
                }
                for r in self.table()
            ]
        )

    def to_dict(self) -> dict[str, object]:
        """JSON-ready: the setup, the totals and the per-op rows (see :meth:`to_frame`)."""
        g = self.graph
        return {
            "model": g.model.name,
            "arch": self.arch,
            "phase": g.phase,
            "batch": g.batch,
            "seq": g.seq,
            "tp": g.tp,
            "cp": g.cp,
            "ep": g.ep,
            "page": g.page,
            "devices": g.devices,
            "system": None if self.system is None else self.system.name,
            "engine": self.engine,
            "latency_s": self.latency_s,
            "tokens": self.new_tokens,
            "tokens_per_s": self.tokens_per_s,
            "energy_j": self.energy_j,
            "j_per_token": self.j_per_token,
            "comm_s": self.comm_s,
            "comm_share": self.comm_s / self.latency_s if self.latency_s else None,
            "kernels": self.kernels,
            "kv_cache_bytes": kv_cache_bytes(g),
            "weight_bytes": g.model.param_count() * g.model.elt_bytes,
            "complete": self.complete,
            "unmapped": [{"op": r.op, "stage": r.stage, "why": r.note} for r in self.unmapped],
            "wall_s": self.wall_s,
            "simulations": self.simulations,
            "notes": list(self.notes),
            "ops": self.to_frame().to_dict(orient="records"),
        }

    def trace_events(self) -> list[dict[str, object]]:
        """Chrome/Perfetto ``traceEvents``: one process per device, thread 0 its compute
        stream and thread 1 its links; timestamps in µs."""
        tp = self.graph.devices
        meta: list[dict[str, object]] = []
        for d in range(tp):
            meta.append(
                {"name": "process_name", "ph": "M", "pid": d, "args": {"name": f"device {d}"}}
            )
            for tid, name in ((0, "compute"), (1, "link")):
                meta.append(
                    {"name": "thread_name", "ph": "M", "pid": d, "tid": tid, "args": {"name": name}}
                )
        spans: list[tuple[str, str, float, float, bool, dict[str, object]]] = []
        ring: list[tuple[float, OpRow]] = []  # (start, row) of each ring instance
        t = 0.0
        by_stage: dict[str, list[OpRow]] = {}
        for r in self.rows:
            by_stage.setdefault(r.stage, []).append(r)
        for stage in self.graph.stages:
            rows = by_stage.get(stage.name, [])
            for i in range(stage.repeat):
                for r in rows:
                    if r.bound == "unmapped":
                        continue
                    dur = r.seconds * r.count
                    label = r.op if r.count == 1 else f"{r.op} x{r.count:.4g}"
                    args: dict[str, object] = {
                        "shape": r.shape,
                        "bound": r.bound,
                        "dataflow": r.dataflow,
                    }
                    cat = f"{stage.name} {i}" if stage.repeat > 1 else stage.name
                    if r.spans:  # per-device ring steps, drawn below
                        for j in range(r.count):
                            ring.append((t + j * r.seconds, r))
                    elif r.lead_s:  # started with the ops before it
                        start, full = t - r.lead_s, r.hidden_s + r.seconds
                        spans.append((label, cat, start, full, True, args))
                    else:
                        spans.append((label, cat, t, dur, r.bound == "comm", args))
                    t += dur
        events: list[dict[str, object]] = [
            {
                "name": name,
                "cat": cat,
                "ph": "X",
                "pid": d,
                "tid": 1 if comm else 0,
                "ts": start * 1e6,
                "dur": dur * 1e6,
                "args": args,
            }
            for d in range(tp)
            for name, cat, start, dur, comm, args in spans
        ]
        cp = self.graph.cp
        for start, r in ring:
            for d in range(tp):
                rank = d // self.graph.tp  # the device's place in its cp ring
                for step, t0, dur, tid in r.spans:
                    holder = (rank - step) % cp  # whose K/V block the device holds at `step`
                    if tid == 0:
                        name = f"{r.op} step {step}: K/V block of ring rank {holder}"
                    else:
                        name = f"send K/V block of rank {holder} to rank {(rank + 1) % cp}"
                    events.append(
                        {
                            "name": name,
                            "cat": r.stage,
                            "ph": "X",
                            "pid": d,
                            "tid": tid,
                            "ts": (start + t0) * 1e6,
                            "dur": dur * 1e6,
                            "args": {"shape": r.shape, "dataflow": r.dataflow},
                        }
                    )
        return meta + events

    def write_trace(self, path: str | Path) -> Path:
        """Write :meth:`trace_events` as Chrome trace JSON (open in ui.perfetto.dev)."""
        path = Path(path)
        payload = {"traceEvents": self.trace_events(), "displayTimeUnit": "ns"}
        path.write_text(json.dumps(payload))
        return path


def kv_cache_bytes(graph: ModelGraph) -> float:
    """KV-cache bytes of the step's sequences, all devices (whole pages when paged)."""
    m, ctx = graph.model, graph.seq
    if graph.page:
        ctx = math.ceil(ctx / graph.page) * graph.page
    return m.kv_cache_bytes(graph.batch, ctx)


def _stream_credit(arch: Architecture) -> tuple[float, tuple[str, ...]]:
    """Seconds a GPU op launched right after another saves: each op simulated alone pays
    the calibrated first-kernel ``launch_s``; in a step the kernels run back to back, so
    every op after the first pays only the inter-kernel ``gap_s`` (the rule
    ``mappings._gpu._lower.costs_to_program`` applies to the kernels of one call)."""
    if arch.kind != "gpu":
        return 0.0, ()
    from archsim.errors import ArchsimError
    from archsim.gpu import gpu_model

    try:
        cal = gpu_model(arch).cal
    except ArchsimError:
        return 0.0, ("no GPU calibration for this architecture: every op pays a full launch",)
    credit = max(0.0, cal.launch_s - cal.gap_s)
    return credit, (
        f"kernels run back to back: every op after the first pays the calibrated inter-kernel "
        f"gap ({cal.gap_s * 1e6:.2f} us) instead of a launch ({cal.launch_s * 1e6:.2f} us)",
    )


def _fp8_note(graph: ModelGraph, arch: Architecture) -> tuple[str, ...]:
    """A note when an 8-bit model runs on a GPU without an fp8 tensor-core rate (A100): its
    GEMM model then prices 8-bit operands on another instruction, which the GPU has no fp8
    form of (weight-only fp8 kernels dequantize to 16 bits and run at the 16-bit rate)."""
    if graph.model.dtype_bits != 8 or arch.kind != "gpu":
        return ()
    from archsim.errors import ArchsimError
    from archsim.gpu import gpu_model

    try:
        rates = gpu_model(arch).hw.tc_flops_per_clk
    except ArchsimError:
        return ()
    if any(k.endswith("_fp8") for k in rates):
        return ()
    return (
        f"{arch.name} has no fp8 tensor-core instruction (rates: {', '.join(sorted(rates))}): "
        "the 8-bit GEMMs' compute time is not that of a real kernel (weight-only fp8 kernels "
        "run at the 16-bit rate); their DRAM bytes are",
    )


def _capacity_notes(graph: ModelGraph, arch: Architecture) -> tuple[str, ...]:
    """A note when the weights and KV cache one device holds exceed its DRAM (the step is
    simulated all the same: the table is then what the step would cost if they fitted)."""
    m = graph.model
    cap = arch.dram.capacity_bytes
    if cap is None:
        return ()
    cap *= arch.dram.instances
    weights = m.param_count() * m.elt_bytes / graph.tp  # replicated over cp and dp
    if graph.ep > 1:  # routed experts split over tp x cp x ep, the rest over tp
        mats = 3 if m.ffn == "swiglu" else 2
        routed = m.moe_layers * m.experts * mats * m.d_model * m.moe_ffn_dim * m.elt_bytes
        weights -= routed / graph.tp * (1 - 1 / (graph.cp * graph.ep))
    kv = kv_cache_bytes(graph) / graph.devices
    if weights + kv <= cap:
        return ()
    return (
        f"weights {weights / 1e9:.4g} GB + KV cache {kv / 1e9:.4g} GB per device exceed the "
        f"{cap / 1e9:.4g} GB of {arch.name}'s {arch.dram.name} (simulated as if they fitted)",
    )


def _simulate_op(op: Op, arch: Architecture, arch_key: object, engine: str) -> tuple[OpCost, bool]:
    """One op instance run alone (:func:`models._placement.simulate_op`), and whether it was
    simulated now (a cache miss)."""
    key = (arch_key, engine, op.key)
    if key in _CACHE:
        return _CACHE[key], False
    out = simulate_op(op, arch, engine)
    _CACHE[key] = out
    return out, True


def simulate_graph(
    graph: ModelGraph,
    arch: str | Architecture,
    *,
    system: System | None = None,
    engine: str = "event",
) -> ModelReport:
    """Simulate every op of ``graph`` on ``arch`` (collectives on ``system``).

    Raises
    ------
    ModelError
        ``graph.tp > 1`` without a system, or a system with fewer devices than ``tp``.
    """
    from mappings._api import resolve_arch
    from models._spec import ModelError

    n = graph.devices
    if n > 1:
        what = "tp" if graph.tp > 1 else ("cp" if graph.cp > 1 else "ep")
        if system is None:
            raise ModelError(
                "more than one device needs an interconnect",
                path="system",
                expected="a System",
                got=None,
            )
        if system.count < n:
            raise ModelError(
                "the system has fewer devices than the step uses (tp x cp x ep)",
                path=what,
                expected=f"<= {system.count} devices ({system.name})",
                got=n,
            )
    a = resolve_arch(arch)
    arch_key = hashlib.sha1(
        json.dumps(a.to_dict(), sort_keys=True, default=str).encode()
    ).hexdigest()  # the cache follows the architecture's content, not its name or file
    t0 = time.perf_counter()
    rows: list[OpRow] = []
    sims = 0
    static_w = float(a.leakage_w)
    credit, notes = _stream_credit(a)
    first = True
    placed: dict[str, list[str]] = {}  # placement rule (models._placement) -> ops
    for stage in graph.stages:
        start = len(rows)
        for op in stage.ops:
            if op.collective:
                assert system is not None
                p = op.steps or graph.tp
                full, algo = collective_time(op.collective, op.bytes, system, devices=p)
                n_prev = op.overlaps_prev
                before = rows[max(start, len(rows) - n_prev) :] if n_prev else []
                cover = sum(r.seconds for r in before if r.bound not in ("comm", "unmapped"))
                secs = max(0.0, full - cover)  # exposed
                sent = collective_bytes_sent(op.collective, op.bytes, p)
                energy = static_w * secs + sent * 8 * system.link_energy_pj_per_bit * 1e-12
                note = f"{system.name}: {algo} over {p} devices" + (
                    f"; {op.info}" if op.info else ""
                )
                if op.overlaps_prev:
                    note += (
                        f"; {full * 1e6:.4g} us, {(full - secs) * 1e6:.4g} us of it under "
                        f"{', '.join(r.op for r in before)}"
                    )
                hidden = full - secs
                rows.append(
                    row(stage, op, secs, energy, 0.0, "comm", algo, note, secs, (), hidden, cover)
                )
                continue
            if op.special == "fused_read":  # DRAM bytes inside another op's kernel, no launch
                secs = op.bytes / dram_bw(a)
                energy = op.bytes * float(a.dram.read_energy_pj_per_byte) * 1e-12
                energy += static_w * secs
                rows.append(row(stage, op, secs, energy, op.bytes, "memory", op.info))
                continue
            if op.gpu_dataflow and a.kind != "gpu":  # vLLM's v1/v2 kernels are GPU kernels
                op = replace(op, name="paged_attn", gpu_dataflow=None, gpu_knobs=())
            cost, miss = _simulate_op(op, a, arch_key, engine)
            secs, energy, dram, bound, how = (
                cost.seconds,
                cost.energy_j,
                cost.dram_bytes,
                cost.bound,
                cost.dataflow,
            )
            kernels = cost.kernels
            if cost.note:
                placed.setdefault(cost.note, [])
                if op.name not in placed[cost.note]:
                    placed[cost.note].append(op.name)
            launched = kernels > 0
            sims += miss
            if bound == "unmapped":
                rows.append(row(stage, op, 0.0, 0.0, 0.0, "unmapped", "", how))
                continue
            if launched and credit and not first:  # back to back: a gap, not a launch
                keep = max(secs - credit, 0.0) / secs
                secs, energy = secs * keep, energy * keep
            first = first and not launched
            if op.special == "ring":
                rows.append(_ring_row(stage, op, secs, energy, dram, bound, how, system, static_w))
                continue
            rows.append(row(stage, op, secs, energy, dram, bound, how, cost.note, kernels=kernels))
    if graph.page and a.kind == "gpu" and graph.page not in (8, 16, 32):
        notes += (
            f"vLLM's PagedAttention kernels are built for 8-, 16- and 32-token pages; the "
            f"{graph.page}-token pages run the same kernel model",
        )
    if system is not None and n > 8:
        notes += (
            f"all {n} devices share one link class ({system.name}: "
            f"{system.link_bw_bytes_per_s / 1e9:g} GB/s per direction); devices in other nodes "
            "reach each other over slower links (describe them with --system)",
        )
    notes += tuple(f"{', '.join(ops)}: {why}" for why, ops in placed.items())
    notes += _fp8_note(graph, a)
    host = sorted({r.op for r in rows if r.dataflow == "host"})
    if host:
        notes += (
            f"{len(host)} ops no PIM dataflow maps run on the host-side controller "
            f"(PIM-GPT's placement of non-linear ops and data movement): {', '.join(host)}; "
            "each moves its compulsory bytes over the module's external interface",
        )
    return ModelReport(
        notes=notes + _capacity_notes(graph, a),
        graph=graph,
        arch=a.name,
        system=system if n > 1 else None,
        engine=engine,
        rows=tuple(rows),
        static_w=static_w,
        wall_s=time.perf_counter() - t0,
        simulations=sims,
    )


def _ring_row(
    stage: Stage,
    op: Op,
    step_s: float,
    step_j: float,
    step_bytes: float,
    bound: str,
    how: str,
    system: System | None,
    static_w: float,
) -> OpRow:
    """The row of a ring attention: ``op.steps`` block computes of ``step_s`` each, the K/V
    block passes overlapped with them (:func:`models._parallel.ring_attention_time`)."""
    from models._parallel import ring_attention_time, ring_schedule

    assert system is not None  # simulate_graph refused cp > 1 without one
    p = op.steps
    link = ring_step_time(op.bytes, system)
    secs = ring_attention_time(step_s, link, p)
    exposed = secs - p * step_s
    sent = (p - 1) * op.bytes
    energy = p * step_j + sent * 8 * system.link_energy_pj_per_bit * 1e-12
    energy += static_w * exposed  # the device idles while the last bytes arrive
    note = (
        f"{p} steps of {step_s * 1e6:.4g} us compute; K/V block {op.bytes / 1e6:.4g} MB per "
        f"step over {system.name}: {link * 1e6:.4g} us; exposed {exposed * 1e6:.4g} us"
    )
    spans = tuple(ring_schedule(step_s, link, p))
    b = "comm" if link > step_s else bound
    return row(stage, op, secs, energy, p * step_bytes, b, f"ring / {how}", note, exposed, spans)
