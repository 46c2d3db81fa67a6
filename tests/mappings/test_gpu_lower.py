"""GPU lowering (mappings/_gpu/_lower.py): how a kernel's CTA pipeline becomes engine loads.

Serial-latency lowering (default): one engine load is all the bytes a CTA keeps in flight.
Pipelined lowering (``pipelined_loads=True``): one engine load per shared-memory stage
buffer (a model trip) and ``depth`` = the kernel's stages. Both move the same bytes and
issue the same tensor work in total.
"""

from dataclasses import replace

import numpy as np
import pytest

from archsim import TileProgram, load_arch
from archsim.engine import simulate
from archsim.gpu import (
    attention_bwd_costs,
    attention_fwd_costs,
    decode_costs,
    evaluate_op,
    gemm_costs,
    gpu_model,
    streaming_cost,
)
from mappings._gpu import costs_to_program
from mappings._gpu._lower import (
    SPLIT_RAGGED_MAX_TRIPS,
    _fixed_cycles,
    is_persistent,
    kernel_phase,
    loads_per_trip,
    time_base_hz,
)

ARCH = load_arch("h100")
MODEL = gpu_model("h100")


def _totals(phase):
    """(DRAM bytes, L2 bytes, tensor MAC slots) of a phase's body over all its trips."""
    trips = phase.trips
    n = float(np.sum(trips)) if np.ndim(trips) else float(trips * phase.work_items)
    dram = sum(t.bytes for t in phase.body.loads if t.src == "HBM") * n  # reads
    l2 = sum(t.bytes for t in phase.body.loads if t.src == "L2") * n
    macs = sum(sum(c.ops.values()) for c in phase.body.compute if c.unit == "tensor") * n
    return dram, l2, macs


def test_pipelined_gemm_loads_one_k_step_per_stage_with_the_kernels_stage_count():
    (cost,) = gemm_costs(4096, 4096, 4096, MODEL)
    serial = kernel_phase(cost, MODEL, ARCH)
    piped = kernel_phase(cost, MODEL, ARCH, pipelined_loads=True)
    # one engine trip per K step of the model, `stages` buffers in flight; the Hopper
    # cuBLAS kernel is persistent: one work item per SM walks its output tiles' K steps
    assert cost.meta["persistent"]
    assert piped.work_items == MODEL.hw.sms
    assert int(np.sum(piped.trips)) == int(np.sum(cost.trips))
    assert piped.depth == cost.stages == 4
    # a load is one stage's A and B tiles (DRAM share + L2 share, after TMA multicast)
    tile = sum(t.bytes for t in piped.body.loads if t.dst == "SMEM")
    assert tile == pytest.approx(cost.trip_l2_bytes, abs=2)
    # the serial lowering merges the stages in flight into one load, two buffers deep
    assert int(np.sum(serial.trips)) < int(np.sum(piped.trips))
    assert serial.depth == 2
    # same DRAM bytes (the model's), same L2 bytes and tensor work in total
    d_s, l_s, m_s = _totals(serial)
    d_p, l_p, m_p = _totals(piped)
    assert d_p == pytest.approx(cost.dram_read_bytes, rel=1e-3)
    assert d_s == pytest.approx(d_p, rel=1e-3)
    assert l_s == pytest.approx(l_p, rel=1e-3)
    # the persistent lowering adds each tile switch's latency as SM work (the model's
    # per-CTA latency), so the pipelined program's tensor slots are a little more
    assert m_s <= m_p <= 1.03 * m_s


