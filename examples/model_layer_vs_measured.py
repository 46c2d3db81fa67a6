"""One decoder layer of the ``models`` graph against the measured Llama-3-8B layer (H200).

``validation/data/h200_llama_layer.jsonl`` holds one Llama-3-8B-shaped decoder layer timed on
an H200 (bf16, eager PyTorch, replayed from a CUDA graph: ``graph_ms``; provenance in
``validation/data/README.md``). This script builds ``archsim model llama3-8b --arch h200``'s
graph for the same batch, prompt or context, and prints one ``layer`` stage repetition (the
ops of one layer, back to back) beside the measured replay, with the kernels each launches.

The two are not the same program: the graph's layer is what a serving engine runs (one
fused QKV GEMM, one RoPE kernel, one KV-cache write), the measured layer the eager module
(RoPE as ``mul, neg, cat, mul, add`` per q and k, separate q/k/v GEMMs, cache copies): the
kernel counts printed show the difference. ``archsim compare`` on the layer's own trace
simulates the eager kernels one by one.

Run: ``python examples/model_layer_vs_measured.py``
"""

from __future__ import annotations

import json
from pathlib import Path

from models import simulate_model

DATA = Path(__file__).resolve().parents[1] / "validation" / "data" / "h200_llama_layer.jsonl"


def main() -> None:
    """Print one line per measured configuration and phase."""
    records = [json.loads(line) for line in DATA.read_text().splitlines()]
    head = f"{'config':8s} {'phase':8s} {'B':>3s} {'S/ctx':>6s} {'measured':>10s} {'model':>10s}"
    print(f"{head} {'error':>7s} {'kernels meas/model':>19s}")
    for r in records:
        if r.get("kind") != "llama_layer" or "graph_ms" not in r:
            continue
        phase = r["phase"]
        seq = r["S"] if phase == "prefill" else r["context"]
        rep = simulate_model("llama3-8b", "h200", phase=phase, batch=r["B"], seq=seq)
        layer = [x for x in rep.rows if x.stage == "layer"]
        model_us = sum(x.seconds * x.count for x in layer) * 1e6
        kernels = sum(x.kernels * x.count for x in layer)
        meas_us = r["graph_ms"] * 1e3
        measured_kernels = _kernels_per_layer(r)
        print(
            f"{r['config']:8s} {phase:8s} {r['B']:3d} {seq:6d} {meas_us:8.1f}us "
            f"{model_us:8.1f}us {(model_us / meas_us - 1) * 100:+6.1f}% "
            f"{measured_kernels:>10s}/{kernels}"
        )


def _kernels_per_layer(rec: dict[str, object]) -> str:
    """Kernels per layer call in the record's profiler trace (``?`` without one)."""
    from validation._torch_trace import read_torch_trace

    trace = DATA.parent / str(rec["trace"])
    if not trace.exists():
        return "?"
    steps = int(rec.get("profiled_steps", 1))  # type: ignore[call-overload]  # an int field
    return f"{len(read_torch_trace(trace).kernels) / steps:.0f}"


if __name__ == "__main__":
    main()
