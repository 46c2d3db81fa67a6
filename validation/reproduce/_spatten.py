"""SpAtten (Wang et al., HPCA 2021): DRAM access of a pruned, quantized attention stack.

SpAtten's claim (abstract, ``../shared/seeds/000_*.txt``): cascade token pruning, cascade head
pruning and progressive quantization together reduce DRAM access by 10.0x on average over 30
benchmarks, with a top-k engine ranking token and head importance on the fly. This module runs
a 12-layer stack through the ``fusemax`` spatial preset (``fusemax`` dataflow, analytic engine),
layer by layer, dense and pruned, and sums the DRAM bytes the lowering reports:

* **token pruning** -- the kept fraction of the key/value rank shrinks layer by layer (a pruned
  token never comes back). The cascade carries it as a ``density`` annotation on ``K`` and
  ``V`` (``workloads.count`` scales their compulsory bytes), but no spatial recipe scales an
  input's DRAM fetch by its density, so the layer is simulated in the form SpAtten's fetcher
  produces: the top-k engine's kept indices gathered into a dense key rank of
  ``round(keep * S)`` tokens. In a whole-sequence model (BERT) a pruned token also leaves the
  query rank; in generation (GPT-2) the one query attends to the kept keys only.
* **head pruning** -- fewer heads in the layer's cascade (``H``), also cascaded.
* **progressive quantization** -- ``K`` and ``V`` fetched as ``bits = msb`` (MSB first); for a
  fraction ``lsb_frac`` of the work the LSBs are fetched and the attention recomputed: a second
  cascade with ``bits = lsb`` over that fraction of the kept keys (same bytes and ops as that
  fraction of the heads refetching all their keys), of which the K/V DRAM bytes count (the query
  and the result stay on chip).
* **top-k engine** -- ``spatten_topk.ein``: importance accumulation and a quick-select of
  ``R`` compare-selects per candidate, counted by ``workloads.count`` and costed at one op per
  1D PE per cycle; its inputs are on chip, so it adds no DRAM bytes.

``dram_access_reduction`` = dense DRAM bytes / pruned DRAM bytes summed over layers (and
averaged over the two benchmarks). The pruning ratios of the paper's benchmarks are not in
``../shared``; the inputs used are stated in :data:`SETTINGS` with where each comes from.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TypedDict

from archsim import load_arch
from mappings import simulate_workload
from mappings._api import FileWorkload
from workloads import count, format_cascade, get_model, parse_cascade
from workloads.library._registry import get_def, get_workload

from ._common import Cell, Check, Reproduction, Row, within

__all__ = [
    "PAPER",
    "BENCHMARKS",
    "SETTINGS",
    "Setting",
    "keep_schedule",
    "head_schedule",
    "layer_cascades",
    "run_stack",
    "reproduce_spatten",
]

#: Abstract (``../shared/seeds/000_*.txt``): "on average, SpAtten reduces DRAM access by 10.0x".
PAPER = {"dram_access_reduction": 10.0}
TOL = 0.15  # issue 13
#: Recalled from the paper's results section, NOT in ../shared and not verified: the DRAM
#: reduction it attributes to cascade token pruning (~3.8x) and head pruning (~1.1x).
RECALLED = {"token_pruning": 3.8, "head_pruning": 1.1}
ARCH, DATAFLOW = "fusemax", "fusemax"
TOPK_CASCADE = Path(__file__).with_name("spatten_topk.ein")
#: Dense baseline width of K/V/Q/output (the presets' 16-bit word).
DENSE_BITS = 16
#: Compare-selects per candidate charged to the top-k engine (quick-select: ~2n-3.4n compares
#: in expectation for the k-th of n; 3 is our stated cost).
TOPK_ROUNDS = 3


@dataclass(frozen=True)
class Benchmark:
    """A 12-layer stack and the attention step whose DRAM traffic is counted.

    ``generation``: one query per sequence against ``seq`` cached keys (GPT-2 generation);
    otherwise the whole sequence attends to itself (BERT).
    """

    name: str
    layers: int
    heads: int
    head_dim: int
    seq: int
    generation: bool
    source: str


_BERT = get_model("bert-base")
BENCHMARKS: tuple[Benchmark, ...] = (
    Benchmark(
        "bert-base",
        _BERT.layers,
        _BERT.heads,
        _BERT.head_dim,
        _BERT.seq,
        False,
        "workloads model preset bert-base (Devlin et al., 12 layers, 12 heads x 64), seq 512",
    ),
    Benchmark(
        "gpt2-small",
        12,
        12,
        64,
        1024,
        True,
        "GPT-2 small (Radford et al. 2019: 12 layers, d 768, 12 heads, context 1024; from "
        "memory, not a repo preset): one generated token against a full 1024-token context",
    ),
)


@dataclass(frozen=True)
class Setting:
    """Pruning and quantization inputs of one run.

    Attributes
    ----------
    token_final_keep
        Fraction of tokens kept at the last layer; layer ``l`` keeps
        ``token_final_keep ** (l / (L - 1))`` (geometric cascade: each layer prunes the same
        share of what is left; layer 0 is dense).
    head_final_keep
        Fraction of heads kept at the last layer, decreasing linearly from all heads at
        layer 0 (rounded to whole heads).
    msb_bits, lsb_bits
        Progressive quantization: bits fetched first, bits refetched (0 = no quantization).
    lsb_frac
        Fraction of the work whose LSBs are refetched and recomputed.
    q_msb
        Also fetch Q at ``msb_bits`` (off in the runs; a sensitivity row of the breakdown).
    source
        Where these numbers come from.
    """

    token_final_keep: float = 1.0
    head_final_keep: float = 1.0
    msb_bits: int = DENSE_BITS
    lsb_bits: int = 0
    lsb_frac: float = 0.0
    q_msb: bool = False
    source: str = ""


def keep_schedule(final_keep: float, layers: int) -> list[float]:
    """Kept token fraction per layer (geometric from 1 at layer 0 to ``final_keep``)."""
    return [final_keep ** (i / (layers - 1)) for i in range(layers)]


def head_schedule(final_keep: float, heads: int, layers: int) -> list[int]:
    """Heads kept per layer (linear from ``heads`` to ``final_keep * heads``, whole heads)."""
    last = max(1, round(final_keep * heads))
    return [heads - round((heads - last) * i / (layers - 1)) for i in range(layers)]


def _mean_keep(final_keep: float, layers: int) -> float:
    return sum(keep_schedule(final_keep, layers)) / layers


def _solve_final_keep(mean_reduction: float, layers: int) -> float:
    """``final_keep`` whose schedule keeps ``1 / mean_reduction`` of the tokens on average."""
    lo, hi = 1e-6, 1.0
    for _ in range(60):
        mid = math.sqrt(lo * hi)
        lo, hi = (mid, hi) if _mean_keep(mid, layers) < 1.0 / mean_reduction else (lo, mid)
    return math.sqrt(lo * hi)


#: The runs. Quantization is the same in both pruned settings: 6-bit MSB then 4-bit LSB for
#: 10% of the work (our stated values: the paper's per-task bit widths and refetch rate are not
#: in ../shared), against a 16-bit dense baseline.
class _Quant(TypedDict):
    msb_bits: int
    lsb_bits: int
    lsb_frac: float


_QUANT: _Quant = {"msb_bits": 6, "lsb_bits": 4, "lsb_frac": 0.1}
SETTINGS: dict[str, Setting] = {
    "recalled ratios": Setting(
        token_final_keep=_solve_final_keep(RECALLED["token_pruning"], 12),
        head_final_keep=2.0 * (1.0 / RECALLED["head_pruning"]) - 1.0,
        **_QUANT,
        source="token and head schedules solved for the recalled 3.8x / 1.1x (from memory, "
        "unverified); quantization ours",
    ),
    "stated schedule": Setting(
        token_final_keep=0.1,
        head_final_keep=10 / 12,
        **_QUANT,
        source="ours, fixed before running: 90% of tokens and 2 of 12 heads pruned by the last "
        "layer",
    ),
}
HEADLINE = "recalled ratios"
#: Token sweep (final keep at the stated head pruning and quantization).
SWEEP_FINAL_KEEP = (1.0, 0.5, 0.25, 0.1, 0.05, 0.02)
FAST_SWEEP_FINAL_KEEP = (1.0, 0.25, 0.05)
#: Quantization sensitivity (full run only): MSB bits x LSB refetch fraction, at the headline
#: token and head pruning (our inputs, so the table shows how much the headline hangs on them).
QUANT_MSB_BITS = (4, 6, 8)
QUANT_LSB_FRAC = (0.05, 0.1, 0.2)


@functools.lru_cache(maxsize=4096)
def _attention_text(H: int, Sq: int, Skv: int, D: int, bits: int, q: bool = False) -> str:
    """The library's 1-pass ``mha`` cascade at these shapes with K and V (and Q if ``q``)
    at ``bits``."""
    p = dict(get_workload("mha", B=1, H=H, Sq=Sq, Skv=Skv, D=D, passes=1).params)
    out = get_def("mha").build(p)
    for t, r in (("K", "b,h,m,e"), ("V", "b,h,m,f"), *((("Q", "b,h,p,e"),) if q else ())):
        old = f"tensor {t}[{r}] : bits=16"
        if old not in out:  # the library's text changed: fail loudly rather than mis-count
            raise AssertionError(f"mha cascade has no line {old!r}")
        out = out.replace(old, f"tensor {t}[{r}] : bits={bits}")
    return out


@dataclass(frozen=True)
class LayerCascades:
    """The cascades of one layer (see the module docstring), as text.

    ``attention``: the gathered layer (dense key rank of the kept tokens, K/V at ``msb``
    bits); ``refetch``: the LSB refetch ('' when none); ``annotated``: the full key rank with
    K/V ``density = keep`` (what the pruning denotes); ``topk``: the top-k engine's cascade
    ('' for a dense run, which ranks nothing).
    """

    attention: str
    refetch: str
    annotated: str
    topk: str
    keep: float
    heads: int
    queries: int
    tokens: int
    refetch_tokens: int


@functools.lru_cache(maxsize=4096)
def layer_cascades(b: Benchmark, s: Setting, layer: int) -> LayerCascades:
    """Build the cascades of ``layer`` of benchmark ``b`` under setting ``s``."""
    keep = keep_schedule(s.token_final_keep, b.layers)[layer]
    H = head_schedule(s.head_final_keep, b.heads, b.layers)[layer]
    skv = max(1, round(keep * b.seq))
    sq = 1 if b.generation else skv
    att = _attention_text(H, sq, skv, b.head_dim, s.msb_bits, s.q_msb)
    skv_ref = round(s.lsb_frac * skv) if s.lsb_bits else 0
    ref = _attention_text(H, sq, skv_ref, b.head_dim, s.lsb_bits) if skv_ref else ""
    ann = _attention_text(H, 1 if b.generation else b.seq, b.seq, b.head_dim, s.msb_bits, s.q_msb)
    if keep < 1.0:  # the pruned tokens: K/V (and, whole-sequence, Q and the output) rows
        pruned = ("K", "V") if b.generation else ("Q", "K", "V", "AV")
        ann += "".join(f"sparsity {t} : density({keep!r})\n" for t in pruned)
    pruning = s.token_final_keep < 1.0 or s.head_final_keep < 1.0
    topk = ""
    if pruning:
        sizes = {"H": H, "Sq": sq, "Skv": skv, "Dv": b.head_dim, "R": TOPK_ROUNDS}
        topk = format_cascade(parse_cascade(TOPK_CASCADE.read_text(), params=sizes))
    return LayerCascades(att, ref, ann, topk, keep, H, sq, skv, skv_ref)


@functools.lru_cache(maxsize=4096)
def _parsed(text: str):  # noqa: ANN202 - workloads.Cascade
    return parse_cascade(text, name="spatten")


@functools.lru_cache(maxsize=4096)
def _simulate(text: str) -> tuple[float, float, float]:
    """DRAM bytes, seconds, K+V DRAM bytes of one cascade on ARCH with DATAFLOW."""
    cas = _parsed(text)
    params = dict(cas.params)
    wl = FileWorkload("spatten", cas, params, cas.rank_sizes(params))
    res = simulate_workload(ARCH, wl, dataflow=DATAFLOW, engine="analytic").result
    kv = sum(float(v) for k, v in res.bytes_by_tensor.items() if k in ("DRAM.K", "DRAM.V"))
    return float(res.dram_bytes), float(res.seconds), kv


@functools.lru_cache(maxsize=4096)
def _ops(text: str) -> tuple[float, float]:
    """MACs and all other ops of a cascade, by ``workloads.count``."""
    if not text:
        return 0.0, 0.0
    c = count(_parsed(text))
    return float(c.macs), float(sum(c.ops.values()))


@functools.lru_cache(maxsize=4096)
def _compulsory(text: str) -> float:
    """Compulsory bytes of a cascade by ``workloads.count`` (sparsity densities applied)."""
    return float(count(_parsed(text)).compulsory_bytes)


@functools.lru_cache(maxsize=1)
def _pe1d_ops_per_s() -> float:
    a = load_arch(ARCH)
    u = a.unit("pe1d")
    return float(u.ops_per_cycle["add"]) * u.instances * a.clock.core_hz


def run_stack(b: Benchmark, s: Setting, setting: str = "") -> list[Row]:
    """Per-layer rows of benchmark ``b`` under ``s``: dense and pruned DRAM bytes, the
    annotated cascade's count and recipe bytes, op counts and model times."""
    return [{"setting": setting, **r} for r in _run_stack(b, s)]


