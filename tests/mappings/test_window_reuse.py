"""The window (halo) rule of the reuse analysis (``mappings._reuse`` module doc).

A convolution written as a cascade indexes its input by a rank the condition ties to two others
(``O[y] = I[u] * W[r] if u - y == r``). The rank-based reuse rule sees ``I`` walked by ``u``
only, so a PE tile's reads are counted over the dense ``(u, y, r)`` space; the window rule walks
``I`` by ``y`` and ``r``: a tile spanning ``t_y`` outputs and ``t_r`` taps reads the
``t_y + t_r - 1`` input elements under it (its halo included) once.

Hand counts: a 1D convolution of an 18-element input with 3 taps (16 outputs), bf16 (2 B per
element), on the ``fusemax`` preset (DRAM, the global buffer GLB, the 2D array's registers).
"""

from __future__ import annotations

import pytest

from archsim import load_arch
from mappings import lower
from mappings._api import FileWorkload
from mappings._mapping import FusionGroup, LevelMapping, Mapping
from mappings._reuse import Window, footprints, group_moves
from mappings._tensors import group_tensors
from workloads import count, parse_cascade

CONV = """
param N = 18
param K = 3
param NO = 16
rank y : NO
rank u : N
rank r : K
tensor I[u] : bits=16
tensor W[r] : bits=16
O[y] = I[u] * W[r] if u - y == r
"""
# stride 2: output y reads inputs 2y .. 2y + 2 (33 = 2 x 15 + 3 inputs)
STRIDED = CONV.replace("param N = 18", "param N = 33").replace("u - y == r", "u == 2*y + r")


@pytest.fixture(scope="module")
def fm():
    return load_arch("fusemax")


def _workload(text: str) -> FileWorkload:
    c = parse_cascade(text, name="conv1d")
    return FileWorkload("conv1d", c, dict(c.params), c.rank_sizes(dict(c.params)))


