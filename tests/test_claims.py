"""The facts files (targets, events, claims) and the claims register, held against a hand-built
record.

The record: one FOIA release covering 1 January to 30 April 2025. From 20 January on there are
20 arrest episodes: 8 convicted, 6 pending charges, 6 neither, so

    convicted only = 8/20 = 0.40      convicted or pending = 14/20 = 0.70
    no conviction = 12/20 = 0.60      no conviction and no charge = 6/20 = 0.30

and three arrests of people with neither on 10 January, before the claims' period.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta

import ibis
import pyarrow as pa
import pytest

from iceledger.errors import SourceError
from iceledger.facts import FACTS_ENV, facts_dir, load_claims, load_events, load_targets
from iceledger.field_offices import field_offices
from iceledger.metrics.claims import check_claims
from iceledger.warehouse import Warehouse

C, P, N = "Convicted Criminal", "Pending Criminal Charges", "Other Immigration Violator"
CLAIMS_HEADER = (
    "claim_id,date,who,wording,source,url,metric,period_start,period_end,claimed_value,"
    "claimed_definition,note\n"
)


def _record(path, offices: list[str | None] | None = None, copies: int = 1,
            **tables: pa.Table) -> ibis.BaseBackend:
    """The arrests below, `copies` times over (the shares stay the same), and any other tables
    given, in a warehouse at `path`; their field offices drawn in turn from `offices` (by
    default every one of ICE's: a national release)."""
    classes = [C] * 8 + [P] * 6 + [N] * 6
    when = [datetime(2025, 1, 20, 9) + timedelta(days=5 * i) for i in range(len(classes))]
    when += [datetime(2025, 1, 10, 9)] * 3
    classes = (classes + [N] * 3) * copies
    when *= copies
    offices = offices or [office.name for office in field_offices()]
    arrests = pa.table(
        {
            "release": ["2025-05-01"] * len(classes),
            "apprehension_date": pa.array(when, pa.timestamp("us")),
            "criminality": classes,
            "is_duplicate": [False] * len(classes),
            "aor": pa.array([offices[i % len(offices)] for i in range(len(classes))],
                            pa.string()),
        }
    )
    releases = pa.table({"release": ["2025-05-01"], "coverage_start": [date(2025, 1, 1)],
                         "coverage_end": [date(2025, 4, 30)]})
    warehouse = Warehouse(path)
    for name, table in {"foia_arrests": arrests, "foia_releases": releases, **tables}.items():
        warehouse.replace_table(name, table)
    return ibis.duckdb.connect(str(path), read_only=True)


@pytest.fixture(scope="module")
def backend(tmp_path_factory):
    return _record(tmp_path_factory.mktemp("claims") / "w.duckdb")


def _facts(tmp_path, name: str, text: str):
    (tmp_path / name).write_text(text)
    return facts_dir(tmp_path)


# --- the shipped facts ----------------------------------------------------------------------------


def test_shipped_facts_load_with_a_source_on_every_row():
    targets, events, claims = load_targets(), load_events(), load_claims()
    assert all(row.source for row in [*targets, *events, *claims])
    in_force = {t.target_id: t for t in targets}
    assert in_force["may-2025-national-3000"].effective_from == date(2025, 5, 21)
    assert in_force["may-2025-national-3000"].arrests_per_day == 3000
    assert in_force["jan-2025-national-1800"].status == "alternative"
    assert in_force["jan-2025-field-office"].scope == "field_office"
    assert {str(e.date) for e in events} >= {"2025-01-20", "2025-05-21", "2025-07-04", "2025-08"}
    assert not next(e for e in events if e.event.startswith("Leadership")).confirmed


def test_a_facts_folder_overrides_only_the_files_it_holds(tmp_path, monkeypatch):
    (tmp_path / "targets.csv").write_text(
        "target_id,effective_from,effective_to,date_note,scope,arrests_per_day,status,"
        "description,source,source_date,url\n"
        "mine,2025-02-01,,,national,500,primary,my target,my source,2025-02-01,\n"
    )
    monkeypatch.setenv(FACTS_ENV, str(tmp_path))
    assert [t.target_id for t in load_targets()] == ["mine"]
    assert len(load_events()) >= 4, "events.csv is not in the folder: the shipped one is read"
    with facts_dir(None):
        assert [t.target_id for t in load_targets()] == ["mine"], "None keeps the env var"
    monkeypatch.delenv(FACTS_ENV)
    assert "mine" not in {t.target_id for t in load_targets()}


@pytest.mark.parametrize(
    ("name", "text", "message"),
    [
        ("events.csv", "date,event,kind,confirmed,source,url\n2025-13-01,x,y,yes,z,\n",
         r"events.csv, row 2: column 'date': '2025-13-01' is not a date"),
        ("events.csv", "date,event,kind,confirmed,source,url\n2025-01-01,x,y,maybe,z,\n",
         r"row 2: column 'confirmed': 'maybe' is not one of yes, no"),
        ("events.csv", "date,event,kind,confirmed,source\n2025-01-01,x,y,yes,z\n",
         r"events.csv, row 1: missing column\(s\) url"),
        ("events.csv", "date,event,kind,confirmed,source,url,extra\n",
         r"unknown column\(s\) extra"),
        ("events.csv", "date,event,kind,confirmed,source,url\n2025-01-01,x,y,yes,,\n",
         r"row 2: column 'source': is empty"),
        ("targets.csv",
         "target_id,effective_from,effective_to,date_note,scope,arrests_per_day,status,"
         "description,source,source_date,url\n"
         "a,2025-01-01,,,national,100,primary,d,s,2025-01-01,\n"
         "b,2025-03-01,,,national,200,primary,d,s,2025-03-01,\n",
         r"targets.csv, row 3: primary target 'b' starts while primary target 'a' \(row 2\)"),
        ("targets.csv",
         "target_id,effective_from,effective_to,date_note,scope,arrests_per_day,status,"
         "description,source,source_date,url\n"
         "a,2025-01-01,,,state,100,primary,d,s,2025-01-01,\n",
         r"row 2: column 'scope': 'state' is not one of national, field_office"),
        ("targets.csv",
         "target_id,effective_from,effective_to,date_note,scope,arrests_per_day,status,"
         "description,source,source_date,url\n"
         "a,2025-01-01,,,national,-5,primary,d,s,2025-01-01,\n",
         r"row 2: column 'arrests_per_day': '-5' is not positive"),
        ("claims.csv", CLAIMS_HEADER + "x,2025,w,t,s,,m,2025-01-01,,0.7,,\n",
         r"claims.csv, row 2: claimed_value and claimed_definition go together"),
        ("claims.csv", CLAIMS_HEADER + "x,2025,w,t,s,,m,2025-01-01,,75,convicted,\n",
         r"row 2: claimed share 75.0 is above 1"),
        ("claims.csv", CLAIMS_HEADER + "x,2025,w,t,s,,,2025-01-01,,,,\n"
         "x,2025,w,t,s,,,2025-01-01,,,,\n", r"row 3: claim_id 'x' appears more than once"),
    ],
)
def test_a_bad_facts_row_is_one_line_naming_file_row_and_column(tmp_path, name, text, message):
    loaders = {"events.csv": load_events, "targets.csv": load_targets, "claims.csv": load_claims}
    with _facts(tmp_path, name, text), pytest.raises(SourceError, match=message) as raised:
        loaders[name]()
    assert "\n" not in str(raised.value)
    assert str(tmp_path / name) in str(raised.value)


def test_percent_claims_read_as_shares(tmp_path):
    with _facts(tmp_path, "claims.csv",
                CLAIMS_HEADER + "x,2025-04,w,t,s,,m,2025-01-01,,75%,convicted_or_pending,\n"):
        assert load_claims()[0].claimed_value == pytest.approx(0.75)


# --- checking the claims --------------------------------------------------------------------------


def _readings(check) -> dict:
    return {r.definition: r for r in check.readings}


def test_a_claim_is_read_under_every_definition_with_the_gap(backend, tmp_path):
    claims = CLAIMS_HEADER + (
        "share,2025-04,ICE,about 75% criminal,ICE statement,https://example.org/s,"
        "arrest_criminality_period,2025-01-20,2025-04-30,0.75,convicted_or_pending,\n"
        "count,2025-04,ICE,66000 arrests,ICE statement,,arrest_criminality_period,"
        "2025-01-20,2025-04-30,66000,count,\n"
    )
    with _facts(tmp_path, "claims.csv", claims):
        share, count = check_claims(backend)
    assert share.status == "checked" and share.note == ""
    readings = _readings(share)
    assert readings["convicted"].observed == pytest.approx(0.40)
    assert readings["convicted_or_pending"].observed == pytest.approx(0.70)
    assert readings["no_conviction"].observed == pytest.approx(0.60)
    assert readings["no_conviction_no_charge"].observed == pytest.approx(0.30)
    assert readings["convicted_or_pending"].claimed == 0.75
    assert readings["convicted_or_pending"].gap == pytest.approx(-0.05)
    assert readings["convicted"].gap is None, "the claim did not use this definition"
    # The complement's interval is the complement of the interval.
    assert readings["convicted"].ci_low == pytest.approx(1 - readings["no_conviction"].ci_high)
    assert readings["convicted"].ci_low < 0.40 < readings["convicted"].ci_high
    assert _readings(count)["count"].observed == 20
    assert _readings(count)["count"].gap == pytest.approx(20 - 66000)


def test_a_claim_is_not_tested_on_one_field_offices_records(tmp_path):
    claims = CLAIMS_HEADER + (
        "share,2025-04,ICE,about 75% criminal,ICE statement,https://example.org/s,"
        "arrest_criminality_period,2025-01-20,2025-04-30,0.75,convicted_or_pending,\n")
    # Judged on the 230 arrests of the release.
    seattle = _record(tmp_path / "seattle.duckdb", offices=["Seattle"], copies=10)
    with _facts(tmp_path, "claims.csv", claims):
        (check,) = check_claims(seattle)
    assert check.status == "not measurable" and not check.readings
    assert check.note == (
        "the claim is national, and records of part of the country cannot be set beside it, and "
        "release 2025-05-01's records in foia_arrests name 1 of ICE's 25 field offices "
        "(Seattle)")
    # Records naming no field office are read, and the note says their reach is unknown.
    unnamed = _record(tmp_path / "unnamed.duckdb", offices=[None], copies=10)
    with _facts(tmp_path, "claims.csv", claims):
        (check,) = check_claims(unnamed)
    assert check.status == "checked" and _readings(check)["convicted"].observed == 0.40
    assert check.note.startswith("release 2025-05-01 names no field office in foia_arrests.aor "
                                 "(0 of 230 rows name one): whether its records reach the whole "
                                 "country is not in them")


def test_a_claim_beyond_the_data_says_what_the_data_cover(backend, tmp_path):
    claims = CLAIMS_HEADER + (
        "late,2025-12,DHS,70%,DHS,,arrest_criminality_period,2025-01-20,2025-11-30,0.7,"
        "convicted_or_pending,\n"
        "future,2026-01,DHS,70%,DHS,,arrest_criminality_period,2025-06-01,2025-11-30,0.7,"
        "convicted_or_pending,\n"
        "stays,2025-01,WH,heinous,WH,,book_in_criminality_period,2025-01-20,2025-02-28,,,\n"
        "words,2025,DHS,worst of the worst,DHS,,,2025-01-20,,,,no metric for this yet\n"
    )
    with _facts(tmp_path, "claims.csv", claims):
        late, future, stays, words = check_claims(backend)
    assert late.status == "checked"
    assert "cover only 2025-01-20..2025-04-30" in late.note
    assert (late.covered_start, late.covered_end) == (date(2025, 1, 20), date(2025, 4, 30))
    assert future.status == "no data" and "cover no day" in future.note
    assert stays.status == "no data" and "foia_stays" in stays.note
    assert (words.status, words.note) == ("not checked", "no metric for this yet")


def test_a_claim_naming_an_unknown_metric_stops_with_file_and_row(backend, tmp_path):
    claims = CLAIMS_HEADER + "x,2025,w,t,s,,arrests_per_fortnight,2025-01-01,,,,\n"
    with _facts(tmp_path, "claims.csv", claims), pytest.raises(
        SourceError, match=r"claims.csv, row 2: claim 'x': no metric named 'arrests_per_fortnight'"
    ):
        check_claims(backend)


def test_a_claim_needs_a_whole_period_metric(backend, tmp_path):
    claims = CLAIMS_HEADER + "x,2025,w,t,s,,arrest_criminality,2025-01-01,,,,\n"
    with _facts(tmp_path, "claims.csv", claims), pytest.raises(
        SourceError, match=r"row 2: .*use a \*_period metric"
    ):
        check_claims(backend)


def test_the_shipped_register_checks_against_the_record(backend):
    checks = {c.claim.claim_id: c for c in check_claims(backend)}
    first_100_days = checks["ice-100-days-criminal-records"]
    assert first_100_days.status == "checked"
    assert _readings(first_100_days)["convicted_or_pending"].gap == pytest.approx(0.70 - 0.75)
    worst = checks["dhs-worst-of-the-worst"]
    assert worst.claim.metric == "book_in_violent_conviction_period"
    assert worst.status == "no data" and "foia_stays" in worst.note, "this record has no book-ins"

    # Claims on detainers and deaths name the tables this record lacks: no data, not an error.
    for claim_id in ("noem-2025-detainers-declined", "dhs-death-rate-0.00007"):
        assert checks[claim_id].status == "no data", claim_id
    assert checks["dhs-no-arrests-of-children-at-schools"].status == "not checked"


# --- other figures: detainers declined, deaths per bed-day ----------------------------------------


def test_a_detainer_claim_is_read_as_the_share_declined_and_the_count(tmp_path):
    """Ten detainers from January to April 2025: 2 released or declined by the jail, 3 taken
    into ICE custody, 5 with no lift reason, so declined = 2/10 (of all detainers)."""
    lifts = ["Released by Law Enforcement Agency", "Detainer Declined by Law Enforcement Agency",
             *["Subject Taken Into ICE Custody"] * 3, *[None] * 5]
    detainers = pa.table({
        "release": ["2025-05-01"] * len(lifts),
        "record_id": [f"d{i}" for i in range(len(lifts))],
        "detainer_prepare_date": pa.array([datetime(2025, 1, 21, 9) + timedelta(days=9 * i)
                                           for i in range(len(lifts))], pa.timestamp("us")),
        "detainer_lift_reason": pa.array(lifts, pa.string()),
        "is_exact_duplicate": [False] * len(lifts),
    })
    backend = _record(tmp_path / "w.duckdb", foia_detainers=detainers)
    claims = CLAIMS_HEADER + (
        "declined,2026-03,Noem,declined,Testimony,,detainer_outcomes_period,2025-01-01,"
        "2025-04-30,0.0887,detainers_declined,\n"
        "issued,2026-03,Noem,submitted,Testimony,,detainer_outcomes_period,2025-01-01,"
        "2025-04-30,201340,count,\n"
    )
    with _facts(tmp_path, "claims.csv", claims):
        declined, issued = check_claims(backend)
    assert declined.status == "checked"
    assert [r.definition for r in declined.readings] == ["count", "detainers_declined"]
    share = _readings(declined)["detainers_declined"]
    assert (share.observed, share.claimed) == (pytest.approx(0.2), 0.0887)
    assert share.ci_low < 0.0887 < share.ci_high
    assert declined.verdict == "consistent with the record under the claim's own definition"
    assert _readings(issued)["count"].observed == 10


def test_a_death_rate_claim_is_read_against_the_published_bed_days(tmp_path):
    """2 deaths in March 2025 (a SYNTHETIC count) against ICE's published 40 a day: 2 * 100,000 /
    (40 * 31) = 161.3 per 100,000 bed-days, claimed 150."""
    adp = pa.table({
        "workbook": ["W1"] * 2, "sha256": ["a" * 64] * 2, "fiscal_year": [2025] * 2,
        "agency": ["Total"] * 2, "criminality": ["Total"] * 2,
        "month": pa.array([date(2025, 2, 1), date(2025, 3, 1)], pa.date32()),
        "adp": [30.0, 40.0], "sheet": ["Detention FY25"] * 2, "cell_range": ["B9", "C9"]})
    workbooks = pa.table({"workbook": ["W1"], "sha256": ["a" * 64], "fiscal_year": [2025],
                          "file_date": [date(2025, 4, 10)], "as_of_date": [date(2025, 4, 5)]})
    backend = _record(tmp_path / "w.duckdb", stats_adp=adp, stats_workbooks=workbooks)
    (tmp_path / "deaths.csv").write_text(
        "period_start,period_end,deaths,status,counted_by,source,title,url,source_date,quote,"
        "note\n2025-03-01,2025-03-31,2,primary,test,SYNTHETIC,t,https://example.org,,"
        "2 died,\n")
    claims = CLAIMS_HEADER + ("rate,2025-12,DHS,rates are low,DHS,,deaths_in_custody_period,"
                              "2025-03-01,2025-03-31,150,deaths_per_100k_bed_days,\n")
    with _facts(tmp_path, "claims.csv", claims):
        (rate,) = check_claims(backend)
    reading = _readings(rate)["deaths_per_100k_bed_days"]
    assert reading.observed == pytest.approx(2 * 100_000 / (40 * 31))
    assert reading.gap == pytest.approx(2 * 100_000 / (40 * 31) - 150)
    assert (rate.covered_start, rate.covered_end) == (date(2025, 3, 1), date(2025, 3, 31))
    assert rate.verdict == "the claimed figure is below what the record shows under its own " \
        "definition"


# --- violent convictions: readable where the records carry a crime class --------------------------


@pytest.fixture(scope="module")
def with_book_ins(tmp_path_factory):
    """The arrests, and ten book-ins from 21 January 2025: 4 convicted (2 of a charge ICE classes
    Violent, 1 with no crime class recorded), 3 pending (1 of them Violent), 3 neither, so

        violent conviction = 2/10      convicted only = 4/10
    """
    stays = [(C, "Violent"), (C, "Violent"), (C, "Non-Violent"), (C, None),
             (P, "Violent"), (P, "Non-Violent"), (P, None), (N, None), (N, None), (N, None)]
    book_ins = pa.table({
        "release": ["2025-05-01"] * len(stays),
        "stay_id": [f"s{i}" for i in range(len(stays))],
        "stay_book_in": pa.array([datetime(2025, 1, 21, 9) + timedelta(days=7 * i)
                                  for i in range(len(stays))], pa.timestamp("us")),
        "criminality": [s[0] for s in stays],
        "msc_crime_class": pa.array([s[1] for s in stays], pa.string()),
    })
    return _record(tmp_path_factory.mktemp("claims-severity") / "w.duckdb", foia_stays=book_ins)


def test_violent_conviction_is_read_for_book_ins_and_not_measurable_for_arrests(
    with_book_ins, tmp_path
):
    claims = CLAIMS_HEADER + (
        "violent,2025-11,Analyst,5% violent,Report,,book_in_violent_conviction_period,"
        "2025-01-20,2025-04-30,5%,violent_conviction,\n"
        "arrests,2025,DHS,worst of the worst,DHS,,arrest_criminality_period,2025-01-20,,,,\n"
    )
    with _facts(tmp_path, "claims.csv", claims):
        book_ins, arrests = check_claims(with_book_ins)
    readings = _readings(book_ins)
    violent = readings["violent_conviction"]
    assert violent.observed == pytest.approx(0.2)
    assert violent.ci_low < 0.2 < violent.ci_high
    assert violent.claimed == pytest.approx(0.05) and violent.gap == pytest.approx(0.15)
    assert readings["convicted"].observed == pytest.approx(0.4)
    assert readings["count"].observed == 10
    arrest_violent = _readings(arrests)["violent_conviction"]
    assert arrests.status == "checked"
    assert (arrest_violent.observed, arrest_violent.ci_low, arrest_violent.gap) == (
        None, None, None), "arrests carry no crime class: not measurable, never 0"


def test_a_violent_conviction_figure_held_against_arrests_stops_with_file_and_row(
    backend, tmp_path
):
    claims = CLAIMS_HEADER + (
        "x,2025,DHS,5% violent,DHS,,arrest_criminality_period,2025-01-20,,5%,violent_conviction,\n")
    with _facts(tmp_path, "claims.csv", claims), pytest.raises(
        SourceError, match=r"claims.csv, row 2: claim 'x': .* gives no violent-conviction share"
    ):
        check_claims(backend)


def test_the_shipped_worst_of_the_worst_claim_reads_violent_convictions(with_book_ins):
    worst = next(c for c in check_claims(with_book_ins)
                 if c.claim.claim_id == "dhs-worst-of-the-worst")
    assert worst.status == "checked"
    assert (worst.covered_start, worst.covered_end) == (date(2025, 1, 21), date(2025, 4, 30))
    assert _readings(worst)["violent_conviction"].observed == pytest.approx(0.2)
    assert "book-ins" in worst.claim.note
