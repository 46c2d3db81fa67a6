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

with ``NODE_VDD`` giving the supply we assume per node (Dennard et al., "Design of
ion-implanted MOSFET's with very small physical dimensions", IEEE JSSC 9(5), 1974: under
constant-field scaling by 1/k, capacitance scales by 1/k and area by 1/k^2). Area follows
the same rule::

    A(node) = A(45 nm) x (node_nm / 45)^2

Both are optimistic at advanced nodes (wires and SRAM scale worse than logic: TSMC's HD
SRAM bitcell went 0.027 um^2 at N7 to 0.021 um^2 at N5, not (5/7)^2), so treat node-scaled
figures as lower estimates; DRAM and SRAM energies in presets come from DRAM/SRAM-specific
tables, not from this rule, except where a preset says so.

:func:`scale_architecture` applies the rule to a whole architecture (its
``technology.node_nm`` to a common node): every compute-unit energy, every on-chip level's
read/write energy, network energies and all on-chip areas. It leaves ``kind: dram`` levels
alone (DRAM energy is a DRAM-array/IO figure, not logic) and leakage (leakage does not
follow C·V^2), and it refuses DRAM-process PIM designs (``technology.process: dram``),
whose logic does not follow a logic node.

SRAM area
---------
``sram_mm2_per_mib(node)``: high-density 6T bitcell areas from TSMC's IEDM papers
(``SRAM_BITCELL_UM2``; N16 Wu et al. IEDM 2013, N7 Wu et al. IEDM 2016, N5 Yeap et al.
IEDM 2019) turned into macro density with the overhead WikiChip uses for N5 (0.021 um^2
-> ~31.8 Mib/mm^2 with assist/periphery circuits; "IEDM 2022: Did We Just Witness The
Death Of SRAM?", WikiChip Fuse, Dec 2022), i.e. mm^2/MiB = 8 / 31.8 x bitcell / 0.021.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, Literal

from archsim.errors import ArchSpecError

if TYPE_CHECKING:
    from archsim.spec import Architecture

__all__ = [
    "HOROWITZ_45NM_PJ",
    "FGDRAM_PJ_PER_BIT",
    "DRAM_PATHS",
    "ACCELERGY_DRAM_PJ_PER_BIT",
    "ATTACC_GPU_PJ_PER_BYTE",
    "FUSEMAX_ERT_PJ",
    "FUSEMAX_ART_UM2",
    "fusemax_area_mm2",
    "NODE_VDD",
    "node_scale",
    "area_scale",
    "scale_energy",
    "SRAM_BITCELL_UM2",
    "SRAM_MIB_PER_MM2_N5",
    "sram_mm2_per_mib",
    "scale_architecture",
    "dram_path_pj_per_byte",
    "pim_access_pj_per_byte",
    "mac_pj_45nm",
    "mac_pj",
    "register_file_energy_j",
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

#: FuseMax artifact Accelergy ART (45 nm), um^2 per instance (area_energy/outputs-*/ART.yaml);
#: ``glb_32mib`` is the whole 32 MiB global buffer
FUSEMAX_ART_UM2: Mapping[str, float] = MappingProxyType(
    {
        "mac_fp16": 1545.0,
        "add_fp16": 1030.0,
        "max": 49.28944,
        "glb_32mib": 94176255.9664,
    }
)


def fusemax_area_mm2(parts: Iterable[str], node_nm: float = 45) -> float:
    """Area in mm^2 of the FuseMax-ART ``parts`` (keys of ``FUSEMAX_ART_UM2``) at ``node_nm``.

    ``fusemax_area_mm2(["glb_32mib"]) / 32`` = 2.943008 mm^2 per MiB of global buffer.
    """
    return sum(FUSEMAX_ART_UM2[p] for p in parts) * 1e-6 * area_scale(45, node_nm)


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


def area_scale(from_nm: float, to_nm: float) -> float:
    """Factor converting an area at ``from_nm`` to ``to_nm``: ``(to_nm / from_nm)^2``."""
    return (to_nm / from_nm) ** 2


#: TSMC high-density 6T SRAM bitcell area in um^2 by node (nm); IEDM 2013 / 2016 / 2019
SRAM_BITCELL_UM2: Mapping[int, float] = MappingProxyType({16: 0.07, 7: 0.027, 5: 0.021})
#: N5 SRAM macro density with assist/periphery overhead, Mib/mm^2 (WikiChip, IEDM 2022 report)
SRAM_MIB_PER_MM2_N5 = 31.8


def sram_mm2_per_mib(node_nm: int) -> float:
    """High-density SRAM area in mm^2 per MiB at ``node_nm`` (rule in the module doc).

    Raises
    ------
    KeyError
        If the node has no published bitcell in ``SRAM_BITCELL_UM2``.
    """
    return 8.0 / SRAM_MIB_PER_MM2_N5 * SRAM_BITCELL_UM2[node_nm] / SRAM_BITCELL_UM2[5]


def _scale_keys(d: dict[str, Any], keys: Iterable[str], factor: float) -> None:
    for key in keys:
        if d.get(key) is not None:
            d[key] = d[key] * factor


def scale_architecture(arch: Architecture, node_nm: int) -> Architecture:
    """``arch`` with its energy and area tables moved to ``node_nm`` (rule in module doc).

    The copy's ``technology.node_nm`` is ``node_nm``; DRAM levels and leakage are unchanged.

    Raises
    ------
    ArchSpecError
        ``arch`` states no technology node, is a DRAM-process design, or a node has no
        supply voltage in ``NODE_VDD``.
    """
    tech = arch.technology
    if tech is None:
        raise ArchSpecError(
            f"architecture {arch.name!r} states no technology node, so it cannot be scaled",
            path="technology.node_nm",
            expected="technology: {node_nm: N} in the spec",
            got=None,
        )
    if tech.process == "dram":
        raise ArchSpecError(
            f"architecture {arch.name!r} is logic in a DRAM process; the logic-node rule "
            "does not apply to it (compare its figures unscaled)",
            path="technology.process",
            expected="logic",
            got="dram",
        )
    for node, path in ((tech.node_nm, "technology.node_nm"), (node_nm, "node")):
        if node not in NODE_VDD:
            raise ArchSpecError(
                "no supply voltage for this node in archsim.energy.NODE_VDD",
                path=path,
                expected="one of " + ", ".join(f"{n}" for n in sorted(NODE_VDD)),
                got=node,
            )
    fe = node_scale(int(tech.node_nm), node_nm)
    fa = area_scale(tech.node_nm, node_nm)
    raw = arch.to_dict()
    areas = ("area_mm2", "area_mm2_per_pe", "area_mm2_per_mib")
    for level in raw["levels"]:
        if level["kind"] != "dram":
            _scale_keys(level, ("read_energy_pj_per_byte", "write_energy_pj_per_byte"), fe)
            _scale_keys(level, areas, fa)
    for unit in raw["compute"]:
        unit["energy_pj"] = {op: pj * fe for op, pj in unit.get("energy_pj", {}).items()}
        _scale_keys(unit, areas, fa)
    for net in raw.get("networks", []):
        _scale_keys(net, ("energy_pj_per_byte",), fe)
    _scale_keys(raw, ("uncore_area_mm2",), fa)
    if raw.get("pim"):
        _scale_keys(raw["pim"], ("energy_pj_per_mac",), fe)
    raw["technology"] = {
        "node_nm": node_nm,
        "process": "logic",
        "notes": f"scaled from {tech.node_nm:g} nm by archsim.energy.scale_architecture "
        f"(energy x{fe:.4g}, area x{fa:.4g})",
    }
    from archsim.spec import Architecture

    return Architecture.from_dict(raw, source=f"{arch.name} scaled to {node_nm} nm")


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


def register_file_energy_j(
    arch: Architecture, accesses: Mapping[str, Mapping[str, float]]
) -> dict[str, float]:
    """Energy (J) of the compute-side accesses at register files that no transfer of a tile
    program charges (``accesses``: ``{level: {"read": B, "write": B, ...}}``, the lowering's
    ``meta["buffer_accesses"]``): read bytes x the level's ``read_energy_pj_per_byte`` and
    written bytes x ``write_energy_pj_per_byte``, keyed ``"LEVEL.read"`` /
    ``"LEVEL.write"`` like the engine's energy breakdown. Only ``kind: regfile`` levels
    count. The per-byte figures are the architecture's own (FuseMax presets: the artifact's
    Accelergy ERT per 16-bit word, :data:`FUSEMAX_ERT_PJ` ``rf_*`` / 2).

    Raises
    ------
    ArchSpecError
        ``accesses`` names a level the architecture lacks, or a negative byte count.
    """
    levels = {lv.name: lv for lv in arch.levels}
    out: dict[str, float] = {}
    for name, acc in accesses.items():
        lv = levels.get(name)
        if lv is None:
            raise ArchSpecError(
                "register-file accesses at a level the architecture lacks",
                path=f"buffer_accesses.{name}",
                expected=f"one of {sorted(levels)}",
                got=name,
            )
        if lv.kind != "regfile":
            continue
        for side, field in (
            ("read", "read_energy_pj_per_byte"),
            ("write", "write_energy_pj_per_byte"),
        ):
            nbytes = float(acc.get(side, 0.0))
            if nbytes < 0:
                raise ArchSpecError(
                    "negative register-file access bytes",
                    path=f"buffer_accesses.{name}.{side}",
                    expected=">= 0",
                    got=nbytes,
                )
            pj = float(getattr(lv, field, 0.0) or 0.0)
            if nbytes > 0 and pj > 0:
                out[f"{name}.{side}"] = nbytes * pj * 1e-12
    return out
