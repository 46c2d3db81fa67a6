"""Entry point of the text notation: :func:`parse_cascade`."""

from __future__ import annotations

from collections.abc import Mapping

from ._ast import Cascade, Num
from ._check import assemble
from ._parse import parse_statements

__all__ = ["parse_cascade", "format_cascade"]


def parse_cascade(
    text: str, *, name: str = "cascade", params: Mapping[str, int | float] | None = None
) -> Cascade:
    """Parse and check a cascade written in the text notation.

    Parameters
    ----------
    text
        One statement per line (``param``, ``tensor``, ``sparsity``, ``rank``, Einsums);
        ``#`` starts a comment. See ``workloads._parse`` for the grammar.
    name
        The cascade's name.
    params
        Default shape/tile parameters; they override ``param`` lines of the text.

    Returns
    -------
    Cascade

    Raises
    ------
    WorkloadError
        On any syntax or consistency error, with ``line L, col C``, the statement, and what
        was expected vs given.
    """
    return assemble(parse_statements(text), name=name, params=params)


def format_cascade(cascade: Cascade) -> str:
    """The cascade in the text notation; ``parse_cascade`` of it gives an equal cascade.

    Inputs and computed tensors of a non-default dtype get ``tensor`` lines; Einsums are
    rendered from their trees (binary operators fully parenthesised).
    """
    lines = [f"# cascade {cascade.name}"]
    lines += [f"param {k} = {v}" for k, v in cascade.params.items()]
    for s in cascade.splits.values():
        lines.append(f"rank {s.rank} -> {s.outer}, {s.inner} : {s.tile}")
    inner = {s.inner for s in cascade.splits.values()}
    for r, size in cascade.rank_params.items():
        if r not in inner:
            lines.append(f"rank {r} : {size}")
    computed = {e.name for e in cascade.einsums}
    for name, t in cascade.tensors.items():
        if name in computed and t.dtype == "bf16":
            continue
        lines.append(f"tensor {name}[{','.join(t.ranks)}] : {t.dtype}")
    for name, t in cascade.tensors.items():
        if t.sparsity is not None:
            lines.append(f"sparsity {name} : {t.sparsity}")
    for e in cascade.einsums:
        rhs = str(e.expr)
        if e.reduce_op is not None and e.reduce_ranks:
            rhs = f"{e.reduce_op}({','.join(e.reduce_ranks)}) {rhs}"
        text = f"{e.output} = {rhs}"
        if e.cond is not None:
            text += f" if {e.cond}"
        if e.iterative_rank is not None and e.init is not None:
            text += f" init {Num(e.init)}"
        lines.append(text)
    return "\n".join(lines) + "\n"
