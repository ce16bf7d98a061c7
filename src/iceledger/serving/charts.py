"""Vega-Lite specs for a metric's result, chosen from the shape of the result alone.

Shapes follow the metrics contract: a `date` or `month` column makes a time series (a line per
value of the first breakdown), no time column makes a bar chart of the first breakdown. The value
drawn is the one asked for, else the metric's count column, else the first numeric column.
Conventions read from column names, so that no metric needs chart code of its own:
- `<value>_ci_low`/`<value>_ci_high` (or `<stem>_ci_*` for `<stem>_share`, or plain `ci_low`/
  `ci_high`) are drawn as a band around the value;
- with no breakdown, rows that share a date are told apart by the first text column (a line
  each);
- `target_per_day`, a daily rate, is drawn as a dashed line beside daily counts (a `date` series)
  and beside `*_per_day` columns, never beside monthly totals or percentages.
The data travels inside the spec as the named dataset `rows`, so a page (or a test) can read what a
chart drew with `view.data("rows")`.
"""

from __future__ import annotations

import functools

import pyarrow as pa

from iceledger.serving.disclosure import SUPPRESSION_COLUMN

SCHEMA = "https://vega.github.io/schema/vega-lite/v6.json"
DATASET = "rows"
DAILY_TARGET = "target_per_day"
TIME_UNITS = {"date": "utcyearmonthdate", "month": "utcyearmonth"}
HEIGHT = 260


def value_columns(table: pa.Table, dimensions: tuple[str, ...]) -> list[str]:
    """The numeric columns a chart can draw (not breakdowns, not interval bounds)."""
    return [
        f.name
        for f in table.schema
        if f.name not in dimensions
        and f.name != SUPPRESSION_COLUMN
        and not f.name.endswith(("ci_low", "ci_high"))
        and _is_number(f.type)
    ]


def metric_chart(
    unit: str,
    table: pa.Table,
    rows: list[dict],
    time_column: str | None,
    breakdowns: tuple[str, ...],
    value: str | None = None,
    count_column: str | None = None,
) -> dict:
    """A Vega-Lite spec drawing `rows` (the JSON form of `table`); `value` must be drawable."""
    dimensions = ((time_column,) if time_column else ()) + breakdowns
    drawable = value_columns(table, dimensions)
    if value is None:
        value = count_column if count_column in drawable else next(iter(drawable), None)
    spec: dict = {
        "$schema": SCHEMA,
        "data": {"name": DATASET, "values": rows},
        "width": "container",
        "height": HEIGHT,
        "autosize": {"type": "fit-x", "contains": "padding"},
    }
    if value is None:
        spec["mark"] = {"type": "text", "text": "no numeric column to draw"}
        return spec
    tooltip = [{"field": c, "type": _type_of(table, c)} for c in table.column_names]
    y = {"field": value, "type": "quantitative", "title": f"{value} ({unit})"}
    series = breakdowns[0] if breakdowns else _distinguishing_column(table, time_column)
    color = (
        {"field": series, "type": "nominal", "legend": {"orient": "bottom", "columns": 4}}
        if series
        else None
    )
    if not time_column:
        encoding: dict = {"x": y, "tooltip": tooltip}
        if breakdowns:
            encoding["y"] = {"field": breakdowns[0], "type": "nominal", "sort": "-x"}
            if len(breakdowns) > 1:
                encoding["color"] = {"field": breakdowns[1], "type": "nominal"}
        return spec | {"mark": {"type": "bar"}, "encoding": encoding}

    # Dates are calendar days (or months) with no zone: read and shown in UTC, never shifted.
    x = {
        "field": time_column,
        "type": "temporal",
        "timeUnit": TIME_UNITS.get(time_column, "utcyearmonthdate"),
        "title": time_column,
    }
    line: dict = {
        "mark": {"type": "line", "point": len(rows) <= 60},
        "encoding": {"x": x, "y": y, "tooltip": tooltip} | ({"color": color} if color else {}),
    }
    layers = [line]
    band = _interval(table, value)
    if band:
        layers.insert(
            0,
            {
                "mark": {"type": "area", "opacity": 0.2},
                "encoding": {
                    "x": x,
                    "y": {"field": band[0], "type": "quantitative"},
                    "y2": {"field": band[1]},
                }
                | ({"color": color} if color else {}),
            },
        )
    daily_value = time_column == "date" and not value.endswith(("_pct", "_share"))
    if DAILY_TARGET in table.column_names and (daily_value or value.endswith("_per_day")):
        layers.append(
            {
                "mark": {"type": "line", "strokeDash": [6, 4], "color": "#b22222"},
                "encoding": {
                    "x": x,
                    "y": {"field": DAILY_TARGET, "type": "quantitative"},
                    "tooltip": [{"field": DAILY_TARGET, "type": "quantitative"}],
                },
            }
        )
    return spec | {"layer": layers}


@functools.cache
def vega_bundle() -> str:
    """Vega, Vega-Lite and vega-embed as one script, from vl-convert (no network, no CDN)."""
    import vl_convert

    return vl_convert.javascript_bundle()


def _distinguishing_column(table: pa.Table, time_column: str | None) -> str | None:
    """With no breakdown, a text column that tells apart rows sharing a date (two targets in force
    on one day are two rows): drawn as separate lines rather than one zigzag."""
    if not time_column or len(set(table.column(time_column).to_pylist())) == table.num_rows:
        return None
    return next((f.name for f in table.schema if pa.types.is_string(f.type)
                 and f.name != SUPPRESSION_COLUMN), None)


def _interval(table: pa.Table, value: str) -> tuple[str, str] | None:
    stem = value.removesuffix("_share")
    for prefix in (f"{value}_", f"{stem}_", ""):
        low, high = f"{prefix}ci_low", f"{prefix}ci_high"
        if low in table.column_names and high in table.column_names:
            return low, high
    return None


def _type_of(table: pa.Table, column: str) -> str:
    kind = table.schema.field(column).type
    if pa.types.is_temporal(kind):
        return "temporal"
    return "quantitative" if _is_number(kind) else "nominal"


def _is_number(kind: pa.DataType) -> bool:
    return pa.types.is_integer(kind) or pa.types.is_floating(kind) or pa.types.is_decimal(kind)
