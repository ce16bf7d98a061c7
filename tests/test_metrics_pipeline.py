"""The pipeline metrics on hand-built releases: every count, link and share worked out by hand.

Release R covers 2025-01-01..2025-06-30; the older release Q re-covers January, so R speaks for
January and Q only for its own earlier days (its detainer of 2024-12-20 counts, its January rows
do not). Identifiers link rows within a release only: P3's arrest in Q follows Q's detainer of
P3, never R's.
"""

from __future__ import annotations

import math
from datetime import date, datetime, timedelta

import pyarrow as pa
import pytest

from iceledger.errors import IceledgerError
from iceledger.metrics import MetricParams, compute
from iceledger.metrics.backends import duckdb_backend
from iceledger.metrics.pipeline import facility_type, lift_group
from iceledger.sources.foia.derived import FOLLOWED_BY_ARREST, DerivedSummary, follow_to_arrests
from iceledger.warehouse import Warehouse

CONVICTED, PENDING, OTHER = (
    "Convicted Criminal",
    "Pending Criminal Charges",
    "Other Immigration Violator",
)
TAKEN = "Subject Taken Into ICE Custody"


def wilson(k: int, n: int, z: float = 1.959963984540054) -> tuple[float, float]:
    p = k / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return (0.0 if k == 0 else centre - half, 1.0 if k == n else centre + half)


def detainer(record_id, when, person, criminality, facility, state, lift, release="R",
             duplicate=False):
    return {
        "record_id": record_id, "release": release, "detainer_prepare_date": when,
        "person_id": person, "aor": "Houston", "criminality": criminality,
        "facility_name": facility, "facility_state": state,
        "detainer_type": "I-247A Immigration Detainer - Notice of Action",
        "detainer_lift_reason": lift, "is_exact_duplicate": duplicate,
    }


DETAINERS = pa.Table.from_pylist(
    [
        detainer("D1", datetime(2025, 1, 5, 10), "P1", CONVICTED, "HARRIS COUNTY JAIL", "TEXAS",
                 TAKEN),
        detainer("D5", datetime(2025, 1, 5, 10), "P1", CONVICTED, "HARRIS COUNTY JAIL", "TEXAS",
                 TAKEN, duplicate=True),
        detainer("D2", datetime(2025, 1, 6, 10), "P2", PENDING, "FCI ATLANTA", "GEORGIA",
                 "Released by Law Enforcement Agency"),
        detainer("D3", datetime(2025, 1, 7, 10), "P3", OTHER, "CALIFORNIA STATE PRISON SOLANO",
                 "CALIFORNIA", "Detainer Declined by Law Enforcement Agency"),
        detainer("D4", datetime(2025, 6, 20, 10), "P4", CONVICTED, "PROCESSING CENTER", "TEXAS",
                 None),
        detainer("D6", datetime(2025, 2, 1, 10), None, CONVICTED, None, "TEXAS",
                 "Subject Removed"),
        detainer("D7", datetime(2025, 1, 10, 10), "P3", OTHER, "HARRIS COUNTY JAIL", "TEXAS",
                 TAKEN, release="Q"),
        detainer("D8", datetime(2024, 12, 20, 10), "P3", OTHER, "HARRIS COUNTY JAIL", "TEXAS",
                 TAKEN, release="Q"),
    ]
)


def arrest(record_id, when, person, setting, method, aor, criminality, release="R",
           duplicate=False):
    return {
        "record_id": record_id, "release": release, "apprehension_date": when,
        "person_id": person, "arrest_setting": setting, "apprehension_method": method,
        "aor": aor, "criminality": criminality, "citizenship_country": "MEXICO",
        "is_duplicate": duplicate,
    }


ARRESTS = pa.Table.from_pylist(
    [
        arrest("A1", datetime(2025, 1, 10, 9), "P1", "custodial", "CAP Local Incarceration",
               "Atlanta", CONVICTED),
        arrest("A2", datetime(2025, 1, 8, 9), "P2", "at-large", "Located", "Atlanta", PENDING),
        arrest("A3", datetime(2025, 3, 1, 9), "P2", "custodial", "287(g) Program", "Houston",
               PENDING),
        arrest("A4", datetime(2025, 1, 8, 9), "P3", "custodial", "CAP State Incarceration",
               "Houston", OTHER, release="Q"),
        arrest("A5", datetime(2025, 6, 22, 9), "P4", "custodial", "287(g) Program", "Houston",
               CONVICTED),
        arrest("A6", datetime(2025, 1, 10, 10), "P1", "custodial", "CAP Local Incarceration",
               "Atlanta", CONVICTED, duplicate=True),
        arrest("A7", datetime(2025, 2, 3, 9), "P9", "at-large", "Non-Custodial Arrest",
               "Atlanta", OTHER),
        arrest("A8", datetime(2025, 2, 10, 9), "P10", None, None, "Atlanta", OTHER),
    ]
)


