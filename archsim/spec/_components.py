"""Component specs: clock, DRAM timing, storage levels, compute units, networks.

Conventions (units are in every field's docstring):

* Bandwidths are bytes per **core** cycle per instance; ops are per core cycle per instance.
* ``mesh`` = ``(rows, cols)`` describes one instance that is itself an array of identical
  processing elements (PEs), e.g. a 256x256 PE array is ONE compute instance whose
  ``ops_per_cycle`` already include all 65,536 PEs. Give the per-PE figure instead
  (``ops_per_cycle_per_pe``, ``capacity_bytes_per_pe``, ...) and the whole-instance value is
  derived as ``per_pe * rows * cols`` — so changing ``mesh`` in a sweep changes throughput,
  capacity and area. Giving both forms is allowed only if they agree.
* Op kinds: ``mac`` (or dtype-qualified ``mac_bf16``, ``mac_fp16``, ``mac_fp8``, ...),
  ``add``, ``mul``, ``max``, ``exp``, ``div``, ``recip``, ``cmp``... A lookup of
  ``mac_bf16`` falls back to ``mac`` (see :meth:`ComputeUnit.throughput`).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Annotated, Any, ClassVar, Literal

from pydantic import Field, field_validator, model_validator

from archsim.errors import ArchSpecError
from archsim.spec._base import SpecModel, close, fail
from archsim.spec._dram import DramTiming
from archsim.spec._types import (
    INT_MAX,
    Bytes,
    BytesPerCycle,
    BytesPerS,
    Hz,
    NonNegFloat,
    NonNegInt,
    PosFloat,
    PosInt,
)

__all__ = [
    "Technology",
    "Clock",
    "StorageLevel",
    "ComputeUnit",
    "Network",
    "OP_KINDS",
    "OP_DTYPES",
    "op_fallbacks",
]

Name = Annotated[str, Field(min_length=1, pattern=r"^[A-Za-z_][A-Za-z0-9_\-]*$")]
Mesh = tuple[PosInt, PosInt]

#: base op kinds a compute unit may list (a ``_<dtype>`` suffix is allowed on any of them)
OP_KINDS: tuple[str, ...] = (
    "mac",
    "add",
    "sub",
    "mul",
    "max",
    "min",
    "cmp",
    "exp",
    "div",
    "recip",
    "sqrt",
    "rsqrt",
    "neg",
    "silu",
)
#: dtype suffixes allowed on op kinds
OP_DTYPES: tuple[str, ...] = ("bf16", "fp16", "fp8", "fp32", "tf32", "fp64", "int8", "int4")


def op_fallbacks(op: str) -> tuple[str, ...]:
    """Keys tried, in order, when looking up ``op``: ``mac_bf16`` -> (``mac_bf16``, ``mac``)."""
    base, _, dtype = op.partition("_")
    return (op, base) if dtype else (op,)


def _check_op_keys(values: Mapping[str, float], field: str) -> None:
    for key in values:
        base, _, dtype = str(key).partition("_")
        if base not in OP_KINDS or (dtype and dtype not in OP_DTYPES):
            fail(
                str(key),
                f"unknown op kind {key!r}",
                expected=f"one of {', '.join(OP_KINDS)} (optionally _<dtype>, dtype in "
                f"{', '.join(OP_DTYPES)})",
                got=key,
            )


def _mesh_pes(data: dict[str, Any]) -> int | None:
    mesh = data.get("mesh")
    if mesh is None:
        return None
    try:
        rows, cols = (int(v) for v in mesh)
    except (TypeError, ValueError, OverflowError):
        return None  # the field validator reports the malformed mesh
    if not (1 <= rows <= INT_MAX and 1 <= cols <= INT_MAX):
        return None  # the field validator reports the out-of-range side
    return rows * cols


def _derive_scalar(data: dict[str, Any], total: str, per_pe: str) -> None:
    """Fill ``data[total]`` from ``data[per_pe]`` x PEs in the mesh (checking agreement)."""
    value = data.get(per_pe)
    if value is None:
        return
    pes = _mesh_pes(data)
    if pes is None:
        if data.get("mesh") is None and not data.get("mesh_like"):
            fail(
                per_pe,
                f"{per_pe} needs a mesh",
                expected="mesh: [rows, cols] (or, for a level, mesh_like: UNIT)",
                got=None,
            )
        return
    try:
        derived = float(value) * pes
    except (TypeError, ValueError, OverflowError):
        return  # the field validator reports it
    given = data.get(total)
    if given is not None:
        try:
            agree = close(float(given), derived)
        except (TypeError, ValueError, OverflowError):
            return
        if not agree:
            fail(
                total,
                f"{total} disagrees with {per_pe} x mesh PEs ({value} x {pes})",
                expected=derived,
                got=given,
            )
    data[total] = derived


def _derive_area_per_mib(data: dict[str, Any]) -> None:
    """Fill ``area_mm2`` of a level from ``area_mm2_per_mib`` x capacity (checking agreement)."""
    per_mib = data.get("area_mm2_per_mib")
    if per_mib is None:
        return
    if data.get("area_mm2_per_pe") is not None:
        fail(
            "area_mm2_per_mib",
            "give the area per PE or per MiB, not both",
            expected="one of area_mm2_per_pe, area_mm2_per_mib",
            got=per_mib,
        )
    capacity = data.get("capacity_bytes")
    if capacity is None:
        fail(
            "area_mm2_per_mib",
            "area per MiB needs the level's capacity",
            expected="capacity_bytes (or capacity_bytes_per_pe with a mesh)",
            got=None,
        )
    try:
        derived = float(per_mib) * float(capacity) / 2**20
        given = None if data.get("area_mm2") is None else float(data["area_mm2"])
    except (TypeError, ValueError, OverflowError):
        return  # the field validators report it
    if given is not None and not close(given, derived):
        fail(
            "area_mm2",
            f"area_mm2 disagrees with area_mm2_per_mib x capacity ({per_mib} x "
            f"{float(capacity) / 2**20:g} MiB)",
            expected=derived,
            got=given,
        )
    data["area_mm2"] = derived


class Technology(SpecModel):
    """Process technology the energy and area figures of a spec are for."""

    node_nm: Annotated[float, Field(ge=1, le=1000, allow_inf_nan=False)]
    """Process node in nm (45 for Accelergy/Horowitz tables, 5 for TSMC 4N, 7 for N7; for
    DRAM-PIM the DRAM process). :func:`archsim.energy.scale_architecture` moves energies
    and areas between nodes with the documented rule."""
    process: Literal["logic", "dram"] = "logic"
    """``logic``: a logic process (figures scale with the logic-node rule). ``dram``: logic
    built in a DRAM process (PIM units); not scaled to logic nodes."""
    notes: str = ""
    """Free text: foundry process name, where the figures come from."""

    @field_validator("node_nm", mode="before")
    @classmethod
    def _number(cls, value: Any) -> Any:
        if isinstance(value, bool):
            fail("", "a boolean where a number is expected", expected="nm", got=value)
        return value


class Clock(SpecModel):
    """Clock domains of an architecture."""

    core_hz: Hz
    """Core clock in Hz: the cycle unit of every ``*_per_cycle`` figure and of engine time."""
    memory_hz: Hz | None = None
    """DRAM command clock in Hz (1/tCK); None = not modelled separately."""


class StorageLevel(SpecModel):
    """One level of the storage hierarchy (figures per instance unless said otherwise)."""

    name: Name
    """Unique component name (``HBM``, ``L2``, ``GLB``); used in result keys."""
    kind: Literal["dram", "sram", "regfile", "cache"]
    """Technology/role: off-chip DRAM, scratchpad SRAM, register file, or cache."""
    capacity_bytes: Bytes | None = None
    """Capacity in bytes per instance; None = unbounded (e.g. DRAM for our purposes)."""
    instances: PosInt = 1
    """Identical copies (e.g. one SMEM per SM: 132)."""
    per_sm: bool = False
    """GPU only: ``instances`` equals ``gpu.sms`` (derived; follows ``gpu.sms`` updates)."""
    per_pim_unit: bool = False
    """PIM only: ``instances`` = DRAM channels x ``pim.units_per_channel`` (derived)."""
    mesh: Mesh | None = None
    """(rows, cols) of per-PE sub-buffers making up one instance (e.g. PE register files)."""
    mesh_like: Name | None = None
    """Name of a compute unit whose ``mesh`` this level shares (per-PE storage of that array)."""
    read_bw_bytes_per_cycle: BytesPerCycle
    """Read bandwidth in bytes per core cycle per instance."""
    write_bw_bytes_per_cycle: BytesPerCycle
    """Write bandwidth in bytes per core cycle per instance (defaults to the read bandwidth)."""
    read_bw_bytes_per_s: BytesPerS | None = None
    """Alternative to ``read_bw_bytes_per_cycle`` in bytes/s per instance (e.g. DRAM, whose
    bandwidth does not follow the core clock); the Architecture derives bytes/cycle from it."""
    write_bw_bytes_per_s: BytesPerS | None = None
    """Alternative to ``write_bw_bytes_per_cycle`` in bytes/s per instance."""
    latency_cycles: NonNegInt = 0
    """Access latency in core cycles, paid once per dependent access."""
    read_energy_pj_per_byte: NonNegFloat = 0.0
    """Dynamic energy per byte read, in pJ/byte."""
    write_energy_pj_per_byte: NonNegFloat = 0.0
    """Dynamic energy per byte written, in pJ/byte."""
    leakage_w: NonNegFloat = 0.0
    """Static (leakage) power per instance in W."""
    area_mm2: NonNegFloat = 0.0
    """Silicon area per instance in mm^2 (0 for off-chip DRAM)."""
    capacity_bytes_per_pe: Bytes | None = None
    """With mesh: capacity per PE in bytes; ``capacity_bytes`` = this x rows x cols."""
    read_bw_bytes_per_cycle_per_pe: BytesPerCycle | None = None
    """With mesh: read bandwidth per PE in bytes/cycle (instance value derived)."""
    write_bw_bytes_per_cycle_per_pe: BytesPerCycle | None = None
    """With mesh: write bandwidth per PE in bytes/cycle (instance value derived)."""
    area_mm2_per_pe: NonNegFloat | None = None
    """With mesh: area per PE in mm^2; ``area_mm2`` = this x rows x cols."""
    area_mm2_per_mib: NonNegFloat | None = None
    """Area per MiB of capacity in mm^2/MiB; ``area_mm2`` = this x ``capacity_bytes`` / 2^20,
    re-derived whenever the capacity changes (a sweep over capacity then pays for it)."""
    dram: DramTiming | None = None
    """DRAM organisation and timing (kind ``dram`` only; required for PIM architectures)."""
    bandwidth_model: Literal["figure", "timing"] = "figure"
    """``figure``: the engine uses the read/write bandwidth fields. ``timing`` (kind ``dram``
    with ``dram:`` timing): the engine uses the DRAM timing model's streaming rate instead
    (row switches, refresh; see ``archsim.dram``)."""
    shared_read_write: bool = False
    """True: reads and writes share one bus, as on a real DRAM channel. The engine then has
    one bandwidth server per instance, of ``read_bw_bytes_per_cycle`` (the timing model's rate
    with ``bandwidth_model: timing``), that serves both directions: a transfer into and one out
    of the level contend for it, and a level-to-itself transfer uses it twice. False (default):
    separate read and write ports of their own bandwidths."""
    address_generators: NonNegInt = 0
    """Push memory (a CGRA memory tile, a line buffer): affine address generators per
    instance, each streaming one access pattern into or out of the level with no load/store
    instructions (StanfordAHA/lake's memory tile: 2 writing + 2 reading). 0 (default): an
    ordinary level, read and written on request."""
    address_generator_loops: NonNegInt = 0
    """Nested loops one address generator iterates (the depth of its iteration domain; lake:
    6). At least 1 with ``address_generators``, 0 without."""
    description: str = ""
    """Free text: what this level models, sources."""

    #: (derived whole-instance field, per-PE field)
    PER_PE_FIELDS: ClassVar[tuple[tuple[str, str], ...]] = (
        ("capacity_bytes", "capacity_bytes_per_pe"),
        ("read_bw_bytes_per_cycle", "read_bw_bytes_per_cycle_per_pe"),
        ("write_bw_bytes_per_cycle", "write_bw_bytes_per_cycle_per_pe"),
        ("area_mm2", "area_mm2_per_pe"),
    )

    @model_validator(mode="before")
    @classmethod
    def _derive(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            return data
        data = dict(data)
        for total, per_pe in cls.PER_PE_FIELDS:
            _derive_scalar(data, total, per_pe)
        _derive_area_per_mib(data)
        read = data.get("read_bw_bytes_per_cycle")
        if data.get("write_bw_bytes_per_cycle") is None and isinstance(read, int | float):
            if read > 0:  # an invalid read figure is reported once, on its own field
                data["write_bw_bytes_per_cycle"] = read
        return data

    @model_validator(mode="after")
    def _check(self) -> StorageLevel:
        if self.dram is not None and self.kind != "dram":
            fail(
                "dram",
                f"DRAM timing given for a {self.kind!r} level",
                expected="kind: dram",
                got=self.kind,
            )
        if self.bandwidth_model == "timing" and self.dram is None:
            fail(
                "bandwidth_model",
                "bandwidth_model 'timing' needs the level's DRAM timing",
                expected="a dram: block (kind dram) or bandwidth_model: figure",
                got="timing",
            )
        if self.address_generators and self.kind == "dram":
            fail(
                "address_generators",
                "address generators belong to an on-chip push memory",
                expected="kind sram, regfile or cache",
                got=self.kind,
            )
        if bool(self.address_generators) != bool(self.address_generator_loops):
            fail(
                "address_generator_loops",
                "address generators and their loop depth go together",
                expected="both >= 1 (a push memory) or both 0",
                got=f"{self.address_generators} generators, {self.address_generator_loops} loops",
            )
        if self.mesh_like is not None and self.mesh is None:
            fail(
                "mesh_like",
                "mesh_like is resolved by the Architecture; give mesh when "
                "building a StorageLevel alone",
                expected="mesh: [rows, cols]",
                got=None,
            )
        return self

    @property
    def pes(self) -> int:
        """PEs (sub-buffers) per instance: rows x cols of the mesh, 1 without a mesh."""
        return self.mesh[0] * self.mesh[1] if self.mesh else 1

    @property
    def total_capacity_bytes(self) -> float | None:
        """Capacity over all instances in bytes (None = unbounded)."""
        return None if self.capacity_bytes is None else self.capacity_bytes * self.instances


class ComputeUnit(SpecModel):
    """A compute unit: throughput and energy per op kind (figures per instance)."""

    name: Name
    """Unique component name (``tensor``, ``pe2d``); used in result keys."""
    instances: PosInt = 1
    """Identical copies running concurrently (e.g. one tensor-core block per SM: 132)."""
    per_sm: bool = False
    """GPU only: ``instances`` equals ``gpu.sms`` (derived; follows ``gpu.sms`` updates)."""
    per_pim_unit: bool = False
    """PIM only: ``instances`` = DRAM channels x ``pim.units_per_channel`` (derived)."""
    mesh: Mesh | None = None
    """(rows, cols) of PEs in ONE instance (a 256x256 PE array is one instance)."""
    ops_per_cycle_per_pe: dict[str, PosFloat] | None = None
    """With mesh: throughput per PE; whole-instance rate = this x rows x cols."""
    ops_per_cycle: dict[str, PosFloat] = Field(default_factory=dict)
    """Throughput per op kind in ops per core cycle per instance (a MAC counts as one op)."""
    energy_pj: dict[str, NonNegFloat] = Field(default_factory=dict)
    """Dynamic energy per op kind in pJ per op (same keys/fallbacks as ``ops_per_cycle``)."""
    leakage_w: NonNegFloat = 0.0
    """Static power per instance in W."""
    area_mm2: NonNegFloat = 0.0
    """Area per instance in mm^2."""
    area_mm2_per_pe: NonNegFloat | None = None
    """With mesh: area per PE in mm^2; ``area_mm2`` = this x rows x cols."""
    level: Name | None = None
    """Name of the storage level this unit reads its operands from (None = unspecified)."""
    fused_ops: dict[str, str] = Field(default_factory=dict)
    """Op kind -> the op kind whose pipeline it rides in: within one Einsum, up to one of the
    first per op of the second issues no op of its own (``sub: exp``: a subtract feeding a
    pipelined exp unit, as FLAT's 1D array has)."""
    description: str = ""
    """Free text: what this unit models, sources."""

    PER_PE_FIELDS: ClassVar[tuple[tuple[str, str], ...]] = (("area_mm2", "area_mm2_per_pe"),)

    @model_validator(mode="before")
    @classmethod
    def _derive(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            return data
        data = dict(data)
        _derive_scalar(data, "area_mm2", "area_mm2_per_pe")
        per_pe = data.get("ops_per_cycle_per_pe")
        if per_pe is None or not isinstance(per_pe, Mapping):
            return data
        pes = _mesh_pes(data)
        if pes is None:
            if data.get("mesh") is None:
                fail(
                    "ops_per_cycle_per_pe",
                    "ops_per_cycle_per_pe needs a mesh",
                    expected="mesh: [rows, cols]",
                    got=None,
                )
            return data
        given_raw = data.get("ops_per_cycle") or {}
        if not isinstance(given_raw, Mapping):
            return data  # the field validator reports the malformed ops_per_cycle
        given = dict(given_raw)
        for key, value in per_pe.items():
            try:
                derived = float(value) * pes
                other = float(given[key]) if key in given else derived
            except (TypeError, ValueError, OverflowError):
                continue  # the field validator reports it
            if not math.isfinite(derived):
                continue  # the field validator reports the per-PE figure
            if not close(other, derived):
                fail(
                    f"ops_per_cycle.{key}",
                    f"disagrees with ops_per_cycle_per_pe.{key} x mesh PEs ({value} x {pes})",
                    expected=derived,
                    got=given.get(key),
                )
            given[key] = derived
        data["ops_per_cycle"] = given
        return data

    @field_validator("ops_per_cycle", "ops_per_cycle_per_pe", "energy_pj")
    @classmethod
    def _op_keys(cls, value: dict[str, float] | None, info: Any) -> dict[str, float] | None:
        if info.field_name == "ops_per_cycle" and "ops_per_cycle_per_pe" not in info.data:
            return value  # the per-PE figures (copied in here) failed and are reported
        if value is not None:
            _check_op_keys(value, info.field_name)
        return value

    @model_validator(mode="after")
    def _check(self) -> ComputeUnit:
        if not self.ops_per_cycle:
            fail(
                "ops_per_cycle",
                "a compute unit needs at least one op kind",
                expected="e.g. {mac: 1024}",
                got={},
            )
        return self

    @property
    def pes(self) -> int:
        """PEs per instance: rows x cols of the mesh, 1 without a mesh."""
        return self.mesh[0] * self.mesh[1] if self.mesh else 1

    def supports(self, op: str) -> bool:
        """Whether this unit executes ``op`` (directly or through its fallback)."""
        return any(key in self.ops_per_cycle for key in op_fallbacks(op))

    def throughput(self, op: str) -> float:
        """Ops per core cycle per instance for ``op``; ``mac_bf16`` falls back to ``mac``.

        Raises
        ------
        ArchSpecError
            If the unit cannot execute ``op``.
        """
        for key in op_fallbacks(op):
            if key in self.ops_per_cycle:
                return self.ops_per_cycle[key]
        raise ArchSpecError(
            f"compute unit {self.name!r} cannot execute {op!r}",
            path=f"compute.{self.name}.ops_per_cycle",
            expected="one of " + ", ".join(sorted(self.ops_per_cycle)),
            got=op,
        )

    def energy(self, op: str) -> float:
        """Energy in pJ of one ``op`` (with the same fallback); 0.0 if none is given."""
        for key in op_fallbacks(op):
            if key in self.energy_pj:
                return self.energy_pj[key]
        return 0.0


class Network(SpecModel):
    """A link between two storage levels (e.g. GLB -> PE array, with multicast)."""

    name: Name
    """Unique component name."""
    src: Name
    """Name of the source storage level."""
    dst: Name
    """Name of the destination storage level."""
    bw_bytes_per_cycle: BytesPerCycle
    """Bandwidth in bytes per core cycle."""
    multicast: bool = False
    """Whether one transfer can deliver the same bytes to many destination instances."""
    energy_pj_per_byte: NonNegFloat = 0.0
    """Energy per byte carried, in pJ/byte."""
    description: str = ""
    """Free text."""
