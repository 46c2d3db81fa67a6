"""Pareto fronts over result columns."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from archsim.errors import SweepError
from dse._spec import OBJECTIVE_COLUMNS

__all__ = ["pareto", "pareto_mask", "resolve_column", "resolve_group_by", "input_columns"]

_INPUT_NAMES = ("arch", "workload", "dataflow", "engine")


def input_columns(df: pd.DataFrame, *, varying: bool = False) -> list[str]:
    """The store's input columns (``arch``, ``arch.<path>``, ``workload``, ``param.<name>``,
    ``dataflow``, ``knob.<name>``, ``engine``); with ``varying``, only those that take more
    than one value across the rows."""
    prefixes = ("arch.", "param.", "knob.")
    cols = [c for c in df.columns if c in _INPUT_NAMES or c.startswith(prefixes)]
    if varying:
        cols = [c for c in cols if df[c].nunique(dropna=False) > 1]
    return cols


def resolve_group_by(df: pd.DataFrame, names: str | Sequence[str] | None) -> list[str]:
    """Columns to group fronts by: ``"S,dataflow"`` or a list; a bare name matches
    ``param.NAME``, ``knob.NAME`` or ``arch.NAME`` when no column has that exact name.

    Raises
    ------
    SweepError
        A name matches no input column (the message lists the valid ones).
    """
    if names is None:
        return []
    raw = names.split(",") if isinstance(names, str) else list(names)
    wanted = [str(n).strip() for n in raw if str(n).strip()]
    valid = input_columns(df)
    out: list[str] = []
    for name in wanted:
        matches = [c for c in (name, f"param.{name}", f"knob.{name}", f"arch.{name}") if c in valid]
        if not matches:
            raise SweepError(
                "unknown column to group by",
                path="--group-by",
                expected="one of " + ", ".join(valid),
                got=name,
            )
        if matches[0] not in out:
            out.append(matches[0])
    return out


def resolve_column(df: pd.DataFrame, name: str) -> str:
    """Map an alias (``latency``, ``energy``, ``edp``, ``area``) to its column; check it exists.

    Raises
    ------
    SweepError
        No such column, or one without numbers (``dataflow``).
    """
    column = OBJECTIVE_COLUMNS.get(name, name)
    if column not in df.columns:
        numeric = [c for c in df.columns if pd.api.types.is_numeric_dtype(df[c])]
        raise SweepError(
            "unknown result column", path=name, expected=" | ".join(numeric[:20]), got=name
        )
    values = df[column]
    if len(df) and not pd.api.types.is_numeric_dtype(values):
        if pd.to_numeric(values, errors="coerce").isna().all():
            numeric = [c for c in df.columns if pd.api.types.is_numeric_dtype(df[c])]
            raise SweepError(
                "not a numeric column", path=name, expected=" | ".join(numeric[:20]), got=name
            )
    return column


def pareto_mask(values: np.ndarray, minimize: Sequence[bool] | None = None) -> np.ndarray:
    """Which rows of ``values`` (n × d) no other row dominates.

    A row dominates another when it is no worse in every objective and better in one.
    Rows with NaN are never on the front; exact duplicates are all kept.

    Complexity: O(n log n) for d = 2 (sort and sweep), O(n² d) otherwise.
    """
    v = np.asarray(values, dtype=float)
    if v.ndim != 2:
        raise ValueError("values must be 2-D (points × objectives)")
    n, d = v.shape
    signs = np.array([1.0 if m else -1.0 for m in (minimize or [True] * d)])
    v = v * signs
    valid = ~np.isnan(v).any(axis=1)
    mask = np.zeros(n, dtype=bool)
    idx = np.flatnonzero(valid)
    if idx.size == 0:
        return mask
    if d == 2:
        order = idx[np.lexsort((v[idx, 1], v[idx, 0]))]
        best_y = np.inf
        prev: tuple[float, float] | None = None
        for i in order:
            x, y = v[i]
            if prev is not None and (x, y) == prev:
                mask[i] = True  # exact duplicate of a front point
            elif y < best_y:
                mask[i] = True
                best_y = y
                prev = (x, y)
        return mask
    pts = v[idx]
    for k, i in enumerate(idx):
        le = (pts <= pts[k]).all(axis=1)
        lt = (pts < pts[k]).any(axis=1)
        mask[i] = not (le & lt).any()
    return mask


def pareto(
    df: pd.DataFrame,
    x: str = "energy_j",
    y: str = "seconds",
    *,
    minimize: bool | Sequence[bool] = True,
    only_feasible: bool = True,
    group_by: str | Sequence[str] | None = None,
) -> pd.DataFrame:
    """The Pareto-optimal rows of a sweep DataFrame, sorted by ``x`` (one front per group).

    Parameters
    ----------
    df
        Rows from :func:`dse.load`.
    x, y
        Objective columns or aliases (``latency`` = ``seconds``, ``energy`` = ``energy_j``,
        ``edp`` = ``edp_js``, ``area`` = ``area_mm2``).
    minimize
        One flag for both objectives or a pair; ``False`` maximizes that objective.
    only_feasible
        Consider only ``ok`` rows that meet the sweep's constraints (``feasible`` column).
    group_by
        Input column(s) (``"param.S"``, ``"S,dataflow"``, see :func:`resolve_group_by`):
        one front per distinct value, so points of different sequence lengths never
        dominate each other.

    Returns
    -------
    pandas.DataFrame
        The front(s) (a copy), sorted by the group columns, then ``x`` ascending.
    """
    cx, cy = resolve_column(df, x), resolve_column(df, y)
    flags = [minimize, minimize] if isinstance(minimize, bool) else list(minimize)
    if len(flags) != 2:
        raise SweepError(
            "minimize needs one flag per objective", path="minimize", expected=2, got=len(flags)
        )
    rows = df
    if only_feasible and "feasible" in df:
        rows = df[df["feasible"].astype(bool)]
    elif "status" in df:
        rows = df[df["status"] == "ok"]
    groups = resolve_group_by(df, group_by)
    values = rows[[cx, cy]].apply(pd.to_numeric, errors="coerce").to_numpy()
    if not groups:
        front = rows[pareto_mask(values, flags)]
        return front.sort_values([cx, cy], kind="stable").copy()
    mask = np.zeros(len(rows), dtype=bool)
    for members in rows.groupby(groups, dropna=False, sort=False).indices.values():
        mask[members[pareto_mask(values[members], flags)]] = True
    return rows[mask].sort_values([*groups, cx, cy], kind="stable").copy()
