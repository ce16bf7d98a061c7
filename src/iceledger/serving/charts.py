"""Vega-Lite specs for a metric's result: the metric's declared view, else one read from its shape.

A metric declares its default view (`registry.View`: the column drawn, its unit, the mark), and
`metric_chart` draws that, with the view's unit as the title of the axis the column is drawn on, so
a count is never drawn under a share axis. Conventions read from column names:
- `<value>_ci_low`/`<value>_ci_high` (or `<stem>_ci_*` for `<stem>_share`, or plain `ci_low`/
  `ci_high`) are drawn as a band (lines) or a bar (dots) around the value;
- a column whose unit is a share is drawn on a 0-100% axis.
A metric with no declared view (or a column other than its measure, asked for by name) gets the
generic chart: a time column makes a line per value of the first breakdown, no time column a bar
per value of the first breakdown.
The data travels inside the spec as the named dataset `rows`, so a page (or a test) can read what a
chart drew with `view.data("rows")`; `usermeta` names the column drawn and its unit.
"""

from __future__ import annotations

import functools
import textwrap
from collections.abc import Iterable
from datetime import date

import pyarrow as pa

from iceledger.metrics.registry import View
from iceledger.serving.disclosure import SPLIT_LABEL, SUPPRESSION_COLUMN

SCHEMA = "https://vega.github.io/schema/vega-lite/v6.json"
DATASET = "rows"
TIME_UNITS = {"date": "utcyearmonthdate", "month": "utcyearmonth"}
HEIGHT = 260
# A series with no more points than this shows each point; longer ones are lines alone.
POINTS_MAX = 60
# A bar chart of groups shows this many, largest first.
BARS_MAX = 40
# Characters per line of a note above a chart: it fits a phone's width.
NOTE_WIDTH = 52
TARGET_COLOR = "#b22222"
# Missing values break a line: a gap in the record is drawn as a gap, never bridged.
GAPS = "break-paths-show-domains"
# Time columns whose lines break at a calendar month with no row (with_missing_months).
BROKEN_BY_MONTH = ("month", "date")
LEGEND = {"orient": "bottom", "columns": 2, "labelLimit": 320, "title": None}


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


def label(column: str) -> str:
    """A column's name as a legend or axis label: `no_conviction_no_charge_share` reads
    "no conviction and no charge"."""
    words = column.removesuffix("_share").removeprefix("share_").replace("_", " ")
    for short, long in ((" 7d avg", " (7-day mean)"), (" 28d avg", " (28-day mean)"),
                        ("no conviction no charge", "no conviction and no charge"),
                        (" usd", " (US$)"), ("km median", "median (Kaplan-Meier)")):
        words = words.replace(short, long)
    return words


def is_share(unit: str) -> bool:
    return unit.startswith("share") or unit.startswith("proportion")


def metric_chart(
    unit: str,
    table: pa.Table,
    rows: list[dict],
    time_column: str | None,
    breakdowns: tuple[str, ...],
    value: str | None = None,
    count_column: str | None = None,
    view: View | None = None,
) -> dict:
    """A Vega-Lite spec drawing `rows` (the JSON form of `table`); `value` must be drawable."""
    if view is not None and value in (None, view.measure) and _drawable(view, table, time_column):
        if _all_hidden(view, table):
            return _hidden_chart(view, table, rows)
        return view_chart(view, table, rows, time_column, breakdowns)
    return _generic_chart(unit, table, rows, time_column, breakdowns, value, count_column)


