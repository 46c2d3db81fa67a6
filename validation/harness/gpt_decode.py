"""Measured GPU baseline for PIM-GPT: batch-1 GPT token generation in PyTorch.

``python3 -m validation.harness.gpt_decode --out FILE.jsonl [--context 1024] [--tokens 64]
[--models NAME ...] [--graph] [--device cuda|cpu]``

PIM-GPT (Wu et al., arXiv 2310.09385) compares its PIM system with a GPU *running the
model*: every generated token is one forward pass of a GPT model at batch 1 over a KV
cache. This harness measures that on the lent GPU for the eight GPT shapes of the paper
(GPT-2 small…XL, GPT-3 small…XL; layers x d_model x heads as the ``models`` presets
``gpt2-small`` …), using Hugging Face ``transformers``' ``GPT2LMHeadModel`` with random
weights (timing does not depend on the weight values; no download is needed), fp16:

- **eager** (always): prefill a prompt of ``context - tokens - 4`` random token ids, run 4
  warm-up steps, then time ``tokens`` decode steps back to back with CUDA events
  (``ms_per_token``); energy per token from NVML's total-energy counter over a loop of
  >= 2.5 s of one decode step over the prompt's cache (``energy_loop_ms_per_token``,
  ``mJ_per_token``, ``avg_W``, ``sm_clock``; :mod:`validation.harness.energy`).
- **CUDA graph** (``--graph``): the same model's modules (its embeddings, LayerNorms,
  ``Conv1D`` QKV/O/FFN layers with their biases, the tied LM head) driven by
  :class:`StaticDecodeStep`, a decode step over a fixed-size KV cache of the full
  ``context`` (``context - 1`` prompt positions filled by a prefill, the new token written at
  the last slot, attention over all ``context`` keys through
  ``F.scaled_dot_product_attention``, GELU as one ``F.gelu(approximate="tanh")`` kernel, the
  same function as GPT-2's ``gelu_new``). The step is captured once in a CUDA graph and
  replayed per token: ``graph_ms_per_token`` (``tokens`` replays back to back, CUDA events)
  and ``graph_cold_ms`` (median of replays each after an L2 flush,
  :func:`validation.harness.timing.bench`) hold kernel time and the GPU's own inter-kernel
  gaps, no Python or framework time. A ``torch.profiler`` trace of a few replays gives
  ``kernel_ms_per_token`` (sum of kernel, memcpy and memset durations per replay) and
  ``graph_kernels_per_token`` (``kernel_profile_source``: ``graph replay``, or the same step
  run uncaptured, ``step_kernel_ms`` / ``step_kernels``, when the profiler sees fewer kernels
  in the replays); NVML the replay loop's ``graph_mJ_per_token`` and ``graph_avg_W``;
  ``static_eager_ms_per_token`` is the same step launched from Python uncaptured.
  Before timing, the step's logits are checked against the Hugging Face model's own forward
  of the same tokens (``graph_logits_max_abs_diff``, relative to the
  logits' scale in ``graph_logits_rel_diff``; the run stops a model whose step disagrees).
  Every replay does the same work (a decode step at position ``context - 1`` over the full
  cache), which is the step the ``models`` graph simulates at ``--set S=context``.

``--device cpu`` runs the same code without CUDA (fp32; no graph capture, no profiler, no
NVML: the static step is timed uncaptured and recorded with ``graph_captured: false``), as a
dry run of the harness on a machine without a GPU.

Records: first a ``device`` record (:func:`validation.harness.measure.device_record` on a
GPU), then one ``{"kind": "gpt_decode", "model", "layers", "d_model", "heads", "context",
"batch": 1, "dtype", "ms_per_token", "wall_ms_per_token", "mJ_per_token", "avg_W",
"sm_clock", "energy_loop_ms_per_token"}`` per model, plus with ``--graph`` the ``graph_*``
and ``kernel_ms_per_token`` fields above. Standard library + torch + transformers only.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
import time

#: name -> (layers, d_model, heads): PIM-GPT's eight models, as the ``models`` presets
#: (``models._spec.GPT_PRESETS``; GPT-3 XL as 16 heads x 128, see there). A copy: this
#: module runs on the GPU machine with torch alone and cannot import archsim;
#: tests/reproduce/test_pimgpt_measured.py holds the two tables equal.
GPT_MODELS: dict[str, tuple[int, int, int]] = {
    "gpt2-small": (12, 768, 12),
    "gpt2-medium": (24, 1024, 16),
    "gpt2-large": (36, 1280, 20),
    "gpt2-xl": (48, 1600, 25),
    "gpt3-small": (12, 768, 12),
    "gpt3-medium": (24, 1024, 16),
    "gpt3-large": (24, 1536, 16),
    "gpt3-xl": (24, 2048, 16),
}
VOCAB = 50257
#: Largest ``graph_logits_rel_diff`` (max |step - HF| over the HF logits' max |.|) accepted:
#: fp16 rounding of two kernel orders differs by ~1e-3 of the scale.
LOGITS_REL_TOL = 2e-2


def _model(layers: int, d: int, heads: int, context: int, device: str, dtype):  # noqa: ANN001, ANN202 - torch dtype and module
    import torch
    from transformers import GPT2Config, GPT2LMHeadModel

    cfg = GPT2Config(n_layer=layers, n_embd=d, n_head=heads, n_positions=context, vocab_size=VOCAB)
    torch.manual_seed(0)
    with torch.device(device):  # initialise on the GPU: CPU init of 1.5B weights is slow
        model = GPT2LMHeadModel(cfg)
    return model.to(dtype=dtype).eval()


class StaticDecodeStep:
    """A GPT-2 forward over a fixed-size KV cache, built from a ``GPT2LMHeadModel``'s modules.

    The cache holds ``context`` positions per layer (``[1, heads, context, head_dim]`` for K
    and for V). :meth:`prefill` runs the first ``n`` tokens (causal attention) and fills
    positions ``0..n-1``; :meth:`decode` runs the token in :attr:`ids` at position
    ``context - 1`` against all ``context`` cached keys. Every tensor :meth:`decode` touches is
    allocated here, so it can be captured in a CUDA graph and replayed.
    """

    def __init__(self, model, context: int) -> None:  # noqa: ANN001 - GPT2LMHeadModel
        import torch

        tr = model.transformer
        p = next(model.parameters())
        self.model, self.context = model, context
        self.heads = model.config.n_head
        self.d = model.config.n_embd
        self.head_dim = self.d // self.heads
        shape = (1, self.heads, context, self.head_dim)
        self.k = [torch.zeros(shape, dtype=p.dtype, device=p.device) for _ in tr.h]
        self.v = [torch.zeros(shape, dtype=p.dtype, device=p.device) for _ in tr.h]
        self.ids = torch.zeros((1, 1), dtype=torch.long, device=p.device)
        self.pos = torch.full((1, 1), context - 1, dtype=torch.long, device=p.device)

    def _forward(self, ids, pos, start: int):  # noqa: ANN001, ANN202 - torch tensors
        import torch.nn.functional as F  # noqa: N812 - the usual name

        tr = self.model.transformer
        T = ids.shape[1]
        x = tr.wte(ids) + tr.wpe(pos)
        for i, block in enumerate(tr.h):
            h = block.ln_1(x)
            q, k, v = block.attn.c_attn(h).split(self.d, dim=2)
            q, k, v = (t.view(1, T, self.heads, self.head_dim).transpose(1, 2) for t in (q, k, v))
            self.k[i][:, :, start : start + T].copy_(k)
            self.v[i][:, :, start : start + T].copy_(v)
            keys, vals = self.k[i][:, :, : start + T], self.v[i][:, :, : start + T]
            a = F.scaled_dot_product_attention(q, keys, vals, is_causal=T > 1)
            x = x + block.attn.c_proj(a.transpose(1, 2).reshape(1, T, self.d))
            h = F.gelu(block.mlp.c_fc(block.ln_2(x)), approximate="tanh")
            x = x + block.mlp.c_proj(h)
        return self.model.lm_head(tr.ln_f(x))

    def prefill(self, ids):  # noqa: ANN001, ANN201 - torch tensors
        """Run ``ids`` (``[1, n]``, ``n < context``) from position 0; fills the cache."""
        import torch

        n = ids.shape[1]
        pos = torch.arange(n, device=ids.device).view(1, n)
        return self._forward(ids, pos, 0)

    def decode(self):  # noqa: ANN201 - torch tensor
        """Logits ``[1, 1, vocab]`` of :attr:`ids` at position ``context - 1``."""
        return self._forward(self.ids, self.pos, self.context - 1)


def check_step(model, step: StaticDecodeStep, prompt, token) -> dict[str, float]:  # noqa: ANN001
    """Fill ``step``'s cache with ``prompt`` (``context - 1`` ids), decode ``token`` and
    compare its logits with the Hugging Face model's forward of ``prompt + token``."""
    import torch

    step.prefill(prompt)
    step.ids.copy_(token)
    mine = step.decode()[0, -1].float()
    ref = model(input_ids=torch.cat([prompt, token], dim=1)).logits[0, -1].float()
    diff = float((mine - ref).abs().max())
    scale = float(ref.abs().max())
    return {"graph_logits_max_abs_diff": diff, "graph_logits_rel_diff": diff / scale}


