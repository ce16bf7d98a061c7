"""Every metric's default chart: the column its question is about, under an axis titled with that
column's unit, drawn with the mark that fits it (hand-built tables for the marks' details)."""

from __future__ import annotations

from datetime import date

import pyarrow as pa
import pytest
import vl_convert

from iceledger import metrics  # noqa: F401 - importing registers every metric
from iceledger.metrics.registry import REGISTRY, View
from iceledger.serving import charts
from iceledger.serving.output import json_rows
from iceledger.serving.service import WarehouseService

SHIPPED = [m for m in REGISTRY.values() if m.build.__module__.startswith("iceledger.metrics")
           or getattr(getattr(m.build, "func", None), "__module__", "").startswith(
               "iceledger.metrics")]


def _encodings(spec: dict):
    """Every encoding channel in a spec and its layers, as (channel, definition)."""
    for channel, definition in spec.get("encoding", {}).items():
        yield channel, definition
    for layer in spec.get("layer", []):
        yield from _encodings(layer)


def measure_titles(spec: dict, view: View) -> set[str]:
    """The titles of the axes (or colour legend) the view's columns are drawn on."""
    drawn = {*view.columns, "value"}
    return {d["title"] for channel, d in _encodings(spec)
            if channel in ("x", "y", "color") and d.get("field") in drawn and "title" in d}


def test_every_shipped_metric_declares_a_view_of_its_own_columns():
    assert len(SHIPPED) >= 30
    missing = [m.name for m in SHIPPED if m.view is None]
    assert not missing, f"metrics with no default view: {missing}"


@pytest.fixture(scope="module")
def service(synthetic_warehouse):
    return WarehouseService(synthetic_warehouse, public=False, max_rows=200_000)


def test_each_default_chart_draws_its_measure_under_its_unit(service):
    checked = 0
    for metric in SHIPPED:
        if not service.servable(metric):
            continue
        result = service.compute(service.request(metric.name))
        view = metric.view
        assert set(view.columns) <= set(result.table.column_names), metric.name
        spec = charts.metric_chart(metric.unit, result.table, json_rows(result.table),
                                   result.time_column, (), count_column=metric.count_column,
                                   view=view)
        linked = {"link": {"field": view.group, "path": view.link}} if view.link else {}
        assert spec["usermeta"] == {"measure": view.measure, "unit": view.unit,
                                    "mark": view.mark} | linked, metric.name
        assert measure_titles(spec, view) == {view.unit}, metric.name
        compiled = vl_convert.vegalite_to_vega({**spec, "width": 600})
        assert compiled.get("marks"), metric.name
        checked += 1
    assert checked >= 20


def test_a_count_metric_never_gets_a_share_axis_and_a_share_always_does():
    for metric in SHIPPED:
        share_unit = charts.is_share(metric.view.unit)
        measure = metric.view.measure
        looks_like_share = measure.endswith("_share") or measure.startswith("share") or measure in (
            "share", "survival")
        assert share_unit == looks_like_share, metric.name


def test_two_targets_in_force_are_two_named_step_lines_and_arrests_are_drawn_once_a_day():
    days = [date(2025, 1, 27), date(2025, 1, 28)]
    table = pa.table({
        "date": [d for d in days for _ in range(2)],
        "target": ["jan-national-1800", "jan-field-office"] * 2,
        "target_per_day": [1800.0, 1875.0] * 2,
        "arrests_7d_avg": [900.0, 900.0, 1000.0, 1000.0],
    })
    view = View("arrests_7d_avg", "arrests per day", group="target", reference="target_per_day")
    spec = charts.metric_chart("x", table, json_rows(table), "date", (), view=view)
    arrests, targets, names = spec["layer"]
    assert arrests["transform"][0] == {
        "aggregate": [{"op": "max", "field": "arrests_7d_avg", "as": "arrests_7d_avg"}],
        "groupby": ["date"]}
    assert targets["mark"]["interpolate"] == "step-after"
    assert targets["encoding"]["detail"] == {"field": "target"}
    assert names["mark"]["type"] == "text" and names["encoding"]["text"] == {"field": "target"}
    svg = vl_convert.vegalite_to_svg({**spec, "width": 500})
    assert "jan-national-1800" in svg and "jan-field-office" in svg


