"""Measured kernel traces side by side with simulated kernels, and one merged Perfetto trace.

Steps: read the PyTorch trace (:mod:`._torch_trace`), group kernels by the CPU op that
launched them, infer each op's shapes (``record_shapes`` input dims, or FlashAttention-2's
template arguments and grid), predict the op with the GPU model (same code as
``archsim validate``), match measured to simulated kernels by category in launch order,
and optionally attach ncu DRAM bytes per kernel. Kernels whose shapes cannot be inferred
are listed with no simulated time.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from archsim.gpu import GpuModel, KernelTiming, evaluate_op

from ._ncu import NcuKernel
from ._predict import UnsupportedRecord, record_costs, record_label
from ._torch_trace import TorchTrace, TraceKernel, classify_kernel

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
# index of is_causal among an attention op's concrete inputs
_CAUSAL_ARG = {
    "_scaled_dot_product_flash_attention": 4,
    "_flash_attention_forward": 8,
    "_scaled_dot_product_cudnn_attention": 6,
    "_scaled_dot_product_efficient_attention": 6,
    "_efficient_attention_forward": 9,
}


@dataclass(frozen=True)
class KernelMatch:
    """One measured kernel and the simulated kernel matched to it (if any)."""

    kernel: TraceKernel
    op_label: str
    sim: KernelTiming | None
    ncu: NcuKernel | None = None

    @property
    def sim_us(self) -> float | None:
        """Simulated duration (µs)."""
        return None if self.sim is None else self.sim.time_s * 1e6

    @property
    def err_pct(self) -> float | None:
        """(simulated - measured) / measured, percent."""
        if self.sim is None or self.kernel.dur_us <= 0:
            return None
        return (self.sim.time_s * 1e6 - self.kernel.dur_us) / self.kernel.dur_us * 100.0


@dataclass(frozen=True)
class TraceComparison:
    """All matches of a trace, in launch order."""

    source: str
    arch: str
    matches: tuple[KernelMatch, ...]

    def table(self) -> str:
        """Side-by-side text table (kernel, category, op, measured µs, simulated µs, error)."""
        head = (
            f"{'#':>4} {'kernel':<46} {'cat':<12} {'op':<30} "
            f"{'meas us':>10} {'sim us':>10} {'err %':>7}"
        )
        rows = [head, "-" * len(head)]
        for i, m in enumerate(self.matches):
            sim = f"{m.sim_us:10.2f}" if m.sim_us is not None else f"{'-':>10}"
            err = f"{m.err_pct:+7.1f}" if m.err_pct is not None else f"{'-':>7}"
            name = _short(m.kernel.name)
            rows.append(
                f"{i:>4} {name:<46.46} {m.kernel.category:<12} {m.op_label:<30.30} "
                f"{m.kernel.dur_us:10.2f} {sim} {err}"
            )
            if m.ncu is not None and m.ncu.dram_bytes is not None:
                pred = m.sim.dram_read_bytes + m.sim.dram_write_bytes if m.sim else math.nan
                rows.append(
                    f"{'':>4}   ncu DRAM {m.ncu.dram_bytes / 1e6:10.2f} MB, "
                    f"simulated {pred / 1e6:10.2f} MB"
                )
        return "\n".join(rows)

    def summary_text(self) -> str:
        """Totals over matched kernels and the count of unmatched ones."""
        matched = [m for m in self.matches if m.sim is not None]
        meas = sum(m.kernel.dur_us for m in matched)
        sim = sum(m.sim_us or 0.0 for m in matched)
        errs = [abs(m.err_pct) for m in matched if m.err_pct is not None]
        mape = sum(errs) / len(errs) if errs else math.nan
        total = sum(m.kernel.dur_us for m in self.matches)
        return (
            f"kernels: {len(self.matches)} ({len(matched)} simulated); matched time measured "
            f"{meas:.1f} us vs simulated {sim:.1f} us "
            f"({(sim - meas) / meas * 100 if meas else math.nan:+.1f}%); "
            f"per-kernel MAPE {mape:.1f}%; unmatched kernels {total - meas:.1f} us"
        )


def _short(name: str) -> str:
    base = re.sub(r"^void\s+", "", name)
    base = re.sub(r"^[\w:]*::", "", base.split("<")[0]) if "<" in base else base
    return base or name


def _attn_from_dims(k: TraceKernel) -> dict[str, object] | None:
    op = (k.op_name or "").split("::")[-1]
    dims = [d for d in k.input_dims if len(d) == 4]
    if len(dims) < 2:
        return None
    bwd = "backward" in op or k.category == "attn_bwd"
    q, kk = (dims[1], dims[2]) if bwd and len(dims) >= 3 else (dims[0], dims[1])
    if op in (
        "_flash_attention_forward",
        "_efficient_attention_forward",
        "_flash_attention_backward",
        "_efficient_attention_backward",
    ):
        (B, Sq, Hq, D), (_, Skv, Hkv, _) = q, kk  # [B, S, H, D] layout
    else:
        (B, Hq, Sq, D), (_, Hkv, Skv, _) = q, kk
    backend = (
        "cudnn"
        if "cudnn" in op or "cudnn" in k.name.lower()
        else "efficient"
        if "efficient" in op or "fmha" in k.name.lower()
        else "flash"
    )
    causal = False
    idx = _CAUSAL_ARG.get(op)
    if idx is not None and len(k.concrete_inputs) > idx:
        causal = k.concrete_inputs[idx].strip().lower() in ("true", "1")
    else:
        fa = _fa2_from_name(k)
        causal = bool(fa and fa["causal"])
    kind = "decode" if Sq == 1 else "attn"
    return {
        "kind": kind,
        "B": B,
        "Hq": Hq,
        "Hkv": Hkv,
        "Sq": Sq,
        "Skv": Skv,
        "D": D,
        "causal": causal,
        "backend": backend,
        "dtype": "bf16",
        "pass_": "bwd" if bwd else "fwd",
    }


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


def infer_record(k: TraceKernel) -> dict[str, object] | None:
    """A validate-style record describing the op that launched ``k``, or None.

    Uses the launching op's input dims when the trace has them (``record_shapes=True``),
    else FlashAttention-2's kernel template (head dim, tile, causal) and grid
    ``(ceil(Sq/Bm), B, H)`` (self-attention assumed).
    """
    op = (k.op_name or "").split("::")[-1]
    d = k.input_dims
    if op in ("mm", "addmm", "bmm", "baddbmm", "matmul", "linear") and d:
        mats = [x for x in d if len(x) >= 2]
        if op == "linear" and len(mats) >= 2:
            a, w = mats[0], mats[1]
            return {"kind": "gemm", "M": math.prod(a[:-1]), "N": w[0], "K": a[-1], "dtype": "bf16"}
        if len(mats) >= 2:
            a, b = mats[-2], mats[-1]
            batch = math.prod(a[:-2]) if len(a) > 2 else 1
            return {
                "kind": "gemm",
                "M": a[-2],
                "N": b[-1],
                "K": a[-1],
                "dtype": "bf16",
                "batch": batch,
            }
    if k.category.startswith("attn") and d:
        rec = _attn_from_dims(k)
        if rec is not None:
            return rec
    if k.category == "attn_fwd":
        rec = _fa2_from_name(k)
        if rec is not None and "kind" in rec:
            return rec
    return None


def _simulate(rec: Mapping[str, object], model: GpuModel) -> list[KernelTiming]:
    _, _, costs = record_costs(rec, model)
    return list(evaluate_op(costs, model).kernels)


def _groups(trace: TorchTrace) -> list[list[int]]:
    groups: dict[object, list[int]] = {}
    for i, k in enumerate(trace.kernels):
        key = ("ext", k.external_id) if k.external_id is not None else ("k", i)
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
            same_grid = grid is None or grids[j] is None or tuple(grids[j]) == grid
            if names[j] and same_grid and (names[j] in base or base in names[j]):
                out[j] = nk
                pos = j + 1
                break
    return out


def compare_trace(
    trace: TorchTrace,
    model: GpuModel,
    *,
    ncu: Sequence[NcuKernel] = (),
    shapes: Mapping[str, Sequence[Mapping[str, object]]] | None = None,
) -> TraceComparison:
    """Match every measured kernel of ``trace`` to a simulated kernel where possible.

    Parameters
    ----------
    trace
        Measured kernels.
    model
        GPU model.
    ncu
        ncu kernels (launch order) whose DRAM bytes are attached to matching kernels.
    shapes
        For traces recorded without ``record_shapes``: op name (``aten::mm``) -> records
        (validate schema) used in order, cyclically, for that op's launches; a key also
        matches ops whose name contains it (``cudnn_attention``).
    """
    sim_for: dict[int, KernelTiming] = {}
    label_for: dict[int, str] = {}
    used_hint: dict[str, int] = {}
    for idx in _groups(trace):
        rec = None
        for i in idx:
            rec = infer_record(trace.kernels[i])
            if rec is not None:
                break
        op = trace.kernels[idx[0]].op_name or ""
        key = next((h for h in (shapes or {}) if h == op or (h and h in op)), None)
        if rec is None and key is not None and shapes and shapes[key]:
            hints = shapes[key]
            n = used_hint.get(key, 0)
            rec = dict(hints[n % len(hints)])
            used_hint[key] = n + 1
        if rec is None:
            continue
        try:
            sims = _simulate(rec, model)
        except (UnsupportedRecord, ValueError, KeyError):
            continue
        label = f"{rec['kind']} {record_label(rec)}"
        used: set[int] = set()
        for i in idx:
            label_for[i] = label
            cat = trace.kernels[i].category
            for j, s in enumerate(sims):
                if j not in used and classify_kernel(s.name) == cat:
                    sim_for[i] = s
                    used.add(j)
                    break
    ncu_for = _match_ncu(trace, ncu) if ncu else {}
    matches = tuple(
        KernelMatch(k, label_for.get(i, "-"), sim_for.get(i), ncu_for.get(i))
        for i, k in enumerate(trace.kernels)
    )
    return TraceComparison(trace.path, model.hw.name, matches)


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
        args = {"category": k.category, "op": m.op_label}
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
    from archsim.errors import ValidationDataError

    try:
        doc = json.loads(Path(path).read_text())
    except (OSError, json.JSONDecodeError) as exc:
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