def _group(n: int, y_pe: int, r_pe: int, *, u_at_dram: bool = False) -> FusionGroup:
    """``y_pe`` outputs x ``r_pe`` taps over the array; the rest of ``r`` walked at the buffer;
    ``u`` (``n`` inputs) held whole in the buffer and the rest of ``y`` walked there, or both
    walked at DRAM (then the buffer holds only the window of the output tile it feeds: a line
    buffer)."""
    glb = {"r": 3 // r_pe}
    top: dict[str, int] = {}
    (top if u_at_dram else glb).update({"y": 16 // y_pe, "u": n})
    return FusionGroup(
        einsums=("O",),
        levels=(
            LevelMapping(level="DRAM", temporal=top, order=("y", "u")),
            LevelMapping(
                level="GLB",
                temporal={r: f for r, f in glb.items() if f > 1},
                order=("y", "r", "u"),
            ),
            LevelMapping(
                level="RF2D",
                spatial={r: f for r, f in (("y", y_pe), ("r", r_pe)) if f > 1},
                spatial_axis={"y": "x", "r": "y"},
            ),
        ),
        compute="pe2d",
    )


def _moved(prog, tensor: str, src: str, dst: str) -> int:  # noqa: ANN001
    (ph,) = prog.phases
    return sum(
        t.bytes * ph.total_trips
        for t in (*ph.body.loads, *ph.body.stores)
        if (t.tensor, t.src, t.dst) == (tensor, src, dst)
    )


def test_the_condition_gives_the_input_a_window_and_the_taps_none():
    w = _workload(CONV)
    g = _group(18, 4, 3)
    by = {t.name: t for t in group_tensors(w, g)}
    (use,) = by["I"].readers
    assert use.windows == (Window("u", (("y", 1), ("r", 1))),)
    # r = u - y would leave r's range (u - y spans -15 .. 17): not a window of W
    assert by["W"].readers[0].windows == ()
    assert by["O"].writer.windows == ()
    (s,) = group_tensors(_workload(STRIDED), g)[0].readers
    assert s.windows == (Window("u", (("y", 2), ("r", 1))),)


def test_a_window_that_would_leave_the_inputs_range_is_not_one():
    # u - y == r + 5 with 18 inputs: y + r + 5 reaches 22, past u's last index
    w = _workload(CONV.replace("u - y == r", "u - y == r + 5"))
    (use,) = group_tensors(w, _group(18, 4, 3))[0].readers
    assert use.windows == ()


@pytest.mark.parametrize(
    ("y_pe", "elems"),
    [
        (4, 4 * (4 + 3 - 1)),  # 4 tiles of 4 outputs, each 6 inputs: the halo read per tile
        (16, 18),  # the whole output at once: each input once
        (1, 16 * 3),  # one output at a time: 3 inputs each (one per tap and point)
    ],
)
def test_a_pe_tile_reads_its_window_once(fm, y_pe, elems):
    w = _workload(CONV)
    prog = lower(w, Mapping(groups=(_group(18, y_pe, 3),)), fm)
    assert _moved(prog, "I", "GLB", "RF2D") == elems * 2
    # the taps stay in their PEs (no loop over r above them)
    assert _moved(prog, "W", "GLB", "RF2D") == 3 * 2


def test_the_dense_rank_space_would_read_every_point(fm):
    # without the window the input is walked by u alone: the 4-output tile re-reads it per
    # point of the Einsum (16 x 3 = 48 MACs), twice the 24 elements its windows hold
    w = _workload(CONV)
    g = _group(18, 4, 3)
    prog = lower(w, Mapping(groups=(g,)), fm)
    points = count(w.cascade).macs
    assert points == 48
    assert _moved(prog, "I", "GLB", "RF2D") == 24 * 2 < points * 2


def test_taps_walked_in_time_read_one_input_each_step(fm):
    # r walked at the buffer (tile extent 1), 4 outputs over the array: each step reads the 4
    # inputs under its outputs; 4 output tiles x 3 taps x 4 = 48 = every point once
    w = _workload(CONV)
    prog = lower(w, Mapping(groups=(_group(18, 4, 1),)), fm)
    assert _moved(prog, "I", "GLB", "RF2D") == 4 * 3 * 4 * 2


def test_a_strided_window_spans_the_stride(fm):
    # u = 2y + r: 4 outputs x 3 taps touch 2 x 3 + 2 + 1 = 9 inputs; 4 tiles
    w = _workload(STRIDED)
    prog = lower(w, Mapping(groups=(_group(33, 4, 3),)), fm)
    assert _moved(prog, "I", "GLB", "RF2D") == 4 * 9 * 2
    # one tap at a time: 4 outputs touch 4 inputs (2 apart), not 2 x 3 + 1
    prog = lower(w, Mapping(groups=(_group(33, 4, 1),)), fm)
    assert _moved(prog, "I", "GLB", "RF2D") == 4 * 3 * 4 * 2


def test_a_buffer_holding_the_whole_input_fills_it_once(fm):
    w = _workload(CONV)
    prog = lower(w, Mapping(groups=(_group(18, 4, 3),)), fm)
    assert _moved(prog, "I", "DRAM", "GLB") == 18 * 2


def test_a_line_buffer_refills_the_halo_of_each_tile(fm):
    # u walked at DRAM: the buffer holds only the window its tile needs (4 outputs + 3 taps
    # - 1 = 6 inputs) and fills it per output tile: 4 x 6 = 24 inputs from DRAM, 6 of them
    # the halo re-read; the footprint is the 6-element line buffer
    # (the analysis' bytes: the lowering spreads them over the 4 x 18 DRAM-level trips, the
    # degenerate loop over u included, rounding each trip up to a whole byte)
    w = _workload(CONV)
    g = _group(18, 4, 3, u_at_dram=True)
    tensors = group_tensors(w, g)
    fills = [mv for mv in group_moves(g, tensors) if (mv.tensor, mv.src, mv.dst) == ("I", 0, 1)]
    assert sum(mv.dst_bytes for mv in fills) == 4 * 6 * 2
    fp = footprints(g, tensors, w.sizes)
    assert fp[1]["I"] == 6 * 2
