"""The GPU model against published H100 attention throughput it was never fitted on.

``python -m validation.published [--engine event|analytic] [--csv OUT]``

The FlashAttention-3 paper (arXiv 2407.08608, Figs. 5-7) times FlashAttention-2, cuDNN and
FlashAttention-3 forward on an H100 80GB SXM5 in fp16 at the FA benchmark setting (hidden
2048: ``nheads = 2048 / head_dim``; ``batch x seqlen = 16k``), head dims 64 / 128 / 256,
causal and not, seqlen 512 to 16k. ``validation/data/published/fa3_h100_fwd.csv`` holds
those points (a machine transcription of the figures' bar labels, medium confidence, the
causal flag inferred from magnitudes: its README section). Each point is simulated as the
library ``mha`` cascade on ``h100``: FlashAttention-2 with the ``flash2`` recipe, cuDNN and
FlashAttention-3 with ``flash3`` (the Hopper warp-specialized family, its efficiency fitted
on cuDNN records), and compared in the papers' FLOPs convention (``4 B S^2 H D``, halved when
causal). Nothing here was used to fit anything.
"""

from __future__ import annotations

import argparse
import csv
import math
from pathlib import Path

import pandas as pd

__all__ = ["POINTS", "DATAFLOW", "compare_published", "main"]

POINTS = Path(__file__).resolve().parent / "data" / "published" / "fa3_h100_fwd.csv"
#: Published implementation -> the dataflow recipe that models it.
DATAFLOW = {"FlashAttention-2": "flash2", "cuDNN": "flash3", "FlashAttention-3": "flash3"}


def compare_published(path: str | Path = POINTS, engine: str = "event") -> pd.DataFrame:
    """One row per published point: ``impl, head_dim, causal, seqlen, batch, nheads,
    published`` and ``model`` (TFLOP/s), ``err_pct`` (model over published, %)."""
    from mappings import simulate_workload

    rows = []
    with open(path, newline="", encoding="utf-8") as fh:
        for r in csv.DictReader(fh):
            flow = DATAFLOW.get(r["impl"])
            if flow is None or r["dtype"] != "fp16":
                continue
            try:
                published = float(r["tflops_per_s"])
            except ValueError:  # "OOM"
                continue
            b, h, s, d = (int(r[k]) for k in ("batch", "nheads", "seqlen", "head_dim"))
            causal = r["causal"] == "true"
            rep = simulate_workload(
                "h100",
                "mha",
                params={"B": b, "H": h, "S": s, "D": d, "causal": causal},
                dataflow=flow,
                engine=engine,  # type: ignore[arg-type]
            )
            flops = 4.0 * b * s * s * h * d / (2.0 if causal else 1.0)
            model = flops / rep.result.seconds / 1e12
            rows.append(
                {
                    "impl": r["impl"],
                    "head_dim": d,
                    "causal": causal,
                    "seqlen": s,
                    "batch": b,
                    "nheads": h,
                    "published": published,
                    "model": model,
                    "err_pct": 100.0 * (model / published - 1.0),
                }
            )
    return pd.DataFrame(rows)


def summary(frame: pd.DataFrame) -> pd.DataFrame:
    """MAPE and signed mean error (%) per implementation and causal flag, and overall."""
    out = []
    groups = [("all", "", frame)] + [
        (str(i), "causal" if c else "non-causal", g)
        for (i, c), g in frame.groupby(["impl", "causal"], sort=True)
    ]
    for impl, causal, g in groups:
        e = g["err_pct"]
        out.append(
            {
                "impl": impl,
                "causal": causal,
                "n": len(g),
                "mape": float(e.abs().mean()) if len(g) else math.nan,
                "mean_err": float(e.mean()) if len(g) else math.nan,
                "max_abs": float(e.abs().max()) if len(g) else math.nan,
            }
        )
    return pd.DataFrame(out)


def main(argv: list[str] | None = None) -> int:
    """Print every point and the summary; ``--csv`` writes the points."""
    ap = argparse.ArgumentParser(prog="python -m validation.published", description=__doc__)
    ap.add_argument("--engine", choices=("event", "analytic"), default="event")
    ap.add_argument("--csv", metavar="OUT", help="write the per-point table")
    args = ap.parse_args(argv)
    frame = compare_published(engine=args.engine)
    fmt = {"float_format": lambda v: f"{v:.1f}", "index": False}
    with pd.option_context("display.width", 160, "display.max_rows", 200):
        print(frame.to_string(**fmt))
        print()
        print(summary(frame).to_string(**fmt))
    if args.csv:
        frame.to_csv(args.csv, index=False)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
