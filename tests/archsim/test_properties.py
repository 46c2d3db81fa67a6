"""Invariants over random small programs (hypothesis)."""

from __future__ import annotations

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from archsim import Phase, Step, TileProgram, estimate, simulate
from tests.archsim.test_engine_toys import load, macs, store, toy_arch

_SETTINGS = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@st.composite
def cases(draw: st.DrawFn):
    arch = toy_arch(
        dram_bw=draw(st.sampled_from([4.0, 10.0, 32.0])),
        dram_lat=draw(st.integers(0, 20)),
        buf_instances=draw(st.integers(1, 3)),
        pe_instances=draw(st.integers(1, 3)),
        macs=draw(st.sampled_from([2.0, 8.0])),
        leak_w=draw(st.sampled_from([0.0, 0.5])),
        net_bw=draw(st.sampled_from([None, 3.0, 50.0])),
    )
    phases = []
    for i in range(draw(st.integers(1, 2))):
        body = Step(
            loads=tuple(
                load(draw(st.integers(0, 300)), f"T{j}") for j in range(draw(st.integers(0, 2)))
            ),
            compute=(macs(draw(st.integers(0, 200))),),
            stores=tuple(store(draw(st.integers(1, 100))) for _ in range(draw(st.integers(0, 1)))),
        )
        items = draw(st.integers(1, 7))
        if draw(st.booleans()):
            trips = np.array(draw(st.lists(st.integers(0, 12), min_size=items, max_size=items)))
        else:
            trips = draw(st.integers(0, 12))
        pro = Step(loads=(load(draw(st.integers(1, 200)), "Q"),)) if draw(st.booleans()) else None
        after = None if i == 0 or draw(st.booleans()) else ()
        phases.append(
            Phase(
                f"p{i}",
                body,
                trips=trips,
                work_items=items,
                slots=draw(st.integers(1, 4)),
                depth=draw(st.integers(1, 3)),
                prologue=pro,
                after=after,
            )
        )
    return arch, TileProgram("prop", tuple(phases))


def _compulsory_bytes(prog: TileProgram) -> float:
    total = 0.0
    for p in prog.phases:
        per = sum(t.bytes for t in p.body.loads + p.body.stores)
        total += per * p.total_trips
        for step in (p.prologue, p.epilogue):
            if step is not None:
                total += sum(t.bytes for t in step.loads + step.stores) * p.work_items
    return total


@_SETTINGS
@given(cases())
def test_simulated_cycles_never_below_the_estimate(case) -> None:
    arch, prog = case
    assert simulate(prog, arch).cycles >= estimate(prog, arch).cycles


@_SETTINGS
@given(cases())
def test_shortcuts_agree_with_full_simulation(case) -> None:
    arch, prog = case
    short = simulate(prog, arch).cycles
    full = simulate(prog, arch, shortcuts=False).cycles
    assert abs(short - full) <= 1


@_SETTINGS
@given(cases())
def test_bytes_at_least_compulsory_and_energy_additive(case) -> None:
    arch, prog = case
    r = simulate(prog, arch)
    assert r.dram_bytes >= _compulsory_bytes(prog) - 1e-6
    assert all(v >= 0 for v in r.energy_breakdown_j.values())
    assert abs(r.energy_j - sum(r.energy_breakdown_j.values())) <= 1e-12 * max(1, r.energy_j)


@_SETTINGS
@given(cases())
def test_same_input_gives_identical_result(case) -> None:
    arch, prog = case
    assert simulate(prog, arch) == simulate(prog, arch)
    assert estimate(prog, arch) == estimate(prog, arch)
