"""PIM dataflows: bandwidth multipliers come from DRAM timing, and the decode model tracks
AttAcc's Ramulator cycle cache (reference/papers/pim/attacc_ramulator_cache.csv)."""

from __future__ import annotations

import pytest

from archsim import load_arch
from archsim.errors import MappingError
from mappings import list_dataflows, simulate_workload
from mappings._pim import bandwidth_multipliers, decode_attention_timing, gemv_timing, pim_timing


@pytest.fixture(scope="module")
def hbm3():
    return load_arch("hbm3_pim")


def _mult(rows, placement, limited, key):
    return next(
        r[key] for r in rows if r["placement"] == placement and r["power_limited"] == limited
    )


def test_pim_dataflows_are_registered():
    assert {"pim_decode", "pim_gemv"} <= set(list_dataflows())


def test_per_bank_multiplier_is_16x_peak_and_about_9x_power_limited(hbm3):
    rows = bandwidth_multipliers(hbm3)
    assert _mult(rows, "bank", False, "peak") == pytest.approx(16.0)
    # 32 columns x 6 tCK + tRP + tRCD (38) per 1-KB row -> 32*32/7.1875/16 = 8.90 (AttAcc: 9x)
    assert _mult(rows, "bank", True, "sustained") == pytest.approx(8.904, abs=0.01)
    assert _mult(rows, "buffer_die", True, "peak") == pytest.approx(1.0)
    assert 0.8 < _mult(rows, "buffer_die", True, "sustained") < 1.0  # host-stream row switches
    assert _mult(rows, "bank_group", False, "peak") == pytest.approx(4.0)


def test_multiplier_follows_the_timing_parameters_not_a_constant(hbm3):
    slower = hbm3.with_updates({"pim.mac_cmd_gap_cycles_unlimited": 8, "pim.mac_cmd_gap_cycles": 8})
    rows = bandwidth_multipliers(slower)
    assert _mult(rows, "bank", False, "peak") == pytest.approx(8.0)
    more_banks = pim_timing(
        hbm3.with_updates({"levels.HBM.dram.banks_per_group": 8}), "bank", False
    )
    assert more_banks.units_per_pc == 64


@pytest.mark.parametrize(
    ("placement", "limited", "cycles"),
    [
        # AttAcc Ramulator cache, L=2048, nhead=130, dhead=128, FP16 (NOTES.md example)
        ("bank", True, 37865.5),
        ("bank", False, 28176),
        ("bank_group", True, 123251),
        ("bank_group", False, 82515),
        ("buffer_die", True, 344577),
    ],
)
def test_decode_cycles_track_attacc_ramulator(hbm3, placement, limited, cycles):
    got = decode_attention_timing(
        hbm3, L=2048, heads=130, dhead=128, dbyte=2, placement=placement, power_limited=limited
    )["cycles"]
    assert got == pytest.approx(cycles, rel=0.10)


def test_decode_time_scales_with_context_and_heads(hbm3):
    a = decode_attention_timing(hbm3, L=1024, heads=64, dhead=128)["cycles"]
    b = decode_attention_timing(hbm3, L=2048, heads=64, dhead=128)["cycles"]
    c = decode_attention_timing(hbm3, L=1024, heads=128, dhead=128)["cycles"]
    assert b == pytest.approx(2 * a, rel=0.02)
    assert c == pytest.approx(2 * a, rel=0.02)


def test_gemv_streams_weights_once_per_vector(hbm3):
    one = gemv_timing(hbm3, rows=4096, cols=4096)
    four = gemv_timing(hbm3, rows=4096, cols=4096, batch=4)
    assert four["cycles"] == pytest.approx(4 * one["cycles"])
    assert one["weight_bytes"] == 4096 * 4096 * 2


def test_simulate_workload_runs_pim_decode_and_carries_the_timing_model():
    rep = simulate_workload(
        "hbm3_pim",
        "decode",
        params={"B": 1, "H": 130, "Skv": 2048, "D": 128},
        dataflow="pim_decode",
        knobs={"placement": "bank_group"},
    )
    assert rep.plan.meta["placement"] == "bank_group"
    assert rep.plan.meta["pim_model_cycles"] == pytest.approx(123251, rel=0.10)
    assert rep.result.cycles > 0
    assert rep.result.energy_j > 0


