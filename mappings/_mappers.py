"""Mappers: search one Einsum's mapping space; return ranked, re-scored mappings.

All mappers share one signature (looked up by name with :func:`get_mapper`)::

    mapper(workload, arch, *, objective="latency", top=5, seed=0, budget=None,
           progress=False, einsum=None, rescore=3) -> list[RankedMapping]

``einsum`` picks the Einsum searched (default: the one with most MACs); the other Einsums
keep the heuristic mapping of :func:`mappings._fit.fit_group`, each in its own group.
Candidates are ranked with the numpy estimator of :mod:`mappings._space`; the ``top``
best distinct ones are lowered, scored with :func:`archsim.estimate` on the whole workload,
and the best ``rescore`` are re-scored with the event engine (:func:`archsim.simulate`).

Ties on the objective (equal to ``TIE_RTOL`` relative) are broken by the next objective
(:data:`TIE_BREAK`: energy ties by latency, latency ties by energy; EDP as is), in every
mapper and at every ranking step: without it an energy search on an architecture without
static power returns a one-PE mapping (every mapping moves the same bytes and does the same
MACs, so all tie on energy).
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

import numpy as np

from archsim.errors import InfeasibleMappingError, MappingError
from mappings._fit import fit_group, pick_units
from mappings._mapping import Mapping
from mappings._space import Candidates, Space, batch_metrics, build_space, tile_choices, to_group

if TYPE_CHECKING:
    from archsim import Architecture, Result
    from workloads import Workload

__all__ = [
    "RankedMapping",
    "MapperFn",
    "get_mapper",
    "list_mappers",
    "register_mapper",
    "score",
    "finish",
    "options",
    "tie_break",
    "rank",
    "TIE_BREAK",
    "TIE_RTOL",
]

Objective = Literal["latency", "energy", "edp"]

TIE_BREAK: dict[str, str | None] = {"latency": "energy", "energy": "latency", "edp": None}
"""The metric that breaks ties of each objective (None: ties keep their search order)."""
TIE_RTOL = 1e-9
"""Objective values this close (relative) tie: rounding noise is not a better mapping."""


@dataclass(frozen=True)
class RankedMapping:
    """One mapping with its estimated (and optionally simulated) metrics."""

    mapping: Mapping
    cycles: float
    """Analytical cycles of the whole workload (``archsim.estimate``)."""
    energy_j: float
    dram_bytes: float
    objective: float
    """Value of the objective (cycles, joules, or joule-seconds), lower is better."""
    simulated_cycles: int | None = None
    """Event-engine cycles (``archsim.simulate``) for the re-scored best few, else None."""

    @classmethod
    def scored(
        cls, mapping: Mapping, result: Result, objective: str, simulated_cycles: int | None = None
    ) -> RankedMapping:
        """``mapping`` with ``result``'s metrics (an estimate) and its ``objective`` value."""
        return cls(
            mapping,
            float(result.cycles),
            float(result.energy_j),
            float(result.dram_bytes),
            objective_value(result, objective),
            simulated_cycles,
        )

    def describe(self) -> str:
        """One line: the searched group's factors and DRAM order."""
        g = self.mapping.groups[0]
        parts = []
        for lm in g.levels:
            t = ",".join(f"{r}{f}" for r, f in lm.temporal.items() if f > 1)
            s = ",".join(f"{r}{f}{lm.spatial_axis.get(r, 'x')}" for r, f in lm.spatial.items())
            parts.append(f"{lm.level}[{t}{' | ' + s if s else ''}]")
        order = ">".join(g.levels[0].loop_order())
        return " ".join(parts) + f" order {order}"

    def to_dict(self) -> dict[str, object]:
        """JSON-ready dict (``archsim map --json``)."""
        return {
            "cycles": self.cycles,
            "energy_j": self.energy_j,
            "dram_bytes": self.dram_bytes,
            "objective": self.objective,
            "simulated_cycles": self.simulated_cycles,
            "mapping": self.mapping.to_dict(),
            "describe": self.describe(),
        }


MapperFn = Callable[..., list[RankedMapping]]
_MAPPERS: dict[str, MapperFn] = {}


