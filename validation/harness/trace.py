"""A PyTorch profiler Chrome trace of one small transformer-attention step.

Shapes (Llama-3-8B attention block, batch 2 x 4096 tokens, bf16): ``x[8192, 4096] @
Wqkv[4096, 6144]`` (32 query heads + 2x8 KV heads of 128), SDPA causal with
``enable_gqa=True`` on ``[2, 32|8, 4096, 128]`` views (PyTorch picks the backend), then
``o[8192, 4096] @ Wo[4096, 4096]``. Three warm-up steps, then three profiled steps
(``torch.profiler`` with CPU and CUDA activities) exported with ``export_chrome_trace``.
"""

from __future__ import annotations

from typing import TypedDict

__all__ = ["TRACE_SHAPES", "attention_step_trace"]


class _TraceShapes(TypedDict):
    B: int
    S: int
    d_model: int
    Hq: int
    Hkv: int
    D: int
    causal: bool
    dtype: str
    warmup_steps: int
    profiled_steps: int


#: Shapes of the traced step (recorded in the trace-producing log and the data README).
TRACE_SHAPES: _TraceShapes = {
    "B": 2,
    "S": 4096,
    "d_model": 4096,
    "Hq": 32,
    "Hkv": 8,
    "D": 128,
    "causal": True,
    "dtype": "bf16",
    "warmup_steps": 3,
    "profiled_steps": 3,
}


def attention_step_trace(path: str) -> dict:
    """Profile the attention step and write the Chrome trace to ``path``; return its shapes."""
    import torch
    import torch.nn.functional as F  # noqa: N812
    from torch.profiler import ProfilerActivity, profile

    s = TRACE_SHAPES
    b, seq, dm, hq, hkv, d = s["B"], s["S"], s["d_model"], s["Hq"], s["Hkv"], s["D"]
    x = torch.randn(b * seq, dm, dtype=torch.bfloat16, device="cuda")
    wqkv = torch.randn(dm, (hq + 2 * hkv) * d, dtype=torch.bfloat16, device="cuda") * dm**-0.5
    wo = torch.randn(hq * d, dm, dtype=torch.bfloat16, device="cuda") * (hq * d) ** -0.5

    def step() -> torch.Tensor:
        qkv = x @ wqkv
        q, k, v = qkv.split([hq * d, hkv * d, hkv * d], dim=-1)
        q = q.view(b, seq, hq, d).transpose(1, 2)
        k = k.view(b, seq, hkv, d).transpose(1, 2)
        v = v.view(b, seq, hkv, d).transpose(1, 2)
        o = F.scaled_dot_product_attention(q, k, v, is_causal=True, enable_gqa=True)
        return o.transpose(1, 2).reshape(b * seq, hq * d) @ wo

    for _ in range(s["warmup_steps"]):
        step()
    torch.cuda.synchronize()
    with profile(activities=[ProfilerActivity.CPU, ProfilerActivity.CUDA]) as prof:
        for _ in range(s["profiled_steps"]):
            step()
        torch.cuda.synchronize()
    prof.export_chrome_trace(path)
    return dict(s)