@functools.lru_cache(maxsize=256)
def _run_stack(b: Benchmark, s: Setting) -> tuple[Row, ...]:
    rows: list[Row] = []
    for layer in range(b.layers):
        d = layer_cascades(b, Setting(), layer)
        p = layer_cascades(b, s, layer)
        d_dram, d_s, _ = _simulate(d.attention)
        a_dram, a_s, a_kv = _simulate(p.attention)
        _, r_s, r_kv = _simulate(p.refetch) if p.refetch else (0.0, 0.0, 0.0)
        ann_dram, _, ann_kv = _simulate(p.annotated)  # what the recipe makes of the annotation
        a_macs, a_ops = _ops(p.attention)
        r_macs, r_ops = _ops(p.refetch)
        _, topk_ops = _ops(p.topk)
        topk_s = topk_ops / _pe1d_ops_per_s()
        pruned = a_dram + r_kv  # the refetch's query and result stay on chip
        rows.append(
            {
                "benchmark": b.name,
                "layer": layer,
                "keep": p.keep,
                "tokens": p.tokens,
                "queries": p.queries,
                "heads": p.heads,
                "kv_bits": s.msb_bits,
                "refetch_tokens": p.refetch_tokens,
                "dense_dram_B": d_dram,
                "pruned_dram_B": pruned,
                "pruned_kv_B": a_kv,
                "lsb_refetch_B": r_kv,
                "annotated_recipe_dram_B": ann_dram,
                "annotated_recipe_kv_B": ann_kv,
                "annotated_count_B": _compulsory(p.annotated),
                "gathered_count_B": _compulsory(p.attention),
                "reduction": d_dram / pruned,
                "attn_macs": a_macs + r_macs,
                "attn_ops": a_ops + r_ops,
                "topk_ops": topk_ops,
                "dense_us": d_s * 1e6,
                "pruned_us": (a_s + r_s + topk_s) * 1e6,
                "topk_us": topk_s * 1e6,
            }
        )
    return tuple(rows)


