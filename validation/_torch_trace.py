"""Reading PyTorch profiler Chrome traces: GPU kernels, their launching ops and shapes.

A trace from ``torch.profiler`` (``export_chrome_trace``) holds ``traceEvents``:

- GPU kernels: ``"cat": "kernel"`` (``"Kernel"`` in older versions), ``ph: "X"``, ``ts``/``dur``
  in microseconds, ``args`` with ``grid``, ``block``, ``correlation`` and ``External id``;
- CPU operators: ``"cat": "cpu_op"``, with ``args["External id"]`` and, when profiled with
  ``record_shapes=True``, ``"Input Dims"`` (and ``"Concrete Inputs"`` for scalars).

- CUDA API calls: ``"cat": "cuda_runtime"`` / ``"cuda_driver"`` (``cudaLaunchKernel``,
  ``cuLaunchKernelEx``...) on the CPU thread, with ``args["correlation"]``;
- flow events ``"cat": "ac2g"`` (``ph`` ``s`` at the launch, ``f`` at the kernel) whose ``id``
  is that correlation id; ``gpu_memcpy`` / ``gpu_memset`` activities (``args["bytes"]``).

A kernel is tied to the operator that launched it by the profiler's correlation id: kernel
``correlation`` -> the runtime/driver launch call with the same id -> the CPU operators on
that thread whose time span contains the call (outermost to innermost: ``op_stack``; the
innermost is ``op_name``, whose ``Input Dims`` / ``Input type`` / ``Concrete Inputs`` are the
kernel's shapes). A kernel with no launch call in the trace falls back to its ``External id``.
"""

from __future__ import annotations

import bisect
import gzip
import json
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from archsim.errors import ValidationDataError

__all__ = [
    "TraceKernel",
    "TorchTrace",
    "read_torch_trace",
    "classify_kernel",
    "parse_trace_events",
    "shapes_of",
]

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
    input_dims : the op's ``Input Dims`` (record_shapes) or ``()``; ``()`` for a
        non-tensor argument or a tensor list. list_dims : per argument, the shapes of a
        tensor list (``aten::cat``) or ``()``. input_types : the op's ``Input type``
        (``c10::BFloat16``, ``float``, ``TensorList``, ``Scalar``...) or ``()``.
    concrete_inputs : the op's ``Concrete Inputs`` (scalars as text) or ``()``.
    op_stack : names of the CPU ops enclosing the launch, outermost first (ends with
        ``op_name``). stack_args : those ops' ``args`` (same order).
    correlation : the profiler's correlation id (or None).
    input_strides : the op's ``Input Strides`` (elements; recorded with the shapes by recent
        PyTorch) or ``()``: which inputs are transposed or broadcast.
    step : the innermost ``record_function`` range (``user_annotation``: ``ProfilerStep#3``,
        ``layer_step_0``) around the launch, or None.
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
    list_dims: tuple[tuple[tuple[int, ...], ...], ...] = ()
    input_types: tuple[str, ...] = ()
    op_stack: tuple[str, ...] = ()
    correlation: int | None = None
    stack_args: tuple[Mapping[str, object], ...] = field(default=(), compare=False, repr=False)
    step: str | None = None
    input_strides: tuple[tuple[int, ...], ...] = ()

    @property
    def has_shapes(self) -> bool:
        """Whether the launching op carries ``record_shapes`` input dims."""
        return any(self.input_dims) or any(self.list_dims)


@dataclass(frozen=True)
class TorchTrace:
    """Kernels of a trace in start order, the source path, and the GPU time of memcpy /
    memset activities (µs; not kernels, not compared)."""

    path: str
    kernels: tuple[TraceKernel, ...]
    memops_us: float = 0.0
    memops: int = 0

    @property
    def gpu_time_us(self) -> float:
        """Sum of kernel durations (µs)."""
        return float(sum(k.dur_us for k in self.kernels))