def view_chart(view: View, table: pa.Table, rows: list[dict], time_column: str | None,
               breakdowns: tuple[str, ...]) -> dict:
    """The declared view of a metric, drawn from `rows`."""
    if view.mark == "line":
        rows = with_missing_months(rows, time_column, (*breakdowns, view.group))
    spec = _base(rows) | {"usermeta": {"measure": view.measure, "unit": view.unit,
                                       "mark": view.mark}}
    if _linked(view, table, breakdowns):
        # Each group has its own page: the marks link to it, and the dashboard lists the groups
        # with their links beside the chart.
        spec["usermeta"]["link"] = {"field": view.group, "path": view.link}
    draw = {"line": _line, "bars": _bars, "dots": _dots, "paired": _paired, "funnel": _funnel,
            "heatmap": _heatmap, "step": _step}[view.mark]
    drawn = spec | draw(view, table, time_column, breakdowns)
    note = _mostly_hidden_note(view, table)
    if note:
        drawn["title"] = _note(*drawn.get("title", {}).get("text", []), note)
    return drawn


def with_missing_months(rows: list[dict], time_column: str | None,
                        series: tuple[str | None, ...]) -> list[dict]:
    """Monthly or dated rows with an empty row for each month missing inside a series' span, so
    that a line breaks there (GAPS) instead of bridging months no source printed: ICE's archived
    workbooks skip September 2024, and a line drawn straight across it would invent the month.
    Dated rows are snapshots (people held on the day a workbook describes) or days: a calendar
    month with none of them between two is a break too, dated its first day; the archived
    snapshots jump from 2024-12-29 to 2025-09-21, which a line would fill with eight months of
    figures no workbook printed. `series` names the columns that tell the lines apart (None
    where there is none)."""
    if time_column not in BROKEN_BY_MONTH or not rows:
        return rows
    keys = [c for c in dict.fromkeys(series) if c and c in rows[0]]
    spans: dict[tuple, set[str]] = {}
    for row in rows:
        if row.get(time_column):
            group = tuple(row.get(k) for k in keys)
            spans.setdefault(group, set()).add(str(row[time_column])[:7])
    empty = {column: None for column in rows[0]}
    dated = isinstance(rows[0].get(time_column), date)
    filled = list(rows)
    for group, months in spans.items():
        year, month = map(int, min(months).split("-"))
        last = max(months)
        while f"{year:04d}-{month:02d}" < last:
            year, month = (year + 1, 1) if month == 12 else (year, month + 1)
            if f"{year:04d}-{month:02d}" not in months:
                day = date(year, month, 1)
                filled.append(empty | dict(zip(keys, group, strict=True))
                              | {time_column: day if dated else day.isoformat()})
    return sorted(filled, key=lambda row: str(row[time_column] or ""))


def _skips_a_month(times: Iterable) -> bool:
    """Whether the dates (or their ISO text) leave a calendar month empty inside their span."""
    months = {tuple(map(int, str(t)[:7].split("-"))) for t in times if t}
    if not months:
        return False
    (first_year, first_month), (last_year, last_month) = min(months), max(months)
    return len(months) < (last_year - first_year) * 12 + last_month - first_month + 1


def with_note(spec: dict, sentence: str) -> dict:
    """The chart with `sentence` said above it, before any note it already has."""
    return spec | {"title": _note(sentence, *spec.get("title", {}).get("text", []))}


def _note(*sentences: str) -> dict:
    """A few lines of plain text above a chart, short enough for a phone. (A title's subtitle is
    not drawn when its text is empty, so the note is the title itself.)"""
    lines = [line for sentence in sentences for line in textwrap.wrap(sentence, NOTE_WIDTH)]
    return {"text": lines, "anchor": "start", "fontSize": 11, "fontWeight": "normal",
            "color": "#5c5c5c"}


def _mostly_hidden_note(view: View, table: pa.Table) -> str:
    """Said above a chart most of whose rows are hidden (public mode, rare events), so that a
    sparse chart reads as what it is."""
    if not mostly_hidden(table):
        return ""
    hidden = hidden_rows(table)
    longer = "" if _split_hidden(table) else " Over a longer period the counts are larger."
    return (f"{hidden:,} of {table.num_rows:,} rows are hidden in this public view: "
            f"{hidden_reason(table)}.{longer}")


def hidden_rows(table: pa.Table) -> int:
    """How many rows of a public table are hidden (0 for a table public mode did not plan)."""
    if SUPPRESSION_COLUMN not in table.column_names:
        return 0
    return table.num_rows - table.column(SUPPRESSION_COLUMN).null_count