def _total(rows: Sequence[Mapping[str, Cell]], key: str) -> float:
    return float(sum(float(r[key]) for r in rows))


def stack_reduction(b: Benchmark, s: Setting) -> float:
    """Dense / pruned DRAM bytes of benchmark ``b`` summed over its layers."""
    rows = run_stack(b, s)
    return _total(rows, "dense_dram_B") / _total(rows, "pruned_dram_B")


def _only(s: Setting, *mechs: str) -> Setting:
    """``s`` with only the named mechanisms (``token``, ``head``, ``quant``) switched on."""
    return Setting(
        token_final_keep=s.token_final_keep if "token" in mechs else 1.0,
        head_final_keep=s.head_final_keep if "head" in mechs else 1.0,
        msb_bits=s.msb_bits if "quant" in mechs else DENSE_BITS,
        lsb_bits=s.lsb_bits if "quant" in mechs else 0,
        lsb_frac=s.lsb_frac if "quant" in mechs else 0.0,
        q_msb=s.q_msb and "quant" in mechs,
        source=s.source,
    )


_MECHS: dict[str, tuple[str, ...]] = {
    "token pruning": ("token",),
    "head pruning": ("head",),
    "progressive quantization": ("quant",),
    "token + head": ("token", "head"),
    "all three": ("token", "head", "quant"),
}


