"""GEMM on the TPU-like systolic array against SCALE-Sim's closed form.

SCALE-Sim (Samajdar et al., arXiv:1811.02883 2018; ISPASS 2020, Eq. 1; scale-sim-v2's
systolic_compute_{os,ws,is}.py): an Sr x Sc array takes ceil(Sr'/Sr) * ceil(Sc'/Sc) folds of
(2*Sr + Sc + T - 2) cycles weight/input stationary (the stationary operand is preloaded) and
(Sr + Sc + T - 2) output stationary (nothing preloaded), with (Sr', Sc', T) = (M, N, K)
output-, (K, N, M) weight-, (K, M, N) input-stationary. ``data/scalesim_gemm.csv`` holds
SCALE-Sim 3.0.0's own figures for a few shapes and two array sizes.
"""

from __future__ import annotations

import csv
import math
from pathlib import Path

import pytest

from mappings import simulate_workload
from mappings._gemm import systolic_cycles
from workloads import parse_cascade

from .conftest import make_gemm

_DF = {"os": "output", "ws": "weight", "is": "input"}


def _scalesim_reference() -> list[dict[str, object]]:
    path = Path(__file__).parent / "data" / "scalesim_gemm.csv"
    lines = [ln for ln in path.read_text().splitlines() if ln and not ln.startswith("#")]
    return [
        {k: (v if k == "dataflow" else int(v)) for k, v in row.items()}
        for row in csv.DictReader(lines)
    ]


SCALESIM = _scalesim_reference()


def scalesim(m: int, n: int, k: int, rows: int, cols: int, stationary: str, arrays: int) -> int:
    sr_, sc_, t = {"output": (m, n, k), "weight": (k, n, m), "input": (k, m, n)}[stationary]
    folds = math.ceil(sr_ / rows) * math.ceil(sc_ / cols)
    preload = 0 if stationary == "output" else rows
    return math.ceil(folds / arrays) * (preload + rows + cols + t - 2)


def test_closed_form_by_hand():
    # 128x128 array, output stationary, M=N=256, K=64: 4 folds of 128+128+64-2 = 318
    assert systolic_cycles(256, 256, 64, 128, 128, "output") == (4, 318)
    # weight stationary: K=64 rows (1 fold), N=256 cols (2 folds), T=M=256
    assert systolic_cycles(256, 256, 64, 128, 128, "weight") == (2, 2 * 128 + 128 + 256 - 2)


@pytest.mark.parametrize(
    "ref", SCALESIM, ids=[f"{r['dataflow']}-{r['rows']}x{r['cols']}-{r['m']}" for r in SCALESIM]
)
def test_closed_form_is_scalesims_cycle_count(ref):
    # SCALE-Sim's "Total Cycles" is the index of the last cycle: folds * fold_cycles - 1.
    # Output stationary used the weight-stationary fold (2*Sr + Sc + T - 2) before: 10-25%
    # above SCALE-Sim (6119 -> 7655 for 512x384x256 on 128x128)
    folds, per = systolic_cycles(
        ref["m"], ref["n"], ref["k"], ref["rows"], ref["cols"], _DF[ref["dataflow"]]
    )
    assert folds * per - 1 == ref["scalesim_total_cycles"]


@pytest.mark.parametrize("engine", ["analytic", "event"])
@pytest.mark.parametrize("dataflow", ["os", "ws", "is"])
def test_one_mxu_matches_scalesim_reference_to_a_cycle(tpu, dataflow, engine):
    # one 128x128 MXU, operands already on chip (SCALE-Sim's setting): SCALE-Sim's own cycles
    one = tpu.with_updates({"compute.mxu.instances": 1})
    for ref in (r for r in SCALESIM if r["dataflow"] == dataflow and r["rows"] == 128):
        rep = simulate_workload(
            one,
            make_gemm(ref["m"], ref["n"], ref["k"]),
            dataflow="gemm",
            engine=engine,
            knobs={"stationary": _DF[dataflow], "operands": "sram"},
        )
        assert abs(rep.result.cycles - (ref["scalesim_total_cycles"] + 1)) <= 1, ref


@pytest.mark.parametrize("stationary", ["output", "weight", "input"])
@pytest.mark.parametrize("shape", [(512, 384, 256), (1000, 700, 300), (256, 1024, 96)])
@pytest.mark.parametrize("engine", ["analytic", "event"])
def test_tpu_like_matches_scalesim_with_operands_on_chip(tpu, stationary, shape, engine):
    rep = simulate_workload(
        tpu,
        make_gemm(*shape),
        dataflow="gemm",
        engine=engine,
        knobs={"stationary": stationary, "operands": "sram"},
    )
    mxu = tpu.unit("mxu")
    want = scalesim(*shape, *mxu.mesh, stationary, mxu.instances)
    assert rep.result.cycles == pytest.approx(want, rel=0.01)


@pytest.mark.parametrize("stationary", ["output", "weight"])
def test_tpu_like_with_dram_operands_stays_within_2_percent_of_scalesim(tpu, stationary):
    # operands stream from HBM; double buffering hides all but the first load / last store
    shape = (4096, 512, 4096)
    rep = simulate_workload(
        tpu, make_gemm(*shape), dataflow="gemm", engine="event", knobs={"stationary": stationary}
    )
    mxu = tpu.unit("mxu")
    want = scalesim(*shape, *mxu.mesh, stationary, mxu.instances)
    assert want <= rep.result.cycles <= 1.02 * want
    compulsory = 2 * (4096 * 4096 + 4096 * 512 + 4096 * 512)
    assert rep.result.dram_bytes >= compulsory


def test_unknown_stationarity_is_a_mapping_error(tpu):
    from archsim.errors import MappingError

    with pytest.raises(MappingError, match="knobs.stationary"):
        simulate_workload(
            tpu,
            make_gemm(64, 64, 64),
            dataflow="gemm",
            knobs={"stationary": "diagonal"},
            engine="analytic",
        )


@pytest.mark.parametrize(
    ("workload", "match"), [("swiglu", "single contraction"), ("softmax", "Einsum")]
)
def test_gemm_refuses_a_cascade_that_is_not_one_contraction(tpu, workload, match):
    # a GEMM dataflow given SwiGLU (3 Einsums) or a softmax (no contraction) must say so,
    # not time one of the Einsums as if it were the workload
    from archsim.errors import MappingError

    with pytest.raises(MappingError, match=match) as err:
        simulate_workload(tpu, workload, dataflow="gemm", engine="analytic")
    assert err.value.path == "workload.cascade"


def test_gemm_reads_m_n_k_from_the_contraction_not_parameter_names(tpu):
    # the same GEMM with other rank/parameter names: rows x cols x reduction read by role
    text = "tensor X[t,d] : bf16\ntensor W[d,o] : bf16\nY[t,o] = X[t,d] * W[d,o]\n"
    c = parse_cascade(text, name="proj", params={"T": 96, "D": 160, "O": 224})
    from mappings._api import FileWorkload

    renamed = FileWorkload("proj", c, dict(c.params), c.rank_sizes())
    a = simulate_workload(tpu, renamed, dataflow="gemm", engine="analytic")
    b = simulate_workload(tpu, make_gemm(96, 224, 160), dataflow="gemm", engine="analytic")
    assert a.result.cycles == b.result.cycles
    assert a.plan.meta["macs"] == 96 * 224 * 160
