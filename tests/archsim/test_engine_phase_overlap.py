"""Phases that run at the same time: timing each alone is exact when they share no server.

``simulate`` times every phase alone from the end of the phases it waits for (with the phase
shortcuts) unless two phases that may run together put work on a common server; then it
simulates everything jointly. These tests hold that path equal to the full simulation on
random programs (random ``after`` graphs, so overlapping phases with and without shared
servers), and the event result at or above the analytic bound.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from archsim import (
    Architecture,
    Compute,
    Phase,
    Step,
    TileProgram,
    Transfer,
    estimate,
    simulate,
)

_SETTINGS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def gpu_like_arch(sms: int = 2, hbm_bus: bool = False, hbm_lat: int = 5) -> Architecture:
    """HBM and L2 shared by all SMs; SMEM, tensor and cuda units per SM (``sms`` of each)."""
    e = {"read_energy_pj_per_byte": 1.0, "write_energy_pj_per_byte": 1.0}
    return Architecture.from_dict(
        {
            "name": "gpu-like",
            "kind": "spatial",
            "clock": {"core_hz": 1e9},
            "levels": [
                {"name": "HBM", "kind": "dram", "read_bw_bytes_per_cycle": 16.0,
                 "write_bw_bytes_per_cycle": 16.0, "latency_cycles": hbm_lat,
                 "shared_read_write": hbm_bus, **e},
                {"name": "L2", "kind": "sram", "read_bw_bytes_per_cycle": 40.0,
                 "write_bw_bytes_per_cycle": 40.0, "latency_cycles": 2, **e},
                {"name": "SMEM", "kind": "sram", "instances": sms,
                 "read_bw_bytes_per_cycle": 12.0, "write_bw_bytes_per_cycle": 9.0, **e},
            ],
            "compute": [
                {"name": "tensor", "instances": sms, "ops_per_cycle": {"mac": 8.0},
                 "energy_pj": {"mac": 0.5}},
                {"name": "cuda", "instances": sms, "ops_per_cycle": {"add": 2.0},
                 "energy_pj": {"add": 0.1}},
            ],
        }
    )  # fmt: skip


#: the transfers a random step draws from (src, dst)
_ROUTES = (("HBM", "SMEM"), ("L2", "SMEM"), ("SMEM", "HBM"), ("SMEM", "L2"), ("HBM", "L2"))


@st.composite
def _step(draw: st.DrawFn) -> Step:
    routes = draw(st.lists(st.sampled_from(_ROUTES), max_size=2, unique=True))
    moves = [Transfer(f"T{k}", draw(st.integers(0, 200)), s, d) for k, (s, d) in enumerate(routes)]
    loads = tuple(t for t in moves if t.dst != "HBM" and t.src != "SMEM")
    stores = tuple(t for t in moves if t not in loads)
    compute = []
    if draw(st.booleans()):
        compute.append(Compute("tensor", {"mac": draw(st.integers(0, 300))}))
    if draw(st.booleans()):
        compute.append(Compute("cuda", {"add": draw(st.integers(0, 60))}))
    return Step(loads=loads, compute=tuple(compute), stores=stores)


@st.composite
def overlap_cases(draw: st.DrawFn) -> tuple[Architecture, TileProgram]:
    arch = gpu_like_arch(
        sms=draw(st.integers(1, 3)), hbm_bus=draw(st.booleans()), hbm_lat=draw(st.integers(0, 9))
    )
    phases: list[Phase] = []
    for i in range(draw(st.integers(1, 4))):
        items = draw(st.integers(1, 7))
        if draw(st.booleans()):
            trips: int | np.ndarray = np.array(
                draw(st.lists(st.integers(0, 10), min_size=items, max_size=items))
            )
        else:
            trips = draw(st.integers(0, 10))
        earlier = [p.name for p in phases]
        after = None
        if i and draw(st.booleans()):
            after = tuple(draw(st.lists(st.sampled_from(earlier), max_size=2, unique=True)))
        phases.append(
            Phase(
                f"p{i}",
                draw(_step()),
                trips=trips,
                work_items=items,
                slots=draw(st.integers(1, 4)),
                depth=draw(st.integers(1, 3)),
                prologue=draw(_step()) if draw(st.booleans()) else None,
                after=after,
            )
        )
    return arch, TileProgram("overlap", tuple(phases))


def _agree(prog: TileProgram, arch: Architecture) -> tuple[dict, dict]:
    short = simulate(prog, arch)
    full = simulate(prog, arch, shortcuts=False)
    assert full.meta["phase_schedule"] == "joint"
    assert short.cycles == pytest.approx(full.cycles, abs=1)
    if short.meta["phase_schedule"] == "alone":
        for name, cyc in full.meta["phase_cycles"].items():
            assert short.meta["phase_cycles"][name] == pytest.approx(cyc, rel=1e-9, abs=1e-6)
    return short.meta, full.meta


@_SETTINGS
@given(overlap_cases())
def test_phases_timed_alone_agree_with_the_full_simulation(case) -> None:
    arch, prog = case
    _agree(prog, arch)


@_SETTINGS
@given(overlap_cases())
def test_overlapping_phases_never_beat_the_estimate(case) -> None:
    arch, prog = case
    assert simulate(prog, arch).cycles >= estimate(prog, arch).cycles - 1e-6
    assert simulate(prog, arch, shortcuts=False).cycles >= estimate(prog, arch).cycles - 1e-6


def _kernel(name: str, after: tuple[str, ...], items: int, trips: int | np.ndarray) -> Phase:
    body = Step(
        loads=(Transfer("K", 96, "HBM", "SMEM"), Transfer("V", 64, "L2", "SMEM")),
        compute=(Compute("tensor", {"mac": 240}), Compute("cuda", {"add": 30})),
    )
    return Phase(name, body, trips=trips, work_items=items, slots=4, after=after)


def _writeback(name: str, after: tuple[str, ...], items: int, nbytes: int = 300) -> Phase:
    body = Step(stores=(Transfer("O", nbytes, "SMEM", "HBM"),))
    return Phase(name, body, trips=1, work_items=items, slots=4, after=after)


def _launch(name: str, after: tuple[str, ...]) -> Phase:
    return Phase(name, Step(compute=(Compute("cuda", {"add": 80}),)), after=after)


def _gpu_program(trips: int | np.ndarray = 9, items: int = 11) -> TileProgram:
    """Two kernels as the GPU lowering emits them: launch, kernel beside its write-back."""
    return TileProgram(
        "gpu",
        (
            _launch("launch:a", ()),
            _kernel("a", ("launch:a",), items, trips),
            _writeback("writeback:a", ("launch:a",), items),
            _launch("launch:b", ("a", "writeback:a")),
            _kernel("b", ("launch:b",), items, trips),
            _writeback("writeback:b", ("launch:b",), items),
        ),
    )


@pytest.mark.parametrize("trips", [9, np.array([3, 9, 1, 0, 12, 7, 7, 2, 5, 9, 4])])
def test_kernel_beside_its_writeback_on_other_ports_is_timed_alone(trips) -> None:
    arch = gpu_like_arch(sms=2)
    short, _full = _agree(_gpu_program(trips), arch)
    assert short["phase_schedule"] == "alone"
    if isinstance(trips, int):  # 11 items on 4 slots of 2 SMs: waves, tail, symmetry
        assert set(short["phase_method"].values()) == {"shortcut"}


def test_writeback_on_the_kernels_dram_bus_is_simulated_jointly() -> None:
    # one HBM bus for reads and writes: the write-back slows the kernel's loads
    arch = gpu_like_arch(sms=2, hbm_bus=True)
    short, _full = _agree(_gpu_program(), arch)
    assert short["phase_schedule"] == "joint"
    assert set(short["phase_method"].values()) == {"full"}


def test_phases_that_share_a_server_but_never_meet_are_timed_alone() -> None:
    # "late" waits for a long write-back only, not for kernel "a": both use the tensor unit,
    # HBM reads and SMEM writes, but "a" has ended long before the write-back does
    arch = gpu_like_arch(sms=2)
    prog = TileProgram(
        "apart",
        (
            _launch("launch", ()),
            _kernel("a", ("launch",), 5, 4),
            _writeback("writeback", ("launch",), 5, nbytes=20_000),
            _kernel("late", ("writeback",), 5, 4),
        ),
    )
    short, _full = _agree(prog, arch)
    assert short["phase_schedule"] == "alone"
    took = short["phase_cycles"]  # both start when "launch" ends
    assert took["a"] < took["writeback"]


def test_a_touching_end_counts_as_meeting() -> None:
    # two independent identical kernels from time 0: same server, same interval -> joint
    arch = gpu_like_arch(sms=1)
    prog = TileProgram("twins", (_kernel("x", (), 3, 5), _kernel("y", (), 3, 5)))
    short, _full = _agree(prog, arch)
    assert short["phase_schedule"] == "joint"
