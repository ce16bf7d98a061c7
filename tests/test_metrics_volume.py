"""Volume against targets, on a hand-built warehouse whose answers are worked out by hand below.

Two FOIA arrest releases overlap: `2025-05-16` covers 1-16 May and `2025-06-01` covers 15-31 May,
so the newer one speaks for 15-31 May and the older one for 1-14 May only. Arrests counted
(episodes; the duplicate row and the older release's rows on 15-16 May are not):

    May 1 Boston 1, May 10 Atlanta 1 (old release) | 15: Atlanta 1, Boston 1 | 17: Atlanta 1
    19: Boston 2 | 21: Atlanta 3 | 22: Boston 1 | 24: Atlanta 1     -> 12 arrests, 31 days
"""

from __future__ import annotations

from datetime import date, datetime, timedelta

import ibis
import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from iceledger.errors import IceledgerError
from iceledger.facts import facts_dir
from iceledger.field_offices import field_offices
from iceledger.metrics import MetricParams, compute
from iceledger.metrics.volume import _subtract, release_spans, release_windows
from iceledger.warehouse import Warehouse

OFFICES = len(field_offices())


def _arrests(rows: list[tuple], month: int = 5) -> pa.Table:
    """rows of (release, day, hour, aor, criminality, is_duplicate), in 2025."""
    return pa.table(
        {
            "release": [r[0] for r in rows],
            "apprehension_date": pa.array(
                [datetime(2025, month, r[1], r[2]) for r in rows], pa.timestamp("us")
            ),
            "aor": [r[3] for r in rows],
            "criminality": [r[4] for r in rows],
            "arrest_setting": ["custodial" if r[2] < 12 else "at-large" for r in rows],
            "is_duplicate": [r[5] for r in rows],
        }
    )


C, P, N = "Convicted Criminal", "Pending Criminal Charges", "Other Immigration Violator"
OLD, NEW = "2025-05-16", "2025-06-01"
ARREST_ROWS = [
    (OLD, 1, 9, "Boston", C, False),
    (OLD, 10, 9, "Atlanta", C, False),
    (OLD, 16, 9, "Boston", C, False),  # the newer release speaks for 16 May
    (OLD, 15, 9, "Atlanta", C, False),  # ditto
    (NEW, 15, 9, "Atlanta", N, False),
    (NEW, 15, 10, "Atlanta", N, True),  # same 24-hour episode
    (NEW, 15, 14, "Boston", P, False),
    (NEW, 17, 9, "Atlanta", C, False),
    (NEW, 19, 9, "Boston", N, False),
    (NEW, 19, 13, "Boston", C, False),
    (NEW, 21, 8, "Atlanta", N, False),
    (NEW, 21, 9, "Atlanta", P, False),
    (NEW, 21, 15, "Atlanta", C, False),
    (NEW, 22, 9, "Boston", N, False),
    (NEW, 24, 16, "Atlanta", None, False),
]
EXPECTED_DAILY = {1: 1, 10: 1, 15: 2, 17: 1, 19: 2, 21: 3, 22: 1, 24: 1}

TARGETS_CSV = """target_id,effective_from,effective_to,date_note,scope,arrests_per_day,status,description,source,source_date,url
early,2025-05-01,2025-05-20,,field_office,2,primary,two a day per office,test,2025-05-01,
early-alt,2025-05-01,2025-05-20,,national,10,alternative,ten a day,test,2025-05-01,
late,2025-05-21,,,national,4,primary,four a day,test,2025-05-21,
"""


def _build(path, tables: dict[str, pa.Table]) -> ibis.BaseBackend:
    warehouse = Warehouse(path)
    for name, table in tables.items():
        warehouse.replace_table(name, table)
    return ibis.duckdb.connect(str(path), read_only=True)


