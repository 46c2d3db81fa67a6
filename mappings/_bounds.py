"""Lower bounds on the estimated cost of *any* fusion group of a run of Einsums.

:func:`segment_bound` gives ``(cycles, energy_j)`` that no mapping of the run as one fusion
group (DRAM first, the run's leaving tensors in DRAM, the others on chip, as the ``fusion``
mapper builds them) can beat under :func:`archsim.estimate`:

* **energy** >= the ops' dynamic energy on the cheapest unit for each Einsum (the lowering
  charges every counted op, as the unit issues it: :func:`mappings._lower.issued`,
  :func:`mappings._lower.unit_ops`) + the compulsory DRAM bytes at the DRAM's read/write
  energy (every DRAM input read once, every leaving output written once; the reuse rule's
  refill factor is >= 1) + static power over the cycle bound;
* **cycles** >= the compulsory DRAM bytes over the DRAM's bandwidth (one bus when reads and
  writes share it), and >= the compute time of the Einsums at full occupancy on their fastest
  units: the longest one alone, and their sum over the number of units (the units run
  concurrently at best).

Every other term of the estimate (buffer traffic, refills, pipeline fill, partial occupancy)
is >= 0, so the bound holds for every mapping. Conditions and sparsity thin both ops and
bytes in the lowering (live key tiles, condition-thinned fills), so for a cascade with any
condition or sparsity annotation no bound is given (``None``): no pruning, still exact.
Iterative tensors (running state) are left out of the byte count (the lowering may move their
last iterate only). Tests hold the bound below the estimate of every mapping the mapper
evaluates.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from mappings._counts import cached_count, memo
from mappings._lower import issued, unit_ops
from mappings._mapping import FusionGroup, LevelMapping
from mappings._tensors import count_ops, group_tensors

if TYPE_CHECKING:
    from archsim import Architecture
    from workloads import Workload

__all__ = ["segment_bound", "einsum_floor"]


def _thinned(workload: Workload) -> bool:
    """Whether any Einsum has a condition or any tensor a sparsity annotation."""
    cas = workload.cascade
    if any(e.cond is not None for e in cas.einsums):
        return True
    return any(getattr(t, "sparsity", None) is not None for t in cas.tensors.values())


def einsum_floor(workload: Workload, arch: Architecture, name: str) -> tuple[float, float]:
    """``(cycles, joules)``: Einsum ``name``'s least compute time (full occupancy) and least
    dynamic op energy over the architecture's compute units."""
    from archsim.engine._compile import op_energy_pj

    def make() -> tuple[float, float]:
        ec = next(x for x in cached_count(workload.cascade).einsums if x.name == name)
        ops = count_ops(ec)
        best_t = best_e = float("inf")
        for unit in arch.compute:
            rates = unit.ops_per_cycle
            o = unit_ops(issued(ops, unit), rates)
            t = sum(v / float(rates[k]) for k, v in o.items() if rates.get(k))
            e = sum(v * op_energy_pj(unit, k) for k, v in o.items()) * 1e-12
            best_t, best_e = min(best_t, t), min(best_e, e)
        return (best_t if best_t < float("inf") else 0.0, best_e if best_e < float("inf") else 0.0)

    return memo(workload, ("einsum_floor", arch.name, id(arch), name), make)


def segment_bound(
    workload: Workload, arch: Architecture, einsums: Sequence[str]
) -> tuple[float, float] | None:
    """``(cycles, energy_j)`` below the estimate of every mapping of ``einsums`` as one fusion
    group (module doc), or None for a cascade with conditions or sparsity."""
    from archsim.engine._account import static_power_w

    if _thinned(workload):
        return None
    cas = workload.cascade
    by = {e.name: e for e in cas.einsums}
    produced = {by[n].output.name for n in einsums}
    inside = set(einsums)
    leaving = {
        t
        for t in produced
        if t in cas.outputs
        or any(ref.name == t for e in cas.einsums if e.name not in inside for ref in e.inputs)
    }
    dram = arch.levels[0]
    base = FusionGroup(
        einsums=tuple(einsums),
        levels=(LevelMapping(level=dram.name),),
        on_chip=tuple(t for t in produced if t not in leaving),
    )
    rd = wr = 0.0
    for t in group_tensors(workload, base):
        if cas.tensors[t.name].iterative or not t.in_dram:
            continue
        b = float(t.elems) * float(t.bytes_per_elem)
        if t.name in produced:
            wr += b
        elif t.read:
            rd += b
    if getattr(dram, "shared_read_write", False):
        t_dram = (rd + wr) / float(dram.read_bw_bytes_per_cycle)
    else:
        t_dram = max(
            rd / float(dram.read_bw_bytes_per_cycle), wr / float(dram.write_bw_bytes_per_cycle)
        )
    floors = [einsum_floor(workload, arch, n) for n in einsums]
    t_ops = [t for t, _ in floors]
    cycles = max(t_dram, max(t_ops, default=0.0), sum(t_ops) / max(len(arch.compute), 1))
    energy = (
        sum(e for _, e in floors)
        + (rd * float(dram.read_energy_pj_per_byte) + wr * float(dram.write_energy_pj_per_byte))
        * 1e-12
        + static_power_w(arch) * cycles / float(arch.clock.core_hz)
    )
    return cycles, energy
