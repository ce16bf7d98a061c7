"""Who is targeted: criminality mix, both headline definitions, Wilson and Newcombe intervals.

The hand-built arrests (one release covering January-February 2025), worked out by hand:

    January:  convicted 2, pending 1, neither 1, unknown 1 (and a duplicate row, not counted)
    February: convicted 1, pending 1, neither 4
    no conviction, January   = (1 + 1) / 4 = 0.5;  no conviction and no charge = 1 / 4
    no conviction, February  = (1 + 4) / 6;        no conviction and no charge = 4 / 6
"""

from __future__ import annotations

import math
from datetime import date, datetime

import ibis
import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from iceledger.errors import IceledgerError
from iceledger.metrics import MetricParams, compute
from iceledger.metrics.targeting import Z_95, wilson_interval
from iceledger.warehouse import Warehouse

C, P, N = "Convicted Criminal", "Pending Criminal Charges", "Other Immigration Violator"
RELEASE = "2025-03-01"

# (month, day, criminality, arrest_setting, aor, is_duplicate)
ARRESTS = [
    (1, 5, C, "custodial", "Atlanta", False),
    (1, 5, C, "custodial", "Atlanta", True),
    (1, 9, C, "custodial", "Boston", False),
    (1, 12, P, "at-large", "Atlanta", False),
    (1, 20, N, "at-large", "Boston", False),
    (1, 25, None, None, "Boston", False),
    (2, 2, C, "custodial", "Atlanta", False),
    (2, 3, P, "custodial", "Atlanta", False),
    (2, 10, N, "at-large", "Atlanta", False),
    (2, 11, N, "at-large", "Boston", False),
    (2, 20, N, "at-large", "Boston", False),
    (2, 27, N, "other", "Boston", False),
]


def _wilson(successes: int, n: int, z: float = Z_95) -> tuple[float, float]:
    """The textbook Wilson score interval, written independently of the Ibis expression."""
    p = successes / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z / (1 + z * z / n) * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    return max(0.0, centre - half), min(1.0, centre + half)


def _backend(path, tables: dict[str, pa.Table]) -> ibis.BaseBackend:
    warehouse = Warehouse(path)
    for name, table in tables.items():
        warehouse.replace_table(name, table)
    return ibis.duckdb.connect(str(path), read_only=True)


@pytest.fixture(scope="module")
def backend(tmp_path_factory):
    arrests = pa.table(
        {
            "release": [RELEASE] * len(ARRESTS),
            "apprehension_date": pa.array(
                [datetime(2025, m, d, 10) for m, d, *_ in ARRESTS], pa.timestamp("us")
            ),
            "criminality": [a[2] for a in ARRESTS],
            "arrest_setting": [a[3] for a in ARRESTS],
            "aor": [a[4] for a in ARRESTS],
            "is_duplicate": [a[5] for a in ARRESTS],
        }
    )
    stays = pa.table(
        {
            "release": [RELEASE] * 3,
            "stay_id": ["s1", "s2", "s3"],
            "stay_book_in": pa.array(
                [datetime(2025, 1, 3, 12), datetime(2025, 1, 4, 8), datetime(2025, 2, 1, 9)],
                pa.timestamp("us"),
            ),
            "stay_book_out": pa.array(
                [datetime(2025, 1, 6, 12), None, datetime(2025, 2, 3, 9)], pa.timestamp("us")
            ),
            "criminality": [C, N, P],
            "aor": ["Atlanta", "Boston", "Atlanta"],
            "citizenship_country": ["MEXICO", "HONDURAS", "MEXICO"],
        }
    )
    releases = pa.table(
        {
            "release": [RELEASE],
            "coverage_start": [date(2025, 1, 1)],
            "coverage_end": [date(2025, 2, 28)],
        }
    )
    path = tmp_path_factory.mktemp("targeting") / "w.duckdb"
    return _backend(path, {"foia_arrests": arrests, "foia_stays": stays,
                           "foia_releases": releases})


def _by(table: pa.Table, key: str) -> dict:
    return {row[key]: row for row in table.to_pylist()}


