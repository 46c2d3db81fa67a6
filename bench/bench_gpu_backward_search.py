"""The ``fusion`` mapper on a gradient cascade: each backward family's own kernel (what
``--dataflow flash2|flash3|mem_efficient`` runs) against the best the search finds (query
tile x key block x Q/dO stages x MMA warps, :func:`mappings._gpu._search_space.backward_space`).

Run: ``python bench/bench_gpu_backward_search.py [--arch h100] [--heads 32]``. Prints, for
``mha_bwd`` at S = 1k causal and S = 8k non-causal, D = 64 and 128 (B = 1, bf16): each
family's own kernel and the best of its family (analytic estimate, the mapper's ranking
metric; the CTA: tile ``Bm x Bn``, stages, warps with producers, CTAs per SM, registers per
thread, shared memory) and the overall best with its event-engine cycles. Not a test.
"""

from __future__ import annotations

import argparse

from archsim import load_arch
from mappings._gpu._mapping import gpu_mapping_plan
from mappings._gpu.search import cta_label, gpu_search
from workloads import get_workload

SHAPES = (
    {"S": 1024, "D": 64, "causal": True},
    {"S": 1024, "D": 128, "causal": True},
    {"S": 8192, "D": 64, "causal": False},
    {"S": 8192, "D": 128, "causal": False},
)


def _cta(workload, mapping, arch) -> str:  # noqa: ANN001
    c = gpu_mapping_plan(workload, mapping, arch).meta["cta"]
    return (
        f"{c['block_m']}x{c['block_n']} stages {c['stages']} warps {c['threads'] // 32} "
        f"({c['ctas_per_sm']} CTA/SM, {c['regs_per_thread']} regs, {c['smem_bytes']:,} B)"
    )


def main() -> None:
    """Print the family defaults against the search's best for each shape."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--arch", default="h100")
    ap.add_argument("--heads", type=int, default=32)
    a = ap.parse_args()
    arch = load_arch(a.arch)
    for shape in SHAPES:
        w = get_workload("mha_bwd", B=1, H=a.heads, **shape)
        stats: dict = {}
        top = gpu_search(w, arch, top=1000, rescore=1, stats=stats)
        print(  # noqa: T201
            f"== mha_bwd B=1 H={a.heads} {shape} on {a.arch}: {int(stats['evaluated'])} "
            f"evaluated, {int(stats['pruned'])} pruned, {stats['seconds']:.2f} s"
        )
        for fam, own in stats["recipes"].items():
            mine = next(r for r in top if r.mapping.name == fam)
            print(  # noqa: T201
                f"  {fam:13s} own {float(own):>12,.0f}  best of family {mine.cycles:>12,.0f} "
                f"({float(own) / mine.cycles:.3f}x)  {_cta(w, mine.mapping, arch)}"
            )
        b = top[0]
        print(  # noqa: T201
            f"  best: {cta_label(w, b.mapping)}  {b.cycles:,.0f} cycles (event "
            f"{b.simulated_cycles:,}), {_cta(w, b.mapping, arch)}"
        )


if __name__ == "__main__":
    main()
