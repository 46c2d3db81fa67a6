"""Unified buffer (Liu et al., arXiv 2108.05987): a push-memory CGRA against an FPGA.

The paper's claim (abstract, ``../shared/seeds/002_*.txt``): Halide image-processing and ML
applications compiled through the *unified buffer* abstraction run on a CGRA with push
memories with 4.7x better runtime and 4.3x better energy efficiency than on an FPGA.

This module models the mechanism on two architectures and takes the ratios from the two
simulations:

* **push_cgra** (``push_cgra.yaml``): the memory level ``MEM`` is the array's push-memory
  tiles (StanfordAHA/lake ``LakeTop``: 512 x 64 b single-port SRAM, 2 in / 2 out ports,
  6-deep address generators). A tile holds line buffers and streams stencil windows to the
  PEs from its address generators; there are no load/store instructions, so a PE sees one
  window per cycle and the stream's only limits are the level's capacity and ports.
* **push_fpga** (``push_fpga.yaml``): the same schedule in block RAM and DSP slices of a
  ZCU102-class FPGA, at its own clock and energies.

Each application is an Einsum cascade (``push_memory_*.ein``): a stencil written with
equality conditions (``B[y,x] = I[u,v] * W[r,s] if u - y == r and v - x == s``), so the
compulsory traffic is the image once and the MAC count is exact. One :class:`~mappings.Mapping`
(the Halide schedule: rows streamed from DRAM, the image in the push memory, the window
unrolled over the PEs) is lowered by the generic lowering and simulated by the event engine
on both architectures. ``runtime_ratio_vs_fpga`` and ``energy_ratio_vs_fpga`` are geometric
means over the applications of FPGA time / CGRA time and FPGA energy / CGRA energy (on-chip
energy: both sides share the host DRAM, whose energy is reported separately).

What is published and what is assumed is listed in :data:`FACTS` and :data:`ASSUMPTIONS`; the
CGRA's clock, array size and the FPGA's clock and energies are not in the stored sources, so
the headline is reported beside the paper as information, and the gated checks hold the
mechanism: one window per cycle from the push memory (with an ideal host memory), the image
read from DRAM once, the lowered MACs equal to the cascade's count. :func:`run_app` refuses a
``MEM`` level whose address generators (``address_generators``, ``address_generator_loops``)
cannot stream the schedule, and the capacity check refuses a line buffer that does not fit.
"""

from __future__ import annotations

import dataclasses
import functools
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from archsim import Architecture, load_arch
from mappings import Mapping, simulate_workload
from mappings._api import FileWorkload
from workloads import Cascade, count, parse_cascade

from ._common import Check, Reproduction, Row, within

__all__ = [
    "APPS",
    "ASSUMPTIONS",
    "FACTS",
    "PAPER",
    "App",
    "SCHEDULE_NOTE",
    "address_generator_demand",
    "app_mapping",
    "cgra",
    "check_push_memory",
    "fpga",
    "ideal_host",
    "load_app",
    "output_stationary",
    "reproduce_push_memory",
    "run_app",
]

HERE = Path(__file__).parent
CGRA_YAML = HERE / "push_cgra.yaml"
FPGA_YAML = HERE / "push_fpga.yaml"

#: Abstract (``../shared/seeds/002_*.txt``): "4.7x better runtime and 4.3x better
#: energy-efficiency as compared to an FPGA".
PAPER = {"runtime_ratio_vs_fpga": 4.7, "energy_ratio_vs_fpga": 4.3}
#: Row tiles in flight: the push memory double-buffers (the next row streams in while this
#: one is read), as the lake tile's aggregator / SRAM / transpose-buffer pipeline does.
DEPTH = 2
#: FPGA clocks of the sensitivity sweep (MHz; full run only).
FPGA_SWEEP_MHZ = (100, 150, 190, 250, 300, 350, 450)
#: Bandwidth multiplier of the host DRAM in :func:`ideal_host`.
IDEAL_HOST_BW = 1000.0
#: Tolerance of the (information-only) headline checks: the clocks and energies are assumed.
TOL = 0.25

