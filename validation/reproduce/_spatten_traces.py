"""SpAtten's released GPT-2 workload traces, summarised per layer (inputs of the reproduction).

Source: ``mit-han-lab/spatten`` at commit ``a0f1388`` (the authors' repository, "SpAtten
hardware released" 2023/10), ``spatten_hardware/hardware/workloads/``: one CSV row per
(generated token, layer, head) that the RTL simulator replays, with the keys and values the
fetcher loads (``key_fetch_num``, ``value_fetch_num``) out of the context
(``sentence_length_L``, 993-1024: 32 tokens generated after 992), their bit widths
(``quant_key_bit``, ``quant_value_bit``, ``quant_query_bit``) and whether the keys' LSBs are
fetched again (``if_requant``, ``auto_requant_incre`` more bits). The file's last line names the
run's config. The README names the mechanisms: "KV token pruning, local V pruning, head
pruning, and KV progressive quantization".

The numbers below are computed from those files by the command in
:func:`summarise` (per layer: fetched keys / context and fetched values / context summed over
tokens and heads, heads per token, share of the fetched keys whose LSBs are refetched); the CSVs
are not copied here. Nothing here was chosen against the paper's 10x.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

__all__ = ["Trace", "TRACES", "summarise"]


@dataclass(frozen=True)
class Trace:
    """Per-layer inputs from one released workload file.

    Attributes
    ----------
    file, config
        The CSV (under ``spatten_hardware/hardware/workloads/``) and the config its last line
        names.
    heads
        Heads per layer (the heads the file has rows for: cascade head pruning).
    key_keep
        Fetched keys / context per layer (cascade token pruning).
    value_keep
        Fetched values / context per layer (local value pruning: the values of the keys whose
        probability passes the top-k of the current query; a subset of the fetched keys).
    key_bits, value_bits, query_bits
        Bits fetched per key, value and query element.
    lsb_bits
        Bits of the keys' LSBs fetched again when the probabilities are flat (0 = never).
    lsb_share
        Per layer, the share of fetched key rows whose LSBs are fetched again.
    """

    file: str
    config: str
    heads: tuple[int, ...]
    key_keep: tuple[float, ...]
    value_keep: tuple[float, ...]
    key_bits: int
    value_bits: int
    query_bits: int
    lsb_bits: int
    lsb_share: tuple[float, ...]


TRACES: dict[str, Trace] = {
    "gpt2-small": Trace(
        file="summary-gpt2-small-wikitext2-per8.csv",
        config="gpt2_pp11+consider1000+pstart1+insp0p2+qlinear_k6b_v6b_q16b_sym+"
        "requant0p05_inc4_k+vtie+part8+batch8",
        heads=(12,) * 12,
        key_keep=(0.9155, 0.7185) + (0.2267,) * 4 + (0.1287,) * 6,
        value_keep=(0.1831, 0.1437) + (0.0447,) * 4 + (0.0255,) * 6,
        key_bits=6,
        value_bits=6,
        query_bits=16,
        lsb_bits=4,
        lsb_share=(0.3246, 0.4545, 0.1357, 0.0113, 0.0113, 0.0113)
        + (0.0199, 0.0199, 0.0597, 0.0199, 0.0199, 0.0996),
    ),
    "gpt2-medium": Trace(
        file="summary-gpt2-medium-wikitext2-per0-hp-step5+dedic+glob_p+local_p+hp+topk+quant.csv",
        config="medium_gpt2_2xpp0+consider1000+pstart1+insp0p3+qlinear_k8b_v8b_q16b_sym+"
        "requant0p05_inc4_k+part8+batch30+hp1p1x",
        heads=(16,) * 16 + (13,) * 6 + (10,) * 2,
        key_keep=(1.0, 1.0, 0.9155, 0.8175, 0.8175) + (0.6206,) * 6 + (0.3257,) * 13,
        value_keep=(0.3044, 0.3044, 0.2746, 0.2449, 0.2449) + (0.1863,) * 6 + (0.0979,) * 13,
        key_bits=12,
        value_bits=8,
        query_bits=16,
        lsb_bits=0,
        lsb_share=(0.0,) * 24,
    ),
}


def summarise(csv_path: str | Path, heads_dense: int) -> dict[str, object]:
    """Recompute a :class:`Trace`'s per-layer numbers from a released CSV (pandas).

    Run on a checkout of ``mit-han-lab/spatten``::

        python -c "from validation.reproduce._spatten_traces import summarise; print(summarise(
            'spatten_hardware/hardware/workloads/summary-gpt2-small-wikitext2-per8.csv', 12))"
    """
    import pandas as pd

    d = pd.read_csv(csv_path)
    config = str(d[d["layer_id"].isna()].iloc[0, 0]) if d["layer_id"].isna().any() else ""
    d = d[d["layer_id"].notna()].copy()
    num = ("layer_id", "sentence_length_L", "key_fetch_num", "value_fetch_num")
    for c in num:
        d[c] = d[c].astype(float)
    d["req"] = d["if_requant"].astype(str) == "True"
    d["req_keys"] = d["req"] * d["key_fetch_num"]
    tokens = d["iteration_id"].nunique()
    g = d.groupby("layer_id").agg(
        rows=("key_fetch_num", "size"),
        ctx=("sentence_length_L", "sum"),
        k=("key_fetch_num", "sum"),
        v=("value_fetch_num", "sum"),
        rk=("req_keys", "sum"),
    )
    return {
        "config": config,
        "heads": tuple(round(x / tokens) for x in g["rows"]),
        "key_keep": tuple(round(x, 4) for x in g["k"] / g["ctx"]),
        "value_keep": tuple(round(x, 4) for x in g["v"] / g["ctx"]),
        "lsb_share": tuple(round(x, 4) for x in g["rk"] / g["k"]),
        "heads_dense": heads_dense,
    }
