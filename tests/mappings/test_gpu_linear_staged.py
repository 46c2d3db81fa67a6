"""``linear_chunked`` knob ``staged=1``: the GLA paper's released code (berlino/
gated_linear_attention@442e096), one launch per stage with every intermediate through HBM.

Specification: the launches follow the code (relayout copies, gate cumsum, K^T V GEMM, state
scan, inter-chunk GEMM, secondary-chunking score kernel or a score GEMM without gates, the score
passes, A V GEMM, the add); the bytes between launches are the cascade's tensors at their
dtypes; the score kernel runs its diagonal 16x16 sub-blocks on the FP32 pipes; the time at a
fixed token count does not depend on the length.
"""

from __future__ import annotations

import pytest

from archsim.errors import MappingError
from mappings import simulate_workload
from mappings._gpu.linear_staged import STAGED, _gemm_shape
from validation.reproduce._common import plan_meta
from workloads import get_workload

P = {"B": 4, "H": 4, "S": 2048, "D": 128, "Dv": 256, "C": 128}


def _kernels(workload: str, **over: object) -> dict[str, dict[str, object]]:
    rep = simulate_workload(
        "h100",
        workload,
        params={**P, **over},
        dataflow="linear_chunked",
        knobs={"staged": 1},
        engine="analytic",
    )
    return {str(k["name"]): k for k in plan_meta(rep)["kernels"]}


def test_gla_runs_the_paper_codes_ten_launches_in_order():
    assert list(_kernels("gla")) == [
        "gla_v1_relayout_copy",
        "gla_v1_preprocess_cumsum",
        "gla_v1_bmm_KV",
        "gla_v1_chunk_scan",
        "gla_v1_bmm_OX",
        "gla_v1_compute_A",
        "gla_v1_score_feature_sum",
        "gla_v1_score_mask",
        "gla_v1_bmm_OI",
        "gla_v1_O",
    ]


def test_ungated_cascade_has_no_gate_stage_and_a_gemm_for_its_scores():
    names = list(_kernels("linear"))
    assert "gla_v1_preprocess_cumsum" not in names
    assert "gla_v1_compute_A" not in names
    assert "gla_v1_bmm_AI" in names
    assert "gla_v1_score_mask" in names
    assert "gla_v1_score_feature_sum" not in names


def test_state_scan_writes_every_chunks_state_and_the_score_kernel_the_scores():
    k = _kernels("gla")
    b, h, s, d, dv, c = (P[x] for x in ("B", "H", "S", "D", "Dv", "C"))
    states = b * h * (s // c) * d * dv * 2  # ST is 16-bit in the cascade
    kv = states  # the per-chunk K^T V contributions, read back by the scan
    ex = b * h * (s // c) * d * 2  # EG, one gate vector per chunk
    assert float(k["gla_v1_chunk_scan"]["dram_bytes"]) == pytest.approx(states + kv + ex)
    scores = b * h * s * c * 2
    q_k_cumsum = 3 * b * h * s * d * 2
    assert float(k["gla_v1_compute_A"]["dram_bytes"]) == pytest.approx(scores + q_k_cumsum)


def test_relayout_copies_every_sequence_input_once():
    k = _kernels("gla")
    b, h, s, d, dv = (P[x] for x in ("B", "H", "S", "D", "Dv"))
    moved = b * h * s * (2 * d * 2 + dv * 2 + d * 4)  # Q, K, V 16-bit; LG fp32
    assert float(k["gla_v1_relayout_copy"]["dram_bytes"]) == pytest.approx(2 * moved)


def test_secondary_chunking_puts_the_diagonal_sub_blocks_on_the_fp32_pipes():
    k = _kernels("gla")["gla_v1_compute_A"]
    sub, ns = STAGED.sub_chunk, P["C"] // STAGED.sub_chunk
    ctas = P["B"] * P["H"] * (P["S"] // P["C"])
    off_diagonal_macs = ns * (ns - 1) // 2 * sub * sub * P["D"]
    assert float(k["tensor_flops"]) == pytest.approx(2.0 * off_diagonal_macs * ctas)
    diagonal_fma = ns * sub * sub * P["D"]
    assert float(k["alu_ops"]) > diagonal_fma * ctas  # plus the gate exps and multiplies


def test_batched_gemm_shapes_come_from_the_einsums():
    w = get_workload("gla", **P)
    made = {e.name: e for e in w.cascade.einsums}
    sizes = w.cascade.rank_sizes(dict(w.params))
    nc = P["S"] // P["C"]
    assert _gemm_shape(made["KV"], sizes) == (P["B"] * P["H"] * nc, P["D"], P["Dv"], P["C"])
    assert _gemm_shape(made["OX"], sizes) == (P["B"] * P["H"] * nc, P["C"], P["Dv"], P["D"])
    assert _gemm_shape(made["OI"], sizes) == (P["B"] * P["H"] * nc, P["C"], P["Dv"], P["C"])


def test_time_at_a_fixed_token_count_does_not_depend_on_the_length():
    times = []
    for s in (1024, 4096, 16384):
        rep = simulate_workload(
            "h100",
            "gla",
            params={**P, "B": 65536 // s, "S": s},
            dataflow="linear_chunked",
            knobs={"staged": 1},
            engine="analytic",
        )
        times.append(rep.result.seconds)
    assert max(times) / min(times) == pytest.approx(1.0, abs=0.02)


def test_staged_and_materialize_together_are_refused():
    with pytest.raises(MappingError, match="staged"):
        simulate_workload(
            "h100",
            "gla",
            params=P,
            dataflow="linear_chunked",
            knobs={"staged": 1, "materialize": 1},
            engine="analytic",
        )
