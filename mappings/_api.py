"""The one-call API: ``simulate_workload(arch, workload, ...) -> SimulationReport``."""

from __future__ import annotations

from collections.abc import Mapping as AbcMapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from archsim.errors import InfeasibleMappingError, MappingError, WorkloadError
from mappings._mapping import Mapping
from mappings._passes import cascade_passes
from mappings._registry import PassInfo, Plan, get_dataflow, list_dataflows

if TYPE_CHECKING:
    from archsim import Architecture, Result
    from workloads import Cascade, CascadeCounts

__all__ = [
    "SimulationReport",
    "simulate_workload",
    "resolve_arch",
    "resolve_workload",
    "choose_dataflow",
    "auto_candidates",
    "FileWorkload",
    "plan_for",
]


@dataclass(frozen=True)
class FileWorkload:
    """A workload read from a cascade file (text notation or YAML) rather than the library."""

    name: str
    cascade: Cascade
    params: AbcMapping[str, object]
    sizes: dict[str, int]

    def counts(self) -> CascadeCounts:
        """MACs, ops and bytes (``workloads.count``)."""
        from workloads import count

        return count(self.cascade)


@dataclass(frozen=True)
class SimulationReport:
    """Result of :func:`simulate_workload`: the evaluator's Result and the Plan it ran."""

    result: Result
    plan: Plan
    arch: str
    workload: str
    dataflow: str
    params: AbcMapping[str, object] = field(default_factory=dict)

    def to_dict(self) -> dict[str, object]:
        """JSON-ready dict with keys ``cycles, seconds, energy_j, bytes, dram_bytes,
        utilization, passes, dataflow, arch, workload`` (plus ``engine``, ``params``)."""
        r = self.result
        return {
            "arch": self.arch,
            "workload": self.workload,
            "dataflow": self.dataflow,
            "engine": r.engine,
            "params": {k: v for k, v in self.params.items()},
            "cycles": int(r.cycles),
            "seconds": float(r.seconds),
            "energy_j": float(r.energy_j),
            "bytes": {k: float(v) for k, v in r.bytes_by_level.items()},
            "dram_bytes": float(r.dram_bytes),
            "utilization": {k: float(v) for k, v in r.utilization.items()},
            "passes": self.plan.passes.to_dict() if self.plan.passes else None,
        }


def resolve_arch(arch: str | Architecture) -> Architecture:
    """An Architecture from a preset name, a YAML path, or itself."""
    if isinstance(arch, str):
        from archsim import load_arch

        return load_arch(arch)
    return arch


def resolve_workload(workload: object, params: AbcMapping[str, object]) -> object:
    """A Workload from a library name (with ``params``), a cascade file, or itself."""
    if not isinstance(workload, (str, Path)):
        if params:
            raise MappingError(
                "params given with a Workload object",
                path="params",
                expected="{} (build the Workload with them)",
                got=dict(params),
            )
        return workload
    path = Path(workload)
    if path.suffix in (".yaml", ".yml", ".txt", ".cascade", ".ein") and path.exists():
        from workloads import load_cascade, parse_cascade, read_cascade_text

        if path.suffix in (".yaml", ".yml"):
            cas = load_cascade(path)
            _known_params(cas, params, path)
            if params:
                cas = parse_cascade_params(cas, params)
        else:
            text = read_cascade_text(path)
            try:  # the parameters the file declares (a file may need some given to parse)
                declared = parse_cascade(text, name=path.stem)
            except WorkloadError:
                declared = None
            if declared is not None:
                _known_params(declared, params, path)
            cas = parse_cascade(text, name=path.stem, params={k: v for k, v in params.items()})  # type: ignore[misc]  # user values; the parser checks
        merged = {**dict(cas.params), **dict(params)}
        # user values (object): the parser or rank_sizes checks each one (WorkloadError)
        sizes = cas.rank_sizes(merged)  # type: ignore[arg-type]
        return FileWorkload(path.stem, cas, merged, sizes)
    from workloads import get_workload

    # user input (object): get_workload checks each value (WorkloadError names a bad one)
    return get_workload(str(workload), **dict(params))  # type: ignore[arg-type]


def _known_params(cas: Cascade, given: AbcMapping[str, object], path: Path) -> None:
    """Refuse a ``--set`` of a parameter the cascade file neither declares nor sizes a rank
    with (a typo would otherwise simulate the file's defaults, silently)."""
    declared = set(cas.params) | {cas.size_param(r) for r in cas.all_ranks()}
    unknown = sorted(set(given) - declared)
    if unknown:
        raise WorkloadError(
            "unknown parameter",
            path=f"{path.name}.{unknown[0]}",
            expected=f"one of {sorted(declared)}",
            got=unknown[0],
        )


def parse_cascade_params(cas: Cascade, params: AbcMapping[str, object]) -> Cascade:
    """``cas`` with overridden default parameters (shape ``--set`` on a YAML cascade)."""
    import dataclasses

    # user values (object): rank_sizes checks them when the cascade is sized (WorkloadError)
    return dataclasses.replace(cas, params={**dict(cas.params), **dict(params)})  # type: ignore[arg-type]


def auto_candidates(arch: Architecture) -> list[str]:
    """Dataflows ``auto`` tries on ``arch``, best first; the first that accepts the cascade
    wins. Each recipe refuses what it cannot map (a prefill for a decode dataflow, a 3-pass
    cascade for a fused one, sparsity it cannot skip, a cascade that is not attention), so
    the order only ranks the ones that can."""
    if arch.kind == "gpu":
        # linear_chunked refuses every cascade that is not chunked linear attention
        prefs = ["split_kv", "linear_chunked", "flash3", "flash2", "fg_sparse", "block_sparse"]
        prefs.append("gpu_gemm")
        prefs.append("gpu_unfused")
    elif arch.kind == "pim":
        prefs = ["pim_decode", "pim_gemv"]
    else:
        own = [arch.name] if arch.name in ("flat", "fusemax") else []
        prefs = own + (["fusemax"] if len(arch.compute) >= 2 else []) + ["flat", "gemm"]
        prefs.append("unfused")
    have = set(list_dataflows())
    return [p for i, p in enumerate(prefs) if p in have and p not in prefs[:i]]


