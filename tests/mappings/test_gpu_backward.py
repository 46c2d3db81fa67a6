"""Attention backward as a key-outer recipe over the gradient cascade (issue 10): counts
are the cascade's, plain MHA/GQA reproduce the calibrated kernel model, a window costs in
proportion to itself, and what the recipe cannot map is refused naming the property."""

import pytest

from archsim import load_arch
from archsim.errors import MappingError
from archsim.gpu import attention_bwd_costs
from mappings import simulate_workload
from mappings._gpu._common import model_for
from mappings._gpu._run import run_kernels
from workloads import count, get_workload
from workloads._grad import attention_backward

ARCH = "h100"
FAMILY = {"flash2": "flash2", "flash3": "flash3", "mem_efficient": "efficient"}


def _run(workload, params, dataflow="flash2", **kw):
    return simulate_workload(
        ARCH, workload, params=params, dataflow=dataflow, engine="analytic", **kw
    )


def _main_seconds(rep):
    """Seconds the engine gave the key-outer kernel (its launch included)."""
    return rep.result.meta["kernel_seconds"][_main(rep)["phase"]]


def _main(rep):
    """The key-outer kernel (after the preprocess kernel)."""
    k = rep.plan.meta["kernels"][1]
    assert k["pass"] == "bwd"
    return k