def _shape(d: object) -> tuple[int, ...] | None:
    if isinstance(d, list) and all(
        isinstance(x, (int, float)) and not isinstance(x, bool) and 0 <= x < 2**62 for x in d
    ):
        return tuple(int(x) for x in d)
    return None


def _dims(value: object) -> tuple[tuple[int, ...], ...]:
    if not isinstance(value, list):
        return ()
    return tuple(_shape(d) or () for d in value)


def _list_dims(value: object) -> tuple[tuple[tuple[int, ...], ...], ...]:
    """Per argument: the shapes of a tensor list (a list of lists), else ``()``."""
    if not isinstance(value, list):
        return ()
    out = []
    for d in value:
        shapes = [_shape(x) for x in d] if isinstance(d, list) and d else []
        lists = bool(shapes) and all(isinstance(x, list) for x in d)
        out.append(tuple(x for x in shapes if x is not None) if lists else ())
    return tuple(out) if any(out) else ()


def _num(value: object, default: float = 0.0) -> float:
    try:
        x = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError, OverflowError):
        return default
    return x if x == x and abs(x) != float("inf") else default


def _hashable(value: object) -> object:
    return value if isinstance(value, (int, float, str, type(None))) else repr(value)


class _OpIndex:
    """CPU ops per (pid, tid), to find the ops whose span contains a launch call."""

    def __init__(self, ops: Sequence[Mapping[str, object]]) -> None:
        by_thread: dict[tuple[object, object], list[tuple[float, float, Mapping[str, object]]]]
        by_thread = {}
        for ev in ops:
            ts, dur = _num(ev.get("ts")), max(0.0, _num(ev.get("dur")))
            key = (_hashable(ev.get("pid")), _hashable(ev.get("tid")))
            by_thread.setdefault(key, []).append((ts, ts + dur, ev))
        self._threads = {}
        for key, spans in by_thread.items():
            spans.sort(key=lambda x: (x[0], -x[1]))
            parent: list[int] = []
            stack: list[int] = []
            for i, (ts, _end, _ev) in enumerate(spans):
                while stack and spans[stack[-1]][1] <= ts:
                    stack.pop()
                parent.append(stack[-1] if stack else -1)
                stack.append(i)
            self._threads[key] = (spans, [x[0] for x in spans], parent)

    def stack_at(self, pid: object, tid: object, t: float) -> list[Mapping[str, object]]:
        """Ops on thread (pid, tid) whose span contains ``t``, outermost first."""
        entry = self._threads.get((_hashable(pid), _hashable(tid)))
        if entry is None:
            return []
        spans, starts, parent = entry
        i = bisect.bisect_right(starts, t) - 1
        while i >= 0 and spans[i][1] < t:
            i = parent[i]
        out = []
        while i >= 0:
            out.append(spans[i][2])
            i = parent[i]
        return out[::-1]


def _triple(value: object) -> tuple[int, ...] | None:
    shape = _shape(value)
    return shape if shape else None