def encounter(record_id, when, person, aor, criminality, event_type):
    return {
        "record_id": record_id, "release": "R", "event_date": when, "person_id": person,
        "aor": aor, "criminality": criminality, "event_type": event_type,
        "lead_source": "Law Enforcement Agency", "is_exact_duplicate": False,
    }


ENCOUNTERS = pa.Table.from_pylist(
    [
        encounter("E1", datetime(2025, 1, 8, 8), "P2", "Atlanta", PENDING, "Encounter"),
        encounter("E2", datetime(2025, 2, 1, 8), "P9", "Atlanta", OTHER, "Encounter"),
        encounter("E3", datetime(2025, 2, 1, 8), "P11", "Houston", OTHER, "In-Custody Encounter"),
        encounter("E4", datetime(2025, 6, 1, 8), "P12", "Houston", CONVICTED, "Encounter"),
        # P1 was arrested before this encounter: an earlier arrest is no follow-up.
        encounter("E5", datetime(2025, 6, 10, 8), "P1", "Atlanta", CONVICTED, "Encounter"),
    ]
)

STAYS = pa.Table.from_pylist(
    [
        {"stay_id": "S1", "release": "R", "stay_book_in": datetime(2025, 1, 10, 12)},
        {"stay_id": "S2", "release": "R", "stay_book_in": datetime(2025, 1, 20, 12)},
        {"stay_id": "S3", "release": "R", "stay_book_in": datetime(2025, 2, 5, 12)},
    ]
)
LINKS = pa.table({"arrest_record_id": ["A1"], "stay_id": ["S1"], "days_from_arrest": [0.0]})
# One workbook printing January and February 2025 book-ins by arresting agency; in February an
# agency beside ICE and CBP, as a later release may print one.
WORKBOOKS = pa.table({
    "workbook": ["W1.xlsx"], "sha256": ["a" * 64], "fiscal_year": [2025],
    "file_date": [date(2025, 3, 14)], "as_of_date": [date(2025, 3, 10)],
})
PUBLISHED_BOOK_INS = pa.Table.from_pylist([
    {"workbook": "W1.xlsx", "fiscal_year": 2025, "month": month, "agency": agency,
     "book_ins": figure, "sheet": "Detention FY25", "cell_range": "B9"}
    for month, by_agency in ((date(2025, 1, 1), {"ICE": 62.0, "CBP": 31.0, "Total": 93.0}),
                             (date(2025, 2, 1), {"ICE": 28.0, "CBP": 28.0, "HSI": 14.0,
                                                 "Total": 70.0}))
    for agency, figure in by_agency.items()
])
RELEASES = pa.table(
    {
        "release": ["Q", "R"],
        "coverage_start": [date(2024, 7, 1), date(2025, 1, 1)],
        "coverage_end": [date(2025, 2, 1), date(2025, 6, 30)],
    }
)


@pytest.fixture(scope="module")
def backend(tmp_path_factory):
    warehouse = Warehouse(tmp_path_factory.mktemp("pipeline") / "w.duckdb")
    for name, table in {
        "foia_detainers": DETAINERS,
        "foia_arrests": ARRESTS,
        "foia_encounters": ENCOUNTERS,
        "foia_stays": STAYS,
        "foia_arrest_stay_links": LINKS,
        "foia_releases": RELEASES,
        "stats_workbooks": WORKBOOKS,
        "stats_book_ins": PUBLISHED_BOOK_INS,
    }.items():
        warehouse.replace_table(name, table)
    follow_to_arrests_as_derived(warehouse)
    return duckdb_backend(warehouse.path)


def follow_to_arrests_as_derived(warehouse: Warehouse) -> DerivedSummary:
    """The derivation's detainer and encounter -> arrest step, on tables loaded as they are."""
    summary = DerivedSummary()
    with warehouse.connect() as con:
        for table in FOLLOWED_BY_ARREST:
            follow_to_arrests(con, table, True, summary)
    return summary


