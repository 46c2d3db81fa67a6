"""Measured kernel traces side by side with simulated kernels, and one merged Perfetto trace.

Steps: read the PyTorch trace (:mod:`._torch_trace`: kernels tied to their launching ops by
correlation id), group kernels by the op instance that launched them, simulate each op from
its shapes (:mod:`._trace_ops`: GEMMs and SDPA with the GPU model as ``archsim validate``
does, norms and softmax with the library cascades, element-wise ops and copies with the
memory-bound kernel model; ``--shapes`` hints or FlashAttention-2's template arguments and
grid where the trace has no shapes), match measured to simulated kernels (by category in
launch order, or op-for-op where the op is simulated as a whole), and optionally attach
ncu DRAM bytes per kernel. Kernels that cannot be simulated are listed with the reason and
their time; the share of measured kernel time that was simulated is reported.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

from archsim.errors import ArchsimError, ValidationDataError
from archsim.gpu import GpuModel, KernelTiming

from ._ncu import NcuKernel
from ._predict import UnsupportedRecord
from ._torch_trace import TorchTrace, TraceKernel, classify_kernel, shapes_of
from ._trace_ops import simulate_op, simulate_record

__all__ = [
    "KernelMatch",
    "TraceComparison",
    "compare_trace",
    "infer_record",
    "load_shape_hints",
    "write_merged_trace",
]

_FA2_TRAITS = re.compile(
    r"flash_fwd_kernel<.*?Flash_fwd_kernel_traits<(\d+),\s*(\d+),\s*(\d+),\s*(\d+)"
)
_FA2_BOOLS = re.compile(r">\s*>\s*,\s*(true|false)\s*,\s*(true|false)")


@dataclass(frozen=True)
class KernelMatch:
    """One measured kernel and the simulated kernel matched to it (if any).

    ``op_us`` is the measured time the simulation stands for: the kernel's own duration, or,
    for an op simulated as a whole (norm cascades, element-wise), the sum over the op's
    kernels; those other kernels carry ``part_of`` (index of the match holding the op's
    simulated time) and no ``sim``. ``reason`` says why a kernel was not simulated.
    """

    kernel: TraceKernel
    op_label: str
    sim: KernelTiming | None
    ncu: NcuKernel | None = None
    op_us: float | None = None
    part_of: int | None = None
    path: str = ""
    reason: str = ""

    @property
    def sim_us(self) -> float | None:
        """Simulated duration (µs)."""
        return None if self.sim is None else self.sim.time_s * 1e6

    @property
    def meas_us(self) -> float:
        """Measured time the simulation is compared with (µs)."""
        return self.kernel.dur_us if self.op_us is None else self.op_us

    @property
    def simulated(self) -> bool:
        """Whether this kernel's time is covered by a simulation."""
        return self.sim is not None or self.part_of is not None

    @property
    def err_pct(self) -> float | None:
        """(simulated - measured) / measured, percent."""
        if self.sim is None or self.meas_us <= 0:
            return None
        return (self.sim.time_s * 1e6 - self.meas_us) / self.meas_us * 100.0