def test_pipelined_decode_loads_its_k_and_v_tiles_as_two_loads_per_trip():
    costs = decode_costs(MODEL, B=8, Hq=32, Hkv=32, Skv=32768, D=128, family="flash2")
    cost = costs[0]
    assert cost.trips is not None
    assert loads_per_trip(cost) == 2  # forward attention: the K tile, then the V tile
    serial = kernel_phase(cost, MODEL, ARCH)
    piped = kernel_phase(cost, MODEL, ARCH, pipelined_loads=True)
    # FA2 keeps less than one 128-key K/V tile in flight: the serial lowering splits a
    # tile into several one-latency loads; the pipelined one loads the stage buffer's K
    # tile and V tile as two loads, each usable on its own (QK^T needs only K)
    assert int(np.sum(serial.trips)) > int(np.sum(cost.trips))
    assert np.array_equal(piped.trips, 2 * cost.trips)
    assert piped.depth == 2 * cost.stages
    tile = sum(t.bytes for t in piped.body.loads if t.dst == "SMEM")
    assert tile == pytest.approx(cost.trip_bytes / 2, abs=2)
    # same bytes and tensor work in total
    assert _totals(piped)[0] == pytest.approx(_totals(serial)[0], rel=1e-3)
    assert _totals(piped)[2] == pytest.approx(_totals(serial)[2], rel=1e-9)


def test_only_attention_forward_splits_its_trips_into_operand_loads():
    (gemm,) = gemm_costs(4096, 4096, 4096, MODEL)
    fwd = _prefill()
    bwd = attention_bwd_costs(
        MODEL, B=2, Hq=16, Hkv=16, Sq=4096, Skv=4096, D=128, causal=False, family="flash2"
    )[1]
    assert bwd.category == "attn_bwd"
    assert (loads_per_trip(gemm), loads_per_trip(fwd), loads_per_trip(bwd)) == (1, 2, 1)
    # the serial lowering (one load of all the bytes in flight) is unchanged by the split
    serial = kernel_phase(fwd, MODEL, ARCH)
    assert serial.depth == 2


def test_a_one_trip_cta_computes_on_its_k_tile_while_its_v_tile_loads():
    # split-KV decode with one 128-key block per CTA: with the K and V tiles as one load
    # the CTA computes nothing until both have arrived; as two loads QK^T overlaps V's load
    costs = decode_costs(MODEL, B=1, Hq=32, Hkv=32, Skv=1024, D=128, family="flash2")
    cost = costs[0]
    assert int(np.max(cost.trips)) == 1
    split = kernel_phase(cost, MODEL, ARCH, pipelined_loads=True)
    whole = replace(cost, meta={**cost.meta, "loads_per_trip": 1})
    joined = kernel_phase(whole, MODEL, ARCH, pipelined_loads=True)
    t_split = simulate(TileProgram("s", (split,), clock_hz=1e9), ARCH).cycles
    t_joined = simulate(TileProgram("j", (joined,), clock_hz=1e9), ARCH).cycles
    assert t_split < 0.9 * t_joined


def test_pipelined_streaming_kernel_streams_one_stage_of_its_bytes_in_flight_per_load():
    cost = streaming_cost(
        MODEL, name="softmax", category="softmax", read_bytes=2**30, write_bytes=2**30, alu_ops=1e9
    )
    serial = kernel_phase(cost, MODEL, ARCH)
    piped = kernel_phase(cost, MODEL, ARCH, pipelined_loads=True)
    assert serial.depth == 1
    assert piped.depth == cost.stages == 2
    # twice the loads, half the bytes each: the same bytes in flight per CTA
    assert piped.trips == pytest.approx(cost.stages * serial.trips, abs=1)
    assert _totals(piped)[0] == pytest.approx(_totals(serial)[0], rel=1e-4)  # int bytes


def test_costs_to_program_passes_pipelined_loads_to_every_kernel():
    costs = decode_costs(MODEL, B=8, Hq=32, Hkv=8, Skv=1024, D=128, family="flash2")
    assert len(costs) == 2  # split-KV kernel + combine kernel
    op = evaluate_op(costs, MODEL)
    prog = costs_to_program("dec", costs, MODEL, ARCH, op, pipelined_loads=True)
    by_name = {p.name: p for p in prog.phases}
    for c in costs:
        assert by_name[c.name].depth == max(1, c.stages) * loads_per_trip(c)
    # a program the engine runs: same kernels, launch phases and write-backs as the default
    base = costs_to_program("dec", costs, MODEL, ARCH, op)
    assert [p.name for p in prog.phases] == [p.name for p in base.phases]
    assert simulate(prog, ARCH).seconds > 0


