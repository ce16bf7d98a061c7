"""Detention metrics on a tiny hand-built warehouse, every expected figure worked out by hand."""

from __future__ import annotations

from datetime import date, datetime, timedelta

import ibis
import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from iceledger.errors import IceledgerError
from iceledger.facts import load_timeline
from iceledger.metrics import MetricParams, compute
from iceledger.metrics.backends import duckdb_backend
from iceledger.warehouse import Warehouse

CONVICTED, PENDING = "Convicted Criminal", "Pending Criminal Charges"
STAY_SCHEMA = pa.schema(
    [
        ("stay_id", pa.string()),
        ("person_id", pa.string()),
        ("release", pa.string()),
        ("stay_book_in", pa.timestamp("us")),
        ("stay_book_out", pa.timestamp("us")),
        ("censored", pa.bool_()),
        ("end_time", pa.timestamp("us")),
        ("length_days", pa.float64()),
        ("stay_release_reason", pa.string()),
        ("criminality", pa.string()),
        ("aor", pa.string()),
        ("citizenship_country", pa.string()),
    ]
)


def make_stays(release: str, coverage_end: date, rows: list[tuple]) -> pa.Table:
    """rows: (stay_id, book_in, book_out or None, reason, criminality, aor)."""
    censor = datetime.combine(coverage_end, datetime.min.time())  # as foia_stays censors
    return pa.Table.from_pylist(
        [
            {
                "stay_id": stay_id,
                "person_id": stay_id,
                "release": release,
                "stay_book_in": book_in,
                "stay_book_out": book_out,
                "censored": book_out is None,
                "end_time": book_out or censor,
                "length_days": ((book_out or censor) - book_in).total_seconds() / 86400,
                "stay_release_reason": reason,
                "criminality": criminality,
                "aor": aor,
                "citizenship_country": "MEXICO",
            }
            for stay_id, book_in, book_out, reason, criminality, aor in rows
        ],
        schema=STAY_SCHEMA,
    )


def t(day: int, hour: int = 0, month: int = 1, year: int = 2025) -> datetime:
    return datetime(year, month, day, hour)


# Release R1 covers 2025-01-01..2025-04-30; the older R0 (2024-12-20..2025-01-05) overlaps it,
# so R0 speaks only for 2024-12-20..2024-12-31.
STAYS = pa.concat_tables(
    [
        make_stays(
            "R1",
            date(2025, 4, 30),
            [
                ("S1", t(2, 10), t(4, 8), "Removed", CONVICTED, "Atlanta"),
                ("S2", t(3, 0), t(3, 15), "Bonded Out", PENDING, "Atlanta"),
                ("S3", t(5, 13), None, None, CONVICTED, "Boston"),
                ("S4", t(8, 9), t(8, 17), "ORDER OF SUPERVISION", CONVICTED, "Atlanta"),
                ("S5", t(15, 0, month=4), t(16, 0, month=4), "Bonded Out", CONVICTED, "Atlanta"),
            ],
        ),
        make_stays(
            "R0",
            date(2025, 1, 5),
            [
                ("S0", t(30, 12, month=12, year=2024), None, None, CONVICTED, "Atlanta"),
                # The same custody as S1, seen by the older release: R1 speaks for January.
                ("S1-old", t(2, 10), None, None, CONVICTED, "Atlanta"),
            ],
        ),
    ]
)

# S1 as two placements: facility F1 until noon on the 3rd, then F2.
STINTS = pa.Table.from_pylist(
    [
        {"release": "R1", "stay_id": "S1", "facility_code": "F1", "book_in": t(2, 10),
         "book_out": t(3, 12), "is_duplicate": False, "aor": "Atlanta", "criminality": CONVICTED},
        {"release": "R1", "stay_id": "S1", "facility_code": "F2", "book_in": t(3, 12),
         "book_out": t(4, 8), "is_duplicate": False, "aor": "Atlanta", "criminality": CONVICTED},
        {"release": "R1", "stay_id": "S1", "facility_code": "F2", "book_in": t(3, 12),
         "book_out": t(4, 8), "is_duplicate": True, "aor": "Atlanta", "criminality": CONVICTED},
    ]
)

RELEASES = pa.Table.from_pylist(
    [
        {"release": "R0", "coverage_start": date(2024, 12, 20), "coverage_end": date(2025, 1, 5)},
        {"release": "R1", "coverage_start": date(2025, 1, 1), "coverage_end": date(2025, 4, 30)},
    ]
)


