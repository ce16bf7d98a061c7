"""Human cost indicators on hand-built records of one release (2025-09-01), answers worked by hand.

Arrests (Atlanta):
    a1 P1  2025-03-10 convicted  MEXICO         born 1990  Male
    a2 P1  2025-06-10 neither    MEXICO         born 1990  Male    repeat of a1, 92 days later
    a3 P1  2025-06-10 +2h        MEXICO         born 1991  Male    same episode as a2 (duplicate)
    a4 P2  2025-04-01 pending    UNITED STATES  born 1985  Female
    a5 P2  2025-07-01 pending    UNITED STATES  born 1985  Male    repeat of a4, 91 days later
    a6 --  2025-05-01 unknown    GUATEMALA      born 1970  Male    no identifier
    a7 0000 2025-06-01 neither   HONDURAS       born 2000  Male    placeholder identifier
    a8 P3  2025-06-15 neither    MEXICO         born 1995  Male

Stays (one stint each but s2, which has two):
    s1 P1  in 2025-03-11, 20 days, removed     born 1990        entered 2010-01-01 (15.2 years)
    s2 P7  in 2025-04-05, 35 days, paroled     born 2010 (14-15) entered 2024-01-01 (1.3 years)
           first stint in SOUTH TEXAS FAM RESIDENTIAL CENTER, case status on its latest stint
           B-Relief Granted (ACTIVE on the first)
    s3 P8  in 2025-06-01, 9 days, released     born 2007-08-01 (17 exactly), no entry date,
           BERKS COUNTY FAMILY SHELTER, A-Proceedings Terminated
    s4 P9  in 2025-06-15, still held           born 2007 (17-18)  entered 2000-05-01 (25.1 years)
    s5 P10 in 2025-07-01, 19 days, bonded out  born 1960 (64-65) entered 2019-06-01 (6.1 years)
    s6 P11 in 2025-08-01, 4 days, removed      born 1955 (69-70) entered 2026-01-01 (after book-in)
           UNITED STATES

Removals: r1 P2 2025-07-15 pending "United States" [8F]; r2 P4 2025-04-10 convicted [16];
r3 P5 2025-06-20 neither [8F]; r4 P6 2025-06-25 no criminality, no category.
"""

from __future__ import annotations

import math
from datetime import date, datetime, timedelta

import ibis
import pyarrow as pa
import pytest

from iceledger.errors import IceledgerError
from iceledger.metrics import REGISTRY, MetricParams, compute
from iceledger.metrics.backends import duckdb_backend
from iceledger.metrics.human_cost import Share, fiscal_year_shares
from iceledger.metrics.registry import FISCAL_YEAR
from iceledger.metrics.volume import fiscal_year, fiscal_year_of
from iceledger.metrics.targeting import Z_95
from iceledger.serving.service import NotServable
from iceledger.sources.foia.derived import rebuild_derived
from iceledger.warehouse import Warehouse

C, P, N = "Convicted Criminal", "Pending Criminal Charges", "Other Immigration Violator"
RELEASE = "2025-09-01"
SPLIT = date(2025, 5, 21)


def _arrest(record, person, when, criminality, country, born, gender):
    return {"record_id": record, "release": RELEASE, "person_id": person,
            "apprehension_date": when, "criminality": criminality,
            "citizenship_country": country, "birth_year": born, "gender": gender,
            "aor": "Atlanta", "aor_code": "ATL", "apprehension_method": "Located",
            "arrest_setting": "at-large"}