def parse_trace_events(
    events: Sequence[Mapping[str, object]], *, source: str = "<trace>"
) -> TorchTrace:
    """Build a :class:`TorchTrace` from a list of Chrome trace events."""
    ops: dict[int, Mapping[str, object]] = {}
    cpu_ops: list[Mapping[str, object]] = []
    launches: dict[int, Mapping[str, object]] = {}
    memops_us, memops = 0.0, 0
    annotations: list[Mapping[str, object]] = []
    for ev in events:
        if not isinstance(ev, Mapping):
            continue
        cat = str(ev.get("cat", "")).lower()
        ev_args = ev.get("args")
        if not isinstance(ev_args, Mapping):
            continue
        if cat in ("cpu_op", "operator") and ev.get("ph", "X") == "X":
            cpu_ops.append(ev)
            ext = ev_args.get("External id")
            if isinstance(ext, int):
                prev = ops.get(ext)
                # keep the innermost (latest-starting) op of an id
                if prev is None or _num(ev.get("ts")) >= _num(prev.get("ts")):
                    ops[ext] = ev
        elif cat in ("cuda_runtime", "cuda_driver", "runtime"):
            corr = ev_args.get("correlation")
            if isinstance(corr, int):
                launches[corr] = ev
        elif cat == "user_annotation" and ev.get("ph", "X") == "X":
            annotations.append(ev)
        elif cat in ("gpu_memcpy", "gpu_memset") and ev.get("ph", "X") == "X":
            memops += 1
            memops_us += max(0.0, _num(ev.get("dur")))
    index = _OpIndex(cpu_ops)
    steps = _OpIndex(annotations)
    kernels = []
    for ev in events:
        if not isinstance(ev, Mapping) or str(ev.get("cat", "")).lower() != "kernel":
            continue
        if ev.get("ph", "X") != "X":
            continue
        args = _mapping(ev.get("args"))
        name = str(ev.get("name", ""))
        ts, dur = _num(ev.get("ts"), math.nan), _num(ev.get("dur", 0.0), math.nan)
        if math.isnan(ts) or math.isnan(dur) or dur < 0:
            raise ValidationDataError(
                "kernel event without numeric ts/dur",
                path=f"{source}:{name[:40]}",
                expected="finite ts and dur >= 0, in µs",
                got={k: ev.get(k) for k in ("ts", "dur")},
            )
        corr = args.get("correlation")
        launch = launches.get(corr) if isinstance(corr, int) else None
        stack = (
            index.stack_at(launch.get("pid"), launch.get("tid"), _num(launch.get("ts")))
            if launch is not None
            else []
        )
        around = (
            steps.stack_at(launch.get("pid"), launch.get("tid"), _num(launch.get("ts")))
            if launch is not None
            else []
        )
        ext = args.get("External id")
        if not stack and isinstance(ext, int) and ext in ops:
            stack = [ops[ext]]
        op = stack[-1] if stack else None
        op_args = _mapping(op.get("args")) if op else {}
        types = op_args.get("Input type", [])
        kernels.append(
            TraceKernel(
                name=name,
                category=classify_kernel(name),
                ts_us=ts,
                dur_us=dur,
                stream=int(_num(args.get("stream", ev.get("tid", 0)))),
                device=int(_num(args.get("device", ev.get("pid", 0)))),
                grid=_triple(args.get("grid")),
                block=_triple(args.get("block")),
                external_id=ext if isinstance(ext, int) else None,
                op_name=str(op.get("name")) if op else None,
                input_dims=_dims(op_args.get("Input Dims")),
                concrete_inputs=tuple(str(x) for x in _as_list(op_args.get("Concrete Inputs"))),
                args=dict(args),
                list_dims=_list_dims(op_args.get("Input Dims")),
                input_types=tuple(str(x) for x in _as_list(types)),
                op_stack=tuple(str(o.get("name", "")) for o in stack),
                stack_args=tuple(_mapping(o.get("args")) for o in stack),
                correlation=corr if isinstance(corr, int) else None,
                step=str(around[-1].get("name")) if around else None,
                input_strides=_dims(op_args.get("Input Strides")),
            )
        )
    kernels.sort(key=lambda k: (k.ts_us, k.stream))
    return TorchTrace(source, tuple(kernels), memops_us, memops)


def shapes_of(args: Mapping[str, object]) -> tuple[tuple[int, ...], ...]:
    """``Input Dims`` of an op's ``args`` as shapes (``()`` for non-tensor arguments)."""
    return _dims(args.get("Input Dims"))


def _mapping(value: object) -> Mapping[str, object]:
    return value if isinstance(value, Mapping) else {}


def _as_list(value: object) -> list[object]:
    return value if isinstance(value, list) else []


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
    except (json.JSONDecodeError, UnicodeDecodeError, EOFError, RecursionError) as exc:
        raise ValidationDataError(
            "trace is not JSON",
            path=str(p),
            expected="Chrome trace JSON (UTF-8, or gzip for .gz)",
            got=f"{type(exc).__name__}: {str(exc)[:80]}",
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
