"""Validation checks flag (never drop) the publication errors ICE's workbooks are known to carry.

Tables here are SYNTHETIC: built by hand in the shape of the parser's output, with figures of the
order of the FY2025 releases, then broken one cell at a time.
"""

from __future__ import annotations

from datetime import date

import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from iceledger.sources.stats_checks import (
    FAIL,
    PASS,
    WARN,
    ReleaseTables,
    run_checks,
    run_release_checks,
)

CLASSES = ("Convicted Criminal", "Pending Criminal Charges", "Other Immigration Violator")
MONTHS = [date(2024, 10, 1), date(2024, 11, 1), date(2024, 12, 1)]


def _rows(workbook: str, rows: list[dict], sheet: str = "Detention FY25") -> pa.Table:
    for i, row in enumerate(rows):
        row.update(workbook=workbook, fiscal_year=2025, sheet=sheet, cell_range=f"B{20 + i}")
    return pa.Table.from_pylist(rows)


def detained_now(workbook: str, split: dict[str, tuple[float, float]]) -> pa.Table:
    rows = []
    for agency, index in (("ICE", 0), ("CBP", 1)):
        for criminality in CLASSES:
            rows.append(dict(agency=agency, criminality=criminality,
                             detained=split[criminality][index]))
        rows.append(dict(agency=agency, criminality="Total",
                         detained=sum(split[c][index] for c in CLASSES)))
    for criminality in CLASSES:
        rows.append(dict(agency="Total", criminality=criminality, detained=sum(split[criminality])))
    rows.append(dict(agency="Total", criminality="Total",
                     detained=sum(sum(split[c]) for c in CLASSES)))
    return _rows(workbook, rows)


def book_ins(workbook: str, by_month: list[tuple[float, float]]) -> pa.Table:
    rows = []
    for month, (ice, cbp) in zip(MONTHS, by_month):
        rows += [dict(month=month, agency="ICE", book_ins=ice),
                 dict(month=month, agency="CBP", book_ins=cbp),
                 dict(month=month, agency="Total", book_ins=ice + cbp)]
    return _rows(workbook, rows)


def adp(workbook: str, scale: float = 1.0) -> pa.Table:
    rows = []
    for m, month in enumerate(MONTHS):
        totals = dict.fromkeys(CLASSES, 0.0)
        for agency, base in (("ICE", 9288.1), ("CBP", 1419.9)):
            values = {c: (base + 101.7 * m) * (k + 1) * scale / 3 for k, c in enumerate(CLASSES)}
            rows += [dict(month=month, agency=agency, criminality=c, adp=v)
                     for c, v in values.items()]
            rows.append(dict(month=month, agency=agency, criminality="Total",
                             adp=sum(values.values())))
            for c in CLASSES:
                totals[c] += values[c]
        rows += [dict(month=month, agency="Total", criminality=c, adp=v) for c, v in totals.items()]
        rows.append(dict(month=month, agency="Total", criminality="Total",
                         adp=sum(totals.values())))
    return _rows(workbook, rows)


def book_outs(workbook: str) -> pa.Table:
    reasons = {"Bond Set by ICE": 109, "Bond Set by IJ": 800, "Paroled": 4385,
               "Release to Remove": 13645}
    rows = []
    for month in MONTHS:
        for reason, n in [*reasons.items(), ("Bonded Out", 909),
                          ("Total", 909 + 4385 + 13645)]:
            rows.append(dict(month=month, release_reason=reason, criminality="Total",
                             book_outs=float(n)))
    return _rows(workbook, rows)


def alos(workbook: str) -> pa.Table:
    rows = []
    for month in MONTHS:
        rows += [dict(month=month, agency="Total", criminality=c, alos_days=v)
                 for c, v in zip(CLASSES, (51.6, 50.6, 43.9))]
        rows.append(dict(month=month, agency="Total", criminality="Total", alos_days=46.8))
    return _rows(workbook, rows)


def facilities(workbook: str, adps: dict[str, float]) -> pa.Table:
    rows = [dict(name=name, state="GA", adp=value) for name, value in adps.items()]
    return _rows(workbook, rows, sheet="Facilities FY25")


