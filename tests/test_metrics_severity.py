"""Violent convictions among book-ins: the stays' crime class and `book_in_violent_conviction_period`.

The hand-built record: one release dated 2025-12-01, nine people booked into detention, each one
stay (P1 moved once). Criminality and MSC crime class of each stay's first stint:

    person  book-in   criminality  crime class            aor      citizenship
    P9      20 Sep    convicted    Non-Violent            Boston   MEXICO
    P1      2 Oct     convicted    Violent (then moved to a stint labelled Non-Violent)
                                                          Atlanta  MEXICO
    P2      5 Oct     convicted    Non-Violent            Atlanta  MEXICO
    P3      9 Oct     convicted    none recorded          Atlanta  HONDURAS
    P4      12 Oct    convicted    " violent " (as typed) Boston   MEXICO
    P5      15 Oct    pending      Violent                Atlanta  MEXICO
    P6      20 Oct    neither      none                   Boston   HONDURAS
    P7      25 Oct    neither      none                   Boston   GUATEMALA
    P8      3 Nov     unknown      Violent                Boston   (none)

Worked out by hand, over all of it: 9 book-ins; convicted 5, pending 1, neither 2, unknown 1, so
8 with a recorded criminality; violent convictions 2 (P1 by its first stint, P4); convicted with
no crime class 1 (P3). violent_conviction_share = 2/8; violent_among_convicted_share = 2/5;
no_conviction_share = 3/8; no_conviction_no_charge_share = 2/8. A pending violent charge (P5) and
a violent class with no recorded criminality (P8) are not violent convictions.
"""

from __future__ import annotations

import math
from datetime import date, datetime, timedelta

import ibis
import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from iceledger.metrics import MetricParams, compute
from iceledger.metrics.targeting import Z_95
from iceledger.sources.foia.derived import rebuild_derived
from iceledger.warehouse import Warehouse

METRIC = "book_in_violent_conviction_period"
C, P, N = "Convicted Criminal", "Pending Criminal Charges", "Other Immigration Violator"
RELEASE = "2025-12-01"

# (person, book-in, criminality, crime class, aor, citizenship); P1's second stint follows below.
STAYS = [
    ("P9", datetime(2025, 9, 20, 8), C, "Non-Violent", "Boston", "MEXICO"),
    ("P1", datetime(2025, 10, 2, 8), C, "Violent", "Atlanta", "MEXICO"),
    ("P2", datetime(2025, 10, 5, 8), C, "Non-Violent", "Atlanta", "MEXICO"),
    ("P3", datetime(2025, 10, 9, 8), C, None, "Atlanta", "HONDURAS"),
    ("P4", datetime(2025, 10, 12, 8), C, " violent ", "Boston", "MEXICO"),
    ("P5", datetime(2025, 10, 15, 8), P, "Violent", "Atlanta", "MEXICO"),
    ("P6", datetime(2025, 10, 20, 8), N, None, "Boston", "HONDURAS"),
    ("P7", datetime(2025, 10, 25, 8), N, None, "Boston", "GUATEMALA"),
    ("P8", datetime(2025, 11, 3, 8), None, "Violent", "Boston", None),
]
AOR_CODES = {"Atlanta": "ATL", "Boston": "BOS"}


def _stint(person, stay_in, criminality, crime_class, aor, country, book_in, line) -> dict:
    return {
        "release": RELEASE, "record_id": f"stints:{line}", "person_id": person,
        "stay_book_in": stay_in, "book_in": book_in, "book_out": stay_in + timedelta(days=6),
        "stay_book_out": stay_in + timedelta(days=6), "facility_code": f"F{line}",
        "stay_release_reason": "Removed", "criminality": criminality, "aor": aor,
        "aor_code": AOR_CODES[aor], "citizenship_country": country, "gender": "Male",
        "departed_date": None, "msc_crime_class": crime_class,
    }


