"""The ``fusion`` mapper on a GPU: search time, mappings per second, and its best mapping
against the ``flash2`` recipe.

Run: ``python bench/bench_gpu_mapper.py [--arch h100] [--lengths 4096,16384,65536]``. Prints
figures; not a test. For mha (32 heads, d = 128, bf16, non-causal) at each length: the full
search (kernel family x block_m x block_n x K/V stages, CTAs that do not fit dropped, every
other one planned and timed with the analytical estimate, the best re-run on the event
engine), its CPU seconds (``time.process_time``; single-threaded; imports, workload
construction and the estimator's first compilation outside the timed region), the mappings
built, evaluated and evaluated per second, the best mapping's event-engine cycles over
``flash2``'s (and ``flash3``'s) on the same engine, and the best mapping of the flash2 family
alone over the flash2 recipe (analytic estimate, the mapper's ranking metric).
"""

from __future__ import annotations

import argparse
import time

from archsim import load_arch
from mappings import get_mapper
from mappings._api import simulate_workload
from mappings._gpu.search import cta_label
from workloads import get_workload


def _run(arch_name: str, seq: int) -> None:
    arch = load_arch(arch_name)
    w = get_workload("mha", S=seq)
    mapper = get_mapper("fusion")
    stats: dict[str, float] = {}
    t0 = time.process_time()
    ranked = mapper(w, arch, top=10_000, rescore=1, stats=stats)
    cpu = time.process_time() - t0
    best = ranked[0]
    f2 = simulate_workload(arch, w, dataflow="flash2").result.cycles
    f3 = simulate_workload(arch, w, dataflow="flash3").result.cycles
    f2_est = simulate_workload(arch, w, dataflow="flash2", engine="analytic").result.cycles
    own = next(r for r in ranked if r.mapping.name == "flash2")
    sim = float(best.simulated_cycles or 0)
    print(  # noqa: T201
        f"{arch_name} mha S={seq:>6}: search {cpu:5.2f} CPU-s, {stats['candidates']:.0f} built, "
        f"{stats['pruned']:.0f} pruned (CTA does not fit), {stats['evaluated']:.0f} evaluated "
        f"({stats['evaluated'] / cpu:,.0f}/s) | best {cta_label(w, best.mapping)}: "
        f"{sim:,.0f} event cycles = x{sim / f2:.3f} flash2 ({f2:,}), x{sim / f3:.3f} flash3 | "
        f"best of the flash2 family {cta_label(w, own.mapping)}: x{own.cycles / f2_est:.3f} "
        "the flash2 recipe (analytic)"
    )


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--arch", default="h100", help="GPU preset (default h100)")
    p.add_argument("--lengths", default="4096,16384,65536", help="sequence lengths")
    args = p.parse_args()
    simulate_workload(args.arch, "mha", params={"S": 256}, dataflow="flash2", engine="analytic")
    for seq in (int(x) for x in args.lengths.split(",")):
        _run(args.arch, seq)


if __name__ == "__main__":
    main()
