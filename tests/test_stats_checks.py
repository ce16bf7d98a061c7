"""Validation checks flag (never drop) the publication errors ICE's workbooks are known to carry.

Tables here are SYNTHETIC: built by hand in the shape of the parser's output, with figures of the
order of the FY2025 releases, then broken one cell at a time.
"""

from __future__ import annotations

import calendar
from datetime import date
from pathlib import Path

import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from iceledger.cli import app
from iceledger.sources.stats.checks import (
    FAIL,
    PARTS_RULES,
    PASS,
    WARN,
    ReleaseTables,
    render_markdown,
    review_warehouse,
    run_checks,
    run_release_checks,
)
from iceledger.sources.stats.sheet_tables import load_layout
from iceledger.warehouse import RowAccounting, SourceLoad, Warehouse

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


def fiscal_year_totals(months: pa.Table, value: str, keys: tuple[str, ...],
                      by_days: bool = False) -> pa.Table:
    """The `_fy` table ICE prints beside a month table: counts summed, ADPs averaged over days."""
    groups: dict[tuple, list[dict]] = {}
    for row in months.to_pylist():
        if row[value] is not None:
                groups.setdefault(tuple(row[k] for k in keys), []).append(row)
    rows = []
    for key, members in groups.items():
        weights = [calendar.monthrange(r["month"].year, r["month"].month)[1] if by_days else 1
                   for r in members]
        total = sum(r[value] * w for r, w in zip(members, weights))
        rows.append({**dict(zip(keys, key)), value: total / sum(weights) if by_days else total})
    return _rows(months.column("workbook")[0].as_py(), rows)


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
    for name, value, keys in (("book_ins", "book_ins", ("agency",)),
                              ("adp", "adp", ("agency", "criminality"))):
        months = defaults[f"stats_{name}"]
        if value in months.column_names and f"stats_{name}_fy" not in defaults:
            defaults[f"stats_{name}_fy"] = fiscal_year_totals(months, value, keys,
                                                              by_days=name == "adp")
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
    assert ("total average within range of its parts", "stats_alos") in ran
    assert ("months add to fiscal-year total", "stats_book_ins") in ran
    assert ("months add to fiscal-year total", "stats_adp") in ran
    assert ("data date plausible", "stats_workbooks") in ran
    assert checks.column_names == ["workbook", "check", "table", "status", "detail", "location",
                                   "expected", "observed", "compared_with", "fiscal_year"]


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
    # The month fails, and so does the fiscal-year total that ICE summed from the printed months.
    assert [(f["table"], f["detail"].split(":")[0]) for f in failures] == [
        ("stats_book_ins", "month 2024-11"), ("stats_book_ins_fy", "fiscal year")]
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

    # With a part blank the range is incomplete: the same gap is only a warning.
    blank_part = _with_value(broken, "alos_days", 0, None)
    checks = run_checks(release(wb, alos=blank_part))
    assert _by_status(checks, FAIL) == []
    assert any("blank: Convicted Criminal" in w["detail"] for w in _by_status(checks, WARN))


def test_a_renamed_column_is_a_warning_not_a_silent_skip():
    wb = "synthetic-gaps.xlsx"
    renamed = release(wb).tables["stats_adp"].rename_columns(
        ["month", "agency", "criminality", "average_daily_population", "workbook", "fiscal_year",
         "sheet", "cell_range"])
    warnings = _by_status(run_checks(release(wb, adp=renamed)), WARN)
    assert any("has no column adp" in w["detail"] for w in warnings)


def test_a_group_without_a_printed_total_or_any_figure_is_not_judged():
    wb = "synthetic-gaps.xlsx"
    october_parts = book_ins(wb, [(1, 2), (3, 4), (5, 6)]).slice(0, 2)  # ICE and CBP, no Total
    unpublished = _with_value(_with_value(_with_value(
        book_ins(wb, [(1, 2), (3, 4), (5, 6)]), "book_ins", 6, None), "book_ins", 7, None),
        "book_ins", 8, None)  # December not yet published: blank throughout
    for table in (october_parts, unpublished):
        checks = [r for r in run_checks(release(wb, book_ins=table)).to_pylist()
                  if r["check"] == "ICE + CBP = Total" and r["table"] == "stats_book_ins"]
        assert all(r["status"] == PASS for r in checks)
        assert not any("2024-12" in r["detail"] for r in checks)


