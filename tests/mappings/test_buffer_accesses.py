"""Compute-side buffer accesses and the in-place rule of the generic lowering (issues 10, 13).

Every Einsum of a fused group reads its operands from the innermost level that keeps them and
writes its output there, with the loop order's reuse (``mappings._reuse`` module doc); the
lowering charges those accesses at the level's per-byte energy and holds its ports for them
(``mappings._lower`` module doc). An intermediate written element-wise over a dead tile of the
same ranks takes that tile's space (``SN = exp(QK - M)`` over ``QK``).

The hand counts below use the 3-pass attention cascade at B = H = 1, 16 queries x 16 keys,
head dim 8, bf16 (2 B per element): a score-shaped tensor is 16 x 16 x 2 = 512 B, Q, K, V
and the output 16 x 8 x 2 = 256 B, a per-row tensor (M, SD) 16 x 2 = 32 B.
"""

from __future__ import annotations

import pytest

from archsim import estimate, load_arch
from mappings import lower
from mappings._flat_mapping import flat_mapping
from mappings._mapping import FusionGroup, LevelMapping, Mapping
from mappings._reuse import footprints
from mappings._roles import attention_roles
from mappings._splits import apply_splits
from mappings._tensors import group_tensors, in_place
from workloads import get_workload, parse_cascade

SCORE, ROW, VEC = 512, 32, 256  # bytes: 16x16 scores, 16 per-row values, 16x8 Q/K/V/out
CORE = ("QK", "M", "SN", "SD", "A", "AV")
ON_CHIP = ("QK", "M", "SN", "SD", "A")


@pytest.fixture(scope="module")
def fm():
    return load_arch("fusemax")


@pytest.fixture(scope="module")
def mha3():
    return get_workload("mha", B=1, H=1, S=16, D=8, passes=3)


