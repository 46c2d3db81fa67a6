"""One work item on one slot: prologue, the ``depth``-stage body pipeline, epilogue.

Callback-driven state machines on the SimPy event loop (a generator per tile would cost a
process switch per stage; callbacks keep the engine near one SimPy event per job).
"""

from __future__ import annotations

from collections.abc import Callable

from archsim.engine._compile import CompiledStep
from archsim.engine._server import Clock, PSServer

__all__ = ["Stage", "SlotContext", "ItemRun"]


class SlotContext:
    """What one slot sees: the server instances it uses (``servers[server_index]``)."""

    __slots__ = ("clock", "servers", "slot", "pid")

    def __init__(self, clock: Clock, servers: list[PSServer], slot: int, pid: str) -> None:
        self.clock = clock
        self.servers = servers
        self.slot = slot
        self.pid = pid


class Stage:
    """Run a set of concurrent jobs; call ``on_done()`` once all are finished.

    ``start`` returns True if there was nothing to do (finished at once, no callback).
    """

    __slots__ = ("ctx", "left", "on_done")

    def __init__(self, ctx: SlotContext, on_done: Callable[[], None]) -> None:
        self.ctx = ctx
        self.left = 0
        self.on_done = on_done

    def _one(self) -> None:
        self.left -= 1
        if self.left == 0:
            self.on_done()

    def start_transfers(self, groups: tuple) -> bool:
        """Start a step's transfers, given as ``CompiledStep.load_groups``/``store_groups``."""
        count, by_latency = groups
        if count == 0:
            return True
        self.left = count
        servers = self.ctx.servers
        one = self._one
        for lat, jobs in by_latency:
            if lat > 0:
                self.ctx.clock.after(lat, lambda _ev, jobs=jobs: self._submit(jobs))
            else:
                for nbytes, sv in jobs:
                    for s in sv:
                        servers[s].submit(nbytes, one)
        return False

    def _submit(self, jobs: list[tuple[float, tuple[int, ...]]]) -> None:
        servers = self.ctx.servers
        one = self._one
        for nbytes, sv in jobs:
            for s in sv:
                servers[s].submit(nbytes, one)

    def start_computes(self, computes: tuple[tuple[int, float], ...]) -> bool:
        jobs = [(s, w) for s, w in computes if w > 0]
        if not jobs:
            return True
        self.left = len(jobs)
        servers = self.ctx.servers
        for s, w in jobs:
            servers[s].submit(w, self._one)
        return False


