"""Every library cascade equals its direct numpy implementation (the library's proof)."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from workloads import execute
from workloads.library import (
    TOLERANCE,
    Workload,
    get_workload,
    list_workloads,
    verify,
    verify_cases,
)
from workloads.library._registry import get_def
from workloads.library._sparse import sparse_mask

CASES = [(name, i) for name in list_workloads() for i in range(len(get_def(name).verify))]


@pytest.mark.parametrize(("name", "index"), CASES, ids=[f"{n}-{i}" for n, i in CASES])
def test_cascade_matches_direct_reference(name: str, index: int) -> None:
    w = verify_cases(name)[index]
    result = verify(w, np.random.default_rng(index))
    assert result.max_rel_error <= TOLERANCE, (name, w.params, result.max_rel_error)


@pytest.mark.parametrize("name", list_workloads())
def test_each_workload_verifies_at_two_shapes_one_not_dividing_its_tile(name: str) -> None:
    cases = verify_cases(name)
    assert len(cases) >= 2
    tiles = {"M0": "Skv", "C": "S", "block": "Skv", "splits": "Skv"}

    def ragged(w: Workload) -> bool:
        return any(
            t in w.params and s in w.params and w.params[s] % w.params[t] for t, s in tiles.items()
        )

    if any(t in w.params for w in cases for t in tiles):
        assert any(ragged(w) for w in cases), f"{name}: no shape leaves a partial tile"


def test_verify_catches_a_wrong_cascade() -> None:
    w = get_workload("mha", B=1, H=2, S=5, D=3, M0=2, causal=True)
    inputs = w.random_inputs(np.random.default_rng(0))
    non_causal = get_workload("mha", B=1, H=2, S=5, D=3, M0=2, causal=False)
    got = execute(non_causal.cascade, inputs)["AV"]
    want = w.reference(inputs)["AV"]
    assert np.max(np.abs(got - want)) > 1e-3


def test_random_inputs_match_declared_shapes() -> None:
    w = get_workload("gqa", B=2, H=4, Hkv=2, Sq=3, Skv=5, D=2, Dv=3)
    x = w.random_inputs(np.random.default_rng(0))
    assert x["Q"].shape == (2, 4, 3, 2)
    assert x["K"].shape == (2, 2, 5, 2)
    assert x["V"].shape == (2, 2, 5, 3)
    assert w.reference(x)["AV"].shape == (2, 2, 2, 3, 3)  # (b, hkv, g, p, f)


def test_lean_decode_splits_a_head_across_workers() -> None:
    w = get_workload("decode", B=1, H=2, Skv=7, D=2, M0=2, variant="lean", ctas=3)
    out = execute(w.cascade, w.random_inputs(np.random.default_rng(0)))
    # 2 heads x 4 tiles over 3 workers: 8/3 tiles each, so head 0 has 2 partials
    workers_per_head = (out["LD"][0, :, :, 0] != 0).sum(axis=1)
    assert workers_per_head.tolist() == [2, 2]


def test_sparse_masks_keep_every_row_computable_or_zero() -> None:
    w = get_workload("block_sparse", B=1, H=1, S=9, D=2, block=3, density=0.34, passes=1)
    out = execute(w.cascade, w.random_inputs(np.random.default_rng(0)))
    assert np.all(np.isfinite(out["AV"]))


@pytest.mark.parametrize(("kind", "key_tile"), [("block", 4), ("slice", 1)])
def test_sparse_masks_are_constant_on_their_tiles(kind: str, key_tile: int) -> None:
    p = {"B": 1, "H": 2, "Hkv": 2, "Sq": 16, "Skv": 16, "block": 4, "density": 0.5}
    mask = sparse_mask(kind, p)  # (B, H, Sq, Skv)
    tiles = mask.reshape(1, 2, 4, 4, 16 // key_tile, key_tile)
    assert np.all(tiles == tiles[:, :, :, :1, :, :1])  # 4 queries x key_tile keys agree
    assert mask.mean() == pytest.approx(0.5)


@settings(max_examples=25, deadline=None)
@given(
    sq=st.integers(1, 6),
    extra=st.integers(0, 4),
    d=st.integers(1, 4),
    m0=st.integers(1, 5),
    passes=st.sampled_from([1, 2, 3]),
    causal=st.booleans(),
    hkv=st.sampled_from([1, 2]),
    seed=st.integers(0, 2**16),
)
def test_attention_cascades_match_reference_on_random_shapes(
    sq: int, extra: int, d: int, m0: int, passes: int, causal: bool, hkv: int, seed: int
) -> None:
    w = get_workload(
        "gqa", B=1, H=2, Hkv=hkv, Sq=sq, Skv=sq + extra, D=d, M0=m0, passes=passes, causal=causal
    )
    assert verify(w, np.random.default_rng(seed)).ok
