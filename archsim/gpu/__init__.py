"""GPU SM/HBM performance model: occupancy, CTA waves, tensor-core paths, L2 reuse, HBM,
launch overhead, and the power cap that sets the clock.

Kernel models reduce a library call (cuBLAS GEMM, FlashAttention-2/3, cuDNN, cutlass
memory-efficient, FlexAttention, split-KV decode, softmax) to :class:`KernelCost` values.
Their time comes from the tile program they lower to, run by the event engine
(``mappings._gpu._run.run_kernels``: what ``archsim validate``, ``compare``, ``model`` and the
reproductions report); :func:`evaluate_op` is the power-cap governor that picks each kernel's
SM clock for that program. See ``docs/gpu_model.md``.
"""

from .attention import (
    FAMILIES,
    GATHER_CYCLES_PER_ROW,
    attention_bwd_costs,
    attention_flops,
    attention_fwd_costs,
    block_sparse_costs,
    causal_trips,
    fg_sparse_costs,
    fwd_tiling,
)
from .cost import KernelCost, KernelTiming, OpPrediction, evaluate_kernel, evaluate_op
from .decode import decode_costs, fa2_decode_plan, lean_decode_costs
from .elementwise import softmax_cost, streaming_cost, unfused_attention_costs
from .gemm import GemmConfig, choose_gemm_config, gemm_costs, gemm_dram_bytes
from .heuristics import (
    AttnTiling,
    fa2_bwd_tiling,
    fa2_fwd_tiling,
    fa2_splitkv_tiling,
    fa3_fwd_tiling,
    flex_fwd_tiling,
    memeff_fwd_tiling,
    num_splits_heuristic,
)
from .occupancy import ctas_per_sm
from .params import (
    GpuCalibration,
    GpuHardware,
    GpuModel,
    calibration_path,
    dtype_bytes,
    gpu_model,
    load_calibration,
)
from .power import PowerPoint, board_power_w, solve_clock, voltage_frac
from .waves import Schedule, list_schedule, waves

__all__ = [
    "FAMILIES",
    "GATHER_CYCLES_PER_ROW",
    "AttnTiling",
    "GemmConfig",
    "GpuCalibration",
    "GpuHardware",
    "GpuModel",
    "KernelCost",
    "KernelTiming",
    "OpPrediction",
    "PowerPoint",
    "Schedule",
    "attention_bwd_costs",
    "attention_flops",
    "attention_fwd_costs",
    "block_sparse_costs",
    "board_power_w",
    "calibration_path",
    "causal_trips",
    "choose_gemm_config",
    "ctas_per_sm",
    "decode_costs",
    "dtype_bytes",
    "fg_sparse_costs",
    "lean_decode_costs",
    "evaluate_kernel",
    "evaluate_op",
    "fa2_bwd_tiling",
    "fa2_decode_plan",
    "fa2_fwd_tiling",
    "fa2_splitkv_tiling",
    "fa3_fwd_tiling",
    "flex_fwd_tiling",
    "fwd_tiling",
    "gemm_costs",
    "gemm_dram_bytes",
    "gpu_model",
    "list_schedule",
    "load_calibration",
    "memeff_fwd_tiling",
    "num_splits_heuristic",
    "softmax_cost",
    "solve_clock",
    "streaming_cost",
    "unfused_attention_costs",
    "voltage_frac",
    "waves",
]
