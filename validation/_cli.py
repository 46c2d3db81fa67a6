"""``archsim validate`` and ``archsim compare`` (registered by ``archsim.cli``)."""

from __future__ import annotations

import argparse

__all__ = ["register"]


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``validate`` and ``compare`` sub-commands."""
    from archsim.cli._help import examples, sections

    p = subparsers.add_parser(
        "validate",
        help="predict every record of a measurement file and report the errors",
        description="Predict each record of a JSON Lines measurement file (one measured GPU "
        "kernel per line, fields below; validation/data/README.md describes them) with the GPU "
        "model and print measured vs predicted, MAPE, max error and Spearman rank correlation. "
        "Records the model cannot take (malformed, unknown kind or dtype, a shape with no kernel) "
        "are listed under 'skipped records' with their line and reason, and the rest are "
        "validated. Exit code 0 when at least one record was validated; 2 when the file cannot "
        "be read or no record could be validated.",
        epilog=sections(
            examples(
                "archsim validate validation/data/h100_check.jsonl --arch h100 --quiet",
                "archsim validate validation/data/h100_check.jsonl --arch h100 --plot check.png",
                "archsim validate validation/data/h200_check.jsonl --arch h200 --json pred.jsonl",
                "archsim validate validation/data/h100_check.jsonl --engine analytic --quiet",
                "archsim validate validation/data/h100_check.jsonl --jobs 1",
            ),
            _record_table,
        ),
    )
    p.add_argument("file", help="measurement JSON Lines file")
    p.add_argument("--arch", default="h100", help="GPU preset or arch YAML (default h100)")
    p.add_argument(
        "--json", dest="json_out", metavar="OUT", help="write records with pred_* fields"
    )
    p.add_argument("--plot", metavar="OUT.png", help="predicted vs measured, log-log")
    p.add_argument("--quiet", action="store_true", help="summary only, no per-record table")
    p.add_argument(
        "--engine",
        choices=("event", "analytic"),
        default="event",
        help="event (default): the record's kernels lowered to a tile program and run by the "
        "event-driven engine (archsim.simulate); analytic: the same program bounded by "
        "archsim.estimate (fast)",
    )
    p.add_argument(
        "--jobs",
        type=_positive_int,
        default=None,
        metavar="N",
        help="records predicted at once, each in its own process (default: the CPUs this "
        "process may use; 1: in this process). The report is the same for any N",
    )
    p.set_defaults(func=_validate)

    c = subparsers.add_parser(
        "compare",
        help="measured kernel trace vs simulated kernels, merged Perfetto trace",
        description="Read a PyTorch profiler Chrome trace (and optionally an ncu CSV), match its "
        "GPU kernels to simulated ones, print them side by side, write one trace "
        "with 'measured' and 'simulated' tracks.",
        epilog=examples(
            "archsim compare --torch-trace validation/data/traces/h100_attention_step.trace.json "
            "--shapes validation/hints/h100_attention_step.shapes.json --arch h100 "
            "--out merged.json",
            note="Record the trace with torch.profiler.profile(record_shapes=True) so that every "
            "op carries its input shapes; --shapes supplies them for a trace recorded without.",
        ),
    )
    c.add_argument("--torch-trace", required=True, metavar="TRACE.json", help="profiler trace")
    c.add_argument("--ncu", metavar="CSV", help="ncu --csv export for DRAM bytes per kernel")
    c.add_argument("--arch", default="h100", help="GPU preset (default h100)")
    c.add_argument(
        "--shapes",
        metavar="HINTS.json",
        help="shapes for traces without record_shapes: "
        '[{"op": "aten::mm", "kind": "gemm", "M": ...}]',
    )
    c.add_argument("--out", metavar="MERGED.json", help="merged Perfetto trace to write")
    c.set_defaults(func=_compare)


def _positive_int(text: str) -> int:
    """``--jobs``: an integer >= 1 (argparse reports the error with the option's name)."""
    try:
        n = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer >= 1, got {text!r}") from None
    if n < 1:
        raise argparse.ArgumentTypeError(f"expected an integer >= 1, got {n}")
    return n


def _record_table() -> str:
    """Record kinds of a measurement file and the fields each needs (from the reader)."""
    from validation._records import KIND_FIELDS

    width = max(map(len, KIND_FIELDS))
    rows = "\n".join(f"  {k:<{width}}  {', '.join(v)}" for k, v in KIND_FIELDS.items())
    return f"record kinds (field kind) and the fields each needs besides ms:\n{rows}"


def _model(arch: str):  # noqa: ANN202 - GpuModel
    """The GPU model of a preset name or an architecture YAML path.

    A name the GPU table does not know is loaded with :func:`archsim.load_arch`, so a
    broken YAML file reports its own spec error (field, expected, got), not "unknown GPU".
    """
    from archsim import load_arch
    from archsim.errors import ArchSpecError
    from archsim.gpu import gpu_model

    try:
        return gpu_model(arch)
    except ArchSpecError:
        load_arch(arch)  # raises the file's own error (YAML, field, missing file)
        raise


def _validate(args: argparse.Namespace) -> int:
    """Exit status: 0 when at least one record was validated (skipped records are listed in
    a section of the output and in ``--json``); 2 with ``error:`` when the file cannot be
    read or no record of it could be validated."""
    from archsim.cli._paths import check_output_file
    from archsim.errors import ValidationDataError
    from validation._report import default_jobs, validate_file

    for out in (args.json_out, args.plot):  # before the run, not after it
        if out:
            check_output_file(out)
    jobs = args.jobs if args.jobs is not None else default_jobs()
    report = validate_file(
        args.file, args.arch, model=_model(args.arch), engine=args.engine, jobs=jobs
    )
    if report.frame.empty:
        reasons = "; ".join(s.text() for s in report.skipped[:3]) or "the file has no records"
        more = f" (and {len(report.skipped) - 3} more)" if len(report.skipped) > 3 else ""
        raise ValidationDataError(
            "no record could be validated",
            path=args.file,
            expected="at least one measured record the model covers",
            got=reasons + more,
        )
    if not args.quiet:
        print(report.table())  # noqa: T201
        print()  # noqa: T201
    if report.skipped:
        print(report.skipped_text(limit=5 if args.quiet else 20))  # noqa: T201
        print()  # noqa: T201
    print(report.summary_text())  # noqa: T201
    if args.json_out:
        report.write_json(args.json_out)
        print(f"wrote {args.json_out}")  # noqa: T201
    if args.plot:
        report.plot(args.plot)
        print(f"wrote {args.plot}")  # noqa: T201
    return 0


def _compare(args: argparse.Namespace) -> int:
    from validation._compare import compare_trace, load_shape_hints, write_merged_trace
    from validation._ncu import read_ncu_csv
    from validation._torch_trace import read_torch_trace

    trace = read_torch_trace(args.torch_trace)
    ncu = read_ncu_csv(args.ncu) if args.ncu else []
    hints = load_shape_hints(args.shapes) if args.shapes else None
    cmp = compare_trace(trace, _model(args.arch), ncu=ncu, shapes=hints, arch=args.arch)
    print(cmp.table())  # noqa: T201
    print()  # noqa: T201
    if cmp.unknown():
        print(cmp.unknown_text())  # noqa: T201
        print()  # noqa: T201
    print(cmp.summary_text())  # noqa: T201
    if args.out:
        write_merged_trace(cmp, args.out)
        print(f"wrote {args.out}")  # noqa: T201
    return 0