@dataclass(frozen=True)
class TraceComparison:
    """All matches of a trace, in launch order.

    ``memops_us``: GPU time of memcpy/memset activities (not kernels, not compared)."""

    source: str
    arch: str
    matches: tuple[KernelMatch, ...]
    memops_us: float = 0.0
    memops: int = 0

    @property
    def measured_us(self) -> float:
        """Measured kernel time of the trace (µs)."""
        return float(sum(m.kernel.dur_us for m in self.matches))

    @property
    def simulated_fraction(self) -> float:
        """Share of the measured kernel time that was simulated (0..1)."""
        total = self.measured_us
        covered = sum(m.kernel.dur_us for m in self.matches if m.simulated)
        return covered / total if total > 0 else 0.0

    def unknown(self) -> list[tuple[str, str, int, float, str]]:
        """Kernels not simulated, grouped: ``(kernel, op, count, total µs, reason)``,
        longest total first."""
        groups: dict[tuple[str, str], list[KernelMatch]] = {}
        for m in self.matches:
            if not m.simulated:
                key = (_short(m.kernel.name), m.kernel.op_name or "-")
                groups.setdefault(key, []).append(m)
        rows = [
            (name, op, len(ms), float(sum(m.kernel.dur_us for m in ms)), ms[0].reason)
            for (name, op), ms in groups.items()
        ]
        return sorted(rows, key=lambda r: -r[3])

    def table(self) -> str:
        """Side-by-side text table (kernel, category, op, measured µs, simulated µs, error)."""
        head = (
            f"{'#':>4} {'kernel':<46} {'cat':<12} {'op':<30} "
            f"{'meas us':>10} {'sim us':>10} {'err %':>7}"
        )
        rows = [head, "-" * len(head)]
        for i, m in enumerate(self.matches):
            sim = f"{m.sim_us:10.2f}" if m.sim_us is not None else f"{'-':>10}"
            if m.part_of is not None:
                sim = f"{'in #' + str(m.part_of):>10}"
            err = f"{m.err_pct:+7.1f}" if m.err_pct is not None else f"{'-':>7}"
            name = _short(m.kernel.name)
            rows.append(
                f"{i:>4} {name:<46.46} {m.kernel.category:<12} {m.op_label:<30.30} "
                f"{m.kernel.dur_us:10.2f} {sim} {err}"
            )
            if m.op_us is not None and m.sim is not None and m.op_us != m.kernel.dur_us:
                rows.append(f"{'':>4}   op total measured {m.op_us:10.2f} us ({m.path})")
            if m.ncu is not None and m.ncu.dram_bytes is not None:
                pred = m.sim.dram_read_bytes + m.sim.dram_write_bytes if m.sim else math.nan
                rows.append(
                    f"{'':>4}   ncu DRAM {m.ncu.dram_bytes / 1e6:10.2f} MB, "
                    f"simulated {pred / 1e6:10.2f} MB"
                )
        return "\n".join(rows)

    def unknown_text(self, limit: int = 20) -> str:
        """The unknown-kernels section (empty when every kernel was simulated)."""
        rows = self.unknown()
        if not rows:
            return ""
        n = sum(r[2] for r in rows)
        us = sum(r[3] for r in rows)
        out = [f"unknown kernels ({n} kernels, {us:.1f} us, not simulated):"]
        for name, op, count, total, reason in rows[:limit]:
            out.append(f"  {total:10.2f} us  {count:>4}x  {name[:50]:<50}  op {op}: {reason}")
        if len(rows) > limit:
            out.append(f"  ... and {len(rows) - limit} more kernel names")
        return "\n".join(out)

    def steps(self) -> list[tuple[str, float, float, float]]:
        """Per ``record_function`` step of the trace: ``(name, measured µs of all its kernels,
        measured µs of its simulated kernels, simulated µs)``, in trace order; empty when
        the trace has no step ranges."""
        out: dict[str, list[float]] = {}
        for m in self.matches:
            if m.kernel.step is None:
                continue
            row = out.setdefault(m.kernel.step, [0.0, 0.0, 0.0])
            row[0] += m.kernel.dur_us
            if m.sim is not None:
                row[1] += m.meas_us
                row[2] += m.sim_us or 0.0
        return [(name, *vals) for name, vals in out.items()]  # type: ignore[misc]

    def spans(self) -> dict[str, float]:
        """Per ``record_function`` step: µs from its first kernel's start to its last kernel's
        end (kernels plus the GPU idle time between them: host dispatch in an eager trace)."""
        ends: dict[str, list[float]] = {}
        for m in self.matches:
            k, step = m.kernel, m.kernel.step
            if step is not None:
                lo_hi = ends.setdefault(step, [k.ts_us, k.ts_us + k.dur_us])
                lo_hi[0] = min(lo_hi[0], k.ts_us)
                lo_hi[1] = max(lo_hi[1], k.ts_us + k.dur_us)
        return {name: hi - lo for name, (lo, hi) in ends.items()}

    def summary_text(self) -> str:
        """Coverage, totals over simulated kernels, per-kernel MAPE, unknown time."""
        carriers = [m for m in self.matches if m.sim is not None]
        meas = sum(m.meas_us for m in carriers)
        sim = sum(m.sim_us or 0.0 for m in carriers)
        errs = [abs(m.err_pct) for m in carriers if m.err_pct is not None]
        mape = sum(errs) / len(errs) if errs else math.nan
        total = self.measured_us
        covered = sum(m.kernel.dur_us for m in self.matches if m.simulated)
        n_sim = sum(m.simulated for m in self.matches)
        lines = [
            f"kernels: {len(self.matches)} ({n_sim} simulated); simulated {covered:.1f} of "
            f"{total:.1f} us measured kernel time ({self.simulated_fraction * 100:.1f}%)",
            f"simulated ops: measured {meas:.1f} us vs simulated {sim:.1f} us "
            f"({(sim - meas) / meas * 100 if meas else math.nan:+.1f}%); "
            f"per-kernel MAPE {mape:.1f}% over {len(errs)}; "
            f"unmatched kernels {total - covered:.1f} us",
        ]
        spans = self.spans()
        for name, all_us, meas_s, sim_s in self.steps():
            err = (sim_s - meas_s) / meas_s * 100 if meas_s else math.nan
            span = spans.get(name, all_us)
            lines.append(
                f"step {name}: span {span:.1f} us = kernels {all_us:.1f} us + GPU idle "
                f"{span - all_us:.1f} us between them; simulated ops measured {meas_s:.1f} us "
                f"vs simulated {sim_s:.1f} us ({err:+.1f}%)"
            )
        if self.memops:
            lines.append(
                f"memcpy/memset activities: {self.memops}, {self.memops_us:.1f} us (not compared)"
            )
        return "\n".join(lines)


