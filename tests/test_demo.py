"""The demo: its one-screen headlines, each read from the registered metric it names, and its
report, where every view has data or says why not."""

from __future__ import annotations

import ibis
import pytest
from markupsafe import escape

from iceledger.demo import DEMO_RELEASES, TARGET_DATE, _number, _share, headlines, run_demo
from iceledger.metrics.registry import REGISTRY, MetricParams, compute
from iceledger.report.build import NO_DATA, NOT_MEASURABLE, WITHHELD
from iceledger.serving.charts import hidden_rows
from iceledger.serving.disclosure import SUPPRESSION_COLUMN
from iceledger.serving.service import WarehouseService
from iceledger.synth.releases import load_catalogue
from iceledger.synth.world import DATASETS
from iceledger.warehouse import Warehouse


@pytest.fixture(scope="module")
def backend(synthetic_warehouse):
    connection = ibis.duckdb.connect(str(synthetic_warehouse), read_only=True)
    yield connection
    connection.disconnect()


@pytest.fixture(scope="module")
def lines(synthetic_warehouse):
    return {metric: (figure, value) for figure, value, metric in headlines(synthetic_warehouse)}


def test_every_headline_names_its_metric(lines):
    assert list(lines) == ["arrests_vs_target", "arrest_criminality_period",
                           "detained_population_daily", "length_of_stay"]


def test_arrests_headline_is_the_last_day_against_the_primary_target(lines, backend):
    rows = compute("arrests_vs_target", backend).to_pylist()
    primary = [r for r in rows if r["target_status"] == "primary"][-1]
    figure, value = lines["arrests_vs_target"]
    assert str(primary["date"]) in figure
    assert value == (f"{_number(primary['arrests_7d_avg'])} against the {primary['target']} "
                     f"target of {_number(primary['target_per_day'])} "
                     f"({_number(primary['attainment_7d_pct'])}%)")


def test_criminality_headline_gives_both_definitions_since_the_target_date(lines, backend):
    row = compute("arrest_criminality_period", backend,
                  MetricParams(start=TARGET_DATE)).to_pylist()[0]
    figure, value = lines["arrest_criminality_period"]
    assert figure.startswith(f"arrests {row['period_start']} to {row['period_end']}")
    assert value.startswith(_share(row["no_conviction_share"]))
    assert _share(row["no_conviction_no_charge_share"]) in value


def test_population_and_stay_headlines(lines, backend):
    last = compute("detained_population_daily", backend).to_pylist()[-1]
    assert lines["detained_population_daily"] == (
        f"people detained on {last['date']}",
        f"{_number(last['population_midnight'])} at midnight, "
        f"{_number(last['population_24h'])} at any time that day",
    )
    stay = compute("length_of_stay", backend).to_pylist()[0]
    assert lines["length_of_stay"][1].startswith(f"{_number(stay['km_median_days'])} days")


# Small enough to run in seconds; the views' having data does not depend on the scale.
DEMO_TEST_SCALE = 2_000


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    return run_demo(tmp_path_factory.mktemp("demo"), scale=DEMO_TEST_SCALE)


def test_the_demo_writes_every_dataset_the_metrics_read(demo):
    loaded = {f.dataset for f in demo.ingest.files}
    assert loaded == set(DATASETS)


def test_every_view_of_the_demo_report_has_data_or_says_why_not(demo):
    views = [v for s in demo.report.sections for v in s.views]
    assert len(views) == len(REGISTRY)
    # The demo writes every FOIA dataset: a view may lack records only for a workbook table the
    # synthetic workbooks do not print (and says which).
    with Warehouse(demo.warehouse).connect(read_only=True) as con:
        loaded = {row[0] for row in con.execute(
            "SELECT table_name FROM information_schema.tables").fetchall()}
    unprinted = [(v.metric.name, v.empty_reason) for v in views if v.empty_kind == NO_DATA]
    for name, reason in unprinted:
        missing = [t for t in REGISTRY[name].tables if "." not in t and t not in loaded]
        assert missing and all(t.startswith("stats_") and t in reason for t in missing), name
    unexplained = [(v.metric.name, v.empty_reason) for v in views if v.empty_reason
                   and v.empty_kind not in (NOT_MEASURABLE, WITHHELD, NO_DATA)]
    assert unexplained == []
    assert all(v.rows and v.spec for v in views if not v.empty_reason)
    # Only what public outputs withhold by rule and serve nothing in place of is missing.
    withheld = {v.metric.name for v in views if v.empty_kind == WITHHELD}
    assert withheld == {m.name for m in REGISTRY.values()
                        if m.disclosure.withheld and not m.disclosure.instead}
    for view in (v for v in views if v.metric.disclosure.instead):
        name, by = view.metric.disclosure.instead
        assert (view.shown.name, view.shown.by) == (name, by) and view.rows, view.metric.name
        assert view.metric.disclosure.withheld in view.grain_note
    html = demo.report.html_path.read_text(encoding="utf-8")
    for view in views:
        if view.empty_reason:
            assert str(escape(view.empty_reason)) in html, view.metric.name
    assert demo.report.summary().startswith(f"{len(views)} views: ")


@pytest.fixture(scope="module")
def full_demo(tmp_path_factory):
    return run_demo(tmp_path_factory.mktemp("full-demo"))


def test_the_demo_report_has_no_empty_view_and_none_mostly_hidden(full_demo):
    # What `iceledger demo` writes, at its default scale: every view draws numbers, and none is a
    # chart of mostly "<10" (a rare series is shown at the grain that publishes it).
    views = [v for s in full_demo.report.sections for v in s.views]
    assert [(v.metric.name, v.empty_reason) for v in views if v.empty_reason] == []
    service = WarehouseService(full_demo.warehouse, public=True, k=10, max_rows=200_000)
    mostly = []
    for view in views:
        shown = service.compute(view.shown).table
        if SUPPRESSION_COLUMN not in shown.column_names:
            continue  # published figures and facts: nothing counted here is hidden
        hidden = shown.num_rows - shown.column(SUPPRESSION_COLUMN).null_count
        if hidden * 2 > shown.num_rows:
            mostly.append((view.metric.name, view.shown.name, hidden, shown.num_rows))
    assert mostly == []


def test_the_demo_hides_no_day_of_a_national_daily_series(full_demo):
    # At the default scale every day of every national daily series reaches k, the quietest
    # included (Sundays before the 2025 surge); and book-ins and the detained population count in
    # full from the release's first day: the stints held over from before it do not open the
    # release's days early with only the book-ins of those still held.
    service = WarehouseService(full_demo.warehouse, public=True, k=10, max_rows=200_000)
    hidden, first_day = {}, {}
    for metric in REGISTRY.values():
        if metric.disclosure.withheld or not service.servable(metric):
            continue
        result = service.compute(service.request(metric.name))
        if result.time_column == "date" and SUPPRESSION_COLUMN in result.table.column_names:
            hidden[metric.name] = hidden_rows(result.table)
            first_day[metric.name] = str(min(result.table.column("date").to_pylist()))
    records = ("arrests_per_day", "book_ins_per_day", "removals_per_day", "detainers_per_day",
               "encounters_per_day", "detained_population_daily")
    (release,) = DEMO_RELEASES
    start = str(load_catalogue().releases[release].coverage_start)
    assert {name: first_day.get(name) for name in records} == dict.fromkeys(records, start)
    assert {name: rows for name, rows in hidden.items() if rows} == {}
