"""Hydragen (Juravsky et al., arXiv 2402.05099): shared-prefix decode attention on ``h100``.

One decode step of ``B`` sequences that share an ``Sp``-token prefix and each carry an
``Ss``-token suffix, per layer, the kernels timed by the event engine:

* **Hydragen**: three kernels back to back. (a) Prefix attention: the ``shared_prefix``
  workload's ``prefix`` cascade (query ``Q[b,h,p,e]``, one prefix ``K[h,m,e]`` without the
  batch rank) lowered by the ``split_kv`` recipe, which packs the ``B`` query rows of each
  head into one query tile -- FlashAttention-2's forward kernel (128-row tiles) once ``B``
  is large, the split-KV kernel (FA2's split heuristic) while few CTAs exist; the prefix
  K/V is read once per step. (b) Suffix attention: the ``decode`` workload over ``Ss`` keys
  per sequence, same recipe. (c) The log-sum-exp combine: one elementwise kernel reading
  both normalised outputs and their LSEs and writing the result.
* **Baseline** (vLLM / FlashDecoding style, no sharing in the attention): the ``decode``
  workload over ``Sp + Ss`` keys per sequence through ``split_kv`` -- every sequence reads
  the whole prefix K/V. A second baseline, ``lean`` (stream-K decode, near the HBM roofline in
  this model), separates the mechanism (K/V bytes removed) from FA2's padded decode tile.

The three-kernel split is the decomposition the ``shared_prefix`` workload's ``hydragen``
cascade proves exact (``workloads/library/_shared_prefix.py``, verified against softmax
attention over the concatenated keys). Nothing is fitted: tiles, split rule and GPU constants
are the library's and the calibrated ``h100`` model's.

End-to-end (the paper's claims are end-to-end throughput): the rest of the decode step is
estimated as the layer's GEMMs at ``M = B`` through the GEMM kernels (QKV, output,
gate/up, down projections) plus the LM head; norms, rotary embeddings, sampling and the
serving framework are not modelled.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence

from archsim.gpu import KernelCost, gemm_costs, gpu_model, streaming_cost
from archsim.gpu.params import GpuModel
from mappings._gpu._run import run_kernels
from mappings._gpu.decode import decode_kernels
from workloads.library import get_workload

from ._common import Check, Reproduction, Row

__all__ = ["GRID", "FAST_GRID", "PAPER", "MODEL", "hydragen_point", "reproduce_hydragen"]

#: Published figures: the abstract (``../shared/seeds/000_*.txt``, "Hydragen"). End-to-end
#: throughput, CodeLlama-13b on H100 (model and GPU per issue 13's brief; the abstract names
#: neither).
PAPER = {
    "max_speedup_e2e": 32.0,  # "up to 32x against competitive baselines"
    "hydragen_drop_1k_16k": 0.15,  # "decreases Hydragen throughput by less than 15%"
    "baseline_drop_1k_16k": 0.90,  # "the throughput of baselines drops by over 90%"
}
ARCH = "h100"
#: CodeLlama-13b (Llama-2-13B shape) as recalled, not from a stored config: 40 layers,
#: hidden 5120, 40 heads of 128 (MHA), FFN 13824 (SwiGLU), vocabulary 32016, bf16.
MODEL = {
    "layers": 40,
    "hidden": 5120,
    "H": 40,
    "Hkv": 40,
    "D": 128,
    "ffn": 13824,
    "vocab": 32016,
}
#: Per-sequence suffix (ours: the unique part each sequence has generated so far; the paper's
#: generation length is not in ../shared). The full run reports 32 and 512 beside it.
SUFFIX = 128
GRID = {
    "B": (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024),
    "Sp": (1024, 2048, 4096, 8192, 16384),
}
FAST_GRID = {"B": (1, 8, 64, 256, 1024), "Sp": (1024, 16384)}
SUFFIX_SENSITIVITY = (32, 128, 512)
#: fp32 ops per output element of the combine (two rescales, add, divide) and per row
#: (max, two subtractions, two exponentials, the denominator).
_COMBINE_OPS_PER_ELT = 4.0
_COMBINE_OPS_PER_ROW = 6.0


def _attn(model: GpuModel, name: str, **params: int | float | bool | str) -> list[KernelCost]:
    """Kernels of one library decode-shaped cascade under the ``split_kv`` recipe (FA2)."""
    w = get_workload(name, **params)
    return list(decode_kernels(w, model, "flash2")[0])


def _lean(model: GpuModel, **params: int | float | bool | str) -> list[KernelCost]:
    w = get_workload("decode", **params)
    return list(decode_kernels(w, model, "lean", dataflow="lean")[0])


def combine_cost(model: GpuModel, *, rows: int, dv: int, elt: int = 2) -> KernelCost:
    """The LSE combine: read both outputs (``elt`` bytes) and LSEs (fp32), write the result."""
    return streaming_cost(
        model,
        name="hydragen_lse_combine",
        category="elementwise",
        read_bytes=rows * (2.0 * dv * elt + 2 * 4.0),
        write_bytes=rows * float(dv * elt),
        alu_ops=rows * (dv * _COMBINE_OPS_PER_ELT + _COMBINE_OPS_PER_ROW),
    )


def _rest_of_layer(model: GpuModel, B: int) -> list[KernelCost]:
    """The decode step's GEMMs of one layer at ``M = B`` tokens (bf16)."""
    h, f = MODEL["hidden"], MODEL["ffn"]
    qkv = (MODEL["H"] + 2 * MODEL["Hkv"]) * MODEL["D"]
    out: list[KernelCost] = []
    for n, k in ((qkv, h), (h, MODEL["H"] * MODEL["D"]), (2 * f, h), (h, f)):
        out += gemm_costs(B, n, k, model)
    return out


