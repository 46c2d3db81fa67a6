"""Context (sequence) parallelism for attention and expert parallelism for MoE layers.

Context parallelism, ``cp`` devices (each also ``tp``-way tensor parallel)
-----------------------------------------------------------------------
Prefill: the ``B x S`` tokens are split by position, ``S / cp`` per device (causal models
load-balanced with the zig-zag split of Llama 3's context parallelism, Dubey et al., arXiv
2407.21783, Sec. 3.3.2: device ``i`` holds chunks ``i`` and ``2 cp - 1 - i``, so every device
does the same attention work). Every op but attention runs on the device's own tokens with
all its weights. Attention is one of:

- ``ring`` (Liu, Zaharia & Abbeel, "Ring Attention with Blockwise Transformers",
  arXiv 2310.01889): ``cp`` steps; in each a device computes its queries against one K/V
  block of ``S / cp`` positions while it passes the block it holds to the next device
  (``n = B (S / cp) Hkv (D + Dv)`` elements, :func:`models._comm.ring_step_time`
  ``t = alpha + n / beta``). A step's compute ``c`` is the simulated attention of one block
  (``Sq = Skv = S / cp``, causal for a decoder: with the zig-zag split each step does half a
  block's work, as the causal diagonal block does). The transfer of step ``i`` overlaps the
  compute of step ``i`` (neither reads the other's data), so the ring takes
  ``c + (cp - 1) max(c, t)`` and exposes ``(cp - 1) max(0, t - c)`` of communication
  (:func:`ring_attention_time`);
- ``all_gather``: an all-gather of the whole K/V (``B S Hkv (D + Dv)`` elements, the ring
  or tree closed form of :mod:`models._comm`), not overlapped (the attention reads it), then
  the device's queries against all ``S`` keys: for a causal model the zig-zag queries see
  half the keys on average, simulated as ``Sq = S / (2 cp)`` queries against ``S`` keys with
  no mask (the same score count and the same K/V bytes).

Decode: each device holds ``ceil(S / cp)`` positions of every sequence's cache (flash-decoding
across devices); the new tokens' projections and FFN run on every device (weights are
replicated over ``cp``); each device attends over its shard; the partial outputs and
log-sum-exps (fp32) are all-gathered and merged (the merge's arithmetic is not charged).

Expert parallelism, ``ep`` devices
----------------------------------
Attention, the dense layers, shared experts and the LM head run data-parallel (``B / ep``
sequences per device, replicated weights); each device holds ``E / ep`` whole routed
experts. With ``T`` tokens in the step, ``T / ep`` on each device and ``k`` distinct experts
per token routed uniformly, a device sends ``(T / ep) k`` token vectors of ``d_model``
elements in the dispatch all-to-all, ``(ep - 1) / ep`` of them to other devices (the routing
fraction). It receives ``T k / ep`` copies on average, but the step waits for the busiest
device: the copies one token sends to a device are hypergeometric (``k`` draws from ``E``
experts, ``E / ep`` of them the device's), a device's load ``X`` is the sum over the ``T``
tokens (its distribution exact, by FFT), and the busiest of ``ep`` devices receives
``R = E[max X] = sum_m (1 - F(m)^ep)`` copies (:func:`busiest_device_copies`; the devices'
loads are treated as independent, which a Monte Carlo check in the tests puts within 3%).
Its ``R`` rows spread uniformly over its ``E / ep`` experts touch
``g = (E / ep)(1 - (1 - ep / E)^R)`` of them, ``ceil(R / g)`` rows each (one grouped GEMM).
The all-to-alls move ``n = max((T / ep) k, R) d_model`` elements per device (the busiest
device's receive bounds each round); the combine sends the outputs back (the same bytes).
Both are :func:`models._comm.collective_time` ``all_to_all`` (pairwise exchange). Neither
overlaps the routed experts (they read the dispatch, the combine reads them); the
dispatch needs only the router's choice, so it runs under the shared expert's FFN, which
neither feeds it nor reads it: only ``max(0, t - shared expert time)`` of it is exposed.
(DeepSeek-V3's report, arXiv 2412.19437, "Inference and Deployment", hides its decode
all-to-alls under the computation of a second micro-batch; with one micro-batch the shared
expert is the independent computation there is. Compute slowed by the transfer is not
modelled.)

With ``tp`` as well (``tp x ep`` devices; DeepSeek-V3's deployment, arXiv 2412.19437,
Sec. 3.4: attention TP4 with data parallelism beside it, the MoE part EP32 in prefill and
EP320 in decode): ``ep`` data-parallel groups of ``tp`` devices each run attention, the dense
layers, the shared experts and the LM head Megatron-style on their ``B / ep`` sequences (the
all-reduces inside the group); the routed experts are spread whole over all ``p = tp x ep``
devices (``E / p`` each). The group's tokens are replicated on its ``tp`` devices after the
attention all-reduce, so each device dispatches its own ``ceil(T / tp)`` of them (``T``
the group's tokens; a slice it picks, no transfer): the formulas above with ``p`` devices,
``T ep`` tokens in all and ``ceil(T / tp) k`` copies sent. After the combine each device
holds the routed outputs of its slice; the layer's all-reduce over the group (which sums
the shared expert's column-split partial outputs) adds them in, so routed outputs cost no
collective of their own (each device contributes its slice's rows, zeros elsewhere).

With ``cp`` as well (``tp x cp x ep`` devices, the routed experts whole over all of them): in
prefill each device holds its own ``S / cp`` positions of its ``B / ep`` sequences, distinct
tokens, and dispatches ``ceil(T / tp)`` of them (``T = (B / ep)(S / cp)``; ``T ep cp`` tokens
in all). In decode every device of a context-parallel group holds the same new tokens (only
the cache is sharded), so ``tp x cp`` devices share ``T = B / ep`` tokens and each dispatches
``ceil(T / (tp cp))``; after the combine the ``cp`` devices of one tensor-parallel rank
all-gather their slices' routed outputs (``ceil(T / tp)`` rows of ``d_model``; the ring or
tree closed form), before the group's FFN all-reduce.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from functools import lru_cache
from typing import TYPE_CHECKING

import numpy as np

from models._ops import Op
from models._spec import ModelError, ModelSpec

if TYPE_CHECKING:
    from models._graph import _Builder

__all__ = [
    "CP_MODES",
    "check_parallel",
    "ring_attention_time",
    "ring_schedule",
    "busiest_device_copies",
]

CP_MODES = ("ring", "all_gather")


def check_parallel(
    spec: ModelSpec, *, phase: str, batch: int, seq: int, tp: int, cp: int, ep: int, mode: str
) -> None:
    """Refuse a ``cp`` / ``ep`` the model or the shapes cannot take (a named ModelError)."""
    if mode not in CP_MODES:
        raise ModelError(
            "unknown context-parallel mode", path="cp_mode", expected=str(CP_MODES), got=mode
        )
    if spec.family == "dit" and (cp > 1 or ep > 1):
        raise ModelError(
            "context/expert parallelism is built for decoder and encoder models",
            path="cp" if cp > 1 else "ep",
            expected="1 for a diffusion transformer",
            got=cp if cp > 1 else ep,
        )
    if cp > 1 and phase == "prefill":
        # prefill: S / cp positions per device; causal zig-zag: 2 cp chunks of S / (2 cp)
        # (decode: the busiest device holds ceil(S / cp) positions; any S will do)
        chunks = 2 * cp if phase == "prefill" and spec.family == "decoder" else cp
        if seq % chunks:
            raise ModelError(
                "context parallelism must split the sequence evenly",
                path="cp",
                expected=f"S = {seq} divisible by {chunks} ({'2 x ' if chunks != cp else ''}cp)",
                got=cp,
            )
    if ep > 1:
        if not spec.experts:
            raise ModelError(
                "expert parallelism needs a mixture-of-experts model",
                path="ep",
                expected=f"1 ({spec.name} has no routed experts)",
                got=ep,
            )
        if spec.experts % (tp * cp * ep):
            raise ModelError(
                "expert parallelism must split the routed experts evenly over tp x cp x ep devices",
                path="ep",
                expected=f"tp x cp x ep a divisor of experts = {spec.experts} (tp = {tp}, "
                f"cp = {cp})",
                got=ep,
            )
        if batch % ep:
            raise ModelError(
                "expert parallelism runs attention data-parallel: the batch must split evenly",
                path="ep",
                expected=f"a divisor of B = {batch}",
                got=ep,
            )


def ring_attention_time(step_s: float, link_s: float, steps: int) -> float:
    """Seconds of a ring of ``steps`` devices: ``c + (steps - 1) max(c, t)`` (module doc)."""
    return step_s + (steps - 1) * max(step_s, link_s)


def ring_schedule(step_s: float, link_s: float, steps: int) -> list[tuple[int, float, float, int]]:
    """(step, start s, duration s, thread) spans of one device's ring: thread 0 the block
    computes, thread 1 the block sends (step ``i``'s send starts with its compute)."""
    out: list[tuple[int, float, float, int]] = []
    t = 0.0
    for i in range(steps):
        out.append((i, t, step_s, 0))
        if i < steps - 1:
            out.append((i, t, link_s, 1))
            t += max(step_s, link_s)
    return out


def cp_prefill_attention(b: _Builder, workload: str, params: Mapping[str, object]) -> list[Op]:
    """The attention ops of one device under prefill context parallelism (module doc)."""
    s, cp = b.s, b.cp
    if workload == "mla":
        kv_elts = s.kv_lora_rank + s.rope_dim  # the latent cache is what is passed
    else:
        kv_elts = b.hk * (s.head_dim + s.v_head_dim)
    block = float(b.b_local * (b.seq // cp) * kv_elts * s.elt_bytes)
    causal = bool(params.get("causal", False))
    if b.cp_mode == "ring":
        step = {**params, "Sq": b.seq // cp, "Skv": b.seq // cp}
        return [Op("ring_attention", workload, step, bytes=block, special="ring", steps=cp)]
    sq = b.seq // (2 * cp) if causal else b.seq // cp
    full = {**params, "Sq": sq, "Skv": b.seq, "causal": False}
    gather = Op("cp_kv_all_gather", "", {}, collective="all_gather", bytes=block * cp, steps=cp)
    return [gather, Op("attention", workload, full)]


@lru_cache(maxsize=128)
def busiest_device_copies(experts: int, active: int, tokens: int, ep: int) -> float:
    """Expected routed copies the busiest of ``ep`` devices receives when ``tokens`` tokens
    each pick ``active`` distinct experts of ``experts`` uniformly and every device holds
    ``experts / ep`` of them (module doc; the devices' loads taken as independent)."""
    from scipy.fft import next_fast_len
    from scipy.stats import hypergeom

    local = experts // ep
    top = min(active, local)
    per_token = hypergeom.pmf(np.arange(top + 1), experts, local, active)
    n = tokens * top + 1
    size = next_fast_len(n)
    pmf = np.fft.irfft(np.fft.rfft(per_token, size) ** tokens, size)[:n]
    cdf = np.cumsum(np.clip(pmf, 0.0, None))
    cdf /= cdf[-1]
    return float(np.sum(1.0 - cdf**ep))


def ep_experts(b: _Builder) -> list[Op]:
    """Dispatch all-to-all, the busiest device's grouped experts, combine all-to-all
    (module doc; with ``tp`` / ``cp``: over all ``tp x cp x ep`` devices, each dispatching
    its share of the tokens it holds, then in decode under ``cp`` an all-gather of the
    routed outputs over the ``cp`` devices that share the tokens)."""
    s, tp, cp = b.s, b.tp, b.cp
    p = tp * cp * b.ep  # devices the routed experts are spread over
    decode = b.phase == "decode"
    shared_by = tp * (cp if decode else 1)  # devices holding the same tokens
    t_all = b.T * b.ep * (1 if decode else cp)  # tokens of the step, all devices
    sent = math.ceil(b.T / shared_by)  # tokens the busiest device dispatches
    k, local = s.active_experts, s.experts // p
    mean = t_all * k / p
    busiest = busiest_device_copies(s.experts, k, t_all, p)
    touched = local * (1.0 - (1.0 - 1.0 / local) ** busiest)
    g = max(1, min(local, round(touched)))
    rows = max(1, math.ceil(busiest / g))
    nbytes = float(max(sent * k, busiest) * s.d_model * s.elt_bytes)
    f, d = s.moe_ffn_dim, s.d_model
    grouped = {"G": g, "M": rows, "dtype_bits": b.bits}
    info = (
        f"routing: {sent} tokens x {k} experts from this device, uniform over {s.experts} "
        f"experts: {(p - 1) / p:.1%} of the copies leave the device; a device receives "
        f"{mean:.4g} copies on average, the busiest {busiest:.4g}: {g} of its {local} "
        f"experts touched, {rows} rows each"
    )
    a2a = {"collective": "all_to_all", "bytes": nbytes, "steps": p, "info": info}
    # the dispatch needs only the router's choice: it runs under the shared expert's FFN
    # (which neither feeds it nor reads it), the ops just before it
    under = 3 if s.shared_experts else 0
    ops = [
        Op("ep_dispatch", "", {}, overlaps_prev=under, **a2a),  # type: ignore[arg-type]  # Op fields by name
        Op("experts_gate_up", "grouped_gemm", {**grouped, "K": d, "N": 2 * f}),
        b.ew("experts_act", "silu_mul", T=g * rows, F=f),
        Op("experts_down", "grouped_gemm", {**grouped, "K": f, "N": d}),
        Op("ep_combine", "", {}, **a2a),  # type: ignore[arg-type]  # Op fields by name
    ]
    if decode and cp > 1:  # the cp devices of a tp rank gather their slices' outputs
        rows_tp = math.ceil(b.T / tp)
        gather = float(rows_tp * d * s.elt_bytes)
        info = f"the routed outputs of {rows_tp} tokens, {sent} from each of {cp} devices"
        ops.append(
            Op(
                "ep_outputs_gather",
                "",
                {},
                collective="all_gather",
                bytes=gather,
                steps=cp,
                info=info,
            )
        )
    return ops
