"""The spine: a dataflow maps the cascade it is given, counts its work from the cascade's
Einsums, and refuses (naming the missing property) what it cannot map."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from archsim.errors import MappingError
from mappings import simulate_workload
from mappings._roles import attention_roles
from mappings._stream import StreamTiling, stream_work
from workloads import count, get_workload

ROOT = Path(__file__).resolve().parents[2]
WINDOW = ROOT / "examples" / "cascades" / "sliding_window.ein"
SIGMOID = ROOT / "examples" / "cascades" / "sigmoid.ein"
ALL_SKIPS = frozenset({"condition", "block", "slice"})


def _cycles(arch: str, workload: object, dataflow: str = "auto", **params: object) -> object:
    return simulate_workload(arch, workload, params=params, dataflow=dataflow, engine="analytic")


# --- roles are found from the Einsums, whatever the names ---------------------------------
@pytest.mark.parametrize(
    ("name", "query", "key", "batch", "pre", "post"),
    [
        ("mha", "p", "m", ("b", "h"), (), ()),
        ("gqa", "p", "m", ("b", "hkv"), (), ()),
        ("mla", "p", "m", ("b",), ("QC",), ("O",)),
        ("cca", "p", "m", ("b", "h"), ("Q", "K", "V"), ("O",)),
        ("linear", "pi", "m", ("b", "h", "pc"), ("KV", "ST", "OX"), ()),
    ],
)
def test_roles_of_library_cascades(name, query, key, batch, pre, post):
    r = attention_roles(get_workload(name).cascade)
    assert (r.query, r.key, r.batch, r.pre, r.post) == (query, key, batch, pre, post)


def test_roles_use_the_users_names():
    from workloads import parse_cascade

    r = attention_roles(parse_cascade(WINDOW.read_text(), name="w"))
    assert (r.query, r.key, r.key_outer, r.key_inner, r.batch) == ("i", "j", "jt", "jk", ("n", "a"))
    assert r.rows == ("RM", "PRM", "SD", "RD", "SO", "RO")
    assert r.epilogue == ("O",)


@pytest.mark.parametrize("name", ["gemm", "swiglu", "rmsnorm", "layernorm", "softmax"])
def test_non_attention_cascades_are_refused_by_name_of_the_missing_structure(name):
    with pytest.raises(MappingError, match="no attention structure"):
        attention_roles(get_workload(name).cascade)


# --- counts: the program runs exactly the cascade's work ----------------------------------
def _program_ops(program) -> dict[str, float]:
    """Useful ops the program computes (trips x per-trip ops), MACs merged under ``mac``."""
    out: dict[str, float] = {}
    for ph in program.phases:
        trips = float(np.sum(ph.trips)) * (1 if np.ndim(ph.trips) else ph.work_items)
        for c in ph.body.compute:
            for k, v in c.ops.items():
                key = "mac" if k.startswith("mac") else "ops"
                out[key] = out.get(key, 0.0) + v * trips
    return out


@pytest.mark.parametrize("causal", [False, True])
@pytest.mark.parametrize("shape", [dict(S=1024, D=64), dict(S=1000, D=64)])
@pytest.mark.parametrize("name", ["mha", "gqa", "sqa", "cca", "mla", "linear", "decode"])
def test_fusemax_program_runs_exactly_the_counted_work(name, shape, causal):
    params = {"B": 2, "H": 4, **shape, "causal": causal}
    if name == "gqa":
        params["Hkv"] = 2
    if name == "sqa":
        params["Hq"] = 2
    if name == "mla":
        params = {"B": 2, "H": 4, "S": shape["S"], "causal": causal}
    if name == "decode":
        params = {"B": 2, "H": 4, "Skv": shape["S"], "D": 64}
    if name == "linear":
        params = {"B": 2, "H": 4, "S": shape["S"], "D": 64}
    w = get_workload(name, **params)
    rep = simulate_workload("fusemax", w, dataflow="fusemax", engine="analytic")
    m0 = rep.plan.meta["m0"]
    counts = count(w.cascade, {**rep.plan.meta.get("params", {}), **_split(w, m0)})
    got = _program_ops(rep.plan.program)
    skipped = rep.plan.meta["skipped_ops"]
    # work the cascade writes on tiles with no live point (running-state rescales by
    # exp(0) = 1, MLA's score parts before the causal sum) is skipped and reported
    assert got["mac"] + skipped.get("mac", 0.0) == pytest.approx(counts.macs, rel=1e-9)
    if not causal:
        assert "mac" not in skipped
    other = sum(counts.ops.values()) - sum(v for k, v in skipped.items() if k != "mac")
    assert got["ops"] == pytest.approx(other, rel=1e-9)
    assert rep.plan.meta["ops"]["mac"] == pytest.approx(counts.macs, rel=1e-9)


def _split(w, m0: int) -> dict[str, int]:
    r = attention_roles(w.cascade)
    return (
        {r.key_split_param: m0} if r.key_split_param and r.key_outer in _score(w, r).ranks else {}
    )


def _score(w, r):
    return next(e for e in w.cascade.einsums if e.name == r.score)


def test_stream_work_counts_equal_count_for_tiles_that_do_not_divide():
    w = get_workload("mha", B=1, H=3, S=1000, D=64, causal=True)
    sw = stream_work(w, StreamTiling(96, 80, ALL_SKIPS))
    c = count(w.cascade, sw.params)
    assert sw.useful_ops()["mac"] == pytest.approx(c.macs)
    assert sum(v for k, v in sw.useful_ops().items() if k != "mac") == pytest.approx(
        sum(c.ops.values())
    )
    # causal: query block j of 96 rows needs key tiles 0 .. (96 j + 95) // 80
    rows = np.minimum(np.arange(11) * 96 + 95, 999)
    assert list(sw.trips[:11]) == list(rows // 80 + 1)


# --- variants behave as physics says ------------------------------------------------------
def test_sqa_with_a_quarter_of_the_query_heads_costs_a_quarter():
    mha = _cycles("fusemax", "mha", "fusemax", B=1, H=32, S=4096, D=64).result.cycles
    sqa = _cycles("fusemax", "sqa", "fusemax", B=1, H=32, Hq=8, S=4096, D=64).result.cycles
    assert sqa <= 0.3 * mha


def test_gqa_shares_the_key_value_stream_across_its_group():
    mha = _cycles("fusemax", "mha", "fusemax", B=1, H=32, S=4096, D=64).result
    gqa = _cycles("fusemax", "gqa", "fusemax", B=1, H=32, Hkv=8, S=4096, D=64).result
    kv_mha = 2 * 32 * 4096 * 64 * 2
    assert mha.dram_bytes - gqa.dram_bytes == pytest.approx(kv_mha * 3 / 4, rel=1e-6)


@pytest.mark.parametrize("density", [0.25, 0.5])
def test_block_sparsity_with_tile_sized_blocks_costs_density_times_dense(density):
    kw = dict(B=1, H=8, S=4096, D=64, block=256)
    dense = _cycles("fusemax", "block_sparse", "fusemax", density=1.0, **kw).result.cycles
    sparse = _cycles("fusemax", "block_sparse", "fusemax", density=density, **kw).result.cycles
    assert sparse / dense == pytest.approx(density, rel=0.2)


def test_small_random_blocks_cannot_be_skipped_by_big_tiles():
    # a 256x256 tile holds 16 random 64x64 blocks: live with probability 1 - 0.75^16 = 0.99
    rep = _cycles("fusemax", "block_sparse", "fusemax", B=1, H=8, S=4096, D=64, density=0.25)
    assert "0.990 of 256x256 tiles live" in rep.plan.notes


def test_linear_attention_overtakes_softmax_attention_beyond_a_crossover():
    def ratio(s: int) -> float:
        lin = _cycles("fusemax", "linear", "auto", B=1, H=8, S=s, D=64).result.cycles
        soft = _cycles("fusemax", "mha", "fusemax", B=1, H=8, S=s, D=64).result.cycles
        return lin / soft

    assert ratio(256) > 1.0 > ratio(8192)


def test_sliding_window_costs_in_proportion_to_the_window():
    reps = {w: _cycles("fusemax", WINDOW, "auto", W=w, L=8192) for w in (512, 2048)}
    assert all(r.dataflow == "fusemax" for r in reps.values())
    trips = {w: r.plan.meta["trips"] for w, r in reps.items()}
    # 8 heads x 32 query blocks of 256 rows; block j needs min(j, W/256) + 1 key tiles
    assert trips[512] == 8 * (1 + 2 + 3 * 30)
    assert trips[2048] == 8 * (36 + 9 * 24)
    cyc = {w: r.result.cycles for w, r in reps.items()}
    assert 2.0 < cyc[2048] / cyc[512] <= 3.0


def test_sigmoid_attention_counts_sigmoids_and_no_max_or_sum_reduction():
    rep = _cycles("fusemax", SIGMOID, "auto")
    assert rep.dataflow == "fusemax"
    ops = rep.plan.meta["ops"]
    assert ops["sigmoid"] == 8 * 4096 * 4096
    assert "max" not in ops
    assert "exp" not in ops


# --- refusal instead of a wrong answer ----------------------------------------------------
def test_fusemax_refuses_a_three_pass_cascade():
    with pytest.raises(MappingError, match="needs 3 passes"):
        _cycles("fusemax", "mha", "fusemax", B=1, H=2, S=1024, D=64, passes=3)


def test_fusemax_refuses_a_gpu():
    with pytest.raises(MappingError, match="spatial dataflow"):
        _cycles("h100", "mha", "fusemax", B=1, H=2, S=1024, D=64)


def test_fusemax_refuses_a_cascade_that_is_not_attention():
    with pytest.raises(MappingError, match="no attention structure"):
        _cycles("fusemax", "softmax", "fusemax", R=256, N=256)


@pytest.mark.parametrize("name", ["softmax", "rmsnorm", "gemm", "swiglu", "layernorm"])
def test_auto_maps_every_library_cascade_on_a_spatial_array(name):
    rep = _cycles("fusemax", name, "auto")
    assert rep.result.cycles > 0
    assert rep.dataflow in ("gemm", "unfused", "flat")


def test_auto_tells_every_refusal_when_nothing_fits():
    with pytest.raises(MappingError) as exc:
        _cycles("hbm_pim", "mha", "auto", B=1, H=2, S=1024, D=64)
    assert "pim_decode" in str(exc.value)
    assert "pim_gemv" in str(exc.value)


def test_auto_chooses_by_the_cascade_and_a_knob_it_cannot_take_is_an_error():
    from archsim.errors import MappingError
    from mappings._api import simulate_workload

    params = {"S": 1024, "B": 1, "H": 2, "D": 64}
    rep = simulate_workload("fusemax", "mha", params=params, knobs={"m0": 128}, engine="analytic")
    assert rep.dataflow == "fusemax"
    assert rep.plan.meta["m0"] == 128
    # a knob only another recipe takes does not silently pick that recipe
    with pytest.raises(MappingError, match="unknown knob"):
        simulate_workload("fusemax", "mha", params=params, knobs={"softmax": "fused"})


def test_a_parameter_the_cascade_file_does_not_declare_is_refused():
    from pathlib import Path

    from archsim.errors import WorkloadError
    from mappings._api import resolve_workload

    path = Path(__file__).parents[2] / "examples" / "cascades" / "sliding_window.ein"
    with pytest.raises(WorkloadError, match=r"sliding_window\.ein\.S.*unknown parameter"):
        resolve_workload(str(path), {"S": 8192})  # the file calls its length L
    assert resolve_workload(str(path), {"L": 8192}).sizes["i"] == 8192


def test_memory_bound_kernel_reads_a_broadcast_operand_once(tmp_path):
    """A per-channel scale Y[t,d] = X[t,d] * G[d] reads X and G once each from DRAM (G is
    broadcast over t), not G once per output element."""
    T, Dm = 4096, 4096
    f = tmp_path / "scale.ein"
    f.write_text(
        f"param T = {T}\nparam Dm = {Dm}\nrank t : T\nrank d : Dm\n"
        "tensor X[t,d] : bf16\ntensor G[d] : bf16\nY[t,d] = X[t,d] * G[d]\n"
    )
    rep = simulate_workload("h100", str(f), dataflow="gpu_unfused", engine="analytic")
    (k,) = rep.plan.meta["kernels"]
    reads, writes = 2 * (T * Dm + Dm), 2 * T * Dm
    # writes of the last wave may stay in L2 (deferred); reads are exact
    assert reads <= k["dram_bytes"] <= reads + writes