#: Published facts used, with where each comes from.
FACTS: tuple[str, ...] = (
    "4.7x runtime, 4.3x energy efficiency vs FPGA: paper abstract (arXiv 2108.05987; "
    "../shared/seeds/002_*.txt)",
    "Physical Unified Buffer: a wide-fetch single-port SRAM macro with built-in address "
    "generation implementing a buffer with two read and two write ports: TACO version's "
    "abstract (http://fredrikbk.com/taco22-ubuffer.html)",
    "memory tile: 16-bit words, 512 x 64 b single-port SRAM (4 KiB), 4-word wide fetch, 2 "
    "input + 2 output ports, 6-level address iterators: StanfordAHA/lake @ 0098cba, "
    "lake/top/lake_top.py (LakeTop defaults)",
    "PE and MEM tiles interleaved by column in one 16-bit tile array: StanfordAHA/garnet @ "
    "00d9cd9, garnet.py",
    "gaussian: 3x3 stencil, 64x64 input, window unrolled 3x3, line-buffered: "
    "StanfordAHA/Halide-to-Hardware @ 04b3c08, apps/hardware_benchmarks/apps/gaussian/"
    "gaussian_generator.cpp",
)
#: What is not in the stored sources and is assumed instead.
ASSUMPTIONS: tuple[str, ...] = (
    "CGRA clock 900 MHz and a 16 x 32 array with one MEM column in four (384 PE + 128 MEM "
    "tiles): not found in the stored sources (the paper's evaluation section is not there)",
    "FPGA: a ZCU102-class XCZU9EG (2,520 DSPs, 912 BRAM36, 16 nm; product table recalled) at "
    "900 MHz / 3.0 = 300 MHz, with 7.1x the CGRA's energy per on-chip action: the FPGA/ASIC "
    "gap with hard blocks of Kuon & Rose (IEEE TCAD 2007), recalled, applied as if the CGRA "
    "were an ASIC (its own reconfiguration overhead is not modelled, so the energy ratio is an "
    "upper estimate)",
    "both run the same Halide schedule (same unrolling, one output per cycle) and share a "
    "19.2 GB/s host DDR4 (64 pJ/B, Accelergy LPDDR4); the paper's per-application results, "
    "FPGA clock and image sizes are not in the stored sources",
    "conv3x3 (C = F = 16, 32x32 input) stands in for the paper's ResNet layers (shapes not "
    "found); 16-bit PE energies are Horowitz 45 nm scaled to 16 nm (archsim/energy.py)",
)


@dataclass(frozen=True)
class App:
    """One application: its cascade file, the Einsum's output, the ranks streamed at each
    level and the window unrolled over the PEs.

    Attributes
    ----------
    name
        Short name (``gaussian``).
    file
        The cascade (``push_memory_*.ein`` next to this module).
    einsum
        The output Einsum's name.
    rows
        The output rank streamed from DRAM (one row of outputs per outer iteration).
    inner
        Ranks iterated at the push-memory level, outermost first, with their trip counts
        (``None``: the rank's full size).
    unroll
        Ranks unrolled over the PE mesh -> (extent, mesh axis ``x``/``y``).
    source
        Where the application and its schedule come from.
    accumulate
        Keep the output's partial sums in the push memory too (a reduction loop at the
        push-memory level sits outside the output's own loops: each unrolled weight stays in
        its PE while a row of outputs streams past it, and the row of partial sums waits in
        the push memory between the reduction's iterations).
    """

    name: str
    file: str
    einsum: str
    rows: str
    inner: tuple[tuple[str, int | None], ...]
    unroll: tuple[tuple[str, int, str], ...]
    source: str
    accumulate: bool = False


APPS: tuple[App, ...] = (
    App(
        "gaussian",
        "push_memory_gaussian.ein",
        "B",
        "y",
        (("x", None), ("u", None), ("v", None)),
        (("r", 3, "x"), ("s", 3, "y")),
        "Halide-to-Hardware gaussian_generator.cpp @ 04b3c08 (3x3 unrolled, line buffer)",
    ),
    App(
        "conv3x3",
        "push_memory_conv.ein",
        "O",
        "y",
        (("c", 8), ("x", None), ("u", None), ("v", None)),
        (("f", 16, "x"), ("r", 3, "y"), ("s", 3, "y"), ("c", 2, "y")),
        "ResNet-style 3x3 layer, C = F = 16 (our sizes): 16 filters x 3x3 taps x 2 channels "
        "unrolled = 288 MACs per cycle; input channels outside the output row (weight "
        "stationary, a row of partial sums in the push memory: SCHEDULE_NOTE)",
        accumulate=True,
    ),
    App(
        "depthwise3x3",
        "push_memory_depthwise.ein",
        "O",
        "y",
        (("c", 2), ("x", None), ("u", None), ("v", None)),
        (("c", 16, "x"), ("r", 3, "y"), ("s", 3, "y")),
        "MobileNet-style depthwise 3x3 layer, C = 32 (our sizes): 16 channels x 3x3 taps "
        "unrolled = 144 MACs per cycle, 16 output pixels per cycle (host-bandwidth hungry); "
        "channel blocks outside the output row (weight stationary: SCHEDULE_NOTE)",
    ),
)