def rows(backend, name, **params):
    return compute(name, backend, MetricParams(**params)).to_pylist()


def test_facility_types_and_lift_groups_read_from_words():
    import ibis

    names = ibis.memtable(pa.table({"name": [
        "HARRIS COUNTY JAIL", "ORLEANS PARISH PRISON", "FCI ATLANTA",
        "FEDERAL DETENTION CENTER, MIAMI-DADE COUNTY", "TEXAS DEPARTMENT OF CORRECTIONS UNIT",
        "PROCESSING CENTER", None,
    ]}))
    kinds = names.select(kind=facility_type(names.name)).to_pyarrow().column("kind").to_pylist()
    assert kinds == ["county jail", "county jail", "federal", "federal", "state prison", "other",
                     None]
    reasons = ibis.memtable(pa.table({"reason": [
        TAKEN, "Released by Law Enforcement Agency", "Detainer Declined by LEA", "Subject Removed",
        None,
    ]}))
    groups = reasons.select(g=lift_group(reasons.reason)).to_pyarrow().column("g").to_pylist()
    assert groups == ["ice_custody", "released_or_declined", "released_or_declined", "other", None]


def test_detainers_per_day_one_release_per_day_and_duplicates_once(backend):
    series = rows(backend, "detainers_per_day")
    # Q speaks for 2024-12-20..31 (from its first detainer), R from 2025-01-05 to 2025-06-30.
    assert len(series) == 12 + 177
    assert sum(r["detainers"] for r in series) == 6
    by_day = {r["date"]: r["detainers"] for r in series}
    assert by_day[date(2025, 1, 5)] == 1  # D5 repeats D1 cell for cell
    assert by_day[date(2025, 1, 10)] == 0  # D7 is Q's, and R speaks for January
    by_type = rows(backend, "detainers_per_day", by=("facility_type",))
    totals = {}
    for r in by_type:
        totals[r["facility_type"]] = totals.get(r["facility_type"], 0) + r["detainers"]
    assert totals == {"county jail": 2, "federal": 1, "state prison": 1, "other": 1, None: 1}


def test_lift_reasons_as_recorded(backend):
    result = {r["lift_reason"]: r for r in rows(backend, "detainer_lift_reasons")}
    assert {k: r["detainers"] for k, r in result.items()} == {
        TAKEN: 2, "Released by Law Enforcement Agency": 1,
        "Detainer Declined by Law Enforcement Agency": 1, "Subject Removed": 1,
        "(none recorded)": 1,
    }
    taken = result[TAKEN]
    assert taken["share"] == pytest.approx(2 / 6)
    assert (taken["ci_low"], taken["ci_high"]) == pytest.approx(wilson(2, 6))


def test_detainer_followup_links_by_identifier_release_and_days(backend):
    [row] = rows(backend, "detainer_arrest_followup")
    # Days to a custodial arrest of the same person in the same release: D1 5, D2 54 (its
    # at-large arrest two days on is not custodial), D4 2, D8 19 (in Q); D3's person was
    # arrested only in Q, D6 has no identifier.
    assert row["detainers"] == 6
    assert [row[f"detainers_followed_{d}d"] for d in (7, 30, 90)] == [6, 5, 4]
    assert [row[f"arrested_within_{d}d"] for d in (7, 30, 90)] == [2, 2, 2]
    assert row["arrested_within_30d_share"] == pytest.approx(2 / 5)
    assert (row["arrested_within_30d_ci_low"], row["arrested_within_30d_ci_high"]) == \
        pytest.approx(wilson(2, 5))
    # The mean is over detainers followed 90 days: D4 and D8 are too recent for it.
    assert row["mean_days_to_arrest_within_90d"] == pytest.approx((5 + 54) / 2)
    by_type = {r["facility_type"]: r for r in rows(backend, "detainer_arrest_followup",
                                                   by=("facility_type",))}
    assert by_type["state prison"]["arrested_within_90d"] == 0
    assert by_type["federal"]["arrested_within_90d"] == 1


