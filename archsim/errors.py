"""The one exception hierarchy of archsim.

Every error a user can cause derives from :class:`ArchsimError`. Spec errors carry a
``path`` (``levels[2].read_bw_bytes_per_cycle``, ``einsums[3]``, ``line 4, col 9``) and say
what was expected and what was given, so the CLI can print them without a traceback.

This module has no dependencies, so every package (``workloads``, ``mappings``, ``dse``,
``validation``) may import it without pulling in the engine.
"""

from __future__ import annotations

__all__ = [
    "ArchsimError",
    "SpecError",
    "WorkloadError",
    "ArchSpecError",
    "MappingError",
    "InfeasibleMappingError",
    "SweepError",
    "ValidationDataError",
]


class ArchsimError(Exception):
    """Base of every error archsim raises on bad user input."""


class SpecError(ArchsimError):
    """A spec (YAML, text, CLI value) is malformed.

    Parameters
    ----------
    message
        What is wrong, in words.
    path
        Where: a dotted/indexed path (``levels[2].capacity_bytes``) or ``line L, col C``.
    expected, got
        Optional: what was expected and what was given; appended to the message.
    """

    def __init__(
        self,
        message: str,
        *,
        path: str | None = None,
        expected: object | None = None,
        got: object | None = None,
    ) -> None:
        self.path = path
        self.expected = expected
        self.got = got
        self.detail = message
        text = message
        if expected is not None or got is not None:
            text += f": expected {expected}, got {got!r}"
        if path:
            text = f"{path}: {text}"
        super().__init__(text)


class WorkloadError(SpecError):
    """An Einsum cascade (text, YAML, builder) is malformed or inconsistent."""


class ArchSpecError(SpecError):
    """An architecture spec is malformed."""


class MappingError(SpecError):
    """A mapping is malformed or does not fit the architecture."""


class InfeasibleMappingError(ArchsimError):
    """No valid mapping exists for a (cascade, architecture) under the given constraints."""


class SweepError(SpecError):
    """A sweep spec is malformed."""


class ValidationDataError(SpecError):
    """A measurement file (JSON Lines, trace) is malformed."""


class SimulationTooLargeError(ArchsimError):
    """An event simulation that no exact shortcut or tight bound covers would take too long
    (the message says how many tile steps and about how long); nothing was simulated."""
