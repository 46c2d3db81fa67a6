"""Facts about a fusion group taken from the workload: its ranks, tensors and op counts."""

from __future__ import annotations

import math
from collections.abc import Mapping as AbcMapping
from collections.abc import Sequence
from dataclasses import replace
from typing import TYPE_CHECKING

from mappings._mapping import FusionGroup
from mappings._reuse import EinsumUse, TensorUse, Window

if TYPE_CHECKING:
    from workloads import Cascade, Einsum, Workload
    from workloads._count import EinsumCounts

__all__ = [
    "group_ranks",
    "group_tensors",
    "group_ops",
    "einsum_ops",
    "count_ops",
    "einsum_by_name",
    "windows_of",
]


def einsum_by_name(workload: Workload) -> dict[str, Einsum]:
    """Einsum name -> Einsum of the workload's cascade."""
    return {e.name: e for e in workload.cascade.einsums}


def group_ranks(workload: Workload, group: FusionGroup) -> dict[str, int]:
    """Rank -> size for every rank iterated by the group's Einsums (in first-seen order)."""
    by = einsum_by_name(workload)
    sizes = workload.sizes
    out: dict[str, int] = {}
    for name in group.einsums:
        e = by.get(name)
        if e is None:
            continue
        for r in e.ranks:
            out.setdefault(r, int(sizes.get(r, 1)))
    # a split rank walked by its parts (m by m1 and m0) is not a loop of its own
    for sp in workload.cascade.splits.values():
        if sp.rank in out and (sp.outer in out or sp.inner in out):
            del out[sp.rank]
    return out


def group_tensors(workload: Workload, group: FusionGroup) -> list[TensorUse]:
    """The tensors the group reads or writes, with their role and element count.

    Element counts are dense (product of rank sizes); a tensor produced by one group
    Einsum and consumed by another is an intermediate (``in_dram`` unless ``on_chip``).
    They depend on the group's Einsums and on-chip set only (remembered per workload).
    """
    from mappings._counts import memo

    key = ("group_tensors", tuple(group.einsums), tuple(group.on_chip))
    return list(memo(workload, key, lambda: tuple(_group_tensors(workload, group))))


def _group_tensors(workload: Workload, group: FusionGroup) -> list[TensorUse]:
    cas = workload.cascade
    by = einsum_by_name(workload)
    sizes = workload.sizes
    written: list[str] = []
    read: list[str] = []
    for name in group.einsums:
        e = by.get(name)
        if e is None:
            continue
        for ref in e.inputs:
            if ref.name not in read and ref.name != e.output.name:
                read.append(ref.name)
        if e.output.name not in written:
            written.append(e.output.name)
    ranks = group_ranks(workload, group)
    iterated = set(ranks)
    touching: dict[str, set[str]] = {}
    for name in group.einsums:
        e = by.get(name)
        if e is None:
            continue
        for ref in (*e.inputs, e.output):
            touching.setdefault(ref.name, set()).update(e.ranks)
    readers: dict[str, list[EinsumUse]] = {}
    writer: dict[str, EinsumUse] = {}
    params = _numeric(workload)
    for name in group.einsums:
        e = by.get(name)
        if e is None:
            continue
        loops = _walked(cas, e.ranks)
        refs = {ref.name: ref for ref in reversed(e.inputs)}  # the first reference of each
        for t, ref in reversed(refs.items()):  # self-reads too: the running state
            use = _use(cas, name, loops, ref.ranks, iterated, sizes)
            win = windows_of(cas, e, ref.ranks, params, sizes)
            readers.setdefault(t, []).append(replace(use, windows=win))
        use = _use(cas, name, loops, e.output.ranks, iterated, sizes)
        win = windows_of(cas, e, e.output.ranks, params, sizes)
        writer[e.output.name] = replace(use, windows=win)
    shares = in_place(workload, group)
    out: list[TensorUse] = []
    for name in dict.fromkeys(read + written):
        spec = cas.tensors[name]
        elems = float(math.prod(int(sizes.get(r, 1)) for r in spec.ranks))
        is_w = name in written
        is_r = name in read and (not is_w or _consumed_after_produced(group, by, name))
        out.append(
            TensorUse(
                name=name,
                ranks=_split_ranks(cas, spec.ranks, iterated),
                elems=elems,
                bytes_per_elem=spec.dtype_bits / 8.0,
                written=is_w,
                read=is_r,
                in_dram=name not in group.on_chip,
                loop_ranks=frozenset(touching.get(name, iterated)),
                readers=tuple(readers.get(name, ())),
                writer=writer.get(name),
                shares=shares.get(name),
                sizes=tuple(ranks.items()),
                windows=_shared_windows(readers.get(name, []), writer.get(name)),
            )
        )
    return out


