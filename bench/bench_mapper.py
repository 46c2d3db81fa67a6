"""Mapper estimator throughput: candidate mappings evaluated per second.

Run: ``python bench/bench_mapper.py [N]``. Prints the vectorised estimator's rate (the one the
mappers use; target >= 100,000 mappings/s) next to lowering + ``archsim.estimate`` per
mapping, for a 1024 x 768 x 512 GEMM on the FuseMax preset's 256 x 256 array.
"""

from __future__ import annotations

import sys
import time

import numpy as np

from archsim import estimate, load_arch
from mappings._api import FileWorkload
from mappings._lower import lower
from mappings._mappers import sample
from mappings._mapping import Mapping
from mappings._space import batch_metrics, build_space, to_group
from workloads import parse_cascade


def main(n: int = 1_000_000) -> None:
    cas = parse_cascade(
        "tensor A[m,k] : bf16\ntensor B[k,n] : bf16\nC[m,n] = A[m,k] * B[k,n]\n",
        name="gemm",
        params={"M": 1024, "N": 768, "K": 512},
    )
    w = FileWorkload("gemm", cas, dict(cas.params), cas.rank_sizes())
    arch = load_arch("fusemax")
    space = build_space(w, arch, "C")
    cands = sample(space, n, np.random.default_rng(0))
    t0 = time.perf_counter()
    for start in range(0, n, 200_000):
        batch_metrics(space, cands.take(np.arange(start, min(n, start + 200_000))))
    fast = n / (time.perf_counter() - t0)
    k = 200
    t0 = time.perf_counter()
    for i in range(k):
        g = to_group(space, cands.t[i], cands.s[i], cands.axis[i], int(cands.order[i]))
        estimate(lower(w, Mapping(groups=(g,)), arch, check=False), arch)
    slow = k / (time.perf_counter() - t0)
    sys.stdout.write(f"vectorised estimator: {fast:,.0f} mappings/s ({n:,} candidates)\n")
    sys.stdout.write(f"lower + archsim.estimate: {slow:,.0f} mappings/s ({k} candidates)\n")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 1_000_000)
