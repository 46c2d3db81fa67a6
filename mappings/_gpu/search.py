"""The ``fusion`` mapper on a GPU: fused attention kernels and the unfused alternative.

The space, for the cascade given:

* every fused kernel family (``flash2``, ``flash3``, ``mem_efficient``: their instruction
  path, warp specialization and shared-memory layout are :class:`FusedRecipe` fields) x
  query block ``Bm`` in :data:`BLOCK_M` x key tile ``Bn`` in :data:`BLOCK_N` x K/V stages in
  :data:`STAGES`, each written as a :class:`~mappings.Mapping` (:func:`fused_mapping`);
* the unfused mapping (``gpu_unfused``: each GEMM its own kernel, scores through HBM), which
  takes any cascade.

Pruning, exact where it claims to be: tiles beyond the query or key length are the same
kernel as the capped tile (one is kept: a symmetric choice); a CTA that does not fit the GPU
(shared memory per CTA, registers per thread: :func:`cta_tiling`) is dropped before it is
evaluated. A cascade no fused kernel takes (more than one pass over the keys, a decode shape,
not attention) leaves the fused part empty: the reason is kept in ``stats["refused"]`` and
the unfused mapping is still offered.

Every mapping is evaluated by the same GPU plan as ``archsim simulate --mapping`` (kernels,
waves, power-capped clock): ranked on the analytical estimate of its tile program
(:func:`archsim.estimate`, energy from the board power model); the best ``rescore`` are
re-run on the event engine.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from functools import partial
from typing import TYPE_CHECKING

from archsim.errors import InfeasibleMappingError, MappingError
from mappings._mappers import RankedMapping
from mappings._roles import attention_roles

from ._mapping import (
    FUSED,
    UNFUSED,
    fused_mapping,
    fused_plan,
    gpu_mapping_plan,
    unfused_mapping,
)

if TYPE_CHECKING:
    from archsim import Architecture, Result
    from mappings._mapping import Mapping
    from mappings._registry import Plan
    from workloads import Workload

__all__ = ["gpu_search", "explain_gpu", "cta_label", "BLOCK_M", "BLOCK_N", "STAGES"]

BLOCK_M = (64, 128, 192, 256)
"""Query rows per CTA tried (multiples of a warpgroup's 64-row wgmma tile)."""
BLOCK_N = (32, 64, 80, 96, 128, 176, 256)
"""Keys per tile tried (the sizes the FlashAttention kernels instantiate)."""
STAGES = (1, 2, 3, 4)
"""K/V pipeline stages tried."""


def _candidates(
    workload: Workload, arch: Architecture, stats: dict[str, float]
) -> Iterator[tuple[str, Callable[[], Mapping], object]]:
    """(name, mapping builder, roles or None) of every candidate, deduplicated (see module
    doc); a builder raises MappingError for a key tile the cascade does not allow."""
    from mappings._gpu._spine import check_one_pass
    from mappings._stream import numeric_params

    refused: list[str] = []
    try:
        roles = attention_roles(workload.cascade)
        check_one_pass(workload, roles, "a fused kernel")
        sizes = workload.cascade.rank_sizes(numeric_params(workload.params))
        nq, nk = int(sizes[roles.query]), int(sizes.get(roles.key, 1))
        if nq == 1:
            raise MappingError(
                "a query length of 1 is a decode: the decode kernels (split_kv, lean) run it",
                path="workload.cascade",
                expected="query length > 1",
                got=1,
            )
    except MappingError as exc:
        refused.append(str(exc))
        roles = None
    if roles is not None:
        from .attention import RECIPES

        for fam in FUSED:
            seen: set[tuple[int, int, int]] = set()
            for bm in BLOCK_M:
                for bn in BLOCK_N:
                    for st in STAGES:
                        key = (min(bm, nq), min(bn, nk), st)
                        if key in seen:
                            continue
                        seen.add(key)
                        stats["candidates"] += 1
                        yield (
                            fam,
                            partial(
                                fused_mapping, workload, arch, roles, RECIPES[fam],
                                block_m=bm, block_n=bn, stages=st,
                            ),
                            roles,
                        )  # fmt: skip
    stats["candidates"] += 1
    yield UNFUSED, partial(unfused_mapping, workload, arch), None
    stats["refused_reasons"] = refused  # type: ignore[assignment]  # a list beside the counts


def gpu_search(
    workload: Workload,
    arch: Architecture,
    *,
    objective: str = "latency",
    top: int = 5,
    rescore: int = 3,
    progress: bool = False,
    stats: dict[str, float] | None = None,
) -> list[RankedMapping]:
    """Search fused and unfused GPU mappings of ``workload`` (see module doc); the ``top``
    best, best first. ``stats``: ``candidates``, ``pruned`` (CTA does not fit), ``refused``
    (a family refused the cascade), ``evaluated``, ``seconds``, ``refused_reasons``.

    Raises
    ------
    MappingError
        Not a GPU; an unknown objective; no mapping at all.
    """
    from archsim import simulate
    from archsim._estimate import estimate
    from mappings._fusion_search import _rank_with_ties

    if objective not in ("latency", "energy", "edp", "pareto"):
        raise MappingError(
            "objective", path="objective", expected="latency, energy, edp or pareto", got=objective
        )
    t0 = time.perf_counter()
    counts: dict[str, float] = {"candidates": 0, "pruned": 0, "refused": 0, "evaluated": 0}
    scored: list[tuple[Mapping, Result, Plan]] = []
    family_refusal: dict[str, str] = {}
    it = _candidates(workload, arch, counts)
    if progress:
        from tqdm import tqdm

        it = iter(tqdm(it, desc="gpu fusion", unit="map"))
    for name, build, roles in it:
        if name in family_refusal:  # the family refused the cascade itself: no tile helps
            counts["refused"] += 1
            continue
        try:
            m = build()
            if roles is None:
                plan = gpu_mapping_plan(workload, m, arch)
            else:
                plan = fused_plan(name, workload, arch, m, roles)  # type: ignore[arg-type]
        except (MappingError, InfeasibleMappingError) as exc:
            where = str(getattr(exc, "path", "") or "")
            if "(SMEM)" in where or "(RF)" in where or where.startswith("splits"):
                counts["pruned"] += 1  # this CTA does not fit, or this key tile the cascade
            else:  # the family cannot run this cascade
                counts["refused"] += 1
                family_refusal.setdefault(name, str(exc))
            continue
        r = estimate(plan.program, arch)
        if plan.finish is not None:
            r = plan.finish(r)
        counts["evaluated"] += 1
        scored.append((m, r, plan))
    reasons = list(counts.pop("refused_reasons", []))  # type: ignore[arg-type]
    reasons += [f"{k}: {v}" for k, v in family_refusal.items()]
    if not scored:
        raise MappingError(
            "no GPU mapping runs this cascade",
            path="workload.cascade",
            expected="a cascade a GPU kernel runs",
            got="; ".join(reasons) or workload.name,
        )
    if objective == "pareto":  # the (latency, energy) front, fastest first
        scored.sort(key=lambda s: (s[1].cycles, s[1].energy_j))
        front: list[tuple[Mapping, Result, Plan]] = []
        for s in scored:
            if not front or s[1].energy_j < front[-1][1].energy_j:
                front.append(s)
        ranked = front
    else:
        pairs = _rank_with_ties([(m, r) for m, r, _ in scored], objective)
        plans = {id(m): p for m, _, p in scored}
        ranked = [(m, r, plans[id(m)]) for m, r in pairs]
    out = []
    for k, (m, r, plan) in enumerate(ranked[:top]):
        sim = int(simulate(plan.program, arch).cycles) if k < rescore else None
        out.append(RankedMapping.scored(m, r, objective, sim))
    counts["seconds"] = time.perf_counter() - t0
    if stats is not None:
        stats.update(counts)
        stats["refused_reasons"] = reasons  # type: ignore[assignment]  # list beside counts
    return out


def explain_gpu(workload: Workload, mapping: Mapping, arch: Architecture) -> list[str]:
    """Lines saying what a GPU mapping runs: its kernels and what bounds each, the passes over
    the keys, what stays on chip (and where), the buffers per CTA against the GPU's limits,
    and the grid in waves."""
    import math

    from mappings._passes import cascade_passes

    plan = gpu_mapping_plan(workload, mapping, arch)
    kernels = list(plan.meta.get("kernels", ()))  # type: ignore[call-overload]
    out = []
    cta = plan.meta.get("cta")
    p = plan.passes
    if isinstance(cta, dict):
        g = next(gr for gr in mapping.groups if len(gr.einsums) > 1 or gr.levels[1:])
        grid = g.levels[0].spatial
        ctas = math.prod(grid.values())
        slots = int(arch.levels[-1].instances) * int(cta["ctas_per_sm"])
        shape = " x ".join(f"{r}{n}" for r, n in grid.items())
        out.append(
            f"kernel {mapping.name} ({plan.meta.get('path')}): CTA tile {cta['block_m']}x"
            f"{cta['block_n']}, {cta['stages']} K/V stage(s); grid {shape} = {ctas:,} CTAs on "
            f"{slots} slots ({cta['ctas_per_sm']} CTA/SM): {ctas / slots:.2f} waves"
        )
        key = g.levels[0].loop_order()
        out.append(
            f"passes over the keys: {p.passes if p else 1} ({p.reason if p else ''}); "
            f"the CTA loops over {', '.join(key) or 'one key tile'}"
        )
        rf = g.levels[2].keep or ()
        state = [t for t in rf if t in g.on_chip and _is_state(workload, t, g)]
        tile = [t for t in rf if t in g.on_chip and t not in state]
        held = f"the score tile ({', '.join(tile)})"
        if state:
            held += f" and the running state / accumulators ({', '.join(state)})"
        out.append(
            f"on chip: {g.levels[2].level} holds {held}; {g.levels[1].level} holds "
            f"{', '.join(g.levels[1].keep or ())}"
        )
        hw_smem = _hw(arch, "max_smem_per_cta_bytes")
        rf_b = int(cta["regs_per_thread"]) * int(cta["threads"]) * 4
        out.append(
            f"buffer per CTA: {g.levels[1].level} {cta['smem_bytes']:,} B of {hw_smem:,} "
            f"({p.buffer_formula if p else ''}); {g.levels[2].level} {cta['regs_per_thread']} "
            f"registers x {cta['threads']} threads = {rf_b:,} B"
        )
    else:
        runs = " | ".join("+".join(gr.einsums) for gr in mapping.groups)
        out.append(f"kernels ({len(mapping.groups)}): {runs}")
        n, why = cascade_passes(workload.cascade)
        spill = p.spill_bytes if p else 0.0
        out.append(f"passes: {max(n, 1)} ({why}); intermediates through HBM: {spill:,.0f} B")
        on_chip = [t for gr in mapping.groups for t in gr.on_chip]
        out.append(f"on chip inside a kernel: {', '.join(on_chip) or 'nothing'}")
    for k in kernels:
        out.append(
            f"bound: {k['name']} {k['bound']} ({float(k['time_s']) * 1e6:,.1f} us, "
            f"{float(k['dram_bytes']):,.0f} DRAM B)"
        )
    return out


def _is_state(workload: Workload, tensor: str, group: object) -> bool:
    """Whether ``tensor`` is running state or an accumulator (not over the key tile)."""
    roles = attention_roles(workload.cascade)
    spec = workload.cascade.tensors[tensor]
    keys = {r for r in (roles.key, roles.key_inner) if r}
    return bool(spec.iterative) or not (set(spec.ranks) & keys)


def _hw(arch: Architecture, name: str) -> int:
    from ._common import model_for

    return int(getattr(model_for(arch).hw, name))


def cta_label(workload: Workload, mapping: Mapping) -> str:
    """``flash3 128x64 x2`` (family, query block x key tile, stages) or ``gpu_unfused``."""
    if mapping.name not in FUSED:
        return mapping.name
    roles = attention_roles(workload.cascade)
    g = next(gr for gr in mapping.groups if roles.score in gr.einsums)
    ranks = {r for e in workload.cascade.einsums if e.name in g.einsums for r in e.ranks}
    key = roles.key_inner if roles.key_inner in ranks else roles.key
    return f"{mapping.name} {g.tile(roles.query, 1)}x{g.tile(key, 1)} x{g.depth}"