def _numeric(workload: Workload) -> dict[str, float]:
    """The numeric parameters a condition may read (the cascade's defaults, then the
    workload's)."""
    from mappings._stream import numeric_params

    return {
        **numeric_params(dict(workload.cascade.params)),
        **numeric_params(dict(workload.params)),
    }


def _shared_windows(readers: Sequence[EinsumUse], writer: EinsumUse | None) -> tuple[Window, ...]:
    """The windows every Einsum of the group touching a tensor sees it through (the window
    rule of :mod:`mappings._reuse` for its fills), or none when they differ."""
    uses = [*readers, *([writer] if writer is not None else [])]
    if not uses or any(u.windows != uses[0].windows for u in uses):
        return ()
    return uses[0].windows


def windows_of(
    cas: Cascade,
    e: Einsum,
    index: Sequence[str],
    params: AbcMapping[str, float],
    sizes: AbcMapping[str, int],
) -> tuple[Window, ...]:
    """The ranks of a tensor that ``e`` indexes by ``index`` which its condition fixes from
    other ranks (the window rule of :mod:`mappings._reuse`).

    An equality of the condition with exactly one of the tensor's ranks ``u`` (coefficient
    +-1) and at least one other rank of ``e`` (none of them the tensor's, none split) gives
    ``u = sum a_i x_i + k``; it is a window when every combination of the ``x_i`` lands in
    ``u``'s range, so the Einsum's points over the ``x_i`` meet the tensor exactly there
    (``u - y == r`` of a convolution: ``u`` spans ``y + r``). A condition that is not linear
    gives none.
    """
    from archsim.errors import WorkloadError
    from workloads._cond import linearize

    if e.cond is None:
        return ()
    mine = set(index)
    ranks = set(e.ranks)
    try:
        eqs = linearize(e.cond, ranks, params, where=f"einsums.{e.name}.condition")
    except WorkloadError:
        return ()
    out: list[Window] = []
    for op, coef, k in eqs:
        if op != "==":
            continue
        own = [r for r in coef if r in mine]
        if len(own) != 1 or abs(coef[own[0]]) != 1:
            continue
        u = own[0]
        others = [r for r in coef if r != u]
        if not others or any(r in cas.splits or r not in ranks for r in others):
            continue
        if u in cas.splits or any(w.rank == u for w in out):
            continue
        # u = -(sum c_x x + k) / c_u
        by = tuple((x, -coef[x] * coef[u]) for x in others)
        off = -k * coef[u]
        lo = off + sum(min(0, a) * (int(sizes.get(x, 1)) - 1) for x, a in by)
        hi = off + sum(max(0, a) * (int(sizes.get(x, 1)) - 1) for x, a in by)
        if lo >= 0 and hi <= int(sizes.get(u, 1)) - 1:
            out.append(Window(u, by))
    return tuple(out)


def _walked(cas: Cascade, ranks: Sequence[str]) -> frozenset[str]:
    """``ranks`` with each split rank's parts added (a parent rank is walked by its parts)."""
    out = set(ranks)
    for sp in cas.splits.values():
        if sp.rank in out:
            out |= {sp.outer, sp.inner}
    return frozenset(out)


