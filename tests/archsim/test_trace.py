"""Chrome/Perfetto trace output: tracks where slices nest, names and args that say what ran."""

from __future__ import annotations

import json
from collections import defaultdict
from pathlib import Path

import pytest

from archsim import Step, simulate, write_trace
from archsim.cli import main
from archsim.trace import nesting_lanes
from tests.archsim.test_engine_toys import load, macs, one_phase, toy_arch


def _doc(path: Path) -> dict:
    return json.loads(path.read_text())


def _spans(doc: dict) -> list[dict]:
    return [e for e in doc["traceEvents"] if e["ph"] == "X"]


def _names(doc: dict, kind: str) -> dict[tuple[int, ...], str]:
    key = ("pid",) if kind == "process_name" else ("pid", "tid")
    return {
        tuple(e[k] for k in key): e["args"]["name"] for e in doc["traceEvents"] if e["name"] == kind
    }


def assert_tracks_nest(doc: dict) -> None:
    """On every (process, thread), any two slices are disjoint or one contains the other."""
    by_track: dict[tuple[int, int], list[tuple[float, float]]] = defaultdict(list)
    for e in _spans(doc):
        by_track[(e["pid"], e["tid"])].append((e["ts"], e["ts"] + e["dur"]))
    for track, spans in by_track.items():
        spans.sort(key=lambda s: (s[0], -s[1]))
        open_ends: list[float] = []
        for start, end in spans:
            eps = 1e-9 * max(1.0, abs(end))
            while open_ends and open_ends[-1] <= start + eps:
                open_ends.pop()
            assert not open_ends or end <= open_ends[-1] + eps, (
                f"slice {start}..{end} straddles the end {open_ends[-1]} on track {track}"
            )
            open_ends.append(end)


def assert_spans_say_what_ran(doc: dict) -> None:
    """No plain 'busy' slice; every slice has args naming its work and where it ran."""
    procs = _names(doc, "process_name")
    threads = _names(doc, "thread_name")
    for e in _spans(doc):
        name, args, thread = e["name"], e.get("args", {}), threads[(e["pid"], e["tid"])]
        assert name not in ("busy", "idle", "load", "compute", "store"), e
        if procs[(e["pid"],)] == "phases":
            assert {"bytes", "ops", "work_items", "timed"} <= set(args), e
        elif thread.startswith("instance"):  # a server instance's busy period
            assert {"level", "unit", "network"} & set(args), e
            assert ("bytes" in args) != ("work_cycles" in args), e
            assert name.split(" + ")[0] in args["served"], e
        elif thread.endswith(("load", "store")):
            assert args["bytes"] > 0, e
            assert "->" in args["levels"], e
            assert name.split()[1] == ",".join(t for t, b in args["bytes_by_tensor"].items() if b)
            assert isinstance(args["tile"], int), e
        elif thread.endswith("compute"):
            assert args["ops"], e
            assert args["units"], e
            assert name == f"compute {args['phase']}", e
            assert isinstance(args["tile"], int), e
        else:  # a slot's items, with their prologue and epilogue
            assert thread.startswith("slot"), e
            assert "item" in args, e


def assert_ops_add_up(doc: dict) -> None:
    """A phase's ops are those of its compute slices, prologues and epilogues."""
    procs = _names(doc, "process_name")
    spans = _spans(doc)
    for phase in (s for s in spans if procs[(s["pid"],)] == "phases"):
        got: dict[str, float] = defaultdict(float)
        for s in spans:
            if s["cat"] != phase["name"]:
                continue
            parts = [s["args"]] if s["name"].startswith("compute") else []
            if s["name"].startswith(("prologue", "epilogue")):
                parts = [a for a in s["args"].values() if isinstance(a, dict) and "ops" in a]
            for part in parts:
                for kind, n in part["ops"].items():
                    got[kind] += n
        assert got == pytest.approx(phase["args"]["ops"], rel=1e-9), phase["name"]


def test_trace_has_spans_per_component_instance(tmp_path: Path) -> None:
    arch = toy_arch(dram_bw=10.0, pe_instances=2)
    prog = one_phase(Step(loads=(load(100),), compute=(macs(50),)), trips=4, work_items=4, slots=2)
    r = simulate(prog, arch, trace=True)
    doc = _doc(write_trace(r, tmp_path / "t.json"))
    spans = _spans(doc)
    assert {"phases", "p", "DRAM.read", "PE.compute"} <= set(_names(doc, "process_name").values())
    threads = _names(doc, "thread_name")
    compute = {threads[(e["pid"], e["tid"])] for e in spans if e["name"].startswith("compute")}
    assert compute == {"slot 0 compute", "slot 1 compute"}
    assert max(e["ts"] + e["dur"] for e in spans) <= r.seconds * 1e6 + 1e-9
    assert doc["metadata"]["truncated"] is False
    assert_tracks_nest(doc)
    assert_spans_say_what_ran(doc)


def test_trace_is_capped_and_says_so(tmp_path: Path) -> None:
    arch = toy_arch()
    prog = one_phase(Step(loads=(load(100),), compute=(macs(50),)), trips=50)
    r = simulate(prog, arch, trace=True)
    doc = _doc(write_trace(r, tmp_path / "t.json", max_events=10))
    assert sum(e["ph"] == "X" for e in doc["traceEvents"]) == 10
    assert doc["metadata"]["truncated"] is True


