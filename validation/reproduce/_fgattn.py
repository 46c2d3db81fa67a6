"""FG-Attn (arXiv 2509.16518) vs block-sparse attention for a video DiT on the ``h100`` model.

The headline is the speedup as a function of the mask's *structure*. Every mask is one boolean
attention mask with two derived forms:

* **M x 1 slices** (FG-Attn, ``fg_sparse``): slice ``(query block, key)`` is kept if any of the
  block's ``M`` queries attends to that key;
* **M x M blocks** (``block_sparse``, M = 64): block ``(query block, key block)`` is kept if
  any element is, i.e. if any of its ``M`` slices is kept.

So the fine-grained form never keeps more than the block form. The masks follow a stated rule
(:func:`rule_mask`): the sparsity FG-Attn v2 states (70%: 30% of the M x 1 slices of every query
block kept), split between a local 3D window (Sliding Tile Attention, arXiv 2502.04507: scores in
pretrained video DiTs "predominantly concentrate within localized 3D windows") and scattered
slices (FG-Attn's premise: the kept entries do not fill whole M x M blocks) in a swept fraction,
since no reachable source quantifies that split. Kernel times come from the GPU dataflows at the
two densities; the end-to-end time of one DiT forward adds the rest of a Wan2.1-14B block
(QKV/O projections, cross-attention to 512 text tokens, FFN) from the ``gpu_gemm`` / ``flash3``
dataflows, so the attention share is computed, not assumed.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from archsim.gpu import GATHER_CYCLES_PER_ROW
from mappings import simulate_workload
from workloads import get_model

from ._common import Check, Reproduction, Row, near_range

__all__ = [
    "MaskSpec",
    "RULE_SPARSITY",
    "VIDEO_GRIDS",
    "block_form",
    "reproduce_fgattn",
    "rule_mask",
    "video_mask_slices",
]

#: Latent token grids (frames, height, width) of a 5 s clip for Wan2.1 (VAE 4x temporal,
#: 8x spatial, 2x2 patches; 81 frames -> 21 latent frames): 480p 832x480 -> 21x30x52 =
#: 32,760 tokens; 720p 1280x720 -> 21x45x80 = 75,600 (model preset ``wan2.1-14b``).
VIDEO_GRIDS: dict[str, tuple[int, int, int]] = {"480p": (21, 30, 52), "720p": (21, 45, 80)}
#: FG-Attn v1 abstract: end-to-end 5 s 480p 1.55x average (up to 1.65x), 720p 1.41x (up to 1.49x).
PAPER = {"480p": (1.55, 1.65), "720p": (1.41, 1.49)}
PAPER_RANGE = (1.41, 1.65)
TOL = 0.10  # issue 7: inside the published range or within 10% of it
TEXT_TOKENS = 512  # Wan2.1 umT5 text context of the cross-attention
#: Kernel family of the block-sparse baseline: the same Hopper FA3 kernel FG-Attn builds on, so
#: the comparison isolates skip granularity and gather cost (``flex`` = FlexAttention is slower).
BLOCK_SPARSE_FAMILY = "flash3"


@dataclass(frozen=True)
class MaskSpec:
    """Spatio-temporal locality mask with random long-range keys (one per resolution).

    A query at latent position ``(t, y, x)`` attends to every key with ``|dt| <= frames``,
    ``|dy| <= radius`` and ``|dx| <= radius`` (a local window in time and space: ±4 latent
    frames = ±16 video frames ≈ ±1 s at 16 fps, ±12 patches ≈ ±190 px), plus ``long_range``
    keys drawn uniformly at random (``numpy.random.default_rng(seed)``), the few scattered
    distant keys a real video-DiT attention map keeps outside its local window (local 3D
    windows carry most of the attention mass, plus a handful of query-specific distant
    keys). Tokens are in raster order (frame, row, column). The same spec is used at every
    resolution.

    The defaults are a pure local window; the ``long_range_sweep`` table varies the radius and
    the random keys per query. No value here is chosen by where the result lands.
    """

    frames: int = 4
    radius: int = 12
    long_range: int = 0
    block: int = 64
    seed: int = 0


def video_mask_slices(grid: tuple[int, int, int], spec: MaskSpec) -> np.ndarray:
    """M x 1 slice form of the mask: ``(ceil(S/M), S)`` booleans, ``[b, k]`` True when any
    query of block ``b`` attends to key ``k``.

    The mask is exact: the window part is the union of the queries' boxes (queries of one
    block share at most a few (frame, row) pairs, each a contiguous column range), the
    long-range part sets the slice of every (query, random key) pair.
    """
    T, Hh, W = grid
    S, M = T * Hh * W, spec.block
    nq = math.ceil(S / M)
    out = np.zeros((nq, S), dtype=bool)
    idx = np.arange(S)
    t, y, x = idx // (Hh * W), (idx // W) % Hh, idx % W
    f, r = spec.frames, spec.radius
    for b in range(nq):
        q = idx[b * M : (b + 1) * M]
        view = out[b].reshape(T, Hh, W)
        ty = t[q] * Hh + y[q]
        for g in np.unique(ty):
            cols = x[q[ty == g]]
            tt, yy = divmod(int(g), Hh)
            view[
                max(0, tt - f) : tt + f + 1,
                max(0, yy - r) : yy + r + 1,
                max(0, int(cols.min()) - r) : int(cols.max()) + r + 1,
            ] = True
    if spec.long_range:
        rng = np.random.default_rng(spec.seed)
        keys = rng.integers(0, S, size=(S, spec.long_range))
        out[np.repeat(idx // M, spec.long_range), keys.ravel()] = True
    return out


def block_form(slices: np.ndarray, block: int) -> np.ndarray:
    """M x M block form of a slice mask: ``[b, j]`` True when any key of block ``j`` is kept."""
    nq, S = slices.shape
    nk = math.ceil(S / block)
    pad = np.zeros((nq, nk * block), dtype=bool)
    pad[:, :S] = slices
    return np.asarray(pad.reshape(nq, nk, block).any(axis=-1))


def _attn(
    S: int,
    H: int,
    D: int,
    dataflow: str,
    density: float | None = None,
    Skv: int | None = None,
    gather: float | None = None,
    block: int = 64,
) -> float:
    """Model seconds of one attention kernel; ``block`` is M (block side / slice height)."""
    params: dict[str, object] = {"B": 1, "H": H, "Sq": S, "Skv": Skv or S, "D": D}
    workload = "mha"
    if density is not None:
        workload = dataflow
        params.update({"density": min(1.0, density), "block": block})
    knobs: dict[str, object] = {"family": BLOCK_SPARSE_FAMILY} if dataflow == "block_sparse" else {}
    if gather is not None:
        knobs["gather_cycles_per_row"] = gather
    rep = simulate_workload("h100", workload, params=params, dataflow=dataflow, knobs=knobs)
    return rep.result.seconds


def _gemm(M: int, N: int, K: int) -> float:
    rep = simulate_workload("h100", "gemm", params={"M": M, "N": N, "K": K}, dataflow="gpu_gemm")
    return rep.result.seconds


def _rest_of_block(S: int, d: int, ffn: int, H: int, D: int) -> float:
    """Seconds of one Wan2.1 DiT block outside self-attention (projections, cross-attn, FFN)."""
    lin = (
        _gemm(S, 3 * d, d)
        + _gemm(S, d, d)  # self-attn QKV, O
        + 2 * _gemm(S, d, d)
        + 2 * _gemm(TEXT_TOKENS, d, d)  # cross-attn Q, O; K, V of text
        + _gemm(S, ffn, d)
        + _gemm(S, d, ffn)
    )
    return lin + _attn(S, H, D, "flash3", Skv=TEXT_TOKENS)


def _break_even(S: int, H: int, D: int, block_density: float, t_block: float, block: int) -> float:
    """Slice density at which ``fg_sparse`` is as slow as ``block_sparse`` at ``block_density``
    (bisection); FG-Attn gains only below it. Returned as a fraction of ``block_density``."""
    lo, hi = 0.0, block_density
    if _attn(S, H, D, "fg_sparse", hi, block=block) <= t_block:
        return 1.0
    for _ in range(14):
        mid = 0.5 * (lo + hi)
        fits = _attn(S, H, D, "fg_sparse", mid, block=block) <= t_block
        lo, hi = (mid, hi) if fits else (lo, mid)
    return 0.5 * (lo + hi) / block_density


def _break_even_gather(
    S: int, H: int, D: int, slice_density: float, t_block: float, block: int
) -> float:
    """Gather cost (producer cycles per K/V row) at which ``fg_sparse`` loses its gain over
    ``block_sparse`` on this mask (bisection up to 4096 cycles; inf if never)."""
    lo, hi = 0.0, 4096.0
    if _attn(S, H, D, "fg_sparse", slice_density, gather=hi, block=block) <= t_block:
        return float("inf")
    for _ in range(12):
        mid = 0.5 * (lo + hi)
        lo, hi = (
            (mid, hi)
            if _attn(S, H, D, "fg_sparse", slice_density, gather=mid, block=block) <= t_block
            else (lo, mid)
        )
    return 0.5 * (lo + hi)


#: FG-Attn v2 abstract (arXiv 2509.16518v2; reference/papers/fgattn/NOTES.md): its kernel is
#: evaluated "at 70% sparsity". Read here as the fraction of M x 1 slices skipped per query block
#: (the granularity FG-Attn skips at): every query block keeps 30% of its slices.
RULE_SPARSITY = 0.70
#: Fraction of the kept slices that are scattered (the rest: the local window). Not stated by
#: any reachable source, so it is the swept axis of the headline (0 = STA's pure local window,
#: 1 = no locality at all).
SCATTER_FRACTIONS = (0.0, 0.0025, 0.005, 0.01, 0.02, 0.05, 0.1, 1.0)
FAST_SCATTER_FRACTIONS = (0.0, 0.01, 1.0)


def _key_distance(grid: tuple[int, int, int], q: np.ndarray) -> np.ndarray:
    """Chebyshev distance in latent (frame, row, column) units from every key (raster order)
    to the nearest query of ``q`` (token indices)."""
    T, Hh, W = grid
    t_ax, y_ax, x_ax = np.arange(T), np.arange(Hh), np.arange(W)
    d = None
    qt, qy, qx = q // (Hh * W), (q // W) % Hh, q % W
    ty = qt * Hh + qy
    for g in np.unique(ty):  # queries of one (frame, row): a contiguous column range
        cols = qx[ty == g]
        tt, yy = divmod(int(g), Hh)
        dty = np.maximum.outer(abs(t_ax - tt), abs(y_ax - yy))  # (T, H)
        dx = np.maximum(np.maximum(int(cols.min()) - x_ax, x_ax - int(cols.max())), 0)  # (W,)
        dg = np.maximum(dty[:, :, None], dx[None, None, :])
        d = dg if d is None else np.minimum(d, dg)
    assert d is not None  # q holds at least one query (a query block's tokens)
    return d.reshape(-1)


def _scattered(rng: np.random.Generator, S: int, taken: np.ndarray, n: int) -> np.ndarray:
    """``n`` distinct keys drawn uniformly from ``range(S)`` minus ``taken``."""
    if n <= 0:
        return np.empty(0, dtype=np.int64)
    busy = np.zeros(S, dtype=bool)
    busy[taken] = True
    free_share = 1.0 - taken.size / S
    m = min(S, math.ceil(1.2 * n / free_share) + 16)
    c = rng.choice(S, size=m, replace=False)  # distinct, in draw order
    c = c[~busy[c]]
    if c.size < n:  # rare: fall back to permuting every free key
        c = rng.permutation(np.flatnonzero(~busy))
    return c[:n]


def _rule_blocks(
    grid: tuple[int, int, int],
    fractions: tuple[float, ...],
    *,
    sparsity: float = RULE_SPARSITY,
    block: int = 64,
    seed: int = 0,
):  # noqa: ANN202 - generator of (block, fraction index, kept key indices, scattered count)
    """Kept slices of every query block under the rule, for each scattered fraction."""
    S = grid[0] * grid[1] * grid[2]
    k = round((1.0 - sparsity) * S)
    for b in range(math.ceil(S / block)):
        q = np.arange(b * block, min(S, (b + 1) * block))
        d = _key_distance(grid, q)
        cum = np.cumsum(np.bincount(d))
        for i, f in enumerate(fractions):
            # one stream per (seed, block, fraction): a mask does not depend on which other
            # fractions are computed beside it
            rng = np.random.default_rng((seed, b, round(f * 1e6)))
            n_loc = round((1.0 - f) * k)
            local = np.empty(0, dtype=np.int64)
            if n_loc:
                ring = int(np.searchsorted(cum, n_loc))  # smallest R with count(d <= R) >= n_loc
                edge = np.flatnonzero(d == ring)
                local = np.concatenate(
                    [
                        np.flatnonzero(d < ring),
                        rng.choice(
                            edge, size=n_loc - int(cum[ring - 1] if ring else 0), replace=False
                        ),
                    ]
                )
            kept = np.concatenate([local, _scattered(rng, S, local, k - n_loc)])
            yield b, i, kept, k - n_loc


def rule_mask(
    grid: tuple[int, int, int],
    scatter: float,
    *,
    sparsity: float = RULE_SPARSITY,
    block: int = 64,
    seed: int = 0,
) -> np.ndarray:
    """Slice mask of the stated rule: each query block keeps ``round((1 - sparsity) S)`` M x 1
    slices, a ``1 - scatter`` share of them local and the rest scattered.

    Local: the keys nearest the block's queries in latent (frame, row, column) Chebyshev
    distance -- a 3D window around the block, the same extent in time and space, grown ring
    by ring; the last ring is filled at random (``numpy.random.default_rng(seed)``). This is
    STA's observation (arXiv 2502.04507: attention scores concentrate in localized 3D
    windows) with no window shape chosen. Scattered: keys drawn uniformly from the rest
    (``numpy.random.default_rng((seed, block, round(scatter * 1e6)))``), the
    query-specific distant keys that cost a whole 64-key block in the block form but one
    slice in FG-Attn's.

    Returns
    -------
    numpy.ndarray
        ``(ceil(S/M), S)`` booleans.
    """
    S = grid[0] * grid[1] * grid[2]
    out = np.zeros((math.ceil(S / block), S), dtype=bool)
    for b, _, kept, _ in _rule_blocks(grid, (scatter,), sparsity=sparsity, block=block, seed=seed):
        out[b, kept] = True
    return out


def rule_densities(
    grid: tuple[int, int, int], fractions: tuple[float, ...], *, block: int = 64, seed: int = 0
) -> list[dict[str, float]]:
    """Slice and block density of :func:`rule_mask` for each scattered fraction, without
    building the masks (``scatter_achieved``: scattered / kept slices)."""
    S = grid[0] * grid[1] * grid[2]
    nq, nk = math.ceil(S / block), math.ceil(S / block)
    kept_n = np.zeros(len(fractions))
    scat_n = np.zeros(len(fractions))
    blocks_n = np.zeros(len(fractions))
    for _, i, kept, n_scat in _rule_blocks(grid, fractions, block=block, seed=seed):
        kept_n[i] += kept.size
        scat_n[i] += n_scat
        blocks_n[i] += np.count_nonzero(np.bincount(kept // block, minlength=nk))
    return [
        {
            "slice_density": kept_n[i] / (nq * S),
            "block_density": blocks_n[i] / (nq * nk),
            "scatter_achieved": scat_n[i] / kept_n[i],
        }
        for i in range(len(fractions))
    ]


def _times(S: int, H: int, D: int, ds: float, db: float, M: int) -> dict[str, float]:
    return {
        "block": _attn(S, H, D, "block_sparse", db, block=M),
        "fg": _attn(S, H, D, "fg_sparse", ds, block=M),
        "fg_at_block_density": _attn(S, H, D, "fg_sparse", db, block=M),
    }


def _structure_rows(fast: bool) -> list[Row]:
    """The headline: speedup vs the scattered fraction at the rule's sparsity, per resolution."""
    m = get_model("wan2.1-14b")
    H, D, M = m.heads, m.head_dim, 64
    rows: list[Row] = []
    fractions = FAST_SCATTER_FRACTIONS if fast else SCATTER_FRACTIONS
    for res, grid in VIDEO_GRIDS.items():
        S = grid[0] * grid[1] * grid[2]
        t_dense = _attn(S, H, D, "flash3")
        rest = _rest_of_block(S, m.d_model, m.ffn_dim, H, D)
        for f, info in zip(fractions, rule_densities(grid, fractions, block=M), strict=True):
            ds, db = info["slice_density"], info["block_density"]
            t = _times(S, H, D, ds, db, M)
            rows.append(
                {
                    "video": res,
                    "tokens": S,
                    "grid": "x".join(map(str, grid)),
                    "scatter_fraction": f,
                    "scatter_achieved": info["scatter_achieved"],
                    "slice_density": ds,
                    "block_density": db,
                    "dense_ms": t_dense * 1e3,
                    "block_sparse_ms": t["block"] * 1e3,
                    "fg_sparse_ms": t["fg"] * 1e3,
                    "rest_of_block_ms": rest * 1e3,
                    "kernel_speedup": t["block"] / t["fg"],
                    "e2e_speedup": (t["block"] + rest) / (t["fg"] + rest),
                    "e2e_speedup_vs_dense": (t_dense + rest) / (t["fg"] + rest),
                    "attn_share_block": t["block"] / (t["block"] + rest),
                    "equal_density_gain": t["block"] / t["fg_at_block_density"],
                    "paper_e2e_avg": PAPER[res][0],
                    "paper_e2e_max": PAPER[res][1],
                    "gather_cycles_per_row": GATHER_CYCLES_PER_ROW,
                    "break_even_gather_cycles_per_row": _break_even_gather(
                        S, H, D, ds, t["block"], M
                    ),
                }
            )
    return rows


