"""How metric results and claim checks are shown: terminal tables, CSV and JSON.

Every printed number carries its definition, period and source tables: a table is followed by
them, CSV output sends them to stderr (so a redirected file is plain CSV), and JSON holds them
beside the rows.
"""

from __future__ import annotations

import io
import json
import math
import re
from collections.abc import Collection, Mapping, Sequence
from datetime import date, datetime
from pathlib import Path

import ibis
import pyarrow as pa
import pyarrow.csv as pa_csv
from rich.markup import escape
from rich.table import Table

from iceledger.errors import IceledgerError
from iceledger.facts import CLAIM_DEFINITIONS, RATE_DEFINITIONS
from iceledger.lake import read_manifest
from iceledger.metrics.claims import ClaimCheck
from iceledger.metrics.registry import (
    QUESTIONS, REGISTRY, Metric, MetricParams, compute, get, record_caveats,
)
from iceledger.warehouse import SYNTHETIC_NOTICE, Warehouse

FORMATS = ("table", "csv", "json")
TIME_COLUMNS = ("date", "month", "period_start")


def synthetic_banner(warehouse: Path, lake: Path | None = None) -> str | None:
    """The warning every output carries when its warehouse (or lake) holds synthetic files."""
    if lake is not None:
        synthetic = read_manifest(lake)["synthetic"]
    else:
        synthetic = Warehouse(warehouse).synthetic()
    return SYNTHETIC_NOTICE if synthetic else None


def parse_day(text: str | None, option: str) -> date | None:
    if text is None:
        return None
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise IceledgerError(f"{option} {text!r}: not a date (YYYY-MM-DD)") from None


def parse_filters(pairs: list[str]) -> dict[str, tuple[str, ...]]:
    """`aor=Atlanta` pairs into {column: values}; a repeated column keeps every value."""
    filters: dict[str, tuple[str, ...]] = {}
    for pair in pairs:
        column, sep, value = pair.partition("=")
        if not sep or not column.strip() or not value.strip():
            raise IceledgerError(f"--filter {pair!r}: write COLUMN=VALUE, e.g. aor=Atlanta")
        filters[column.strip()] = (*filters.get(column.strip(), ()), value.strip())
    return filters


def run(name: str, backend: ibis.BaseBackend, params: MetricParams) -> tuple[Metric, pa.Table]:
    return get(name), compute(name, backend, params)


def listed(values: Sequence[str], most: int = 20) -> str:
    shown = ", ".join(values[:most])
    return shown + (f" and {len(values) - most:,} more" if len(values) > most else "")


def check_filter_values(warehouse: Path, name: str, filters: Mapping[str, Sequence[str]]) -> None:
    """Refuse a filter value the warehouse does not hold, as the API does, listing the allowed
    ones: a mistyped field office would otherwise give zeros."""
    from iceledger.serving.service import WarehouseService

    metric = get(name)
    service = WarehouseService(warehouse)
    for column, values in filters.items():
        if column not in metric.filters:
            continue  # the metric's own validation names the filters it allows
        allowed = service.allowed_values(name, column)
        unknown = [v for v in values if v not in allowed]
        # A filter whose values cannot be listed (a split date) is left to the metric.
        if allowed and unknown:
            raise IceledgerError(
                f"--filter {column}={unknown[0]!r}: no such value for metric {name!r}; "
                f"allowed: {listed(list(allowed))} "
                f"(all: iceledger metrics values {column} --metric {name})")


def filter_values(warehouse: Path, column: str, metric_name: str | None) -> list[str]:
    """The values `--filter COLUMN=...` accepts: for one metric, or for every metric the
    warehouse can compute that has the filter."""
    from iceledger.serving.service import WarehouseService

    service = WarehouseService(warehouse)
    metrics = [get(metric_name)] if metric_name else [
        m for m in service.metrics() if column in m.filters and service.servable(m)]
    if not metrics or any(column not in m.filters for m in metrics):
        having = sorted(m.name for m in REGISTRY.values() if column in m.filters)
        raise IceledgerError(f"no metric{' ' + repr(metric_name) if metric_name else ''} "
                             f"here is filtered by {column!r}; metrics with that filter: "
                             f"{listed(having) or 'none'}")
    return sorted({v for m in metrics for v in service.allowed_values(m.name, column)})


def first_sentence(text: str) -> str:
    match = re.match(r"(.+?[.!?])(\s|$)", text, re.DOTALL)
    return match.group(1) if match else text