def mostly_hidden(table: pa.Table) -> bool:
    """More than half the rows hidden: a chart of it would be mostly blank."""
    return hidden_rows(table) * 2 > table.num_rows


def _threshold(table: pa.Table) -> str:
    """k, as the suppression labels (`<k`, `month part <k`) of a public table say it."""
    labels = {v for v in table.column(SUPPRESSION_COLUMN).to_pylist() if v}
    return next((v for v in sorted(labels) if "<" in v), "<10").rsplit("<", 1)[1]


def _split_hidden(table: pa.Table) -> bool:
    """Every hidden row is a before/after row hidden for the month its split date cuts."""
    labels = {v for v in table.column(SUPPRESSION_COLUMN).to_pylist() if v}
    return bool(labels) and all(v.startswith(SPLIT_LABEL) for v in labels)


def _split_text(table: pa.Table) -> str:
    return (f"its split date cuts a month with a part or a day of fewer than {_threshold(table)} "
            "people, which the spans less the monthly and daily figures would give back")


def hidden_reason(table: pa.Table) -> str:
    """Why a public table's rows are hidden, in the words its chart's note uses."""
    if _split_hidden(table):
        return _split_text(table)
    return f"each counts fewer than {_threshold(table)} people or would reveal such a count"


@functools.cache
def vega_bundle() -> str:
    """Vega, Vega-Lite and vega-embed as one script, from vl-convert (no network, no CDN)."""
    import vl_convert

    return vl_convert.javascript_bundle()


# --- the declared views ----------------------------------------------------------------------


def _drawable(view: View, table: pa.Table, time_column: str | None) -> bool:
    """A view needs its columns, and a time axis when it is a line over time."""
    needs_time = view.mark in ("line",) or (view.mark == "heatmap")
    return view.measure in table.column_names and (time_column is not None or not needs_time)


def _all_hidden(view: View, table: pa.Table) -> bool:
    """Every value the view would draw was suppressed (public mode, small counts)."""
    return (SUPPRESSION_COLUMN in table.column_names and table.num_rows > 0
            and all(table.column(c).null_count == table.num_rows for c in view.columns
                    if c in table.column_names))


def _hidden_chart(view: View, table: pa.Table, rows: list[dict]) -> dict:
    """Said in place of an empty chart: the values exist but count too few people to publish."""
    text = (f"Every {label(view.measure)} value here counts fewer than {_threshold(table)} people, "
            "so it is hidden in this public view; the data list the rows.")
    if _split_hidden(table):
        text = (f"Every {label(view.measure)} value here is hidden in this public view: "
                f"{_split_text(table)}.")
    # Short lines, so that the note fits a phone's width.
    lines = textwrap.wrap(text, 44)
    return _base(rows) | {"height": 18 * len(lines) + 10,
                          "usermeta": {"measure": view.measure, "mark": "hidden"},
                          "mark": {"type": "text", "text": lines, "fontSize": 13,
                                   "color": "#5c5c5c", "align": "left", "baseline": "top",
                                   "x": 0, "y": 4}}


def _base(rows: list[dict]) -> dict:
    return {
        "$schema": SCHEMA,
        "data": {"name": DATASET, "values": rows},
        "width": "container",
        "height": HEIGHT,
        "autosize": {"type": "fit-x", "contains": "padding"},
    }


def _measure_axis(view: View, field: str = "value", **extra) -> dict:
    axis = {"field": field, "type": "quantitative", "title": view.unit} | extra
    if is_share(view.unit):
        # Small shares (a few in a thousand) keep their digits: ".0%" printed them all as 0%.
        axis["axis"] = {"format": ".2~%"}
    return axis


def _time_axis(time_column: str) -> dict:
    # Dates are calendar days (or months) with no zone: read and shown in UTC, never shifted.
    return {"field": time_column, "type": "temporal",
            "timeUnit": TIME_UNITS.get(time_column, "utcyearmonthdate"), "title": None}


