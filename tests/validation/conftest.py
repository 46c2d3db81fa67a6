"""Shared fixtures of the validation tests."""

import os
from pathlib import Path

import pytest

H100_CHECK = Path(__file__).resolve().parents[2] / "validation/data/h100_check.jsonl"


@pytest.fixture(scope="session")
def h100_check_report():
    """``archsim validate validation/data/h100_check.jsonl --arch h100`` (the event engine, on
    every CPU this process may use): one run for every test that reads it."""
    from validation import validate_file

    return validate_file(H100_CHECK, "h100", jobs=len(os.sched_getaffinity(0)))
