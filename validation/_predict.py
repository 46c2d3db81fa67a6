"""Predict a measured record with the GPU model and the backend's real heuristics.

Which model runs for which record (the *dataflow* column of reports):

===================  ==================  ===============================================
record               dataflow            kernels
===================  ==================  ===============================================
gemm                 ``gpu_gemm``        cuBLAS-like tile choice (+ split-K reduce)
attn, flash          ``flash2``          FlashAttention-2 fwd / bwd (mma.sync)
attn, cudnn          ``flash3``          Hopper warp-specialized wgmma fwd / bwd
attn, efficient      ``mem_efficient``   cutlass memory-efficient fwd / bwd
decode, flash        ``split_kv``        FA2 split heuristic + combine kernel
decode, other        ``flash3`` / ...    one CTA per head, no split
attn_unfused         ``gpu_unfused``     bmm, softmax, bmm
flex_block_sparse    ``block_sparse``    FlexAttention, empty blocks skipped
ceiling              ``gpu_gemm``/copy   the device-ceiling cases of the harness
===================  ==================  ===============================================
"""

from __future__ import annotations

from collections.abc import Mapping, MutableMapping
from dataclasses import dataclass, replace

from archsim import Result
from archsim.errors import MappingError
from archsim.gpu import (
    GpuModel,
    KernelCost,
    attention_bwd_costs,
    attention_fwd_costs,
    block_sparse_costs,
    decode_costs,
    gemm_costs,
    streaming_cost,
    unfused_attention_costs,
)

from ._records import Measurement

__all__ = [
    "ENGINES",
    "device_arch",
    "device_model",
    "engine_program",
    "RecordPrediction",
    "UnsupportedRecord",
    "predict_record",
    "backend_family",
    "record_costs",
    "record_label",
]

_BACKENDS = {
    "flash": "flash2",
    "flash_attention": "flash2",
    "cudnn": "flash3",
    "cudnn_attention": "flash3",
    "efficient": "efficient",
    "efficient_attention": "efficient",
    "mem_efficient": "efficient",
}
_DATAFLOW = {"flash2": "flash2", "flash3": "flash3", "efficient": "mem_efficient"}
#: Evaluators of a record: its kernels lowered to a tile program (``mappings/_gpu``) and
#: run by ``archsim.simulate`` (event engine) or bounded by ``archsim.estimate``.
ENGINES = ("event", "analytic")


class UnsupportedRecord(Exception):
    """A record of a kind or backend the model does not cover (reported, then skipped).

    ``field`` names the record field at fault (None if none in particular)."""

    def __init__(self, reason: str, field: str | None = None) -> None:
        super().__init__(reason)
        self.field = field


def backend_family(backend: object) -> str:
    """Kernel family of an SDPA backend name (``flash``, ``CUDNN_ATTENTION``, ...)."""
    key = str(backend).split(".")[-1].lower()
    if key not in _BACKENDS:
        raise UnsupportedRecord(f"unknown backend {backend!r}", "backend")
    return _BACKENDS[key]


@dataclass(frozen=True)
class RecordPrediction:
    """Prediction for one record.

    Attributes
    ----------
    dataflow : model used (see module table). group : reporting group (kind/backend/pass).
    pred_ms : predicted time per call (ms). pred_dram_read_bytes / pred_dram_write_bytes : DRAM
    traffic (bytes). pred_mJ : board energy per call (mJ). pred_W : average board power (W).
    pred_clock_mhz : SM clock under the power cap (MHz). kernels : kernel names in order.
    """

    dataflow: str
    group: str
    pred_ms: float
    pred_dram_read_bytes: float
    pred_dram_write_bytes: float
    pred_mJ: float
    pred_W: float
    pred_clock_mhz: float
    kernels: tuple[str, ...]

    @property
    def pred_dram_bytes(self) -> float:
        """DRAM bytes read + written."""
        return self.pred_dram_read_bytes + self.pred_dram_write_bytes


def _i(rec: Mapping[str, object], key: str, default: int | None = None) -> int:
    val = rec.get(key, default)
    if val is None:
        raise UnsupportedRecord(f"missing field {key!r}", key)
    # a JSON record's field: a number or a numeric string (int() rejects anything else)
    return int(val)  # type: ignore[call-overload]


def record_label(rec: Mapping[str, object]) -> str:
    """Short shape text for tables: ``4096x4096x4096``, ``B4 H32/8 S4096 D128 causal``."""
    kind = rec.get("kind")
    if kind == "gemm":
        return f"{rec.get('M')}x{rec.get('N')}x{rec.get('K')}"
    if kind in ("attn", "decode"):
        c = " causal" if rec.get("causal") else ""
        return (
            f"B{rec.get('B')} H{rec.get('Hq')}/{rec.get('Hkv')} S{rec.get('Sq')}x{rec.get('Skv')}"
            f" D{rec.get('D')}{c}"
        )
    if kind == "attn_unfused":
        return f"B{rec.get('B')} H{rec.get('H')} S{rec.get('S')} D{rec.get('D')}"
    if kind == "flex_block_sparse":
        dens = rec.get("density", rec.get("density_target"))
        return f"B{rec.get('B')} H{rec.get('H')} S{rec.get('S')} D{rec.get('D')} d={dens}"
    return str(rec.get("name", kind))