#: SM cycles of a persistent CTA's tile switch at scale 1: the model's DRAM latency per CTA
_TILE_SWITCH = MODEL.hw.dram_latency_s * time_base_hz(MODEL, ARCH)


def _prefill():
    return attention_fwd_costs(
        MODEL, B=2, Hq=16, Hkv=16, Sq=4096, Skv=4096, D=128, causal=False, family="flash2"
    )[0]


def _decode():
    return decode_costs(MODEL, B=32, Hq=32, Hkv=32, Skv=1024, D=128, family="flash3")[0]


@pytest.mark.parametrize("pipelined", [False, True])
@pytest.mark.parametrize("make", [_prefill, _decode])
def test_work_outside_the_loop_rides_on_the_trips_with_its_totals_kept(make, pipelined):
    cost = make()
    fixed = _fixed_cycles(cost)
    assert fixed > 0  # first softmax / last PV that do not overlap, per CTA
    phase = kernel_phase(cost, MODEL, ARCH, pipelined_loads=pipelined)
    # no serial prologue holds back a CTA's first load: it overlaps the loop, as in the model
    assert phase.prologue is None
    dram, _, macs = _totals(phase)
    assert dram == pytest.approx(cost.dram_read_bytes, rel=1e-4)  # decode: the Q rows too
    rate = 2048  # h100 tensor MACs per SM cycle (bf16), scale 1
    loop = float(np.sum(cost.trips)) * cost.trip_cycles * rate
    # a persistent CTA also pays the model's per-CTA latency at each tile switch
    switch = _TILE_SWITCH if pipelined and is_persistent(cost) else 0.0
    assert macs == pytest.approx(loop + cost.ctas * (fixed + switch) * rate, rel=1e-9)


def test_decode_reads_its_query_rows_beside_the_kv_tiles():
    cost = _decode()
    assert cost.dram_read_bytes > float(np.sum(cost.trips)) * cost.trip_bytes


def test_a_kernel_without_a_main_loop_has_nothing_to_spread():
    cost = streaming_cost(
        MODEL, name="copy", category="elementwise", read_bytes=2**26, write_bytes=2**26, alu_ops=0
    )
    phase = kernel_phase(cost, MODEL, ARCH)
    assert phase.prologue is None
    assert _totals(phase)[0] == pytest.approx(cost.dram_read_bytes, rel=1e-4)


def _writes(phase):
    """DRAM bytes a phase's body writes over all its trips."""
    trips = phase.trips
    n = float(np.sum(trips)) if np.ndim(trips) else float(trips * phase.work_items)
    moves = (*phase.body.loads, *phase.body.stores)
    return sum(t.bytes for t in moves if t.dst == "HBM") * n


def test_a_streaming_kernel_writes_its_share_with_each_chunk_it_reads():
    cost = streaming_cost(
        MODEL, name="softmax", category="softmax", read_bytes=2**30, write_bytes=2**29, alu_ops=1e9
    )
    phase = kernel_phase(cost, MODEL, ARCH)
    # reads from DRAM only (no L2 stand-in for the written bytes); its writes drain with them
    assert {(t.src, t.dst) for t in phase.body.loads} == {("HBM", "SMEM"), ("SMEM", "HBM")}
    assert _totals(phase)[0] == pytest.approx(2**30, rel=1e-4)
    assert _writes(phase) == pytest.approx(2**29, rel=1e-4)


def test_a_tiled_kernel_drains_its_output_with_its_loads():
    (cost,) = gemm_costs(4096, 4096, 4096, MODEL)
    assert cost.dram_write_bytes > 0
    phase = kernel_phase(cost, MODEL, ARCH)
    # dirty output lines leave L2 with the fills that evict them: no CTA waits for DRAM
    assert phase.epilogue is None
    assert phase.body.stores == ()
    assert _writes(phase) == pytest.approx(cost.dram_write_bytes, rel=1e-4)


