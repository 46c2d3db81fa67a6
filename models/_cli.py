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
  B       sequences in the batch (default 1)
  S       prefill: prompt tokens per sequence; decode: tokens in each sequence's KV cache
          (default 2048)
  page    paged KV cache page size, tokens (decode, generate; = --page-size; 0 = contiguous)
  prompt  generate: prompt tokens (default S)
  tokens  generate: output tokens per sequence (default 128)

parallelism: --tp N (Megatron), --cp N (context: ring attention or K/V all-gather in prefill,
a sharded cache in decode), --ep N (MoE experts over devices, all-to-all dispatch/combine;
with --tp / --cp: attention TP / CP in ep groups, the routed experts over all devices);
devices = tp x cp x ep.

  archsim model llama3-8b --arch h100 --phase decode --set B=8 --set S=4096 --page-size 16
  archsim model llama3-8b --arch h100 --phase decode --set B=8 --set S=4100 \
      --page-size 0,1,16,256,1024
  archsim model llama3-70b --arch h100 --tp 8 --phase generate --set prompt=2048 --set tokens=256
  archsim model llama3-8b --arch h100 --cp 8 --phase prefill --set S=131072 --trace ring.json
  archsim model deepseek-v3 --arch h200 --ep 8 --phase decode --set B=64 --set S=4096
  archsim model deepseek-v3 --arch h200 --tp 2 --ep 4 --phase decode --set B=64 --set S=4096

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
    if 0 < s < 1e-7:
        return f"{s * 1e9:.2f} ns"
    return f"{s * 1e6:.2f} us"


def _fmt_b(b: float) -> str:
    for f, p in ((1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "k")):
        if b >= f:
            return f"{b / f:.3g} {p}B"
    return f"{b:.0f} B"


_SET_KEYS: dict[str, int | None] = {"B": 1, "S": 2048, "page": 0, "prompt": None, "tokens": None}