def test_pim_gemv_runs_on_aim_pim():
    rep = simulate_workload(
        "aim_pim", "gemm", params={"M": 1, "N": 4096, "K": 4096}, dataflow="pim_gemv"
    )
    assert rep.plan.meta["pim_model_seconds"] > 0


def test_pim_dataflow_rejects_a_gpu_and_unknown_knobs():
    with pytest.raises(MappingError, match="PIM"):
        simulate_workload(
            "h100", "decode", params={"B": 1, "H": 8, "Skv": 512, "D": 128}, dataflow="pim_decode"
        )
    with pytest.raises(MappingError, match="knob"):
        simulate_workload(
            "hbm3_pim",
            "decode",
            params={"B": 1, "H": 8, "Skv": 512, "D": 128},
            dataflow="pim_decode",
            knobs={"lanes": 3},
        )
    with pytest.raises(MappingError, match="placement"):
        pim_timing(load_arch("hbm3_pim"), "rank")


def test_gqa_reads_the_shared_kv_once_and_applies_each_query_head_on_the_open_row():
    params = {"B": 2, "H": 32, "Skv": 1024, "D": 128}
    gqa = simulate_workload(
        "hbm3_pim", "decode", dataflow="pim_decode", params={**params, "Hkv": 8}
    )
    mha = simulate_workload("hbm3_pim", "decode", dataflow="pim_decode", params=params)
    g, m = gqa.plan.meta, mha.plan.meta
    assert g["pim_kv_bytes"] == pytest.approx(m["pim_kv_bytes"] / 4)
    assert g["pim_macs"] == pytest.approx(m["pim_macs"])
    # one query vector per MAC command: 4 commands per column, but a quarter of the row
    # switches (the whole group reads one open row)
    assert g["pim_cmds_per_column"] == 4
    assert 0.8 * m["pim_model_cycles"] < g["pim_model_cycles"] < m["pim_model_cycles"]


def test_mha_decode_through_the_dataflow_equals_the_attacc_shape_model(hbm3):
    """The cascade-derived shape gives the numbers of the AttAcc-shape model (the
    reproduction's) for plain MHA decode."""
    rep = simulate_workload(
        "hbm3_pim",
        "decode",
        dataflow="pim_decode",
        params={"B": 1, "H": 130, "Skv": 2048, "D": 128},
    )
    ref = decode_attention_timing(hbm3, L=2048, heads=130, dhead=128, dbyte=2)
    for k in ("cycles", "mac_cycles", "io_cycles", "kv_bytes", "macs", "bytes_per_unit"):
        assert rep.plan.meta[f"pim_{k}"] == ref[k]


def test_power_limited_knob_accepts_command_line_strings():
    params = {"B": 1, "H": 130, "Skv": 2048, "D": 128}
    # the preset's unit is declared at the power-limited command gap: the unlimited timing
    # would run it faster than declared, which the recipe refuses (one model, no second answer)
    with pytest.raises(MappingError, match="faster than unit 'pim'"):
        simulate_workload(
            "hbm3_pim",
            "decode",
            params=params,
            dataflow="pim_decode",
            knobs={"power_limited": "false"},
        )
    npc = load_arch("hbm3_pim").with_updates(
        {"compute.pim.ops_per_cycle.mac_fp16": 16 / 4, "pim.power_limited": False}
    )
    off = simulate_workload(
        npc,
        "decode",
        params=params,
        dataflow="pim_decode",
        knobs={"power_limited": "false"},
        engine="analytic",
    )
    assert off.plan.meta["power_limited"] is False
    assert off.plan.meta["pim_model_cycles"] == pytest.approx(28176, rel=0.10)
    # the engine runs the DRAM-timing model's stream (host I/O without refresh: < 2%)
    assert off.result.cycles == pytest.approx(off.plan.meta["pim_model_cycles"], rel=0.02)
    with pytest.raises(MappingError, match="power_limited"):
        simulate_workload(
            "hbm3_pim",
            "decode",
            params=params,
            dataflow="pim_decode",
            knobs={"power_limited": "maybe"},
        )