ARRESTS = [
    _arrest("a1", "P1", datetime(2025, 3, 10, 10), C, "MEXICO", 1990, "Male"),
    _arrest("a2", "P1", datetime(2025, 6, 10, 10), N, "MEXICO", 1990, "Male"),
    _arrest("a3", "P1", datetime(2025, 6, 10, 12), N, "MEXICO", 1991, "Male"),
    _arrest("a4", "P2", datetime(2025, 4, 1, 10), P, "UNITED STATES", 1985, "Female"),
    _arrest("a5", "P2", datetime(2025, 7, 1, 10), P, "UNITED STATES", 1985, "Male"),
    _arrest("a6", None, datetime(2025, 5, 1, 10), None, "GUATEMALA", 1970, "Male"),
    _arrest("a7", "0000", datetime(2025, 6, 1, 10), N, "HONDURAS", 2000, "Male"),
    _arrest("a8", "P3", datetime(2025, 6, 15, 10), N, "MEXICO", 1995, "Male"),
]


def _stint(record, person, book_in, days, reason, born, entry, facility, status,
           birth_date=None, country="MEXICO", stint_in=None, stint_days=None):
    stay_out = book_in + timedelta(days=days) if days is not None else None
    stint_in = stint_in or book_in
    stint_out = stint_in + timedelta(days=stint_days) if stint_days is not None else stay_out
    return {"record_id": record, "release": RELEASE, "person_id": person,
            "stay_book_in": book_in, "book_in": stint_in, "book_out": stint_out,
            "stay_book_out": stay_out, "facility_code": facility[:7], "facility_name": facility,
            "stay_release_reason": reason if days is not None else None, "criminality": N,
            "aor": "Atlanta", "aor_code": "ATL", "citizenship_country": country,
            "gender": "Male", "departed_date": None, "birth_year": born,
            "birth_date": birth_date, "entry_date": entry, "case_status": status}


S2_IN = datetime(2025, 4, 5, 8)
STINTS = [
    _stint("t1", "P1", datetime(2025, 3, 11, 8), 20, "Removed", 1990, date(2010, 1, 1),
           "SYNTHETIC COUNTY JAIL", "6-Deported/Removed - Deportability"),
    _stint("t2", "P7", S2_IN, 35, "Paroled", 2010, date(2024, 1, 1),
           "SOUTH TEXAS FAM RESIDENTIAL CENTER", "ACTIVE", stint_days=10),
    _stint("t3", "P7", S2_IN, 35, "Paroled", 2010, date(2024, 1, 1),
           "SYNTHETIC PROCESSING CENTER", "B-Relief Granted",
           stint_in=S2_IN + timedelta(days=10)),
    _stint("t4", "P8", datetime(2025, 6, 1, 8), 9, "Released", 2007, None,
           "BERKS COUNTY FAMILY SHELTER", "A-Proceedings Terminated",
           birth_date=date(2007, 8, 1)),
    _stint("t5", "P9", datetime(2025, 6, 15, 8), None, None, 2007, date(2000, 5, 1),
           "SYNTHETIC COUNTY JAIL", "ACTIVE"),
    _stint("t6", "P10", datetime(2025, 7, 1, 8), 19, "Bonded Out", 1960, date(2019, 6, 1),
           "SYNTHETIC COUNTY JAIL", "ACTIVE"),
    _stint("t7", "P11", datetime(2025, 8, 1, 8), 4, "Removed", 1955, date(2026, 1, 1),
           "SYNTHETIC COUNTY JAIL", "8-Excluded/Removed - Inadmissibility",
           country="UNITED STATES"),
]

REMOVALS = [
    {"record_id": r, "release": RELEASE, "person_id": person, "departed_date": day,
     "criminality": crim, "citizenship_country": country, "case_category": category,
     "aor": "Atlanta", "aor_code": "ATL"}
    for r, person, day, crim, country, category in (
        ("r1", "P2", date(2025, 7, 15), P, "United States", "[8F] Expedited Removal"),
        ("r2", "P4", date(2025, 4, 10), C, "MEXICO", "[16] Reinstated Final Order"),
        ("r3", "P5", date(2025, 6, 20), N, "HONDURAS", "[8F] Expedited Removal"),
        ("r4", "P6", date(2025, 6, 25), None, "GUATEMALA", None),
    )
]

