"""Engine speed: SimPy events per second and the 1,000,000-step / 132-instance program.

Run ``python bench/bench_engine.py`` (prints figures; not a test). Figures depend on the
machine and its load; the targets from the engine issue are >= 500k events/s on one core and
<= 2 s for the 1M-step program using the exact symmetry shortcut. ``bench/bench_simulate.py``
times whole ``archsim simulate`` commands on real lowered GPU programs.

"Events" are SimPy events scheduled on (and processed by) the environments, i.e.
``Result.meta["events"]``; "steps/s" are body tile steps simulated per wall-clock second,
which is what a user waits for. The engine folds work on private servers (one slot, one
stage) into one deadline per stage, so it needs fewer events per step than it used to:
compare steps/s across versions, not events/s alone. Times are CPU seconds of this process
(``time.process_time``, best of a few runs), which other work on a shared machine disturbs
less than wall-clock time; the engine is single-threaded.
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from archsim import Architecture, Compute, Phase, Step, TileProgram, Transfer, estimate, simulate
from archsim._estimate import estimate_cycles


def h100_like(sms: int = 132) -> Architecture:
    """HBM shared by all SMs, per-SM shared memory and tensor core (H100-ish numbers)."""
    return Architecture.from_dict(
        {
            "name": "bench",
            "kind": "spatial",
            "clock": {"core_hz": 1.755e9},
            "levels": [
                {
                    "name": "HBM",
                    "kind": "dram",
                    "read_bw_bytes_per_cycle": 1909.0,
                    "write_bw_bytes_per_cycle": 1909.0,
                    "latency_cycles": 600,
                    "read_energy_pj_per_byte": 30.0,
                    "write_energy_pj_per_byte": 30.0,
                },
                {
                    "name": "SMEM",
                    "kind": "sram",
                    "capacity_bytes": 228 * 1024,
                    "instances": sms,
                    "read_bw_bytes_per_cycle": 128.0,
                    "write_bw_bytes_per_cycle": 128.0,
                    "latency_cycles": 30,
                },
            ],
            "compute": [
                {
                    "name": "TC",
                    "instances": sms,
                    "ops_per_cycle": {"mac": 512.0},
                    "energy_pj": {"mac": 0.3},
                }
            ],
        }
    )


def attention_like(work_items: int, trips: int | np.ndarray, slots: int) -> TileProgram:
    body = Step(
        loads=(Transfer("K", 16384, "HBM", "SMEM"), Transfer("V", 16384, "HBM", "SMEM")),
        compute=(Compute("TC", {"mac": 2 * 128 * 128 * 64}),),
        buffer_bytes=32768,
    )
    pro = Step(loads=(Transfer("Q", 16384, "HBM", "SMEM"),))
    epi = Step(stores=(Transfer("O", 16384, "SMEM", "HBM"),))
    return TileProgram(
        "bench",
        (
            Phase(
                "attn",
                body,
                trips=trips,
                work_items=work_items,
                slots=slots,
                prologue=pro,
                epilogue=epi,
                depth=2,
                staging_level="SMEM",
            ),
        ),
    )


def gpu_like(ctas: int, trips: int, slots: int) -> TileProgram:
    """A launch, then a kernel and its DRAM write-back side by side (as the GPU lowering)."""
    kernel = attention_like(ctas, trips, slots).phases[0]
    launch = Phase("launch", Step(compute=(Compute("TC", {"mac": 512.0 * 5000}),)), after=())
    wb = Phase(
        "writeback",
        Step(stores=(Transfer("O", 16384, "SMEM", "HBM"),)),
        work_items=ctas,
        slots=slots,
        after=("launch",),
    )
    kernel = Phase(
        "kernel",
        kernel.body,
        trips=trips,
        work_items=ctas,
        slots=slots,
        prologue=kernel.prologue,
        depth=kernel.depth,
        staging_level=kernel.staging_level,
        after=("launch",),
    )
    return TileProgram("bench-gpu", (launch, kernel, wb))


def _time(fn, repeat: int = 1):
    best = float("inf")
    out = None
    for _ in range(repeat):
        t0 = time.process_time()
        out = fn()
        best = min(best, time.process_time() - t0)
    return best, out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--steps", type=int, default=1_000_000)
    ap.add_argument(
        "--events-steps",
        type=int,
        default=40_000,
        help="body steps of the full (no-shortcut) simulation for events/s",
    )
    ap.add_argument(
        "--full-overlap",
        action="store_true",
        help="also simulate the kernel + write-back program slot by slot (tens of seconds)",
    )
    args = ap.parse_args()
    arch = h100_like()

    # 1. raw engine speed: every slot simulated, no shortcuts, causal (ragged) trips
    items = 264
    trips = np.maximum(1, np.round(np.linspace(1, 2, items) * args.events_steps / items / 1.5))
    for slots, what in ((132, "1 CTA/SM"), (264, "2 CTAs/SM share SM ports")):
        prog = attention_like(items, trips.astype(np.int64), slots)
        wall, r = _time(lambda prog=prog: simulate(prog, arch, shortcuts=False), repeat=5)
        ev = r.meta["events"]
        print(  # noqa: T201
            f"full simulation (no shortcuts, {what}): {prog.total_steps} steps, {slots} slots, "
            f"{ev} SimPy events in {wall:.2f} s -> {ev / wall:,.0f} events/s, "
            f"{prog.total_steps / wall:,.0f} steps/s"
        )

    # 1a. the same, in the compiled loop (archsim.engine._fastsim): what simulate() runs for
    # a phase alone that no shortcut covers (causal attention); bit-identical cycles
    from archsim.engine import compile_program
    from archsim.engine._fastsim import run_phase

    for slots, what in ((132, "1 CTA/SM"), (264, "2 CTAs/SM share SM ports")):
        prog = attention_like(items, trips.astype(np.int64), slots)
        compiled = compile_program(prog, arch)
        run_phase(compiled, compiled.phases[0])  # numba: compiled (or loaded) on first use
        wall, (end, _last, ev) = _time(lambda c=compiled: run_phase(c, c.phases[0]), repeat=5)
        full_f = simulate(prog, arch, shortcuts=False).meta["phase_cycles"]["attn"]
        same = end == full_f
        print(  # noqa: T201
            f"compiled loop ({what}): {ev} events in {wall:.3f} s -> {ev / wall:,.0f} "
            f"events/s, {prog.total_steps / wall:,.0f} steps/s; cycles as SimPy: {same}"
        )

    # 1b. a flash-attention-like last wave: 232 CTAs on 132 SMs x 2 slots (uneven sharing)
    prog = attention_like(232, 60, 264)
    wall_f, full = _time(lambda: simulate(prog, arch, shortcuts=False))
    wall_s, short = _time(lambda: simulate(prog, arch), repeat=5)
    print(  # noqa: T201
        f"232 CTAs / 264 slots / 132 SMs: full {wall_f * 1e3:.0f} ms ({full.meta['events']} "
        f"events), class shortcut {wall_s * 1e3:.1f} ms ({short.meta['events']} events), "
        f"cycles {full.cycles:,} vs {short.cycles:,}"
    )

    # 2. 1M tile steps over 132 instances, uniform trips: symmetry + steady state
    per = args.steps // 132
    prog = attention_like(132, per, 132)
    wall, r = _time(lambda: simulate(prog, arch), repeat=5)
    est = estimate(prog, arch)
    print(  # noqa: T201
        f"{prog.total_steps:,} steps / 132 instances (symmetric): {wall * 1e3:.1f} ms, "
        f"{r.meta['events']} events, cycles {r.cycles:,} (estimate {est.cycles:,})"
    )
    prog2 = attention_like(2 * 132 + 7, per // 2, 132)
    wall, r = _time(lambda: simulate(prog2, arch), repeat=5)
    print(  # noqa: T201
        f"{prog2.total_steps:,} steps, 271 items (waves + tail): {wall * 1e3:.1f} ms, "
        f"method {r.meta['phase_method']}"
    )

    # 2b. a kernel beside its write-back (as the GPU lowering emits them): the phases overlap
    # on disjoint servers, so each is timed alone with the shortcuts
    prog3 = gpu_like(4096, 96, 264)
    wall_s, short = _time(lambda: simulate(prog3, arch), repeat=5)
    print(  # noqa: T201
        f"{prog3.total_steps:,} steps, kernel beside its write-back (4096 CTAs, 264 slots): "
        f"{wall_s * 1e3:.1f} ms, {short.meta['events']} events, phases "
        f"{short.meta['phase_schedule']}, cycles {short.cycles:,}"
    )
    if args.full_overlap:
        wall_f, full = _time(lambda: simulate(prog3, arch, shortcuts=False))
        print(  # noqa: T201
            f"  the same simulated slot by slot: {wall_f:.2f} s, {full.meta['events']} events, "
            f"cycles {full.cycles:,}"
        )

    # 3. estimator cost
    n = 500
    wall, _ = _time(lambda: [estimate_cycles(prog, arch) for _ in range(n)], repeat=7)
    print(f"estimate_cycles (single phase): {wall / n * 1e6:.1f} us/call")  # noqa: T201
    wall, _ = _time(lambda: [estimate(prog, arch) for _ in range(n)], repeat=7)
    print(f"estimate (full Result):          {wall / n * 1e6:.1f} us/call")  # noqa: T201


if __name__ == "__main__":
    main()
