"""Names and args of trace spans, built from what the tile program carries.

Only a traced simulation builds these (once per phase); an untraced one never imports the
labels into its hot loop. A span is recorded by :meth:`archsim.engine._server.Clock.span` as
``(component, track, name, start_cycles, dur_cycles, args)``:

- a phase on the ``phases`` component, named by the phase (its Einsums or its kernel), with
  its work items, slots, trips, bytes and ops;
- a work item on track ``(slot, "item")`` of its phase, with its prologue and epilogue nested
  inside it; its body's load, compute and store stages each on their own track
  ``(slot, "load")`` ... (they overlap one another when pipelined, so they cannot share one);
- a busy period of a server instance (a level's port, a network, a compute unit) on track
  ``instance``, named by the stages whose jobs it served, with the bytes (or work cycles) each
  brought and the level or unit it is.
"""

from __future__ import annotations

from collections.abc import Mapping

from archsim.program import Phase, Step, Transfer

__all__ = ["PhaseLabels", "busy_name", "has_work", "phase_args", "server_args"]

#: stage kinds of a step, in pipeline order (the ``k`` of :class:`archsim.engine._pipeline.ItemRun`)
STAGES = ("load", "compute", "store")
#: parts of an item (the ``mode`` of ItemRun)
PARTS = ("prologue", "body", "epilogue")


def _tensors(ts: tuple[Transfer, ...]) -> str:
    names: list[str] = []
    for t in ts:
        if t.bytes > 0 and t.tensor not in names:
            names.append(t.tensor)
    return ",".join(names)


def _route(ts: tuple[Transfer, ...]) -> str:
    routes: list[str] = []
    for t in ts:
        r = f"{t.src}->{t.dst}"
        if t.bytes > 0 and r not in routes:
            routes.append(r)
    return ", ".join(routes)


def _ops(step: Step) -> dict[str, float]:
    ops: dict[str, float] = {}
    for c in step.compute:
        for kind, n in c.ops.items():
            ops[kind] = ops.get(kind, 0.0) + float(n)
    return ops


def _stage(step: Step, k: int, phase: str) -> tuple[str, dict[str, object]]:
    """Name and args of stage ``k`` of ``step`` (a tile of ``phase``)."""
    if k == 1:
        units = "+".join(dict.fromkeys(c.unit for c in step.compute if c.ops))
        return f"compute {phase}", {"phase": phase, "units": units, "ops": _ops(step)}
    ts = step.loads if k == 0 else step.stores
    by_tensor: dict[str, int] = {}
    for t in ts:
        by_tensor[t.tensor] = by_tensor.get(t.tensor, 0) + int(t.bytes)
    args: dict[str, object] = {
        "phase": phase,
        "bytes": sum(by_tensor.values()),
        "bytes_by_tensor": by_tensor,
        "levels": _route(ts),
    }
    return f"{STAGES[k]} {_tensors(ts) or '-'}", args


class PhaseLabels:
    """Span names and args of one phase's stages, and the labels its jobs leave on servers.

    ``stage[part][k]`` is ``(name, args)`` of stage ``k`` of ``part`` (0 prologue, 1 body,
    2 epilogue; None where the phase has no such part); ``job[part][k]`` is the label a job of
    that stage leaves on the server instance that serves it.
    """

    __slots__ = ("phase", "stage", "job")

    def __init__(self, phase: Phase) -> None:
        self.phase = phase.name
        self.stage: list[list[tuple[str, dict[str, object]]] | None] = []
        self.job: list[list[str] | None] = []
        for step in (phase.prologue, phase.body, phase.epilogue):
            if step is None:
                self.stage.append(None)
                self.job.append(None)
                continue
            stages = [_stage(step, k, phase.name) for k in range(3)]
            self.stage.append(stages)
            # a compute job's label is its phase; a transfer's says what moved, for which phase
            self.job.append(
                [
                    stages[0][0] + f" ({phase.name})",
                    phase.name,
                    stages[2][0] + f" ({phase.name})",
                ]
            )


def has_work(args: Mapping[str, object]) -> bool:
    """Whether a stage's args (from :class:`PhaseLabels`) carry bytes or ops."""
    ops = args.get("ops") or {}
    return bool(args.get("bytes")) or any(float(v) > 0 for v in dict(ops).values())  # type: ignore[call-overload]


def phase_args(phase: Phase, how: str) -> dict[str, object]:
    """Args of a phase's span: its shape, its total bytes per route and ops, and how the
    engine timed it (``full``: slot by slot; ``shortcut``: an exact shortcut, one span;
    ``bounded``: the midpoint of rigorous bounds, one span)."""
    items = int(phase.work_items)
    counts = [
        (phase.prologue, items),
        (phase.body, int(phase.total_trips)),
        (phase.epilogue, items),
    ]
    moved: dict[str, int] = {}
    ops: dict[str, float] = {}
    for step, n in counts:
        if step is None or n == 0:
            continue
        for t in (*step.loads, *step.stores):
            route = f"{t.src}->{t.dst}"
            moved[route] = moved.get(route, 0) + int(t.bytes) * n
        for kind, c in _ops(step).items():
            ops[kind] = ops.get(kind, 0.0) + c * n
    return {
        "work_items": items,
        "slots": int(phase.slots),
        "body_steps": int(phase.total_trips),
        "depth": int(phase.depth),
        "timed": how,
        "bytes": sum(moved.values()),
        "bytes_by_route": moved,
        "ops": ops,
    }


def server_args(server: str, instance: int, served: Mapping[str, float]) -> dict[str, object]:
    """Args of a server instance's busy span: which level port, network or unit it is, and
    the work each stage brought (bytes for ports and networks, cycles for compute units)."""
    owner, _, kind = server.rpartition(".")
    total = float(sum(served.values()))
    if kind == "compute":
        where: dict[str, object] = {"unit": owner, "work_cycles": total}
    elif kind == "transfer":
        where = {"network": owner, "bytes": total}
    else:
        where = {"level": owner, "port": kind, "bytes": total}
    return {**where, "instance": instance, "served": dict(served)}


def busy_name(served: Mapping[str, float], most: int = 2) -> str:
    """Name of a busy span: the labels of the stages served, most work first."""
    ranked = sorted(served, key=lambda k: -served[k])
    if not ranked:
        return "idle"
    name = " + ".join(ranked[:most])
    return name if len(ranked) <= most else f"{name} + {len(ranked) - most} more"