def _group(glb_m: int = 1, rf_keep: tuple[str, ...] = ()) -> FusionGroup:
    """The whole 3-pass core in one group: the buffer holds every tensor, the 2D array's
    registers ``rf_keep``; keys and queries spread over the array (``16 / glb_m`` keys at a
    time, ``glb_m`` key tiles walked at the buffer level), features in time inside the PEs
    (``e`` then ``f``); the divide on the 1D array."""
    return FusionGroup(
        einsums=CORE,
        levels=(
            LevelMapping(level="DRAM"),
            LevelMapping(level="GLB", temporal={"m": glb_m} if glb_m > 1 else {}),
            LevelMapping(
                level="RF2D",
                temporal={"e": 8, "f": 8},
                order=("e", "f"),
                spatial={"m": 16 // glb_m, "p": 16},
                spatial_axis={"m": "x", "p": "y"},
                keep=rf_keep,
            ),
        ),
        on_chip=ON_CHIP,
        compute="pe2d",
        units={"A": "pe1d"},
    )


def _bytes(prog, src: str, dst: str, tensor: str) -> int:  # noqa: ANN001
    body = prog.phases[0].body
    return sum(
        t.bytes * prog.phases[0].total_trips
        for t in (*body.loads, *body.stores)
        if (t.src, t.dst, t.tensor) == (src, dst, tensor)
    )


def test_buffer_accesses_counted_per_einsum_by_hand(fm, mha3):
    prog = lower(mha3, Mapping(groups=(_group(),)), fm)
    # reads: Q, K by QK; QK by M and by SN; M by SN; SN by SD and by A; SD by A; A and V by
    # AV. Every operand is stationary under the innermost loops over other ranks (the
    # feature loops), so each is read once per Einsum that uses it.
    reads = VEC + VEC + 2 * SCORE + ROW + 2 * SCORE + ROW + SCORE + VEC
    writes = SCORE + ROW + SCORE + ROW + SCORE + VEC  # QK M SN SD A AV, once each
    assert prog.meta["buffer_accesses"]["GLB"] == {
        "read": reads,
        "write": writes,
        "not_charged": 0.0,
    }
    assert (reads, writes) == (3392, 1856)
    # into the registers of the unit that runs the reader: the divide's operands to the 1D array
    assert _bytes(prog, "GLB", "RF2D", "QK") == 2 * SCORE
    assert _bytes(prog, "GLB", "RF2D", "SN") == SCORE  # SD (2D array)
    assert _bytes(prog, "GLB", "RF1D", "SN") == SCORE  # A (1D array)
    assert _bytes(prog, "RF1D", "GLB", "A") == SCORE
    # charged at the preset's per-byte energies (fusemax.yaml GLB: 484.97 / 451.30 pJ per
    # 64-bit access of the artifact's ERT = 60.621589 / 56.412839 pJ/B), with the DRAM fills
    # of Q, K, V (GLB writes) and the output's write-back (a GLB read)
    r = estimate(prog, fm)
    glb = fm.level("GLB")
    assert glb.read_energy_pj_per_byte == pytest.approx(60.621589)
    assert glb.write_energy_pj_per_byte == pytest.approx(56.412839)
    assert r.energy_breakdown_j["GLB.read"] == pytest.approx((reads + VEC) * 60.621589e-12)
    assert r.energy_breakdown_j["GLB.write"] == pytest.approx((writes + 3 * VEC) * 56.412839e-12)
    assert r.bytes_by_level["GLB"] == pytest.approx(reads + writes + 4 * VEC)


def test_streamed_operand_read_per_use_stationary_one_once(fm, mha3):
    # two key tiles walked at the buffer level, outside the feature loops: Q (no key rank)
    # changes with the feature loop inside the key loop, so it streams once per key tile;
    # K walks with the key loop: once. The output, summed over keys, is written once per key
    # tile and its partial sum read back once.
    prog = lower(mha3, Mapping(groups=(_group(glb_m=2),)), fm)
    assert _bytes(prog, "GLB", "RF2D", "Q") == 2 * VEC
    assert _bytes(prog, "GLB", "RF2D", "K") == VEC
    assert _bytes(prog, "RF2D", "GLB", "AV") == 2 * VEC
    assert _bytes(prog, "GLB", "RF2D", "AV") == VEC
    acc = prog.meta["buffer_accesses"]["GLB"]
    assert (acc["read"], acc["write"]) == (3392 + VEC + VEC, 1856 + VEC)


def test_register_accesses_are_reported_not_charged(fm, mha3):
    # the score kept in the 2D array's registers: its reads by the 2D array's Einsums (M, SN)
    # are register accesses, reported per level and not in the program
    prog = lower(mha3, Mapping(groups=(_group(rf_keep=("QK",)),)), fm)
    rf = prog.meta["buffer_accesses"]["RF2D"]
    assert rf["read"] == 2 * SCORE
    assert rf["write"] == SCORE
    assert rf["not_charged"] == rf["read"] + rf["write"]
    assert _bytes(prog, "GLB", "RF2D", "QK") == SCORE  # one fill of the registers' tile
    assert prog.meta["compute_side_bytes"]["RF2D"] == 3 * SCORE


def test_in_place_rule_pairs_dead_same_shaped_tiles():
    three = get_workload("mha", B=1, H=1, S=16, D=8, passes=3)
    one = get_workload("mha", B=1, H=1, S=16, D=8, passes=1)
    whole = FusionGroup(einsums=tuple(e.name for e in three.cascade.einsums), levels=())
    assert in_place(three, whole) == {"SN": "QK", "A": "SN"}
    whole1 = FusionGroup(einsums=tuple(e.name for e in one.cascade.einsums), levels=())
    # SLN = exp(QK - RM) over the tile's scores; PRM reads RM, a running state: not in place
    assert in_place(one, whole1) == {"SLN": "QK"}
    # QK read after SN (by its own Einsum here) or a cascade output stays live: no sharing
    text = """
    tensor X[m,p] : bf16
    Y[m,p] = exp(X[m,p])
    Z[m,p] = Y[m,p] * Y[m,p]
    W[m,p] = Z[m,p] + Y[m,p]
    """
    c = parse_cascade(text, name="chain", params={"M": 4, "P": 4})
    from mappings._api import FileWorkload

    w = FileWorkload("chain", c, dict(c.params), c.rank_sizes())
    g = FusionGroup(einsums=("Y", "Z", "W"), levels=())
    # Z reads Y, but W reads Y after Z: Y lives on; W reads Z (dead after W) at its indices
    assert in_place(w, g) == {"W": "Z"}
    assert in_place(w, FusionGroup(einsums=("Y", "Z"), levels=())) == {}  # Y read outside


def test_in_place_scores_take_one_tile_of_the_buffer(mha3):
    g = _group()
    per = footprints(g, group_tensors(mha3, g), mha3.sizes)[1]
    # one score tile (QK's), SN and A written over it
    assert per == {"Q": VEC, "K": VEC, "V": VEC, "AV": VEC, "M": ROW, "SD": ROW, "QK": SCORE,
                   "SN": 0, "A": 0}  # fmt: skip


def test_flat_holds_twice_the_rows_at_xlm_64k():
    # XLM (16 heads x 128) at 64K tokens on the flat preset (32 MiB): one score-shaped tile
    # of 128 rows x 65536 keys (16 MiB) fits where three of them did not (64 rows before)
    arch = load_arch("flat")
    w = get_workload("mha", B=64, H=16, S=65536, D=128, passes=3)
    m, chosen = flat_mapping(w, arch, attention_roles(w.cascade))
    assert chosen == {"rows": 128, "granularity": "row", "scores_offchip": False}
    (g,) = [g for g in m.groups if "QK" in g.einsums]
    per = footprints(g, group_tensors(apply_splits(w, m.splits), g), w.sizes)[1]
    assert per["QK"] == 128 * 65536 * 2
    assert per["SN"] == per["A"] == 0


def test_a_remainder_group_reads_only_its_rows(fm):
    # FuseMax's recipe at 65,536 query rows in groups of 31,744 (a 2,048-row tail group) walks
    # the same 256 query tiles as in groups of 32,768: the array reads K and V from the
    # buffer once per query tile either way (a padded 3 x 124 tiles would read 45% more)
    from mappings import simulate_workload

    def run(qg: int):  # noqa: ANN202
        return simulate_workload(
            fm,
            "mha",
            params={"S": 65536, "B": 1, "H": 2, "D": 64},
            dataflow="fusemax",
            knobs={"q_group": qg},
            engine="analytic",
        ).result

    even, odd = run(32768), run(31744)
    assert odd.buffer_accesses["GLB"] == even.buffer_accesses["GLB"]
    assert odd.cycles == pytest.approx(even.cycles, rel=1e-3)


def test_an_einsum_walks_an_operand_by_its_own_index_variables(fm):
    # linear attention's intra-chunk scores AI = Q[pc,pi,e] * K[pc,mi,e]: K's key chunks are
    # indexed by the query chunk pc, so the loop over pc walks K (once over it), not a loop
    # over another rank that re-reads it 128 times
    from mappings import get_dataflow
    from mappings._lower import scaled_moves

    w = get_workload("linear", B=1, H=8, S=8192, D=64)
    plan = get_dataflow("fusemax")(w, fm, {})
    ws = apply_splits(w, plan.mapping.splits)
    (g,) = [g for g in plan.mapping.groups if "AI" in g.einsums]
    reads = {mv.tensor: mv.src_bytes for mv in scaled_moves(ws, g, group_tensors(ws, g), {})
             if mv.einsum == "AI" and not mv.upward}  # fmt: skip
    k_bytes = 8 * 8192 * 64 * 2
    assert reads == {"Q": k_bytes, "K": k_bytes}


def test_reads_never_exceed_the_einsums_iteration_points(fm):
    # a 1D convolution written with a condition coupling its ranks (as push_memory_conv.ein):
    # the loop-nest count is dense over (y, u, r) -- 8 x 6 reads of I, 6 x 8 x 3 of W --, but
    # the Einsum has 6 x 3 = 18 points (MACs): no operand is read more often than that
    from mappings._api import FileWorkload

    text = """
    param N = 8
    param K = 3
    param NO = 6
    rank y : NO
    rank u : N
    rank r : K
    tensor I[u] : bits=16
    tensor W[r] : bits=16
    O[y] = I[u] * W[r] if u - y == r
    """
    c = parse_cascade(text, name="conv1d")
    w = FileWorkload("conv1d", c, dict(c.params), c.rank_sizes(dict(c.params)))
    g = FusionGroup(
        einsums=("O",),
        levels=(
            LevelMapping(level="DRAM"),
            LevelMapping(level="GLB", temporal={"y": 6, "u": 8, "r": 3}, order=("y", "u", "r")),
        ),
        compute="pe2d",
    )
    prog = lower(w, Mapping(groups=(g,)), fm)
    assert _bytes(prog, "GLB", "RF2D", "I") == 18 * 2
    assert _bytes(prog, "GLB", "RF2D", "W") == 18 * 2
    assert _bytes(prog, "RF2D", "GLB", "O") == 6 * 2  # stationary over u and r: once each
    assert prog.meta["buffer_accesses"]["GLB"] == {"read": 72, "write": 12, "not_charged": 0}