# Two workbooks print May 2025; the later one revises it (400 -> 410) and prints the first half of
# June (data as of 16 June: 15 whole days).
PUBLISHED_BOOK_INS = {
    "stats_book_ins": pa.table(
        {
            "workbook": ["a.xlsx"] * 3 + ["b.xlsx"] * 6,
            "agency": ["ICE", "CBP", "Total"] * 3,
            "month": [date(2025, 5, 1)] * 6 + [date(2025, 6, 1)] * 3,
            "book_ins": [300.0, 100.0, 400.0, 310.0, 100.0, 410.0, 100.0, 50.0, 150.0],
        }
    ),
    "stats_workbooks": pa.table(
        {
            "workbook": ["a.xlsx", "b.xlsx"],
            "file_date": [date(2025, 6, 10), date(2025, 6, 20)],
            "as_of_date": [date(2025, 6, 1), date(2025, 6, 16)],
        }
    ),
}


@pytest.fixture(scope="module")
def backend(tmp_path_factory):
    releases = pa.table(
        {
            "release": [OLD, NEW],
            "coverage_start": [date(2025, 5, 1), date(2025, 5, 15)],
            "coverage_end": [date(2025, 5, 16), date(2025, 5, 31)],
        }
    )
    removals = pa.table(
        {
            "release": [NEW] * 3,
            "departed_date": [date(2025, 5, 20), date(2025, 5, 20), date(2025, 5, 30)],
            "aor": ["Atlanta", "Boston", "Atlanta"],
            "criminality": [C, N, N],
            "citizenship_country": ["MEXICO", "GUATEMALA", "MEXICO"],
        }
    )
    stays = pa.table(
        {
            "release": [NEW] * 2,
            "stay_book_in": [datetime(2025, 5, 18, 23), datetime(2025, 5, 18, 1)],
            "aor": ["Atlanta", "Boston"],
            "criminality": [C, N],
            "citizenship_country": ["MEXICO", "HONDURAS"],
        }
    )
    path = tmp_path_factory.mktemp("volume") / "w.duckdb"
    return _build(
        path,
        {"foia_arrests": _arrests(ARREST_ROWS), "foia_releases": releases,
         "foia_removals": removals, "foia_stays": stays, **PUBLISHED_BOOK_INS},
    )


@pytest.fixture()
def test_targets(tmp_path):
    (tmp_path / "targets.csv").write_text(TARGETS_CSV)
    with facts_dir(tmp_path):
        yield


def _rows(table: pa.Table) -> list[dict]:
    return table.to_pylist()


def _by_day(table: pa.Table, column: str) -> dict[int, object]:
    return {r["date"].day: r[column] for r in _rows(table)}


def test_a_day_is_counted_from_the_newest_release_covering_it(backend):
    arrests = compute("arrests_per_day", backend, MetricParams())
    daily = _by_day(arrests, "arrests")
    assert sorted(daily) == list(range(1, 32)), "every covered day has a row, zero or not"
    assert {d: n for d, n in daily.items() if n} == EXPECTED_DAILY
    assert sum(daily.values()) == 12


def test_rolling_means_are_calendar_means_null_until_the_window_is_full(backend):
    arrests = compute("arrests_per_day", backend, MetricParams())
    week, month = _by_day(arrests, "arrests_7d_avg"), _by_day(arrests, "arrests_28d_avg")
    assert week[6] is None and week[7] == pytest.approx(1 / 7)
    assert week[8] == 0
    assert week[16] == pytest.approx(3 / 7)  # 10-16 May: 1 + 2
    assert week[21] == pytest.approx(8 / 7)  # 15-21 May: 2 + 1 + 2 + 3
    assert month[27] is None
    assert month[28] == pytest.approx(12 / 28)


