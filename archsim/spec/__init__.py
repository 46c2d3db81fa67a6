"""Architecture specs: frozen, validated models of storage levels, compute units, networks,
clocks and GPU/PIM parameters, loaded from YAML presets (``archsim/presets/``).

Every spec error is an :class:`archsim.errors.ArchSpecError` carrying the path of the bad
field (``levels[2].read_bw_bytes_per_cycle``), the expected value and the given one.
"""

from archsim.spec._arch import Architecture
from archsim.spec._components import (
    OP_DTYPES,
    OP_KINDS,
    Clock,
    ComputeUnit,
    DramTiming,
    Network,
    StorageLevel,
)
from archsim.spec._params import GpuParams, PimParams
from archsim.spec._presets import PRESET_DIR, list_presets, load_arch

__all__ = [
    "Architecture",
    "Clock",
    "StorageLevel",
    "ComputeUnit",
    "Network",
    "DramTiming",
    "GpuParams",
    "PimParams",
    "load_arch",
    "list_presets",
    "PRESET_DIR",
    "OP_KINDS",
    "OP_DTYPES",
]
