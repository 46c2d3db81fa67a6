"""Reading PyTorch profiler Chrome traces: GPU kernels, their launching ops and shapes.

A trace from ``torch.profiler`` (``export_chrome_trace``) holds ``traceEvents``:

- GPU kernels: ``"cat": "kernel"`` (``"Kernel"`` in older versions), ``ph: "X"``, ``ts``/``dur``
  in microseconds, ``args`` with ``grid``, ``block``, ``correlation`` and ``External id``;
- CPU operators: ``"cat": "cpu_op"``, with ``args["External id"]`` and, when profiled with
  ``record_shapes=True``, ``"Input Dims"`` (and ``"Concrete Inputs"`` for scalars).

A kernel's ``External id`` names the innermost operator that launched it (``aten::mm``,
``aten::_flash_attention_forward``...), which is how shapes reach kernels.
"""

from __future__ import annotations

import gzip
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from archsim.errors import ValidationDataError

__all__ = ["TraceKernel", "TorchTrace", "read_torch_trace", "classify_kernel", "parse_trace_events"]

_CATEGORIES = (
    (
        "attn_bwd",
        r"flash_bwd(?!_dot_do_o|_convert)|bprop|cutlassb|attention_backward|flex_attention_backward",
    ),
    ("attn_prep", r"flash_bwd_dot_do_o|flash_bwd_convert|dot_do_o|convert_dq"),
    ("attn_combine", r"splitkv_combine|combine_kernel"),
    (
        "attn_fwd",
        r"flash_fwd|fprop|fmha|cutlassf|flash_attention|sdpa|flex_attention|attention_fwd",
    ),
    ("reduce", r"splitkreduce|reduce_kernel|reduction"),
    ("gemm", r"gemm|xmma|nvjet|cublas|cutlass.*(?:tensorop|wgmma)|sm90_.*_tn|s16816|h16816"),
    ("softmax", r"softmax"),
    ("elementwise", r"elementwise|vectorized|copy|fill|unrolled|catarray|transpose|memset|memcpy"),
)


def classify_kernel(name: str) -> str:
    """Category of a kernel name: ``gemm``, ``attn_fwd``, ``attn_bwd``, ``attn_prep``,
    ``attn_combine``, ``softmax``, ``reduce``, ``elementwise`` or ``other``."""
    low = name.lower()
    for cat, pattern in _CATEGORIES:
        if re.search(pattern, low):
            return cat
    return "other"


@dataclass(frozen=True)
class TraceKernel:
    """One GPU kernel execution from a trace.

    Attributes
    ----------
    name : kernel name. category : :func:`classify_kernel`. ts_us, dur_us : start, duration (µs).
    stream, device : where it ran. grid, block : launch dims (or None).
    external_id : id of the CPU op that launched it (or None). op_name : that op's name.
    input_dims : the op's ``Input Dims`` (record_shapes) or ``()``.
    concrete_inputs : the op's ``Concrete Inputs`` (scalars as text) or ``()``.
    """

    name: str
    category: str
    ts_us: float
    dur_us: float
    stream: int
    device: int
    grid: tuple[int, ...] | None = None
    block: tuple[int, ...] | None = None
    external_id: int | None = None
    op_name: str | None = None
    input_dims: tuple[tuple[int, ...], ...] = ()
    concrete_inputs: tuple[str, ...] = ()
    args: Mapping[str, object] = field(default_factory=dict, compare=False)


@dataclass(frozen=True)
class TorchTrace:
    """Kernels of a trace in start order, and the source path."""

    path: str
    kernels: tuple[TraceKernel, ...]

    @property
    def gpu_time_us(self) -> float:
        """Sum of kernel durations (µs)."""
        return float(sum(k.dur_us for k in self.kernels))


def _dims(value: object) -> tuple[tuple[int, ...], ...]:
    if not isinstance(value, list):
        return ()
    out = []
    for d in value:
        out.append(
            tuple(int(x) for x in d)
            if isinstance(d, list) and all(isinstance(x, (int, float)) for x in d)
            else ()
        )
    return tuple(out)