def test_monthly_mix_shows_both_headline_definitions_with_intervals(backend):
    months = _by(compute("arrest_criminality", backend, MetricParams()), "month")
    january, february = months[date(2025, 1, 1)], months[date(2025, 2, 1)]
    assert (january["arrests"], january["criminality_unknown"], january["convicted"],
            january["pending_charges"], january["other_immigration_violator"]) == (5, 1, 2, 1, 1)
    assert january["no_conviction_share"] == pytest.approx(0.5)
    assert january["no_conviction_no_charge_share"] == pytest.approx(0.25)
    assert (january["no_conviction_ci_low"], january["no_conviction_ci_high"]) == pytest.approx(
        _wilson(2, 4))
    assert february["no_conviction_share"] == pytest.approx(5 / 6)
    assert february["no_conviction_no_charge_share"] == pytest.approx(4 / 6)
    assert (february["no_conviction_no_charge_ci_low"],
            february["no_conviction_no_charge_ci_high"]) == pytest.approx(_wilson(4, 6))


def test_period_mix_covers_the_days_asked_and_says_so(backend):
    params = MetricParams(start=date(2025, 1, 10), end=date(2025, 2, 5))
    [row] = compute("arrest_criminality_period", backend, params).to_pylist()
    # 12 Jan pending, 20 Jan neither, 25 Jan unknown, 2 Feb convicted, 3 Feb pending
    assert (row["arrests"], row["convicted"], row["pending_charges"],
            row["other_immigration_violator"]) == (5, 1, 2, 1)
    assert row["no_conviction_share"] == pytest.approx(3 / 4)
    assert (row["period_start"], row["period_end"]) == (date(2025, 1, 10), date(2025, 2, 5))
    [whole] = compute("arrest_criminality_period", backend, MetricParams(
        start=date(2024, 12, 1))).to_pylist()
    assert whole["period_start"] == date(2025, 1, 5), "the arrests start later than asked"


def test_mix_by_setting_and_filtered_by_office(backend):
    by_setting = compute("arrest_criminality_period", backend, MetricParams(by=("arrest_setting",)))
    rows = _by(by_setting, "arrest_setting")
    assert rows["custodial"]["arrests"] == 4 and rows["custodial"]["no_conviction_share"] == 0.25
    assert rows["at-large"]["no_conviction_no_charge_share"] == pytest.approx(4 / 5)
    atlanta = compute("arrest_criminality_period", backend,
                      MetricParams(filters={"aor": ("Atlanta",)})).to_pylist()[0]
    assert (atlanta["convicted"], atlanta["pending_charges"],
            atlanta["other_immigration_violator"]) == (2, 2, 1)


def test_setting_shares_leave_unrecorded_settings_out_of_the_denominator(backend):
    rows = compute("arrest_setting_share", backend, MetricParams()).to_pylist()
    january = {r["arrest_setting"]: r for r in rows if r["month"] == date(2025, 1, 1)}
    assert january["custodial"]["arrests"] == 2
    assert january["custodial"]["arrests_with_arrest_setting"] == 4
    assert january["custodial"]["share"] == pytest.approx(0.5)
    assert (january["custodial"]["ci_low"], january["custodial"]["ci_high"]) == pytest.approx(
        _wilson(2, 4))
    assert january[None]["arrests"] == 1 and january[None]["share"] is None


def test_book_ins_and_population_by_criminality(backend):
    [book_ins] = compute("book_in_criminality_period", backend, MetricParams()).to_pylist()
    assert (book_ins["book_ins"], book_ins["convicted"], book_ins["pending_charges"],
            book_ins["other_immigration_violator"]) == (3, 1, 1, 1)
    days = _by(compute("population_criminality", backend, MetricParams(
        start=date(2025, 1, 4), end=date(2025, 1, 7))), "date")
    # Still held at the end of the day: s1 (out 6 Jan at noon) on 4-5 Jan; s2 (booked in 4 Jan
    # 08:00, never booked out) from 4 Jan.
    assert {d.day: r["population_midnight"] for d, r in days.items()} == {4: 2, 5: 2, 6: 1, 7: 1}
    assert days[date(2025, 1, 5)]["no_conviction_no_charge_share"] == pytest.approx(0.5)
    assert days[date(2025, 1, 7)]["convicted"] == 0


