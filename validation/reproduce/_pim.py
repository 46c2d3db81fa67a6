"""DRAM-PIM decode (AttAcc, ASPLOS'24; PIM-GPT, arXiv 2310.09385) vs the ``h100`` model.

Three tables:

* ``bandwidth``: internal/external bandwidth per PIM placement (bank, bank group, buffer die;
  with and without the power limit), derived from the ``hbm3_pim`` preset's DRAM timing by
  :func:`mappings._pim.bandwidth_multipliers`; beside AttAcc's ``BW_SCALE`` and the ratios of
  its Ramulator cycle cache.
* ``ramulator``: the PIM decode model's cycles against AttAcc's committed Ramulator cache
  (``data/attacc_ramulator_cycles.csv``), error per placement.
* ``attention`` / ``models``: decode attention time on PIM vs H100 across batch and context,
  and whole-model decode speedup and energy efficiency vs the GPU (AttAcc and PIM-GPT setups).
"""

from __future__ import annotations

import csv
import math
import statistics
from pathlib import Path

from archsim import Architecture, load_arch
from mappings import simulate_workload
from mappings._pim import bandwidth_multipliers, decode_attention_timing, pim_energy_j

from ._common import Check, Reproduction, Row, near_range, within
from ._pimgpt import PIMGPT_GATE_GPU, PIMGPT_GPUS, PIMGPT_L, PIMGPT_MODELS, pimgpt_rows
from ._pimgpt_measured import measured_baseline_rows, measured_graph_rows

__all__ = ["reproduce_pim", "ramulator_errors", "ATTACC_BW_SCALE", "PIMGPT_MODELS"]

_DATA = Path(__file__).with_name("data") / "attacc_ramulator_cycles.csv"
_PLACE = {"BA": "bank", "BG": "bank_group", "BUFFER": "buffer_die"}
#: AttAcc src/config.py BW_SCALE (internal / external bandwidth): (no power limit, power limit).
ATTACC_BW_SCALE = {"bank": (16.0, 9.0), "bank_group": (8.0, 3.0), "buffer_die": (1.0, 1.0)}
#: GPU and PIM devices per AttAcc system: 8 GPUs, each with 5 HBM3-PIM stacks (AttAcc
#: main.py / config.py: num_attacc 8, num_hbm_per_attacc 5); an H100 also has 5 HBM3 stacks.
STACKS_PER_GPU, GPUS = 5, 8
#: AttAcc's model and workload (config.py; main.py: GPT-175B, FP16, Lin 2048, Lout 128).
GPT175B = {"layers": 96, "d": 12288, "heads": 96, "dhead": 128, "ffn": 4 * 12288}
ATTACC_L = 2048 + 64  # mean context while generating 128 tokens after a 2048-token prompt
#: Memory of the AttAcc system (both systems have the same capacity): 8 GPUs x 80 GB plus
#: 8 x 5 HBM3-PIM stacks x 16 GiB (attacc_system_params.json), bytes.
SYSTEM_BYTES = GPUS * 80e9 + GPUS * STACKS_PER_GPU * 16 * 2**30