def _use(
    cas: Cascade,
    einsum: str,
    loops: frozenset[str],
    index: Sequence[str],
    iterated: set[str],
    sizes: AbcMapping[str, int],
) -> EinsumUse:
    """One Einsum's use of a tensor it indexes by the rank variables ``index`` (constants
    left out): those ranks (a split rank the group walks by its parts as the parts) and the
    elements they span."""
    ranks = _split_ranks(cas, tuple(index), iterated)
    elems = float(math.prod(int(sizes.get(r, 1)) for r in ranks))
    return EinsumUse(einsum, loops, elems, ranks)


def in_place(workload: Workload, group: FusionGroup) -> dict[str, str]:
    """Tensor -> the tensor whose buffer space it takes (the in-place rule of
    :mod:`mappings._reuse`): ``T`` written by an element-wise Einsum of ``group`` (no reduced
    rank) that reads ``U`` at exactly ``T``'s indices, where ``U`` is written by an earlier
    Einsum of the group, is read by no later Einsum of the group nor by any Einsum outside
    it, is not a cascade output and is no running state (an iterative tensor's next value
    is read by the next iteration). At most one ``U`` per ``T`` (the first such operand)."""
    cas = workload.cascade
    by = einsum_by_name(workload)
    order = [n for n in group.einsums if n in by]
    mine = set(order)
    outside = {ref.name for e in cas.einsums if e.name not in mine for ref in e.inputs}
    outside |= set(cas.outputs)
    produced: set[str] = set()
    out: dict[str, str] = {}
    for i, name in enumerate(order):
        e = by[name]
        later = {ref.name for n in order[i + 1 :] for ref in by[n].inputs}
        if not e.reduce_ranks and _plain_indices(e.output.indices):
            for ref in e.inputs:
                u = ref.name
                if (
                    u != e.output.name
                    and u in produced
                    and u not in later
                    and u not in outside
                    and u not in out.values()
                    and not cas.tensors[u].iterative  # a running state lives on
                    and ref.indices == e.output.indices
                ):
                    out[e.output.name] = u
                    break
        produced.add(e.output.name)
    return out


def _plain_indices(indices: Sequence[object]) -> bool:
    """Every index a rank variable with no offset (``SN[b,h,m,p]``, not ``RM[m1+1]``)."""
    return all(
        getattr(i, "rank", None) is not None and not getattr(i, "offset", 0) for i in indices
    )


def _split_ranks(cas: Cascade, ranks: tuple[str, ...], iterated: set[str]) -> tuple[str, ...]:
    """A tensor's ranks with each split rank the group iterates as ``(outer, inner)``: a
    tensor declared over ``m`` is walked by the loops over ``m1`` and ``m0``."""
    out: list[str] = []
    for r in ranks:
        sp = cas.splits.get(r)
        if sp is not None and r not in iterated and (sp.outer in iterated or sp.inner in iterated):
            out.extend((sp.outer, sp.inner))
        else:
            out.append(r)
    return tuple(out)


def _consumed_after_produced(group: FusionGroup, by: dict[str, Einsum], name: str) -> bool:
    produced = False
    for e_name in group.einsums:
        e = by[e_name]
        if produced and any(ref.name == name for ref in e.inputs):
            return True
        if e.output.name == name:
            produced = True
    return False


def group_ops(workload: Workload, group: FusionGroup) -> dict[str, float]:
    """Op kind -> count summed over the group's Einsums (from ``workload.counts()``)."""
    return einsum_ops(workload, group.einsums)


def einsum_ops(workload: Workload, einsums: Sequence[str]) -> dict[str, float]:
    """Op kind -> count summed over ``einsums`` (from ``workload.counts()``; MACs as ``mac``)."""
    from mappings._counts import cached_count

    counts = {ec.name: ec for ec in cached_count(workload.cascade).einsums}
    total: dict[str, float] = {}
    for name in einsums:
        if name in counts:
            for k, v in count_ops(counts[name]).items():
                total[k] = total.get(k, 0.0) + v
    return total


def count_ops(ec: EinsumCounts) -> dict[str, float]:
    """Op kind -> count of one Einsum's ``workloads.count`` entry, its MACs as ``mac``."""
    ops = {k: float(v) for k, v in ec.ops.items() if v}
    if ec.macs:
        ops["mac"] = ops.get("mac", 0.0) + float(ec.macs)
    return ops
