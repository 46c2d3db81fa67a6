"""No architecture class reports fewer DRAM bytes than the cascade must move: every input
read once and every output written once (``workloads.count(...).compulsory_bytes``). PIM
counts its in-bank reads; a GPU GEMM counts the output still dirty in L2 at its end."""

import numpy as np
import pytest

from archsim.errors import MappingError
from mappings import simulate_workload
from workloads import count, get_workload

ARCHS = ["fusemax", "flat", "tpu_like", "h100", "a100", "hbm3_pim", "aim_pim"]
CASES = [
    ("mha", {"S": 512}),
    ("mha", {"S": 1024, "causal": True}),
    ("gqa", {"S": 512}),
    ("decode", {"Skv": 2048}),
    ("gemm", {"M": 512, "N": 512, "K": 512}),
    ("gemm", {"M": 1, "N": 2048, "K": 2048}),
    ("gemm", {"M": 8192, "N": 128, "K": 64}),
    ("rmsnorm", {}),
    ("swiglu", {"T": 256}),
    ("linear", {"S": 1024}),
]


def _random_shapes(n: int, seed: int = 7) -> list[tuple[str, dict]]:
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n):
        m, k, nn = (int(2 ** rng.integers(0, 13)) for _ in range(3))
        out.append(("gemm", {"M": m, "N": max(nn, 2), "K": max(k, 16)}))
    return out


@pytest.mark.parametrize("arch", ARCHS)
@pytest.mark.parametrize(("workload", "params"), CASES + _random_shapes(6))
def test_dram_bytes_at_least_compulsory(arch, workload, params):
    try:
        rep = simulate_workload(arch, workload, params=params, engine="analytic")
    except MappingError:
        pytest.skip(f"no dataflow maps {workload} on {arch} (refused, as it should say)")
    w = get_workload(workload, **params)
    need = count(w.cascade, w.params).compulsory_bytes
    # per-CTA / per-tile byte counts are whole bytes: allow their rounding (< 0.01%)
    assert rep.result.dram_bytes >= need * (1 - 1e-4), (rep.dataflow, rep.result.bytes_by_level)
