"""Trace import (PyTorch profiler, ncu CSV) and `archsim compare` on synthetic and real traces."""

import json
from pathlib import Path

import pytest

from archsim.cli import main
from archsim.errors import ValidationDataError
from archsim.gpu import gpu_model
from validation import compare_trace, read_ncu_csv, read_torch_trace, write_merged_trace
from validation._compare import load_shape_hints
from validation._ncu import parse_ncu_csv
from validation._torch_trace import classify_kernel

REPO = Path(__file__).resolve().parents[2]
REAL_TRACE = REPO / "validation/data/traces/h100_attention_step.trace.json"
REAL_HINTS = REPO / "validation/hints/h100_attention_step.shapes.json"
REAL_NCU = REPO / "validation/data/raw/h100_ncu.csv"
FA2 = (
    "void pytorch_flash::flash_fwd_kernel<pytorch_flash::Flash_fwd_kernel_traits<128, 128, 64, 4, "
    "false, false, cutlass::bfloat16_t, pytorch_flash::Flash_kernel_traits<128, 128, 64, 4, "
    "cutlass::bfloat16_t> >, false, true, false, false, true, true, false, false>"
    "(pytorch_flash::Flash_fwd_params)"
)


def _synthetic_trace(path):
    ev = [
        {
            "ph": "X",
            "cat": "cpu_op",
            "name": "aten::mm",
            "ts": 0,
            "dur": 10,
            "args": {"External id": 1, "Input Dims": [[4096, 4096], [4096, 4096]]},
        },
        {
            "ph": "X",
            "cat": "kernel",
            "name": "nvjet_sm90_tst_256x128_64x4_1x2_h_bz_coopA_NNT",
            "ts": 100,
            "dur": 180.0,
            "args": {"External id": 1, "grid": [2, 66, 1], "block": [384, 1, 1], "stream": 7},
        },
        {
            "ph": "X",
            "cat": "cpu_op",
            "name": "aten::_flash_attention_forward",
            "ts": 20,
            "dur": 10,
            "args": {"External id": 2},
        },
        {
            "ph": "X",
            "cat": "kernel",
            "name": FA2,
            "ts": 300,
            "dur": 1900.0,
            "args": {"External id": 2, "grid": [32, 4, 32], "block": [128, 1, 1], "stream": 7},
        },
        {
            "ph": "X",
            "cat": "kernel",
            "name": "void at::native::vectorized_elementwise_kernel<4>",
            "ts": 2300,
            "dur": 5.0,
            "args": {"stream": 7},
        },
    ]
    path.write_text(json.dumps({"traceEvents": ev}))
    return path


def test_kernel_classes():
    assert classify_kernel("nvjet_sm90_tst_192x192_64x3_2x1_v_bz_coopB_NNN") == "gemm"
    assert classify_kernel("sm90_xmma_gemm_bf16bf16_bf16f32_f32_tn_n_tilesize128x256x64") == "gemm"
    assert classify_kernel(FA2) == "attn_fwd"
    assert (
        classify_kernel("cudnn_generated_fort_native_sdpa_sm90_flash_fprop_wgmma_f16_knob_7")
        == "attn_fwd"
    )
    assert classify_kernel("flash_bwd_dq_dk_dv_loop_seqk_parallel_kernel") == "attn_bwd"
    assert classify_kernel("flash_fwd_splitkv_combine_kernel") == "attn_combine"
    assert classify_kernel("cunn_SoftMaxForward") == "softmax"


def test_synthetic_trace_shapes_from_dims_and_from_fa2_template(tmp_path):
    trace = read_torch_trace(_synthetic_trace(tmp_path / "t.json"))
    assert [k.category for k in trace.kernels] == ["gemm", "attn_fwd", "elementwise"]
    cmp = compare_trace(trace, gpu_model("h100"))
    gemm, attn, elem = cmp.matches
    assert gemm.op_label == "gemm 4096x4096x4096"
    assert gemm.sim is not None
    assert attn.op_label.startswith("attn B4 H32/32 S4096x4096 D128 causal")
    assert attn.sim is not None
    assert abs(attn.err_pct) < 50
    assert elem.sim is None
    out = tmp_path / "merged.json"
    write_merged_trace(cmp, out)
    doc = json.loads(out.read_text())
    names = {
        e["pid"]: e["args"]["name"] for e in doc["traceEvents"] if e.get("name") == "process_name"
    }
    assert names == {1: "measured", 2: "simulated"}
    kernels = [e for e in doc["traceEvents"] if e["ph"] == "X"]
    assert sum(e["pid"] == 1 for e in kernels) == 3
    assert sum(e["pid"] == 2 for e in kernels) == 2