def _number_format(unit: str) -> str:
    return ".1%" if is_share(unit) else ",.4~r"


def _line(view: View, table: pa.Table, time_column: str, breakdowns: tuple[str, ...]) -> dict:
    x = _time_axis(time_column)
    times = set(table.column(time_column).to_pylist())
    # A point between two breaks is a line of one point, drawn only as a point.
    mark = {"type": "line", "invalid": GAPS,
            "point": time_column == "month" or len(times) <= POINTS_MAX
            or _skips_a_month(times)}
    series = breakdowns[0] if breakdowns else (view.group if not view.reference else None)
    if series:
        # One line per group (or breakdown value), of the measure alone.
        color = {"field": series, "type": "nominal", "legend": LEGEND}
        layers = []
        band = _interval(table, view.measure)
        if band:
            layers.append({"mark": {"type": "area", "opacity": 0.15, "invalid": GAPS},
                           "encoding": {"x": x, "y": {"field": band[0], "type": "quantitative"},
                                        "y2": {"field": band[1]}, "color": color}})
        layers.append({"mark": mark, "encoding": {
            "x": x, "y": _measure_axis(view, view.measure), "color": color,
            "tooltip": [x | {"title": time_column}, {"field": series},
                        {"field": view.measure, "format": _number_format(view.unit)}]}})
        return {"layer": layers}

    columns = [c for c in view.columns if c in table.column_names]
    lines = len(columns) + (1 if view.reference else 0)
    color = {"field": "series", "type": "nominal", "legend": LEGEND if lines > 1 else None,
             "sort": [label(c) for c in columns]}
    # With a reference (a target per day), rows repeat per group: the measure is drawn once a day.
    bands = {c: _interval(table, c) for c in columns}
    kept = [*columns, *[b for band in bands.values() if band for b in band]]
    once = ([{"aggregate": [{"op": "max", "field": c, "as": c} for c in kept],
              "groupby": [time_column]}] if view.reference and view.group else [])
    layers = []
    for column, band in bands.items():
        if band:
            layers.append({
                "transform": [*once, {"calculate": f"'{label(column)}'", "as": "series"}],
                "mark": {"type": "area", "opacity": 0.15, "invalid": GAPS},
                "encoding": {"x": x, "y": {"field": band[0], "type": "quantitative"},
                             "y2": {"field": band[1]}, "color": color},
            })
    layers.append({
        "transform": [*once, {"fold": columns, "as": ["column", "value"]},
                      {"calculate": _label_expression(columns), "as": "series"}],
        "mark": mark,
        "encoding": {"x": x, "y": _measure_axis(view), "color": color,
                     "tooltip": [x | {"title": time_column}, {"field": "series"},
                                 {"field": "value", "type": "quantitative",
                                  "format": _number_format(view.unit)}]},
    })
    if view.reference and view.reference in table.column_names:
        layers.extend(_reference_lines(view, x, time_column, color))
    return {"layer": layers}


def _reference_lines(view: View, x: dict, time_column: str, color: dict) -> list[dict]:
    """Each value of the view's group (a target) as its own dashed step line, named at its end,
    so two targets in force on the same days are two lines rather than one zigzag."""
    group = view.group
    named = [{"filter": f"isValid(datum['{group}'])"},
             {"calculate": f"'target: ' + datum['{group}']", "as": "series"}]
    return [
        {"transform": named,
         "mark": {"type": "line", "interpolate": "step-after", "strokeDash": [6, 4],
                  "invalid": GAPS},
         "encoding": {"x": x, "y": {"field": view.reference, "type": "quantitative",
                                    "title": view.unit},
                      "detail": {"field": group}, "color": color,
                      "tooltip": [{"field": group, "title": "target"},
                                  {"field": view.reference, "title": "target per day",
                                   "format": ",.0f"}]}},
        {"transform": [*named,
                       {"joinaggregate": [{"op": "max", "field": time_column, "as": "_last"}],
                        "groupby": [group]},
                       {"filter": f"datum['{time_column}'] == datum._last"}],
         "mark": {"type": "text", "align": "right", "dy": -6, "fontSize": 10,
                  "color": TARGET_COLOR},
         "encoding": {"x": x, "y": {"field": view.reference, "type": "quantitative"},
                      "text": {"field": group}}},
    ]


