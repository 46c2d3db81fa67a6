"""The :class:`Architecture` spec: levels + compute units + networks + clock (+ GPU/PIM params)."""

from __future__ import annotations

import copy
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal, TypeVar

from pydantic import BaseModel, Field, model_validator

from archsim.errors import ArchSpecError
from archsim.spec._base import SpecModel, fail
from archsim.spec._components import (
    Clock,
    ComputeUnit,
    Name,
    Network,
    NonNegFloat,
    PosFloat,
    StorageLevel,
    Technology,
)
from archsim.spec._derive import (
    inject_gpu_sizes,
    inject_mesh_like,
    inject_per_pim_unit,
    inject_per_s,
    inject_per_sm,
)
from archsim.spec._inherit import provenance_of, resolve_bases
from archsim.spec._params import GpuParams, PimParams
from archsim.spec._updates import apply_updates, strip_derived
from archsim.spec._yaml import load_yaml_mapping

__all__ = ["Architecture"]

_Named = TypeVar("_Named", StorageLevel, ComputeUnit)


def _as_dict(item: Any) -> Any:
    return item.model_dump(exclude_none=True) if isinstance(item, BaseModel) else item


class Architecture(SpecModel):
    """A whole machine: storage levels (outermost first), compute units, networks, clock.

    Build one from YAML (:meth:`from_yaml`), a dict (:meth:`from_dict`), a preset
    (:func:`archsim.load_arch`) or Python objects. Every problem raises
    :class:`archsim.errors.ArchSpecError` with the path of the offending field.

    Derived values (recomputed by :meth:`with_updates`): ``*_per_pe`` figures x ``mesh``;
    ``mesh`` of a level with ``mesh_like``; ``instances`` of ``per_sm`` components =
    ``gpu.sms``; ``gpu.smem_bytes_per_sm`` / ``gpu.l2_bytes`` from the named levels.
    """

    name: Name
    """Architecture name (presets: the file stem)."""
    kind: Literal["spatial", "gpu", "pim"]
    """Family: spatial accelerator, GPU (needs ``gpu``), or DRAM-PIM (needs ``pim``)."""
    description: str = ""
    """One line first (shown by ``archsim arch list``), then details."""
    clock: Clock
    """Clock domains."""
    levels: tuple[StorageLevel, ...] = Field(min_length=1)
    """Storage levels, outermost (DRAM) first."""
    compute: tuple[ComputeUnit, ...] = Field(min_length=1)
    """Compute units."""
    networks: tuple[Network, ...] = ()
    """Explicit links between levels (optional; unlisted pairs use the levels' bandwidths)."""
    technology: Technology | None = None
    """Process node of the energy/area figures (``{node_nm: 45}``); None = not stated, and
    :func:`archsim.energy.scale_architecture` then refuses to scale."""
    uncore_area_mm2: NonNegFloat = 0.0
    """Die area in mm^2 outside the listed levels and units (I/O, PHYs, interconnect);
    counted in :attr:`area_mm2`."""
    power_cap_w: PosFloat | None = None
    """Board/chip power limit in W (GPUs); None = no cap modelled."""
    idle_power_w: NonNegFloat = 0.0
    """Power drawn while idle in W (counted as static power x time)."""
    gpu: GpuParams | None = None
    """GPU parameters (kind ``gpu`` only)."""
    pim: PimParams | None = None
    """PIM parameters (kind ``pim`` only)."""
    sources: tuple[str, ...] = ()
    """Citations for the figures (papers, datasheets, files)."""

    # ------------------------------------------------------------------ validation
    @model_validator(mode="before")
    @classmethod
    def _derive(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            return data
        data = copy.deepcopy(data)  # the injections below must not edit the caller's dicts
        for key in ("levels", "compute", "networks"):
            if isinstance(data.get(key), list | tuple):
                data[key] = [_as_dict(x) for x in data[key]]
        for key in ("gpu", "pim", "clock"):
            data[key] = _as_dict(data.get(key))
        if data["gpu"] is None:
            data.pop("gpu")
        if data["pim"] is None:
            data.pop("pim")
        if data["clock"] is None:
            data.pop("clock")
        inject_per_sm(data)
        inject_mesh_like(data)
        inject_gpu_sizes(data)
        inject_per_s(data)
        inject_per_pim_unit(data)
        return data

    @model_validator(mode="after")
    def _check(self) -> Architecture:
        self._check_names()
        if self.kind == "gpu" and self.gpu is None:
            fail("gpu", "kind 'gpu' needs gpu parameters", expected="a gpu: mapping", got=None)
        if self.kind == "pim" and self.pim is None:
            fail("pim", "kind 'pim' needs pim parameters", expected="a pim: mapping", got=None)
        self._check_refs()
        self._check_kind()
        self._check_dram_bandwidth()
        return self

    def _check_refs(self) -> None:
        """DRAM placement, per_sm/per_pim_unit owners, and the level names units/networks use."""
        for i, lvl in enumerate(self.levels):
            if lvl.kind == "dram" and i != 0:
                fail(
                    f"levels[{i}].kind",
                    f"level {lvl.name!r}: a DRAM level must be the outermost (first) level",
                    expected="levels[0]",
                    got=f"levels[{i}]",
                )
        for group, items in (("levels", self.levels), ("compute", self.compute)):
            for i, item in enumerate(items):
                for flag, owner, kind in (
                    ("per_sm", self.gpu, "gpu"),
                    ("per_pim_unit", self.pim, "pim"),
                ):
                    if getattr(item, flag) and owner is None:
                        fail(
                            f"{group}[{i}].{flag}",
                            f"{flag} needs {kind} params",
                            expected=f"kind: {kind}",
                            got=self.kind,
                        )
        names = [lvl.name for lvl in self.levels]
        refs = [
            (f"compute[{i}].level", f"unit {u.name!r}", u.level)
            for i, u in enumerate(self.compute)
            if u.level is not None
        ]
        refs += [
            (f"networks[{i}].{end}", f"network {n.name!r}", getattr(n, end))
            for i, n in enumerate(self.networks)
            for end in ("src", "dst")
        ]
        for path, who, ref in refs:
            if ref not in names:
                fail(
                    path,
                    f"{who} names an unknown level",
                    expected="one of " + ", ".join(names),
                    got=ref,
                )
        for i, net in enumerate(self.networks):
            if net.src == net.dst:
                fail(
                    f"networks[{i}].dst",
                    f"network {net.name!r} links a level to itself",
                    expected=f"a level other than {net.src!r}",
                    got=net.dst,
                )

    def _check_names(self) -> None:
        seen: dict[str, str] = {}
        groups: tuple[tuple[str, tuple[StorageLevel | ComputeUnit | Network, ...]], ...] = (
            ("levels", self.levels),
            ("compute", self.compute),
            ("networks", self.networks),
        )
        for group, items in groups:
            for i, item in enumerate(items):
                if item.name in seen:
                    fail(
                        f"{group}[{i}].name",
                        f"duplicate component name {item.name!r} "
                        f"(already used by {seen[item.name]})",
                        expected="a unique name",
                        got=item.name,
                    )
                seen[item.name] = f"{group}[{i}]"
        for i, lvl in enumerate(self.levels):
            if lvl.mesh_like is not None:
                unit = next((u for u in self.compute if u.name == lvl.mesh_like), None)
                if unit is None or unit.mesh is None:
                    fail(
                        f"levels[{i}].mesh_like",
                        f"level {lvl.name!r}: mesh_like must name a compute unit with a mesh",
                        expected="one of " + ", ".join(u.name for u in self.compute if u.mesh),
                        got=lvl.mesh_like,
                    )
                if lvl.mesh != unit.mesh:
                    fail(
                        f"levels[{i}].mesh",
                        f"level {lvl.name!r} mesh differs from unit {unit.name!r}",
                        expected=unit.mesh,
                        got=lvl.mesh,
                    )

    def _check_kind(self) -> None:
        if self.kind != "gpu" and self.gpu is not None:
            fail(
                "gpu",
                f"gpu parameters given for kind {self.kind!r}",
                expected="kind: gpu",
                got=self.kind,
            )
        if self.kind != "pim" and self.pim is not None:
            fail(
                "pim",
                f"pim parameters given for kind {self.kind!r}",
                expected="kind: pim",
                got=self.kind,
            )
        if self.gpu is not None:
            for attr, level in (
                ("smem_bytes_per_sm", self.gpu.smem_level),
                ("l2_bytes", self.gpu.l2_level),
            ):
                if getattr(self.gpu, attr) is None:
                    fail(
                        f"gpu.{attr}",
                        f"not given and no level named {level!r} to take it from",
                        expected="bytes > 0",
                        got=None,
                    )
        if self.kind == "pim":
            self._check_pim()

    def _check_pim(self) -> None:
        assert self.pim is not None
        dram = self.levels[0]
        timing = dram.dram
        if dram.kind != "dram" or timing is None:
            fail(
                "levels[0].dram",
                "kind 'pim' needs a DRAM level (levels[0]) with timing",
                expected="levels[0]: kind dram with a dram: timing mapping",
                got=dram.kind,
            )
            return
        limits = {
            "bank": timing.banks_per_channel,
            "bank_group": timing.pseudo_channels * timing.ranks * timing.bank_groups,
            "buffer_die": timing.pseudo_channels,
        }
        limit = limits[self.pim.placement]
        used = self.pim.units_per_channel * (
            self.pim.banks_per_unit if self.pim.placement == "bank" else 1
        )
        if used > limit:
            fail(
                "pim.units_per_channel",
                f"more {self.pim.placement} PIM units than the channel has places for",
                expected=f"units x banks_per_unit <= {limit}",
                got=used,
            )
        if self.pim.mac_cmd_gap_cycles_unlimited < timing.tCCD_S:
            fail(
                "pim.mac_cmd_gap_cycles_unlimited",
                "MAC commands cannot issue faster than column commands",
                expected=f">= tCCD_S = {timing.tCCD_S}",
                got=self.pim.mac_cmd_gap_cycles_unlimited,
            )

    def _check_dram_bandwidth(self) -> None:
        dram = self.levels[0]
        if dram.dram is None:
            return
        pin = dram.dram.peak_bytes_per_s / self.clock.core_hz
        if dram.read_bw_bytes_per_cycle * dram.instances > pin * 1.001:
            fail(
                "levels[0].read_bw_bytes_per_cycle",
                f"level {dram.name!r} reads faster than "
                "its DRAM pins allow (channels x bus_bytes_per_cycle / tCK)",
                expected=f"bytes/cycle <= {pin:.4g}",
                got=dram.read_bw_bytes_per_cycle,
            )

    # ------------------------------------------------------------------ lookups
    def level(self, name: str) -> StorageLevel:
        """The storage level called ``name`` (raises :class:`ArchSpecError` if none)."""
        return self._named(self.levels, name, "levels", "storage level")

    def unit(self, name: str) -> ComputeUnit:
        """The compute unit called ``name`` (raises :class:`ArchSpecError` if none)."""
        return self._named(self.compute, name, "compute", "compute unit")

    def _named(self, items: tuple[_Named, ...], name: str, path: str, what: str) -> _Named:
        """The item of ``items`` called ``name``; :class:`ArchSpecError` at ``path`` if none."""
        for item in items:
            if item.name == name:
                return item
        raise ArchSpecError(
            f"architecture {self.name!r} has no {what} {name!r}",
            path=path,
            expected="one of " + ", ".join(i.name for i in items),
            got=name,
        )

    def network(self, src: str, dst: str) -> Network | None:
        """The network from level ``src`` to ``dst``, or None if none is listed."""
        return next((n for n in self.networks if n.src == src and n.dst == dst), None)

    @property
    def dram(self) -> StorageLevel:
        """The outermost storage level (``levels[0]``, DRAM in every preset)."""
        return self.levels[0]

    @property
    def area_mm2(self) -> float:
        """Silicon area in mm^2: instances x area over levels and units, plus the uncore."""
        parts = sum(x.instances * x.area_mm2 for x in self._parts())
        return float(parts + self.uncore_area_mm2)

    def _parts(self) -> tuple[StorageLevel | ComputeUnit, ...]:
        """Levels and compute units, the components that have instances, area and leakage."""
        return (*self.levels, *self.compute)

    @property
    def leakage_w(self) -> float:
        """Static power in W: idle power + instances x leakage of every level and unit."""
        parts = sum(x.instances * x.leakage_w for x in self._parts())
        return float(self.idle_power_w + parts)

    def peak_ops_per_cycle(self, op: str, unit: str | None = None) -> float:
        """Ops per core cycle of ``op`` over all instances of ``unit`` (None: all units)."""
        units = (self.unit(unit),) if unit is not None else self.compute
        return float(sum(u.instances * u.throughput(op) for u in units if u.supports(op)))

    def peak_ops_per_s(self, op: str, unit: str | None = None) -> float:
        """Ops per second of ``op`` at ``clock.core_hz`` (a MAC counts as one op)."""
        return self.peak_ops_per_cycle(op, unit) * self.clock.core_hz

    # ------------------------------------------------------------------ I/O and updates
    @classmethod
    def from_dict(
        cls, data: Mapping[str, Any], source: str = "<dict>", base_dir: Path | None = None
    ) -> Architecture:
        """Validate a plain mapping (parsed YAML/JSON) into an Architecture.

        A ``base:`` key merges ``data`` over a preset or another file first (rules in
        :mod:`archsim.spec._inherit`); a relative base path is taken from ``base_dir``
        (default: the current directory).

        Raises
        ------
        ArchSpecError
            With the path of the first problem; the message names ``source`` (or, with
            ``base:``, the file that set the bad field).
        """
        if not isinstance(data, Mapping):
            raise ArchSpecError(
                f"an architecture spec must be a mapping ({source})",
                expected="a mapping of name, kind, clock, levels, compute, ...",
                got=type(data).__name__,
            )
        bad = next((k for k in data if not isinstance(k, str)), None)
        if bad is not None:
            raise ArchSpecError(
                f"keys of an architecture spec are field names ({source})",
                path=str(bad),
                expected="a string key such as name, kind, clock, levels, compute",
                got=bad,
            )
        spec, prov = dict(data), None
        if "base" in spec:
            spec, prov = resolve_bases(spec, source, base_dir)
        try:
            return cls(**spec)
        except ArchSpecError as exc:
            where = provenance_of(exc.path, spec, prov) if prov is not None else None
            if where is None and source == "<dict>":
                raise
            where = where or source
            note = f" (in {where}, base of {source})" if where != source else f" (in {where})"
            raise ArchSpecError(
                exc.detail + note, path=exc.path, expected=exc.expected, got=exc.got
            ) from None

    @classmethod
    def from_yaml(cls, path: str | Path) -> Architecture:
        """Load and validate a YAML spec file (strict loading, :mod:`archsim.yamlio`)."""
        data = load_yaml_mapping(path)
        return cls.from_dict(data, source=str(path), base_dir=Path(path).parent)

    @classmethod
    def from_yaml_text(
        cls, text: str, source: str = "<text>", base_dir: Path | None = None
    ) -> Architecture:
        """Validate YAML given as a string (a relative ``base:`` path is from ``base_dir``)."""
        data = load_yaml_mapping(text, is_text=True, source=source)
        return cls.from_dict(data, source=source, base_dir=base_dir)

    def to_dict(self, derived: bool = False) -> dict[str, Any]:
        """Plain JSON-ready dict that :meth:`from_dict` turns back into an equal Architecture.

        Parameters
        ----------
        derived
            False (default): the *source* form, like a YAML spec: values derived from others
            (per-PE x mesh, ``per_sm``/``per_pim_unit`` instances, bytes/s over the clock,
            gpu sizes from levels) are left out, so editing the dict behaves like editing the
            YAML. True: every value, derived ones included (for reading/reporting).
        """
        raw = self.model_dump(mode="json", exclude_none=True)
        if not derived:
            strip_derived(self, raw)
        return raw

    def with_updates(self, updates: Mapping[str, object]) -> Architecture:
        """A re-validated copy with dotted-path updates applied.

        Paths address lists by component name (or index): ``levels.GLB.capacity_bytes``,
        ``compute.pe2d.mesh``, ``compute.tensor.ops_per_cycle.mac_bf16``, ``clock.core_hz``,
        ``gpu.sms``, ``levels.HBM.dram.tRCD``. Derived values follow their inputs (changing
        ``compute.pe2d.mesh`` rescales per-PE rates and the levels that share its mesh).

        Raises
        ------
        ArchSpecError
            Unknown path (naming the allowed keys), an update of a derived value, or a
            copy that fails validation.
        """
        raw = apply_updates(self, updates)
        return type(self).from_dict(raw, source=f"{self.name} with updates")

    def summary(self) -> str:
        """A readable multi-line summary (levels, units, clock, peaks, area)."""
        from archsim.spec._summary import summarize

        return summarize(self)
