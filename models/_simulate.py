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
e.g. two micro-batches interleaved; such schedules are not built here.)

GPU ops are simulated alone, so each pays the calibrated kernel launch; run back to back in a
step, every op after the first pays the inter-kernel gap instead (its time shrinks by
``launch_s - gap_s`` and its energy in proportion), as :func:`archsim.gpu.evaluate_op`
charges the kernels of one call.

Energy: each device's op energy (the architecture's dynamic energy plus its static power
over the op) times ``tp``, plus, during collectives, every device's static power
(``Architecture.leakage_w``) and the link energy ``pJ/bit x bits sent`` when the system
gives one.
"""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING

from archsim.errors import InfeasibleMappingError, MappingError
from models._comm import System, collective_bytes_sent, collective_time
from models._graph import ModelGraph, Stage
from models._ops import CASCADES, Op

if TYPE_CHECKING:
    import pandas as pd

    from archsim import Architecture, Result

__all__ = ["OpRow", "ModelReport", "simulate_graph", "LATENCY_BOUND_UTIL"]

#: An op whose busiest compute unit and DRAM are both below this fraction of their peak is
#: classed ``latency`` bound (launch, fill/drain and per-kernel fixed costs dominate).
LATENCY_BOUND_UTIL = 0.25

_CACHE: dict[tuple[object, ...], tuple[float, float, float, str, str, bool]] = {}


@dataclass(frozen=True)
class OpRow:
    """One op of the graph, simulated.

    ``seconds``, ``energy_j`` and ``dram_bytes`` are for one instance on one device;
    ``count`` instances run per stage repetition (an op that occurs twice in a layer, such
    as the residual add, has ``count`` 2 in :meth:`ModelReport.table`) and the stage repeats
    ``repeat`` times.
    ``bound`` is ``compute``, ``memory``, ``latency``, ``comm`` (a collective) or
    ``unmapped`` (no dataflow: ``note`` says why, and the op adds nothing to the totals).
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

    @property
    def total_s(self) -> float:
        """Seconds this op adds to the step (all its instances and repetitions)."""
        return self.seconds * self.count * self.repeat