def _shapes(items: list[str] | None) -> dict[str, int | None]:
    """The ``--set`` values (``B, S, page, prompt, tokens``), defaults filled in (None:
    ``prompt`` and ``tokens`` not given)."""
    from models._spec import ModelError
    from workloads.library import parse_set_options

    given = parse_set_options(items or [])
    unknown = sorted(set(given) - set(_SET_KEYS))
    if unknown:
        raise ModelError(
            "unknown --set key",
            path=f"--set {unknown[0]}",
            expected=f"one of {', '.join(_SET_KEYS)}",
            got=unknown[0],
        )
    out: dict[str, int | None] = {}
    for key, default in _SET_KEYS.items():
        v = given.get(key, default)
        low = 0 if key == "page" else 1
        if v is None:
            out[key] = None
            continue
        if isinstance(v, bool) or not isinstance(v, int) or v < low:
            what = "a positive integer" if low else "an integer >= 0"
            raise ModelError("bad value", path=f"--set {key}", expected=what, got=v)
        out[key] = v
    return out


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
    shapes = _shapes(args.set)
    batch, seq = int(shapes["B"] or 1), int(shapes["S"] or 1)
    pages = _page_sizes(args.page_size) if args.page_size is not None else [shapes["page"] or 0]
    page = pages[0]
    system = load_system(args.system) if args.system else None
    arch = args.arch or (system.device if system else None)
    if arch is None:
        raise ModelError(
            "no architecture given",
            path="--arch",
            expected="a preset name or YAML file (or --system)",
            got=None,
        )
    cp, ep = args.cp, args.ep
    for flag, v in (("--tp", args.tp), ("--cp", cp), ("--ep", ep)):
        if v is not None and v < 1:
            raise ModelError("bad value", path=flag, expected="a positive integer", got=v)
    if args.tp is not None:
        tp = args.tp
    else:  # the system's devices, less those cp and ep take
        tp = max(1, system.count // (cp * ep)) if system else 1
    if tp * cp * ep > 1 and system is None:
        system = default_system(arch, tp * cp * ep)
    spec = load_model(args.model)
    if args.phase == "generate":
        from models._generate import simulate_generation

        gen = simulate_generation(
            spec,
            arch,
            batch=batch,
            prompt=seq if shapes["prompt"] is None else shapes["prompt"],
            tokens=128 if shapes["tokens"] is None else shapes["tokens"],
            tp=tp,
            system=system,
            engine=args.engine,
            page=page,
            cp=cp,
            ep=ep,
            cp_mode=args.cp_mode,
        )
        if args.trace:
            gen.write_trace(args.trace)
        if args.json:
            print(json.dumps(gen.to_dict(), indent=1, default=float))
            return 0
        _print_generation(gen, args.trace)
        return 0
    if len(pages) > 1:
        if args.phase != "decode" or args.json or args.trace:
            raise ModelError(
                "a list of page sizes compares decode steps (a table; no --json or --trace)",
                path="--page-size",
                expected="one page size, or --phase decode without --json/--trace",
                got=args.page_size,
            )
        _page_sweep(spec, arch, system, args, batch, seq, tp, pages)
        return 0
    for key in ("prompt", "tokens"):
        if shapes[key] is not None:
            raise ModelError(
                f"--set {key} is for --phase generate",
                path=f"--set {key}",
                expected="--phase generate (or S for one step)",
                got=args.phase,
            )
    graph = build_graph(
        spec,
        phase=args.phase,
        batch=batch,
        seq=seq,
        tp=tp,
        page=page,
        cp=cp,
        ep=ep,
        cp_mode=args.cp_mode,
    )
    rep = simulate_graph(graph, arch, system=system, engine=args.engine)
    if args.trace:
        rep.write_trace(args.trace)
    if args.json:
        print(json.dumps(rep.to_dict(), indent=1, default=float))
        return 0
    _print(rep, args.trace)
    return 0


def _page_sizes(text: str) -> list[int]:
    """``--page-size`` values: one integer or a comma-separated list (0 = contiguous)."""
    from models._spec import ModelError

    out = []
    for part in text.split(","):
        try:
            v = int(part)
        except ValueError:
            v = -1
        if v < 0:
            raise ModelError(
                "bad value",
                path="--page-size",
                expected="an integer >= 0 or a comma-separated list of them",
                got=text,
            )
        out.append(v)
    return out


def _page_sweep(spec, arch, system, args, batch, seq, tp, pages) -> None:  # noqa: ANN001 - CLI values
    """One decode step per page size: the attention, the block table and the step."""
    from models import build_graph, simulate_graph
    from models._simulate import kv_cache_bytes

    print(
        f"{spec.name} decode on {arch}: B={batch} S={seq}, one step per page size "
        f"(0 = contiguous); engine {args.engine}"
    )
    head = (
        f"{'page':>6}{'keys read':>11}{'kernel':>16}{'attention':>12}{'block table':>13}"
        f"{'step':>12}{'vs contiguous':>15}{'KV cache':>10}"
    )
    print(head)
    print("-" * len(head))
    base = None
    for page in pages:
        g = build_graph(
            spec,
            phase="decode",
            batch=batch,
            seq=seq,
            tp=tp,
            page=page,
            cp=args.cp,
            ep=args.ep,
        )
        rep = simulate_graph(g, arch, system=system, engine=args.engine)
        rows = {r.op: r for r in rep.table() if r.stage != "dense layer"}
        att = next(r for r in rows.values() if r.op.startswith(("paged_attn", "attention")))
        table = rows.get("block_table")
        keys = next(
            (int(x.split("=")[1]) for x in att.shape.split(", ") if x.startswith("Skv=")), seq
        )
        if page == 0 and base is None:
            base = rep.latency_s
        rel = f"{rep.latency_s / base - 1:+.2%}" if base else "-"
        print(
            f"{page:>6}{keys:>11}{att.op:>16}{_fmt_s(att.seconds):>12}"
            f"{_fmt_s(table.seconds) if table else '-':>13}{_fmt_s(rep.latency_s):>12}{rel:>15}"
            f"{_fmt_b(kv_cache_bytes(g)):>10}"
        )
    print(
        "attention and block table: per layer; the page size moves the time through the padded "
        "last page, the block table and vLLM's v1/v2 choice (per-page kernel overheads are not "
        "modelled)"
    )


def _print_generation(gen, trace: str | None) -> None:  # noqa: ANN001 - GenerationReport
    g = gen.prefill.graph
    where = f"{g.devices} x {gen.prefill.arch}" if g.devices > 1 else gen.prefill.arch
    print(
        f"{g.model.name} generation on {where}: B={gen.batch}, prompt {gen.prompt} tokens, "
        f"{gen.tokens} output tokens per sequence; engine {gen.prefill.engine}"
    )
    print(f"prefill (time to first token): {_fmt_s(gen.ttft_s)}, {gen.prefill.energy_j:.4g} J")
    if gen.last_step is not None and gen.first_step is not None:
        f, la = gen.first_step, gen.last_step
        how = (
            "exact per-page sum"
            if gen.method == "pages"
            else f"piecewise-linear sum (half the samples: {gen.integration_check:.2%} apart)"
        )
        print(
            f"decode: {gen.tokens - 1} steps, context {gen.prompt + 1} -> "
            f"{gen.prompt + gen.tokens - 1}: step "
            f"{_fmt_s(f.latency_s)} -> {_fmt_s(la.latency_s)}; {_fmt_s(gen.decode_s)} in all "
            f"({len(gen.samples)} contexts simulated, {how})"
        )
        tpot = f"time per output token {_fmt_s(gen.tpot_s)} | "
    else:
        tpot = ""
    print(
        f"total: {_fmt_s(gen.total_s)} | {tpot}{gen.tokens_per_s:.4g} output tokens/s | "
        f"{gen.j_per_token:.4g} J/token | energy {gen.energy_j:.4g} J"
    )
    notes = dict.fromkeys(
        [*gen.prefill.notes, *(gen.last_step.notes if gen.last_step is not None else ())]
    )
    for note in notes:
        print(f"note: {note}")
    if not gen.complete:
        print(
            f"INCOMPLETE: {len(gen.unmapped)} ops have no dataflow on {gen.prefill.arch}; the "
            "totals leave them out (the reasons: --phase prefill / decode, or --json):"
        )
        for phase, stage, op in gen.unmapped:
            print(f"  {phase}: {stage} / {op}")
    if trace:
        print(f"trace: {trace} (prefill + last decode step; open in https://ui.perfetto.dev)")


def _print(rep, trace: str | None) -> None:  # noqa: ANN001 - models.ModelReport
    g = rep.graph
    where = f"{g.devices} x {rep.arch}" if g.devices > 1 else rep.arch
    split = ", ".join(f"{k}={v}" for k, v in (("tp", g.tp), ("cp", g.cp), ("ep", g.ep)) if v > 1)
    if split:
        mode = f", {g.cp_mode} attention" if g.cp > 1 and g.phase == "prefill" else ""
        where += f" ({split}{mode})"
    line = f"{g.model.name} {g.phase} on {where}: B={g.batch} S={g.seq} ({g.tokens} new tokens)"
    if g.page:
        line += f"; paged KV cache, {g.page}-token pages"
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
        energy = r.energy_j * r.count * r.repeat * g.devices
        hidden = f" (+{_fmt_s(r.hidden_s)} hidden)" if r.hidden_s else ""
        print(
            f"{r.stage:<12}{r.op:<22}{r.count:>5}{r.repeat:>5}{_fmt_s(r.seconds):>12}"
            f"{_fmt_s(r.total_s):>12}{share:>7.1%}{energy:>9.3g} J{_fmt_b(r.dram_bytes):>10}  "
            f"{r.bound:<9}{r.dataflow}: {r.shape}{hidden}"
        )
    print("-" * len(head))
    devices = f" ({g.devices} devices)" if g.devices > 1 else ""
    print(
        f"total: latency {_fmt_s(lat)} | {rep.tokens_per_s:.4g} tokens/s | "
        f"{rep.j_per_token:.4g} J/token | energy {rep.energy_j:.4g} J{devices}"
        + (f" | {rep.kernels} GPU kernels per device" if rep.kernels else "")
    )
    if g.devices > 1:
        ring = " (a ring's link time hidden under its block computes is not counted)"
        hidden = sum(r.hidden_s * r.count * r.repeat for r in rep.rows)
        under = (
            f"; {_fmt_s(hidden)} more ran under compute that neither feeds nor reads it"
            if hidden
            else ""
        )
        print(
            f"communication: {_fmt_s(rep.comm_s)} ({rep.comm_s / lat:.1%} of the step) exposed: "
            "every op after a collective reads its result, every op before it produces its "
            f"input{ring if any(r.spans for r in rep.rows) else ''}{under}"
        )
    for r in rep.table():  # how rings and all-to-alls were timed
        if r.dataflow.startswith("ring /") or r.dataflow == "pairwise":
            print(f"{r.stage} / {r.op}: {r.note}")
    m = g.model
    from models._simulate import kv_cache_bytes

    paged = f", {g.page}-token pages" if g.page else ""
    print(
        f"weights {_fmt_b(m.param_count() * m.elt_bytes)} ({m.param_count() / 1e9:.3g} B params), "
        f"KV cache {_fmt_b(kv_cache_bytes(g))} (B={g.batch}, S={g.seq}{paged}); "
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
    p.add_argument(
        "--cp", type=int, default=1, help="context-parallel devices (attention over the sequence)"
    )
    p.add_argument(
        "--cp-mode",
        choices=("ring", "all_gather"),
        default="ring",
        help="prefill attention under --cp: ring (K/V blocks passed, overlapped) or all_gather",
    )
    p.add_argument("--ep", type=int, default=1, help="expert-parallel devices (MoE models)")
    p.add_argument(
        "--page-size",
        metavar="TOKENS",
        help="paged KV cache (decode): tokens per page (same as --set page=N); a list "
        "(0,16,256; 0 = contiguous) compares decode steps in one table",
    )
    p.add_argument("--system", help="system YAML or bundled name: devices, links, topology")
    p.add_argument("--phase", choices=("prefill", "decode", "generate"), default="decode")
    p.add_argument(
        "--set",
        action="append",
        metavar="K=V",
        help="B=batch, S=tokens, page=N, prompt=P, tokens=T (repeatable)",
    )
    p.add_argument("--engine", choices=("event", "analytic"), default="event")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.add_argument(
        "--trace",
        metavar="FILE.json",
        help="write a Perfetto trace of the step (generate: the prefill and the last step)",
    )
    p.add_argument("--list", action="store_true", help="list model presets and systems")
    p.set_defaults(func=_run)