@pytest.mark.parametrize("dataflow", sorted(FAMILY))
@pytest.mark.parametrize("causal", [False, True])
@pytest.mark.parametrize("seq", [1024, 1000])  # tiles that divide and tiles that do not
def test_program_ops_equal_the_gradient_cascade_count(dataflow, causal, seq):
    p = {"B": 1, "H": 4, "Sq": seq, "Skv": seq, "D": 64, "causal": causal}
    rep = _run("mha_bwd", p, dataflow)
    assert rep.plan.meta["roles"]["query"] == "m"  # a CTA's rows are keys; trips walk queries
    w = get_workload("mha_bwd", **p)
    c = count(w.cascade)
    ops = rep.plan.program.meta["ops"]
    assert ops["mac"] == pytest.approx(c.macs, rel=1e-12)
    for kind, n in c.ops.items():
        assert ops[kind] == pytest.approx(n, rel=1e-12), kind
    # the dQ atomics are the kernel's, beside the cascade's ops: one add per element per trip
    bm, bn = (int(x) for x in rep.plan.meta["tile"].split("x"))
    dense_trips = 4 * -(-seq // bn) * -(-seq // bm)
    if causal:
        assert ops["atomic_add"] < 0.6 * dense_trips * bm * 64
    else:
        assert ops["atomic_add"] == pytest.approx(dense_trips * bm * 64)
    # the tensor cores run the 5 contractions of every (dense) tile a CTA visits
    core_macs = c.macs - c.einsum("DELTA").macs
    executed = _main(rep)["tensor_flops"] / 2
    assert executed >= core_macs * (1 - 1e-12)
    if not causal and seq == 1024:
        assert executed == pytest.approx(core_macs, rel=1e-12)


@pytest.mark.parametrize("dataflow", sorted(FAMILY))
@pytest.mark.parametrize("causal", [False, True])
@pytest.mark.parametrize(("H", "Hkv", "S", "D"), [(16, 16, 1024, 64), (32, 8, 4096, 128)])
def test_pass_bwd_on_the_forward_cascade_matches_the_calibrated_kernel_model(
    dataflow, causal, H, Hkv, S, D
):
    p = {"B": 2, "H": H, "Hkv": Hkv, "S": S, "D": D, "causal": causal}
    rep = _run("gqa", p, dataflow, knobs={"pass_": "bwd"})
    model = model_for(load_arch(ARCH))
    ref = attention_bwd_costs(
        model, B=2, Hq=H, Hkv=Hkv, Sq=S, Skv=S, D=D, causal=causal, family=FAMILY[dataflow]
    )
    want = run_kernels(ref, model, load_arch(ARCH), engine="analytic").time_s
    assert rep.result.seconds == pytest.approx(want, rel=0.02)
    names = [k["name"] for k in rep.plan.meta["kernels"]]
    assert names == [k.name for k in ref]  # preprocess, main, dQ convert (+ GQA reduce)
    assert ("reduce_kernel" in names) == (Hkv < H)
    # the same answer from the library gradient cascade
    same = _run("gqa_bwd", p, dataflow)
    assert same.result.seconds == pytest.approx(rep.result.seconds, rel=1e-12)


WINDOW = """
param B = 1
param H = 8
param S = 8192
param D = 128
param W = 1024
param M0 = 128
rank m -> m1, m0 : M0
rank p : S
rank m : S
rank e : D
rank f : D
tensor Q[b,h,p,e] : bf16
tensor K[b,h,m,e] : bf16
tensor V[b,h,m,f] : bf16
QK[b,h,m1,m0,p] = Q[b,h,p,e] * K[b,h,m1,m0,e] if m <= p and p - m < W
LM[b,h,m1,p] = max(m0) QK[b,h,m1,m0,p]
RM[b,h,m1+1,p] = max(RM[b,h,m1,p], LM[b,h,m1,p]) init -inf
SLN[b,h,m1,m0,p] = exp(QK[b,h,m1,m0,p] - RM[b,h,m1+1,p])
PRM[b,h,m1,p] = exp(RM[b,h,m1,p] - RM[b,h,m1+1,p])
SLD[b,h,m1,p] = sum(m0) SLN[b,h,m1,m0,p]
SPD[b,h,m1,p] = PRM[b,h,m1,p] * RD[b,h,m1,p]
RD[b,h,m1+1,p] = SPD[b,h,m1,p] + SLD[b,h,m1,p] init 0
SPNV[b,h,m1,p,f] = PRM[b,h,m1,p] * RNV[b,h,m1,p,f]
SLNV[b,h,m1,p,f] = sum(m0) SLN[b,h,m1,m0,p] * V[b,h,m1,m0,f]
RNV[b,h,m1+1,p,f] = SPNV[b,h,m1,p,f] + SLNV[b,h,m1,p,f] init 0
AV[b,h,p,f] = RNV[b,h,M1,p,f] / RD[b,h,M1,p]
"""


def test_a_sliding_window_backward_costs_in_proportion_to_its_window(tmp_path):
    path = tmp_path / "window.cascade"
    path.write_text(WINDOW)
    t = {}
    for w in (512, 2048):
        rep = _run(str(path), {"W": w}, "flash2", knobs={"pass_": "bwd"})
        t[w] = _main_seconds(rep)
        assert rep.plan.meta["backward"]["masked"] == 1.0
    assert t[2048] / t[512] == pytest.approx(4.0, rel=0.25)
    full = _run(str(path), {"W": 8192}, "flash2", knobs={"pass_": "bwd"})
    live = {w: sum(min(i + 1, w) for i in range(8192)) for w in (2048, 8192)}
    ratio = _main_seconds(full) / t[2048]
    assert ratio == pytest.approx(live[8192] / live[2048], rel=0.15)  # causal only at W = S


def test_a_cascade_without_softmax_or_sigmoid_is_refused_naming_it():
    with pytest.raises(MappingError, match="softmax over the key rank"):
        _run("linear", {}, "flash2", knobs={"pass_": "bwd"})


def test_block_sparsity_in_the_gradient_is_refused_by_a_dense_family():
    p = {"B": 1, "H": 4, "Sq": 1024, "Skv": 1024, "D": 64, "density": 0.5, "block": 64}
    with pytest.raises(MappingError, match="sparsity"):
        _run("block_sparse", p, "flash3", knobs={"pass_": "bwd"})


def test_an_unknown_pass_is_refused():
    with pytest.raises(MappingError, match="pass_"):
        _run("mha", {"S": 1024}, "flash2", knobs={"pass_": "both"})


def test_a_saved_backward_mapping_runs_back_and_an_oversized_tile_is_refused():
    p = {"B": 1, "H": 8, "S": 2048, "D": 128, "causal": True}
    rep = _run("mha_bwd", p, "auto")
    assert rep.dataflow == "flash3"
    again = _run("mha_bwd", p, mapping=rep.plan.mapping)
    assert again.result.seconds == rep.result.seconds
    m = rep.plan.mapping
    core = next(g for g in m.groups if "S" in g.einsums)
    rf = core.levels[2]

    def with_rows(rows):
        bad_rf = rf.model_copy(update={"temporal": {**rf.temporal, "p": rows}})
        hbm = core.levels[0].model_copy(update={"temporal": {"p": 2048 // rows}})
        tiled = core.model_copy(update={"levels": (hbm, core.levels[1], bad_rf)})
        groups = tuple(tiled if g is core else g for g in m.groups)
        return m.model_copy(update={"groups": groups})

    # another tile of the family runs (its CTA from the family's own, smaller here)
    small = _run("mha_bwd", p, mapping=with_rows(32))
    assert small.plan.meta["tile"] == "32x128"
    assert small.plan.meta["cta"]["smem_bytes"] < rep.plan.meta["cta"]["smem_bytes"]
    # a tile whose CTA overflows shared memory is refused naming it
    with pytest.raises(MappingError, match="overflow shared memory"):
        _run("mha_bwd", p, mapping=with_rows(256))


def test_the_derived_gradient_is_the_library_one():
    fwd = get_workload("mha", B=1, H=2, S=64, D=16, causal=True)
    lib = get_workload("mha_bwd", B=1, H=2, S=64, D=16, causal=True)
    assert count(attention_backward(fwd.cascade)).ops == count(lib.cascade).ops
