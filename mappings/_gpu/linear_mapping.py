"""``linear_chunked`` written as the project's :class:`~mappings.Mapping` (data), and run back.

The chunked kernels of :mod:`mappings._gpu.linear` over the GPU's levels, outermost first:

* ``HBM``: the grid as ``spatial`` factors -- the ranks one CTA fixes (batch, heads) and the
  value-feature blocks (``ceil(Dv / value_block)``) -- and the CTA's walk over the chunks as
  ``temporal`` factors. The chunk walk is one loop however many chunk ranks the group's Einsums
  name: the query chunk, the key chunk and the unsplit sequence ranks (a gate prefix over
  ``p``) advance together, because the cascade's state ties them (``OX[.., pc, ..]`` reads the
  state after ``pc`` key chunks, ``ST[.., mc+1, ..]``). Each such rank carries the chunk count
  at this level; one trip of the walk is one chunk of each;
* ``SMEM``: keeps what the kernel reads from HBM (the cascade's inputs; the per-chunk states
  in the materialized form's output kernel), ``depth`` chunks of them in flight;
* ``RF``: one chunk tile (``C`` query and key positions, the whole feature ranks, one value
  block) and every intermediate; the element-wise Einsums run on the CUDA cores.

``skip`` is empty: a chunk's masked half of the score tile is computed (and zeroed), not
skipped. The three forms are three structures:

* **fused** (Lightning Attention-2): one group of every Einsum, the state on chip;
* **materialized** (FLA ``chunk``): two groups -- the state kernel (the state Einsum and the
  Einsums only it needs) walking the chunks, then the output kernel (every other Einsum)
  with the chunks in its grid, one CTA per chunk and value block. Einsums both paths need
  (a gate prefix) are listed in the state group and recomputed by the output kernel (the
  recipe's fact, :func:`mappings._gpu.linear._output_path`), not read from HBM;
* **staged** (the GLA paper's released code, name ``linear_chunked:staged``): one group per
  Einsum, every intermediate through HBM; its launch facts (relayout copies, score passes,
  secondary chunking) are :class:`~mappings._gpu.linear_staged.StagedRecipe`'s.

A mapping may change the value block (the RF tile of the value features, with the grid's
value blocks to match) and each group's ``depth`` (chunk stages; checked against shared
memory). Anything else the kernels cannot run differently is refused by
:func:`read_chunk_mapping`, naming the first field that differs from the form's structure.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import replace
from typing import TYPE_CHECKING, Literal

from archsim.errors import MappingError
from mappings._mapping import FusionGroup, LevelMapping, Mapping
from mappings._roles import is_contraction
from mappings._stream import numeric_params
from mappings._tensors import group_ranks

from ._mapping import _check_structure, _kernel_group, _nz, gpu_levels, gpu_units
from .linear import RECIPE, ChunkRecipe, ChunkRoles, chunk_roles, state_path

if TYPE_CHECKING:
    from archsim import Architecture
    from mappings._registry import Plan, WorkloadLike

__all__ = [
    "LINEAR",
    "STAGED",
    "ChunkForm",
    "chunk_mapping",
    "read_chunk_mapping",
    "chunk_mapping_plan",
]

LINEAR = RECIPE.dataflow
"""Mapping name of the fused and the materialized form (one group or two)."""
STAGED = f"{RECIPE.dataflow}:staged"
"""Mapping name of the staged form (one group per Einsum)."""

ChunkForm = Literal["fused", "materialized", "staged"]


def _walk_ranks(cr: ChunkRoles) -> tuple[str, ...]:
    """Ranks that advance with the chunk walk: the chunk ranks and the unsplit sequences."""
    return (cr.query_chunk, cr.key_chunk, cr.query_parent, cr.key_parent)


def _chunk_group(
    workload: WorkloadLike,
    arch: Architecture,
    cr: ChunkRoles,
    names: Sequence[str],
    *,
    value_block: int,
    chunks_in_grid: bool,
    depth: int,
) -> FusionGroup:
    """One chunk kernel over ``names`` (module doc)."""
    dram, smem, rf = gpu_levels(arch)
    tensor, cuda = gpu_units(arch)
    cas = workload.cascade
    sizes = cas.rank_sizes(numeric_params(workload.params))
    chunk, chunks = int(sizes[cr.key_pos]), int(sizes[cr.key_chunk])
    probe = FusionGroup(einsums=tuple(names), levels=(LevelMapping(level=dram),))
    ranks = group_ranks(workload, probe)  # type: ignore[arg-type]  # Workload or FileWorkload
    grid: dict[str, int] = {r: n for r, n in ranks.items() if r in cr.per_cta}
    walk: dict[str, int] = {}
    tile: dict[str, int] = {}
    for r, n in ranks.items():
        if r in grid:
            continue
        if r in _walk_ranks(cr):
            (grid if chunks_in_grid else walk)[r] = chunks
            if r in (cr.query_parent, cr.key_parent):
                tile[r] = chunk
        elif r in cr.value_features:
            tile[r] = min(value_block, n)
            grid[r] = math.ceil(n / tile[r])
        else:
            tile[r] = n
    by = {e.name: e for e in cas.einsums}
    made = [by[n].output.name for n in names]
    reads = dict.fromkeys(ref.name for n in names for ref in by[n].inputs)
    from_hbm = tuple(t for t in reads if t not in made and t in cas.tensors)
    later = {ref.name for e in cas.einsums if e.name not in names for ref in e.inputs}
    on_chip = tuple(t for t in made if t not in later and t not in cas.outputs)
    return FusionGroup(
        einsums=tuple(names),
        levels=(
            LevelMapping(level=dram, temporal=_nz(walk), order=tuple(_nz(walk)), spatial=_nz(grid)),
            LevelMapping(level=smem, keep=from_hbm),
            LevelMapping(level=rf, temporal=_nz(tile), keep=tuple(made)),
        ),
        on_chip=on_chip,
        compute=tensor.name,
        units={n: cuda.name for n in names if not is_contraction(by[n])},
        skip=(),
        depth=int(depth),
    )


def chunk_mapping(
    workload: WorkloadLike,
    arch: Architecture,
    recipe: ChunkRecipe = RECIPE,
    *,
    form: ChunkForm = "fused",
    stages: Sequence[int] | None = None,
) -> Mapping:
    """The kernels of ``form`` as a :class:`Mapping` (module doc); ``stages``: each kernel's
    chunk stages (default: the recipe's)."""
    cas = workload.cascade
    cr = chunk_roles(cas)
    names = [e.name for e in cas.einsums]
    if form == "staged":
        groups = tuple(_kernel_group(workload, arch, (n,)) for n in names)  # type: ignore[arg-type]  # Workload or FileWorkload
        return Mapping(groups=groups, name=STAGED)
    if form == "fused":
        parts: list[tuple[list[str], bool]] = [(names, False)]
    else:
        state = state_path(cas, cr)
        parts = [(state, False), ([n for n in names if n not in state], True)]
    depths = list(stages) if stages is not None else [recipe.stages] * len(parts)
    groups = tuple(
        _chunk_group(
            workload,
            arch,
            cr,
            ns,
            value_block=recipe.value_block,
            chunks_in_grid=in_grid,
            depth=d,
        )
        for (ns, in_grid), d in zip(parts, depths, strict=True)
    )
    return Mapping(groups=groups, name=LINEAR)


def _value_block(mapping: Mapping, cr: ChunkRoles, recipe: ChunkRecipe) -> int:
    """The value block a mapping's register tiles name (the recipe's where none does)."""
    for group in mapping.groups:
        last = group.levels[-1] if len(group.levels) > 1 else None
        for f in cr.value_features:
            if last is not None and f in last.temporal:
                return int(last.temporal[f])
    return recipe.value_block


def _first_difference(got: object, want: object, path: str) -> tuple[str, object, object] | None:
    """(path, expected, got) of the first field where two mapping dumps differ (a factor of 1
    is the same as none)."""
    if path.endswith((".temporal", ".spatial")) and isinstance(want, dict | None):
        want = {k: v for k, v in (want or {}).items() if v != 1}
        got = {k: v for k, v in got.items() if v != 1} if isinstance(got, dict) else got
    if isinstance(want, dict) and isinstance(got, dict):
        for k in dict.fromkeys([*want, *got]):
            d = _first_difference(got.get(k), want.get(k), f"{path}.{k}" if path else str(k))
            if d is not None:
                return d
        return None
    if isinstance(want, list | tuple) and isinstance(got, list | tuple) and len(want) == len(got):
        for i, (g, w) in enumerate(zip(got, want, strict=True)):
            d = _first_difference(g, w, f"{path}[{i}]")
            if d is not None:
                return d
        return None
    return None if got == want else (path, want, got)


def read_chunk_mapping(
    workload: WorkloadLike, mapping: Mapping, arch: Architecture
) -> tuple[ChunkForm, ChunkRecipe, tuple[int, ...]]:
    """(form, recipe with the mapping's value block, stages per kernel) of a
    ``linear_chunked`` mapping.

    Raises
    ------
    MappingError
        The general checks (Einsums, levels, units, factors); a cascade that is not chunked
        linear attention (:func:`~mappings._gpu.linear.chunk_roles`); a group count other than
        the forms'; any field other than the value block and the depths that differs from the
        form's structure (path, expected and given value of the first such field).
    """
    cr = chunk_roles(workload.cascade)
    if mapping.name == STAGED:
        form: ChunkForm = "staged"
    elif mapping.name == LINEAR and len(mapping.groups) in (1, 2):
        form = "fused" if len(mapping.groups) == 1 else "materialized"
    else:
        raise MappingError(
            "a linear_chunked mapping is one group (fused) or two (the state kernel, then the "
            "output kernel: materialized); the staged form is named linear_chunked:staged",
            path="groups",
            expected="1 or 2 groups",
            got=f"{len(mapping.groups)} groups",
        )
    _check_structure(workload, mapping, arch)  # type: ignore[arg-type]  # Workload or FileWorkload
    vb = _value_block(mapping, cr, RECIPE)
    if vb < 1:
        raise MappingError(
            "value_block must be positive", path="groups[0]", expected=">= 1", got=vb
        )
    recipe = replace(RECIPE, value_block=vb)
    stages = tuple(int(g.depth or recipe.stages) for g in mapping.groups)
    if form == "staged":
        want = chunk_mapping(workload, arch, recipe, form=form)
    else:
        want = chunk_mapping(workload, arch, recipe, form=form, stages=stages)
    diff = _first_difference(mapping.to_dict(), want.to_dict(), "")
    if diff is not None:
        path, expected, got = diff
        raise MappingError(
            f"the {form} linear_chunked kernels run this structure only (a mapping may change "
            "the value block and each group's depth)",
            path=path,
            expected=expected,
            got=got,
        )
    return form, recipe, stages


def chunk_mapping_plan(workload: WorkloadLike, mapping: Mapping, arch: Architecture) -> Plan:
    """The plan of a ``linear_chunked`` mapping (:func:`read_chunk_mapping`), carrying it."""
    from .linear import chunk_plan

    form, recipe, stages = read_chunk_mapping(workload, mapping, arch)
    per_kernel = None if form == "staged" else stages
    plan = chunk_plan(workload, arch, recipe, form=form, stages=per_kernel)  # type: ignore[arg-type]  # Workload or FileWorkload
    return replace(plan, mapping=mapping)
