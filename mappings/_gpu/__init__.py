"""GPU dataflows (registered on import): ``flash2 flash3 mem_efficient split_kv lean
block_sparse fg_sparse gpu_gemm gpu_unfused``. Each builds kernels with the analytic GPU
model of :mod:`archsim.gpu` and lowers them to a tile program with SMs as slots."""

from ._lower import costs_to_program, time_base_hz

__all__: list[str] = ["costs_to_program", "time_base_hz"]
