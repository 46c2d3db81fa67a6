"""``gpu_gemm`` (one contraction as a cuBLAS-like GEMM: tile choice, waves, split-K) and
``gpu_unfused`` (every Einsum of any cascade as its own kernel, intermediates in HBM).

``gpu_gemm`` reads M, N, K from the cascade's ranks (:func:`mappings._gpu._spine.
contraction_shape`: M = output ranks only A has, N = only B has, K = reduced ranks, ranks
both have = batch count), never from parameter names; it refuses a cascade that is not a
single contraction. Knobs: ``tile`` (``"128x256"``...) and ``split_k`` force a configuration.

The kernel is a whole-cascade :class:`~mappings.Mapping` (:func:`gemm_mapping`), one group
over the GPU's levels:

* ``HBM``: the grid as ``spatial`` factors -- output tiles of the M and N ranks, batch ranks
  one per CTA, the split-K factor on the K rank -- and each CTA's main loop over K steps as
  the ``temporal`` factor of the K rank;
* ``SMEM``: keeps A and B (``depth`` = the K tiles in flight, the kernel's stages);
* ``RF``: the CTA tile ``Bm x Bn`` (fp32 accumulators) and the K step ``Bk``.

The recipe's own choice (:func:`archsim.gpu.choose_gemm_config`) is written as that mapping
and run back (:func:`gemm_mapping_plan`); a mapping with another tile, K step, split or
stage count runs that configuration, checked against the GPU (A/B stages in shared memory,
accumulators in the register file). cuBLAS flattens the M (and N, K) ranks into one index;
the mapping's per-rank tiles multiply to the CTA tile. A tile that covers a whole rank
shorter than the kernel's tile is padded: it reads back as the recipe's own tile.
Kernel-family facts (K step and stages of each copy path, accumulator bytes, padding
granule) are fields of :class:`GemmRecipe`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

from archsim import Architecture
from archsim.errors import MappingError
from archsim.gpu import GemmConfig, GpuModel, choose_gemm_config, dtype_bytes, gemm_costs
from archsim.gpu.gemm import copy_path, pipeline_stages
from mappings._registry import PassInfo, Plan, register_dataflow
from mappings._roles import is_contraction
from mappings._stream import numeric_params
from workloads import Workload, count

from ._common import check_knobs, dtype_of, ensure, model_for
from ._spine import _finish, einsum_ops

if TYPE_CHECKING:
    from mappings._mapping import Mapping as KernelMapping
    from workloads import Einsum

__all__ = [
    "gpu_gemm",
    "gpu_unfused",
    "GemmRecipe",
    "GEMM_RECIPE",
    "gemm_mapping",
    "gemm_mapping_plan",
]


@dataclass(frozen=True)
class GemmRecipe:
    """A cuBLAS-class GEMM kernel family as data.

    Attributes
    ----------
    k_step
        K elements per main-loop trip of an asynchronous-copy kernel (TMA or ``cp.async``).
    ldg_k_step
        K step of the register-staged kernel (rows not 16-byte aligned,
        :func:`archsim.gpu.gemm.copy_path`).
    acc_bytes
        Register bytes per accumulator (fp32) of the CTA's ``Bm x Bn`` output tile.
    granule
        Rows (columns) of the smallest MMA tile: a tile that pads a whole short rank is a
        multiple of it.
    """

    k_step: int = 64
    ldg_k_step: int = 32
    acc_bytes: int = 4
    granule: int = 64

    def pipeline(
        self, copy: str, model: GpuModel, block_m: int, block_n: int, elt: int
    ) -> tuple[int, int]:
        """(K step, stages) of a ``block_m x block_n`` kernel on ``copy`` path: stages as the
        GEMM model counts them (:func:`archsim.gpu.gemm.pipeline_stages`: TMA fills the CTA's
        shared memory, ``cp.async`` 4, register-staged 2 buffers with one tile in flight)."""
        k = self.ldg_k_step if copy == "ldg" else self.k_step
        return k, pipeline_stages(model, copy, block_m, block_n, k, elt)


GEMM_RECIPE = GemmRecipe()
"""cuBLAS on Hopper (sm90 TMA + wgmma, K step 64, stages filling shared memory; K step 32
register-staged)."""


@dataclass(frozen=True)
class _Shape:
    """A single contraction's ranks by role and its flattened GEMM shape."""

    einsum: Einsum
    m: tuple[str, ...]
    n: tuple[str, ...]
    k: tuple[str, ...]
    batch: tuple[str, ...]
    other: tuple[str, ...]
    sizes: dict[str, int]
    M: int
    N: int
    K: int
    B: int
    out_elt: int


