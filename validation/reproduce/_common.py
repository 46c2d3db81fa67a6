"""Shared output plumbing of the reproductions: the :class:`Reproduction` record, text
tables, CSV, PNG plots and JSON.

Library code never prints: :func:`format_table` returns text, the CLI prints it.
"""

from __future__ import annotations

import csv
import json
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from mappings import SimulationReport

__all__ = [
    "Cell",
    "Check",
    "Reproduction",
    "Row",
    "format_reproduction",
    "format_table",
    "near_range",
    "plan_meta",
    "within",
    "write_csv",
    "write_outputs",
]

#: One table cell: a number or a label.
Cell = int | float | str
#: One table row: column -> cell.
Row = dict[str, Cell]


@dataclass(frozen=True)
class Check:
    """One paper-vs-model acceptance check.

    Attributes
    ----------
    name
        What is compared (``mean speedup vs FLAT``).
    value
        The model's number.
    target
        The paper's number (or range ``(low, high)``).
    ok
        Whether ``value`` is within the stated tolerance.
    tolerance
        The tolerance in words (``±15%``, ``inside range or within 10%``).
    gate
        Whether the check decides :attr:`Reproduction.ok` (False: reported only, e.g. where
        the paper's baseline is unknown).
    """

    name: str
    value: float
    target: float | tuple[float, float]
    ok: bool
    tolerance: str
    gate: bool = True

    def to_dict(self) -> dict[str, object]:
        """JSON-ready form."""
        tgt = list(self.target) if isinstance(self.target, tuple) else self.target
        return {
            "name": self.name,
            "value": self.value,
            "target": tgt,
            "ok": self.ok,
            "tolerance": self.tolerance,
            "gate": self.gate,
        }


def plan_meta(rep: SimulationReport) -> Mapping[str, Any]:
    """The plan's meta of a simulation: JSON-like values whose shape the dataflow sets (GPU
    dataflows: ``ops`` by kind, ``kernels`` as dicts (clock, work, bound), ``ctas``; see
    :mod:`mappings._gpu`), so typed ``Any`` for the reproductions that read them."""
    return rep.plan.meta


def within(value: float, target: float, rel: float) -> bool:
    """``|value / target - 1| <= rel``."""
    return math.isfinite(value) and abs(value / target - 1.0) <= rel


def near_range(value: float, low: float, high: float, rel: float) -> bool:
    """Inside ``[low, high]`` widened by ``rel`` on each side."""
    return math.isfinite(value) and low * (1 - rel) <= value <= high * (1 + rel)


@dataclass(frozen=True)
class Reproduction:
    """Result of one ``archsim reproduce NAME``.

    Attributes
    ----------
    name
        ``fusemax``, ``pim`` or ``fg-attn``.
    tables
        Named tables: each a list of rows (dicts with the same keys). The first is the main one.
    summary
        Scalar results (the JSON keys the issue fixes, e.g. ``speedup_vs_flat_mean``).
    checks
        Acceptance checks against the paper.
    notes
        Assumptions and differences from the paper, one sentence each.
    plot
        Draws the figure on a matplotlib ``Figure`` (called by :func:`write_outputs`).
    """

    name: str
    tables: Mapping[str, Sequence[Mapping[str, object]]]
    summary: Mapping[str, object]
    checks: tuple[Check, ...] = ()
    notes: tuple[str, ...] = ()
    plot: Callable[[object], None] | None = field(default=None, compare=False, repr=False)

    @property
    def ok(self) -> bool:
        """All gating checks pass."""
        return all(c.ok for c in self.checks if c.gate)

    def to_dict(self) -> dict[str, object]:
        """One JSON object: summary keys at the top level, then tables, checks and notes."""
        return {
            "reproduction": self.name,
            **dict(self.summary),
            "ok": self.ok,
            "checks": [c.to_dict() for c in self.checks],
            "tables": {k: v for k, v in self.tables.items()},
            "notes": list(self.notes),
        }

    def to_json(self) -> str:
        """:meth:`to_dict` as JSON text (NaN and inf as ``null``)."""
        return json.dumps(_clean(self.to_dict()), indent=1)