def build_warehouse(path, tables: dict[str, pa.Table]):
    warehouse = Warehouse(path)
    for name, table in tables.items():
        warehouse.replace_table(name, table)
    return duckdb_backend(path)


@pytest.fixture(scope="module")
def backend(tmp_path_factory):
    path = tmp_path_factory.mktemp("detention") / "w.duckdb"
    return build_warehouse(
        path, {"foia_stays": STAYS, "foia_stints": STINTS, "foia_releases": RELEASES}
    )


def rows(table: pa.Table, *columns: str) -> list[tuple]:
    return [tuple(r[c] for c in columns) for r in table.to_pylist()]


def test_daily_population_both_definitions_by_hand(backend):
    result = compute(
        "detained_population_daily", backend, MetricParams(end=date(2025, 1, 10))
    )
    assert rows(result, "date", "population_midnight", "population_24h") == [
        # Midnight: still held at the end of the day. R0's S0 (booked in at noon on 30 Dec,
        # still held); R0 speaks until 31 Dec.
        (date(2024, 12, 30), 1, 1),
        (date(2024, 12, 31), 1, 1),
        # R1: its first change is S1's book-in on the 2nd; no row for the 1st.
        (date(2025, 1, 2), 1, 1),
        (date(2025, 1, 3), 1, 2),  # S1 held overnight; S2 in at 00:00 and out at 15:00
        (date(2025, 1, 4), 0, 1),  # S1 out at 08:00
        (date(2025, 1, 5), 1, 1),  # S3 in at 13:00
        (date(2025, 1, 6), 1, 1),
        (date(2025, 1, 7), 1, 1),
        (date(2025, 1, 8), 1, 2),  # S4 in and out the same day: 24-hour only
        (date(2025, 1, 9), 1, 1),
        (date(2025, 1, 10), 1, 1),
    ]


def test_open_stay_counts_to_release_end_and_not_after(backend):
    result = compute("detained_population_daily", backend, MetricParams(start=date(2025, 4, 14)))
    assert rows(result, "date", "population_midnight", "population_24h") == [
        (date(2025, 4, 14), 1, 1),
        (date(2025, 4, 15), 2, 2),  # S5 in at 00:00, still held at the end of the day
        (date(2025, 4, 16), 1, 2),  # S5 out at 00:00: held at no moment after, but that day
        (date(2025, 4, 17), 1, 1),
        *[(date(2025, 4, d), 1, 1) for d in range(18, 31)],
    ]


def test_daily_population_by_facility_counts_each_placement(backend):
    result = compute("detained_population_daily", backend, MetricParams(by=("facility_code",)))
    assert rows(result, "date", "facility_code", "population_midnight", "population_24h") == [
        (date(2025, 1, 2), "F1", 1, 1),
        (date(2025, 1, 3), "F1", 0, 1),
        (date(2025, 1, 3), "F2", 1, 1),  # moved at noon: in both facilities' 24-hour counts
        (date(2025, 1, 4), "F2", 0, 1),  # the duplicate stint is not counted again
    ]


def test_population_filter_and_breakdown(backend):
    params = MetricParams(
        by=("criminality",), end=date(2025, 1, 4), filters={"aor": ("Atlanta",)}
    )
    result = compute("detained_population_daily", backend, params)
    assert rows(result, "date", "criminality", "population_midnight", "population_24h") == [
        (date(2024, 12, 30), CONVICTED, 1, 1),
        (date(2024, 12, 31), CONVICTED, 1, 1),
        (date(2025, 1, 2), CONVICTED, 1, 1),
        (date(2025, 1, 3), CONVICTED, 1, 1),
        (date(2025, 1, 3), PENDING, 0, 1),
        (date(2025, 1, 4), CONVICTED, 0, 1),  # nobody pending after S2's day: no row
    ]


def test_released_within_60_days_excludes_short_follow_up(backend):
    result = compute("released_within_60_days", backend)
    # January 2025 cohort of R1: S1 removed, S2 bonded out, S3 still held, S4 on supervision.
    # S5 (booked in 15 April) has 15 days of follow-up and is left out. R0's stays are from
    # days R0 does not speak for (S1-old) or booked in with 6 days of follow-up (S0).
    assert result.to_pylist() == [
        {
            "month": date(2025, 1, 1),
            "stays": 4,
            "ended_within_60d": 3,
            "released_within_60d": 2,
            "share_ended_within_60d": 0.75,
            "share_released_within_60d": 0.5,
        }
    ]