def hydragen_point(B: int, Sp: int, Ss: int = SUFFIX, arch: str = ARCH) -> Row:
    """One (batch, prefix) point: per-layer attention times, speedups and the end-to-end
    estimate of one decode step."""
    model = gpu_model(arch)
    H, Hkv, D = MODEL["H"], MODEL["Hkv"], MODEL["D"]
    shape = {"H": H, "Hkv": Hkv, "D": D}
    prefix = _attn(model, "shared_prefix", B=B, Sp=Sp, variant="prefix", **shape)
    suffix = _attn(model, "decode", B=B, Skv=Ss, **shape)
    comb = combine_cost(model, rows=B * H, dv=D)
    hyd = run_kernels([*prefix, *suffix, comb], model)
    base = run_kernels(_attn(model, "decode", B=B, Skv=Sp + Ss, **shape), model)
    lean = run_kernels(_lean(model, B=B, Skv=Sp + Ss, **shape), model)
    n_pre, n_suf = len(prefix), len(suffix)
    t_pre = sum(k.time_s for k in hyd.kernels[:n_pre])
    t_suf = sum(k.time_s for k in hyd.kernels[n_pre : n_pre + n_suf])
    t_comb = hyd.kernels[-1].time_s
    rest = run_kernels(_rest_of_layer(model, B), model).time_s
    head = run_kernels(gemm_costs(B, MODEL["vocab"], MODEL["hidden"], model), model).time_s
    L = MODEL["layers"]
    step_h = L * (hyd.time_s + rest) + head
    step_b = L * (base.time_s + rest) + head
    pmeta = prefix[0].meta
    prefix_flops = 4.0 * B * H * Sp * D
    return {
        "B": B,
        "Sp": Sp,
        "Ss": Ss,
        "prefix_kernel": prefix[0].name,
        "prefix_splits": int(pmeta.get("splits", 1)),  # type: ignore[call-overload]  # kernel meta: numbers
        "prefix_rows": int(pmeta.get("gqa_rows", B)),  # type: ignore[call-overload]  # kernel meta: numbers
        "prefix_us": t_pre * 1e6,
        "suffix_us": t_suf * 1e6,
        "combine_us": t_comb * 1e6,
        "hydragen_us": hyd.time_s * 1e6,
        "baseline_us": base.time_s * 1e6,
        "lean_us": lean.time_s * 1e6,
        "speedup": base.time_s / hyd.time_s,
        "speedup_vs_lean": lean.time_s / hyd.time_s,
        "hydragen_dram_mb": (hyd.dram_read_bytes + hyd.dram_write_bytes) / 1e6,
        "baseline_dram_mb": (base.dram_read_bytes + base.dram_write_bytes) / 1e6,
        "prefix_tflops": prefix_flops / t_pre / 1e12,
        "rest_of_layer_us": rest * 1e6,
        "e2e_step_hydragen_ms": step_h * 1e3,
        "e2e_step_baseline_ms": step_b * 1e3,
        "e2e_tok_s_hydragen": B / step_h,
        "e2e_tok_s_baseline": B / step_b,
        "e2e_speedup": step_b / step_h,
    }