def test_monthly_lines_show_points_break_at_gaps_and_shares_get_percent_axes():
    table = pa.table({
        "month": [date(2025, m, 1) for m in (1, 2, 3)],
        "no_conviction_share": [0.4, None, 0.5],
        "no_conviction_ci_low": [0.35, None, 0.45],
        "no_conviction_ci_high": [0.45, None, 0.55],
    })
    view = View("no_conviction_share", "share of arrests")
    spec = charts.metric_chart("x", table, table.to_pylist(), "month", (), view=view)
    band, line = spec["layer"]
    assert band["mark"]["type"] == "area" and band["encoding"]["y"]["field"] == "no_conviction_ci_low"
    assert line["mark"] == {"type": "line", "invalid": charts.GAPS, "point": True}
    assert line["encoding"]["color"]["legend"] is None  # one line needs no legend
    assert line["encoding"]["y"]["axis"] == {"format": ".2~%"}


def test_a_month_no_source_printed_breaks_each_line_rather_than_being_bridged():
    # ICE's archived workbooks print no September 2024: a line from August straight to October
    # would invent it. Each series gets an empty row for each month missing inside its span.
    table = pa.table({
        "month": [date(2024, 8, 1), date(2024, 10, 1), date(2024, 8, 1), date(2024, 9, 1)],
        "agency": ["ICE", "ICE", "CBP", "CBP"],
        "adp": [100.0, 120.0, 50.0, 60.0],
    })
    view = View("adp", "people (average per day)")
    spec = charts.metric_chart("x", table, json_rows(table), "month", ("agency",), view=view)
    assert [(r["month"], r["agency"], r["adp"]) for r in spec["data"]["values"]] == [
        ("2024-08-01", "ICE", 100.0), ("2024-08-01", "CBP", 50.0),
        ("2024-09-01", "CBP", 60.0), ("2024-09-01", "ICE", None),
        ("2024-10-01", "ICE", 120.0),
    ]
    assert spec["layer"][-1]["mark"]["invalid"] == charts.GAPS
    generic = charts.metric_chart("x", table, json_rows(table), "month", ("agency",),
                                  value="adp")
    assert ("2024-09-01", "ICE", None) in [(r["month"], r["agency"], r["adp"])
                                           for r in generic["data"]["values"]]


