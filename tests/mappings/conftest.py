"""Shared fixtures of the mappings tests: small GEMM workloads and small architectures."""

from __future__ import annotations

import pytest

from archsim import load_arch
from mappings._api import FileWorkload
from workloads import parse_cascade

GEMM_TEXT = """
tensor A[m,k] : bf16
tensor B[k,n] : bf16
C[m,n] = A[m,k] * B[k,n]
"""


def make_gemm(m: int, n: int, k: int) -> FileWorkload:
    """A single-Einsum GEMM workload C[m,n] = A[m,k] * B[k,n] (bf16)."""
    c = parse_cascade(GEMM_TEXT, name="gemm", params={"M": m, "N": n, "K": k})
    return FileWorkload("gemm", c, dict(c.params), c.rank_sizes())


@pytest.fixture(scope="session")
def fusemax():
    return load_arch("fusemax")


@pytest.fixture(scope="session")
def tpu():
    return load_arch("tpu_like")


@pytest.fixture(scope="session")
def tiny_arch(fusemax):
    """FuseMax shrunk to a 16x16 array and a 16 KiB buffer: mapping spaces stay small."""
    return fusemax.with_updates({"levels.GLB.capacity_bytes": 16384, "compute.pe2d.mesh": [16, 16]})
