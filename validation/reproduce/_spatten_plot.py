"""The SpAtten reproduction's figure (:func:`validation.reproduce._spatten.reproduce_spatten`)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

__all__ = ["plot_spatten"]


def plot_spatten(
    fig,  # noqa: ANN001 - matplotlib Figure
    sweep: Sequence[Mapping[str, object]],
    breakdown: Sequence[Mapping[str, object]],
    *,
    names: Sequence[str],
    mechs: Sequence[str],
    paper: float,
    recalled_token: float,
    headline: str,
) -> None:
    """Left: reduction vs token pruning (the sweep); right: reduction by mechanism."""
    a0, a1 = fig.subplots(1, 2)
    for name, style in zip(names, ("o-", "s-", "d-"), strict=False):
        pts = [r for r in sweep if r["benchmark"] == name]
        x = [1.0 / float(r["token_mean_keep"]) for r in pts]  # type: ignore[arg-type]  # table cells
        a0.plot(x, [r["all_three"] for r in pts], style, label=f"{name}: token+head+quant")
        a0.plot(x, [r["tokens_only"] for r in pts], style, alpha=0.4, label=f"{name}: tokens")
    a0.axhline(paper, color="k", ls="--", lw=0.8, label=f"paper {paper:.1f}x")
    a0.axvline(recalled_token, color="0.6", lw=0.8, label=f"recalled {recalled_token}x tokens")
    a0.set_xscale("log", base=2)
    a0.set_yscale("log", base=2)
    a0.set_xlabel("token pruning: 1 / mean kept fraction")
    a0.set_ylabel("DRAM access reduction (dense / pruned)")
    a0.set_title("SpAtten on the fusemax preset")
    a0.legend(fontsize=6)
    w = 0.8 / len(breakdown)
    for i, r in enumerate(breakdown):
        a1.bar(
            [j + i * w for j in range(len(mechs))], [r[m] for m in mechs], w, label=r["benchmark"]
        )
    a1.set_xticks([j + 0.4 - w / 2 for j in range(len(mechs))])
    a1.set_xticklabels(mechs, rotation=20, fontsize=6)
    a1.axhline(paper, color="k", ls="--", lw=0.8)
    a1.set_ylabel("DRAM access reduction")
    a1.set_title(f"by mechanism ({headline})")
    a1.legend(fontsize=6)
