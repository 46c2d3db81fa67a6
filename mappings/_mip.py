"""The ``mip`` mapper: CoSA-style prime-factor allocation solved with PuLP + CBC.

Following CoSA (Huang et al., "CoSA: Scheduling by Constrained Optimization for Spatial
Accelerators", ISCA 2021): every rank's size is split into its prime factors, and a binary
variable ``x[r, j, l]`` puts prime factor ``j`` of rank ``r`` at one of the levels ``l`` in
{DRAM loop, buffer loop, mesh x, mesh y}. Because a tile is a product of factors, its
logarithm is linear in ``x``:

* each factor goes to exactly one level;
* mesh axes: ``sum log p * x[., ., axis] <= log(mesh[axis])``, one rank per axis;
* buffer capacity, per tensor (CoSA's log-capacity constraint): the tensor's tile
  ``sum_{r in T} log p * (x[buffer] + x[x] + x[y]) <= log(share_T * capacity / bytes)``
  with the buffer shared between tensors by ``share``;
* objective (linearised): ``z >= log(compute cycles)`` = log(total ops / PEs used) and
  ``z >= log(DRAM cycles of T)`` = log(bytes(T) / bandwidth) + the log of the DRAM loops over
  ranks not in T (the refills); where the unit reads its operands from the buffer
  (``Space.streams``), ``z >= log(stream cycles of T)`` = log(bytes(T) / port bandwidth) +
  the log of the DRAM loops over ranks not in T + those buffer loops over ranks not in T
  that sit before T's last own buffer loop (:func:`mappings._space.batch_metrics`; the
  DRAM order is chosen later, so every such DRAM loop counts); minimise ``z`` (latency), the
  largest traffic-energy log (DRAM or stream) plus ``0.01 z`` (energy), or ``z`` plus the
  mean term and the compute term (edp).

The MIP is solved for a few buffer shares; each solution's DRAM loop order is then chosen
by enumerating the orders with the vectorised estimator, and the results are ranked as in
the other mappers (:func:`mappings._mappers.finish`).

Ties are broken by the next objective as in every mapper
(:data:`mappings._mappers.TIE_BREAK`). The log-linear MIP cannot see them (many allocations
share the optimal ``z``; CBC returns any one), and a small tie-break term in its objective
made CBC 4-20x slower (tried on the test GEMMs), so each solution is instead polished by the
vectorised coordinate descent (:func:`mappings._mappers.hill_climb`), which only moves to a
mapping that ranks strictly better on (objective, tie-break): the objective never gets
worse (it may improve, where the log-linear model was off), and among mappings that tie
on it the faster (energy) or the less energy-hungry (latency) one is taken.

Coordinate descent moves one rank at a time, and the log-linear model's blind spots need
moves of two ranks at once: the MIP sees only exact divisors (CoSA's prime factors),
so a padded spatial factor (16 PEs for a rank of 40: 3 steps, the last partial) is never
proposed, and handing a mesh axis from one rank to another, or buffer room from one tile
to another, passes through an invalid mapping when done one rank at a time (the axis
taken twice, the buffer over-full). The energy objective is a sum of exponentials of the
MIP's log terms (DRAM traffic, the buffer's compute-side reads and writes, static power),
which the MIP bounds by its largest term only. So the best few distinct polished answers
are refined by a pairwise descent (:func:`pair_climb`): every joint option of two ranks,
with every DRAM order where that stays small. It moves only to a strictly better mapping,
so the MIP's answer never gets worse.
"""

from __future__ import annotations

import itertools
import math
import warnings
from typing import TYPE_CHECKING

import numpy as np

from archsim.errors import InfeasibleMappingError
from mappings._mappers import (
    _better,
    _every_order,
    _merge,
    _objective_values,
    _progress,
    _setup,
    finish,
    hill_climb,
    options,
    rank,
    register_mapper,
)
from mappings._space import Candidates, Space

if TYPE_CHECKING:
    from archsim import Architecture
    from mappings._mappers import RankedMapping
    from workloads import Workload

__all__ = ["mip_mapper", "pair_climb", "prime_factors", "solve_allocation"]

_LEVELS = ("D", "G", "X", "Y")
_PAIR_STARTS = 4
"""Distinct polished MIP answers that the pairwise descent refines (best first)."""
_PAIR_JOINT = 50_000
"""A rank pair's moves are tried with every DRAM order while (options x options x orders)
stays at most this many candidates; above it, at the current order, then every order."""


