"""Derived FOIA tables, each rule checked on tiny hand-built canonical tables.

Every expected value below was worked out by hand from the rules in docs/methodology.md
("Derived FOIA tables"). The rows are synthetic: made up for these tests, not ICE records.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta

import duckdb
import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from iceledger.cli import app
from iceledger.errors import IceledgerError
from iceledger.sources.foia import derived as foia_derived
from iceledger.sources.foia.derived import rebuild_derived

RELEASE = "2026-03-11"
T0 = datetime(2025, 1, 6, 8, 0)
H = timedelta(hours=1)
D = timedelta(days=1)
MINUTE = timedelta(minutes=1)

ARREST_SCHEMA = pa.schema([
    ("record_id", pa.string()), ("release", pa.string()), ("person_id", pa.string()),
    ("apprehension_date", pa.timestamp("us")), ("apprehension_method", pa.string()),
    ("arrest_setting", pa.string()),
    ("source_file", pa.string()), ("source_sheet", pa.string()), ("source_row", pa.int64()),
])
STINT_SCHEMA = pa.schema([
    ("record_id", pa.string()), ("release", pa.string()), ("person_id", pa.string()),
    ("stay_book_in", pa.timestamp("us")), ("book_in", pa.timestamp("us")),
    ("book_out", pa.timestamp("us")), ("stay_book_out", pa.timestamp("us")),
    ("facility_code", pa.string()), ("stay_release_reason", pa.string()),
    ("criminality", pa.string()), ("aor", pa.string()), ("aor_code", pa.string()),
    ("citizenship_country", pa.string()), ("gender", pa.string()),
    ("departed_date", pa.date32()),
    ("source_file", pa.string()), ("source_sheet", pa.string()), ("source_row", pa.int64()),
])
REMOVAL_SCHEMA = pa.schema([
    ("record_id", pa.string()), ("release", pa.string()), ("person_id", pa.string()),
    ("departed_date", pa.date32()),
])
DETAINER_SCHEMA = pa.schema([
    ("record_id", pa.string()), ("release", pa.string()), ("person_id", pa.string()),
    ("detainer_prepare_date", pa.timestamp("us")),
])
ENCOUNTER_SCHEMA = pa.schema([
    ("record_id", pa.string()), ("release", pa.string()), ("person_id", pa.string()),
    ("event_date", pa.timestamp("us")),
])


def _table(con, name: str, schema: pa.Schema, rows: list[dict], source: str) -> None:
    """Create a canonical table; ids, release and provenance default from the row's position."""
    filled = []
    for i, row in enumerate(rows):
        full = {"record_id": f"{name.split('_')[1][0]}{i + 1}", "release": RELEASE,
                "source_file": source, "source_sheet": "Sheet1", "source_row": i + 8} | row
        filled.append({column: full.get(column) for column in schema.names})
    con.register("_rows", pa.Table.from_pylist(filled, schema=schema))
    con.execute(f"CREATE TABLE {name} AS SELECT * FROM _rows")
    con.unregister("_rows")


def warehouse(arrests=None, stints=None, removals=None, detainers=None,
              encounters=None) -> duckdb.DuckDBPyConnection:
    con = duckdb.connect()
    for name, schema, rows, source in (
        ("foia_arrests", ARREST_SCHEMA, arrests, "SYNTHETIC_test_Arrests.xlsx"),
        ("foia_stints", STINT_SCHEMA, stints, "SYNTHETIC_test_Detention-Stints.xlsx"),
        ("foia_removals", REMOVAL_SCHEMA, removals, "SYNTHETIC_test_Removals.xlsx"),
        ("foia_detainers", DETAINER_SCHEMA, detainers, "SYNTHETIC_test_Detainers.xlsx"),
        ("foia_encounters", ENCOUNTER_SCHEMA, encounters, "SYNTHETIC_test_Encounters.xlsx"),
    ):
        if rows is not None:
            _table(con, name, schema, rows, source)
    return con


def arrest(person, when, method="Located", **extra) -> dict:
    return {"person_id": person, "apprehension_date": when, "apprehension_method": method} | extra


def stint(person, stay_in, book_in=None, book_out=None, stay_out=None, facility="FAC1",
          **extra) -> dict:
    return {"person_id": person, "stay_book_in": stay_in, "book_in": book_in or stay_in,
            "book_out": book_out, "stay_book_out": stay_out, "facility_code": facility} | extra


def episodes(con) -> list[tuple]:
    return con.execute("SELECT record_id, episode_id, is_duplicate FROM foia_arrests "
                       "ORDER BY source_row").fetchall()


def table_names(con) -> set[str]:
    rows = con.execute("SELECT table_name FROM information_schema.tables").fetchall()
    return {r[0] for r in rows}


def stay_id(person, stay_in, release=RELEASE) -> str:
    return f"{release}/{person}/{stay_in:%Y-%m-%d %H:%M:%S}"


# --- arrest episodes -----------------------------------------------------------------------


