"""Numbers behind docs/gpu_model.md: why cuDNN beats flash on Hopper, why decode is
bandwidth-bound, what the power cap does to a large GEMM.

    python -m validation.explain [--arch h100]
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence

from archsim.gpu import (
    GpuModel,
    KernelCost,
    OpPrediction,
    attention_flops,
    attention_fwd_costs,
    decode_costs,
    fwd_tiling,
    gemm_costs,
    gpu_model,
)

__all__ = ["attention_paths", "decode_roofline", "power_cap_gemm", "main"]


def _run(costs: list[KernelCost], model: GpuModel, cap_w: float | None = None) -> OpPrediction:
    """The kernels of one call on the event engine, clean L2 (``run_kernels``)."""
    from mappings._gpu._run import run_kernels

    return run_kernels(costs, model, cap_w=cap_w)


def attention_paths(
    model: GpuModel, *, B: int = 4, H: int = 32, S: int = 4096, D: int = 128, causal: bool = False
) -> list[dict[str, object]]:
    """Per-family tiling, per-trip cycle budget and predicted TFLOP/s for one prefill shape."""
    hw, out = model.hw, []
    for fam, label, eff in (
        ("flash2", "SDPA flash (FA2, mma.sync)", model.cal.eff_fa2),
        ("flash3", "SDPA cuDNN (Hopper, wgmma+TMA)", model.cal.eff_fa3),
    ):
        t = fwd_tiling(fam, model, D, causal, 2)
        t_mma = 4.0 * t.block_m * t.block_n * D / (hw.tc_rate(t.path, "bf16") * eff)
        t_soft = (
            t.block_m * t.block_n / hw.sfu_ops_per_clk
            + (5 * t.block_m * t.block_n + t.block_m * D) / hw.fp32_ops_per_clk
        )
        ov = t.overlap
        per_trip = max(t_mma, t_soft) + (1 - ov) * min(t_mma, t_soft)
        op = _run(
            attention_fwd_costs(
                model, B=B, Hq=H, Hkv=H, Sq=S, Skv=S, D=D, causal=causal, family=fam
            ),
            model,
        )
        flops = attention_flops(B, H, S, S, D, causal)
        out.append(
            {
                "kernel": label,
                "tile": f"{t.block_m}x{t.block_n}",
                "ctas_per_sm": t.ctas_per_sm,
                "path": t.path,
                "path_flop_per_clk": hw.tc_rate(t.path, "bf16"),
                "eff": eff,
                "t_mma_cycles": t_mma,
                "t_softmax_cycles": t_soft,
                "overlap": ov,
                "cycles_per_trip": per_trip,
                "useful_flop_per_cycle": 4.0 * t.block_m * t.block_n * D / per_trip,
                "ms": op.time_s * 1e3,
                "tflops": flops / op.time_s / 1e12,
                "clock_mhz": op.clock_hz / 1e6,
            }
        )
    return out


def decode_roofline(
    model: GpuModel, *, B: int = 8, Hq: int = 32, Hkv: int = 8, S: int = 32768, D: int = 128
) -> dict[str, float]:
    """Arithmetic intensity of decode vs the ridge point, and the predicted bandwidth."""
    hw = model.hw
    kv = B * Hkv * S * D * 2 * 2.0
    flops = 4.0 * B * Hq * S * D
    op = _run(decode_costs(model, B=B, Hq=Hq, Hkv=Hkv, Skv=S, D=D), model)
    peak = hw.tc_rate("wgmma", "bf16") * hw.sms * hw.boost_clock_hz
    return {
        "flop_per_byte": flops / kv,
        "ridge_flop_per_byte": peak / hw.hbm_bytes_per_s,
        "kv_bytes": kv,
        "ms": op.time_s * 1e3,
        "achieved_tb_s": kv / op.time_s / 1e12,
        "hbm_tb_s": hw.hbm_bytes_per_s / 1e12,
        # the split-KV lowering's meta["splits"] is an int
        "splits": float(op.kernels[0].meta.get("splits", 1)),  # type: ignore[arg-type]
        "tflops": flops / op.time_s / 1e12,
    }


def power_cap_gemm(model: GpuModel, n: int = 8192) -> dict[str, dict[str, float]]:
    """An n^3 bf16 GEMM with the 700 W cap and without it."""
    costs = gemm_costs(n, n, n, model)
    out = {}
    for label, cap in (("capped", None), ("uncapped", 1e6)):
        op = _run(costs, model, cap_w=cap)
        out[label] = {
            "clock_mhz": op.clock_hz / 1e6,
            "ms": op.time_s * 1e3,
            "power_w": op.avg_power_w,
            "energy_j": op.energy_j,
            "tflops": 2.0 * n**3 / op.time_s / 1e12,
        }
    return out


def main(argv: Sequence[str] | None = None) -> int:
    """Print the three explanations' numbers."""
    ap = argparse.ArgumentParser(prog="python -m validation.explain")
    ap.add_argument("--arch", default="h100")
    args = ap.parse_args(argv)
    model = gpu_model(args.arch)
    print("== prefill B4 H32 S4096 D128 non-causal: flash vs cuDNN ==")  # noqa: T201
    for row in attention_paths(model):
        print(  # noqa: T201
            "  "
            + ", ".join(
                f"{k}={v:.3g}" if isinstance(v, float) else f"{k}={v}" for k, v in row.items()
            )
        )
    print("== decode B8 Hq32 Hkv8 S32768 D128 (FA2 split-KV) ==")  # noqa: T201
    print("  " + ", ".join(f"{k}={v:.4g}" for k, v in decode_roofline(model).items()))  # noqa: T201
    print("== 8192^3 bf16 GEMM, power cap ==")  # noqa: T201
    for k, v in power_cap_gemm(model).items():
        print(f"  {k}: " + ", ".join(f"{a}={b:.4g}" for a, b in v.items()))  # noqa: T201
    return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
