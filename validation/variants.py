"""A user's sliding-window cascade against measured sliding-window kernels.

``python -m validation.variants validation/data/h200_sliding_window.jsonl [--engine event]``

Each ``sliding_window`` record of :mod:`validation.harness.window` (measured on a GPU) is
simulated from the cascade file a user would write, ``examples/cascades/sliding_window.ein``
(``--set L=S --set W=W --set C=D --set A=H --set N=B``), on the record's GPU with the
dataflow of the kernel that ran:

==============  ===========================  ==================================================
impl            dataflow                     cascade
==============  ===========================  ==================================================
``flex``        ``block_sparse`` (flex)      the window file (blocks skipped by its condition);
                                             full non-causal (``block_mask=None``): the
                                             library ``block_sparse`` cascade at density 1
``flash_attn``  ``flash2``                   the window file; full: library ``mha``
``sdpa_flash``  ``flash2``                   the window file at ``W = S`` (causal); full: ``mha``
==============  ===========================  ==================================================

It prints measured vs simulated time per record (``ms``: the op, CUDA events, cold L2;
``kernel_us``: the kernel alone, profiler), the MAPE per implementation, and the physics
claim: per ``(impl, B, S)`` the ratio ``time(W) / time(causal)`` measured and simulated.

``--proxy validation/data/h200_check.jsonl`` is a stand-in while no window kernel has been
measured: the same FlexAttention kernel measured with random 128 x 128 block masks (kind
``flex_block_sparse``, 5 densities per shape) is a straight line in kept blocks per batch x
head (fit residual < 1%); read at the window's kept blocks (:func:`window_blocks`, as
``create_block_mask`` keeps them) it gives what FlexAttention costs for that many blocks.
It is not a window measurement: random masks keep whole blocks only (no ``mask_mod`` per
score) and scatter them (less K/V reuse in L2), and points below the fewest measured blocks
are extrapolated (``extrapolated``).
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from collections.abc import Iterable
from pathlib import Path

import pandas as pd

__all__ = [
    "WINDOW_CASCADE",
    "compare",
    "load_records",
    "mape",
    "main",
    "simulate_record",
    "window_blocks",
    "window_ratios",
    "proxy_compare",
]

#: The user's cascade file the records are simulated from.
WINDOW_CASCADE = (
    Path(__file__).resolve().parents[1] / "examples" / "cascades" / "sliding_window.ein"
)

_DATAFLOW = {"flex": "block_sparse", "flash_attn": "flash2", "sdpa_flash": "flash2"}
_ARCH = {"NVIDIA H200": "h200", "NVIDIA H100 80GB HBM3": "h100"}


def load_records(path: str | Path) -> tuple[dict, list[dict]]:
    """``(device record, sliding_window records without an error)`` of a JSONL file.

    Raises
    ------
    ValueError
        No device record, or no sliding_window record with a time.
    """
    dev: dict | None = None
    recs: list[dict] = []
    with open(path, encoding="utf-8") as fh:
        for n, line in enumerate(fh, 1):
            if not line.strip():
                continue
            r = json.loads(line)
            if r.get("kind") == "device" and dev is None:
                dev = r
            elif r.get("kind") == "sliding_window" and "error" not in r:
                if "ms" not in r:
                    raise ValueError(f"{path}:{n}: sliding_window record without 'ms'")
                recs.append(r)
    if dev is None:
        raise ValueError(f"{path}: expected a first 'device' record, got none")
    if not recs:
        raise ValueError(f"{path}: expected sliding_window records with 'ms', got none")
    return dev, recs


def device_arch(dev: dict) -> str:
    """The archsim preset of the device record's GPU (``name``).

    Raises
    ------
    ValueError
        A GPU with no preset here.
    """
    name = str(dev.get("name"))
    if name not in _ARCH:
        raise ValueError(f"device name: expected one of {sorted(_ARCH)}, got {name!r}")
    return _ARCH[name]


def simulate_record(rec: dict, arch: str, engine: str = "event") -> tuple[float, str, str]:
    """``(simulated seconds, dataflow, workload)`` of one record (see the module table).

    Raises
    ------
    ValueError
        Unknown ``impl``.
    """
    from mappings import simulate_workload

    impl = str(rec["impl"])
    if impl not in _DATAFLOW:
        raise ValueError(f"impl: expected one of {sorted(_DATAFLOW)}, got {impl!r}")
    dataflow = _DATAFLOW[impl]
    b, h, s, d, w = (int(rec[k]) for k in ("B", "H", "S", "D", "W"))
    if rec["causal"]:
        workload: str = str(WINDOW_CASCADE)
        params: dict[str, object] = {"L": s, "W": w, "C": d, "A": h, "N": b}
    elif impl == "flex":  # block_mask=None: every block kept
        workload = "block_sparse"
        params = {"B": b, "H": h, "Sq": s, "Skv": s, "D": d, "block": 128, "density": 1.0}
    else:
        workload = "mha"
        params = {"B": b, "H": h, "Sq": s, "Skv": s, "D": d, "causal": False}
    rep = simulate_workload(arch, workload, params=params, dataflow=dataflow, engine=engine)  # type: ignore[arg-type]
    name = "sliding_window.ein" if workload == str(WINDOW_CASCADE) else workload
    return float(rep.result.seconds), dataflow, name


def _kernel_us(rec: dict) -> float | None:
    ks = rec.get("kernels_cold") or []
    return float(sum(k["us"] for k in ks)) if ks else None


def compare(records: Iterable[dict], arch: str, engine: str = "event") -> pd.DataFrame:
    """One row per record: ``impl, B, H, S, D, W, causal, measured_ms, kernel_ms,
    simulated_ms, err_pct`` (simulated vs measured op time, percent), ``dataflow, workload``.
    """
    rows = []
    for r in records:
        sim_s, dataflow, workload = simulate_record(r, arch, engine)
        k = _kernel_us(r)
        rows.append(
            {
                "impl": r["impl"],
                **{x: int(r[x]) for x in ("B", "H", "S", "D", "W")},
                "causal": bool(r["causal"]),
                "measured_ms": float(r["ms"]),
                "kernel_ms": k / 1e3 if k is not None else math.nan,
                "simulated_ms": sim_s * 1e3,
                "err_pct": (sim_s * 1e3 / float(r["ms"]) - 1.0) * 100.0,
                "dataflow": dataflow,
                "workload": workload,
            }
        )
    return pd.DataFrame(rows)


def mape(df: pd.DataFrame) -> pd.Series:
    """Mean |err_pct| per ``impl`` (percent)."""
    return df.assign(abs_err=df["err_pct"].abs()).groupby("impl")["abs_err"].mean()


def window_ratios(df: pd.DataFrame) -> pd.DataFrame:
    """Per ``(impl, B, S)`` and causal ``W``: ``time(W) / time(W = S, causal)``, measured and
    simulated, and ``ratio_err_pct`` (simulated ratio vs measured, percent)."""
    out = []
    causal = df[df["causal"]]
    for (impl, b, s), g in causal.groupby(["impl", "B", "S"]):
        ref = g[g["W"] == s]
        if ref.empty:
            continue
        m0, s0 = float(ref["measured_ms"].iloc[0]), float(ref["simulated_ms"].iloc[0])
        for _, r in g.sort_values("W").iterrows():
            mr, sr = r["measured_ms"] / m0, r["simulated_ms"] / s0
            out.append(
                {"impl": impl, "B": b, "S": s, "W": int(r["W"]), "measured_ratio": mr,
                 "simulated_ratio": sr, "ratio_err_pct": (sr / mr - 1.0) * 100.0}
            )  # fmt: skip
    return pd.DataFrame(out)


def window_blocks(s: int, w: int, block: int = 128) -> tuple[int, int]:
    """``(kept, full)`` ``block x block`` blocks of the causal window per batch x head, as
    ``create_block_mask`` classifies them: kept when a score inside is live, full when all are
    (the rest of the kept are partial: ``mask_mod`` runs per score there).

    Raises
    ------
    ValueError
        ``S`` not a multiple of ``block`` or ``W`` outside ``1..S``.
    """
    import numpy as np

    if s % block or not 1 <= w <= s:
        raise ValueError(f"S, W: expected S a multiple of {block} and 1 <= W <= S, got {s}, {w}")
    lo = np.arange(0, s, block)  # first position of each block (query rows and keys alike)
    q0, q1 = lo[:, None], lo[:, None] + block - 1
    k0, k1 = lo[None, :], lo[None, :] + block - 1
    kept = (k0 <= q1) & (k1 > q0 - w)
    full = (k1 <= q0) & (k0 > q1 - w)
    return int(kept.sum()), int(full.sum())


def _block_mask_lines(path: str | Path) -> tuple[dict, dict[tuple[int, ...], dict]]:
    """Per ``(B, H, S, D)`` of the file's 128-block ``flex_block_sparse`` records: the
    least-squares line ``ms = a + b x blocks`` (``a_ms``, ``b_ms``), the measured block range
    and the largest relative residual."""
    import numpy as np

    dev: dict | None = None
    pts: dict[tuple[int, ...], list[tuple[int, float]]] = {}
    with open(path, encoding="utf-8") as fh:
        for line in fh:
            r = json.loads(line) if line.strip() else {}
            if r.get("kind") == "device" and dev is None:
                dev = r
            if r.get("kind") == "flex_block_sparse" and "ms" in r and int(r["block"]) == 128:
                key = tuple(int(r[k]) for k in ("B", "H", "S", "D"))
                pts.setdefault(key, []).append((int(r["blocks_on"]), float(r["ms"])))
    if dev is None:
        raise ValueError(f"{path}: expected a first 'device' record, got none")
    lines = {}
    for key, xy in pts.items():
        if len(xy) < 3:
            continue
        x, y = np.array([p[0] for p in xy], float), np.array([p[1] for p in xy])
        b, a = np.polyfit(x, y, 1)
        resid = float(np.abs((a + b * x) / y - 1).max())
        lines[key] = {"a_ms": float(a), "b_ms": float(b), "lo": int(x.min()),
                      "hi": int(x.max()), "resid": resid}  # fmt: skip
    if not lines:
        raise ValueError(f"{path}: expected >= 3 flex_block_sparse records per shape, got none")
    return dev, lines


def proxy_compare(path: str | Path, engine: str = "event") -> pd.DataFrame:
    """The window cases of the measured block-mask shapes: ``B, S, W, kept_blocks,
    partial_blocks, proxy_ms`` (the measured line at the kept blocks), ``simulated_ms``,
    ``err_pct``, ``extrapolated``, ``fit_resid_pct``; see the module doc.

    Raises
    ------
    ValueError
        No device record or no usable ``flex_block_sparse`` records.
    """
    from validation.harness.window import window_cases

    dev, lines = _block_mask_lines(path)
    arch = device_arch(dev)
    rows = []
    for c in window_cases(("flex",)):
        key = tuple(int(c[k]) for k in ("B", "H", "S", "D"))  # type: ignore[call-overload]
        if key not in lines or not c["causal"]:
            continue
        fit = lines[key]
        kept, full = window_blocks(int(c["S"]), int(c["W"]))  # type: ignore[call-overload]
        proxy = fit["a_ms"] + fit["b_ms"] * kept
        sim_ms = simulate_record(c, arch, engine)[0] * 1e3
        rows.append(
            {"B": key[0], "S": key[2], "W": int(c["W"]), "kept_blocks": kept,  # type: ignore[call-overload]
             "partial_blocks": kept - full, "proxy_ms": proxy, "simulated_ms": sim_ms,
             "err_pct": (sim_ms / proxy - 1.0) * 100.0,
             "extrapolated": not fit["lo"] <= kept <= fit["hi"],
             "fit_resid_pct": fit["resid"] * 100.0}
        )  # fmt: skip
    return pd.DataFrame(rows)


def _say(text: str) -> None:
    sys.stdout.write(text + "\n")


def main(argv: list[str] | None = None) -> int:
    """Print the comparison; exit code 0 (2 on bad input)."""
    p = argparse.ArgumentParser(prog="python -m validation.variants", description=__doc__)
    p.add_argument("path", nargs="?", help="JSONL of validation.harness.window")
    p.add_argument("--engine", choices=("event", "analytic"), default="event")
    p.add_argument(
        "--predict",
        metavar="ARCH",
        help="no measurement: simulate the harness's cases (validation.harness.window) on ARCH",
    )
    p.add_argument(
        "--proxy",
        metavar="CHECK.jsonl",
        help="no window measurement: the block-mask FlexAttention records of this file as proxy",
    )
    args = p.parse_args(argv)
    if args.proxy:
        try:
            df = proxy_compare(args.proxy, args.engine)
        except (OSError, ValueError) as exc:
            sys.stderr.write(f"error: {exc}\n")
            return 2
        _say(f"proxy: FlexAttention block-mask line of {args.proxy} at the window's kept blocks")
        _say(df.to_string(index=False, float_format=lambda x: f"{x:.4g}"))
        ratios = window_ratios(df.assign(impl="flex", causal=True, measured_ms=df["proxy_ms"]))
        _say("\ntime(W) / time(causal), proxy (measured line) vs simulated:")
        _say(ratios.to_string(index=False, float_format=lambda x: f"{x:.3f}"))
        return 0
    if args.predict:
        from validation.harness.window import window_cases

        cases = [{**c, "ms": math.nan} for c in window_cases()]
        df = compare(cases, args.predict, args.engine).drop(
            columns=["H", "D", "measured_ms", "kernel_ms", "err_pct"]
        )
        _say(f"predicted on {args.predict} ({args.engine} engine), no measurement")
        _say(df.to_string(index=False, float_format=lambda x: f"{x:.4g}"))
        return 0
    if not args.path:
        p.error("path is required (or --predict ARCH)")
    try:
        dev, recs = load_records(args.path)
        arch = device_arch(dev)
    except (OSError, ValueError) as exc:
        sys.stderr.write(f"error: {exc}\n")
        return 2
    df = compare(recs, arch, args.engine)
    pd.set_option("display.width", 200)
    _say(f"{dev.get('name')} ({dev.get('date')}), simulated on {arch} ({args.engine} engine)")
    _say(df.drop(columns=["H", "D"]).to_string(index=False, float_format=lambda x: f"{x:.4g}"))
    _say("\nMAPE per impl (%):")
    _say(mape(df).to_string(float_format=lambda x: f"{x:.1f}"))
    _say("\ntime(W) / time(causal), per impl, B, S:")
    _say(window_ratios(df).to_string(index=False, float_format=lambda x: f"{x:.3f}"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
