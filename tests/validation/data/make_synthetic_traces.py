"""Write the synthetic PyTorch-profiler traces used by ``tests/validation/test_trace_ops.py``.

The event layout copies what ``torch.profiler`` + ``export_chrome_trace`` write (see the real
trace ``validation/data/traces/h100_attention_step.trace.json``): ``cpu_op`` events with
``External id`` and, with ``record_shapes=True``, ``Input Dims`` / ``Input type`` /
``Input Strides`` / ``Concrete Inputs``; ``cuda_runtime`` launch calls with ``correlation``;
``kernel`` events on the GPU with the same ``correlation`` and ``External id``; ``ac2g`` flow
events; a ``gpu_memset``; a ``user_annotation`` range around the layer (``record_function``).
The ops are those of one Llama-3-8B-shaped decoder layer (bf16,
d_model 4096, 32 query / 8 KV heads of 128, FFN 14336) with a short sequence.

**Kernel durations here are synthetic** (round numbers, not measurements); the tests check
how shapes are read and ops are simulated, never accuracy. Re-run to regenerate:
``python tests/validation/data/make_synthetic_traces.py``.
"""

from __future__ import annotations

import json
from pathlib import Path

BF16 = "c10::BFloat16"
FA2 = (
    "void pytorch_flash::flash_fwd_kernel<pytorch_flash::Flash_fwd_kernel_traits<128, 128, 64, "
    "4, false, false, cutlass::bfloat16_t, pytorch_flash::Flash_kernel_traits<128, 128, 64, 4, "
    "cutlass::bfloat16_t> >, false, true, false, false, true, true, false, false>"
    "(pytorch_flash::Flash_fwd_params)"
)
EW = "void at::native::vectorized_elementwise_kernel<4, at::native::{f}<c10::BFloat16>>"
GEMM = "nvjet_sm90_tst_128x256_64x4_2x1_v_bz_coopA_TNT"


class _Trace:
    def __init__(self, shapes: bool) -> None:
        self.events: list[dict] = []
        self.shapes = shapes
        self.t_cpu = 1000.0
        self.t_gpu = 5000.0
        self.ext = 0
        self.corr = 100

    def op(self, name: str, dims=(), types=(), concrete=(), children=(), kernel=None):
        """A cpu_op (with nested children), and the kernel it launches itself (name, us)."""
        self.ext += 1
        ext, ts = self.ext, self.t_cpu
        self.t_cpu += 2.0
        args = {"External id": ext, "Record function id": 0, "Ev Idx": ext - 1}
        if self.shapes:
            args.update(
                {
                    "Input Dims": [list(d) if not isinstance(d, tuple) else list(d) for d in dims],
                    "Input type": list(types),
                    "Input Strides": [[] for _ in dims],
                    "Concrete Inputs": list(concrete) or ["" for _ in dims],
                }
            )
        ev = {"ph": "X", "cat": "cpu_op", "name": name, "pid": 4242, "tid": 4242, "ts": ts}
        self.events.append(ev)
        for child in children:
            child()
        if kernel is not None:
            self._launch(ext, *kernel)
        self.t_cpu += 1.0
        ev["dur"] = round(self.t_cpu - ts, 3)
        ev["args"] = args
        return ext

    def _launch(self, ext: int, kname: str, dur: float, grid=(132, 1, 1)) -> None:
        self.corr += 1
        c, ts = self.corr, self.t_cpu
        self.events.append(
            {
                "ph": "X",
                "cat": "cuda_runtime",
                "name": "cudaLaunchKernel",
                "pid": 4242,
                "tid": 4242,
                "ts": ts,
                "dur": 3.0,
                "args": {"External id": ext, "cbid": 211, "correlation": c},
            }
        )
        self.events.append(
            {"ph": "s", "id": c, "pid": 4242, "tid": 4242, "ts": ts, "cat": "ac2g", "name": "ac2g"}
        )
        self.t_cpu += 4.0
        self.events.append(
            {
                "ph": "X",
                "cat": "kernel",
                "name": kname,
                "pid": 0,
                "tid": 7,
                "ts": self.t_gpu,
                "dur": dur,
                "args": {
                    "External id": ext,
                    "queued": 0,
                    "device": 0,
                    "context": 1,
                    "stream": 7,
                    "correlation": c,
                    "registers per thread": 128,
                    "shared memory": 0,
                    "blocks per SM": 1.0,
                    "warps per SM": 4.0,
                    "grid": list(grid),
                    "block": [128, 1, 1],
                    "est. achieved occupancy %": 0,
                },
            }
        )
        self.events.append(
            {
                "ph": "f",
                "id": c,
                "pid": 0,
                "tid": 7,
                "ts": self.t_gpu,
                "cat": "ac2g",
                "name": "ac2g",
                "bp": "e",
            }
        )
        self.t_gpu += dur + 2.0

    def memset(self) -> None:
        self.events.append(
            {
                "ph": "X",
                "cat": "gpu_memset",
                "name": "Memset (Device)",
                "pid": 0,
                "tid": 7,
                "ts": self.t_gpu,
                "dur": 1.0,
                "args": {"device": 0, "context": 1, "stream": 7, "correlation": 1, "bytes": 4},
            }
        )
        self.t_gpu += 2.0

    def doc(self) -> dict:
        return {
            "schemaVersion": 1,
            "deviceProperties": [{"id": 0, "name": "synthetic (not a measurement)"}],
            "traceEvents": self.events,
            "traceName": "synthetic Llama-3-8B-shaped decoder layer",
            "displayTimeUnit": "ms",
        }