def register_mapper(name: str) -> Callable[[MapperFn], MapperFn]:
    """Decorator registering a mapper under ``name``."""

    def deco(fn: MapperFn) -> MapperFn:
        _MAPPERS[name] = fn
        return fn

    return deco


def get_mapper(name: str) -> MapperFn:
    """The mapper registered as ``name`` (``exhaustive random greedy mip``)."""
    if name == "mip" and "mip" not in _MAPPERS:
        import mappings._mip  # noqa: F401  (registers "mip"; imports pulp lazily)
    if name == "fusion" and "fusion" not in _MAPPERS:
        import mappings._fusion_search  # noqa: F401  (registers "fusion")
    try:
        return _MAPPERS[name]
    except KeyError:
        raise MappingError(
            "unknown mapper", path="mapper", expected=f"one of {list_mappers()}", got=name
        ) from None


def list_mappers() -> list[str]:
    """Registered mapper names."""
    return sorted(set(_MAPPERS) | {"mip", "fusion"})


def score(m: dict[str, np.ndarray], objective: str, clock_hz: float) -> np.ndarray:
    """Objective per candidate (invalid ones get +inf)."""
    if objective == "latency":
        v = m["cycles"].astype(np.float64)
    elif objective == "energy":
        v = m["energy_j"].astype(np.float64)
    elif objective == "edp":
        v = m["cycles"] / clock_hz * m["energy_j"]
    else:
        raise MappingError(
            "unknown objective", path="objective", expected="latency|energy|edp", got=objective
        )
    return np.where(m["valid"], v, np.inf)


def tie_break(m: dict[str, np.ndarray], objective: str) -> np.ndarray:
    """Per candidate the metric that breaks ties of ``objective`` (:data:`TIE_BREAK`):
    energy for latency, cycles for energy, zeros for EDP; +inf where invalid."""
    second = TIE_BREAK.get(objective)
    if second is None:
        v = np.zeros(len(m["valid"]))
    else:
        v = m["energy_j" if second == "energy" else "cycles"].astype(np.float64)
    return np.where(m["valid"], v, np.inf)


def _quantize(v: np.ndarray) -> np.ndarray:
    """``v`` rounded to ``TIE_RTOL`` relative (finite, nonzero entries), so near ties tie."""
    v = np.asarray(v, dtype=np.float64)
    ok = np.isfinite(v) & (v != 0)
    digits = -math.floor(math.log10(TIE_RTOL))
    with np.errstate(divide="ignore", invalid="ignore"):
        step = 10.0 ** (np.floor(np.log10(np.abs(np.where(ok, v, 1.0)))) - digits)
    return np.where(ok, np.round(v / step) * step, v)


def rank(values: np.ndarray) -> np.ndarray:
    """Indices of ``values`` (shape ``(N, 2)``: objective, tie-break) best first: by the
    objective (to ``TIE_RTOL``), ties by the tie-break; stable."""
    values = np.asarray(values, dtype=np.float64).reshape(-1, 2)
    return np.lexsort((values[:, 1], _quantize(values[:, 0])))


def _better(a: np.ndarray, b: np.ndarray) -> bool:
    """Whether the (objective, tie-break) pair ``a`` ranks strictly before ``b``."""
    qa, qb = _quantize(np.array([a[0], b[0]]))
    return bool(qa < qb or (qa == qb and a[1] < b[1] * (1 - 1e-12)))


def options(space: Space) -> list[list[tuple[int, int, int]]]:
    """Per rank the (buffer factor, spatial factor, axis) choices."""
    mx, my = space.mesh
    out = []
    for size in space.sizes.tolist():
        opts = []
        sp = (
            [(1, 0)]
            + [(s, 1) for s in tile_choices(size, mx) if s > 1 and mx > 1]
            + [(s, 2) for s in tile_choices(size, my) if s > 1 and my > 1]
        )
        for s, ax in sp:
            for t in tile_choices(math.ceil(size / s)):
                opts.append((t, s, ax))
        out.append(opts)
    return out


