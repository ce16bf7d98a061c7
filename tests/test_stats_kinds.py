"""Table kinds the shared workbooks lack, laid out as ICE lays their sibling tables.

ICE's workbooks outside ../shared carry tables the 34 shared ones do not: pending ICLOS data
(the ICLOS sheet's half-month layout for those whose fear claim is still pending) and an average
length of stay by USCIS fear decision. Each case adds such a table to a copy of a real workbook,
in ICE's wording and then re-spelled, and asserts the keys, the snapshot dates and that every
added figure lands in the tidy table, none in stats_unrecognised and none lost.
"""

from __future__ import annotations

from datetime import date

import pytest
from test_stats_snapshots import MARCH, _copy, _rows, shared  # noqa: F401 - `shared` is a fixture

from iceledger.sources.stats.parse import parse_workbook
from iceledger.tables import STATS_UNRECOGNISED

# The snapshot of every MARCH table these cases add: its footnotes date the ICLOS sheet's data
# and the detention sheet's through 2022-03-12.
SNAPSHOT = {(2022, date(2022, 3, 12), "footnote")}


def _snapshots(rows: list[dict]) -> set[tuple]:
    return {(r["fiscal_year"], r["snapshot_date"], r["as_of_source"]) for r in rows}


def _pending_sheet(name: str, iclos_caption: str, detainees_caption: str,
                   population_header: str = "Population"):
    """A copy of the workbook's ICLOS sheet as a sheet of pending cases, captions replaced."""

    def change(book):
        source = book[" ICLOS and Detainees"]
        target = book.create_sheet(name)
        for row in source.iter_rows():
            for cell in row:
                value = cell.value
                if isinstance(value, str):
                    value = {"Average In Custody Length of Stay (ICLOS)": iclos_caption,
                             "Detainees": detainees_caption,
                             "Population": population_header}.get(value.strip(), value)
                if value is not None:
                    target.cell(cell.row, cell.column, value)

    return change


@pytest.mark.parametrize(("sheet", "iclos_caption", "detainees_caption", "header"), [
    ("Pending ICLOS Data",
     "Average In Custody Length of Stay (ICLOS) of Individuals Pending a Fear Determination",
     "Detainees Pending a Fear Determination", "Population"),
    ("ICLOS Pending", "Pending Fear Claims: In-Custody Length of Stay",
     "Pending Fear Claims: Detainees", "Population Group"),
])
def test_pending_iclos_data_become_tidy_tables(shared, tmp_path, sheet, iclos_caption,
                                               detainees_caption, header):
    copy = _copy(shared / MARCH, tmp_path / "FY22_detentionStats03172022.xlsx",
                 _pending_sheet(sheet, iclos_caption, detainees_caption, header))
    parsed, original = parse_workbook(copy), parse_workbook(shared / MARCH)
    assert not parsed.errors and not parsed.quarantined
    for pending, printed, value in (("stats_iclos_pending", "stats_iclos", "iclos_days"),
                                    ("stats_iclos_pending_detainees", "stats_iclos_detainees",
                                     "detainees")):
        keys = [k for k in ("iclos_population", "stay_length", "month", "point", value)
                if k in original.tables[printed].column_names]
        got = _rows(parsed, pending)
        assert {r["sheet"] for r in got} == {sheet}
        # The same figures, in the same cells, under the same populations, months and points.
        assert [(r["cell_range"], *(r[k] for k in keys)) for r in got] == \
            [(r["cell_range"], *(r[k] for k in keys)) for r in _rows(original, printed)] != []
        assert _snapshots(got) == SNAPSHOT
    unrecognised = parsed.tables.get(STATS_UNRECOGNISED)
    assert unrecognised is None or sheet not in unrecognised.column("sheet").to_pylist()
    added = (original.tables["stats_iclos"].num_rows
             + original.tables["stats_iclos_detainees"].num_rows)
    assert parsed.rows_loaded == original.rows_loaded + added
    assert parsed.rows_read == parsed.rows_loaded


