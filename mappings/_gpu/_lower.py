"""Lowering GPU kernel models to tile programs (SMs as spatial instances).

A :class:`archsim.gpu.KernelCost` becomes one :class:`archsim.Phase`: ``work_items`` =
CTAs, ``slots`` = SMs x CTAs per SM (slot ``i`` runs on SM ``i % sms``, so co-resident
CTAs share their SM's tensor cores), ``trips`` = the per-CTA main-loop trip array (causal
imbalance, block sparsity). A trip loads its K/V (or A/B) tile into shared memory --
from HBM for the share of bytes that really comes from DRAM, from L2 for the rest (after
TMA multicast inside a CTA cluster), so the program's DRAM bytes equal the model's -- and
computes on the ``tensor`` unit (and the softmax on the ``cuda`` unit). A kernel without
a tiled main loop (softmax, split-KV combine, split-K reduce) streams its bytes in chunks
of what one CTA keeps in flight, one chunk per latency.

Same physical quantities as the analytic model (:mod:`archsim.gpu`):

- *Time base.* ``program.clock_hz`` is the engine's cycle length. It is chosen so that
  the architecture's HBM bytes/cycle give the model's achievable bandwidth
  (``hbm_efficiency`` x datasheet, calibrated): ``clock_hz = achievable B/s / (HBM
  B/cycle)``. (The engine counts every bandwidth in bytes per program cycle, so a
  program at the power-capped SM clock would scale DRAM bandwidth with the SM clock.)
- *SM clock from the power model.* Each kernel's SM work is expressed in time-base
  cycles at the clock the power model chose for that kernel: ``cycles x clock_hz / f``.
- *Efficiencies.* The tensor unit runs at the wgmma peak of the arch spec, so a trip
  issues ``trip_cycles x peak MAC/cycle`` MAC *slots* (the mma.sync path, the calibrated
  efficiency and any non-overlapped softmax included); the real MAC count is in ``meta``.
- *Launch overhead.* Each kernel is preceded by a one-slot phase that takes its fixed
  launch/gap time (``launch_s`` for the first kernel, ``gap_s`` for the others).
- *Bytes in flight.* The engine pipelines a slot's loads (``archsim.engine._pipeline``): a
  load holds its bandwidth servers for its transfer only, the next may start when it ends
  (up to ``depth`` tiles loaded but not computed), and its data is usable the latency
  later. ``pipelined_loads=True`` (what ``mappings`` and ``archsim validate`` use) lowers
  the kernel's real pipeline on it: one engine load per stage buffer (a model trip),
  ``depth`` = the kernel's stages, so cp.async / TMA stages overlap latency and transfer.
  The default (False) keeps the older lowering for an engine that held a slot's port for
  latency and transfer: an engine tile is what one CTA keeps in flight (the model's
  per-CTA stream bandwidth x the DRAM latency), uniform K-loop trips merged, big trips
  split.
- *Operand loads.* A forward attention trip brings its K tile and its V tile as two
  loads (``meta["loads_per_trip"] = 2``, set by ``archsim.gpu.attention``): QK^T and the
  softmax start when K has arrived while V still loads. The pipelined lowering makes each
  operand load an engine trip with its share of the trip's bytes and work (the loads in
  flight: ``depth`` x loads per trip); a CTA of one trip (split-KV decode) no longer waits
  for all its bytes before it computes.
- *Persistent kernels* (``meta["persistent"]``: cuDNN's sm90 flash forward, grid = SMs):
  one engine work item per CTA runs the work tiles the tile scheduler hands it (the
  model's greedy schedule), so its producer's loads for the next tile overlap the current
  tile's last compute; each tile switch costs the model's per-CTA latency as SM work (the
  consumers' epilogue). A tile-per-item lowering ends identical tiles in lockstep and
  drains DRAM at every wave, which no real (jittered) GPU does.
- *Writes.* Stores land in L2 (write-back); dirty lines go to DRAM when later fills evict
  them. So a kernel's DRAM writes ride with its loads: a streaming kernel writes its share
  with each chunk it reads, a tiled kernel's output drains over its trips (the mean per
  trip), and no CTA waits for DRAM. Each kernel is then one phase and a program is a chain
  of phases; reads and writes meet on the DRAM level's ports as the architecture has them.
- *Work outside the main loop* (pipeline fill/drain, GEMM epilogue: SM cycles; Q tiles
  beyond the K/V stream: DRAM bytes) overlaps the loop as in the model, so it rides on the
  trips (the mean per trip; totals exact) rather than holding back each CTA's first load.

NOTE: the engine's own energy (per-op tables of the architecture) counts issued slots, not
useful operations, and leaves out most of the board; :func:`board_energy_j` gives the power
model's energy at the engine's time, which :func:`mappings.simulate_workload` reports.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import Any

import numpy as np

from archsim import Compute, Phase, Result, Step, TileProgram, Transfer
from archsim.gpu import GpuModel, KernelCost, OpPrediction
from archsim.gpu.cost import dirty_writebacks, kernel_ramp_s
from archsim.gpu.launch import engine_load_latency_s
from archsim.gpu.power import board_energy_parts_j

__all__ = [
    "board_energy_j",
    "with_board_energy",
    "kernel_phase",
    "costs_to_program",
    "prediction_meta",
    "kernel_seconds",
    "time_base_hz",
]


def _level(arch: object, *names: str) -> str:
    have = {lvl.name for lvl in getattr(arch, "levels", ())}
    for n in names:
        if n in have:
            return n
    return next(iter(have)) if have else names[0]


def _unit_rate(arch: object, unit_name: str, op: str) -> float:
    for unit in getattr(arch, "compute", ()):
        if unit.name == unit_name:
            ops = unit.ops_per_cycle
            return float(ops.get(op, ops.get("mac", 0.0)) or 0.0)
    return 0.0


def _tensor_rate(arch: object, dtype_key: str) -> float:
    return _unit_rate(arch, "tensor", dtype_key)


def time_base_hz(model: GpuModel, arch: object) -> float:
    """Engine cycle rate (Hz) at which the arch's HBM bytes/cycle equal the model's
    achievable HBM bandwidth (see module notes); the boost clock without a DRAM level."""
    for lvl in getattr(arch, "levels", ()):
        if lvl.kind == "dram" and float(lvl.read_bw_bytes_per_cycle) > 0:
            return model.hbm_eff_bytes_per_s / float(lvl.read_bw_bytes_per_cycle)
    return model.hw.boost_clock_hz


def _grouped_trips(cost: KernelCost, lat_s: float) -> tuple[np.ndarray, float]:
    """Engine trips and model trips per engine trip (serial-latency lowering).

    The engine keeps one tile load per slot in flight (load ``k`` starts when load ``k-1``
    is done) and pays the DRAM latency ``lat_s`` per load, while the model streams a CTA
    at ``cta_stream_bytes_per_s`` (bytes it keeps in flight / latency). So an engine tile
    is what the CTA keeps in flight, ``r = bw x lat_s / trip bytes`` model trips: ``r``
    uniform trips are merged (GEMM K loop; work per engine trip is the exact average), or
    a trip is split into ``1 / r`` loads (exact for any trip array). Totals are unchanged.
    """
    trips = np.asarray(cost.trips, dtype=np.int64)
    if cost.trip_bytes <= 0 or trips.size == 0:
        return trips, 1.0
    r = cost.cta_stream_bytes_per_s * lat_s / cost.trip_bytes
    if r < 0.75:
        k = int(round(1.0 / r))
        return trips * k, 1.0 / k
    g = int(round(r))
    if g <= 1 or int(trips.min()) != int(trips.max()) or trips[0] <= 1:
        return trips, 1.0
    n = int(trips[0])
    n_e = math.ceil(n / g)
    return np.full(trips.size, n_e, dtype=np.int64), n / n_e


#: ``KernelCost.meta`` key: separate loads that bring one trip's operand tiles into shared
#: memory (attention forward: the K tile, then the V tile), each usable on its own arrival.
LOADS_PER_TRIP = "loads_per_trip"


#: Longest CTA (model trips) of a kernel with unequal CTAs whose trips are still split into
#: operand loads. NOTE: a speed trade, measured: unequal CTAs are simulated slot by slot
#: (no exact shortcut), at a cost that doubles with the split, while for longer CTAs the
#: split moves the kernel's time by at most 1.5% (h100_check causal records of 128-512 trips,
#: flash, cuDNN, efficient: 0.999-1.015 of the unsplit time); shorter or equal CTAs are
#: always split.
SPLIT_RAGGED_MAX_TRIPS = 64


def loads_per_trip(cost: KernelCost) -> int:
    """Engine loads per model trip in the pipelined lowering: ``meta["loads_per_trip"]``
    (1 when absent), or 1 for a kernel of unequal CTAs longer than
    :data:`SPLIT_RAGGED_MAX_TRIPS`. A trip of ``n`` loads becomes ``n`` engine trips of
    ``1/n`` of its bytes and work, ``depth`` x ``n`` of them in flight."""
    n = max(1, int(cost.meta.get(LOADS_PER_TRIP, 1)))  # type: ignore[call-overload]
    trips = np.asarray(cost.trips if cost.trips is not None else (), dtype=np.int64)
    if n > 1 and trips.size and trips.min() != trips.max():
        return n if int(trips.max()) <= SPLIT_RAGGED_MAX_TRIPS else 1
    return n


#: ``KernelCost.meta`` key: the kernel is persistent -- a grid of one CTA per slot whose
#: tile scheduler hands each CTA a sequence of work tiles (cuDNN's sm90 flash forward
#: launches ``grid = SMs``; its producer warp prefetches the next tile's K/V while the
#: consumers finish the current one).
PERSISTENT = "persistent"


def is_persistent(cost: KernelCost) -> bool:
    """Whether ``cost.meta`` marks the kernel persistent (see :data:`PERSISTENT`)."""
    return bool(cost.meta.get(PERSISTENT, False))


def persistent_trips(cost: KernelCost, trips: np.ndarray) -> np.ndarray:
    """Engine trips of each persistent CTA: the sum over the work tiles it runs.

    ``trips`` holds the engine trips of each work tile (``cost.trips`` x loads per trip).
    Tiles go to CTAs as the kernel model's schedule hands them out (greedy in dispatch
    order ``cost.order`` over ``cost.slots`` slots, :func:`archsim.gpu.waves.list_schedule`
    on the tiles' SM cycles: a dynamic tile scheduler). NOTE: one engine work item per CTA
    runs its tiles' loads back to back, so the next tile's first loads overlap the current
    tile's last compute, as the producer warp's prefetch does; a non-persistent lowering
    would drain every SM at each tile boundary (identical tiles end in lockstep).
    """
    from archsim.gpu.waves import list_schedule

    cyc = np.asarray(cost.cta_cycles, dtype=float)
    sched = list_schedule(cyc, cost.slots, order=cost.order)
    used = min(int(cost.slots), trips.size)
    per_cta = np.bincount(sched.slot_of, weights=trips.astype(float), minlength=used)
    return np.rint(per_cta).astype(np.int64)


def _fixed_cycles(cost: KernelCost) -> float:
    """Mean SM cycles per CTA outside the main loop (one CTA alone on its SM)."""
    if cost.trips is None or cost.trip_cycles <= 0 or cost.ctas == 0:
        return 0.0
    cps = max(1, cost.ctas_per_sm)
    loop = np.asarray(cost.trips, dtype=float) * cost.trip_cycles * cps
    return max(float(np.mean(np.asarray(cost.cta_cycles, dtype=float) - loop)) / cps, 0.0)


def kernel_phase(
    cost: KernelCost,
    model: GpuModel,
    arch: object,
    *,
    after: tuple[str, ...] | None = None,
    dtype: str = "bf16",
    scale: float = 1.0,
    pipelined_loads: bool = False,
) -> Phase:
    """One kernel as a :class:`Phase` (see module notes).

    ``scale`` = time-base cycles per SM cycle (``clock_hz / f`` of this kernel).
    ``pipelined_loads``: one engine load per shared-memory stage and ``depth`` = stages (a
    CTA's cp.async / TMA pipeline), for an engine that keeps several loads of a slot in
    flight; False: one engine load of all the bytes a CTA keeps in flight, one latency each
    (the lowering for one load in flight per slot). See module notes, "Bytes in flight".
    """
    dram, l2, smem = _level(arch, "HBM", "DRAM"), _level(arch, "L2"), _level(arch, "SMEM")
    lat_s = engine_load_latency_s(model, arch)
    ctas = cost.ctas
    mac_key = f"mac_{dtype}"
    rate = _tensor_rate(arch, mac_key)
    add_rate = _unit_rate(arch, "cuda", "add")
    depth = max(1, cost.stages)
    persistent = False
    if cost.trips is None or cost.trip_cycles <= 0:  # streaming kernel
        # a chunk reads its share of the DRAM reads and writes its share of the writes, as
        # the kernel streams them (see module notes, "Writes")
        read_cta = cost.dram_read_bytes / max(ctas, 1)
        write_cta = cost.dram_write_bytes / max(ctas, 1)
        cyc = float(np.asarray(cost.cta_cycles).mean()) if ctas else 0.0
        # a CTA's own cycles: the engine shares the SM between resident CTAs itself
        cyc /= float(cost.meta.get("sm_sharing", 1.0))  # type: ignore[arg-type]
        # one chunk = what a CTA keeps in flight (one stage of it when pipelined)
        stream_depth = max(1, cost.stages) if pipelined_loads else 1
        chunk = max(cost.cta_stream_bytes_per_s * lat_s / stream_depth, 1.0)
        n = max(1, math.ceil((read_cta if read_cta > 0 else write_cta) / chunk))
        trips: int | np.ndarray = n
        loop_bytes, l2_bytes = read_cta / n, read_cta / n
        stream_store = write_cta / n
        issued = 0.0
        alu = {"add": cyc * add_rate * scale / n} if cyc > 0 and add_rate > 0 else {}
        depth = stream_depth
    else:
        stream_store = -1.0  # set below: the kernel's writes spread over its trips
        sub = 1
        if pipelined_loads:  # one engine load per operand tile of a stage buffer
            sub = loads_per_trip(cost)
            trips, group = np.asarray(cost.trips, dtype=np.int64) * sub, 1.0 / sub
        else:
            trips, group = _grouped_trips(cost, lat_s)
        persistent = pipelined_loads and is_persistent(cost) and bool(np.ndim(trips))
        if persistent:
            trips = persistent_trips(cost, np.asarray(trips))
        elif cost.order is not None and np.ndim(trips):
            # the engine hands items out in index order: put them in the kernel's dispatch
            # order (FA2/FA3 causal launch the longest query blocks first)
            trips = np.asarray(trips)[np.asarray(cost.order)]
        loop_bytes = cost.trip_bytes * group
        l2_bytes = cost.trip_l2_bytes if cost.trip_l2_bytes is not None else cost.trip_bytes
        l2_bytes *= group
        issued = cost.trip_cycles * rate * scale * group
        alu = {k: float(v) * scale * group for k, v in cost.trip_alu_ops.items()}
        if not pipelined_loads and group != 1.0:
            depth = 2
        depth *= sub
    n_trips = float(np.sum(trips)) if np.ndim(trips) else float(ctas * trips)
    total_stream = n_trips * loop_bytes
    # Work outside the main loop -- pipeline fill/drain, epilogue math (SM cycles) and the
    # reads beyond the K/V or A/B tiles (Q tiles...) -- overlaps the loop's loads, as in the
    # model (CTA time = max(cycles, bytes / stream bandwidth) + latency): it is spread over
    # the engine trips (the mean per trip, so totals are exact; a serial prologue would
    # hold back every CTA's first load). A kernel whose CTAs run no trip at all keeps it as
    # a prologue, and its writes as an epilogue.
    spread = n_trips > 0 and ctas > 0
    fixed = _fixed_cycles(cost)
    if persistent:
        # a persistent CTA's switch from one tile to the next -- the consumers' epilogue (O
        # rescaled, stored through shared memory) while the next tile's Q arrives -- costs
        # the latency the model charges each CTA (``evaluate_kernel``: + DRAM latency);
        # only the loads overlap across tiles (see :func:`persistent_trips`)
        fixed += model.hw.dram_latency_s * time_base_hz(model, arch) / scale
    frac = min(1.0, cost.dram_read_bytes / total_stream) if total_stream > 0 else 0.0
    excess = max(cost.dram_read_bytes - total_stream, 0.0)
    dram_trip = loop_bytes * frac + (excess / n_trips if spread else 0.0)
    # the rest of the tile comes from L2; TMA multicast reads a shared tile once per cluster
    l2_trip = max(l2_bytes - loop_bytes * frac, 0.0)
    # whole bytes per trip, rounded up: rounding to nearest lost up to half a byte per trip,
    # enough to take a many-trip kernel under its compulsory traffic
    loads = [Transfer("in", math.ceil(dram_trip - 1e-9), dram, smem)]
    loads.append(Transfer("in", math.ceil(l2_trip - 1e-9), l2, smem))
    fixed_macs = fixed * rate * scale if fixed > 0 and rate > 0 else 0.0
    per_cta_trips = n_trips / max(ctas, 1)
    if spread:
        issued += fixed_macs / per_cta_trips
    computes = []
    if issued > 0:
        computes.append(Compute("tensor", {mac_key: issued}))
    if any(v > 0 for v in alu.values()):
        computes.append(Compute("cuda", {k: float(v) for k, v in alu.items() if v > 0}))
    if stream_store < 0:  # output tiles drain from L2 while the loop runs (write-back)
        stream_store = cost.dram_write_bytes / n_trips if spread else 0.0
    # L2 is write-back: dirty lines go to DRAM when the tiles a CTA streams in evict them,
    # so the writes ride with the loads (not after the compute: a CTA never waits for them)
    writes = (Transfer("out", int(round(stream_store)), smem, dram),) if stream_store >= 1 else ()
    body = Step(
        loads=tuple(t for t in loads if t.bytes > 0) + writes,
        compute=tuple(computes),
        buffer_bytes=int(loop_bytes),
    )
    prologue = None
    if not spread:
        per = excess / max(ctas, 1)
        pro_loads = (Transfer("in", int(round(per)), dram, smem),) if per >= 1 else ()
        pro_compute = (Compute("tensor", {mac_key: fixed_macs}),) if fixed_macs > 0 else ()
        prologue = Step(loads=pro_loads, compute=pro_compute) if pro_loads or pro_compute else None
    epilogue = None  # output writes ride with the loads (see module notes, "Writes")
    if not spread and cost.dram_write_bytes >= max(ctas, 1):
        per = cost.dram_write_bytes / max(ctas, 1)
        epilogue = Step(stores=(Transfer("out", int(round(per)), smem, dram),))
    return Phase(
        name=cost.name,
        body=body,
        trips=trips,
        work_items=max(int(np.size(trips)) if np.ndim(trips) else ctas, 1),
        slots=cost.slots,
        prologue=prologue,
        epilogue=epilogue,
        depth=depth,
        staging_level=None,
        after=after,
    )


def costs_to_program(
    name: str,
    costs: Sequence[KernelCost],
    model: GpuModel,
    arch: object,
    prediction: OpPrediction,
    *,
    dtype: str = "bf16",
    pipelined_loads: bool = False,
    l2_dirty_bytes: float = 0.0,
) -> TileProgram:
    """The kernels of one operation as a :class:`TileProgram`, run back to back, each at
    the SM clock the power model chose for it (see module notes for the time base;
    ``pipelined_loads``: see :func:`kernel_phase`)."""
    phases = []
    kernel_names: list[str] = []
    deps: tuple[str, ...] = ()
    seen: dict[str, int] = {}
    base = time_base_hz(model, arch)
    add_rate = _unit_rate(arch, "cuda", "add")
    wbs = dirty_writebacks(costs, l2_dirty_bytes)
    for i, c in enumerate(costs):
        if wbs[i] > 0:  # dirty lines its fills evict: DRAM writes riding with its loads
            c = replace(c, dram_write_bytes=c.dram_write_bytes + wbs[i])
        n = seen.get(c.name, 0)
        seen[c.name] = n + 1
        pname = c.name if n == 0 else f"{c.name}#{n}"
        fixed_s = (model.cal.launch_s if i == 0 else model.cal.gap_s) + kernel_ramp_s(c, model)
        if fixed_s > 0 and add_rate > 0:  # the launch/gap cost as a one-slot serial phase
            ops = fixed_s * base * add_rate
            phases.append(
                Phase(
                    name=f"launch:{pname}",
                    body=Step(compute=(Compute("cuda", {"add": ops}),)),
                    after=deps,
                )
            )
            deps = (f"launch:{pname}",)
        f = prediction.kernels[i].clock_hz if i < len(prediction.kernels) else 0.0
        f = f or prediction.clock_hz or model.hw.boost_clock_hz
        phase = kernel_phase(
            c, model, arch, after=deps, dtype=dtype, scale=base / f, pipelined_loads=pipelined_loads
        )
        phases.append(replace(phase, name=pname))
        kernel_names.append(pname)
        deps = (pname,)
    return TileProgram(
        name=name,
        phases=tuple(phases),
        clock_hz=base,
        meta={**prediction_meta(prediction, kernel_names), "time_base_hz": base},
    )


def kernel_seconds(meta: Mapping[str, object], result: Result) -> list[float]:
    """Seconds each kernel of a GPU program took in ``result``: its launch phase plus its
    kernel phase (``meta["kernels"][i]["phase"]``, :func:`costs_to_program`), from the
    engine's per-phase cycles. The phases form a chain, so the spans add up to the run; they
    are scaled to the engine's whole-cycle total."""
    spans: Any = result.meta.get("phase_cycles", {})
    total = sum(float(v) for v in spans.values())
    to_s = result.seconds / total if total > 0 else 0.0
    out = []
    for k in _kernel_meta(meta):
        p = str(k["phase"])
        out.append((float(spans.get(f"launch:{p}", 0.0)) + float(spans.get(p, 0.0))) * to_s)
    return out


def board_energy_j(model: GpuModel, meta: Mapping[str, object], result: Result) -> dict[str, float]:
    """Board energy (J) by power-model term of a GPU program's run ``result``, from the
    kernels in its ``meta`` (:func:`prediction_meta`) at the times the engine gave them
    (:func:`kernel_seconds`).

    The power model (:mod:`archsim.gpu.power`, validated against NVML board energy) splits
    power into terms that grow with time (idle, active) and terms that follow the work (tensor
    FLOPs, FP32/SFU ops, DRAM bytes); each kernel runs at the clock the governor chose for it.
    """
    total: dict[str, float] = {}
    for k, t in zip(_kernel_meta(meta), kernel_seconds(meta, result), strict=True):
        parts = board_energy_parts_j(
            model,
            float(k["clock_hz"]),
            t,
            tensor_flops=float(k["tensor_flops"]),
            alu_ops=float(k.get("alu_ops", 0.0)),
            dram_bytes=float(k.get("dram_bytes", 0.0)),
        )
        for name, j in parts.items():
            total[f"gpu.{name}"] = total.get(f"gpu.{name}", 0.0) + j
    return total


def _kernel_meta(meta: Mapping[str, object]) -> list[Mapping[str, Any]]:
    """The per-kernel records of a GPU program's meta: ``meta["kernels"]``, JSON-like dicts
    written by :func:`costs_to_program` (so typed ``Any``); none when absent."""
    kernels: Any = meta.get("kernels", ())
    return list(kernels)


def with_board_energy(
    model: GpuModel, meta: Mapping[str, object], dram: str, result: Result
) -> Result:
    """``result`` with its energy from :func:`board_energy_j` at its own time (the energy of
    the architecture's per-op tables stays in ``meta["component_energy_j"]``), and the GEMM
    output bytes still dirty in L2 when a kernel ends counted as ``dram`` bytes: a later
    kernel's evictions write them, so they cost no time here but they are DRAM traffic."""
    parts = board_energy_j(model, meta, result)
    kernels = _kernel_meta(meta)
    deferred = sum(float(k.get("deferred_write_bytes", 0.0)) for k in kernels)
    by_level = dict(result.bytes_by_level)
    by_level[dram] = by_level.get(dram, 0.0) + deferred
    return replace(
        result,
        energy_j=float(sum(parts.values())),
        energy_breakdown_j=parts,
        bytes_by_level=by_level,
        dram_bytes=float(result.dram_bytes + deferred),
        meta={
            **result.meta,
            "energy_model": "board power model (archsim.gpu.power)",
            "component_energy_j": float(result.energy_j),
            "kernel_seconds": dict(
                zip((str(k["phase"]) for k in kernels), kernel_seconds(meta, result), strict=True)
            ),
            "deferred_write_bytes": deferred,
        },
    )


def prediction_meta(pred: OpPrediction, phases: Sequence[str]) -> Mapping[str, object]:
    """Per-kernel facts a GPU program carries in its meta (JSON-like): the kernel phase's
    name, the governor's clock, the work and DRAM bytes that the board power model charges,
    and the kernel's own meta (CTAs, tiles...). No time: the engine gives it
    (:func:`kernel_seconds`, ``result.meta["kernel_seconds"]``)."""
    return {
        "kernels": [
            {
                "name": k.name,
                "phase": phase,
                "clock_hz": k.clock_hz,
                # the resource the kernel's own work saturates at that clock (its CTAs'
                # cycles, their latency chain, or DRAM bytes over bandwidth)
                "bound": k.bound,
                "tensor_flops": k.tensor_flops,
                "alu_ops": k.alu_ops,
                "dram_bytes": k.dram_read_bytes + k.dram_write_bytes,
                **{str(a): b for a, b in k.meta.items()},
            }
            for k, phase in zip(pred.kernels, phases, strict=True)
        ],
    }