def _clean(obj: object) -> object:
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, Mapping):
        return {str(k): _clean(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_clean(v) for v in obj]
    if hasattr(obj, "item"):  # numpy scalar
        return _clean(obj.item())
    return obj


def _fmt(v: object) -> str:
    if isinstance(v, bool):
        return "yes" if v else "no"
    if isinstance(v, float):
        if not math.isfinite(v):
            return "-"
        a = abs(v)
        if a == 0:
            return "0"
        if a >= 1e5 or a < 1e-3:
            return f"{v:.3g}"
        return f"{v:.4g}" if a < 100 else f"{v:.1f}"
    return str(v)


def format_table(
    rows: Sequence[Mapping[str, object]],
    columns: Sequence[str] | None = None,
    title: str | None = None,
) -> str:
    """Fixed-width text table of ``rows`` (all keys of the first row unless ``columns``)."""
    if not rows:
        return f"{title}\n(empty)" if title else "(empty)"
    cols = list(columns or rows[0].keys())
    cells = [[_fmt(r.get(c, "")) for c in cols] for r in rows]
    widths = [max(len(c), *(len(row[i]) for row in cells)) for i, c in enumerate(cols)]
    lines = [title] if title else []
    lines.append("  ".join(c.rjust(w) for c, w in zip(cols, widths, strict=True)))
    lines.append("  ".join("-" * w for w in widths))
    lines += ["  ".join(v.rjust(w) for v, w in zip(row, widths, strict=True)) for row in cells]
    return "\n".join(lines)


def format_reproduction(rep: Reproduction) -> str:
    """All tables, the checks and the notes of ``rep`` as text."""
    parts = [
        format_table(rows, title=f"== {rep.name}: {name} ==") for name, rows in rep.tables.items()
    ]
    if rep.checks:
        parts.append(
            format_table(
                [
                    {
                        "check": c.name,
                        "model": c.value,
                        "paper": (
                            f"{c.target[0]:g}-{c.target[1]:g}"
                            if isinstance(c.target, tuple)
                            else c.target
                        ),
                        "tolerance": c.tolerance if c.gate else f"{c.tolerance} (info)",
                        "ok": c.ok,
                    }
                    for c in rep.checks
                ],
                title="== checks against the paper ==",
            )
        )
    summary = ", ".join(
        f"{k}={_fmt(v)}" for k, v in rep.summary.items() if isinstance(v, (int, float, str, bool))
    )
    tail = [f"summary: {summary}; all checks {'PASS' if rep.ok else 'FAIL'}"]
    tail += [f"note: {n}" for n in rep.notes]
    return "\n\n".join(parts) + "\n\n" + "\n".join(tail)


def write_csv(rows: Sequence[Mapping[str, object]], path: Path) -> Path:
    """Write ``rows`` (dicts) to ``path`` as CSV (union of keys, first-seen order)."""
    keys: list[str] = []
    for r in rows:
        keys += [k for k in r if k not in keys]
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=keys)
        w.writeheader()
        for r in rows:
            w.writerow({k: _clean(r.get(k, "")) for k in keys})
    return path


def write_outputs(rep: Reproduction, out_dir: Path, plot_path: Path | None = None) -> list[Path]:
    """Write every table as ``<out>/<table>.csv``, the summary as ``summary.json`` and the
    plot as ``<out>/<name>.png`` (or ``plot_path``). Returns the paths written."""
    out_dir.mkdir(parents=True, exist_ok=True)
    written = [write_csv(rows, out_dir / f"{name}.csv") for name, rows in rep.tables.items()]
    js = out_dir / "summary.json"
    js.write_text(rep.to_json())
    written.append(js)
    if rep.plot is not None:
        # A bare Figure (no pyplot) renders PNG through its own canvas; library code never
        # selects a backend, so a Jupyter session keeps its inline one.
        from matplotlib.figure import Figure

        fig = Figure(figsize=(11, 4.2), layout="constrained")
        rep.plot(fig)
        png = plot_path or out_dir / f"{rep.name}.png"
        png.parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(png, dpi=110)
        written.append(png)
    return written
