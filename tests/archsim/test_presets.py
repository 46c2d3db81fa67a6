"""Every preset loads, and its derived peaks/timings match the published figures it cites."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from archsim import energy
from archsim.spec import PRESET_DIR, list_presets, load_arch

REQUIRED = {"h100", "h200", "a100", "fusemax", "flat", "tpu_like", "hbm_pim", "aim_pim", "hbm3_pim"}
#: AttAcc HBM3-PIM timing presets (copied from shared/reference; provenance in data/README.md)
ATTACC_TIMING = Path(__file__).with_name("data") / "attacc_hbm3_pim_timing_presets.csv"


def rel(x: float, y: float, tol: float = 1e-3) -> bool:
    return abs(x - y) <= tol * abs(y)


def test_all_required_presets_exist():
    assert REQUIRED <= set(list_presets())


@pytest.mark.parametrize("name", sorted(REQUIRED))
def test_preset_loads_with_description_and_sources(name):
    arch = load_arch(name)
    assert arch.name == name
    assert arch.description.splitlines()[0]
    assert arch.sources
    assert arch.dram.kind == "dram"
    text = (PRESET_DIR / f"{name}.yaml").read_text()
    assert text.lstrip().startswith("#")  # sources cited in a comment header


@pytest.mark.parametrize("name", ["h100", "h200"])
def test_hopper_peaks_match_datasheet(name):
    arch = load_arch(name)
    gpu = arch.gpu
    assert gpu is not None
    assert gpu.sms == 132
    hz = arch.clock.core_hz
    # 989.4 TFLOP/s dense bf16 = 132 SMs x 4096 FLOP/clk x 1.83 GHz (whitepaper)
    assert rel(2 * arch.peak_ops_per_s("mac_bf16", "tensor"), 989.4e12)
    assert rel(gpu.tc_flops_per_cycle("wgmma", "bf16") * gpu.sms * hz, 989.4e12)
    assert rel(gpu.tc_flops_per_cycle("wgmma", "fp8") * gpu.sms * hz, 1979e12, 2e-3)
    assert gpu.tc_flops_per_cycle("mma_sync", "bf16") < gpu.tc_flops_per_cycle("wgmma", "bf16")
    assert rel(arch.peak_ops_per_s("exp"), 3.9e12, 0.02)  # FA3 paper: 3.9 TFLOP/s SFU
    assert gpu.smem_bytes_per_sm == 228 * 1024
    assert gpu.max_smem_per_cta_bytes == 227 * 1024
    assert (gpu.regs_per_sm, gpu.max_threads_per_sm, gpu.max_ctas_per_sm) == (65536, 2048, 32)
    assert arch.power_cap_w == 700


def test_h100_memory_system():
    h = load_arch("h100")
    assert rel(h.dram.read_bw_bytes_per_cycle * h.clock.core_hz, 3.35e12)
    assert rel(h.dram.dram.peak_bytes_per_s, 3.35e12)  # type: ignore[union-attr]
    assert h.gpu is not None
    assert h.gpu.l2_bytes == 50 * 2**20


def test_h200_memory_system():
    h = load_arch("h200")
    assert rel(h.dram.read_bw_bytes_per_cycle * h.clock.core_hz, 4.8e12)
    assert h.gpu is not None
    assert h.gpu.l2_bytes == 60 * 2**20
    assert h.dram.capacity_bytes == 141e9


def test_a100_peaks():
    a = load_arch("a100")
    assert a.gpu is not None
    assert a.gpu.sms == 108
    assert rel(2 * a.peak_ops_per_s("mac_bf16", "tensor"), 312e12, 2e-3)
    assert rel(a.dram.read_bw_bytes_per_cycle * a.clock.core_hz, 2.039e12)
    assert a.gpu.l2_bytes == 40 * 2**20
    assert a.gpu.smem_bytes_per_sm == 164 * 1024
    assert a.power_cap_w == 400
    assert "wgmma_bf16" not in a.gpu.tc_flops_per_cycle_per_sm


def test_fusemax_matches_artifact_parameters():
    fm = load_arch("fusemax")
    assert fm.clock.core_hz == 940e6
    assert fm.unit("pe2d").throughput("mac") == 65536  # 256 x 256 MACs per cycle
    assert fm.unit("pe1d").throughput("mac") == 256
    assert fm.level("GLB").capacity_bytes == 16 * 2**20
    assert fm.level("RF2D").capacity_bytes == 16 * 2 * 65536
    assert fm.dram.read_bw_bytes_per_cycle == pytest.approx(456.9114, abs=1e-3)
    ert = energy.FUSEMAX_ERT_PJ
    assert fm.dram.read_energy_pj_per_byte == pytest.approx(ert["dram_rw_64b"] / 8)
    assert fm.level("GLB").read_energy_pj_per_byte == pytest.approx(ert["glb_read_64b"] / 8)
    assert fm.unit("pe2d").energy("mac_fp16") == pytest.approx(ert["mac_fp16"])
    assert fm.unit("pe2d").energy("exp") == pytest.approx(6 * ert["mac_fp16"])  # exp = 6 MACs
    assert fm.unit("pe1d").energy("div") == pytest.approx(ert["divide"])
    assert fm.unit("pe2d").throughput("exp") == pytest.approx(65536 / 6)


def test_flat_differs_from_fusemax_where_the_paper_says():
    flat, fm = load_arch("flat"), load_arch("fusemax")
    assert flat.level("GLB").capacity_bytes == 2 * fm.level("GLB").capacity_bytes
    assert flat.level("RF2D").capacity_bytes == 4 * 2 * 65536  # 4 words per PE
    assert not flat.unit("pe2d").supports("exp")  # softmax runs on the 1D array
    assert flat.unit("pe1d").energy("exp") == pytest.approx(energy.FUSEMAX_ERT_PJ["exp_flat_1d"])
    assert flat.dram.read_bw_bytes_per_cycle == fm.dram.read_bw_bytes_per_cycle


def test_tpu_like_is_a_128x128_systolic_array():
    t = load_arch("tpu_like")
    assert t.unit("mxu").mesh == (128, 128)
    assert rel(2 * t.peak_ops_per_s("mac_bf16", "mxu"), 123e12, 2e-3)


def _hbm_pim_peak(arch) -> float:
    pim, timing = arch.pim, arch.dram.dram
    units = pim.units_per_channel * timing.channels
    return 2 * units * pim.macs_per_tck_per_unit() / timing.tck_s


def test_hbm_pim_timing_and_rate():
    p = load_arch("hbm_pim")
    t = p.dram.dram
    # PIMSimulator column of hardware.md
    assert (
        t.tck_ns,
        t.tRCD,
        t.tRP,
        t.tRAS,
        t.tCCD_S,
        t.tCCD_L,
        t.tRRD_S,
        t.tRRD_L,
        t.tFAW,
        t.trc,
        t.tRFC,
    ) == (1.0, 14, 14, 33, 2, 4, 4, 6, 16, 47, 350)
    assert t.tREFI * t.tck_ns == pytest.approx(3900)
    assert p.pim.units_per_channel * t.channels == 128  # one unit per bank pair
    assert rel(_hbm_pim_peak(p), 1.024e12)
    # the product's 2.4 Gbps (tCK 0.8333 ns) gives the published 1.2 TFLOPS per cube
    fast = p.with_updates({"levels.HBM.dram.tck_ns": 1 / 1.2, "clock.core_hz": 1.2e9})
    assert rel(_hbm_pim_peak(fast), 1.2288e12)
    # the engine-facing unit rate agrees with the pim parameters
    assert p.peak_ops_per_s("mac_fp16", "pim") * 2 == pytest.approx(_hbm_pim_peak(p))


def test_hbm3_pim_matches_attacc_preset_and_bandwidth_scale():
    p = load_arch("hbm3_pim")
    t = p.dram.dram
    assert (t.channels, t.pseudo_channels, t.ranks, t.bank_groups, t.banks_per_group) == (
        16,
        2,
        2,
        4,
        4,
    )
    pins_per_tck = t.channels * t.bus_bytes_per_cycle
    internal = p.pim.units_per_channel * t.channels * t.burst_bytes
    assert internal / p.pim.mac_cmd_gap_cycles_unlimited / pins_per_tck == 16  # AttAcc BW_SCALE
    assert p.peak_ops_per_s("mac_fp16", "pim") * 2 == pytest.approx(_hbm_pim_peak(p))
    assert p.pim.access_energy_pj_per_byte == pytest.approx(energy.pim_access_pj_per_byte("bank"))


def test_hbm3_pim_timing_equals_attacc_csv_row():
    rows = {r["name"]: r for r in csv.DictReader(ATTACC_TIMING.open())}
    row = rows["HBM3_5.2Gbps"]
    p = load_arch("hbm3_pim")
    t = p.dram.dram
    pairs = {
        "nRCDRD": t.tRCD,
        "nRP": t.tRP,
        "nRAS": t.tRAS,
        "nRC": t.tRC,
        "nCCDS": t.tCCD_S,
        "nCCDL": t.tCCD_L,
        "nRRDS": t.tRRD_S,
        "nRRDL": t.tRRD_L,
        "nFAW": t.tFAW,
        "nREFI": t.tREFI,
        "nRFCSB": t.tRFC,
        "nCL": t.tCL,
        "nWR": t.tWR,
        "nCCDAB": p.pim.mac_cmd_gap_cycles,
    }
    assert {k: int(row[k]) for k in pairs} == pairs
    assert int(rows["HBM3_5.2Gbps_NPC"]["nCCDAB"]) == p.pim.mac_cmd_gap_cycles_unlimited


def test_aim_pim_is_rate_matched_to_bank_bandwidth():
    p = load_arch("aim_pim")
    t = p.dram.dram
    per_channel_internal = p.pim.units_per_channel * t.burst_bytes / (p.pim.gap_cycles * t.tck_s)
    assert rel(per_channel_internal, 512e9)  # 512 GB/s internal per channel (hardware.md)
    assert rel(_hbm_pim_peak(p) / (t.channels / 2), 1.024e12)  # 1 TFLOPS per 2-channel chip
    assert rel(t.peak_bytes_per_s / t.channels, 32e9)  # x16 at 16 Gbps


@pytest.mark.parametrize("name", ["hbm_pim", "hbm3_pim", "aim_pim"])
def test_pim_unit_rate_agrees_with_pim_parameters(name):
    p = load_arch(name)
    pim_units = p.unit("pim")
    assert pim_units.instances == p.pim.units_per_channel * p.dram.dram.channels
    assert p.clock.core_hz == pytest.approx(1 / p.dram.dram.tck_s, rel=1e-4)  # cycles = tCK
    op = next(iter(pim_units.ops_per_cycle))
    assert pim_units.throughput(op) == pytest.approx(p.pim.macs_per_tck_per_unit())
    assert pim_units.energy(op) == p.pim.energy_pj_per_mac


@pytest.mark.parametrize("name", sorted(REQUIRED))
def test_dram_levels_do_not_exceed_their_pins(name):
    arch = load_arch(name)
    if arch.dram.dram is not None:
        assert arch.dram.read_bw_bytes_per_cycle * arch.clock.core_hz <= (
            arch.dram.dram.peak_bytes_per_s * 1.001
        )


def test_gpu_energies_follow_the_documented_node_rule():
    for name, node in (("h100", 5), ("h200", 5), ("a100", 7)):
        arch = load_arch(name)
        for dtype in ("bf16", "fp16", "fp8", "int8"):
            if arch.unit("tensor").supports(f"mac_{dtype}"):
                assert arch.unit("tensor").energy(f"mac_{dtype}") == pytest.approx(
                    energy.mac_pj(dtype, node), rel=1e-5
                ), (name, dtype)
        assert arch.unit("cuda").energy("mac_fp32") == pytest.approx(
            energy.mac_pj("fp32", node), rel=1e-5
        )
        host = energy.dram_path_pj_per_byte(energy.DRAM_PATHS["host"])
        assert arch.dram.read_energy_pj_per_byte == pytest.approx(host)
    t = load_arch("tpu_like")
    assert t.unit("mxu").energy("mac_bf16") == pytest.approx(energy.mac_pj("bf16", 16), rel=1e-5)


def test_energy_tables_reproduce_attacc_pim_figures():
    assert [energy.pim_access_pj_per_byte(p) for p in ("bank", "bank_group", "buffer_die")] == (
        pytest.approx([4.4, 12.48, 26.32])
    )
    assert energy.dram_path_pj_per_byte(energy.DRAM_PATHS["host"]) == pytest.approx(
        energy.ATTACC_GPU_PJ_PER_BYTE["mem_hbm"]
    )
    assert energy.ACCELERGY_DRAM_PJ_PER_BIT["HBM2"] * 8 == pytest.approx(
        energy.FUSEMAX_ERT_PJ["dram_rw_64b"] / 8
    )
    assert energy.node_scale(45, 45) == 1.0
    assert energy.node_scale(45, 5) < energy.node_scale(45, 7) < energy.node_scale(45, 16) < 1