def _bars(view: View, table: pa.Table, time_column: str | None,
          breakdowns: tuple[str, ...]) -> dict:
    tooltip = _tooltip(table)
    if time_column:
        encoding = {"x": _time_axis(time_column), "y": _measure_axis(view, view.measure),
                    "tooltip": tooltip}
        if breakdowns:
            encoding["color"] = {"field": breakdowns[0], "type": "nominal", "legend": LEGEND}
        return {"mark": {"type": "bar"}, "encoding": encoding}
    group = breakdowns[0] if breakdowns else view.group
    encoding = {"x": _measure_axis(view, view.measure), "tooltip": tooltip}
    transform, title = [], None
    if group:
        encoding["y"] = {"field": group, "type": "nominal", "sort": "-x", "title": None,
                         "axis": {"labelLimit": 220}}
        groups = len(set(table.column(group).to_pylist()))
        if groups > BARS_MAX:
            # The largest only: hundreds of bars are unreadable; the data and CSV have them all.
            transform = [{"window": [{"op": "row_number", "as": "_rank"}],
                          "sort": [{"field": view.measure, "order": "descending"}]},
                         {"filter": f"datum._rank <= {BARS_MAX}"}]
            title = _note(f"The {BARS_MAX} largest of {groups}; the data have them all.")
        if _linked(view, table, breakdowns):
            transform.append(_page_of(view))
            encoding["href"] = {"field": "_page"}
    return {"height": {"step": 14}, "transform": transform, "mark": {"type": "bar"},
            "encoding": encoding} | ({"title": title} if title else {})


def _linked(view: View, table: pa.Table, breakdowns: tuple[str, ...]) -> bool:
    """Whether the chart's groups are the view's own, each with a page to link to."""
    return bool(view.link and view.group in table.column_names
                and (breakdowns or (view.group,))[0] == view.group)


def _page_of(view: View) -> dict:
    return {"calculate": f"'{view.link}' + datum['{view.group}']", "as": "_page"}


def _dots(view: View, table: pa.Table, time_column: str | None,
          breakdowns: tuple[str, ...]) -> dict:
    """One dot per measure (per group), each with its interval as a bar behind it."""
    group = breakdowns[0] if breakdowns else view.group
    columns = [c for c in view.columns if c in table.column_names]
    names = [label(c) for c in columns]
    y = ({"field": group, "type": "nominal", "title": None, "axis": {"labelLimit": 220}}
         if group else {"field": "series", "type": "nominal", "title": None, "sort": names,
                        "axis": {"labelLimit": 260}})
    color = {"field": "series", "type": "nominal", "sort": names,
             "legend": LEGEND if group else None}
    offset = {"yOffset": {"field": "series", "sort": names}} if group else {}
    layers = []
    for column in columns:
        named = [{"calculate": f"'{label(column)}'", "as": "series"}]
        band = _interval(table, column)
        if band:
            layers.append({"transform": named, "mark": {"type": "rule", "strokeWidth": 3,
                                                        "opacity": 0.5},
                           "encoding": {"y": y, "x": _measure_axis(view, band[0]),
                                        "x2": {"field": band[1]}, "color": color} | offset})
        tooltip = [{"field": "series", "title": "figure"},
                   {"field": column, "title": "value", "format": _number_format(view.unit)}]
        if band:
            tooltip += [{"field": b, "format": _number_format(view.unit)} for b in band]
        layers.append({"transform": named, "mark": {"type": "point", "filled": True, "size": 80},
                       "encoding": {"y": y, "x": _measure_axis(view, column), "color": color,
                                    "tooltip": tooltip} | offset})
    height = {"step": 26 if not group else 14 * max(len(columns), 1)}
    return {"height": height, "layer": layers}


