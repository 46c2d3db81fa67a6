"""Unified-buffer reproduction at CI size (``archsim reproduce push-memory --fast``).

Tolerances: the paper's 4.7x runtime and 4.3x energy efficiency (abstract) are information
checks, because the CGRA's clock and array and the FPGA's clock and energies are assumptions
(``_push_memory.ASSUMPTIONS``); today the model gives 2.01x (2.98x with an ideal host memory)
and 7.1x, a documented miss (1.65x before the event engine pipelined its loads, 2026-12-05; 1.54x
while the PEs' operand reads from the push memory were charged per MAC, before the window rule
and the weight-stationary layer schedules). Every model figure is held within 5% of what it gave
when this test was written, so a model change is seen. Behaviour: the stencil cascades compute
the convolution, the push memory sustains one window per cycle, the PEs read each input window
once per output pixel and each weight once per output row, the image leaves DRAM once, the line
buffer is bounded by the push memory's capacity, and the two architectures perform the same
actions, so the ratios come from their clocks and per-action energies.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from archsim import Architecture
from archsim.cli import main
from archsim.errors import MappingError
from mappings import simulate_workload
from validation.reproduce import reproduce
from validation.reproduce._push_memory import (
    APPS,
    HERE,
    PAPER,
    address_generator_demand,
    app_mapping,
    cgra,
    fpga,
    ideal_host,
    load_app,
    output_stationary,
    run_app,
)
from workloads import execute, parse_cascade

#: Model values of the fast run when this test was written (drift reference, not targets).
MODEL_FAST = {
    "runtime_ratio_vs_fpga": 2.011,
    "runtime_ratio_vs_fpga_ideal_host": 2.976,
    "energy_ratio_vs_fpga": 7.1,
    "energy_ratio_vs_fpga_with_dram": 1.421,
}
MODEL_RUNTIME_BY_APP = {"gaussian": 2.260, "conv3x3": 2.948, "depthwise3x3": 1.221}
DRIFT = 0.05


@pytest.fixture(scope="module")
def rep():
    return reproduce("push-memory", fast=True)


@pytest.mark.parametrize("key", sorted(MODEL_FAST))
def test_summary_does_not_drift(rep, key):
    assert rep.summary[key] == pytest.approx(MODEL_FAST[key], rel=DRIFT)


@pytest.mark.parametrize("app", sorted(MODEL_RUNTIME_BY_APP))
def test_per_app_runtime_ratio_does_not_drift(rep, app):
    row = next(r for r in rep.tables["per_app"] if r["app"] == app)
    assert row["runtime_ratio"] == pytest.approx(MODEL_RUNTIME_BY_APP[app], rel=DRIFT)


def test_mechanism_checks_gate_and_the_headline_is_information(rep):
    assert rep.ok
    gated = [c for c in rep.checks if c.gate]
    assert len(gated) == 3 * 2 * len(APPS)
    info = {c.name: c for c in rep.checks if not c.gate}
    assert {c.target for c in info.values()} == set(PAPER.values())
    # the documented miss: the model's runtime ratio is below, its energy ratio above the paper
    assert not any(c.ok for c in info.values())


def test_gaussian_cascade_is_a_3x3_correlation():
    text = (HERE / APPS[0].file).read_text()
    cas = parse_cascade(text, name="g", params={"N": 7, "NO": 5})
    rng = np.random.default_rng(0)
    img, w = rng.standard_normal((7, 7)), rng.standard_normal((3, 3))
    out = execute(cas, {"I": img, "W": w})["B"]
    want = np.array([[np.sum(img[y : y + 3, x : x + 3] * w) for x in range(5)] for y in range(5)])
    np.testing.assert_allclose(out, want, rtol=1e-12)


def test_conv_cascade_is_a_multichannel_convolution():
    cas = parse_cascade(
        (HERE / APPS[1].file).read_text(), name="c", params={"C": 2, "F": 3, "N": 6, "NO": 4}
    )
    rng = np.random.default_rng(1)
    img, w = rng.standard_normal((2, 6, 6)), rng.standard_normal((3, 2, 3, 3))
    out = execute(cas, {"I": img, "W": w})["O"]
    want = np.einsum(
        "cyxrs,fcrs->fyx",
        np.lib.stride_tricks.sliding_window_view(img, (3, 3), axis=(1, 2)),
        w,
    )
    np.testing.assert_allclose(out, want, rtol=1e-12)


@pytest.mark.parametrize("app", APPS, ids=lambda a: a.name)
def test_both_architectures_do_the_same_actions(app):
    c, f = run_app(app, cgra()), run_app(app, fpga())
    for key in ("dram_bytes", "mem_bytes", "macs", "outputs"):
        assert c[key] == f[key], key
    # the image leaves DRAM once: the stencil's reuse is in the push memory
    assert c["dram_bytes"] == pytest.approx(c["compulsory_bytes"], rel=0.02)


@pytest.mark.parametrize("app", APPS, ids=lambda a: a.name)
def test_without_host_latency_the_ratio_is_the_clock_ratio(app):
    c, f = run_app(app, ideal_host(cgra())), run_app(app, ideal_host(fpga()))
    clock_ratio = cgra().clock.core_hz / fpga().clock.core_hz
    assert f["seconds"] / c["seconds"] == pytest.approx(clock_ratio, rel=0.02)
    assert c["cycles"] == pytest.approx(c["ideal_cycles"], rel=0.03)


def test_host_latency_costs_the_faster_clock_more_cycles():
    c = run_app(APPS[0], cgra())
    f = run_app(APPS[0], fpga())
    assert c["cycles"] / c["ideal_cycles"] > 1.3 > f["cycles"] / f["ideal_cycles"]


def test_a_host_bandwidth_bound_layer_loses_the_clock_advantage():
    dw = next(a for a in APPS if a.name == "depthwise3x3")
    c = run_app(dw, cgra())
    host_s = c["dram_bytes"] / cgra().level("DRAM").read_bw_bytes_per_s
    # the shared 19.2 GB/s host bounds the CGRA: it runs at that bound, not at its clock
    assert host_s <= c["seconds"] <= 1.05 * host_s
    ratios = {a.name: run_app(a, fpga())["seconds"] / run_app(a, cgra())["seconds"] for a in APPS}
    assert min(ratios, key=ratios.__getitem__) == "depthwise3x3"


def _with_push_memory(arch: Architecture, capacity: int) -> Architecture:
    raw = arch.to_dict()
    next(lv for lv in raw["levels"] if lv["name"] == "MEM")["capacity_bytes"] = capacity
    return Architecture.from_dict(raw, source="smaller push memory")


def test_the_line_buffer_is_bounded_by_the_push_memory_capacity():
    app = APPS[0]  # keeps the 64x64 16-bit image and 3x3 weights: 8,210 B
    ok = _with_push_memory(cgra(), 3 * 4096)
    simulate_workload(ok, load_app(app), mapping=app_mapping(app), engine="analytic")
    small = _with_push_memory(cgra(), 2 * 4096)
    with pytest.raises(MappingError, match="overflows MEM"):
        simulate_workload(small, load_app(app), mapping=app_mapping(app), engine="analytic")


def test_cgra_memory_level_is_the_lake_tiles():
    mem = cgra().level("MEM")
    assert mem.capacity_bytes == 128 * 512 * 64 // 8  # 128 tiles of 512 x 64 b
    assert mem.read_bw_bytes_per_cycle == 128 * 2 * 2  # 2 output ports of 16 bits each
    assert fpga().clock.core_hz == pytest.approx(cgra().clock.core_hz / 3.0)


def test_cli_json_keys_csv_and_plot(tmp_path, capsys):
    code = main(["reproduce", "push-memory", "--fast", "--json", "--out", str(tmp_path)])
    data = json.loads(capsys.readouterr().out)
    assert code == 0
    assert {"runtime_ratio_vs_fpga", "energy_ratio_vs_fpga", "tables", "checks"} <= set(data)
    assert (tmp_path / "per_app.csv").stat().st_size > 0
    assert (tmp_path / "push-memory.png").stat().st_size > 0


def test_the_schedules_streams_fit_the_lake_address_generators():
    mem = cgra().level("MEM")
    for app in APPS:
        streams, loops = address_generator_demand(app)
        assert streams <= mem.address_generators
        assert loops <= mem.address_generator_loops == 6
    # conv3x3: I, W and the output's partial sums each in and out; loops y c x u v
    assert address_generator_demand(APPS[1]) == (6, 5)


def test_a_level_without_address_generators_cannot_push_the_schedule():
    plain = cgra().with_updates(
        {"levels.MEM.address_generators": 0, "levels.MEM.address_generator_loops": 0}
    )
    with pytest.raises(MappingError, match="address_generators"):
        run_app(APPS[0], plain)
    shallow = cgra().with_updates({"levels.MEM.address_generator_loops": 4})
    run_app(APPS[0], shallow)  # gaussian walks 4 loops (y x u v)
    with pytest.raises(MappingError, match=r"address_generator_loops.*>= 5"):
        run_app(APPS[1], shallow)  # conv3x3 walks 5


def test_blur2_cascade_is_two_chained_correlations():
    cas = parse_cascade(
        (HERE / "push_memory_blur2.ein").read_text(), name="b", params={"N": 8, "M": 6, "O": 4}
    )
    rng = np.random.default_rng(2)
    img, w = rng.standard_normal((8, 8)), rng.standard_normal((3, 3))
    win = np.lib.stride_tricks.sliding_window_view
    once = np.einsum("yxrs,rs->yx", win(img, (3, 3)), w)
    np.testing.assert_allclose(
        execute(cas, {"I": img, "W": w})["B"], np.einsum("yxrs,rs->yx", win(once, (3, 3)), w)
    )


@pytest.mark.parametrize(("name", "dram_bytes"), [("harris", 71_370_348.0), ("blur2", 33_020.0)])
def test_documented_multi_stage_limitation_still_holds(name, dram_bytes):
    """docs/reproductions.md (push-memory, point 3): the generic lowering cannot keep a
    multi-stage stencil pipeline in the push memory. If this fails the lowering changed: run
    these pipelines in the reproduction and update the docs."""
    from mappings._api import resolve_workload

    wl = resolve_workload(str(HERE / f"push_memory_{name}.ein"), {})
    rep = simulate_workload(
        cgra(), wl, mapping=HERE / f"push_memory_{name}_map.yaml", engine="analytic"
    )
    assert rep.result.dram_bytes == pytest.approx(dram_bytes, rel=1e-6)


def _accesses(app, arch):  # noqa: ANN001, ANN202
    """(compute-side MEM reads, transfers by (tensor, src, dst)) of ``app``'s lowered program."""
    from mappings import lower

    prog = lower(load_app(app), app_mapping(app), arch)
    (ph,) = prog.phases
    moved: dict[tuple[str, str, str], int] = {}
    for t in (*ph.body.loads, *ph.body.stores):
        key = (t.tensor, t.src, t.dst)
        moved[key] = moved.get(key, 0) + t.bytes * ph.total_trips
    return prog.meta["buffer_accesses"]["MEM"]["read"], moved