ARREST_SCHEMA = pa.schema([
    ("record_id", pa.string()), ("release", pa.string()), ("person_id", pa.string()),
    ("apprehension_date", pa.timestamp("us")), ("criminality", pa.string()),
    ("citizenship_country", pa.string()), ("birth_year", pa.int32()), ("gender", pa.string()),
    ("aor", pa.string()), ("aor_code", pa.string()), ("apprehension_method", pa.string()),
    ("arrest_setting", pa.string()),
])
STINT_SCHEMA = pa.schema([
    ("record_id", pa.string()), ("release", pa.string()), ("person_id", pa.string()),
    ("stay_book_in", pa.timestamp("us")), ("book_in", pa.timestamp("us")),
    ("book_out", pa.timestamp("us")), ("stay_book_out", pa.timestamp("us")),
    ("facility_code", pa.string()), ("facility_name", pa.string()),
    ("stay_release_reason", pa.string()), ("criminality", pa.string()), ("aor", pa.string()),
    ("aor_code", pa.string()), ("citizenship_country", pa.string()), ("gender", pa.string()),
    ("departed_date", pa.date32()), ("birth_year", pa.int32()), ("birth_date", pa.date32()),
    ("entry_date", pa.date32()), ("case_status", pa.string()),
])
REMOVAL_SCHEMA = pa.schema([
    ("record_id", pa.string()), ("release", pa.string()), ("person_id", pa.string()),
    ("departed_date", pa.date32()), ("criminality", pa.string()),
    ("citizenship_country", pa.string()), ("case_category", pa.string()), ("aor", pa.string()),
    ("aor_code", pa.string()),
])


def _warehouse(path, arrests, stints, removals):
    warehouse = Warehouse(path)
    warehouse.replace_table("foia_arrests", arrests)
    warehouse.replace_table("foia_stints", stints)
    warehouse.replace_table("foia_removals", removals)
    with warehouse.connect() as con:
        rebuild_derived(con)
    return duckdb_backend(warehouse.path)


@pytest.fixture(scope="module")
def backend(tmp_path_factory):
    return _warehouse(
        tmp_path_factory.mktemp("human-cost") / "w.duckdb",
        pa.Table.from_pylist(ARRESTS, schema=ARREST_SCHEMA),
        pa.Table.from_pylist(STINTS, schema=STINT_SCHEMA),
        pa.Table.from_pylist(REMOVALS, schema=REMOVAL_SCHEMA),
    )


def _wilson(successes: int, n: int) -> tuple[float, float]:
    z = Z_95
    p = successes / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z / (1 + z * z / n) * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    return max(0.0, centre - half), min(1.0, centre + half)


def totals(table: pa.Table, *keys: str) -> dict:
    """(indicator, *keys) -> (with_data, matching), summed over the months."""
    found: dict = {}
    for row in table.to_pylist():
        key = (row["indicator"], *(row[k] for k in keys))
        with_data, matching = found.get(key, (0, 0))
        found[key] = (with_data + row["with_data"], matching + row["matching"])
    return found


def shift_rows(name: str, backend, **filters) -> dict:
    params = MetricParams(filters={"split": (SPLIT.isoformat(),), **filters})
    return {r["definition"]: r for r in compute(f"{name}_shift", backend, params).to_pylist()}


def test_long_term_residents(backend):
    # Book-ins with an entry date not after the book-in: s1, s2, s4, s5. Over 5 years s1, s4, s5;
    # over 10 s1, s4; over 20 s4. s3 has none, s6's is after its book-in. Arrests: only a1 led to
    # a stay (s1, the next day), entered 15 years before.
    assert totals(compute("long_term_residents", backend), "action") == {
        ("over_5_years", "book_ins"): (4, 3), ("over_10_years", "book_ins"): (4, 2),
        ("over_20_years", "book_ins"): (4, 1),
        ("over_5_years", "arrests"): (1, 1), ("over_10_years", "arrests"): (1, 1),
        ("over_20_years", "arrests"): (1, 0),
    }
    june = [r for r in compute("long_term_residents", backend).to_pylist()
            if r["month"] == date(2025, 6, 1) and r["indicator"] == "over_20_years"
            and r["action"] == "book_ins"]
    assert june == [{**june[0], "records": 2, "with_data": 1, "matching": 1, "share": 1.0}]


