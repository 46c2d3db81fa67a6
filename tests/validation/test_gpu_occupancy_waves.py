"""Occupancy limits and CTA wave scheduling: exact hand-computed cases."""

import numpy as np
import pytest

from archsim.errors import InfeasibleMappingError
from archsim.gpu import ctas_per_sm, gpu_model, list_schedule, waves


@pytest.fixture(scope="module")
def h100():
    return gpu_model("h100").hw


def test_fa2_hdim128_is_register_limited_to_two_ctas(h100):
    # 128 threads x 255 regs -> 8192 regs per warp (256-register granules) x 4 warps = 32768
    assert ctas_per_sm(h100, threads=128, regs_per_thread=255, smem_bytes=64 * 1024) == 2


def test_shared_memory_limits_ctas(h100):
    # 100 KB + 1 KB reserved per CTA: two fit in 228 KB, three do not
    assert ctas_per_sm(h100, threads=128, regs_per_thread=32, smem_bytes=100 * 1024) == 2


def test_thread_limit(h100):
    assert ctas_per_sm(h100, threads=1024, regs_per_thread=16, smem_bytes=0) == 2


def test_cta_too_big_for_shared_memory_is_infeasible(h100):
    with pytest.raises(InfeasibleMappingError, match="shared memory"):
        ctas_per_sm(h100, threads=128, regs_per_thread=32, smem_bytes=300 * 1024)


def test_waves_quantize():
    assert waves(132, 132) == 1
    assert waves(133, 132) == 2
    assert waves(0, 132) == 0


def test_equal_ctas_take_whole_waves():
    s = list_schedule(np.full(5, 2.0), 2)
    assert s.makespan == 6.0
    assert list(s.slot_of) == [0, 1, 0, 1, 0]
    assert list(s.critical) == [0, 2, 4]


def test_unequal_ctas_list_scheduled_in_launch_order():
    # slot0: 4 ; slot1: 1 then 1 then 1 -> makespan 4 (slot 0)
    s = list_schedule(np.array([4.0, 1.0, 1.0, 1.0]), 2)
    assert s.makespan == 4.0
    assert list(s.slot_of) == [0, 1, 1, 1]
    assert list(s.critical) == [0]


def test_longest_first_order_shortens_causal_tail():
    d = np.array([1.0, 2.0, 3.0, 4.0, 5.0, 6.0])
    in_order = list_schedule(d, 3).makespan
    lpt = list_schedule(d, 3, order=np.argsort(-d, kind="stable")).makespan
    assert lpt == 7.0
    assert in_order == 9.0  # slots: [1,4]=5, [2,5]=7, [3,6]=9
