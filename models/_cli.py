"""``archsim model``: one prefill or decode step of a whole model, per op, on 1..N devices."""

from __future__ import annotations

import argparse
import json

__all__ = ["register"]

_EPILOG = """\
examples:
  archsim model llama3-8b --arch h100 --phase decode --set B=1 --set S=4096
  archsim model llama3-70b --arch h100 --tp 8 --phase decode --set B=1 --set S=4096 \\
      --trace llama70b_tp8.json
  archsim model deepseek-v3 --arch h200 --tp 8 --phase prefill --set B=1 --set S=2048
  archsim model models/configs/llama3-8b.config.json --arch aim_pim --phase decode --set S=1024
  archsim model llama3-70b --arch h100 --system models/systems/dgx-h100.yaml --phase decode
  archsim model --list

shapes (--set):
  B   sequences in the batch (default 1)
  S   prefill: prompt tokens per sequence; decode: tokens in each sequence's KV cache
      (default 2048)

The table: count = occurrences per layer (or stage), x = stage repetitions (layers),
time/op = one occurrence on one device, total = count x x x time/op (the totals sum these),
energy = all occurrences on all devices, bytes/op = DRAM bytes of one occurrence, bound =
compute | memory | latency (neither above 25% busy) | comm. A trace (--trace) opens in
https://ui.perfetto.dev: one process per device, a compute and a link thread each.
"""


def _fmt_s(s: float) -> str:
    if s >= 1:
        return f"{s:.3f} s"
    if s >= 1e-3:
        return f"{s * 1e3:.3f} ms"
    return f"{s * 1e6:.2f} us"


def _fmt_b(b: float) -> str:
    for f, p in ((1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "k")):
        if b >= f:
            return f"{b / f:.3g} {p}B"
    return f"{b:.0f} B"


def _shapes(items: list[str] | None) -> tuple[int, int]:
    from models._spec import ModelError
    from workloads.library import parse_set_options

    given = parse_set_options(items or [])
    unknown = sorted(set(given) - {"B", "S"})
    if unknown:
        raise ModelError(
            "unknown --set key", path=f"--set {unknown[0]}", expected="B or S", got=unknown[0]
        )
    out = []
    for key, default in (("B", 1), ("S", 2048)):
        v = given.get(key, default)
        if isinstance(v, bool) or not isinstance(v, int) or v < 1:
            raise ModelError("bad value", path=f"--set {key}", expected="a positive integer", got=v)
        out.append(v)
    return out[0], out[1]


def _refusals(note: str, width: int = 150) -> list[str]:
    """The per-dataflow refusals of an ``auto`` error, one each, shortened to ``width``."""
    _, sep, rest = note.partition("refusals: ")
    parts = rest.rsplit(", got 'auto on", 1)[0].split(" | ") if sep else [note]
    out = []
    for p in parts:
        p = p.replace("workload.cascade: ", "")
        out.append(p if len(p) <= width else p[: width - 3] + "...")
    return out


def _list() -> int:
    from models import list_model_names, list_systems
    from models._spec import HF_MODEL_TYPES

    print("model presets: " + ", ".join(list_model_names()))
    print("config.json model_type: " + ", ".join(sorted(HF_MODEL_TYPES)))
    print("systems (--system): " + ", ".join(list_systems()))
    return 0


def _run(args: argparse.Namespace) -> int:
    from models import build_graph, default_system, load_model, load_system, simulate_graph
    from models._spec import ModelError

    if args.list:
        return _list()
    if not args.model:
        raise ModelError(
            "no model given", path="MODEL", expected="a preset name or a config.json", got=None
        )
    batch, seq = _shapes(args.set)
    system = load_system(args.system) if args.system else None
    arch = args.arch or (system.device if system else None)
    if arch is None:
        raise ModelError(
            "no architecture given",
            path="--arch",
            expected="a preset name or YAML file (or --system)",
            got=None,
        )
    tp = args.tp if args.tp is not None else (system.count if system else 1)
    if tp > 1 and system is None:
        system = default_system(arch, tp)
    spec = load_model(args.model)
    graph = build_graph(spec, phase=args.phase, batch=batch, seq=seq, tp=tp)
    rep = simulate_graph(graph, arch, system=system, engine=args.engine)
    if args.trace:
        rep.write_trace(args.trace)
    if args.json:
        print(json.dumps(rep.to_dict(), indent=1, default=float))
        return 0
    _print(rep, args.trace)
    return 0