def _from_indices(
    space: Space, opts: list[list[tuple[int, int, int]]], idx: np.ndarray, order: np.ndarray
) -> Candidates:
    arr = [np.array(o, dtype=np.int64) for o in opts]
    t = np.stack([arr[r][idx[:, r], 0] for r in range(len(opts))], axis=1)
    s = np.stack([arr[r][idx[:, r], 1] for r in range(len(opts))], axis=1)
    ax = np.stack([arr[r][idx[:, r], 2] for r in range(len(opts))], axis=1).astype(np.int8)
    return Candidates(t, s, ax, order.astype(np.int64))


def _axis_ok(c: Candidates) -> np.ndarray:
    return ((c.axis == 1).sum(axis=1) <= 1) & ((c.axis == 2).sum(axis=1) <= 1)


def _setup(workload: Workload, arch: Architecture, einsum: str | None) -> Space:
    if einsum is None:
        counts = {ec.name: ec.macs + sum(ec.ops.values()) for ec in workload.counts().einsums}
        einsum = max(counts, key=lambda k: counts[k])
    return build_space(workload, arch, einsum, pick_units(arch)[0])


def finish(
    workload: Workload,
    arch: Architecture,
    space: Space,
    cands: Candidates | None,
    values: np.ndarray,
    *,
    objective: str,
    top: int,
    rescore: int,
) -> list[RankedMapping]:
    """Lower the best distinct candidates, score them with ``estimate``, re-score the best few
    with ``simulate``; ranked best first (``values``: ``(N, 2)`` objective and tie-break per
    candidate; the lowered ones are ranked the same way on ``estimate``'s figures; ``cands``
    None with no values: nothing was kept, InfeasibleMappingError)."""
    from archsim import simulate
    from archsim._estimate import estimate
    from mappings._lower import lower

    values = np.asarray(values, dtype=np.float64).reshape(-1, 2)
    order = rank(values)
    order = order[np.isfinite(values[order, 0])]
    if len(order) == 0:
        raise InfeasibleMappingError(f"no valid mapping of {space.einsum} fits {arch.name}")
    assert cands is not None  # a finite value belongs to a kept candidate
    big, small = pick_units(arch)
    others = []
    for e in workload.cascade.einsums:
        if e.name != space.einsum:
            contraction = e.reduce_op == "sum" and e.map_op == "*" and len(e.inputs) == 2
            others.append(fit_group(workload, arch, e.name, big if contraction else small))
    seen: set[str] = set()
    ranked: list[RankedMapping] = []
    for i in order[: max(50, 10 * top)]:
        g = to_group(space, cands.t[i], cands.s[i], cands.axis[i], int(cands.order[i]))
        m = Mapping(groups=(g, *others), name=f"{space.einsum}")
        key = json.dumps(m.to_dict(), sort_keys=True)
        if key in seen:
            continue
        seen.add(key)
        ranked.append(RankedMapping.scored(m, estimate(lower(workload, m, arch), arch), objective))
        if len(ranked) >= top:
            break
    keys = np.array([(x.objective, _second(x, objective)) for x in ranked]).reshape(-1, 2)
    ranked = [ranked[i] for i in rank(keys)]
    out = []
    for k, rm in enumerate(ranked):
        if k < rescore:
            res = simulate(lower(workload, rm.mapping, arch), arch)
            rm = RankedMapping(
                rm.mapping, rm.cycles, rm.energy_j, rm.dram_bytes, rm.objective, int(res.cycles)
            )
        out.append(rm)
    return out


def objective_value(r: Result, objective: str) -> float:
    """A result's value of ``objective`` (lower is better): cycles for ``latency`` (and for
    ``pareto``, whose front is ranked by latency), joules, or joule-seconds for ``edp``."""
    if objective in ("latency", "pareto"):
        return float(r.cycles)
    if objective == "energy":
        return float(r.energy_j)
    return float(r.energy_j) * float(r.seconds)


def _second(rm: RankedMapping, objective: str) -> float:
    """The tie-break metric (:data:`TIE_BREAK`) of one scored mapping."""
    second = TIE_BREAK.get(objective)
    return 0.0 if second is None else rm.energy_j if second == "energy" else rm.cycles


def _progress(total: int, on: bool, desc: str, unit: str = "map"):  # noqa: ANN202
    if not on:
        return None
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=desc, unit=unit)


