"""The candidate spaces the GPU ``fusion`` mapper searches (:mod:`mappings._gpu.search`).

Every candidate is a whole-cascade :class:`~mappings.Mapping` that
:func:`~mappings._gpu._mapping.gpu_mapping_plan` runs, built lazily (:class:`Candidate`):

* **prefill** (query length > 1): each fused family (``flash2``, ``flash3``,
  ``mem_efficient``) x query block :data:`BLOCK_M` x key tile :data:`BLOCK_N` x K/V stages
  :data:`STAGES` (:func:`fused_space`);
* **decode** (query length <= :data:`~mappings._gpu.decode.MAX_DECODE_QUERY`): each decode
  kernel (:data:`DECODE_FAMILIES`) x key tile ``m0`` in :data:`DECODE_BLOCK_N` x K/V stages x
  query heads per CTA (GQA packing: the divisors of the query heads sharing a K/V stream, for
  the kernels that pack them) x key split count ``m1`` over CTAs (the kernels that split)
  (:func:`decode_space`). The split count is searched on :data:`SPLIT_GRID` first, then each
  splitting kernel's best :data:`REFINE_CONFIGS` CTA shapes walk their split count to its
  local optimum over every *canonical* count (:func:`canonical_splits`,
  :func:`descend_splits`): a documented heuristic, since the split count is the one rank
  whose values are too many to enumerate for every CTA shape (on h100, against every
  canonical count of every CTA shape: at 32k keys the overall best equals the exhaustive
  one for MHA, GQA and MLA decode, each kernel's best within 0.04%; at 2k keys (GQA) each
  kernel's best equals it, a test);
* **sparse** (a block or M x 1 slice sparsity annotation on the attention core): each sparse
  kernel (``block_sparse`` on FlexAttention / flash3 / flash2, ``fg_sparse``) x query block x
  key tile x stages, the sparsity binding in ``skip`` (:func:`sparse_space`);
* **backward** (a gradient cascade: ``mha_bwd``, ``gqa_bwd``, a user's own): each family's
  key-outer backward kernel (:data:`~mappings._gpu.backward.BWD_RECIPES`) x query tile
  ``Bm`` x key block ``Bn`` x ``Q``/``dO`` stages x MMA warps, the ones the family
  instantiates (:attr:`~mappings._gpu.backward.BackwardRecipe.block_ms`, ``block_ns``,
  ``stage_choices``, ``warp_choices``; warps from the tile where the family sets them so,
  ``warp_tile``), each CTA checked for shared memory, registers and threads
  (:func:`~mappings._gpu.backward.backward_cta`) (:func:`backward_space`); the forward
  spaces are not searched for a gradient cascade;
* the recipes' own mappings (:func:`recipe_seeds`), so the best mapping is never worse than a
  recipe (a recipe's tile in the grid is the same mapping: one evaluation), and
  ``gpu_unfused``.

Pruning, exact where it claims to be: a tile beyond a rank's length is the capped tile, and
two candidates that build the same mapping are one (symmetric choices; the driver dedupes on
the mapping itself); a split count whose last CTAs would get no key tile is the canonical
count with the same chunk; ``flash2`` at query length 1 runs the same decode kernel as
``split_kv`` (kept once); and a CTA shape that overflows shared memory or registers is
dropped for every split count and packing (``Candidate.cta``: the capacity check depends on
the tile, stages and kernel only).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from functools import partial
from typing import TYPE_CHECKING, Literal

from archsim.errors import MappingError

from ._mapping import FUSED, fused_mapping

if TYPE_CHECKING:
    from archsim import Architecture
    from mappings._mapping import Mapping
    from mappings._roles import AttentionRoles
    from workloads import Workload

__all__ = [
    "BLOCK_M",
    "BLOCK_N",
    "STAGES",
    "DECODE_BLOCK_N",
    "DECODE_FAMILIES",
    "SPLIT_GRID",
    "REFINE_CONFIGS",
    "Candidate",
    "canonical_splits",
    "descend_splits",
    "DecodeConfig",
    "fused_space",
    "decode_space",
    "decode_candidate",
    "sparse_space",
    "recipe_seeds",
    "has_sparsity",
    "decode_kernel_fits",
    "backward_space",
]

BLOCK_M = (64, 128, 192, 256)
"""Query rows per CTA tried (multiples of a warpgroup's 64-row wgmma tile)."""
BLOCK_N = (32, 64, 80, 96, 128, 176, 256)
"""Keys per tile tried (the sizes the FlashAttention kernels instantiate)."""
STAGES = (1, 2, 3, 4)
"""K/V pipeline stages tried."""
DECODE_BLOCK_N = (32, 64, 128, 256)
"""Key tiles (``m0``) a decode CTA tries (the split-KV kernels' instantiations)."""
DECODE_FAMILIES = ("split_kv", "flash3", "lean", "mem_efficient")
"""Decode kernels searched (mapping names, :data:`mappings._gpu.decode.DECODE_MAPPINGS`):
FA2's split-KV kernel, cuDNN's Hopper decode kernel, Lean Attention's stream-K kernel, the
cutlass forward kernel (no packing, no split). ``flash2`` at query length 1 is ``split_kv``."""
SPLIT_GRID = (1, 2, 4, 8, 16, 32, 64, 128)
"""Key split counts tried for every CTA shape (each taken in its canonical form)."""
REFINE_CONFIGS = 4
"""CTA shapes (key tile, stages, heads per CTA) per splitting kernel whose split count is
walked to its local optimum over every canonical count after the grid."""


@dataclass(frozen=True)
class DecodeConfig:
    """A decode CTA shape whose key split count is searched: kernel (mapping name), key tile,
    K/V stages, query heads per CTA, key tiles per K/V stream, most splits the kernel takes."""

    name: str
    block_n: int
    stages: int
    heads_per_cta: int
    n_blocks: int
    max_splits: int


@dataclass(frozen=True)
class Candidate:
    """One mapping of the space, built on demand.

    Attributes
    ----------
    name
        The mapping's name (kernel family or recipe: a key of
        :data:`~mappings._gpu._mapping.GPU_MAPPINGS`).
    build
        Returns the mapping; raises :class:`MappingError` for a tile the cascade does not take.
    kind
        ``fused`` (a prefill kernel), ``backward`` (a key-outer backward kernel),
        ``decode``, ``sparse``, ``chunked`` (chunked linear attention) or ``unfused``.
    cta
        Capacity key: candidates with the same key ask the GPU for the same shared memory and
        registers, so one that overflows drops them all.
    kernel
        Decode: the kernel whose own CTA the candidate starts from (name, and whether it runs
        the family's forward CTA); when that CTA cannot exist on the GPU at this head dim
        (:func:`decode_kernel_fits`), every candidate of the kernel is dropped.
    config
        Decode kernels that split the keys: the CTA shape whose split count
        :func:`descend_splits` walks; None otherwise.
    splits
        The key split count (decode), else 1.
    seed
        The recipe's own mapping (its dataflow name).
    """

    name: str
    build: Callable[[], Mapping]
    kind: Literal["fused", "backward", "decode", "sparse", "chunked", "unfused"]
    cta: tuple[object, ...] | None = None
    kernel: tuple[object, ...] | None = None
    config: DecodeConfig | None = None
    splits: int = 1
    seed: str | None = field(default=None)


def canonical_splits(n_blocks: int, cap: int) -> list[int]:
    """Split counts of ``n_blocks`` key tiles, at most ``cap``, that leave no CTA empty: ``s``
    with ``s == ceil(n_blocks / ceil(n_blocks / s))`` (any other count has the same chunk per
    CTA as the canonical count below it, plus empty CTAs), ascending."""
    top = max(1, min(n_blocks, cap))
    return sorted({math.ceil(n_blocks / math.ceil(n_blocks / s)) for s in range(1, top + 1)})


def _canonical(s: int, n_blocks: int) -> int:
    s = max(1, min(s, n_blocks))
    return math.ceil(n_blocks / math.ceil(n_blocks / s))


def descend_splits(start: int, n_blocks: int, cap: int, cost: Callable[[int], float | None]) -> int:
    """Walk the canonical split counts of ``n_blocks`` key tiles (at most ``cap``) from
    ``start`` to a local minimum of ``cost`` (None: the count does not run): down while it
    improves, else up while it improves; the count reached."""
    c = canonical_splits(n_blocks, cap)
    if start not in c:
        return start
    best = cost(start)
    if best is None:
        return start
    i = c.index(start)
    for step in (-1, 1):
        j = i
        while 0 <= j + step < len(c):
            v = cost(c[j + step])
            if v is None or v >= best:
                break
            best, j = v, j + step
        if j != i:
            return c[j]
    return start


def fused_space(
    workload: Workload, arch: Architecture, roles: AttentionRoles, nq: int, nk: int
) -> Iterator[Candidate]:
    """Prefill fused kernels: family x block_m x block_n x stages (tiles capped at the query
    and key lengths; a capped duplicate is skipped)."""
    from .attention import RECIPES

    for fam in FUSED:
        for bm, bn, st, key in _tile_grid(nq, nk):
            build = partial(
                fused_mapping, workload, arch, roles, RECIPES[fam],
                block_m=bm, block_n=bn, stages=st,
            )  # fmt: skip
            yield Candidate(fam, build, "fused", cta=(fam, *key))


def backward_space(
    workload: Workload, arch: Architecture, roles: AttentionRoles
) -> Iterator[Candidate]:
    """Key-outer backward kernels of a gradient cascade (``roles``: its backward roles,
    :func:`~mappings._gpu.backward.backward_roles`): every family x the query tiles, key
    blocks, stages and MMA warps it instantiates (the family's own warps first, then its
    :attr:`~mappings._gpu.backward.BackwardRecipe.warp_choices`; a family whose warps follow
    its tile runs the tile's), tiles capped at the query and key lengths (a capped duplicate
    is skipped: the same CTA). A warp count that does not tile the capped tile is left out
    (:func:`~mappings._gpu.backward.warp_layout`); the family's own warp count is named by
    no spatial factor (the default mapping's form)."""
    from mappings._stream import numeric_params

    from ._common import dtype_of, model_for
    from .backward import BWD_RECIPES, backward_mapping, warp_layout

    sizes = workload.cascade.rank_sizes(numeric_params(workload.params))
    rows, keys = int(sizes[roles.key]), int(sizes[roles.query])  # streamed queries, CTA keys
    d = int(math.prod(int(sizes.get(r, 1)) for r in roles.features)) or 1
    hw = model_for(arch).hw
    elt = _elt(dtype_of(workload))
    for fam, recipe in BWD_RECIPES.items():
        assert recipe.tiling is not None
        base = recipe.tiling(hw, d, elt)
        own = max(1, base.threads // 32 - recipe.producer_warps)
        warp_counts: list[int | None] = [None]
        if recipe.warp_tile is None:
            warp_counts += [w for w in recipe.warp_choices if w != own]
        seen: set[tuple[int, int, int, int | None]] = set()
        for bm in recipe.block_ms:
            for bn in recipe.block_ns:
                tile = {"keys": min(bn, keys), "rows": min(bm, rows)}
                for wp in warp_counts:
                    if wp is not None:
                        try:
                            warp_layout(wp, tile)
                        except MappingError:
                            continue  # these warps cannot tile this CTA's tile
                    for st in recipe.stage_choices:
                        key = (tile["rows"], tile["keys"], st, wp)
                        if key in seen:
                            continue
                        seen.add(key)
                        build = partial(
                            backward_mapping, workload, arch, roles, recipe,
                            block_m=bm, block_n=bn, stages=st, warps=wp,
                        )  # fmt: skip
                        yield Candidate(fam, build, "backward", cta=(fam, "bwd", *key))


def _elt(dtype: str) -> int:
    from archsim.gpu import dtype_bytes

    return int(dtype_bytes(dtype))


def _tile_grid(nq: int, nk: int) -> Iterator[tuple[int, int, int, tuple[int, int, int]]]:
    """(block_m, block_n, stages, key) over the tile grid; ``key`` caps the tile at the query
    and key lengths, and a tile whose capped key was seen is skipped (it is the same CTA)."""
    seen: set[tuple[int, int, int]] = set()
    for bm in BLOCK_M:
        for bn in BLOCK_N:
            for st in STAGES:
                key = (min(bm, nq), min(bn, nk), st)
                if key not in seen:
                    seen.add(key)
                    yield bm, bn, st, key


def _divisors(n: int) -> list[int]:
    return [d for d in range(1, n + 1) if n % d == 0]


def decode_candidate(
    workload: Workload,
    arch: Architecture,
    roles: AttentionRoles,
    name: str,
    *,
    block_n: int,
    stages: int,
    heads_per_cta: int,
    splits: int,
    key_len: int | None = None,
) -> Candidate:
    """The decode kernel ``name`` with this key tile, stages, packing and split count
    (``key_len``: keys a K/V stream streams, if known)."""
    from ._mapping import streamed_key
    from .decode import DECODE_MAPPINGS, DECODE_RECIPES, decode_mapping

    recipe = DECODE_RECIPES[DECODE_MAPPINGS[name]]
    unsplit = recipe.unsplit is not None and splits <= 1  # runs the family's forward CTA
    if key_len is None:
        key_len = streamed_key(workload, roles)[1]
    n_blocks = math.ceil(key_len / block_n)
    build = partial(
        decode_mapping, workload, arch, roles, name,
        block_n=block_n, splits=splits, heads_per_cta=heads_per_cta, stages=stages,
    )  # fmt: skip
    config = None
    if recipe.split == "heuristic":
        config = DecodeConfig(name, block_n, stages, heads_per_cta, n_blocks, recipe.max_splits)
    return Candidate(
        name,
        build,
        "decode",
        cta=(name, block_n, stages, unsplit),
        kernel=(name, unsplit),
        config=config,
        splits=splits,
    )


def decode_space(
    workload: Workload, arch: Architecture, roles: AttentionRoles
) -> Iterator[Candidate]:
    """Decode kernels: :data:`DECODE_FAMILIES` x key tile x stages x heads per CTA x the split
    counts of :data:`SPLIT_GRID` (canonical, at most the kernel's ``max_splits``)."""
    from mappings._stream import numeric_params

    from ._mapping import streamed_key
    from .decode import DECODE_MAPPINGS, DECODE_RECIPES

    sizes = workload.cascade.rank_sizes(numeric_params(workload.params))
    query_len = int(sizes[roles.query])
    pack = int(math.prod(int(sizes.get(r, 1)) for r in roles.query_heads))
    key_len = streamed_key(workload, roles)[1]
    tiles = sorted({min(bn, key_len) for bn in DECODE_BLOCK_N})
    # above one query position flash3 / mem_efficient mappings run their prefill kernels
    names = DECODE_FAMILIES if query_len == 1 else ("split_kv", "lean")
    for name in names:
        recipe = DECODE_RECIPES[DECODE_MAPPINGS[name]]
        # a CTA has at most 128 query rows (the largest MMA tile of any decode kernel's CTA;
        # the plan checks the kernel's own)
        packs = [h for h in _divisors(pack) if h * query_len <= 128]
        packs = packs if recipe.packs_query_heads else [1]
        for bn in tiles:
            n_blocks = math.ceil(key_len / bn)
            if recipe.split == "heuristic":
                splits = sorted({_canonical(s, n_blocks) for s in SPLIT_GRID})
                splits = [s for s in splits if s <= recipe.max_splits]
            else:
                splits = [1]
            for st in STAGES:
                for hpc in packs:
                    for s in splits:
                        yield decode_candidate(
                            workload, arch, roles, name,
                            block_n=bn, stages=st, heads_per_cta=hpc, splits=s,
                            key_len=key_len,
                        )  # fmt: skip


def decode_kernel_fits(
    workload: Workload, arch: Architecture, roles: AttentionRoles, kernel: tuple[object, ...]
) -> bool:
    """Whether the decode kernel ``kernel`` (name, runs the forward CTA) has a CTA on this GPU
    at the cascade's head dim (its own tile: :func:`mappings._gpu.decode.own_tiling`); every
    candidate starts from it, so when it cannot exist none of them runs."""
    from archsim.errors import InfeasibleMappingError
    from archsim.gpu import dtype_bytes
    from mappings._stream import numeric_params

    from ._common import dtype_of, model_for
    from .decode import DECODE_MAPPINGS, DECODE_RECIPES, own_tiling

    name, unsplit = kernel
    sizes = workload.cascade.rank_sizes(numeric_params(workload.params))
    d = int(math.prod(int(sizes.get(r, 1)) for r in roles.features)) or 1
    elt = dtype_bytes(dtype_of(workload))
    recipe = DECODE_RECIPES[DECODE_MAPPINGS[str(name)]]
    try:
        own_tiling(recipe, model_for(arch), d, elt, splits=1 if unsplit else 2)
    except InfeasibleMappingError:
        return False
    return True


def has_sparsity(workload: Workload, roles: AttentionRoles) -> bool:
    """Whether the attention core carries a block or M x 1 slice sparsity annotation."""
    from .sparse import sparse_block

    try:
        sparse_block(workload, roles, "block")
    except MappingError:
        return False
    return True


def sparse_space(
    workload: Workload, arch: Architecture, roles: AttentionRoles, nq: int, nk: int
) -> Iterator[Candidate]:
    """Sparse fused kernels: every :data:`~mappings._gpu.sparse.SPARSE_KINDS` kernel x
    block_m x block_n x stages, skipping the cascade's sparsity (a kernel that cannot skip
    the cascade's kind refuses it)."""
    from .sparse import SPARSE_KINDS

    for name, sp in SPARSE_KINDS.items():
        for bm, bn, st, key in _tile_grid(nq, nk):
            build = partial(
                fused_mapping, workload, arch, roles, sp.kernel,
                block_m=bm, block_n=bn, stages=st, name=name,
            )  # fmt: skip
            yield Candidate(name, build, "sparse", cta=(name, *key))


VALUE_BLOCKS = (16, 32, 64, 128)
"""Value features per CTA the chunked linear-attention kernels are searched over (Lightning
Attention-2's ``BLOCK_MODEL`` is 32; a larger block recomputes the scores fewer times and holds
a larger state)."""
CHUNK_STAGES = (1, 2, 3)
"""Chunk loads in flight searched (Triton's ``num_stages``; shared memory checked per CTA)."""


def is_chunked(workload: Workload) -> bool:
    """Whether the cascade is chunked linear attention (:func:`.linear.chunk_roles`)."""
    from .linear import chunk_roles

    try:
        chunk_roles(workload.cascade)
    except MappingError:
        return False
    return True


def chunked_space(workload: Workload, arch: Architecture) -> Iterator[Candidate]:
    """The chunked linear-attention kernels (:mod:`mappings._gpu.linear_mapping`): the fused and
    the materialized form x value block in :data:`VALUE_BLOCKS` x chunk stages in
    :data:`CHUNK_STAGES` (a block beyond the value features is the capped one: the same mapping,
    evaluated once), and the staged form."""
    from .linear import RECIPE
    from .linear_mapping import LINEAR, STAGED, chunk_mapping

    for form in ("fused", "materialized"):
        for vb in VALUE_BLOCKS:
            for st in CHUNK_STAGES:
                stages = [st] if form == "fused" else [st, 1]
                build = partial(
                    chunk_mapping, workload, arch, replace(RECIPE, value_block=vb),
                    form=form, stages=stages,
                )  # fmt: skip
                yield Candidate(LINEAR, build, "chunked", cta=(LINEAR, form, vb, st))
    yield Candidate(STAGED, partial(chunk_mapping, workload, arch, form="staged"), "chunked")


def recipe_seeds(
    workload: Workload,
    arch: Architecture,
    *,
    prefill: bool,
    decode: bool,
    single_query: bool,
    sparse: bool,
    backward: bool = False,
    chunked: bool = False,
) -> Iterator[Candidate]:
    """The recipes' own mappings for this cascade, as their dataflows build them: the prefill
    kernels (``flash2``, ``flash3``, ``mem_efficient``; on a gradient cascade, ``backward``,
    their key-outer backward kernels at the family's own tile), the decode ones (``split_kv``,
    ``lean``; at query length 1 also the ``flash3`` / ``mem_efficient`` decode kernels) and
    the sparse ones (``block_sparse`` on each family, ``fg_sparse``), the chunked
    linear-attention ones (``linear_chunked`` and its materialized and staged forms). A recipe
    that refuses the cascade or does not fit raises when built (the driver records why)."""
    from mappings._api import plan_for

    from .sparse import SPARSE_KINDS

    seeds: list[
        tuple[
            str,
            str,
            dict[str, object],
            Literal["fused", "backward", "decode", "sparse", "chunked"],
        ]
    ] = []
    if chunked:
        forms: tuple[tuple[str, dict[str, object]], ...] = (
            ("", {}),
            (":materialized", {"materialize": 1}),
            (":staged", {"staged": 1}),
        )
        seeds += [(f"linear_chunked{tag}", "linear_chunked", k, "chunked") for tag, k in forms]
    if backward:
        seeds += [(f, f, {}, "backward") for f in FUSED]
    if prefill:
        seeds += [(f, f, {}, "fused") for f in FUSED]
    if decode:
        names = DECODE_FAMILIES if single_query else ("split_kv", "lean")
        seeds += [(n, n, {}, "decode") for n in names]
    if sparse:
        for name in SPARSE_KINDS:
            df, _, fam = name.partition(":")
            seeds.append((name, df, {"family": fam} if fam else {}, "sparse"))

    def build(df: str, knobs: dict[str, object]) -> Mapping:
        plan = plan_for(arch, workload, dataflow=df, knobs=knobs)[1]
        if plan.mapping is None:
            raise MappingError(
                f"the {df} recipe's plan carries no mapping",
                path=f"dataflow.{df}",
                expected="a mapping",
                got=None,
            )
        return plan.mapping

    for name, df, knobs, kind in seeds:
        yield Candidate(name, partial(build, df, knobs), kind, seed=name)
