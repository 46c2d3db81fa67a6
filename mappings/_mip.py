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
  ranks not in T (the refills); minimise ``z`` (latency), the sum of the per-tensor traffic
  energy logs and the compute term (energy), or both (edp).

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
"""

from __future__ import annotations

import math
import warnings
from typing import TYPE_CHECKING

import numpy as np

from archsim.errors import InfeasibleMappingError
from mappings._mappers import (
    _every_order,
    _merge,
    _objective_values,
    _progress,
    _setup,
    finish,
    hill_climb,
    rank,
    register_mapper,
)
from mappings._space import Space

if TYPE_CHECKING:
    from archsim import Architecture
    from mappings._mappers import RankedMapping
    from workloads import Workload

__all__ = ["mip_mapper", "prime_factors", "solve_allocation"]

_LEVELS = ("D", "G", "X", "Y")


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
        # buffer once per iteration of the loops (DRAM and buffer) over ranks it lacks
        down = min(space.buf_rd_bw, space.reg_wr_bw, space.net_bw)
        e_down = space.e_buf_rd + space.e_reg_wr + space.e_net
        for ti in range(len(space.tensors)):
            other = [r for r in all_r if not space.tensor_mask[ti, r]]
            b = space.elems[ti] * space.tbytes[ti]
            terms.append(math.log(max(b / down, 1e-9)) + logsum(other, ("D", "G")))
            eterms.append(math.log(max(b * e_down, 1e-30)) + logsum(other, ("D", "G")))
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
    if bar is not None:
        bar.close()
    if best_c is None or not np.isfinite(best_v[:, 0]).any():
        raise InfeasibleMappingError(f"the MIP found no mapping of {space.einsum} on {arch.name}")
    return finish(
        workload, arch, space, best_c, best_v, objective=objective, top=top, rescore=rescore
    )