def metrics_listing(long: bool = False, tables: Collection[str] | None = None) -> Table:
    """The metrics by question: name and title (long: unit and the definition's first sentence
    instead of the title); given a warehouse's `tables`, whether it has what each one reads."""
    rows = metrics_rows()
    if tables is not None:
        for row in rows:
            # Names with a dot are the project's own data files (targets.csv), not tables.
            missing = [t for t in REGISTRY[row["name"]].tables if "." not in t and t not in tables]
            row["on this warehouse"] = f"needs {', '.join(missing)}" if missing else "available"
    extra = ("on this warehouse",) if tables is not None else ()
    if not long:
        # One line a metric: a list to scan, not to read.
        # With a warehouse, the header names the last column: whether it has each one's tables.
        listing = Table("name", "title", *extra, box=None, pad_edge=False,
                        show_header=bool(extra),
                        caption="definitions and units: iceledger metrics list --long")
        for column in (listing.columns[0], *listing.columns[2:]):
            column.no_wrap = True
        listing.columns[0].min_width = max(len(r["name"]) for r in rows)
        listing.columns[1].no_wrap, listing.columns[1].overflow = True, "ellipsis"
        if extra:
            listing.columns[1].max_width = 24  # the title gives way to the warehouse column
        question = None
        for row in rows:
            if row["question"] != question:
                question = row["question"]
                listing.add_row(f"[bold]{escape(QUESTIONS[question])}[/]", *[""] * (1 + len(extra)))
            listing.add_row(*(escape(row[c]) for c in ("name", "title", *extra)))
        return listing
    columns = ("name", "question", "unit", "definition", *extra)
    listing = Table(*columns, title="iceledger metrics")
    for row in rows:
        listing.add_row(*map(escape, (row[c] for c in columns)))
    return listing


def metrics_rows() -> list[dict]:
    return [{"name": m.name, "question": m.question, "title": m.title, "unit": m.unit,
             "definition": first_sentence(m.definition)}
            for m in sorted(REGISTRY.values(), key=lambda m: (m.question, m.name))]


def rows_output(rows: list[dict], format: str) -> str:
    """Plain rows as CSV or JSON (`--format csv|json` of the listing commands)."""
    if format == "json":
        return json.dumps(rows, indent=2)
    if format == "csv":
        return to_csv(pa.Table.from_pylist(rows)) if rows else ""
    raise IceledgerError(f"unknown format {format!r}; use {', '.join(FORMATS)}")


def _is_share(column: str) -> bool:
    return column in ("share", "ci_low", "ci_high") or column.endswith(
        ("_share", "_ci_low", "_ci_high")
    )


def format_value(column: str, value) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, (date, datetime)):
        return value.isoformat()[:7] if column == "month" else value.isoformat()
    if isinstance(value, float):
        if column.startswith("difference"):
            return f"{value * 100:+.1f} pp"
        if _is_share(column):
            return f"{value * 100:.1f}%"
        return f"{value:,.0f}" if value.is_integer() else f"{value:,.2f}"
    if isinstance(value, int):
        # A year names a period, not a quantity: 2025, never 2,025.
        return str(value) if column.endswith("fiscal_year") else f"{value:,}"
    return str(value)


def _covered(result: pa.Table) -> str:
    for column in TIME_COLUMNS:
        if column in result.column_names and result.num_rows:
            values = [v for v in result.column(column).to_pylist() if v is not None]
            end_column = "period_end" if column == "period_start" else column
            ends = [v for v in result.column(end_column).to_pylist() if v is not None]
            if values and ends:
                return f"{format_value(column, min(values))} to {format_value(column, max(ends))}"
    return "no rows" if not result.num_rows else "the whole period of the data"


def notes(metric: Metric, result: pa.Table, params: MetricParams) -> list[str]:
    asked = f"{params.start or 'start of data'} to {params.end or 'end of data'}"
    lines = [
        f"{metric.title} ({metric.name}; unit: {metric.unit})",
        f"definition: {metric.definition}",
        f"period: asked {asked}; rows cover {_covered(result)}",
        f"source tables: {', '.join(metric.tables)}",
    ]
    if params.by:
        lines.append(f"broken down by: {', '.join(params.by)}")
    if params.filters:
        shown = "; ".join(f"{k} in ({', '.join(v)})" for k, v in params.filters.items())
        lines.append(f"filters: {shown}")
    lines += [f"caveat: {caveat}" for caveat in (*metric.caveats, *record_caveats(result))]
    return lines


def metric_table(metric: Metric, result: pa.Table) -> Table:
    shown = Table(title=escape(metric.title))
    for column in result.column_names:
        shown.add_column(column, overflow="fold", justify="left" if result.schema.field(
            column).type in (pa.string(), pa.large_string()) else "right")
    for row in result.to_pylist():
        shown.add_row(*(escape(format_value(c, v)) for c, v in row.items()))
    return shown


def to_csv(result: pa.Table) -> str:
    buffer = io.BytesIO()
    pa_csv.write_csv(result, buffer)
    return buffer.getvalue().decode("utf-8")


def json_value(value):
    """A value as JSON can hold it: dates as ISO text, NaN and infinities as null."""
    if isinstance(value, date):  # a datetime is a date too
        return value.isoformat()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def json_rows(table: pa.Table) -> list[dict]:
    """A result's rows as JSON-ready dicts (the API, the report and `--format json` share it)."""
    return [{k: json_value(v) for k, v in row.items()} for row in table.to_pylist()]


