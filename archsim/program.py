"""Tile program: the compact, loop-structured work description that the evaluators run.

A :class:`TileProgram` is a sequence of :class:`Phase` s. A phase runs ``work_items``
independent items (CTAs, output tiles) on ``slots`` concurrent spatial slots; each item runs
an optional ``prologue`` step, then ``trips`` body :class:`Step` s pipelined ``depth`` deep,
then an optional ``epilogue`` step. A step is one tile: its loads, then its compute, then its
stores. Nothing is stored per tile: ``trips`` is one int or one integer array with an entry
per work item (causal attention, ragged batches), so a million-tile program is a handful of
Python objects.

Semantics (shared by :func:`archsim.simulate` and :func:`archsim.estimate`):

- Slot ``i`` uses storage-level instance ``i % level.instances`` and compute-unit instance
  ``i % unit.instances``; everything mapped onto one instance shares its bandwidth or
  throughput (processor sharing).
- A transfer moves ``bytes`` using ``src`` read bandwidth and ``dst`` write bandwidth (one
  shared bus of a ``shared_read_write`` level serves both) and pays ``src.latency_cycles``
  once: a store before it moves, a load after it (a delay that holds no bandwidth: the data
  is usable ``latency`` after the transfer, so loads are pipelined like cp.async / TMA stages
  or DMA engines; a load stage's delay is the largest latency of its transfers). A compute
  takes ``sum(ops / rate) / occupancy`` cycles of its unit and is charged ``ops x pJ/op``.
  Transfers of one step run concurrently; computes of one step run concurrently (entries on
  the same unit share it).
- Body pipeline with ``depth`` stages: the load of tile ``k`` may start when the transfers of
  load ``k-1`` are done and tile ``k-depth`` has finished computing (input stage free), so up
  to ``depth`` loads are in flight; the compute of ``k`` starts when its data is usable,
  compute ``k-1`` is done and the store of ``k-depth`` is done (output stage free); the store
  of ``k`` starts when compute ``k`` and store ``k-1`` are done. ``depth=1`` serializes load
  and compute. The effective depth is clamped to the number of ``buffer_bytes`` tiles that
  fit in the slot's share of ``staging_level``.
- Prologue, body and epilogue of an item run one after the other; a slot runs one item at a
  time and takes the next unstarted item (in index order) when it becomes free.
- A phase starts when the phases named in ``after`` have finished (``None``: the previous
  phase; ``()``: at time 0).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

import numpy as np

from archsim.errors import MappingError

__all__ = ["Compute", "Phase", "Step", "TileProgram", "Transfer"]


@dataclass(frozen=True)
class Transfer:
    """One data movement, repeated each time its step runs.

    Attributes
    ----------
    tensor
        Tensor name (used for per-tensor byte accounting ``"level.tensor"``).
    bytes
        Bytes moved per occurrence (>= 0).
    src, dst
        Storage-level names: read from ``src``, written to ``dst``.
    """

    tensor: str
    bytes: int
    src: str
    dst: str


@dataclass(frozen=True)
class Compute:
    """Work on one compute unit, repeated each time its step runs.

    Attributes
    ----------
    unit
        Compute-unit name.
    ops
        Op kind (``mac``, ``mac_bf16``, ``exp``, ...) -> count per occurrence. Time on the unit
        is ``sum(ops[k] / ops_per_cycle[k]) / occupancy`` cycles at full throughput. These are
        the *useful* ops: energy is charged on them (``ops x pJ/op``).
    occupancy
        Fraction of the unit's lanes doing useful work while it runs these ops, in (0, 1]
        (default 1). A mapping that fills half of a PE array has ``occupancy=0.5``: the ops
        take twice as long as on a full array but cost the same energy; systolic fill/drain is
        ``useful cycles / total cycles``. Utilization counts useful work only
        (busy time x occupancy).
    """

    unit: str
    ops: Mapping[str, float]
    occupancy: float = 1.0

    def __post_init__(self) -> None:
        object.__setattr__(self, "ops", MappingProxyType(dict(self.ops)))
        object.__setattr__(self, "occupancy", float(self.occupancy))

    def __hash__(self) -> int:
        return hash((self.unit, tuple(sorted(self.ops.items())), self.occupancy))


@dataclass(frozen=True)
class Step:
    """One tile: ``loads`` -> ``compute`` -> ``stores``.

    Attributes
    ----------
    loads, compute, stores
        Tuples of :class:`Transfer` / :class:`Compute` / :class:`Transfer`.
    buffer_bytes
        Bytes one tile occupies in the phase's staging level (per pipeline stage).
    """

    loads: tuple[Transfer, ...] = ()
    compute: tuple[Compute, ...] = ()
    stores: tuple[Transfer, ...] = ()
    buffer_bytes: int = 0

    def __post_init__(self) -> None:
        for name in ("loads", "compute", "stores"):
            object.__setattr__(self, name, tuple(getattr(self, name)))


@dataclass(frozen=True)
class Phase:
    """A loop of identical steps run by ``work_items`` items over ``slots`` concurrent slots.

    Attributes
    ----------
    name
        Phase name (unique in the program; used by ``after`` and in results).
    body
        The repeated step.
    trips
        Body steps per work item: an int, or an integer array of shape ``(work_items,)``
        (stored read-only).
    work_items
        Independent items (CTAs, output tiles).
    slots
        Items running concurrently (SMs x CTAs/SM, PE groups, ...).
    prologue, epilogue
        Steps run once per work item before / after the body.
    depth
        Tiles in flight (buffer stages); 1 = no overlap of load and compute.
    staging_level
        Level where ``body.buffer_bytes`` are claimed per slot (None: no capacity limit).
    after
        Names of phases that must finish first; ``None`` = the previous phase.
    """

    name: str
    body: Step
    trips: int | np.ndarray = 1
    work_items: int = 1
    slots: int = 1
    prologue: Step | None = None
    epilogue: Step | None = None
    depth: int = 2
    staging_level: str | None = None
    after: tuple[str, ...] | None = None

    def __post_init__(self) -> None:
        trips = self.trips
        if isinstance(trips, (list, tuple)):
            trips = np.asarray(trips)
        if isinstance(trips, np.ndarray):
            arr = np.array(trips, dtype=np.int64, copy=True)
            arr.setflags(write=False)
            object.__setattr__(self, "trips", arr)
        elif isinstance(trips, (int, np.integer)) and not isinstance(trips, bool):
            object.__setattr__(self, "trips", int(trips))
        else:
            raise MappingError(
                "trips must be an int or an integer numpy array",
                path=f"phases[{self.name}].trips",
                expected="int | np.ndarray",
                got=type(trips).__name__,
            )
        if self.after is not None:
            object.__setattr__(self, "after", tuple(self.after))

    # numpy arrays make the generated __eq__/__hash__ unusable: compare trips by value.
    def _key(self) -> tuple[object, ...]:
        trips = self.trips
        tkey = trips if isinstance(trips, int) else ("arr", trips.tobytes(), trips.shape)
        return (
            self.name,
            self.body,
            tkey,
            self.work_items,
            self.slots,
            self.prologue,
            self.epilogue,
            self.depth,
            self.staging_level,
            self.after,
        )

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Phase):
            return NotImplemented
        return self._key() == other._key()

    def __hash__(self) -> int:
        return hash(self._key())

    def trips_per_item(self) -> np.ndarray:
        """Body trips of every work item, shape ``(work_items,)``, int64."""
        if isinstance(self.trips, int):
            return np.full(self.work_items, self.trips, dtype=np.int64)
        return self.trips

    @property
    def uniform_trips(self) -> int | None:
        """The common trip count if every item has the same one, else ``None``."""
        if isinstance(self.trips, int):
            return self.trips
        if self.trips.size == 0:
            return 0
        first = int(self.trips[0])
        return first if bool(np.all(self.trips == first)) else None

    @property
    def total_trips(self) -> int:
        """Body steps summed over all work items."""
        if isinstance(self.trips, int):
            return self.trips * self.work_items
        return int(self.trips.sum())


@dataclass(frozen=True)
class TileProgram:
    """A whole program: phases (run in order or per ``Phase.after``).

    Attributes
    ----------
    name
        Program name.
    phases
        The phases.
    clock_hz
        Clock the cycles are counted in; ``None`` = the architecture's core clock.
    meta
        Free-form provenance (workload, dataflow, knobs); copied into results.
    """

    name: str
    phases: tuple[Phase, ...]
    clock_hz: float | None = None
    meta: Mapping[str, object] = field(default_factory=dict)

    def __post_init__(self) -> None:
        object.__setattr__(self, "phases", tuple(self.phases))
        object.__setattr__(self, "meta", MappingProxyType(dict(self.meta)))

    def __hash__(self) -> int:
        return hash((self.name, self.phases, self.clock_hz))

    @property
    def total_steps(self) -> int:
        """Body steps over all phases and work items."""
        return sum(p.total_trips for p in self.phases)
