"""The ``fusion`` mapper on a GPU: fused, decode and sparse attention kernels, and unfused.

The space, for the cascade given (:mod:`mappings._gpu._search_space`):

* prefill (query length > 1): every fused kernel family (``flash2``, ``flash3``,
  ``mem_efficient``: their instruction path, warp specialization and shared-memory layout are
  :class:`FusedRecipe` fields) x query block ``Bm`` in :data:`BLOCK_M` x key tile ``Bn`` in
  :data:`BLOCK_N` x K/V stages in :data:`STAGES`, each written as a :class:`~mappings.Mapping`
  (:func:`fused_mapping`);
* decode (query length <= 16): the decode kernels (``split_kv``, cuDNN's ``flash3``,
  ``lean``, ``mem_efficient``) x key tile ``m0`` x K/V stages x query heads per CTA (GQA /
  MLA packing) x key split count ``m1`` (a grid of counts, then the best CTA shapes walk the
  count to its local optimum);
* sparse (a block or M x 1 slice sparsity annotation): the sparse kernels (``block_sparse``
  on FlexAttention / flash3 / flash2, ``fg_sparse``) x query block x key tile x stages, with
  the sparsity binding in ``skip``;
* backward (a gradient cascade: ``mha_bwd``, ``gqa_bwd``, a user's gradient): each family's
  key-outer backward kernel x the query tiles, key blocks, ``Q``/``dO`` stages and MMA warps
  it instantiates (:func:`~mappings._gpu._search_space.backward_space`; the CTA of each from
  the family's own, checked for shared memory, registers and threads); the forward spaces
  are left out (a forward kernel does not compute a gradient);
* chunked linear attention (a key split into chunks with an inter-chunk state): the
  ``linear_chunked`` kernels, fused and materialized, x value block x chunk stages, and the
  staged form (:func:`~mappings._gpu._search_space.chunked_space`);
* the recipes' own decode, sparse, chunked and backward mappings (so the best is never worse than a
  recipe the space contains), and the unfused mapping (``gpu_unfused``: each GEMM its own
  kernel, scores through HBM), which takes any cascade.

Pruning, exact where it claims to be: tiles beyond the query or key length are the same
kernel as the capped tile, and two candidates that build the same mapping are evaluated once
(symmetric choices); a CTA that does not fit the GPU (shared memory per CTA, registers per
thread: :func:`cta_tiling`) is dropped with every other candidate of the same CTA shape. A
kernel family that refuses the cascade (more than one pass over the keys, a prefill for a
decode kernel, no sparsity for a sparse one, not attention) is skipped after its first
refusal: the reason is kept in ``stats["refused_reasons"]``, and the unfused mapping is still
offered. The split-count walk is a heuristic (documented in the space's module).

Every mapping is evaluated by the same GPU plan as ``archsim simulate --mapping`` (kernels,
waves, power-capped clock): ranked on the analytical estimate of its tile program
(:func:`archsim.estimate`, energy from the board power model); the best ``rescore`` are
re-run on the event engine (one the engine would take minutes for keeps ``None``).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from collections.abc import Mapping as AbcMapping
from functools import partial
from typing import TYPE_CHECKING

from archsim.errors import InfeasibleMappingError, MappingError, SimulationTooLargeError
from mappings._mappers import RankedMapping, objective_value
from mappings._roles import attention_roles

from ._mapping import (
    FUSED,
    LINEAR,
    UNFUSED,
    fused_plan,
    gpu_mapping_plan,
    unfused_mapping,
)
from ._search_space import (
    BLOCK_M,
    BLOCK_N,
    REFINE_CONFIGS,
    STAGES,
    Candidate,
    DecodeConfig,
    backward_space,
    chunked_space,
    decode_candidate,
    decode_kernel_fits,
    decode_space,
    descend_splits,
    fused_space,
    has_sparsity,
    is_chunked,
    recipe_seeds,
    sparse_space,
)

if TYPE_CHECKING:
    from archsim import Architecture, Result
    from mappings._mapping import Mapping
    from mappings._registry import Plan
    from mappings._roles import AttentionRoles
    from workloads import Workload

__all__ = [
    "gpu_search",
    "explain_gpu",
    "cta_label",
    "gpu_differences",
    "BLOCK_M",
    "BLOCK_N",
    "STAGES",
]


def _space(
    workload: Workload, arch: Architecture, refused: list[str]
) -> tuple[Iterator[Candidate], AttentionRoles | None]:
    """(every candidate: recipes' own mappings first, then the spaces the cascade takes, then
    the unfused mapping; the attention roles or None); why a space was left out is appended
    to ``refused``."""
    from mappings._gpu._spine import check_one_pass
    from mappings._stream import numeric_params

    from ._mapping import streamed_key
    from .backward import backward_roles, is_gradient_cascade
    from .decode import MAX_DECODE_QUERY

    roles = None
    nq = nk = 0
    grad = is_gradient_cascade(workload.cascade)
    try:
        if grad:  # the key-outer backward kernels: roles turned round
            roles = backward_roles(workload.cascade, "a backward kernel")
        else:
            roles = attention_roles(workload.cascade)
            check_one_pass(workload, roles, "a fused kernel")
            sizes = workload.cascade.rank_sizes(numeric_params(workload.params))
            nq, nk = int(sizes[roles.query]), streamed_key(workload, roles)[1]
    except MappingError as exc:
        refused.append(str(exc))
        roles = None

    def gen() -> Iterator[Candidate]:
        if roles is not None and grad:
            yield from recipe_seeds(
                workload,
                arch,
                prefill=False,
                decode=False,
                single_query=False,
                sparse=False,
                backward=True,
            )
            yield from backward_space(workload, arch, roles)
            refused.append(
                "forward kernels left out: a gradient cascade runs the key-outer backward "
                "kernels (flash2, flash3, mem_efficient backward tiles are searched)"
            )
        elif roles is not None:
            decode = nq <= MAX_DECODE_QUERY
            sparse = has_sparsity(workload, roles)
            chunked = is_chunked(workload)
            yield from recipe_seeds(
                workload,
                arch,
                prefill=nq > 1,
                decode=decode,
                single_query=nq == 1,
                sparse=sparse,
                chunked=chunked,
            )
            if chunked:
                yield from chunked_space(workload, arch)
            if nq > 1:
                yield from fused_space(workload, arch, roles, nq, nk)
            else:
                refused.append(
                    "prefill kernels left out: a query length of 1 is a decode (the decode "
                    "kernels split_kv, flash3, lean, mem_efficient are searched)"
                )
            if decode:
                yield from decode_space(workload, arch, roles)
            if sparse:
                yield from sparse_space(workload, arch, roles, nq, nk)
        yield Candidate(UNFUSED, partial(unfused_mapping, workload, arch), "unfused")

    return gen(), roles


class _Search:
    """Evaluates candidates once each (dedupe on the mapping), keeping the counts."""

    def __init__(
        self, workload: Workload, arch: Architecture, roles: AttentionRoles | None, objective: str
    ):
        self.w, self.arch, self.roles, self.objective = workload, arch, roles, objective
        self.counts: dict[str, float] = {
            "candidates": 0,
            "pruned": 0,
            "refused": 0,
            "duplicates": 0,
            "evaluated": 0,
            "refined": 0,
        }
        self.scored: list[tuple[Mapping, Result, Plan]] = []
        self.by_mapping: dict[str, Result | None] = {}
        self.dead: set[tuple[object, ...]] = set()  # CTA shapes that do not fit
        self.family_refusal: dict[str, str] = {}
        self.recipes: dict[str, float | str] = {}  # recipe -> its cycles, or why it did not run
        self.splits: dict[tuple[DecodeConfig, int], float | None] = {}

    @property
    def attention(self) -> AttentionRoles:
        """The cascade's attention roles (kernel candidates exist only where it has them)."""
        assert self.roles is not None, "a kernel candidate of a cascade without attention roles"
        return self.roles

    def value(self, r: Result) -> float:
        return objective_value(r, "latency" if self.objective == "pareto" else self.objective)

    def run(self, cand: Candidate) -> Result | None:
        """Evaluate ``cand``; its result, or None when it does not run."""
        from archsim._estimate import estimate

        self.counts["candidates"] += 1
        if cand.seed is None and cand.name in self.family_refusal:
            self.counts["refused"] += 1  # the family refused the cascade itself
            return None
        if cand.cta in self.dead or cand.kernel in self.dead:
            self.counts["pruned"] += 1  # this CTA shape does not fit the GPU
            return None
        try:
            m = cand.build()
            key = m.model_dump_json()
            if key in self.by_mapping:
                self.counts["duplicates"] += 1
                return self._note(cand, self.by_mapping[key])
            self.by_mapping[key] = None
            if cand.kind == "fused":
                plan = fused_plan(cand.name, self.w, self.arch, m, self.roles)
            else:  # backward kernels go to their key-outer plan through here too
                plan = gpu_mapping_plan(self.w, m, self.arch)
        except InfeasibleMappingError as exc:  # this CTA, or the kernel's own, cannot exist
            self.counts["pruned"] += 1
            if cand.cta is not None:
                self.dead.add(cand.cta)
            if cand.kernel is not None and not decode_kernel_fits(
                self.w,
                self.arch,
                self.attention,
                cand.kernel,
            ):
                self.dead.add(cand.kernel)
            return self._note(cand, None, str(exc))
        except MappingError as exc:
            where = str(getattr(exc, "path", "") or "")
            if where.startswith("workload"):  # the family cannot run this cascade
                self.counts["refused"] += 1
                self.family_refusal.setdefault(cand.name, str(exc))
            else:  # this CTA does not fit, or this tile / split the cascade does not take
                self.counts["pruned"] += 1
                if ("(SMEM)" in where or "(RF)" in where) and cand.cta is not None:
                    self.dead.add(cand.cta)
            return self._note(cand, None, str(exc))
        r = estimate(plan.program, self.arch)
        if plan.finish is not None:
            r = plan.finish(r)
        self.counts["evaluated"] += 1
        self.by_mapping[key] = r
        self.scored.append((m, r, plan))
        return self._note(cand, r)

    def _note(self, cand: Candidate, r: Result | None, why: str = "") -> Result | None:
        if cand.seed is not None:
            self.recipes[cand.seed] = float(r.cycles) if r is not None else why
        if cand.config is not None:
            self.splits[(cand.config, cand.splits)] = None if r is None else self.value(r)
        return r

    def refine(self) -> None:
        """Walk the split count of each splitting kernel's best :data:`REFINE_CONFIGS` CTA
        shapes to its local optimum (:func:`descend_splits`)."""
        best: dict[DecodeConfig, tuple[float, int]] = {}
        for (cfg, s), v in self.splits.items():
            if v is not None and (cfg not in best or v < best[cfg][0]):
                best[cfg] = (v, s)
        ranked = sorted(best.items(), key=lambda kv: kv[1][0])
        chosen: list[tuple[DecodeConfig, int]] = []
        for name in dict.fromkeys(cfg.name for cfg, _ in ranked):
            chosen += [(c, s) for c, (_, s) in ranked if c.name == name][:REFINE_CONFIGS]
        for cfg, s0 in chosen:

            def cost(s: int, cfg: DecodeConfig = cfg) -> float | None:
                if (cfg, s) not in self.splits:
                    self.counts["refined"] += 1
                    self.run(
                        decode_candidate(
                            self.w,
                            self.arch,
                            self.attention,
                            cfg.name,
                            block_n=cfg.block_n,
                            stages=cfg.stages,
                            heads_per_cta=cfg.heads_per_cta,
                            splits=s,
                        )  # fmt: skip
                    )
                return self.splits.get((cfg, s))

            descend_splits(s0, cfg.n_blocks, cfg.max_splits, cost)


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
    """Search fused, decode, sparse and unfused GPU mappings of ``workload`` (see module doc);
    the ``top`` best, best first. ``stats``: ``candidates``, ``pruned`` (CTA does not fit, or
    a tile the cascade does not take), ``refused`` (a family refused the cascade),
    ``duplicates`` (the same mapping as an earlier candidate), ``evaluated``, ``refined``
    (split counts tried by the walk), ``seconds``, ``refused_reasons`` (list), ``recipes``
    (recipe -> its analytic cycles, or why it did not run).

    Raises
    ------
    MappingError
        Not a GPU; an unknown objective; no mapping at all.
    """
    from archsim import simulate
    from mappings._fusion_search import _rank_with_ties

    if objective not in ("latency", "energy", "edp", "pareto"):
        raise MappingError(
            "objective", path="objective", expected="latency, energy, edp or pareto", got=objective
        )
    t0 = time.perf_counter()
    reasons: list[str] = []
    it, roles = _space(workload, arch, reasons)
    search = _Search(workload, arch, roles, objective)
    if progress:
        from tqdm import tqdm

        it = iter(tqdm(it, desc="gpu fusion", unit="map"))
    for cand in it:
        search.run(cand)
    search.refine()
    reasons += [f"{k}: {v}" for k, v in search.family_refusal.items()]
    scored = search.scored
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
        sim = None
        if k < rescore:
            try:
                sim = int(simulate(plan.program, arch).cycles)
            except SimulationTooLargeError:  # minutes on the event engine: the estimate ranks
                sim = None
        out.append(RankedMapping.scored(m, r, objective, sim))
    counts = dict(search.counts)
    counts["seconds"] = time.perf_counter() - t0
    if stats is not None:
        stats.update(counts)
        stats["refused_reasons"] = reasons  # type: ignore[assignment]  # list beside counts
        stats["recipes"] = dict(search.recipes)  # type: ignore[assignment]  # dict beside counts
    return out


