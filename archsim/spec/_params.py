"""Kind-specific parameters: :class:`GpuParams` (kind ``gpu``), :class:`PimParams` (``pim``)."""

from __future__ import annotations

from typing import Literal

from pydantic import field_validator, model_validator

from archsim.spec._base import SpecModel, fail
from archsim.spec._components import Name
from archsim.spec._types import Bytes, Hz, NonNegFloat, PosFloat, PosInt, Seconds

__all__ = ["GpuParams", "PimParams", "TC_DTYPES"]

#: dtypes a tensor-core path key may end with (``wgmma_bf16``)
TC_DTYPES: tuple[str, ...] = ("bf16", "fp16", "fp8", "tf32", "fp32", "fp64", "int8")


class GpuParams(SpecModel):
    """What a GPU model needs beyond levels and units (per-SM limits, clocks, MMA paths).

    ``smem_bytes_per_sm`` and ``l2_bytes`` may be omitted: they are then taken from the
    storage levels named ``smem_level`` / ``l2_level`` (and must agree when both are given),
    so a sweep over ``levels.L2.capacity_bytes`` keeps them consistent.
    """

    sms: PosInt
    """Streaming multiprocessors. Levels/units with ``per_sm: true`` get this many instances."""
    compute_capability: str = ""
    """CUDA compute capability, e.g. ``"9.0"`` (Hopper), ``"8.0"`` (A100)."""
    smem_bytes_per_sm: Bytes | None = None
    """Shared memory per SM in bytes (None = ``capacity_bytes`` of ``smem_level``)."""
    max_smem_per_cta_bytes: Bytes
    """Largest dynamic shared-memory allocation of one CTA in bytes."""
    regs_per_sm: PosInt
    """32-bit registers per SM."""
    max_regs_per_thread: PosInt = 255
    """Registers one thread may use."""
    max_threads_per_sm: PosInt
    """Resident threads per SM."""
    max_ctas_per_sm: PosInt
    """Resident CTAs (thread blocks) per SM."""
    warp_size: PosInt = 32
    """Threads per warp."""
    l2_bytes: Bytes | None = None
    """L2 capacity in bytes, whole GPU (None = ``capacity_bytes x instances`` of ``l2_level``)."""
    launch_overhead_s: Seconds
    """Host-side launch plus ramp cost of one kernel in seconds (calibrate on a real GPU)."""
    tc_flops_per_cycle_per_sm: dict[str, PosFloat]
    """Dense tensor-core FLOP per SM per core cycle (a FMA = 2 FLOP), keyed ``{path}_{dtype}``,
    e.g. ``wgmma_bf16``, ``mma_sync_bf16``, ``wgmma_fp8``."""
    fp32_flops_per_cycle_per_sm: PosFloat
    """Non-tensor FP32 FLOP per SM per core cycle (FMA = 2)."""
    sfu_ops_per_cycle_per_sm: PosFloat
    """Special-function (MUFU: exp2, rcp, rsqrt) results per SM per core cycle."""
    boost_clock_hz: Hz
    """Maximum boost clock in Hz."""
    base_clock_hz: Hz
    """Base clock in Hz (the floor a power-capped GPU is guaranteed)."""
    min_clock_hz: Hz | None = None
    """Lowest SM clock in Hz the GPU power model may pick under the power cap (None: base)."""
    smem_level: Name = "SMEM"
    """Name of the storage level holding shared memory."""
    l2_level: Name = "L2"
    """Name of the storage level holding the L2 cache."""
    notes: str = ""
    """Free text: assumptions, sources, what the GPU model should calibrate."""

    @field_validator("tc_flops_per_cycle_per_sm")
    @classmethod
    def _tc_keys(cls, value: dict[str, float]) -> dict[str, float]:
        if not value:
            fail(
                "",
                "at least one tensor-core path is needed",
                expected="e.g. {wgmma_bf16: 4096}",
                got={},
            )
        for key in value:
            path, _, dtype = key.rpartition("_")
            if not path or dtype not in TC_DTYPES:
                fail(
                    key,
                    f"tensor-core key {key!r} is not '{{path}}_{{dtype}}'",
                    expected=f"e.g. wgmma_bf16, mma_sync_fp16 (dtype in {', '.join(TC_DTYPES)})",
                    got=key,
                )
        return value

    @model_validator(mode="after")
    def _clocks(self) -> GpuParams:
        if self.min_clock_hz is not None and self.min_clock_hz > self.base_clock_hz:
            fail(
                "min_clock_hz",
                "min clock above base clock",
                expected=f"Hz <= base_clock_hz = {self.base_clock_hz:g}",
                got=self.min_clock_hz,
            )
        if self.boost_clock_hz < self.base_clock_hz:
            fail(
                "boost_clock_hz",
                "boost clock below base clock",
                expected=f"Hz >= base_clock_hz = {self.base_clock_hz:g}",
                got=self.boost_clock_hz,
            )
        if (
            self.smem_bytes_per_sm is not None
            and self.max_smem_per_cta_bytes > self.smem_bytes_per_sm
        ):
            fail(
                "max_smem_per_cta_bytes",
                "a CTA cannot use more shared memory than its SM has",
                expected=f"bytes <= smem_bytes_per_sm = {self.smem_bytes_per_sm:g}",
                got=self.max_smem_per_cta_bytes,
            )
        return self

    def tc_flops_per_cycle(self, path: str, dtype: str) -> float:
        """Tensor-core FLOP per SM per cycle for ``path`` (``wgmma``) and ``dtype`` (``bf16``).

        Falls back from ``fp16`` to ``bf16`` and back (same rate on every NVIDIA tensor core).

        Raises
        ------
        KeyError
            If neither the key nor its fallback exists.
        """
        for key in (f"{path}_{dtype}", f"{path}_{_FP16_TWIN.get(dtype, dtype)}"):
            if key in self.tc_flops_per_cycle_per_sm:
                return self.tc_flops_per_cycle_per_sm[key]
        raise KeyError(
            f"no tensor-core path {path}_{dtype}; have {sorted(self.tc_flops_per_cycle_per_sm)}"
        )