def to_json(metric: Metric, result: pa.Table, params: MetricParams, banner: str | None) -> str:
    document = {
        "synthetic": banner is not None,
        "banner": banner,
        "metric": metric.name,
        "title": metric.title,
        "question": metric.question,
        "definition": metric.definition,
        "unit": metric.unit,
        "caveats": [*metric.caveats, *record_caveats(result)],
        "tables": list(metric.tables),
        "params": {
            "by": list(params.by),
            "from": json_value(params.start),
            "to": json_value(params.end),
            "filters": {k: list(v) for k, v in params.filters.items()},
        },
        "covered": _covered(result),
        "count_column": metric.count_column,
        "rows": json_rows(result),
    }
    return json.dumps(document, indent=2, allow_nan=False)


# --- claims ---------------------------------------------------------------------------------------


def claim_table(check: ClaimCheck) -> Table:
    claim = check.claim
    period = f"{claim.period_start} to {claim.period_end or 'end of data'}"
    caption = [f"source: {claim.source}" + (f" <{claim.url}>" if claim.url else "")]
    if claim.metric:
        caption.append(f"metric: {claim.metric} over {period}; tables: {', '.join(check.tables)}")
    if check.note and check.readings:
        caption.append(f"note: {check.note}")
    if claim.note and claim.note != check.note:
        caption.append(f"register note: {claim.note}")
    title = (f"{claim.claim_id} [{check.status}]: {claim.who}, {claim.date}\n"
             f"\u201c{claim.wording}\u201d")
    columns = ("definition", "observed", "95% interval", "claimed", "gap")
    shown = Table(*(columns if check.readings else ("status",)), title=escape(title),
                  caption=escape("\n".join(caption)), caption_justify="left", min_width=100)
    if not check.readings:
        shown.add_row(escape(f"{check.status}: {check.note}"))
    for reading in check.readings:
        column = claim_column(reading.definition)
        interval = (
            f"{format_value(column, reading.ci_low)} to {format_value(column, reading.ci_high)}"
            if reading.ci_low is not None else ""
        )
        shown.add_row(
            CLAIM_DEFINITIONS[reading.definition],
            format_value(column, reading.observed),
            interval,
            format_value(column, reading.claimed),
            claim_gap_text(reading.definition, reading.gap),
        )
    return shown


def claim_column(definition: str) -> str:
    """The column a claim's reading is formatted as: a count, a rate, or a share."""
    if definition == "count":
        return "count"
    return definition if definition in RATE_DEFINITIONS else "share"


def claim_gap_text(definition: str, gap: float | None) -> str:
    """Observed minus claimed: in percentage points for shares, as numbers otherwise."""
    if gap is None:
        return ""
    if definition == "count":
        return f"{gap:+,.0f}"
    return f"{gap:+,.3f}" if definition in RATE_DEFINITIONS else format_value("difference", gap)


def claim_rows(checks: list[ClaimCheck]) -> list[dict]:
    """One row per claim and definition (one row with no definition for a claim not checked):
    what `claims check --format csv` writes."""
    rows = []
    for c in checks:
        about = {"claim_id": c.claim.claim_id, "who": c.claim.who, "date": str(c.claim.date),
                 "source": c.claim.source, "metric": c.claim.metric, "status": c.status,
                 "covered_start": c.covered_start, "covered_end": c.covered_end}
        readings = [{"definition": r.definition, "observed": r.observed, "ci_low": r.ci_low,
                     "ci_high": r.ci_high, "claimed": r.claimed, "gap": r.gap}
                    for r in c.readings] or [dict.fromkeys(
                        ("definition", "observed", "ci_low", "ci_high", "claimed", "gap"))]
        rows.extend({**about, **reading, "verdict": c.verdict} for reading in readings)
    return rows


def claims_json(checks: list[ClaimCheck], banner: str | None) -> str:
    claims = [
        {
            "claim_id": c.claim.claim_id,
            "date": str(c.claim.date),
            "who": c.claim.who,
            "wording": c.claim.wording,
            "source": c.claim.source,
            "url": c.claim.url or None,
            "metric": c.claim.metric or None,
            "period": {"from": json_value(c.claim.period_start),
                       "to": json_value(c.claim.period_end)},
            "status": c.status,
            "note": c.note or None,
            "covered": {"from": json_value(c.covered_start), "to": json_value(c.covered_end)},
            "tables": list(c.tables),
            "readings": [
                {
                    "definition": r.definition,
                    "meaning": CLAIM_DEFINITIONS[r.definition],
                    "observed": r.observed,
                    "ci_low": r.ci_low,
                    "ci_high": r.ci_high,
                    "claimed": r.claimed,
                    "gap": r.gap,
                }
                for r in c.readings
            ],
        }
        for c in checks
    ]
    document = {"synthetic": banner is not None, "banner": banner, "claims": claims}
    return json.dumps(document, indent=2, allow_nan=False)