def explain_gpu(workload: Workload, mapping: Mapping, arch: Architecture) -> list[str]:
    """Lines saying what a GPU mapping runs: its kernels and what bounds each, the passes over
    the keys (and how a decode kernel splits them, what a sparse kernel skips), what stays on
    chip (and where), the buffers per CTA against the GPU's limits, and the grid in waves."""
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
        # the fused kernel (a backward plan launches its preprocess kernel first)
        first = next((k for k in kernels if k.get("pass") == "bwd"), kernels[0] if kernels else {})
        ctas = int(first.get("ctas", 0)) or math.prod(grid.values())
        slots = int(arch.levels[-1].instances) * int(cta["ctas_per_sm"])
        shape = " x ".join(f"{r}={n}" for r, n in grid.items()) or "stream-K"
        path = plan.meta.get("path") or first.get("path", "")
        waves = f"grid {shape} = {ctas:,} CTAs on {slots} slots ({cta['ctas_per_sm']} CTA/SM): "
        waves += f"{ctas / slots:.2f} waves"
        d = _shape(workload, mapping)
        if d["decode"]:
            out.append(
                f"kernel {mapping.name} ({path}): CTA of {d['rows']} query rows "
                f"({d['heads']} query head(s) x {d['positions']} position(s) of one K/V stream, "
                f"padded to {cta['block_m']} MMA rows) x {cta['block_n']}-key tiles, "
                f"{cta['stages']} K/V stage(s); {waves}"
            )
            out.append(_split_line(plan.meta, d))
        else:
            out.append(
                f"kernel {mapping.name} ({path}): CTA tile {cta['block_m']}x"
                f"{cta['block_n']}, {cta['stages']} K/V stage(s); {waves}"
            )
        if "density" in plan.meta:
            live = float(plan.meta["live_trip_fraction"])  # type: ignore[arg-type]
            kind = "M x 1 slices" if "slice" in g.skip else "M x M blocks"
            out.append(
                f"sparsity: skips dead {kind} (M = {plan.meta['block']}, density "
                f"{float(plan.meta['density']):.4g}): {live:.1%} of the dense key tiles run"  # type: ignore[arg-type]
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
        out.append(f"bound: {k['name']} {k['bound']} ({float(k['dram_bytes']):,.0f} DRAM B)")
    return out


def _split_line(meta: AbcMapping[str, object], d: dict[str, object]) -> str:
    """How a decode kernel cuts the keys of its K/V streams over CTAs."""
    if d["name"] == "lean":
        return (
            f"key split: stream-K, the (K/V stream, key tile) loop dealt out in equal shares to "
            f"{meta.get('ctas', '?')} CTAs (at most {meta.get('max_ctas_per_head', '?')} per "
            f"stream); {meta.get('partials', 0)} partial outputs merged by the streams' host CTAs"
        )
    s = int(d["splits"])  # type: ignore[call-overload]
    if s <= 1:
        return "key split: none, one CTA walks a K/V stream's whole key range"
    return (
        f"key split: m1 over {s} CTAs per K/V stream ({d['chunk']} key tiles each); a combine "
        f"kernel merges the {s} fp32 partial outputs per query row by log-sum-exp"
    )


def _is_state(workload: Workload, tensor: str, group: object) -> bool:
    """Whether ``tensor`` is running state or an accumulator (not over the key tile)."""
    roles = attention_roles(workload.cascade)
    spec = workload.cascade.tensors[tensor]
    keys = {r for r in (roles.key, roles.key_inner) if r}
    return bool(spec.iterative) or not (set(spec.ranks) & keys)


def _hw(arch: Architecture, name: str) -> int:
    from ._common import model_for

    return int(getattr(model_for(arch).hw, name))


def _is_decode(workload: Workload, mapping: Mapping) -> bool:
    from ._mapping import DECODE, _query_len

    return mapping.name in DECODE or (mapping.name in FUSED and _query_len(workload) == 1)


def _shape(workload: Workload, mapping: Mapping) -> dict[str, object]:
    """What a kernel mapping chose: kernel ``name``, ``decode``, query ``rows`` per CTA
    (``heads`` x ``positions``), key tile ``block_n``, ``stages``, key ``splits`` over CTAs
    and key tiles per split ``chunk`` (decode); ``{"name": ...}`` alone for gpu_unfused."""
    if mapping.name == UNFUSED:
        return {"name": UNFUSED}
    if mapping.name in LINEAR:  # chunked linear attention: its form, value block, stages
        from .linear_mapping import STAGED

        if mapping.name == STAGED:
            return {"name": mapping.name, "form": "staged"}
        g = mapping.groups[0]
        vf = [t for r, t in g.levels[-1].temporal.items() if r in g.levels[0].spatial]
        return {
            "name": mapping.name,
            "form": "fused" if len(mapping.groups) == 1 else "materialized",
            "value_block": int(vf[0]) if vf else None,
            "stages": g.depth,
        }
    roles = attention_roles(workload.cascade)
    g = next(gr for gr in mapping.groups if roles.score in gr.einsums)
    ranks = {r for e in workload.cascade.einsums if e.name in g.einsums for r in e.ranks}
    key = roles.key_inner if roles.key_inner in ranks else roles.key
    heads = 1
    for r in roles.query_heads:
        heads *= g.tile(r, 1)
    positions = g.tile(roles.query, 1)
    hbm = g.levels[0]
    outer = roles.key_outer
    loop = outer if outer and (outer in hbm.temporal or outer in hbm.spatial) else key
    splits = int(hbm.spatial.get(str(loop), 1))
    chunk = int(hbm.temporal.get(str(loop), 1))
    return {
        "name": mapping.name,
        "decode": _is_decode(workload, mapping),
        "rows": heads * positions,
        "heads": heads,
        "positions": positions,
        "block_n": g.tile(str(key), 1),
        "stages": g.depth,
        "splits": splits,
        "chunk": chunk,
        "warps": _warps(g),
    }


def _warps(group: object) -> int | None:
    """MMA warps a backward kernel group names (register-level spatial factors); None: the
    family's own (or not a backward kernel)."""
    from .backward import mapping_warps

    return mapping_warps(group)  # type: ignore[arg-type]


def cta_label(workload: Workload, mapping: Mapping) -> str:
    """``flash3 128x64 x2`` (kernel, query rows x key tile, stages), with ``w12`` for a
    backward kernel that names its MMA warps, ``split 11`` for a decode kernel that splits
    the keys over CTAs (``stream-K`` for lean), or ``gpu_unfused``."""
    d = _shape(workload, mapping)
    if len(d) == 1:
        return mapping.name
    if "form" in d:  # chunked linear attention
        if d["form"] == "staged":
            return mapping.name
        return f"{mapping.name} {d['form']} v{d['value_block']} x{d['stages']}"
    label = f"{mapping.name} {d['rows']}x{d['block_n']} x{d['stages']}"
    if d.get("warps"):
        label += f" w{d['warps']}"
    if d["decode"]:
        label += " stream-K" if mapping.name == "lean" else f" split {d['splits']}"
    return label


_FIELDS = (
    ("name", "kernel"),
    ("form", "form"),
    ("value_block", "value features per CTA"),
    ("rows", "query rows per CTA"),
    ("block_n", "key tile"),
    ("stages", "K/V stages"),
    ("splits", "key splits"),
    ("warps", "MMA warps (None: the family's own)"),
)


def gpu_differences(workload: Workload, mapping: Mapping, best: Mapping) -> str:
    """How ``mapping`` differs from ``best`` (``--top K``): kernel, query rows per CTA, key
    tile, K/V stages, key splits, each as ``value (#1: value)``; the loop-nest differences
    (:func:`mappings._explain.differences`) when the kernels' choices are the same."""
    a, b = _shape(workload, mapping), _shape(workload, best)
    parts = [
        f"{label} {a.get(k, '-')} (#1: {b.get(k, '-')})"
        for k, label in _FIELDS
        if a.get(k) != b.get(k)
    ]
    if parts:
        return "; ".join(parts)
    from mappings._explain import differences

    return differences(mapping, best) or "the same mapping"
