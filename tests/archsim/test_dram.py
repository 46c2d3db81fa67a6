"""DRAM command-level model: the textbook timing cases, counted by hand."""

from __future__ import annotations

import math

import pytest

from archsim import (
    Architecture,
    DramTiming,
    Phase,
    Step,
    TileProgram,
    Transfer,
    load_arch,
    simulate,
)
from archsim.dram import (
    Request,
    burst_cycles,
    pattern_requests,
    peak_pim_multiplier,
    pim_allbank_stream,
    pim_bandwidth_multiplier,
    simulate_dram,
    stream_rate,
    timing_rate_bytes_per_s,
    with_dram_timing,
)
from archsim.errors import SpecError


def timing(**kw: object) -> DramTiming:
    base = dict(
        tck_ns=1.0,
        channels=1,
        pseudo_channels=1,
        bank_groups=4,
        banks_per_group=4,
        row_bytes=1024,
        burst_bytes=32,
        bus_bytes_per_cycle=32.0,
        tRCD=14,
        tRP=14,
        tRAS=33,
        tCCD_S=2,
        tCCD_L=4,
        tRRD_S=4,
        tRRD_L=6,
        tFAW=30,
        tREFI=3900,
        tRFC=350,
        tCL=14,
        tWR=16,
    )
    base.update(kw)
    return DramTiming(**base)


def test_row_hit_stream_in_one_bank_runs_at_tccd_l() -> None:
    t = timing()
    reqs = [Request(0, 0, 0)] * 20
    s = simulate_dram(reqs, t, refresh=False)
    # ACT at 0, first RD at tRCD, then one RD per tCCD_L; end = last RD + tCL + burst
    assert s.cycles == t.tRCD + 19 * t.tCCD_L + t.tCL + burst_cycles(t)
    assert (s.row_hits, s.row_misses) == (19, 1)


def test_bank_group_interleaved_hits_run_at_tccd_s() -> None:
    t = timing()
    reqs = [Request(i % 4, 0, 0) for i in range(40)]
    s = simulate_dram(reqs, t, refresh=False)
    last_act = 3 * t.tRRD_S  # four ACTs, one per group
    assert s.cycles == pytest.approx(last_act + t.tRCD + 36 * t.tCCD_S + t.tCL + 1, abs=3)
    rate = stream_rate(t, "row_hit_bg", n=512, refresh=False).bytes_per_cycle
    assert rate == pytest.approx(t.burst_bytes / t.tCCD_S, rel=0.1)


def test_row_miss_stream_pays_precharge_and_activate() -> None:
    t = timing(tRAS=20)  # short tRAS: the read (tRCD + burst) decides when PRE may issue
    reqs = [Request(0, 0, r) for r in range(10)]
    s = simulate_dram(reqs, t, refresh=False)
    # per miss: ACT -> RD -> PRE (no earlier than tRAS after ACT) -> tRP -> next ACT
    per = max(t.tRAS, t.tRCD + burst_cycles(t)) + t.tRP
    assert s.cycles == 9 * per + t.tRCD + t.tCL + burst_cycles(t)
    long = simulate_dram(reqs, timing(tRAS=40), refresh=False)
    assert long.cycles == 9 * (40 + t.tRP) + t.tRCD + t.tCL + burst_cycles(t)