def test_breakdown_adds_up_to_the_national_series_and_filters_apply(backend):
    params = MetricParams(by=("aor",), start=date(2025, 5, 15), end=date(2025, 5, 21))
    by_office = _rows(compute("arrests_per_day", backend, params))
    assert {(r["date"].day, r["aor"]): r["arrests"] for r in by_office if r["arrests"]} == {
        (15, "Atlanta"): 1, (15, "Boston"): 1, (17, "Atlanta"): 1, (19, "Boston"): 2,
        (21, "Atlanta"): 3,
    }
    assert {r["date"] for r in by_office} == {date(2025, 5, d) for d in range(15, 22)}
    convicted = compute(
        "arrests_per_day", backend, MetricParams(filters={"criminality": (C,)})
    )
    assert {d: n for d, n in _by_day(convicted, "arrests").items() if n} == {
        1: 1, 10: 1, 17: 1, 19: 1, 21: 1
    }


def test_removals_and_book_ins_per_day(backend):
    removals = _by_day(compute("removals_per_day", backend, MetricParams()), "removals")
    assert {d: n for d, n in removals.items() if n} == {20: 2, 30: 1}
    # The release's coverage in foia_releases starts on 15 May, but its removals only on 20 May:
    # the days before are not days without removals.
    assert min(removals) == 20 and max(removals) == 31
    book_ins = compute("book_ins_per_day", backend, MetricParams(by=("citizenship_country",)))
    assert {(r["date"].day, r["citizenship_country"]): r["book_ins"]
            for r in _rows(book_ins) if r["book_ins"]} == {(18, "MEXICO"): 1, (18, "HONDURAS"): 1}


def test_book_ins_per_day_beside_the_latest_published_figures(backend):
    months = {r["month"]: r for r in _rows(
        compute("book_ins_monthly_compared", backend, MetricParams()))}
    may, june = months[date(2025, 5, 1)], months[date(2025, 6, 1)]
    assert (may["foia_days"], may["foia_book_ins"]) == (14, 2)  # the stays begin on 18 May
    assert may["workbook"] == "b.xlsx" and may["workbook_book_ins"] == 410
    assert may["workbook_book_ins_per_day"] == pytest.approx(410 / 31)
    assert may["workbook_ice_book_ins_per_day"] == pytest.approx(310 / 31)
    assert may["foia_to_workbook"] == pytest.approx((2 / 14) / (410 / 31))
    assert not may["workbook_partial_month"]
    assert june["workbook_partial_month"] and june["workbook_days"] == 15
    assert june["workbook_book_ins_per_day"] == pytest.approx(10.0)
    assert june["foia_book_ins"] is None


def test_published_book_ins_alone_still_give_a_rate(stats_workbooks, tmp_path):
    from iceledger.sources.stats.ingest import ingest_stats

    [workbook] = [p for p in stats_workbooks if p.name == "FY25_detentionStats09242025.xlsx"]
    ingest_stats([workbook], Warehouse(tmp_path / "w.duckdb"))
    backend = ibis.duckdb.connect(str(tmp_path / "w.duckdb"), read_only=True)
    june = _rows(compute("book_ins_monthly_compared", backend, MetricParams(
        start=date(2025, 6, 1), end=date(2025, 6, 30))))
    # 36,704 initial book-ins (ICE + CBP) in June 2025: ~1,223 a day, as TRAC reported (~1,224;
    # docs/facts.md).
    assert [(r["workbook_book_ins"], r["foia_book_ins"]) for r in june] == [(36704, None)]
    assert june[0]["workbook_book_ins_per_day"] == pytest.approx(36704 / 30)


def test_attainment_against_each_target_in_force(backend, test_targets):
    rows = _rows(compute("arrests_vs_target", backend, MetricParams()))
    on = {(r["date"].day, r["target"]): r for r in rows}
    assert {t for d, t in on if d == 19} == {"early", "early-alt"}
    assert {t for d, t in on if d == 21} == {"late"}
    early = on[(19, "early")]
    assert early["target_per_day"] == 2 * OFFICES
    assert early["attainment_pct"] == pytest.approx(2 / (2 * OFFICES) * 100)
    assert on[(19, "early-alt")]["attainment_pct"] == pytest.approx(20.0)
    assert on[(19, "early-alt")]["target_status"] == "alternative"
    late = on[(21, "late")]
    assert late["attainment_pct"] == pytest.approx(75.0)
    assert late["attainment_7d_pct"] == pytest.approx(8 / 7 / 4 * 100)


