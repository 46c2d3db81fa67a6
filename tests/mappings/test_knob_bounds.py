"""Knobs are bounded before anything is sized by them: a boolean is not a count, and a split
count larger than the work it splits is refused (100M splits once allocated 24 GiB)."""

import pytest

from archsim.errors import MappingError
from mappings import simulate_workload


@pytest.mark.parametrize(
    ("arch", "workload", "dataflow", "knobs", "field"),
    [
        ("h100", "decode", "split_kv", {"splits": 100_000_000}, "knobs.splits"),
        ("h100", "decode", "split_kv", {"splits": True}, "knobs.splits"),
        ("h100", "gemm", "gpu_gemm", {"split_k": 10**9}, "knobs.split_k"),
        ("h100", "gemm", "gpu_gemm", {"split_k": True}, "knobs.split_k"),
        ("fusemax", "mha", "fusemax", {"m0": True}, "knobs.m0"),
        ("fusemax", "mha", "fusemax", {"m0": 2**50}, "knobs.m0"),
    ],
)
def test_bad_knob_is_refused_naming_it(arch, workload, dataflow, knobs, field):
    with pytest.raises(MappingError, match=field.replace(".", r"\.")):
        simulate_workload(arch, workload, dataflow=dataflow, knobs=knobs, engine="analytic")


def test_largest_valid_split_count_runs():
    # decode at Skv=4096 with 128-key blocks: 32 blocks, 32 splits of one block each
    rep = simulate_workload(
        "h100", "decode", params={"Skv": 4096}, dataflow="split_kv", knobs={"splits": 32}
    )
    assert rep.plan.meta["kernels"][0]["splits"] == 32
