"""Arrest outcomes on a hand-built release: every count and share worked out by hand."""

from __future__ import annotations

from datetime import date, datetime, timedelta

import pyarrow as pa
import pytest

from iceledger.metrics import MetricParams, compute
from iceledger.metrics.backends import duckdb_backend
from iceledger.metrics.registry import NotServable
from iceledger.warehouse import Warehouse

CONVICTED, PENDING, OTHER = (
    "Convicted Criminal",
    "Pending Criminal Charges",
    "Other Immigration Violator",
)

ARREST_SCHEMA = pa.schema(
    [
        ("record_id", pa.string()),
        ("release", pa.string()),
        ("apprehension_date", pa.timestamp("us")),
        ("criminality", pa.string()),
        ("arrest_setting", pa.string()),
        ("aor", pa.string()),
        ("citizenship_country", pa.string()),
        ("apprehension_method", pa.string()),
        ("is_duplicate", pa.bool_()),
    ]
)


def arrest(record_id, when, criminality, setting, release="R", duplicate=False):
    return {
        "record_id": record_id, "release": release, "apprehension_date": when,
        "criminality": criminality, "arrest_setting": setting, "aor": "Atlanta",
        "citizenship_country": "GUATEMALA", "apprehension_method": "Located",
        "is_duplicate": duplicate,
    }


ARRESTS = pa.Table.from_pylist(
    [
        arrest("A1", datetime(2025, 1, 10, 8), CONVICTED, "custodial"),
        arrest("A2", datetime(2025, 1, 15, 9), PENDING, "at-large"),
        arrest("A3", datetime(2025, 2, 1, 9), OTHER, "at-large"),
        arrest("A4", datetime(2025, 2, 10, 9), CONVICTED, "custodial"),
        arrest("A5", datetime(2025, 5, 15, 9), CONVICTED, "custodial"),
        arrest("A6", datetime(2025, 1, 10, 9), CONVICTED, "custodial", duplicate=True),
        arrest("A7", datetime(2025, 6, 25, 9), CONVICTED, "custodial"),
        # The older release Q re-covers January; release R speaks for it.
        arrest("A8", datetime(2025, 1, 20, 9), CONVICTED, "custodial", release="Q"),
    ],
    schema=ARREST_SCHEMA,
)

STAYS = pa.Table.from_pylist(
    [
        {"stay_id": "T1", "stay_book_in": datetime(2025, 1, 10, 8),
         "stay_book_out": datetime(2025, 2, 1, 6), "stay_release_reason": "Removed"},
        {"stay_id": "T2", "stay_book_in": datetime(2025, 1, 16, 9),
         "stay_book_out": datetime(2025, 3, 20), "stay_release_reason": "Bonded Out"},
        {"stay_id": "T4", "stay_book_in": datetime(2025, 2, 10, 21),
         "stay_book_out": None, "stay_release_reason": None},
        {"stay_id": "T5", "stay_book_in": datetime(2025, 5, 15, 9),
         "stay_book_out": datetime(2025, 6, 1), "stay_release_reason": "Voluntary Departure"},
        {"stay_id": "T8", "stay_book_in": datetime(2025, 1, 20, 9),
         "stay_book_out": None, "stay_release_reason": None},
    ],
    schema=pa.schema([("stay_id", pa.string()), ("stay_book_in", pa.timestamp("us")),
                      ("stay_book_out", pa.timestamp("us")), ("stay_release_reason", pa.string())]),
)

LINKS = pa.table(
    {
        "arrest_record_id": ["A1", "A2", "A4", "A5", "A8"],
        "stay_id": ["T1", "T2", "T4", "T5", "T8"],
        "days_from_arrest": [0.0, 1.0, 0.5, 0.0, 0.0],
    }
)
REMOVALS = pa.table(
    {
        "record_id": ["D1", "D5", "D9"],
        "release": ["R", "R", "R"],
        "departed_date": [date(2025, 2, 1), date(2025, 6, 2), date(2025, 3, 1)],
    }
)
REMOVAL_LINKS = pa.table(
    {
        "removal_record_id": ["D1", "D5", "D9"],
        "stay_id": ["T1", "T5", "T9"],
        "arrest_record_id": ["A1", "A5", None],
    }
)
RELEASES = pa.table(
    {
        "release": ["Q", "R"],
        "coverage_start": [date(2024, 7, 1), date(2025, 1, 1)],
        "coverage_end": [date(2025, 2, 1), date(2025, 6, 30)],
    }
)


def followed(arrests: pa.Table) -> pa.Table:
    """The arrests with what foia_derived writes on each of them from the links above: the days
    to its stay, when and why that stay ended, the whole days to the removal that ended it."""
    stays = {row["stay_id"]: row for row in STAYS.to_pylist()}
    departed = {row["record_id"]: row["departed_date"] for row in REMOVALS.to_pylist()}
    removed = {link["stay_id"]: departed[link["removal_record_id"]]
               for link in REMOVAL_LINKS.to_pylist()}
    links = {link["arrest_record_id"]: link for link in LINKS.to_pylist()}
    rows = []
    for row in arrests.to_pylist():
        link = links.get(row["record_id"])
        stay = stays[link["stay_id"]] if link else {}
        departure = removed.get(link["stay_id"]) if link else None
        rows.append({
            **row,
            "days_to_stay": link and link["days_from_arrest"],
            "stay_ended_at": stay.get("stay_book_out"),
            "stay_end_reason": stay.get("stay_release_reason"),
            "days_to_removal": departure and (departure - row["apprehension_date"].date()).days,
        })
    return pa.Table.from_pylist(rows, schema=arrests.schema.append(
        pa.field("days_to_stay", pa.float64())).append(
        pa.field("stay_ended_at", pa.timestamp("us"))).append(
        pa.field("stay_end_reason", pa.string())).append(pa.field("days_to_removal", pa.int32())))


