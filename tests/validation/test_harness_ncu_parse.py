"""Parsing Nsight Compute CSV output (``--csv --print-units base``)."""

from __future__ import annotations

from validation.harness.ncu_run import csv_rows, kernels_from_ncu_csv

_HEAD = (
    '"ID","Process ID","Process Name","Host Name","Kernel Name","Context","Stream",'
    '"Block Size","Grid Size","Device","CC","Section Name","Metric Name","Metric Unit",'
    '"Metric Value"'
)


def _row(kid: int, name: str, metric: str, unit: str, value: str) -> str:
    return (
        f'"{kid}","1","python3","h","{name}","1","7","(384, 1, 1)","(8, 12, 1)","0","9.0",'
        f'"Command line profiler metrics","{metric}","{unit}","{value}"'
    )


TEXT = "\n".join(
    [
        "==PROF== Connected to process 1120",
        _HEAD,
        _row(0, "gemm_kernel", "dram__bytes_read.sum", "byte", "1,065,216"),
        _row(0, "gemm_kernel", "dram__bytes_write.sum", "byte", "0"),
        _row(0, "gemm_kernel", "gpu__time_duration.sum", "ns", "5,664"),
        _row(1, "reduce, kernel", "dram__bytes_read.sum", "byte", "2,048"),
        _row(1, "reduce, kernel", "dram__bytes_write.sum", "byte", "1,024"),
        _row(1, "reduce, kernel", "gpu__time_duration.sum", "ns", "1,000"),
        "==PROF== Disconnected from process 1120",
    ]
)


def test_kernels_are_parsed_in_launch_order_with_thousands_separators():
    kernels = kernels_from_ncu_csv(TEXT)
    assert [k["name"] for k in kernels] == ["gemm_kernel", "reduce, kernel"]
    assert kernels[0]["dram__bytes_read.sum"] == 1_065_216
    assert kernels[0]["gpu__time_duration.sum"] == 5664
    assert kernels[1]["dram__bytes_write.sum"] == 1024


def test_lines_before_the_header_are_ignored_and_empty_output_gives_no_kernels():
    header, rows = csv_rows(TEXT)
    assert header[0] == "ID"
    assert len(rows) == 6
    assert kernels_from_ncu_csv("==PROF== no kernels profiled") == []
