"""Published energy tables and the node-scaling rule used to derive preset energies.

Every preset energy is either copied from a source below (with the source named in the
preset's YAML comment) or derived from one with the helpers here; the tests recompute the
derived ones so the YAML and this module cannot drift apart.

Sources
-------
* Horowitz, "Computing's energy problem (and what we can do about it)", ISSCC 2014,
  45 nm, 0.9 V (``HOROWITZ_45NM_PJ``).
* FGDRAM (O'Connor et al., "Fine-Grained DRAM", MICRO 2017) per-segment DRAM datapath
  energy, as used by AttAcc's ``src/config.py`` (``FGDRAM_PJ_PER_BIT``).
* Accelergy/CACTI plug-in DRAM defaults (``ACCELERGY_DRAM_PJ_PER_BIT``).
* AttAcc (Park et al., ASPLOS 2024) GPU energy table, ``src/config.py`` ENERGY_TABLE
  (``ATTACC_GPU_PJ_PER_BYTE``).
* FuseMax artifact Accelergy ERT, 45 nm (``FUSEMAX_ERT_PJ``).

Node-scaling rule
-----------------
Dynamic energy is C·V². To first order (constant-field scaling) switched capacitance
scales with feature size, so::

    E(node) = E(45 nm) x (node_nm / 45) x (Vdd(node) / 0.9 V)^2

with ``NODE_VDD`` giving the supply we assume per node. This is optimistic at advanced
nodes (wires and SRAM scale worse than logic), so treat node-scaled arithmetic energies as
lower estimates; DRAM and SRAM energies in presets come from DRAM/SRAM-specific tables,
not from this rule, except where a preset says so.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from types import MappingProxyType
from typing import Literal

__all__ = [
    "HOROWITZ_45NM_PJ",
    "FGDRAM_PJ_PER_BIT",
    "DRAM_PATHS",
    "ACCELERGY_DRAM_PJ_PER_BIT",
    "ATTACC_GPU_PJ_PER_BYTE",
    "FUSEMAX_ERT_PJ",
    "NODE_VDD",
    "node_scale",
    "scale_energy",
    "dram_path_pj_per_byte",
    "pim_access_pj_per_byte",
    "mac_pj_45nm",
    "mac_pj",
]

#: Horowitz ISSCC 2014, 45 nm 0.9 V; pJ per operation / per 64-bit access
HOROWITZ_45NM_PJ: Mapping[str, float] = MappingProxyType(
    {
        "int8_add": 0.03,
        "int32_add": 0.1,
        "int8_mult": 0.2,
        "int32_mult": 3.1,
        "fp16_add": 0.4,
        "fp32_add": 0.9,
        "fp16_mult": 1.1,
        "fp32_mult": 3.7,
        "sram_8kb_read_64b": 10.0,
        "sram_32kb_read_64b": 20.0,  # from the slide; not re-verified
        "sram_1mb_read_64b": 100.0,  # from the slide; not re-verified
        "dram_read_64b_min": 1300.0,
        "dram_read_64b_max": 2600.0,
    }
)

#: FGDRAM (MICRO'17) DRAM datapath segments, pJ per bit (as in AttAcc src/config.py)
FGDRAM_PJ_PER_BIT: Mapping[str, float] = MappingProxyType(
    {
        "cell_act_pre": 0.11,  # cell activate/precharge
        "cell_rw": 0.44,  # cell read/write
        "coldec_to_bg_mux": 1.01,  # column decoder -> bank-group mux
        "bg_mux_to_gio": 1.23,  # bank-group mux -> global I/O
        "tsv": 0.5,
        "interposer": 0.3,
    }
)

#: segments crossed by a PIM unit at each placement, and by a host (off-chip) access
DRAM_PATHS: Mapping[str, tuple[str, ...]] = MappingProxyType(
    {
        "bank": ("cell_act_pre", "cell_rw"),
        "bank_group": ("cell_act_pre", "cell_rw", "coldec_to_bg_mux"),
        "buffer_die": ("cell_act_pre", "cell_rw", "coldec_to_bg_mux", "bg_mux_to_gio", "tsv"),
        "host": (
            "cell_act_pre",
            "cell_rw",
            "coldec_to_bg_mux",
            "bg_mux_to_gio",
            "tsv",
            "interposer",
        ),
    }
)

#: Accelergy/CACTI plug-in DRAM defaults, pJ per bit
ACCELERGY_DRAM_PJ_PER_BIT: Mapping[str, float] = MappingProxyType(
    {
        "LPDDR4": 8.0,
        "LPDDR": 40.0,
        "DDR3": 70.0,
        "GDDR5": 14.0,
        "HBM2": 3.9,
    }
)

#: AttAcc src/config.py ENERGY_TABLE for the GPU, pJ per byte (= pJ/bit x 8)
ATTACC_GPU_PJ_PER_BYTE: Mapping[str, float] = MappingProxyType(
    {
        "reg": 0.0675,
        "l1": 1.28,
        "l2": 2.4,
        "alu": 0.32,
        "mem_hbm": 28.72,
        "comm": 10.4,
    }
)

#: FuseMax artifact Accelergy ERT (45 nm), pJ per action; GLB/DRAM per 64-bit access,
#: register files per 16-bit word (fusemax_arch_params.json)
FUSEMAX_ERT_PJ: Mapping[str, float] = MappingProxyType(
    {
        "dram_rw_64b": 249.6,
        "glb_read_64b": 484.97271,
        "glb_write_64b": 451.30271,
        "glb_leak_per_cycle": 0.844117,
        "rf_fusemax_2d_read": 0.653431,
        "rf_fusemax_2d_write": 0.56957,
        "rf_flat_2d_read": 0.291512,
        "rf_flat_2d_write": 0.225259,
        "rf_flat_1d_read": 0.385026,
        "rf_flat_1d_write": 0.336188,
        "mac_fp16": 17.1645,
        "add_fp16": 8.3395,
        "max": 0.028036,
        "exp_flat_1d": 94.6475,
        "divide": 36.251153,
    }
)

#: assumed supply voltage (V) per node (nm) for :func:`node_scale`; 5 = TSMC N5/4N class
NODE_VDD: Mapping[int, float] = MappingProxyType({45: 0.9, 28: 0.9, 16: 0.8, 7: 0.75, 5: 0.75})


def node_scale(from_nm: int, to_nm: int) -> float:
    """Factor converting a dynamic energy at ``from_nm`` to ``to_nm`` (rule in module doc).

    Raises
    ------
    KeyError
        If a node is not in ``NODE_VDD``.
    """
    return (to_nm / from_nm) * (NODE_VDD[to_nm] / NODE_VDD[from_nm]) ** 2


def scale_energy(pj: float, from_nm: int = 45, to_nm: int = 45) -> float:
    """``pj`` (at ``from_nm``) scaled to ``to_nm`` with :func:`node_scale`."""
    return pj * node_scale(from_nm, to_nm)


def dram_path_pj_per_byte(segments: Iterable[str]) -> float:
    """Energy per byte of a DRAM access crossing ``segments`` (keys of ``FGDRAM_PJ_PER_BIT``).

    ``dram_path_pj_per_byte(DRAM_PATHS["host"])`` = 3.59 pJ/bit x 8 = 28.72 pJ/B, AttAcc's
    GPU HBM figure.
    """
    return 8.0 * sum(FGDRAM_PJ_PER_BIT[s] for s in segments)


def pim_access_pj_per_byte(placement: Literal["bank", "bank_group", "buffer_die", "host"]) -> float:
    """DRAM energy per byte read by a PIM unit at ``placement`` (AttAcc: 4.4/12.48/26.32)."""
    return dram_path_pj_per_byte(DRAM_PATHS[placement])


def mac_pj_45nm(dtype: str) -> float:
    """Energy of one multiply-accumulate at 45 nm in pJ (Horowitz), accumulating wide.

    fp16/bf16: fp16 multiply + fp32 add (tensor cores accumulate in fp32); fp32: fp32
    multiply + add; int8: int8 multiply + int32 add; fp8: half the fp16 figure (assumption:
    no fp8 entry in Horowitz; the multiplier shrinks, the fp32 accumulate does not vanish,
    so this is a rough midpoint).

    Raises
    ------
    KeyError
        For a dtype without a rule.
    """
    h = HOROWITZ_45NM_PJ
    table = {
        "fp16": h["fp16_mult"] + h["fp32_add"],
        "bf16": h["fp16_mult"] + h["fp32_add"],
        "fp32": h["fp32_mult"] + h["fp32_add"],
        "tf32": h["fp16_mult"] + h["fp32_add"],
        "int8": h["int8_mult"] + h["int32_add"],
        "fp8": 0.5 * (h["fp16_mult"] + h["fp32_add"]),
    }
    return table[dtype]


def mac_pj(dtype: str, node_nm: int) -> float:
    """Horowitz MAC energy for ``dtype`` scaled to ``node_nm`` (pJ)."""
    return scale_energy(mac_pj_45nm(dtype), 45, node_nm)
