"""`archsim compare` on profiler traces of a whole decoder layer: every op that launches a
kernel is read from its ``record_shapes`` inputs and simulated; unknown kernels are listed.

The traces in ``tests/validation/data`` are synthetic (PyTorch's event format, made-up
durations; ``make_synthetic_traces.py``), so nothing here checks accuracy.
"""

import json
from pathlib import Path

import pytest

from archsim.cli import main
from archsim.errors import ValidationDataError
from archsim.gpu import gpu_model
from validation import compare_trace, read_torch_trace, write_merged_trace
from validation._torch_trace import parse_trace_events

DATA = Path(__file__).resolve().parent / "data"
PREFILL = DATA / "llama_layer_prefill.trace.json"
DECODE = DATA / "llama_layer_decode.trace.json"
NOSHAPES = DATA / "llama_layer_noshapes.trace.json"
H100_PEAK_BYTES_PER_S = 3.35e12  # H100 SXM HBM3 datasheet
BF16 = 2
BF16_T, FP8_T = "c10::BFloat16", "c10::Float8_e4m3fn"
GEMM_K = "nvjet_sm90_tst_128x256_64x4_2x1_v_bz_coopA_TNT"
S, DM, FF = 512, 4096, 14336


def _kernel_events(path):
    return [e for e in json.loads(path.read_text())["traceEvents"] if e.get("cat") == "kernel"]


@pytest.fixture(scope="module")
def prefill():
    return compare_trace(read_torch_trace(PREFILL), gpu_model("h100"))


def _by_label(cmp, label):
    return [m for m in cmp.matches if m.op_label == label and m.sim is not None]


def test_kernels_reach_their_op_through_the_correlation_id():
    events = json.loads(PREFILL.read_text())["traceEvents"]
    for e in events:  # keep only the correlation id on kernels
        if e.get("cat") == "kernel":
            e["args"].pop("External id")
    trace = parse_trace_events(events)
    stacks = {k.name[:30]: k.op_stack for k in trace.kernels}
    flash = next(v for n, v in stacks.items() if "flash_fwd" in n)
    assert flash == (
        "aten::scaled_dot_product_attention",
        "aten::_scaled_dot_product_flash_attention",
        "aten::_flash_attention_forward",
    )
    gemm = trace.kernels[1]
    assert gemm.op_stack == ("aten::linear", "aten::matmul", "aten::mm")
    assert gemm.input_dims == ((S, DM), (DM, DM))
    cat = next(k for k in trace.kernels if k.op_name == "aten::cat")
    assert cat.list_dims[0] == ((1, 32, S, 64), (1, 32, S, 64))


def test_every_op_of_the_layer_is_simulated_and_the_unknown_kernel_listed(prefill):
    kernels = _kernel_events(PREFILL)
    total = sum(e["dur"] for e in kernels)
    custom = sum(e["dur"] for e in kernels if e["name"].startswith("triton_"))
    assert prefill.simulated_fraction == pytest.approx((total - custom) / total)
    ((name, op, count, us, reason),) = prefill.unknown()
    assert (name, op, count, us) == ("triton_poi_fused_router_0", "my_ext::fused_router", 1, 7.0)
    assert "no model" in reason
    labels = {m.op_label for m in prefill.matches}
    for label in (
        "rmsnorm T512 D4096",
        "gemm 512x4096x4096",
        "gemm 512x14336x4096",
        "gemm 512x4096x14336",
        "attn B1 H32/8 S512x512 D128 causal",
        "silu 1x512x14336",
        "cat 1x32x512x64",
        "neg 1x8x512x64",
        "copy_ 1x512x32x128",
        "mean 1x512x4096",
        "rsqrt 1x512x1",
    ):
        assert label in labels, label
    (fused,) = _by_label(prefill, "rmsnorm T512 D4096")
    assert fused.path == "cascade rmsnorm"
    assert all(m.sim_us and m.sim_us > 0 for m in prefill.matches if m.sim is not None)