def test_shift_compares_before_and_after_a_split_with_newcombe_interval(backend):
    params = MetricParams(filters={"split": ("2025-02-01",)})
    rows = _by(compute("arrest_criminality_shift", backend, params), "definition")
    assert set(rows) == {"no_conviction", "no_conviction_no_charge"}
    row = rows["no_conviction"]
    assert (row["before_records"], row["after_records"]) == (4, 6)
    assert row["before_share"] == pytest.approx(0.5)
    assert row["after_share"] == pytest.approx(5 / 6)
    assert row["difference"] == pytest.approx(5 / 6 - 0.5)
    l1, u1 = _wilson(2, 4)
    l2, u2 = _wilson(5, 6)
    p1, p2 = 0.5, 5 / 6
    assert row["difference_ci_low"] == pytest.approx(
        (p2 - p1) - math.sqrt((p2 - l2) ** 2 + (u1 - p1) ** 2))
    assert row["difference_ci_high"] == pytest.approx(
        (p2 - p1) + math.sqrt((u2 - p2) ** 2 + (p1 - l1) ** 2))
    assert row["smaller_group"] == 4


def test_shift_splits_at_events_inside_the_data_by_default(backend):
    rows = compute("arrest_criminality_shift", backend, MetricParams()).to_pylist()
    # Of the shipped events and target starts only the inauguration and the January quota fall in
    # January-February 2025.
    assert {r["split_date"] for r in rows} == {date(2025, 1, 20), date(2025, 1, 26)}
    with pytest.raises(IceledgerError, match="not a date"):
        compute("arrest_criminality_shift", backend, MetricParams(filters={"split": ("May",)}))


def test_published_detained_population_by_criminality(tmp_path):
    detained = pa.table(
        {
            "workbook": ["a.xlsx"] * 6,
            "criminality": [C, P, N, "Total", C, N],
            "agency": ["Total", "Total", "Total", "Total", "ICE", "ICE"],
            "detained": [30.0, 20.0, 50.0, 100.0, 25.0, 40.0],
        }
    )
    workbooks = pa.table({"workbook": ["a.xlsx"], "as_of_date": [date(2025, 6, 15)],
                          "file_date": [date(2025, 6, 20)]})
    backend = _backend(tmp_path / "w.duckdb",
                       {"stats_detained_now": detained, "stats_workbooks": workbooks})
    [total] = compute("detained_criminality", backend, MetricParams()).to_pylist()
    assert total["date"] == date(2025, 6, 15)
    assert total["detained"] == 100, "the printed Total row is not counted again"
    assert total["no_conviction_share"] == pytest.approx(0.7)
    ice = _by(compute("detained_criminality", backend, MetricParams(by=("agency",))), "agency")
    assert ice["ICE"]["no_conviction_no_charge_share"] == pytest.approx(40 / 65)


def test_published_detained_population_is_dated_by_its_snapshot_not_the_workbook(tmp_path):
    # b.xlsx prints a stale 'data as of' line (a year early) but its Footnotes sheet dates the
    # table; c.xlsx, a year later, reprints a.xlsx's year-end snapshot under its own date.
    classes = [C, P, N, "Total"]
    detained = pa.table({
        "workbook": ["a.xlsx"] * 4 + ["b.xlsx"] * 4 + ["c.xlsx"] * 4,
        "fiscal_year": [2020] * 4 + [2023] * 4 + [2020] * 4,
        "snapshot_date": [date(2020, 10, 2)] * 4 + [date(2023, 1, 29)] * 4
        + [date(2020, 10, 2)] * 4,
        "criminality": classes * 3,
        "agency": ["Total"] * 12,
        "detained": [10.0, 20.0, 70.0, 100.0, 30.0, 30.0, 40.0, 100.0, 10.0, 20.0, 70.0, 100.0],
    })
    workbooks = pa.table({
        "workbook": ["a.xlsx", "b.xlsx", "c.xlsx"],
        "as_of_date": [date(2020, 9, 30), date(2022, 1, 23), date(2021, 9, 27)],
        "file_date": [None, date(2023, 2, 3), date(2021, 10, 28)],
    })
    backend = _backend(tmp_path / "w.duckdb",
                       {"stats_detained_now": detained, "stats_workbooks": workbooks})
    rows = compute("detained_criminality", backend, MetricParams()).to_pylist()
    assert [(r["date"], r["workbook"], r["detained"]) for r in rows] == [
        (date(2020, 10, 2), "a.xlsx", 100),  # the reprint is the same day, counted once
        (date(2023, 1, 29), "b.xlsx", 100),  # not 2022-01-23, the stale line
    ]


