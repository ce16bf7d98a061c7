"""ICE productions re-shaped as real ones come: headers joined or annotated otherwise, sheets
of definitions beside the records, files a folder holds in formats iceledger cannot read,
field offices written otherwise, hidden sheets, the header repeated among the records; and the
real UW v. DHS production re-saved in those shapes (skipped when shared is absent).

Fixtures are SCRATCH test data in the shape of the UW v. DHS production, not real records.
"""

from __future__ import annotations

from datetime import date, datetime

from test_foia_productions import ARREST_HEADERS, arrest, ingest, query, write_production


def test_headers_joined_or_annotated_otherwise_are_read_by_the_vocabulary(tmp_path):
    spelled = ["Apprehension Date And Time ", "DATE OF\nBIRTH", " gender",
               "Country of Citizenship (COC)", "Event  Number", "Apprehension Landmark",
               "Arrest Method", "Most Serious Conviction"]
    rows = [{spelled[i]: value for i, value in enumerate(arrest(date(2019, 10, 1)).values())}]
    path = write_production(tmp_path / "spelled.xlsx", {"Arrests": (spelled, rows)})
    db = tmp_path / "w.duckdb"
    outcome = ingest([path], db).files[0]
    assert outcome.status == "loaded", outcome.error
    assert query(db, "SELECT apprehension_date, gender, citizenship_country, redacted, extras "
                     "FROM foia_arrests") == [
        (datetime(2019, 10, 1), "Male", "MEXICO", ["birth_date", "event_number"], {})]


def test_a_data_dictionary_sheet_is_notes_not_a_sheet_of_records(tmp_path):
    path = write_production(tmp_path / "dictionary.xlsx", {
        "Arrests": (ARREST_HEADERS, [arrest(date(2019, 10, 1))]),
        "Data Dictionary": (["Field Name", "Definition", "Data Type"],
                            [{"Field Name": h, "Definition": f"the {h}", "Data Type": "Text"}
                             for h in ARREST_HEADERS])})
    db = tmp_path / "w.duckdb"
    outcome = ingest([path], db).files[0]
    assert outcome.status == "loaded", outcome.error
    assert query(db, "SELECT count(*) FROM foia_arrests") == [(1,)]
    assert query(db, "SELECT count(*) FROM foia_release_notes "
                     "WHERE sheet = 'Data Dictionary'")[0][0] > len(ARREST_HEADERS)


def test_field_offices_written_with_words_around_their_names_are_found(tmp_path):
    spellings = {"Los Angeles Field Office": "LOS", "LOS ANGELES AREA OF RESPONSIBILITY": "LOS",
                 "LOS": "LOS", "NYC": "NYC", "ERO New York City": "NYC", "St. Paul AOR": "SPM",
                 "Los Angeles Field Office (LOS)": "LOS", "Field Office": None,
                 "Los Angeles Fieldoffice": None}
    lines = ["Apprehension Date,Apprehension AOR,Gender,Apprehension Method"]
    lines += [f"2024-01-0{i + 1},{text},Male,Located" for i, text in enumerate(spellings)]
    path = tmp_path / "aors.csv"
    path.write_text("\n".join(lines) + "\n")
    db = tmp_path / "w.duckdb"
    outcome = ingest([path], db, release="2024-02-01").files[0]
    assert outcome.status == "loaded", outcome.error
    assert [code for (code,) in query(db, "SELECT aor_code FROM foia_arrests ORDER BY source_row")
            ] == list(spellings.values())
    assert query(db, "SELECT unparsed FROM foia_arrests WHERE aor_code IS NULL") == [
        (["aor=Field Office"],), (["aor=Los Angeles Fieldoffice"],)]
