"""Turn the ``layer_op`` records of ``validation/harness/layer_ops.py`` into records
``archsim validate`` reads, where the op is one of validate's kinds.

``python -m validation.layer_ops_records validation/data/h200_layer_ops.jsonl > ops.jsonl``
then ``archsim validate ops.jsonl --arch h200``.

``scaled_mm_fp8`` maps to a ``gemm`` record with ``dtype: fp8`` (e4m3 operands, bf16 out);
with ``--bmm`` (``bmm=True``) each ``bmm`` (``torch.bmm(a[b,m,k], c[b,k,n])``) also maps, to
a batched ``gemm`` record (``M=m, N=n, K=k, batch=b``, bf16). The other ops (RMSNorm,
SwiGLU's element-wise part, RoPE, residual adds, the SwiGLU MLP) have no validate kind;
their kernels are compared through the layer traces (``archsim compare``). The ``device``
record is passed through. Standard library only.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterable, Iterator

__all__ = ["to_validate_records"]


def to_validate_records(lines: Iterable[str], *, bmm: bool = False) -> Iterator[dict[str, object]]:
    """The device record and one ``gemm`` record per ``scaled_mm_fp8`` op with a time (and
    per ``bmm`` op when ``bmm``)."""
    for line in lines:
        if not line.strip():
            continue
        rec = json.loads(line)
        if rec.get("kind") == "device":
            yield rec
        elif rec.get("op") == "scaled_mm_fp8" and "ms" in rec and "error" not in rec:
            yield {
                "kind": "gemm",
                "M": rec["M"],
                "N": rec["N"],
                "K": rec["K"],
                "dtype": "fp8",
                "ms": rec["ms"],
                "source": "layer_op scaled_mm_fp8 (torch._scaled_mm, per-tensor scales)",
            }
        elif bmm and rec.get("op") == "bmm" and "ms" in rec and "error" not in rec:
            yield {
                "kind": "gemm",
                "M": rec["m"],
                "N": rec["n"],
                "K": rec["k"],
                "batch": rec["b"],
                "dtype": rec.get("dtype", "bf16"),
                "ms": rec["ms"],
                "source": "layer_op bmm (torch.bmm, a[b,m,k] @ c[b,k,n])",
            }


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else list(argv)
    bmm = "--bmm" in args
    args = [a for a in args if a != "--bmm"]
    if len(args) != 1:
        print(__doc__.splitlines()[3] + "  [--bmm]", file=sys.stderr)  # noqa: T201
        return 2
    with open(args[0]) as fh:
        for rec in to_validate_records(fh, bmm=bmm):
            print(json.dumps(rec))  # noqa: T201
    return 0


if __name__ == "__main__":
    sys.exit(main())