def release(workbook: str = "synthetic-FY25_detentionStats01032025.xlsx",
            file_date: date | None = date(2025, 1, 3), as_of: date | None = date(2024, 12, 23),
            **tables: pa.Table) -> ReleaseTables:
    defaults = {
        "stats_detained_now": detained_now(workbook, {CLASSES[0]: (15725, 1282),
                                                      CLASSES[1]: (13767, 1242),
                                                      CLASSES[2]: (16523, 11223)}),
        "stats_book_ins": book_ins(workbook, [(8609, 15004), (7580, 13543), (7884, 14238)]),
        "stats_adp": adp(workbook),
        "stats_book_outs": book_outs(workbook),
        "stats_alos": alos(workbook),
    }
    defaults.update({f"stats_{name}": table for name, table in tables.items()})
    return ReleaseTables(workbook, 2025, file_date, as_of, defaults)


def _with_value(table: pa.Table, column: str, index: int, value) -> pa.Table:
    values = table.column(column).to_pylist()
    values[index] = value
    return table.set_column(table.column_names.index(column), column,
                            pa.array(values, table.schema.field(column).type))


def _by_status(checks: pa.Table, status: str) -> list[dict]:
    return [r for r in checks.to_pylist() if r["status"] == status]


def test_a_consistent_workbook_passes_every_check():
    checks = run_checks(release())
    assert _by_status(checks, FAIL) == [] and _by_status(checks, WARN) == []
    ran = {(r["check"], r["table"]) for r in checks.to_pylist()}
    assert ("criminality classes add to total", "stats_detained_now") in ran
    assert ("ICE + CBP = Total", "stats_book_ins") in ran
    assert ("release reasons add to total", "stats_book_outs") in ran
    assert ("total ALOS within range of its parts", "stats_alos") in ran
    assert ("data date plausible", "stats_workbooks") in ran
    assert checks.column_names == ["workbook", "check", "table", "status", "detail", "location",
                                   "expected", "observed", "compared_with"]


def test_a_broken_class_total_is_flagged_with_expected_observed_and_cells():
    wb = "synthetic-broken.xlsx"
    table = detained_now(wb, {CLASSES[0]: (15725, 1282), CLASSES[1]: (13767, 1242),
                              CLASSES[2]: (16523, 11223)})
    # ICE's Convicted Criminal cell printed 100 too high: its class total and ICE + CBP both break.
    broken = _with_value(table, "detained", 0, 15825.0)
    failures = _by_status(run_checks(release(wb, detained_now=broken)), FAIL)
    assert {(f["check"], f["table"]) for f in failures} == {
        ("criminality classes add to total", "stats_detained_now"),
        ("ICE + CBP = Total", "stats_detained_now"),
    }
    by_class = next(f for f in failures if f["check"].startswith("criminality"))
    assert by_class["observed"] == 15725 + 13767 + 16523
    assert by_class["expected"] == 15825 + 13767 + 16523
    assert "off by -100" in by_class["detail"] and "agency ICE" in by_class["detail"]
    assert by_class["location"].startswith("Detention FY25!B23 vs B20")


def test_ice_plus_cbp_checked_month_by_month():
    wb = "synthetic-bookins.xlsx"
    table = _with_value(book_ins(wb, [(8609, 15004), (7580, 13543), (7884, 14238)]),
                        "book_ins", 5, 21000.0)  # November's printed total
    failures = _by_status(run_checks(release(wb, book_ins=table)), FAIL)
    assert len(failures) == 1
    assert "month 2024-11" in failures[0]["detail"]
    assert failures[0]["observed"] == 21000 and failures[0]["expected"] == 7580 + 13543


def test_bonded_out_is_a_subtotal_not_counted_twice_but_itself_checked():
    wb = "synthetic-bookouts.xlsx"
    checks = run_checks(release(wb))
    reasons = [r for r in checks.to_pylist() if r["check"] == "release reasons add to total"]
    assert reasons and all(r["status"] == PASS for r in reasons)
    assert "Bond Set" not in reasons[0]["detail"]

    broken = _with_value(book_outs(wb), "book_outs", 1, 801.0)  # Bond Set by IJ, October
    failures = _by_status(run_checks(release(wb, book_outs=broken)), FAIL)
    assert [f["check"] for f in failures] == ["subtotal release reasons add up"]
    assert "Bonded Out" in failures[0]["detail"] and "month 2024-10" in failures[0]["detail"]


