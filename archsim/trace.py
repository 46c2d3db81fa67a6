"""Chrome / Perfetto trace JSON of a simulated timeline (open it in ui.perfetto.dev)."""

from __future__ import annotations

import json
from pathlib import Path

from archsim.result import Result

__all__ = ["nesting_lanes", "trace_events", "write_trace"]

#: most spans written to one file (the metadata says when the trace was cut)
MAX_EVENTS = 200_000


#: order of an item's tracks under its slot: the item (prologue and epilogue nested in it),
#: then one track per body stage kind (pipelined stages overlap one another)
_LANES = {"item": 0, "load": 1, "compute": 2, "store": 3}


def _track_key(track: object) -> tuple[int, int, str]:
    if isinstance(track, tuple):
        slot, lane = track
        return (1, int(slot), f"{_LANES.get(str(lane), len(_LANES))}{lane}")
    return (0, int(track), "")  # type: ignore[call-overload]


def _track_name(component: str, track: object) -> str:
    if isinstance(track, tuple):
        slot, lane = track
        return f"slot {slot}" if lane == "item" else f"slot {slot} {lane}"
    return component if component == "phases" else f"instance {track}"


def nesting_lanes(spans: list[tuple[float, float]], *, nest: bool = True) -> list[int]:
    """A lane for each ``(start, dur)`` so that on every lane spans are disjoint or nested
    (``nest=False``: disjoint only).

    Greedy over spans sorted by start (longer first on ties): a span goes to the first lane
    whose innermost open span (after closing those that ended) contains it, or that has none
    open; a span that straddles the end of every lane's open span opens a new lane. Touching
    ends (within 1e-9 relative) count as disjoint.
    """
    order = sorted(range(len(spans)), key=lambda i: (spans[i][0], -spans[i][1]))
    lanes: list[list[float]] = []  # per lane, the end times of its open (enclosing) spans
    out = [0] * len(spans)
    for i in order:
        start, dur = spans[i]
        end = start + dur
        eps = 1e-9 * max(1.0, abs(end))
        for n, stack in enumerate(lanes):
            while stack and stack[-1] <= start + eps:
                stack.pop()
            if not stack or (nest and end <= stack[-1] + eps):
                stack.append(end)
                out[i] = n
                break
        else:
            lanes.append([end])
            out[i] = len(lanes) - 1
    return out


def trace_events(result: Result, *, max_events: int = MAX_EVENTS) -> list[dict[str, object]]:
    """The ``traceEvents`` list: metadata naming processes/threads, then ``ph: "X"`` spans.

    One process (``pid``) per component: ``phases``, each phase (its work items and their
    stages) and each server (``HBM.read``, ``pe2d.compute``). One thread (``tid``) per track:
    a server instance, a slot's items (``slot 3``, prologue and epilogue nested in each item)
    and one per body stage kind (``slot 3 load``, ``slot 3 compute``, ``slot 3 store``: a
    pipelined slot loads tile k+1 while it computes tile k). Spans of one track that would
    overlap without nesting (phases that run side by side) go to extra lanes
    (``phases (2)``), so that on every thread spans are disjoint or nested, as Perfetto
    draws them. Each span's ``args`` say what it did (bytes, ops, level or unit, tile).
    Timestamps in µs.
    """
    spans = (result.trace or ())[:max_events]
    us_per_cycle = 1e6 / result.clock_hz
    first: dict[str, tuple[float, int]] = {}  # component -> (earliest start, first index)
    by_track: dict[tuple[str, object], list[int]] = {}
    for i, span in enumerate(spans):
        first[span[0]] = min(first.get(span[0], (span[3], i)), (span[3], i))
        by_track.setdefault((span[0], span[1]), []).append(i)
    # processes top to bottom: phases, then each phase's slots, then the servers
    slots = {comp for comp, track in by_track if isinstance(track, tuple)}
    order = sorted(first, key=lambda c: (c != "phases", c not in slots, first[c]))
    pids = {comp: n + 1 for n, comp in enumerate(order)}
    threads: dict[tuple[int, int], str] = {}
    tid_of: dict[int, tuple[int, int]] = {}  # span index -> (pid, tid)
    next_tid: dict[int, int] = {}
    for comp, track in sorted(by_track, key=lambda ct: (pids[ct[0]], _track_key(ct[1]))):
        members = by_track[(comp, track)]
        # phases side by side are not parts of one another: each gets a lane of its own
        lanes = nesting_lanes([(spans[i][3], spans[i][4]) for i in members], nest=comp != "phases")
        pid = pids[comp]
        first_tid = next_tid.get(pid, 1)
        for lane in range(max(lanes) + 1):
            base = _track_name(comp, track)
            threads[(pid, first_tid + lane)] = base if lane == 0 else f"{base} ({lane + 1})"
        next_tid[pid] = first_tid + max(lanes) + 1
        for i, lane in zip(members, lanes, strict=True):
            tid_of[i] = (pid, first_tid + lane)
    events: list[dict[str, object]] = []
    for i, span in enumerate(spans):
        comp, _track, name, start, dur = span[:5]
        pid, tid = tid_of[i]
        ev: dict[str, object] = {
            "name": name,
            "cat": comp,
            "ph": "X",
            "pid": pid,
            "tid": tid,
            "ts": start * us_per_cycle,
            "dur": dur * us_per_cycle,
        }
        args = span[5] if len(span) > 5 else None
        if args:
            ev["args"] = args
        events.append(ev)
    events.sort(key=lambda e: (e["pid"], e["tid"], e["ts"], -e["dur"]))  # type: ignore[operator]
    meta: list[dict[str, object]] = []
    for comp, pid in sorted(pids.items(), key=lambda cp: cp[1]):
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
    for (pid, tid), name in sorted(threads.items()):
        meta.append(
            {"name": "thread_name", "ph": "M", "pid": pid, "tid": tid, "args": {"name": name}}
        )
        meta.append(
            {
                "name": "thread_sort_index",
                "ph": "M",
                "pid": pid,
                "tid": tid,
                "args": {"sort_index": tid},
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
            "note": "timestamps in microseconds; one process per component (phases, each "
            "phase's slots, each server); one thread per track (server instance, slot items, "
            "slot load/compute/store), spans on a thread disjoint or nested; args give bytes, "
            "ops, level or unit; a phase timed by a shortcut or by bounds appears as one span",
        },
    }
    out = Path(path)
    out.write_text(json.dumps(doc))
    return out