#: Why the layers' schedules walk their channel blocks outside the output row.
SCHEDULE_NOTE = (
    "conv3x3 and depthwise3x3 walk their channel blocks outside the output row (order c x u v "
    "at the push memory): each PE's weight stays put while a row of output pixels streams "
    "past, and conv3x3's row of partial sums (30 x 16 x 2 B) waits in the push memory between "
    "its 8 input-channel blocks. The output-stationary order (x c u v, the channel blocks "
    "inside each pixel, output_stationary()) hands every PE a new weight every cycle, 288 "
    "(conv3x3) or 144 (depthwise3x3) weights x 2 B on top of the input windows, against the "
    "push memory's 512 B/cycle: its ports, not the PEs, then set the pace (with an ideal host "
    "1.23x and 1.16x the ideal cycles, against 1.01x and 1.02x)"
)


@functools.lru_cache(maxsize=4)
def _arch(path: str) -> Architecture:
    return load_arch(path)


def cgra() -> Architecture:
    """The push-memory CGRA (``push_cgra.yaml``)."""
    return _arch(str(CGRA_YAML))


def fpga() -> Architecture:
    """The FPGA baseline (``push_fpga.yaml``)."""
    return _arch(str(FPGA_YAML))


@functools.lru_cache(maxsize=16)
def load_app(app: App) -> FileWorkload:
    """The application's cascade as a workload (its own parameters)."""
    cas: Cascade = parse_cascade((HERE / app.file).read_text(), name=app.name)
    params = dict(cas.params)
    return FileWorkload(app.name, cas, params, cas.rank_sizes(params))


def app_mapping(app: App) -> Mapping:
    """The Halide schedule as a mapping: output rows streamed from DRAM, the inputs kept in
    the push-memory level ``MEM`` (the line buffer is its capacity), the window unrolled over
    the PE mesh, each output accumulated in the PE registers (and its partial sums in ``MEM``
    when ``app.accumulate``). The PEs read each input window once per output tile, the halo
    included (the window rule of :mod:`mappings._reuse`)."""
    sizes = load_app(app).sizes
    inner = {r: (n if n is not None else sizes[r]) for r, n in app.inner}
    ins = _kept(app)
    return Mapping.model_validate(
        {
            "name": f"unified_buffer_{app.name}",
            "groups": [
                {
                    "einsums": [app.einsum],
                    "compute": "pe",
                    "depth": DEPTH,
                    "levels": [
                        {
                            "level": "DRAM",
                            "order": [app.rows],
                            "temporal": {app.rows: sizes[app.rows]},
                        },
                        {
                            "level": "MEM",
                            "keep": ins,
                            "temporal": inner,
                            "order": [r for r, _ in app.inner],
                        },
                        {
                            "level": "REG",
                            "spatial": {r: n for r, n, _ in app.unroll},
                            "spatial_axis": {r: ax for r, _, ax in app.unroll},
                            "keep": [app.einsum],
                        },
                    ],
                }
            ],
        }
    )


def _kept(app: App) -> list[str]:
    """The tensors the push memory keeps: the inputs, and the output when ``accumulate``."""
    cas = load_app(app).cascade
    ins = sorted({t.name for e in cas.einsums for t in e.inputs})
    return ins + ([app.einsum] if app.accumulate else [])


def address_generator_demand(app: App) -> tuple[int, int]:
    """(streams, loops) the schedule asks of the push memory: two address generators per
    tensor it keeps, one writing the stream into it (from the host, or the PEs' partial
    sums) and one reading the stream out (to the PEs, or the finished outputs to the host);
    each walks the rows loop plus the level's own loops."""
    return 2 * len(_kept(app)), 1 + len(app.inner)


def output_stationary(app: App) -> App:
    """``app`` with the output's loop outermost at the push memory and the output only in the
    PE registers: the schedule :data:`SCHEDULE_NOTE` compares with."""
    first = [(r, n) for r, n in app.inner if r == "x"]
    inner = (*first, *((r, n) for r, n in app.inner if r != "x"))
    return dataclasses.replace(app, inner=inner, accumulate=False)