def _short(name: str) -> str:
    base = re.sub(r"^void\s+", "", name)
    base = re.sub(r"^[\w:]*::", "", base.split("<")[0]) if "<" in base else base
    return base or name


#: SDPA-level ops: (layout of q/k, index of is_causal among Concrete Inputs or None)
_ATTN_OPS: dict[str, tuple[str, int | None]] = {
    "scaled_dot_product_attention": ("BHSD", 5),
    "_scaled_dot_product_flash_attention": ("BHSD", 4),
    "_scaled_dot_product_cudnn_attention": ("BHSD", 6),
    "_scaled_dot_product_efficient_attention": ("BHSD", 6),
    "_flash_attention_forward": ("BSHD", 8),
    "_efficient_attention_forward": ("BSHD", 9),
    "_flash_attention_backward": ("BSHD", None),
    "_efficient_attention_backward": ("BSHD", None),
    "_scaled_dot_product_flash_attention_backward": ("BHSD", None),
    "_scaled_dot_product_cudnn_attention_backward": ("BHSD", None),
    "_scaled_dot_product_efficient_attention_backward": ("BHSD", None),
}


def _attn_from_dims(k: TraceKernel) -> dict[str, object] | None:
    """Attention record from the innermost SDPA-level op of the launch stack that has 4-D
    q/k dims; ``is_causal`` from the innermost op of the stack that carries it."""
    stack = list(zip(k.op_stack, k.stack_args, strict=False)) or [
        (k.op_name or "", {"Input Dims": [list(d) for d in k.input_dims]})
    ]
    if not k.stack_args and k.concrete_inputs:
        stack = [
            (
                k.op_name or "",
                {
                    "Input Dims": [list(d) for d in k.input_dims],
                    "Concrete Inputs": list(k.concrete_inputs),
                },
            )
        ]
    dims_op = None
    causal: bool | None = None
    for name, args in reversed(stack):
        op = name.split("::")[-1]
        if op not in _ATTN_OPS:
            continue
        layout, idx = _ATTN_OPS[op]
        dims = [d for d in shapes_of(args) if len(d) == 4]
        if dims_op is None and len(dims) >= 2:
            dims_op = (op, layout, dims)
        concrete = args.get("Concrete Inputs")
        if (
            causal is None
            and idx is not None
            and isinstance(concrete, list)
            and len(concrete) > idx
        ):
            flag = str(concrete[idx]).strip().lower()  # is_causal, or a mask type 0/1/2
            if flag in ("true", "false", "0", "1", "2"):
                causal = flag in ("true", "1", "2")
    if dims_op is None:
        return None
    op, layout, dims = dims_op
    bwd = "backward" in op or k.category == "attn_bwd"
    q, kk = (dims[1], dims[2]) if bwd and len(dims) >= 3 else (dims[0], dims[1])
    if layout == "BSHD":
        (B, Sq, Hq, D), (_, Skv, Hkv, _) = q, kk
    else:
        (B, Hq, Sq, D), (_, Hkv, Skv, _) = q, kk
    names = " ".join(k.op_stack) + " " + k.name.lower()
    backend = (
        "cudnn"
        if "cudnn" in names
        else "efficient"
        if "efficient" in names or "fmha" in names
        else "flash"
    )
    if causal is None:
        fa = _fa2_from_name(k)
        causal = bool(fa and fa["causal"])
    types = next((_as_types(a) for n, a in reversed(stack) if n.split("::")[-1] == op), [])
    dtype = "fp16" if types and types[0].strip().lower() == "c10::half" else "bf16"
    return {
        "kind": "decode" if Sq == 1 else "attn",
        "B": B,
        "Hq": Hq,
        "Hkv": Hkv,
        "Sq": Sq,
        "Skv": Skv,
        "D": D,
        "causal": causal,
        "backend": backend,
        "dtype": dtype,
        "pass_": "bwd" if bwd else "fwd",
    }


