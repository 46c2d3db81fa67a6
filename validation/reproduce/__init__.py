"""Paper reproductions: ``archsim reproduce fusemax|pim|fg-attn`` (issue 7).

Each ``reproduce_*`` function runs the model, returns a :class:`Reproduction` (tables, the
summary keys, checks against the published numbers, notes on assumptions) and never prints;
:func:`write_outputs` writes CSV tables, ``summary.json`` and a PNG plot.

>>> from validation.reproduce import REPRODUCTIONS
>>> sorted(REPRODUCTIONS)
['fg-attn', 'fusemax', 'hydragen', 'lean', 'linear', 'minference', 'pim', 'push-memory', 'spatten']
"""

from __future__ import annotations

from collections.abc import Callable

from ._common import Check, Reproduction, format_reproduction, format_table, write_outputs
from ._fgattn import reproduce_fgattn
from ._fusemax import reproduce_fusemax
from ._hydragen import reproduce_hydragen
from ._lean import reproduce_lean
from ._linear import reproduce_linear
from ._minference import reproduce_minference
from ._pim import reproduce_pim
from ._push_memory import reproduce_push_memory
from ._spatten import reproduce_spatten

__all__ = [
    "REPRODUCTIONS",
    "Check",
    "Reproduction",
    "format_reproduction",
    "format_table",
    "reproduce",
    "reproduce_fgattn",
    "reproduce_fusemax",
    "reproduce_hydragen",
    "reproduce_minference",
    "reproduce_pim",
    "reproduce_push_memory",
    "reproduce_spatten",
    "write_outputs",
]

#: Name -> function(fast=...) -> Reproduction.
REPRODUCTIONS: dict[str, Callable[..., Reproduction]] = {
    "fusemax": reproduce_fusemax,
    "pim": reproduce_pim,
    "fg-attn": reproduce_fgattn,
    "lean": reproduce_lean,
    "linear": reproduce_linear,
    "hydragen": reproduce_hydragen,
    "minference": reproduce_minference,
    "spatten": reproduce_spatten,
    "push-memory": reproduce_push_memory,
}


def reproduce(name: str, *, fast: bool = False) -> Reproduction:
    """Run reproduction ``name`` (``fusemax``, ``pim``, ``fg-attn``).

    Raises
    ------
    ValidationDataError
        If ``name`` is unknown.
    """
    from archsim.errors import ValidationDataError

    if name not in REPRODUCTIONS:
        raise ValidationDataError(
            "unknown reproduction",
            path="reproduce.name",
            expected=f"one of {sorted(REPRODUCTIONS)}",
            got=name,
        )
    return REPRODUCTIONS[name](fast=fast)