def _print(rep, trace: str | None) -> None:  # noqa: ANN001 - models.ModelReport
    g = rep.graph
    where = f"{g.tp} x {rep.arch}" if g.tp > 1 else rep.arch
    line = f"{g.model.name} {g.phase} on {where}: B={g.batch} S={g.seq} ({g.tokens} new tokens)"
    if rep.system is not None:
        s = rep.system
        line += (
            f"; {s.name}: {s.topology}, {s.algorithm} collectives, "
            f"{s.link_bw_bytes_per_s / 1e9:g} GB/s per direction, {s.latency_s * 1e6:g} us/step"
        )
    print(line + f"; engine {rep.engine}")
    head = (
        f"{'stage':<12}{'op':<22}{'count':>5}{'x':>5}{'time/op':>12}{'total':>12}{'share':>7}"
        f"{'energy':>11}{'bytes/op':>10}  {'bound':<9}dataflow / shape"
    )
    print(head)
    print("-" * len(head))
    lat = rep.latency_s
    for r in rep.table():
        if r.bound == "unmapped":
            print(
                f"{r.stage:<12}{r.op:<22}{r.count:>5}{r.repeat:>5}{'-':>12}{'-':>12}{'-':>7}"
                f"{'-':>11}{'-':>10}  {'UNMAPPED':<9}{r.shape}"
            )
            continue
        share = r.total_s / lat if lat else float("nan")
        energy = r.energy_j * r.count * r.repeat * g.tp
        print(
            f"{r.stage:<12}{r.op:<22}{r.count:>5}{r.repeat:>5}{_fmt_s(r.seconds):>12}"
            f"{_fmt_s(r.total_s):>12}{share:>7.1%}{energy:>9.3g} J{_fmt_b(r.dram_bytes):>10}  "
            f"{r.bound:<9}{r.dataflow}: {r.shape}"
        )
    print("-" * len(head))
    devices = f" ({g.tp} devices)" if g.tp > 1 else ""
    print(
        f"total: latency {_fmt_s(lat)} | {rep.tokens_per_s:.4g} tokens/s | "
        f"{rep.j_per_token:.4g} J/token | energy {rep.energy_j:.4g} J{devices}"
    )
    if g.tp > 1:
        print(
            f"communication: {_fmt_s(rep.comm_s)} ({rep.comm_s / lat:.1%} of the step), all "
            "exposed: every op after a collective reads its result, every op before it "
            "produces its input"
        )
    m = g.model
    print(
        f"weights {_fmt_b(m.param_count() * m.elt_bytes)} ({m.param_count() / 1e9:.3g} B params), "
        f"KV cache {_fmt_b(m.kv_cache_bytes(g.batch, g.seq))} (B={g.batch}, S={g.seq}); "
        f"simulated {rep.simulations} op shapes in {rep.wall_s:.2f} s"
    )
    for note in rep.notes:
        print(f"note: {note}")
    if rep.unmapped:
        print(
            f"INCOMPLETE: {len(rep.table_unmapped())} ops have no dataflow on {rep.arch}; the "
            "totals leave them out (full reasons: --json):"
        )
        for r in rep.table_unmapped():
            print(f"  {r.stage} / {r.op} {r.shape}: no dataflow maps it; refusals:")
            for why in _refusals(r.note):
                print(f"      {why}")
    if trace:
        print(f"trace: {trace} (open in https://ui.perfetto.dev)")


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add ``model`` to the archsim CLI."""
    p = subparsers.add_parser(
        "model",
        help="one prefill/decode step of a whole model: per-op table, totals, TP, trace",
        description="Simulate one prefill or decode step of a whole model (a preset or a "
        "Hugging Face config.json) on one device or N tensor-parallel devices: every op of "
        "every layer is a library cascade simulated with its auto dataflow (each distinct "
        "shape once), collectives are timed on the system's links.",
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("model", nargs="?", help="model preset (--list) or a config.json path")
    p.add_argument("--arch", help="device: architecture preset or YAML (default: the system's)")
    p.add_argument(
        "--tp", type=int, help="tensor-parallel devices (default: the system's count, else 1)"
    )
    p.add_argument("--system", help="system YAML or bundled name: devices, links, topology")
    p.add_argument("--phase", choices=("prefill", "decode"), default="decode")
    p.add_argument("--set", action="append", metavar="K=V", help="B=batch, S=tokens (repeatable)")
    p.add_argument("--engine", choices=("event", "analytic"), default="event")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.add_argument("--trace", metavar="FILE.json", help="write a Perfetto trace of the step")
    p.add_argument("--list", action="store_true", help="list model presets and systems")
    p.set_defaults(func=_run)
