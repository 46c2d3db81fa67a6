"""Merge ncu/energy results into timed records and split them into fit/check datasets.

Standard library only, re-runnable::

    python3 -m validation.harness.split --timed validation/data/raw/h100_full.jsonl \\
        --ncu validation/data/raw/h100_ncu.jsonl --energy validation/data/raw/h100_energy.jsonl \\
        --fit validation/data/h100_fit.jsonl --check validation/data/h100_check.jsonl

Merge: records are matched by ``key`` (:func:`validation.harness.cases.case_key`). From an
ncu record: ``dram_bytes_read``, ``dram_bytes_write``, ``ncu_ms``, ``ncu_kernels``. From an
energy record: ``mJ_per_iter``, ``avg_W``, ``loop_iters``, ``loop_s``, ``loop_ms_per_iter``
and ``sm_clock`` (median SM clock during the energy loop, which replaces the timed-window
median; that one is always kept as ``sm_clock_timed``).

Split: a record goes to *fit* when ``sha256(key)`` read as a fraction in ``[0, 1)`` is
below ``--fit-fraction`` (default 0.4), else to *check*. Then every group
(``kind``, ``backend``, ``pass_``) of at least two records is made present on both sides
by moving the record whose hash is nearest the threshold. Records with ``error`` are
left out of both files (they stay in the raw file). The device record heads each file.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
from collections.abc import Iterable, Sequence
from pathlib import Path

try:  # the package is importable on a development machine, not on the GPU machine
    from archsim.errors import ValidationDataError
except ImportError:  # pragma: no cover - fallback keeps this module standard-library only

    class ValidationDataError(ValueError):  # type: ignore[no-redef]
        """Bad measurement data."""


__all__ = [
    "ENERGY_FIELDS",
    "NCU_FIELDS",
    "first_by_key",
    "key_fraction",
    "merge",
    "read_jsonl",
    "split",
]

NCU_FIELDS = ("dram_bytes_read", "dram_bytes_write", "ncu_ms", "ncu_kernels")
ENERGY_FIELDS = (
    "mJ_per_iter",
    "avg_W",
    "loop_iters",
    "loop_s",
    "loop_ms_per_iter",
    "sm_clock",
    "power_w_sampled",
)

Record = dict[str, object]


def read_jsonl(path: str | Path) -> list[Record]:
    """Records of a JSON Lines file (blank lines skipped).

    Raises
    ------
    ValidationDataError
        If a line is not a JSON object; the message names the file and line.
    """
    out = []
    for i, line in enumerate(Path(path).read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            rec = json.loads(line)
        except json.JSONDecodeError as exc:
            raise ValidationDataError(f"{path}:{i}: expected a JSON object, got {exc}") from exc
        if not isinstance(rec, dict):
            raise ValidationDataError(f"{path}:{i}: expected a JSON object, got {type(rec)}")
        out.append(rec)
    return out


def key_fraction(key: str) -> float:
    """``sha256(key)`` as a number in ``[0, 1)`` (first 8 bytes)."""
    return int.from_bytes(hashlib.sha256(key.encode()).digest()[:8], "big") / 2.0**64


def merge(timed: Iterable[Record], extra: Iterable[Record], fields: Sequence[str]) -> list[Record]:
    """Copy ``fields`` from error-free ``extra`` records into ``timed`` records of the same key."""
    by_key = {r["key"]: r for r in extra if "key" in r and "error" not in r}
    out = []
    for rec in timed:
        rec = dict(rec)
        src = by_key.get(rec.get("key"))
        if src is not None and "error" not in rec:
            if "sm_clock" in fields and "sm_clock" in rec:
                rec.setdefault("sm_clock_timed", rec["sm_clock"])
            rec.update({f: src[f] for f in fields if f in src})
        out.append(rec)
    return out


def first_by_key(files: Iterable[list[Record]]) -> list[Record]:
    """Concatenate record lists, keeping the first record of each ``key`` (and the first
    device record); a successful record replaces an earlier error record of its key."""
    out: list[Record] = []
    index: dict[object, int] = {}
    for records in files:
        for rec in records:
            key = rec.get("key", "device" if rec.get("kind") == "device" else None)
            if key is None:
                continue
            if key not in index:
                index[key] = len(out)
                out.append(rec)
            elif "error" in out[index[key]] and "error" not in rec:
                out[index[key]] = rec
    return out


def _group(rec: Record) -> tuple[str, str, str]:
    return (str(rec.get("kind")), str(rec.get("backend", "")), str(rec.get("pass_", "")))


def split(
    records: Iterable[Record], fit_fraction: float = 0.4
) -> tuple[list[Record], list[Record]]:
    """Split case records (not the device record) into ``(fit, check)``; see module doc.

    Raises
    ------
    ValidationDataError
        If ``fit_fraction`` is not in ``(0, 1)`` or a case record lacks ``key``.
    """
    if not 0.0 < fit_fraction < 1.0:
        raise ValidationDataError(f"fit_fraction: expected 0 < f < 1, got {fit_fraction}")
    cases = [r for r in records if r.get("kind") != "device" and "error" not in r]
    for r in cases:
        if "key" not in r:
            raise ValidationDataError(f"record: expected a 'key' field, got {sorted(r)}")
    side = {str(r["key"]): key_fraction(str(r["key"])) < fit_fraction for r in cases}
    groups: dict[tuple[str, str, str], list[Record]] = {}
    for r in cases:
        groups.setdefault(_group(r), []).append(r)
    for members in groups.values():
        if len(members) < 2:
            continue
        for want in (True, False):
            if not any(side[str(r["key"])] == want for r in members):
                nearest = min(
                    members, key=lambda r: abs(key_fraction(str(r["key"])) - fit_fraction)
                )
                side[str(nearest["key"])] = want
    fit = [r for r in cases if side[str(r["key"])]]
    check = [r for r in cases if not side[str(r["key"])]]
    return fit, check


def _write(path: str | Path, device: Record | None, records: list[Record]) -> None:
    lines = ([device] if device else []) + records
    Path(path).write_text("".join(json.dumps(r) + "\n" for r in lines), encoding="utf-8")


def main(argv: list[str] | None = None) -> int:
    """CLI: merge and split; prints one summary line per output file."""
    p = argparse.ArgumentParser(prog="python3 -m validation.harness.split")
    p.add_argument(
        "--timed",
        required=True,
        nargs="+",
        help="JSONL files from --suite full; for a key in several, the first wins",
    )
    p.add_argument("--ncu", default=None, help="JSONL from --suite ncu")
    p.add_argument("--energy", default=None, help="JSONL from --suite energy")
    p.add_argument(
        "--fit",
        default=None,
        help="fit output; omit to write every record to --check (check-only data)",
    )
    p.add_argument("--check", required=True)
    p.add_argument("--fit-fraction", type=float, default=0.4)
    args = p.parse_args(argv)
    timed = first_by_key(read_jsonl(path) for path in args.timed)
    device = next((r for r in timed if r.get("kind") == "device"), None)
    if args.ncu:
        timed = merge(timed, read_jsonl(args.ncu), NCU_FIELDS)
    if args.energy:
        energy = read_jsonl(args.energy)
        timed = merge(timed, energy, ENERGY_FIELDS)
        edev = next((r for r in energy if r.get("kind") == "device"), None)
        if device is not None and edev is not None and "idle_power_w" in edev:
            device = {**device, "idle_power_w_energy_run": edev["idle_power_w"]}
    fit: list[Record]
    check: list[Record]
    if args.fit is None:
        fit, check = [], [r for r in timed if r.get("kind") != "device" and "error" not in r]
    else:
        fit, check = split(timed, args.fit_fraction)
        _write(args.fit, device, fit)
    _write(args.check, device, check)
    for name, part in (("fit", fit), ("check", check)):
        kinds: dict[str, int] = {}
        for r in part:
            kinds[str(r["kind"])] = kinds.get(str(r["kind"]), 0) + 1
        print(f"{name}: {len(part)} records {kinds}")  # noqa: T201
    return 0


if __name__ == "__main__":
    sys.exit(main())
