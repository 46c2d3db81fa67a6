"""Validation: measured GPU kernels vs the model.

Public API (imported lazily, so ``python3 -m validation.harness...`` on a GPU machine does
not pull in pandas/scipy):

- :func:`load_measurements` -> :class:`MeasurementSet` (JSON Lines, issue-5 schema; bad
  lines and records listed as :class:`SkippedRecord`)
- :func:`predict_record` -> :class:`RecordPrediction`
- :func:`compare_records`, :func:`validate_file` -> :class:`ComparisonReport`
- :func:`read_torch_trace` -> :class:`TorchTrace`; :func:`read_ncu_csv` -> ``list[NcuKernel]``
- :func:`compare_trace` -> :class:`TraceComparison` (every op with shapes simulated, unknown
  kernels listed); :func:`write_merged_trace`
- :func:`fit_calibration` (``validation.calibrate``)
"""

from __future__ import annotations

import importlib

__all__ = [
    "ComparisonReport",
    "KernelMatch",
    "Measurement",
    "MeasurementSet",
    "NcuKernel",
    "RecordPrediction",
    "SkippedRecord",
    "TorchTrace",
    "TraceComparison",
    "TraceKernel",
    "UnsupportedRecord",
    "compare_records",
    "compare_trace",
    "error_stats",
    "fit_calibration",
    "load_measurements",
    "predict_record",
    "read_ncu_csv",
    "read_torch_trace",
    "validate_file",
    "write_merged_trace",
]

_WHERE = {
    "Measurement": "_records",
    "MeasurementSet": "_records",
    "SkippedRecord": "_records",
    "load_measurements": "_records",
    "RecordPrediction": "_predict",
    "UnsupportedRecord": "_predict",
    "predict_record": "_predict",
    "ComparisonReport": "_report",
    "compare_records": "_report",
    "validate_file": "_report",
    "error_stats": "_report",
    "TorchTrace": "_torch_trace",
    "TraceKernel": "_torch_trace",
    "read_torch_trace": "_torch_trace",
    "NcuKernel": "_ncu",
    "read_ncu_csv": "_ncu",
    "KernelMatch": "_compare",
    "TraceComparison": "_compare",
    "compare_trace": "_compare",
    "write_merged_trace": "_compare",
    "fit_calibration": "calibrate",
}


def __getattr__(name: str) -> object:
    if name in _WHERE:
        module = importlib.import_module(f"{__name__}.{_WHERE[name]}")
        return getattr(module, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(__all__)