def test_attainment_per_field_office_uses_the_published_or_an_equal_share(backend, test_targets):
    rows = _rows(compute("arrests_vs_target", backend, MetricParams(by=("aor",))))
    atlanta = {(r["date"].day, r["target"]): r for r in rows if r["aor"] == "Atlanta"}
    assert atlanta[(17, "early")]["target_per_day"] == 2
    assert atlanta[(17, "early")]["target_basis"].startswith("as published")
    assert atlanta[(17, "early")]["attainment_pct"] == pytest.approx(50.0)
    assert atlanta[(21, "late")]["target_per_day"] == pytest.approx(4 / OFFICES)
    assert "not a published allocation" in atlanta[(21, "late")]["target_basis"]
    assert atlanta[(21, "late")]["attainment_pct"] == pytest.approx(3 / (4 / OFFICES) * 100)


def test_monthly_attainment_splits_a_month_at_a_target_change(backend, test_targets):
    rows = _rows(compute("target_attainment", backend, MetricParams()))
    by_target = {r["target"]: r for r in rows}
    assert set(by_target) == {"early", "early-alt", "late"}
    early, late = by_target["early"], by_target["late"]
    assert (early["days"], early["arrests"]) == (20, 7)  # 1-20 May
    assert early["attainment_pct"] == pytest.approx(7 / 20 / (2 * OFFICES) * 100)
    assert (late["days"], late["arrests"]) == (11, 5)  # 21-31 May
    assert late["attainment_pct"] == pytest.approx(5 / 11 / 4 * 100)
    assert by_target["early-alt"]["arrests"] == 7


def test_the_shipped_timeline_has_3000_a_day_from_21_may_2025(backend):
    rows = _rows(compute("arrests_vs_target", backend, MetricParams(start=date(2025, 5, 21))))
    assert {r["target_per_day"] for r in rows if r["target_status"] == "primary"} == {3000.0}


def test_field_office_ranking_flags_the_bottom_tenth(tmp_path):
    # Eleven offices with 1..11 arrests in June; two tie for fewest in July.
    offices = [o.name for o in field_offices()][:11]
    rows = [("r", 3 + i % 20, 9, office, C, False)
            for rank, office in enumerate(offices) for i in range(rank + 1)]
    june = _arrests(rows, month=6)
    july = _arrests([("r", 1, 9, office, C, False) for office in offices[:2]], month=7)
    backend = _build(tmp_path / "w.duckdb", {"foia_arrests": pa.concat_tables([june, july])})
    ranking = _rows(compute("field_office_ranking", backend, MetricParams()))
    in_june = {r["aor"]: r for r in ranking if r["month"] == date(2025, 6, 1)}
    assert in_june[offices[10]]["rank"] == 1 and in_june[offices[10]]["arrests"] == 11
    assert in_june[offices[0]]["rank"] == 11
    # ceil(11 / 10) = 2 offices make the bottom tenth.
    assert {o for o, r in in_june.items() if r["bottom_decile"]} == {offices[0], offices[1]}
    in_july = {r["aor"]: r for r in ranking if r["month"] == date(2025, 7, 1)}
    assert in_july[offices[0]]["rank"] == in_july[offices[1]]["rank"] == 1
    assert sum(r["bottom_decile"] for r in in_july.values()) == 9, "all nine with none arrested"


def test_release_windows_leave_each_day_to_one_release(backend):
    arrests = backend.table("foia_arrests")
    windows = release_windows(release_spans(backend, arrests, "apprehension_date"))
    assert windows == {
        NEW: [(date(2025, 5, 15), date(2025, 5, 31))],
        OLD: [(date(2025, 5, 1), date(2025, 5, 14))],
    }
    span = (date(2025, 1, 1), date(2025, 1, 31))
    assert _subtract(span, [(date(2025, 1, 10), date(2025, 1, 12))]) == [
        (date(2025, 1, 1), date(2025, 1, 9)), (date(2025, 1, 13), date(2025, 1, 31))
    ]
    assert _subtract(span, [(date(2024, 12, 1), date(2025, 2, 1))]) == []


