"""Record schema, derived fields and the JSON Lines writer (pure: standard library only).

Schema (issue 5): a first ``{"kind": "device", ...}`` record, then one record per case
with the key fields of :data:`validation.harness.cases.KEY_FIELDS` plus ``ms`` (median
time per call, milliseconds). Records with an ``"error"`` field carry no ``ms`` and are
skipped by readers.

Derived fields (added by :func:`derive_fields`; conventions of DESIGN.md):

- ``flops``: a multiply-add counts 2. GEMM ``2*M*N*K``; attention forward
  ``4*B*Hq*Sq*Skv*D``, times ``1 - Sq/(2*Skv)`` causal-masked pairs when causal
  (0.5 for Sq = Skv); attention backward 2.5x the forward (5 matmuls instead of 2);
  flex ``4*B*H*S*S*D*density``.
- ``min_bytes``: compulsory DRAM bytes, each input read once and each output written once
  (bf16 = 2 bytes): attention ``Q,K,V,O`` (backward: ``Q,K,V,O,dO`` read and
  ``dQ,dK,dV`` written); unfused attention counts only ``Q,K,V,O`` too.
- ``tflops = flops / s / 1e12``, ``gbps = min_bytes / s / 1e9``.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from pathlib import Path
from typing import IO

__all__ = ["REQUIRED_FIELDS", "JsonlWriter", "derive_fields", "validate_record"]

#: Fields every successful record of a kind must hold (besides ``kind``).
REQUIRED_FIELDS: dict[str, tuple[str, ...]] = {
    "device": (
        "name",
        "sms",
        "l2_bytes",
        "smem_per_sm",
        "torch",
        "cuda",
        "triton",
        "driver",
        "date",
        "hostname",
        "sm_clock_max_mhz",
        "mem_clock_mhz",
        "power_limit_w",
        "command",
    ),
    "gemm": ("M", "N", "K", "dtype", "ms"),
    "attn": ("B", "Hq", "Hkv", "Sq", "Skv", "D", "causal", "backend", "dtype", "pass_", "ms"),
    "decode": ("B", "Hq", "Hkv", "Sq", "Skv", "D", "causal", "backend", "dtype", "pass_", "ms"),
    "attn_unfused": ("B", "H", "S", "D", "dtype", "ms"),
    "flex_block_sparse": ("B", "H", "S", "D", "block", "density", "ms"),
    "ceiling": ("name", "ms"),
}

_DTYPE_BYTES = {"bf16": 2, "fp16": 2, "fp32": 4, "fp8": 1}


def _ints(r: Mapping[str, object], keys: tuple[str, ...]) -> list[int]:
    """``int(r[k])`` for each of ``keys`` (a record's shape fields, as ints)."""
    # a record's shape fields are JSON numbers (int() rejects anything else)
    return [int(r[k]) for k in keys]  # type: ignore[call-overload]


def _attn_flops(r: Mapping[str, object]) -> float:
    b, hq, sq, skv, d = _ints(r, ("B", "Hq", "Sq", "Skv", "D"))
    frac = 1.0 - sq / (2.0 * skv) if r.get("causal") and sq > 1 else 1.0
    fwd = 4.0 * b * hq * sq * skv * d * frac
    return fwd * 2.5 if r.get("pass_") == "bwd" else fwd


def _attn_bytes(r: Mapping[str, object], elem: int) -> float:
    b, hq, hkv, sq, skv, d = _ints(r, ("B", "Hq", "Hkv", "Sq", "Skv", "D"))
    q = b * hq * sq * d * elem
    kv = b * hkv * skv * d * elem
    if r.get("pass_") == "bwd":
        return 4.0 * q + 4.0 * kv  # read Q,O,dO + write dQ; read K,V + write dK,dV
    return 2.0 * q + 2.0 * kv


def _flops_bytes(r: Mapping[str, object]) -> tuple[float, float] | None:
    kind = r.get("kind")
    elem = _DTYPE_BYTES.get(str(r.get("dtype", "bf16")), 2)
    if kind == "gemm" or (kind == "ceiling" and "M" in r):
        m, n, k = _ints(r, ("M", "N", "K"))
        return 2.0 * m * n * k, float(elem * (m * k + k * n + m * n))
    if kind in ("attn", "decode"):
        return _attn_flops(r), _attn_bytes(r, elem)
    if kind in ("attn_unfused", "flex_block_sparse"):
        b, h, s, d = _ints(r, ("B", "H", "S", "D"))
        # density and bytes are JSON numbers (float() rejects anything else)
        density = float(r.get("density", 1.0)) if kind == "flex_block_sparse" else 1.0  # type: ignore[arg-type]
        return 4.0 * b * h * s * s * d * density, 4.0 * b * h * s * d * elem
    if kind == "ceiling" and "bytes" in r:  # a copy reads and writes every byte
        return 0.0, float(r["bytes"]) * (2.0 if r.get("name") == "d2d_copy" else 1.0)  # type: ignore[arg-type]
    return None


def derive_fields(record: Mapping[str, object]) -> dict[str, object]:
    """Return a copy of ``record`` with ``flops``, ``min_bytes``, ``tflops``, ``gbps`` added.

    Records without ``ms`` (errors) or of kinds without a formula are returned unchanged.
    """
    out = dict(record)
    fb = _flops_bytes(record)
    ms = record.get("ms")
    if fb is None or not isinstance(ms, (int, float)) or ms <= 0 or "error" in record:
        return out
    flops, nbytes = fb
    seconds = float(ms) * 1e-3
    if flops > 0:
        out["flops"] = flops
        out["tflops"] = round(flops / seconds / 1e12, 3)
    out["min_bytes"] = nbytes
    out["gbps"] = round(nbytes / seconds / 1e9, 2)
    return out


def validate_record(record: Mapping[str, object]) -> list[str]:
    """Problems with a record (empty list when valid).

    A record is valid when its ``kind`` is known and, unless it carries ``error``, every
    field of :data:`REQUIRED_FIELDS` is present and ``ms`` is a finite positive number.
    """
    kind = record.get("kind")
    if kind not in REQUIRED_FIELDS:
        return [f"unknown kind {kind!r}"]
    if "error" in record:
        return []
    problems = [
        f"{kind}: missing field {f!r}" for f in REQUIRED_FIELDS[str(kind)] if f not in record
    ]
    if kind != "device" and "ms" in record:
        ms = record["ms"]
        if not isinstance(ms, (int, float)) or not math.isfinite(ms) or ms <= 0:
            problems.append(f"{kind}: expected ms > 0, got {ms!r}")
    return problems


class JsonlWriter:
    """Append records to a JSON Lines file, one per line, flushed after every record.

    Flushing per record means a run cut short (time limit, crash) keeps every record
    written so far.

    Parameters
    ----------
    path
        File to write (created or truncated; parent folders are created).
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._fh: IO[str] = self.path.open("w", encoding="utf-8")
        self.count = 0

    def write(self, record: Mapping[str, object]) -> None:
        """Write one record (keys kept in insertion order) and flush it to disk."""
        self._fh.write(json.dumps(dict(record), allow_nan=False, default=str) + "\n")
        self._fh.flush()
        self.count += 1

    def close(self) -> None:
        """Close the file."""
        self._fh.close()

    def __enter__(self) -> JsonlWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
