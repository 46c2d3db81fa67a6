"""Case lists of the measurement harness (pure: standard library only).

A *case* is a plain ``dict`` holding the schema fields of issue 5 (``kind`` plus shape
fields) that identify one measurement; the runner adds ``ms`` and the derived fields.
:func:`case_key` turns a case into a stable string used to merge ncu/energy results into
the timed records and to split datasets into fit/check parts.

Shapes are chosen from the models the project studies (Llama-3 8B/70B projections, see
Meta's model card: d_model 4096/8192, FFN 14336/28672, 8 KV heads of dim 128).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

__all__ = [
    "BACKENDS",
    "KEY_FIELDS",
    "SUITES",
    "case_key",
    "suite_cases",
]

Case = dict[str, object]

#: SDPA backends, recorded under ``backend`` (PyTorch ``SDPBackend`` names in lower case).
BACKENDS: tuple[str, ...] = ("flash", "cudnn", "efficient")

#: Fields (besides ``kind``) that identify a case of each kind; order is the key order.
KEY_FIELDS: dict[str, tuple[str, ...]] = {
    "gemm": ("M", "N", "K", "dtype"),
    "attn": ("B", "Hq", "Hkv", "Sq", "Skv", "D", "causal", "backend", "dtype", "pass_"),
    "decode": ("B", "Hq", "Hkv", "Sq", "Skv", "D", "causal", "backend", "dtype", "pass_"),
    "attn_unfused": ("B", "H", "S", "D", "dtype"),
    "flex_block_sparse": ("B", "H", "S", "D", "block", "density_target", "seed"),
    "ceiling": ("name",),
}

SUITES: tuple[str, ...] = ("smoke", "full", "ncu", "energy")

# Llama-3 projection shapes as (N, K) of Y[M,N] = X[M,K] @ W[K,N].
_LLAMA8B_NK = ((6144, 4096), (4096, 4096), (28672, 4096), (4096, 14336))  # qkv, o, gate_up, down
_LLAMA70B_NK = ((10240, 8192), (8192, 8192), (57344, 8192), (8192, 28672))
_DECODE_NK = ((6144, 4096), (28672, 4096), (8192, 28672))


def case_key(case: Case) -> str:
    """Stable identity of a case: ``kind`` and its key fields, e.g. ``gemm|M=1|N=6144|...``.

    Raises
    ------
    ValueError
        If ``kind`` is unknown or a key field is missing.
    """
    kind = str(case.get("kind"))
    if kind not in KEY_FIELDS:
        raise ValueError(f"case_key: expected kind in {sorted(KEY_FIELDS)}, got {kind!r}")
    parts = [kind]
    for field in KEY_FIELDS[kind]:
        if field not in case:
            raise ValueError(f"case_key: {kind} case lacks field {field!r}: {case}")
        parts.append(f"{field}={case[field]}")
    return "|".join(parts)


def _gemm(m: int, n: int, k: int, group: str) -> Case:
    return {"kind": "gemm", "M": m, "N": n, "K": k, "dtype": "bf16", "group": group}


def gemm_cases() -> list[Case]:
    """About 60 bf16 GEMMs: square, Llama projections, skinny decode, tall/flat, odd sizes."""
    cases = [_gemm(s, s, s, "square") for s in (512, 1024, 2048, 3072, 4096, 6144, 8192)]
    cases += [_gemm(s, s, s, "odd") for s in (1000, 2500, 5000)]
    for m in (512, 4096, 16384):
        cases += [_gemm(m, n, k, "llama3-8b") for n, k in _LLAMA8B_NK]
        cases += [_gemm(m, n, k, "llama3-70b") for n, k in _LLAMA70B_NK]
    cases += [_gemm(m, 128256, 4096, "lm_head") for m in (512, 4096)]
    for m in (1, 8, 32, 64, 128, 256):
        cases += [_gemm(m, n, k, "decode") for n, k in _DECODE_NK]
    tall = (
        (65536, 512, 4096),
        (131072, 128, 4096),
        (262144, 64, 1024),
        (32768, 1024, 1024),
        (16384, 256, 16384),
        (1024, 65536, 1024),
    )
    cases += [_gemm(m, n, k, "tall_flat") for m, n, k in tall]
    return cases


def _attn(
    kind: str,
    b: int,
    hq: int,
    hkv: int,
    sq: int,
    skv: int,
    d: int,
    causal: bool,
    backend: str,
    pass_: str,
) -> Case:
    return {
        "kind": kind,
        "B": b,
        "Hq": hq,
        "Hkv": hkv,
        "Sq": sq,
        "Skv": skv,
        "D": d,
        "causal": causal,
        "backend": backend,
        "dtype": "bf16",
        "pass_": pass_,
    }


def _prefill_batch(s: int, tokens: int = 16384) -> int:
    """Batch so that B*S is about ``tokens`` (at least 1)."""
    return max(1, tokens // s)


def attn_cases() -> list[Case]:
    """SDPA prefill per backend: MHA fwd (D 64/128, S 512..64k), bwd subset, GQA."""
    cases: list[Case] = []
    heads = {64: 16, 128: 32}  # BERT-large-like (16x64) and Llama-like (32x128)
    for backend in BACKENDS:
        for d, h in heads.items():
            for s in (512, 1024, 2048, 4096, 8192, 16384, 32768, 65536):
                for causal in (False, True):
                    cases.append(
                        _attn("attn", _prefill_batch(s), h, h, s, s, d, causal, backend, "fwd")
                    )
            for s in (1024, 4096, 16384):
                for causal in (False, True):
                    cases.append(
                        _attn("attn", _prefill_batch(s), h, h, s, s, d, causal, backend, "bwd")
                    )
        for s in (2048, 8192, 32768):  # Llama-3-8B GQA: 32 query heads, 8 KV heads
            for causal in (False, True):
                cases.append(
                    _attn("attn", _prefill_batch(s), 32, 8, s, s, 128, causal, backend, "fwd")
                )
        for causal in (False, True):
            cases.append(_attn("attn", 2, 32, 8, 8192, 8192, 128, causal, backend, "bwd"))
    return cases


#: Cap on the KV cache of one decode case (bytes of K and V together).
DECODE_KV_CAP_BYTES = 16 * 2**30


def decode_cases() -> list[Case]:
    """Decode (Sq = 1) over KV 1k..128k, batch 1..128, MHA (32/32) and GQA (32/8), D 128."""
    cases: list[Case] = []
    for backend in BACKENDS:
        for hkv in (32, 8):
            for skv in (1024, 4096, 16384, 32768, 131072):
                for b in (1, 8, 32, 128):
                    if 2 * b * hkv * skv * 128 * 2 > DECODE_KV_CAP_BYTES:
                        continue
                    cases.append(_attn("decode", b, 32, hkv, 1, skv, 128, False, backend, "fwd"))
    return cases


def unfused_cases() -> list[Case]:
    """Unfused attention (QK^T, softmax, PV as three kernels); scores kept under ~4.5 GB."""
    shapes = (
        (8, 16, 1024, 64),
        (4, 16, 2048, 64),
        (1, 16, 4096, 64),
        (1, 16, 8192, 64),
        (8, 32, 1024, 128),
        (4, 32, 2048, 128),
        (1, 32, 4096, 128),
        (1, 32, 8192, 128),
    )
    return [
        {"kind": "attn_unfused", "B": b, "H": h, "S": s, "D": d, "dtype": "bf16"}
        for b, h, s, d in shapes
    ]


def flex_cases() -> list[Case]:
    """FlexAttention with random 128x128 block masks; exact density is measured at run time."""
    cases: list[Case] = []
    for b, h, s, d in ((4, 16, 4096, 128), (1, 16, 16384, 128)):
        for density in (0.1, 0.25, 0.5, 0.75, 1.0):
            cases.append(
                {
                    "kind": "flex_block_sparse",
                    "B": b,
                    "H": h,
                    "S": s,
                    "D": d,
                    "block": 128,
                    "density_target": density,
                    "seed": 0,
                    "dtype": "bf16",
                }
            )
    return cases


def ceiling_cases() -> list[Case]:
    """Device ceilings: large copy, read-only (sum), write-only (fill), 8192^3 bf16 matmul."""
    return [
        {"kind": "ceiling", "name": "d2d_copy", "bytes": 2 * 2**30},
        {"kind": "ceiling", "name": "matmul_bf16_8192", "M": 8192, "N": 8192, "K": 8192},
        {"kind": "ceiling", "name": "read_sum", "bytes": 4 * 2**30},
        {"kind": "ceiling", "name": "write_fill", "bytes": 4 * 2**30},
    ]


def _pick(cases: Iterable[Case], keep: Callable[[Case], bool]) -> list[Case]:
    return [c for c in cases if keep(c)]


def _is(case: Case, **fields: object) -> bool:
    return all(case.get(k) == v for k, v in fields.items())


def _ncu_selection() -> list[Case]:
    gemms = [
        (512, 512, 512),
        (4096, 4096, 4096),
        (8192, 8192, 8192),
        (1, 28672, 4096),
        (64, 8192, 28672),
        (4096, 28672, 4096),
        (131072, 128, 4096),
    ]
    out = [c for c in gemm_cases() if (c["M"], c["N"], c["K"]) in gemms]
    for backend in ("flash", "cudnn"):

        def keep(c: Case, b: str = backend) -> bool:
            return bool(
                _is(c, backend=b, D=128, Hkv=32, pass_="fwd")
                and c["Sq"] in (4096, 16384)
                and (c["causal"] or c["Sq"] == 4096)
            )

        out += _pick(attn_cases(), keep)
    out += _pick(
        decode_cases(),
        lambda c: (
            _is(c, backend="flash", Hkv=8, B=8, Skv=32768)
            or _is(c, backend="flash", Hkv=8, B=1, Skv=131072)
            or _is(c, backend="flash", Hkv=32, B=32, Skv=4096)
            or _is(c, backend="efficient", Hkv=8, B=8, Skv=32768)
            or _is(c, backend="cudnn", Hkv=8, B=8, Skv=32768)
        ),
    )
    out += _pick(unfused_cases(), lambda c: _is(c, S=4096, D=128))
    out += _pick(flex_cases(), lambda c: _is(c, S=4096, density_target=0.5))
    return out


def _energy_selection() -> list[Case]:
    gemms = [(8192, 8192, 8192), (4096, 4096, 4096), (4096, 28672, 4096), (16384, 57344, 8192)]
    out = [c for c in gemm_cases() if (c["M"], c["N"], c["K"]) in gemms]
    out += _pick(
        attn_cases(),
        lambda c: (
            _is(c, D=128, Hkv=32, causal=True, Sq=16384)
            and c["backend"] in ("flash", "cudnn")
            and c["pass_"] in ("fwd", "bwd")
        ),
    )
    out += _pick(
        decode_cases(),
        lambda c: (
            _is(c, backend="flash", Hkv=8, B=8, Skv=131072)
            or _is(c, backend="flash", Hkv=32, B=8, Skv=32768)
            or _is(c, backend="flash", Hkv=8, B=32, Skv=16384)
        ),
    )
    out += _pick(unfused_cases(), lambda c: _is(c, S=4096, D=128))
    return out


def _smoke_selection() -> list[Case]:
    out = ceiling_cases()
    out += _pick(
        gemm_cases(),
        lambda c: (
            (c["M"], c["N"], c["K"]) in ((4096, 4096, 4096), (1, 28672, 4096), (131072, 128, 4096))
        ),
    )
    out += _pick(
        attn_cases(), lambda c: _is(c, D=128, Sq=4096, causal=True) and c["Hkv"] in (8, 32)
    )
    out += _pick(attn_cases(), lambda c: _is(c, Hkv=8, Sq=2048, causal=False, pass_="fwd"))
    out += _pick(decode_cases(), lambda c: _is(c, B=8, Skv=32768))
    out += _pick(unfused_cases(), lambda c: _is(c, S=2048, D=64))
    out += _pick(flex_cases(), lambda c: _is(c, S=4096) and c["density_target"] in (0.25, 1.0))
    return out


def _unique(cases: Iterable[Case]) -> list[Case]:
    """Drop repeated cases (same :func:`case_key`), keeping the first."""
    seen: set[str] = set()
    out = []
    for c in cases:
        key = case_key(c)
        if key not in seen:
            seen.add(key)
            out.append(c)
    return out


def suite_cases(suite: str) -> list[Case]:
    """Cases of a suite, in run order (most important first, so a time limit cuts the tail).

    Parameters
    ----------
    suite
        ``smoke`` (a few of each kind), ``full`` (everything), ``ncu`` (~20 cases profiled
        for DRAM bytes) or ``energy`` (~10 cases measured with NVML's energy counter).

    Raises
    ------
    ValueError
        If ``suite`` is not one of :data:`SUITES`.
    """
    if suite == "full":
        fwd = [c for c in attn_cases() if c["pass_"] == "fwd"]
        bwd = [c for c in attn_cases() if c["pass_"] == "bwd"]
        return _unique(
            ceiling_cases()
            + gemm_cases()
            + fwd
            + decode_cases()
            + bwd
            + unfused_cases()
            + flex_cases()
        )
    if suite == "smoke":
        return _unique(_smoke_selection())
    if suite == "ncu":
        return _unique(_ncu_selection())
    if suite == "energy":
        return _unique(_energy_selection())
    raise ValueError(f"suite: expected one of {SUITES}, got {suite!r}")
