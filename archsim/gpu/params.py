"""Hardware parameters and calibrated constants of the GPU performance model.

:class:`GpuHardware` holds published, physical facts (SM count, shared memory, tensor-core
rates per instruction path, HBM bandwidth, clocks, power cap). :class:`GpuCalibration`
holds the *few* constants that are fitted on measured kernels (``validation/calibrate.py``
writes them to ``archsim/gpu/calibrated/<name>.json`` with provenance). :class:`GpuModel`
pairs the two; build it with :func:`gpu_model` from a preset name or an
:class:`archsim.Architecture` (fields of ``arch.gpu`` override the built-in table).

Sources (see also ``/work/shared/reference/hardware.md``):

- H100 SXM5: 132 SMs, 228 KB smem/SM (227 KB per CTA), 64 K regs/SM, 2048 threads/SM,
  32 CTAs/SM, 50 MB L2, HBM3 3.35 TB/s, 700 W cap, boost 1980 MHz; dense bf16 989.4 TFLOP/s
  = 132 SM x 4096 FLOP/clk x 1.83 GHz (NVIDIA H100 whitepaper; note: 1024 FMA/clk per SM
  *per sub-partition pair* -- the per-SM rate is 2048 FMA = 4096 FLOP per clock).
- mma.sync (Ampere-style HMMA) on Hopper: issue-limited to about half the wgmma rate
  (FA3 paper, arXiv 2407.08608: FA2 reaches only ~35% of H100 peak; FA2 reaches ~70% of
  the sm80 mma.sync peak on A100, FA2 paper) -> 2048 FLOP/clk/SM.
- A100 SXM: 108 SMs, 164 KB smem/SM, 40 MB L2, 2.0 TB/s, 312 TFLOP/s bf16 = 108 x 2048 x
  1.41 GHz; no wgmma.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from archsim.errors import ArchSpecError

__all__ = [
    "GpuHardware",
    "GpuCalibration",
    "GpuModel",
    "gpu_model",
    "load_calibration",
    "calibration_path",
    "dtype_bytes",
]

_CAL_DIR = Path(__file__).with_name("calibrated")

_DTYPE_BYTES = {
    "bf16": 2,
    "fp16": 2,
    "float16": 2,
    "bfloat16": 2,
    "fp8": 1,
    "fp32": 4,
    "float32": 4,
}


def dtype_bytes(dtype: str) -> int:
    """Bytes per element of ``dtype`` (``bf16``, ``fp16``, ``fp8``, ``fp32``)."""
    try:
        return _DTYPE_BYTES[str(dtype).lower()]
    except KeyError:
        raise ArchSpecError(
            "unknown dtype", path="dtype", expected=sorted(_DTYPE_BYTES), got=dtype
        ) from None


@dataclass(frozen=True)
class GpuHardware:
    """Published physical parameters of one GPU (all per SM unless stated).

    Attributes
    ----------
    name : preset name.
    sms : streaming multiprocessors.
    smem_bytes_per_sm, max_smem_per_cta_bytes : shared memory capacity (bytes).
    regs_per_sm : 32-bit registers per SM. max_threads_per_sm, max_ctas_per_sm : limits.
    l2_bytes : L2 capacity (bytes, whole chip).
    hbm_bytes_per_s : datasheet DRAM bandwidth (bytes/s, whole chip).
    boost_clock_hz, base_clock_hz, min_clock_hz : SM clocks (Hz); the power model picks
        a clock in [min, boost].
    tc_flops_per_clk : tensor-core FLOP per clock per SM, keyed ``"{path}_{dtype}"``
        (``wgmma_bf16``, ``mma_sync_bf16``, ``wgmma_fp8``).
    fp32_ops_per_clk : FP32 ALU ops per clock per SM (softmax scaling, max, sum).
    sfu_ops_per_clk : special-function (exp2) ops per clock per SM.
    l2_bytes_per_clk_per_sm : L2 -> SM read bandwidth of one SM's port (bytes/clock).
    dram_latency_s : load-to-use latency of an HBM access (s).
    power_cap_w : board power limit (W). idle_w : board power when idle at boost clock (W).
    """

    name: str
    sms: int
    smem_bytes_per_sm: int
    max_smem_per_cta_bytes: int
    regs_per_sm: int
    max_threads_per_sm: int
    max_ctas_per_sm: int
    l2_bytes: float
    hbm_bytes_per_s: float
    boost_clock_hz: float
    base_clock_hz: float
    min_clock_hz: float
    tc_flops_per_clk: Mapping[str, float]
    fp32_ops_per_clk: float = 128.0
    sfu_ops_per_clk: float = 16.0
    l2_bytes_per_clk_per_sm: float = 64.0
    dram_latency_s: float = 0.7e-6
    power_cap_w: float = 700.0
    idle_w: float = 90.0

    def tc_rate(self, path: str, dtype: str) -> float:
        """Tensor FLOP/clock/SM for ``path`` (``wgmma``/``mma_sync``) and ``dtype``.

        Falls back from ``wgmma`` to ``mma_sync`` (GPUs without wgmma) and from fp16 to bf16.
        """
        dt = "bf16" if dtype in ("fp16", "float16", "bfloat16") else dtype
        for key in (f"{path}_{dt}", f"mma_sync_{dt}", f"{path}_bf16", "mma_sync_bf16"):
            if key in self.tc_flops_per_clk:
                return float(self.tc_flops_per_clk[key])
        raise ArchSpecError(
            "no tensor-core rate",
            path="gpu.tc_flops_per_cycle_per_sm",
            expected=f"{path}_{dt}",
            got=sorted(self.tc_flops_per_clk),
        )

    def has_path(self, path: str) -> bool:
        """Whether the GPU has the ``path`` instruction (e.g. ``wgmma``)."""
        return any(k.startswith(path + "_") for k in self.tc_flops_per_clk)


@dataclass(frozen=True)
class GpuCalibration:
    """The few constants fitted on measurements (``validation/calibrate.py``).

    Each is physical and bounded; the defaults are first-principles guesses used until a
    fit exists.

    Attributes
    ----------
    hbm_efficiency : achievable fraction of datasheet HBM bandwidth for streaming kernels.
    launch_s : fixed cost of the first kernel of a call (launch, ramp-up, cold L2/TLB), s.
    gap_s : fixed cost of each further kernel of the same call (its launch overlaps the
        previous kernel; what remains is the drain/fill between dependent kernels), s.
    ramp_s : in-kernel fixed time of a tensor-core kernel (GEMM, attention, decode), part of
        its profiled duration: CTA/cluster launch on the GPU, prologue (barrier and tensor-map
        setup, the first tiles' load latency with cold TLBs) and epilogue drain (last stores,
        the kernel's completion), s. Not fitted: measured on the fit split as ncu's duration
        of the DRAM-bound ``gemm 1x28672x4096`` (81.3 us) minus its streaming time at the
        fitted bandwidth (78.4 us): 2.9 us (``archsim.gpu.cost.kernel_ramp_s``).
    l2_dirty_frac : share of the L2 left dirty when a timed call of the measurement harness
        starts: its flush (``zero_`` of 256 MiB) leaves written lines in L2, and the call's
        first fills evict them, each a DRAM write. Not fitted: 0.5, the share of L2 a kernel
        reuses (``archsim.gpu.gemm.L2_REUSE_FRACTION``: two partitions, the far half holds
        the other half of the lines). A kernel simulated on its own starts with a clean L2
        (``validation._predict.harness_dirty_bytes``).
    eff_gemm : achieved fraction of the wgmma rate in cuBLAS main loops.
    eff_fa2 : achieved fraction of the mma.sync rate in FlashAttention-2's GEMMs.
    eff_fa3 : achieved fraction of the wgmma rate in cuDNN/FA3 attention GEMMs.
    eff_memeff : achieved fraction of the mma.sync rate in the cutlass memory-efficient kernel.
    eff_flex : achieved fraction of the wgmma rate in Triton FlexAttention.
    eff_bwd : multiplier on a family's forward efficiency for its backward kernel.
    p_tensor_w : dynamic power of fully busy tensor cores at boost clock and voltage (W).
    p_alu_w : dynamic power of fully busy FP32/SFU pipes at boost clock and voltage (W).
    p_mem_w : power of HBM + memory system at full datasheet bandwidth (W).
    p_active_w : extra power of an active GPU over idle at boost voltage (clock trees,
        leakage at raised voltage), scaled by V^2 (W).
    v_min_frac : voltage at ``min_clock_hz`` over voltage at boost (V/f curve, linear).
    """

    hbm_efficiency: float = 0.90
    launch_s: float = 4.0e-6
    gap_s: float = 2.0e-6
    ramp_s: float = 2.9e-6
    l2_dirty_frac: float = 0.5
    eff_gemm: float = 0.80
    eff_fa2: float = 0.60
    eff_fa3: float = 0.78
    eff_memeff: float = 0.55
    eff_flex: float = 0.55
    eff_bwd: float = 0.75
    p_tensor_w: float = 900.0
    p_alu_w: float = 150.0
    p_mem_w: float = 110.0
    p_active_w: float = 60.0
    v_min_frac: float = 0.68
    provenance: Mapping[str, object] = field(default_factory=dict, compare=False)

    @classmethod
    def names(cls) -> tuple[str, ...]:
        """Names of the fitted (numeric) constants, in declaration order."""
        return tuple(f.name for f in fields(cls) if f.name != "provenance")

    def with_values(self, values: Mapping[str, float]) -> GpuCalibration:
        """A copy with some constants replaced."""
        # Any: replace() checks each keyword against its field's type, and the keys are only
        # known at run time (an unknown name raises TypeError there)
        changes: dict[str, Any] = {k: float(v) for k, v in values.items()}
        return replace(self, **changes)

    def to_dict(self) -> dict[str, object]:
        """JSON-ready: ``{"constants": {...}, "provenance": {...}}``."""
        return {
            "constants": {n: getattr(self, n) for n in self.names()},
            "provenance": dict(self.provenance),
        }


@dataclass(frozen=True)
class GpuModel:
    """Hardware facts plus calibrated constants: everything the kernel models read."""

    hw: GpuHardware
    cal: GpuCalibration

    @property
    def hbm_eff_bytes_per_s(self) -> float:
        """Achievable HBM bandwidth (bytes/s)."""
        return self.hw.hbm_bytes_per_s * self.cal.hbm_efficiency


_H100 = GpuHardware(
    name="h100",
    sms=132,
    smem_bytes_per_sm=233472,
    max_smem_per_cta_bytes=232448,
    regs_per_sm=65536,
    max_threads_per_sm=2048,
    max_ctas_per_sm=32,
    l2_bytes=50e6,
    hbm_bytes_per_s=3.35e12,
    boost_clock_hz=1.98e9,
    base_clock_hz=1.59e9,
    min_clock_hz=0.9e9,
    tc_flops_per_clk={"wgmma_bf16": 4096.0, "mma_sync_bf16": 2048.0, "wgmma_fp8": 8192.0},
    power_cap_w=700.0,
    idle_w=90.0,
)
_BUILTIN: dict[str, GpuHardware] = {
    "h100": _H100,
    # H200 SXM: same die and clocks, HBM3e 4.8 TB/s (hardware.md).
    "h200": replace(_H100, name="h200", hbm_bytes_per_s=4.8e12),
    "a100": GpuHardware(
        name="a100",
        sms=108,
        smem_bytes_per_sm=167936,
        max_smem_per_cta_bytes=166912,
        regs_per_sm=65536,
        max_threads_per_sm=2048,
        max_ctas_per_sm=32,
        l2_bytes=40e6,
        hbm_bytes_per_s=2.0e12,
        boost_clock_hz=1.41e9,
        base_clock_hz=1.095e9,
        min_clock_hz=0.8e9,
        tc_flops_per_clk={"mma_sync_bf16": 2048.0},
        sfu_ops_per_clk=16.0,
        power_cap_w=400.0,
        idle_w=60.0,
    ),
}

# Map from GpuParams field names (arch spec) to GpuHardware fields.
_ARCH_FIELDS = {
    "sms": "sms",
    "smem_bytes_per_sm": "smem_bytes_per_sm",
    "max_smem_per_cta_bytes": "max_smem_per_cta_bytes",
    "regs_per_sm": "regs_per_sm",
    "max_threads_per_sm": "max_threads_per_sm",
    "max_ctas_per_sm": "max_ctas_per_sm",
    "l2_bytes": "l2_bytes",
    "boost_clock_hz": "boost_clock_hz",
    "base_clock_hz": "base_clock_hz",
    "min_clock_hz": "min_clock_hz",
    "tc_flops_per_cycle_per_sm": "tc_flops_per_clk",
    "hbm_bytes_per_s": "hbm_bytes_per_s",
    "dram_latency_s": "dram_latency_s",
    "sfu_ops_per_cycle_per_sm": "sfu_ops_per_clk",
    "fp32_ops_per_cycle_per_sm": "fp32_ops_per_clk",
}
#: Spec fields that need a unit change: name -> (GpuHardware field, factor).
_ARCH_SCALED = {"fp32_flops_per_cycle_per_sm": ("fp32_ops_per_clk", 0.5)}  # FMA = 2 FLOP, 1 op


def calibration_path(name: str) -> Path:
    """Where the fitted constants for preset ``name`` live (may not exist)."""
    return _CAL_DIR / f"{name}.json"


def load_calibration(name: str) -> GpuCalibration:
    """Fitted constants for ``name`` (Hopper presets fall back to ``h100``'s; else defaults)."""
    for candidate in (name, "h100" if name in ("h100", "h200") else None):
        if candidate is None:
            continue
        path = calibration_path(candidate)
        if path.exists():
            data = json.loads(path.read_text())
            consts = {
                k: v for k, v in data.get("constants", {}).items() if k in GpuCalibration.names()
            }
            return GpuCalibration(provenance=data.get("provenance", {})).with_values(consts)
    return GpuCalibration(provenance={"source": "first-principles defaults (no fit)"})


def _hardware_from_arch(arch: object) -> GpuHardware:
    name = str(getattr(arch, "name", "gpu")).lower()
    base = _BUILTIN.get(name.split("-")[0], _H100)
    updates: dict[str, object] = {"name": name}
    gp = getattr(arch, "gpu", None)
    if gp is None:
        raise ArchSpecError(
            "architecture has no GPU parameters",
            path="gpu",
            expected="kind 'gpu' with a gpu: block",
            got=None,
        )
    for src, dst in _ARCH_FIELDS.items():
        val = getattr(gp, src, None)
        if val is not None:
            updates[dst] = dict(val) if isinstance(val, Mapping) else val
    for src, (dst, factor) in _ARCH_SCALED.items():
        val = getattr(gp, src, None)
        if val is not None:
            updates[dst] = float(val) * factor
    if "hbm_bytes_per_s" not in updates:
        dram = getattr(arch, "dram", None)
        clock = getattr(getattr(arch, "clock", None), "core_hz", None)
        bw_s = getattr(dram, "read_bw_bytes_per_s", None)
        bw = getattr(dram, "read_bw_bytes_per_cycle", None)
        if bw_s:
            updates["hbm_bytes_per_s"] = float(bw_s)
        elif bw and clock:
            updates["hbm_bytes_per_s"] = float(bw) * float(clock)
    cap = getattr(arch, "power_cap_w", None)
    if cap:
        updates["power_cap_w"] = float(cap)
    idle = getattr(arch, "idle_power_w", None)
    if idle:
        updates["idle_w"] = float(idle)
    hw = replace(base, **updates)  # type: ignore[arg-type]  # values copied from the spec, field by field
    if hw.sms <= 0 or not math.isfinite(hw.hbm_bytes_per_s) or hw.hbm_bytes_per_s <= 0:
        raise ArchSpecError(
            "bad GPU parameters",
            path="gpu",
            expected="sms > 0, HBM bw > 0",
            got={"sms": hw.sms, "hbm_bytes_per_s": hw.hbm_bytes_per_s},
        )
    return hw


def _hardware_for_name(name: str) -> GpuHardware:
    """Hardware of a preset name or YAML path: the archsim preset when it loads (so the GPU
    model and the engine read the same numbers), else the built-in table."""
    try:
        from archsim.spec import load_arch
    except ImportError:  # spec package absent: built-in table only
        return _builtin_hardware(name)
    try:
        arch = load_arch(name)
    except ArchSpecError:
        arch = None
    if arch is not None and getattr(arch, "gpu", None) is not None:
        return _hardware_from_arch(arch)
    if arch is not None:
        raise ArchSpecError(
            "not a GPU architecture",
            path="arch",
            expected="kind 'gpu'",
            got=f"{name} (kind {getattr(arch, 'kind', '?')})",
        )
    return _builtin_hardware(name)


def _builtin_hardware(name: str) -> GpuHardware:
    """Hardware of a name in the built-in table (case-insensitive)."""
    key = name.lower()
    if key not in _BUILTIN:
        raise ArchSpecError("unknown GPU", path="arch", expected=sorted(_BUILTIN), got=name)
    return _BUILTIN[key]


def gpu_model(arch: object, calibration: GpuCalibration | None = None) -> GpuModel:
    """Build the GPU model for a preset name (``"h100"``) or an ``Architecture``.

    Parameters
    ----------
    arch
        Preset name known to the built-in table (``h100``, ``h200``, ``a100``) or an
        :class:`archsim.Architecture` of kind ``gpu`` (its ``gpu`` fields win).
    calibration
        Constants to use; default: the committed fit for this GPU (or defaults).

    Raises
    ------
    ArchSpecError
        Unknown preset name or an architecture without GPU parameters.
    """
    if isinstance(arch, str):
        hw = _hardware_for_name(arch)
    else:
        hw = _hardware_from_arch(arch)
    cal = calibration if calibration is not None else load_calibration(hw.name.split("-")[0])
    return GpuModel(hw=hw, cal=cal)