def test_an_average_total_outside_its_parts_fails():
    wb = "synthetic-alos.xlsx"
    broken = _with_value(alos(wb), "alos_days", 3, 60.0)
    failures = _by_status(run_checks(release(wb, alos=broken)), FAIL)
    assert len(failures) == 1 and "OUTSIDE" in failures[0]["detail"]
    assert failures[0]["expected"] == 51.6 and failures[0]["observed"] == 60.0


def test_missing_total_row_or_column_is_a_warning_not_a_silent_skip():
    wb = "synthetic-gaps.xlsx"
    no_total = book_ins(wb, [(1, 2), (3, 4), (5, 6)]).slice(0, 2)  # October ICE and CBP only
    warnings = _by_status(run_checks(release(wb, book_ins=no_total)), WARN)
    assert any("no 'Total' row" in w["detail"] for w in warnings)

    renamed = release(wb).tables["stats_adp"].rename_columns(
        ["month", "agency", "criminality", "average_daily_population", "workbook", "fiscal_year",
         "sheet", "cell_range"])
    warnings = _by_status(run_checks(release(wb, adp=renamed)), WARN)
    assert any("has no column adp" in w["detail"] for w in warnings)


def test_fiscal_year_must_agree_with_months_and_file_date():
    wb = "synthetic-fy.xlsx"
    outside = book_ins(wb, [(1, 2), (3, 4), (5, 6)])
    outside = _with_value(outside, "month", 0, date(2024, 9, 1))
    checks = run_checks(release(wb, file_date=date(2026, 3, 1), as_of=date(2025, 2, 20),
                                book_ins=outside))
    failures = _by_status(checks, FAIL)
    assert any(f["table"] == "stats_book_ins" and "2024-09" in f["detail"] for f in failures)
    assert any("file date 2026-03-01 does NOT lie within FY2025" in f["detail"] for f in failures)


def test_the_wrong_year_data_date_of_the_feb_2023_release_is_caught():
    # The FY23 workbook posted 2023-02-03 printed "data as of" 2022-01-23: a year too early.
    wb = "synthetic-FY23_detentionStats02032023.xlsx"
    tables = {name: _with_value(t, "fiscal_year", 0, 2025) for name, t in release(wb).tables.items()}
    checks = run_checks(ReleaseTables(wb, 2025, date(2025, 2, 3), date(2024, 1, 23), tables))
    details = [f["detail"] for f in _by_status(checks, FAIL)]
    assert any("lies OUTSIDE FY2025" in d for d in details)
    assert any("is AFTER the data date" in d for d in details)
    stale = _by_status(checks, WARN)
    assert any("377 days" in w["detail"] and "stale" in w["detail"] for w in stale)


def test_data_date_after_file_date_fails_and_missing_dates_warn():
    checks = run_checks(release(file_date=date(2025, 1, 3), as_of=date(2025, 1, 9)))
    assert any("is AFTER the file date" in f["detail"] for f in _by_status(checks, FAIL))
    checks = run_checks(release(file_date=None, as_of=None))
    assert any("no 'data as of' date" in w["detail"] for w in _by_status(checks, WARN))


def _series(*specs) -> list[ReleaseTables]:
    """Consecutive synthetic releases: (name, file date, data date, ICE/CBP for the classes)."""
    made = []
    for name, file_date, as_of, split in specs:
        made.append(release(name, file_date, as_of, detained_now=detained_now(name, split)))
    return made


NORMAL = {CLASSES[0]: (13500, 1400), CLASSES[1]: (12000, 1200), CLASSES[2]: (9000, 9800)}
LATER = {CLASSES[0]: (14527, 1437), CLASSES[1]: (13022, 1241), CLASSES[2]: (11763, 14407)}
SWAPPED = {c: (cbp, ice) for c, (ice, cbp) in {
    CLASSES[0]: (14100, 1420), CLASSES[1]: (12500, 1230), CLASSES[2]: (10400, 12000)}.items()}


def test_transposed_release_fails_and_the_next_good_one_is_not_blamed():
    releases = _series(
        ("synthetic-a.xlsx", date(2025, 2, 14), date(2025, 2, 8), NORMAL),
        ("synthetic-b-transposed.xlsx", date(2025, 2, 28), date(2025, 2, 23), SWAPPED),
        ("synthetic-c.xlsx", date(2025, 3, 14), date(2025, 3, 9), LATER),
    )
    checks = run_release_checks(reversed(releases)).to_pylist()  # order is restored by date
    verdicts = {(r["workbook"], r["table"]): r for r in checks
                if r["check"] == "ICE and CBP not transposed"}
    bad = verdicts[("synthetic-b-transposed.xlsx", "stats_detained_now")]
    assert bad["status"] == FAIL and "TRANSPOSED" in bad["detail"]
    assert bad["compared_with"] == "synthetic-a.xlsx" and bad["observed"] < bad["expected"] / 2
    good = verdicts[("synthetic-c.xlsx", "stats_detained_now")]
    assert good["status"] == PASS and good["compared_with"] == "synthetic-a.xlsx"