@pytest.fixture(scope="module")
def km_backend(tmp_path_factory):
    """Stays of set lengths (days): closed 1, 2, 4 and open 3, 5 (A); closed 400, open 500 (B);
    open 10 (C)."""
    start = datetime(2020, 1, 1)
    coverage_end = date(2021, 12, 31)
    spec = [("A", 1, True), ("A", 2, True), ("A", 3, False), ("A", 4, True), ("A", 5, False),
            ("B", 400, True), ("B", 500, False), ("C", 10, False)]
    stays = pa.Table.from_pylist(
        [
            {"stay_id": f"K{i}", "release": "K", "stay_book_in": start,
             "stay_book_out": start + timedelta(days=days) if closed else None,
             "censored": not closed, "length_days": float(days), "aor": aor,
             "criminality": CONVICTED, "citizenship_country": "MEXICO",
             "stay_release_reason": "Removed" if closed else None}
            for i, (aor, days, closed) in enumerate(spec)
        ]
    )
    releases = pa.Table.from_pylist(
        [{"release": "K", "coverage_start": date(2020, 1, 1), "coverage_end": coverage_end}]
    )
    path = tmp_path_factory.mktemp("km") / "w.duckdb"
    return build_warehouse(path, {"foia_stays": stays, "foia_releases": releases})


def test_kaplan_meier_median_and_restricted_mean_by_hand(km_backend):
    result = compute("length_of_stay", km_backend, MetricParams(by=("aor",)))
    a, b, c = result.to_pylist()
    # A: S(1)=4/5=.8, S(2)=.8*3/4=.6, S(3)=.6 (censored), S(4)=.6*1/2=.3, S(5)=.3.
    assert a["aor"] == "A" and (a["stays"], a["closed_stays"], a["open_stays"]) == (5, 3, 2)
    assert a["km_median_days"] == 4.0
    # Area to 365: 1*1 + .8*1 + .6*1 + .6*1 + .3*1 + .3*(365-5) = 111.3
    assert a["restricted_mean_days"] == pytest.approx(111.3)
    assert a["restriction_days"] == 365
    assert a["naive_closed_mean_days"] == pytest.approx(7 / 3)
    # B: S(400)=.5 -> median 400; every stay outlasts the 365-day restriction -> 365.
    assert b["km_median_days"] == 400.0
    assert b["restricted_mean_days"] == pytest.approx(365.0)
    assert b["naive_closed_mean_days"] == 400.0
    # C: nobody has left, so no median and no closed-stay mean; held throughout the 365 days.
    assert c["km_median_days"] is None and c["naive_closed_mean_days"] is None
    assert c["restricted_mean_days"] == pytest.approx(365.0)


def test_kaplan_meier_curve_by_hand(km_backend):
    rows = compute("length_of_stay_curve", km_backend, MetricParams(by=("aor",))).to_pylist()
    a = [(r["days"], r["at_risk"], r["ended"], r["survival"]) for r in rows if r["aor"] == "A"]
    # A: lengths 1, 2, 4 closed and 3, 5 open: the same S(t) as the median test above.
    assert a == [(1, 5, 1, pytest.approx(0.8)), (2, 4, 1, pytest.approx(0.6)),
                 (3, 3, 0, pytest.approx(0.6)), (4, 2, 1, pytest.approx(0.3)),
                 (5, 1, 0, pytest.approx(0.3))]
    # B's stays outlast the 365-day window of the curve: no point is drawn past it.
    assert all(r["days"] <= 365 for r in rows)
    assert [r["days"] for r in rows if r["aor"] == "B"] == []


def test_length_of_stay_nationally_and_for_an_empty_period(km_backend):
    (everyone,) = compute("length_of_stay", km_backend).to_pylist()
    assert (everyone["stays"], everyone["closed_stays"]) == (8, 4)
    later = compute("length_of_stay", km_backend, MetricParams(start=date(2030, 1, 1)))
    assert later.num_rows == 0


