"""The ``fusion`` mapper on a GPU: search time, mappings per second, and its best mapping
against the recipes -- prefill (``flash2`` / ``flash3``), decode (``split_kv``, ``lean``,
cuDNN's ``flash3`` decode) and block-sparse (``block_sparse``).

Run: ``python bench/bench_gpu_mapper.py [--arch h100] [--lengths 4096,16384,65536]
[--decode-len 32768] [--cases prefill,decode,sparse]``. Prints figures; not a test.

* prefill -- mha (32 heads, d = 128, bf16, non-causal) at each length: the full search
  (kernel family x block_m x block_n x K/V stages, CTAs that do not fit dropped, every other
  one planned and timed with the analytical estimate, the best re-run on the event engine),
  the best mapping's event-engine cycles over ``flash2``'s (and ``flash3``'s) on the same
  engine, and the best mapping of the flash2 family alone over the flash2 recipe (analytic
  estimate, the mapper's ranking metric). At 64K the event engine refuses the persistent
  flash3 kernel (minutes): the best is then compared on the estimate.
* decode -- B = 1, 32 query heads, d = 128, ``--decode-len`` keys: MHA decode (``decode``),
  GQA with 8 K/V heads (``gqa`` at Sq = 1) and MLA decode (``mla`` at Sq = 1: 128 heads over
  one 512 + 64 latent KV): the search (decode kernels x key tile x stages x heads per CTA x
  key split, the split walked to its local optimum), the best against each recipe, analytic
  and event-engine cycles.
* sparse -- block-sparse attention at the FG-Attn reproduction's 720p shape
  (:mod:`validation.reproduce._fgattn`: Wan2.1-14B, 40 heads, d = 128, 21 x 45 x 80 = 75,600
  tokens, M = 64 blocks at the block density of its rule mask with no scattered slices): the
  search (sparse kernels x tiles x stages) against the ``block_sparse`` recipe on
  FlexAttention and on flash3 (the reproduction's baseline), analytic estimate only (the
  event engine takes minutes on 47k CTAs).

Search time is CPU seconds (``time.process_time``; single-threaded; imports, workload
construction and the estimator's first compilation outside the timed region); for decode
and sparse the event re-run of the best is outside it (``rescore=0``), and done after.
"""

from __future__ import annotations

import argparse
import time

from archsim import load_arch
from mappings import get_mapper
from mappings._api import simulate_workload
from mappings._gpu.search import cta_label
from workloads import get_workload


def _prefill(arch_name: str, seq: int) -> None:
    arch = load_arch(arch_name)
    w = get_workload("mha", S=seq)
    mapper = get_mapper("fusion")
    stats: dict[str, float] = {}
    t0 = time.process_time()
    ranked = mapper(w, arch, top=10_000, rescore=1, stats=stats)
    cpu = time.process_time() - t0
    best = ranked[0]
    f2_est = simulate_workload(arch, w, dataflow="flash2", engine="analytic").result.cycles
    own = next(r for r in ranked if r.mapping.name == "flash2")
    head = (
        f"{arch_name} mha S={seq:>6}: search {cpu:5.2f} CPU-s, {stats['candidates']:.0f} built, "
        f"{stats['pruned']:.0f} pruned (CTA does not fit), {stats['evaluated']:.0f} evaluated "
        f"({stats['evaluated'] / cpu:,.0f}/s) | best {cta_label(w, best.mapping)}: "
    )
    if best.simulated_cycles is not None:
        f2 = simulate_workload(arch, w, dataflow="flash2").result.cycles
        f3 = simulate_workload(arch, w, dataflow="flash3").result.cycles
        sim = float(best.simulated_cycles)
        head += f"{sim:,.0f} event cycles = x{sim / f2:.3f} flash2 ({f2:,}), x{sim / f3:.3f} flash3"
    else:  # the event engine refuses the best (minutes): compare on the estimate
        f3_est = simulate_workload(arch, w, dataflow="flash3", engine="analytic").result.cycles
        head += (
            f"{best.cycles:,.0f} analytic cycles (event engine: too long) = "
            f"x{best.cycles / f2_est:.3f} flash2, x{best.cycles / f3_est:.3f} flash3"
        )
    print(  # noqa: T201
        head + f" | best of the flash2 family {cta_label(w, own.mapping)}: "
        f"x{own.cycles / f2_est:.3f} the flash2 recipe (analytic)"
    )


def _search(arch_name: str, w: object) -> tuple[list, dict, float]:
    arch = load_arch(arch_name)
    stats: dict[str, float] = {}
    t0 = time.process_time()
    ranked = get_mapper("fusion")(w, arch, top=10_000, rescore=0, stats=stats)
    return ranked, stats, time.process_time() - t0