def stints(with_crime_class: bool = True) -> pa.Table:
    # P1's later stint is loaded first: the stay still takes its first stint's class by time.
    p1 = STAYS[1]
    rows = [_stint(*p1[:3], "Non-Violent", *p1[4:], p1[1] + timedelta(days=2), 1)]
    rows += [_stint(*stay, stay[1], line) for line, stay in enumerate(STAYS, start=2)]
    table = pa.Table.from_pylist(rows)
    return table if with_crime_class else table.drop_columns(["msc_crime_class"])


def _derived_backend(path, stint_table: pa.Table) -> ibis.BaseBackend:
    warehouse = Warehouse(path)
    warehouse.replace_table("foia_stints", stint_table)
    with warehouse.connect() as con:
        rebuild_derived(con)
    return ibis.duckdb.connect(str(path), read_only=True)


@pytest.fixture(scope="module")
def backend(tmp_path_factory):
    return _derived_backend(tmp_path_factory.mktemp("severity") / "w.duckdb", stints())


def _wilson(successes: int, n: int, z: float = Z_95) -> tuple[float, float]:
    """The textbook Wilson score interval, written independently of the Ibis expression."""
    p = successes / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z / (1 + z * z / n) * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    return max(0.0, centre - half), min(1.0, centre + half)


def _by(table: pa.Table, key: str) -> dict:
    return {row[key]: row for row in table.to_pylist()}


def test_a_stay_takes_the_crime_class_of_its_first_stint(backend):
    stays = backend.table("foia_stays").to_pyarrow().to_pylist()
    classes = {stay["person_id"]: stay["msc_crime_class"] for stay in stays}
    assert classes["P1"] == "Violent", "the later stint (loaded first) says Non-Violent"
    assert classes["P3"] is None
    assert classes["P4"] == " violent ", "the stay keeps the label as recorded"


def test_stints_without_a_crime_class_still_derive_stays(tmp_path):
    backend = _derived_backend(tmp_path / "old.duckdb", stints(with_crime_class=False))
    stays = backend.table("foia_stays").to_pyarrow()
    assert stays.num_rows == len(STAYS)
    assert stays.column("msc_crime_class").null_count == len(STAYS)
    [row] = compute(METRIC, backend, MetricParams()).to_pylist()
    assert (row["convicted"], row["convicted_violent"], row["convicted_crime_class_unknown"]) == (
        5, 0, 5)
    assert row["violent_conviction_share"] is None, "no crime class at all: not measurable, not 0"
    assert row["violent_among_convicted_share"] is None
    assert row["no_conviction_share"] == pytest.approx(3 / 8), "the headlines do not need it"


def test_violent_convictions_over_the_whole_record(backend):
    [row] = compute(METRIC, backend, MetricParams()).to_pylist()
    assert (row["book_ins"], row["criminality_unknown"], row["convicted"], row["pending_charges"],
            row["other_immigration_violator"]) == (9, 1, 5, 1, 2)
    assert (row["convicted_violent"], row["convicted_crime_class_unknown"]) == (2, 1)
    assert row["violent_conviction_share"] == pytest.approx(2 / 8)
    assert (row["violent_conviction_ci_low"], row["violent_conviction_ci_high"]) == pytest.approx(
        _wilson(2, 8))
    assert row["violent_among_convicted_share"] == pytest.approx(2 / 5)
    assert (row["violent_among_convicted_ci_low"],
            row["violent_among_convicted_ci_high"]) == pytest.approx(_wilson(2, 5))
    assert row["no_conviction_share"] == pytest.approx(3 / 8)
    assert row["no_conviction_no_charge_share"] == pytest.approx(2 / 8)
    assert (row["period_start"], row["period_end"]) == (date(2025, 9, 20), date(2025, 12, 1))


def test_a_period_counts_only_its_book_ins(backend):
    params = MetricParams(start=date(2025, 10, 1), end=date(2025, 10, 31))
    [row] = compute(METRIC, backend, params).to_pylist()
    # P9 (September) and P8 (November) are outside.
    assert (row["book_ins"], row["convicted"], row["convicted_violent"]) == (7, 4, 2)
    assert row["violent_conviction_share"] == pytest.approx(2 / 7)
    assert row["violent_among_convicted_share"] == pytest.approx(2 / 4)
    assert (row["period_start"], row["period_end"]) == (date(2025, 10, 1), date(2025, 10, 31))