def check_push_memory(app: App, arch: Architecture) -> None:
    """Refuse an architecture whose ``MEM`` level cannot stream ``app``'s schedule: it must be
    a push memory (``address_generators``) with enough generators and loop depth.

    Raises
    ------
    MappingError
        Naming the level field, what the schedule needs and what the level has.
    """
    from archsim.errors import MappingError

    mem = arch.level("MEM")
    streams, loops = address_generator_demand(app)
    for field, need, have in (
        ("address_generators", streams, mem.address_generators),
        ("address_generator_loops", loops, mem.address_generator_loops),
    ):
        if have < need:
            raise MappingError(
                f"{app.name}: the MEM level cannot push this schedule's streams",
                path=f"levels.MEM.{field}",
                expected=f">= {need}",
                got=have,
            )


def run_app(app: App, arch: Architecture, engine: str = "event") -> Row:
    """Simulate ``app`` on ``arch`` with :func:`app_mapping`: cycles, seconds, energy (total,
    on-chip, DRAM), bytes per level and the counted MACs. The ``MEM`` level must be a push
    memory that can stream the schedule (:func:`check_push_memory`)."""
    check_push_memory(app, arch)
    wl = load_app(app)
    rep = simulate_workload(arch, wl, mapping=app_mapping(app), engine=engine)  # type: ignore[arg-type]
    r = rep.result
    eb = dict(r.energy_breakdown_j)
    dram_j = sum(v for k, v in eb.items() if k.startswith("DRAM."))
    c = count(wl.cascade)
    outputs = math.prod(wl.sizes[x] for x in wl.cascade.einsums[-1].output.ranks)
    macs_per_cycle = math.prod(n for _, n, _ in app.unroll)
    return {
        "app": app.name,
        "arch": arch.name,
        "clock_mhz": r.clock_hz / 1e6,
        "cycles": float(r.cycles),
        "ideal_cycles": c.macs / macs_per_cycle,
        "outputs": float(outputs),
        "seconds": float(r.seconds),
        "energy_j": float(r.energy_j),
        "onchip_energy_j": float(r.energy_j) - dram_j,
        "dram_energy_j": dram_j,
        "dram_bytes": float(r.dram_bytes),
        "mem_bytes": float(dict(r.bytes_by_level).get("MEM", 0.0)),
        "compulsory_bytes": float(c.compulsory_bytes),
        "macs": float(rep.plan.program.meta["ops"]["mac"]),
        "macs_counted": float(c.macs),
        "agen_streams": address_generator_demand(app)[0],
        "agen_loops": address_generator_demand(app)[1],
    }


def ideal_host(arch: Architecture) -> Architecture:
    """``arch`` with a zero-latency host DRAM of ``IDEAL_HOST_BW`` x its bandwidth: what the
    push memory and the PEs alone sustain."""
    raw = arch.to_dict()
    for lv in raw["levels"]:
        if lv["kind"] == "dram":
            lv["latency_cycles"] = 0
            for k in ("read_bw_bytes_per_s", "write_bw_bytes_per_s"):
                lv[k] = lv[k] * IDEAL_HOST_BW
    return Architecture.from_dict(raw, source=f"{arch.name} with an ideal host memory")


def ratio(num: Row, den: Row, key: str) -> float:
    """``num[key] / den[key]`` (e.g. FPGA seconds / CGRA seconds)."""
    return float(num[key]) / float(den[key])


def _geomean(xs: Sequence[float]) -> float:
    return math.exp(sum(math.log(x) for x in xs) / len(xs))