def _attn_costs(rec: Mapping[str, object], model: GpuModel) -> tuple[str, str, list[KernelCost]]:
    fam = backend_family(rec.get("backend"))
    B, Hq, Hkv, D = _i(rec, "B"), _i(rec, "Hq"), _i(rec, "Hkv"), _i(rec, "D")
    if str(rec.get("gqa_impl", "")) == "expanded_kv":
        Hkv = Hq  # K/V were expanded to Hq heads before the kernel ran
    Sq, Skv = _i(rec, "Sq", 1), _i(rec, "Skv")
    causal = bool(rec.get("causal", False))
    dtype = str(rec.get("dtype", "bf16"))
    pass_ = str(rec.get("pass_", "fwd"))
    backend = str(rec.get("backend")).split(".")[-1].lower()
    if rec.get("kind") == "decode" or Sq == 1:
        if pass_ != "fwd":
            raise UnsupportedRecord("decode backward", "pass_")
        flow = "split_kv" if fam == "flash2" else _DATAFLOW[fam]
        return (
            flow,
            f"decode/{backend}",
            decode_costs(
                model,
                B=B,
                Hq=Hq,
                Hkv=Hkv,
                Skv=Skv,
                D=D,
                family=fam,
                dtype=dtype,
                Sq=Sq,
                causal=causal,
            ),
        )
    kw = dict(B=B, Hq=Hq, Hkv=Hkv, Sq=Sq, Skv=Skv, D=D, causal=causal, family=fam, dtype=dtype)
    if pass_ == "bwd":
        return _DATAFLOW[fam], f"attn/{backend}/bwd", attention_bwd_costs(model, **kw)  # type: ignore[arg-type]
    if pass_ != "fwd":
        raise UnsupportedRecord(f"unknown pass_ {pass_!r}", "pass_")
    return _DATAFLOW[fam], f"attn/{backend}/fwd", attention_fwd_costs(model, **kw)  # type: ignore[arg-type]


def record_costs(rec: Mapping[str, object], model: GpuModel) -> tuple[str, str, list[KernelCost]]:
    """``(dataflow, group, kernels)`` for a record.

    Raises
    ------
    UnsupportedRecord
        Unknown kind or backend, or a field the model needs is missing.
    """
    kind = rec.get("kind")
    dtype = str(rec.get("dtype", "bf16"))
    if kind == "gemm" or (kind == "ceiling" and "M" in rec):
        split = rec.get("split_k")  # what the library launched, where known (a trace)
        costs = gemm_costs(
            _i(rec, "M"),
            _i(rec, "N"),
            _i(rec, "K"),
            model,
            dtype=dtype,
            batch=_i(rec, "batch", 1),
            split_k=bool(split) if split is not None else None,
        )
        return "gpu_gemm", str(kind), costs
    if kind in ("attn", "decode"):
        return _attn_costs(rec, model)
    if kind == "attn_unfused":
        return (
            "gpu_unfused",
            "attn_unfused",
            unfused_attention_costs(
                model, B=_i(rec, "B"), H=_i(rec, "H"), S=_i(rec, "S"), D=_i(rec, "D"), dtype=dtype
            ),
        )
    if kind == "flex_block_sparse":
        density = float(rec.get("density", rec.get("density_target", 1.0)))  # type: ignore[arg-type]
        return (
            "block_sparse",
            "flex_block_sparse",
            block_sparse_costs(
                model,
                B=_i(rec, "B"),
                H=_i(rec, "H"),
                S=_i(rec, "S"),
                D=_i(rec, "D"),
                block=_i(rec, "block", 128),
                density=density,
                dtype=dtype,
            ),
        )
    if kind == "ceiling" and "bytes" in rec:
        # d2d_copy reads and writes ``bytes``; read_sum only reads; write_fill only writes
        n = float(rec["bytes"])  # type: ignore[arg-type]
        name = str(rec.get("name", "copy"))
        read = 0.0 if "write" in name or "fill" in name else n
        write = 0.0 if "read" in name or "sum" in name else n
        return (
            "copy",
            "ceiling",
            [
                streaming_cost(
                    model,
                    name=f"{name}_kernel",
                    category="elementwise",
                    read_bytes=read,
                    write_bytes=write,
                    alu_ops=0.0,
                )
            ],
        )
    raise UnsupportedRecord(f"unknown kind {kind!r}", "kind")


#: (``device`` record key, scale to SI) of the board settings a prediction takes over
_DEVICE_SETTINGS = (("power_limit_w", 1.0), ("sm_clock_max_mhz", 1e6), ("idle_power_w", 1.0))