def test_23h59_later_is_the_same_episode_and_24h01_is_not():
    con = warehouse(arrests=[
        arrest("p1", T0), arrest("p1", T0 + 24 * H - MINUTE),
        arrest("p2", T0), arrest("p2", T0 + 24 * H + MINUTE),
    ])
    summary = rebuild_derived(con)
    assert episodes(con) == [("a1", "a1", False), ("a2", "a1", True),
                             ("a3", "a3", False), ("a4", "a4", False)]
    assert (summary.arrests, summary.arrest_episodes, summary.arrest_duplicates) == (4, 3, 1)


def test_exactly_24_hours_later_is_still_within_the_episode():
    con = warehouse(arrests=[arrest("p1", T0), arrest("p1", T0 + 24 * H)])
    rebuild_derived(con)
    assert episodes(con) == [("a1", "a1", False), ("a2", "a1", True)]


def test_episodes_are_anchored_at_their_first_arrest_not_chained():
    # Every gap is 20 hours, so chaining would make one episode of all six. Anchored at the first
    # arrest: 0h and 20h; then 40h (more than 24h after 0h) opens an episode with 60h; then 80h
    # with 100h.
    con = warehouse(arrests=[arrest("p1", T0 + k * 20 * H) for k in range(6)])
    rebuild_derived(con)
    assert episodes(con) == [("a1", "a1", False), ("a2", "a1", True),
                             ("a3", "a3", False), ("a4", "a3", True),
                             ("a5", "a5", False), ("a6", "a5", True)]


def test_rows_are_ordered_by_time_not_by_position_in_the_file():
    con = warehouse(arrests=[arrest("p1", T0 + 30 * H), arrest("p1", T0 + 10 * H),
                             arrest("p1", T0)])
    rebuild_derived(con)
    # Sorted: a3 (0h), a2 (10h), a1 (30h); a1 is 30h after a3, so it opens a new episode.
    assert episodes(con) == [("a1", "a1", False), ("a2", "a3", True), ("a3", "a3", False)]


def test_reprocessed_arrests_sort_last_only_at_equal_times():
    con = warehouse(arrests=[
        arrest("p1", T0, "ERO Reprocessed Arrest"), arrest("p1", T0, "CAP Local Incarceration"),
        arrest("p2", T0 - H, "ERO Reprocessed Arrest"), arrest("p2", T0, "Located"),
    ])
    rebuild_derived(con)
    assert episodes(con) == [("a1", "a2", True), ("a2", "a2", False),
                             ("a3", "a3", False), ("a4", "a3", True)]


def test_rows_without_identifier_or_date_are_never_merged():
    con = warehouse(arrests=[arrest(None, T0), arrest(None, T0), arrest("p1", None),
                             arrest("p1", None), arrest("p1", T0)])
    summary = rebuild_derived(con)
    assert all(episode == record and not dup for record, episode, dup in episodes(con))
    assert summary.arrests_unlinkable == 4


def test_identifiers_link_only_within_one_release():
    con = warehouse(arrests=[arrest("p1", T0, release="2025-07-28"), arrest("p1", T0)])
    rebuild_derived(con)
    assert episodes(con) == [("a1", "a1", False), ("a2", "a2", False)]


def previous_episodes(con) -> list[tuple]:
    return con.execute("SELECT record_id, previous_episode_date FROM foia_arrests "
                       "ORDER BY source_row").fetchall()


def test_each_episode_is_dated_by_the_previous_episode_of_its_person_in_the_release():
    con = warehouse(arrests=[
        arrest("p1", T0 + 40 * D), arrest("p1", T0), arrest("p1", T0 + 2 * H),
        arrest("p1", T0 + 90 * D), arrest("p1", T0 + 90 * D, release="2025-07-28"),
        arrest("p2", T0 + D), arrest(None, T0 + 5 * D), arrest(None, T0 + 6 * D),
        arrest("p1", None),
    ])
    rebuild_derived(con)
    # a3 is a duplicate of a2's episode: neither previous nor dated; the release's p1 (a5) and
    # people without identifier or date have no previous episode.
    assert previous_episodes(con) == [
        ("a1", T0), ("a2", None), ("a3", None), ("a4", T0 + 40 * D), ("a5", None),
        ("a6", None), ("a7", None), ("a8", None), ("a9", None)]


def identity_conflicts(con) -> list[str]:
    return [r for (r,) in con.execute("SELECT record_id FROM foia_arrests WHERE "
                                      "identity_conflict ORDER BY source_row").fetchall()]


def test_every_arrest_of_an_identifier_whose_records_disagree_is_marked_anew_each_rebuild():
    con = warehouse(arrests=[
        arrest("p1", T0), arrest("p1", T0 + 40 * D), arrest("p2", T0), arrest("p2", T0 + 40 * D),
        arrest("p3", T0), arrest(None, T0), arrest("p1", T0, release="2025-07-28"),
    ])
    con.execute("ALTER TABLE foia_arrests ADD COLUMN gender VARCHAR")
    con.execute("UPDATE foia_arrests SET gender = CASE record_id WHEN 'a2' THEN 'Female' "
                "WHEN 'a4' THEN 'Unknown' WHEN 'a6' THEN 'Female' ELSE 'Male' END")
    rebuild_derived(con)
    # p1 is Male then Female in the release (not in the other: a7); 'Unknown' is no value (p2).
    assert identity_conflicts(con) == ["a1", "a2"]
    con.execute("UPDATE foia_arrests SET gender = 'Male' WHERE record_id = 'a2'")
    rebuild_derived(con)
    assert identity_conflicts(con) == []