def test_no_trace_by_default() -> None:
    assert simulate(one_phase(Step(loads=(load(10),))), toy_arch()).trace is None


def test_numpy_counts_write_plain_json(tmp_path: Path) -> None:
    """Dataflows build programs from numpy arithmetic: the args must still be JSON."""
    import numpy as np

    from archsim import Phase, TileProgram, Transfer

    body = Step(loads=(Transfer("x", np.int64(100), "DRAM", "BUF"),), compute=(macs(50),))
    phase = Phase("p", body, trips=np.int64(3), work_items=np.int64(2), slots=np.int64(1))
    r = simulate(TileProgram("t", (phase,)), toy_arch(), trace=True)
    doc = _doc(write_trace(r, tmp_path / "t.json"))
    (ph,) = [e for e in _spans(doc) if e["cat"] == "phases"]
    assert ph["args"]["bytes"] == 600
    assert ph["args"]["work_items"] == 2
    assert_tracks_nest(doc)
    assert_spans_say_what_ran(doc)


def test_nesting_lanes_split_only_straddling_spans() -> None:
    # (start, dur): a contains b; c overlaps a's end without nesting; d after all
    spans = [(0.0, 10.0), (2.0, 3.0), (8.0, 5.0), (20.0, 1.0)]
    assert nesting_lanes(spans) == [0, 0, 1, 0]
    assert nesting_lanes(spans, nest=False) == [0, 1, 1, 0]
    assert nesting_lanes([(0.0, 5.0), (5.0, 5.0)]) == [0, 0]  # touching ends: disjoint


def _simulate_trace(tmp_path: Path, capsys, *argv: str) -> dict:
    out = tmp_path / "T.json"
    assert main(["simulate", *argv, "--trace", str(out), "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    doc = _doc(out)
    doc["result"] = result
    return doc


def test_fusemax_attention_trace(tmp_path: Path, capsys) -> None:
    doc = _simulate_trace(tmp_path, capsys, "--arch", "fusemax", "--workload", "mha")
    assert_tracks_nest(doc)
    assert_spans_say_what_ran(doc)
    assert_ops_add_up(doc)
    spans = _spans(doc)
    procs, threads = _names(doc, "process_name"), _names(doc, "thread_name")
    # the fused group's Einsums name its compute slices and its process
    (phase,) = [s for s in spans if procs[(s["pid"],)] == "phases"]
    assert phase["name"].startswith("g0:QK+")
    assert phase["name"].endswith("+AV")
    assert any(s["name"] == f"compute {phase['name']}" for s in spans)
    # pipelined: a tile's load overlaps the previous tile's compute, on another track
    loads = [s for s in spans if threads[(s["pid"], s["tid"])] == "slot 0 load"]
    comps = [s for s in spans if threads[(s["pid"], s["tid"])] == "slot 0 compute"]
    assert len(loads) == len(comps) == phase["args"]["body_steps"]
    by_tile = {s["args"]["tile"]: s for s in comps}
    overlapping = [
        s for s in loads if s["args"]["tile"] > 0
        and s["ts"] < by_tile[s["args"]["tile"] - 1]["ts"] + by_tile[s["args"]["tile"] - 1]["dur"]
    ]  # fmt: skip
    assert overlapping
    # the busy periods of the DRAM port account for every DRAM byte of the result
    dram = [s for s in spans if procs[(s["pid"],)].startswith("DRAM.")]
    assert sum(s["args"]["bytes"] for s in dram) == pytest.approx(doc["result"]["dram_bytes"])
    assert {s["args"]["level"] for s in dram} == {"DRAM"}


def test_gpu_attention_trace(tmp_path: Path, capsys) -> None:
    argv = ("--arch", "h100", "--workload", "mha", "--set", "S=2048", "--set", "H=4")
    doc = _simulate_trace(tmp_path, capsys, *argv)
    assert_tracks_nest(doc)
    assert_spans_say_what_ran(doc)
    assert_ops_add_up(doc)
    spans = _spans(doc)
    procs, threads = _names(doc, "process_name"), _names(doc, "thread_name")
    phases = [s for s in spans if procs[(s["pid"],)] == "phases"]
    kernel = next(s for s in phases if s["args"]["work_items"] > 1 and s["args"]["ops"])
    # a GPU program is a chain of phases: the launch, then the kernel (no phase overlaps another)
    ordered = sorted(phases, key=lambda s: s["ts"])
    assert [s["name"] for s in ordered] == [f"launch:{kernel['name']}", kernel["name"]]
    for a, b in zip(ordered, ordered[1:], strict=False):
        assert b["ts"] >= a["ts"] + a["dur"] - 1e-6
    # the output leaves with the loads (L2 write-back as tiles are evicted), not in a later phase
    assert kernel["args"]["bytes_by_route"]["SMEM->HBM"] > 0
    loads = [s for s in spans if s["name"].startswith("load") and s["cat"] == kernel["name"]]
    assert loads
    assert all("SMEM->HBM" in s["args"]["levels"] for s in loads)
    # each CTA is an item on its SM slot
    items = [s for s in spans if s["name"].startswith("item ") and s["cat"] == kernel["name"]]
    assert len(items) == kernel["args"]["work_items"]
    assert all(threads[(s["pid"], s["tid"])].startswith("slot") for s in items)
    units = {s["args"]["unit"] for s in spans if "unit" in s.get("args", {})}
    assert {"tensor", "cuda"} <= units
