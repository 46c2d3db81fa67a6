"""K/V DRAM reads of fused attention kernels: each wave of a stream's CTAs reads the union of
the key tiles they visit (dense: the whole stream per wave; causal: keys up to the wave's last
query row; a band: the band; L2 that holds every stream in flight: one read per stream)."""

from pathlib import Path

import numpy as np
import pytest

from mappings._gpu._kv_reads import kv_dram_reads
from mappings._stream import StreamTiling, stream_work
from workloads import get_workload

KT = 128
EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "cascades"


def work(causal: bool, S: int = 8192, H: int = 2):
    w = get_workload("mha", B=1, H=H, S=S, D=128, causal=causal)
    return stream_work(w, StreamTiling(KT, KT, ("condition",)))


def test_dense_stream_is_read_once_per_wave_of_its_ctas():
    w = work(causal=False)  # 64 query blocks per head, 2 heads
    one = 1e6
    # 16 resident CTAs: each head's 64 CTAs run in 4 waves -> 4 reads of each stream
    assert kv_dram_reads(w, slots=16, stream_bytes=one, l2_reuse_bytes=0) == pytest.approx(
        2 * 4 * one
    )
    # L2 holds every stream in flight: each read once
    assert kv_dram_reads(w, slots=16, stream_bytes=one, l2_reuse_bytes=1e9) == pytest.approx(
        2 * one
    )


def test_causal_wave_reads_keys_up_to_its_last_query_row():
    w = work(causal=True)
    one, n = 1e6, 64  # 64 key tiles per stream
    # 4 waves of 16 query blocks: wave k visits key tiles 0 .. 16(k+1)-1
    expect = 2 * sum(16 * (k + 1) for k in range(4)) / n * one
    assert kv_dram_reads(w, slots=16, stream_bytes=one, l2_reuse_bytes=0) == pytest.approx(expect)
    # one wave: the whole stream once, like dense
    assert kv_dram_reads(w, slots=64, stream_bytes=one, l2_reuse_bytes=0) == pytest.approx(2 * one)


def test_sliding_window_reads_the_band_of_each_wave():
    from mappings._api import resolve_workload

    wl = resolve_workload(
        EXAMPLES / "sliding_window.ein", {"A": 1, "L": 8192, "C": 128, "T": KT, "W": 1024}
    )
    w = stream_work(wl, StreamTiling(KT, KT, ("condition",)))
    got = kv_dram_reads(w, slots=16, stream_bytes=1.0, l2_reuse_bytes=0)
    # 4 waves of 16 query blocks (2048 rows) over 64 key tiles; each wave reads its rows'
    # diagonal tiles plus the 1024-key window behind them (8 tiles), the first none behind
    assert got == pytest.approx((16 + 3 * (16 + 8)) / 64)


def test_block_sparse_union_grows_with_ctas_sharing_a_wave():
    w = work(causal=False, H=1)
    w = type(w)(**{**w.__dict__, "live_fraction": np.full(w.query_blocks, 0.1)})
    # 16 CTAs per wave, each tile live with p = 0.1 in each: 1 - 0.9^16 of the tiles read
    got = kv_dram_reads(w, slots=16, stream_bytes=1.0, l2_reuse_bytes=0)
    assert got == pytest.approx(4 * (1 - 0.9**16))