def _device_settings(device: Mapping[str, object], names: tuple[str, str, str]) -> dict[str, float]:
    """The board's power limit (W), max SM clock (Hz) and idle power (W) from a ``device``
    record, keyed by ``names`` (in that order); absent or non-positive values are left out."""
    out: dict[str, float] = {}
    for (key, scale), name in zip(_DEVICE_SETTINGS, names, strict=True):
        v = device.get(key)
        if isinstance(v, (int, float)) and not isinstance(v, bool) and 0 < v < 1e300:
            out[name] = float(v) * scale
    return out


def device_model(model: GpuModel, device: Mapping[str, object] | None) -> GpuModel:
    """The model with the measured device's *settings*: power limit, max SM clock, idle power.

    These are read from the file's ``device`` record (``power_limit_w``,
    ``sm_clock_max_mhz``, ``idle_power_w``); they are facts of the measured board, not
    fitted constants. SM count and memory are not overridden (use another preset).
    """
    if not device:
        return model
    upd = _device_settings(device, ("power_cap_w", "boost_clock_hz", "idle_w"))
    if not upd:
        return model
    # upd holds only float fields of GpuHardware (power_cap_w, boost_clock_hz, idle_w)
    return replace(model, hw=replace(model.hw, **upd))  # type: ignore[arg-type]


def device_arch(arch: object, device: Mapping[str, object] | None) -> object:
    """``arch`` (preset name or Architecture) with the measured board's power limit, max
    SM clock and idle power from the file's ``device`` record (as :func:`device_model`)."""
    from archsim import load_arch

    a = load_arch(arch) if isinstance(arch, str) else arch
    if not device:
        return a
    upd = _device_settings(device, ("power_cap_w", "gpu.boost_clock_hz", "idle_power_w"))
    # a non-str arch is an Architecture (the callers pass a preset name or one)
    return a.with_updates(upd) if upd else a  # type: ignore[union-attr]


def engine_program(
    costs: list[KernelCost],
    model: GpuModel,
    arch: object,
    name: str,
    *,
    l2_dirty_bytes: float | None = None,
) -> object:
    """The tile program :func:`predict_record` runs for a record's kernels
    (``mappings._gpu._run.call_program``), from ``l2_dirty_bytes`` dirty L2 bytes (default:
    the harness's flush). For profiling (``bench/bench_validate.py``)."""
    from mappings._gpu._run import call_program

    dirty = harness_dirty_bytes(model) if l2_dirty_bytes is None else l2_dirty_bytes
    return call_program(costs, model, arch, name=name, l2_dirty_bytes=dirty)[0]


def harness_dirty_bytes(model: GpuModel) -> float:
    """Dirty L2 bytes a timed call of the harness starts with: its flush leaves
    ``l2_dirty_frac`` of the L2 written (``archsim.gpu.params``)."""
    return model.cal.l2_dirty_frac * model.hw.l2_bytes


def predict_record(
    rec: Measurement | Mapping[str, object],
    model: GpuModel,
    *,
    engine: str = "event",
    arch: object | None = None,
    l2_dirty_bytes: float | None = None,
    cache: MutableMapping[bytes, Result] | None = None,
) -> RecordPrediction:
    """Predict one record (time, DRAM bytes, energy, clock): its kernels lowered to a tile
    program and run on ``arch`` (:func:`mappings._gpu._run.run_kernels`).

    Parameters
    ----------
    rec
        A :class:`Measurement` or a raw record mapping.
    model
        GPU model with its calibration.
    engine
        ``event`` (``archsim.simulate``, default) or ``analytic`` (``archsim.estimate``).
    arch
        Architecture the program runs on (default: the preset named like the model).
    l2_dirty_bytes
        Dirty L2 bytes the call starts with (default: the measurement harness's flush,
        :func:`harness_dirty_bytes`; 0 for kernels on their own with a clean L2).
    cache
        Engine answers by program digest (see ``run_kernels``; the calibration passes one).

    Raises
    ------
    UnsupportedRecord
        See :func:`record_costs`.
    MappingError
        ``engine`` is not one of :data:`ENGINES`.
    """
    from mappings._gpu._run import run_kernels  # the GPU part's own lowering

    if engine not in ENGINES:
        raise MappingError("unknown engine", path="engine", expected=ENGINES, got=engine)
    fields = rec.fields if isinstance(rec, Measurement) else rec
    flow, group, costs = record_costs(fields, model)
    dirty = harness_dirty_bytes(model) if l2_dirty_bytes is None else l2_dirty_bytes
    a = arch if arch is not None else device_arch(model.hw.name, None)
    op = run_kernels(
        costs,
        model,
        a,
        engine=engine,  # type: ignore[arg-type]
        name=f"{flow}:{record_label(fields)}",
        l2_dirty_bytes=dirty,
        cache=cache,
    )
    return RecordPrediction(
        dataflow=flow,
        group=group,
        pred_ms=op.time_s * 1e3,
        pred_dram_read_bytes=op.dram_read_bytes,
        pred_dram_write_bytes=op.dram_write_bytes,
        pred_mJ=op.energy_j * 1e3,
        pred_W=op.avg_power_w,
        pred_clock_mhz=op.clock_hz / 1e6,
        kernels=tuple(k.name for k in op.kernels),
    )