def test_detainer_shift_with_newcombe_interval(backend):
    [row] = rows(backend, "detainer_arrest_shift", filters={"split": ("2025-01-06",)})
    # 30-day follow-up: before D8 and D1 (both arrested), from the split on D2, D3, D6 (none).
    assert (row["before_records"], row["after_records"]) == (2, 3)
    assert (row["before_share"], row["after_share"]) == (1.0, 0.0)
    l1, u1 = wilson(2, 2)
    l2, u2 = wilson(0, 3)
    assert row["difference"] == -1.0
    assert row["difference_ci_low"] == pytest.approx(-1 - math.sqrt(l2 ** 2 + 0))
    assert row["difference_ci_high"] == pytest.approx(-1 + math.sqrt(u2 ** 2 + (1 - l1) ** 2))
    assert row["smaller_group"] == 2


def test_jurisdictions_and_county_refused(backend):
    result = {r["facility_state"]: r for r in rows(backend, "detainer_jurisdictions")}
    texas = result["TEXAS"]
    assert (texas["detainers"], texas["lifted"], texas["ice_custody"],
            texas["released_or_declined"]) == (4, 3, 2, 0)
    assert texas["ice_custody_share"] == pytest.approx(2 / 3)
    assert result["CALIFORNIA"]["released_or_declined_share"] == 1.0
    assert result["GEORGIA"]["released_or_declined"] == 1
    with pytest.raises(IceledgerError, match="^not measurable from these records: .*county"):
        rows(backend, "detainer_jurisdictions", by=("county",))


def test_detainer_outcomes_by_group_add_up_to_the_period(backend):
    # What public outputs serve in place of the states: the same counts per field office (all
    # of these detainers are Houston's) or per facility type.
    [whole] = rows(backend, "detainer_outcomes_period")
    counted = ("detainers", "lifted", "ice_custody", "released_or_declined")
    [houston] = rows(backend, "detainer_outcomes_period", by=("aor",))
    assert houston["aor"] == "Houston"
    assert {c: houston[c] for c in counted} == {c: whole[c] for c in counted}
    types = rows(backend, "detainer_outcomes_period", by=("facility_type",))
    assert len(types) > 1
    assert {c: sum(r[c] for r in types) for c in counted} == {c: whole[c] for c in counted}
    for group in types:
        assert group["released_or_declined_share"] == pytest.approx(
            group["released_or_declined"] / group["detainers"])


def test_encounter_conversion(backend):
    [row] = rows(backend, "encounter_conversion")
    # E1 -> A2 the same day, E2 -> A7 two days on; E3, E4 never; E5's arrest came before it.
    assert row["encounters"] == 5
    assert [row[f"encounters_followed_{d}d"] for d in (7, 30, 90)] == [5, 3, 3]
    assert [row[f"arrested_within_{d}d"] for d in (7, 30, 90)] == [2, 2, 2]
    assert row["mean_days_to_arrest_within_90d"] == pytest.approx(1.0)
    by_crim = {r["criminality"]: r for r in rows(backend, "encounter_conversion",
                                                 by=("criminality",))}
    assert by_crim[OTHER]["arrested_within_7d_share"] == 0.5
    assert by_crim[CONVICTED]["arrested_within_7d"] == 0
    per_day = rows(backend, "encounters_per_day", by=("event_type",))
    assert sum(r["encounters"] for r in per_day if r["event_type"] == "Encounter") == 4


def test_encounter_shift(backend):
    [row] = rows(backend, "encounter_conversion_shift", filters={"split": ("2025-01-20",)})
    assert (row["before_records"], row["after_records"]) == (1, 2)
    assert (row["before_share"], row["after_share"]) == (1.0, 0.5)
    assert row["difference"] == -0.5


def test_arrests_by_method_and_287g(backend):
    by_method = {(r["month"], r["apprehension_method"]): r
                 for r in rows(backend, "arrests_by_method")}
    # Q's arrest falls on a day R speaks for; the duplicate A6 is left out.
    assert by_method[(date(2025, 1, 1), "CAP Local Incarceration")]["arrests"] == 1
    assert by_method[(date(2025, 1, 1), "Located")]["share"] == 0.5
    assert by_method[(date(2025, 2, 1), "Non-Custodial Arrest")]["share"] == 1.0
    assert by_method[(date(2025, 2, 1), None)]["share"] is None
    share = {r["aor"]: r for r in rows(backend, "arrests_287g_share")}
    assert (share["Atlanta"]["arrests"], share["Atlanta"]["arrests_with_method"],
            share["Atlanta"]["arrests_287g"]) == (4, 3, 0)
    assert share["Houston"]["program_287g_share"] == 1.0
    assert share["Houston"]["program_287g_ci_low"] == pytest.approx(wilson(2, 2)[0])