def _implied_scatter(rows: list[Row], target: float) -> float:
    """Scattered fraction at which the e2e speedup reaches ``target`` (linear interpolation
    along the sweep; nan if the sweep never reaches it)."""
    pts = [(float(r["scatter_fraction"]), float(r["e2e_speedup"])) for r in rows]
    for (f0, s0), (f1, s1) in zip(pts, pts[1:], strict=False):
        if s0 <= target <= s1 and s1 > s0:
            return f0 + (target - s0) / (s1 - s0) * (f1 - f0)
    return float("nan")


#: Mask settings of the window + random-keys table: spatial radius (patches) x long-range keys.
SWEEP_RADII = (8, 12)
SWEEP_LONG_RANGE = (0, 1, 2, 4, 6, 8)


def _sweep() -> list[Row]:
    """Second structure family (full runs only): a ±4-frame window of a given spatial radius
    plus a number of uniformly random keys per *query* (so the density varies too)."""
    m = get_model("wan2.1-14b")
    H, D = m.heads, m.head_dim
    rows: list[Row] = []
    for res, grid in VIDEO_GRIDS.items():
        S = grid[0] * grid[1] * grid[2]
        rest = _rest_of_block(S, m.d_model, m.ffn_dim, H, D)
        for radius in SWEEP_RADII:
            for lr in SWEEP_LONG_RANGE:
                spec = MaskSpec(4, radius, lr)
                sl = video_mask_slices(grid, spec)
                ds, db = float(sl.mean()), float(block_form(sl, spec.block).mean())
                tb = _attn(S, H, D, "block_sparse", db, block=spec.block)
                tf = _attn(S, H, D, "fg_sparse", ds, block=spec.block)
                e2e = (tb + rest) / (tf + rest)
                rows.append(
                    {
                        "video": res,
                        "frames": spec.frames,
                        "radius": radius,
                        "long_range_keys": lr,
                        "slice_density": ds,
                        "block_density": db,
                        "kernel_speedup": tb / tf,
                        "e2e_speedup": e2e,
                        "inside_paper_range": PAPER_RANGE[0] <= e2e <= PAPER_RANGE[1],
                    }
                )
    return rows


