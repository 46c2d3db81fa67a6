"""DRAM organisation and timing (:class:`DramTiming`), carried by a ``kind: dram`` level."""

from __future__ import annotations

from pydantic import model_validator

from archsim.spec._base import SpecModel, fail
from archsim.spec._types import PosFloat, PosInt, TckNs

__all__ = ["DramTiming"]


class DramTiming(SpecModel):
    """DRAM organisation and timing; timing parameters are in tCK cycles (``tck_ns``)."""

    tck_ns: TckNs
    """DRAM command-clock period tCK in ns."""
    channels: PosInt
    """Independent channels (all stacks/chips together)."""
    pseudo_channels: PosInt = 1
    """Pseudo-channels per channel (HBM2/HBM3: 2)."""
    ranks: PosInt = 1
    """Ranks (or stack IDs) per pseudo-channel."""
    bank_groups: PosInt
    """Bank groups per rank."""
    banks_per_group: PosInt
    """Banks per bank group."""
    row_bytes: PosInt
    """Row (page) size in bytes per bank (per pseudo-channel)."""
    burst_bytes: PosInt
    """Bytes moved by one column command (one burst) on one pseudo-channel."""
    bus_bytes_per_cycle: PosFloat
    """External data-bus bytes per tCK per channel (all its pseudo-channels together)."""
    rows_per_bank: PosInt | None = None
    """Rows per bank (capacity bookkeeping); None = unspecified."""
    tRCD: PosInt
    """ACT to column command (tCK cycles)."""
    tRP: PosInt
    """PRE to ACT of the same bank (tCK cycles)."""
    tRAS: PosInt
    """ACT to PRE of the same bank (tCK cycles)."""
    tRC: PosInt | None = None
    """ACT to ACT of the same bank (tCK cycles); None = tRAS + tRP."""
    tCCD_S: PosInt
    """Column to column, different bank groups (tCK cycles)."""
    tCCD_L: PosInt
    """Column to column, same bank group (tCK cycles)."""
    tRRD_S: PosInt
    """ACT to ACT, different bank groups (tCK cycles)."""
    tRRD_L: PosInt
    """ACT to ACT, same bank group (tCK cycles)."""
    tFAW: PosInt
    """Window in which at most four ACTs may issue per rank (tCK cycles)."""
    tREFI: PosInt
    """Refresh interval (tCK cycles)."""
    tRFC: PosInt
    """Refresh cycle time: the rank is busy this long per refresh (tCK cycles)."""
    tCL: PosInt
    """Read (CAS) latency (tCK cycles)."""
    tWR: PosInt
    """Write recovery: end of write data to PRE (tCK cycles)."""
    tRTP: PosInt | None = None
    """Read to PRE (tCK cycles); None = not modelled."""
    tWTR_S: PosInt | None = None
    """Write to read turnaround, different bank groups (tCK cycles); None = not modelled."""
    tWTR_L: PosInt | None = None
    """Write to read turnaround, same bank group (tCK cycles); None = not modelled."""

    @model_validator(mode="after")
    def _sane(self) -> DramTiming:
        pairs = (
            ("tRAS", "tRCD", "a row must stay open at least until its first column command"),
            ("tCCD_L", "tCCD_S", "same-bank-group spacing is the longer one"),
            ("tRRD_L", "tRRD_S", "same-bank-group spacing is the longer one"),
            ("tFAW", "tRRD_S", "the four-activation window covers at least one ACT gap"),
            ("tREFI", "tRFC", "refresh must leave time to work"),
        )
        for big, small, why in pairs:
            if getattr(self, big) < getattr(self, small):
                fail(
                    big,
                    f"{big} < {small} ({why})",
                    expected=f">= {small} = {getattr(self, small)}",
                    got=getattr(self, big),
                )
        if self.tRC is not None and self.tRC < self.tRAS:
            fail("tRC", "tRC < tRAS", expected=f">= tRAS = {self.tRAS}", got=self.tRC)
        if self.burst_bytes > self.row_bytes:
            fail(
                "burst_bytes",
                "a burst cannot exceed a row",
                expected=f"<= row_bytes = {self.row_bytes}",
                got=self.burst_bytes,
            )
        return self

    @property
    def tck_s(self) -> float:
        """tCK in seconds."""
        return self.tck_ns * 1e-9

    @property
    def trc(self) -> int:
        """tRC in tCK cycles (tRAS + tRP when not given)."""
        return self.tRC if self.tRC is not None else self.tRAS + self.tRP

    @property
    def banks_per_channel(self) -> int:
        """Banks per channel over all its pseudo-channels and ranks."""
        return self.pseudo_channels * self.ranks * self.bank_groups * self.banks_per_group

    @property
    def total_banks(self) -> int:
        """Banks in the whole memory system."""
        return self.channels * self.banks_per_channel

    @property
    def peak_bytes_per_s(self) -> float:
        """External pin bandwidth of all channels in bytes/s."""
        return self.channels * self.bus_bytes_per_cycle / self.tck_s
