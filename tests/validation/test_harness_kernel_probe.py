"""kernel_probe's wave_tail_ncu probes and its ncu metric-name handling (no GPU needed)."""

from __future__ import annotations

from validation.harness.kernel_probe import (
    NCU_PROBES,
    PROBES,
    WAVE_TAIL_NCU_EXTRA,
    listed_metric_bases,
    rejected_metrics,
)


def test_wave_tail_ncu_probes_hold_one_and_two_ctas_per_sm_unsplit():
    """FA2 does not split when B*H*ceil(Sq/64) >= 0.8 * 2 * 132; its grid is B*H CTAs."""
    probes = [p for p in PROBES if p["probe"] == "wave_tail_ncu"]
    assert {(p["D"], p["B"], p["Sq"]) for p in probes} == {
        (d, b, sq) for d in (64, 128) for b, sq in ((66, 1), (66, 65), (33, 65))
    }
    for p in probes:
        assert p["backend"] == "flash"
        assert p["Hq"] == p["Hkv"] == 4
        assert p["Skv"] == 16384
        assert p["B"] * p["Hq"] * -(-p["Sq"] // 64) >= 0.8 * 2 * 132
        assert p["B"] * p["Hq"] in (132, 264)
        assert p in NCU_PROBES


def test_query_metrics_listing_gives_base_names():
    text = (
        "Device NVIDIA H100 80GB HBM3 (GH100)\n"
        "----------------------------------------------- ------------------\n"
        "Metric Name                                     Metric Description\n"
        "sm__pipe_tensor_op_hmma_cycles_active           # of cycles where HMMA pipe was active\n"
        "smsp__inst_executed_pipe_xu                     # of warp instructions (xu pipe)\n"
    )
    assert listed_metric_bases(text) == {
        "sm__pipe_tensor_op_hmma_cycles_active",
        "smsp__inst_executed_pipe_xu",
    }


def test_rejected_metrics_matches_whole_base_names_only():
    cands = (
        "smsp__inst_executed_pipe_tensor.sum",
        "smsp__inst_executed_pipe_tensor_op_hmma.sum",
        "sm__ctas_launched.max",
    )
    err = "==ERROR== Failed to find metric smsp__inst_executed_pipe_tensor_op_hmma.sum\n"
    assert rejected_metrics(err, cands) == ["smsp__inst_executed_pipe_tensor_op_hmma.sum"]
    assert rejected_metrics("==ERROR== out of memory", cands) == []


def test_wave_tail_extras_name_the_mechanisms_the_brief_separates():
    joined = " ".join(WAVE_TAIL_NCU_EXTRA)
    for part in ("tensor", "pipe_xu", "pipe_fma", "warps_eligible", "issue_active"):
        assert part in joined