def test_each_kernel_is_one_phase_after_its_launch_so_the_program_is_a_chain():
    costs = decode_costs(MODEL, B=8, Hq=32, Hkv=8, Skv=1024, D=128, family="flash2")
    op = evaluate_op(costs, MODEL)
    prog = costs_to_program("dec", costs, MODEL, ARCH, op)
    names = [p.name for p in prog.phases]
    k0, k1 = costs[0].name, costs[1].name
    assert names == [f"launch:{k0}", k0, f"launch:{k1}", k1]
    for prev, p in zip(prog.phases[:-1], prog.phases[1:], strict=True):
        assert p.after == (prev.name,)
    # every DRAM byte of the model is read or written by the program
    res = simulate(prog, ARCH)
    model_bytes = sum(c.dram_read_bytes + c.dram_write_bytes for c in costs)
    assert res.dram_bytes == pytest.approx(model_bytes, rel=1e-3)


def test_pipelined_lowering_runs_a_skinny_gemm_at_hbm_bandwidth_on_the_event_engine():
    # 1 x 8192 x 28672 (a decode-time projection) is HBM-bound: the CTAs' cp.async / TMA
    # stages keep several loads in flight, so the engine overlaps each load's latency with
    # the transfers (one load at a time paid latency + shared-bandwidth transfer per tile:
    # 253 us against the model's 171 us)
    from archsim._estimate import estimate

    costs = gemm_costs(1, 8192, 28672, MODEL)
    pred = evaluate_op(costs, MODEL)
    prog = costs_to_program("gemm", costs, MODEL, ARCH, pred, pipelined_loads=True)
    event = simulate(prog, ARCH).seconds
    assert event == pytest.approx(pred.time_s, rel=0.02)
    assert estimate(prog, ARCH).seconds <= event * (1 + 1e-9)


def test_a_persistent_kernel_is_one_work_item_per_cta_running_the_tiles_it_is_handed():
    from archsim.gpu.waves import list_schedule

    # cuDNN's sm90 flash forward launches grid = SMs; causal tiles go to CTAs greedily
    cost = attention_fwd_costs(
        MODEL, B=1, Hq=32, Hkv=8, Sq=2048, Skv=2048, D=128, causal=True, family="flash3"
    )[0]
    assert is_persistent(cost)
    assert not is_persistent(_prefill())
    phase = kernel_phase(cost, MODEL, ARCH, pipelined_loads=True)
    assert phase.work_items == cost.slots == MODEL.hw.sms  # fewer tiles than this: one each
    # each CTA runs the K/V loads of the tiles the model's schedule gives its slot
    slot_of = list_schedule(np.asarray(cost.cta_cycles), cost.slots, order=cost.order).slot_of
    want = np.bincount(slot_of, weights=2 * cost.trips, minlength=cost.slots)
    assert np.array_equal(phase.trips, want.astype(np.int64))
    assert int(np.sum(phase.trips)) == 2 * int(np.sum(cost.trips))
    # the same bytes as the tile-per-item lowering; the tensor work adds each tile's switch
    tiles = kernel_phase(replace(cost, meta={**cost.meta, "persistent": False}), MODEL, ARCH,
                         pipelined_loads=True)  # fmt: skip
    (d_p, l_p, m_p), (d_t, l_t, m_t) = _totals(phase), _totals(tiles)
    assert (d_p, l_p) == (pytest.approx(d_t, rel=1e-9), pytest.approx(l_t, rel=1e-9))
    assert m_p == pytest.approx(m_t + cost.ctas * _TILE_SWITCH * 2048, rel=1e-9)


