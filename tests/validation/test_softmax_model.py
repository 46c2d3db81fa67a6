"""PyTorch's softmax kernels: launch rules, instruction/issue constants, and times (check)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from archsim.gpu import dtype_bytes, evaluate_op, gpu_model
from archsim.gpu import softmax as sm
from validation.fit_softmax import FIT_RECORDS, fit, points

DATA = Path(__file__).resolve().parents[2] / "validation/data"


def _probes() -> list[dict]:
    return [
        r
        for r in map(json.loads, FIT_RECORDS.read_text().splitlines())
        if r.get("probe") == "softmax" and "kernels" in r
    ]


def test_launch_rule_names_the_kernel_pytorch_ran_at_every_width():
    for rec in _probes():
        launch = sm.softmax_launch(rec["rows"], rec["dim"], dtype_bytes(rec["dtype"]))
        k = rec["kernels"][0]
        assert launch.kernel in k["name"], (rec["dim"], k["name"])
        assert launch.threads == int(np.prod(k["block"])), rec["dim"]
        assert launch.ctas == k["grid"][0], rec["dim"]


def test_register_path_occupancy_follows_its_registers():
    # 1024 threads: 2 CTAs per SM up to reg_cnt 6 (<= 32 registers), 1 CTA from reg_cnt 8
    assert sm.softmax_launch(1, 4096, 2).regs <= 32
    assert sm.softmax_launch(1, 8192, 2).regs > 32


def test_constants_are_the_fit_on_the_committed_counters():
    inst, em, w0 = fit(points())
    for path, c in inst.items():
        assert np.allclose(c, sm.INSTRUCTIONS[path], rtol=0.01, atol=1.0), path
    assert em == pytest.approx(sm.ISSUE_MAX, rel=0.01)
    assert w0 == pytest.approx(sm.ISSUE_WARPS, rel=0.01)


def test_kernel_times_of_the_probe_within_10_percent_mape():
    model = gpu_model("h100")
    errs = []
    for p in points():
        cost = sm.softmax_cost(model, rows=p["rows"], cols=p["dim"], dtype=p["dtype"])
        t = evaluate_op([cost], model).kernels[0].time_s * 1e6
        errs.append(abs(t / p["kernel_us"] - 1))
    assert np.mean(errs) < 0.10


def test_issue_bound_so_the_h200_is_no_faster_than_the_h100():
    # measured: the unfused records' softmax takes the same time on both GPUs (1.29 TB/s
    # effective at 4096 on both); a bandwidth-bound model would make the H200 1.4x faster
    recs = [
        json.loads(x)
        for x in (DATA / "h200_check.jsonl").read_text().splitlines()
        if '"attn_unfused"' in x
    ]
    assert recs
    h200 = gpu_model("h200")
    errs = []
    for r in recs:
        rows, cols = r["B"] * r["H"] * r["S"], r["S"]
        cost = sm.softmax_cost(h200, rows=rows, cols=cols)
        errs.append(evaluate_op([cost], h200).time_s * 1e3 / r["ms_softmax"] - 1)
    # the warp path at width 1024 is near the bandwidth limit too, and runs 11% faster on
    # the H200 than on the H100: the model, issue-bound there, is +18..+20% (documented)
    assert np.mean(np.abs(errs)) < 0.10
    assert max(np.abs(errs)) < 0.22
