"""The PIM lowering counts in-bank streams and interface crossings from the loop nest.

What the units read from their banks, what crosses the channel interface and on how many
channels, all from the mapping's factors and the cascade (not from a decode or GEMV formula).
"""

from __future__ import annotations

import numpy as np
import pytest

from archsim import estimate, load_arch
from mappings._api import plan_for, resolve_workload
from mappings._pim import pim_timing
from mappings._pim_lower import lower_pim, unit_channels


def _lowered(arch: str, workload: str, **params: object):
    a = load_arch(arch)
    w = resolve_workload(workload, params)
    _, plan = plan_for(a, w)
    return a, plan, lower_pim(w, plan.mapping, a)


def test_units_take_whole_channels_per_stream_and_spread_inside():
    # 8 K/V heads over 16 channels of 64 units: each head's 112 keys over its own 2 channels
    ch = unit_channels({"hkv": 8, "m0": 112}, 16, 64)
    per_head = ch.reshape(8, 112)
    assert [sorted(set(row)) for row in per_head] == [[2 * h, 2 * h + 1] for h in range(8)]
    assert np.bincount(ch).max() <= 64
    # inner factors that do not fit their channels spread over all of them
    ch = unit_channels({"m0": 7, "c": 36}, 16, 16)
    assert sorted(set(ch)) == list(range(16))


def test_gemv_keeps_the_weights_in_bank_and_sends_the_vector_to_every_channel():
    arch, plan, prog = _lowered("hbm3_pim", "gemm", M=2, N=4096, K=4096)
    t = pim_timing(arch)
    (g,) = prog.meta["pim_groups"]
    (w,) = g["streams"]
    assert w["tensor"] == "B"  # C[m,n] = A[m,k] * B[k,n]: B[k,n] is the weight matrix
    assert w["bytes_per_unit"] * g["units"] == 4096 * 4096 * 2
    assert w["passes"] == 2  # each input vector re-streams the weights (no reuse in PIM)
    assert g["in_bank_bytes"] == 2 * 4096 * 4096 * 2
    # the input vectors go to all 16 channels, the outputs come back once
    assert g["io_in_bytes"] == 2 * 4096 * 2 * t.channels
    assert g["io_out_bytes"] == 2 * 4096 * 2
    assert g["useful_macs"] == 2 * 4096 * 4096


def test_gqa_query_heads_are_commands_on_the_open_row_not_rereads_of_the_row():
    arch, plan, prog = _lowered("hbm3_pim", "decode", B=2, H=32, Hkv=8, Skv=4096, D=128)
    qk = prog.meta["pim_groups"][0]
    (k,) = qk["streams"]
    assert k["cmds_per_column"] == 4  # the GQA group of 4 query heads
    assert k["passes"] == 1  # the row is opened once
    assert qk["in_bank_bytes"] == 4 * 2 * 8 * 4096 * 128 * 2  # each command reads its column
    cycles = estimate(prog, arch).cycles
    assert cycles == pytest.approx(plan.meta["pim_model_cycles"], rel=0.01)


def test_mla_sends_the_latent_query_to_every_channel_that_holds_keys():
    arch, plan, prog = _lowered("hbm3_pim", "mla", Sq=1, Skv=4096)
    t = pim_timing(arch)
    qkc = prog.meta["pim_groups"][0]
    (ckv,) = qkc["streams"]
    assert ckv["tensor"] == "CKV"
    assert ckv["cmds_per_column"] == 128  # all 128 heads read one latent stream
    # QC (128 heads x 512 latent, fp16) crosses into each of the 16 channels
    assert qkc["io_in_bytes"] == 128 * 512 * 2 * t.channels