def layer(*, shapes: bool, S: int, ctx: int) -> dict:
    """One decoder layer: ``S`` new tokens attending to ``ctx`` tokens (prefill: ctx = S)."""
    t = _Trace(shapes)
    start = t.t_cpu
    t.t_cpu += 1.0
    dm, hq, hkv, d, ff = 4096, 32, 8, 128, 14336
    x = (1, S, dm)

    def mm(m: int, k: int, n: int, us: float):
        return lambda: t.op(
            "aten::mm",
            [(m, k), (k, n)],
            [BF16, BF16],
            kernel=(GEMM, us, (n // 256, m // 128 or 1, 1)),
        )

    def linear(k: int, n: int, us: float):
        return lambda: t.op(
            "aten::linear",
            [x[:-1] + (k,), (n, k), ()],
            [BF16, BF16, ""],
            children=[
                lambda: t.op("aten::t", [(n, k)], [BF16]),
                lambda: t.op(
                    "aten::matmul", [(1, S, k), (k, n)], [BF16, BF16], children=[mm(S, k, n, us)]
                ),
            ],
        )

    def ew(name: str, functor: str, dims, us: float, types=None, concrete=()):
        return lambda: t.op(
            name, dims, types or [BF16] * len(dims), concrete, kernel=(EW.format(f=functor), us)
        )

    # input RMSNorm, fused kernel
    t.op(
        "aten::rms_norm",
        [x, (), (dm,), ()],
        [BF16, "ScalarList", BF16, "Scalar"],
        ["", "[4096]", "", "1e-05"],
        children=[
            lambda: t.op(
                "aten::_fused_rms_norm",
                [x, (), (dm,), ()],
                [BF16, "ScalarList", BF16, "Scalar"],
                ["", "[4096]", "", "1e-05"],
                kernel=("void at::native::(anonymous namespace)::vectorized_rms_norm_kernel", 9.0),
            )
        ],
    )
    for n, us in ((hq * d, 40.0), (hkv * d, 12.0), (hkv * d, 12.0)):
        linear(dm, n, us)()
    q, k = (1, hq, S, d), (1, hkv, S, d)
    rope = (1, 1, S, d)
    for shape in (q, k):  # RoPE: x*cos + rotate_half(x)*sin
        half = shape[:-1] + (d // 2,)
        ew("aten::mul", "MulFunctor", [shape, rope], 3.0)()
        t.op("aten::slice", [shape, (), (), (), ()], [BF16, "Scalar", "Scalar", "Scalar", "Scalar"])
        ew("aten::neg", "NegFunctor", [half], 2.0)()
        t.op(
            "aten::cat",
            [[half, half], ()],
            ["TensorList", "Scalar"],
            ["", "-1"],
            kernel=(
                "void at::native::(anonymous namespace)::CatArrayBatchedCopy<c10::BFloat16>",
                3.0,
            ),
        )
        ew("aten::mul", "MulFunctor", [shape, rope], 3.0)()
        ew(
            "aten::add",
            "AddFunctor",
            [shape, shape, ()],
            3.0,
            [BF16, BF16, "Scalar"],
            ["", "", "1"],
        )()
    qk = (1, ctx, hkv, d)
    t.op(
        "aten::scaled_dot_product_attention",
        [q, (1, hkv, ctx, d), (1, hkv, ctx, d), (), (), (), (), ()],
        [BF16, BF16, BF16, "", "Scalar", "Scalar", "", "Scalar"],
        ["", "", "", "", "0.", "True" if S > 1 else "False", "", "True"],
        children=[
            lambda: t.op(
                "aten::_scaled_dot_product_flash_attention",
                [q, (1, hkv, ctx, d), (1, hkv, ctx, d), (), (), (), ()],
                [BF16, BF16, BF16, "Scalar", "Scalar", "Scalar", ""],
                ["", "", "", "0.", "True" if S > 1 else "False", "False", ""],
                children=[
                    lambda: t.op(
                        "aten::_flash_attention_forward",
                        [(1, S, hq, d), qk, qk, (), (), (), (), (), (), ()],
                        [
                            BF16,
                            BF16,
                            BF16,
                            "",
                            "",
                            "Scalar",
                            "Scalar",
                            "Scalar",
                            "Scalar",
                            "Scalar",
                        ],
                        [
                            "",
                            "",
                            "",
                            "",
                            "",
                            str(S),
                            str(ctx),
                            "0.",
                            "True" if S > 1 else "False",
                            "False",
                        ],
                        kernel=(FA2, 60.0, (max(1, S // 128), 1, hq)),
                    )
                ],
            )
        ],
    )
    t.op(
        "aten::contiguous",
        [(1, S, hq, d)],
        [BF16],
        children=[
            lambda: t.op(
                "aten::clone",
                [(1, S, hq, d), ()],
                [BF16, ""],
                children=[
                    ew(
                        "aten::copy_",
                        "copy_kernel",
                        [(1, S, hq, d), (1, S, hq, d), ()],
                        4.0,
                        [BF16, BF16, "Scalar"],
                        ["", "", "False"],
                    )
                ],
            )
        ],
    )
    linear(dm, dm, 35.0)()
    ew("aten::add", "AddFunctor", [x, x, ()], 5.0, [BF16, BF16, "Scalar"], ["", "", "1"])()
    t.memset()
    # post-attention RMSNorm written out in eager ops (as many model codes do)
    t.op(
        "aten::rms_norm",
        [x, (), (dm,), ()],
        [BF16, "ScalarList", BF16, "Scalar"],
        ["", "[4096]", "", "1e-05"],
        children=[
            ew("aten::pow", "pow_tensor_scalar_kernel", [x, ()], 5.0, [BF16, "Scalar"], ["", "2"]),
            lambda: t.op(
                "aten::mean",
                [x, (), (), ()],
                [BF16, "ScalarList", "Scalar", ""],
                ["", "[-1]", "True", ""],
                kernel=("void at::native::reduce_kernel<512, 1, at::native::ReduceOp<float>>", 4.0),
            ),
            ew("aten::add", "AddFunctor", [(1, S, 1), ()], 2.0, [BF16, "Scalar"], ["", "1e-05"]),
            ew("aten::rsqrt", "rsqrt_kernel", [(1, S, 1)], 2.0),
            ew("aten::mul", "MulFunctor", [x, (1, S, 1)], 5.0),
            ew("aten::mul", "MulFunctor", [(dm,), x], 5.0),
        ],
    )
    linear(dm, ff, 120.0)()
    linear(dm, ff, 120.0)()
    ew("aten::silu", "silu_kernel", [(1, S, ff)], 12.0)()
    ew("aten::mul", "MulFunctor", [(1, S, ff), (1, S, ff)], 15.0)()
    linear(ff, dm, 118.0)()
    ew("aten::add", "AddFunctor", [x, x, ()], 5.0, [BF16, BF16, "Scalar"], ["", "", "1"])()
    # an op archsim has no model for: a custom extension launching a Triton kernel
    t.op("my_ext::fused_router", [x], [BF16], kernel=("triton_poi_fused_router_0", 7.0))
    t.events.append(  # the harness's record_function("layer_step_0") range
        {
            "ph": "X",
            "cat": "user_annotation",
            "name": "layer_step_0",
            "pid": 4242,
            "tid": 4242,
            "ts": start,
            "dur": t.t_cpu + 1.0 - start,
            "args": {"External id": 0, "Record function id": 0, "Ev Idx": 0},
        }
    )
    return t.doc()


def main() -> None:
    out = Path(__file__).resolve().parent
    for name, kw in (
        ("llama_layer_prefill", {"shapes": True, "S": 512, "ctx": 512}),
        ("llama_layer_decode", {"shapes": True, "S": 1, "ctx": 4096}),
        ("llama_layer_noshapes", {"shapes": False, "S": 512, "ctx": 512}),
    ):
        (out / f"{name}.trace.json").write_text(json.dumps(layer(**kw), indent=0) + "\n")


if __name__ == "__main__":
    main()