def test_a_rebuild_dates_previous_episodes_anew():
    con = warehouse(arrests=[arrest("p1", T0), arrest("p1", T0 + 3 * D)])
    rebuild_derived(con)
    con.execute("DELETE FROM foia_arrests WHERE record_id = 'a1'")
    con.execute("INSERT INTO foia_arrests BY NAME SELECT 'a3' AS record_id, release, person_id, "
                "apprehension_date + INTERVAL 9 DAYS AS apprehension_date, apprehension_method, "
                "source_file, source_sheet, 10 AS source_row FROM foia_arrests")
    rebuild_derived(con)
    assert previous_episodes(con) == [("a2", None), ("a3", T0 + 3 * D)]


# --- stints and stays ----------------------------------------------------------------------


def test_a_stay_spans_several_stints_and_facilities():
    stay_in, stay_out = datetime(2025, 2, 1, 10), datetime(2025, 2, 10, 12)
    con = warehouse(stints=[
        stint("p1", stay_in, stay_in, datetime(2025, 2, 3, 9), stay_out, "FAC1",
              criminality="Convicted Criminal", aor="Atlanta", aor_code="ATL",
              gender="Male", citizenship_country="MEXICO", stay_release_reason="Removed"),
        stint("p1", stay_in, datetime(2025, 2, 3, 15), stay_out, stay_out, "FAC2",
              criminality="Pending Criminal Charges", aor="Houston", aor_code="HOU",
              gender="Male", citizenship_country="MEXICO", stay_release_reason="Removed"),
    ])
    summary = rebuild_derived(con)
    stays = con.sql("SELECT * FROM foia_stays").to_arrow_table().to_pylist()
    assert len(stays) == 1
    stay = stays[0]
    assert stay["stay_id"] == stay_id("p1", stay_in)
    assert (stay["n_stints"], stay["first_facility_code"], stay["censored"]) == (2, "FAC1", False)
    assert (stay["criminality"], stay["aor"], stay["aor_code"]) == (
        "Convicted Criminal", "Atlanta", "ATL")
    assert stay["end_time"] == stay_out and stay["stay_release_reason"] == "Removed"
    assert stay["length_days"] == pytest.approx(9 + 2 / 24)
    assert con.execute("SELECT list(stay_id) FROM foia_stints").fetchone()[0] == [
        stay_id("p1", stay_in)] * 2
    assert (summary.stints, summary.stays, summary.open_stays) == (2, 1, 0)


def test_same_day_transfer_is_kept_and_same_facility_same_day_rebooking_is_flagged():
    stay_in = datetime(2025, 3, 1, 8)
    con = warehouse(stints=[
        stint("p1", stay_in, stay_in, datetime(2025, 3, 1, 14), facility="FAC1"),
        stint("p1", stay_in, datetime(2025, 3, 1, 14), datetime(2025, 3, 1, 16), facility="FAC2"),
        stint("p1", stay_in, datetime(2025, 3, 1, 16), None, facility="FAC2"),
        stint("p1", stay_in, datetime(2025, 3, 2, 9), None, facility="FAC2"),
    ])
    summary = rebuild_derived(con)
    flags = con.execute("SELECT is_duplicate FROM foia_stints ORDER BY source_row").fetchall()
    assert [f[0] for f in flags] == [False, False, True, False]
    assert con.execute("SELECT n_stints FROM foia_stays").fetchone()[0] == 3
    assert (summary.stints, summary.stint_duplicates) == (4, 1)


def test_the_first_stint_is_the_earliest_booked_in_and_odd_book_ins_do_not_break_the_order():
    stay_in = datetime(2025, 5, 1, 8)
    con = warehouse(stints=[
        stint("p1", stay_in, datetime(2025, 5, 2, 8), facility="SECOND", aor="Houston"),
        stint("p1", stay_in, stay_in, facility="FIRST", aor="Atlanta"),
        stint("p2", stay_in, datetime(2199, 1, 1), facility="TYPO"),
        stint("p2", stay_in, datetime(1900, 1, 1), facility="OLD"),
        stint("p3", stay_in, facility="NO BOOK-IN"),
        stint("p3", stay_in, stay_in, facility="KNOWN"),
    ])
    con.execute("UPDATE foia_stints SET book_in = NULL WHERE facility_code = 'NO BOOK-IN'")
    rebuild_derived(con)
    assert con.execute("SELECT person_id, first_facility_code, aor FROM foia_stays "
                       "ORDER BY person_id").fetchall() == [
        ("p1", "FIRST", "Atlanta"), ("p2", "OLD", None), ("p3", "KNOWN", None)]