def test_long_term_residents_before_and_after(backend):
    # Before 21 May: s1 (15 years), s2 (1 year). After: s4 (25 years), s5 (6 years).
    rows = compute("long_term_residents_shift", backend,
                   MetricParams(filters={"split": (SPLIT.isoformat(),)})).to_pylist()
    row = next(r for r in rows if r["definition"] == "over_5_years" and r["action"] == "book_ins")
    assert (row["before_records"], row["before_share"]) == (2, 0.5)
    assert (row["after_records"], row["after_share"]) == (2, 1.0)
    assert row["difference"] == 0.5
    low1, high1 = _wilson(1, 2)
    low2, high2 = _wilson(2, 2)
    assert row["after_ci_high"] == 1.0
    assert math.isclose(row["difference_ci_low"],
                        0.5 - math.sqrt((1.0 - low2) ** 2 + (high1 - 0.5) ** 2))
    assert math.isclose(row["difference_ci_high"],
                        0.5 + math.sqrt((high2 - 1.0) ** 2 + (0.5 - low1) ** 2))
    assert row["split_event"] == "split asked for"


def test_recorded_us_citizens(backend):
    # Arrest episodes (a3 is a2's duplicate): a4, a5 of 7; book-ins s6 of 6; removals r1 of 4,
    # its 'United States' matched whatever the case.
    found = totals(compute("recorded_us_citizens", backend), "action")
    assert found == {("us_citizen", "arrests"): (7, 2), ("us_citizen", "book_ins"): (6, 1),
                     ("us_citizen", "removals"): (4, 1)}


def test_recorded_us_citizens_default_split_is_the_target_day(backend):
    rows = compute("recorded_us_citizens_shift", backend).to_pylist()
    assert {r["split_date"] for r in rows} == {SPLIT}
    arrests = next(r for r in rows if r["action"] == "arrests")
    # Before: a1, a4, a6 (one U.S.); after: a2, a5, a7, a8 (one U.S.).
    assert (arrests["before_records"], arrests["before_share"]) == (3, 1 / 3)
    assert (arrests["after_records"], arrests["after_share"]) == (4, 0.25)


def test_ages_at_book_in_with_bounds(backend):
    # Under 18 surely: s2 (14-15), s3 (17 by birth date); perhaps also s4 (born 2007: 17-18).
    # 65 or older surely: s6 (69-70); perhaps also s5 (born 1960: 64-65).
    assert totals(compute("book_in_ages", backend)) == {
        ("under_18_lower_bound",): (6, 2), ("under_18_upper_bound",): (6, 3),
        ("aged_65_plus_lower_bound",): (6, 1), ("aged_65_plus_upper_bound",): (6, 2),
    }


def test_ages_from_birth_years_alone(tmp_path):
    # Without the birth date column s3 (born 2007) is 17 or 18: possibly, not surely, a child.
    schema = pa.schema([f for f in STINT_SCHEMA if f.name != "birth_date"])
    stints = pa.Table.from_pylist([{k: v for k, v in s.items() if k != "birth_date"}
                                   for s in STINTS], schema=schema)
    backend = _warehouse(tmp_path / "w.duckdb", pa.Table.from_pylist(ARRESTS, schema=ARREST_SCHEMA),
                         stints, pa.Table.from_pylist(REMOVALS, schema=REMOVAL_SCHEMA))
    found = totals(compute("book_in_ages", backend))
    assert (found[("under_18_lower_bound",)], found[("under_18_upper_bound",)]) == ((6, 1), (6, 3))


