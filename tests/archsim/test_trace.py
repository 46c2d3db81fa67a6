"""Chrome/Perfetto trace output."""

from __future__ import annotations

import json
from pathlib import Path

from archsim import Step, simulate, write_trace
from tests.archsim.test_engine_toys import load, macs, one_phase, toy_arch


def test_trace_has_spans_per_component_instance(tmp_path: Path) -> None:
    arch = toy_arch(dram_bw=10.0, pe_instances=2)
    prog = one_phase(Step(loads=(load(100),), compute=(macs(50),)), trips=4, work_items=4, slots=2)
    r = simulate(prog, arch, trace=True)
    path = write_trace(r, tmp_path / "t.json")
    doc = json.loads(path.read_text())
    spans = [e for e in doc["traceEvents"] if e["ph"] == "X"]
    names = {e["args"]["name"] for e in doc["traceEvents"] if e["name"] == "process_name"}
    assert {"p", "DRAM.read", "PE.compute"} <= names
    assert {e["tid"] for e in spans if e["name"] == "compute"} == {0, 1}
    assert max(e["ts"] + e["dur"] for e in spans) <= r.seconds * 1e6 + 1e-9
    assert doc["metadata"]["truncated"] is False


def test_trace_is_capped_and_says_so(tmp_path: Path) -> None:
    arch = toy_arch()
    prog = one_phase(Step(loads=(load(100),), compute=(macs(50),)), trips=50)
    r = simulate(prog, arch, trace=True)
    doc = json.loads(write_trace(r, tmp_path / "t.json", max_events=10).read_text())
    assert sum(e["ph"] == "X" for e in doc["traceEvents"]) == 10
    assert doc["metadata"]["truncated"] is True


def test_no_trace_by_default() -> None:
    assert simulate(one_phase(Step(loads=(load(10),))), toy_arch()).trace is None
