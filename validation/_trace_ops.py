"""What one profiled op costs: its ``record_shapes`` inputs turned into a simulation.

Each kernel of a PyTorch trace is launched by an op (``_torch_trace``: correlation id ->
launch call -> enclosing CPU ops). This module maps that op and its input shapes and dtypes
to one of three simulation paths:

===============================  ===================================================
op (innermost launching op)      simulated by
===============================  ===================================================
``aten::mm/addmm/bmm/baddbmm/    the GPU model's GEMM path (``archsim.gpu.gemm_costs``,
matmul/linear/_scaled_mm``       cuBLAS-like tile choice), dtype from ``Input type``
SDPA ops (flash, efficient,      the GPU model's attention kernels (``_predict``), shapes
cudnn; fwd and bwd)              and ``is_causal`` from the SDPA op of the stack
``native_layer_norm``,           the library cascades ``layernorm``, ``rmsnorm``,
``_fused_rms_norm``/``rms_norm`` ``softmax`` through ``mappings.simulate_workload`` on
(fused), ``_softmax``            the architecture (event engine)
element-wise, activations,       the GPU model's memory-bound kernel
reductions, copies, ``cat``,     (``archsim.gpu.streaming_cost``): bytes of the tensor
index writes / gathers           inputs read, bytes of the output written (an index
(list ``ELEMENTWISE``)           write moves its payload, a gather the rows it picks)
===============================  ===================================================

**Device time.** A profiler kernel's ``dur`` is its execution on the GPU. The GPU model
(and the cascades lowered from it) time a *call* as CUDA events see it: each kernel carries a
calibrated fixed cost, ``launch_s`` for the first kernel of a call and ``gap_s`` for the
others (host launch path, measured with the kernels). That fixed cost is removed here
(:func:`device_times`), so simulated and measured kernels are the same quantity.

An op outside these, or one without shapes, is *unknown*: it is reported with its kernels'
names and time, never dropped. ALU work of element-wise kernels is a rough per-element op
count (``_ALU_PER_ELEMENT``); these kernels are bandwidth-bound on every GPU preset, so the
count barely moves their time.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, MutableMapping, Sequence
from dataclasses import dataclass, replace

import numpy as np

from archsim.gpu import GpuModel, KernelCost, KernelTiming, streaming_cost
from archsim.gpu.elementwise import launch_cost
from archsim.gpu.launch import (
    Launch,
    cat_launch,
    legacy_elementwise_launch,
    vectorized_elementwise_launch,
)

from ._predict import record_costs
from ._records import MAX_DIM, MAX_WORK
from ._strided import BASE, INT32_PER_FP32, PER_OPERAND_DIM, iteration_dims, offset_int_ops
from ._torch_trace import TraceKernel

__all__ = [
    "ELEMENTWISE",
    "GEMM_OPS",
    "NORM_OPS",
    "OpSim",
    "device_times",
    "element_bytes",
    "simulate_op",
    "simulate_record",
]

#: Bytes per element of the profiler's ``Input type`` strings.
_TYPE_BYTES = {
    "c10::bfloat16": 2,
    "c10::half": 2,
    "float": 4,
    "double": 8,
    "c10::float8_e4m3fn": 1,
    "c10::float8_e5m2": 1,
    "c10::float8_e4m3fnuz": 1,
    "c10::float8_e5m2fnuz": 1,
    "long int": 8,
    "int": 4,
    "short int": 2,
    "signed char": 1,
    "unsigned char": 1,
    "bool": 1,
    "c10::complex<float>": 8,
}
#: ``Input type`` -> archsim dtype name of the GEMM/attention models.
_DTYPE = {
    "c10::bfloat16": "bf16",
    "c10::half": "fp16",
    "float": "fp32",
    "c10::float8_e4m3fn": "fp8",
    "c10::float8_e5m2": "fp8",
}
#: c10::ScalarType codes (the ``dtype`` argument of ``aten::_to_copy`` / ``aten::to``)
#: -> bytes per element.
_SCALAR_TYPE_BYTES = {0: 1, 1: 1, 2: 2, 3: 4, 4: 8, 5: 2, 6: 4, 7: 8, 11: 1, 15: 2, 23: 1, 24: 1}

GEMM_OPS = frozenset({"mm", "addmm", "bmm", "baddbmm", "matmul", "linear", "_scaled_mm"})
#: Fused norm / softmax ops -> library cascade.
NORM_OPS = {
    "native_layer_norm": "layernorm",
    "layer_norm": "layernorm",
    "_fused_rms_norm": "rmsnorm",
    "rms_norm": "rmsnorm",
    "_softmax": "softmax",
    "softmax": "softmax",
}
_REDUCTIONS = frozenset(
    {"sum", "mean", "amax", "amin", "max", "min", "var", "std", "norm", "prod", "argmax"}
    | {"argmin", "any", "all", "linalg_vector_norm", "logsumexp", "var_mean", "std_mean"}
)
_WRITE_ONLY = frozenset({"fill_", "zero_", "ones", "zeros", "full", "arange", "ones_like"})
_WRITE_ONLY |= {"zeros_like", "full_like", "empty_like_fill"}
_COPIES = frozenset({"copy_", "clone", "contiguous", "_to_copy", "to", "_unsafe_view"})
_JOINS = frozenset({"cat", "stack", "_cat"})
#: write a payload (their last tensor input) into another tensor at indices (KV-cache writes)
_SCATTERS = frozenset({"index_copy", "index_put", "_index_put_impl", "index_add", "scatter"})
#: read rows picked by an index tensor: embedding(weight, ids), index_select(self, dim, idx),
#: gather(self, dim, idx)
_GATHERS = frozenset({"embedding", "index_select", "gather"})
_ALU_PER_ELEMENT = {
    "silu": 8.0,
    "gelu": 12.0,
    "sigmoid": 8.0,
    "tanh": 8.0,
    "exp": 4.0,
    "erf": 8.0,
    "rsqrt": 4.0,
    "pow": 4.0,
    "sqrt": 4.0,
    "log": 4.0,
    "sin": 6.0,
    "cos": 6.0,
}
#: Element-wise / memory-bound ops simulated by the streaming model (in-place ``op_``
#: variants of these too).
ELEMENTWISE = frozenset(
    {"add", "sub", "mul", "div", "neg", "rsub", "pow", "rsqrt", "sqrt", "exp", "log", "abs"}
    | {"silu", "gelu", "relu", "sigmoid", "tanh", "erf", "clamp", "where", "masked_fill"}
    | {"reciprocal", "maximum", "minimum", "cos", "sin", "triu", "tril", "square"}
    | _REDUCTIONS
    | _WRITE_ONLY
    | _COPIES
    | _JOINS
    | _SCATTERS
    | _GATHERS
)


@dataclass(frozen=True)
class OpSim:
    """Simulated kernels of one launching op.

    Attributes
    ----------
    label : shape text for tables (``gemm 8192x6144x4096``, ``rmsnorm T8192 D4096``).
    path : how it was simulated (``gpu model``, ``cascade rmsnorm``, ``gpu streaming``).
    kernels : simulated kernels (time in s, DRAM bytes), in launch order.
    per_op : True when ``kernels`` stand for the op as a whole (matched to the op's
        measured kernels together), False when they pair with measured kernels one by one.
    """

    label: str
    path: str
    kernels: tuple[KernelTiming, ...]
    per_op: bool = False


def element_bytes(type_name: str) -> int | None:
    """Bytes per element of a profiler ``Input type`` (``c10::BFloat16`` -> 2), or None."""
    return _TYPE_BYTES.get(type_name.strip().lower())


def device_times(kernels: Sequence[KernelTiming], model: GpuModel) -> tuple[KernelTiming, ...]:
    """Kernels of one call with the model's fixed per-kernel cost removed: ``launch_s``
    from the first, ``gap_s`` from the others (s; never below 0). See the module notes."""
    out = []
    for i, k in enumerate(kernels):
        fixed = model.cal.launch_s if i == 0 else model.cal.gap_s
        meta = {**k.meta, "launch_removed_s": fixed}
        out.append(replace(k, time_s=max(0.0, k.time_s - fixed), meta=meta))
    return tuple(out)


def kernel_times(
    costs: Sequence[KernelCost], model: GpuModel, arch: object = None
) -> tuple[KernelTiming, ...]:
    """GPU execution times of a call's kernels: lowered to a tile program and run by the event
    engine on ``arch`` (a preset name or ``Architecture``; default the preset named like the
    model), with the fixed per-kernel cost removed (:func:`device_times`)."""
    from mappings._gpu._run import run_kernels

    return device_times(run_kernels(costs, model, arch, name="trace op").kernels, model)


def _base(name: str | None) -> str:
    return (name or "").split("::")[-1]


def _tensors(k: TraceKernel) -> list[tuple[tuple[int, ...], int]]:
    """(shape, bytes per element) of each tensor input in argument order (a tensor list's
    members in place of the list)."""
    out: list[tuple[tuple[int, ...], int]] = []
    n = max(len(k.input_dims), len(k.list_dims))
    for i in range(n):
        t = k.input_types[i] if i < len(k.input_types) else ""
        shapes = k.list_dims[i] if i < len(k.list_dims) else ()
        if shapes:
            size = element_bytes(t) or _widest(k)
            out.extend((sh, size) for sh in shapes if sh)
            continue
        shape = k.input_dims[i] if i < len(k.input_dims) else ()
        elem = element_bytes(t)
        if shape and elem is not None:
            out.append((shape, elem))
    return out


def _operands(k: TraceKernel) -> list[tuple[tuple[int, ...], tuple[int, ...]]]:
    """(shape, strides) of each tensor input whose strides the trace recorded."""
    n = min(len(k.input_dims), len(k.input_strides))
    return [
        (k.input_dims[i], k.input_strides[i])
        for i in range(n)
        if k.input_dims[i] and len(k.input_strides[i]) == len(k.input_dims[i])
    ]


def _widest(k: TraceKernel) -> int:
    sizes = [b for b in (element_bytes(t) for t in k.input_types) if b is not None]
    return max(sizes) if sizes else 2


def _numel(shape: tuple[int, ...]) -> int:
    return math.prod(shape) if shape else 1


def _dims_arg(text: str, ndim: int) -> set[int] | None:
    nums = [int(x) for x in re.findall(r"-?\d+", text)]
    if not nums or ndim == 0:
        return None
    return {d % ndim for d in nums}


def _streaming(
    k: TraceKernel, model: GpuModel, src: str = "HBM", arch: object = None
) -> tuple[OpSim | None, str]:
    op = _base(k.op_name)
    base = op.rstrip("_") if op.endswith("_") and op not in _WRITE_ONLY | {"copy_"} else op
    tensors = _tensors(k)
    if not tensors and base not in _WRITE_ONLY:
        return None, f"{k.op_name}: no tensor input shapes (record with record_shapes=True)"
    read = write = out_elems = 0.0
    label_shape = tensors[0][0] if tensors else ()
    if base in _JOINS:
        read = float(sum(_numel(s) * b for s, b in tensors))
        write, out_elems = read, float(sum(_numel(s) for s, _ in tensors))
    elif base in _SCATTERS:
        payload, size = tensors[-1]
        index_bytes = sum(_numel(sh) * b for sh, b in tensors[1:-1])
        out_elems = float(_numel(payload))
        read, write = out_elems * size + index_bytes, out_elems * size
        label_shape = payload
    elif base in _GATHERS:
        if len(tensors) < 2:
            return None, f"{k.op_name}: expected a source and an index tensor"
        (table, size), (idx, ib) = tensors[0], tensors[-1]
        if base == "embedding":
            out_shape = (*idx, table[-1])
        elif base == "index_select":
            arg = k.concrete_inputs[1] if len(k.concrete_inputs) > 1 else ""
            dims = _dims_arg(arg, len(table)) if arg else None
            dim = min(dims) if dims else 0
            out_shape = tuple(_numel(idx) if i == dim else n for i, n in enumerate(table))
        else:
            out_shape = idx
        out_elems = float(_numel(out_shape))
        read, write = out_elems * size + _numel(idx) * ib, out_elems * size
        label_shape = out_shape
    elif base == "copy_":
        if len(tensors) < 2:
            return None, f"{k.op_name}: expected dst and src shapes"
        (dst, db), (from_, sb) = tensors[0], tensors[1]
        read, write, out_elems = _numel(from_) * sb, _numel(dst) * db, float(_numel(dst))
    elif base in _WRITE_ONLY:
        if not tensors:
            return None, f"{k.op_name}: no output shape in the trace"
        shape, size = tensors[0]
        write, out_elems = float(_numel(shape) * size), float(_numel(shape))
    elif base in _REDUCTIONS:
        shape, size = tensors[0]
        dims = _dims_arg(k.concrete_inputs[1], len(shape)) if len(k.concrete_inputs) > 1 else None
        kept = [n for i, n in enumerate(shape) if dims is not None and i not in dims]
        out_elems = float(math.prod(kept) if kept else 1)
        read, write = float(_numel(shape) * size), out_elems * size
    else:
        shapes = [s for s, _ in tensors]
        try:
            out_shape = tuple(np.broadcast_shapes(*shapes))
        except ValueError:
            out_shape = max(shapes, key=_numel)
        label_shape = out_shape
        size = tensors[0][1]
        if base in ("_to_copy", "to") and len(k.concrete_inputs) > 1:
            code = k.concrete_inputs[1].strip()
            size = _SCALAR_TYPE_BYTES.get(int(code), size) if code.isdigit() else size
        out_elems = float(_numel(out_shape))
        read = float(sum(_numel(s) * b for s, b in tensors))
        write = out_elems * size
    alu = out_elems * _ALU_PER_ELEMENT.get(base, 1.0)
    launch: Launch | None = None
    if base in _JOINS:
        launch = _cat_launch(model, tensors, src)
        # CatArrIndexToOffset: each element's offset arithmetic, on the INT32 pipes
        alu += out_elems * launch.rounds[-1].int_ops / INT32_PER_FP32
    elif base not in _SCATTERS | _GATHERS | _WRITE_ONLY | _REDUCTIONS:
        # copy_ writes its first operand in place, every other op allocates a dense output
        dense = base != "copy_"
        operands = _operands(k)
        ndim, vectorised = iteration_dims(label_shape, operands, dense_output=dense)
        ins = [b for _, b in (tensors[1:] if base == "copy_" else tensors)]
        out_size = tensors[0][1] if base == "copy_" else int(write / max(out_elems, 1.0))
        n = int(out_elems)
        if vectorised or not operands:
            launch = vectorized_elementwise_launch(n, ins, out_size, src=src)
        else:
            # a non-vectorised kernel's offset arithmetic, on the INT32 pipes
            # (validation._strided) and as a dependent chain before each round's loads
            ops = offset_int_ops(label_shape, operands, dense_output=dense)
            alu += out_elems * ops / INT32_PER_FP32
            launch = legacy_elementwise_launch(n, ins, out_size, src=src, int_ops=ops)
        del ndim
    if launch is not None:
        cost = launch_cost(
            model,
            launch,
            name=f"{base}_kernel",
            category="elementwise",
            read_bytes=read,
            write_bytes=write,
            alu_ops=alu,
        )
    else:
        cost = streaming_cost(
            model,
            name=f"{base}_kernel",
            category="elementwise",
            read_bytes=read,
            write_bytes=write,
            alu_ops=alu,
        )
    timing = kernel_times([cost], model, arch)
    shape_text = "x".join(str(n) for n in label_shape) or "-"
    return OpSim(f"{base} {shape_text}", "gpu streaming", tuple(timing), per_op=True), ""


def _cat_launch(
    model: GpuModel, tensors: Sequence[tuple[tuple[int, ...], int]], src: str
) -> Launch:
    """``CatArrayBatchedCopy`` of the op's input tensors: each thread's index arithmetic is
    the offset calculator's for an input and the output over the input's dimensions."""
    ndim = max((sum(1 for n in s if n != 1) for s, _ in tensors), default=1)
    return cat_launch(
        model.hw.sms,
        len(tensors),
        max(_numel(s) for s, _ in tensors),
        max(b for _, b in tensors),
        src=src,
        int_ops=BASE + PER_OPERAND_DIM * 2 * ndim,
    )


def _norm(
    k: TraceKernel,
    model: GpuModel,
    arch: object,
    cache: MutableMapping[tuple[object, ...], KernelTiming],
) -> tuple[OpSim | None, str]:
    from mappings import simulate_workload

    op = _base(k.op_name)
    workload = NORM_OPS[op]
    tensors = _tensors(k)
    if not tensors:
        return None, f"{k.op_name}: no input shapes (record with record_shapes=True)"
    shape, size = tensors[0]
    rows, cols = _numel(shape[:-1]), shape[-1]
    if not 1 <= cols <= MAX_DIM or not 1 <= rows <= MAX_DIM or rows * cols > MAX_WORK:
        return None, f"{k.op_name}: input {list(shape)} outside the model's bounds"
    if workload == "softmax" and len(k.concrete_inputs) > 1:
        dims = _dims_arg(k.concrete_inputs[1], len(shape))
        if dims is not None and dims != {len(shape) - 1}:
            return None, f"{k.op_name}: softmax over dim {sorted(dims)}, not the last"
    params: dict[str, object] = (
        {"R": rows, "N": cols} if workload == "softmax" else {"T": rows, "Dm": cols}
    )
    params["dtype_bits"] = 8 * size
    key = (workload, str(arch), tuple(sorted(params.items())))
    if key not in cache:
        rep = simulate_workload(arch, workload, params=params)
        r = rep.result
        n_kernels = max(1, len(rep.plan.meta.get("kernels", ())))  # type: ignore[arg-type]
        fixed = model.cal.launch_s + (n_kernels - 1) * model.cal.gap_s
        t = max(0.0, float(r.seconds) - fixed)
        cache[key] = KernelTiming(
            name=f"{workload} ({rep.dataflow})",
            category="softmax" if workload == "softmax" else "elementwise",
            time_s=t,
            clock_hz=float(model.hw.boost_clock_hz),
            power_w=float(r.energy_j) / t if t > 0 else 0.0,
            energy_j=float(r.energy_j),
            dram_read_bytes=float(r.dram_bytes),
            dram_write_bytes=0.0,
            tensor_flops=0.0,
            bound="cascade",
            meta={
                "workload": workload,
                "dataflow": rep.dataflow,
                "dram_bytes": "read+write",
                "engine_s": float(r.seconds),
                "launch_removed_s": fixed,
            },
        )
    label = f"{workload} " + (f"R{rows} N{cols}" if workload == "softmax" else f"T{rows} D{cols}")
    return OpSim(label, f"cascade {workload}", (cache[key],), per_op=True), ""


def _gemm_record(k: TraceKernel) -> dict[str, object] | None:
    """The GEMM record of a matmul op's kernel: shapes and dtype from its inputs, and
    ``split_k`` true when the library launched a split-K kernel (its name says so; cuBLAS
    then reduces the partial sums in a ``splitKreduce_kernel``)."""
    rec = _gemm_shape(k)
    if rec is not None and "splitk" in k.name.lower():
        rec["split_k"] = True
    return rec


def _gemm_shape(k: TraceKernel) -> dict[str, object] | None:
    op = _base(k.op_name)
    mats = [x for x in k.input_dims if len(x) >= 2]
    types = [t for t, d in zip(k.input_types, k.input_dims, strict=False) if len(d) >= 2]
    dtype = _DTYPE.get(types[0].lower(), "bf16") if types else "bf16"
    if op == "_scaled_mm":
        dtype = "fp8"
    if len(mats) < 2:
        return None
    if op == "linear":
        a, w = mats[0], mats[1]
        return {"kind": "gemm", "M": math.prod(a[:-1]), "N": w[0], "K": a[-1], "dtype": dtype}
    if op == "_scaled_mm":
        a, b = mats[0], mats[1]
    else:
        a, b = mats[-2], mats[-1]
    batch = math.prod(a[:-2]) if len(a) > 2 else 1
    return {"kind": "gemm", "M": a[-2], "N": b[-1], "K": a[-1], "dtype": dtype, "batch": batch}


def simulate_op(
    k: TraceKernel,
    model: GpuModel,
    arch: object,
    cache: MutableMapping[tuple[object, ...], KernelTiming],
    attn_record: Mapping[str, object] | None = None,
    *,
    src: str = "HBM",
) -> tuple[OpSim | None, str]:
    """Simulate the op that launched ``k`` (see the module table).

    Parameters
    ----------
    k
        A kernel of the trace; its launching op's shapes are used.
    model
        GPU model (GEMM, attention, streaming kernels).
    arch
        Architecture (preset name or ``Architecture``) for the cascades.
    cache
        Cascade results by (workload, arch, params), shared across calls.
    attn_record
        The attention record inferred for ``k`` (``_compare``), if any.
    src
        Memory level an element-wise op's inputs are read from (``L2`` when an earlier
        kernel of the same step just wrote them; ``HBM`` for a cold, standalone call): the
        latency of its dependent rounds (:mod:`archsim.gpu.launch`).

    Returns
    -------
    (OpSim or None, reason)
        ``reason`` says why the op could not be simulated (empty when it was).
    """
    op = _base(k.op_name)
    if op in GEMM_OPS and k.input_dims:
        rec = _gemm_record(k)
        if rec is None:
            return None, f"{k.op_name}: fewer than two matrix inputs"
        if rec["dtype"] == "fp32" and "tf32" not in k.name.lower():
            # the model's fp32 GEMM is the TF32 tensor-core path; PyTorch runs fp32 matmuls
            # in full FP32 unless TF32 is allowed, and only a TF32 kernel's name says so
            return None, f"{k.op_name}: fp32 GEMM without a TF32 kernel (no FP32 SIMT model)"
        return simulate_record(rec, model, arch)
    if attn_record is not None:
        return simulate_record(attn_record, model, arch)
    if op in NORM_OPS:
        return _norm(k, model, arch, cache)
    base = op[:-1] if op.endswith("_") and op[:-1] in ELEMENTWISE else op
    if base in ELEMENTWISE or op in ELEMENTWISE:
        return _streaming(k, model, src, arch)
    if not k.op_name:
        return None, "no launching op in the trace"
    if not k.has_shapes:
        return None, f"{k.op_name}: no input shapes (record with record_shapes=True)"
    return None, f"{k.op_name}: no model for this op"


def simulate_record(
    rec: Mapping[str, object], model: GpuModel, arch: object = None
) -> tuple[OpSim | None, str]:
    """Simulate a validate-schema record (GEMM, attention...): its kernels run by the event
    engine on ``arch`` (:func:`kernel_times`), as GPU execution time.

    Raises
    ------
    UnsupportedRecord
        A field is malformed or out of the model's bounds (same checks as ``validate``).
    """
    from ._predict import UnsupportedRecord, record_label
    from ._records import check_record

    bad = check_record({"ms": 1.0, **rec})
    if bad is not None:  # same field checks and size bounds as a measurement record
        raise UnsupportedRecord(f"{bad.field}: {bad.reason}", bad.field)
    _, _, costs = record_costs(rec, model)
    kernels = kernel_times(costs, model, arch)
    return OpSim(f"{rec['kind']} {record_label(rec)}", "gpu model", kernels), ""