def test_a_stay_spanning_midnight_lasts_its_hours():
    con = warehouse(stints=[stint("p1", datetime(2025, 4, 1, 23),
                                  stay_out=datetime(2025, 4, 2, 1))])
    rebuild_derived(con)
    assert con.execute("SELECT length_days FROM foia_stays").fetchone()[0] == pytest.approx(2 / 24)


def test_open_stays_are_censored_at_the_release_date_never_zero_length():
    con = warehouse(stints=[stint("p1", datetime(2026, 3, 1, 12)),
                            stint("p2", datetime(2026, 3, 11, 6))])
    summary = rebuild_derived(con)
    rows = con.execute("SELECT person_id, censored, end_time, length_days FROM foia_stays "
                       "ORDER BY person_id").fetchall()
    assert rows == [("p1", True, datetime(2026, 3, 11), pytest.approx(9.5)),
                    ("p2", True, None, None)]
    assert summary.open_stays == 2
    assert any("on or after their release date" in note for note in summary.notes)


def test_stays_of_the_same_identifier_in_two_releases_are_two_stays():
    stay_in = datetime(2025, 2, 1, 10)
    con = warehouse(stints=[stint("p1", stay_in, release="2025-07-28"), stint("p1", stay_in)])
    rebuild_derived(con)
    assert con.execute("SELECT stay_id, end_time FROM foia_stays ORDER BY stay_id").fetchall() == [
        (stay_id("p1", stay_in, "2025-07-28"), datetime(2025, 7, 28)),
        (stay_id("p1", stay_in), datetime(2026, 3, 11)),
    ]


def test_stints_without_identifier_or_stay_book_in_are_counted_not_lost():
    con = warehouse(stints=[stint(None, T0), stint(None, T0), stint("p1", None, T0)])
    summary = rebuild_derived(con)
    assert summary.stays == 2 and summary.stints_without_stay == 1
    assert con.execute("SELECT count(*) FROM foia_stints").fetchone()[0] == 3
    assert any("no identifier" in note for note in summary.notes)


PERSON_SCHEMA = pa.schema([*STINT_SCHEMA, ("entry_date", pa.date32()),
                           ("birth_date", pa.date32()), ("birth_year", pa.int32()),
                           ("case_status", pa.string()), ("facility_name", pa.string())])


def test_a_stay_carries_its_person_facts_from_its_stints():
    d = datetime(2025, 2, 1, 8)
    con = duckdb.connect()
    _table(con, "foia_stints", PERSON_SCHEMA, [
        # p1: entry and birth the greatest recorded; case status from the latest-booked stint
        # that records one, passing over the one with no book-in time; a family facility.
        stint("p1", d, d, facility="FAC1", entry_date=date(2010, 1, 1), birth_year=1990,
              case_status="ACTIVE", facility_name="SOUTH TEXAS FAM RESIDENTIAL CENTER"),
        stint("p1", d, d + 3 * D, facility="FAC2", entry_date=date(2012, 5, 1),
              birth_date=date(1990, 6, 1), case_status="B-Relief Granted",
              facility_name="SYNTHETIC COUNTY JAIL"),
        stint("p1", d, d + 5 * D, facility="FAC3"),
        stint("p1", d, None, facility="FAC4", case_status="NO BOOK-IN"),
        # p2: a family facility however spelled; no case status anywhere.
        stint("p2", d, facility_name="Berks County Family Shelter"),
        # p3: no family facility; the same-day re-booking (a duplicate) says nothing.
        stint("p3", d, facility_name="SYNTHETIC COUNTY JAIL", case_status="ACTIVE"),
        stint("p3", d, d + 2 * H, facility_name="FAMILY SHELTER", case_status="DUPLICATE",
              entry_date=date(2020, 1, 1)),
        # p4: no stint names its facility.
        stint("p4", d),
    ], "SYNTHETIC_test_Detention-Stints.xlsx")
    con.execute("UPDATE foia_stints SET book_in = NULL WHERE facility_code = 'FAC4'")
    rebuild_derived(con)
    assert con.execute("""
        SELECT person_id, entry_date, birth_date, birth_year, case_status, family_facility
        FROM foia_stays ORDER BY person_id""").fetchall() == [
        ("p1", date(2012, 5, 1), date(1990, 6, 1), 1990, "B-Relief Granted", True),
        ("p2", None, None, None, None, True),
        ("p3", None, None, None, "ACTIVE", False),
        ("p4", None, None, None, None, None),
    ]


def test_stints_of_a_layout_without_person_facts_give_stays_none():
    con = warehouse(stints=[stint("p1", T0)])
    rebuild_derived(con)
    assert con.execute("SELECT entry_date, birth_date, birth_year, case_status, family_facility "
                       "FROM foia_stays").fetchall() == [(None, None, None, None, None)]


# --- arrest -> stay links ------------------------------------------------------------------


def links(con) -> dict[str, tuple[str, float]]:
    rows = con.execute("SELECT arrest_record_id, stay_id, days_from_arrest "
                       "FROM foia_arrest_stay_links").fetchall()
    return {a: (s, days) for a, s, days in rows}