def reproduce_push_memory(*, fast: bool = False) -> Reproduction:
    """Run every application on ``push_cgra`` and ``push_fpga`` (event engine) and compare the
    ratios with the paper's. ``fast`` runs the same points (each simulation takes
    milliseconds) and skips the FPGA clock sweep."""
    a_c, a_f = cgra(), fpga()
    i_c, i_f = ideal_host(a_c), ideal_host(a_f)
    rows: list[Row] = []
    ideal_rows: list[Row] = []
    per_app: list[Row] = []
    for app in APPS:
        rc, rf = run_app(app, a_c), run_app(app, a_f)
        ic, i_ = run_app(app, i_c), run_app(app, i_f)
        rows += [rc, rf]
        ideal_rows += [ic, i_]
        per_app.append(
            {
                "app": app.name,
                "cgra_us": float(rc["seconds"]) * 1e6,
                "fpga_us": float(rf["seconds"]) * 1e6,
                "runtime_ratio": ratio(rf, rc, "seconds"),
                "runtime_ratio_ideal_host": ratio(i_, ic, "seconds"),
                "energy_ratio": ratio(rf, rc, "onchip_energy_j"),
                "energy_ratio_with_dram": ratio(rf, rc, "energy_j"),
                "cgra_cycles_per_ideal": float(rc["cycles"]) / float(rc["ideal_cycles"]),
                "fpga_cycles_per_ideal": float(rf["cycles"]) / float(rf["ideal_cycles"]),
            }
        )

    def gm(key: str) -> float:
        return _geomean([float(r[key]) for r in per_app])

    rt, rt_ideal = gm("runtime_ratio"), gm("runtime_ratio_ideal_host")
    en, en_dram = gm("energy_ratio"), gm("energy_ratio_with_dram")
    headline: list[Row] = [
        {"metric": "runtime ratio vs FPGA (geomean)", "model": rt, "paper": 4.7},
        {"metric": "... with an ideal host memory (geomean)", "model": rt_ideal, "paper": 4.7},
        {"metric": "energy-efficiency ratio vs FPGA, on-chip (geomean)", "model": en, "paper": 4.3},
        {"metric": "energy ratio incl. shared host DRAM (geomean)", "model": en_dram, "paper": "-"},
    ]
    tables: dict[str, list[Row]] = {"headline": headline, "per_app": per_app, "runs": rows}
    tables["runs_ideal_host"] = ideal_rows
    if not fast:
        tables["fpga_clock_sweep"] = _clock_sweep()
    checks = _checks(rows, ideal_rows, rt, en)
    summary = {
        "runtime_ratio_vs_fpga": rt,
        "energy_ratio_vs_fpga": en,
        "runtime_ratio_vs_fpga_ideal_host": rt_ideal,
        "energy_ratio_vs_fpga_with_dram": en_dram,
        "cgra_clock_mhz": a_c.clock.core_hz / 1e6,
        "fpga_clock_mhz": a_f.clock.core_hz / 1e6,
        "apps": [a.name for a in APPS],
    }
    notes = (
        *(f"published: {f}" for f in FACTS),
        *(f"assumed: {a}" for a in ASSUMPTIONS),
        "with an ideal host memory both sides sustain one window per cycle, so the runtime "
        "ratio is the clock ratio (3.0x, runtime_ratio_vs_fpga_ideal_host); with the shared "
        "19.2 GB/s host its ~100 ns latency per row, equal in ns on both sides, costs the "
        "faster CGRA more cycles (gaussian: 1.34x its ideal), and the depthwise layer (16 "
        "pixels in and out per cycle) is host-bandwidth bound on the CGRA, where the FPGA's "
        "slower clock almost matches the host (1.22x: little of the 3x clock gap is left); "
        "the paper's "
        "4.7x needs a larger clock gap (fpga_clock_sweep: ~190 MHz at the ideal host) and a "
        "host that keeps up, neither of which the stored sources describe",
        "both sides perform the same actions (same bytes per level, same MACs: the push "
        "memory and the BRAM line buffer do the same reuse), so the on-chip energy ratio is "
        "the assumed 7.1x per-action gap (no leakage is modelled on either side); the paper's "
        "4.3x is below it, consistent with the CGRA's own interconnect/configuration energy "
        "that this model leaves out; with the shared host DRAM the ratio falls to ~1.4x",
        "the PEs read their operands from MEM (MEM.read, charged at the level's energy and "
        "holding its ports): each input window once per output pixel, its halo included (the "
        "window rule of mappings._reuse: an input row u - y == r is read by the output row y "
        "and the tap r, not once per point of the dense (u, y, r) space), each weight once "
        "per output row",
        SCHEDULE_NOTE,
        "harris, unsharp and the camera pipeline (multi-stage stencils) are not run: in one "
        "fusion group the generic lowering treats the stages' rank spaces as one product "
        "space (push_memory_harris.ein in one group: 71 MB of DRAM traffic against 18 KB "
        "compulsory), and across groups an intermediate goes to DRAM instead of the push "
        "memory (push_memory_blur2.ein: 33 KB against 16 KB)",
    )
    return Reproduction(
        name="push-memory",
        tables=tables,
        summary=summary,
        checks=tuple(checks),
        notes=notes,
        plot=functools.partial(
            _plot,
            per_app=per_app,
            gm={"runtime_ratio": rt, "runtime_ratio_ideal_host": rt_ideal, "energy_ratio": en},
        ),
    )


