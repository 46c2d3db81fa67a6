"""General rules of the generic lowering that the FLAT / unfused recipes rely on.

* ``FusionGroup.pipelined``: a group that overlaps the previous one (producer/consumer) is
  lowered into the same phase: the same bytes and ops, overlapped instead of one after the
  other.
* Tensors written under a condition (causal) by a group that skips the tiles the condition
  leaves empty move only their kept elements, in every group that touches them.
* A sparsity mask a group does not skip leaves every tile live (dense time, useful energy)
  instead of refusing the mapping.
* On-chip intermediates are held once in the staging buffer, not once per tile in flight.
"""

from __future__ import annotations

import pytest

from archsim import estimate, load_arch
from archsim.errors import MappingError
from mappings import lower
from mappings._flat_mapping import flat_mapping
from mappings._lower import staged_bytes, stored_fractions
from mappings._roles import attention_roles
from mappings._tensors import group_tensors
from mappings._unfused_mapping import unfused_mapping
from workloads import count, get_workload


@pytest.fixture(scope="module")
def flat():
    return load_arch("flat")


def _mha(**kw):  # noqa: ANN202
    return get_workload("mha", **{"B": 1, "H": 2, "S": 4096, "D": 64, "passes": 3, **kw})


def _pipelined(mapping, on: bool):  # noqa: ANN001, ANN202
    groups = [
        g.model_copy(update={"pipelined": on and i > 0}) for i, g in enumerate(mapping.groups)
    ]
    return mapping.model_copy(update={"groups": tuple(groups)})


def test_pipelined_groups_share_one_phase_with_the_same_bytes_and_ops(flat):
    w = _mha()
    base = unfused_mapping(w, flat, attention_roles(w.cascade))
    assert len(base.groups) == 3
    seq = lower(w, _pipelined(base, False), flat)
    pipe = lower(w, _pipelined(base, True), flat)
    assert len(seq.phases) == 3
    assert len(pipe.phases) == 1
    assert pipe.meta["bytes_by_level"] == seq.meta["bytes_by_level"]
    assert pipe.meta["ops"] == seq.meta["ops"]

    def totals(prog):  # noqa: ANN001, ANN202
        out: dict[tuple[str, str, str], float] = {}
        for ph in prog.phases:
            for t in (*ph.body.loads, *ph.body.stores):
                k = (t.tensor, t.src, t.dst)
                out[k] = out.get(k, 0.0) + t.bytes * ph.total_trips
        return out

    a, b = totals(seq), totals(pipe)
    assert a.keys() == b.keys()
    for k in a:  # each trip's bytes are rounded up to whole bytes
        assert b[k] == pytest.approx(a[k], rel=1e-3), k
    t_seq, t_pipe = estimate(seq, flat).cycles, estimate(pipe, flat).cycles
    per_phase = [
        estimate(seq.__class__(seq.name, (ph,), seq.clock_hz), flat).cycles for ph in seq.phases
    ]
    # the stages overlap: faster than one after the other, never faster than the longest one
    assert t_pipe < 0.8 * t_seq
    assert t_pipe >= 0.99 * max(per_phase)


def test_the_first_group_cannot_be_pipelined(flat):
    w = _mha()
    m = unfused_mapping(w, flat, attention_roles(w.cascade))
    first = m.groups[0].model_copy(update={"pipelined": True})
    with pytest.raises(MappingError, match=r"groups\[0\]\.pipelined"):
        lower(w, m.model_copy(update={"groups": (first, *m.groups[1:])}), flat)


def test_tensors_a_condition_thins_move_only_their_kept_elements(flat):
    s = 4096
    w = _mha(causal=True)
    m = unfused_mapping(w, flat, attention_roles(w.cascade))
    kept = (s + 1) / (2 * s)  # the lower triangle, diagonal included
    fr = stored_fractions(w, m)
    assert fr["QK"] == pytest.approx(kept)
    assert fr["A"] == pytest.approx(kept)
    assert "AV" not in fr or fr["AV"] == 1.0
    dense = lower(_mha(), unfused_mapping(_mha(), flat, attention_roles(_mha().cascade)), flat)
    causal = lower(w, m, flat)
    qk = s * s * 2 * 2  # bytes of QK: B=1, H=2, bf16
    d_dram = dense.meta["bytes_by_level"]["DRAM"] - causal.meta["bytes_by_level"]["DRAM"]
    # QK and A each written once and read once: 4 score passes, each thinned to `kept`
    assert d_dram == pytest.approx(4 * qk * (1 - kept), rel=1e-3)
    # a group that does not skip the dead tiles computes, and stores, all of them
    no_skip = m.model_copy(
        update={"groups": tuple(g.model_copy(update={"skip": ()}) for g in m.groups)}
    )
    assert stored_fractions(w, no_skip) == {}


def test_a_mask_the_group_does_not_skip_runs_dense(flat):
    w = get_workload("block_sparse", density=0.5)
    d = get_workload("block_sparse", density=1.0)
    m = flat_mapping(w, flat, attention_roles(w.cascade))[0]
    assert all("block" not in g.skip for g in m.groups)
    half, full = (
        lower(w, m, flat),
        lower(d, flat_mapping(d, flat, attention_roles(d.cascade))[0], flat),
    )
    c = count(w.cascade, dict(w.params))
    assert half.meta["ops"]["mac"] == c.macs < full.meta["ops"]["mac"]  # useful ops counted
    assert estimate(half, flat).cycles == pytest.approx(estimate(full, flat).cycles, rel=0.02)


def test_on_chip_intermediates_are_held_once_not_per_tile_in_flight(flat):
    w = _mha()
    m, chosen = flat_mapping(w, flat, attention_roles(w.cascade))
    (g,) = m.groups
    staged, held = staged_bytes(w, g, group_tensors(w, g))
    rows = int(chosen["rows"])
    # QK, SN and A of the block, bf16, one score tile: SN = exp(QK - M) overwrites QK and
    # A = SN / SD overwrites SN (the in-place rule, mappings._reuse)
    assert rows * 4096 * 2 <= held < 2 * rows * 4096 * 2
    assert staged < held / 10  # the block's Q: the scores are produced, not loaded
    (ph,) = lower(w, m, flat).phases
    assert ph.depth == 2  # room for the next block's loads beside this block's scores


def test_keys_stream_only_to_the_query_blocks_that_reach_them(flat):
    # causal FLAT at 4K: four 1024-row blocks reach 1024, 2048, 3072 and 4096 keys, so K and V
    # stream 10 of the 16 dense block x key passes; the running sums are not thinned
    def kv_bytes(w):  # noqa: ANN001, ANN202
        m, chosen = flat_mapping(w, flat, attention_roles(w.cascade))
        assert chosen["rows"] == 1024
        prog = lower(w, m, flat)
        return sum(
            t.bytes * ph.total_trips
            for ph in prog.phases
            for t in ph.body.loads
            if t.tensor in ("K", "V") and t.src == "DRAM"
        )

    dense, causal = kv_bytes(_mha()), kv_bytes(_mha(causal=True))
    assert dense == pytest.approx(4 * 2 * 2 * 4096 * 64 * 2, rel=1e-6)  # 4 blocks, K+V, 2 heads
    assert causal == pytest.approx(dense * 10 / 16, rel=1e-3)