def test_capacity_uses_packaged_timeline(backend):
    result = compute(
        "detention_vs_capacity", backend, MetricParams(start=date(2025, 1, 3), end=date(2025, 1, 3))
    )
    (row,) = result.to_pylist()
    assert row["population_midnight"] == 1 and row["funded_beds"] == 41500
    assert row["share_of_funded_beds"] == pytest.approx(1 / 41500)
    assert row["population_over_funded_beds"] == 1 - 41500
    assert "Consolidated Appropriations Act, 2024" in row["capacity_source"]


def test_packaged_capacity_is_sourced_or_marked_unsourced():
    timeline = load_timeline("capacity.csv", "funded_beds").to_pylist()

    def on(day: date) -> dict:
        return next(r for r in timeline if r["effective_from"] <= day <= r["effective_to"])

    assert on(date(2023, 1, 15))["funded_beds"] == 34000
    assert "FY2023" in on(date(2023, 1, 15))["source"]
    # Under the continuing resolutions before the FY2024 act no source gives a bed count.
    gap = on(date(2023, 12, 1))
    assert gap["funded_beds"] is None and gap["basis"] == "unsourced"
    assert on(date(2024, 3, 22))["basis"] == "unsourced"
    assert on(date(2024, 3, 23))["funded_beds"] == 41500
    assert on(date(2025, 7, 4))["funded_beds"] is None
    assert all(r["basis"] == "unsourced" or not r["source"].startswith("none") for r in timeline)


def test_capacity_timeline_is_user_editable(backend, tmp_path, monkeypatch):
    (tmp_path / "capacity.csv").write_text(
        "effective_from,funded_beds,basis,source,source_date,note\n"
        "2025-01-09,,test,no count,,\n"
        "2025-01-06,2,test,hand-made,2025-01,rows need not be in order\n"
    )
    monkeypatch.setenv("ICELEDGER_FACTS_DIR", str(tmp_path))
    result = compute(
        "detention_vs_capacity", backend, MetricParams(start=date(2025, 1, 5), end=date(2025, 1, 9))
    )
    assert rows(result, "date", "funded_beds", "share_of_funded_beds", "capacity_source") == [
        (date(2025, 1, 5), None, None, None),
        (date(2025, 1, 6), 2.0, 0.5, "hand-made"),
        (date(2025, 1, 7), 2.0, 0.5, "hand-made"),
        (date(2025, 1, 8), 2.0, 0.5, "hand-made"),
        (date(2025, 1, 9), None, None, "no count"),
    ]


def test_bad_capacity_row_names_file_and_row(backend, tmp_path, monkeypatch):
    (tmp_path / "capacity.csv").write_text(
        "effective_from,funded_beds,basis,source,source_date,note\n"
        "2025-01-01,2,x,y,,\n"
        "2025-02-01,-5,x,y,,\n"
    )
    monkeypatch.setenv("ICELEDGER_FACTS_DIR", str(tmp_path))
    with pytest.raises(IceledgerError, match=r"capacity.csv, row 3: column 'funded_beds'.*not positive"):
        compute("detention_vs_capacity", backend)


def test_missing_table_is_one_clear_error(tmp_path):
    backend = build_warehouse(tmp_path / "w.duckdb", {"foia_releases": RELEASES})
    with pytest.raises(IceledgerError, match="no table 'foia_stays'"):
        compute("length_of_stay", backend)


MOMENTS = st.integers(min_value=0, max_value=20 * 24).map(
    lambda hours: datetime(2025, 1, 1) + timedelta(hours=hours)
)


