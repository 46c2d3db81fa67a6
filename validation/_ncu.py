"""Reading Nsight Compute CSV exports (``ncu --csv --print-units base``).

Two layouts are accepted: the default *long* one (one row per kernel and metric, columns
``ID, Kernel Name, ..., Metric Name, Metric Unit, Metric Value``) and the *wide* one of
``--page raw`` (one row per kernel, one column per metric). Lines before the header
(``==PROF==`` messages, program output) are ignored. Numbers may carry thousands
separators.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from archsim.errors import ValidationDataError

__all__ = ["NcuKernel", "read_ncu_csv", "parse_ncu_csv"]

_ID_COLS = {
    "ID",
    "Process ID",
    "Process Name",
    "Host Name",
    "Kernel Name",
    "Context",
    "Stream",
    "Block Size",
    "Grid Size",
    "Device",
    "CC",
    "Section Name",
    "Metric Name",
    "Metric Unit",
    "Metric Value",
    "Estimated Speedup",
    "Estimated Speedup Type",
}


@dataclass(frozen=True)
class NcuKernel:
    """One profiled kernel: launch ``id``, ``name``, grid/block text, metric values."""

    id: int
    name: str
    grid: str = ""
    block: str = ""
    metrics: Mapping[str, float] = field(default_factory=dict)

    @property
    def dram_bytes(self) -> float | None:
        """``dram__bytes_read.sum + dram__bytes_write.sum`` (bytes) when present."""
        r = self.metrics.get("dram__bytes_read.sum")
        w = self.metrics.get("dram__bytes_write.sum")
        return None if r is None and w is None else (r or 0.0) + (w or 0.0)

    @property
    def duration_us(self) -> float | None:
        """``gpu__time_duration.sum`` in µs (ncu reports ns with base units)."""
        ns = self.metrics.get("gpu__time_duration.sum")
        return None if ns is None else ns / 1e3


def _num(text: str) -> float | None:
    t = text.strip().replace(",", "")
    try:
        return float(t)
    except ValueError:
        return None


def parse_ncu_csv(text: str, *, source: str = "<ncu>") -> list[NcuKernel]:
    """Parse ncu CSV text (see module notes); kernels in ``ID`` order."""
    lines = text.splitlines()
    start = next(
        (i for i, ln in enumerate(lines) if ln.startswith('"ID"') or ln.startswith("ID,")), None
    )
    if start is None:
        raise ValidationDataError(
            "no ncu CSV header",
            path=source,
            expected='a line starting "ID"',
            got=(lines[0][:60] if lines else "empty file"),
        )
    rows = list(csv.DictReader(io.StringIO("\n".join(lines[start:]))))
    # kernel ID -> (name, grid, block, metric values)
    kernels: dict[int, tuple[str, str, str, dict[str, float]]] = {}
    for n, row in enumerate(rows, start=start + 2):
        kid = _num(row.get("ID", "") or "")
        if kid is None:
            continue  # unit rows of the wide layout, blank lines
        *_, metrics = kernels.setdefault(
            int(kid),
            (
                str(row.get("Kernel Name", "")),
                str(row.get("Grid Size", "")),
                str(row.get("Block Size", "")),
                {},
            ),
        )
        if "Metric Name" in row:
            val = _num(row.get("Metric Value", "") or "")
            if val is None:
                raise ValidationDataError(
                    "non-numeric metric value",
                    path=f"{source}:{n}",
                    expected="a number",
                    got=row.get("Metric Value"),
                )
            metrics[str(row["Metric Name"])] = val
        else:
            for col, cell in row.items():
                if col and col not in _ID_COLS and (v := _num(cell or "")) is not None:
                    metrics[col] = v
    return [
        NcuKernel(kid, name, grid, block, dict(metrics))
        for kid, (name, grid, block, metrics) in sorted(kernels.items())
    ]


def read_ncu_csv(path: str | Path) -> list[NcuKernel]:
    """Read an ncu CSV export.

    Raises
    ------
    ValidationDataError
        Unreadable file, no header, or a non-numeric metric value.
    """
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8", errors="replace")
    except OSError as exc:
        raise ValidationDataError(
            "cannot read ncu CSV", path=str(p), expected="a readable file", got=exc.strerror
        ) from None
    return parse_ncu_csv(text, source=str(p))