def test_fiscal_year_must_agree_with_months_and_file_date():
    wb = "synthetic-fy.xlsx"
    outside = book_ins(wb, [(1, 2), (3, 4), (5, 6)])
    outside = _with_value(outside, "month", 0, date(2024, 9, 1))
    checks = run_checks(release(wb, file_date=date(2026, 3, 1), as_of=date(2025, 2, 20),
                                book_ins=outside))
    failures = _by_status(checks, FAIL)
    assert any("2024-09 (stats_book_ins)" in f["detail"] for f in failures)
    assert any("file date 2026-03-01 does NOT lie within FY2025" in f["detail"] for f in failures)


def test_a_misnamed_file_is_flagged():
    # One archived file is named FY24 but holds the first FY2025 release.
    checks = run_checks(release("synthetic-FY24_detentionStats11152024.xlsx"))
    [named] = [r for r in checks.to_pylist() if "file name says" in r["detail"]]
    assert named["status"] == WARN and "misnamed" in named["detail"]
    assert (named["observed"], named["expected"]) == (2024, 2025)


def test_the_wrong_year_data_date_of_the_feb_2023_release_is_caught():
    # The FY23 workbook posted 2023-02-03 printed "data as of" 2022-01-23: a year too early.
    wb = "synthetic-FY23_detentionStats02032023.xlsx"
    tables = {name: _with_value(t, "fiscal_year", 0, 2025)
              for name, t in release(wb).tables.items()}
    checks = run_checks(ReleaseTables(wb, 2025, date(2025, 2, 3), date(2024, 1, 23), tables))
    details = [f["detail"] for f in _by_status(checks, FAIL)]
    assert any("lies OUTSIDE FY2025" in d for d in details)
    stale = [w["detail"] for w in _by_status(checks, WARN)]
    assert any("377 days" in d and "stale" in d for d in stale)
    assert any("yet figures for later months: 2024-10, 2024-11, 2024-12" in d for d in stale)


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


def test_facility_bed_days_with_a_data_date_before_the_year_or_a_zero_adp_do_not_crash():
    names = [f"SYNTHETIC FACILITY {i}" for i in range(12)]
    zeros = dict.fromkeys(names, 0.0)
    # The first release's data date is the eve of the fiscal year (no day counted yet); the
    # second's, a year too early, as ICE printed it on 2023-02-03.
    first = release("synthetic-oct.xlsx", date(2024, 10, 10), date(2024, 9, 30),
                    facilities=facilities("synthetic-oct.xlsx", zeros))
    second = release("synthetic-nov.xlsx", date(2024, 11, 10), date(2023, 11, 1),
                     facilities=facilities("synthetic-nov.xlsx", zeros))
    checks = run_release_checks([first, second]).to_pylist()
    assert not [r for r in checks if r["check"] == "facility bed-days do not fall"]


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
    found = [r for r in _by_status(run_checks(release(wb, detained_now=broken)), FAIL)
             if r["table"] == "stats_detained_now"]
    failures = [r for r in found if r["check"] != "no negative figure"]
    # A figure pushed below zero is a failure of its own, naming its cell.
    negative = [r for r in found if r["check"] == "no negative figure"]
    assert len(negative) == (altered["detained"] + delta < 0)
    assert all(r["location"].endswith("B" + str(20 + cell)) for r in negative)
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


def test_months_must_add_to_the_printed_fiscal_year_total():
    wb = "synthetic-fy-total.xlsx"
    base = release(wb)
    fy = _with_value(base.tables["stats_book_ins_fy"], "book_ins", 0, 30000.0)  # ICE's FY total
    failures = _by_status(run_checks(release(wb, book_ins_fy=fy)), FAIL)
    [months] = [f for f in failures if f["check"] == "months add to fiscal-year total"]
    assert months["observed"] == 30000 and months["expected"] == 8609 + 7580 + 7884
    assert "agency ICE: fiscal-year figure 30,000" in months["detail"]
    assert "2024-10 + 2024-11 + 2024-12" in months["detail"]