def _paired(view: View, table: pa.Table, time_column: str | None,
            breakdowns: tuple[str, ...]) -> dict:
    """Before and after each split date: two dots joined by a line, and behind the after dot
    the 95% (Newcombe) interval of the change, placed at before + difference."""
    before, after = (view.also[0] if view.also else "before_share"), view.measure
    row = {"calculate": "datum.split_date + ' ' + datum.split_event", "as": "split"}
    y = {"field": "split", "type": "nominal", "title": None, "axis": {"labelLimit": 260}}
    offset = {"yOffset": {"field": "definition"}}
    color = {"field": "definition", "type": "nominal", "legend": LEGEND}
    shifted = [row,
               {"calculate": f"datum['{before}'] + datum.difference_ci_low", "as": "change_low"},
               {"calculate": f"datum['{before}'] + datum.difference_ci_high", "as": "change_high"}]
    tooltip = [{"field": "split_date"}, {"field": "split_event"}, {"field": "definition"},
               {"field": before, "format": ".1%"}, {"field": after, "format": ".1%"},
               {"field": "difference", "format": "+.1%"},
               {"field": "difference_ci_low", "title": "difference 95% low", "format": "+.1%"},
               {"field": "difference_ci_high", "title": "difference 95% high", "format": "+.1%"}]
    return {
        "height": {"step": 34},
        "title": _note("○ before the date · ● from the date on · shaded: 95% interval of the "
                       "change (Newcombe)"),
        "layer": [
            {"transform": shifted, "mark": {"type": "rule", "strokeWidth": 6, "opacity": 0.25},
             "encoding": {"y": y, "x": _measure_axis(view, "change_low"),
                          "x2": {"field": "change_high"}, "color": color} | offset},
            {"transform": [row], "mark": {"type": "rule", "color": "#888"},
             "encoding": {"y": y, "x": _measure_axis(view, before), "x2": {"field": after}}
             | offset},
            {"transform": [row], "mark": {"type": "point", "filled": False, "size": 60},
             "encoding": {"y": y, "x": _measure_axis(view, before), "color": color,
                          "tooltip": tooltip} | offset},
            {"transform": [row], "mark": {"type": "point", "filled": True, "size": 60},
             "encoding": {"y": y, "x": _measure_axis(view, after), "color": color,
                          "tooltip": tooltip} | offset},
        ],
    }


def _funnel(view: View, table: pa.Table, time_column: str | None,
            breakdowns: tuple[str, ...]) -> dict:
    steps = [c for c in view.columns if c in table.column_names]
    names = [label(c) for c in steps]
    scale = {"scale": {"domain": [0, 1]}} if is_share(view.unit) else {}
    encoding = {
        "y": {"field": "step", "type": "nominal", "sort": names, "title": None,
              "axis": {"labelLimit": 260}},
        "x": _measure_axis(view, **scale),
        "tooltip": [{"field": "step"},
                    {"field": "value", "type": "quantitative",
                     "format": _number_format(view.unit)}],
    }
    if breakdowns:
        encoding["yOffset"] = {"field": breakdowns[0]}
        encoding["color"] = {"field": breakdowns[0], "type": "nominal", "legend": LEGEND}
    return {
        "height": {"step": 26 if not breakdowns else 60},
        "transform": [{"fold": steps, "as": ["column", "value"]},
                      {"calculate": _label_expression(steps), "as": "step"}],
        "mark": {"type": "bar"},
        "encoding": encoding,
    }