_FP16_TWIN = {"fp16": "bf16", "bf16": "fp16"}


class PimParams(SpecModel):
    """Processing-in-memory units inside the DRAM (kind ``pim``).

    Rates are in DRAM command cycles (tCK of the ``dram`` level's timing): a unit consumes
    one column access (``burst_bytes``) and does ``macs_per_unit_per_cmd`` MACs per MAC
    command, and MAC commands to a unit are at least ``mac_cmd_gap_cycles`` apart.
    """

    placement: Literal["bank", "bank_group", "buffer_die"]
    """Where a PIM unit sits: by a bank (or bank pair), per bank group, or on the buffer die."""
    units_per_channel: PosInt
    """PIM units per DRAM channel (all its pseudo-channels and ranks)."""
    banks_per_unit: PosInt = 1
    """Banks feeding one unit (Aquabolt-XL: 2, one unit per bank pair)."""
    macs_per_unit_per_cmd: PosInt
    """MACs one unit does per MAC command (SIMD lanes: 32 B of fp16 = 16)."""
    unit_clock_hz: Hz
    """Clock of the PIM arithmetic in Hz (informational; rates follow the command gap)."""
    mac_cmd_gap_cycles: PosInt
    """Minimum tCK cycles between MAC commands under the power limit (AttAcc: 6)."""
    mac_cmd_gap_cycles_unlimited: PosInt
    """Minimum tCK cycles between MAC commands without a power limit (tCCD_L, e.g. 4)."""
    power_limited: bool = True
    """Whether the power-limited gap applies (False: use ``mac_cmd_gap_cycles_unlimited``)."""
    energy_pj_per_mac: NonNegFloat
    """Arithmetic energy of one MAC in pJ."""
    access_energy_pj_per_byte: NonNegFloat = 0.0
    """DRAM energy per byte a unit reads, counting only the datapath segments it crosses, pJ/B."""
    dtype_bits: PosInt = 16
    """Operand width of the units in bits."""
    buffer_bytes_per_unit: NonNegFloat = 0.0
    """Register/buffer space per unit in bytes (e.g. Aquabolt-XL GRF: 2 x 8 x 32 B)."""
    global_buffer_bytes_per_channel: NonNegFloat = 0.0
    """Shared input-vector buffer per channel in bytes (AiM/Newton global buffer)."""
    notes: str = ""
    """Free text: assumptions and sources."""

    @model_validator(mode="after")
    def _gaps(self) -> PimParams:
        if self.mac_cmd_gap_cycles < self.mac_cmd_gap_cycles_unlimited:
            fail(
                "mac_cmd_gap_cycles",
                "the power-limited gap cannot be shorter than the unlimited one",
                expected=f">= {self.mac_cmd_gap_cycles_unlimited}",
                got=self.mac_cmd_gap_cycles,
            )
        return self

    @property
    def gap_cycles(self) -> int:
        """The MAC command gap in force (tCK cycles)."""
        return self.mac_cmd_gap_cycles if self.power_limited else self.mac_cmd_gap_cycles_unlimited

    def macs_per_tck_per_unit(self, power_limited: bool | None = None) -> float:
        """Sustained MACs per tCK of one unit (``None`` = use ``power_limited``)."""
        limited = self.power_limited if power_limited is None else power_limited
        gap = self.mac_cmd_gap_cycles if limited else self.mac_cmd_gap_cycles_unlimited
        return self.macs_per_unit_per_cmd / gap
