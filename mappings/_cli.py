"""``archsim simulate`` and ``archsim map``."""

from __future__ import annotations

import argparse
import json

from archsim.errors import MappingError

__all__ = ["register"]


def _kv(items: list[str] | None, what: str) -> dict[str, object]:
    if what == "--set":
        try:
            from workloads.library import parse_set_options
        except ImportError:  # pragma: no cover - the library ships it
            pass
        else:
            return dict(parse_set_options(items or []))
    out: dict[str, object] = {}
    for it in items or []:
        if "=" not in it:
            raise MappingError("expected KEY=VALUE", path=what, got=it)
        k, v = it.split("=", 1)
        out[k.strip()] = _value(v.strip())
    return out


def _value(v: str) -> object:
    for conv in (int, float):
        try:
            return conv(v)
        except ValueError:
            pass
    if v.lower() in ("true", "false"):
        return v.lower() == "true"
    return v


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--arch", required=True, help="preset name (archsim arch list) or YAML file")
    p.add_argument(
        "--workload", required=True, help="library workload (listed below) or cascade file"
    )
    p.add_argument("--set", action="append", metavar="K=V", help="workload parameter (repeatable)")
    p.add_argument("--json", action="store_true", help="print JSON")


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add ``simulate``, ``crossover`` and ``map`` to the archsim CLI."""
    from archsim.cli._help import (
        dataflow_table,
        examples,
        mapper_table,
        sections,
        workload_table,
    )

    s = subparsers.add_parser(
        "simulate",
        help="simulate a workload on an architecture",
        description="Simulate a workload (a library cascade or a cascade file) on an "
        "architecture with a dataflow (or a mapping file) and print cycles, time, energy, "
        "bytes per level and utilization per compute unit.",
        epilog=sections(
            examples(
                "archsim simulate --arch fusemax --workload mha --set S=4096",
                "archsim simulate --arch h100 --workload gqa --set S=8192 --set causal=true "
                "--dataflow flash3",
                "archsim simulate --arch fusemax --workload mha --set S=4096 --knob m0=128 "
                "--trace mha_trace.json",
                "archsim simulate --arch flat --workload examples/cascades/sliding_window.ein "
                "--set W=1024 --engine analytic",
                "archsim simulate --arch hbm_pim --workload decode --set Skv=32768 --json",
                "archsim simulate --arch tpu_like --workload gemm --set M=512 --set N=512 "
                "--set K=512",
                note="A trace (--trace) opens in https://ui.perfetto.dev (drag the file in).",
            ),
            "engines (--engine):\n"
            "  event     the event-driven simulator (default): transfers contend for bandwidth,\n"
            "            buffers fill and stall\n"
            "  analytic  the analytical estimate (traffic over bandwidth, compute over\n"
            "            throughput, pipeline fill) that mappers rank with; microseconds",
            dataflow_table,
            workload_table,
        ),
    )
    _common(s)
    s.add_argument("--dataflow", default="auto", help="dataflow name, listed below (default auto)")
    s.add_argument(
        "--knob", action="append", metavar="K=V", help="dataflow knob, listed below (repeatable)"
    )
    s.add_argument("--mapping", help="mapping YAML file (instead of a dataflow)")
    s.add_argument(
        "--save-mapping",
        metavar="FILE.yaml",
        help="write the whole-cascade mapping that ran (pass it back with --mapping)",
    )
    s.add_argument(
        "--engine",
        choices=("event", "analytic"),
        default="event",
        help="evaluator (default event; see below)",
    )
    s.add_argument(
        "--trace", metavar="OUT.json", help="write a Chrome/Perfetto trace (event engine)"
    )
    s.set_defaults(func=_simulate)
    c = subparsers.add_parser(
        "crossover",
        help="the length beyond which workload A runs faster than workload B",
        description="Simulate workloads A and B at lengths from --from to --to (doubling) and "
        "print the first length from which A is faster than B.",
        epilog=sections(
            examples(
                "archsim crossover linear mha --arch fusemax --set B=1 --set H=8 --set D=64 "
                "--to 16384",
                "archsim crossover gqa mha --arch h100 --from 1024 --to 8192 --json",
            ),
            lambda: workload_table("workloads (A and B; --set K=V applies to both):"),
        ),
    )
    c.add_argument("a", help="library name or cascade file (the challenger)")
    c.add_argument("b", help="library name or cascade file (the baseline)")
    c.add_argument("--arch", required=True, help="preset name or YAML file")
    c.add_argument("--set", action="append", metavar="K=V", help="parameter of both workloads")
    c.add_argument("--length", default="S", help="parameter swept (default S)")
    c.add_argument("--from", dest="lo", type=int, default=256, help="first length (default 256)")
    c.add_argument("--to", dest="hi", type=int, default=131072, help="last length (default 128K)")
    c.add_argument("--json", action="store_true", help="print JSON")
    c.set_defaults(func=_crossover)
    m = subparsers.add_parser(
        "map",
        help="search mappings with a mapper",
        description="Search mappings of a workload on an architecture and print the best "
        "--top ones with their cycles, energy and DRAM bytes.",
        epilog=sections(
            examples(
                "archsim map --arch tpu_like --workload gemm --set M=512 --set N=512 "
                "--set K=512 --mapper mip --objective edp --top 3",
                "archsim map --arch fusemax --workload mha --set S=4096 --set H=16 "
                "--mapper fusion --top 3",
                "archsim map --arch tpu_like --workload mha --set S=4096 --set H=16 "
                "--mapper fusion --top 1 --save best.yaml",
                "archsim map --arch h100 --workload mha --set S=16384 --mapper fusion --top 3 "
                "--save gpu.yaml",
                note="On a GPU the fusion mapper searches kernel family x block_m x block_n x "
                "K/V stages and gpu_unfused; run its YAML back with simulate --mapping.",
            ),
            "objectives (--objective):\n"
            "  latency  cycles\n"
            "  energy   joules\n"
            "  edp      energy x delay (J s)\n"
            "  pareto   the latency-energy front (fusion mapper only)",
            mapper_table,
            workload_table,
        ),
    )
    _common(m)
    m.add_argument(
        "--mapper", default="greedy", metavar="NAME", help="mapper, listed below (default greedy)"
    )
    m.add_argument(
        "--objective",
        default="latency",
        choices=("latency", "energy", "edp", "pareto"),
        help="what to minimize (default latency; see below)",
    )
    m.add_argument("--top", type=int, default=5, help="mappings printed (default 5)")
    m.add_argument("--budget", type=int, default=None, help="candidate budget (random, exhaustive)")
    m.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    m.add_argument("--einsum", default=None, help="Einsum to map (default: the largest)")
    m.add_argument("--save", metavar="FILE.yaml", help="write the best mapping as YAML")
    m.set_defaults(func=_map)


def _simulate(args: argparse.Namespace) -> int:
    from mappings._api import simulate_workload

    rep = simulate_workload(
        args.arch,
        args.workload,
        params=_kv(args.set, "--set"),
        dataflow=args.dataflow,
        knobs=_kv(args.knob, "--knob"),
        mapping=args.mapping,
        engine=args.engine,
        trace=bool(args.trace),
    )
    if args.save_mapping:
        if rep.plan.mapping is None:
            from archsim.errors import MappingError

            raise MappingError(
                f"dataflow {rep.dataflow!r} is not written as a whole-cascade mapping yet",
                path="--save-mapping",
                expected="a dataflow whose Plan carries its Mapping (fusemax, or --mapping)",
                got=rep.dataflow,
            )
        rep.plan.mapping.to_yaml(args.save_mapping)
    if args.trace:
        from archsim import write_trace

        write_trace(rep.result, args.trace)
    d = rep.to_dict()
    if args.json:
        print(json.dumps(d, indent=2, default=str))  # noqa: T201
        return 0
    print(f"{d['workload']} on {d['arch']} ({d['dataflow']}, {d['engine']} engine)")  # noqa: T201
    print(f"  cycles      {d['cycles']:,}")  # noqa: T201
    print(f"  time        {d['seconds']:.6g} s")  # noqa: T201
    print(f"  energy      {d['energy_j']:.6g} J")  # noqa: T201
    print(f"  DRAM bytes  {d['dram_bytes']:,.0f}")  # noqa: T201
    # the typed fields to_dict() reads (the same values: floats of the same numbers)
    for lvl, b in rep.result.bytes_by_level.items():
        print(f"  bytes {lvl:<10} {float(b):,.0f}")  # noqa: T201
    for unit, u in rep.result.utilization.items():
        print(f"  util  {unit:<10} {100 * float(u):.1f}%")  # noqa: T201
    p = rep.plan.passes
    if p is not None:
        print(
            f"  passes      {p.passes}  buffer {p.buffer_bytes:,.0f} B "  # noqa: T201
            f"({p.buffer_formula})"
        )
    return 0


def _crossover(args: argparse.Namespace) -> int:
    from mappings._crossover import crossover

    if args.lo < 1 or args.hi < 2 * args.lo:
        raise MappingError(
            "bad range",
            path="--from/--to",
            expected="1 <= from, 2*from <= to",
            got=f"{args.lo}..{args.hi}",
        )
    lengths, n = [], args.lo
    while n <= args.hi:
        lengths.append(n)
        n *= 2
    res = crossover(
        args.arch,
        args.a,
        args.b,
        params=_kv(args.set, "--set"),
        length_param=args.length,
        lengths=lengths,
    )
    if args.json:
        print(
            json.dumps(
                {"crossover": res.length, "dataflows": list(res.dataflows), "rows": res.rows()},
                indent=2,
            )
        )
        return 0
    print(f"{args.a} ({res.dataflows[0]}) vs {args.b} ({res.dataflows[1]}) on {args.arch}")
    print(f"{args.length:>8} {args.a + ' s':>14} {args.b + ' s':>14} {'ratio':>8}")
    for r in res.rows():
        print(f"{r['length']:>8} {r['a_s']:>14.4e} {r['b_s']:>14.4e} {r['a_over_b']:>8.3f}")
    if res.length is None:
        print(f"crossover: none in {lengths[0]}..{lengths[-1]}")
    else:
        print(f"crossover: {args.a} is faster from {args.length}={res.length} on")
    return 0


def _map(args: argparse.Namespace) -> int:
    from mappings._api import resolve_arch, resolve_workload
    from mappings._mappers import get_mapper

    arch = resolve_arch(args.arch)
    w = resolve_workload(args.workload, _kv(args.set, "--set"))
    kw: dict[str, object] = {
        "objective": args.objective,
        "top": args.top,
        "seed": args.seed,
        "progress": not args.json,
        "einsum": args.einsum,
    }
    if args.budget is not None:
        kw["budget"] = args.budget
    stats: dict[str, object] = {}
    if args.mapper == "fusion":
        kw["stats"] = stats
    ranked = get_mapper(args.mapper)(w, arch, **kw)
    if args.save and ranked:
        ranked[0].mapping.to_yaml(args.save)
    if args.json:
        print(json.dumps([r.to_dict() for r in ranked], indent=2, default=str))  # noqa: T201
        return 0
    print(f"{args.mapper} mapper, objective {args.objective}: top {len(ranked)}")  # noqa: T201
    if args.mapper == "fusion" and getattr(arch, "kind", None) == "gpu":
        _print_gpu(w, arch, ranked, stats)
        return 0
    if args.mapper == "fusion":
        _print_fusion(w, arch, ranked, stats)
        return 0
    for i, r in enumerate(ranked):
        ev = f"  event {r.simulated_cycles:,}" if r.simulated_cycles is not None else ""
        print(
            f"#{i + 1}  cycles {r.cycles:,.0f}  energy {r.energy_j:.4g} J  "  # noqa: T201
            f"DRAM {r.dram_bytes:,.0f} B{ev}  {r.describe()}"
        )
    return 0


def _print_fusion(w: object, arch: object, ranked: list, stats: dict[str, object]) -> None:
    """Whole-cascade mappings: the search's counts, #1 explained and as YAML, the others by
    how they differ from it."""
    from mappings._explain import differences, explain

    print(  # noqa: T201
        f"searched {stats.get('segments', 0):.0f} segments ({stats.get('skipped', 0):.0f} "
        f"skipped: bound dominated), {stats.get('candidates', 0):.0f} loop nests, "
        f"{stats.get('evaluated', 0):.0f} evaluated, {stats.get('partitions', 0):.0f} "
        "partitions ranked"
    )
    for i, r in enumerate(ranked):
        ev = f"  event {r.simulated_cycles:,}" if r.simulated_cycles is not None else ""
        groups = " | ".join("+".join(g.einsums) for g in r.mapping.groups)
        print(  # noqa: T201
            f"#{i + 1}  cycles {r.cycles:,.0f}  energy {r.energy_j:.4g} J  "
            f"DRAM {r.dram_bytes:,.0f} B{ev}  groups [{groups}]"
        )
        if i == 0:
            for line in explain(w, r.mapping, arch):  # type: ignore[arg-type]
                print("    " + line)  # noqa: T201
            print("    mapping (run it back with --mapping FILE.yaml; --save writes it):")  # noqa: T201
            for line in r.mapping.to_yaml().splitlines():
                print("      " + line)  # noqa: T201
        else:
            print("    vs #1: " + differences(r.mapping, ranked[0].mapping))  # noqa: T201


def _print_gpu(w: object, arch: object, ranked: list, stats: dict[str, object]) -> None:
    """GPU mappings: the search's counts, #1 explained and as YAML, the others in a line."""
    from mappings._gpu.search import cta_label, explain_gpu, gpu_differences

    print(  # noqa: T201
        f"searched {stats.get('candidates', 0):.0f} mappings in {stats.get('seconds', 0):.2f} s:"
        f" {stats.get('evaluated', 0):.0f} evaluated, {stats.get('pruned', 0):.0f} did not fit"
        f" a CTA, {stats.get('refused', 0):.0f} refused by their family,"
        f" {stats.get('duplicates', 0):.0f} duplicates"
    )
    reasons = stats.get("refused_reasons")
    for why in reasons if isinstance(reasons, list) else []:
        print(f"  refused: {why}")  # noqa: T201
    recipes = stats.get("recipes")
    if isinstance(recipes, dict) and recipes:
        shown = ", ".join(
            f"{k} {v:,.0f}" if isinstance(v, (int, float)) else f"{k} ({v})"
            for k, v in recipes.items()
        )
        print(f"  recipes in the space (cycles): {shown}")  # noqa: T201
    for i, r in enumerate(ranked):
        ev = f"  event {r.simulated_cycles:,}" if r.simulated_cycles is not None else ""
        print(  # noqa: T201
            f"#{i + 1}  {cta_label(w, r.mapping)}  cycles {r.cycles:,.0f}  energy "  # type: ignore[arg-type]
            f"{r.energy_j:.4g} J  DRAM {r.dram_bytes:,.0f} B{ev}"
        )
        if i > 0:
            print("    vs #1: " + gpu_differences(w, r.mapping, ranked[0].mapping))  # type: ignore[arg-type]  # noqa: T201
        if i == 0:
            for line in explain_gpu(w, r.mapping, arch):  # type: ignore[arg-type]
                print("    " + line)  # noqa: T201
            print("    mapping (run it back with --mapping FILE.yaml; --save writes it):")  # noqa: T201
            for line in r.mapping.to_yaml().splitlines():
                print("      " + line)  # noqa: T201
