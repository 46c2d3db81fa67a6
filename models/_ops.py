"""The ops of a model graph and the cascades of the element-wise ones.

An :class:`Op` is one node of a layer: a library cascade of :mod:`workloads.library`
(``gemm``, ``gqa``, ``decode``, ``mla``, ``rmsnorm``, ``softmax`` ...) with its shape
parameters, or one of the small cascades written here (the library has none of them):

- ``residual_add``: ``Y[t,d] = X[t,d] + R[t,d]``;
- ``rope``: rotary embedding of ``H`` heads, ``Y = X * cos + rot(X) * sin`` (Su et al.,
  RoFormer, arXiv 2104.09864, Eq. 34). ``rot`` pairs element ``e`` with its partner in the
  other half and negates one of them; it moves no extra bytes and does no MACs, so the
  cascade reads ``X`` at ``e`` in both terms (same bytes, same 2 mul + 1 add per element);
- ``silu_mul``: SwiGLU's gate, ``Y = silu(G) * U`` (Shazeer, arXiv 2002.05202);
- ``gelu``: the tanh form ``0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3)))`` (Hendrycks &
  Gimpel, arXiv 1606.08415, Sec. 2), as GPT-2/GPT-3 use it;
- ``copy``: ``Y[t,c] = X[t,c]`` (the KV-cache write of the new tokens, the embedding gather);
- ``modulate`` and ``gated_add``: a DiT's adaLN, ``Y = X * (1 + scale) + shift`` and
  ``Y = X + R * gate`` with per-channel ``scale``, ``shift``, ``gate`` (Peebles & Xie,
  "Scalable Diffusion Models with Transformers", ICCV'23, Sec. 3.2; ``1 + scale`` is
  formed once per step, so the cascade multiplies by ``SC = 1 + scale``);
- ``grouped_gemm``: ``Y[g,m,n] = X[g,m,k] * W[g,k,n]``, ``G`` independent GEMMs in one
  kernel (the MoE experts a step touches, each with its own rows and weights, as the fused
  MoE kernels of serving engines run them).

A collective (``all_reduce``, ``all_gather``, ``all_to_all``) is an :class:`Op` with
``collective`` set and its payload in ``bytes``; it is timed by :mod:`models._comm`, not
simulated on a device. A ``fused_read`` op is DRAM traffic inside another op's kernel (a paged
attention's block-table reads): ``bytes`` over the device's DRAM bandwidth, no launch. A
``ring`` op is ring attention over ``cp`` devices (:mod:`models._parallel`): its ``params``
are the attention block each step computes, ``bytes`` the K/V block passed on per step.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import lru_cache

__all__ = ["Op", "CASCADES", "local_workload"]


@dataclass(frozen=True)
class Op:
    """One node of a layer graph, on one device.

    Attributes
    ----------
    name
        Role in the layer (``qkv_proj``, ``attention``, ``ffn_down``, ``tp_all_reduce``).
    workload
        Library cascade name or a :data:`CASCADES` name; ``""`` for a collective.
    params
        Shape parameters of the cascade (elements, tokens).
    collective
        ``all_reduce``, ``all_gather`` or ``all_to_all`` for a collective, else None.
    bytes
        Collective payload: the buffer each device contributes (all-reduce, all-to-all) or
        the gathered result (all-gather), bytes; a ``fused_read``'s DRAM bytes; a ``ring``
        op's K/V block bytes passed per step.
    gpu_dataflow, gpu_knobs
        The dataflow and knobs used on a GPU architecture (``split_kv`` with ``splits`` for
        PagedAttention v1/v2); ``auto`` with no knobs on other architectures.
    special
        ``""`` (a kernel or a collective), ``fused_read`` or ``ring`` (see the module doc).
    steps
        Devices of a collective's group or of a ring (0: the tensor-parallel group).
    info
        Text added to the op's row note (an all-to-all's routing fractions).
    overlaps_prev
        A collective that runs under the ``overlaps_prev`` compute ops before it in its
        stage (they neither produce its input nor read its output): only the part of its
        time longer than theirs is exposed.
    """

    name: str
    workload: str
    params: Mapping[str, object] = field(default_factory=dict)
    collective: str | None = None
    bytes: float = 0.0
    gpu_dataflow: str | None = None
    gpu_knobs: tuple[tuple[str, object], ...] = ()
    special: str = ""
    steps: int = 0
    info: str = ""
    overlaps_prev: int = 0

    @property
    def key(self) -> tuple[object, ...]:
        """The simulation cache key: the cascade and its shape (not the op's role)."""
        return (
            self.workload,
            tuple(sorted(self.params.items())),
            self.gpu_dataflow,
            self.gpu_knobs,
        )

    def describe(self) -> str:
        """``gemm(M=1, K=8192, N=10240)``-style text."""
        if self.collective:
            return f"{self.collective}({self.bytes:.4g} B)"
        if self.special == "fused_read":
            return f"{self.workload}({self.bytes:.4g} B)"
        inner = ", ".join(f"{k}={v}" for k, v in self.params.items() if k != "dtype_bits")
        if self.special == "ring":
            return f"ring {self.steps} x {self.workload}({inner}) + K/V {self.bytes:.4g} B/step"
        knobs = "".join(f", {k}={v}" for k, v in self.gpu_knobs)
        return f"{self.workload}({inner}{knobs})"


def _t(bits: object, *decls: str) -> str:
    return "\n".join(f"tensor {d} : bits={bits}" for d in decls)


#: Element-wise cascades (text builders over their shape parameters) that the library lacks.
CASCADES: dict[str, tuple[tuple[str, ...], str]] = {
    "residual_add": (
        ("T", "Dm"),
        "rank t : T\nrank d : Dm\n{decl}\nY[t,d] = X[t,d] + R[t,d]\n",
    ),
    "rope": (
        ("T", "H", "D"),
        "rank t : T\nrank h : H\nrank e : D\n{decl}\n"
        "Y[t,h,e] = X[t,h,e] * CS[t,e] + X[t,h,e] * SN[t,e]\n",
    ),
    "silu_mul": (
        ("T", "F"),
        "rank t : T\nrank f : F\n{decl}\nY[t,f] = silu(G[t,f]) * U[t,f]\n",
    ),
    "gelu": (
        ("T", "F"),
        "rank t : T\nrank f : F\n{decl}\n"
        "Y[t,f] = 0.5 * X[t,f] * (1 + tanh(0.7978845608 * (X[t,f] + 0.044715 * X[t,f] * X[t,f]"
        " * X[t,f])))\n",
    ),
    "copy": (
        ("T", "C"),
        "rank t : T\nrank c : C\n{decl}\nY[t,c] = X[t,c]\n",
    ),
    "modulate": (
        ("T", "Dm"),
        "rank t : T\nrank d : Dm\n{decl}\nY[t,d] = X[t,d] * SC[d] + SH[d]\n",
    ),
    "gated_add": (
        ("T", "Dm"),
        "rank t : T\nrank d : Dm\n{decl}\nY[t,d] = X[t,d] + R[t,d] * GT[d]\n",
    ),
    "grouped_gemm": (
        ("G", "M", "K", "N"),
        "rank g : G\nrank m : M\nrank k : K\nrank n : N\n{decl}\nY[g,m,n] = X[g,m,k] * W[g,k,n]\n",
    ),
}

_DECLS = {
    "residual_add": ("X[t,d]", "R[t,d]"),
    "rope": ("X[t,h,e]", "CS[t,e]", "SN[t,e]"),
    "silu_mul": ("G[t,f]", "U[t,f]"),
    "gelu": ("X[t,f]",),
    "copy": ("X[t,c]",),
    "modulate": ("X[t,d]", "SC[d]", "SH[d]"),
    "gated_add": ("X[t,d]", "R[t,d]", "GT[d]"),
    "grouped_gemm": ("X[g,m,k]", "W[g,k,n]"),
}


@lru_cache(maxsize=256)
def _text(name: str, params: tuple[tuple[str, object], ...]) -> str:
    p = dict(params)
    shape, body = CASCADES[name]
    head = "\n".join(f"param {k} = {int(p[k])}" for k in shape)  # type: ignore[call-overload]  # config sizes; int() checks
    decls = _t(p.get("dtype_bits", 16), *_DECLS[name])
    return head + "\n" + body.replace("{decl}", decls)


def local_workload(name: str, params: Mapping[str, object]) -> object:
    """The workload (``mappings`` ``FileWorkload``) of local cascade ``name``."""
    from mappings._api import FileWorkload
    from workloads import parse_cascade

    text = _text(name, tuple(sorted(params.items())))
    cas = parse_cascade(text, name=name)
    merged = dict(cas.params)
    return FileWorkload(name, cas, merged, cas.rank_sizes(merged))
