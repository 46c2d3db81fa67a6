"""``gla``: chunked gated linear attention equals its recurrence, and with gates of 1 it is
the ungated ``linear`` cascade (same MACs: the gates cost elementwise ops, not MACs)."""

import numpy as np

from workloads import count, execute
from workloads.library import get_workload
from workloads.library._gla import chunk_reset


def test_open_gates_give_plain_causal_linear_attention():
    p = {"B": 1, "H": 2, "S": 11, "D": 3, "Dv": 2, "C": 4}
    gla, lin = get_workload("gla", **p), get_workload("linear", **p)
    rng = np.random.default_rng(3)
    x = lin.random_inputs(rng)
    x["LG"] = np.zeros((1, 2, 11, 3))
    x["RS"] = chunk_reset(11, 4)
    got = execute(gla.cascade, {n: x[n] for n in gla.cascade.inputs})["O"]
    want = execute(lin.cascade, {n: x[n] for n in lin.cascade.inputs})["O"]
    np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-12)


def test_gates_add_ops_per_feature_not_macs():
    p = {"B": 2, "H": 4, "S": 1000, "D": 64, "C": 64}
    g, lin = count(get_workload("gla", **p).cascade), count(get_workload("linear", **p).cascade)
    assert g.macs == lin.macs
    tokens_features = 2 * 4 * 1000 * 64
    # exp of the gated queries, keys and keys decayed to the chunk end: one per token feature
    assert g.einsum("QG").ops["exp"] == tokens_features
    assert g.einsum("KG").ops["exp"] == tokens_features
    assert g.einsum("KD").ops["exp"] == tokens_features
    assert g.einsum("CG").ops == {"mul": tokens_features, "add": tokens_features}  # the scan