def _grid(grid: Mapping[str, Sequence[int]], Ss: int = SUFFIX) -> list[Row]:
    return [hydragen_point(B, S, Ss) for B, S in itertools.product(grid["B"], grid["Sp"])]


def _at(rows: Sequence[Row], B: int, Sp: int) -> Row:
    return next(r for r in rows if r["B"] == B and r["Sp"] == Sp)


def _drop(rows: Sequence[Row], B: int, lo: int, hi: int, key: str) -> float:
    """Throughput drop ``1 - tput(hi) / tput(lo)`` of one method (time column ``key``)."""
    return 1.0 - float(_at(rows, B, lo)[key]) / float(_at(rows, B, hi)[key])


def _monotone(vals: Sequence[float], slack: float = 0.0) -> bool:
    return all(b >= a * (1.0 - slack) for a, b in itertools.pairwise(vals))


def _sensitivity_rows(grid: Mapping[str, Sequence[int]], Bmax: int, lo: int, hi: int) -> list[Row]:
    """Prefix-length sensitivity at the largest batch for other suffix lengths."""
    out: list[Row] = []
    for Ss in SUFFIX_SENSITIVITY:
        rows = [hydragen_point(Bmax, S, Ss) for S in (lo, hi)]
        out.append(
            {
                "Ss": Ss,
                "B": Bmax,
                "attn_speedup_at_hi": float(rows[1]["speedup"]),
                "hydragen_attn_drop": _drop(rows, Bmax, lo, hi, "hydragen_us"),
                "baseline_attn_drop": _drop(rows, Bmax, lo, hi, "baseline_us"),
                "hydragen_e2e_drop": _drop(rows, Bmax, lo, hi, "e2e_step_hydragen_ms"),
                "baseline_e2e_drop": _drop(rows, Bmax, lo, hi, "e2e_step_baseline_ms"),
                "e2e_speedup_at_hi": float(rows[1]["e2e_speedup"]),
            }
        )
    return out