def test_the_pes_read_each_window_once_per_output_pixel():
    # the window rule (mappings._reuse): output pixel (y, x) reads the 3 x 3 input window of its
    # taps once -- not once per point of the dense (u, v, y, x, r, s) space, nor the whole
    # image per pixel -- and the 3 x 3 weights stay in their PEs
    gauss = APPS[0]
    reads, moved = _accesses(gauss, cgra())
    assert moved[("I", "MEM", "REG")] == 62 * 62 * 9 * 2
    assert moved[("I", "DRAM", "MEM")] == pytest.approx(64 * 64 * 2, abs=62)  # rounding per row
    assert reads == pytest.approx(62 * 62 * 9 * 2 + 9 * 2, abs=62)


def test_conv_reads_each_weight_once_per_output_row_and_keeps_partial_sums_in_mem():
    conv = APPS[1]
    _, moved = _accesses(conv, cgra())
    rows, pixels, blocks = 30, 30 * 30, 8  # output rows, output pixels, input-channel blocks
    # each output pixel reads its 3 x 3 window of every input channel (16), multicast to the
    # 16 filters; each of the 2,304 weights once per output row (it stays in its PE while the
    # row streams past)
    assert moved[("I", "MEM", "REG")] == pixels * 16 * 9 * 2
    assert moved[("W", "MEM", "REG")] == rows * 16 * 16 * 9 * 2
    # the 16 x 30 partial sums of a row go to the push memory after each channel block and
    # come back for the next (all but the first)
    assert moved[("O", "REG", "MEM")] == blocks * pixels * 16 * 2
    assert moved[("O", "MEM", "REG")] == (blocks - 1) * pixels * 16 * 2


@pytest.mark.parametrize("app", APPS[1:], ids=lambda a: a.name)
def test_the_output_stationary_order_is_bound_by_the_push_memory_ports(app):
    # _push_memory.SCHEDULE_NOTE: with the channel blocks inside each pixel every PE needs a
    # new weight per cycle, and the 512 B/cycle push memory cannot feed the weights and the
    # windows: the PEs wait on it (ideal host, so nothing else limits)
    host = ideal_host(cgra())
    chosen, other = run_app(app, host), run_app(output_stationary(app), host)
    assert chosen["cycles"] <= 1.03 * chosen["ideal_cycles"]
    assert other["cycles"] >= 1.12 * other["ideal_cycles"]
    mem_bw = cgra().level("MEM").read_bw_bytes_per_cycle
    reads, _ = _accesses(output_stationary(app), cgra())
    assert reads / mem_bw > other["ideal_cycles"]  # the reads alone outlast the MACs
    # the FPGA's block RAM (16 KiB/cycle) feeds either order
    f_chosen, f_other = (
        run_app(app, ideal_host(fpga())),
        run_app(output_stationary(app), ideal_host(fpga())),
    )
    assert f_other["cycles"] == pytest.approx(f_chosen["cycles"], rel=0.02)
