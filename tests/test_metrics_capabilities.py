"""Metrics refuse what the records cannot say: hand-built releases lacking a column a metric needs.

The warehouses are raw FOIA tables run through the real derivation (stays, episodes, links):
- "UW-like": one release (2019-07-06) of arrests, stints and removals in FY2019, as ICE's
  production to UW: no person identifiers, no book-out dates, no criminality.
- "mixed": an older release (2019-07-06) without book-outs and a newer one (2020-06-30) with them,
  each speaking for its own fiscal year; and a variant in which the newer one re-covers the
  older one's days.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from pathlib import Path

import pyarrow as pa
import pytest
from fastapi.testclient import TestClient
from ibis.common.exceptions import TableNotFound
from test_foia_productions import ARREST_HEADERS, REMOVAL_HEADERS, write_production
from test_foia_productions import arrest as production_arrest
from test_foia_productions import removal as production_removal
from typer.testing import CliRunner

from iceledger.cli import app
from iceledger.errors import IceledgerError
from iceledger.field_offices import field_offices
from iceledger.metrics import REGISTRY, MetricParams, compute
from iceledger.metrics.backends import duckdb_backend
from iceledger.metrics.capabilities import JUDGED_ROWS, fiscal_years_text
from iceledger.metrics.registry import (
    MADE_DIMENSIONS,
    RECORD_DIMENSIONS,
    NotMeasurable,
    record_caveats,
)
from iceledger.metrics.volume import REACH_JUDGED_ROWS
from iceledger.sources.foia.ingest import ingest_foia
from iceledger.serving.service import NotServable, WarehouseService
from iceledger.sources.foia.derived import rebuild_derived
from iceledger.warehouse import Warehouse
from iceledger.web.app import create_app

TS = pa.timestamp("us")
ARREST_TYPES = {
    "record_id": pa.string(), "release": pa.string(), "person_id": pa.string(),
    "apprehension_date": TS, "apprehension_method": pa.string(), "arrest_setting": pa.string(),
    "criminality": pa.string(), "aor": pa.string(), "citizenship_country": pa.string(),
}
STINT_TYPES = {
    "record_id": pa.string(), "release": pa.string(), "person_id": pa.string(),
    "stay_book_in": TS, "book_in": TS, "book_out": TS, "stay_book_out": TS,
    "facility_code": pa.string(), "stay_release_reason": pa.string(), "criminality": pa.string(),
    "aor": pa.string(), "aor_code": pa.string(), "citizenship_country": pa.string(),
    "gender": pa.string(), "departed_date": pa.date32(),
}
REMOVAL_TYPES = {
    "record_id": pa.string(), "release": pa.string(), "person_id": pa.string(),
    "departed_date": pa.date32(), "aor": pa.string(), "criminality": pa.string(),
    "citizenship_country": pa.string(),
}
CONVICTED = "Convicted Criminal"


def typed(rows: list[dict], types: dict[str, pa.DataType]) -> pa.Table:
    return pa.Table.from_pylist(rows, schema=pa.schema(list(types.items())))


def arrests(release: str, first: datetime, n: int, identified: bool, criminality: str | None
            ) -> list[dict]:
    """n arrests a day apart from `first`; the first two rows 3 hours apart (one person's
    re-processed arrest, when identifiers tell)."""
    moments = [first, first + timedelta(hours=3)] + [first + timedelta(days=d)
                                                     for d in range(1, n - 1)]
    return [
        {"record_id": f"{release}:a:{i}", "release": release,
         "person_id": (f"P{max(i - 1, 0)}" if identified else None), "apprehension_date": at,
         "apprehension_method": "Located", "arrest_setting": "at-large",
         "criminality": criminality, "aor": "Seattle", "citizenship_country": "MEXICO"}
        for i, at in enumerate(moments)
    ]


def stints(release: str, first: datetime, n: int, identified: bool, closed: bool,
           criminality: str | None) -> list[dict]:
    """n one-facility stays a day apart from `first`, each 2 days long when closed."""
    rows = []
    for i in range(n):
        book_in = first + timedelta(days=i, hours=9)
        book_out = book_in + timedelta(days=2) if closed else None
        rows.append({
            "record_id": f"{release}:s:{i}", "release": release,
            "person_id": f"P{i}" if identified else None, "stay_book_in": book_in,
            "book_in": book_in, "book_out": book_out, "stay_book_out": book_out,
            "facility_code": "NWDC", "stay_release_reason": "Removed" if closed else None,
            "criminality": criminality, "aor": "Seattle", "aor_code": "SEA",
            "citizenship_country": "MEXICO", "gender": "Male", "departed_date": None,
        })
    return rows


def removals(release: str, first: date, n: int, identified: bool) -> list[dict]:
    return [
        {"record_id": f"{release}:r:{i}", "release": release,
         "person_id": f"P{i}" if identified else None, "departed_date": first + timedelta(days=i),
         "aor": "Seattle", "criminality": None, "citizenship_country": "MEXICO"}
        for i in range(n)
    ]


def derived_warehouse(path, arrest_rows, stint_rows, removal_rows) -> str:
    warehouse = Warehouse(path)
    warehouse.replace_table("foia_arrests", typed(arrest_rows, ARREST_TYPES))
    warehouse.replace_table("foia_stints", typed(stint_rows, STINT_TYPES))
    warehouse.replace_table("foia_removals", typed(removal_rows, REMOVAL_TYPES))
    with warehouse.connect() as con:
        rebuild_derived(con)
    return str(path)


UW = "2019-07-06"


@pytest.fixture(scope="module")
def uw_like(tmp_path_factory) -> str:
    return derived_warehouse(
        tmp_path_factory.mktemp("uw") / "w.duckdb",
        arrests(UW, datetime(2019, 1, 2, 10), 30, identified=False, criminality=None),
        stints(UW, datetime(2019, 1, 2), 30, identified=False, closed=False, criminality=None),
        removals(UW, date(2019, 1, 3), 25, identified=False),
    )


@pytest.mark.parametrize("name", ["detained_population_daily", "length_of_stay",
                                  "length_of_stay_curve", "adp_monthly", "detention_cost"])
def test_no_book_out_dates_refuses_population_and_length_of_stay(uw_like, name):
    with pytest.raises(NotMeasurable) as refused:
        compute(name, duckdb_backend(uw_like))
    message = str(refused.value)
    assert message.startswith("not measurable from these records: ")
    assert ("release 2019-07-06 has no book-out dates in foia_stints.stay_book_out for FY2019 "
            "(0 of 30 rows hold one)") in message


@pytest.mark.parametrize("name", ["arrest_outcomes", "arrest_outcome_funnel"])
def test_no_identifiers_refuses_linked_outcomes(uw_like, name):
    with pytest.raises(NotMeasurable, match=r"only through the person's identifier, and release "
                       r"2019-07-06 has no person identifiers in foia_arrests\.person_id for "
                       r"FY2019 \(0 of 30 rows hold one\)"):
        compute(name, duckdb_backend(uw_like))


@pytest.mark.parametrize("name", ["arrest_criminality", "arrest_criminality_period",
                                  "arrest_criminality_shift", "book_in_criminality"])
def test_no_criminality_refuses_the_mix(uw_like, name):
    with pytest.raises(NotMeasurable, match=r"share of each of ICE's criminality classes, and "
                       r"release 2019-07-06 has no criminality classes"):
        compute(name, duckdb_backend(uw_like))


def test_without_identifiers_each_row_is_its_own_arrest(uw_like):
    result = compute("arrests_per_day", duckdb_backend(uw_like))
    # 30 rows, the first two 3 hours apart: not merged into one episode without identifiers.
    assert sum(result.column("arrests").to_pylist()) == 30
    assert result.column("arrests").to_pylist()[0] == 2
    (caveat,) = record_caveats(result)
    assert caveat.startswith("release 2019-07-06 has no person identifiers in "
                             "foia_arrests.person_id for FY2019")
    assert "each row is its own arrest" in caveat


def test_counts_that_need_no_missing_column_still_count(uw_like):
    backend = duckdb_backend(uw_like)
    removed = compute("removals_per_day", backend)
    assert sum(removed.column("removals").to_pylist()) == 25
    assert record_caveats(removed) == ()
    book_ins = compute("book_ins_per_day", backend)
    assert sum(book_ins.column("book_ins").to_pylist()) == 30
    assert "each detention record is its own stay" in record_caveats(book_ins)[0]


def test_identified_arrests_merge_into_episodes_and_carry_no_caveat(tmp_path):
    path = derived_warehouse(
        tmp_path / "w.duckdb",
        arrests(UW, datetime(2019, 1, 2, 10), 30, identified=True, criminality=CONVICTED),
        stints(UW, datetime(2019, 1, 2), 30, identified=True, closed=True, criminality=CONVICTED),
        removals(UW, date(2019, 1, 3), 25, identified=True),
    )
    backend = duckdb_backend(path)
    result = compute("arrests_per_day", backend)
    assert sum(result.column("arrests").to_pylist()) == 29
    assert record_caveats(result) == ()
    (row,) = compute("length_of_stay", backend).to_pylist()
    assert (row["stays"], row["closed_stays"], row["naive_closed_mean_days"]) == (30, 30, 2.0)


OLD, NEW = "2019-07-06", "2020-06-30"


@pytest.fixture(scope="module")
def mixed(tmp_path_factory) -> str:
    """OLD: FY2019 stays without book-outs; NEW: FY2020 stays with them (from 2019-10-02)."""
    return derived_warehouse(
        tmp_path_factory.mktemp("mixed") / "w.duckdb",
        [],
        stints(OLD, datetime(2019, 1, 2), 25, identified=True, closed=False, criminality=CONVICTED)
        + stints(NEW, datetime(2019, 10, 2), 25, identified=True, closed=True,
                 criminality=CONVICTED),
        [],
    )


def test_a_period_the_complete_release_speaks_for_is_measurable(mixed):
    result = compute("detained_population_daily", duckdb_backend(mixed),
                     MetricParams(start=date(2019, 10, 5), end=date(2019, 10, 5)))
    # Stays booked in at 09:00 on 2, 3, 4 and 5 October, each 2 days: at the end of the 5th,
    # the 4th's and the 5th's are held.
    assert result.to_pylist() == [
        {"date": date(2019, 10, 5), "population_midnight": 2, "population_24h": 3}
    ]


def test_a_period_reaching_the_incomplete_release_is_refused_naming_it(mixed):
    with pytest.raises(NotMeasurable) as refused:
        compute("detained_population_daily", duckdb_backend(mixed),
                MetricParams(start=date(2019, 6, 1), end=date(2019, 10, 31)))
    message = str(refused.value)
    assert f"release {OLD} has no book-out dates" in message and "FY2019 (0 of 25" in message
    assert NEW not in message


def test_a_release_re_covered_by_a_newer_one_does_not_refuse(tmp_path):
    # NEW here also re-covers OLD's days (its first stay is booked in before OLD's), so OLD
    # speaks for no day and its missing book-outs change nothing.
    path = derived_warehouse(
        tmp_path / "w.duckdb",
        [],
        stints(OLD, datetime(2019, 1, 2), 25, identified=True, closed=False, criminality=CONVICTED)
        + stints(NEW, datetime(2018, 12, 1), 25, identified=True, closed=True,
                 criminality=CONVICTED),
        [],
    )
    (row,) = compute("length_of_stay", duckdb_backend(path)).to_pylist()
    assert (row["stays"], row["closed_stays"]) == (25, 25)


def test_a_column_lacking_in_one_fiscal_year_refuses_only_periods_reaching_it(tmp_path):
    # One release: FY2019 arrests without criminality, FY2020 arrests with it.
    path = derived_warehouse(
        tmp_path / "w.duckdb",
        arrests(NEW, datetime(2019, 8, 1, 10), 25, identified=True, criminality=None)
        + arrests(NEW, datetime(2019, 11, 1, 10), 25, identified=True, criminality=CONVICTED),
        [],
        [],
    )
    backend = duckdb_backend(path)
    (fy2020,) = compute("arrest_criminality_period", backend,
                        MetricParams(start=date(2019, 10, 1))).to_pylist()
    assert (fy2020["arrests"], fy2020["convicted"]) == (24, 24)
    with pytest.raises(NotMeasurable, match=r"no criminality classes in foia_arrests\.criminality "
                       r"for FY2019 \(0 of 25 rows hold one\)"):
        compute("arrest_criminality_period", backend)


@pytest.mark.parametrize(("stays", "refused"), [(JUDGED_ROWS - 1, False), (JUDGED_ROWS, True)])
def test_too_few_rows_are_not_judged(tmp_path, stays, refused):
    # A short release whose few stays are all still open may simply have closed none yet.
    path = derived_warehouse(
        tmp_path / "w.duckdb", [],
        stints(NEW, datetime(2019, 11, 1), stays, identified=True, closed=False,
               criminality=CONVICTED),
        [],
    )
    if refused:
        with pytest.raises(NotMeasurable, match=f"0 of {stays} rows hold one"):
            compute("length_of_stay", duckdb_backend(path))
    else:
        (row,) = compute("length_of_stay", duckdb_backend(path)).to_pylist()
        assert (row["stays"], row["open_stays"]) == (stays, stays)


def test_record_columns_lists_what_each_release_carries(mixed, uw_like):
    listed = {(r["dataset"], r["release"], r["fiscal_year"], r["column"]): r
              for r in compute("record_columns", duckdb_backend(mixed)).to_pylist()}
    old = listed[("foia_stays", OLD, 2019, "stay_book_out")]
    assert (old["rows"], old["with_value"], old["share"], old["carried"]) == (25, 0, 0.0, False)
    assert "detained_population_daily" in old["needed_by"].split(", ")
    new = listed[("foia_stays", NEW, 2020, "stay_book_out")]
    assert (new["rows"], new["with_value"], new["carried"]) == (25, 25, True)
    assert listed[("foia_stays", NEW, 2020, "criminality")]["carried"] is True
    # The UW-like release: no identifiers in arrests, stays or removals.
    uw = compute("record_columns", duckdb_backend(uw_like)).to_pylist()
    identifiers = {r["dataset"]: (r["rows"], r["carried"]) for r in uw if r["column"] == "person_id"}
    assert identifiers == {"foia_arrests": (30, False), "foia_stays": (30, False),
                           "foia_removals": (25, False)}


def test_fiscal_years_are_written_as_runs():
    assert fiscal_years_text((2012, 2013, 2014, 2016)) == "FY2012-FY2014, FY2016"


# --- every presentation says it the same way -----------------------------------------------------


def test_service_and_api_refuse_with_the_reason_and_keep_the_caveat(uw_like):
    service = WarehouseService(uw_like)
    with pytest.raises(NotServable, match="^not measurable from these records: "):
        service.compute(service.request("length_of_stay"))
    assert any("each row is its own arrest" in c
               for c in service.caveats(service.metric("arrests_per_day")))
    client = TestClient(create_app(uw_like))
    response = client.get("/api/metrics/length_of_stay")
    assert response.status_code == 409
    assert response.json()["detail"].startswith("not measurable from these records: ")
    described = client.get("/api/metrics/arrests_per_day").json()
    assert any("each row is its own arrest" in c for c in described["caveats"])


def test_dashboard_pages_load_with_refused_metrics_on_them(uw_like):
    client = TestClient(create_app(uw_like))
    for page in ("detention", "outcomes", "cost"):
        response = client.get(f"/pages/{page}")
        assert response.status_code == 200, response.text
    # Nothing to filter by in criminality the records do not have.
    filters = client.get("/api/metrics/detained_population_daily/filters")
    assert filters.status_code == 200 and filters.json()["criminality"] == []


def test_report_view_says_not_measurable(uw_like):
    from iceledger.report.build import _view

    service = WarehouseService(uw_like, public=True)
    view = _view(service, service.metric("detained_population_daily"), [])
    assert view.empty_reason.startswith("Not measurable from these records: ")


def test_cli_prints_the_refusal_as_one_line_and_the_caveat_with_the_numbers(uw_like):
    runner = CliRunner()
    refused = runner.invoke(app, ["metric", "length_of_stay", "--warehouse", uw_like])
    assert refused.exit_code == 1
    assert "not measurable from these records: " in refused.stderr
    assert "Traceback" not in refused.output + refused.stderr
    counted = runner.invoke(app, ["metric", "arrests_per_day", "--format", "json",
                                  "--warehouse", uw_like])
    assert counted.exit_code == 0, counted.output
    assert "each row is its own arrest" in counted.stdout


def test_a_read_only_warehouse_counts_a_tables_columns_once_for_every_metric(mixed, monkeypatch):
    """The columns every metric needs from a table are counted in one pass, remembered while the
    warehouse is open read-only: the refusals and answers stay those of a fresh count. Another
    backend (Spark's lake can change under it) counts again each time."""
    import ibis

    from iceledger.metrics import capabilities

    passes = []
    count_columns = capabilities._count_columns
    monkeypatch.setattr(capabilities, "_count_columns",
                        lambda *args: passes.append(args[0]) or count_columns(*args))
    backend = duckdb_backend(mixed)
    period = MetricParams(start=date(2019, 6, 1), end=date(2019, 10, 31))
    for _ in range(2):
        for name in ("detained_population_daily", "length_of_stay"):
            with pytest.raises(NotMeasurable, match=f"release {OLD} has no book-out dates"):
                compute(name, backend, period)
    assert len(passes) == 1  # foia_stints, read for the stays both metrics need
    plain = ibis.duckdb.connect(mixed, read_only=True)
    for _ in range(2):
        assert capabilities.assess(REGISTRY["length_of_stay"], plain, period).refusals
    assert len(passes) == 3


# --- records in a layout that lacks whole columns (as the UW v. DHS production does) ----------


@pytest.fixture(scope="module")
def uw_layout(tmp_path_factory) -> Path:
    """Arrests, book-ins and removals in the real production's own layout: no field office, no
    criminality class, no identifier, no book-out; the columns are absent, not empty."""
    root = tmp_path_factory.mktemp("uw-layout")
    days = [date(2019, 1, 2) + timedelta(days=n) for n in range(40)]
    path = write_production(root / "SCRATCH_production_20190706.xlsx", {
        "Arrests": (ARREST_HEADERS, [production_arrest(day) for day in days]),
        "Other Removals": (REMOVAL_HEADERS, [production_removal(day) for day in days]),
    })
    report = ingest_foia([path], Warehouse(root / "w.duckdb"), workers=1)
    assert report.ok, [f.error for f in report.files]
    return root / "w.duckdb"


def test_every_metric_refuses_cleanly_what_a_layout_lacks(uw_layout):
    # Every metric, by each dimension it offers, on records whose layout lacks whole columns:
    # an answer, or a refusal that says what the records lack; never a failure.
    service = WarehouseService(uw_layout)
    refused = {}
    for metric in REGISTRY.values():
        for by in [(), *((d,) for d in metric.dimensions)]:
            try:
                service.compute(service.request(metric.name, by=by))
            except NotServable as exc:
                refused[metric.name, by] = str(exc)
            except IceledgerError as exc:
                assert "has no table" in str(exc), (metric.name, by, exc)
    assert "foia_arrests has no aor column" in refused["field_office_ranking", ()]
    assert "counted by criminality" in refused["arrests_per_day", ("criminality",)]
    assert "foia_removals has no criminality column" in refused[
        "removals_without_conviction", ()]


def test_a_report_on_records_lacking_whole_columns_says_what_each_view_cannot_show(
        uw_layout, tmp_path):
    result = CliRunner().invoke(app, ["report", "--warehouse", str(uw_layout),
                                      "--output", str(tmp_path / "report.html")])
    assert result.exit_code == 0, result.output
    html = (tmp_path / "report.html").read_text(encoding="utf-8")
    assert "foia_arrests has no aor column" in html and "Traceback" not in html


def test_every_dimension_is_either_carried_by_the_records_or_made_by_the_metric(
        synthetic_warehouse):
    assert not RECORD_DIMENSIONS & MADE_DIMENSIONS
    service = WarehouseService(synthetic_warehouse)
    backend = service.backend()
    for metric in REGISTRY.values():
        declared = {*metric.dimensions, *metric.filters, *metric.disclosure.keys}
        assert declared <= RECORD_DIMENSIONS | MADE_DIMENSIONS, (metric.name, declared)
        try:
            held = set().union(*(backend.table(t).columns for t in metric.tables
                                 if "." not in t))
        except TableNotFound:
            continue
        # A dimension the records carry is a column of a table the metric reads.
        assert declared & RECORD_DIMENSIONS <= held, (metric.name, declared - held)


# --- records of part of the country beside national figures ---------------------------------------


def _spread(rows: list[dict], offices: list[str]) -> list[dict]:
    """The rows with their field offices drawn in turn from `offices`."""
    return [{**row, "aor": offices[i % len(offices)]} for i, row in enumerate(rows)]


NATIONAL_FIGURES = sorted(m.name for m in REGISTRY.values() if m.national)
OFFICES = [office.name for office in field_offices()]


def test_metrics_setting_records_beside_national_figures_declare_them():
    assert {"arrests_vs_target", "target_attainment", "removals_by_fiscal_year",
            "book_ins_monthly_compared", "adp_monthly", "detention_vs_capacity",
            "reconcile_adp", "reconcile_book_ins", "reconcile_detained_population",
            "deaths_in_custody"} <= set(NATIONAL_FIGURES)


def test_one_field_offices_records_are_not_set_beside_a_national_total(tmp_path):
    # Every record is of the Seattle office, as in ICE's production to UW.
    path = derived_warehouse(tmp_path / "w.duckdb", [], [],
                             removals(UW, date(2018, 10, 3), REACH_JUDGED_ROWS, identified=False))
    with pytest.raises(NotMeasurable) as refused:
        compute("removals_by_fiscal_year", duckdb_backend(path))
    assert str(refused.value) == (
        "not measurable from these records: ICE's published removals total is national, and "
        "records of part of the country cannot be set beside it, and release 2019-07-06's "
        "records in foia_removals name 1 of ICE's 25 field offices (Seattle)")
    # So few records are not judged: a national handful could name few offices by chance.
    few = derived_warehouse(tmp_path / "few.duckdb", [], [],
                            removals(UW, date(2018, 10, 3), REACH_JUDGED_ROWS - 1,
                                     identified=False))
    assert compute("removals_by_fiscal_year", duckdb_backend(few)).num_rows > 0


def test_one_field_office_is_held_against_its_share_of_the_target_by_office(tmp_path):
    path = derived_warehouse(
        tmp_path / "w.duckdb",
        arrests("2026-01-30", datetime(2025, 6, 1, 10), REACH_JUDGED_ROWS, identified=True,
                criminality=CONVICTED), [], [])
    backend = duckdb_backend(path)
    with pytest.raises(NotMeasurable, match=r"the arrest target is national, and records of part "
                       r"of the country cannot be set beside it \(by field office they can: --by "
                       r"aor\), and release 2026-01-30's records in foia_arrests name 1 of ICE's "
                       r"25 field offices \(Seattle\)"):
        compute("arrests_vs_target", backend)
    by_office = compute("arrests_vs_target", backend, MetricParams(by=("aor",)))
    assert set(by_office.column("aor").to_pylist()) == {"Seattle"}
    assert record_caveats(by_office) == ()


def test_records_naming_half_the_field_offices_stand_beside_national_figures(tmp_path):
    n = REACH_JUDGED_ROWS
    path = derived_warehouse(
        tmp_path / "w.duckdb", [],
        _spread(stints(UW, datetime(2018, 10, 2), n, identified=True, closed=True,
                       criminality=CONVICTED), OFFICES[:13]),
        _spread(removals(UW, date(2018, 10, 3), n, identified=True), OFFICES[:13]))
    backend = duckdb_backend(path)
    assert record_caveats(compute("removals_by_fiscal_year", backend)) == ()
    assert record_caveats(compute("detention_vs_capacity", backend)) == ()
    # One office fewer: part of the country.
    twelve = derived_warehouse(tmp_path / "twelve.duckdb", [], [],
                               _spread(removals(UW, date(2018, 10, 3), n, identified=True),
                                       OFFICES[:12]))
    with pytest.raises(NotMeasurable, match=r"name 12 of ICE's 25 field offices \(Atlanta, "
                       r"Baltimore, Boston, Buffalo, Chicago and 7 more\)"):
        compute("removals_by_fiscal_year", duckdb_backend(twelve))


def test_records_naming_no_field_office_say_their_reach_is_not_in_them(tmp_path):
    # The production's own layout has no field office column at all.
    days = [date(2018, 10, 2) + timedelta(days=n) for n in range(REACH_JUDGED_ROWS)]
    path = write_production(tmp_path / "SCRATCH_production_20190706.xlsx", {
        "Other Removals": (REMOVAL_HEADERS, [production_removal(day) for day in days])})
    assert ingest_foia([path], Warehouse(tmp_path / "w.duckdb"), workers=1).ok
    backend = duckdb_backend(str(tmp_path / "w.duckdb"))
    (caveat,) = record_caveats(compute("removals_by_fiscal_year", backend))
    assert caveat == (
        "release 2019-07-06 names no field office in foia_removals.aor (0 of 200 rows name "
        "one): whether its records reach the whole country is not in them (ICE answers some "
        "FOIA requests with one field office's records), and ICE's published removals total "
        "is national: the two compare only if they do")
    # The report and the dashboard say it beside the metric too.
    service = WarehouseService(tmp_path / "w.duckdb")
    assert caveat in service.caveats(REGISTRY["removals_by_fiscal_year"])
    # Counts that stand on their own say nothing of it.
    assert record_caveats(compute("removals_per_day", backend)) == ()
    assert not [c for c in service.caveats(REGISTRY["removals_per_day"]) if "field office" in c]


def test_a_newer_release_of_one_office_does_not_displace_a_national_one(tmp_path):
    # A national release of 2019 (300 arrests from 1 January, 13 offices) and a newer one of the
    # Seattle office alone (240 from 1 August 2019 to 27 March 2020), which would otherwise speak
    # for every day from August.
    national = _spread(arrests("2019-12-31", datetime(2019, 1, 1, 10), 300, identified=True,
                               criminality=CONVICTED), OFFICES[:13])
    seattle = arrests("2020-03-31", datetime(2019, 8, 1, 10), 240, identified=True,
                      criminality=CONVICTED)
    backend = duckdb_backend(derived_warehouse(tmp_path / "w.duckdb", national + seattle, [], []))
    result = compute("arrests_per_day", backend)
    # 2019 from the national release (its first two arrests one episode), 2020 from Seattle's:
    # its arrests of the 154th day on, 86 of them.
    days = dict(zip(result.column("date").to_pylist(), result.column("arrests").to_pylist()))
    assert sum(n for day, n in days.items() if day.year == 2019) == 299
    assert sum(n for day, n in days.items() if day.year == 2020) == 86
    (caveat,) = [c for c in record_caveats(result) if "field offices" in c]
    assert caveat == (
        "release 2020-03-31's records in foia_arrests name 1 of ICE's 25 field offices "
        "(Seattle): it speaks for the days no release reaching further covers, and there the "
        "count is of that part of the country, not of the whole of ICE")
    # Over 2019 alone the national release speaks: nothing to say, and the target is measurable.
    in_2019 = MetricParams(start=date(2019, 1, 1), end=date(2019, 12, 31))
    assert record_caveats(compute("arrests_per_day", backend, in_2019)) == ()
    assert compute("target_attainment", backend, in_2019) is not None


def test_few_offices_named_by_a_minority_of_records_leave_the_reach_unknown(tmp_path):
    # 200 removals, 90 naming Seattle and the rest no office the reference knows (redacted, or
    # spelled as it does not know): not evidence of one office's production.
    rows = removals(UW, date(2018, 10, 3), REACH_JUDGED_ROWS, identified=True)
    rows = [{**row, "aor": row["aor"] if i < 90 else None} for i, row in enumerate(rows)]
    backend = duckdb_backend(derived_warehouse(tmp_path / "w.duckdb", [], [], rows))
    (caveat,) = record_caveats(compute("removals_by_fiscal_year", backend))
    assert caveat.startswith("release 2019-07-06 names a field office in only 90 of 200 rows of "
                             "foia_removals.aor: whether its records reach the whole country")
