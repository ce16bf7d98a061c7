"""Deaths in custody per 100,000 bed-days, on hand-built records and a hand-written deaths file.

The deaths file here is SYNTHETIC (its counts and sources are made up for the test), read through
--facts DIR like a user's own copy:
    March 2025            2 deaths (primary)       3 deaths (alternative)
    February 2025         1 death
    January 2025          4 deaths
    FY2025                9 deaths (alternative: it overlaps the months' primary counts)

One FOIA release, 2025-06-01, whose records start with A's book-in on 2025-02-20:
    A  booked in 2025-02-20 08:00, still held      midnights: Feb 20..28 = 9, March = 31, and
                                                   every day to the release's (102 in all)
    B  booked in 2025-03-10 08:00, out 2025-03-15  midnights: March 10..14 = 5
So March has 36 bed-days and is covered whole; February is covered from the 20th (9 bed-days);
January not at all; FY2025 for 102 of its 365 days (107 bed-days).

ICE's published ADP (all agencies, all classes): October 2024 to March 2025, 40 a day in March
(1,240 bed-days), 30 in each other month.
"""

from __future__ import annotations

import csv
from datetime import date, datetime

import pyarrow as pa
import pytest
from test_foia_derived import STINT_SCHEMA

from iceledger.errors import SourceError
from iceledger.facts import facts_dir, load_deaths
from iceledger.metrics import MetricParams, compute
from iceledger.metrics.backends import duckdb_backend
from iceledger.sources.foia.derived import rebuild_derived
from iceledger.tables import STATS_ADP, STATS_WORKBOOKS
from iceledger.warehouse import Warehouse

COLUMNS = ("period_start", "period_end", "deaths", "status", "counted_by", "source", "title",
           "url", "source_date", "quote", "note")
COUNTS = [
    ("2025-03-01", "2025-03-31", 2, "primary", "SYNTHETIC source A", "There were 2 deaths."),
    ("2025-03-01", "2025-03-31", 3, "alternative", "SYNTHETIC source B", "3 people died."),
    ("2025-02-01", "2025-02-28", 1, "primary", "SYNTHETIC source A", "1 death was reported."),
    ("2025-01-01", "2025-01-31", 4, "primary", "SYNTHETIC source A", "4 deaths in January."),
    ("2024-10-01", "2025-09-30", 9, "alternative", "SYNTHETIC source C", "9 died in FY2025."),
]
MARCH, FEBRUARY, JANUARY = "2025-03-01 to 2025-03-31", "2025-02-01 to 2025-02-28", \
    "2025-01-01 to 2025-01-31"
YEAR = "FY2025, alternative: SYNTHETIC source C"
RELEASE = "2025-06-01"


def write_deaths(folder, counts=COUNTS) -> None:
    folder.mkdir(exist_ok=True)
    with (folder / "deaths.csv").open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(COLUMNS)
        for start, end, deaths, status, source, quote in counts:
            writer.writerow([start, end, deaths, status, "the test", source, "A title",
                             "https://example.org/synthetic", "2025-10", quote, ""])


def _stint(record, person, book_in, book_out):
    return {"record_id": record, "release": RELEASE, "person_id": person, "stay_book_in": book_in,
            "book_in": book_in, "book_out": book_out, "stay_book_out": book_out,
            "facility_code": "F1", "stay_release_reason": "Removed" if book_out else None,
            "criminality": "Other Immigration Violator", "aor": "Atlanta", "aor_code": "ATL",
            "citizenship_country": "MEXICO", "gender": "Male", "departed_date": None}


def _adp() -> pa.Table:
    months = [date(2024, m, 1) for m in (10, 11, 12)] + [date(2025, m, 1) for m in (1, 2, 3)]
    return pa.Table.from_pylist(
        [{"workbook": "W1", "sha256": "a" * 64, "fiscal_year": 2025, "agency": agency,
          "criminality": crim, "month": m, "adp": 40.0 if m == date(2025, 3, 1) else 30.0,
          "sheet": "Detention FY25", "cell_range": "B9"}
         for m in months for agency in ("ICE", "Total")
         for crim in ("Convicted Criminal", "Total")])


@pytest.fixture(scope="module")
def facts(tmp_path_factory):
    folder = tmp_path_factory.mktemp("facts")
    write_deaths(folder)
    with facts_dir(folder):
        yield folder


