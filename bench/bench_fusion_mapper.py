"""The whole-cascade ``fusion`` mapper: search time, mappings evaluated per second, and how
its best mapping compares with the hand-written recipe.

Run: ``python bench/bench_fusion_mapper.py [--lengths 1024,4096,...] [--mla 4096]``. Prints
figures; not a test. The headline case is the mapper issue's: fused attention S = 4096,
d = 128, 16 heads on a 128 x 128 array (``tpu_like``), full search including lowering and
timing every valid candidate (target <= 1.9 s on one core; AccelForge's FFM took 18.8 s on
this class of machine). CPU seconds (``time.process_time``) are reported; the search is
single-threaded. The process's imports and the workload's construction are outside the timed
region. ``--mla S`` adds DeepSeek's MLA (128 heads) on ``fusemax``, whose heads-rich core
needs the lean retry.
"""

from __future__ import annotations

import argparse
import time

from archsim import load_arch
from mappings import get_mapper
from mappings._api import simulate_workload
from workloads import get_workload


def _run(arch_name: str, seq: int, heads: int, dim: int, name: str = "mha") -> None:
    arch = load_arch(arch_name)
    w = get_workload(name, S=seq, H=heads, D=dim) if name == "mha" else get_workload(name, S=seq)
    get_mapper("fusion")  # registers the mapper (import outside the timed region)
    stats: dict[str, float] = {}
    t0 = time.process_time()
    ranked = get_mapper("fusion")(w, arch, top=1, rescore=0, stats=stats)
    cpu = time.process_time() - t0
    best = ranked[0]
    recipe = simulate_workload(arch, w, dataflow="fusemax", engine="analytic").result
    shape = f"S={seq:>6} H={heads} D={dim}" if name == "mha" else f"{name} S={seq:>6}"
    print(  # noqa: T201
        f"{arch_name:9} {shape}: search {cpu:6.2f} CPU-s, "
        f"{stats['evaluated']:>6,.0f} mappings evaluated ({stats['evaluated'] / cpu:,.0f}/s) "
        f"of {stats['candidates']:,.0f} built, {stats.get('skipped', 0):.0f} segments skipped "
        f"(bound), {stats.get('screened', 0):,.0f} lean bindings screened | "
        f"best {best.cycles:,.0f} cycles "
        f"{best.energy_j:.4g} J vs fusemax recipe {recipe.cycles:,.0f} cycles "
        f"{recipe.energy_j:.4g} J (x{best.cycles / recipe.cycles:.3f} cycles, "
        f"x{best.energy_j / recipe.energy_j:.3f} energy)"
    )


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--lengths", default="1024,4096,16384,65536", help="fusemax sweep")
    p.add_argument(
        "--mla", type=int, default=0, metavar="S", help="also MLA (128 heads) at S tokens"
    )
    args = p.parse_args()
    print("target: tpu_like (128 x 128), S=4096, d=128, 16 heads <= 1.9 CPU-s")  # noqa: T201
    _run("tpu_like", 4096, 16, 128)
    for seq in (int(x) for x in args.lengths.split(",")):
        _run("fusemax", seq, 16, 128)
    if args.mla:
        _run("fusemax", args.mla, 128, 0, name="mla")


if __name__ == "__main__":
    main()