def test_broken_trace_is_a_validation_error(tmp_path):
    p = tmp_path / "bad.json"
    p.write_text("{oops")
    with pytest.raises(ValidationDataError, match="not JSON"):
        read_torch_trace(p)


def test_ncu_long_and_wide_layouts():
    long = (
        "==PROF== Connected\n"
        '"ID","Kernel Name","Grid Size","Metric Name","Metric Unit","Metric Value"\n'
        '"0","k1","(1, 1, 1)","dram__bytes_read.sum","byte","1,024"\n'
        '"0","k1","(1, 1, 1)","dram__bytes_write.sum","byte","512"\n'
        '"1","k2","(2, 1, 1)","gpu__time_duration.sum","ns","2,000"\n'
    )
    ks = parse_ncu_csv(long)
    assert [k.name for k in ks] == ["k1", "k2"]
    assert ks[0].dram_bytes == 1536.0
    assert ks[1].duration_us == 2.0
    wide = (
        '"ID","Kernel Name","dram__bytes_read.sum","dram__bytes_write.sum"\n'
        '"","","byte","byte"\n"0","k1","10","20"\n'
    )
    assert parse_ncu_csv(wide)[0].dram_bytes == 30.0
    with pytest.raises(ValidationDataError, match="header"):
        parse_ncu_csv("nothing here\n")


def test_committed_trace_matches_all_kernels_within_25_percent(tmp_path, capsys):
    out = tmp_path / "merged.json"
    args = [
        "compare",
        "--torch-trace",
        str(REAL_TRACE),
        "--arch",
        "h100",
        "--shapes",
        str(REAL_HINTS),
        "--out",
        str(out),
    ]
    assert main(args) == 0
    text = capsys.readouterr().out
    assert "unmatched kernels 0.0 us" in text
    trace = read_torch_trace(REAL_TRACE)
    cmp = compare_trace(trace, gpu_model("h100"), shapes=load_shape_hints(REAL_HINTS))
    errs = [abs(m.err_pct) for m in cmp.matches if m.err_pct is not None]
    print("committed trace per-kernel errors (%):", [round(e, 1) for e in errs])  # noqa: T201
    assert len(errs) == len(cmp.matches)
    assert max(errs) < 25
    doc = json.loads(out.read_text())
    assert {e["pid"] for e in doc["traceEvents"] if e["ph"] == "X"} == {1, 2}


def test_committed_ncu_csv_reads():
    ks = read_ncu_csv(REAL_NCU)
    assert len(ks) >= 10
    assert all(k.dram_bytes is not None for k in ks)


def test_ncu_bytes_attach_to_the_kernel_with_same_name_and_grid(tmp_path):
    trace = read_torch_trace(_synthetic_trace(tmp_path / "t.json"))
    k = '"0","nvjet_sm90_tst_256x128_64x4_1x2_h_bz_coopA_NNT","(2, 66, 1)",'
    csv = (
        '"ID","Kernel Name","Grid Size","Metric Name","Metric Unit","Metric Value"\n'
        + k
        + '"dram__bytes_read.sum","byte","70,000,000"\n'
        + k
        + '"dram__bytes_write.sum","byte","30,000,000"\n'
    )
    cmp = compare_trace(trace, gpu_model("h100"), ncu=parse_ncu_csv(csv))
    assert cmp.matches[0].ncu is not None
    assert cmp.matches[0].ncu.dram_bytes == 1.0e8
    assert cmp.matches[1].ncu is None
    assert "ncu DRAM" in cmp.table()