def test_element_wise_bytes_follow_the_recorded_shapes(prefill):
    def dram(label):
        (m,) = _by_label(prefill, label)
        return m.sim.dram_read_bytes, m.sim.dram_write_bytes

    assert dram("silu 1x512x14336") == (S * FF * BF16, S * FF * BF16)
    half = 32 * S * 64 * BF16
    assert dram("cat 1x32x512x64") == (2 * half, 2 * half)
    assert dram("mean 1x512x4096") == (S * DM * BF16, S * BF16)
    assert dram("copy_ 1x512x32x128") == (S * DM * BF16, S * DM * BF16)
    residual = [m for m in _by_label(prefill, "add 1x512x4096")]
    assert residual
    assert (residual[0].sim.dram_read_bytes, residual[0].sim.dram_write_bytes) == (
        2 * S * DM * BF16,
        S * DM * BF16,
    )


def test_element_wise_time_is_bandwidth_bound(prefill):
    (m,) = _by_label(prefill, "mul 1x512x14336")
    nbytes = m.sim.dram_read_bytes + m.sim.dram_write_bytes
    floor = nbytes / H100_PEAK_BYTES_PER_S
    assert floor <= m.sim.time_s < 2.0 * floor


def test_decode_trace_reads_decode_attention_and_skinny_gemms():
    cmp = compare_trace(read_torch_trace(DECODE), gpu_model("h100"))
    labels = {m.op_label for m in cmp.matches}
    assert "decode B1 H32/8 S1x4096 D128" in labels
    assert "gemm 1x14336x4096" in labels
    assert "rmsnorm T1 D4096" in labels


def test_cli_prints_coverage_unknown_kernels_and_writes_the_merged_trace(tmp_path, capsys):
    out = tmp_path / "merged.json"
    assert main(["compare", "--torch-trace", str(PREFILL), "--out", str(out)]) == 0
    text = capsys.readouterr().out
    kernels = _kernel_events(PREFILL)
    total = sum(e["dur"] for e in kernels)
    assert f"simulated {total - 7.0:.1f} of {total:.1f} us measured kernel time" in text
    assert "unknown kernels (1 kernels, 7.0 us, not simulated):" in text
    assert "triton_poi_fused_router_0" in text
    doc = json.loads(out.read_text())
    sim = [e for e in doc["traceEvents"] if e["ph"] == "X" and e["pid"] == 2]
    assert len(sim) == len(kernels) - 1


def test_trace_without_shapes_is_an_error_that_says_how_to_record_them(capsys):
    assert main(["compare", "--torch-trace", str(NOSHAPES)]) == 2
    err = capsys.readouterr().err
    assert "trace has no shapes" in err
    assert "record_shapes=True" in err
    assert "--shapes" in err


def test_trace_without_kernels_is_an_error(tmp_path, capsys):
    events = [e for e in json.loads(PREFILL.read_text())["traceEvents"] if e.get("cat") != "kernel"]
    p = tmp_path / "cpu_only.json"
    p.write_text(json.dumps({"traceEvents": events}))
    assert main(["compare", "--torch-trace", str(p)]) == 2
    err = capsys.readouterr().err
    assert "no GPU kernels" in err
    assert "ProfilerActivity.CUDA" in err


def test_trace_where_no_op_can_be_simulated_is_an_error():
    events = json.loads(PREFILL.read_text())["traceEvents"]
    keep = [e for e in events if e.get("cat") != "kernel" or e["name"].startswith("triton_")]
    with pytest.raises(ValidationDataError, match="no kernel could be simulated") as info:
        compare_trace(parse_trace_events(keep, source="t.json"), gpu_model("h100"))
    assert "my_ext::fused_router" in str(info.value)


def test_merged_trace_of_an_op_simulated_as_a_whole(tmp_path, prefill):
    out = tmp_path / "m.json"
    write_merged_trace(prefill, out)
    names = {e["name"] for e in json.loads(out.read_text())["traceEvents"] if e.get("pid") == 2}
    assert "rmsnorm (gpu_unfused)" in names


def _first_gemm_as(input_type, kernel_name=None):
    events = json.loads(PREFILL.read_text())["traceEvents"]
    mm = next(e for e in events if e.get("name") == "aten::mm")
    mm["args"]["Input type"] = [input_type, input_type]
    ext = mm["args"]["External id"]
    kernel = next(e for e in events if e.get("cat") == "kernel" and e["args"]["External id"] == ext)
    if kernel_name:
        kernel["name"] = kernel_name
    cmp = compare_trace(parse_trace_events(events), gpu_model("h100"))
    return next(m for m in cmp.matches if m.kernel.name == kernel["name"])