def _shape(workload: Workload) -> _Shape:
    """The cascade's contraction by rank roles (module doc).

    Raises
    ------
    MappingError
        The cascade is not a single contraction of two operands.
    """
    cascade = workload.cascade
    es = cascade.einsums
    if len(es) != 1 or not is_contraction(es[0]) or len(es[0].inputs) < 2:
        raise MappingError(
            "gpu_gemm maps a single contraction C = sum A * B",
            path="workload.cascade",
            expected="one Einsum C[m,n] = A[m,k] * B[k,n] (two distinct operands)",
            got="; ".join(e.text or e.name for e in es[:4]) + (" ..." if len(es) > 4 else ""),
        )
    e = es[0]
    sizes = {k: int(v) for k, v in cascade.rank_sizes(numeric_params(workload.params)).items()}
    out = list(e.output.ranks)
    ra, rb = set(e.inputs[0].ranks), set(e.inputs[1].ranks)
    m = tuple(x for x in out if x in ra and x not in rb)
    n = tuple(x for x in out if x in rb and x not in ra)
    b = tuple(x for x in out if x in ra and x in rb)
    k = tuple(dict.fromkeys(x for x in e.reduce_ranks if x not in out))
    other = tuple(x for x in out if x not in ra and x not in rb)

    def prod(rs: tuple[str, ...]) -> int:
        return int(math.prod(sizes.get(x, 1) for x in rs))

    out_elt = max(1, cascade.tensors[e.name].dtype_bits // 8)
    return _Shape(e, m, n, k, b, other, sizes, prod(m), prod(n), prod(k), prod(b), out_elt)


def _tiles(ranks: tuple[str, ...], sizes: Mapping[str, int], tile: int) -> dict[str, int]:
    """Per-rank tiles, innermost rank first, whose product is ``tile`` where the ranks allow
    (each at most its rank's size)."""
    out: dict[str, int] = {}
    left = tile
    for r in reversed(ranks):
        size = sizes[r]
        t = left if size >= left else (size if left % size == 0 else math.gcd(size, left))
        out[r] = t
        left //= t
    return out


def gemm_mapping(
    workload: Workload, arch: Architecture, cfg: GemmConfig, recipe: GemmRecipe = GEMM_RECIPE
) -> KernelMapping | None:
    """The GEMM of ``cfg`` as a :class:`~mappings.Mapping` (module doc); None where the
    configuration is not a per-rank tiling of the cascade's ranks (a tile that does not
    factor over several M / N / K ranks, a padded tile other than the recipe's own)."""
    from mappings._mapping import FusionGroup, LevelMapping
    from mappings._mapping import Mapping as KernelMapping

    from ._mapping import gpu_levels, gpu_units

    sh = _shape(workload)
    dram, smem, rf = gpu_levels(arch)
    tensor, _ = gpu_units(arch)
    sizes = sh.sizes
    grid: dict[str, int] = {x: sizes[x] for x in (*sh.batch, *sh.other)}
    rf_t: dict[str, int] = {}
    for ranks, tile in ((sh.m, cfg.block_m), (sh.n, cfg.block_n), (sh.k, cfg.block_k)):
        rf_t.update(_tiles(ranks, sizes, tile))
    for x in (*sh.m, *sh.n):
        grid[x] = math.ceil(sizes[x] / rf_t[x])
    hbm_t: dict[str, int] = {}
    split_at = None
    for x in sh.k:  # the outer K loop: the split-K factor on the first rank it fits
        steps = math.ceil(sizes[x] / rf_t[x])
        if split_at is None and steps >= cfg.split_k:
            split_at = x
            grid[x] = cfg.split_k
            hbm_t[x] = math.ceil(steps / cfg.split_k)
        else:
            hbm_t[x] = steps
    if split_at is None and cfg.split_k > 1:
        return None
    e = sh.einsum
    hbm_nz = {x: f for x, f in hbm_t.items() if f > 1}
    group = FusionGroup(
        einsums=(e.name,),
        levels=(
            LevelMapping(
                level=dram,
                temporal=hbm_nz,
                order=tuple(hbm_nz),
                spatial={x: f for x, f in grid.items() if f > 1},
            ),
            LevelMapping(level=smem, keep=tuple(dict.fromkeys(r.name for r in e.inputs))),
            LevelMapping(
                level=rf, temporal={x: f for x, f in rf_t.items() if f > 1}, keep=(e.name,)
            ),
        ),
        compute=tensor.name,
        depth=cfg.stages,
    )
    mapping = KernelMapping(groups=(group,), name="gpu_gemm")
    try:
        again = read_gemm(workload, mapping, arch, model_for(arch), recipe)[0]
    except MappingError:
        return None
    return mapping if again == cfg else None


def read_gemm(
    workload: Workload,
    mapping: KernelMapping,
    arch: Architecture,
    model: GpuModel,
    recipe: GemmRecipe = GEMM_RECIPE,
) -> tuple[GemmConfig, _Shape]:
    """(configuration, contraction) a ``gpu_gemm`` mapping asks for, checked.

    Raises
    ------
    MappingError
        Not a single contraction; the general checks; a group that is not the GEMM at DRAM /
        SMEM / RF, a batch rank inside a CTA, a spatial factor below DRAM, the contraction
        off the tensor cores; a configuration other than the recipe's whose A/B stages
        overflow shared memory or whose accumulators overflow the register file.
    """
    from ._mapping import _check_structure, gpu_levels, gpu_units

    sh = _shape(workload)
    _check_structure(workload, mapping, arch)
    (group,) = mapping.groups
    dram, smem, rf = gpu_levels(arch)
    names = tuple(lm.level for lm in group.levels)
    if names != (dram, smem, rf):
        raise MappingError(
            "a GEMM kernel maps its grid at DRAM, A and B stages in shared memory and its "
            "tile in registers",
            path="groups[0].levels",
            expected=[dram, smem, rf],
            got=list(names),
        )
    for i, lm in enumerate(group.levels[1:], start=1):
        if lm.spatial:
            raise MappingError(
                "a GEMM CTA runs on one SM: its grid is the DRAM level's spatial factors",
                path=f"groups[0].levels[{i}].spatial",
                expected="{}",
                got=dict(lm.spatial),
            )
    for x in (*sh.batch, *sh.other):
        if group.tile(x, 1) != 1:
            raise MappingError(
                f"one CTA computes one {x!r} (batched GEMMs are independent)",
                path=f"groups[0].factors.{x}",
                expected=f"{x} at the {dram} level (grid)",
                got=f"{group.tile(x, 1)} per CTA",
            )
    tensor, _ = gpu_units(arch)
    if group.unit_of(sh.einsum.name) not in (None, tensor.name):
        raise MappingError(
            "gpu_gemm runs its contraction on the tensor cores",
            path="groups[0].compute",
            expected=tensor.name,
            got=group.unit_of(sh.einsum.name),
        )
    elt = dtype_bytes(dtype_of(workload))
    own = choose_gemm_config(
        sh.M, sh.N, sh.K, model, dtype=dtype_of(workload), out_elt=sh.out_elt, batch=sh.B
    )
    path, copy = copy_path(model, sh.N, sh.K, elt, sh.out_elt)
    split = int(math.prod(group.levels[0].spatial.get(x, 1) for x in sh.k))

    def tile(ranks: tuple[str, ...], whole: int, own_tile: int) -> int:
        t = int(math.prod(group.tile(x, 1) for x in ranks))
        if t < whole:
            return t
        return own_tile if own_tile >= whole else -(-whole // recipe.granule) * recipe.granule

    bm = tile(sh.m, sh.M, own.block_m)
    bn = tile(sh.n, sh.N, own.block_n)
    bk = int(math.prod(group.tile(x, 1) for x in sh.k))
    if bk >= math.ceil(sh.K / split) and own.block_k >= bk:  # a whole, padded K range
        bk = own.block_k
    stages = group.depth or pipeline_stages(model, copy, bm, bn, bk, elt)
    cfg = GemmConfig(bm, bn, bk, split, path, copy, int(stages))
    if cfg != own:
        _check_gemm_cta(cfg, model, elt, recipe)
    return cfg, sh


def _check_gemm_cta(cfg: GemmConfig, model: GpuModel, elt: int, recipe: GemmRecipe) -> None:
    hw = model.hw
    smem = cfg.stages * (cfg.block_m + cfg.block_n) * cfg.block_k * elt
    cap = int(hw.max_smem_per_cta_bytes)
    if smem > cap:
        raise MappingError(
            f"the GEMM's A/B stages overflow shared memory by {smem - cap:,} bytes "
            f"({cfg.stages} stages x ({cfg.block_m} + {cfg.block_n}) x {cfg.block_k} x {elt} B)",
            path="groups[0].levels[1] (SMEM)",
            expected=f"<= {cap:,} B per CTA on {hw.name}",
            got=f"{smem:,} B",
        )
    acc = cfg.block_m * cfg.block_n * recipe.acc_bytes
    rf_cap = int(hw.regs_per_sm) * 4
    if acc > rf_cap:
        raise MappingError(
            f"the GEMM's {cfg.block_m} x {cfg.block_n} fp32 accumulators overflow the register "
            f"file by {acc - rf_cap:,} bytes",
            path="groups[0].levels[2] (RF)",
            expected=f"<= {rf_cap:,} B per SM on {hw.name}",
            got=f"{acc:,} B",
        )


def gemm_mapping_plan(workload: Workload, mapping: KernelMapping, arch: Architecture) -> Plan:
    """The plan of a ``gpu_gemm`` mapping (:func:`read_gemm`), carrying it."""
    cfg, sh = read_gemm(workload, mapping, arch, model_for(arch))
    return replace(_gemm_plan(workload, arch, cfg, sh), mapping=mapping)


def _gemm_plan(workload: Workload, arch: Architecture, cfg: GemmConfig, sh: _Shape) -> Plan:
    """The plan of the GEMM configuration ``cfg`` (no mapping attached)."""
    from ._common import gpu_plan

    model = model_for(arch)
    costs = gemm_costs(
        sh.M,
        sh.N,
        sh.K,
        model,
        dtype=dtype_of(workload),
        out_elt=sh.out_elt,
        batch=sh.B,
        config=cfg,
    )
    meta = costs[0].meta
    elt = dtype_bytes(dtype_of(workload))
    smem = cfg.stages * (cfg.block_m + cfg.block_n) * cfg.block_k * elt
    passes = PassInfo(
        passes=1,
        buffer_bytes=float(smem),
        buffer_formula=f"stages x (Bm + Bn) x Bk x bytes = "
        f"{cfg.stages}*({cfg.block_m}+{cfg.block_n})*{cfg.block_k}*{elt}",
    )
    num = numeric_params(workload.params)
    return _finish(
        "gpu_gemm",
        workload,
        arch,
        model,
        costs,
        einsum_ops(count(workload.cascade, num), [sh.einsum.name]),
        passes=passes,
        notes=f"gpu_gemm: {sh.M}x{sh.N}x{sh.K} x{sh.B}, tile {meta['tile']}, "
        f"split_k {meta['split_k']}",
        extra_meta={
            "tile": meta["tile"],
            "split_k": meta["split_k"],
            "gemm_shape": {"M": sh.M, "N": sh.N, "K": sh.K, "batch": sh.B},
            "cta": {
                "block_m": cfg.block_m,
                "block_n": cfg.block_n,
                "block_k": cfg.block_k,
                "stages": cfg.stages,
                "smem_bytes": smem,
                "path": cfg.path,
                "copy": cfg.copy,
            },
        },
        gpu_plan=gpu_plan,
    )


@register_dataflow("gpu_gemm")
def gpu_gemm(workload: Workload, arch: Architecture, knobs: Mapping[str, object]) -> Plan:
    """cuBLAS-like GEMM on the GPU (single-contraction cascades): the recipe's (or the knobs')
    configuration written as a Mapping and run back."""
    check_knobs(knobs, ("tile", "split_k"), "gpu_gemm")
    model = model_for(arch)
    sh = _shape(workload)
    dtype = dtype_of(workload)
    cfg = choose_gemm_config(sh.M, sh.N, sh.K, model, dtype=dtype, out_elt=sh.out_elt, batch=sh.B)
    if "tile" in knobs or "split_k" in knobs:
        tile = str(knobs.get("tile", "128x128"))
        parts = tile.split("x")
        ensure(
            len(parts) == 2 and all(p.isdigit() for p in parts),
            "bad knob",
            "knobs.tile",
            "'BMxBN' such as '128x256'",
            tile,
        )
        sk = knobs.get("split_k", 1)
        top = max(sh.K // GEMM_RECIPE.k_step, 1)
        ok = isinstance(sk, int) and not isinstance(sk, bool) and 1 <= sk <= top
        ensure(ok, "bad knob", "knobs.split_k", f"int in [1, {top}] (K / 64)", sk)
        assert isinstance(sk, int)  # ensure() above raised otherwise
        path, copy = copy_path(model, sh.N, sh.K, dtype_bytes(dtype), sh.out_elt)
        bm, bn = int(parts[0]), int(parts[1])
        k_step, stages = GEMM_RECIPE.pipeline(copy, model, bm, bn, dtype_bytes(dtype))
        cfg = GemmConfig(bm, bn, k_step, sk, path, copy, stages)
    mapping = gemm_mapping(workload, arch, cfg)
    if mapping is None:  # not a per-rank tiling of these ranks: run it without a mapping
        return _gemm_plan(workload, arch, cfg, sh)
    return gemm_mapping_plan(workload, mapping, arch)


@register_dataflow("gpu_unfused")
def gpu_unfused(workload: Workload, arch: Architecture, knobs: Mapping[str, object]) -> Plan:
    """Every Einsum outside any fused loop nest: contractions as (batched) GEMMs, others
    memory-bound (runs of them one kernel with ``fuse_elementwise``, the default), every
    intermediate between kernels written to and read back from HBM. Any cascade. The kernel
    split is a Mapping (one group per kernel), run back by
    :func:`~mappings._gpu._unfused_mapping.unfused_mapping_plan`."""
    from ._unfused_mapping import unfused_mapping, unfused_mapping_plan

    check_knobs(knobs, ("fuse_elementwise",), "gpu_unfused")
    model_for(arch)
    fuse = bool(knobs.get("fuse_elementwise", True))
    mapping = unfused_mapping(workload, arch, fuse_elementwise=fuse)
    return unfused_mapping_plan(workload, mapping, arch)