def _as_types(args: Mapping[str, object]) -> list[str]:
    types = args.get("Input type")
    return [str(t) for t in types] if isinstance(types, list) else []


def _fa2_from_name(k: TraceKernel) -> dict[str, object] | None:
    m = _FA2_TRAITS.search(k.name)
    if not m:
        return None
    d, bm = int(m.group(1)), int(m.group(2))
    bools = _FA2_BOOLS.search(k.name[m.end() :])
    causal = bool(bools and bools.group(2) == "true")
    rec: dict[str, object] = {"D": d, "block_m": bm, "causal": causal}
    if k.grid and len(k.grid) == 3:
        sq = k.grid[0] * bm
        rec.update(
            kind="attn",
            B=k.grid[1],
            Hq=k.grid[2],
            Hkv=k.grid[2],
            Sq=sq,
            Skv=sq,
            backend="flash",
            dtype="bf16",
            pass_="fwd",
            shape_source="grid (Skv = Sq assumed)",
        )
    return rec


def _attn_record(k: TraceKernel) -> dict[str, object] | None:
    if k.category.startswith("attn") or any("attention" in o for o in k.op_stack):
        rec = _attn_from_dims(k)
        if rec is not None:
            return rec
    if k.category == "attn_fwd":
        rec = _fa2_from_name(k)
        if rec is not None and "kind" in rec:
            return rec
    return None


def infer_record(k: TraceKernel) -> dict[str, object] | None:
    """A validate-style record describing the op that launched ``k`` (GEMM or attention),
    or None.

    Uses the launching op's input dims when the trace has them (``record_shapes=True``),
    else FlashAttention-2's kernel template (head dim, tile, causal) and grid
    ``(ceil(Sq/Bm), B, H)`` (self-attention assumed).
    """
    from ._trace_ops import GEMM_OPS, _gemm_record

    if (k.op_name or "").split("::")[-1] in GEMM_OPS and k.input_dims:
        rec = _gemm_record(k)
        if rec is not None:
            return rec
    return _attn_record(k)