def test_four_activations_per_tfaw() -> None:
    t = timing(tFAW=40, tRRD_S=2, tRRD_L=2)
    reqs = [Request(i % 4, i // 4, 0) for i in range(5)]  # five banks, one ACT each
    s = simulate_dram(reqs, t, refresh=False)
    # ACTs at 0, 2, 4, 6; the fifth waits for the window: 0 + tFAW
    assert s.cycles >= t.tFAW + t.tRCD + t.tCL + burst_cycles(t)
    free = simulate_dram(reqs, timing(tFAW=8, tRRD_S=2, tRRD_L=2), refresh=False)
    assert free.cycles < s.cycles


def test_refresh_costs_trfc_every_trefi() -> None:
    t = timing()
    reqs = [Request(i % 4, 0, 0) for i in range(20000)]
    on = simulate_dram(reqs, t, refresh=True)
    off = simulate_dram(reqs, t, refresh=False)
    assert on.refreshes == pytest.approx(off.cycles / t.tREFI, abs=2)
    lost = on.cycles - off.cycles
    assert lost == pytest.approx(on.refreshes * t.tRFC, rel=0.15)


def test_allbank_pim_rate_is_banks_times_per_bank_rate() -> None:
    t = timing(row_bytes=1 << 20)  # one long row: no row switches
    s = pim_allbank_stream(t, 1000, mac_cmd_gap=4, refresh=False)
    banks = t.bank_groups * t.banks_per_group
    per_bank = t.burst_bytes / 4
    assert s.bytes_per_cycle == pytest.approx(banks * per_bank, rel=0.02)
    slow = pim_allbank_stream(t, 1000, mac_cmd_gap=8, refresh=False)
    assert slow.bytes_per_cycle == pytest.approx(banks * t.burst_bytes / 8, rel=0.02)


def test_attacc_multiplier_follows_from_hbm3_timing() -> None:
    t = load_arch("hbm3_pim").dram.dram
    # AttAcc (ASPLOS'24): per-bank PIM gives 16x the internal bandwidth, 9x power-limited
    assert peak_pim_multiplier(t, mac_cmd_gap=4) == pytest.approx(16.0)
    assert peak_pim_multiplier(t, mac_cmd_gap=7) == pytest.approx(9.14, abs=0.01)
    sustained = pim_bandwidth_multiplier(t, mac_cmd_gap=4, n=2048)
    assert 0.7 * 16 < sustained <= 16.0


def test_bad_requests_and_patterns_are_spec_errors() -> None:
    from archsim.errors import SpecError

    with pytest.raises(SpecError, match=r"requests\[1\]"):
        simulate_dram([Request(0, 0, 0), Request(9, 0, 0)], timing())
    with pytest.raises(SpecError, match="pattern"):
        stream_rate(timing(), "zigzag")  # type: ignore[arg-type]


# ---- the timing model as a DRAM level's bandwidth (archsim.dram.with_dram_timing) ----------


def _dram_arch(tm: DramTiming) -> Architecture:
    """A 1 GHz core (= tCK of ``timing()``) reading a DRAM level into a fast buffer."""
    return Architecture.from_dict(
        {
            "name": "dram-toy",
            "kind": "spatial",
            "clock": {"core_hz": 1e9},
            "levels": [
                {"name": "DRAM", "kind": "dram", "read_bw_bytes_per_cycle": 32.0,
                 "write_bw_bytes_per_cycle": 32.0, "dram": tm.model_dump()},
                {"name": "BUF", "kind": "sram", "read_bw_bytes_per_cycle": 1e6,
                 "write_bw_bytes_per_cycle": 1e6},
            ],
            "compute": [{"name": "PE", "ops_per_cycle": {"mac": 1.0}}],
        }
    )  # fmt: skip


def _stream(nbytes: int, tiles: int) -> TileProgram:
    body = Step(loads=(Transfer("A", nbytes, "DRAM", "BUF"),))
    return TileProgram("stream", (Phase("p", body, trips=tiles, depth=2),))


@pytest.mark.parametrize("pattern", ["stream", "random", "row_miss"])
def test_streaming_from_a_timed_dram_level_runs_at_the_models_rate(pattern: str) -> None:
    tm = timing()
    arch = with_dram_timing(_dram_arch(tm), pattern=pattern)
    model = "row_hit_bg" if pattern == "stream" else pattern
    # bytes per tCK of one pseudo-channel (= the whole memory here), tCK = 1 core cycle
    rate = timing_rate_bytes_per_s(tm, model) * 1e-9
    assert arch.level("DRAM").read_bw_bytes_per_cycle == pytest.approx(rate)
    nbytes, tiles = 32 * 1024, 64
    r = simulate(_stream(nbytes, tiles), arch)
    assert r.cycles == pytest.approx(nbytes * tiles / rate, abs=1)
    # the rate is the command-level model's: bursts over the simulated span, refresh included
    n = min(16384, max(4096, math.ceil(8 * tm.tREFI / burst_cycles(tm))))
    stats = simulate_dram(pattern_requests(tm, model, n), tm)
    assert rate == pytest.approx(stats.bytes_per_cycle)


def test_scattered_access_is_slower_than_streaming_by_the_models_ratio() -> None:
    tm = timing()
    stream = simulate(_stream(4096, 100), with_dram_timing(_dram_arch(tm)))
    scattered = simulate(_stream(4096, 100), with_dram_timing(_dram_arch(tm), pattern="random"))
    ratio = timing_rate_bytes_per_s(tm, "row_hit_bg") / timing_rate_bytes_per_s(tm, "random")
    assert ratio > 2
    assert scattered.cycles / stream.cycles == pytest.approx(ratio, rel=1e-3)


def test_timing_bandwidth_needs_a_dram_level_with_timing() -> None:
    arch = _dram_arch(timing())
    with pytest.raises(SpecError, match=r"levels\.BUF\.dram"):
        with_dram_timing(arch, levels=("BUF",))
    # the level figure is left alone unless asked
    assert simulate(_stream(3200, 1), arch).cycles == 100


def test_pim_preset_host_path_gets_its_timing_rate() -> None:
    arch = load_arch("hbm_pim")
    timed = with_dram_timing(arch)
    hbm = arch.levels[0]
    rate = timing_rate_bytes_per_s(hbm.dram, "row_hit_bg") / arch.clock.core_hz / hbm.instances
    assert timed.levels[0].read_bw_bytes_per_cycle == pytest.approx(rate)
    assert timed.levels[0].read_bw_bytes_per_cycle < hbm.read_bw_bytes_per_cycle


def test_a_level_opting_in_with_bandwidth_model_timing_gets_the_models_rate() -> None:
    # the engine reads `bandwidth_model` where the level spec carries it (duck-typed here)
    from types import SimpleNamespace

    from archsim.engine._compile import _level_bandwidth

    tm = timing()
    level = SimpleNamespace(
        name="DRAM", kind="dram", dram=tm, instances=1, bandwidth_model="timing",
        read_bw_bytes_per_cycle=32.0, write_bw_bytes_per_cycle=32.0,
    )  # fmt: skip
    read, write = _level_bandwidth(level, 1e9)
    assert read == pytest.approx(timing_rate_bytes_per_s(tm, "row_hit_bg") * 1e-9)
    assert write == pytest.approx(timing_rate_bytes_per_s(tm, "row_hit_bg", True) * 1e-9)
    level.bandwidth_model = "figure"
    assert _level_bandwidth(level, 1e9) == (32.0, 32.0)


def test_spec_field_bandwidth_model_timing_equals_with_dram_timing_in_the_engine() -> None:
    from archsim import Phase, Step, TileProgram, Transfer, load_arch, simulate
    from archsim.dram import with_dram_timing

    arch = load_arch("hbm_pim")
    dram = arch.dram.name
    inner = next(lv.name for lv in arch.levels if lv.kind != "dram")
    prog = TileProgram(
        name="stream",
        phases=(
            Phase(
                name="read",
                body=Step(loads=(Transfer("X", 1 << 16, dram, inner),)),
                trips=8,
                work_items=128,
                slots=128,
            ),
        ),
    )
    opted = arch.with_updates({f"levels.{dram}.bandwidth_model": "timing"})
    by_field = simulate(prog, opted).cycles
    by_copy = simulate(prog, with_dram_timing(arch)).cycles
    by_figure = simulate(prog, arch).cycles
    assert by_field == by_copy
    assert by_field != by_figure