def _profile_kernels(fn, n: int) -> tuple[float, float] | None:  # noqa: ANN001 - callable
    """(kernel ms, kernels) per call of ``fn`` from a ``torch.profiler`` trace of ``n``
    calls: the durations of every kernel, memcpy and memset on the GPU; None if the trace
    holds none."""
    import torch
    from torch.profiler import ProfilerActivity, profile

    fn()
    torch.cuda.synchronize()
    with profile(activities=[ProfilerActivity.CUDA]) as prof:
        for _ in range(n):
            fn()
        torch.cuda.synchronize()
    fd, path = tempfile.mkstemp(suffix=".json")
    os.close(fd)
    try:
        prof.export_chrome_trace(path)
        with open(path) as fh:
            events = json.load(fh).get("traceEvents", [])
    finally:
        os.unlink(path)
    gpu = [
        e
        for e in events
        if e.get("ph") == "X" and e.get("cat") in ("kernel", "gpu_memcpy", "gpu_memset")
    ]
    if not gpu:
        return None
    return sum(float(e["dur"]) for e in gpu) / 1e3 / n, len(gpu) / n


def measure_graph(model, context: int, tokens: int, nvml, sampler, device: str) -> dict:  # noqa: ANN001
    """The ``graph_*`` fields of one model (see the module doc)."""
    import torch

    gen = torch.Generator(device=device).manual_seed(1)
    prompt = torch.randint(0, VOCAB, (1, context - 1), device=device, generator=gen)
    token = torch.randint(0, VOCAB, (1, 1), device=device, generator=gen)
    step = StaticDecodeStep(model, context)
    rec: dict = {"graph_context": context}
    with torch.no_grad():
        rec.update(check_step(model, step, prompt, token))
        if not rec["graph_logits_rel_diff"] <= LOGITS_REL_TOL:
            raise RuntimeError(
                f"static decode step disagrees with the model: relative logit difference "
                f"{rec['graph_logits_rel_diff']:.3g} > {LOGITS_REL_TOL}"
            )
        if device == "cpu":
            step.decode()
            t0 = time.perf_counter()
            for _ in range(tokens):
                step.decode()
            rec["graph_ms_per_token"] = (time.perf_counter() - t0) * 1e3 / tokens
            rec["graph_captured"] = False
            return rec
        from validation.harness.timing import bench

        side = torch.cuda.Stream()
        side.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(side):  # warm-up off the capture: cuBLAS handles, SDPA choice
            for _ in range(3):
                step.decode()
        torch.cuda.current_stream().wait_stream(side)
        # the same step launched from Python, uncaptured: its time over the replay's is the
        # per-kernel launch cost of eager execution without Hugging Face's own overhead
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        for _ in range(tokens):
            step.decode()
        end.record()
        end.synchronize()
        rec["static_eager_ms_per_token"] = start.elapsed_time(end) / tokens
        g = torch.cuda.CUDAGraph()
        with torch.cuda.graph(g):
            step.decode()
        for _ in range(5):
            g.replay()
        torch.cuda.synchronize()
        loops = []
        for _ in range(5):  # `tokens` replays back to back, as a generation runs them
            start = torch.cuda.Event(enable_timing=True)
            end = torch.cuda.Event(enable_timing=True)
            start.record()
            for _ in range(tokens):
                g.replay()
            end.record()
            end.synchronize()
            loops.append(start.elapsed_time(end) / tokens)
        rec["graph_ms_per_token"] = statistics.median(loops)
        rec["graph_ms_per_token_min"] = min(loops)
        rec["graph_captured"] = True
        cold = bench(g.replay)
        rec["graph_cold_ms"] = cold["ms"]
        # the kernels of the replays and of the same step run uncaptured (its kernels are the
        # graph's): if the profiler misses kernels inside graphs, the uncaptured sum stands
        replayed = _profile_kernels(g.replay, 5)
        uncaptured = _profile_kernels(step.decode, 5)
        if uncaptured is not None:
            rec["step_kernel_ms"], rec["step_kernels"] = uncaptured
        prof, rec["kernel_profile_source"] = replayed, "graph replay"
        if uncaptured is not None and (replayed is None or replayed[1] < 0.9 * uncaptured[1]):
            prof, rec["kernel_profile_source"] = uncaptured, "uncaptured static step"
        if prof is not None:
            rec["kernel_ms_per_token"], rec["graph_kernels_per_token"] = prof
        if nvml is not None:
            from validation.harness.energy import measure_energy

            e = measure_energy(g.replay, rec["graph_ms_per_token"], nvml, sampler)
            rec.update(
                graph_mJ_per_token=e["mJ_per_iter"],
                graph_avg_W=e["avg_W"],
                graph_sm_clock=e["sm_clock"],
                graph_energy_loop_ms_per_token=e["loop_ms_per_iter"],
            )
        del g
    return rec