def choose_dataflow(arch: Architecture, workload: object) -> str:
    """The ``auto`` dataflow: the first of :func:`auto_candidates` that maps ``workload``."""
    return _auto_plan(arch, workload, {})[0]


def _auto_plan(
    arch: Architecture, workload: object, knobs: AbcMapping[str, object]
) -> tuple[str, Plan]:
    refusals = []
    for name in auto_candidates(arch):
        try:  # the choice depends on the cascade only, never on the knobs given
            plan = get_dataflow(name)(workload, arch, {})  # type: ignore[arg-type]  # Workload or FileWorkload
        # this recipe cannot map the cascade, or no tiling of it fits this shape: try the next
        except (MappingError, InfeasibleMappingError) as exc:
            refusals.append(f"{name}: {exc}")
            continue
        if knobs:  # knobs go to the chosen recipe; one it does not take is an error
            plan = get_dataflow(name)(workload, arch, dict(knobs))  # type: ignore[arg-type]  # Workload or FileWorkload
        return name, plan
    raise MappingError(
        "no dataflow maps this cascade on this architecture",
        path="dataflow",
        expected="a dataflow that accepts it; refusals: " + " | ".join(refusals),
        got=f"auto on {arch.name} ({arch.kind})",
    )


def plan_for(
    arch: Architecture,
    workload: object,
    *,
    dataflow: str = "auto",
    knobs: AbcMapping[str, object] | None = None,
    mapping: Mapping | str | Path | None = None,
) -> tuple[str, Plan]:
    """(dataflow name, Plan) for a workload on an architecture (mapping file wins)."""
    if mapping is not None:
        from mappings._lower import class_plan, lower
        from mappings._reuse import footprints
        from mappings._splits import apply_splits
        from mappings._tensors import group_ranks, group_tensors

        m = mapping if isinstance(mapping, Mapping) else Mapping.from_yaml(mapping)
        # GPU kernels, PIM in-bank streams, a systolic GEMM's folds: the class's own plan
        cp = class_plan(workload, m, arch)  # type: ignore[arg-type]  # Workload or FileWorkload
        if cp is not None:
            return "mapping", cp
        prog = lower(workload, m, arch)  # type: ignore[arg-type]  # Workload or FileWorkload
        workload = apply_splits(workload, m.splits)  # type: ignore[arg-type]  # Workload or FileWorkload
        buf = max(
            (
                sum(v.values())
                for g in m.groups
                for v in footprints(
                    g, group_tensors(workload, g), group_ranks(workload, g)
                ).values()
            ),
            default=0.0,
        )
        n, why = cascade_passes(workload.cascade)
        info = PassInfo(n, float(buf), "largest on-chip tile set of the mapping", reason=why)
        return "mapping", Plan(program=prog, mapping=m, passes=info, notes="user mapping")
    if dataflow == "auto":
        return _auto_plan(arch, workload, dict(knobs or {}))
    return dataflow, get_dataflow(dataflow)(workload, arch, dict(knobs or {}))  # type: ignore[arg-type]  # Workload or FileWorkload


def simulate_workload(
    arch: str | Architecture,
    workload: object,
    *,
    params: AbcMapping[str, object] | None = None,
    dataflow: str = "auto",
    knobs: AbcMapping[str, object] | None = None,
    mapping: Mapping | str | Path | None = None,
    engine: Literal["event", "analytic"] = "event",
    trace: bool = False,
) -> SimulationReport:
    """Simulate ``workload`` on ``arch`` with a named dataflow (or an explicit mapping).

    Parameters
    ----------
    arch
        Preset name, YAML path, or an ``archsim.Architecture``.
    workload
        Library name (``mha``), cascade file, or a ``workloads.Workload``.
    params
        Workload shape parameters (``{"S": 4096, "B": 1}``).
    dataflow
        Registered dataflow name, or ``auto`` (chosen by :func:`choose_dataflow`).
    knobs
        Dataflow knobs (``{"stationary": "weight"}``).
    mapping
        A :class:`Mapping` (or YAML path) to lower instead of a dataflow.
    engine
        ``event`` (``archsim.simulate``) or ``analytic`` (``archsim.estimate``).
    trace
        Record an event trace (event engine only).

    Returns
    -------
    SimulationReport

    Raises
    ------
    ArchsimError
        Unknown arch/workload/dataflow, bad knobs, invalid mapping.
    """
    from archsim import simulate
    from archsim._estimate import estimate

    a = resolve_arch(arch)
    w = resolve_workload(workload, dict(params or {}))
    name, plan = plan_for(a, w, dataflow=dataflow, knobs=knobs, mapping=mapping)
    if engine == "event":
        result = simulate(plan.program, a, trace=trace)
    elif engine == "analytic":
        result = estimate(plan.program, a)
    else:
        raise MappingError("unknown engine", path="engine", expected="event|analytic", got=engine)
    if plan.finish is not None:
        result = plan.finish(result)
    return SimulationReport(
        result=result,
        plan=plan,
        arch=a.name,
        workload=str(getattr(w, "name", workload)),
        dataflow=name,
        params=dict(getattr(w, "params", {})),
    )
