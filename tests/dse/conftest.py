"""Shared helpers for the dse tests: tiny sweep specs."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml


@pytest.fixture
def write_spec(tmp_path: Path):
    """Write a dict as a sweep YAML in tmp_path and return its path."""

    def _write(data: dict, name: str = "sweep.yaml") -> Path:
        path = tmp_path / name
        path.write_text(yaml.safe_dump(data))
        return path

    return _write


#: A small real sweep: fusemax preset, PE array × GLB size × sequence length, 2 dataflows,
#: analytical engine (fast enough to run several times in the suite).
REAL_SPEC: dict = {
    "name": "real-small",
    "arch": {
        "preset": "fusemax",
        "space": {
            "compute.pe2d.mesh": [[64, 64], [128, 128], [256, 256]],
            "levels.GLB.capacity_bytes": {"log_range": [1e6, 32e6], "n": 3},
        },
    },
    "workload": {"name": "mha", "params": {"B": 1, "H": 4, "D": 64, "S": [512, 2048]}},
    "dataflow": ["fusemax", "flat"],
    "engine": "analytic",
    "constraints": ["area <= 1000"],
}


@pytest.fixture
def real_spec_path(write_spec) -> Path:
    """REAL_SPEC (36 points) written as YAML."""
    return write_spec(REAL_SPEC)


def results_only(df):
    """A store's rows without the wall-time column (the only one that may differ between runs)."""
    return df.drop(columns=["eval_s"]).reset_index(drop=True)