def _groups(trace: TorchTrace) -> list[list[int]]:
    """Kernels by launching op instance (the op's External id), in launch order."""
    groups: dict[object, list[int]] = {}
    for i, k in enumerate(trace.kernels):
        ext = k.stack_args[-1].get("External id") if k.stack_args else None
        if not isinstance(ext, int):
            ext = k.external_id
        key = ("ext", ext) if ext is not None else ("k", i)
        groups.setdefault(key, []).append(i)
    return list(groups.values())


def _match_ncu(trace: TorchTrace, ncu: Sequence[NcuKernel]) -> dict[int, NcuKernel]:
    """ncu kernels (launch order) to trace kernels with the same base name and grid, in order.

    The ncu export must come from the same program run as the trace."""
    out: dict[int, NcuKernel] = {}
    pos = 0
    names = [_short(k.name)[:40] for k in trace.kernels]
    grids = [k.grid for k in trace.kernels]
    for nk in ncu:
        base = _short(nk.name)[:40]
        grid = tuple(int(x) for x in re.findall(r"\d+", nk.grid)) or None
        for j in range(pos, len(names)):
            g = grids[j]
            same_grid = grid is None or g is None or tuple(g) == grid
            if names[j] and same_grid and (names[j] in base or base in names[j]):
                out[j] = nk
                pos = j + 1
                break
    return out


def _hint_record(
    op: str,
    shapes: Mapping[str, Sequence[Mapping[str, object]]] | None,
    used: dict[str, int],
) -> dict[str, object] | None:
    key = next((h for h in (shapes or {}) if h == op or (h and h in op)), None)
    if key is None or not shapes or not shapes[key]:
        return None
    hints = shapes[key]
    n = used.get(key, 0)
    used[key] = n + 1
    return dict(hints[n % len(hints)])