def test_gemm_dtype_comes_from_the_recorded_input_type():
    fp16 = _first_gemm_as("c10::Half")
    assert "fp16" in fp16.sim.name
    fp8 = _first_gemm_as("c10::Float8_e4m3fn")
    assert "fp8" in fp8.sim.name
    assert fp8.sim_us < fp16.sim_us


def test_fp32_gemm_is_simulated_only_when_its_kernel_is_tf32():
    sgemm = _first_gemm_as("float", "ampere_sgemm_128x64_nn")
    assert sgemm.sim is None
    assert "fp32 GEMM without a TF32 kernel" in sgemm.reason
    tf32 = _first_gemm_as("float", "sm90_xmma_gemm_tf32f32_tf32f32_f32_tn_n_tilesize128x128x32")
    assert tf32.sim is not None


def test_merged_trace_says_why_a_kernel_was_not_simulated(tmp_path, prefill):
    out = tmp_path / "m.json"
    write_merged_trace(prefill, out)
    measured = [e for e in json.loads(out.read_text())["traceEvents"] if e.get("pid") == 1]
    router = next(e for e in measured if e["name"] == "triton_poi_fused_router_0")
    assert "no model" in router["args"]["not_simulated"]
    assert router["args"]["launched_by"] == "my_ext::fused_router"
    gemm = next(e for e in measured if e["args"].get("op") == "gemm 512x4096x4096")
    assert gemm["args"]["simulated_by"] == "gpu model"


def _op_trace(*ops):
    """Events of ops launching one kernel each: ``(stack, dims, types, concrete, kernel)``
    where ``stack`` lists op names outermost first and the shapes belong to every op;
    ``concrete`` is one list for all of them or a dict op name -> list."""
    events, t, corr = [], 0.0, 0
    for stack, dims, types, concrete, kernel in ops:
        corr += 1
        depth = len(stack)
        for i, name in enumerate(stack):
            args = {"External id": corr * 10 + i, "Input Dims": dims, "Input type": types}
            own = concrete.get(name, []) if isinstance(concrete, dict) else concrete
            args["Concrete Inputs"] = own
            events.append(
                {
                    "ph": "X",
                    "cat": "cpu_op",
                    "name": name,
                    "pid": 1,
                    "tid": 1,
                    "ts": t + i,
                    "dur": 2 * (depth - i) + 5,
                    "args": args,
                }
            )
        launch = t + depth + 1
        events.append(
            {
                "ph": "X",
                "cat": "cuda_runtime",
                "name": "cudaLaunchKernel",
                "pid": 1,
                "tid": 1,
                "ts": launch,
                "dur": 1,
                "args": {"correlation": corr},
            }
        )
        events.append(
            {
                "ph": "X",
                "cat": "kernel",
                "name": kernel,
                "pid": 0,
                "tid": 7,
                "ts": 1000 + 100 * corr,
                "dur": 50.0,
                "args": {"correlation": corr, "stream": 7, "grid": [132, 1, 1]},
            }
        )
        t += 3 * depth + 20
    return compare_trace(parse_trace_events(events), gpu_model("h100"))


def test_layer_norm_and_softmax_run_their_library_cascades():
    x = [2, 1024, 4096]
    cmp = _op_trace(
        (
            ["aten::layer_norm", "aten::native_layer_norm"],
            [x, [], [4096], [4096], []],
            [BF16_T, "ScalarList", BF16_T, BF16_T, "Scalar"],
            ["", "[4096]", "", "", "1e-05"],
            "void at::native::(anonymous namespace)::vectorized_layer_norm_kernel<c10::BFloat16>",
        ),
        (
            ["aten::softmax", "aten::_softmax"],
            [[8, 32, 512, 512], [], []],
            [BF16_T, "Scalar", "Scalar"],
            ["", "-1", "False"],
            "void (anonymous namespace)::cunn_SoftMaxForward<8, c10::BFloat16>",
        ),
    )
    ln, sm = cmp.matches
    assert (ln.op_label, ln.path) == ("layernorm T2048 D4096", "cascade layernorm")
    assert (sm.op_label, sm.path) == ("softmax R131072 N512", "cascade softmax")
    # DRAM bytes (read + write) of a norm / softmax: its tensor read once and written once
    assert ln.sim.dram_read_bytes == pytest.approx(2 * 2048 * 4096 * 2, rel=1e-3)
    assert sm.sim.dram_read_bytes == pytest.approx(2 * 131072 * 512 * 2, rel=1e-3)