@pytest.mark.parametrize(("offset", "linked"), [
    (-5 * D, True), (-5 * D - MINUTE, False), (10 * D, True), (10 * D + MINUTE, False),
    (timedelta(0), True),
])
def test_window_runs_from_5_days_before_to_10_days_after_the_arrest(offset, linked):
    con = warehouse(arrests=[arrest("p1", T0)], stints=[stint("p1", T0 + offset)])
    rebuild_derived(con)
    expected = {"a1": (stay_id("p1", T0 + offset), offset / D)} if linked else {}
    assert links(con) == expected


def test_an_arrest_takes_the_nearest_stay_and_prefers_a_later_one_at_equal_distance():
    con = warehouse(
        arrests=[arrest("p1", T0), arrest("p2", T0)],
        stints=[stint("p1", T0 + 3 * D), stint("p1", T0 + D),
                stint("p2", T0 - 2 * D, stay_out=T0 - D), stint("p2", T0 + 2 * D)],
    )
    rebuild_derived(con)
    assert links(con) == {"a1": (stay_id("p1", T0 + D), 1.0),
                          "a2": (stay_id("p2", T0 + 2 * D), 2.0)}


def test_links_are_one_to_one_and_conflicts_go_to_the_smallest_gap_then_earlier_arrest():
    con = warehouse(
        arrests=[arrest("p1", T0), arrest("p1", T0 + 2 * D),  # equal gaps to p1's one stay
                 arrest("p2", T0), arrest("p2", T0 + 2.5 * D)],
        stints=[stint("p1", T0 + D),
                stint("p2", T0 + 2 * D, stay_out=T0 + 4 * D), stint("p2", T0 + 6 * D)],
    )
    summary = rebuild_derived(con)
    # p1: both arrests are 1 day from the stay; the earlier arrest (a1) wins, a2 stays unlinked.
    # p2: a4 -> first stay (0.5 days) is the smallest gap; a3 then takes the other (6 days),
    # although its own nearest stay was the first.
    assert links(con) == {"a1": (stay_id("p1", T0 + D), 1.0),
                          "a4": (stay_id("p2", T0 + 2 * D), -0.5),
                          "a3": (stay_id("p2", T0 + 6 * D), 6.0)}
    assert summary.arrest_stay_links == 3


def test_an_arrest_carries_the_entry_date_of_the_stay_it_is_linked_to():
    con = warehouse(arrests=[arrest("p1", T0), arrest("p2", T0), arrest("p3", T0)])
    _table(con, "foia_stints", PERSON_SCHEMA, [
        stint("p1", T0 + D, entry_date=date(2010, 1, 1)), stint("p2", T0 + D),
        stint("p3", T0 + 30 * D, entry_date=date(2011, 1, 1))],
        "SYNTHETIC_test_Detention-Stints.xlsx")
    rebuild_derived(con)
    # a2's stay has no entry date; a3's stay is too late to be linked.
    entries = "SELECT record_id, stay_entry_date FROM foia_arrests ORDER BY record_id"
    assert con.execute(entries).fetchall() == [
        ("a1", date(2010, 1, 1)), ("a2", None), ("a3", None)]
    # Without stints there are no links, and no arrest keeps an entry date from before.
    con.execute("DROP TABLE foia_stints")
    rebuild_derived(con)
    assert con.execute(entries).fetchall() == [("a1", None), ("a2", None), ("a3", None)]


def test_duplicate_arrests_are_never_linked():
    con = warehouse(arrests=[arrest("p1", T0), arrest("p1", T0 + 20 * H)],
                    stints=[stint("p1", T0 + 21 * H)])
    rebuild_derived(con)
    assert links(con) == {"a1": (stay_id("p1", T0 + 21 * H), pytest.approx(21 / 24))}


# --- removal links -------------------------------------------------------------------------


def test_removals_link_to_the_stay_they_end_and_through_it_to_the_arrest():
    book_in, book_out = datetime(2025, 4, 1, 9), datetime(2025, 4, 10, 9)
    con = warehouse(
        arrests=[arrest("p1", book_in - 2 * H)],
        stints=[stint("p1", book_in, stay_out=book_out),
                stint("p2", book_in, stay_out=book_out),
                stint("p3", book_in, departed_date=date(2025, 4, 12)),  # open, departed recorded
                stint("p4", book_in, stay_out=book_out),
                stint("p5", book_in, stay_out=book_out)],
        removals=[{"person_id": "p1", "departed_date": date(2025, 4, 10)},
                  {"person_id": "p2", "departed_date": date(2025, 4, 20)},   # +10 days: in
                  {"person_id": "p3", "departed_date": date(2025, 4, 12)},
                  {"person_id": "p4", "departed_date": date(2025, 4, 21)},   # +11 days: out
                  {"person_id": "p5", "departed_date": date(2025, 3, 31)},   # before book-in
                  {"person_id": None, "departed_date": date(2025, 4, 10)}],
    )
    summary = rebuild_derived(con)
    rows = con.execute("SELECT * FROM foia_removal_links ORDER BY removal_record_id").fetchall()
    assert rows == [("r1", stay_id("p1", book_in), "a1"), ("r2", stay_id("p2", book_in), None),
                    ("r3", stay_id("p3", book_in), None)]
    assert (summary.removals, summary.removal_links, summary.removal_links_with_arrest) == (6, 3, 1)


