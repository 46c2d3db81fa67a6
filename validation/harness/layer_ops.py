"""Time the non-attention ops of a transformer layer on a CUDA GPU, one op per record.

``python3 -m validation.harness.layer_ops --out FILE.jsonl``

The ops a Llama-style decoder layer launches besides attention, at Llama-3 shapes
(``d_model`` 4096/8192, FFN 14336, 32 heads of 128), bf16 unless said otherwise:

- ``rms_norm``: ``F.rms_norm(x[M, d], (d,), g, 1e-5)``;
- ``silu_mul``: ``F.silu(a) * b`` on ``[M, ffn]`` (SwiGLU's element-wise part, two kernels);
- ``add``: a residual add ``x + y`` on ``[M, d]``;
- ``rope``: the Hugging Face rotary embedding ``q * cos + rotate_half(q) * sin`` on
  ``q[B, H, S, 128]`` (slice, neg, cat, two mul, add: several kernels);
- ``swiglu_mlp``: ``w2(silu(w1 x) * w3 x)`` with ``F.linear`` (three GEMMs + element-wise);
- ``bmm``: ``torch.bmm(a[b, m, k], c[b, k, n])``;
- ``scaled_mm_fp8``: ``torch._scaled_mm`` of e4m3 ``A[M, K]`` and column-major ``B[K, N]``
  with per-tensor float32 scales, bf16 out (the fp8 GEMM serving stacks use).

Every record: ``{"kind": "layer_op", "op", <shape fields>, "dtype", "ms", "ms_p20",
"ms_p80", "ms_min", "reps", "timer"}`` after the ``device`` record of
:mod:`validation.harness.measure`; timing by :func:`validation.harness.timing.bench` (CUDA
events, cold L2 per call). A failing op writes ``"error"`` and the run goes on.
Standard library + torch only; nothing here imports archsim.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from typing import Any

__all__ = ["OPS", "build", "main"]

Op = dict[str, Any]  # op name (str) and shape fields (int)

#: The measured ops and shapes (M = tokens).
OPS: list[Op] = [
    *({"op": "rms_norm", "M": m, "d": d} for d in (4096, 8192) for m in (1, 16, 2048, 8192)),
    *({"op": "silu_mul", "M": m, "ffn": 14336} for m in (1, 16, 2048, 8192)),
    *({"op": "add", "M": m, "d": 4096} for m in (1, 2048, 8192)),
    *({"op": "rope", "B": 1, "H": h, "S": s, "D": 128} for h in (8, 32) for s in (1, 2048, 8192)),
    *({"op": "swiglu_mlp", "M": m, "d": 4096, "ffn": 14336} for m in (1, 16, 2048, 8192)),
    {"op": "bmm", "b": 32, "m": 2048, "k": 128, "n": 2048},
    {"op": "bmm", "b": 32, "m": 2048, "k": 2048, "n": 128},
    {"op": "bmm", "b": 256, "m": 1, "k": 128, "n": 4096},
    {"op": "bmm", "b": 8, "m": 4096, "k": 4096, "n": 4096},
    *(
        {"op": "scaled_mm_fp8", "M": m, "N": n, "K": k}
        for m, n, k in (
            (8192, 8192, 8192),
            (2048, 6144, 4096),
            (2048, 28672, 4096),
            (2048, 4096, 14336),
            (8192, 28672, 4096),
            (16, 28672, 4096),
            (16, 6144, 4096),
        )
    ),
]


def _rand(*shape: int, dtype=None):  # noqa: ANN001, ANN202 - torch tensor
    import torch

    return torch.randn(*shape, dtype=torch.bfloat16, device="cuda").to(dtype or torch.bfloat16)


def _rotate_half(x):  # noqa: ANN001, ANN202
    import torch

    half = x.shape[-1] // 2
    return torch.cat((-x[..., half:], x[..., :half]), dim=-1)


def build(op: Op) -> Callable[[], object]:
    """The callable that enqueues one call of ``op`` on random data."""
    import torch
    import torch.nn.functional as F  # noqa: N812

    name = op["op"]
    if name == "rms_norm":
        x, g = _rand(int(op["M"]), int(op["d"])), _rand(int(op["d"]))
        return lambda: F.rms_norm(x, (x.shape[-1],), g, 1e-5)
    if name == "silu_mul":
        a, b = _rand(int(op["M"]), int(op["ffn"])), _rand(int(op["M"]), int(op["ffn"]))
        return lambda: F.silu(a) * b
    if name == "add":
        x, y = _rand(int(op["M"]), int(op["d"])), _rand(int(op["M"]), int(op["d"]))
        return lambda: x + y
    if name == "rope":
        b, h, s, d = (int(op[k]) for k in ("B", "H", "S", "D"))
        q, cos, sin = _rand(b, h, s, d), _rand(1, 1, s, d), _rand(1, 1, s, d)
        return lambda: q * cos + _rotate_half(q) * sin
    if name == "swiglu_mlp":
        m, dm, ff = int(op["M"]), int(op["d"]), int(op["ffn"])
        x = _rand(m, dm)
        w1, w3, w2 = _rand(ff, dm) * dm**-0.5, _rand(ff, dm) * dm**-0.5, _rand(dm, ff) * ff**-0.5
        return lambda: F.linear(F.silu(F.linear(x, w1)) * F.linear(x, w3), w2)
    if name == "bmm":
        bb, m, k, n = (int(op[f]) for f in ("b", "m", "k", "n"))
        a, c = _rand(bb, m, k), _rand(bb, k, n)
        return lambda: torch.bmm(a, c)
    if name == "scaled_mm_fp8":
        m, n, k = int(op["M"]), int(op["N"]), int(op["K"])
        fp8 = torch.float8_e4m3fn
        a = (_rand(m, k) * 0.5).to(fp8)
        bt = (_rand(n, k) * 0.5).to(fp8)  # row-major [N, K]; .t() is column-major [K, N]
        sa = torch.tensor(1.0, device="cuda")
        sb = torch.tensor(1.0, device="cuda")
        return lambda: torch._scaled_mm(a, bt.t(), scale_a=sa, scale_b=sb, out_dtype=torch.bfloat16)
    raise ValueError(f"layer_ops: unknown op {name!r}")


def main(argv: list[str] | None = None) -> int:
    import torch

    from validation.harness.energy import Nvml
    from validation.harness.measure import device_record
    from validation.harness.timing import bench

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", required=True, help="JSON Lines file to write")
    args = ap.parse_args(argv)
    try:
        nvml = Nvml()
    except (RuntimeError, OSError):
        nvml = None
    with open(args.out, "w") as fh, torch.inference_mode():
        fh.write(json.dumps(device_record(nvml, [sys.executable, *sys.argv])) + "\n")
        for op in OPS:
            rec: dict[str, object] = {"kind": "layer_op", **op}
            rec["dtype"] = "fp8_e4m3" if op["op"] == "scaled_mm_fp8" else "bf16"
            try:
                rec.update(bench(build(op)))
                rec["timer"] = "cuda_events_l2flush_median (validation.harness.timing.bench)"
            except Exception as exc:  # noqa: BLE001 - one failing op must not end the run
                rec["error"] = f"{type(exc).__name__}: {exc}"
            torch.cuda.empty_cache()
            fh.write(json.dumps(rec) + "\n")
            fh.flush()
            print(json.dumps(rec))  # noqa: T201
    return 0


if __name__ == "__main__":
    sys.exit(main())