def reproduce_fgattn(*, fast: bool = False) -> Reproduction:
    """Run the FG-Attn reproduction (``fast``: three scattered fractions, no window sweep)."""
    rows = _structure_rows(fast)
    by = {res: [r for r in rows if r["video"] == res] for res in VIDEO_GRIDS}
    local = {res: by[res][0] for res in VIDEO_GRIDS}  # scatter 0: STA's local window
    spread = {res: by[res][-1] for res in VIDEO_GRIDS}  # scatter 1: no locality
    sp = {res: float(local[res]["e2e_speedup"]) for res in VIDEO_GRIDS}
    hi = {res: float(spread[res]["e2e_speedup"]) for res in VIDEO_GRIDS}
    implied = {res: _implied_scatter(by[res], PAPER[res][0]) for res in VIDEO_GRIDS}
    checks = (
        *(
            Check(
                f"end-to-end speedup {res}, rule mask (70% slice sparsity, local 3D window)",
                sp[res],
                PAPER_RANGE,
                near_range(sp[res], *PAPER_RANGE, TOL),
                "inside 1.41-1.65 or within 10%",
            )
            for res in VIDEO_GRIDS
        ),
        *(
            Check(
                f"paper's {res} average inside the model's range over the structure sweep",
                PAPER[res][0],
                (sp[res], hi[res]),
                sp[res] <= PAPER[res][0] <= hi[res],
                "info: can the mechanism give the paper's figure at its stated sparsity",
                gate=False,
            )
            for res in VIDEO_GRIDS
        ),
    )
    tables: dict[str, list[Row]] = {"fgattn": rows}
    if not fast:
        tables["long_range_sweep"] = _sweep()
    summary = {
        "speedup_480p": sp["480p"],
        "speedup_720p": sp["720p"],
        "speedup_scattered_480p": hi["480p"],
        "speedup_scattered_720p": hi["720p"],
        "speedup_by_scatter_480p": {
            str(r["scatter_fraction"]): r["e2e_speedup"] for r in by["480p"]
        },
        "speedup_by_scatter_720p": {
            str(r["scatter_fraction"]): r["e2e_speedup"] for r in by["720p"]
        },
        "speedup_vs_dense_480p": local["480p"]["e2e_speedup_vs_dense"],
        "speedup_vs_dense_720p": local["720p"]["e2e_speedup_vs_dense"],
        "kernel_speedup_480p": local["480p"]["kernel_speedup"],
        "kernel_speedup_720p": local["720p"]["kernel_speedup"],
        "slice_density_480p": local["480p"]["slice_density"],
        "block_density_480p": local["480p"]["block_density"],
        "slice_density_720p": local["720p"]["slice_density"],
        "block_density_720p": local["720p"]["block_density"],
        "paper_implied_scatter_480p": implied["480p"],
        "paper_implied_scatter_720p": implied["720p"],
        "mask": f"rule: {RULE_SPARSITY:.0%} of M x 1 slices skipped per query block (FG-Attn v2), "
        "kept slices = nearest keys in latent (t, y, x) (STA's local 3D window) + a swept "
        "scattered fraction, M=64",
    }
    notes = (
        "Mask rule (rule_mask): every 64-query block keeps 30% of its 64x1 slices -- FG-Attn v2's "
        "stated operating point, '70% sparsity' (arXiv 2509.16518v2 abstract), read at the "
        "granularity FG-Attn skips. Kept slices: a local 3D window (the keys nearest the block's "
        "queries in latent frame/row/column Chebyshev distance; Sliding Tile Attention, arXiv "
        "2502.04507: "
        "attention in pretrained video DiTs concentrates in localized 3D windows) plus slices "
        "scattered uniformly over the rest (FG-Attn's premise that the kept entries do not fill "
        "64x64 blocks). No reachable source gives the scattered fraction, so it is the swept "
        "axis (scatter_fraction); the printed figure (speedup_480p/720p) is its one end fixed "
        "by a cited statement, the pure local window.",
        "Speedups are fg_sparse over block_sparse on the h100 model, both on the same kernel: "
        "flash3 family (Hopper wgmma), M=64 query rows x 64-key tiles; fg_sparse adds the "
        "asynchronous gather (GATHER_CYCLES_PER_ROW producer cycles per K/V row) and a 4 B "
        "index per kept key. End-to-end = one Wan2.1-14B DiT block (self-attn + QKV/O + "
        "cross-attn to 512 text tokens + FFN) per denoising step; VAE, text encoder and "
        "sampler overheads are left out (they would lower the end-to-end gain). "
        "e2e_speedup_vs_dense: the same fg_sparse step over dense FA3 (v2's stated baseline).",
        "Paper: FG-Attn v1 abstract, 1.55x (480p) / 1.41x (720p) end-to-end on one H100, baseline "
        "kernel not named; the paper's masks and per-layer sparsities could not be retrieved. "
        "paper_implied_scatter_*: the scattered fraction at which the model reaches the paper's "
        "average -- what the claim needs of the mask, not a fitted parameter.",
        "long_range_sweep (full runs): a second structure family, window radius x random keys "
        "per query (density not fixed); the earlier default of this reproduction (radius 12, "
        "4 keys/query) was chosen as the smallest count that passed and is no longer used.",
        "equal_density_gain: block_sparse time / fg_sparse time at the same density (~1: the "
        "kernels differ only by packing and the gather, which hides behind the consumers' "
        "GEMMs); break_even_gather_cycles_per_row: gather cost per K/V row at which the gain "
        "on that mask is gone.",
    )
    return Reproduction(
        name="fg-attn",
        tables=tables,
        summary=summary,
        checks=checks,
        notes=notes,
        plot=lambda fig: _plot(fig, rows, tables.get("long_range_sweep", [])),
    )