def test_an_arrest_carries_its_stay_s_end_and_the_days_to_the_removal_that_ended_it():
    arrested = datetime(2025, 4, 1, 22)
    con = warehouse(
        arrests=[arrest("p1", arrested), arrest("p2", arrested), arrest("p3", arrested)],
        stints=[stint("p1", arrested + 12 * H, stay_out=datetime(2025, 4, 10, 9),
                      stay_release_reason="Removed"),
                stint("p2", arrested - D)],  # open, never removed
        removals=[{"person_id": "p1", "departed_date": date(2025, 4, 11)}],
    )
    rebuild_derived(con)
    followed = ("SELECT record_id, days_to_stay, stay_ended_at, stay_end_reason, days_to_removal "
                "FROM foia_arrests ORDER BY record_id")
    # Whole days from the arrest's day (1 April), not from its hour: 10.
    assert con.execute(followed).fetchall() == [
        ("a1", 0.5, datetime(2025, 4, 10, 9), "Removed", 10),
        ("a2", -1.0, None, None, None),
        ("a3", None, None, None, None)]
    # Without removals no arrest keeps a removal from before; without stints, no stay either.
    con.execute("DROP TABLE foia_removals")
    rebuild_derived(con)
    assert [row[4] for row in con.execute(followed).fetchall()] == [None, None, None]
    con.execute("DROP TABLE foia_stints")
    rebuild_derived(con)
    assert con.execute(followed).fetchall() == [(f"a{i}", None, None, None, None)
                                                for i in (1, 2, 3)]


def test_a_removal_window_starts_5_days_before_the_book_out():
    book_in, book_out = datetime(2025, 4, 1, 9), datetime(2025, 4, 10, 9)
    con = warehouse(
        stints=[stint("p1", book_in, stay_out=book_out), stint("p2", book_in, stay_out=book_out)],
        removals=[{"person_id": "p1", "departed_date": date(2025, 4, 5)},
                  {"person_id": "p2", "departed_date": date(2025, 4, 4)}],
    )
    rebuild_derived(con)
    assert con.execute("SELECT removal_record_id FROM foia_removal_links").fetchall() == [("r1",)]


def test_a_removal_between_two_stays_ending_the_same_day_takes_the_earlier_booked_one():
    con = warehouse(
        stints=[stint("p1", datetime(2025, 4, 5, 9), stay_out=datetime(2025, 4, 10, 9)),
                stint("p1", datetime(2025, 4, 1, 9), stay_out=datetime(2025, 4, 10, 20))],
        removals=[{"person_id": "p1", "departed_date": date(2025, 4, 11)}],
    )
    rebuild_derived(con)
    assert con.execute("SELECT stay_id FROM foia_removal_links").fetchall() == [
        (stay_id("p1", datetime(2025, 4, 1, 9)),)]


# --- detainers and encounters followed to an arrest -----------------------------------------


def days_to_arrest(con) -> dict[str, int | None]:
    """Record -> its derived days to the arrest that follows, detainers and encounters alike."""
    present = table_names(con)
    return {record: days for table, column in (("foia_detainers", "days_to_custodial_arrest"),
                                               ("foia_encounters", "days_to_arrest"))
            if table in present
            for record, days in con.execute(f"SELECT record_id, {column} FROM {table}").fetchall()}


def custodial(person, when, **extra) -> dict:
    return arrest(person, when, "CAP Local Incarceration", arrest_setting="custodial", **extra)


def test_a_record_is_followed_to_its_first_arrest_from_its_day_to_90_days_on():
    # Whole days: a detainer at 23:00 is followed by an arrest at 01:00 the next morning in 1 day
    # and by one at 06:00 the same day in 0 days; 90 days on still counts, 91 does not.
    con = warehouse(
        arrests=[custodial("p1", T0 + 20 * D), custodial("p1", T0 + 40 * D),
                 custodial("p2", datetime(2025, 1, 7, 1)), custodial("p3", T0 - H),
                 custodial("p4", T0 + 90 * D), custodial("p5", T0 + 91 * D)],
        detainers=[{"person_id": p, "detainer_prepare_date": when} for p, when in (
            ("p1", T0 + D), ("p1", T0 + 30 * D), ("p2", datetime(2025, 1, 6, 23)),
            ("p3", T0), ("p4", T0), ("p5", T0), ("p9", T0))],
    )
    summary = rebuild_derived(con)
    assert days_to_arrest(con) == {"d1": 19, "d2": 10, "d3": 1, "d4": 0, "d5": 90, "d6": None,
                                   "d7": None}
    assert summary.followed_by_arrest == {"foia_detainers": (7, 5)}
    assert "foia_detainers: 5 of 7 rows followed by an ICE arrest within 90 days" in \
        summary.lines()