def compare_trace(
    trace: TorchTrace,
    model: GpuModel,
    *,
    ncu: Sequence[NcuKernel] = (),
    shapes: Mapping[str, Sequence[Mapping[str, object]]] | None = None,
    arch: object | None = None,
) -> TraceComparison:
    """Simulate the op behind every measured kernel of ``trace`` and match the kernels.

    Parameters
    ----------
    trace
        Measured kernels with their launching ops (``record_shapes`` gives the shapes).
    model
        GPU model.
    ncu
        ncu kernels (launch order) whose DRAM bytes are attached to matching kernels.
    shapes
        For traces recorded without ``record_shapes``: op name (``aten::mm``) -> records
        (validate schema) used in order, cyclically, for that op's launches; a key also
        matches ops whose name contains it (``cudnn_attention``).
    arch
        Architecture for the norm/softmax cascades (default: the preset named like the
        model).

    Raises
    ------
    ValidationDataError
        The trace has no GPU kernels, or no kernel could be simulated (the message says
        whether shapes were missing and how to record them).
    """
    if not trace.kernels:
        raise ValidationDataError(
            "trace has no GPU kernels",
            path=trace.path,
            expected="kernel events (cat 'kernel'): profile with "
            "activities=[ProfilerActivity.CPU, ProfilerActivity.CUDA]",
            got="0 kernels",
        )
    arch = model.hw.name if arch is None else arch
    cache: dict[tuple[object, ...], KernelTiming] = {}
    sim_for: dict[int, KernelTiming] = {}
    extra: dict[int, dict[str, object]] = {}
    used_hint: dict[str, int] = {}
    for idx in _groups(trace):
        first = trace.kernels[idx[0]]
        attn = next((r for r in (_attn_record(trace.kernels[i]) for i in idx) if r), None)
        opsim, reason, hint = None, "", None
        try:
            src = _input_level(trace, idx[0])
            opsim, reason = simulate_op(first, model, arch, cache, attn, src=src)
            if opsim is None:
                hint = _hint_record(first.op_name or "", shapes, used_hint)
                if hint is not None:
                    opsim, reason = simulate_record(hint, model, arch)
                elif shapes:
                    reason += "; no --shapes entry names this op"
        except UnsupportedRecord as exc:
            reason = f"{first.op_name}: {'--shapes entry: ' if hint else ''}{exc}"
        except (ArchsimError, ValueError, OverflowError, ZeroDivisionError) as exc:
            reason = f"{first.op_name}: {type(exc).__name__}: {exc}"
        if opsim is None:
            for i in idx:
                extra[i] = {"reason": reason}
            continue
        if opsim.per_op:
            carrier = idx[0]
            total = opsim.kernels[0]
            if len(opsim.kernels) > 1:
                total = replace(
                    total, time_s=float(sum(s.time_s for s in opsim.kernels)), name=opsim.label
                )
            sim_for[carrier] = total
            op_us = float(sum(trace.kernels[i].dur_us for i in idx))
            extra[carrier] = {"op_us": op_us, "label": opsim.label, "path": opsim.path}
            for i in idx[1:]:
                extra[i] = {"part_of": carrier, "label": opsim.label, "path": opsim.path}
            continue
        used: set[int] = set()
        for i in idx:
            cat = trace.kernels[i].category
            extra[i] = {"label": opsim.label, "path": opsim.path}
            for j, s in enumerate(opsim.kernels):
                if j not in used and classify_kernel(s.name) == cat:
                    sim_for[i] = s
                    used.add(j)
                    break
            else:
                extra[i]["reason"] = f"{opsim.label}: no simulated kernel of category {cat}"
    ncu_for = _match_ncu(trace, ncu) if ncu else {}
    matches = tuple(
        KernelMatch(
            k,
            str(extra.get(i, {}).get("label", "-")),
            sim_for.get(i),
            ncu_for.get(i),
            op_us=extra.get(i, {}).get("op_us"),  # type: ignore[arg-type]
            part_of=extra.get(i, {}).get("part_of"),  # type: ignore[arg-type]
            path=str(extra.get(i, {}).get("path", "")),
            reason=str(extra.get(i, {}).get("reason", "")),
        )
        for i, k in enumerate(trace.kernels)
    )
    cmp = TraceComparison(trace.path, model.hw.name, matches, trace.memops_us, trace.memops)
    if not any(k.has_shapes for k in trace.kernels) and not shapes:
        _raise_nothing_simulated(trace, cmp, shapes)  # template guesses alone are no basis
    if not any(m.simulated for m in matches):
        _raise_nothing_simulated(trace, cmp, shapes)
    return cmp


def _input_level(trace: TorchTrace, i: int) -> str:
    """Where kernel ``i``'s activations come from: ``L2`` when an earlier kernel of the same
    step (``record_function`` range; the whole trace without steps) ran just before it (it
    wrote them, and a decode step's activations are kilobytes beside a 60 MB L2), ``HBM``
    for the first kernel of a step (its input was written before the step)."""
    if i == 0:
        return "HBM"
    return "L2" if trace.kernels[i - 1].step == trace.kernels[i].step else "HBM"


def _raise_nothing_simulated(
    trace: TorchTrace,
    cmp: TraceComparison,
    shapes: Mapping[str, Sequence[Mapping[str, object]]] | None,
) -> None:
    if not any(k.has_shapes for k in trace.kernels) and not shapes:
        raise ValidationDataError(
            "trace has no shapes",
            path=trace.path,
            expected="ops with 'Input Dims': record with torch.profiler.profile("
            "record_shapes=True, ...), or pass --shapes HINTS.json",
            got=f"{len(trace.kernels)} kernels, none with input shapes",
        )
    top = "; ".join(f"{name} ({op}): {reason}" for name, op, _, _, reason in cmp.unknown()[:3])
    raise ValidationDataError(
        "no kernel could be simulated",
        path=trace.path,
        expected="kernels launched by ops archsim models (GEMM, SDPA, norms, element-wise), "
        "or --shapes hints naming their ops",
        got=top,
    )


