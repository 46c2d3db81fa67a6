"""A decode reads only the keys it uses.

On a PIM stack the host issues MAC commands only for live keys, so what a decode cascade
masks is not streamed from the banks: a sliding window costs in proportion to its window, a
block- or slice-sparse score in proportion to its density. Before, both streamed the whole
cache (a sparse decode at density 0.25 took exactly the dense cycles, with no warning). On a
GPU the decode kernels walk and read only the live key tiles (a sliding-window decode was
charged the whole cache's DRAM bytes).

On a spatial array a group that skips a mask fills only the live key tiles.

A K/V cache that the host's projection writes (CCA's compressed keys) is held in the banks;
before, the lowering refused CCA decode, naming a ``keep`` it had itself written.
"""

from __future__ import annotations

import pytest

from archsim import load_arch
from mappings import Mapping, simulate_workload
from mappings._api import plan_for, resolve_workload

WINDOW_DECODE = """
param N = 1
param A = 8
param L = 4096
param P = 1
param C = 128
param T = 64
param W = 512
rank i : P
rank j : L
tensor Q[n,a,i,c] : bf16
tensor K[n,a,j,c] : bf16
tensor V[n,a,j,c] : bf16
rank j -> jt, jk : T
S[n,a,jt,jk,i] = Q[n,a,i,c] * K[n,a,jt,jk,c]  if i + L - 1 - j < W
LM[n,a,jt,i] = max(jk) S[n,a,jt,jk,i]
RM[n,a,jt+1,i] = max(RM[n,a,jt,i], LM[n,a,jt,i])  init -inf
E[n,a,jt,jk,i] = exp(S[n,a,jt,jk,i] - RM[n,a,jt+1,i])
PRM[n,a,jt,i] = exp(RM[n,a,jt,i] - RM[n,a,jt+1,i])
LD[n,a,jt,i] = sum(jk) E[n,a,jt,jk,i]
SD[n,a,jt,i] = PRM[n,a,jt,i] * RD[n,a,jt,i]
RD[n,a,jt+1,i] = SD[n,a,jt,i] + LD[n,a,jt,i]  init 0
SO[n,a,jt,i,c] = PRM[n,a,jt,i] * RO[n,a,jt,i,c]
LO[n,a,jt,i,c] = sum(jk) E[n,a,jt,jk,i] * V[n,a,jt,jk,c]
RO[n,a,jt+1,i,c] = SO[n,a,jt,i,c] + LO[n,a,jt,i,c]  init 0
O[n,a,i,c] = RO[n,a,JT,i,c] / max(RD[n,a,JT,i], 1e-30)
"""


def _run(workload, **params):
    return simulate_workload("hbm3_pim", workload, params=params, engine="analytic")


@pytest.mark.parametrize("name", ["block_sparse", "fg_sparse"])
def test_a_sparse_decode_streams_only_its_live_keys(name):
    dense = _run(name, Sq=1, Skv=4096, density=1.0)
    sparse = _run(name, Sq=1, Skv=4096, density=0.25)
    kind = "block" if name == "block_sparse" else "slice"
    assert kind in sparse.plan.mapping.groups[0].skip  # the recipe binds the annotation
    ratio = sparse.plan.program.meta["in_bank_bytes"] / dense.plan.program.meta["in_bank_bytes"]
    assert ratio == pytest.approx(0.25, abs=0.03)
    # the interface crossings (query in, scores out) do not shrink: a little above d x dense
    assert 0.25 < sparse.result.cycles / dense.result.cycles < 0.35


def test_the_same_mapping_without_its_skip_streams_the_whole_cache():
    sparse = _run("block_sparse", Sq=1, Skv=4096, density=0.25)
    d = sparse.plan.mapping.to_dict()
    for g in d["groups"]:
        g["skip"] = ["condition"]
    w = resolve_workload("block_sparse", {"Sq": 1, "Skv": 4096, "density": 0.25})
    dense_walk = simulate_workload("hbm3_pim", w, mapping=Mapping.from_dict(d), engine="analytic")
    full = _run("block_sparse", Sq=1, Skv=4096, density=1.0)
    assert dense_walk.result.cycles == full.result.cycles


def test_a_users_sliding_window_decode_costs_in_proportion_to_its_window(tmp_path):
    f = tmp_path / "window_decode.ein"
    f.write_text(WINDOW_DECODE)
    banked = {w: _run(str(f), W=w).plan.program.meta["in_bank_bytes"] for w in (256, 1024, 4096)}
    assert banked[1024] == pytest.approx(4 * banked[256], rel=0.02)
    assert banked[4096] == pytest.approx(16 * banked[256], rel=0.02)
    kv = 2 * 8 * 4096 * 128 * 2  # K and V of 8 heads, 4096 keys, bf16
    assert banked[4096] == pytest.approx(kv, rel=1e-6)


def test_cca_decode_holds_the_hosts_compressed_keys_in_the_banks():
    arch = load_arch("hbm3_pim")
    w = resolve_workload("cca", {"Sq": 1, "Skv": 4096})
    _, plan = plan_for(arch, w, dataflow="pim_decode")
    banked = {s["tensor"] for g in plan.program.meta["pim_groups"] for s in g["streams"]}
    assert banked == {"K", "V"}
    sizes = w.cascade.rank_sizes(w.params)
    kv = sum(
        2 * sizes["b"] * sizes["h"] * sizes["m"] * sizes[f] for f in ("e", "f")
    )  # bf16 K and V of the compressed heads
    assert plan.program.meta["in_bank_bytes"] == pytest.approx(kv, rel=1e-6)


def test_a_gpu_sliding_window_decode_reads_only_its_window(tmp_path):
    # split_kv walked only the window's key tiles but charged DRAM for the whole cache
    f = tmp_path / "window_decode.ein"
    f.write_text(WINDOW_DECODE)

    def dram(w: int) -> float:
        rep = simulate_workload(
            "h100", str(f), params={"W": w, "L": 32768, "N": 8}, engine="analytic"
        )
        assert rep.dataflow == "split_kv"
        return rep.result.dram_bytes

    cache = 2 * 8 * 8 * 32768 * 128 * 2  # K and V: 8 streams x 8 heads x 32768 keys, bf16
    assert dram(32768) == pytest.approx(cache, rel=0.01)
    # a window of W keys reads W keys plus at most one partly live 128-key tile per stream
    assert cache * 4096 / 32768 <= dram(4096) <= cache * (4096 + 128) / 32768
    assert dram(256) < cache / 64


@pytest.mark.parametrize("name", ["block_sparse", "fg_sparse"])
def test_a_spatial_array_fills_only_the_live_key_tiles_of_a_sparse_decode(name):
    # FuseMax skips dead tiles of the mask; its K/V fills of those tiles were still charged
    # (K is read over the unsplit key rank its score names: its fills were never skipped)
    params = {"Sq": 1, "Skv": 32768, "B": 8, "block": 256}
    dense = simulate_workload("fusemax", name, params={**params, "density": 1.0})
    sparse = simulate_workload("fusemax", name, params={**params, "density": 0.25})
    assert sparse.result.dram_bytes / dense.result.dram_bytes == pytest.approx(0.25, abs=0.01)
    assert sparse.result.cycles / dense.result.cycles < 0.3
