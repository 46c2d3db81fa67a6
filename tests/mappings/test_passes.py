"""Passes analysis: FuseMax's 3/2/1-pass classes from the cascades' dependency structure."""

from __future__ import annotations

import pytest

from mappings import cascade_passes
from workloads import get_workload


@pytest.mark.parametrize(
    ("passes", "why"),
    [
        (3, "SN re-iterates m after reduction M"),
        (2, "SN re-iterates m after reduction RM"),
        (1, "running state"),
    ],
)
def test_library_attention_cascades_fall_into_their_pass_class(passes, why):
    w = get_workload("mha", S=64, B=1, H=1, D=8, passes=passes)
    n, reason = cascade_passes(w.cascade)
    assert n == passes
    assert why in reason


def test_a_plain_contraction_is_one_pass():
    from workloads import parse_cascade

    c = parse_cascade(
        "tensor A[m,k] : bf16\ntensor B[k,n] : bf16\nC[m,n] = A[m,k] * B[k,n]\n",
        params={"M": 4, "N": 4, "K": 4},
    )
    assert cascade_passes(c)[0] == 1