def test_a_birth_after_the_book_in_is_no_age(tmp_path):
    # t7 (booked in 2025) with a birth date of 2055, a two-digit year read into the wrong
    # century: its age is unknown, never a child's; with its birth year it falls back to that.
    def ages(birth_year):
        stints = pa.Table.from_pylist(
            [{**s, "birth_date": date(2055, 3, 1), "birth_year": birth_year}
             if s["record_id"] == "t7" else s for s in STINTS], schema=STINT_SCHEMA)
        backend = _warehouse(tmp_path / f"w{birth_year}.duckdb",
                             pa.Table.from_pylist(ARRESTS, schema=ARREST_SCHEMA), stints,
                             pa.Table.from_pylist(REMOVALS, schema=REMOVAL_SCHEMA))
        return totals(compute("book_in_ages", backend))

    assert ages(None) == {
        ("under_18_lower_bound",): (5, 2), ("under_18_upper_bound",): (5, 3),
        ("aged_65_plus_lower_bound",): (5, 0), ("aged_65_plus_upper_bound",): (5, 1),
    }
    assert ages(1955) == {
        ("under_18_lower_bound",): (6, 2), ("under_18_upper_bound",): (6, 3),
        ("aged_65_plus_lower_bound",): (6, 1), ("aged_65_plus_upper_bound",): (6, 2),
    }


def test_family_facility_stays(backend):
    # s2's first stint and s3's are in family facilities (named FAM RESIDENTIAL, FAMILY).
    assert totals(compute("family_facility_stays", backend)) == {("family_facility",): (6, 2)}
    by_month = {r["month"]: r["matching"] for r in
                compute("family_facility_stays", backend).to_pylist()}
    assert by_month[date(2025, 4, 1)] == 1 and by_month[date(2025, 6, 1)] == 1


def test_children_held_over_the_flores_benchmark(backend):
    # Children surely under 18: s2 (35 days) and s3 (9 days), both followed 20 days and more.
    assert totals(compute("children_held_over_20_days", backend)) == {("over_20_days",): (2, 1)}


def test_detained_not_removable_days_bed_days_and_cost(backend):
    rows = compute("detained_not_removable", backend).to_pylist()
    # Ended stays: s1, s2, s3, s5, s6. Relief (s2, on its latest stint) or termination (s3).
    assert sum(r["stays_ended"] for r in rows) == 5
    assert sum(r["not_removable"] for r in rows) == 2
    by_month = {r["month"]: r for r in rows}
    may, june = by_month[date(2025, 5, 1)], by_month[date(2025, 6, 1)]
    assert (may["not_removable"], may["days_detained"], may["bed_days"]) == (1, 35.0, 35)
    assert (june["not_removable"], june["days_detained"], june["bed_days"]) == (1, 9.0, 9)
    for row in (may, june):
        assert row["rate_usd_per_day"] == 187.48
        assert math.isclose(row["cost_usd"], row["bed_days"] * 187.48)
        assert row["rate_source"].startswith("ICE budget documents")
    assert by_month[date(2025, 3, 1)]["not_removable_share"] == 0.0


def test_removals_without_conviction(backend):
    rows = compute("removals_without_conviction", backend).to_pylist()
    assert sum(r["removals"] for r in rows) == 4
    assert sum(r["criminality_unknown"] for r in rows) == 1
    shift = shift_rows("removals_without_conviction", backend)
    # Before: r2 convicted. After: r1 pending, r3 neither (r4 unknown, left out).
    assert (shift["no_conviction"]["before_share"], shift["no_conviction"]["after_share"]) == (
        0.0, 1.0)
    assert shift["no_conviction_no_charge"]["after_share"] == 0.5


