"""How the report prints a value: the same text in its HTML tables and its PDF.

Charts are the metrics' own declared views (serving/charts.py), the same as the dashboard's.
"""

from __future__ import annotations


def cell_text(value, column: str = "") -> str:
    """A value as a reader expects it: thousands separated, no trailing ".0", shares as percents.

    A column named like a share (`*_share`, `share_*`, `*_ci_low`/`*_ci_high`, `*_pct` is already
    a percentage) prints as a percent with one decimal.
    """
    if value is None:
        return ""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float) and _is_share_column(column):
        return f"{value:.1%}"
    if isinstance(value, float):
        if value.is_integer() and abs(value) < 1e15:
            return f"{int(value):,}"
        return f"{value:,.2f}" if abs(value) < 10 else f"{value:,.1f}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


def share_with_interval(share, low, high) -> str:
    """"45.7% (43.3–48.1%)": a share and its 95% interval in one cell."""
    if share is None:
        return ""
    if low is None or high is None:
        return f"{share:.1%}"
    return f"{share:.1%} ({low:.1%}–{high:.1%})"


def _is_share_column(column: str) -> bool:
    return (column.endswith(("_share", "ci_low", "ci_high")) or column.startswith("share_")
            or column in ("share", "survival", "observed", "claimed", "gap"))