def _fear_table(caption: str, header: str, facility_types: list[str],
                rows: list[tuple[str, list[float]]]):
    """A table beside the detention sheet's fear tables (columns R on, rows 8 on, free there)."""

    def change(book):
        sheet = book["Detention FY22"]
        sheet.cell(8, 18, caption)
        for column, label in enumerate([header, *facility_types], start=18):
            sheet.cell(9, column, label)
        for row, (label, values) in enumerate(rows, start=10):
            sheet.cell(row, 18, label)
            for column, value in enumerate(values, start=19):
                sheet.cell(row, column, value)

    return change


@pytest.mark.parametrize(("caption", "header", "facility_types", "labels", "expected"), [
    ("Average Length of Stay (In Days) of Aliens with USCIS-Established Fear Decisions by Fear "
     "Decision and Facility Type: FY2022", "Fear Decision", ["FSC", "Adult", "Total"],
     ["Total", "Positive", "Negative"], ["Total", "Positive", "Negative"]),
    # Re-spelled, with the family facilities under both their names (an extra column).
    ("Credible Fear Determinations: ALOS (Days) by Determination and Detention Facility Type",
     "USCIS Credible Fear Determination", ["FRC", "FSC", "Adult", "Total"],
     ["Grand Total", "Positive Fear", "Negative Determination"],
     ["Total", "Positive", "Negative"]),
])
def test_length_of_stay_by_fear_decision_becomes_a_tidy_table(shared, tmp_path, caption, header,
                                                              facility_types, labels, expected):
    figures = [[10.0 * row + column + 0.5 for column in range(len(facility_types))]
               for row in range(len(labels))]
    copy = _copy(shared / MARCH, tmp_path / "FY22_detentionStats03172022.xlsx",
                 _fear_table(caption, header, facility_types, list(zip(labels, figures))))
    parsed, original = parse_workbook(copy), parse_workbook(shared / MARCH)
    assert not parsed.errors and not parsed.quarantined
    got = _rows(parsed, "stats_fear_decision_alos")
    columns = "STUV"[:len(facility_types)]
    assert [(r["fear_decision"], r["facility_type"], r["alos_days"], r["cell_range"])
            for r in got] == [
        (decision, facility_type, value, f"{column}{row}")
        for row, (decision, values) in enumerate(zip(expected, figures), start=10)
        for facility_type, value, column in zip(facility_types, values, columns)]
    assert _snapshots(got) == SNAPSHOT
    assert parsed.rows_loaded == original.rows_loaded + len(labels) * len(facility_types)
    assert parsed.rows_read == parsed.rows_loaded
    # The fear tables beside it read as before.
    for table in ("stats_fear_decision_days", "stats_fear_decisions_detained"):
        assert _rows(parsed, table) != [] and len(_rows(parsed, table)) == \
            len(_rows(original, table))


def test_a_known_table_with_an_unknown_column_loses_no_figure(shared, tmp_path):
    """A column the layout does not know refuses the table with one error naming its cell; its
    figures are kept as printed in stats_unrecognised instead of vanishing with the error."""
    facility_types = ["FSC", "Adult", "Percent Adult", "Total"]
    labels = ["Total", "Positive", "Negative"]
    figures = [[10.0 * row + column + 0.5 for column in range(len(facility_types))]
               for row in range(len(labels))]
    copy = _copy(shared / MARCH, tmp_path / "FY22_detentionStats03172022.xlsx",
                 _fear_table("Average Length of Stay (In Days) by Fear Decision and Facility "
                             "Type: FY2022", "Fear Decision", facility_types,
                             list(zip(labels, figures))))
    parsed, original = parse_workbook(copy), parse_workbook(shared / MARCH)
    (error,) = parsed.errors
    assert "Detention FY22" in str(error) and "Percent Adult" in str(error)
    assert "stats_fear_decision_alos" not in parsed.tables
    kept = [r for r in _rows(parsed, STATS_UNRECOGNISED) if r["sheet"] == "Detention FY22"]
    assert sorted(r["value"] for r in kept) == sorted(v for row in figures for v in row)
    assert parsed.rows_loaded == original.rows_loaded + len(labels) * len(facility_types)