def test_removals_by_case_category(backend):
    rows = compute("removals_by_case_category", backend).to_pylist()
    june = [r for r in rows if r["month"] == date(2025, 6, 1)]
    expedited = next(r for r in june if r["case_category"] == "[8F] Expedited Removal")
    unrecorded = next(r for r in june if r["case_category"] is None)
    assert (expedited["removals"], expedited["removals_with_case_category"],
            expedited["share"]) == (1, 1, 1.0)
    assert unrecorded["removals"] == 1 and unrecorded["share"] is None


def test_repeat_arrests(backend):
    rows = {r["month"]: r for r in compute("repeat_arrests", backend).to_pylist()}
    june, july = rows[date(2025, 6, 1)], rows[date(2025, 7, 1)]
    # June: a2 (repeat of a1, 92 days), a7, a8; July: a5 (repeat of a4, 91 days).
    assert (june["arrests"], june["arrests_with_identifier"], june["repeat_arrests"]) == (3, 3, 1)
    assert june["mean_days_since_previous_arrest"] == 92
    assert (july["repeat_arrests"], july["people_rearrested"]) == (1, 1)
    assert july["mean_days_since_previous_arrest"] == 91
    assert rows[date(2025, 5, 1)]["arrests_with_identifier"] == 0
    # An earlier arrest before the period still makes a repeat.
    june_only = compute("repeat_arrests", backend,
                        MetricParams(start=date(2025, 6, 1), end=date(2025, 6, 30))).to_pylist()
    assert june_only[0]["repeat_arrests"] == 1
    shift = shift_rows("repeat_arrests", backend)["repeat_arrest"]
    assert (shift["before_records"], shift["before_share"]) == (2, 0.0)
    assert (shift["after_records"], shift["after_share"]) == (4, 0.5)


def test_identification_quality(backend):
    # Every arrest row, the duplicate a3 included: 8 records, 7 with an identifier.
    found = totals(compute("identification_quality", backend), "release")
    assert found == {
        ("no_identifier", RELEASE): (8, 1),
        ("placeholder_identifier", RELEASE): (7, 1),
        ("conflicting_birth_year", RELEASE): (7, 3),  # P1: 1990, 1990, 1991
        ("conflicting_gender", RELEASE): (7, 2),  # P2: Female, Male
        ("conflicting_citizenship", RELEASE): (7, 0),
        ("unknown_criminality", RELEASE): (8, 1),
    }


def test_identification_quality_finds_conflicts_among_the_period_s_records(backend):
    # June: P1's a2 (1990) and a3 (1991) disagree; P2's Female (April) and Male (July) records
    # fall outside, so within June P2 has no conflict to show.
    june = MetricParams(start=date(2025, 6, 1), end=date(2025, 6, 30))
    found = totals(compute("identification_quality_period", backend, june), "release")
    assert found[("conflicting_birth_year", RELEASE)] == (4, 2)
    assert found[("conflicting_gender", RELEASE)] == (4, 0)


def test_arrests_derived_before_they_carried_identity_conflicts_ask_for_a_derive(tmp_path):
    path = tmp_path / "w.duckdb"
    _warehouse(path, pa.Table.from_pylist(ARRESTS, schema=ARREST_SCHEMA),
               pa.Table.from_pylist(STINTS, schema=STINT_SCHEMA),
               pa.Table.from_pylist(REMOVALS, schema=REMOVAL_SCHEMA)).disconnect()
    with Warehouse(path).connect() as con:
        con.execute("ALTER TABLE foia_arrests DROP COLUMN identity_conflict")
    with pytest.raises(IceledgerError, match="derived before it carried identity_conflict; run "
                                             "`iceledger derive`"):
        compute("identification_quality", duckdb_backend(path))


