"""Whole generation: a prefill, then decode steps with the context growing.

``batch`` sequences of a ``prompt``-token prompt each generate ``tokens`` output tokens: the
prefill yields the first (its LM head samples it), then ``tokens - 1`` decode steps yield
the rest; step ``j`` (``j = 1 .. tokens - 1``) reads a cache of ``prompt + j`` tokens (the
new one included, as :func:`models.build_graph` counts a decode step's ``seq``).

Totals: time to first token ``TTFT`` = the prefill; time per output token ``TPOT`` = the
decode time over ``tokens - 1`` steps; output tokens/s = ``batch * tokens`` over
``TTFT + decode time``; J/token = all energy (prefill + decode, all devices) over
``batch * tokens``.

NOTE (integration, not step-by-step simulation): decode steps differ only in their context
length, and only the attention (and its block table) reads it: every other op has one shape
for the whole generation and is simulated once (the simulation cache holds it). The step
cost ``f(L)`` is therefore summed over ``L = prompt + 1 .. prompt + tokens - 1`` from
samples:

- with a paged cache, the attention reads whole pages, so ``f`` is constant while the page
  count (and vLLM's 512-token partition count, which sets the kernel) is: one sample per
  distinct pair, weighted by the steps that fall in it, is the exact sum (used when there
  are fewer than :data:`MAX_SAMPLES` distinct page counts);
- otherwise ``f`` is sampled at ``n`` evenly spaced contexts (both ends included) and taken
  as linear between samples (the K/V bytes of a decode step are linear in ``L``; the GPU
  kernels' tile counts make it a fine staircase that the linear form averages over). The
  sum is exact where ``f`` is piecewise linear with breaks at the samples. The same sum
  with half the samples is reported beside it (``integration_check``): their relative
  difference bounds how far the staircase moves the result.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from models._graph import PAGED_PARTITION, build_graph
from models._simulate import ModelReport, simulate_graph
from models._spec import ModelError, ModelSpec

if TYPE_CHECKING:
    from archsim import Architecture
    from models._comm import System

__all__ = ["GenerationReport", "simulate_generation", "MAX_SAMPLES", "LINEAR_SAMPLES"]

#: Most distinct page counts summed exactly (one decode-attention simulation each).
MAX_SAMPLES = 256
#: Evenly spaced contexts sampled where the cost is taken as linear between samples.
LINEAR_SAMPLES = 17


@dataclass(frozen=True)
class GenerationReport:
    """A simulated generation (see the module doc).

    Attributes
    ----------
    prefill
        The prefill step's report.
    first_step, last_step
        The first and last decode steps' reports (None when ``tokens == 1``).
    batch, prompt, tokens
        Sequences, prompt tokens and output tokens per sequence.
    decode_s, decode_j
        Seconds and joules of all decode steps (all devices).
    samples
        Contexts whose decode step was simulated.
    sample_costs
        ``(context, step seconds, step joules)`` of each sample (all devices' joules).
    method
        ``pages`` (exact per-page sum) or ``linear`` (piecewise-linear sum over samples).
    integration_check
        Relative difference of the decode seconds summed with half the samples (0 for
        ``pages`` and when there are too few steps to halve).
    """

    prefill: ModelReport
    first_step: ModelReport | None
    last_step: ModelReport | None
    batch: int
    prompt: int
    tokens: int
    decode_s: float
    decode_j: float
    samples: tuple[int, ...]
    method: str
    integration_check: float
    sample_costs: tuple[tuple[int, float, float], ...] = ()

    @property
    def unmapped(self) -> list[tuple[str, str, str]]:
        """(phase, stage, op) of every op no dataflow maps, in the prefill or a decode step
        (left out of the totals)."""
        out = [("prefill", r.stage, r.op) for r in self.prefill.table_unmapped()]
        if self.last_step is not None:
            out += [("decode", r.stage, r.op) for r in self.last_step.table_unmapped()]
        return out

    @property
    def complete(self) -> bool:
        """Whether every op of the prefill and the decode steps was simulated."""
        return not self.unmapped

    @property
    def ttft_s(self) -> float:
        """Time to first token, s (the prefill)."""
        return self.prefill.latency_s

    @property
    def tpot_s(self) -> float:
        """Mean time per output token after the first, s (nan for one token)."""
        return self.decode_s / (self.tokens - 1) if self.tokens > 1 else float("nan")

    @property
    def total_s(self) -> float:
        """Seconds from the prompt to the last token."""
        return self.ttft_s + self.decode_s

    @property
    def energy_j(self) -> float:
        """Joules of the whole generation, all devices."""
        return self.prefill.energy_j + self.decode_j

    @property
    def output_tokens(self) -> int:
        """Tokens generated, all sequences."""
        return self.batch * self.tokens

    @property
    def tokens_per_s(self) -> float:
        """Output tokens per second over the whole generation."""
        return self.output_tokens / self.total_s

    @property
    def j_per_token(self) -> float:
        """Joules per output token (prefill energy included)."""
        return self.energy_j / self.output_tokens

    def to_dict(self) -> dict[str, object]:
        """JSON-ready totals, the sampled contexts and the prefill / last-step reports."""
        last = self.last_step
        return {
            "model": self.prefill.graph.model.name,
            "arch": self.prefill.arch,
            "batch": self.batch,
            "prompt": self.prompt,
            "tokens": self.tokens,
            "ttft_s": self.ttft_s,
            "tpot_s": self.tpot_s if self.tokens > 1 else None,
            "decode_s": self.decode_s,
            "total_s": self.total_s,
            "tokens_per_s": self.tokens_per_s,
            "energy_j": self.energy_j,
            "j_per_token": self.j_per_token,
            "method": self.method,
            "samples": list(self.samples),
            "steps": [
                {"context": c, "latency_s": t, "energy_j": e} for c, t, e in self.sample_costs
            ],
            "integration_check": self.integration_check,
            "complete": self.complete,
            "unmapped": [{"phase": p, "stage": s, "op": o} for p, s, o in self.unmapped],
            "prefill": self.prefill.to_dict(),
            "first_step": None if self.first_step is None else self.first_step.to_dict(),
            "last_step": None if last is None else last.to_dict(),
        }

    def write_trace(self, path: str | Path) -> Path:
        """Perfetto trace of the prefill followed by the last decode step (one process per
        device); the steps between are not drawn."""
        import json

        events = self.prefill.trace_events()
        if self.last_step is not None:
            shift = (self.ttft_s + self.decode_s - self.last_step.latency_s) * 1e6
            for e in self.last_step.trace_events():
                if e["ph"] == "X":
                    ts = float(e["ts"]) + shift  # type: ignore[arg-type]  # a float in µs
                    events.append({**e, "ts": ts, "cat": f"last step {e['cat']}"})
        path = Path(path)
        path.write_text(json.dumps({"traceEvents": events, "displayTimeUnit": "ns"}))
        return path


def _linear_sum(xs: np.ndarray, ys: np.ndarray, lo: int, hi: int) -> float:
    """Sum over integers ``lo..hi`` of the piecewise-linear interpolant of ``(xs, ys)``."""
    grid = np.arange(lo, hi + 1, dtype=float)
    return float(np.interp(grid, xs, ys).sum())


def simulate_generation(
    model: str | Path | ModelSpec,
    arch: str | Architecture,
    *,
    batch: int = 1,
    prompt: int = 2048,
    tokens: int = 128,
    tp: int = 1,
    system: str | Path | System | None = None,
    engine: str = "event",
    page: int = 0,
    cp: int = 1,
    ep: int = 1,
    cp_mode: str = "ring",
) -> GenerationReport:
    """Prefill ``batch`` prompts of ``prompt`` tokens, then decode to ``tokens`` output
    tokens each (module doc); ``model`` a :class:`ModelSpec`, preset name or config path;
    parallelism, ``system`` and ``page`` as in :func:`models.simulate_model`."""
    from models._comm import System as _System
    from models._comm import default_system, load_system
    from models._spec import load_model

    model = load_model(model)
    if system is not None and not isinstance(system, _System):
        system = load_system(system)
    elif system is None and tp * cp * ep > 1 and isinstance(arch, str):
        system = default_system(arch, tp * cp * ep)
    for name, v in (("prompt", prompt), ("tokens", tokens)):
        if isinstance(v, bool) or not isinstance(v, int) or v < 1:
            raise ModelError("bad value", path=name, expected="a positive integer", got=v)
    if model.family != "decoder":
        raise ModelError(
            "only a decoder generates tokens",
            path="phase",
            expected=f"prefill for {model.name} ({model.family})",
            got="generate",
        )
    pre = build_graph(
        model, phase="prefill", batch=batch, seq=prompt, tp=tp, cp=cp, ep=ep, cp_mode=cp_mode
    )
    prefill = simulate_graph(pre, arch, system=system, engine=engine)

    def step(ctx: int) -> ModelReport:
        g = build_graph(model, phase="decode", batch=batch, seq=ctx, page=page, tp=tp, cp=cp, ep=ep)
        return simulate_graph(g, arch, system=system, engine=engine)

    if tokens == 1:
        return GenerationReport(prefill, None, None, batch, prompt, 1, 0.0, 0.0, (), "none", 0.0)
    lo, hi = prompt + 1, prompt + tokens - 1
    shard = cp  # decode under cp: each device's cache holds ceil(ctx / cp) positions
    n_pages = math.ceil(math.ceil(hi / shard) / page) - math.ceil(lo / shard / page) if page else 0
    if page and n_pages < MAX_SAMPLES:
        # exact: the step cost is constant while the page count and vLLM's partition count
        # (which also decides v1/v2) are; they change together unless a page spans a
        # 512-token partition boundary
        ctxs = np.arange(lo, hi + 1)
        local = np.ceil(ctxs / shard)
        pages = np.ceil(local / page).astype(int) * (2**20) + np.ceil(
            local / PAGED_PARTITION
        ).astype(int)
        firsts = {int(p): int(ctxs[np.argmax(pages == p)]) for p in np.unique(pages)}
        weights = {p: int((pages == p).sum()) for p in firsts}
        reps = {p: step(c) for p, c in firsts.items()}
        decode_s = sum(reps[p].latency_s * weights[p] for p in reps)
        decode_j = sum(reps[p].energy_j * weights[p] for p in reps)
        samples = tuple(sorted(firsts.values()))
        first, last = reps[min(reps)], reps[max(reps)]
        costs = tuple((firsts[p], reps[p].latency_s, reps[p].energy_j) for p in sorted(reps))
        return GenerationReport(
            prefill,
            first,
            last,
            batch,
            prompt,
            tokens,
            decode_s,
            decode_j,
            samples,
            "pages",
            0.0,
            costs,
        )
    n = min(LINEAR_SAMPLES, hi - lo + 1)
    xs = np.unique(np.linspace(lo, hi, n).round().astype(int))
    reps_l = [step(int(c)) for c in xs]
    t = np.array([r.latency_s for r in reps_l])
    e = np.array([r.energy_j for r in reps_l])
    decode_s = _linear_sum(xs.astype(float), t, lo, hi)
    decode_j = _linear_sum(xs.astype(float), e, lo, hi)
    check = 0.0
    if xs.size >= 5:
        half = xs[::2] if xs[-1] == xs[::2][-1] else np.append(xs[::2], xs[-1])
        th = np.array([t[list(xs).index(x)] for x in half])
        check = abs(_linear_sum(half.astype(float), th, lo, hi) / decode_s - 1.0)
    return GenerationReport(
        prefill,
        reps_l[0],
        reps_l[-1],
        batch,
        prompt,
        tokens,
        decode_s,
        decode_j,
        tuple(int(x) for x in xs),
        "linear",
        check,
        tuple((int(c), r.latency_s, r.energy_j) for c, r in zip(xs, reps_l, strict=True)),
    )