def test_book_ins_after_an_ice_arrest_beside_the_workbooks(backend):
    result = {r["month"]: r for r in rows(backend, "book_ins_after_ice_arrest")}
    january = result[date(2025, 1, 1)]
    assert (january["foia_book_ins"], january["foia_after_ice_arrest"],
            january["foia_no_ice_arrest"]) == (2, 1, 1)
    assert january["foia_after_ice_arrest_share"] == 0.5
    assert result[date(2025, 2, 1)]["foia_after_ice_arrest"] == 0
    side_by_side = {r["month"]: r for r in rows(backend, "book_ins_by_arresting_agency")}
    january = side_by_side[date(2025, 1, 1)]
    assert january["foia_after_ice_arrest"] == 1
    assert (january["workbook_ice_book_ins_per_day"],
            january["workbook_cbp_book_ins_per_day"]) == (2.0, 1.0)
    assert january["workbook_ice_share"] == pytest.approx(2 / 3)
    # ICE's share of all agencies' book-ins: the new agency stays in the denominator.
    assert side_by_side[date(2025, 2, 1)]["workbook_ice_share"] == 0.4


def test_book_ins_of_a_period_keep_their_links_to_arrests_before_and_after_it(
        synthetic_warehouse):
    # Stays booked in early in the period were linked to arrests before it, late ones to
    # arrests after it: the busiest month counts as it does with no period.
    synthetic = duckdb_backend(synthetic_warehouse)
    everything = compute("book_ins_after_ice_arrest", synthetic).to_pylist()
    busiest = max(everything, key=lambda r: r["foia_after_ice_arrest"])
    first = busiest["month"]
    end = date(first.year + first.month // 12, first.month % 12 + 1, 1) - timedelta(days=1)
    period = compute("book_ins_after_ice_arrest", synthetic,
                     MetricParams(start=first, end=end)).to_pylist()
    assert period == [busiest]


def test_every_pipeline_metric_has_a_synthetic_demo_view(synthetic_warehouse):
    from iceledger.metrics import REGISTRY

    synthetic = duckdb_backend(synthetic_warehouse)
    for metric in REGISTRY.values():
        if metric.question == "pipeline":
            assert compute(metric.name, synthetic).num_rows > 0, metric.name
    kinds = {r["facility_type"] for r in rows(synthetic, "detainer_arrest_followup",
                                              by=("facility_type",))}
    assert {"county jail", "state prison", "federal"} <= kinds
    states = rows(synthetic, "detainer_jurisdictions")
    assert sum(r["released_or_declined"] for r in states) > 0
    assert sum(r["ice_custody"] for r in states) > 0
    # Synthetic detainers before an arrest are lifted as 'taken into ICE custody' once it happens.
    [followup] = rows(synthetic, "detainer_arrest_followup")
    assert followup["arrested_within_90d"] > 0


def test_links_and_lift_reasons_refuse_where_the_records_lack_them(tmp_path):
    """A production whose detainers carry no identifiers and no lift reasons (redacted, say):
    no detainer can be followed to an arrest, so the shares would all read 0; refused instead."""
    from iceledger.metrics.registry import NotMeasurable

    bare = pa.Table.from_pylist([
        detainer(f"B{i}", datetime(2025, 1, 2 + i % 25, 10), None, CONVICTED,
                 "HARRIS COUNTY JAIL", "TEXAS", None) for i in range(30)])
    warehouse = Warehouse(tmp_path / "w.duckdb")
    for name, table in {"foia_detainers": bare, "foia_arrests": ARRESTS,
                        "foia_releases": RELEASES}.items():
        warehouse.replace_table(name, table)
    backend = duckdb_backend(warehouse.path)
    for name in ("detainer_arrest_followup", "detainer_arrest_shift"):
        with pytest.raises(NotMeasurable, match=r"only through the person's identifier, and "
                           r"release R has no person identifiers in foia_detainers\.person_id"):
            compute(name, backend, MetricParams())
    with pytest.raises(NotMeasurable, match="lift reason"):
        compute("detainer_lift_reasons", backend, MetricParams())
    # Counting detainers needs neither: still answered.
    assert sum(r["detainers"] for r in rows(backend, "detainers_per_day")) == 30