def measure_model(  # noqa: PLR0913 - the run's settings
    name: str,
    context: int,
    tokens: int,
    nvml,  # noqa: ANN001 - Nvml | None
    sampler,  # noqa: ANN001 - ClockSampler | None
    *,
    graph: bool = False,
    device: str = "cuda",
) -> dict:
    """Decode latency per token (and energy, when NVML is available) of one GPT shape;
    with ``graph``, also the CUDA-graph replay of :class:`StaticDecodeStep`."""
    import torch

    layers, d, heads = GPT_MODELS[name]
    dtype = torch.float16 if device == "cuda" else torch.float32
    model = _model(layers, d, heads, context, device, dtype)
    gen = torch.Generator(device=device).manual_seed(0)
    prompt = torch.randint(0, VOCAB, (1, context - tokens - 4), device=device, generator=gen)
    step_ids = torch.randint(0, VOCAB, (tokens + 4, 1, 1), device=device, generator=gen)
    cuda = device == "cuda"
    rec: dict = {  # bare dict: JSON values of mixed types
        "kind": "gpt_decode",
        "model": name,
        "layers": layers,
        "d_model": d,
        "heads": heads,
        "context": context,
        "batch": 1,
        "dtype": "fp16" if cuda else "fp32",
        "device": device,
        "tokens_timed": tokens,
    }
    with torch.inference_mode():
        out = model(input_ids=prompt, use_cache=True)
        for i in range(4):  # warm-up steps: lazy allocations, cuBLAS heuristics
            out = model(input_ids=step_ids[i], past_key_values=out.past_key_values, use_cache=True)
        if cuda:
            torch.cuda.synchronize()
            start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            start.record()
        t0 = time.perf_counter()
        for i in range(4, tokens + 4):  # back to back, as generate() runs: no sync per step
            out = model(input_ids=step_ids[i], past_key_values=out.past_key_values, use_cache=True)
        if cuda:
            end.record()
            end.synchronize()
        wall_ms = (time.perf_counter() - t0) * 1e3
        rec["ms_per_token"] = start.elapsed_time(end) / tokens if cuda else wall_ms / tokens
        rec["wall_ms_per_token"] = wall_ms / tokens
        if nvml is not None:
            cache = model(input_ids=prompt, use_cache=True).past_key_values
            length = cache.get_seq_length()

            def one_token() -> None:
                # one decode step over the prompt's cache, then drop the appended K/V
                # (DynamicCache.crop) so every call of the energy loop does the same work
                model(input_ids=step_ids[0], past_key_values=cache, use_cache=True)
                cache.crop(length)

            from validation.harness.energy import measure_energy

            e = measure_energy(one_token, rec["ms_per_token"], nvml, sampler)
            rec.update(
                mJ_per_token=e["mJ_per_iter"],
                avg_W=e["avg_W"],
                sm_clock=e["sm_clock"],
                energy_loop_ms_per_token=e["loop_ms_per_iter"],
            )
    if graph:
        rec.update(measure_graph(model, context, tokens, nvml, sampler, device))
    return rec  # the model is freed with this frame; main() empties the CUDA cache