def test_sdpa_backends_read_causal_and_heads_from_their_ops():
    q, kv = [2, 32, 2048, 128], [2, 8, 2048, 128]
    bshd_q, bshd_kv = [2, 2048, 32, 128], [2, 2048, 8, 128]
    cmp = _op_trace(
        (
            [
                "aten::scaled_dot_product_attention",
                "aten::_scaled_dot_product_cudnn_attention",
                "aten::_cudnn_attention_forward",
            ],
            [q, kv, kv, [], [], [], [], []],
            [BF16_T] * 3 + [""] * 5,
            {
                "aten::scaled_dot_product_attention": ["", "", "", "", "0.", "True", "", "True"],
                "aten::_scaled_dot_product_cudnn_attention": ["", "", "", "", "0", "0.", "True"],
            },
            "cudnn_generated_fort_native_sdpa_sm90_flash_fprop_wgmma_f16_knob_7_64x128x128",
        ),
        (
            ["aten::_scaled_dot_product_efficient_attention", "aten::_efficient_attention_forward"],
            [bshd_q, bshd_kv, bshd_kv] + [[]] * 9,
            [BF16_T] * 3 + [""] * 9,
            ["", "", "", "", "", "", "", "", "0.", "1", "True", ""],
            "fmha_cutlassF_bf16_aligned_64x128_rf_sm80",
        ),
    )
    cudnn, eff = cmp.matches
    assert cudnn.op_label == "attn B2 H32/8 S2048x2048 D128 causal"
    assert eff.op_label == "attn B2 H32/8 S2048x2048 D128 causal"
    assert cudnn.sim is not None
    assert eff.sim is not None


def test_batched_biased_and_fp8_gemms():
    cmp = _op_trace(
        (["aten::bmm"], [[64, 512, 128], [64, 128, 512]], [BF16_T, BF16_T], ["", ""], GEMM_K),
        (
            ["aten::linear", "aten::addmm"],
            [[1024], [4096, 2048], [2048, 1024], [], []],
            [BF16_T] * 3 + ["Scalar", "Scalar"],
            ["", "", "", "1", "1"],
            GEMM_K,
        ),
        (
            ["aten::_scaled_mm"],
            [[4096, 4096], [4096, 4096], [], [], [], [], [], []],
            [FP8_T, FP8_T, "float", "float", "", "", "", ""],
            [""] * 8,
            GEMM_K,
        ),
    )
    assert [m.op_label for m in cmp.matches] == [
        "gemm 512x512x128",
        "gemm 4096x1024x2048",
        "gemm 4096x4096x4096",
    ]
    assert "fp8" in cmp.matches[2].sim.name


def test_casting_copy_writes_the_target_dtype():
    (m,) = _op_trace(
        (
            ["aten::to", "aten::_to_copy"],
            [[4096, 4096], [], [], [], [], [], []],
            [BF16_T, "Scalar", "", "", "", "Scalar", ""],
            ["", "6", "", "", "", "False", ""],
            "void at::native::unrolled_elementwise_kernel<at::native::direct_copy_kernel_cuda>",
        ),
    ).matches
    assert (m.sim.dram_read_bytes, m.sim.dram_write_bytes) == (4096 * 4096 * 2, 4096 * 4096 * 4)


def test_bad_or_unmatched_shape_hints_are_reported(tmp_path, capsys):
    real = Path(__file__).resolve().parents[2] / "validation/data/traces"
    trace = real / "h100_attention_step.trace.json"
    hints = tmp_path / "h.json"
    hints.write_text(json.dumps([{"op": "aten::nothing", "kind": "gemm", "M": 1, "N": 1, "K": 1}]))
    assert main(["compare", "--torch-trace", str(trace), "--shapes", str(hints)]) == 2
    assert "no --shapes entry names this op" in capsys.readouterr().err
    hints.write_text(json.dumps([{"op": "aten::mm", "kind": "gemm", "M": "x", "N": 1, "K": 1}]))
    assert main(["compare", "--torch-trace", str(trace), "--shapes", str(hints)]) == 2
    assert "--shapes entry: M: expected a positive integer" in capsys.readouterr().err
    for text in (b"\xff\xfe", b'{"op": 1}', b"[1]"):
        hints.write_bytes(text)
        assert main(["compare", "--torch-trace", str(trace), "--shapes", str(hints)]) == 2
        assert capsys.readouterr().err.startswith("error:")