def test_by_office_and_by_country_including_unmeasurable_groups(backend):
    offices = _by(compute(METRIC, backend, MetricParams(by=("aor",))), "aor")
    assert offices["Atlanta"]["violent_conviction_share"] == pytest.approx(1 / 4)  # P1 of 4
    assert offices["Atlanta"]["violent_among_convicted_share"] == pytest.approx(1 / 3)
    assert offices["Boston"]["violent_conviction_share"] == pytest.approx(1 / 4)  # P4 of 4 known
    assert offices["Boston"]["violent_among_convicted_share"] == pytest.approx(1 / 2)

    countries = _by(compute(METRIC, backend, MetricParams(by=("citizenship_country",))),
                    "citizenship_country")
    assert set(countries) == {"MEXICO", "HONDURAS", "GUATEMALA", None}
    assert countries["MEXICO"]["violent_conviction_share"] == pytest.approx(2 / 5)
    # HONDURAS: its one convicted person has no crime class, so the records cannot tell.
    honduras = countries["HONDURAS"]
    assert (honduras["convicted"], honduras["convicted_crime_class_unknown"]) == (1, 1)
    assert honduras["violent_conviction_share"] is None
    assert honduras["violent_conviction_ci_low"] is None
    assert honduras["no_conviction_share"] == pytest.approx(1 / 2)
    # GUATEMALA: nobody convicted, so no violent conviction: 0 of 1, a real zero.
    assert countries["GUATEMALA"]["violent_conviction_share"] == 0
    assert countries["GUATEMALA"]["violent_conviction_ci_low"] == 0
    assert countries["GUATEMALA"]["violent_among_convicted_share"] is None
    # No citizenship recorded: a group of its own, with nobody of known criminality.
    assert countries[None]["book_ins"] == 1 and countries[None]["violent_conviction_share"] is None

    atlanta = compute(METRIC, backend, MetricParams(filters={"aor": ("Atlanta",)})).to_pylist()
    assert [r["convicted_violent"] for r in atlanta] == [1]


CLASSES = st.sampled_from([C, P, N, None])
CRIME_CLASSES = st.sampled_from(["Violent", "Non-Violent", "VIOLENT", "", None])


@settings(max_examples=25, deadline=None)
@given(st.lists(st.tuples(CLASSES, CRIME_CLASSES), min_size=1, max_size=30))
def test_counts_and_shares_match_a_plain_count(stays):
    n = len(stays)
    day = [datetime(2025, 3, 1) + timedelta(hours=7 * i) for i in range(n)]
    backend = ibis.duckdb.connect()
    backend.create_table("foia_stays", pa.table({
        "release": [RELEASE] * n, "stay_id": [f"s{i}" for i in range(n)],
        "stay_book_in": pa.array(day, pa.timestamp("us")),
        "criminality": pa.array([s[0] for s in stays], pa.string()),
        "msc_crime_class": pa.array([s[1] for s in stays], pa.string()),
    }))
    backend.create_table("foia_releases", pa.table({
        "release": [RELEASE], "coverage_start": [date(2025, 3, 1)],
        "coverage_end": [date(2025, 12, 1)]}))
    [row] = compute(METRIC, backend, MetricParams()).to_pylist()
    convicted = [k for c, k in stays if c == C]
    violent = sum(1 for k in convicted if k and k.strip().upper() == "VIOLENT")
    unknown = sum(1 for k in convicted if not k)
    known = sum(1 for c, _ in stays if c is not None)
    assert (row["convicted"], row["convicted_violent"], row["convicted_crime_class_unknown"]) == (
        len(convicted), violent, unknown)
    measurable = known > 0 and (not convicted or unknown < len(convicted))
    if measurable:
        assert row["violent_conviction_share"] == pytest.approx(violent / known)
        low, high = row["violent_conviction_ci_low"], row["violent_conviction_ci_high"]
        assert low <= violent / known <= high
    else:
        assert row["violent_conviction_share"] is None
