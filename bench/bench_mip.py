"""MIP mapper quality: its answer vs the exhaustive optimum, and the MIP alone (one-rank polish).

Run: ``python bench/bench_mip.py``. For GEMMs on FuseMax shrunk to a 16x16 array and a
16 KiB buffer (the tests' ``tiny_arch``) prints per objective the exhaustive optimum, the
``mip`` mapper's answer (ratio; 1.0000 = optimal), the best MIP solution after the one-rank
coordinate descent only (before the pairwise polish: how good the MIP's model is alone), and
the mapper's wall time (CBC runs in a subprocess: CPU time would miss it). "MIP alone" is
the vectorised estimator's figure, the others ``estimate``'s (whole cycles), so it can sit
a hair below the optimum.
"""

from __future__ import annotations

import time

import numpy as np

from archsim import load_arch
from mappings import get_mapper
from mappings._api import FileWorkload
from mappings._mappers import _every_order, _objective_values, hill_climb, rank
from mappings._mip import _share_variants, solve_allocation
from mappings._space import build_space
from workloads import parse_cascade

SHAPES = ((256, 96, 128), (64, 48, 32), (96, 64, 40), (128, 128, 64))


def _gemm(m: int, n: int, k: int) -> FileWorkload:
    cas = parse_cascade(
        "tensor A[m,k] : bf16\ntensor B[k,n] : bf16\nC[m,n] = A[m,k] * B[k,n]\n",
        name="gemm",
        params={"M": m, "N": n, "K": k},
    )
    return FileWorkload("gemm", cas, dict(cas.params), cas.rank_sizes())


def _mip_alone(space, objective: str) -> float:  # noqa: ANN001
    best = np.inf
    for shares in _share_variants(len(space.tensors)):
        sol = solve_allocation(space, shares, objective)
        if sol is None:
            continue
        t, s, ax = sol
        c = _every_order(t[None], s[None], ax[None], len(space.orders))
        v = _objective_values(space, c, objective)
        _, hv = hill_climb(space, c.take(rank(v)[:1]), objective)
        best = min(best, float(hv[:, 0].min()))
    return best


def main() -> None:
    arch = load_arch("fusemax").with_updates(
        {"levels.GLB.capacity_bytes": 16384, "compute.pe2d.mesh": [16, 16]}
    )
    for shape in SHAPES:
        w = _gemm(*shape)
        space = build_space(w, arch, "C")
        for obj in ("latency", "energy", "edp"):
            ex = get_mapper("exhaustive")(w, arch, objective=obj, top=1, budget=None, rescore=0)
            t0 = time.perf_counter()
            mip = get_mapper("mip")(w, arch, objective=obj, top=1, rescore=0)
            wall = time.perf_counter() - t0
            alone = _mip_alone(space, obj)
            e, m = ex[0].objective, mip[0].objective
            print(
                f"{'x'.join(map(str, shape)):>11} {obj:>7}: exhaustive {e:.5g}  mip {m:.5g} "
                f"({m / e:.4f})  MIP alone {alone:.5g} ({alone / e:.4f})  mip wall {wall:.1f} s",
                flush=True,
            )


if __name__ == "__main__":
    main()