def test_kv_cache_index_writes_and_gathers_move_their_payload():
    cache, new, ids = [1, 8, 4096, 128], [1, 8, 1, 128], [1]
    long_t = "long int"
    cmp = _op_trace(
        (
            ["aten::index_copy_"],
            [cache, [], ids, new],
            [BF16_T, "Scalar", long_t, BF16_T],
            ["", "2", "", ""],
            "void at::native::index_copy_kernel_impl<c10::BFloat16>",
        ),
        (
            ["aten::index_put_", "aten::_index_put_impl_"],
            [cache, [[1]], new, [], []],
            [BF16_T, "TensorList", BF16_T, "Scalar", "Scalar"],
            ["", "", "", "False", "False"],
            "void at::native::index_elementwise_kernel<128, 4>",
        ),
        (
            ["aten::embedding"],
            [[128256, 4096], [1, 512], [], [], []],
            [BF16_T, long_t, "Scalar", "Scalar", "Scalar"],
            ["", "", "-1", "False", "False"],
            "void at::native::indexSelectLargeIndex<c10::BFloat16, long, unsigned int, 2, 2, -2>",
        ),
    )
    copy, put, emb = cmp.matches
    payload = 8 * 128 * 2
    assert (copy.sim.dram_read_bytes, copy.sim.dram_write_bytes) == (payload + 8, payload)
    assert put.sim.dram_write_bytes == payload  # index list dtype is not recorded
    assert payload < put.sim.dram_read_bytes < payload + 64
    rows = 512 * 4096 * 2
    assert (emb.sim.dram_read_bytes, emb.sim.dram_write_bytes) == (rows + 512 * 8, rows)
    assert emb.op_label == "embedding 1x512x4096"


def test_kernels_are_summed_per_record_function_step(prefill):
    kernels = _kernel_events(PREFILL)
    total = sum(e["dur"] for e in kernels)
    ((name, all_us, meas_us, sim_us),) = prefill.steps()
    assert name == "layer_step_0"
    assert all_us == pytest.approx(total)
    assert meas_us == pytest.approx(total - 7.0)  # all but the custom op's kernel
    assert sim_us == pytest.approx(sum(m.sim_us for m in prefill.matches if m.sim is not None))
    span = max(e["ts"] + e["dur"] for e in kernels) - min(e["ts"] for e in kernels)
    assert prefill.spans() == {"layer_step_0": pytest.approx(span)}
    assert span >= total  # kernels of one stream do not overlap
    assert f"step layer_step_0: span {span:.1f} us = kernels {total:.1f} us" in (
        prefill.summary_text()
    )


def test_a_split_k_gemm_in_the_trace_is_simulated_split_with_its_reduce_kernel():
    """cuBLAS ran the B=32 decode layer's 32x4096x4096 projections split-K (a ``splitK``
    kernel, then ``splitKreduce_kernel``) where the modelled choice would not split: the
    trace's kernel name decides, so both kernels are simulated (none left unknown)."""
    path = Path(__file__).resolve().parents[2] / (
        "validation/data/traces/h200_llama3_8b_layer_b32_decode.trace.json.gz"
    )
    cmp = compare_trace(read_torch_trace(path), gpu_model("h200"), arch="h200")
    reduces = [m for m in cmp.matches if m.kernel.name.startswith("void cublasLt::splitKreduce")]
    assert reduces
    assert all(m.sim is not None for m in reduces)
    assert cmp.simulated_fraction == 1.0
    big = [
        m for m in cmp.matches if m.op_label == "gemm 32x4096x4096" and "splitK_" in m.kernel.name
    ]
    assert big
    assert all(m.sim.meta.get("split_k", 1) > 1 for m in big)