# The monthly metric's columns that hold each period share's denominator and numerator, where the
# monthly metric gives its own columns rather than one row per share.
OWN_MONTHLY_COLUMNS = {
    "removals_without_conviction": {
        "no_conviction": (("convicted", "pending_charges", "other_immigration_violator"),
                          ("pending_charges", "other_immigration_violator")),
        "no_conviction_no_charge": (("convicted", "pending_charges", "other_immigration_violator"),
                                    ("other_immigration_violator",)),
    },
    "detained_not_removable": {"not_removable": (("with_case_status",), ("not_removable",))},
    "repeat_arrests": {"repeat_arrest": (("arrests_with_identifier",), ("repeat_arrests",))},
}


@pytest.mark.parametrize("name", sorted(
    m.name.removesuffix("_period") for m in REGISTRY.values()
    if m.name.endswith("_period") and "indicator" in m.disclosure.keys))
def test_a_period_share_counts_what_its_months_count(backend, name):
    keys = [k for k in REGISTRY[f"{name}_period"].disclosure.keys if k != "indicator"]
    period = compute(f"{name}_period", backend).to_pylist()
    assert period and all(r["period_start"] <= r["period_end"] for r in period)
    found = {(r["indicator"], *(r[k] for k in keys)): (r["with_data"], r["matching"])
             for r in period}
    monthly = compute(name, backend)
    if name in OWN_MONTHLY_COLUMNS:
        rows = monthly.to_pylist()
        expected = {(share,): tuple(sum(r[c] for r in rows for c in columns)
                                    for columns in (denominator, numerator))
                    for share, (denominator, numerator) in OWN_MONTHLY_COLUMNS[name].items()}
    else:
        expected = totals(monthly, *keys)
    assert found == expected
    for row in period:
        assert row["figure"] == " · ".join([*(str(row[k]) for k in keys), row["indicator"]])
        if row["with_data"]:
            assert row["share"] == row["matching"] / row["with_data"]
            assert (row["ci_low"], row["ci_high"]) == pytest.approx(
                _wilson(row["matching"], row["with_data"]))


def test_breakdown_by_criminality_and_period(backend):
    # Every stay is booked in as 'neither'; from June on, only s4 (25 years) and s5 (6 years).
    by = totals(compute("long_term_residents", backend, MetricParams(by=("criminality",))),
                "action", "criminality")
    assert by[("over_5_years", "book_ins", N)] == (4, 3)
    assert by[("over_5_years", "arrests", C)] == (1, 1)
    later = totals(compute("long_term_residents", backend, MetricParams(start=date(2025, 6, 1))),
                   "action")
    assert later[("over_10_years", "book_ins")] == (2, 1)


# --- refusals ------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def bare_backend(tmp_path_factory):
    """Records without what the indicators need: no entry date, case status or case category
    columns, birth years all blank, no identifiers."""
    arrests = pa.Table.from_pylist(
        [{**a, "person_id": None} for a in ARRESTS], schema=ARREST_SCHEMA)
    stint_schema = pa.schema([f for f in STINT_SCHEMA if f.name not in ("entry_date",
                                                                       "case_status")])
    stints = pa.Table.from_pylist(
        [{k: v for k, v in {**s, "birth_year": None, "birth_date": None}.items()
          if k in stint_schema.names} for s in STINTS], schema=stint_schema)
    removal_schema = pa.schema([f for f in REMOVAL_SCHEMA if f.name != "case_category"])
    removals = pa.Table.from_pylist(
        [{k: v for k, v in r.items() if k in removal_schema.names} for r in REMOVALS],
        schema=removal_schema)
    return _warehouse(tmp_path_factory.mktemp("human-cost-bare") / "w.duckdb",
                      arrests, stints, removals)