@pytest.fixture(scope="module")
def backend(tmp_path_factory):
    warehouse = Warehouse(tmp_path_factory.mktemp("outcomes") / "w.duckdb")
    for name, table in {
        "foia_arrests": followed(ARRESTS),
        "foia_stays": STAYS,
        "foia_arrest_stay_links": LINKS,
        "foia_removals": REMOVALS,
        "foia_removal_links": REMOVAL_LINKS,
        "foia_releases": RELEASES,
    }.items():
        warehouse.replace_table(name, table)
    return duckdb_backend(warehouse.path)


COUNTS = (
    "arrests", "arrests_followed_10d", "detained_within_10d", "arrests_followed_30d",
    "removed_within_30d", "arrests_followed_60d", "removed_within_60d", "arrests_followed_90d",
    "removed_within_90d", "voluntary_departure_within_90d", "released_within_90d",
    "still_held_at_90d",
)


def test_outcomes_by_month_with_censoring(backend):
    by_month = {r["month"]: r for r in compute("arrest_outcomes", backend).to_pylist()}
    assert list(by_month) == [date(2025, 1, 1), date(2025, 2, 1), date(2025, 5, 1), date(2025, 6, 1)]
    # January: A1 (removed 22 days after arrest) and A2 (bonded out); A6 is a duplicate and A8
    # belongs to the older release for a month the newer one covers.
    assert tuple(by_month[date(2025, 1, 1)][c] for c in COUNTS) == (
        2, 2, 2, 2, 1, 2, 1, 2, 1, 0, 1, 0
    )
    # February: A3 never detained, A4 still held at 90 days.
    feb = by_month[date(2025, 2, 1)]
    assert tuple(feb[c] for c in COUNTS) == (2, 2, 1, 2, 0, 2, 0, 2, 0, 0, 0, 1)
    assert feb["share_still_held_at_90d"] == 0.5 and feb["share_detained_within_10d"] == 0.5
    # May: A5 has 46 days of follow-up: known at 10 and 30 days, censored at 60 and 90.
    may = by_month[date(2025, 5, 1)]
    assert tuple(may[c] for c in COUNTS) == (1, 1, 1, 1, 1, 0, 0, 0, 0, 0, 0, 0)
    assert may["share_removed_within_30d"] == 1.0
    assert may["share_removed_within_60d"] is None and may["share_released_within_90d"] is None
    # June: A7, five days before the release end, is in no denominator.
    june = by_month[date(2025, 6, 1)]
    assert june["arrests"] == 1 and june["arrests_followed_10d"] == 0
    assert june["share_detained_within_10d"] is None


def test_outcomes_by_criminality_and_filter(backend):
    params = MetricParams(
        by=("criminality",), end=date(2025, 1, 31), filters={"arrest_setting": ("custodial",)}
    )
    (row,) = compute("arrest_outcomes", backend, params).to_pylist()
    assert row["criminality"] == CONVICTED and row["arrests"] == 1
    assert row["share_removed_within_30d"] == 1.0 and row["share_released_within_90d"] == 0.0


def test_funnel_is_the_whole_period_of_the_monthly_counts(backend):
    (funnel,) = compute("arrest_outcome_funnel", backend).to_pylist()
    # Jan + Feb + May + June from the test above, column by column.
    assert tuple(funnel[c] for c in COUNTS) == (6, 5, 4, 5, 2, 4, 1, 4, 1, 0, 1, 1)
    assert funnel["share_detained_within_10d"] == pytest.approx(4 / 5)
    assert funnel["share_still_held_at_90d"] == pytest.approx(1 / 4)


def test_a_period_gives_the_rows_of_the_whole_run_inside_it(backend):
    # Asked for one month, the linked stays are read only near it (the link window around the
    # period); every count must be what the whole run gives for that month.
    whole = {r["month"]: r for r in compute("arrest_outcomes", backend).to_pylist()}
    for month, row in whole.items():
        end = (month.replace(day=28) + timedelta(days=4)).replace(day=1) - timedelta(days=1)
        params = MetricParams(start=month, end=end, filters={"aor": ("Atlanta",)})
        assert compute("arrest_outcomes", backend, params).to_pylist() == [row]


def test_a_period_is_exact_on_a_synthetic_release(synthetic_warehouse):
    # SYNTHETIC records from the real pipeline: arrests near a month's end have stays booked in
    # the next month, so reading stays only near the period must still find every one.
    backend = duckdb_backend(synthetic_warehouse)
    whole = {r["month"]: r for r in compute("arrest_outcomes", backend).to_pylist()}
    assert sum(r["detained_within_10d"] for r in whole.values()) > 100
    for month, row in sorted(whole.items())[1:-1]:
        end = (month.replace(day=28) + timedelta(days=4)).replace(day=1) - timedelta(days=1)
        params = MetricParams(start=month, end=end)
        (sliced,) = compute("arrest_outcomes", backend, params).to_pylist()
        assert sliced == row, month


def test_arrests_derived_before_they_carried_their_outcomes_ask_for_a_derive(tmp_path):
    warehouse = Warehouse(tmp_path / "w.duckdb")
    warehouse.replace_table("foia_arrests", ARRESTS)
    warehouse.replace_table("foia_releases", RELEASES)
    for name in ("arrest_outcomes", "arrest_outcome_funnel"):
        with pytest.raises(NotServable, match="derived before it carried days_to_stay, "
                           "stay_ended_at, stay_end_reason, days_to_removal; run `iceledger "
                           "derive`"):
            compute(name, duckdb_backend(warehouse.path))
