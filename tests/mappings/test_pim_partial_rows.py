"""PIM decode maps at every context length: partial DRAM rows are counted as issued.

A unit's last row is usually partial; the engine program charges the MAC commands the
units really issue (whole columns, partial last rows), so its occupancy never exceeds 1 and
no context length is refused while a longer one maps (the bug: Skv = 129..208 on aim_pim).
"""

from __future__ import annotations

import math
from itertools import pairwise

import pytest

from archsim import load_arch
from archsim.errors import MappingError
from mappings import simulate_workload
from mappings._pim import pim_timing

#: Sampled context lengths 1..1100: a stride prime to the row size, plus the row boundaries
#: where the refusals were reported (aim_pim rows hold 2048 B = 8 keys of a 128-dim head).
SKV = sorted(set(range(1, 1101, 37)) | {128, 129, 131, 208, 209, 256, 257, 300, 385, 420, 1024})


def _cycles(arch: str, workload: str, skv: int, **params: object) -> float:
    rep = simulate_workload(arch, workload, params={**params, "Skv": skv}, dataflow="pim_decode")
    return rep.result.cycles


@pytest.mark.parametrize("arch", ["aim_pim", "hbm3_pim"])
@pytest.mark.parametrize("hkv", [8, 32], ids=["gqa", "mha"])
def test_decode_maps_at_every_context_length_and_time_never_falls(arch, hkv):
    times = [_cycles(arch, "decode", s, B=1, H=32, Hkv=hkv, D=128) for s in SKV]
    assert all(t > 0 for t in times)
    falls = [(a, b) for (a, ta), (b, tb) in pairwise(zip(SKV, times, strict=True)) if tb < ta]
    assert falls == []
    # and it grows: the K/V stream is linear in the context (on top of a fixed part: four
    # crossings of the channel interface, each with its DRAM latency)
    assert times[-1] > 3 * times[SKV.index(129)]


def test_reported_refusal_maps_and_lies_between_its_neighbours():
    params = {"B": 1, "H": 32, "Hkv": 8, "D": 128}
    lo, mid, hi = (_cycles("aim_pim", "decode", s, **params) for s in (128, 131, 209))
    assert lo <= mid <= hi


@pytest.mark.parametrize("arch", ["aim_pim", "hbm3_pim", "hbm_pim"])
def test_mla_decode_maps_with_the_latent_cache_as_the_key_side_operand(arch):
    times = [_cycles(arch, "mla", s, Sq=1) for s in (64, 257, 300, 1000, 4096)]
    assert times == sorted(times)
    rep = simulate_workload(arch, "mla", params={"Sq": 1, "Skv": 300}, dataflow="pim_decode")
    assert rep.plan.meta["pim_kv_bytes"] == 300 * (512 + 64) * 2  # CKV + KR, fp16, B = 1
    # the scores read CKV and KR, the values CKV again: all 128 heads share one stream
    assert rep.plan.meta["pim_streamed_bytes"] == 300 * (2 * 512 + 64) * 2


@pytest.mark.parametrize("skv", [131, 257, 1024])  # >= 32 keys: whole keys per unit
def test_program_charges_the_issued_commands_at_occupancy_at_most_one(skv):
    arch = load_arch("aim_pim")
    t = pim_timing(arch)
    rep = simulate_workload(
        arch,
        "decode",
        params={"B": 1, "H": 32, "Hkv": 8, "Skv": skv, "D": 128},
        dataflow="pim_decode",
    )
    meta = rep.plan.meta
    # the two key-side contractions (QK streams K, SLNV streams V), one phase each
    macs = [p for p in rep.plan.program.phases if p.name in ("g0:QK", "g2:SLNV")]
    assert len(macs) == 2
    # 8 K/V heads over 16 channels: each head's keys split over 2 channels, 16 units each;
    # K and V each stream ceil(whole keys per unit * 256 B / 32 B) columns per unit, 4 query
    # heads (one command each) per column, 16 MACs per command
    keys = math.ceil(skv / (2 * 16))  # whole keys on the busiest unit
    cols = math.ceil(keys * 128 * 2 / t.column_bytes)
    # the closed form spreads the bytes evenly (fractions of a key per unit): at most as many
    even = math.ceil(math.ceil(skv / 2) * 128 * 2 / 16 / t.column_bytes)
    assert meta["pim_mac_cmds_per_unit"] == 2 * even * 4
    assert even <= cols
    for mac in macs:
        (comp,) = mac.body.compute
        assert sum(comp.ops.values()) * mac.trips == pytest.approx(cols * 4 * 16)
        assert 0 < comp.occupancy <= 1.0
        assert mac.trips == math.ceil(cols / t.columns_per_row)


@pytest.mark.parametrize("skv", [131, 1024])
def test_a_faster_command_gap_than_declared_is_refused_at_every_length(skv):
    # hbm3_pim declares its unit at the power-limited gap (6 tCK): the 4-tCK gap is refused
    # for the architecture, whatever the shape (it used to depend on partial rows)
    with pytest.raises(MappingError, match="faster than unit 'pim'") as exc:
        simulate_workload(
            "hbm3_pim",
            "decode",
            params={"Skv": skv},
            dataflow="pim_decode",
            knobs={"power_limited": False},
        )
    assert exc.value.path == "knobs.power_limited"
    assert "6 tCK" in str(exc.value.expected)


@pytest.mark.parametrize("arch", ["aim_pim", "hbm3_pim", "hbm_pim"])
def test_gemv_maps_at_every_row_count_and_time_never_falls(arch):
    rows = [1, 17, 255, 1000, 1023, 4097, 50257]
    times = [
        simulate_workload(
            arch, "gemm", params={"M": 1, "N": n, "K": 768}, dataflow="pim_gemv"
        ).result.cycles
        for n in rows
    ]
    assert times == sorted(times)
    assert times[-1] > 10 * times[2]