def _objective_values(space: Space, c: Candidates, objective: str) -> np.ndarray:
    """``(N, 2)``: objective and tie-break per candidate of ``c``; +inf where invalid or its
    spatial axes do not fit."""
    m = batch_metrics(space, c)
    v = np.stack([score(m, objective, space.clock_hz), tie_break(m, objective)], axis=1)
    return np.where(_axis_ok(c)[:, None], v, np.inf)


def _every_order(t: np.ndarray, s: np.ndarray, ax: np.ndarray, n_orders: int) -> Candidates:
    """The one-row candidate ``(t, s, ax)`` (each of shape ``(1, ranks)``) once per DRAM order."""
    return Candidates(
        np.repeat(t, n_orders, 0),
        np.repeat(s, n_orders, 0),
        np.repeat(ax, n_orders, 0),
        np.arange(n_orders),
    )


@register_mapper("exhaustive")
def exhaustive(
    workload: Workload,
    arch: Architecture,
    *,
    objective: Objective = "latency",
    top: int = 5,
    seed: int = 0,
    budget: int | None = 2_000_000,
    progress: bool = False,
    einsum: str | None = None,
    rescore: int = 3,
) -> list[RankedMapping]:
    """Every candidate of the space (tile choices x spatial choices x DRAM orders).

    Raises
    ------
    MappingError
        If the space has more than ``budget`` candidates (use random, greedy or mip).
    """
    space = _setup(workload, arch, einsum)
    opts = options(space)
    dims = [len(o) for o in opts] + [len(space.orders)]
    total = math.prod(dims)
    if budget is not None and total > budget:
        raise MappingError(
            "space too large for the exhaustive mapper",
            path="budget",
            expected=f">= {total} candidates (or use random/greedy/mip)",
            got=budget,
        )
    best_v = np.empty((0, 2))
    best_c: Candidates | None = None
    bar = _progress(total, progress, "exhaustive")
    chunk = 200_000
    for start in range(0, total, chunk):
        flat = np.arange(start, min(total, start + chunk))
        idx = np.stack(np.unravel_index(flat, dims), axis=1)
        c = _from_indices(space, opts, idx[:, :-1], idx[:, -1])
        best_c, best_v = _keep_best(space, c, objective, top, best_c, best_v)
        if bar is not None:
            bar.update(len(flat))
    if bar is not None:
        bar.close()
    assert best_c is not None
    return finish(
        workload, arch, space, best_c, best_v, objective=objective, top=top, rescore=rescore
    )


def _keep_best(
    space: Space,
    c: Candidates,
    objective: str,
    top: int,
    best_c: Candidates | None,
    best_v: np.ndarray,
) -> tuple[Candidates, np.ndarray]:
    """Score the batch ``c`` (infeasible axes: inf) and merge its ``50 * top`` best into
    the running best ``best_c`` / ``best_v``."""
    v = _objective_values(space, c, objective)
    keep = rank(v)[: 50 * top]
    return _merge(best_c, best_v, c.take(keep), v[keep], 50 * top)


def _merge(
    a: Candidates | None, av: np.ndarray, b: Candidates, bv: np.ndarray, k: int
) -> tuple[Candidates, np.ndarray]:
    if a is None:
        return b, bv
    c = Candidates(
        np.concatenate([a.t, b.t]),
        np.concatenate([a.s, b.s]),
        np.concatenate([a.axis, b.axis]),
        np.concatenate([a.order, b.order]),
    )
    v = np.concatenate([av, bv])
    keep = rank(v)[:k]
    return c.take(keep), v[keep]


def sample(space: Space, n: int, rng: np.random.Generator) -> Candidates:
    """``n`` uniformly random candidates of the space (each rank's option drawn uniformly)."""
    opts = options(space)
    idx = np.stack([rng.integers(0, len(o), size=n) for o in opts], axis=1)
    order = rng.integers(0, len(space.orders), size=n)
    return _from_indices(space, opts, idx, order)


