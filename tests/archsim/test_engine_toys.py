"""Tiny hand-computable architectures and programs shared by the engine tests (no tests here)."""

from __future__ import annotations

from archsim import Architecture, Compute, Phase, Step, TileProgram, Transfer


def toy_arch(
    *,
    dram_bw: float = 10.0,
    dram_lat: int = 0,
    buf_bw: float = 1000.0,
    buf_cap: float | None = None,
    buf_instances: int = 1,
    macs: float = 10.0,
    pe_instances: int = 1,
    dram_write_bw: float | None = None,
    leak_w: float = 0.0,
    idle_w: float = 0.0,
    net_bw: float | None = None,
) -> Architecture:
    """DRAM -> BUF -> PE; bandwidths in bytes/cycle, PE in MACs/cycle, clock 1 GHz."""
    return Architecture.from_dict(
        {
            "name": "toy",
            "kind": "spatial",
            "clock": {"core_hz": 1e9},
            "idle_power_w": idle_w,
            "levels": [
                {
                    "name": "DRAM",
                    "kind": "dram",
                    "read_bw_bytes_per_cycle": dram_bw,
                    "write_bw_bytes_per_cycle": dram_write_bw or dram_bw,
                    "latency_cycles": dram_lat,
                    "read_energy_pj_per_byte": 10.0,
                    "write_energy_pj_per_byte": 12.0,
                    "leakage_w": leak_w,
                },
                {
                    "name": "BUF",
                    "kind": "sram",
                    "capacity_bytes": buf_cap,
                    "instances": buf_instances,
                    "read_bw_bytes_per_cycle": buf_bw,
                    "write_bw_bytes_per_cycle": buf_bw,
                    "read_energy_pj_per_byte": 1.0,
                    "write_energy_pj_per_byte": 1.5,
                    "area_mm2": 2.0,
                },
            ],
            "compute": [
                {
                    "name": "PE",
                    "instances": pe_instances,
                    "ops_per_cycle": {"mac": macs, "exp": 1.0},
                    "energy_pj": {"mac": 0.5, "exp": 2.0},
                    "area_mm2": 3.0,
                }
            ],
            "networks": []
            if net_bw is None
            else [
                {
                    "name": "NOC",
                    "src": "DRAM",
                    "dst": "BUF",
                    "bw_bytes_per_cycle": net_bw,
                    "energy_pj_per_byte": 0.25,
                }
            ],
        }
    )


def load(nbytes: int, tensor: str = "A") -> Transfer:
    return Transfer(tensor, nbytes, "DRAM", "BUF")


def store(nbytes: int, tensor: str = "Z") -> Transfer:
    return Transfer(tensor, nbytes, "BUF", "DRAM")


def macs(n: float) -> Compute:
    return Compute("PE", {"mac": n})


def one_phase(
    body: Step,
    *,
    trips=1,
    work_items: int = 1,
    slots: int = 1,
    depth: int = 2,
    staging: str | None = None,
    prologue: Step | None = None,
    epilogue: Step | None = None,
) -> TileProgram:
    return TileProgram(
        "toy",
        (
            Phase(
                "p",
                body,
                trips=trips,
                work_items=work_items,
                slots=slots,
                depth=depth,
                staging_level=staging,
                prologue=prologue,
                epilogue=epilogue,
            ),
        ),
    )
