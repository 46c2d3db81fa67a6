"""The engine's exact shortcuts agree with slot-by-slot simulation (within one cycle)."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from archsim import Architecture, Compute, Phase, Step, TileProgram, Transfer, simulate
from tests.archsim.test_engine_toys import load, macs, store, toy_arch
from tests.archsim.test_properties import cases

_SETTINGS = settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def per_slot_arch(instances: int, lat: int, l1_bw: float, rf_bw: float, pe: float) -> Architecture:
    """Shared DRAM, then per-slot L1, RF and PE (``instances`` of each)."""
    level = {"read_energy_pj_per_byte": 1.0, "write_energy_pj_per_byte": 1.0}
    return Architecture.from_dict(
        {
            "name": "per-slot",
            "kind": "spatial",
            "clock": {"core_hz": 1e9},
            "levels": [
                {"name": "DRAM", "kind": "dram", "read_bw_bytes_per_cycle": 8.0,
                 "write_bw_bytes_per_cycle": 8.0, **level},
                {"name": "L1", "kind": "sram", "instances": instances, "latency_cycles": lat,
                 "read_bw_bytes_per_cycle": l1_bw, "write_bw_bytes_per_cycle": l1_bw, **level},
                {"name": "RF", "kind": "regfile", "instances": instances,
                 "read_bw_bytes_per_cycle": rf_bw, "write_bw_bytes_per_cycle": rf_bw, **level},
            ],
            "compute": [
                {"name": "PE", "instances": instances, "ops_per_cycle": {"mac": pe},
                 "energy_pj": {"mac": 0.5}}
            ],
        }
    )  # fmt: skip


def _agree(prog: TileProgram, arch: Architecture) -> None:
    short, full = simulate(prog, arch), simulate(prog, arch, shortcuts=False)
    assert short.meta["phase_method"][prog.phases[0].name] == "shortcut"
    assert full.meta["phase_method"][prog.phases[0].name] == "full"
    assert short.cycles == pytest.approx(full.cycles, abs=1)


@_SETTINGS
@given(
    slots=st.integers(2, 5),
    trips=st.lists(st.integers(0, 40), min_size=1, max_size=14),
    lat=st.integers(0, 9),
    load_b=st.integers(1, 400),
    store_b=st.integers(0, 200),
    mac_n=st.integers(0, 300),
    depth=st.integers(1, 3),
    mixed=st.booleans(),
    prologue=st.booleans(),
)
def test_ragged_items_on_private_slots_are_list_scheduled(
    slots: int,
    trips: list[int],
    lat: int,
    load_b: int,
    store_b: int,
    mac_n: int,
    depth: int,
    mixed: bool,
    prologue: bool,
) -> None:
    # each slot has its own L1, RF and PE instance: items never interact, whatever their trips
    arch = per_slot_arch(slots, lat, 7.0, 5.0, 3.0)
    stores = (Transfer("O", store_b, "RF", "RF" if mixed else "L1"),) if store_b else ()
    body = Step(
        loads=(Transfer("K", load_b, "L1", "RF"),),
        compute=(Compute("PE", {"mac": mac_n}),),
        stores=stores,
    )
    pro = Step(loads=(Transfer("Q", 50, "L1", "RF"),)) if prologue else None
    prog = TileProgram(
        "rag",
        (
            Phase(
                "p",
                body,
                trips=np.array(trips),
                work_items=len(trips),
                slots=slots,
                depth=depth,
                prologue=pro,
            ),
        ),
    )
    _agree(prog, arch)


@_SETTINGS
@given(
    groups=st.integers(2, 4),
    per_group=st.integers(2, 3),
    items=st.integers(1, 30),
    trips=st.integers(1, 25),
    dram_bw=st.sampled_from([4.0, 10.0, 32.0]),
    lat=st.integers(0, 15),
    load_b=st.integers(1, 300),
    mac_n=st.integers(1, 200),
    store_b=st.integers(0, 100),
    depth=st.integers(1, 3),
)
def test_unevenly_shared_last_wave_runs_one_slot_per_class(
    groups: int,
    per_group: int,
    items: int,
    trips: int,
    dram_bw: float,
    lat: int,
    load_b: int,
    mac_n: int,
    store_b: int,
    depth: int,
) -> None:
    # slots = groups x per_group on `groups` BUF/PE instances and one DRAM: a last wave of
    # `items % slots` CTAs leaves some groups with one slot fewer (like 232 CTAs on 132 SMs
    # with two CTA slots each)
    arch = toy_arch(
        dram_bw=dram_bw, dram_lat=lat, buf_instances=groups, pe_instances=groups, macs=4.0
    )
    body = Step(
        loads=(load(load_b),),
        compute=(macs(mac_n),),
        stores=(store(store_b),) if store_b else (),
    )
    slots = groups * per_group
    prog = TileProgram(
        "wave",
        (Phase("p", body, trips=trips, work_items=items, slots=slots, depth=depth),),
    )
    tail = items % slots if items > slots else items
    short, full = simulate(prog, arch), simulate(prog, arch, shortcuts=False)
    assert short.cycles == pytest.approx(full.cycles, abs=1)
    if tail > groups and tail % groups:
        # the class shortcut, not the slot-by-slot fallback: far fewer events
        assert short.meta["phase_method"]["p"] == "shortcut"


def test_flash_like_tail_of_232_ctas_on_132_sms_with_two_slots_each() -> None:
    arch = toy_arch(dram_bw=64.0, dram_lat=20, buf_instances=132, pe_instances=132, macs=8.0)
    body = Step(loads=(load(256, "K"), load(256, "V")), compute=(macs(512),))
    prog = TileProgram("flash", (Phase("p", body, trips=40, work_items=232, slots=264, depth=2),))
    short, full = simulate(prog, arch), simulate(prog, arch, shortcuts=False)
    assert short.cycles == pytest.approx(full.cycles, abs=1)
    assert short.meta["events"] < full.meta["events"] / 20


def test_ragged_items_sharing_dram_are_simulated_slot_by_slot() -> None:
    # contention on the shared DRAM changes with the number of active slots: no shortcut
    arch = toy_arch(dram_bw=10.0, buf_instances=4, pe_instances=4)
    prog = TileProgram(
        "rag",
        (
            Phase(
                "p",
                Step(loads=(load(100),), compute=(macs(70),)),
                trips=np.array([5, 9, 2, 7, 7, 1]),
                work_items=6,
                slots=3,
            ),
        ),
    )
    assert simulate(prog, arch).meta["phase_method"]["p"] == "full"


@_SETTINGS
@given(case=cases())
def test_private_servers_give_the_processor_sharing_answer(case) -> None:
    # a traced run keeps every server a processor-sharing queue (for its busy spans); the
    # untraced run folds servers used by one slot and one stage into one deadline per stage
    arch, prog = case
    traced = simulate(prog, arch, trace=True)
    assert simulate(prog, arch, shortcuts=False).cycles == traced.cycles


@_SETTINGS
@given(
    groups=st.integers(1, 3),
    per_group=st.integers(1, 3),
    waves=st.integers(1, 3),
    extra=st.integers(0, 4),
    first=st.integers(0, 12),
    rest=st.lists(st.integers(0, 12), min_size=1, max_size=10),
    dram_bw=st.sampled_from([4.0, 10.0, 32.0]),
    lat=st.integers(0, 15),
    load_b=st.integers(1, 300),
    mac_n=st.integers(1, 200),
    store_b=st.integers(0, 100),
    depth=st.integers(1, 3),
    prologue=st.booleans(),
)
def test_leading_waves_of_alike_items_then_the_rest_from_idle(
    groups: int,
    per_group: int,
    waves: int,
    extra: int,
    first: int,
    rest: list[int],
    dram_bw: float,
    lat: int,
    load_b: int,
    mac_n: int,
    store_b: int,
    depth: int,
    prologue: bool,
) -> None:
    # block-sparse rows sorted by kept blocks: whole waves of alike items first, on slots
    # that share DRAM and (per_group > 1) their group's BUF and PE
    arch = toy_arch(
        dram_bw=dram_bw, dram_lat=lat, buf_instances=groups, pe_instances=groups, macs=4.0
    )
    body = Step(
        loads=(load(load_b),),
        compute=(macs(mac_n),),
        stores=(store(store_b),) if store_b else (),
    )
    slots = groups * per_group
    trips = np.array([first] * (waves * slots + extra) + rest)
    pro = Step(loads=(load(40, "Q"),)) if prologue else None
    prog = TileProgram(
        "lead",
        (
            Phase(
                "p",
                body,
                trips=trips,
                work_items=len(trips),
                slots=slots,
                depth=depth,
                prologue=pro,
            ),
        ),
    )
    short, full = simulate(prog, arch), simulate(prog, arch, shortcuts=False)
    assert short.cycles == pytest.approx(full.cycles, abs=1)
    if len(set(trips.tolist())) > 1:
        assert short.meta["phase_method"]["p"] == "shortcut"