def _stack_row(b: Benchmark, name: str, s: Setting, rows: Sequence[Mapping[str, Cell]]):  # noqa: ANN202
    dense, pruned = _total(rows, "dense_dram_B"), _total(rows, "pruned_dram_B")
    d_us, p_us = _total(rows, "dense_us"), _total(rows, "pruned_us")
    return {
        "benchmark": b.name,
        "setting": name,
        "token_final_keep": s.token_final_keep,
        "token_mean_keep": _mean_keep(s.token_final_keep, b.layers),
        "heads_last_layer": head_schedule(s.head_final_keep, b.heads, b.layers)[-1],
        "kv_bits": f"{s.msb_bits}+{s.lsb_bits} ({s.lsb_frac:.0%} refetched)"
        if s.lsb_bits
        else str(s.msb_bits),
        "dense_MB": dense / 1e6,
        "pruned_MB": pruned / 1e6,
        "dram_access_reduction": dense / pruned,
        "paper": PAPER["dram_access_reduction"],
        "annotated_recipe_reduction": dense / _total(rows, "annotated_recipe_dram_B"),
        "dense_us": d_us,
        "pruned_us": p_us,
        "speedup": d_us / p_us,
        "topk_share_of_time": _total(rows, "topk_us") / p_us,
        "source": s.source,
    }


