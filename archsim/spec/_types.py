"""Numeric field types of the spec models, with physical bounds.

Every number in an architecture spec must be finite, must not be a boolean (YAML ``true``
is not 1 Hz), and must lie in a physical range, so that nonsense such as a DRAM bandwidth
of 1e-300 B/s (which made the event engine report 0 cycles) is refused by ``arch check``
with the field's path. The bounds are deliberately wide: they exclude only values no
machine has.

=====================  ==================  ===================================================
type                   range               used for
=====================  ==================  ===================================================
``Hz``                 1 kHz .. 1 THz      clocks (``clock.*``, GPU clocks, PIM unit clock)
``BytesPerS``          1 kB/s .. 10 PB/s   ``*_bw_bytes_per_s``
``BytesPerCycle``      1e-9 .. 1e12        ``*_bw_bytes_per_cycle`` (derived ones included)
``Bytes``              1 B .. 2^60 B       capacities (``capacity_bytes``, SMEM, L2)
``TckNs``              1 ps .. 1 ms        DRAM ``tck_ns``
``Seconds``            0 .. 1 s            ``launch_overhead_s``
``PosInt``             1 .. 2^31 - 1       counts (instances, SMs, channels, mesh sides,
                                           DRAM timings in tCK)
``NonNegInt``          0 .. 2^31 - 1       ``latency_cycles``
``PosFloat``           (0, 1e18]           other positive figures (ops/cycle, W, ...)
``NonNegFloat``        [0, 1e18]           energies (pJ), leakage (W), area (mm^2)
=====================  ==================  ===================================================
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BeforeValidator, Field
from pydantic_core import PydanticCustomError

__all__ = [
    "PosFloat",
    "NonNegFloat",
    "PosInt",
    "NonNegInt",
    "Hz",
    "BytesPerS",
    "BytesPerCycle",
    "Bytes",
    "TckNs",
    "Seconds",
    "FLOAT_MAX",
    "INT_MAX",
]

#: ceiling of any float figure in a spec
FLOAT_MAX = 1e18
#: ceiling of any integer count in a spec
INT_MAX = 2**31 - 1


def _no_bool(value: Any) -> Any:
    """Refuse ``True``/``False`` where a number is expected (pydantic would read 1/0)."""
    if isinstance(value, bool):
        raise PydanticCustomError(
            "archsim_spec",
            "{msg}",
            {
                "msg": "a boolean where a number is expected",
                "path": "",
                "expected": "a number",
                "got": value,
            },
        )
    return value


_NUM = BeforeValidator(_no_bool)

PosFloat = Annotated[float, _NUM, Field(gt=0, le=FLOAT_MAX, allow_inf_nan=False)]
NonNegFloat = Annotated[float, _NUM, Field(ge=0, le=FLOAT_MAX, allow_inf_nan=False)]
PosInt = Annotated[int, _NUM, Field(ge=1, le=INT_MAX)]
NonNegInt = Annotated[int, _NUM, Field(ge=0, le=INT_MAX)]
Hz = Annotated[float, _NUM, Field(ge=1e3, le=1e12, allow_inf_nan=False)]
BytesPerS = Annotated[float, _NUM, Field(ge=1e3, le=1e16, allow_inf_nan=False)]
BytesPerCycle = Annotated[float, _NUM, Field(ge=1e-9, le=1e12, allow_inf_nan=False)]
Bytes = Annotated[float, _NUM, Field(ge=1, le=2.0**60, allow_inf_nan=False)]
TckNs = Annotated[float, _NUM, Field(ge=1e-3, le=1e6, allow_inf_nan=False)]
Seconds = Annotated[float, _NUM, Field(ge=0, le=1.0, allow_inf_nan=False)]