def reproduce_hydragen(*, fast: bool = False) -> Reproduction:
    """Run the Hydragen reproduction (``fast``: five batches, prefixes 1K and 16K)."""
    grid = FAST_GRID if fast else GRID
    rows = _grid(grid)
    Bs, Sps = sorted(grid["B"]), sorted(grid["Sp"])
    bmax, lo, hi = Bs[-1], Sps[0], Sps[-1]
    by_batch = {B: float(_at(rows, B, hi)["speedup"]) for B in Bs}
    by_prefix = {S: {B: float(_at(rows, B, S)["speedup"]) for B in Bs} for S in Sps}
    # while the prefix runs FA2's split-KV kernel (memory-bound, few query tiles) the speedup
    # should grow with batch at every prefix; the whole range is reported too
    split_bs = [B for B in Bs if str(_at(rows, B, hi)["prefix_kernel"]).endswith("splitkv_kernel")]
    grows_b = all(_monotone([by_prefix[S][B] for B in split_bs], 0.01) for S in Sps)
    grows_all = all(_monotone([by_prefix[S][B] for B in Bs], 0.01) for S in Sps)
    grows_p = _monotone([float(_at(rows, bmax, S)["speedup"]) for S in Sps])
    h_drop = _drop(rows, bmax, lo, hi, "hydragen_us")
    b_drop = _drop(rows, bmax, lo, hi, "baseline_us")
    h_e2e = _drop(rows, bmax, lo, hi, "e2e_step_hydragen_ms")
    b_e2e = _drop(rows, bmax, lo, hi, "e2e_step_baseline_ms")
    h_growth = 1.0 / (1.0 - h_drop)  # attention time ratio hi / lo
    b_growth = 1.0 / (1.0 - b_drop)
    max_attn = max(float(r["speedup"]) for r in rows)
    max_e2e = max(float(r["e2e_speedup"]) for r in rows)
    pre_hi = float(_at(rows, bmax, hi)["prefix_us"])
    pre_lo = float(_at(rows, bmax, lo)["prefix_us"])
    k = f"{lo // 1024}K->{hi // 1024}K (B={bmax})"
    checks = (
        Check(
            f"speedup grows with batch, prefix on split-KV (B<={split_bs[-1]}, every prefix)",
            min(by_prefix[S][split_bs[-1]] / by_prefix[S][Bs[0]] for S in Sps),
            1.0,
            grows_b,
            "non-decreasing (1% slack)",
        ),
        Check(
            f"speedup grows with batch over the whole range (B<={bmax})",
            min(by_prefix[S][bmax] / max(by_prefix[S].values()) for S in Sps),
            1.0,
            grows_all,
            "non-decreasing (1% slack)",
            gate=False,
        ),
        Check(
            f"speedup grows with prefix (B={bmax})",
            float(_at(rows, bmax, hi)["speedup"]) / float(_at(rows, bmax, lo)["speedup"]),
            1.0,
            grows_p,
            "non-decreasing",
        ),
        Check(
            f"baseline end-to-end throughput drop {k}",
            b_e2e,
            PAPER["baseline_drop_1k_16k"],
            b_e2e > PAPER["baseline_drop_1k_16k"],
            "> 0.90",
        ),
        Check(
            f"Hydragen attention time growth {k} vs baseline's / 4",
            h_growth,
            (1.0, b_growth / 4),
            h_growth < b_growth / 4,
            "< baseline growth / 4 (ours)",
        ),
        Check(
            f"Hydragen end-to-end throughput drop {k}",
            h_e2e,
            PAPER["hydragen_drop_1k_16k"],
            h_e2e < PAPER["hydragen_drop_1k_16k"],
            "< 0.15",
            gate=False,
        ),
        Check(
            "max end-to-end speedup (attention model + GEMMs)",
            max_e2e,
            PAPER["max_speedup_e2e"],
            0.5 * PAPER["max_speedup_e2e"] <= max_e2e <= 1.5 * PAPER["max_speedup_e2e"],
            "±50% (paper: 'up to')",
            gate=False,
        ),
    )
    summary = {
        "speedup_by_batch": by_batch,
        "speedup_by_batch_prefix": hi,
        "speedup_by_batch_by_prefix": by_prefix,
        "max_attention_speedup": max_attn,
        "max_e2e_speedup": max_e2e,
        "hydragen_attention_drop_1k_16k": h_drop,
        "baseline_attention_drop_1k_16k": b_drop,
        "hydragen_e2e_drop_1k_16k": h_e2e,
        "baseline_e2e_drop_1k_16k": b_e2e,
        "hydragen_attention_growth_1k_16k": h_growth,
        "baseline_attention_growth_1k_16k": b_growth,
        "prefix_time_ratio_16k_1k": pre_hi / pre_lo,
        "suffix": SUFFIX,
        "arch": ARCH,
    }
    notes = (
        "Attention per layer, CodeLlama-13b shape (40 heads x 128, MHA; recalled, not from a "
        f"stored config), bf16, h100 model; fixed suffix of {SUFFIX} tokens per sequence "
        "(ours). speedup_by_batch is at the largest prefix of the grid "
        f"({hi} tokens); speedup_by_batch_by_prefix has every prefix.",
        "Hydragen = prefix attention (shared_prefix/prefix cascade under split_kv: the B query "
        "rows of a head packed into one tile, so at large B FA2's 128-row forward kernel runs "
        "a GEMM-shaped attention and the prefix K/V is read once) + suffix decode (split_kv) "
        "+ one LSE-combine elementwise kernel, launched back to back.",
        "Baseline = decode over prefix+suffix per sequence under split_kv (FA2's split "
        "heuristic; from B*H >= 0.8 x 2 x 132 CTA slots FA2's regular forward kernel with one "
        "row padded to a 128-row tile, about half the HBM rate in this model). The lean column "
        "(stream-K decode, near the HBM roofline) is a stronger baseline: speedup_vs_lean.",
        "The baseline reads each sequence's prefix K/V from HBM: a paged cache whose sequences "
        "share prefix blocks could hit in L2 (50 MB) at short prefixes; not modelled.",
        "End-to-end = 40 x (attention + the layer's QKV/out/gate-up/down GEMMs at M = B) + LM "
        "head, all run by the event engine; norms, RoPE, sampling, the serving framework "
        "(and vLLM's scheduler) are not modelled, so e2e numbers are an estimate of the "
        "kernels' share only. The paper's 32x and its 1K->16K drops are end-to-end.",
        "Hydragen's prefix attention grows with B x Sp in FLOPs (4 B H Sp D per layer): at "
        "large batch and 16K it is compute-bound on FA2's forward kernel, which is why its "
        "time is not flat in prefix length in this model (prefix_tflops column).",
        "Speedup vs batch rises while the prefix runs FA2's split-KV kernel and dips once "
        "B x H x ceil(B / 64) fills 0.8 x 2 x 132 CTA slots (B >= 512 here): FA2's heuristic then "
        "picks its regular forward kernel, 128-row tiles in ceil(B/128) x 40 CTAs, and the "
        "waves' tail lowers the achieved rate (prefix_tflops ~220 vs ~300 at B = 256). Once "
        "the prefix K/V read is amortised, both methods scale linearly in B, so the ratio "
        "saturates rather than growing without bound.",
    )
    tables: dict[str, list[Row]] = {
        "hydragen": rows,
        "by_batch": [
            {
                "B": B,
                **{f"speedup_{S // 1024}k": by_prefix[S][B] for S in Sps},
                f"vs_lean_{hi // 1024}k": float(_at(rows, B, hi)["speedup_vs_lean"]),
                f"e2e_speedup_{hi // 1024}k": float(_at(rows, B, hi)["e2e_speedup"]),
            }
            for B in Bs
        ],
        "prefix_sensitivity": [
            {
                "Sp": S,
                "B": bmax,
                "hydragen_us": float(_at(rows, bmax, S)["hydragen_us"]),
                "baseline_us": float(_at(rows, bmax, S)["baseline_us"]),
                "hydragen_rel_tput": float(_at(rows, bmax, lo)["hydragen_us"])
                / float(_at(rows, bmax, S)["hydragen_us"]),
                "baseline_rel_tput": float(_at(rows, bmax, lo)["baseline_us"])
                / float(_at(rows, bmax, S)["baseline_us"]),
                "hydragen_e2e_rel_tput": float(_at(rows, bmax, lo)["e2e_step_hydragen_ms"])
                / float(_at(rows, bmax, S)["e2e_step_hydragen_ms"]),
                "baseline_e2e_rel_tput": float(_at(rows, bmax, lo)["e2e_step_baseline_ms"])
                / float(_at(rows, bmax, S)["e2e_step_baseline_ms"]),
            }
            for S in Sps
        ],
        "paper": [
            {"claim": "max end-to-end speedup", "paper": "up to 32x", "model": max_e2e},
            {"claim": "max attention speedup (per layer)", "paper": "-", "model": max_attn},
            {"claim": f"Hydragen e2e drop 1K->16K, B={bmax}", "paper": "< 15%", "model": h_e2e},
            {"claim": f"baseline e2e drop 1K->16K, B={bmax}", "paper": "> 90%", "model": b_e2e},
            {"claim": f"Hydragen attn drop 1K->16K, B={bmax}", "paper": "-", "model": h_drop},
            {"claim": f"baseline attn drop 1K->16K, B={bmax}", "paper": "-", "model": b_drop},
        ],
    }
    if not fast:
        tables["suffix_sensitivity"] = _sensitivity_rows(grid, bmax, lo, hi)
    return Reproduction(
        name="hydragen",
        tables=tables,
        summary=summary,
        checks=checks,
        notes=notes,
        plot=lambda fig: _plot(fig, rows, Bs, Sps),
    )