def _mean(xs: Sequence[float]) -> float:
    return float(sum(xs) / len(xs)) if xs else float("nan")


def reproduce_spatten(*, fast: bool = False) -> Reproduction:
    """Run the SpAtten reproduction (``fast``: a shorter pruning sweep)."""
    layers: list[Row] = []
    stacks: list[Row] = []
    for name, s in SETTINGS.items():
        for b in BENCHMARKS:
            rows = run_stack(b, s, name)
            layers += rows
            stacks.append(_stack_row(b, name, s, rows))
    head = SETTINGS[HEADLINE]
    breakdown: list[Row] = []
    for b in BENCHMARKS:
        by_mech = {m: stack_reduction(b, _only(head, *k)) for m, k in _MECHS.items()}
        singles = ("token pruning", "head pruning", "progressive quantization")
        breakdown.append(
            {
                "benchmark": b.name,
                **by_mech,
                "product of the three alone": math.prod(by_mech[m] for m in singles),
                "all three, Q at MSB too": stack_reduction(b, replace(head, q_msb=True)),
                "recalled token": RECALLED["token_pruning"],
                "recalled head": RECALLED["head_pruning"],
            }
        )
    sweep: list[Row] = []
    stated = SETTINGS["stated schedule"]
    for fk in FAST_SWEEP_FINAL_KEEP if fast else SWEEP_FINAL_KEEP:
        for b in BENCHMARKS:
            s_all = replace(stated, token_final_keep=fk)
            sweep.append(
                {
                    "benchmark": b.name,
                    "token_final_keep": fk,
                    "token_mean_keep": _mean_keep(fk, b.layers),
                    "tokens_only": stack_reduction(b, _only(s_all, "token")),
                    "all_three": stack_reduction(b, s_all),
                }
            )
    at = {str(r["benchmark"]): r for r in stacks if r["setting"] == HEADLINE}
    at_stated = [r for r in stacks if r["setting"] == "stated schedule"]
    by_bench = {k: float(v["dram_access_reduction"]) for k, v in at.items()}
    red = _mean(list(by_bench.values()))
    red_stated = _mean([float(r["dram_access_reduction"]) for r in at_stated])
    grows = all(
        all(
            float(b2[k]) > float(a2[k])
            for a2, b2 in zip(seq, seq[1:], strict=False)
            for k in ("tokens_only", "all_three")
        )
        for seq in ([r for r in sweep if r["benchmark"] == b.name] for b in BENCHMARKS)
    )
    ann_err = max(
        abs(
            sum(float(r["annotated_count_B"]) for r in rows_)
            / sum(float(r["gathered_count_B"]) for r in rows_)
            - 1.0
        )
        for rows_ in (
            [r for r in layers if (r["setting"], r["benchmark"]) == key]
            for key in {(r["setting"], r["benchmark"]) for r in layers}
        )
    )
    gathered_is_recipe = max(
        abs(float(r["gathered_count_B"]) - (float(r["pruned_dram_B"]) - float(r["lsb_refetch_B"])))
        / float(r["gathered_count_B"])
        for r in layers
    )
    recipe_gap = _mean([float(r["annotated_recipe_reduction"]) for r in at.values()])
    bd = {m: _mean([float(r[m]) for r in breakdown]) for m in _MECHS}
    checks = (
        Check(
            f"DRAM access reduction, mean of {len(BENCHMARKS)} stacks ({HEADLINE})",
            red,
            PAPER["dram_access_reduction"],
            within(red, PAPER["dram_access_reduction"], TOL),
            "±15%",
        ),
        *(
            Check(
                f"DRAM access reduction, {k} ({HEADLINE})",
                v,
                PAPER["dram_access_reduction"],
                within(v, PAPER["dram_access_reduction"], TOL),
                "±15% (info: the paper's 10.0x is a mean over 30 benchmarks)",
                gate=False,
            )
            for k, v in by_bench.items()
        ),
        Check(
            "DRAM access reduction, mean (stated schedule)",
            red_stated,
            PAPER["dram_access_reduction"],
            within(red_stated, PAPER["dram_access_reduction"], TOL),
            "±15% (info: our schedule, not the paper's ratios)",
            gate=False,
        ),
        Check(
            "reduction grows with the token pruning ratio (sweep)",
            float(grows),
            1.0,
            grows,
            "strictly increasing",
        ),
        Check(
            "count of the annotated stack = count of the gathered one (max rel. err)",
            ann_err,
            0.0,
            ann_err <= 0.01,
            "<= 1% (layers round to whole tokens)",
        ),
        Check(
            "recipe DRAM bytes of the gathered layer = its compulsory bytes (max rel. err)",
            gathered_is_recipe,
            0.0,
            gathered_is_recipe <= 1e-3,
            "<= 0.1% (one fetch of each operand)",
        ),
    )
    summary = {
        "dram_access_reduction": red,
        "dram_access_reduction_by_benchmark": by_bench,
        "dram_access_reduction_stated_schedule": red_stated,
        "paper_dram_access_reduction": PAPER["dram_access_reduction"],
        "breakdown_mean": bd,
        "dram_access_reduction_q_at_msb_too": _mean(
            [float(r["all three, Q at MSB too"]) for r in breakdown]
        ),
        "annotated_recipe_reduction": recipe_gap,
        "speedup_mean": _mean([float(r["speedup"]) for r in at.values()]),
        "arch": ARCH,
        "dataflow": DATAFLOW,
    }
    notes = (
        "Paper (abstract, ../shared/seeds): DRAM access reduced 10.0x on average over 30 "
        "benchmarks. Its per-benchmark pruning ratios, bit widths and refetch rate are not in "
        "../shared; 'recalled ratios' uses 3.8x (token) and 1.1x (head) recalled from the "
        "paper's results (unverified); 'stated schedule' is ours.",
        "Schedules: layer l keeps final_keep^(l/11) of the tokens (layer 0 dense; a pruned "
        "token stays pruned) and heads fall linearly to the last layer's count. Quantization "
        "(ours): K/V at 6-bit MSB, 4-bit LSB refetched for 10% of the work, against 16 bits; "
        "Q and the output stay 16-bit.",
        "Token pruning is carried in the cascade as density on K/V (and Q/output for BERT): "
        "workloads.count scales their compulsory bytes, but the spatial recipes do not scale "
        "an input's DRAM fetch by its density (annotated_recipe_reduction shows what they "
        "give), so each layer is simulated gathered, with the kept tokens as a dense rank; its "
        "count equals the annotated count within rounding (check).",
        "Top-k engine: spatten_topk.ein (importance accumulation + 3 compare-selects per "
        "candidate) counted by workloads.count, one op per 1D PE per cycle of the fusemax "
        "preset; on chip, so no DRAM bytes. Times are the fusemax preset's, not SpAtten's "
        "chip, and are reported only.",
        "BERT misses because half its attention traffic is Q and the output, which pruning "
        "shrinks but our quantization does not narrow; GPT-2 generation is K/V-bound.",
    )
    tables: dict[str, list[Row]] = {
        "spatten": stacks,
        "breakdown": breakdown,
        "sweep": sweep,
        "layers": layers,
    }
    if not fast:
        tables["quant_sensitivity"] = _quant_sensitivity(head)
    return Reproduction(
        name="spatten",
        tables=tables,
        summary=summary,
        checks=checks,
        notes=notes,
        plot=lambda fig: _plot(fig, sweep, breakdown),
    )


