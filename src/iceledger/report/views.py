"""Which chart the report draws for each metric, and how.

The catalogue says, per metric, which columns to draw: several value columns become several lines
(Vega-Lite folds them in the browser), a pair of interval columns becomes a band, and a few views
need their own shape (the field-office ranking as a heat map with the bottom decile outlined). A
metric the catalogue does not name is drawn by the dashboard's generic chart, so a new metric
appears in the report without any change here.
"""

from __future__ import annotations

from dataclasses import dataclass

from iceledger.serving.charts import SCHEMA

HEIGHT = 240


@dataclass(frozen=True)
class Band:
    series: str
    low: str
    high: str


@dataclass(frozen=True)
class ReportViewSpec:
    lines: tuple[str, ...] = ()
    bands: tuple[Band, ...] = ()
    # "lines", "bars", "series_by" (a line per arrest setting), "ranking", "shift", "curve"
    # (a step line over days since book-in), "funnel" (ordered bars of one row's shares), "table",
    # or "generic" (the dashboard's chart, for a metric the catalogue does not name)
    kind: str = "lines"
    y_title: str = ""


GENERIC = ReportViewSpec(kind="generic")
TABLE = ReportViewSpec(kind="table")
SHIFT = ReportViewSpec(kind="shift")
# Both headline definitions of "not a criminal", each with its 95% Wilson interval.
TWO_DEFINITIONS = ReportViewSpec(
    lines=("no_conviction_share", "no_conviction_no_charge_share"),
    bands=(
        Band("no_conviction_share", "no_conviction_ci_low", "no_conviction_ci_high"),
        Band("no_conviction_no_charge_share", "no_conviction_no_charge_ci_low",
             "no_conviction_no_charge_ci_high"),
    ),
    y_title="share (95% Wilson interval)",
)

CATALOGUE: dict[str, ReportViewSpec] = {
    "arrests_vs_target": ReportViewSpec(lines=("arrests_7d_avg", "target_per_day"),
                                        y_title="arrests per day"),
    "arrests_per_day": ReportViewSpec(lines=("arrests", "arrests_28d_avg"),
                                      y_title="arrests per day"),
    "removals_per_day": ReportViewSpec(lines=("removals_7d_avg", "removals_28d_avg"),
                                       y_title="removals per day"),
    "book_ins_per_day": ReportViewSpec(lines=("book_ins_7d_avg", "book_ins_28d_avg"),
                                       y_title="book-ins per day"),
    "book_ins_monthly_compared": ReportViewSpec(
        lines=("foia_book_ins_per_day", "workbook_book_ins_per_day"), y_title="book-ins per day"
    ),
    "target_attainment": ReportViewSpec(lines=("attainment_pct",), y_title="% of target"),
    "field_office_ranking": ReportViewSpec(kind="ranking"),
    "arrest_criminality": TWO_DEFINITIONS,
    "book_in_criminality": TWO_DEFINITIONS,
    "population_criminality": TWO_DEFINITIONS,
    "arrest_setting_share": ReportViewSpec(
        kind="series_by", lines=("share",), bands=(Band("share", "ci_low", "ci_high"),),
        y_title="share of arrests",
    ),
    "arrest_criminality_period": TABLE,
    "book_in_criminality_period": TABLE,
    "arrest_criminality_shift": SHIFT,
    "book_in_criminality_shift": SHIFT,
    "detained_population_daily": ReportViewSpec(
        lines=("population_midnight", "population_24h"), y_title="people"
    ),
    "detention_vs_capacity": ReportViewSpec(
        lines=("population_midnight", "funded_beds"), y_title="people; funded beds"
    ),
    "length_of_stay": TABLE,
    "length_of_stay_curve": ReportViewSpec(kind="curve", y_title="share of stays still held"),
    "released_within_60_days": ReportViewSpec(
        lines=("share_released_within_60d", "share_ended_within_60d"), y_title="share of stays"
    ),
    "arrest_outcomes": ReportViewSpec(
        lines=("share_detained_within_10d", "share_removed_within_30d", "share_removed_within_90d",
               "share_released_within_90d", "share_still_held_at_90d"),
        y_title="share of arrests",
    ),
    "arrest_outcome_funnel": ReportViewSpec(
        kind="funnel",
        lines=("share_detained_within_10d", "share_removed_within_30d", "share_removed_within_60d",
               "share_removed_within_90d", "share_released_within_90d",
               "share_still_held_at_90d"),
        y_title="share of arrests with enough follow-up",
    ),
    "detention_cost": ReportViewSpec(kind="bars", lines=("cost_usd",), y_title="US dollars"),
    "detention_cost_per_removal": ReportViewSpec(lines=("cost_per_removal_usd",),
                                                 y_title="US dollars per removal"),
}


def chart_spec(view: ReportViewSpec, rows: list[dict], time_column: str | None) -> dict | None:
    """A Vega-Lite spec for one catalogued view, or None when the view is a table."""
    if view.kind == "table" or (not time_column
                                and view.kind not in ("shift", "ranking", "curve", "funnel")):
        return None
    base = {"$schema": SCHEMA, "data": {"name": "rows", "values": rows}, "width": "container",
            "height": HEIGHT, "autosize": {"type": "fit-x", "contains": "padding"}}
    if view.kind == "ranking":
        return {**base, **_ranking()}
    if view.kind == "shift":
        return {**base, **_shift()}
    if view.kind == "series_by":
        return {**base, "layer": _series_by(view, time_column)}
    if view.kind == "curve":
        return {**base, **_survival_curve(view)}
    if view.kind == "funnel":
        return {**base, **_funnel(view)}
    return {**base, "layer": _folded(view, time_column)}


