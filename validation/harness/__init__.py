"""GPU measurement harness: times real kernels on a CUDA GPU and writes JSON Lines.

Runs on the GPU machine with plain ``python3`` (standard library + torch/triton + NVML);
it never imports ``archsim``. The pure parts (case lists, record schema, JSONL writing,
the fit/check split, ncu CSV parsing) import nothing beyond the standard library, so they
are tested on CPU-only machines.

Entry point::

    python3 -m validation.harness.measure --out FILE.jsonl --suite smoke|full|ncu|energy

See ``validation/data/README.md`` for the datasets it produced and their provenance.
"""

from validation.harness.cases import case_key, suite_cases
from validation.harness.records import REQUIRED_FIELDS, JsonlWriter, derive_fields, validate_record

__all__ = [
    "REQUIRED_FIELDS",
    "JsonlWriter",
    "case_key",
    "derive_fields",
    "suite_cases",
    "validate_record",
]
