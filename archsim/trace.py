"""Chrome / Perfetto trace JSON of a simulated timeline (open it in ui.perfetto.dev)."""

from __future__ import annotations

import json
from pathlib import Path

from archsim.result import Result

__all__ = ["trace_events", "write_trace"]

#: most spans written to one file (the metadata says when the trace was cut)
MAX_EVENTS = 200_000


def trace_events(result: Result, *, max_events: int = MAX_EVENTS) -> list[dict[str, object]]:
    """The ``traceEvents`` list: metadata naming processes/threads, then ``ph: "X"`` spans.

    One process (``pid``) per component (a phase's slots, a server such as ``HBM.read``,
    ``PE.compute``), one thread (``tid``) per instance; timestamps in µs.
    """
    spans = result.trace or ()
    us_per_cycle = 1e6 / result.clock_hz
    pids: dict[str, int] = {}
    threads: set[tuple[int, int]] = set()
    events: list[dict[str, object]] = []
    for comp, inst, name, start, dur in spans[:max_events]:
        pid = pids.setdefault(comp, len(pids) + 1)
        threads.add((pid, int(inst)))
        events.append(
            {
                "name": name,
                "cat": comp,
                "ph": "X",
                "pid": pid,
                "tid": int(inst),
                "ts": start * us_per_cycle,
                "dur": dur * us_per_cycle,
            }
        )
    meta: list[dict[str, object]] = []
    for comp, pid in pids.items():
        meta.append(
            {"name": "process_name", "ph": "M", "pid": pid, "tid": 0, "args": {"name": comp}}
        )
        meta.append(
            {
                "name": "process_sort_index",
                "ph": "M",
                "pid": pid,
                "tid": 0,
                "args": {"sort_index": pid},
            }
        )
    for pid, tid in sorted(threads):
        meta.append(
            {
                "name": "thread_name",
                "ph": "M",
                "pid": pid,
                "tid": tid,
                "args": {"name": f"instance {tid}"},
            }
        )
    return meta + events


def write_trace(result: Result, path: str | Path, *, max_events: int = MAX_EVENTS) -> Path:
    """Write ``result``'s trace as Chrome trace JSON; returns the path.

    The file's ``metadata`` records the cycles, clock, how many spans were simulated and
    written, and whether the engine's own cap (``Result.meta["trace_limit"]``) or
    ``max_events`` cut the timeline. A result without a trace (``trace=False``) gives a file
    with metadata only.
    """
    spans = result.trace or ()
    events = trace_events(result, max_events=max_events)
    doc = {
        "traceEvents": events,
        "displayTimeUnit": "ns",
        "metadata": {
            "program": str(result.meta.get("program", "")),
            "engine": result.engine,
            "cycles": result.cycles,
            "clock_hz": result.clock_hz,
            "spans_recorded": len(spans),
            "spans_written": min(len(spans), max_events),
            "truncated": len(spans) > max_events
            or not bool(result.meta.get("trace_complete", True)),
            "engine_trace_limit": result.meta.get("trace_limit"),
            "note": "timestamps in microseconds; one process per component, one thread per "
            "instance; a shortcut-simulated phase appears as one span",
        },
    }
    out = Path(path)
    out.write_text(json.dumps(doc))
    return out
