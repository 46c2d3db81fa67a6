"""``--dataflow auto``: the first candidate that maps the cascade at this shape wins."""

from __future__ import annotations

import pytest

from archsim import load_arch
from archsim.errors import InfeasibleMappingError
from mappings import get_dataflow
from mappings._api import choose_dataflow, plan_for, resolve_workload


def test_auto_passes_over_a_recipe_whose_cta_does_not_fit() -> None:
    # MLA decode: split_kv's CTA needs 192 KiB of shared memory, more than an A100 gives
    arch = load_arch("a100")
    wl = resolve_workload("mla", {"Sq": 1, "Skv": 4096})
    with pytest.raises(InfeasibleMappingError, match="shared memory"):
        get_dataflow("split_kv")(wl, arch, {})
    name, plan = plan_for(arch, wl)
    assert name == choose_dataflow(arch, wl) != "split_kv"
    assert plan.program is not None