def _clock_sweep() -> list[Row]:
    """Geomean runtime ratio over :data:`APPS` for FPGA clocks from 100 to 450 MHz, with the
    shared host and with an ideal one (the FPGA clock is an assumption: this shows how the
    headline moves with it)."""
    out: list[Row] = []
    for mhz in FPGA_SWEEP_MHZ:
        raw = fpga().to_dict()
        raw["clock"]["core_hz"] = mhz * 1e6
        a = Architecture.from_dict(raw, source=f"push_fpga at {mhz} MHz")
        host = [ratio(run_app(p, a), run_app(p, cgra()), "seconds") for p in APPS]
        ideal = [
            ratio(run_app(p, ideal_host(a)), run_app(p, ideal_host(cgra())), "seconds")
            for p in APPS
        ]
        out.append(
            {
                "fpga_mhz": mhz,
                "runtime_ratio": _geomean(host),
                "runtime_ratio_ideal_host": _geomean(ideal),
            }
        )
    return out


def _checks(rows: list[Row], ideal_rows: list[Row], rt: float, en: float) -> list[Check]:
    checks: list[Check] = []
    for r, ideal in zip(rows, ideal_rows, strict=True):
        ratio_ = float(ideal["cycles"]) / float(ideal["ideal_cycles"])
        checks.append(
            Check(
                f"{r['app']} on {r['arch']} (ideal host): cycles / (MACs / unrolled MACs)",
                ratio_,
                1.0,
                1.0 <= ratio_ <= 1.10,
                "1.00-1.10 (one window per cycle from the push memory; fill only)",
            )
        )
        checks.append(
            Check(
                f"{r['app']} on {r['arch']}: DRAM bytes / compulsory bytes",
                float(r["dram_bytes"]) / float(r["compulsory_bytes"]),
                1.0,
                within(float(r["dram_bytes"]), float(r["compulsory_bytes"]), 0.02),
                "±2% (stencil reuse in the line buffer: the image is read once)",
            )
        )
        checks.append(
            Check(
                f"{r['app']} on {r['arch']}: lowered MACs / counted MACs",
                float(r["macs"]) / float(r["macs_counted"]),
                1.0,
                within(float(r["macs"]), float(r["macs_counted"]), 1e-9),
                "exact",
            )
        )
    checks += [
        Check(
            "runtime ratio vs FPGA (geomean)",
            rt,
            PAPER["runtime_ratio_vs_fpga"],
            within(rt, PAPER["runtime_ratio_vs_fpga"], TOL),
            f"±{TOL:.0%}",
            gate=False,
        ),
        Check(
            "energy-efficiency ratio vs FPGA (geomean, on-chip)",
            en,
            PAPER["energy_ratio_vs_fpga"],
            within(en, PAPER["energy_ratio_vs_fpga"], TOL),
            f"±{TOL:.0%}",
            gate=False,
        ),
    ]
    return checks


def _plot(fig: object, *, per_app: list[Row], gm: dict[str, float]) -> None:
    from matplotlib.figure import Figure

    assert isinstance(fig, Figure)
    ax = fig.subplots(1, 1)
    names = [str(r["app"]) for r in per_app] + ["geomean"]
    xs = range(len(names))
    bars = (
        ("runtime_ratio", "runtime ratio, shared host"),
        ("runtime_ratio_ideal_host", "runtime ratio, ideal host"),
        ("energy_ratio", "energy ratio, on-chip"),
    )
    for i, (key, label) in enumerate(bars):
        vals = [float(r[key]) for r in per_app] + [gm[key]]
        ax.bar([x + (i - 1) * 0.27 for x in xs], vals, width=0.27, label=f"model: {label}")
    ax.axhline(PAPER["runtime_ratio_vs_fpga"], color="C0", ls="--", label="paper runtime 4.7x")
    ax.axhline(PAPER["energy_ratio_vs_fpga"], color="C2", ls=":", label="paper energy 4.3x")
    ax.set_xticks(list(xs), names)
    ax.set_ylabel("FPGA / push-memory CGRA")
    ax.set_title("Unified buffer: push-memory CGRA vs FPGA (event engine)")
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0))