def write_merged_trace(cmp: TraceComparison, path: str | Path) -> None:
    """One Perfetto/Chrome trace with the measured and simulated timelines as two processes.

    Process 1 is named ``measured`` (one thread per CUDA stream), process 2 ``simulated``;
    each simulated kernel starts where its measured kernel started, so the two tracks line
    up kernel by kernel and the bar lengths show the error.
    """
    events: list[dict[str, object]] = [
        {"ph": "M", "name": "process_name", "pid": 1, "tid": 0, "args": {"name": "measured"}},
        {"ph": "M", "name": "process_name", "pid": 2, "tid": 0, "args": {"name": "simulated"}},
        {"ph": "M", "name": "process_sort_index", "pid": 1, "tid": 0, "args": {"sort_index": 0}},
        {"ph": "M", "name": "process_sort_index", "pid": 2, "tid": 0, "args": {"sort_index": 1}},
    ]
    t0 = min((m.kernel.ts_us for m in cmp.matches), default=0.0)
    streams = sorted({m.kernel.stream for m in cmp.matches})
    for s in streams:
        for pid in (1, 2):
            events.append(
                {
                    "ph": "M",
                    "name": "thread_name",
                    "pid": pid,
                    "tid": s,
                    "args": {"name": f"stream {s}"},
                }
            )
    for m in cmp.matches:
        k = m.kernel
        args: dict[str, object] = {"category": k.category, "op": m.op_label}
        if m.path:
            args["simulated_by"] = m.path
        if not m.simulated:
            args["not_simulated"] = m.reason or "no shapes or model for its op"
            args["launched_by"] = " > ".join(k.op_stack) or "-"
        events.append(
            {
                "ph": "X",
                "cat": "kernel",
                "name": _short(k.name),
                "pid": 1,
                "tid": k.stream,
                "ts": k.ts_us - t0,
                "dur": k.dur_us,
                "args": {**args, "full_name": k.name},
            }
        )
        if m.sim is not None:
            events.append(
                {
                    "ph": "X",
                    "cat": "kernel",
                    "name": m.sim.name,
                    "pid": 2,
                    "tid": k.stream,
                    "ts": k.ts_us - t0,
                    "dur": m.sim.time_s * 1e6,
                    "args": {
                        **args,
                        "err_pct": m.err_pct,
                        "clock_mhz": m.sim.clock_hz / 1e6,
                        "bound": m.sim.bound,
                        **{str(a): str(b) for a, b in m.sim.meta.items()},
                    },
                }
            )
    doc = {
        "traceEvents": events,
        "displayTimeUnit": "ns",
        "otherData": {"source": cmp.source, "arch": cmp.arch, "producer": "archsim compare"},
    }
    Path(path).write_text(json.dumps(doc))


def load_shape_hints(path: str | Path) -> dict[str, list[dict[str, object]]]:
    """Read ``--shapes``: a JSON list of ``{"op": "aten::mm", <record fields>}``.

    Raises
    ------
    ValidationDataError
        Unreadable file, not a list, or an entry without ``op``/``kind``.
    """
    try:
        doc = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError, UnicodeDecodeError, RecursionError) as exc:
        raise ValidationDataError(
            "cannot read shape hints", path=str(path), expected="JSON list", got=str(exc)[:80]
        ) from None
    if not isinstance(doc, list):
        raise ValidationDataError(
            "shape hints must be a list",
            path=str(path),
            expected='[{"op": ..., "kind": ...}]',
            got=type(doc).__name__,
        )
    out: dict[str, list[dict[str, object]]] = {}
    for i, entry in enumerate(doc):
        if not isinstance(entry, dict) or "op" not in entry or "kind" not in entry:
            raise ValidationDataError(
                "bad shape hint",
                path=f"{path}[{i}]",
                expected="an object with op and kind",
                got=entry,
            )
        rec = {k: v for k, v in entry.items() if k != "op"}
        out.setdefault(str(entry["op"]), []).append(rec)
    return out