@pytest.mark.parametrize(
    ("name", "reason"),
    [
        ("long_term_residents", "foia_stints has no entry_date column"),
        ("long_term_residents_shift", "foia_stints has no entry_date column"),
        ("detained_not_removable", "foia_stints has no case_status column"),
        ("removals_by_case_category", "foia_removals has no case_category column"),
        ("book_in_ages", "records holds a birth date or birth year"),
        ("children_held_over_20_days", "records holds a birth date or birth year"),
        ("repeat_arrests", "records holds a person identifier"),
        ("repeat_arrests_shift", "records holds a person identifier"),
    ],
)
def test_refuses_what_the_records_cannot_say(bare_backend, name, reason):
    with pytest.raises(NotServable, match="^not measurable from these records: ") as refused:
        compute(name, bare_backend)
    assert reason in str(refused.value)


def test_what_the_bare_records_can_still_say(bare_backend):
    assert totals(compute("family_facility_stays", bare_backend)) == {("family_facility",): (6, 2)}
    assert totals(compute("identification_quality", bare_backend), "release")[
        ("no_identifier", RELEASE)] == (8, 8)


@pytest.mark.parametrize("name", ["long_term_residents", "book_in_ages", "family_facility_stays",
                                  "detained_not_removable"])
def test_stays_derived_before_they_carried_person_facts_ask_for_a_derive(tmp_path, name):
    path = tmp_path / "w.duckdb"
    _warehouse(path, pa.Table.from_pylist(ARRESTS, schema=ARREST_SCHEMA),
               pa.Table.from_pylist(STINTS, schema=STINT_SCHEMA),
               pa.Table.from_pylist(REMOVALS, schema=REMOVAL_SCHEMA)).disconnect()
    with Warehouse(path).connect() as con:
        for column in ("entry_date", "birth_date", "birth_year", "case_status",
                       "family_facility"):
            con.execute(f"ALTER TABLE foia_stays DROP COLUMN {column}")
    with pytest.raises(IceledgerError, match="derived before it carried .* run `iceledger derive`"):
        compute(name, duckdb_backend(path))


@pytest.mark.parametrize("name", sorted(
    m.name for m in REGISTRY.values()
    if m.name.endswith("_period") and FISCAL_YEAR in m.dimensions))
def test_fiscal_years_sum_to_the_period(backend, name):
    keys = [k for k in REGISTRY[name].disclosure.keys if k != "indicator"]
    period = {(r["indicator"], *(r[k] for k in keys)): (r["records"], r["with_data"], r["matching"])
              for r in compute(name, backend).to_pylist()}
    years = compute(name, backend, MetricParams(by=(FISCAL_YEAR,))).to_pylist()
    summed: dict = {}
    for row in years:
        assert fiscal_year(row["period_start"]) == fiscal_year(row["period_end"]) == row[
            FISCAL_YEAR]
        assert row["figure"].endswith(f" · FY{row[FISCAL_YEAR]}")
        key = (row["indicator"], *(row[k] for k in keys))
        found = summed.get(key, (0, 0, 0))
        summed[key] = tuple(a + row[c] for a, c in zip(found, ("records", "with_data", "matching"),
                                                       strict=True))
    assert summed == period


def test_fiscal_years_split_at_october_and_keep_to_the_covered_days():
    flags = ibis.memtable({"date": [date(2024, 9, 30), date(2024, 10, 1), date(2024, 10, 2)],
                           "late": [True, True, False]})
    rows = flags.mutate(**{FISCAL_YEAR: fiscal_year_of(flags.date).cast("int64")})
    covered = [date(2024, 9, 20) + timedelta(days=i) for i in range(20)]  # to 9 October
    late = Share("late", lambda r: ibis.literal(True), lambda r: r.late)
    table = ibis.duckdb.connect().to_pyarrow(
        fiscal_year_shares(rows, covered, (late,), [FISCAL_YEAR]))
    assert [(r[FISCAL_YEAR], r["period_start"], r["period_end"], r["with_data"], r["matching"])
            for r in table.to_pylist()] == [
        (2024, date(2024, 9, 20), date(2024, 9, 30), 1, 1),
        (2025, date(2024, 10, 1), date(2024, 10, 9), 2, 1),
    ]