def test_fiscal_year_adp_is_a_mean_weighted_by_days_with_a_partial_last_month():
    wb = "synthetic-adp.xlsx"
    monthly = adp(wb)
    # Data through 20 December: October and November whole, December's 20 days.
    partial = fiscal_year_totals(monthly, "adp", ("agency", "criminality"), by_days=True)
    rows = partial.to_pylist()
    by_key = {(r["agency"], r["criminality"], r["month"]): r["adp"] for r in monthly.to_pylist()}
    for row in rows:
        oct_, nov, dec = (by_key[(row["agency"], row["criminality"], m)] for m in MONTHS)
        row["adp"] = (oct_ * 31 + nov * 30 + dec * 20) / 81
    checks = run_checks(release(wb, adp_fy=pa.Table.from_pylist(rows, schema=partial.schema)))
    adp_checks = [r for r in checks.to_pylist() if r["check"] == "months add to fiscal-year total"
                  and r["table"] == "stats_adp"]
    assert len(adp_checks) == 12 and all(r["status"] == PASS for r in adp_checks)
    assert "2024-12 counted to day 20" in adp_checks[0]["detail"]

    # A fiscal-year figure no day count reproduces (the FY2023 release of 2023-02-03) fails.
    rows[0]["adp"] += 250
    checks = run_checks(release(wb, adp_fy=pa.Table.from_pylist(rows, schema=partial.schema)))
    [bad] = [r for r in _by_status(checks, FAIL) if r["table"] == "stats_adp"]
    assert "weighted by days" in bad["detail"] and "off by" in bad["detail"]


@pytest.mark.parametrize(("share", "status"), [(0.98, PASS), (0.93, WARN), (0.54, FAIL),
                                                (1.16, FAIL)])
def test_facility_adps_against_the_national_adp(share, status):
    wb = "synthetic-facilities.xlsx"
    national = release(wb).tables["stats_adp_fy"]
    nation = next(r["adp"] for r in national.to_pylist()
                  if r["agency"] == "Total" and r["criminality"] == "Total")
    listed = facilities(wb, {f"SYNTHETIC FACILITY {i}": nation * share / 4 for i in range(4)})
    [check] = [r for r in run_checks(release(wb, facilities=listed)).to_pylist()
               if r["check"] == "facility ADPs add up to the national ADP"]
    assert check["status"] == status
    assert check["observed"] == pytest.approx(nation * share)
    assert f"{share:.1%} of the national fiscal-year ADP" in check["detail"]


def test_the_real_workbooks_carry_their_known_errors_and_no_false_alarms(stats_workbooks):
    from iceledger.sources.stats.parse import parse_workbook

    releases = [parse_workbook(path) for path in stats_workbooks]
    within = pa.concat_tables(run_checks(r) for r in releases).to_pylist()
    across = run_release_checks(releases).to_pylist()
    assert {r["workbook"] for r in within} == {p.name for p in stats_workbooks}

    def flagged(workbook_start: str, status: str, text: str) -> bool:
        return any(r["workbook"].startswith(workbook_start) and r["status"] == status
                   and text in r["detail"] for r in within + across)

    # FY2023 release of 2023-02-03 printed "data as of" 2022-01-23, a year too early.
    assert flagged("20230203", FAIL, "data as of 2022-01-23 lies OUTSIDE FY2023")
    assert flagged("20230203", WARN, "did NOT advance")
    # The final FY2021 release of 2021-10-28 carries FY2020's detention sheet beside FY2021's
    # ATD and facilities: two snapshots, each checked within its own year, so FY2020's months are
    # not "outside" FY2021 and FY2021's facilities are not summed against FY2020's national ADP.
    late_fy21 = [r for r in within if r["workbook"].startswith("20211029")]
    # (Its transgender table's caption names FY2022, "as of 10/25/2021": a third snapshot.)
    assert {r["fiscal_year"] for r in late_fy21} == {2020, 2021, 2022}
    assert any(r["fiscal_year"] == 2020 and r["status"] == PASS
               and "FY2020 runs 2019-10-01..2020-09-30" in r["detail"] for r in late_fy21)
    assert not any(r["check"] == "facility ADPs add up to the national ADP" for r in late_fy21)
    assert not flagged("20211029", FAIL, "figures for months outside it")
    # The file named FY24 and posted 2024-11-15 is the first FY2025 release.
    assert flagged("20241116", WARN, "the file is misnamed")
    # April 2021: Bonded Out printed 4 above its two bond kinds (October 2020).
    assert flagged("20210415", FAIL, "'Bonded Out' 1,136 ≠ sum of Bond Set by ICE + Bond Set "
                                     "by IJ = 1,132")
    # None of these releases is the transposed 2025-02-28 one, and no facility lost bed-days.
    for check in ("ICE and CBP not transposed", "facility bed-days do not fall"):
        verdicts = [r for r in across if r["check"] == check]
        assert verdicts and all(r["status"] == PASS for r in verdicts), check
    # Every ICE + CBP = Total and criminality sum of the currently-detained table holds.
    detained = [r for r in within if r["table"] == "stats_detained_now"]
    assert detained and all(r["status"] == PASS for r in detained)