def test_a_breakdown_the_metric_does_not_have_is_one_clear_error(backend):
    with pytest.raises(IceledgerError, match="cannot be broken down by facility_code"):
        compute("arrests_per_day", backend, MetricParams(by=("facility_code",)))


@settings(max_examples=25, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.integers(0, 40),  # day offset
            st.sampled_from(["Atlanta", "Boston", None]),
            st.booleans(),  # is_duplicate
        ),
        min_size=1,
        max_size=40,
    )
)
def test_daily_counts_add_up_to_the_rows_kept(events):
    start = datetime(2025, 3, 1, 12)
    table = pa.table(
        {
            "release": ["r"] * len(events),
            "apprehension_date": pa.array([start + timedelta(days=d) for d, _, _ in events],
                                          pa.timestamp("us")),
            "aor": pa.array([a for _, a, _ in events], pa.string()),
            "is_duplicate": [dup for _, _, dup in events],
        }
    )
    backend = ibis.duckdb.connect()
    backend.create_table("foia_arrests", table)
    kept = sum(not dup for _, _, dup in events)
    national = compute("arrests_per_day", backend, MetricParams())
    by_office = compute("arrests_per_day", backend, MetricParams(by=("aor",)))
    assert sum(national.column("arrests").to_pylist()) == kept
    assert sum(by_office.column("arrests").to_pylist()) == kept
    days = national.column("date").to_pylist()
    assert days == [days[0] + timedelta(days=i) for i in range(len(days))], "no gaps"


def test_removals_by_departure_year_beside_ice_confirmation_year(tmp_path):
    departures = [date(2018, 9, 25), date(2018, 10, 1), date(2019, 3, 1), date(2019, 6, 30),
                  date(2019, 9, 30), date(2019, 10, 5)]
    tables = {
        "foia_removals": pa.table({
            "release": ["R"] * len(departures),
            "departed_date": pa.array(departures, pa.date32()),
        }),
        "foia_releases": pa.table({"release": ["R"], "coverage_start": [date(2018, 9, 20)],
                                   "coverage_end": [date(2019, 10, 10)]}),
        # FY19b's 'data as of' line is stale (a year early); its Footnotes sheet dates the
        # removals table, and that date, not the line, makes it the latest printing.
        "stats_workbooks": pa.table({
            "workbook": ["FY19a.xlsx", "FY19b.xlsx"],
            "as_of_date": [date(2019, 7, 1), date(2018, 9, 15)],
            "file_date": [date(2019, 7, 5), date(2019, 9, 20)],
        }),
        "stats_removals": pa.table({
            "workbook": ["FY19a.xlsx", "FY19b.xlsx", "FY19b.xlsx"],
            "fiscal_year": [2019, 2019, 2019],
            "snapshot_date": [None, date(2019, 9, 15), date(2019, 9, 15)],
            "category": ["Total", "Total", "FAMU"],
            "removals": [10.0, 12.0, 2.0],
        }),
    }
    warehouse = Warehouse(tmp_path / "w.duckdb")
    for name, table in tables.items():
        warehouse.replace_table(name, table)
    result = compute("removals_by_fiscal_year", ibis.duckdb.connect(str(warehouse.path)))
    assert [tuple(r.values()) for r in result.to_pylist()] == [
        # From the first departure (25 Sep 2018) to the release end (10 Oct 2019).
        (2018, 6, 1, None, None, None, None),
        # ICE's latest FY2019 total (data of 15 Sep 2019) beside the 4 departures of the year,
        # 3 of them before that date.
        (2019, 365, 4, 12.0, "FY19b.xlsx", date(2019, 9, 15), 3),
        (2020, 10, 1, None, None, None, None),
    ]
