"""The compiled slot-by-slot loop (``archsim.engine._fastsim``) is the SimPy loop, bit for bit."""

from __future__ import annotations

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from archsim import Architecture, Compute, Phase, Step, TileProgram, Transfer, simulate
from archsim.engine import compile_program
from archsim.engine._fastsim import run_phase
from archsim.engine._runtime import PhaseRun, Runtime
from tests.archsim.test_engine_toys import load, macs, store, toy_arch

_SETTINGS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _simpy(compiled, cp, t0: float, items: int | None = None, active: int | None = None):
    """``(finish, env.now at the end, events)`` of the phase on the SimPy loop."""
    n_items = cp.phase.work_items if items is None else items
    slots = min(cp.phase.slots if active is None else active, n_items)
    rt = Runtime(compiled, [(cp, slots)], t0=t0)
    end: list[float] = []
    PhaseRun(rt, cp, lambda: end.append(rt.env.now), items=items, active_slots=active).start()
    rt.env.run()
    return end[0], rt.env.now, rt.clock.scheduled()


@st.composite
def phases(draw: st.DrawFn):
    groups = draw(st.integers(1, 4))
    arch = toy_arch(
        dram_bw=draw(st.sampled_from([3.0, 10.0, 64.0])),
        dram_lat=draw(st.integers(0, 30)),
        buf_bw=draw(st.sampled_from([5.0, 40.0, 1000.0])),
        buf_instances=groups,
        pe_instances=draw(st.sampled_from([1, groups, 16])),
        macs=draw(st.sampled_from([2.0, 8.0])),
        net_bw=draw(st.sampled_from([None, 7.0])),
    )
    # loads from DRAM (latency) and from BUF (none); stores to DRAM, or to BUF (the load's
    # BUF write port then serves two stages: a shared server even for a lone slot)
    n_loads = draw(st.integers(0, 2))
    loads = tuple(load(draw(st.integers(0, 300)), f"T{j}") for j in range(n_loads))
    if draw(st.booleans()):
        loads += (Transfer("L", draw(st.integers(1, 200)), "BUF", "BUF"),)
    stores: tuple[Transfer, ...] = ()
    if draw(st.booleans()):
        stores += (store(draw(st.integers(1, 100))),)
    if draw(st.booleans()):
        stores += (Transfer("S", draw(st.integers(1, 90)), "BUF", "BUF"),)
    body = Step(loads=loads, compute=(macs(draw(st.integers(0, 200))),), stores=stores)
    pro = None
    if draw(st.booleans()):
        pro = Step(
            loads=(load(draw(st.integers(1, 200)), "Q"),), compute=(macs(draw(st.integers(0, 50))),)
        )
    epi = Step(stores=(store(draw(st.integers(1, 120)), "O"),)) if draw(st.booleans()) else None
    items = draw(st.integers(1, 24))
    if draw(st.booleans()):
        trips = np.array(draw(st.lists(st.integers(0, 25), min_size=items, max_size=items)))
    else:
        trips = draw(st.integers(0, 25))
    phase = Phase(
        "p",
        body,
        trips=trips,
        work_items=items,
        slots=draw(st.integers(1, 9)),
        depth=draw(st.integers(1, 3)),
        prologue=pro,
        epilogue=epi,
    )
    t0 = draw(st.sampled_from([0.0, 123.456]))
    return arch, TileProgram("fast", (phase,)), t0


@_SETTINGS
@given(case=phases())
def test_compiled_loop_equals_simpy_loop_bit_for_bit(case) -> None:
    # same finish cycle, same last event and the same number of events, to the last bit:
    # the compiled loop is a transcription of the SimPy state machines, not a model of them
    arch, prog, t0 = case
    compiled = compile_program(prog, arch)
    cp = compiled.phases[0]
    assert run_phase(compiled, cp, t0) == _simpy(compiled, cp, t0)


@_SETTINGS
@given(case=phases(), cut=st.integers(1, 30), active=st.integers(1, 9))
def test_compiled_loop_runs_the_first_items_on_the_first_slots(case, cut: int, active: int):
    arch, prog, t0 = case
    compiled = compile_program(prog, arch)
    cp = compiled.phases[0]
    items = min(cut, cp.phase.work_items)
    got = run_phase(compiled, cp, t0, items=items, active_slots=active)
    assert got == _simpy(compiled, cp, t0, items=items, active=active)


