"""Reading measurement files (JSON Lines, the schema of issue 5).

A file holds an optional first ``{"kind": "device", ...}`` record and then one record per
measured case. Records with an ``"error"`` field were not measured and are skipped. A
line that is not a JSON object is a :class:`~archsim.errors.ValidationDataError` naming
the file and line; a record of an unknown kind or missing fields is kept out of the
prediction set and listed in :attr:`MeasurementSet.skipped` with the reason.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from archsim.errors import ValidationDataError

__all__ = ["KIND_FIELDS", "Measurement", "MeasurementSet", "load_measurements", "parse_lines"]

#: Fields a measured record of each kind must have (besides ``kind`` and ``ms``).
KIND_FIELDS: dict[str, tuple[str, ...]] = {
    "gemm": ("M", "N", "K"),
    "attn": ("B", "Hq", "Hkv", "Sq", "Skv", "D", "causal", "backend"),
    "decode": ("B", "Hq", "Hkv", "Skv", "D", "backend"),
    "attn_unfused": ("B", "H", "S", "D"),
    "flex_block_sparse": ("B", "H", "S", "D", "block"),
    "ceiling": ("name",),
}


@dataclass(frozen=True)
class Measurement:
    """One measured record.

    Attributes
    ----------
    line : 1-based line number in its file.
    kind : record kind (``gemm``, ``attn``, ``decode``, ``attn_unfused``, ``flex_block_sparse``).
    ms : measured time per call (ms).
    fields : the whole record as read.
    """

    line: int
    kind: str
    ms: float
    fields: Mapping[str, object]

    def get(self, key: str, default: object = None) -> object:
        """A field of the record."""
        return self.fields.get(key, default)


@dataclass(frozen=True)
class MeasurementSet:
    """A measurement file: its device record, usable records, and skipped ones."""

    path: str
    device: Mapping[str, object] | None
    records: tuple[Measurement, ...]
    skipped: tuple[tuple[int, str], ...] = field(default=())


def _check(rec: Mapping[str, object]) -> str | None:
    kind = rec.get("kind")
    if "error" in rec:
        return f"measurement error: {str(rec['error'])[:80]}"
    if kind not in KIND_FIELDS:
        return f"unknown kind {kind!r}"
    missing = [f for f in KIND_FIELDS[str(kind)] if f not in rec]
    if missing:
        return f"{kind}: missing fields {missing}"
    ms = rec.get("ms")
    if isinstance(ms, bool) or not isinstance(ms, (int, float)) or not math.isfinite(ms) or ms <= 0:
        return f"{kind}: expected ms > 0, got {ms!r}"
    return None


def parse_lines(lines: list[str], *, source: str = "<lines>") -> MeasurementSet:
    """Parse JSON Lines text (see :func:`load_measurements`)."""
    device: Mapping[str, object] | None = None
    records: list[Measurement] = []
    skipped: list[tuple[int, str]] = []
    for n, raw in enumerate(lines, start=1):
        text = raw.strip()
        if not text:
            continue
        try:
            rec = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ValidationDataError(
                "malformed JSON line",
                path=f"{source}:{n}",
                expected="one JSON object per line",
                got=f"{text[:60]} ({exc.msg} at col {exc.colno})",
            ) from None
        if not isinstance(rec, dict):
            raise ValidationDataError(
                "record is not a JSON object",
                path=f"{source}:{n}",
                expected="{...}",
                got=type(rec).__name__,
            )
        if rec.get("kind") == "device":
            device = rec
            continue
        problem = _check(rec)
        if problem is not None:
            skipped.append((n, problem))
            continue
        records.append(Measurement(n, str(rec["kind"]), float(rec["ms"]), rec))
    return MeasurementSet(source, device, tuple(records), tuple(skipped))


def load_measurements(path: str | Path) -> MeasurementSet:
    """Read a measurement JSON Lines file.

    Parameters
    ----------
    path
        File in the issue-5 schema.

    Returns
    -------
    MeasurementSet

    Raises
    ------
    ValidationDataError
        The file is missing or a line is not a JSON object (message names ``file:line``).
    """
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except OSError as exc:
        raise ValidationDataError(
            "cannot read measurement file",
            path=str(p),
            expected="a readable JSON Lines file",
            got=exc.strerror,
        ) from None
    return parse_lines(text.splitlines(), source=str(p))