def _heatmap(view: View, table: pa.Table, time_column: str,
             breakdowns: tuple[str, ...]) -> dict:
    group = breakdowns[0] if breakdowns else view.group
    stroke = ({"stroke": {"condition": {"test": "datum.bottom_decile", "value": TARGET_COLOR},
                          "value": None}} if "bottom_decile" in table.column_names else {})
    linked = _linked(view, table, breakdowns)
    return {
        "height": {"step": 14},
        "transform": [_page_of(view)] if linked else [],
        "mark": {"type": "rect", "strokeWidth": 2},
        "encoding": {
            "x": {"field": time_column, "type": "ordinal", "timeUnit": "utcyearmonth",
                  "title": None},
            "y": {"field": group, "type": "nominal", "title": None},
            "color": {"field": view.measure, "type": "quantitative", "title": view.unit,
                      "scale": {"scheme": "blues"}, "legend": {"orient": "bottom"}},
            "tooltip": _tooltip(table),
        } | stroke | ({"href": {"field": "_page"}} if linked else {}),
    }


def _step(view: View, table: pa.Table, time_column: str | None,
          breakdowns: tuple[str, ...]) -> dict:
    x = {"field": view.x, "type": "quantitative", "title": label(view.x or "")}
    encoding = {"x": x, "y": _measure_axis(view, view.measure, scale={"domain": [0, 1]})
                if is_share(view.unit) else _measure_axis(view, view.measure),
                "tooltip": _tooltip(table)}
    if breakdowns:
        encoding["color"] = {"field": breakdowns[0], "type": "nominal", "legend": LEGEND}
    return {"mark": {"type": "line", "interpolate": "step-after"}, "encoding": encoding}


def _label_expression(columns: list[str]) -> str:
    """A Vega expression turning a folded column name into its label."""
    expression = "datum.column"
    for column in reversed(columns):
        expression = f"datum.column == '{column}' ? '{label(column)}' : ({expression})"
    return expression


def _tooltip(table: pa.Table) -> list[dict]:
    tips = []
    for column in table.column_names:
        tip = {"field": column, "type": _type_of(table, column)}
        if tip["type"] == "quantitative":
            tip["format"] = ",.4~r"
        tips.append(tip)
    return tips


# --- the generic chart ---------------------------------------------------------------------------


def _generic_chart(unit, table, rows, time_column, breakdowns, value, count_column) -> dict:
    dimensions = ((time_column,) if time_column else ()) + breakdowns
    drawable = value_columns(table, dimensions)
    if value is None:
        value = count_column if count_column in drawable else next(iter(drawable), None)
    spec = _base(rows)
    if value is None:
        spec["mark"] = {"type": "text", "text": "no numeric column to draw"}
        return spec
    # A column chosen by name has no declared unit: the axis says which column it is.
    y = {"field": value, "type": "quantitative", "title": label(value)}
    spec["usermeta"] = {"measure": value, "unit": label(value), "mark": "generic"}
    tooltip = _tooltip(table)
    series = breakdowns[0] if breakdowns else _distinguishing_column(table, time_column)
    color = {"field": series, "type": "nominal", "legend": LEGEND} if series else None
    if not time_column:
        encoding: dict = {"x": y, "tooltip": tooltip}
        if breakdowns:
            encoding["y"] = {"field": breakdowns[0], "type": "nominal", "sort": "-x"}
            if len(breakdowns) > 1:
                encoding["color"] = {"field": breakdowns[1], "type": "nominal"}
        return spec | {"height": {"step": 14}, "mark": {"type": "bar"}, "encoding": encoding}
    x = _time_axis(time_column)
    spec["data"]["values"] = with_missing_months(rows, time_column, (*breakdowns, series))
    line: dict = {
        "mark": {"type": "line", "invalid": GAPS, "point": len(rows) <= POINTS_MAX
                 or _skips_a_month(row.get(time_column) for row in rows)},
        "encoding": {"x": x, "y": y, "tooltip": tooltip} | ({"color": color} if color else {}),
    }
    layers = [line]
    band = _interval(table, value)
    if band:
        layers.insert(0, {
            "mark": {"type": "area", "opacity": 0.2, "invalid": GAPS},
            "encoding": {"x": x, "y": {"field": band[0], "type": "quantitative"},
                         "y2": {"field": band[1]}} | ({"color": color} if color else {}),
        })
    return spec | {"layer": layers}


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