@register_mapper("random")
def random_mapper(
    workload: Workload,
    arch: Architecture,
    *,
    objective: Objective = "latency",
    top: int = 5,
    seed: int = 0,
    budget: int | None = 10_000,
    progress: bool = False,
    einsum: str | None = None,
    rescore: int = 3,
) -> list[RankedMapping]:
    """``budget`` uniformly random candidates (seeded with ``seed``)."""
    space = _setup(workload, arch, einsum)
    rng = np.random.default_rng(seed)
    n = int(budget or 10_000)
    bar = _progress(n, progress, "random")
    best_c, best_v = None, np.empty((0, 2))
    for start in range(0, n, 100_000):
        c = sample(space, min(100_000, n - start), rng)
        best_c, best_v = _keep_best(space, c, objective, top, best_c, best_v)
        if bar is not None:
            bar.update(len(c))
    if bar is not None:
        bar.close()
    return finish(
        workload, arch, space, best_c, best_v, objective=objective, top=top, rescore=rescore
    )


def hill_climb(
    space: Space, start: Candidates, objective: str, max_rounds: int = 20
) -> tuple[Candidates, np.ndarray]:
    """Coordinate descent from one candidate: per rank try every option, then every order;
    keep the best (ties on the objective: the better tie-break); stop when a full round
    improves nothing. Returns all visited candidates."""
    opts = options(space)
    cur = start.take(np.array([0]))
    m = batch_metrics(space, cur)
    cur_v = np.stack([score(m, objective, space.clock_hz), tie_break(m, objective)], axis=1)
    seen_c, seen_v = cur, cur_v
    for _ in range(max_rounds):
        improved = False
        for r in range(len(opts)):
            o = np.array(opts[r], dtype=np.int64)
            n = len(o)
            c = Candidates(
                np.repeat(cur.t, n, 0),
                np.repeat(cur.s, n, 0),
                np.repeat(cur.axis, n, 0),
                np.repeat(cur.order, n),
            )
            c.t[:, r], c.s[:, r], c.axis[:, r] = o[:, 0], o[:, 1], o[:, 2]
            v = _objective_values(space, c, objective)
            seen_c, seen_v = _merge(seen_c, seen_v, c, v, 400)
            j = int(rank(v)[0])
            if _better(v[j], cur_v[0]):
                cur, cur_v, improved = c.take(np.array([j])), v[j : j + 1], True
        c = _every_order(cur.t, cur.s, cur.axis, len(space.orders))
        v = _objective_values(space, c, objective)
        seen_c, seen_v = _merge(seen_c, seen_v, c, v, 400)
        j = int(rank(v)[0])
        if _better(v[j], cur_v[0]):
            cur, cur_v, improved = c.take(np.array([j])), v[j : j + 1], True
        if not improved:
            break
    return seen_c, seen_v


def heuristic_start(space: Space) -> Candidates:
    """The largest ranks on the mesh axes, nothing else tiled."""
    mx, my = space.mesh
    r = len(space.ranks)
    t = np.ones((1, r), dtype=np.int64)
    s = np.ones((1, r), dtype=np.int64)
    ax = np.zeros((1, r), dtype=np.int8)
    big = np.argsort(-space.sizes, kind="stable")
    for axis, cap, rank in ((1, mx, big[0]), (2, my, big[1] if r > 1 else big[0])):
        if cap > 1 and ax[0, rank] == 0:
            s[0, rank] = min(int(space.sizes[rank]), cap)
            ax[0, rank] = axis
    return Candidates(t, s, ax, np.zeros(1, dtype=np.int64))


@register_mapper("greedy")
def greedy(
    workload: Workload,
    arch: Architecture,
    *,
    objective: Objective = "latency",
    top: int = 5,
    seed: int = 0,
    budget: int | None = None,
    progress: bool = False,
    einsum: str | None = None,
    rescore: int = 3,
) -> list[RankedMapping]:
    """Hill climbing from the mesh-filling start plus ``seed``-chosen random restarts."""
    space = _setup(workload, arch, einsum)
    rng = np.random.default_rng(seed)
    starts = [heuristic_start(space)] + [sample(space, 1, rng) for _ in range(3)]
    best_c, best_v = None, np.empty((0, 2))
    for st in starts:
        c, v = hill_climb(space, st, objective)
        best_c, best_v = _merge(best_c, best_v, c, v, 400)
    return finish(
        workload, arch, space, best_c, best_v, objective=objective, top=top, rescore=rescore
    )