def row(
    stage: Stage,
    op: Op,
    seconds: float,
    energy_j: float,
    dram_bytes: float,
    bound: str,
    dataflow: str,
    note: str = "",
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
        """Seconds of the step spent in collectives (all exposed, see the module doc)."""
        return sum(r.total_s for r in self.rows if r.bound == "comm")

    @property
    def energy_j(self) -> float:
        """Joules of the step, all devices."""
        return sum(r.energy_j * r.count * r.repeat for r in self.rows) * self.graph.tp

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
        (all instances, all devices), ``dram_bytes`` (one instance, one device), ``bound,
        dataflow, note``."""
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
                    "energy_j": r.energy_j * r.count * r.repeat * self.graph.tp,
                    "dram_bytes": r.dram_bytes,
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
            "system": None if self.system is None else self.system.name,
            "engine": self.engine,
            "latency_s": self.latency_s,
            "tokens": self.new_tokens,
            "tokens_per_s": self.tokens_per_s,
            "energy_j": self.energy_j,
            "j_per_token": self.j_per_token,
            "comm_s": self.comm_s,
            "comm_share": self.comm_s / self.latency_s if self.latency_s else None,
            "kv_cache_bytes": g.model.kv_cache_bytes(g.batch, g.seq),
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
        tp = self.graph.tp
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
        return meta + events

    def write_trace(self, path: str | Path) -> Path:
        """Write :meth:`trace_events` as Chrome trace JSON (open in ui.perfetto.dev)."""
        path = Path(path)
        payload = {"traceEvents": self.trace_events(), "displayTimeUnit": "ns"}
        path.write_text(json.dumps(payload))
        return path


def _bound(result: Result, arch: Architecture) -> str:
    secs = float(result.seconds)
    util = max(result.utilization.values(), default=0.0)
    dram = arch.dram
    peak = dram.read_bw_bytes_per_cycle * arch.clock.core_hz * dram.instances
    dram_util = float(result.dram_bytes) / (secs * peak) if secs > 0 and peak > 0 else 0.0
    if max(util, dram_util) < LATENCY_BOUND_UTIL:
        return "latency"
    return "memory" if dram_util >= util else "compute"


def _stream_credit(arch: Architecture) -> tuple[float, tuple[str, ...]]:
    """Seconds a GPU op launched right after another saves: each op simulated alone pays
    the calibrated first-kernel ``launch_s``; in a step the kernels run back to back, so
    every op after the first pays only the inter-kernel ``gap_s`` (the rule
    :func:`archsim.gpu.evaluate_op` applies to the kernels of one call)."""
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


def _capacity_notes(graph: ModelGraph, arch: Architecture) -> tuple[str, ...]:
    """A note when the weights and KV cache one device holds exceed its DRAM (the step is
    simulated all the same: the table is then what the step would cost if they fitted)."""
    m = graph.model
    cap = arch.dram.capacity_bytes
    if cap is None:
        return ()
    cap *= arch.dram.instances
    weights = m.param_count() * m.elt_bytes / graph.tp
    kv = m.kv_cache_bytes(graph.batch, graph.seq) / graph.tp
    if weights + kv <= cap:
        return ()
    return (
        f"weights {weights / 1e9:.4g} GB + KV cache {kv / 1e9:.4g} GB per device exceed the "
        f"{cap / 1e9:.4g} GB of {arch.name}'s {arch.dram.name} (simulated as if they fitted)",
    )


def _simulate_op(
    op: Op, arch: Architecture, arch_key: object, engine: str
) -> tuple[tuple[float, float, float, str, str, bool], bool]:
    """(seconds, energy J, DRAM bytes, bound, dataflow-or-reason, launched) of one op
    instance run alone (``launched``: its time includes a GPU kernel launch), and whether it
    was simulated now (a cache miss)."""
    from mappings import simulate_workload

    key = (arch_key, engine, op.key)
    if key in _CACHE:
        return _CACHE[key], False
    if op.workload in CASCADES:
        from models._ops import local_workload

        workload: object = local_workload(op.workload, op.params)
        params: dict[str, object] = {}
    else:
        workload, params = op.workload, dict(op.params)
    try:
        rep = simulate_workload(arch, workload, params=params, engine=engine)  # type: ignore[arg-type]  # engine: checked by simulate_workload
    except (MappingError, InfeasibleMappingError) as exc:
        out = (0.0, 0.0, 0.0, "unmapped", str(exc), False)
    else:
        r = rep.result
        launched = any(str(k).startswith("launch:") for k in r.meta.get("phase_cycles", {}))
        out = (
            float(r.seconds),
            float(r.energy_j),
            float(r.dram_bytes),
            _bound(r, arch),
            rep.dataflow,
            launched,
        )
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

    if graph.tp > 1:
        if system is None:
            raise ModelError(
                "tensor parallelism needs an interconnect",
                path="system",
                expected="a System",
                got=None,
            )
        if system.count < graph.tp:
            raise ModelError(
                "the system has fewer devices than the tensor-parallel degree",
                path="tp",
                expected=f"<= {system.count} ({system.name})",
                got=graph.tp,
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
    for stage in graph.stages:
        for op in stage.ops:
            if op.collective:
                assert system is not None
                secs, algo = collective_time(op.collective, op.bytes, system, devices=graph.tp)
                sent = collective_bytes_sent(op.collective, op.bytes, graph.tp)
                energy = static_w * secs + sent * 8 * system.link_energy_pj_per_bit * 1e-12
                note = f"{system.name}: {algo} over {graph.tp} devices"
                rows.append(row(stage, op, secs, energy, 0.0, "comm", algo, note))
                continue
            (secs, energy, dram, bound, how, launched), miss = _simulate_op(op, a, arch_key, engine)
            sims += miss
            if bound == "unmapped":
                rows.append(row(stage, op, 0.0, 0.0, 0.0, "unmapped", "", how))
                continue
            if launched and credit and not first:  # back to back: a gap, not a launch
                keep = max(secs - credit, 0.0) / secs
                secs, energy = secs * keep, energy * keep
            first = first and not launched
            rows.append(row(stage, op, secs, energy, dram, bound, how))
    return ModelReport(
        notes=notes + _capacity_notes(graph, a),
        graph=graph,
        arch=a.name,
        system=system if graph.tp > 1 else None,
        engine=engine,
        rows=tuple(rows),
        static_w=static_w,
        wall_s=time.perf_counter() - t0,
        simulations=sims,
    )