def _counts(stats: dict, cpu: float) -> str:
    return (
        f"search {cpu:5.2f} CPU-s, {stats['candidates']:.0f} built, {stats['pruned']:.0f} "
        f"pruned, {stats['duplicates']:.0f} duplicates, {stats['evaluated']:.0f} evaluated "
        f"({stats['refined']:.0f} by the split walk; {stats['evaluated'] / cpu:,.0f}/s)"
    )


def _decode(arch_name: str, keys: int) -> None:
    arch = load_arch(arch_name)
    cases = {
        "MHA decode": ("decode", {"B": 1, "H": 32, "Skv": keys}),
        "GQA decode (Hkv=8)": ("gqa", {"B": 1, "H": 32, "Hkv": 8, "Sq": 1, "Skv": keys}),
        "MLA decode": ("mla", {"B": 1, "H": 128, "Sq": 1, "Skv": keys}),
    }
    for label, (name, params) in cases.items():
        w = get_workload(name, **params)
        ranked, stats, cpu = _search(arch_name, w)
        best = ranked[0]
        ev = simulate_workload(arch, w, mapping=best.mapping, engine="event").result.cycles
        print(  # noqa: T201
            f"{arch_name} {label} Skv={keys}: {_counts(stats, cpu)} | best "
            f"{cta_label(w, best.mapping)}: {best.cycles:,.0f} analytic / {ev:,} event cycles"
        )
        ran: list[float] = []
        for df in ("split_kv", "lean", "flash3"):
            got = stats["recipes"].get(df)  # type: ignore[union-attr]
            if not isinstance(got, float):
                print(f"    recipe {df:<9} does not run: {got}")  # noqa: T201
                continue
            rep = simulate_workload(arch, w, dataflow=df, engine="event")
            rec = rep.result.cycles
            ran.append(got)
            print(  # noqa: T201
                f"    recipe {df:<9} {cta_label(w, rep.plan.mapping):<24} {got:>10,.0f} analytic"
                f" / {rec:>9,} event | mapper best x{best.cycles / got:.3f} analytic, "
                f"x{ev / rec:.3f} event"
            )
        if ran:
            print(f"    mapper best / best recipe (analytic): x{best.cycles / min(ran):.3f}")  # noqa: T201


def _sparse(arch_name: str) -> None:
    from validation.reproduce._fgattn import VIDEO_GRIDS, rule_densities
    from workloads import get_model

    arch = load_arch(arch_name)
    m = get_model("wan2.1-14b")
    grid = VIDEO_GRIDS["720p"]
    S = grid[0] * grid[1] * grid[2]
    db = float(rule_densities(grid, (0.0,), block=64)[0]["block_density"])
    params = {"B": 1, "H": m.heads, "Sq": S, "Skv": S, "D": m.head_dim}
    w = get_workload("block_sparse", **params, block=64, density=db)
    ranked, stats, cpu = _search(arch_name, w)
    best = ranked[0]
    print(  # noqa: T201
        f"{arch_name} block_sparse 720p (H={m.heads}, S={S:,}, d={m.head_dim}, M=64, density "
        f"{db:.4f}): {_counts(stats, cpu)} | best {cta_label(w, best.mapping)}: "
        f"{best.cycles:,.0f} analytic cycles"
    )
    for df, knobs in (("block_sparse", {}), ("block_sparse", {"family": "flash3"})):
        rep = simulate_workload(arch, w, dataflow=df, knobs=knobs, engine="analytic")
        name = rep.plan.mapping.name if rep.plan.mapping is not None else df
        rec = rep.result.cycles
        print(  # noqa: T201
            f"    recipe {name:<20} {cta_label(w, rep.plan.mapping):<28} "
            f"{rec:>14,} analytic | mapper best x{best.cycles / rec:.4f}"
        )


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--arch", default="h100", help="GPU preset (default h100)")
    p.add_argument("--lengths", default="4096,16384,65536", help="prefill sequence lengths")
    p.add_argument("--decode-len", type=int, default=32768, help="decode key length")
    p.add_argument("--cases", default="prefill,decode,sparse", help="which cases to run")
    args = p.parse_args()
    cases = set(args.cases.split(","))
    simulate_workload(args.arch, "mha", params={"S": 256}, dataflow="flash2", engine="analytic")
    if "prefill" in cases:
        for seq in (int(x) for x in args.lengths.split(",")):
            _prefill(args.arch, seq)
    if "decode" in cases:
        _decode(args.arch, args.decode_len)
    if "sparse" in cases:
        _sparse(args.arch)


if __name__ == "__main__":
    main()