def test_only_custodial_non_duplicate_arrests_of_the_same_release_follow_a_detainer():
    con = warehouse(
        arrests=[arrest("p1", T0 + D, arrest_setting="at-large"),  # an encounter's, not a jail's
                 custodial("p1", T0 + 5 * D), custodial("p1", T0 + 5 * D + H),  # a duplicate
                 custodial("p2", T0 + D, release="2025-01-01"), custodial("p3", T0 + 2 * D)],
        detainers=[{"person_id": "p1", "detainer_prepare_date": T0},
                   {"person_id": "p2", "detainer_prepare_date": T0},
                   {"person_id": None, "detainer_prepare_date": T0}],
        encounters=[{"person_id": "p1", "event_date": T0},
                    {"person_id": "p3", "event_date": T0 + 3 * D}],
    )
    rebuild_derived(con)
    assert days_to_arrest(con) == {"d1": 5, "d2": None, "d3": None, "e1": 1, "e2": None}


def test_follow_ups_are_rewritten_as_the_arrests_change_and_null_without_them():
    con = warehouse(arrests=[custodial("p1", T0 + D)],
                    detainers=[{"person_id": "p1", "detainer_prepare_date": T0}],
                    encounters=[{"person_id": "p1", "event_date": T0}])
    rebuild_derived(con)
    assert days_to_arrest(con) == {"d1": 1, "e1": 1}
    con.execute("UPDATE foia_arrests SET apprehension_date = apprehension_date + INTERVAL 3 DAY")
    rebuild_derived(con)
    assert days_to_arrest(con) == {"d1": 4, "e1": 4}
    con.execute("DROP TABLE foia_arrests")
    summary = rebuild_derived(con)
    assert days_to_arrest(con) == {"d1": None, "e1": None}
    assert any("no foia_arrests loaded: no row of foia_detainers" in n for n in summary.notes)


# --- releases, missing inputs, atomicity ---------------------------------------------------


def test_release_coverage_runs_from_the_earliest_event_to_the_release_date():
    con = warehouse(arrests=[arrest("p1", datetime(2023, 10, 2, 7))],
                    stints=[stint("p1", datetime(2023, 10, 2, 9))],
                    removals=[{"person_id": "p1", "departed_date": date(2024, 1, 1)}],
                    detainers=[{"person_id": "p1", "detainer_prepare_date": datetime(2023, 9, 30)}])
    rebuild_derived(con)
    assert con.execute("SELECT * FROM foia_releases").fetchall() == [
        (RELEASE, date(2023, 9, 30), date(2026, 3, 11))]


def test_stints_held_over_from_before_the_coverage_do_not_move_its_start():
    # A stint table holds everyone still detained when the coverage starts, booked in before it;
    # their book-ins are not the release's first events (the days before hold only theirs).
    held_over = stint("p0", datetime(2023, 4, 2, 9), book_in=datetime(2023, 8, 30, 9))
    con = warehouse(arrests=[arrest("p1", datetime(2023, 10, 2, 7))],
                    stints=[held_over, stint("p1", datetime(2023, 10, 2, 9))])
    rebuild_derived(con)
    assert con.execute("SELECT coverage_start FROM foia_releases").fetchall() == [
        (date(2023, 10, 2),)]
    # A release of stints alone has nothing else to date it by: its earliest book-in.
    con = warehouse(stints=[held_over, stint("p1", datetime(2023, 10, 2, 9))])
    rebuild_derived(con)
    assert con.execute("SELECT coverage_start FROM foia_releases").fetchall() == [
        (date(2023, 8, 30),)]


def test_missing_tables_are_skipped_and_said_so():
    con = warehouse(arrests=[arrest("p1", T0)])
    summary = rebuild_derived(con)
    assert not table_names(con) & {"foia_stays", "foia_arrest_stay_links", "foia_removal_links"}
    assert summary.arrest_episodes == 1 and summary.releases == 1
    assert any("foia_stints" in note for note in summary.notes)


def test_a_table_missing_a_needed_column_is_one_clear_error():
    con = warehouse(arrests=[arrest("p1", T0)])
    con.execute("ALTER TABLE foia_arrests DROP COLUMN apprehension_method")
    with pytest.raises(IceledgerError, match="foia_arrests lacks column.*apprehension_method"):
        rebuild_derived(con)


def test_a_failed_rebuild_leaves_the_warehouse_unchanged(monkeypatch):
    con = warehouse(arrests=[arrest("p1", T0)], stints=[stint("p1", T0)])

    def fail(*_):
        raise duckdb.IOException("disk full")

    monkeypatch.setattr(foia_derived, "_link_arrests_to_stays", fail)
    with pytest.raises(IceledgerError, match="disk full.*unchanged"):
        rebuild_derived(con)
    columns = con.execute("SELECT list(column_name) FROM information_schema.columns "
                          "WHERE table_name = 'foia_arrests'").fetchone()[0]
    assert not table_names(con) & {"foia_stays", "foia_releases"}
    assert "episode_id" not in columns