def _quant_sensitivity(head: Setting) -> list[Row]:
    """Mean and per-stack reduction over the MSB width and LSB refetch fraction."""
    out: list[Row] = []
    for msb in QUANT_MSB_BITS:
        for frac in QUANT_LSB_FRAC:
            s = replace(head, msb_bits=msb, lsb_bits=4, lsb_frac=frac)
            by = {b.name: stack_reduction(b, s) for b in BENCHMARKS}
            out.append(
                {
                    "msb_bits": msb,
                    "lsb_bits": 4,
                    "lsb_frac": frac,
                    **by,
                    "mean": _mean(list(by.values())),
                    "within_15pct_of_paper": within(
                        _mean(list(by.values())), PAPER["dram_access_reduction"], TOL
                    ),
                }
            )
    return out


def _plot(fig, sweep, breakdown) -> None:  # noqa: ANN001 - matplotlib Figure and row lists
    a0, a1 = fig.subplots(1, 2)
    for b, style in zip(BENCHMARKS, ("o-", "s-"), strict=False):
        pts = [r for r in sweep if r["benchmark"] == b.name]
        x = [1.0 / r["token_mean_keep"] for r in pts]
        a0.plot(x, [r["all_three"] for r in pts], style, label=f"{b.name}: all three")
        a0.plot(x, [r["tokens_only"] for r in pts], style, alpha=0.4, label=f"{b.name}: tokens")
    a0.axhline(PAPER["dram_access_reduction"], color="k", ls="--", lw=0.8, label="paper 10.0x")
    a0.axvline(RECALLED["token_pruning"], color="0.6", lw=0.8, label="recalled 3.8x tokens")
    a0.set_xscale("log", base=2)
    a0.set_yscale("log", base=2)
    a0.set_xlabel("token pruning: 1 / mean kept fraction")
    a0.set_ylabel("DRAM access reduction (dense / pruned)")
    a0.set_title("SpAtten on the fusemax preset")
    a0.legend(fontsize=6)
    mechs = list(_MECHS)
    w = 0.8 / len(breakdown)
    for i, r in enumerate(breakdown):
        a1.bar(
            [j + i * w for j in range(len(mechs))], [r[m] for m in mechs], w, label=r["benchmark"]
        )
    a1.set_xticks([j + 0.4 - w / 2 for j in range(len(mechs))])
    a1.set_xticklabels(mechs, rotation=20, fontsize=6)
    a1.axhline(PAPER["dram_access_reduction"], color="k", ls="--", lw=0.8)
    a1.set_ylabel("DRAM access reduction")
    a1.set_title(f"by mechanism ({HEADLINE})")
    a1.legend(fontsize=6)
