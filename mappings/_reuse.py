"""Loop-nest reuse analysis: bytes each tensor moves at each storage level of a fusion group.

The classic Timeloop/ZigZag rule. Between a parent level ``p`` and the next level ``c`` that
keeps a tensor ``T`` (or the compute unit), the child's tile of ``T`` is re-filled once per
iteration of every temporal loop at levels ``< c``, *except* the trailing loops (innermost
first, across levels) whose rank is not one of ``T``'s ranks: while only those loops turn,
the tile stays stationary in the child. Loops over ``T``'s own ranks walk across ``T`` and
together cover it exactly once, so the traffic is::

    elems(T) * prod(factor of each loop over a rank not in T, outside T's innermost own loop)

times the spatial fan-out over ranks not in ``T`` (copies of the same data in sibling
instances; a multicast network delivers them with one parent read). The factor is >= 1, so
traffic is never below the compulsory ``elems(T)`` (remainder tiles are exact: the rank's
full size is moved, never the padded tile).

Outputs (and intermediates written by the group) move the same number of elements upwards;
all but the first visit of each element also read the partial sum back.

Compute-side accesses (the boundary between the innermost level that keeps a tensor and the
compute unit) are counted **per Einsum** when the tensor says which Einsums of the group read
and write it (``TensorUse.readers`` / ``writer``, set by :func:`mappings._tensors.group_tensors`):
each Einsum reads each of its operands from that level with the refill rule above over *its
own* loops (the compute's tile is one element: an operand that stays the same while only
loops over other ranks turn is read once per tile -- stationary --, one that changes with a
loop is read per use), the elements it touches only (``AV`` reads the last running numerator
``RNV[M1]``, not its history), and writes its output there the same way (plus the partial
sums read back). So a score row that two Einsums of a 3-pass softmax read is read twice.

Window rule: an Einsum whose condition fixes a rank ``u`` of an operand from other ranks it
iterates (``u - y == r``, ``u == 2*y + r``: ``u = sum a_i x_i + k`` over ranks ``x_i`` that are
not the operand's, every combination landing inside ``u``'s range -- a convolution's input
row is its output row plus the tap) sees the operand through a sliding window
(:class:`Window`). At a boundary whose child does not hold all of ``u`` (the compute side; a
line buffer tiled by output rows), the operand is walked by the ``x_i`` instead of ``u``:
loops over ``u`` have one live iteration per value of the ``x_i`` and move nothing, and one
child tile spanning ``t_i`` values of each ``x_i`` holds ``min(sum |a_i| (t_i - 1) + 1,
prod t_i)`` values of ``u`` -- a y-tile and an r-tile of a 3 x 3 stencil, ``t_y + t_r - 1``
input rows, the halo included --, read once per tile and held in the registers (line buffer)
the mapping gives the child (``t_i``: the ``x_i``'s extent inside the child tile and its
spatial fan-out below the parent). A child that holds all of ``u`` (the image in the push
memory) keeps the tile whole while the window slides: the ordinary rule applies.

In-place rule (footprints): an intermediate ``T`` written by an element-wise Einsum (no
reduction) that reads a tensor ``U`` of the same ranks at the same indices, where ``U`` is
written in the group and read by no Einsum after that one, leaves the group, or is an output
(``U`` is dead once ``T[i]`` is computed from ``U[i]``), takes ``U``'s space at every level
that keeps both (``TensorUse.shares``): ``SN = exp(QK - M)`` overwrites ``QK``, ``A = SN / SD``
overwrites ``SN``, so FLAT's score row costs one score-shaped tile, not three.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from mappings._mapping import FusionGroup

__all__ = [
    "EinsumUse",
    "Window",
    "TensorUse",
    "LevelTraffic",
    "Move",
    "group_moves",
    "group_traffic",
    "footprints",
    "refill_multiplier",
]


@dataclass(frozen=True)
class Window:
    """A rank of a tensor that an Einsum's condition fixes from ranks the tensor does not have
    (module doc, window rule): ``rank = sum(a * x for x, a in by) + offset``.

    Attributes
    ----------
    rank
        The tensor's rank (``u`` of ``I[c,u,v]``).
    by
        ``(rank, coefficient)`` of each rank fixing it (``(("y", 1), ("r", 1))``).
    """

    rank: str
    by: tuple[tuple[str, int], ...]

    def extent(self, tiles: Mapping[str, int]) -> int:
        """Values of ``rank`` a tile spanning ``tiles[x]`` values of each ``x`` touches."""
        span = 1 + sum(abs(a) * (int(tiles[x]) - 1) for x, a in self.by)
        combos = 1
        for x, _ in self.by:
            combos *= int(tiles[x])
        return min(span, combos)


@dataclass(frozen=True)
class EinsumUse:
    """One Einsum's access to one tensor (its compute-side reads or writes).

    Attributes
    ----------
    einsum
        Einsum name.
    loop_ranks
        Ranks the Einsum iterates (a split rank's parts included).
    elems
        Elements of the tensor the Einsum touches (an index that is a constant, ``RNV[M1]``,
        counts 1).
    ranks
        The tensor's ranks as the Einsum indexes it (its index variables, a split rank as
        its parts): ``K[b,h,pc,mi,e]`` in linear attention's intra-chunk Einsum walks K's
        chunks with the query chunk ``pc``, so a loop over ``pc`` walks K there.
    windows
        The tensor's ranks the Einsum's condition fixes from other ranks (module doc).
    """

    einsum: str
    loop_ranks: frozenset[str]
    elems: float
    ranks: tuple[str, ...] = ()
    windows: tuple[Window, ...] = ()


@dataclass(frozen=True)
class TensorUse:
    """What the analysis needs to know about one tensor of a fusion group.

    Attributes
    ----------
    name
        Tensor name.
    ranks
        Its ranks.
    elems
        Number of elements (exact rank sizes multiplied).
    bytes_per_elem
        Bytes per element.
    written
        True when the group writes it (an output or intermediate produced in the group).
    read
        True when the group reads it (an input, or an intermediate consumed in the group).
    in_dram
        False for intermediates kept on chip (``FusionGroup.on_chip``).
    loop_ranks
        Ranks iterated by the Einsums that read or write the tensor (None: every loop of
        the group). A loop over any other rank does not enclose those Einsums: in the
        group's (imperfect) nest they sit beside it, as the final divide of a 1-pass
        attention sits after the loop over key tiles, so it never re-fills the tensor.
    readers
        Every Einsum of the group that reads the tensor (one entry each, in group order), or
        None: then the compute side reads it once over ``loop_ranks`` (a tensor-level count).
    writer
        The Einsum of the group that writes it, or None (see ``readers``).
    shares
        The tensor whose space this one takes in place (module doc), or None.
    sizes
        ``(rank, size)`` of the ranks the group iterates, or None: with them a refill
        multiplier counts the loop iterations that exist (a remainder tile's padding
        excluded), without them the product of the loop factors.
    windows
        Windows of the tensor (module doc) shared by every Einsum of the group that touches
        it, applied to its fills between levels (the compute side uses each Einsum's own);
        they need ``sizes``.
    """

    name: str
    ranks: tuple[str, ...]
    elems: float
    bytes_per_elem: float
    written: bool = False
    read: bool = True
    in_dram: bool = True
    loop_ranks: frozenset[str] | None = None
    readers: tuple[EinsumUse, ...] | None = None
    writer: EinsumUse | None = None
    shares: str | None = None
    sizes: tuple[tuple[str, int], ...] | None = None
    windows: tuple[Window, ...] = ()


@dataclass(frozen=True)
class LevelTraffic:
    """Bytes read from and written to one level by one tensor (totals over the group)."""

    level: str
    tensor: str
    read_bytes: float
    write_bytes: float


def refill_multiplier(loops: Sequence[tuple[str, int]], ranks: Sequence[str]) -> int:
    """Refill count of a tile over ``ranks`` under temporal ``loops`` (outermost first).

    Parameters
    ----------
    loops
        ``(rank, factor)`` of every temporal loop above the child, outermost first.
    ranks
        The tensor's ranks.

    Returns
    -------
    int
        Product of factors of loops over other ranks that sit outside the tensor's
        innermost own loop (1 when the tensor never changes).
    """
    own = set(ranks)
    last = -1
    for i, (rank, f) in enumerate(loops):
        if f > 1 and rank in own:
            last = i
    mult = 1
    for rank, f in loops[: last + 1]:
        if rank not in own:
            mult *= f
    return mult


def _keepers(group: FusionGroup, t: TensorUse) -> list[int]:
    out = []
    for i, lm in enumerate(group.levels):
        if i == 0 and not t.in_dram:
            continue
        if i == 0 or lm.keeps(t.name):
            out.append(i)
    return out


def _boundary(group: FusionGroup, t: TensorUse, p: int, c: int) -> tuple[float, int, int, int]:
    """(elements per sweep of the tensor's own loops, refill multiplier, copies above the
    parent, copies between parent and child). The elements are ``t.elems`` unless a window
    applies at this boundary (module doc)."""
    elems, ranks, fixed = t.elems, tuple(t.ranks), frozenset[str]()
    win = _windowed(group, t, p, c)
    if win is not None:
        elems, ranks, fixed = win
    loops: list[tuple[str, int]] = []
    at: list[int] = []  # level index of each loop
    inside = t.loop_ranks
    for i, lm in enumerate(group.levels[:c]):
        for r in lm.loop_order():
            if (inside is None or r in inside) and r not in fixed:
                loops.append((r, int(lm.temporal.get(r, 1))))
                at.append(i)
    mult = refill_multiplier(loops, ranks)
    own = set(ranks)
    if t.sizes is not None and mult > 1:
        mult = _exact_refills(group, loops, at, own, dict(t.sizes))
    above = between = 1
    for i, lm in enumerate(group.levels[:c]):
        for r, f in lm.spatial.items():
            if r not in own:
                if i < p:
                    above *= int(f)
                else:
                    between *= int(f)
    return elems, mult, above, between


def _child_extent(group: FusionGroup, rank: str, p: int, c: int) -> int:
    """Values of ``rank`` one child tile at ``c`` spans, per parent instance at ``p``: the
    factors at levels ``>= c`` and the spatial fan-out of levels ``p .. c-1``."""
    e = 1
    for i, lm in enumerate(group.levels):
        if i >= c:
            e *= int(lm.temporal.get(rank, 1))
        if i >= p:
            e *= int(lm.spatial.get(rank, 1))
    return e


def _windowed(
    group: FusionGroup, t: TensorUse, p: int, c: int
) -> tuple[float, tuple[str, ...], frozenset[str]] | None:
    """(elements per sweep, the ranks walking the tensor, the ranks whose loops move
    nothing) of ``t`` at boundary ``p -> c`` under its windows (module doc), or None when no
    window applies there (none, or the child holds all of each windowed rank)."""
    if not t.windows or t.sizes is None:
        return None
    sizes = dict(t.sizes)
    active = [
        w
        for w in t.windows
        if w.rank in sizes
        and all(x in sizes for x, _ in w.by)
        and _child_extent(group, w.rank, p, c) < sizes[w.rank]
    ]
    if not active:
        return None
    elems = float(t.elems)
    for w in active:
        elems /= max(1, sizes[w.rank])
        elems *= _window_sweep(group, w, sizes, p, c)
    fixed = frozenset(w.rank for w in active)
    ranks = [r for r in t.ranks if r not in fixed]
    for w in active:
        ranks.extend(x for x, _ in w.by if x not in ranks)
    return elems, tuple(ranks), fixed


def _window_sweep(group: FusionGroup, w: Window, sizes: Mapping[str, int], p: int, c: int) -> float:
    """Values of ``w.rank`` moved over one sweep of the tiles of its ``by`` ranks: every
    combination of tiles (a rank's tiles take at most two extents, full and remainder)
    counted with :meth:`Window.extent`, each at most the rank's size."""
    import itertools

    per: list[list[tuple[int, int]]] = []  # per by-rank: (tile extent, number of such tiles)
    for x, _ in w.by:
        size = int(sizes[x])
        t = max(1, min(size, _child_extent(group, x, p, c)))
        full, rest = divmod(size, t)
        per.append([(t, full)] + ([(rest, 1)] if rest else []))
    total = 0.0
    for combo in itertools.product(*per):
        n = 1
        for _, k in combo:
            n *= k
        ext = w.extent({x: e for (x, _), (e, _) in zip(w.by, combo, strict=True)})
        total += n * min(ext, int(sizes[w.rank]))
    return total


def _exact_refills(
    group: FusionGroup,
    loops: Sequence[tuple[str, int]],
    at: Sequence[int],
    own: set[str],
    sizes: Mapping[str, int],
) -> int:
    """:func:`refill_multiplier` counting only the iterations that exist: the loops over a
    rank ``r`` outside the tensor's innermost own loop walk ``ceil(size(r) / inner)`` blocks
    (``inner``: ``r``'s extent inside the innermost of them, per instance of the outer
    spatial fan-out over ``r``), not the product of their factors, which a remainder tile
    pads (a query range of 65,536 rows in groups of 31,744 walks 256 tiles of 256 rows, not
    3 x 124)."""
    last = -1
    for i, (rank, f) in enumerate(loops):
        if f > 1 and rank in own:
            last = i
    padded: dict[str, int] = {}
    innermost: dict[str, int] = {}
    for i, (rank, f) in enumerate(loops[: last + 1]):
        if rank not in own:
            padded[rank] = padded.get(rank, 1) * f
            innermost[rank] = at[i]
    mult = 1
    for rank, prod_f in padded.items():
        size = sizes.get(rank)
        if size is None:
            mult *= prod_f
            continue
        lv = innermost[rank]
        inner = 1
        outer_spatial = 1
        for i, lm in enumerate(group.levels):
            if i > lv:
                inner *= int(lm.temporal.get(rank, 1))
            if i >= lv:
                inner *= int(lm.spatial.get(rank, 1))
            else:
                outer_spatial *= int(lm.spatial.get(rank, 1))
        real = -(-int(size) // (inner * outer_spatial))
        mult *= max(1, min(prod_f, real))
    return mult


@dataclass(frozen=True)
class Move:
    """Bytes of one tensor crossing one boundary of a fusion group (totals over the group).

    ``src``/``dst`` are level indices in the group (``dst`` None: the compute unit reads the
    operands from ``src``; for an upward move ``src`` None: the compute unit writes them).
    ``src_bytes`` are read at ``src``, ``dst_bytes`` written at ``dst`` (they differ when a
    multicast network copies one read to several children). ``einsum`` names the Einsum of a
    compute-side access counted per Einsum (None for fills between levels).
    """

    tensor: str
    src: int | None
    dst: int | None
    src_bytes: float
    dst_bytes: float
    upward: bool
    einsum: str | None = None

    @property
    def bytes(self) -> float:
        """Bytes delivered (``dst_bytes``; ``src_bytes`` for compute-side reads)."""
        return self.dst_bytes if self.dst is not None else self.src_bytes


def group_moves(
    group: FusionGroup,
    tensors: Sequence[TensorUse],
    multicast: Sequence[bool] | None = None,
) -> list[Move]:
    """Every tensor movement of ``group`` between its levels and the compute unit.

    Parameters
    ----------
    group
        The fusion group's loop nest.
    tensors
        Every tensor the group reads or writes.
    multicast
        Per level: whether the network below it multicasts (one read feeds all siblings).
        Default: True everywhere.

    Returns
    -------
    list of Move
        Downward fills (inputs; partial sums read back), upward write-backs (outputs).
    """
    n = len(group.levels)
    mc = list(multicast) if multicast is not None else [True] * n
    out: list[Move] = []
    for t in tensors:
        keep = _keepers(group, t)
        b = t.bytes_per_elem
        chain = keep + [n]  # n = the compute unit
        for p, c in zip(chain[:-1], chain[1:], strict=False):
            if c == n and (t.readers is not None or t.writer is not None):
                out.extend(_compute_side(group, t, p, mc[p]))
                continue
            elems, mult, above, between = _boundary(group, t, p, c)
            par = elems * mult * above
            kids = par * between
            dst = c if c < n else None
            if t.read:
                single = par if mc[p] else kids
                out.append(Move(t.name, p, dst, single * b, kids * b, upward=False))
            if t.written:
                # copies of a reduced output across siblings are summed in the network
                back = max(par - t.elems * above, 0.0)
                out.append(Move(t.name, dst, p, par * b, par * b, upward=True))
                if back > 0:
                    out.append(Move(t.name, p, dst, back * b, back * b, upward=False))
    return out


def _compute_side(group: FusionGroup, t: TensorUse, p: int, multicast: bool) -> list[Move]:
    """Per-Einsum accesses of ``t`` at level ``p`` by the compute unit (module doc)."""
    from dataclasses import replace

    n = len(group.levels)
    b = t.bytes_per_elem
    out: list[Move] = []
    for use in t.readers or ():
        one = replace(
            t,
            elems=use.elems,
            loop_ranks=use.loop_ranks,
            ranks=use.ranks or t.ranks,
            windows=use.windows,
        )
        elems, mult, above, between = _boundary(group, one, p, n)
        par = elems * mult * above
        kids = par * between
        single = par if multicast else kids
        out.append(Move(t.name, p, None, single * b, kids * b, upward=False, einsum=use.einsum))
    w = t.writer
    if w is not None:
        one = replace(
            t, elems=w.elems, loop_ranks=w.loop_ranks, ranks=w.ranks or t.ranks, windows=w.windows
        )
        elems, mult, above, _ = _boundary(group, one, p, n)
        par = elems * mult * above
        back = max(par - w.elems * above, 0.0)
        out.append(Move(t.name, None, p, par * b, par * b, upward=True, einsum=w.einsum))
        if back > 0:
            out.append(Move(t.name, p, None, back * b, back * b, upward=False, einsum=w.einsum))
    return out


def group_traffic(
    group: FusionGroup,
    tensors: Sequence[TensorUse],
    multicast: Sequence[bool] | None = None,
) -> list[LevelTraffic]:
    """Bytes read and written at every level of ``group``, per tensor (compute side included)."""
    acc: dict[tuple[int, str], list[float]] = {}
    for mv in group_moves(group, tensors, multicast):
        if mv.src is not None:
            acc.setdefault((mv.src, mv.tensor), [0.0, 0.0])[0] += mv.src_bytes
        if mv.dst is not None:
            acc.setdefault((mv.dst, mv.tensor), [0.0, 0.0])[1] += mv.dst_bytes
    return [
        LevelTraffic(group.levels[i].level, name, rd, wr) for (i, name), (rd, wr) in acc.items()
    ]


def footprints(
    group: FusionGroup, tensors: Sequence[TensorUse], sizes: Mapping[str, int]
) -> dict[int, dict[str, float]]:
    """Bytes of each tensor's tile per instance of each on-chip level (level index -> tensor -> B).

    The tile at level ``i`` spans the loops at levels ``>= i`` (its own temporal loops and
    its spatial fan-out included), clipped to the rank's size; along a windowed rank the tile
    does not span whole (the window rule, module doc) it is the window of the ranks fixing
    it (a line buffer of ``t_y + t_r - 1`` rows). A tensor that ``shares`` the space of
    another one kept at the same level (the in-place rule, module doc) takes only the bytes
    it needs beyond that one's tile (0 for the same dtype).
    """
    n = len(group.levels)
    tiles: list[dict[str, int]] = [{} for _ in range(n + 1)]  # tiles[i] = FusionGroup.tile(., i)
    for i in range(n - 1, -1, -1):
        d = dict(tiles[i + 1])
        lm = group.levels[i]
        for factors in (lm.temporal, lm.spatial):
            for r, f in factors.items():
                d[r] = d.get(r, 1) * int(f)
        tiles[i] = d
    out: dict[int, dict[str, float]] = {}
    for i, lm in enumerate(group.levels):
        if i == 0:
            continue
        per: dict[str, float] = {}
        tile = tiles[i]
        for t in tensors:
            if not lm.keeps(t.name):
                continue
            win = {w.rank: w for w in t.windows}
            e = 1.0
            for r in t.ranks:
                size = int(sizes.get(r, 1))
                ext = min(size, tile.get(r, 1))
                w = win.get(r)
                if w is not None and ext < size and all(x in sizes for x, _ in w.by):
                    by = {x: min(int(sizes[x]), tile.get(x, 1)) for x, _ in w.by}
                    ext = min(size, w.extent(by))
                e *= ext
            per[t.name] = e * t.bytes_per_elem
        whole = dict(per)
        for t in tensors:  # in place: a tile written over a dead one of the same ranks
            if t.shares is not None and t.name in whole and t.shares in whole:
                per[t.name] = max(0.0, whole[t.name] - whole[t.shares])
        out[i] = per
    return out