def test_rebuilding_again_gives_the_same_tables_and_picks_up_new_rows():
    con = warehouse(arrests=[arrest("p1", T0)], stints=[stint("p1", T0 + D)])
    rebuild_derived(con)
    first = episodes(con), links(con)
    rebuild_derived(con)
    assert (episodes(con), links(con)) == first
    con.execute("INSERT INTO foia_arrests BY NAME SELECT 'a2' AS record_id, ? AS release, "
                "'p1' AS person_id, ? AS apprehension_date, 'Located' AS apprehension_method, "
                "'new.xlsx' AS source_file, 'Sheet1' AS source_sheet, 9 AS source_row",
                [RELEASE, T0 - H])
    rebuild_derived(con)
    assert episodes(con) == [("a1", "a2", True), ("a2", "a2", False)]
    assert links(con) == {"a2": (stay_id("p1", T0 + D), pytest.approx(25 / 24))}


def test_derive_command_prints_the_summary(tmp_path):
    path = tmp_path / "w.duckdb"
    con = duckdb.connect(str(path))
    _table(con, "foia_arrests", ARREST_SCHEMA,
           [arrest("p1", T0), arrest("p1", T0 + H)], "SYNTHETIC_test_Arrests.xlsx")
    con.close()
    result = CliRunner().invoke(app, ["derive", "--warehouse", str(path)])
    assert result.exit_code == 0, result.output
    assert "2 rows -> 1 episodes (1 flagged duplicates" in result.output
    missing = CliRunner().invoke(app, ["derive", "--warehouse", str(tmp_path / "none.duckdb")])
    assert missing.exit_code == 1 and "no warehouse here yet" in missing.output
    assert "Traceback" not in missing.output


# --- properties ----------------------------------------------------------------------------


def reference_episodes(rows: list[dict]) -> dict[str, str]:
    """The anchored 24-hour rule written as a plain loop, for comparison with the SQL."""
    result = {}
    ordered = sorted(
        (r for r in rows if r["person_id"] is not None),
        key=lambda r: (r["person_id"], r["apprehension_date"],
                       r["apprehension_method"] == "ERO Reprocessed Arrest", r["source_row"]))
    start = None
    for row in ordered:
        if (start is None or start["person_id"] != row["person_id"]
                or row["apprehension_date"] - start["apprehension_date"] > 24 * H):
            start = row
        result[row["record_id"]] = start["record_id"]
    for row in rows:
        result.setdefault(row["record_id"], row["record_id"])
    return result


arrest_rows = st.lists(
    st.tuples(st.sampled_from(["p1", "p2", "p3", None]),
              st.integers(min_value=0, max_value=120),  # hours after T0
              st.booleans()),
    max_size=30,
)


@settings(max_examples=40, deadline=None)
@given(arrest_rows)
def test_every_arrest_row_is_kept_once_and_episodes_follow_the_anchored_rule(generated):
    rows = [arrest(person, T0 + hours * H, "ERO Reprocessed Arrest" if reprocessed else "Located",
                   record_id=f"a{i + 1}", source_row=i + 8)
            for i, (person, hours, reprocessed) in enumerate(generated)]
    con = warehouse(arrests=rows)
    summary = rebuild_derived(con)
    found = episodes(con)
    assert sorted(r for r, _, _ in found) == sorted(r["record_id"] for r in rows)
    assert {r: e for r, e, _ in found} == reference_episodes(rows)
    assert all(dup == (record != episode) for record, episode, dup in found)
    assert summary.arrest_episodes == len({e for _, e, _ in found}) == len(rows) - sum(
        dup for _, _, dup in found)


def reference_matching(pairs: list[tuple[str, str, float, float]]) -> set[tuple[str, str]]:
    """Greedy one-to-one matching as a plain loop: (left, right, gap, left time)."""
    taken_left, taken_right, matched = set(), set(), set()
    for left, right, _gap, _time in sorted(pairs, key=lambda p: (abs(p[2]), p[3], p[0], -p[2])):
        if left not in taken_left and right not in taken_right:
            taken_left.add(left)
            taken_right.add(right)
            matched.add((left, right))
    return matched


@settings(max_examples=40, deadline=None)
@given(st.lists(st.integers(min_value=0, max_value=40), max_size=8, unique=True),
       st.lists(st.integers(min_value=-10, max_value=50), max_size=8, unique=True))
def test_arrest_stay_links_equal_the_greedy_one_to_one_matching(arrest_hours, stay_hours):
    # One person whose arrests are >24h apart (every one its own episode), in 6-hour steps.
    arrests = [arrest("p1", T0 + h * 30 * H, record_id=f"a{h}") for h in arrest_hours]
    stints = [stint("p1", T0 + h * 6 * H, stay_out=T0 + h * 6 * H + H) for h in stay_hours]
    con = warehouse(arrests=arrests, stints=stints)
    rebuild_derived(con)
    pairs = [(a["record_id"], stay_id("p1", s["stay_book_in"]),
              (s["stay_book_in"] - a["apprehension_date"]) / D, a["apprehension_date"].timestamp())
             for a in arrests for s in stints
             if -5 * D <= s["stay_book_in"] - a["apprehension_date"] <= 10 * D]
    assert {(a, s) for a, (s, _) in links(con).items()} == reference_matching(pairs)