@pytest.fixture(scope="module")
def backend(tmp_path_factory, facts):
    warehouse = Warehouse(tmp_path_factory.mktemp("deaths") / "w.duckdb")
    warehouse.replace_table("foia_stints", pa.Table.from_pylist([
        _stint("t1", "A", datetime(2025, 2, 20, 8), None),
        _stint("t2", "B", datetime(2025, 3, 10, 8), datetime(2025, 3, 15, 9)),
    ], schema=STINT_SCHEMA))
    warehouse.replace_table(STATS_ADP, _adp())
    warehouse.replace_table(STATS_WORKBOOKS, pa.table({
        "workbook": ["W1"], "sha256": ["a" * 64], "fiscal_year": [2025],
        "file_date": pa.array([date(2025, 4, 10)], pa.date32()),
        "as_of_date": pa.array([date(2025, 4, 5)], pa.date32())}))
    with warehouse.connect() as con:
        rebuild_derived(con)
    return duckdb_backend(warehouse.path)


def _by_figure(table: pa.Table) -> dict[str, dict]:
    return {r["figure"]: r for r in table.to_pylist()}


def test_deaths_per_bed_day_from_the_records_where_they_cover_the_period(backend):
    rows = _by_figure(compute("deaths_in_custody", backend))
    march = rows[MARCH]
    assert (march["deaths"], march["days_in_period"], march["days_covered"], march["bed_days"]) \
        == (2, 31, 31, 36)
    assert march["deaths_per_100k_bed_days"] == pytest.approx(2 * 100_000 / 36)
    alternative = rows[f"{MARCH}, alternative: SYNTHETIC source B"]
    assert (alternative["status"], alternative["deaths_per_100k_bed_days"]) == \
        ("alternative", pytest.approx(3 * 100_000 / 36))
    # Part covered, or not at all: the bed-days so far, and no rate.
    assert [(rows[f]["days_covered"], rows[f]["bed_days"], rows[f]["deaths_per_100k_bed_days"])
            for f in (FEBRUARY, JANUARY, YEAR)] == [(9, 9, None), (0, 0, None),
                                                         (102, 102 + 5, None)]


def test_deaths_per_bed_day_from_ices_published_population(backend):
    rows = _by_figure(compute("deaths_in_custody_published", backend))
    march = rows[MARCH]
    assert (march["months_in_period"], march["months_published"], march["bed_days"]) == \
        (1, 1, 40.0 * 31)
    assert march["deaths_per_100k_bed_days"] == pytest.approx(2 * 100_000 / (40 * 31))
    year = rows[YEAR]
    # Six of twelve months printed: the bed-days so far (30 a day Oct..Feb, 40 in March), no rate.
    assert (year["months_in_period"], year["months_published"], year["bed_days"],
            year["deaths_per_100k_bed_days"]) == (12, 6, 30.0 * (31 + 30 + 31 + 31 + 28) + 1240,
                                                  None)
    assert rows[JANUARY]["deaths_per_100k_bed_days"] == pytest.approx(4 * 100_000 / (30 * 31))


def test_the_period_asked_for_keeps_the_counts_it_overlaps(backend):
    rows = compute("deaths_in_custody_published", backend,
                   MetricParams(start=date(2025, 2, 10), end=date(2025, 2, 20)))
    assert sorted(rows.column("figure").to_pylist()) == [FEBRUARY, YEAR]


def test_the_shipped_counts_each_quote_their_figure(tmp_path):
    with facts_dir(tmp_path):  # no deaths.csv there: the shipped one is read
        counts = load_deaths()
    fy2025 = [c for c in counts if c.period_start == date(2024, 10, 1)
              and c.period_end == date(2025, 9, 30)]
    assert {(c.status, c.deaths) for c in fy2025} == {("primary", 23), ("alternative", 21)}
    assert all(c.url.startswith("https://") and str(c.deaths) in c.quote for c in counts)


@pytest.mark.parametrize(("counts", "problem"), [
    ([("2025-03-01", "2025-03-31", 2, "primary", "S", "Two people died.")],
     "the quote does not state the figure 2"),
    ([("2025-03-01", "2025-03-31", 2, "primary", "S", "2 died."),
      ("2025-03-15", "2025-04-30", 5, "primary", "S", "5 died.")], "overlaps the one of row 2"),
    ([("2025-03-31", "2025-03-01", 2, "primary", "S", "2 died.")],
     "period_end is before period_start"),
])
def test_a_bad_deaths_file_names_its_row(tmp_path, counts, problem):
    write_deaths(tmp_path, counts)
    with facts_dir(tmp_path), pytest.raises(SourceError, match=problem) as failed:
        load_deaths()
    assert "deaths.csv" in str(failed.value)