class ItemRun:
    """Prologue -> body pipeline -> epilogue of one work item on one slot.

    Parameters
    ----------
    ctx
        The slot.
    body, prologue, epilogue
        Compiled steps.
    trips, depth
        Body steps and effective pipeline depth.
    on_done
        Called (with no argument) when the epilogue has finished.
    steady
        If True, watch for a periodic steady state and stop early (see ``_check_steady``);
        the body's end is then extrapolated into ``body_end``. Only exact when this slot
        runs alone and its load, compute and store stages use disjoint servers.
    """

    __slots__ = (
        "ctx",
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
        "t_ls",
        "t_cs",
        "t_ss",
        "body_end",
        "stopped",
        "phase_stage",
        "t_phase",
    )

    def __init__(
        self,
        ctx: SlotContext,
        body: CompiledStep,
        prologue: CompiledStep | None,
        epilogue: CompiledStep | None,
        trips: int,
        depth: int,
        on_done: Callable[[], None],
        steady: bool = False,
    ) -> None:
        self.ctx = ctx
        self.body = body
        self.prologue = prologue
        self.epilogue = epilogue
        self.n = trips
        self.d = depth
        self.on_done = on_done
        self.steady = steady
        self.kl = self.kl_done = self.kc = self.kc_done = self.ks = self.ks_done = 0
        self.loading = self.computing = self.storing = False
        self.le: list[float] = []
        self.ce: list[float] = []
        self.se: list[float] = []
        self.t_ls = self.t_cs = self.t_ss = 0.0
        self.body_end: float | None = None
        self.stopped = False
        self.phase_stage = 0
        self.t_phase = 0.0

    # ---- serial steps (prologue / epilogue) -------------------------------------------------
    def start(self) -> None:
        """Begin the item at the current simulated time."""
        if self.prologue is not None:
            self.t_phase = self.ctx.clock.env.now
            self._serial(self.prologue, 0, self._after_prologue)
        else:
            self._after_prologue()

    def _serial(self, step: CompiledStep, part: int, then: Callable[[], None]) -> None:
        # part 0: loads, 1: compute, 2: stores
        while part < 3:
            stage = Stage(self.ctx, lambda p=part: self._serial(step, p + 1, then))
            if part == 0:
                immediate = stage.start_transfers(step.load_groups)
            elif part == 1:
                immediate = stage.start_computes(step.computes)
            else:
                immediate = stage.start_transfers(step.store_groups)
            if not immediate:
                return
            part += 1
        then()

    def _after_prologue(self) -> None:
        now = self.ctx.clock.env.now
        if self.prologue is not None:
            self.ctx.clock.span(self.ctx.pid, self.ctx.slot, "prologue", self.t_phase, now)
        self.t_phase = now
        if self.n <= 0:
            self._after_body()
        else:
            self._pump()

    def _after_body(self) -> None:
        if self.stopped:
            return
        now = self.ctx.clock.env.now
        self.body_end = now
        if self.epilogue is not None:
            self.t_phase = now
            self._serial(self.epilogue, 0, self._finish)
        else:
            self._finish()

    def _finish(self) -> None:
        if self.epilogue is not None:
            self.ctx.clock.span(
                self.ctx.pid, self.ctx.slot, "epilogue", self.t_phase, self.ctx.clock.env.now
            )
        self.on_done()

    # ---- body pipeline ----------------------------------------------------------------------
    def _pump(self) -> None:
        body, d, n = self.body, self.d, self.n
        progressed = True
        while progressed and not self.stopped:
            progressed = False
            if not self.storing and self.ks < self.kc_done:
                self.storing = True
                self.ks += 1
                self.t_ss = self.ctx.clock.env.now
                if Stage(self.ctx, self._store_done).start_transfers(body.store_groups):
                    self._store_finish()
                progressed = True
            if not self.computing and self.kc < self.kl_done and self.kc - self.ks_done < d:
                self.computing = True
                self.kc += 1
                self.t_cs = self.ctx.clock.env.now
                if Stage(self.ctx, self._compute_done).start_computes(body.computes):
                    self._compute_finish()
                progressed = True
            if not self.loading and self.kl < n and self.kl - self.kc_done < d:
                self.loading = True
                self.kl += 1
                self.t_ls = self.ctx.clock.env.now
                if Stage(self.ctx, self._load_done).start_transfers(body.load_groups):
                    self._load_finish()
                progressed = True
        if self.ks_done == n and not self.stopped:
            self._after_body()

    def _load_finish(self) -> None:
        now = self.ctx.clock.env.now
        self.loading = False
        self.kl_done += 1
        self.le.append(now)
        if self.t_ls < now:
            self.ctx.clock.span(self.ctx.pid, self.ctx.slot, "load", self.t_ls, now)

    def _compute_finish(self) -> None:
        now = self.ctx.clock.env.now
        self.computing = False
        self.kc_done += 1
        self.ce.append(now)
        if self.t_cs < now:
            self.ctx.clock.span(self.ctx.pid, self.ctx.slot, "compute", self.t_cs, now)

    def _store_finish(self) -> None:
        now = self.ctx.clock.env.now
        self.storing = False
        self.ks_done += 1
        self.se.append(now)
        if self.t_ss < now:
            self.ctx.clock.span(self.ctx.pid, self.ctx.slot, "store", self.t_ss, now)
        if self.steady:
            self._check_steady()

    def _load_done(self) -> None:
        self._load_finish()
        self._pump()

    def _compute_done(self) -> None:
        self._compute_finish()
        self._pump()

    def _store_done(self) -> None:
        self._store_finish()
        self._pump()

    def _check_steady(self) -> None:
        """Stop once the last ``depth + 1`` tiles repeat the same period.

        NOTE: exact. With one slot alone and load, compute and store stages on disjoint
        servers, every stage of tile ``k`` has a fixed duration and starts at a max of
        completion times of tiles ``k-1`` and ``k-depth`` (a max-plus recurrence). If the
        load, compute and store completions of tiles ``k-depth .. k`` are each exactly one
        period ``P`` after those of the tile before, the recurrence's state has shifted by
        ``P`` and every later tile repeats it, so tile ``n-1``'s store ends at
        ``se[k] + (n-1-k) * P``.
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
