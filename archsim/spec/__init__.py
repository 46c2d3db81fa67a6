"""Architecture specs: frozen, validated models of storage levels, compute units, networks,
clocks and GPU/PIM parameters, loaded from YAML presets (``archsim/presets/``).

Every spec error is an :class:`archsim.errors.ArchSpecError` carrying the path of the bad
field (``levels[2].read_bw_bytes_per_cycle``), the expected value and the given one.

A minimal spec (YAML)::

    name: toy
    kind: spatial                  # spatial | gpu (needs gpu:) | pim (needs pim: + DRAM timing)
    clock: {core_hz: 1.0e+9}       # every *_per_cycle figure is per core cycle
    levels:                        # outermost (DRAM) first
      - {name: DRAM, kind: dram, read_bw_bytes_per_s: 64.0e+9, read_energy_pj_per_byte: 31.2}
      - {name: GLB, kind: sram, capacity_bytes: 1048576, read_bw_bytes_per_cycle: 256}
      - {name: RF, kind: regfile, mesh_like: pe, capacity_bytes_per_pe: 32,
         read_bw_bytes_per_cycle_per_pe: 4}
    compute:
      - {name: pe, mesh: [16, 16], ops_per_cycle_per_pe: {mac: 1}, energy_pj: {mac: 0.5},
         level: RF}
    networks:
      - {name: glb_pe, src: GLB, dst: RF, bw_bytes_per_cycle: 64, multicast: true}

Conventions: figures are per instance; a ``mesh`` is ONE instance made of rows x cols PEs
(``*_per_pe`` fields derive the whole-instance values, so a sweep over ``mesh`` rescales
them); ``per_sm`` / ``per_pim_unit`` components take their instance count from
``gpu.sms`` / DRAM channels x ``pim.units_per_channel``; ``*_bytes_per_s`` bandwidths are
converted with ``clock.core_hz``. :meth:`Architecture.with_updates` re-derives all of these.
Op kinds: ``mac`` (or ``mac_<dtype>``, which falls back to ``mac``), ``add``, ``mul``,
``max``, ``exp``, ``div``, ``recip``, ``cmp``, ``sqrt``, ``rsqrt``, ...; a MAC is one op.

Inheritance: ``base: fusemax`` (a preset, or a ``.yaml`` path relative to the file) plus
overrides; mappings merge key by key, ``levels``/``compute``/``networks`` merge by ``name``
(``{name: X, remove: true}`` deletes one), other values replace. Rules and the 64x64 / 1 MiB
example: :mod:`archsim.spec._inherit`.

Area: ``area_mm2_per_mib`` on a storage level derives ``area_mm2`` from the capacity (and
follows capacity updates); ``technology: {node_nm: N}`` states the node of the energy and area
figures, and :func:`archsim.energy.scale_architecture` moves them to another node.

Numbers are finite, never booleans, and bounded to physical ranges (clocks 1 kHz-1 THz,
bandwidths 1 kB/s-10 PB/s, capacities 1 B-2^60 B, counts < 2^31; table in
:mod:`archsim.spec._types`). YAML is read strictly (:mod:`archsim.yamlio`).
"""

from archsim.spec._arch import Architecture
from archsim.spec._components import (
    OP_DTYPES,
    OP_KINDS,
    Clock,
    ComputeUnit,
    Network,
    StorageLevel,
    Technology,
)
from archsim.spec._dram import DramTiming
from archsim.spec._params import GpuParams, PimParams
from archsim.spec._presets import PRESET_DIR, list_presets, load_arch

__all__ = [
    "Architecture",
    "Clock",
    "StorageLevel",
    "ComputeUnit",
    "Network",
    "Technology",
    "DramTiming",
    "GpuParams",
    "PimParams",
    "load_arch",
    "list_presets",
    "PRESET_DIR",
    "OP_KINDS",
    "OP_DTYPES",
]