def gpu_like_arch(sms: int, hbm_lat: int, l2_lat: int) -> Architecture:
    """HBM and L2 shared by all SMs (two load latencies), per-SM SMEM and tensor unit."""
    lv = {"read_energy_pj_per_byte": 1.0, "write_energy_pj_per_byte": 1.0}
    return Architecture.from_dict(
        {
            "name": "gpu-like",
            "kind": "spatial",
            "clock": {"core_hz": 1e9},
            "levels": [
                {"name": "HBM", "kind": "dram", "latency_cycles": hbm_lat,
                 "read_bw_bytes_per_cycle": 64.0, "write_bw_bytes_per_cycle": 64.0, **lv},
                {"name": "L2", "kind": "sram", "latency_cycles": l2_lat,
                 "read_bw_bytes_per_cycle": 128.0, "write_bw_bytes_per_cycle": 128.0, **lv},
                {"name": "SMEM", "kind": "sram", "instances": sms,
                 "read_bw_bytes_per_cycle": 32.0, "write_bw_bytes_per_cycle": 32.0, **lv},
            ],
            "compute": [
                {"name": "TC", "instances": sms, "ops_per_cycle": {"mac": 64.0},
                 "energy_pj": {"mac": 0.1}},
                {"name": "ALU", "instances": sms, "ops_per_cycle": {"add": 8.0},
                 "energy_pj": {"add": 0.1}},
            ],
        }
    )  # fmt: skip


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    sms=st.integers(2, 6),
    per_sm=st.integers(1, 3),
    hbm_lat=st.integers(1, 90),
    l2_lat=st.integers(0, 40),
    trips=st.lists(st.integers(1, 30), min_size=4, max_size=60),
    hbm_b=st.integers(1, 400),
    l2_b=st.integers(1, 2000),
    macs_n=st.integers(0, 20000),
    adds=st.integers(0, 500),
    depth=st.integers(1, 3),
    prologue=st.booleans(),
)
def test_compiled_loop_equals_simpy_on_gpu_like_ragged_phases(
    sms, per_sm, hbm_lat, l2_lat, trips, hbm_b, l2_b, macs_n, adds, depth, prologue
) -> None:
    # as the GPU lowering emits causal attention: co-resident CTAs share their SM's SMEM
    # port and units, every CTA loads from HBM and L2 (two latencies), ragged trips
    arch = gpu_like_arch(sms, hbm_lat, l2_lat)
    body = Step(
        loads=(Transfer("K", hbm_b, "HBM", "SMEM"), Transfer("V", l2_b, "L2", "SMEM")),
        compute=(Compute("TC", {"mac": macs_n}), Compute("ALU", {"add": adds})),
    )
    pro = Step(compute=(Compute("TC", {"mac": 3000}),)) if prologue else None
    phase = Phase(
        "k", body, trips=np.array(trips), work_items=len(trips), slots=sms * per_sm,
        depth=depth, prologue=pro,
    )  # fmt: skip
    compiled = compile_program(TileProgram("gpu", (phase,)), arch)
    cp = compiled.phases[0]
    assert run_phase(compiled, cp, 7.5) == _simpy(compiled, cp, 7.5)


def test_a_phase_no_shortcut_covers_runs_in_the_compiled_loop_with_the_simpy_cycles():
    # ragged trips of many distinct counts on slots paired on shared PEs and one DRAM: no
    # exact shortcut applies, so simulate() runs the phase slot by slot, now compiled; the
    # answer is the SimPy loop's (shortcuts=False runs every phase on SimPy)
    arch = toy_arch(dram_bw=40.0, dram_lat=12, buf_instances=6, pe_instances=6, macs=4.0)
    trips = np.random.default_rng(7).integers(1, 60, size=150)
    body = Step(loads=(load(256),), compute=(macs(300), Compute("PE", {"exp": 4})))
    prog = TileProgram(
        "ragged",
        (Phase("p", body, trips=trips, work_items=150, slots=12, depth=2),),
    )
    fast = simulate(prog, arch, approx=False)
    slow = simulate(prog, arch, shortcuts=False)
    assert fast.meta["phase_method"] == {"p": "full"}
    assert slow.meta["phase_method"] == {"p": "full"}
    assert fast.cycles == slow.cycles
    assert fast.meta["events"] == slow.meta["events"]


def test_compiled_loop_sizes_each_server_queue_by_its_own_sharers():
    # 20,000 slots, each with its own BUF and PE instance, all on one DRAM: each private-ish
    # instance holds one slot's jobs and only the DRAM port holds them all (one table of
    # 20,000 x 40,000 entries would not fit in memory)
    slots = 20_000
    arch = toy_arch(dram_bw=500.0, dram_lat=5, buf_instances=slots, pe_instances=slots)
    body = Step(loads=(load(64),), compute=(macs(40),), stores=(Transfer("S", 8, "BUF", "BUF"),))
    prog = TileProgram("wide", (Phase("p", body, trips=2, work_items=slots, slots=slots),))
    compiled = compile_program(prog, arch)
    cp = compiled.phases[0]
    assert run_phase(compiled, cp) == _simpy(compiled, cp, 0.0)