def _triple(value: object) -> tuple[int, ...] | None:
    if isinstance(value, list) and value and all(isinstance(x, (int, float)) for x in value):
        return tuple(int(x) for x in value)
    return None


def parse_trace_events(
    events: Sequence[Mapping[str, object]], *, source: str = "<trace>"
) -> TorchTrace:
    """Build a :class:`TorchTrace` from a list of Chrome trace events."""
    ops: dict[int, Mapping[str, object]] = {}
    for ev in events:
        if not isinstance(ev, Mapping):
            continue
        cat = str(ev.get("cat", "")).lower()
        if cat in ("cpu_op", "operator") and isinstance(ev.get("args"), Mapping):
            ext = ev["args"].get("External id")  # type: ignore[union-attr]
            if isinstance(ext, int):
                prev = ops.get(ext)
                # keep the innermost (latest-starting) op of an id
                if prev is None or float(ev.get("ts", 0)) >= float(prev.get("ts", 0)):  # type: ignore[arg-type]
                    ops[ext] = ev
    kernels = []
    for ev in events:
        if not isinstance(ev, Mapping) or str(ev.get("cat", "")).lower() != "kernel":
            continue
        if ev.get("ph", "X") != "X":
            continue
        args = ev.get("args") if isinstance(ev.get("args"), Mapping) else {}
        ext = args.get("External id")  # type: ignore[union-attr]
        op = ops.get(ext) if isinstance(ext, int) else None
        op_args = op.get("args", {}) if op else {}
        name = str(ev.get("name", ""))
        try:
            ts, dur = float(ev["ts"]), float(ev.get("dur", 0.0))  # type: ignore[arg-type]
        except (KeyError, TypeError, ValueError):
            raise ValidationDataError(
                "kernel event without numeric ts/dur",
                path=f"{source}:{name[:40]}",
                expected="ts, dur in µs",
                got={k: ev.get(k) for k in ("ts", "dur")},
            ) from None
        kernels.append(
            TraceKernel(
                name=name,
                category=classify_kernel(name),
                ts_us=ts,
                dur_us=dur,
                stream=int(args.get("stream", ev.get("tid", 0)) or 0),  # type: ignore[union-attr, arg-type]
                device=int(args.get("device", ev.get("pid", 0)) or 0),  # type: ignore[union-attr, arg-type]
                grid=_triple(args.get("grid")),
                block=_triple(args.get("block")),  # type: ignore[union-attr]
                external_id=ext if isinstance(ext, int) else None,
                op_name=str(op.get("name")) if op else None,
                input_dims=_dims(op_args.get("Input Dims")),  # type: ignore[union-attr]
                concrete_inputs=tuple(str(x) for x in op_args.get("Concrete Inputs", []) or []),  # type: ignore[union-attr]
                args=dict(args),  # type: ignore[arg-type]
            )
        )
    kernels.sort(key=lambda k: (k.ts_us, k.stream))
    return TorchTrace(source, tuple(kernels))


def read_torch_trace(path: str | Path) -> TorchTrace:
    """Read a PyTorch profiler Chrome trace (``.json`` or ``.json.gz``).

    Raises
    ------
    ValidationDataError
        Unreadable file, not JSON, or no ``traceEvents`` list.
    """
    p = Path(path)
    try:
        raw = gzip.decompress(p.read_bytes()) if p.suffix == ".gz" else p.read_bytes()
        doc = json.loads(raw)
    except OSError as exc:
        raise ValidationDataError(
            "cannot read trace", path=str(p), expected="a readable file", got=exc.strerror
        ) from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ValidationDataError(
            "trace is not JSON", path=str(p), expected="Chrome trace JSON", got=str(exc)[:80]
        ) from None
    events = doc.get("traceEvents") if isinstance(doc, dict) else doc
    if not isinstance(events, list):
        raise ValidationDataError(
            "no traceEvents list",
            path=str(p),
            expected='{"traceEvents": [...]}',
            got=type(events).__name__,
        )
    return parse_trace_events(events, source=str(p))