def _folded(view: ReportViewSpec, time_column: str) -> list[dict]:
    x = {"field": time_column, "type": "temporal", "title": time_column}
    color = {"field": "series", "type": "nominal", "title": None,
             "legend": {"orient": "bottom", "columns": 2}}
    mark = {"type": "bar"} if view.kind == "bars" else {"type": "line", "interpolate": "monotone"}
    layers = [
        {
            "transform": [{"calculate": f"'{band.series}'", "as": "series"}],
            "mark": {"type": "area", "opacity": 0.18},
            "encoding": {"x": x, "y": {"field": band.low, "type": "quantitative"},
                         "y2": {"field": band.high}, "color": color},
        }
        for band in view.bands
    ]
    layers.append({
        "transform": [{"fold": list(view.lines), "as": ["series", "value"]}],
        "mark": mark,
        "encoding": {
            "x": x,
            "y": {"field": "value", "type": "quantitative", "title": view.y_title},
            "color": color,
            "tooltip": [{"field": time_column, "type": "temporal"}, {"field": "series"},
                        {"field": "value", "type": "quantitative", "format": ",.3~f"}],
        },
    })
    return layers


def _series_by(view: ReportViewSpec, time_column: str) -> list[dict]:
    band = view.bands[0]
    value = view.lines[0]
    x = {"field": time_column, "type": "temporal", "title": time_column}
    color = {"field": "arrest_setting", "type": "nominal", "legend": {"orient": "bottom"}}
    return [
        {"mark": {"type": "area", "opacity": 0.18},
         "encoding": {"x": x, "y": {"field": band.low, "type": "quantitative"},
                      "y2": {"field": band.high}, "color": color}},
        {"mark": {"type": "line"},
         "encoding": {"x": x, "y": {"field": value, "type": "quantitative",
                                    "title": view.y_title},
                      "color": color,
                      "tooltip": [{"field": time_column, "type": "temporal"},
                                  {"field": "arrest_setting"},
                                  {"field": value, "format": ".3f"}]}},
    ]


def _ranking() -> dict:
    return {
        "height": {"step": 14},
        "mark": {"type": "rect", "strokeWidth": 2},
        "encoding": {
            "x": {"field": "month", "type": "ordinal", "timeUnit": "yearmonth", "title": "month"},
            "y": {"field": "aor", "type": "nominal", "title": "field office"},
            "color": {"field": "arrests_per_day", "type": "quantitative",
                      "scale": {"scheme": "blues"}, "title": "arrests/day"},
            "stroke": {"condition": {"test": "datum.bottom_decile", "value": "#b22222"},
                       "value": None},
            "tooltip": [{"field": "aor"}, {"field": "month", "type": "temporal"},
                        {"field": "arrests_per_day", "format": ".1f"}, {"field": "rank"},
                        {"field": "bottom_decile", "title": "bottom 10%"}],
        },
    }


def _shift() -> dict:
    y = {"field": "split_event", "type": "nominal", "title": None}
    return {
        "height": {"step": 22},
        "layer": [
            {"mark": {"type": "rule"},
             "encoding": {"y": y, "x": {"field": "difference_ci_low", "type": "quantitative",
                                        "title": "change in share after the date (95% interval)"},
                          "x2": {"field": "difference_ci_high"},
                          "yOffset": {"field": "definition"},
                          "color": {"field": "definition", "legend": {"orient": "bottom"}}}},
            {"mark": {"type": "point", "filled": True},
             "encoding": {"y": y, "x": {"field": "difference", "type": "quantitative"},
                          "yOffset": {"field": "definition"},
                          "color": {"field": "definition"},
                          "tooltip": [{"field": "split_event"}, {"field": "definition"},
                                      {"field": "before_share", "format": ".3f"},
                                      {"field": "after_share", "format": ".3f"},
                                      {"field": "difference", "format": ".3f"}]}},
        ],
    }


def _survival_curve(view: ReportViewSpec) -> dict:
    return {
        "mark": {"type": "line", "interpolate": "step-after"},
        "encoding": {
            "x": {"field": "days", "type": "quantitative", "title": "days since book-in"},
            "y": {"field": "survival", "type": "quantitative", "title": view.y_title,
                  "scale": {"domain": [0, 1]}},
            "tooltip": [{"field": "days"}, {"field": "survival", "format": ".3f"},
                        {"field": "at_risk", "title": "stays at risk"}],
        },
    }


def _funnel(view: ReportViewSpec) -> dict:
    steps = list(view.lines)
    return {
        "height": {"step": 26},
        "transform": [{"fold": steps, "as": ["step", "share"]}],
        "mark": {"type": "bar"},
        "encoding": {
            "y": {"field": "step", "type": "nominal", "sort": steps, "title": None},
            "x": {"field": "share", "type": "quantitative", "title": view.y_title,
                  "scale": {"domain": [0, 1]}},
            "tooltip": [{"field": "step"}, {"field": "share", "format": ".3f"}],
        },
    }


def cell_text(value) -> str:
    """A value as the report prints it (HTML tables and the PDF alike)."""
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:,.3f}" if abs(value) < 10 else f"{value:,.1f}"
    if isinstance(value, int) and not isinstance(value, bool):
        return f"{value:,}"
    return str(value)
