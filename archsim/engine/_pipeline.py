"""One work item on one slot: prologue, the ``depth``-stage body pipeline, epilogue.

Callback-driven state machines on the SimPy event loop (a generator per tile would cost a
process switch per stage; callbacks keep the engine near one SimPy event per job).

A *stage* is one step's loads, computes or stores. Its jobs on *shared* server instances
(used by several slots, or by several stages of one slot) go through processor-sharing
:class:`PSServer` s. Its jobs on *private* instances (one slot, one stage kind) need no
server at all:

NOTE: exact. A private instance serves only this stage's jobs, and a stage of one kind starts
only after the previous one of that kind has ended, so the instance is idle when the stage
starts. A work-conserving server that is fed jobs ``w_i`` arriving at ``t_i`` (sorted) is busy
until ``e = max(e, t_i) + w_i / capacity`` folded over the jobs, whatever the order in which
it serves them; the stage needs only its last job, so the private part of a stage ends at a
time fixed when the stage starts (:attr:`StagePlan.private_end`). A stage on private
instances only is then one SimPy timeout instead of a job per transfer and server.

*Loads are pipelined* (asynchronous copies: cp.async / TMA stages, DMA engines): a load
stage's transfers all start when the stage starts and occupy their bandwidth servers for
the transfer only; the slot's load port is free again when they end, so the next tile's
load may start then (within the window: at most ``depth`` tiles loaded or loading but not
yet computed); the data becomes usable :attr:`StagePlan.delay` cycles later (the source's
latency, a delay that holds no server and no port). A serial load (prologue, epilogue) is
its transfers then its delay. Stores keep latency-then-transfer.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from archsim.engine._compile import CompiledStep
from archsim.engine._server import Clock, Ev, PSServer
from archsim.engine._trace_labels import PhaseLabels, has_work

__all__ = ["ItemRun", "PhasePlans", "SlotContext", "StagePlan", "step_plans"]


class SlotContext:
    """What one slot sees: the server instances it uses (``servers[server_index]``; None for
    private servers, which need no object)."""

    __slots__ = ("clock", "servers", "slot", "pid", "labels")

    def __init__(self, clock: Clock, servers: list[PSServer | None], slot: int, pid: str) -> None:
        self.clock = clock
        self.servers = servers
        self.slot = slot
        self.pid = pid
        #: span names and args of the phase this slot runs (traced runs only)
        self.labels: PhaseLabels | None = None


class StagePlan:
    """How one stage runs in one runtime (see the module docstring).

    Attributes
    ----------
    shared
        Jobs on shared servers as ``((latency_cycles, ((work, server_index), ...)), ...)``,
        sorted by latency.
    nshared
        Number of those jobs.
    private_end
        Cycles after the stage start at which its work on private servers is done (0: none).
    delay
        Loads: cycles after the stage's transfers end until its data is usable (the largest
        latency of its transfers; holds no server). 0 for computes and stores.
    """

    __slots__ = ("shared", "nshared", "private_end", "delay")

    def __init__(self, shared: tuple, nshared: int, private_end: float, delay: float = 0.0) -> None:
        self.shared = shared
        self.nshared = nshared
        self.private_end = private_end
        self.delay = delay


def _plan(
    arrivals: list[tuple[float, float, int]], private: Sequence[bool], cap: Sequence[float]
) -> StagePlan:
    """``arrivals``: ``(latency, work, server)`` of every job of the stage."""
    shared: dict[float, list[tuple[float, int]]] = {}
    ends: dict[int, float] = {}
    nshared = 0
    for lat, work, s in sorted(arrivals, key=lambda a: a[0]):
        if work <= 0:
            continue
        if private[s]:
            e = ends.get(s, 0.0)
            ends[s] = (e if e > lat else lat) + work / cap[s]
        else:
            shared.setdefault(lat, []).append((work, s))
            nshared += 1
    groups = tuple((lat, tuple(jobs)) for lat, jobs in sorted(shared.items()))
    return StagePlan(groups, nshared, max(ends.values(), default=0.0))


def step_plans(
    step: CompiledStep, private: Sequence[bool], cap: Sequence[float]
) -> tuple[StagePlan, StagePlan, StagePlan]:
    """Load, compute and store plans of ``step`` given which servers are private."""

    def transfers(ts: tuple) -> StagePlan:
        return _plan(
            [(max(lat, 0.0), nbytes, s) for nbytes, lat, servers in ts for s in servers],
            private,
            cap,
        )

    computes = _plan([(0.0, w, s) for s, w in step.computes], private, cap)
    # loads: every transfer starts with the stage, then the latency as a delay (see the
    # module docstring)
    loads = _plan([(0.0, nb, s) for nb, _lat, sv in step.loads for s in sv], private, cap)
    loads.delay = step.load_delay
    return loads, computes, transfers(step.stores)


class PhasePlans:
    """Stage plans of a phase's body, prologue and epilogue in one runtime."""

    __slots__ = ("body", "prologue", "epilogue")

    def __init__(
        self,
        body: tuple[StagePlan, StagePlan, StagePlan],
        prologue: tuple[StagePlan, StagePlan, StagePlan] | None,
        epilogue: tuple[StagePlan, StagePlan, StagePlan] | None,
    ) -> None:
        self.body = body
        self.prologue = prologue
        self.epilogue = epilogue