def _load(warehouse: Warehouse, made: ReleaseTables) -> None:
    """Load a synthetic release as ingest does: its tables and its checks, in one transaction."""
    workbooks = pa.table({"workbook": [made.workbook], "sha256": [made.workbook * 2],
                          "fiscal_year": [made.fiscal_year],
                          "file_date": pa.array([made.file_date], pa.date32()),
                          "as_of_date": pa.array([made.as_of_date], pa.date32())})
    tables = {**made.tables, "stats_workbooks": workbooks, "stats_checks": run_checks(made)}
    warehouse.load(SourceLoad(Path(made.workbook), made.workbook * 2, "stats", tables,
                              RowAccounting(), synthetic=True))


def test_review_over_the_warehouse_compares_releases_and_reports(tmp_path):
    warehouse = Warehouse(tmp_path / "w.duckdb")
    for made in _series(
        ("synthetic-a.xlsx", date(2025, 2, 14), date(2025, 2, 8), NORMAL),
        ("synthetic-b-transposed.xlsx", date(2025, 2, 28), date(2025, 2, 23), SWAPPED),
        ("synthetic-c.xlsx", date(2025, 3, 14), date(2025, 3, 9), LATER),
    ):
        _load(warehouse, made)

    review = review_warehouse(warehouse)
    assert "stats_release_checks" in warehouse.table_names()
    stored = warehouse.read_table("stats_release_checks").to_pylist()
    assert [(r["workbook"], r["status"]) for r in stored
            if r["check"] == "ICE and CBP not transposed" and r["table"] == "stats_detained_now"
            ] == [("synthetic-b-transposed.xlsx", FAIL), ("synthetic-c.xlsx", PASS)]
    assert review.counts()[FAIL] == 1
    assert review.within.num_rows == warehouse.read_table("stats_checks").num_rows

    report = render_markdown(review, "w.duckdb")
    assert report.startswith("# Detention-statistics checks")
    assert "## Failures (1)" in report and "### synthetic-b-transposed.xlsx" in report
    assert "compared with synthetic-a.xlsx" in report and "TRANSPOSED" in report


def test_a_name_loaded_twice_is_reported_not_compared(tmp_path):
    warehouse = Warehouse(tmp_path / "w.duckdb")
    first = release("synthetic-reposted.xlsx")
    _load(warehouse, first)
    second = ReleaseTables(first.workbook, 2025, first.file_date, date(2024, 12, 27),
                           first.tables)
    workbooks = pa.table({"workbook": [second.workbook], "sha256": ["other bytes"],
                          "fiscal_year": [2025], "file_date": pa.array([second.file_date]),
                          "as_of_date": pa.array([second.as_of_date])})
    warehouse.load(SourceLoad(Path(second.workbook), "other bytes", "stats",
                              {**second.tables, "stats_workbooks": workbooks}, RowAccounting()))
    review = review_warehouse(warehouse)
    [twice] = [r for r in review.across.to_pylist()
               if r["check"] == "one version per workbook name"]
    assert twice["status"] == WARN and "2 different files" in twice["detail"]


