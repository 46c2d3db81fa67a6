"""``linear_chunked``: the chunked linear-attention kernel maps the cascade it is given.

Counts equal :func:`workloads.count`, time grows linearly in the sequence length (the state
walk is sequential per CTA, the grid does not grow), the intra-chunk scores are recomputed
per value block, and cascades without the chunked structure are refused by name.
"""

import re

import pytest

from archsim.errors import MappingError
from mappings import simulate_workload
from mappings._api import FileWorkload
from mappings._gpu.linear import chunk_roles
from workloads import count, get_workload, parse_cascade


def _run(workload, params, arch="h100", **kw):
    return simulate_workload(
        arch, workload, params=params, dataflow="linear_chunked", engine="analytic", **kw
    )


@pytest.mark.parametrize("materialize", [0, 1])
@pytest.mark.parametrize(
    ("workload", "params"),
    [
        ("linear", {"B": 2, "H": 4, "S": 1024, "D": 64, "C": 64}),  # chunks divide
        ("linear", {"B": 1, "H": 3, "S": 1000, "D": 64, "Dv": 96, "C": 64}),  # last chunk partial
        ("linear", {"B": 1, "H": 2, "S": 777, "D": 128, "C": 32, "decay": 0.9}),  # decay tables
        ("gla", {"B": 2, "H": 2, "S": 1000, "D": 128, "C": 64}),  # gates: exp, scan, chunk totals
    ],
)
def test_op_counts_equal_workloads_count(workload, params, materialize):
    rep = _run(workload, params, knobs={"materialize": materialize})
    c = count(get_workload(workload, **params).cascade)
    ops = rep.plan.meta["ops"]
    assert ops["mac"] == pytest.approx(c.macs, rel=1e-12)
    for kind, v in c.ops.items():
        assert ops[kind] == pytest.approx(v, rel=1e-12), kind
    assert set(ops) == {"mac", *(k for k, v in c.ops.items() if v)}


def test_time_is_linear_in_sequence_length():
    shape = {"B": 8, "H": 16, "D": 128}
    t = {s: _run("linear", {**shape, "S": s}).result.seconds for s in (8192, 16384)}
    assert t[16384] / t[8192] == pytest.approx(2.0, rel=0.05)
    rep = _run("linear", {**shape, "S": 16384})
    assert rep.plan.meta["ctas"] == 8 * 16 * 4  # batch x heads x value blocks of 32
    assert rep.plan.meta["chunks"] == 16384 // 64


def test_scores_are_recomputed_once_per_value_block():
    p = {"B": 1, "H": 2, "S": 512, "D": 128, "C": 64}
    one = _run("linear", p, knobs={"value_block": 128}).plan.meta["kernels"][0]["tensor_flops"]
    four = _run("linear", p, knobs={"value_block": 32}).plan.meta["kernels"][0]["tensor_flops"]
    dense_scores = 1 * 2 * (512 // 64) * 64 * 64 * 128  # MACs of Q_c K_c^T tiles, all chunks
    assert four - one == pytest.approx(2.0 * 3 * dense_scores, rel=1e-9)


def test_roles_come_from_the_cascade_not_from_parameter_names():
    cr = chunk_roles(get_workload("linear", S=256).cascade)
    assert (cr.query_chunk, cr.key_chunk, cr.state) == ("pc", "mc", "ST")
    assert cr.per_cta == ("b", "h")
    w = get_workload("linear", S=256)
    text = w.definition.build(w.params)
    renamed = parse_cascade(re.sub(r"\bpc\b", "qb", text), name="renamed")
    assert chunk_roles(renamed).query_chunk == "qb"


def test_refuses_softmax_attention_by_the_missing_chunk_structure():
    with pytest.raises(MappingError, match="query rank chunked"):
        _run("mha", {"B": 1, "H": 2, "Sq": 512, "Skv": 512, "D": 64})


def test_refuses_a_cascade_without_inter_chunk_state():
    text = """
param B = 1
param H = 2
param S = 256
param D = 64
rank b : B
rank h : H
rank e : D
rank f : D
rank p : S
rank m : S
tensor Q[b,h,p,e] : bf16
tensor K[b,h,m,e] : bf16
tensor V[b,h,m,f] : bf16
A[b,h,p,m] = Q[b,h,p,e] * K[b,h,m,e] if m <= p
O[b,h,p,f] = A[b,h,p,m] * V[b,h,m,f]
"""
    c = parse_cascade(text, name="quadratic_linear")
    w = FileWorkload("quadratic_linear", c, dict(c.params), c.rank_sizes())
    with pytest.raises(MappingError, match="key rank split into chunks"):
        _run(w, {})


def test_refuses_gemm_and_non_gpu_architectures():
    with pytest.raises(MappingError, match="attention structure"):
        _run("gemm", {})
    with pytest.raises(MappingError, match="GPU"):
        _run("linear", {"S": 256}, arch="fusemax")


def test_materialized_form_writes_every_chunk_state_and_runs_one_cta_per_chunk():
    p = {"B": 2, "H": 4, "S": 1024, "D": 128, "C": 64}
    rep = _run("linear", p, knobs={"materialize": 1})
    state, out = rep.plan.meta["kernels"]
    chunks, heads = 1024 // 64, 2 * 4
    assert state["ctas"] == heads * 4  # value blocks of 32 walk the chunks
    assert out["ctas"] == heads * 4 * chunks  # one CTA per chunk and value block
    c = count(get_workload("linear", **p).cascade)
    assert rep.plan.meta["ops"]["mac"] == pytest.approx(c.macs, rel=1e-12)
    from archsim import load_arch
    from mappings._gpu._common import model_for
    from mappings._gpu.linear import chunk_kernel

    k = chunk_kernel(get_workload("linear", **p), model_for(load_arch("h100")), materialize=True)
    st_bytes = heads * chunks * 128 * 128 * 2  # ST[b,h,mc,e,f] at its 16-bit dtype
    assert k.costs[0].dram_write_bytes == pytest.approx(st_bytes)
    assert k.costs[1].dram_read_bytes >= st_bytes


def test_gates_cost_sfu_time_not_macs():
    p = {"B": 8, "H": 16, "S": 2048, "D": 128}
    lin, gla = _run("linear", p), _run("gla", p)
    assert gla.plan.meta["ops"]["mac"] == lin.plan.meta["ops"]["mac"]
    assert gla.plan.meta["ops"]["exp"] > 0
    assert gla.plan.meta["chunk_roles"]["state"] == "ST"
    assert gla.result.seconds > lin.result.seconds
