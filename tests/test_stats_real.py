"""The parser on the 34 real ICE workbooks, and its agreement with the Deportation Data Project.

Reads the shared data through the conftest fixtures, which skip when it is absent.
"""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest

from iceledger.sources.stats.ddp_compare import compare, our_tables_from_parses
from iceledger.sources.stats.parse import parse_workbook

DIFFERENCES_DOC = Path(__file__).resolve().parents[1] / "docs" / "ddp-differences.md"
CORE_TABLES = {"stats_detained_now", "stats_book_ins", "stats_adp", "stats_alos",
               "stats_facilities", "stats_atd_aor", "stats_workbooks"}


@pytest.fixture(scope="module")
def parses(stats_workbooks):
    return [parse_workbook(path) for path in stats_workbooks]


@pytest.fixture(scope="module")
def by_name(parses):
    return {p.workbook: p for p in parses}


@pytest.fixture(scope="module")
def comparison(parses, ddp_reference):
    return compare(our_tables_from_parses(parses), ddp_reference)


def test_all_34_workbooks_parse_without_an_error(parses):
    assert len(parses) == 34
    assert [str(e) for p in parses for e in p.errors] == []
    for p in parses:
        assert CORE_TABLES <= set(p.tables), p.workbook
        assert p.rows_read == p.rows_loaded + len(p.quarantined), p.workbook
        assert p.as_of_date is not None and p.fiscal_year is not None, p.workbook


def test_published_figures_read_as_printed(by_name):
    # docs/facts.md: "59,762 in the workbook dated 2025-09-24 (ICE 46,015, CBP 13,747;
    # 17,007 convicted, 15,009 pending charges)".
    parsed = by_name["FY25_detentionStats09242025.xlsx"]
    detained = {(r["agency"], r["criminality"]): r["detained"]
                for r in parsed.tables["stats_detained_now"].to_pylist()}
    assert detained[("Total", "Total")] == 59_762
    assert detained[("ICE", "Total")] == 46_015 and detained[("CBP", "Total")] == 13_747
    assert detained[("Total", "Convicted Criminal")] == 17_007
    assert detained[("Total", "Pending Criminal Charges")] == 15_009
    assert parsed.file_date == date(2025, 9, 24) and parsed.as_of_date == date(2025, 9, 15)


def test_the_stale_and_misnamed_workbooks_are_dated_by_their_content(by_name):
    misnamed = by_name["20241116152220-FY24_detentionStats11152024.xlsx"]
    assert misnamed.fiscal_year == 2025
    october = next(r for r in misnamed.tables["stats_adp"].to_pylist()
                   if r["agency"] == "CBP" and r["criminality"] == "Total")
    assert october["month"] == date(2024, 10, 1)
    stale = by_name["20211029094614-FY21_detentionStats10282021.xlsx"]
    assert {r["fiscal_year"] for r in stale.tables["stats_adp"].to_pylist()} == {2020}


def test_values_agree_with_the_ddp_parse_on_99_percent_of_comparable_cells(comparison):
    assert comparison.comparable > 50_000
    assert comparison.agreement >= 0.99


def test_ddp_omits_the_other_immigration_violator_row(comparison):
    missing = [r for r in comparison.only_ours.to_pylist()
               if r["dataset"] == "currently-detained-by-criminality"]
    assert {r["key1"] for r in missing} == {"other immigration violator"}
    assert len({r["workbook"] for r in missing}) == 28


def test_ddp_dates_two_workbooks_to_the_wrong_fiscal_year(comparison):
    assert {r["workbook"] for r in comparison.misdated.to_pylist()} == {
        "20211029094614-FY21_detentionStats10282021.xlsx",
        "20241116152220-FY24_detentionStats11152024.xlsx",
    }


def test_every_disagreement_is_listed_in_the_differences_document(comparison):
    document = DIFFERENCES_DOC.read_text(encoding="utf-8")
    for row in comparison.disagreements.to_pylist():
        assert f"| {row['workbook']} |" in document and row["our_cell"] in document, row
    for row in comparison.by_dataset.to_pylist():
        if row["disagree"] or row["ddp_zero_no_figure"]:
            assert f"`{row['dataset']}`" in document, row["dataset"]