def prime_factors(n: int) -> list[int]:
    """Prime factors of ``n`` with multiplicity, ascending (``[]`` for 1)."""
    out, d = [], 2
    while d * d <= n:
        while n % d == 0:
            out.append(d)
            n //= d
        d += 1
    if n > 1:
        out.append(n)
    return out


def solve_allocation(
    space: Space,
    shares: np.ndarray,
    objective: str,
    time_limit_s: float = 10.0,
) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
    """Solve one CoSA MIP; returns per-rank (buffer factor, spatial factor, axis) or None."""
    with warnings.catch_warnings():  # PuLP 3.x announces its 4.0 API on every variable
        warnings.simplefilter("ignore", DeprecationWarning)
        return _solve(space, shares, objective, time_limit_s)


def _solve(
    space: Space, shares: np.ndarray, objective: str, time_limit_s: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
    import pulp

    prob = pulp.LpProblem("cosa", pulp.LpMinimize)
    primes = [prime_factors(int(s)) for s in space.sizes]
    x = {
        (r, j, lv): pulp.LpVariable(f"x_{r}_{j}_{lv}", cat="Binary")
        for r, ps in enumerate(primes)
        for j in range(len(ps))
        for lv in _LEVELS
    }
    a = {
        (r, lv): pulp.LpVariable(f"a_{r}_{lv}", cat="Binary")
        for r in range(len(primes))
        for lv in ("X", "Y")
    }
    mx, my = space.mesh

    def logsum(ranks: list[int], levels: tuple[str, ...]) -> pulp.LpAffineExpression:
        return pulp.lpSum(
            math.log(primes[r][j]) * x[r, j, lv]
            for r in ranks
            for j in range(len(primes[r]))
            for lv in levels
        )

    for r, ps in enumerate(primes):
        for j in range(len(ps)):
            prob += pulp.lpSum(x[r, j, lv] for lv in _LEVELS) == 1
            for lv in ("X", "Y"):
                prob += x[r, j, lv] <= a[r, lv]
    for lv, cap in (("X", mx), ("Y", my)):
        prob += pulp.lpSum(a[r, lv] for r in range(len(primes))) <= 1
        prob += logsum(list(range(len(primes))), (lv,)) <= math.log(max(cap, 1)) + 1e-9
    all_r = list(range(len(primes)))
    for ti in range(len(space.tensors)):
        own = [r for r in all_r if space.tensor_mask[ti, r]]
        room = shares[ti] * space.cap_bytes / space.tbytes[ti]
        prob += logsum(own, ("G", "X", "Y")) <= math.log(max(room, 1.0))
    # log compute cycles = log(full-array cycles * PEs) - log(PEs used)
    pes = mx * my
    comp = math.log(max(space.compute_cycles_full * pes, 1.0)) - logsum(all_r, ("X", "Y"))
    terms = []  # log seconds of each tensor's traffic
    eterms = []  # log joules of the same traffic
    for ti in range(len(space.tensors)):
        other = [r for r in all_r if not space.tensor_mask[ti, r]]
        bw = space.dram_wr_bw if space.written[ti] else space.dram_rd_bw
        e = space.e_dram_wr if space.written[ti] else space.e_dram_rd
        b = space.elems[ti] * space.tbytes[ti]
        refetch = logsum(other, ("D",))
        if space.written[ti] and other:
            # partial sums leave and come back: ~2x the traffic once a reduced rank is at DRAM
            y = pulp.LpVariable(f"partial_{ti}", cat="Binary")
            prob += refetch <= y * sum(math.log(p) for r in other for p in primes[r])
            refetch = refetch + math.log(2.0) * y
        terms.append(math.log(max(b / bw, 1e-9)) + refetch)
        eterms.append(math.log(max(b * e, 1e-30)) + refetch)
    if space.streams:
        # compute-side accesses (mappings._space.batch_metrics): each operand read from the
        # buffer (each result written back) once per iteration of the loops over ranks it
        # lacks: every such DRAM loop (its order is chosen later), and the buffer loops that
        # sit before the tensor's last own buffer loop (buffer order = rank order); one after
        # it reuses the tile held in the unit's registers
        down = min(space.buf_rd_bw, space.reg_wr_bw, space.net_bw)
        up = min(space.reg_rd_bw, space.buf_wr_bw, space.net_up_bw)
        e_down = space.e_buf_rd + space.e_reg_wr + space.e_net
        e_up = space.e_reg_rd + space.e_buf_wr + space.e_net_up
        for ti in range(len(space.tensors)):
            own = space.tensor_mask[ti]
            refills = logsum([r for r in all_r if not own[r]], ("D",))
            for r in all_r:
                later = [q for q in all_r if own[q] and q > r]
                if own[r] or not primes[r] or not later:
                    continue
                # u = 1 when an own rank after r has a buffer loop; w = r's buffer log then
                # (a binary u: a continuous one, exact too, made CBC slower on the test GEMMs)
                u = pulp.LpVariable(f"u_{ti}_{r}", cat="Binary")
                w = pulp.LpVariable(f"w_{ti}_{r}", lowBound=0)
                for q in later:
                    for j in range(len(primes[q])):
                        prob += x[q, j, "G"] <= u
                big = sum(math.log(p) for p in primes[r])
                prob += w >= logsum([r], ("G",)) - big * (1 - u)
                refills = refills + w
            b = space.elems[ti] * space.tbytes[ti]
            bw, e = (up, e_up) if space.written[ti] else (down, e_down)
            terms.append(math.log(max(b / bw, 1e-9)) + refills)
            eterms.append(math.log(max(b * e, 1e-30)) + refills)
    z = pulp.LpVariable("z")
    prob += z >= comp
    # every DRAM-level trip pays the DRAM latency once: log(trips * latency)
    prob += z >= math.log(max(space.dram_lat, 1.0)) + logsum(all_r, ("D",))
    for t in terms:
        prob += z >= t
    if objective == "latency":
        prob += z
    elif objective == "energy":
        # compute energy is fixed (real ops): the largest traffic energy (DRAM, or the
        # buffer's compute-side reads), then time (static energy)
        ze = pulp.LpVariable("ze")
        for t in eterms:
            prob += ze >= t
        prob += ze + 0.01 * z
    else:
        prob += z + pulp.lpSum(terms) * (1.0 / max(len(terms), 1)) + comp
    status = prob.solve(pulp.PULP_CBC_CMD(msg=False, timeLimit=time_limit_s))
    if pulp.LpStatus[status] != "Optimal":
        return None
    t = np.ones(len(primes), dtype=np.int64)
    s = np.ones(len(primes), dtype=np.int64)
    ax = np.zeros(len(primes), dtype=np.int8)
    for r, ps in enumerate(primes):
        for j, p in enumerate(ps):
            lv = max(_LEVELS, key=lambda v: x[r, j, v].value() or 0.0)
            if lv == "G":
                t[r] *= p
            elif lv in ("X", "Y"):
                s[r] *= p
                ax[r] = 1 if lv == "X" else 2
    return t, s, ax


def pair_climb(
    space: Space, start: Candidates, objective: str, max_rounds: int = 20
) -> tuple[Candidates, np.ndarray]:
    """Pairwise coordinate descent from ``start``'s first row: per pair of ranks try every
    joint option (and every DRAM order, see :data:`_PAIR_JOINT`); keep the best when it ranks
    strictly better on (objective, tie-break); stop when a round improves nothing.

    Returns the visited candidates (the best 400) and their ``(N, 2)`` values.
    """
    opts = [np.array(o, dtype=np.int64) for o in options(space)]
    n_ord = len(space.orders)
    cur = start.take(np.array([0]))
    cur_v = _objective_values(space, cur, objective)
    seen_c, seen_v = cur, cur_v

    def step(c: Candidates) -> bool:
        nonlocal cur, cur_v, seen_c, seen_v
        v = _objective_values(space, c, objective)
        seen_c, seen_v = _merge(seen_c, seen_v, c, v, 400)
        j = int(rank(v)[0])
        if _better(v[j], cur_v[0]):
            cur, cur_v = c.take(np.array([j])), v[j : j + 1]
            return True
        return False

    for _ in range(max_rounds):
        improved = False
        for r1, r2 in itertools.combinations(range(len(opts)), 2):
            a, b = opts[r1], opts[r2]
            joint = len(a) * len(b) * n_ord <= _PAIR_JOINT
            orders = np.arange(n_ord) if joint else cur.order
            ia = np.repeat(np.arange(len(a)), len(b) * len(orders))
            ib = np.tile(np.repeat(np.arange(len(b)), len(orders)), len(a))
            n = len(ia)
            t, s, ax = (np.repeat(x, n, 0) for x in (cur.t, cur.s, cur.axis))
            t[:, r1], s[:, r1], ax[:, r1] = a[ia, 0], a[ia, 1], a[ia, 2]
            t[:, r2], s[:, r2], ax[:, r2] = b[ib, 0], b[ib, 1], b[ib, 2]
            improved |= step(Candidates(t, s, ax, np.tile(orders, len(a) * len(b))))
            if not joint:
                improved |= step(_every_order(cur.t, cur.s, cur.axis, n_ord))
        if not improved:
            break
    return seen_c, seen_v


def _distinct_best(c: Candidates, v: np.ndarray, k: int) -> Candidates:
    """The ``k`` best distinct finite candidates of ``c`` (ranked by ``v``)."""
    keep: list[int] = []
    seen: set[tuple] = set()
    for i in rank(v).tolist():
        if len(keep) == k or not np.isfinite(v[i, 0]):
            break
        key = (c.t[i].tobytes(), c.s[i].tobytes(), c.axis[i].tobytes(), int(c.order[i]))
        if key not in seen:
            seen.add(key)
            keep.append(i)
    return c.take(np.array(keep, dtype=np.int64))


def _share_variants(n: int) -> list[np.ndarray]:
    """Buffer splits between tensors: equal, and one tensor favoured; each at half the buffer
    (room for double buffering) and at the whole buffer."""
    base = [np.full(n, 1.0 / n)]
    for i in range(n):
        for big in (0.5, 0.875):
            v = np.full(n, (1.0 - big) / max(n - 1, 1))
            v[i] = big
            base.append(v)
    return [b * half for half in (0.5, 1.0) for b in base]


@register_mapper("mip")
def mip_mapper(
    workload: Workload,
    arch: Architecture,
    *,
    objective: str = "latency",
    top: int = 5,
    seed: int = 0,
    budget: int | None = None,
    progress: bool = False,
    einsum: str | None = None,
    rescore: int = 3,
) -> list[RankedMapping]:
    """CoSA-style MIP (PuLP/CBC) over prime-factor allocations; DRAM order by enumeration.

    ``budget`` caps the number of MIP solves (default: one per buffer-share variant).
    """
    space = _setup(workload, arch, einsum)
    variants = _share_variants(len(space.tensors))
    if budget is not None:
        variants = variants[: max(1, int(budget))]
    bar = _progress(len(variants), progress, "mip", unit="solve")
    best_c, best_v = None, np.empty((0, 2))
    pol_c, pol_v = None, np.empty((0, 2))  # each solve's polished answer
    n_ord = len(space.orders)
    for shares in variants:
        sol = solve_allocation(space, shares, objective)
        if bar is not None:
            bar.update(1)
        if sol is None:
            continue
        t, s, ax = sol
        c = _every_order(t[None], s[None], ax[None], n_ord)
        v = _objective_values(space, c, objective)
        best_c, best_v = _merge(best_c, best_v, c, v, 50 * top)
        if np.isfinite(v[:, 0]).any():  # polish: break the MIP's ties (see the module doc)
            pc, pv = hill_climb(space, c.take(rank(v)[:1]), objective)
            best_c, best_v = _merge(best_c, best_v, pc, pv, 50 * top)
            j = rank(pv)[:1]
            pol_c, pol_v = _merge(pol_c, pol_v, pc.take(j), pv[j], len(variants))
    if bar is not None:
        bar.close()
    if pol_c is not None:  # pairwise moves the MIP and the polish cannot see (module doc)
        starts = _distinct_best(pol_c, pol_v, _PAIR_STARTS)
        for i in range(len(starts)):
            pc, pv = pair_climb(space, starts.take(np.array([i])), objective)
            best_c, best_v = _merge(best_c, best_v, pc, pv, 50 * top)
    if best_c is None or not np.isfinite(best_v[:, 0]).any():
        raise InfeasibleMappingError(f"the MIP found no mapping of {space.einsum} on {arch.name}")
    return finish(
        workload, arch, space, best_c, best_v, objective=objective, top=top, rescore=rescore
    )