def attacc_max_batch() -> int:
    """Largest batch whose FP16 weights + K/V cache (Lin + Lout tokens) fit :data:`SYSTEM_BYTES`."""
    m = GPT175B
    weights = 2.0 * m["layers"] * (4 * m["d"] ** 2 + 2 * m["d"] * m["ffn"])
    kv_per_request = 2.0 * 2 * m["layers"] * m["d"] * (2048 + 128)
    return int((SYSTEM_BYTES - weights) // kv_per_request)


#: PIM-GPT evaluates 8 GPT models <= 1.4B (abstract): GPT-2 small..XL and GPT-3 Small..XL, the
#: ``models`` presets of :data:`validation.reproduce._pimgpt.PIMGPT_MODELS`.
#: Published ranges (reference/papers/pim/pim_headline_results.csv).
PIMGPT_SPEEDUP, PIMGPT_EFF_V1, PIMGPT_EFF_V2 = (41.0, 137.0), (339.0, 1085.0), (123.0, 383.0)
ATTACC_SPEEDUP_MAX, ATTACC_EFF_MAX = 2.81, 2.67


def ramulator_errors(arch: Architecture) -> list[Row]:
    """Model vs AttAcc Ramulator cycles for every cached row (one stack, one layer)."""
    rows: list[Row] = []
    with _DATA.open() as fh:
        for r in csv.DictReader(fh):
            pred = decode_attention_timing(
                arch,
                L=int(r["L"]),
                heads=int(r["nhead"]),
                dhead=int(r["dhead"]),
                dbyte=int(r["dbyte"]),
                placement=_PLACE[r["pim_type"]],
                power_limited=r["power_constraint"] == "True",
            )["cycles"]
            cyc = float(r["cycle"])
            rows.append(
                {
                    "L": int(r["L"]),
                    "nhead": int(r["nhead"]),
                    "dhead": int(r["dhead"]),
                    "dbyte": int(r["dbyte"]),
                    "placement": _PLACE[r["pim_type"]],
                    "power_limited": r["power_constraint"] == "True",
                    "ramulator_cycles": cyc,
                    "model_cycles": pred,
                    "error": pred / cyc - 1.0,
                }
            )
    return rows


def _error_summary(rows: list[Row]) -> list[Row]:
    groups: dict[tuple, list[float]] = {}
    for r in rows:
        key = (r["placement"], r["power_limited"], r["dhead"], r["dbyte"])
        groups.setdefault(key, []).append(float(r["error"]))
    return [
        {
            "placement": k[0],
            "power_limited": k[1],
            "dhead": k[2],
            "dbyte": k[3],
            "rows": len(v),
            "mean_error": statistics.fmean(v),
            "mean_abs_error": statistics.fmean(abs(e) for e in v),
            "max_abs_error": max(abs(e) for e in v),
        }
        for k, v in sorted(groups.items())
    ]


def _gpu(workload: str, params: dict[str, int], dataflow: str) -> tuple[float, float]:
    """(seconds, joules) of one GPU kernel on ``h100``, run by the event engine (energy: the
    board power model at that time)."""
    rep = simulate_workload("h100", workload, params=params, dataflow=dataflow)
    return rep.result.seconds, rep.result.energy_j


def _pim_attention(
    arch: Architecture, *, heads: int, L: int, dhead: int, stacks: int
) -> tuple[float, float]:
    """(seconds, joules) of decode attention for ``heads`` (heads x requests) on ``stacks``."""
    per_stack = math.ceil(heads / stacks)
    r = decode_attention_timing(arch, L=L, heads=per_stack, dhead=dhead, dbyte=2)
    e = stacks * pim_energy_j(
        arch,
        pim_bytes=r["kv_bytes"],
        macs=r["macs"],
        io_bytes=2.0 * per_stack * L * 2,
        seconds=r["seconds"],
    )
    return r["seconds"], e


def _attention_table(arch: Architecture, fast: bool) -> list[Row]:
    """GPT-175B-shaped attention (96 x 128) of one layer on one GPU's share (12 heads)."""
    rows: list[Row] = []
    heads = GPT175B["heads"] // GPUS
    for B in (1, 64) if fast else (1, 16, 64, 256):
        for L in (2048,) if fast else (1024, 2048, 4096, 16384):
            g_s, g_j = _gpu("decode", {"B": B, "H": heads, "Skv": L, "D": 128}, "split_kv")
            p_s, p_j = _pim_attention(arch, heads=B * heads, L=L, dhead=128, stacks=STACKS_PER_GPU)
            rows.append(
                {
                    "batch": B,
                    "context": L,
                    "heads": heads,
                    "h100_us": g_s * 1e6,
                    "pim_us": p_s * 1e6,
                    "speedup": g_s / p_s,
                    "h100_mj": g_j * 1e3,
                    "pim_mj": p_j * 1e3,
                    "energy_eff": g_j / p_j,
                }
            )
    return rows


def _fc_gpu(B: int, d: int, ffn: int, tp: int) -> tuple[float, float]:
    """One layer's FC GEMMs (QKV, O, FFN1, FFN2) for ``B`` tokens on one of ``tp`` GPUs."""
    shapes = ((3 * d // tp, d), (d, d // tp), (ffn // tp, d), (d, ffn // tp))
    out = [_gpu("gemm", {"M": B, "N": n, "K": k}, "gpu_gemm") for n, k in shapes]
    return sum(s for s, _ in out), sum(j for _, j in out)


def _elementwise_gpu(gpu: Architecture, B: int, d: int, ffn: int) -> tuple[float, float]:
    """Layer norms x2, GELU, residual adds x2: launch overhead + bytes at DRAM bandwidth."""
    lvl = gpu.dram
    bw = lvl.read_bw_bytes_per_cycle * gpu.clock.core_hz
    nbytes = 2.0 * B * (4 * 2 * d + 2 * ffn)
    s = 5 * gpu.gpu.launch_overhead_s + nbytes / bw
    return s, nbytes * lvl.read_energy_pj_per_byte * 1e-12 + gpu.idle_power_w * s


def _attacc_rows(pim: Architecture, gpu: Architecture, fast: bool) -> list[Row]:
    """GPT-175B decode per token on 8 GPUs (tensor parallel): all on GPU vs attention on
    AttAcc (5 HBM3-PIM stacks per GPU), FC and the rest on the GPU."""
    m, rows = GPT175B, []
    bmax = attacc_max_batch()
    for B in (16, bmax) if fast else (1, 16, 64, bmax, 2 * bmax):
        fc_s, fc_j = _fc_gpu(B, m["d"], m["ffn"], GPUS)
        ew_s, ew_j = _elementwise_gpu(gpu, B, m["d"], m["ffn"])
        at_s, at_j = _gpu(
            "decode", {"B": B, "H": m["heads"] // GPUS, "Skv": ATTACC_L, "D": 128}, "split_kv"
        )
        pa_s, pa_j = _pim_attention(
            pim, heads=B * m["heads"] // GPUS, L=ATTACC_L, dhead=128, stacks=STACKS_PER_GPU
        )
        gpu_s = fc_s + ew_s + at_s
        het_s = fc_s + ew_s + pa_s
        gpu_j = fc_j + ew_j + at_j
        het_j = fc_j + ew_j + pa_j + gpu.idle_power_w * pa_s  # the GPU idles while PIM runs
        rows.append(
            {
                "setup": "AttAcc GPT-175B",
                "model": "gpt3-175b",
                "batch": B,
                "fits_memory": B <= bmax,
                "context": ATTACC_L,
                "gpu_ms_per_token": gpu_s * 1e3 * m["layers"],
                "pim_ms_per_token": het_s * 1e3 * m["layers"],
                "attention_share_gpu": at_s / gpu_s,
                "speedup": gpu_s / het_s,
                "energy_eff": gpu_j / het_j,
            }
        )
    return rows


def reproduce_pim(*, fast: bool = False) -> Reproduction:
    """Run the PIM reproduction (``fast``: fewer batch/context/model points)."""
    hbm = load_arch("hbm3_pim")
    gpu = load_arch("h100")
    bw = bandwidth_multipliers(hbm)
    for r in bw:
        r["attacc_bw_scale"] = ATTACC_BW_SCALE[str(r["placement"])][int(bool(r["power_limited"]))]
    ram = ramulator_errors(hbm)
    err = _error_summary(ram)
    # Cache ratios vs the buffer-die placement (same L, nhead): what BW_SCALE claims.
    buf = {
        (r["L"], r["nhead"], r["dhead"], r["dbyte"], r["power_limited"]): float(
            r["ramulator_cycles"]
        )
        for r in ram
        if r["placement"] == "buffer_die"
    }
    for r in bw:
        ratios = [
            buf[k] / float(x["ramulator_cycles"])
            for x in ram
            if x["placement"] == r["placement"]
            and x["power_limited"] == r["power_limited"]
            and x["dbyte"] == 2
            and (k := (x["L"], x["nhead"], x["dhead"], x["dbyte"], x["power_limited"])) in buf
        ]
        r["ramulator_ratio_vs_buffer"] = statistics.fmean(ratios) if ratios else float("nan")
    pb = next(r for r in bw if r["placement"] == "bank" and not r["power_limited"])
    pbl = next(r for r in bw if r["placement"] == "bank" and r["power_limited"])
    attn = _attention_table(hbm, fast)
    models = _attacc_rows(hbm, gpu, fast) + pimgpt_rows(fast)
    fp16_mae = statistics.fmean(abs(float(r["error"])) for r in ram if r["dbyte"] == 2)
    att = [r for r in models if str(r["setup"]).startswith("AttAcc")]
    pg = [r for r in models if str(r["setup"]).startswith("PIM-GPT")]
    fit = [r for r in att if r["fits_memory"]]
    att_sp = max(float(r["speedup"]) for r in fit)
    att_ef = max(float(r["energy_eff"]) for r in fit)
    pg_sp = [float(r["speedup"]) for r in pg]
    pg_ef = [float(r["energy_eff"]) for r in pg]
    pg_sp_a100 = [float(r["speedup_a100"]) for r in pg]
    pg_sp_h200 = [float(r["speedup_h200"]) for r in pg]
    measured = measured_baseline_rows(pg)
    graph_rows = measured_graph_rows(pg, gate_gpu=PIMGPT_GATE_GPU)
    graph_ms = {r["model"]: float(r["gpu_ms_per_token"]) for r in pg}
    for r in measured:
        r["model_graph_h100_ms_per_token"] = graph_ms[r["model"]]
        r["eager_over_model_graph"] = float(r["measured_gpu_ms_per_token"]) / graph_ms[r["model"]]
    ms_sp = [float(r["speedup"]) for r in measured]
    ms_ef = [float(r["energy_eff"]) for r in measured]
    gr_sp = [float(r["speedup"]) for r in graph_rows]
    gr_err = [float(r["model_over_measured"]) - 1.0 for r in graph_rows]
    gr_gpu = str(graph_rows[0]["gpu"]) if graph_rows else ""
    graph_checks = (
        (
            Check(
                f"PIM-GPT speedup vs measured CUDA-graph {gr_gpu} step (mean of models)",
                statistics.fmean(gr_sp),
                PIMGPT_SPEEDUP,
                near_range(statistics.fmean(gr_sp), *PIMGPT_SPEEDUP, 0.25),
                "inside ±25% (info: measured kernel-only baseline)",
                gate=False,
            ),
            Check(
                f"{gr_gpu} model of the graph vs measured CUDA-graph step: mean abs error",
                statistics.fmean(abs(e) for e in gr_err),
                0.0,
                statistics.fmean(abs(e) for e in gr_err) <= 0.25,
                "<= 25% (info: GPU model check)",
                gate=False,
            ),
        )
        if graph_rows
        else ()
    )
    measured_checks = (
        (
            Check(
                "PIM-GPT speedup vs measured eager-PyTorch H100 (framework overhead incl.; mean)",
                statistics.fmean(ms_sp),
                PIMGPT_SPEEDUP,
                near_range(statistics.fmean(ms_sp), *PIMGPT_SPEEDUP, 0.25),
                "inside ±25% (info: framework-overhead comparison)",
                gate=False,
            ),
            Check(
                "PIM-GPT energy eff. vs measured eager H100 (mean, v2 range)",
                statistics.fmean(ms_ef),
                PIMGPT_EFF_V2,
                near_range(statistics.fmean(ms_ef), *PIMGPT_EFF_V2, 0.25),
                "inside ±25% (info: framework-overhead comparison)",
                gate=False,
            ),
        )
        if measured
        else ()
    )
    checks = (
        Check(
            "per-bank multiplier (no power limit, peak)",
            float(pb["peak"]),
            16.0,
            within(float(pb["peak"]), 16.0, 0.01),
            "±1%",
        ),
        Check(
            "per-bank multiplier (power limit, sustained)",
            float(pbl["sustained"]),
            9.0,
            within(float(pbl["sustained"]), 9.0, 0.05),
            "±5%",
        ),
        Check(
            "Ramulator cycles, FP16 rows: mean abs error", fp16_mae, 0.0, fp16_mae <= 0.10, "<= 10%"
        ),
        Check(
            "AttAcc max speedup (GPT-175B, batch that fits)",
            att_sp,
            ATTACC_SPEEDUP_MAX,
            within(att_sp, ATTACC_SPEEDUP_MAX, 0.25),
            "±25%",
        ),
        Check(
            "AttAcc max energy efficiency",
            att_ef,
            ATTACC_EFF_MAX,
            within(att_ef, ATTACC_EFF_MAX, 0.25),
            "±25%",
            gate=False,
        ),
        Check(
            "PIM-GPT speedup vs h100 model, same decode graph (mean of models)",
            statistics.fmean(pg_sp),
            PIMGPT_SPEEDUP,
            near_range(statistics.fmean(pg_sp), *PIMGPT_SPEEDUP, 0.25),
            "inside ±25%",
        ),
        Check(
            "PIM-GPT speedup vs a100 model, same decode graph (mean of models)",
            statistics.fmean(pg_sp_a100),
            PIMGPT_SPEEDUP,
            near_range(statistics.fmean(pg_sp_a100), *PIMGPT_SPEEDUP, 0.25),
            "inside ±25%",
            gate=False,
        ),
        Check(
            "PIM-GPT speedup vs h200 model, same decode graph (mean of models)",
            statistics.fmean(pg_sp_h200),
            PIMGPT_SPEEDUP,
            near_range(statistics.fmean(pg_sp_h200), *PIMGPT_SPEEDUP, 0.25),
            "inside ±25%",
            gate=False,
        ),
        Check(
            "PIM-GPT energy eff. vs h100 model (mean, v2 range)",
            statistics.fmean(pg_ef),
            PIMGPT_EFF_V2,
            near_range(statistics.fmean(pg_ef), *PIMGPT_EFF_V2, 0.25),
            "inside ±25%",
            gate=False,
        ),
        *graph_checks,
        *measured_checks,
    )
    summary = {
        "per_bank_multiplier": float(pb["peak"]),
        "per_bank_multiplier_power_limited": float(pbl["sustained"]),
        "per_bank_multiplier_power_limited_peak": float(pbl["peak"]),
        "ramulator_fp16_mean_abs_error": fp16_mae,
        "ramulator_L2048_nhead130": {
            f"{r['placement']}{'-PC' if r['power_limited'] else '-NPC'}": [
                r["ramulator_cycles"],
                r["model_cycles"],
            ]
            for r in ram
            if r["L"] == 2048 and r["nhead"] == 130 and r["dbyte"] == 2
        },
        "attacc_speedup_max": att_sp,
        "attacc_energy_eff_max": att_ef,
        "pimgpt_speedup_min": min(pg_sp),
        "pimgpt_speedup_max": max(pg_sp),
        "pimgpt_speedup_mean": statistics.fmean(pg_sp),
        "pimgpt_speedup_a100_min": min(pg_sp_a100),
        "pimgpt_speedup_a100_max": max(pg_sp_a100),
        "pimgpt_speedup_a100_mean": statistics.fmean(pg_sp_a100),
        "pimgpt_speedup_h200_min": min(pg_sp_h200),
        "pimgpt_speedup_h200_max": max(pg_sp_h200),
        "pimgpt_speedup_h200_mean": statistics.fmean(pg_sp_h200),
        "pimgpt_gpu_kernels_per_token": {str(r["model"]): r["gpu_kernels"] for r in pg},
        "pimgpt_pim_host_share_mean": statistics.fmean(float(r["pim_host_share"]) for r in pg),
        "pimgpt_energy_eff_min": min(pg_ef),
        "pimgpt_energy_eff_max": max(pg_ef),
        "pimgpt_speedup_no_launch_min": min(float(r["speedup_no_launch"]) for r in pg),
        "pimgpt_speedup_no_launch_max": max(float(r["speedup_no_launch"]) for r in pg),
        "pimgpt_gpu_launch_share_mean": statistics.fmean(float(r["gpu_launch_share"]) for r in pg),
        **(
            {
                "pimgpt_measured_graph_gpu": gr_gpu,
                "pimgpt_speedup_vs_graph_min": min(gr_sp),
                "pimgpt_speedup_vs_graph_max": max(gr_sp),
                "pimgpt_speedup_vs_graph_mean": statistics.fmean(gr_sp),
                "pimgpt_model_over_measured_graph_mean": statistics.fmean(
                    float(r["model_over_measured"]) for r in graph_rows
                ),
            }
            if graph_rows
            else {}
        ),
        **(
            {
                "pimgpt_speedup_vs_eager_min": min(ms_sp),
                "pimgpt_speedup_vs_eager_max": max(ms_sp),
                "pimgpt_speedup_vs_eager_mean": statistics.fmean(ms_sp),
                "pimgpt_energy_eff_vs_eager_min": min(ms_ef),
                "pimgpt_energy_eff_vs_eager_max": max(ms_ef),
                "pimgpt_eager_over_model_graph_mean": statistics.fmean(
                    float(r["eager_over_model_graph"]) for r in measured
                ),
            }
            if measured
            else {}
        ),
    }
    notes = (
        "Multipliers: internal (all units of a pseudo-channel, one 32-B column per MAC command "
        "gap; row switches and refresh from the command-level archsim.dram streams) over "
        "external (one 32-B column per tCCD_S per pseudo-channel); hbm3_pim = AttAcc HBM3 5.2 "
        "Gbps.",
        "Ramulator check: AttAcc's cache holds one layer of attention per HBM3-PIM stack; the "
        "model adds refresh, whole heads per channel and the score round trip to the buffer "
        "die.",
        "AttAcc rows: GPT-175B FP16, Lin 2048 + Lout 128 (mean context 2112), 8 GPUs "
        f"tensor-parallel; batch up to {attacc_max_batch()} = what fits the same 1.28 TB "
        "(weights + K/V), twice that shown for reference; baseline = 8 x h100 model (AttAcc "
        "used A100 with HBM3, same 3.35 TB/s); GPU+AttAcc = FC on the GPU, attention on 5 "
        "HBM3-PIM stacks per GPU, GPU idle power while PIM runs.",
        f"PIM-GPT rows: batch 1, context {PIMGPT_L}, one models graph object per model "
        "(archsim model gpt2-small ... gpt3-xl --phase decode: GPT-2 block, pre-LayerNorm, GELU "
        "MLP, learned positions, biases read in the GEMM epilogues, LM head over 50257 tokens) "
        "simulated unchanged on both sides. PIM side (aim_pim, 16 GDDR6 channels): GEMVs on "
        "pim_gemv, attention on pim_decode, norms / GELU / residual adds / K/V write / "
        "embedding gathers on the host-side controller (PIM-GPT's ASIC: compulsory bytes over "
        f"the module interface). GPU side ({', '.join(PIMGPT_GPUS)}; gate {PIMGPT_GATE_GPU}): "
        "each op a GPU-model kernel (cuBLAS-style GEMMs with split-K where it splits, "
        "flash-decoding split-KV + combine, element-wise kernels) run back to back: the first "
        "kernel pays the calibrated launch, each later one the calibrated inter-kernel gap -- "
        "what a CUDA-graph replay runs, no Python or framework time.",
        "PIM-GPT gate: the speedup against the h100 model of the same graph, because the "
        "paper's claim is a hardware one (its PIM system vs a GPU running the same token "
        "generation); PIM-GPT's GPU, batch and framework could not be retrieved, so the GPU "
        "baseline is ours and stated. It misses the published 41-137x (an honest miss, see "
        "docs/reproductions.md): a batch-1 decode step on the GPU model costs 0.9-4.4 ms, 31-49% "
        "of it host launch plus inter-kernel gaps (the measured H100 CUDA-graph replay: "
        "0.59-3.3 ms) and the rest kernels that mostly stream weights at HBM bandwidth, while the "
        "PIM module streams the same weights at 16x its 512 GB/s interface.",
        "AttAcc energy efficiency and PIM-GPT energy efficiency are reported, not gated: the "
        "GPU side uses the h100 power model (static + dynamic at the solved clock, calibrated "
        "on large kernels, so tiny batch-1 kernels are charged near-full active power) while "
        "the PIM side charges per-byte/per-op energies only.",
        (
            "Measured kernel-only baseline: the same decode step captured in a CUDA graph on "
            f"the lent {gr_gpu.upper()} (validation/data/h100_gpt_decode_graph.jsonl, "
            "validation/harness/gpt_decode.py --graph): model_over_measured is the GPU model "
            "of the graph over the measured replay; eager_over_graph the framework's share."
            if graph_rows
            else "No CUDA-graph measurement of the decode step is committed yet "
            "(validation/data/h100_gpt_decode_graph.jsonl absent: validation/harness/gpt_decode.py "
            "--graph writes it on a GPU machine); the model-vs-measured-graph rows are skipped."
        ),
        "Framework-overhead comparison (reported, never gated): the same PIM rows against "
        "Hugging Face GPT-2-style models run in PyTorch eager (fp16, batch 1, ~1k-token "
        "cache) on the lent H100, time and NVML board energy per token "
        "(validation/data/h100_gpt_decode.jsonl, measured 2026-11-24); eager batch-1 decode "
        "is launch- and Python-bound (eager_over_model_graph: measured eager time over the "
        "h100 model of the same graph), so its ratio measures the framework more than the GPU.",
        "Weak spot: the AttAcc cache's dhead=160 INT8 per-bank rows are ~38% under-predicted "
        "(AttAcc apparently pads a 160-B vector to 256 B per bank; not modelled).",
    )
    presets = [
        {"preset": name, **{k: v for k, v in r.items() if k != "units_per_pc"}}
        for name in ("hbm3_pim", "hbm_pim", "aim_pim")
        for r in bandwidth_multipliers(load_arch(name))
        if r["placement"] == "bank"
    ]
    tables = {
        "bandwidth": bw,
        "bandwidth_presets": presets,
        "ramulator_error": err,
        "attention": attn,
        "models": models,
        "pimgpt_measured_graph": graph_rows,
        "pimgpt_measured_gpu": measured,
    }
    return Reproduction(
        name="pim",
        tables=tables,
        summary=summary,
        checks=checks,
        notes=notes,
        plot=lambda fig: _plot(fig, bw, attn, models),
    )


def _plot(fig, bw, attn, models) -> None:  # noqa: ANN001 — matplotlib Figure and row lists
    a0, a1, a2 = fig.subplots(1, 3)
    labels = [f"{r['placement']}\n{'PL' if r['power_limited'] else 'NPC'}" for r in bw]
    x = range(len(bw))
    a0.bar([i - 0.2 for i in x], [r["sustained"] for r in bw], 0.4, label="model (sustained)")
    a0.bar([i + 0.2 for i in x], [r["attacc_bw_scale"] for r in bw], 0.4, label="AttAcc BW_SCALE")
    a0.set_xticks(list(x), labels, fontsize=7)
    a0.set_title("internal / external bandwidth")
    a0.legend(fontsize=7)
    for B in sorted({r["batch"] for r in attn}):
        pts = [r for r in attn if r["batch"] == B]
        a1.plot([r["context"] for r in pts], [r["speedup"] for r in pts], "o-", label=f"batch {B}")
    a1.set_xscale("log", base=2)
    a1.set_title("decode attention: H100 time / PIM time")
    a1.set_xlabel("context (tokens)")
    a1.legend(fontsize=7)
    a2.bar(range(len(models)), [r["speedup"] for r in models])
    a2.set_yscale("log")
    a2.set_xticks(
        range(len(models)),
        [f"{r['model']}\nB{r['batch']}" for r in models],
        fontsize=6,
        rotation=60,
    )
    a2.axhspan(*PIMGPT_SPEEDUP, alpha=0.15, color="C2", label="PIM-GPT 41-137x")
    a2.axhline(ATTACC_SPEEDUP_MAX, color="C3", ls="--", label="AttAcc up to 2.81x")
    a2.set_title("decode speedup vs GPU")
    a2.legend(fontsize=7)