def test_a_month_with_no_snapshot_breaks_a_line_of_snapshot_dates():
    # ICE's counts of people held are snapshots, one per archived workbook: they jump from
    # 2024-12-29 to 2025-09-21. A line across would draw eight months no workbook printed; a
    # calendar month with no snapshot breaks it, and snapshots in consecutive months still join.
    table = pa.table({
        "date": [date(2024, 11, 3), date(2024, 12, 29), date(2025, 9, 21), date(2026, 1, 25)],
        "detained": [38863, 39152, 59762, 70766],
        "no_conviction_share": [0.73, 0.74, 0.72, 0.74],
        "no_conviction_ci_low": [0.72, 0.73, 0.71, 0.73],
        "no_conviction_ci_high": [0.74, 0.75, 0.73, 0.75],
    })
    view = REGISTRY["detained_criminality"].view
    spec = charts.metric_chart("x", table, json_rows(table), "date", (), view=view)
    drawn = [(r["date"], r["detained"]) for r in spec["data"]["values"]]
    assert drawn == [
        ("2024-11-03", 38863), ("2024-12-29", 39152),
        *[(f"2025-{m:02d}-01", None) for m in range(1, 9)],
        ("2025-09-21", 59762), ("2025-10-01", None), ("2025-11-01", None), ("2025-12-01", None),
        ("2026-01-25", 70766),
    ]
    lines = [layer["mark"] for layer in spec["layer"] if layer["mark"]["type"] == "line"]
    assert lines and all(m["invalid"] == charts.GAPS and m["point"] for m in lines)
    # Days of every month (the FOIA population) get no break, and many isolated snapshots
    # still show as points.
    days = [{"date": f"2025-{m:02d}-{d:02d}", "n": 1} for m in (1, 2) for d in (1, 15)]
    assert charts.with_missing_months(days, "date", ()) == days
    sparse = {date(2000 + y // 12, y % 12 + 1, 1) for y in range(0, 2 * 100, 2)}
    assert len(sparse) > charts.POINTS_MAX and charts._skips_a_month(sparse)


def test_a_note_above_a_chart_is_drawn_and_a_mostly_hidden_chart_says_so():
    # Hidden in public mode: three of four months count too few people.
    table = pa.table({
        "month": [date(2025, m, 1) for m in (1, 2, 3, 4)],
        "share": [None, None, None, 0.5],
        "ci_low": [None, None, None, 0.4],
        "ci_high": [None, None, None, 0.6],
        "suppressed": ["<10", "<10", "complementary", None],
    })
    view = View("share", "share of records")
    spec = charts.metric_chart("x", table, json_rows(table), "month", (), view=view)
    svg = vl_convert.vegalite_to_svg({**spec, "width": 600})
    assert "3 of 4 rows are hidden in this public" in svg
    assert "fewer than 10 people" in " ".join(spec["title"]["text"])
    # The bar chart's note on the groups it leaves out is drawn too.
    many = pa.table({"name": [f"f{i}" for i in range(50)], "adp": [float(i) for i in range(50)]})
    bars = charts.metric_chart("x", many, many.to_pylist(), None, (),
                               view=View("adp", "people", "bars", group="name"))
    assert f"The {charts.BARS_MAX} largest of 50" in vl_convert.vegalite_to_svg(
        {**bars, "width": 600})


def test_period_figures_are_dots_with_their_intervals_and_a_funnel_is_ordered_bars():
    table = pa.table({"a_share": [0.6], "a_ci_low": [0.5], "a_ci_high": [0.7], "b_share": [0.2]})
    dots = charts.metric_chart("x", table, table.to_pylist(), None, (),
                               view=View("a_share", "share of arrests", "dots", also=("b_share",)))
    marks = [layer["mark"]["type"] for layer in dots["layer"]]
    assert marks == ["rule", "point", "point"]  # b has no interval, so no bar behind it
    assert dots["layer"][0]["encoding"]["x"]["field"] == "a_ci_low"
    funnel = charts.metric_chart("x", table, table.to_pylist(), None, (),
                                 view=View("b_share", "share of arrests", "funnel",
                                           also=("a_share",)))
    assert funnel["encoding"]["y"]["sort"] == ["b", "a"]
    assert funnel["mark"]["type"] == "bar"


def test_a_column_asked_for_by_name_is_titled_by_its_name_not_the_view_unit():
    table = pa.table({"date": [date(2025, 6, 1)], "arrests": [3], "arrests_7d_avg": [2.0]})
    view = View("arrests_7d_avg", "arrests per day")
    spec = charts.metric_chart("x", table, table.to_pylist(), "date", (), value="arrests",
                               view=view)
    assert spec["usermeta"]["measure"] == "arrests"
    assert spec["layer"][-1]["encoding"]["y"]["title"] == "arrests"


def test_a_chart_whose_every_value_is_suppressed_says_so_in_place():
    table = pa.table({"date": [date(2025, 6, 1), date(2025, 6, 2)],
                      "arrests_7d_avg": pa.array([None, None], pa.float64()),
                      "suppressed": ["<10", "complementary"]})
    spec = charts.metric_chart("x", table, json_rows(table), "date", (),
                               view=View("arrests_7d_avg", "arrests per day"))
    assert spec["mark"]["type"] == "text"
    assert "fewer than 10 people" in " ".join(spec["mark"]["text"])
    assert "hidden" in vl_convert.vegalite_to_svg({**spec, "width": 500})


def test_a_before_after_chart_hidden_for_its_split_says_why():
    # Public mode hid the split date's row: a part of the month it cuts counts too few people,
    # though the row's own counts are large.
    table = pa.table({
        "split_date": [date(2025, 5, 21)], "definition": ["repeat_arrest"],
        "before_share": pa.array([None], pa.float64()),
        "after_share": pa.array([None], pa.float64()),
        "suppressed": ["month part <10"],
    })
    view = View("after_share", "share of records", "paired", also=("before_share",))
    spec = charts.metric_chart("x", table, json_rows(table), None, (), view=view)
    text = " ".join(spec["mark"]["text"])
    assert "split date cuts a month with a part or a day of fewer than 10 people" in text
    assert "counts fewer than" not in text