def test_a_persistent_memory_bound_kernel_keeps_dram_busy_across_its_tiles():
    # 2048 identical 8-trip decode tiles on 264 slots (2 CTAs per SM, 8 waves), DRAM-bound.
    # cuDNN's decode kernel is not persistent (traced grid B x heads x splits); run
    # persistently, one CTA per slot streams its tiles back to back, while tile-per-item CTAs
    # end in lockstep and every wave drains DRAM while the last tiles compute and the next
    # ones wait a latency
    costs = decode_costs(MODEL, B=64, Hq=32, Hkv=32, Skv=1024, D=128, family="flash3")
    (tiles,) = costs
    assert not is_persistent(tiles)
    assert tiles.ctas > 7 * tiles.slots
    floor = tiles.dram_bytes / MODEL.hbm_eff_bytes_per_s  # s

    def kernel_s(c):
        op = evaluate_op([c], MODEL)
        prog = costs_to_program("d", [c], MODEL, ARCH, op, pipelined_loads=True)
        return simulate(prog, ARCH).meta["phase_cycles"][c.name] / prog.clock_hz

    persistent = kernel_s(replace(tiles, meta={**tiles.meta, "persistent": True}))
    waves = kernel_s(tiles)
    assert floor <= persistent < 1.01 * floor
    # each wave's drain costs ~2% here: the other CTA resident on the SM (two of 86 KB
    # shared memory fit) keeps loading while one drains (one CTA per SM: > 3%)
    assert waves > 1.015 * floor
    assert waves > persistent * 1.01


def test_long_unequal_ctas_keep_one_load_per_trip_short_or_equal_ones_split():
    # causal S=8192: 128-trip CTAs, simulated slot by slot: no split (see the NOTE)
    long_causal = attention_fwd_costs(
        MODEL, B=1, Hq=16, Hkv=16, Sq=8192, Skv=8192, D=128, causal=True, family="flash2"
    )[0]
    assert int(np.max(long_causal.trips)) > SPLIT_RAGGED_MAX_TRIPS
    assert loads_per_trip(long_causal) == 1
    short_causal = attention_fwd_costs(
        MODEL, B=8, Hq=16, Hkv=16, Sq=2048, Skv=2048, D=128, causal=True, family="flash2"
    )[0]
    assert int(np.max(short_causal.trips)) <= SPLIT_RAGGED_MAX_TRIPS
    assert loads_per_trip(short_causal) == 2
    long_equal = attention_fwd_costs(
        MODEL, B=1, Hq=16, Hkv=16, Sq=8192, Skv=8192, D=128, causal=False, family="flash2"
    )[0]
    assert loads_per_trip(long_equal) == 2  # equal CTAs take the exact shortcuts


def test_one_dram_latency_figure_for_the_lowering_and_the_launch_rules():
    """``engine_load_latency_s`` is what the engine charges one DRAM load of a lowered GPU
    program: the level's ``latency_cycles`` at the program's time base. The lowering and the
    launch rules both use it, with the architecture the program runs on."""
    from archsim.gpu.launch import engine_load_latency_s

    (hbm,) = [lvl for lvl in ARCH.levels if lvl.kind == "dram"]
    lat = engine_load_latency_s(MODEL, ARCH)
    assert lat * time_base_hz(MODEL, ARCH) == pytest.approx(hbm.latency_cycles)
    # 880 preset cycles at the time base (3.35 TB/s x the fitted hbm_efficiency, over the
    # preset's bytes per cycle): ~530 ns (the preset means 481 ns at 1.83 GHz)
    base = 3.35e12 * MODEL.cal.hbm_efficiency / hbm.read_bw_bytes_per_cycle
    assert lat == pytest.approx(hbm.latency_cycles / base, rel=1e-9)
    assert 5.2e-7 < lat < 5.4e-7
    assert engine_load_latency_s(MODEL) == lat  # the preset named like the model
    slow = ARCH.with_updates({f"levels.{hbm.name}.latency_cycles": 2 * hbm.latency_cycles})
    assert engine_load_latency_s(MODEL, slow) == pytest.approx(2 * lat)
    # the lowering sizes a streaming kernel's chunks with the architecture it is given
    (cost,) = [
        streaming_cost(MODEL, name="s", category="x", read_bytes=1e9, write_bytes=0.0, alu_ops=0.0)
    ]
    fast_chunks = kernel_phase(cost, MODEL, ARCH).trips
    slow_chunks = kernel_phase(cost, MODEL, slow).trips
    assert int(np.sum(fast_chunks)) > int(np.sum(slow_chunks))
