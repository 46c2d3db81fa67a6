"""Turn the ``layer_op`` records of ``validation/harness/layer_ops.py`` into records
``archsim validate`` reads, where the op is one of validate's kinds.

``python -m validation.layer_ops_records validation/data/h200_layer_ops.jsonl > ops.jsonl``
then ``archsim validate ops.jsonl --arch h200``.

Only ``scaled_mm_fp8`` maps today (a ``gemm`` record with ``dtype: fp8``, e4m3 operands,
bf16 out). The other ops (RMSNorm, SwiGLU's element-wise part, RoPE, residual adds, the
SwiGLU MLP, ``bmm``) have no validate kind; their kernels are compared through the layer
traces (``archsim compare``). The ``device`` record is passed through. Standard library only.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterable, Iterator

__all__ = ["to_validate_records"]


def to_validate_records(lines: Iterable[str]) -> Iterator[dict[str, object]]:
    """The device record and one ``gemm`` record per ``scaled_mm_fp8`` op with a time."""
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


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        print(__doc__.splitlines()[3], file=sys.stderr)  # noqa: T201
        return 2
    with open(args[0]) as fh:
        for rec in to_validate_records(fh):
            print(json.dumps(rec))  # noqa: T201
    return 0


if __name__ == "__main__":
    sys.exit(main())