def test_real_stale_data_date_does_not_move_the_detained_count(stats_workbooks, tmp_path):
    from iceledger.sources.stats.ingest import ingest_stats

    # This release's header says "data as of 2022-01-23" (the stats check 'data date
    # plausible' fails); its Footnotes sheet dates the currently-detained table 2023-01-29.
    name = "20230203233454-FY23_detentionStats02032023.xlsx"
    [workbook] = [p for p in stats_workbooks if p.name == name]
    ingest_stats([workbook], Warehouse(tmp_path / "w.duckdb"))
    backend = ibis.duckdb.connect(str(tmp_path / "w.duckdb"), read_only=True)
    [row] = compute("detained_criminality", backend, MetricParams()).to_pylist()
    assert (row["date"], row["detained"]) == (date(2023, 1, 29), 24170)


def test_a_published_class_beside_the_three_counts_as_unknown(tmp_path):
    # A later release may print a fourth class; it is in the total, out of the shares, and
    # counted, not dropped.
    detained = pa.table({"workbook": ["a.xlsx"] * 5, "agency": ["Total"] * 5,
                         "criminality": [C, P, N, "Stateless", "Total"],
                         "detained": [30.0, 20.0, 40.0, 10.0, 100.0]})
    workbooks = pa.table({"workbook": ["a.xlsx"], "as_of_date": [date(2025, 6, 15)],
                          "file_date": [date(2025, 6, 20)]})
    backend = _backend(tmp_path / "w.duckdb",
                       {"stats_detained_now": detained, "stats_workbooks": workbooks})
    [row] = compute("detained_criminality", backend, MetricParams()).to_pylist()
    assert (row["detained"], row["criminality_unknown"]) == (100, 10)
    assert row["no_conviction_share"] == pytest.approx(60 / 90)


def test_real_workbook_detained_population_matches_the_published_figures(stats_workbooks, tmp_path):
    from iceledger.sources.stats.ingest import ingest_stats

    [workbook] = [p for p in stats_workbooks if p.name == "FY25_detentionStats09242025.xlsx"]
    ingest_stats([workbook], Warehouse(tmp_path / "w.duckdb"))
    backend = ibis.duckdb.connect(str(tmp_path / "w.duckdb"), read_only=True)
    [row] = compute("detained_criminality", backend, MetricParams()).to_pylist()
    # docs/facts.md: 59,762 held (17,007 convicted, 15,009 pending charges) in this workbook.
    assert (row["detained"], row["convicted"], row["pending_charges"]) == (59762, 17007, 15009)
    assert row["no_conviction_share"] == pytest.approx((59762 - 17007) / 59762)


@settings(max_examples=60, deadline=None)
@given(st.integers(1, 5000).flatmap(lambda n: st.tuples(st.integers(0, n), st.just(n))))
def test_wilson_expression_matches_the_formula(case):
    successes, trials = case
    low, high = wilson_interval(ibis.literal(successes), ibis.literal(trials))
    con = ibis.duckdb.connect()
    got = con.execute(ibis.memtable({"x": [1]}).select(low=low, high=high)).iloc[0]
    expected = _wilson(successes, trials)
    assert (got["low"], got["high"]) == pytest.approx(expected, abs=1e-12)
    assert got["low"] <= successes / trials <= got["high"]


def test_wilson_interval_is_null_without_trials():
    low, high = wilson_interval(ibis.literal(0), ibis.literal(0))
    result = ibis.duckdb.connect().execute(ibis.memtable({"x": [1]}).select(low=low, high=high))
    assert result.isna().all(axis=None)