def _plot(fig, rows, Bs, Sps) -> None:  # noqa: ANN001 — matplotlib Figure and row lists
    a0, a1 = fig.subplots(1, 2)
    for S, style in zip(Sps, itertools.cycle(["o-", "s-", "^-", "v-", "d-"]), strict=False):
        pts = [_at(rows, B, S) for B in Bs]
        (line,) = a0.plot(
            Bs, [r["speedup"] for r in pts], style, ms=3, label=f"vs split_kv, {S // 1024}K"
        )
        a0.plot(Bs, [r["e2e_speedup"] for r in pts], style, ms=2, alpha=0.4, c=line.get_color())
    a0.axhline(PAPER["max_speedup_e2e"], color="k", ls="--", lw=0.8, label="paper: up to 32x e2e")
    a0.set_xscale("log", base=2)
    a0.set_yscale("log", base=2)
    a0.set_xlabel("batch (sequences sharing the prefix)")
    a0.set_ylabel("Hydragen speedup (faint: e2e estimate)")
    a0.set_title(f"attention per layer, h100 model, suffix {SUFFIX}")
    a0.legend(fontsize=6)
    bmax = Bs[-1]
    lo = _at(rows, bmax, Sps[0])
    pts = [_at(rows, bmax, S) for S in Sps]
    x = [S / 1024 for S in Sps]
    a1.plot(
        x,
        [float(lo["hydragen_us"]) / float(r["hydragen_us"]) for r in pts],
        "o-",
        label="Hydragen attn",
    )
    a1.plot(
        x,
        [float(lo["baseline_us"]) / float(r["baseline_us"]) for r in pts],
        "s-",
        label="baseline attn",
    )
    a1.plot(
        x,
        [float(lo["e2e_step_hydragen_ms"]) / float(r["e2e_step_hydragen_ms"]) for r in pts],
        "o--",
        label="Hydragen e2e",
    )
    a1.plot(
        x,
        [float(lo["e2e_step_baseline_ms"]) / float(r["e2e_step_baseline_ms"]) for r in pts],
        "s--",
        label="baseline e2e",
    )
    a1.axhline(0.85, color="0.5", lw=0.8, ls=":", label="paper: Hydragen > 0.85")
    a1.axhline(0.10, color="0.7", lw=0.8, ls=":", label="paper: baselines < 0.10")
    a1.set_xscale("log", base=2)
    a1.set_xlabel("shared prefix (K tokens)")
    a1.set_ylabel(f"throughput relative to {Sps[0] // 1024}K prefix")
    a1.set_title(f"prefix-length sensitivity, B={bmax}")
    a1.legend(fontsize=6)
