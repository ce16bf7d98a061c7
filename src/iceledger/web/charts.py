"""Vega-Lite specs for a metric's result, chosen from the shape of the result alone.

Shapes follow the metrics contract: a `date` or `month` column makes a time series (a line per
value of the first breakdown), no time column makes a bar chart of the first breakdown; the value
drawn is the first numeric column that is not a breakdown. A `ci_low`/`ci_high` pair is drawn as a
band and a `target` column as a dashed line, so "volume against targets" needs nothing special.
The data travels inside the spec as the named dataset `rows`, so a page (or a test) can read what a
chart drew with `view.data("rows")`.
"""

from __future__ import annotations

import pyarrow as pa

from iceledger.disclosure import SUPPRESSION_COLUMN

DATASET = "rows"
INTERVAL_COLUMNS = ("ci_low", "ci_high")
TARGET_COLUMN = "target"
TIME_UNITS = {"date": "utcyearmonthdate", "month": "utcyearmonth"}
WIDTH = "container"
HEIGHT = 260


def value_column(table: pa.Table, dimensions: tuple[str, ...]) -> str | None:
    skip = {*dimensions, *INTERVAL_COLUMNS, TARGET_COLUMN, SUPPRESSION_COLUMN}
    for field in table.schema:
        if field.name not in skip and _is_number(field.type):
            return field.name
    return None


def metric_chart(
    unit: str,
    table: pa.Table,
    rows: list[dict],
    time_column: str | None,
    breakdowns: tuple[str, ...],
) -> dict:
    """A Vega-Lite spec drawing `rows` (the JSON form of `table`)."""
    dimensions = ((time_column,) if time_column else ()) + breakdowns
    value = value_column(table, dimensions)
    spec: dict = {
        "$schema": "https://vega.github.io/schema/vega-lite/v6.json",
        "data": {"name": DATASET, "values": rows},
        "width": WIDTH,
        "height": HEIGHT,
        "autosize": {"type": "fit-x", "contains": "padding"},
    }
    if value is None:
        spec["mark"] = {"type": "text", "text": "no numeric column to draw"}
        return spec
    tooltip = [{"field": c, "type": _type_of(table, c)} for c in table.column_names]
    y = {"field": value, "type": "quantitative", "title": f"{value} ({unit})"}
    color = (
        {"field": breakdowns[0], "type": "nominal", "legend": {"orient": "bottom", "columns": 4}}
        if breakdowns
        else None
    )
    if time_column:
        # Dates are calendar days (or months) with no zone: read and shown in UTC, never shifted.
        x = {
            "field": time_column,
            "type": "temporal",
            "timeUnit": TIME_UNITS.get(time_column, "utcyearmonthdate"),
            "title": time_column,
        }
        line = {"mark": {"type": "line", "point": len(rows) <= 60}, "encoding": {"x": x, "y": y}}
        line["encoding"]["tooltip"] = tooltip
        if color:
            line["encoding"]["color"] = color
        layers = [line]
        if all(c in table.column_names for c in INTERVAL_COLUMNS):
            band = {
                "mark": {"type": "area", "opacity": 0.2},
                "encoding": {
                    "x": x,
                    "y": {"field": INTERVAL_COLUMNS[0], "type": "quantitative"},
                    "y2": {"field": INTERVAL_COLUMNS[1]},
                },
            }
            if color:
                band["encoding"]["color"] = color
            layers.insert(0, band)
        if TARGET_COLUMN in table.column_names:
            layers.append(
                {
                    "mark": {"type": "line", "strokeDash": [6, 4], "color": "#b22222"},
                    "encoding": {
                        "x": x,
                        "y": {"field": TARGET_COLUMN, "type": "quantitative"},
                        "tooltip": [{"field": TARGET_COLUMN, "type": "quantitative"}],
                    },
                }
            )
        spec["layer"] = layers
        return spec
    encoding: dict = {"x": {**y, "title": f"{value} ({unit})"}, "tooltip": tooltip}
    if breakdowns:
        encoding["y"] = {
            "field": breakdowns[0],
            "type": "nominal",
            "sort": "-x",
            "title": breakdowns[0],
        }
        if len(breakdowns) > 1:
            encoding["color"] = {"field": breakdowns[1], "type": "nominal"}
    spec["mark"] = {"type": "bar"}
    spec["encoding"] = encoding
    return spec


def _type_of(table: pa.Table, column: str) -> str:
    kind = table.schema.field(column).type
    if pa.types.is_temporal(kind):
        return "temporal"
    return "quantitative" if _is_number(kind) else "nominal"


def _is_number(kind: pa.DataType) -> bool:
    return pa.types.is_integer(kind) or pa.types.is_floating(kind) or pa.types.is_decimal(kind)
