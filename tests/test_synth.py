"""`iceledger synth`: SYNTHETIC FOIA files in ICE's raw layouts, with a realistic shape.

Headers are checked against the verbatim lists of foia-formats.md (copied below as the oracle);
the trend, the criminality shift and the person-level linkage are measured from generated files.
"""

from __future__ import annotations

import hashlib
import tomllib
from datetime import date, datetime, timedelta

import duckdb
import numpy as np
import openpyxl
import pyarrow.parquet as pq
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from python_calamine import CalamineWorkbook
from typer.testing import CliRunner

from iceledger.cli import app
from iceledger.errors import IceledgerError
from iceledger.field_offices import normalise_aor
from iceledger.synth.releases import generate_release, write_synthetic_releases
from iceledger.synth.columns import Codes, Labels, Moments, Numbers
from iceledger.synth.world import Month, Plan, data_file, load_model
from iceledger.synth.xlsx_writer import XlsxWriter

# foia-formats.md, "Columns, March 2026 release" and "Encounters (July 2025)", verbatim.
VERBATIM = {
    "arrests-2026-03": """Apprehension Date, Apprehension Type, State, County, TOA Current Duty AOR,
        Apprehension Final Program, Arresting Agency, Apprehension Method, Apprehension Criminality,
        Case Status, Case Category, Departure Country, Final Order Yes No, Birth Date, Birth Year,
        Citizenship Country, Gender, Departed Date, Final Order Date, Apprehension Site Landmark,
        Operation, TOA Current Duty Site, Case Criminality, Case Threat Level, Anonymized
        Identifier""",
    "arrests-2025-07": """Apprehension Date, Apprehension State, Apprehension County, Apprehension
        AOR, Final Program, Final Program Group, Apprehension Method, Apprehension Criminality, Case
        Status, Case Category, Departed Date, Departure Country, Final Order Yes No, Final Order
        Date, Birth Date, Birth Year, Citizenship Country, Gender, Apprehension Site Landmark, Alien
        File Number, EID Case ID, EID Subject ID, Unique Identifier""",
    "stints": """Stay Book In Date Time, Book In Date Time, Detention Facility, Book Out Date Time,
        Stay Book Out Date Time, Detention Release Reason, Stay Book Out Date, Stay Release Reason,
        Religion, Gender, Marital Status, Ethnicity, Birth Country, Citizenship Country, Entry
        Status, Known Terrorist Yes No, Suspected Gang Yes No, MSC Charge, MSC Sentence Days, MSC
        Sentence Months, MSC Sentence Years, MSC Charge Code, Aggravated Felon Yes No, Offense INA
        236C Yes No, Case INA 236C Yes No, Bond Posted Date, Bond Posted Amount, Case Status, Case
        Category, Final Order Yes No, Final Order Date, Case Threat Level, Detainee Classification,
        Final Charge, Departed Date, Departure Country, Initial Bond Set Amount, Initial Bond Set
        Date, Detention Facility Code, Birth Date, Birth Year, Book In Criminality, Race, Entry
        Date, Apprehension Final Program, MSC Charge Date, MSC Conviction Date, MSC Criminal Charge
        Status, MSC Criminal Charge Status Code, MSC Crime Class, Book In Site, Book In AOR,
        Anonymized Identifier""",
    "removals": """Departed Date, Port of Departure, Departure Country, Case AOR, State, County,
        Case Status, Gender, Birth Country, Citizenship Country, Birth Date, Birth Year, Entry Date,
        Entry Status, Known Terrorist Yes No, Suspected Gang Yes No, MSC Charge, MSC Charge Date,
        MSC Criminal Charge Status, MSC Charge Code, MSC Conviction Date, Case Criminality, Case
        Threat Level, Aggravated Felon Yes No, Processing Disposition, Case Category, Final Program,
        Final Program Code, Arresting Agency, TOA Case Category, Latest Apprehension Final Program,
        Latest Arresting Agency, Latest Apprehension Date, Final Order Yes No, Final Order Date,
        Final Charge Code, Final Charge Section, Prior Deport Yes No, Anonymized Identifier""",
    "detainers": """Detainer Prepare Date, Facility State, Facility AOR, Port of Departure,
        Departure Country, Departed Date, Case Status, Detainer Criminality, Detainer Facility,
        Detainer Facility Code, Facility City, Detainer Threat Level, Gender, Citizenship Country,
        Birth Country, Birth Date, Birth Year, Entry Status, MSC Charge, MSC Charge Code, MSC
        Conviction Date, Processing Disposition, Case Category, Apprehension Method, Final Order Yes
        No, Final Order Date, Apprehension Date, Entry Date, Detainer Lift Reason, Detainer Type,
        Anonymized Identifier""",
    "encounters-2025-07": """Event Date, Responsible AOR, Responsible Site, Lead Event Type, Lead
        Source, Event Type, Final Program, Final Program Group, Encounter Criminality, Processing
        Disposition, Case Status, Case Category, Departed Date, Departure Country, Final Order Yes
        No, Final Order Date, Birth Date, Birth Year, Citizenship Country, Gender, Event Landmark,
        Alien File Number, EID Case ID, EID Subject ID, Unique Identifier""",
}
EXPECTED_HEADERS = {name: [" ".join(h.split()) for h in text.split(",")]
                    for name, text in VERBATIM.items()}
