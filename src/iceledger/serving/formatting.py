"""How a value is printed in a table: the same text in the report (HTML and PDF), on the
dashboard's pages and in the CLI (serving/output.py formats each value)."""

from __future__ import annotations

from iceledger.serving.output import claim_column, claim_gap_text, format_value

# The breakdowns as a reader names them: the dashboard's filter labels, the report's "by ...".
DIMENSION_LABELS = {
    "aor": "Field office (AOR)",
    "criminality": "Criminality",
    "citizenship_country": "Citizenship country",
    "apprehension_method": "Arrest method",
    "arrest_setting": "Arrest setting",
}


def dimension_text(dimension: str) -> str:
    """A breakdown in a sentence: "field office (AOR)", "facility type"."""
    named = DIMENSION_LABELS.get(dimension, dimension.replace("_", " "))
    return named[0].lower() + named[1:]


def cell_text(value, column: str = "") -> str:
    """A value as a reader expects it: thousands separated, no trailing ".0", shares as percents
    (the CLI's formatting, serving/output.py)."""
    return format_value(column, value)


def share_with_interval(share, low, high) -> str:
    """"45.7% (43.3–48.1%)": a share and its 95% interval in one cell."""
    if share is None:
        return ""
    if low is None or high is None:
        return f"{share:.1%}"
    return f"{share:.1%} ({low:.1%}–{high:.1%})"


def listed_text(values, most: int = 3) -> str:
    """A list in a table cell: "none", or its items, the first few and how many more."""
    items = [str(v) for v in values]
    if not items:
        return "none"
    shown = "; ".join(items[:most])
    return shown + (f" and {len(items) - most} more" if len(items) > most else "")


def claim_value_text(value, definition: str) -> str:
    """A claimed or observed figure as its definition reads (the CLI's claims table): a share as
    a percent, a rate or a count as a number."""
    return format_value(claim_column(definition), value)


def claim_gap(reading) -> str:
    """A reading's observed minus claimed, signed: percentage points for shares."""
    return claim_gap_text(reading.definition, reading.gap)
