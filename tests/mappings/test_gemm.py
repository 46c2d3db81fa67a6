"""GEMM on the TPU-like systolic array against SCALE-Sim's closed form.

SCALE-Sim (Samajdar et al., arXiv:1811.02883 2018; ISPASS 2020, Eq. 1): an Sr x Sc array
takes (2*Sr + Sc + T - 2) cycles per fold and ceil(Sr'/Sr) * ceil(Sc'/Sc) folds, with
(Sr', Sc', T) = (M, N, K) output-, (K, N, M) weight-, (K, M, N) input-stationary.
"""

from __future__ import annotations

import math

import pytest

from mappings import simulate_workload
from mappings._gemm import systolic_cycles
from workloads import parse_cascade

from .conftest import make_gemm


def scalesim(m: int, n: int, k: int, rows: int, cols: int, stationary: str, arrays: int) -> int:
    sr_, sc_, t = {"output": (m, n, k), "weight": (k, n, m), "input": (k, m, n)}[stationary]
    folds = math.ceil(sr_ / rows) * math.ceil(sc_ / cols)
    return math.ceil(folds / arrays) * (2 * rows + cols + t - 2)


def test_closed_form_by_hand():
    # 128x128 array, output stationary, M=N=256, K=64: 4 folds of 2*128+128+64-2 = 446
    assert systolic_cycles(256, 256, 64, 128, 128, "output") == (4, 446)
    # weight stationary: K=64 rows (1 fold), N=256 cols (2 folds), T=M=256
    assert systolic_cycles(256, 256, 64, 128, 128, "weight") == (2, 2 * 128 + 128 + 256 - 2)


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
