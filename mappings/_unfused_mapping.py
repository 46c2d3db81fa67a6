"""The unfused baseline's binding of an attention cascade, written as a Mapping (data).

The recipe of the ``unfused`` dataflow (the FuseMax artifact's unfused baseline,
FPSG-UIUC/micro24-fusemax-artifact @ f543beb, ``src/accel/unfused.py``), for the cascade given
from its rank roles, in the row-block nests of :mod:`mappings._flat_mapping`:

=============  ===============================================================================
kernel         what it is
=============  ===============================================================================
score          the score contraction(s) on the 2D array; a block of query rows stays in half
               the buffer while the keys stream once per block; the scores go to DRAM
between        every other Einsum before the value contraction (max, exp, sum, divide, a
               sigmoid...) on the 1D array, a few query rows at a time: their scores and
               exponentials stay in the buffer for its passes; the result goes to DRAM
value          the value contraction (and the contractions after it) on the 2D array, the
               Einsums after it on the 1D array; the output rows accumulate in the buffer
=============  ===============================================================================

The kernels run one after the other (``pipelined`` off: FLAT with its scores off chip runs
the same three pipelined). Projections before and after the core run as one group each.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from mappings._flat_mapping import setup, three_kernels, wrap
from mappings._mapping import Mapping

if TYPE_CHECKING:
    from archsim import Architecture
    from mappings._roles import AttentionRoles
    from workloads import Workload

__all__ = ["unfused_mapping"]


def unfused_mapping(workload: Workload, arch: Architecture, roles: AttentionRoles) -> Mapping:
    """The unfused baseline's mapping of ``workload``'s cascade (see module doc)."""
    s = setup(workload, arch, roles)
    groups = three_kernels(s, arch, roles, rows=None, pipelined=False)
    return Mapping(groups=tuple(wrap(workload, arch, roles, groups)), splits=s.splits)