_PROLOGUE, _BODY, _EPILOGUE = 0, 1, 2
_STAGE_NAMES = ("load", "compute", "store")


class ItemRun:
    """Prologue -> body pipeline -> epilogue of one work item on one slot.

    Parameters
    ----------
    ctx
        The slot.
    plans
        The phase's stage plans in this runtime.
    trips, depth
        Body steps and effective pipeline depth.
    on_done
        Called (with no argument) when the epilogue has finished.
    steady
        If True, watch for a periodic steady state and stop early (see ``_check_steady``);
        the body's end is then extrapolated into ``body_end``. Only exact when this slot
        runs alone and its load, compute and store stages use disjoint servers.
    watch
        Called after every body store completes (when ``steady`` is False); returning True
        stops the item (``on_done`` is called, ``body_end`` stays None).
    """

    __slots__ = (
        "ctx",
        "clock",
        "env",
        "servers",
        "tr",
        "body",
        "prologue",
        "epilogue",
        "n",
        "d",
        "on_done",
        "steady",
        "kl",
        "kl_done",
        "kc",
        "kc_done",
        "ks",
        "ks_done",
        "loading",
        "computing",
        "storing",
        "le",
        "ce",
        "se",
        "t_start",
        "left",
        "dl",
        "jobcb",
        "body_end",
        "stopped",
        "mode",
        "part",
        "t_phase",
        "watch",
        "item",
        "t_item",
    )

    def __init__(
        self,
        ctx: SlotContext,
        plans: PhasePlans,
        trips: int,
        depth: int,
        on_done: Callable[[], None],
        steady: bool = False,
        watch: Callable[[ItemRun], bool] | None = None,
    ) -> None:
        self.ctx = ctx
        self.clock = ctx.clock
        self.env = ctx.clock.env
        self.servers = ctx.servers
        self.tr = ctx.clock.trace is not None
        self.body = plans.body
        self.prologue = plans.prologue
        self.epilogue = plans.epilogue
        self.n = trips
        self.d = depth
        self.on_done = on_done
        self.steady = steady
        self.kl = self.kl_done = self.kc = self.kc_done = self.ks = self.ks_done = 0
        self.loading = self.computing = self.storing = False
        self.le: list[float] = []
        self.ce: list[float] = []
        self.se: list[float] = []
        self.t_start = [0.0, 0.0, 0.0]
        self.left = [0, 0, 0]
        self.dl = [0.0, 0.0, 0.0]
        self.jobcb = (self._job_load, self._job_compute, self._job_store)
        self.body_end: float | None = None
        self.stopped = False
        self.mode = _PROLOGUE
        self.part = 0
        self.t_phase = 0.0
        self.watch = watch
        self.item = 0  # index of the work item (trace names)
        self.t_item = 0.0

    # ---- one stage ---------------------------------------------------------------------------
    def _stage(self, k: int, plan: StagePlan) -> bool:
        """Start stage ``k`` (0 load, 1 compute, 2 store); True if it took no time."""
        if plan.nshared == 0:
            if plan.private_end <= 0.0:
                return True
            self.clock.after(plan.private_end, self._on_deadline, k)
            return False
        self.left[k] = plan.nshared
        self.dl[k] = self.env._now + plan.private_end
        servers = self.servers
        cb = self.jobcb[k]
        for lat, jobs in plan.shared:
            if lat > 0.0:
                self.clock.after(lat, self._on_latency, (k, jobs))
            else:
                if self.tr:
                    self._note(k, jobs)
                for w, s in jobs:
                    servers[s].submit(w, cb)
        return False

    def _on_latency(self, ev: Ev) -> None:
        k, jobs = ev.data
        servers = self.servers
        cb = self.jobcb[k]
        if self.tr:
            self._note(k, jobs)
        for w, s in jobs:
            servers[s].submit(w, cb)

    def _note(self, k: int, jobs: tuple) -> None:
        """Traced runs: tell each server which stage the jobs it is about to serve come from."""
        label = self.ctx.labels.job[self.mode][k]  # type: ignore[union-attr,index]
        servers = self.servers
        for w, s in jobs:
            servers[s].note(label, w)

    def _job_load(self) -> None:
        left = self.left
        left[0] -= 1
        if not left[0]:
            self._jobs_done(0)

    def _job_compute(self) -> None:
        left = self.left
        left[1] -= 1
        if not left[1]:
            self._jobs_done(1)

    def _job_store(self) -> None:
        left = self.left
        left[2] -= 1
        if not left[2]:
            self._jobs_done(2)

    def _jobs_done(self, k: int) -> None:
        """The shared jobs of stage ``k`` are done: wait for its private part, if later."""
        now = self.env._now
        if self.dl[k] > now:
            self.clock.after(self.dl[k] - now, self._on_deadline, k)
        else:
            self._stage_end(k)

    def _on_deadline(self, ev: Ev) -> None:
        self._stage_end(ev.data)

    def _on_ready(self, ev: Ev) -> None:
        """A load's data is usable (its delay after the transfers has passed)."""
        if self.mode == _BODY:
            self.kl_done += 1
            if self.steady:
                self.le.append(self.env._now)
            self._pump()
        else:
            self._serial(self.part + 1)

    def _stage_end(self, k: int) -> None:
        if self.mode == _BODY:
            if k == 0:
                self.loading = False
                delay = self.body[0].delay
                if delay > 0.0:  # the port is free: the next load may start
                    if self.tr:
                        self._span(0, self.kl - 1)
                    self.clock.after(delay, self._on_ready, None)
                    self._pump()
                    return
                self.kl_done += 1
                if self.steady:
                    self.le.append(self.env._now)
            elif k == 1:
                self.computing = False
                self.kc_done += 1
                if self.steady:
                    self.ce.append(self.env._now)
            else:
                self._store_finish()
                self._pump()
                return
            if self.tr:
                self._span(k)
            self._pump()
        else:
            plans = self.prologue if self.mode == _PROLOGUE else self.epilogue
            if k == 0 and plans[0].delay > 0.0:  # type: ignore[index]
                self.clock.after(plans[0].delay, self._on_ready, None)  # type: ignore[index]
                return
            self._serial(self.part + 1)

    # ---- serial steps (prologue / epilogue) -------------------------------------------------
    def start(self) -> None:
        """Begin the item at the current simulated time."""
        self.t_item = self.env._now
        if self.prologue is not None:
            self.t_phase = self.env._now
            self.mode = _PROLOGUE
            self._serial(0)
        else:
            self._after_prologue()

    def _serial(self, part: int) -> None:
        plans = self.prologue if self.mode == _PROLOGUE else self.epilogue
        assert plans is not None  # _serial runs only for a part the phase has (see callers)
        while part < 3:
            if not self._stage(part, plans[part]):
                self.part = part
                return
            if part == 0 and plans[0].delay > 0.0:
                self.part = 0
                self.clock.after(plans[0].delay, self._on_ready, None)
                return
            part += 1
        if self.mode == _PROLOGUE:
            self._after_prologue()
        else:
            self._finish()

    def _after_prologue(self) -> None:
        now = self.env._now
        if self.prologue is not None and self.tr:
            self._part_span(_PROLOGUE, self.t_phase, now)
        self.t_phase = now
        self.mode = _BODY
        if self.n <= 0:
            self._after_body()
        else:
            self._pump()

    def _after_body(self) -> None:
        if self.stopped:
            return
        now = self.env._now
        self.body_end = now
        if self.epilogue is not None:
            self.t_phase = now
            self.mode = _EPILOGUE
            self._serial(0)
        else:
            self._finish()

    def _finish(self) -> None:
        if self.tr:
            now = self.env._now
            if self.epilogue is not None:
                self._part_span(_EPILOGUE, self.t_phase, now)
            ctx = self.ctx
            args = {"phase": ctx.pid, "item": self.item, "slot": ctx.slot, "tiles": self.n}
            self.clock.span(
                ctx.pid, (ctx.slot, "item"), f"item {self.item}", self.t_item, now, args
            )
        self.on_done()

    def _part_span(self, part: int, start: float, end: float) -> None:
        """The prologue or epilogue of this item, on the item's track (nested in its span)."""
        stages = self.ctx.labels.stage[part] or ()  # type: ignore[union-attr]
        done = [(n, a) for n, a in stages if has_work(a)]
        name = "prologue" if part == _PROLOGUE else "epilogue"
        if done:
            name += ": " + "; ".join(n for n, _a in done)
        args: dict[str, object] = {n: a for n, a in done}
        args["item"] = self.item
        self.clock.span(self.ctx.pid, (self.ctx.slot, "item"), name, start, end, args)

    # ---- body pipeline ----------------------------------------------------------------------
    def in_body(self) -> bool:
        """Whether the item is in its body pipeline (not its prologue or epilogue)."""
        return self.mode == _BODY and not self.stopped

    #: state copied by :meth:`clone` (lists copied)
    _STATE = (
        "kl", "kl_done", "kc", "kc_done", "ks", "ks_done", "loading", "computing", "storing",
        "le", "ce", "se", "t_start", "left", "dl", "body_end", "stopped", "mode", "part",
        "t_phase", "item", "t_item",
    )  # fmt: skip

    def clone(
        self,
        ctx: SlotContext,
        on_done: Callable[[], None],
        watch: Callable[[ItemRun], bool] | None = None,
    ) -> ItemRun:
        """A run on ``ctx`` in this run's state (same plans, trips and depth). Its pending
        jobs and events are the caller's to copy (see ``_shortcuts._Quotient._split``)."""
        if self.tr:
            raise ValueError("clone: a traced run cannot be cloned")
        plans = PhasePlans(self.body, self.prologue, self.epilogue)
        new = ItemRun(ctx, plans, self.n, self.d, on_done, steady=self.steady, watch=watch)
        for name in self._STATE:
            value = getattr(self, name)
            setattr(new, name, value[:] if isinstance(value, list) else value)
        return new

    def skip_tiles(self, tiles: int) -> None:
        """Advance every body counter by ``tiles`` (the caller skips whole periods of a
        periodic state; see ``_shortcuts._Quotient.in_item``). The pipeline's state relative
        to its last stored tile is unchanged; at least ``2 depth + 1`` tiles must stay to
        store, so that no load decision (``kl < n``) sees the difference."""
        if tiles < 0 or self.mode != _BODY or self.steady or self.tr:
            raise ValueError(f"skip_tiles: cannot skip {tiles} tiles in this state")
        if self.n - (self.ks_done + tiles) < 2 * self.d + 1:
            raise ValueError(
                f"skip_tiles: {tiles} tiles would leave {self.n - self.ks_done - tiles} to "
                f"store, expected at least 2 depth + 1 = {2 * self.d + 1}"
            )
        self.kl += tiles
        self.kl_done += tiles
        self.kc += tiles
        self.kc_done += tiles
        self.ks += tiles
        self.ks_done += tiles

    def _pump(self) -> None:
        lp, cpl, spl = self.body
        d, n = self.d, self.n
        progressed = True
        while progressed and not self.stopped:
            progressed = False
            if not self.storing and self.ks < self.kc_done:
                self.storing = True
                self.ks += 1
                self.t_start[2] = self.env._now
                if self._stage(2, spl):
                    self._store_finish()
                progressed = True
            if not self.computing and self.kc < self.kl_done and self.kc - self.ks_done < d:
                self.computing = True
                self.kc += 1
                self.t_start[1] = self.env._now
                if self._stage(1, cpl):
                    self._compute_finish()
                progressed = True
            if not self.loading and self.kl < n and self.kl - self.kc_done < d:
                self.loading = True
                self.kl += 1
                self.t_start[0] = self.env._now
                if self._stage(0, lp):
                    if lp.delay > 0.0:
                        self.loading = False
                        self.clock.after(lp.delay, self._on_ready, None)
                    else:
                        self._load_finish()
                progressed = True
        if self.ks_done == n and not self.stopped:
            self._after_body()

    def _span(self, k: int, tile: int | None = None) -> None:
        """Trace the stage ``k`` that ends now (loads: their transfers)."""
        now = self.env._now
        if self.t_start[k] < now:
            ctx = self.ctx
            name, args = ctx.labels.stage[_BODY][k]  # type: ignore[union-attr,index]
            if tile is None:
                tile = (self.kl_done, self.kc_done, self.ks_done)[k] - 1
            args = {**args, "item": self.item, "tile": tile}
            lane = (ctx.slot, _STAGE_NAMES[k])
            self.clock.span(ctx.pid, lane, name, self.t_start[k], now, args)

    def _load_finish(self) -> None:
        self.loading = False
        self.kl_done += 1
        if self.steady:
            self.le.append(self.env._now)
        if self.tr:
            self._span(0)

    def _compute_finish(self) -> None:
        self.computing = False
        self.kc_done += 1
        if self.steady:
            self.ce.append(self.env._now)
        if self.tr:
            self._span(1)

    def _store_finish(self) -> None:
        self.storing = False
        self.ks_done += 1
        if self.tr:
            self._span(2)
        if self.steady:
            self.se.append(self.env._now)
            self._check_steady()
        elif self.watch is not None and not self.stopped and self.watch(self):
            self.stopped = True  # the watcher has what it needs (see _segment._StateWatch)
            self.on_done()

    def _check_steady(self) -> None:
        """Stop once the last ``depth + 1`` tiles repeat the same period.

        NOTE: exact. With one slot alone and load, compute and store stages on disjoint
        servers, every stage of tile ``k`` has a fixed duration and starts at a max of
        completion times of tiles ``k-1`` and ``k-depth`` (a max-plus recurrence). If the
        load, compute and store completions of tiles ``k-depth .. k`` are each exactly one
        period ``P`` after those of the tile before, the recurrence's state has shifted by
        ``P`` and every later tile repeats it, so tile ``n-1``'s store ends at
        ``se[k] + (n-1-k) * P``. Pipelined loads keep this: ``le`` holds the times the data
        became usable, each its transfers' end plus the constant delay, so the transfers' ends
        shift by ``P`` too.
        """
        k = self.ks_done - 1
        w = self.d + 1
        if k < w + 1 or k >= self.n - 1:
            return
        le, ce, se = self.le, self.ce, self.se
        period = se[k] - se[k - 1]
        tol = 1e-9 * max(1.0, abs(se[k]))
        for j in range(k - w + 1, k + 1):
            if (
                abs(se[j] - se[j - 1] - period) > tol
                or abs(ce[j] - ce[j - 1] - period) > tol
                or abs(le[j] - le[j - 1] - period) > tol
            ):
                return
        self.stopped = True
        self.body_end = se[k] + (self.n - 1 - k) * period
        self.on_done()