def _cpu_device_record(command: list[str]) -> dict:
    import torch

    return {
        "kind": "device",
        "name": f"cpu ({platform.processor() or platform.machine()})",
        "torch": torch.__version__,
        "python": platform.python_version(),
        "command": command,
        "utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", required=True)
    ap.add_argument("--context", type=int, default=1024)
    ap.add_argument("--tokens", type=int, default=64)
    ap.add_argument("--models", nargs="*", default=list(GPT_MODELS), choices=list(GPT_MODELS))
    ap.add_argument("--graph", action="store_true", help="also the CUDA-graph replay")
    ap.add_argument("--device", default="cuda", choices=["cuda", "cpu"])
    args = ap.parse_args(argv)
    if args.context <= args.tokens + 4:
        ap.error(f"--context must exceed --tokens + 4 = {args.tokens + 4} (the prompt)")
    command = [sys.executable, *(sys.argv if argv is None else ["gpt_decode", *argv])]
    nvml = sampler = None
    if args.device == "cuda":
        from validation.harness.energy import ClockSampler, Nvml
        from validation.harness.measure import device_record

        try:
            nvml = Nvml()
            sampler = ClockSampler(nvml)
        except (RuntimeError, OSError):
            nvml, sampler = None, None
        device = device_record(nvml, command)
    else:
        device = _cpu_device_record(command)
    with open(args.out, "w") as fh:
        fh.write(json.dumps(device) + "\n")
        fh.flush()
        for name in args.models:
            try:
                rec = measure_model(
                    name,
                    args.context,
                    args.tokens,
                    nvml,
                    sampler,
                    graph=args.graph,
                    device=args.device,
                )
                if args.device == "cuda":
                    import torch

                    torch.cuda.empty_cache()
            except Exception as exc:  # noqa: BLE001 - one failing model must not end the run
                rec = {"kind": "gpt_decode", "model": name, "error": f"{type(exc).__name__}: {exc}"}
            fh.write(json.dumps(rec) + "\n")
            fh.flush()
            print(json.dumps(rec))
    return 0


if __name__ == "__main__":
    sys.exit(main())