# foia-formats.md: the 2012-2023 release heads the identifier `Unique Identifier` ("older"); its
# arrests, stints and removals otherwise read as the later layouts (the ingest catalogue's reading).
OLDER = {"arrests-2012-2023": "arrests-2026-03", "stints-2012-2023": "stints",
         "removals-2012-2023": "removals"}
EXPECTED_HEADERS |= {
    older: ["Unique Identifier" if h == "Anonymized Identifier" else h for h in EXPECTED_HEADERS[later]]
    for older, later in OLDER.items()}
REDACTIONS = {"b(6), b(7)c", "b(6), b(7)C"}
NOTICE = "SYNTHETIC DATA - generated by iceledger synth (seed {seed}); not real ICE records"
MARCH, JULY = "SYNTHETIC_2026-ICLI-00005_{}_FY23-FY26_20260311", "SYNTHETIC_2025-ICLI-00041_{}_FY24-FY25_20250728"
FY12_FY23 = "SYNTHETIC_2023-ICLI-00000_{}_FY12-FY23_20231001"
# foia-formats.md, "Published row counts": the 2012-2023 release covers Oct 2011 - Sep 2023.
OLDER_START, OLDER_CUT = datetime(2011, 10, 1), datetime(2023, 10, 1)


def _sha(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture(scope="module")
def xlsx_release(tmp_path_factory):
    out = tmp_path_factory.mktemp("xlsx")
    return out, write_synthetic_releases(out, 1500, seed=11, fmt="xlsx", sheet_rows=2000)


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    """A parquet release large enough to measure shapes (12,000 arrest rows)."""
    out = tmp_path_factory.mktemp("parquet")
    files = write_synthetic_releases(out, 12_000, seed=5, fmt="parquet")
    con = duckdb.connect()
    for f in files:
        con.execute(f"CREATE VIEW {f.dataset}_{f.release.replace('-', '_')} AS "
                    f"SELECT * FROM read_parquet('{f.path}')")
    return con, files


@pytest.fixture(scope="module")
def older_release(tmp_path_factory):
    """The 2012-2023 release alone, in xlsx (600 arrest rows over twelve years)."""
    out = tmp_path_factory.mktemp("older")
    return out, write_synthetic_releases(out, 600, seed=11, fmt="xlsx",
                                         releases=["2012-2023"])


def _sheets(path):
    book = CalamineWorkbook.from_path(str(path))
    return [(name, book.get_sheet_by_name(name).to_python()) for name in book.sheet_names]


# Layout ------------------------------------------------------------------------------------------

def test_file_names_follow_ice_pattern_with_synthetic_prefix(xlsx_release):
    _, files = xlsx_release
    names = sorted(f.path.name for f in files)
    assert names == sorted([MARCH.format(d) + ".xlsx" for d in
                            ("Arrests", "Detention-Stints", "Detainers", "Removals", "Encounters")]
                           + [JULY.format(d) + ".xlsx" for d in
                              ("Arrests", "Detention-Stints", "Detainers", "Removals",
                               "Encounters")])


def test_every_sheet_has_title_rows_then_verbatim_header(xlsx_release):
    _, files = xlsx_release
    for f in files:
        expected = EXPECTED_HEADERS[f.layout]
        for name, rows in _sheets(f.path):
            assert rows[0][0] == NOTICE.format(seed=11), (f.path.name, name)
            assert all(not any(cell for cell in row[1:]) for row in rows[:6])
            assert rows[5] == [""] * len(rows[5])  # the sixth title row is empty
            header = [h for h in rows[6] if h != ""]
            # Detainer files carry more Yes/No columns after the documented main fields.
            assert header[: len(expected)] == expected, (f.path.name, name)
            assert all(h.endswith("Yes No") for h in header[len(expected):])


def test_small_sheet_cap_splits_into_several_sheets_with_the_same_layout(xlsx_release):
    _, files = xlsx_release
    stints = next(f for f in files if f.dataset == "stints" and f.release == "2026-03")
    assert len(stints.rows_per_sheet) >= 3
    sheets = _sheets(stints.path)
    assert [len(rows) - 7 for _, rows in sheets] == stints.rows_per_sheet
    assert all(n <= 2000 for n in stints.rows_per_sheet)
    assert all(rows[6] == sheets[0][1][6] for _, rows in sheets)


def test_arrest_file_holds_exactly_scale_rows(xlsx_release):
    _, files = xlsx_release
    arrests = next(f for f in files if f.dataset == "arrests" and f.release == "2026-03")
    assert arrests.rows == 1500
    assert sum(len(rows) - 7 for _, rows in _sheets(arrests.path)) == 1500


def test_cells_are_typed_like_ices(xlsx_release):
    _, files = xlsx_release
    stints = next(f for f in files if f.dataset == "stints" and f.release == "2026-03")
    _, rows = _sheets(stints.path)[0]
    header, data = rows[6], rows[7:]
    col = {h: i for i, h in enumerate(header)}
    # A datetime cell; calamine reads one at 00:00 as a date (about one book-in in 1,440).
    book_ins = [r[col["Book In Date Time"]] for r in data]
    assert all(isinstance(v, date) for v in book_ins)
    assert sum(isinstance(v, datetime) for v in book_ins) > 0.99 * len(book_ins)
    assert {r[col["Suspected Gang Yes No"]] for r in data} <= {"YES", "NO"}
    assert {r[col["Gender"]] for r in data} <= {"Male", "Female", "Unknown"}
    assert {r[col["Book In Criminality"]] for r in data} <= {
        "1 Convicted Criminal", "2 Pending Criminal Charges", "3 Other Immigration Violator"}
    assert {r[col["Case Threat Level"]] for r in data} <= {1.0, 2.0, 3.0, ""}
    assert any(isinstance(r[col["Stay Book Out Date"]], date) for r in data)
    # openpyxl (another reader) sees the same typed cells.
    book = openpyxl.load_workbook(stints.path, read_only=True)
    first = next(book.worksheets[0].iter_rows(min_row=8, max_row=8, values_only=True))
    assert isinstance(first[0], datetime)


def test_redactions_in_some_cells_and_whole_columns(xlsx_release):
    _, files = xlsx_release
    arrests = next(f for f in files if f.layout == "arrests-2025-07")
    _, rows = _sheets(arrests.path)[0]
    col = {h: i for i, h in enumerate(rows[6])}
    data = rows[7:]
    for whole in ("Birth Date", "Alien File Number", "EID Case ID", "EID Subject ID"):
        assert {r[col[whole]] for r in data} <= REDACTIONS
    landmarks = [r[col["Apprehension Site Landmark"]] for r in data]
    redacted = sum(v in REDACTIONS for v in landmarks)
    assert 0.15 * len(data) < redacted < 0.45 * len(data)


def test_same_seed_gives_byte_identical_files_other_seed_differs(tmp_path):
    a = generate_release(tmp_path / "a", 300, seed=3, fmt="xlsx", sheet_rows=500)
    b = generate_release(tmp_path / "b", 300, seed=3, fmt="xlsx", sheet_rows=500)
    assert [p.name for p in a] == [p.name for p in b]
    assert [_sha(p) for p in a] == [_sha(p) for p in b]
    other = write_synthetic_releases(tmp_path / "c", 300, seed=4, datasets=["arrests"])
    assert _sha(other[0].path) != _sha(a[0])
    csv_a = write_synthetic_releases(tmp_path / "d", 300, seed=3, fmt="csv", datasets=["stints"])
    csv_b = write_synthetic_releases(tmp_path / "e", 300, seed=3, fmt="csv", datasets=["stints"])
    assert [_sha(f.path) for f in csv_a] == [_sha(f.path) for f in csv_b]


def test_formats_hold_the_same_records(tmp_path):
    xlsx = write_synthetic_releases(tmp_path / "x", 400, seed=9, fmt="xlsx", datasets=["arrests"])
    parquet = write_synthetic_releases(tmp_path / "p", 400, seed=9, fmt="parquet",
                                       datasets=["arrests"])
    csv = write_synthetic_releases(tmp_path / "c", 400, seed=9, fmt="csv", datasets=["arrests"])
    for x, p, c in zip(xlsx, parquet, csv):
        table = pq.read_table(p.path)
        assert table.column_names == EXPECTED_HEADERS[x.layout]
        assert x.rows == p.rows == c.rows == table.num_rows
        rows = _sheets(x.path)[0][1][7:]
        ids = [r[-1] or None for r in rows]
        assert ids == table.column(table.num_columns - 1).to_pylist()
        assert [_as_datetime(r[0]) for r in rows] == table.column(0).to_pylist()
        header = c.path.read_text().splitlines()[0]
        assert header == ",".join(f'"{h}"' for h in EXPECTED_HEADERS[x.layout])


def test_synthetic_label_in_workbook_and_parquet_metadata(xlsx_release, world):
    _, files = xlsx_release
    book = openpyxl.load_workbook(files[0].path, read_only=True)
    assert book.properties.title == NOTICE.format(seed=11)
    _, parquet_files = world
    metadata = pq.read_schema(parquet_files[0].path).metadata
    assert metadata[b"iceledger"].decode() == NOTICE.format(seed=5)


# The 2012-2023 release ----------------------------------------------------------------------------

def test_2012_2023_release_is_written_only_when_named_with_its_era_file_names(older_release):
    _, files = older_release
    assert sorted(f.path.name for f in files) == sorted(
        FY12_FY23.format(d) + ".xlsx" for d in ("Arrests", "Detention-Stints", "Removals"))
    assert {f.layout for f in files} == set(OLDER)
    assert all(f.release == "2012-2023" for f in files)
    assert files[0].rows == 600  # the latest (only) release written holds `scale` arrest rows


def test_2012_2023_sheets_have_five_synthetic_title_rows_then_unique_identifier(older_release):
    _, files = older_release
    for f in files:
        for name, rows in _sheets(f.path):
            assert rows[0][0] == NOTICE.format(seed=11), (f.path.name, name)
            assert all(row[0] and not any(row[1:]) for row in rows[:5])
            assert [h for h in rows[5] if h != ""] == EXPECTED_HEADERS[f.layout]
            assert rows[5][-1] == "Unique Identifier"
        book = openpyxl.load_workbook(f.path, read_only=True)
        assert book.properties.title == NOTICE.format(seed=11)


def _as_datetime(value):
    """calamine reads a datetime cell at midnight as a date."""
    return value if isinstance(value, datetime) else datetime(value.year, value.month, value.day)


def _moments(path, header):
    """A date column's filled cells as datetimes."""
    values = []
    for _, rows in _sheets(path):
        index = rows[5].index(header)
        values += [r[index] for r in rows[6:] if r[index] != ""]
    return [_as_datetime(v) for v in values]


def test_2012_2023_dates_lie_inside_the_release_window(older_release):
    _, files = older_release
    by_dataset = {f.dataset: f for f in files}
    arrests = _moments(by_dataset["arrests"].path, "Apprehension Date")
    departed = _moments(by_dataset["removals"].path, "Departed Date")
    book_in = _moments(by_dataset["stints"].path, "Book In Date Time")
    book_out = _moments(by_dataset["stints"].path, "Book Out Date Time")
    assert len(arrests) == 600 and len(departed) == by_dataset["removals"].rows
    assert all(OLDER_START <= v < OLDER_CUT for v in arrests + departed + book_out)
    assert all(v < OLDER_CUT for v in book_in)
    # Spread over the twelve years, not bunched at one end.
    assert {v.year for v in arrests} == set(range(2011, 2024))
    assert 0 < len(book_out) < len(book_in)  # some stays are still open at the cut


def test_2012_2023_release_is_reproducible_for_a_seed(tmp_path, older_release):
    _, files = older_release
    again = write_synthetic_releases(tmp_path / "again", 600, seed=11, fmt="xlsx",
                                     releases=["2012-2023"])
    assert [_sha(f.path) for f in again] == [_sha(f.path) for f in files]
    other = write_synthetic_releases(tmp_path / "other", 600, seed=12, fmt="xlsx",
                                     releases=["2012-2023"], datasets=["arrests"])
    assert _sha(other[0].path) != _sha(files[0].path)


def test_2012_2023_proportions_follow_that_release(tmp_path):
    files = write_synthetic_releases(tmp_path, 3000, seed=2, fmt="parquet",
                                     releases=["2012-2023"])
    rows = {f.dataset: f.rows for f in files}
    # Published: 1.8M arrests, 8.5M stints, 2.8M removals. One border book-in rate cannot meet
    # both ratios; the model misses each by about 10% (synth_model.toml, border_per_day).
    assert rows["stints"] / rows["arrests"] == pytest.approx(8.5 / 1.8, rel=0.15)
    assert rows["removals"] / rows["arrests"] == pytest.approx(2.8 / 1.8, rel=0.15)
    ids = {f.dataset: set(pq.read_table(f.path).column("Unique Identifier").to_pylist()) - {None}
           for f in files}
    assert len(ids["arrests"] & ids["stints"]) > 0.5 * len(ids["arrests"])


def test_three_releases_written_together_share_one_world(tmp_path):
    files = write_synthetic_releases(tmp_path, 500, seed=6, fmt="parquet", datasets=["arrests"],
                                     releases=["2012-2023", "2025-07", "2026-03"])
    tables = {f.release: pq.read_table(f.path) for f in files}
    assert tables["2026-03"].num_rows == 500  # `scale` counts the latest release's arrests
    # Twelve years at ~410 arrests a day outnumber 2.5 years at 280-1,220.
    assert tables["2012-2023"].num_rows > 2 * tables["2026-03"].num_rows
    dates = tables["2012-2023"].column("Apprehension Date").to_pylist()
    assert OLDER_START <= min(dates) and max(dates) < OLDER_CUT
    ids = {r: {i for i in t.column(t.num_columns - 1).to_pylist() if i}
           for r, t in tables.items()}
    assert not ids["2012-2023"] & (ids["2025-07"] | ids["2026-03"])


def test_a_layout_takes_its_headers_and_their_order_from_the_ingest_layout():
    from iceledger.synth.releases import _raw_columns

    ingest = {"later": ("A", "B"), "older": ("A", "C"), "short": ("A",)}
    layouts = {
        "later": {"dataset": "arrests", "ingest": "later",
                  "fill": [{"header": "B", "blank": True}, {"header": "A", "field": "gender"}],
                  "extra_columns": [{"header": "X", "blank": True}]},
        "older": {"dataset": "arrests", "ingest": "older", "fill_like": "later"},
        "unfilled": {"dataset": "arrests", "ingest": "later",
                     "fill": [{"header": "A", "field": "gender"}]},
        "unknown": {"dataset": "arrests", "ingest": "short",
                    "fill": [{"header": "A", "field": "gender"}, {"header": "Z", "blank": True}]},
        "other": {"dataset": "stints", "ingest": "older", "fill_like": "later"},
        "shorter": {"dataset": "arrests", "ingest": "short", "fill_like": "later"},
        "nowhere": {"dataset": "arrests", "ingest": "gone", "fill": []},
    }
    assert _raw_columns(layouts, "later", ingest) == [
        {"header": "A", "field": "gender"}, {"header": "B", "blank": True},
        {"header": "X", "blank": True}]
    # Filled like `later`, header for header, under its own ingest layout's (renamed) headers.
    assert _raw_columns(layouts, "older", ingest) == [{"header": "A", "field": "gender"},
                                                      {"header": "C", "blank": True}]
    for name, problem in (("unfilled", r"without a fill: \['B'\]"),
                          ("unknown", r"does not have: \['Z'\]"),
                          ("other", "no stints layout"), ("shorter", "has 1 headers"),
                          ("nowhere", "ingest names no layout")):
        with pytest.raises(ValueError, match=problem):
            _raw_columns(layouts, name, ingest)


def test_every_synthetic_layout_writes_its_ingest_layouts_headers_in_order():
    from iceledger.sources.foia.layouts import catalog
    from iceledger.synth.releases import load_catalogue

    ingest = {layout.name: layout.headers for layout in catalog().layouts}
    raw = tomllib.loads(data_file("synth_layouts.toml").read_text("utf-8"))["layouts"]
    for name, layout in load_catalogue().layouts.items():
        extras = len(raw[name].get("extra_columns", ()))
        headers = [c.header for c in layout.columns]
        assert tuple(headers[:len(headers) - extras]) == ingest[raw[name]["ingest"]], name


def test_cli_writes_the_2012_2023_release_when_named(tmp_path):
    result = CliRunner().invoke(app, ["synth", "--scale", "40", "--out", str(tmp_path),
                                      "--format", "csv", "--release", "2012-2023",
                                      "--dataset", "removals"])
    assert result.exit_code == 0, result.output
    assert "SYNTHETIC" in result.output and "2012-2023" in result.output
    assert [p.name for p in tmp_path.iterdir()] == [FY12_FY23.format("Removals") + ".csv"]
    header = (tmp_path / (FY12_FY23.format("Removals") + ".csv")).read_text().splitlines()[0]
    assert header == ",".join(f'"{h}"' for h in EXPECTED_HEADERS["removals-2012-2023"])


# Shape ------------------------------------------------------------------------------------------

def _per_day(con, start, end):
    return con.execute(
        "SELECT count(*) / (date_diff('day', ?::DATE, ?::DATE)) FROM arrests_2026_03 "
        'WHERE "Apprehension Date" >= ?::DATE AND "Apprehension Date" < ?::DATE',
        [start, end, start, end]).fetchone()[0]


def test_arrests_per_day_rise_after_inauguration_and_again_after_may_21(world):
    con, _ = world
    base = _per_day(con, "2024-01-01", "2025-01-01")
    spring = _per_day(con, "2025-02-01", "2025-05-01")
    june = _per_day(con, "2025-06-01", "2025-07-01")
    assert 1.8 < spring / base < 2.8  # ~300/day -> ~600-750/day
    assert june / base > 3.3  # >1,000/day


def _share(con, condition, start, end):
    return con.execute(
        f"SELECT avg(({condition})::INT) FROM arrests_2026_03 "
        'WHERE "Apprehension Date" >= ?::DATE AND "Apprehension Date" < ?::DATE',
        [start, end]).fetchone()[0]


def test_criminality_shifts_toward_no_record_and_at_large_rises(world):
    con, _ = world
    no_record = '"Apprehension Criminality" = \'3 Other Immigration Violator\''
    assert _share(con, no_record, "2025-04-20", "2025-05-15") < 0.3  # ~21% early May 2025
    assert _share(con, no_record, "2025-06-05", "2025-07-05") > 0.4  # ~47% June 2025
    at_large = "\"Apprehension Method\" IN ('Located', 'Non-Custodial Arrest', " \
               "'Worksite Enforcement')"
    assert _share(con, at_large, "2025-06-15", "2025-09-01") > _share(
        con, at_large, "2024-01-01", "2025-01-01") + 0.1


def test_dataset_proportions_follow_the_july_2025_release(world):
    _, files = world
    rows = {f.dataset: f.rows for f in files if f.release == "2025-07"}
    ratio = {d: rows[d] / rows["arrests"] for d in rows}
    # Published: 1.32M stints, 1.36M encounters, 528K removals, 339K detainers, 292K arrests.
    assert ratio["stints"] == pytest.approx(4.52, rel=0.15)
    assert ratio["encounters"] == pytest.approx(4.66, rel=0.15)
    assert ratio["removals"] == pytest.approx(1.81, rel=0.15)
    assert ratio["detainers"] == pytest.approx(1.16, rel=0.15)


def test_all_field_offices_appear_and_resolve(world):
    con, _ = world
    names = [r[0] for r in con.execute(
        'SELECT DISTINCT "TOA Current Duty AOR" FROM arrests_2026_03').fetchall()]
    assert len({normalise_aor(n).code for n in names}) == 25


# People and linkage -----------------------------------------------------------------------------

def test_every_removal_of_a_detained_person_matches_a_stay_book_out(world):
    con, _ = world
    for release in ("2026_03", "2025_07"):
        detained, matched = con.execute(f"""
            SELECT count(*), count(*) FILTER (WHERE EXISTS (
                SELECT 1 FROM stints_{release} s WHERE s."Anonymized Identifier" = r."Anonymized Identifier"
                  AND CAST(s."Stay Book Out Date Time" AS DATE) = r."Departed Date"))
            FROM removals_{release} r
            WHERE EXISTS (SELECT 1 FROM stints_{release} s
                          WHERE s."Anonymized Identifier" = r."Anonymized Identifier")""").fetchone()
        assert detained > 100 and matched == detained


def test_stints_chain_into_stays_with_transfers():
    model = load_model()
    plan = Plan.make(model, 8, 3000, date(2023, 9, 1), date(2026, 3, 11))
    first, end = plan.months()[20]
    month = Month(model, plan, 20, first, end)
    stay = month.stint_stay
    same_stay = stay[1:] == stay[:-1]
    assert np.array_equal(month.stint_book_out[:-1][same_stay], month.stint_book_in[1:][same_stay])
    counts = np.bincount(stay)
    assert counts.min() >= 1 and counts.max() <= 4 and counts.mean() > 1.8
    assert np.array_equal(month.stint_book_in[np.r_[0, np.flatnonzero(~same_stay) + 1]],
                          month.stay_book_in)
    assert np.array_equal(month.stint_book_out[month.stint_is_last], month.stay_book_out)
    assert (month.stint_book_out >= month.stint_book_in).all()
    same_day = (month.stint_book_out[:-1][same_stay] // 86_400
                == month.stint_book_in[:-1][same_stay] // 86_400)
    assert same_day.any()  # transfers on the day of book-in happen
    assert not (month.stint_facility[1:] == month.stint_facility[:-1])[same_stay].any()


def test_arrests_lead_to_stays_within_minus_5_to_plus_10_days(world):
    con, _ = world
    linked = con.execute("""
        SELECT avg((EXISTS (SELECT 1 FROM stints_2026_03 s
                    WHERE s."Anonymized Identifier" = a."Anonymized Identifier"
                      AND s."Stay Book In Date Time" BETWEEN a."Apprehension Date" - INTERVAL 5 DAY
                                                     AND a."Apprehension Date" + INTERVAL 10 DAY))::INT)
        FROM arrests_2026_03 a WHERE "Anonymized Identifier" IS NOT NULL""").fetchone()[0]
    assert 0.75 < linked < 0.95


def test_repeat_arrests_within_24_hours_at_a_few_percent(world):
    con, _ = world
    repeats, rows, missing = con.execute("""
        SELECT count(*) FILTER (WHERE gap IS NOT NULL AND gap < INTERVAL 24 HOUR),
               count(*), count(*) FILTER (WHERE "Anonymized Identifier" IS NULL)
        FROM (SELECT *, "Apprehension Date" - lag("Apprehension Date") OVER (
                  PARTITION BY "Anonymized Identifier" ORDER BY "Apprehension Date") AS gap
              FROM arrests_2026_03)""").fetchone()
    assert 0.015 < repeats / rows < 0.06
    assert 0 < missing / rows < 0.01  # a few rows carry no identifier
    reprocessed = con.execute("""SELECT count(*) FROM arrests_2026_03
        WHERE "Apprehension Method" = 'ERO Reprocessed Arrest'""").fetchone()[0]
    assert reprocessed > 0


def test_open_stays_at_the_release_date_have_no_book_out(world):
    con, _ = world
    # A release holds the events of its release date too (the last day it covers), none after.
    for release, through in (("2026_03", "2026-03-11"), ("2025_07", "2025-07-28")):
        after = datetime.fromisoformat(through) + timedelta(days=1)
        open_rows, bad = con.execute(f"""
            SELECT count(*), count(*) FILTER (WHERE "Stay Release Reason" IS NOT NULL
                                              OR "Stay Book In Date Time" >= ?)
            FROM stints_{release} WHERE "Stay Book Out Date Time" IS NULL""", [after]).fetchone()
        assert open_rows > 0 and bad == 0
        latest = con.execute(f'SELECT max("Stay Book Out Date Time") FROM stints_{release}'
                             ).fetchone()[0]
        assert datetime.fromisoformat(through) <= latest < after


def test_identifiers_link_within_a_release_never_across(world):
    con, _ = world
    shared = con.execute("""SELECT count(*) FROM (
        SELECT "Anonymized Identifier" FROM arrests_2026_03 WHERE "Anonymized Identifier" NOT NULL
        INTERSECT SELECT "Unique Identifier" FROM arrests_2025_07)""").fetchone()[0]
    assert shared == 0
    within = con.execute("""SELECT count(DISTINCT a."Anonymized Identifier") FROM arrests_2026_03 a
        JOIN encounters_2026_03 e ON e."Unique Identifier" = a."Anonymized Identifier"
        """).fetchone()[0]
    assert within > 1000


# Command line and errors ------------------------------------------------------------------------

def test_cli_prints_a_synthetic_summary(tmp_path):
    result = CliRunner().invoke(app, ["synth", "--scale", "50", "--out", str(tmp_path),
                                      "--format", "csv", "--dataset", "arrests"])
    assert result.exit_code == 0, result.output
    assert "SYNTHETIC" in result.output and "2026-03" in result.output
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        JULY.format("Arrests") + ".csv", MARCH.format("Arrests") + ".csv"]


@pytest.mark.parametrize("extra", [
    ["--scale", "0"],
    ["--scale", "5", "--format", "ods"],
    ["--scale", "5", "--format", "csv", "--sheet-rows", "10"],
    ["--scale", "5", "--release", "1999-01"],
    ["--scale", "5", "--dataset", "parole"],
])
def test_cli_bad_options_give_one_line_and_exit_1(tmp_path, extra):
    result = CliRunner().invoke(app, ["synth", "--out", str(tmp_path), *extra])
    assert result.exit_code == 1
    assert "error:" in result.output and "Traceback" not in result.output
    assert list(tmp_path.iterdir()) == []


def test_api_rejects_bad_scale_and_unwritable_folder(tmp_path):
    with pytest.raises(IceledgerError, match="scale"):
        write_synthetic_releases(tmp_path, 0)
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    with pytest.raises(IceledgerError, match="a-file"):
        write_synthetic_releases(blocker / "out", 10)


# The xlsx writer on its own ---------------------------------------------------------------------

texts = st.text(st.characters(codec="utf-8", exclude_categories=("Cs", "Cc", "Cn")), max_size=12)


@settings(max_examples=25, deadline=None)
@given(labels=st.lists(texts, min_size=1, max_size=5, unique=True),
       data=st.data(), n=st.integers(1, 40), cap=st.integers(1, 15))
def test_xlsx_writer_round_trips_through_calamine(tmp_path_factory, labels, data, n, cap):
    codes = np.array(data.draw(st.lists(st.integers(-1, len(labels) - 1), min_size=n,
                                        max_size=n)))
    numbers = np.array(data.draw(st.lists(st.integers(0, 10**9), min_size=n, max_size=n)))
    minutes = np.array(data.draw(st.lists(st.integers(0, 60 * 24 * 365 * 60), min_size=n,
                                          max_size=n)))
    seconds = minutes * 60 + 10**9
    empty = numbers % 7 == 0
    ids = np.array([f"ID{i:06d}".encode() for i in range(n)])
    path = tmp_path_factory.mktemp("w") / "t.xlsx"
    writer = XlsxWriter(path, ["L", "N", "T", "D", "I"], ["SYNTHETIC", "", ""],
                        max_data_rows=cap, document_title="SYNTHETIC")
    writer.write([Labels(codes, tuple(labels)), Numbers(numbers, empty), Moments(seconds, empty),
                  Moments(seconds, None, True), Codes(ids, empty)])
    rows_per_sheet = writer.close()
    assert rows_per_sheet == [min(cap, n - i) for i in range(0, n, cap)]
    read = [row for _, rows in _sheets(path) for row in rows[4:]]
    for i in range(n):
        row = (read[i] + [""] * 5)[:5]
        label = labels[codes[i]] if codes[i] >= 0 else ""
        assert row[0] == label
        assert row[1] == ("" if empty[i] else float(numbers[i]))
        moment = datetime(1970, 1, 1) + timedelta(seconds=int(seconds[i]))
        assert row[2] == ("" if empty[i] else moment)
        assert row[3] == moment.date()
        assert row[4] == ("" if empty[i] else ids[i].decode())


def test_arrow_file_closes_when_its_last_block_was_already_written(tmp_path, monkeypatch):
    # A file whose rows end exactly on a block boundary has nothing pending at close.
    import pyarrow as pa
    import pyarrow.parquet as pq

    from iceledger.synth import releases as foia_synth

    class _Column:
        def __init__(self, values):
            self.values = values

        def to_arrow(self):
            return pa.array(self.values)

    monkeypatch.setattr(foia_synth, "_ARROW_BLOCK_ROWS", 2)
    path = tmp_path / "SYNTHETIC_x.parquet"
    out = foia_synth._ArrowFile(path, ["Event Date"], "parquet", "SYNTHETIC")
    out.write([_Column([1, 2])])
    assert out.close() == [2]
    assert pq.read_table(path).num_rows == 2


def test_human_cost_fields_children_families_citizens_rearrests():
    model = load_model()
    plan = Plan.make(model, 8, 30_000, date(2023, 9, 1), date(2026, 3, 11))
    first, end = plan.months()[20]
    month = Month(model, plan, 20, first, end)
    # A few people are recorded as U.S. citizens; their own country is kept for everything else.
    us = month.recorded_citizenship == len(model.countries)
    assert 0 < us.sum() < 0.01 * month.n_people
    assert (month.recorded_citizenship[~us] == month.country[~us]).all()
    # Family units: a placement in a family facility, and children among them.
    family_stints = np.isin(month.stint_facility, model.family_facilities)
    assert family_stints.any()
    family_people = month.stay_person[month.stint_stay[family_stints]]
    age = 1970 + month.first_seen[family_people] / (86_400 * 365.2425) - month.birth_year[
        family_people]
    assert (age < 18).any() and (age >= 18).any()
    # Re-arrests: the same person arrested again more than 24 hours later.
    order = np.lexsort((month.arrest_time, month.arrest_person))
    person, when = month.arrest_person[order], month.arrest_time[order]
    again = person[1:] == person[:-1]
    gaps = (when[1:] - when[:-1])[again]
    assert (gaps > 14 * 86_400 - 60).any() and (gaps < 86_400).any()
    # Some arrest rows carry a birth year one off the person's.
    off = month.arrest_birth_year - month.birth_year[month.arrest_person]
    assert set(np.unique(off)) <= {-1, 0, 1} and (off != 0).any()