def test_versions_told_apart_by_sha256_are_compared_like_any_releases(tmp_path):
    warehouse = Warehouse(tmp_path / "w.duckdb")
    first = release("synthetic-reposted.xlsx")
    for sha, as_of in (("a" * 64, date(2024, 12, 23)), ("b" * 64, date(2024, 12, 27))):
        tables = {name: t.append_column("sha256", pa.array([sha] * t.num_rows))
                  for name, t in first.tables.items()}
        workbooks = pa.table({"workbook": [first.workbook], "sha256": [sha],
                              "fiscal_year": [2025], "file_date": pa.array([first.file_date]),
                              "as_of_date": pa.array([as_of])})
        warehouse.load(SourceLoad(Path(first.workbook), sha, "stats",
                                  {**tables, "stats_workbooks": workbooks}, RowAccounting()))
    across = review_warehouse(warehouse).across.to_pylist()
    assert not any(r["check"] == "one version per workbook name" for r in across)
    [advanced] = [r for r in across if r["check"] == "data date advanced"]
    assert advanced["status"] == PASS and advanced["compared_with"] == first.workbook


def test_cli_stats_checks_summarises_and_writes_the_report(tmp_path):
    warehouse = Warehouse(tmp_path / "w.duckdb")
    runner = CliRunner()
    empty = runner.invoke(app, ["stats", "checks", "--warehouse", str(warehouse.path)])
    assert empty.exit_code == 1 and "no detention-statistics workbooks" in empty.output

    for made in _series(
        ("synthetic-a.xlsx", date(2025, 2, 14), date(2025, 2, 8), NORMAL),
        ("synthetic-b-transposed.xlsx", date(2025, 2, 28), date(2025, 2, 23), SWAPPED),
    ):
        _load(warehouse, made)
    out = tmp_path / "checks.md"
    result = runner.invoke(app, ["stats", "checks", "--output", str(out),
                                 "--warehouse", str(warehouse.path)])
    assert result.exit_code == 0, result.output
    assert "1 failed" in result.output and "synthetic-b-transposed.xlsx" in result.output
    assert "### synthetic-b-transposed.xlsx" in out.read_text()


def test_ingest_loads_the_checks_with_each_workbook_and_prints_a_summary(stats_workbooks, tmp_path):
    picked = [p for p in stats_workbooks if p.name.startswith(("20230203", "20221210"))]
    warehouse = tmp_path / "w.duckdb"
    result = CliRunner().invoke(app, ["ingest", "stats", *map(str, picked),
                                      "--warehouse", str(warehouse)])
    assert result.exit_code == 0, result.output
    assert "checks of 2 loaded workbooks" in result.output and "failed" in result.output
    stored = Warehouse(warehouse).read_table("stats_checks").to_pylist()
    assert {r["workbook"] for r in stored} == {p.name for p in picked}
    # The figures of the workbook with the wrong data date are loaded all the same, flagged.
    assert any(r["status"] == FAIL and "2022-01-23" in r["detail"] for r in stored)
    adp = Warehouse(warehouse).read_table("stats_adp").to_pylist()
    assert any(r["workbook"] == picked[1].name for r in adp)
    across = Warehouse(warehouse).read_table("stats_release_checks").to_pylist()
    assert any(r["check"] == "data date advanced" and r["status"] == WARN for r in across)


def test_every_label_a_check_names_is_declared_so_any_case_of_it_reads_as_one():
    # Free-text dimensions keep labels as printed; a label a check looks for by name must be a
    # declared value of its dimension, or a workbook printing it in capitals ("TOTAL", "BONDED
    # OUT") would pass every check by skipping it.
    dimensions = load_layout().dimensions
    for rule in PARTS_RULES:
        named = {rule.total, *(rule.parts or ()), *rule.nested,
                 *(kid for kids in rule.nested.values() for kid in kids)}
        dimension = dimensions[rule.dimension]
        declared = {value for value, _ in dimension.values}
        assert named <= declared, (rule.check, rule.dimension, named - declared)
        for label in named:
            assert dimension.canonical(label.upper()) == label