def _plot(fig, rows, sweep) -> None:  # noqa: ANN001 — matplotlib Figure and row lists
    a0, a1 = fig.subplots(1, 2)
    for res in VIDEO_GRIDS:
        pts = [r for r in rows if r["video"] == res]
        xs = [r["scatter_fraction"] for r in pts]
        a0.plot(xs, [r["e2e_speedup"] for r in pts], "o-", label=f"{res} vs block-sparse")
        a0.plot(xs, [r["e2e_speedup_vs_dense"] for r in pts], "x--", label=f"{res} vs dense FA3")
        a0.axhline(PAPER[res][0], color="0.5", lw=0.8, ls=":")
    a0.axhspan(*PAPER_RANGE, color="0.9", label="paper 1.41-1.65 (v1)")
    a0.axhline(1.0, color="k", lw=0.5)
    a0.set_xlabel("scattered fraction of kept slices (70% slice sparsity)")
    a0.set_ylabel("end-to-end speedup")
    a0.set_title("FG-Attn vs mask structure (0 = local window)")
    a0.legend(fontsize=6)
    if sweep:
        for video in VIDEO_GRIDS:
            for radius in SWEEP_RADII:
                pts = [r for r in sweep if r["video"] == video and r["radius"] == radius]
                a1.plot(
                    [r["long_range_keys"] for r in pts],
                    [r["e2e_speedup"] for r in pts],
                    "o-",
                    label=f"{video}, ±{radius} patches",
                )
        a1.axhspan(*PAPER_RANGE, color="0.85", label="paper 1.41-1.65")
        a1.axhline(1.0, color="k", lw=0.5)
        a1.set_xlabel("random long-range keys per query")
        a1.set_ylabel("end-to-end speedup")
        a1.set_title("window + random keys")
        a1.legend(fontsize=6)
