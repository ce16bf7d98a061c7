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
from collections.abc import Collection
from datetime import date, datetime
from pathlib import Path

import ibis
import pyarrow as pa
import pyarrow.csv as pa_csv
from ibis.common.exceptions import TableNotFound
from rich.markup import escape
from rich.table import Table

from iceledger.errors import IceledgerError
from iceledger.facts import CLAIM_DEFINITIONS
from iceledger.metrics.claims import ClaimCheck
from iceledger.metrics.registry import REGISTRY, Metric, MetricParams, compute, get
from iceledger.warehouse import Warehouse

FORMATS = ("table", "csv", "json")
TIME_COLUMNS = ("date", "month", "period_start")


def synthetic_banner(warehouse: Path) -> str | None:
    """The warning every output carries when the warehouse holds synthetic source files."""
    synthetic = [s["file_name"] for s in Warehouse(warehouse).sources() if s["synthetic"]]
    if not synthetic:
        return None
    return (f"SYNTHETIC DATA: {len(synthetic)} of the warehouse's source files were written by "
            "`iceledger synth`; these numbers describe invented records, not ICE's.")


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
    metric = get(name)
    try:
        return metric, compute(name, backend, params)
    except TableNotFound as exc:
        raise IceledgerError(
            f"metric {name!r} reads {', '.join(metric.tables)}; the warehouse lacks one: {exc}. "
            "Ingest the source it comes from first (`iceledger ingest ...`)"
        ) from None


def first_sentence(text: str) -> str:
    match = re.match(r"(.+?[.!?])(\s|$)", text, re.DOTALL)
    return match.group(1) if match else text


def metrics_listing(tables: Collection[str] | None = None) -> Table:
    """Every metric; given a warehouse's `tables`, whether it can compute each one there."""
    columns = ("name", "question", "unit", "definition") + (("on this warehouse",) if tables
                                                            is not None else ())
    listing = Table(*columns, title="iceledger metrics")
    for metric in sorted(REGISTRY.values(), key=lambda m: (m.question, m.name)):
        row = [metric.name, metric.question, metric.unit, first_sentence(metric.definition)]
        if tables is not None:
            # Names with a dot are the project's own data files (targets.csv), not tables.
            missing = [t for t in metric.tables if "." not in t and t not in tables]
            row.append(f"needs {', '.join(missing)}" if missing else "available")
        listing.add_row(*map(escape, row))
    return listing


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
        return f"{value:,}"
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
    lines += [f"caveat: {caveat}" for caveat in metric.caveats]
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
        "caveats": list(metric.caveats),
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
        column = "count" if reading.definition == "count" else "share"
        interval = (
            f"{format_value(column, reading.ci_low)} to {format_value(column, reading.ci_high)}"
            if reading.ci_low is not None else ""
        )
        gap = reading.gap
        shown.add_row(
            CLAIM_DEFINITIONS[reading.definition],
            format_value(column, reading.observed),
            interval,
            format_value(column, reading.claimed),
            "" if gap is None else (format_value("difference", gap) if column == "share"
                                    else f"{gap:+,.0f}"),
        )
    return shown


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