@settings(max_examples=25, deadline=None)
@given(
    spans=st.lists(
        st.tuples(MOMENTS, st.one_of(st.none(), st.integers(min_value=0, max_value=8 * 24))),
        min_size=1,
        max_size=12,
    )
)
def test_sweep_matches_counting_each_day(spans):
    """The event sweep against the per-day definition, on random stays (some still open)."""
    coverage_end = date(2025, 1, 25)
    rows = [
        (f"H{i}", start, None if hours is None else start + timedelta(hours=hours), None,
         CONVICTED, "Atlanta")
        for i, (start, hours) in enumerate(spans)
    ]
    releases = pa.table(
        {"release": ["H"], "coverage_start": [date(2025, 1, 1)], "coverage_end": [coverage_end]}
    )
    backend = ibis.duckdb.connect()  # in memory: one example takes milliseconds
    backend.create_table("foia_stays", make_stays("H", coverage_end, rows))
    backend.create_table("foia_releases", releases)
    result = compute("detained_population_daily", backend)
    held_through = datetime.combine(coverage_end + timedelta(days=1), datetime.min.time())
    expected = {}
    for offset in range(25):
        midnight = datetime(2025, 1, 1) + timedelta(days=offset)
        ends = [(start, out or held_through) for _, start, out, *_ in rows]
        day_end = midnight + timedelta(days=1)
        at_midnight = sum(start < day_end <= end for start, end in ends)
        that_day = sum(start < midnight + timedelta(days=1) and end >= midnight for start, end in ends)
        expected[midnight.date()] = (at_midnight, that_day)
    got = {r["date"]: (r["population_midnight"], r["population_24h"]) for r in result.to_pylist()}
    # Days before the first book-in and after the last book-out have no row: nobody is held.
    assert {day: counts for day, counts in expected.items() if day in got} == got
    assert all(counts == (0, 0) for day, counts in expected.items() if day not in got)


@settings(max_examples=25, deadline=None)
@given(
    stints=st.lists(
        st.tuples(MOMENTS, st.one_of(st.none(), st.integers(min_value=0, max_value=8 * 24)),
                  st.sampled_from(["F1", "F2", None])),
        min_size=1,
        max_size=12,
    ),
    first=st.integers(min_value=0, max_value=24),
    days=st.integers(min_value=0, max_value=24),
)
def test_sweep_by_facility_for_a_period_matches_counting_each_day(stints, first, days):
    """By facility (an unrecorded facility is a group of its own) and for any period: the days
    of the period get the counts of the per-day definition, whatever custody began or ended
    outside it."""
    coverage_end = date(2025, 1, 25)
    rows = [
        {"release": "H", "stay_id": f"H{i}", "facility_code": facility, "book_in": start,
         "book_out": None if hours is None else start + timedelta(hours=hours),
         "is_duplicate": False}
        for i, (start, hours, facility) in enumerate(stints)
    ]
    releases = pa.table(
        {"release": ["H"], "coverage_start": [date(2025, 1, 1)], "coverage_end": [coverage_end]}
    )
    backend = ibis.duckdb.connect()
    backend.create_table("foia_stints", pa.Table.from_pylist(rows, schema=pa.schema(
        [("release", pa.string()), ("stay_id", pa.string()), ("facility_code", pa.string()),
         ("book_in", pa.timestamp("us")), ("book_out", pa.timestamp("us")),
         ("is_duplicate", pa.bool_())])))
    backend.create_table("foia_releases", releases)
    start = date(2025, 1, 1) + timedelta(days=first)
    end = start + timedelta(days=days)
    params = MetricParams(by=("facility_code",), start=start, end=end)
    result = compute("detained_population_daily", backend, params)
    held_through = datetime.combine(coverage_end + timedelta(days=1), datetime.min.time())
    got = {(r["date"], r["facility_code"]): (r["population_midnight"], r["population_24h"])
           for r in result.to_pylist()}
    assert len(got) == result.num_rows, "one row per day and facility"
    assert all(start <= day <= min(end, coverage_end) for day, _ in got)
    for offset in range((min(end, coverage_end) - start).days + 1):
        midnight = datetime.combine(start + timedelta(days=offset), datetime.min.time())
        for facility in ("F1", "F2", None):
            spans = [(r["book_in"], r["book_out"] or held_through) for r in rows
                     if r["facility_code"] == facility]
            day_end = midnight + timedelta(days=1)
            expected = (sum(s < day_end <= e for s, e in spans),
                        sum(s < midnight + timedelta(days=1) and e >= midnight for s, e in spans))
            assert got.get((midnight.date(), facility), (0, 0)) == expected


def test_alos_averages_the_stays_booked_out_in_each_whole_month(backend):
    result = compute("alos_monthly", backend).to_pylist()
    # January: S1 (46 hours), S2 (15) and S4 (8) ended; April: S5 (24 hours). December is a
    # part-month of R0 and February and March saw no book-out. No workbooks: no published side.
    assert [(r["month"], r["book_outs"], r["published_alos_days"]) for r in result] == [
        (date(2025, 1, 1), 3, None),
        (date(2025, 4, 1), 1, None),
    ]
    assert [r["alos_days"] for r in result] == pytest.approx([69 / 72, 1.0])
