"""Reading measurement files (JSON Lines, the schema of issue 5).

A file holds an optional first ``{"kind": "device", ...}`` record and then one record per
measured case. Records with an ``"error"`` field were not measured and are skipped.

**One bad record never stops a file.** A line that is not UTF-8, not JSON (truncated,
garbage) or not a JSON object, a record of an unknown kind, or one with a missing or
malformed field (wrong type, not finite, not positive, out of range, unknown dtype) is kept
out of the prediction set and listed in :attr:`MeasurementSet.skipped` as a
:class:`SkippedRecord` (line, field, reason); every other record is read. Only a file that
cannot be read at all is a :class:`~archsim.errors.ValidationDataError`.

Shape fields are bounded (each ``<= 2**31 - 1``, and the kernel's parallel work, e.g.
``batch*M*N`` of a GEMM, ``<= 2**34`` elements) so that no record can make the model
allocate without limit.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import NamedTuple

from archsim.errors import ArchsimError, ValidationDataError

__all__ = [
    "KIND_FIELDS",
    "MAX_DIM",
    "MAX_WORK",
    "Measurement",
    "MeasurementSet",
    "SkippedRecord",
    "check_record",
    "load_measurements",
    "parse_lines",
]

#: Fields a measured record of each kind must have (besides ``kind`` and ``ms``).
KIND_FIELDS: dict[str, tuple[str, ...]] = {
    "gemm": ("M", "N", "K"),
    "attn": ("B", "Hq", "Hkv", "Sq", "Skv", "D", "causal", "backend"),
    "decode": ("B", "Hq", "Hkv", "Skv", "D", "backend"),
    "attn_unfused": ("B", "H", "S", "D"),
    "flex_block_sparse": ("B", "H", "S", "D", "block"),
    "ceiling": ("name",),
}
#: Largest value of one shape field (a CUDA grid dimension's limit).
MAX_DIM = 2**31 - 1
#: Largest parallel work of one record (output elements, or scores for unfused attention).
MAX_WORK = 2**34
_INT_FIELDS = ("M", "N", "K", "batch", "B", "H", "Hq", "Hkv", "Sq", "Skv", "S", "D", "block")
#: Optional measured quantities: finite and >= 0 where present.
_MEASURED = ("dram_bytes_read", "dram_bytes_write", "mJ_per_iter", "avg_W", "sm_clock")
#: Fields whose product is a record's parallel work (the kernel's CTA count scales with it);
#: attn_unfused counts S twice (its score matrix), flex_block_sparse counts S / block twice.
_WORK_FIELDS: dict[str, tuple[str, ...]] = {
    "gemm": ("batch", "M", "N"),
    "ceiling": ("batch", "M", "N"),
    "attn": ("B", "Hq", "Sq"),
    "decode": ("B", "Hq", "Sq"),
    "attn_unfused": ("B", "H", "S", "S"),
    "flex_block_sparse": ("B", "H", "S", "S"),
}


def _work(kind: str, sizes: Mapping[str, int]) -> tuple[int, str]:
    """(parallel work, the field contributing most to it) of a record's checked sizes."""
    fields = [f for f in _WORK_FIELDS[kind] if f in sizes]
    work = math.prod(sizes[f] for f in fields)
    if kind == "flex_block_sparse":
        work = sizes["B"] * sizes["H"] * (sizes["S"] // sizes["block"] + 1) ** 2
    return work, max(fields, key=lambda f: sizes[f]) if fields else "kind"


class SkippedRecord(NamedTuple):
    """A line that was not predicted: 1-based ``line``, the offending ``field`` (None when
    the whole line is bad) and the ``reason``."""

    line: int
    field: str | None
    reason: str

    def text(self) -> str:
        """``line 4: field 'dtype': unknown dtype ...``."""
        where = f"line {self.line}" + (f": field {self.field!r}" if self.field else "")
        return f"{where}: {self.reason}"


class _Bad(Exception):
    def __init__(self, field: str | None, reason: str) -> None:
        super().__init__(reason)
        self.field = field
        self.reason = reason


def _int_field(rec: Mapping[str, object], key: str) -> int:
    v = rec[key]
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        raise _Bad(key, f"expected a positive integer, got {_show(v)}")
    if isinstance(v, float) and not (math.isfinite(v) and v.is_integer()):
        raise _Bad(key, f"expected a positive integer, got {_show(v)}")
    n = int(v)
    if not 1 <= n <= MAX_DIM:
        raise _Bad(key, f"expected an integer in [1, {MAX_DIM}], got {_show(v)}")
    return n


def _show(v: object) -> str:
    text = repr(v)
    return text if len(text) <= 40 else text[:37] + "..."


def _finite(rec: Mapping[str, object], key: str, *, positive: bool) -> float:
    v = rec[key]
    ok = isinstance(v, (int, float)) and not isinstance(v, bool)
    x = float(v) if ok and abs(v) < 1e300 else math.nan  # type: ignore[arg-type]
    if not ok or not math.isfinite(x) or x < 0 or (positive and x == 0):
        want = "a finite number > 0" if positive else "a finite number >= 0"
        raise _Bad(key, f"expected {want}, got {_show(v)}")
    return x


def check_record(rec: Mapping[str, object]) -> SkippedRecord | None:
    """Why a parsed measurement record cannot be predicted (``line`` 0), or None.

    Checks the kind, the required fields of the kind and the types and ranges of every
    field the model reads (shape fields, ``ms``, ``dtype``, ``causal``, ``backend``,
    ``density``, measured DRAM bytes / energy / power / clock).
    """
    try:
        _check_fields(rec)
    except _Bad as bad:
        return SkippedRecord(0, bad.field, bad.reason)
    return None


def _check_fields(rec: Mapping[str, object]) -> None:
    from archsim.gpu import dtype_bytes

    kind = rec.get("kind")
    if "error" in rec:
        raise _Bad("error", f"not measured: {str(rec['error'])[:80]}")
    if not isinstance(kind, str) or kind not in KIND_FIELDS:
        raise _Bad("kind", f"unknown kind {_show(kind)}; expected one of {sorted(KIND_FIELDS)}")
    missing = [f for f in (*KIND_FIELDS[str(kind)], "ms") if f not in rec]
    if missing:
        raise _Bad(missing[0], f"{kind}: missing fields {missing}")
    _finite(rec, "ms", positive=True)
    sizes = {k: _int_field(rec, k) for k in _INT_FIELDS if k in rec}
    if kind == "ceiling":
        if not isinstance(rec["name"], str):
            raise _Bad("name", f"expected a string, got {_show(rec['name'])}")
        if "bytes" in rec:
            n = _finite(rec, "bytes", positive=True)
            if n > MAX_WORK * 64:
                raise _Bad("bytes", f"expected at most {MAX_WORK * 64}, got {_show(rec['bytes'])}")
    if "dtype" in rec:
        try:
            dtype_bytes(rec["dtype"])  # type: ignore[arg-type]
        except ArchsimError as exc:
            want = getattr(exc, "expected", None)
            raise _Bad(
                "dtype", f"unknown dtype {_show(rec['dtype'])}; expected one of {want}"
            ) from None
    for key in ("backend", "pass_", "gqa_impl"):
        if key in rec and not isinstance(rec[key], str):
            raise _Bad(key, f"expected a string, got {_show(rec[key])}")
    if "causal" in rec and rec["causal"] not in (True, False):
        raise _Bad("causal", f"expected true or false, got {_show(rec['causal'])}")
    if "split_k" in rec and rec["split_k"] not in (True, False, None):
        raise _Bad("split_k", f"expected true, false or null, got {_show(rec['split_k'])}")
    for key in ("density", "density_target"):
        if key in rec:
            d = _finite(rec, key, positive=True)
            if d > 1:
                raise _Bad(key, f"expected a fraction in (0, 1], got {_show(rec[key])}")
    for key in _MEASURED:
        if key in rec:
            _finite(rec, key, positive=False)
    work, biggest = _work(kind, sizes)
    if work > MAX_WORK:
        raise _Bad(
            biggest,
            f"{kind}: parallel work {work:.3g} elements exceeds the model's bound {MAX_WORK}",
        )


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
    skipped: tuple[SkippedRecord, ...] = field(default=())


def _parse_one(text: str) -> dict[str, object]:
    try:
        rec = json.loads(text)
    except json.JSONDecodeError as exc:
        raise _Bad(None, f"malformed JSON ({exc.msg} at col {exc.colno}): {text[:60]!r}") from None
    except RecursionError:
        raise _Bad(None, "JSON nested too deeply") from None
    if not isinstance(rec, dict):
        raise _Bad(None, f"expected a JSON object {{...}}, got {type(rec).__name__}")
    return rec


def _device_problem(rec: Mapping[str, object]) -> _Bad | None:
    for key in ("power_limit_w", "sm_clock_max_mhz", "idle_power_w"):
        if key in rec:
            try:
                _finite(rec, key, positive=True)
            except _Bad as bad:
                return bad
    return None


def parse_lines(lines: Sequence[str | bytes], *, source: str = "<lines>") -> MeasurementSet:
    """Parse JSON Lines (text, or raw bytes decoded as UTF-8 line by line).

    Bad lines and records are listed in ``skipped`` (see the module docstring); a device
    record with a malformed setting is skipped and its settings are not used.
    """
    device: Mapping[str, object] | None = None
    records: list[Measurement] = []
    skipped: list[SkippedRecord] = []
    for n, raw in enumerate(lines, start=1):
        try:
            if isinstance(raw, bytes):
                try:
                    raw = raw.decode("utf-8")
                except UnicodeDecodeError as exc:
                    raise _Bad(
                        None, f"not UTF-8 text (byte {raw[exc.start]:#04x} at col {exc.start + 1})"
                    ) from None
            text = raw.strip()
            if not text:
                continue
            rec = _parse_one(text)
            if rec.get("kind") == "device":
                bad = _device_problem(rec)
                if bad is not None:
                    raise bad
                device = rec
                continue
            _check_fields(rec)
        except _Bad as bad:
            skipped.append(SkippedRecord(n, bad.field, bad.reason))
            continue
        records.append(Measurement(n, str(rec["kind"]), float(rec["ms"]), rec))  # type: ignore[arg-type]
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
        Usable records, and every line that is not (``skipped``, with line, field, reason).

    Raises
    ------
    ValidationDataError
        The file cannot be read (missing, a directory, no permission).
    """
    p = Path(path)
    try:
        data = p.read_bytes()
    except OSError as exc:
        raise ValidationDataError(
            "cannot read measurement file",
            path=str(p),
            expected="a readable JSON Lines file",
            got=exc.strerror,
        ) from None
    return parse_lines(data.split(b"\n"), source=str(p))