def test_a_data_date_that_did_not_advance_is_flagged():
    releases = _series(("synthetic-a.xlsx", date(2025, 2, 3), date(2025, 1, 21), NORMAL),
                       ("synthetic-b.xlsx", date(2025, 2, 14), date(2025, 1, 21), LATER))
    stale = [r for r in run_release_checks(releases).to_pylist()
             if r["check"] == "data date advanced"]
    assert [(r["workbook"], r["status"]) for r in stale] == [("synthetic-b.xlsx", WARN)]
    assert "did NOT advance" in stale[0]["detail"]


def test_facility_bed_days_that_go_backwards_fail():
    names = [f"SYNTHETIC FACILITY {i}" for i in range(20)]
    before = {n: 100.0 + i for i, n in enumerate(names)}
    # Two weeks later the fiscal-year-to-date ADP should change little; here half the
    # facilities lost a fifth of it, the pattern of the 2025-07-17 release.
    after = {n: v * (0.8 if i % 2 else 1.02) for i, (n, v) in enumerate(before.items())}
    grown = {n: v * 1.02 for n, v in before.items()}

    def pair(later: dict[str, float]) -> list[dict]:
        first = release("synthetic-jul03.xlsx", date(2025, 7, 3), date(2025, 6, 23),
                        facilities=facilities("synthetic-jul03.xlsx", before))
        second = release("synthetic-jul17.xlsx", date(2025, 7, 17), date(2025, 7, 7),
                         facilities=facilities("synthetic-jul17.xlsx", later))
        return [r for r in run_release_checks([first, second]).to_pylist()
                if r["check"] == "facility bed-days do not fall"]

    [bad] = pair(after)
    assert bad["status"] == FAIL and bad["observed"] == 10
    assert "10 of 20 facilities" in bad["detail"]
    assert bad["location"].startswith("Facilities FY25!")
    [good] = pair(grown)
    assert good["status"] == PASS and good["observed"] == 0


counts = st.integers(min_value=0, max_value=200_000).map(float)


@settings(max_examples=40, deadline=None)
@given(split=st.fixed_dictionaries({c: st.tuples(counts, counts) for c in CLASSES}),
       cell=st.integers(min_value=0, max_value=11),
       delta=st.sampled_from([-1000.0, -1.0, 1.0, 7.0, 25_000.0]))
def test_any_single_altered_cell_is_caught_and_consistent_tables_pass(split, cell, delta):
    wb = "synthetic-property.xlsx"
    table = detained_now(wb, split)
    assert all(r["status"] == PASS for r in run_checks(release(wb, detained_now=table))
               .to_pylist() if r["table"] == "stats_detained_now")
    broken = _with_value(table, "detained", cell, table.column("detained")[cell].as_py() + delta)
    altered = table.to_pylist()[cell]
    failures = [r for r in _by_status(run_checks(release(wb, detained_now=broken)), FAIL)
                if r["table"] == "stats_detained_now"]
    # The altered cell sits in one agency group and one criminality group (a total in one of
    # them): each of those checks fails, every other group still passes.
    assert len(failures) == 2
    assert any(f"agency {altered['agency']}" in f["detail"] for f in failures)
    assert any(f"criminality {altered['criminality']}" in f["detail"] for f in failures)
    assert all(abs(f["observed"] - f["expected"]) == abs(delta) for f in failures)
    assert "B" + str(20 + cell) in " ".join(f["location"] for f in failures)


@pytest.mark.parametrize("table", ["stats_detained_now", "stats_book_ins", "stats_adp"])
def test_checks_never_change_the_figures(table):
    before = release()
    snapshot = {name: t.to_pylist() for name, t in before.tables.items()}
    run_checks(before)
    run_release_checks([before, release("synthetic-later.xlsx", date(2025, 2, 3))])
    assert before.tables[table].to_pylist() == snapshot[table]
