"""SYNTHETIC detention-statistics workbooks, drawn from a synthetic FOIA warehouse.

The demo has no real workbooks, so its published-statistics views would be empty. These writes a
few small workbooks in the layout ICE prints (the captions, header rows and sheet names that
data/layouts/stats_tables.toml reads): currently detained by criminality and arresting agency,
initial book-ins, average daily population and average length of stay by month and by facility
type, removals, and the facilities list. Their figures are computed from the synthetic FOIA
records in the warehouse (midnight populations, book-ins, stays), so the reconciliation views
compare like with like; the ICE/CBP split is invented (ICE_SHARE), since the synthetic records
carry no arresting agency. The tables the records cannot speak to (ATD participants by family
status, transgender detainees, segregation of vulnerable people, the semiannual tables) carry
small invented figures, documented in docs/synthetic-data.md.
Every file name starts with SYNTHETIC_ and every sheet says so.
"""

from __future__ import annotations

import calendar
import csv
from collections import defaultdict
from datetime import date, timedelta
from pathlib import Path
from statistics import fmean

import duckdb
import openpyxl

from iceledger.synth.world import data_file
from iceledger.tables import FOIA_STAYS, FOIA_STINTS

# The invented share of people arrested by ICE rather than CBP, the same in every figure.
ICE_SHARE = 0.85
CLASSES = (("Convicted Criminal", "convicted"), ("Pending Criminal Charges", "pending_charges"),
           ("Other Immigration Violator", "other_immigration_violator"))
MONTHS = ("Oct", "Nov", "Dec", "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep")
NOTICE = "SYNTHETIC DATA written by iceledger from synthetic records; not an ICE publication."
# Releases, in days before the last day the records cover: a year-end one and three biweekly
# ones, as ICE posts them.
RELEASE_OFFSETS = (56, 28, 0)
FAMILY, ADULT = "FSC", "Adult"
FACILITY_TYPES = ("Total", FAMILY, ADULT)
# Alternatives to detention: the synthetic records hold no participants, so these counts and
# average lengths in program (days) are invented, the same in every release
# (docs/synthetic-data.md).
ATD_STATUS = (("FAMU", 1_240, 410.0), ("Single Adult", 2_860, 365.0))
# Segregation placements of vulnerable people in each fiscal quarter, with the average
# consecutive and cumulative days: invented (the synthetic records hold no segregation), the
# same every quarter.
SEGREGATION = (("Disciplinary", 24, 14.5, 19.0), ("Facility Security Threat", 11, 21.0, 27.5),
               ("Medical/Mental Health", 36, 10.5, 13.0), ("Protective Custody", 12, 12.0, 18.0))
# Transgender people: book-ins so far in the fiscal year, and those held on the data date with
# and without a final order of removal: invented, the same in every release.
TRANSGENDER = (("Total Book-Ins for FY", 30), ("Currently Detained with Final Order", 11),
               ("Currently Detained without Final Order", 14))
# The semiannual tables: arrests, book-ins and removals per fiscal year of U.S. citizens,
# parents of U.S. citizens and armed-forces members, invented, the same every year.
SEMIANNUAL = (("United States Armed Forces Alien", (("Arrests", 12), ("Bookins", 15),
                                                    ("Removals", 10))),
              ("United States Citizens", (("Arrests", 14), ("Bookins", 11), ("Removals", 10))),
              ("Parents of USC", (("Arrests", 240), ("Bookins", 260), ("Removals", 130))))


def fiscal_year(day: date) -> int:
    return day.year + 1 if day.month >= 10 else day.year


def write_synthetic_workbooks(warehouse: Path, out_dir: Path) -> list[Path]:
    """Write the workbooks for the records in `warehouse`; returns their paths."""
    con = duckdb.connect(str(warehouse), read_only=True)
    try:
        daily = _daily(con)
        alos = _monthly_alos(con)
        book_outs = _monthly_book_outs(con)
        by_facility = _facility_days(con)
        by_type = _by_facility_type(by_facility, _stays(con, "stay_book_in"), _ended_stays(con))
    finally:
        con.close()
    if not daily:
        return []
    last = max(daily)
    year_end = date(fiscal_year(last) - 1, 9, 30)
    as_of_dates = sorted({year_end, *(last - timedelta(days=d) for d in RELEASE_OFFSETS)})
    out_dir.mkdir(parents=True, exist_ok=True)
    facilities = _facility_list()
    return [_write(out_dir, as_of, daily, alos, book_outs, by_facility, facilities, by_type)
            for as_of in as_of_dates if min(daily) <= as_of]


def _daily(con) -> dict[date, dict]:
    """Per day: midnight population by criminality and book-ins, from the metrics' own tables."""
    from iceledger.metrics.registry import compute  # noqa: PLC0415 - heavy, demo-only import
    import ibis

    backend = ibis.duckdb.from_connection(con)
    population = compute("population_criminality", backend).to_pylist()
    book_ins = {r["date"]: r["book_ins"] for r in compute("book_ins_per_day", backend).to_pylist()}
    return {r["date"]: {**r, "book_ins": book_ins.get(r["date"], 0)} for r in population}


def _stays(con, moment: str) -> list[dict]:
    """Stays with a `moment` (stay_book_in or stay_book_out), each once: from the release that
    speaks for its day (releases overlap), as the metrics count them; a stay with any stint in a
    family facility is of facility type FSC, any other Adult."""
    from iceledger.metrics.detention import owned, source_table  # noqa: PLC0415
    import ibis

    backend = ibis.duckdb.from_connection(con)
    stints = source_table(backend, FOIA_STINTS)
    family_codes = [code for code, kind in facility_types().items() if kind == FAMILY]
    in_family = set(stints.filter(stints.facility_code.isin(family_codes)).stay_id
                    .to_pyarrow().to_pylist())
    stays = source_table(backend, FOIA_STAYS)
    stays = owned(backend, stays.filter(stays[moment].notnull()), moment)
    rows = stays.select(day=stays[moment].date(), month=stays[moment].date().truncate("M"),
                        reason=stays.stay_release_reason, label=stays.criminality,
                        days=stays.length_days, stay_id=stays.stay_id).to_pyarrow().to_pylist()
    return [{**row, "facility_type": FAMILY if row["stay_id"] in in_family else ADULT}
            for row in rows]


def _ended_stays(con) -> list[dict]:
    return _stays(con, "stay_book_out")


def facility_types() -> dict[str, str]:
    """The workbooks' facility type of each synthetic facility: family facilities are FSC
    (family staging centers), every other one, holding rooms included, Adult."""
    with data_file("synth_facilities.csv").open(encoding="utf-8") as f:
        return {row["facility_code"]: FAMILY if row["kind"] == "family" else ADULT
                for row in csv.DictReader(f)}


def _monthly_alos(con) -> dict[date, float]:
    """Mean length in days of the stays that ended in each month."""
    lengths: dict[date, list[float]] = defaultdict(list)
    for stay in _ended_stays(con):
        lengths[stay["month"]].append(stay["days"])
    return {month: fmean(values) for month, values in lengths.items()}


def _monthly_book_outs(con) -> dict[tuple[date, str, str], int]:
    """Stays ended per (month, release reason, criminality label), as the workbooks count
    final book-outs."""
    counts: dict[tuple[date, str, str], int] = defaultdict(int)
    for stay in _ended_stays(con):
        if stay["reason"] is not None:
            counts[(stay["month"], stay["reason"], stay["label"])] += 1
    return dict(counts)


def _facility_days(con) -> dict[str, dict[date, int]]:
    from iceledger.metrics.registry import MetricParams, compute  # noqa: PLC0415
    import ibis

    backend = ibis.duckdb.from_connection(con)
    rows = compute("detained_population_daily", backend,
                   MetricParams(by=("facility_code",))).to_pylist()
    found: dict[str, dict[date, int]] = defaultdict(dict)
    for r in rows:
        found[r["facility_code"]][r["date"]] = r["population_midnight"]
    return found


def _facility_list() -> list[dict]:
    with data_file("synth_facilities.csv").open(encoding="utf-8") as f:
        return [row for row in csv.DictReader(f) if row["kind"] != "hold"]


def _months(as_of: date) -> list[date]:
    start = date(fiscal_year(as_of) - 1, 10, 1)
    months, month = [], start
    while month <= as_of:
        months.append(month)
        month = (month.replace(day=28) + timedelta(days=4)).replace(day=1)
    return months


def _days(daily: dict, month: date, as_of: date) -> list[dict]:
    end = min(month.replace(day=calendar.monthrange(month.year, month.month)[1]), as_of)
    return [daily[d] for d in sorted(daily) if month <= d <= end]


def _split(value: float) -> tuple[float, float]:
    """(ICE, CBP) parts of a figure, by the invented ICE_SHARE."""
    return value * ICE_SHARE, value * (1 - ICE_SHARE)


def _by_facility_type(by_facility, booked_in: list[dict], ended: list[dict]) -> dict:
    """The figures ICE prints by facility type: midnight population per type and day (stints, by
    the facility they are in), and the stays booked in (by criminality) and ended (lengths,
    removals), a stay counted as FSC if it passed through a family facility."""
    kinds = facility_types()
    population: dict[str, dict[date, int]] = {kind: defaultdict(int) for kind in (FAMILY, ADULT)}
    for code, days in by_facility.items():
        for day, people in days.items():
            population[kinds.get(code, ADULT)][day] += people
    return {"population": population, "booked_in": booked_in, "ended": ended}


def _write(out_dir: Path, as_of: date, daily, alos, book_outs, by_facility,
           facilities, by_type) -> Path:
    year = fiscal_year(as_of)
    fy = f"FY{year % 100:02d}"
    source_line = f"Data Source: ICE Integrated Decision Support (IIDS), {as_of:%m/%d/%Y}"
    book = openpyxl.Workbook()
    header = book.active
    header.title = "Header"
    header["A1"] = f"ICE DETENTION DATA, FY{year} (SYNTHETIC)"
    header["A2"] = NOTICE
    sheet = book.create_sheet(f"Detention {fy}")
    sheet["A1"] = f"ICE DETENTION DATA, FY{year} (SYNTHETIC)"
    sheet["A2"] = NOTICE
    sheet["A3"] = source_line
    months = _months(as_of)
    row = _detained_now(sheet, 5, daily.get(as_of) or daily[max(d for d in daily if d <= as_of)],
                        year)
    row = _book_ins(sheet, row + 2, daily, months, as_of, year)
    row = _book_outs(sheet, row + 2, book_outs, months, as_of, year)
    row = _by_agency_and_class(sheet, row + 2, year, "Average Daily Population",
                               lambda month, column: _mean_population(daily, month, as_of, column),
                               months)
    row = _by_agency_and_class(sheet, row + 2, year, "Average Length of Stay",
                               lambda month, column: alos.get(month), months, split=False)
    row = _book_ins_by_facility_type(sheet, row + 2, by_type["booked_in"], as_of, year)
    row = _removals(sheet, row + 2, by_type["ended"], as_of, year)
    row = _by_facility_type_and_month(
        sheet, row + 2, year, "Average Daily Population", months,
        lambda kinds, month: _type_population(by_type["population"], kinds, daily, month, as_of))
    _by_facility_type_and_month(
        sheet, row + 2, year, "Average Length of Stay", months,
        lambda kinds, month: _type_stay_length(by_type["ended"], kinds, month, as_of))
    _facilities(book.create_sheet(f"Facilities {fy}"), source_line, year, as_of, by_facility,
                facilities)
    # Every ICE workbook has an ATD sheet; the synthetic records hold no ATD participants, so it
    # carries the table's frame with no rows.
    atd = book.create_sheet(f"ATD {fy} YTD")
    atd["A1"] = NOTICE
    atd["A3"] = "ATD Active Population Counts and Daily Cost by Technology"
    for column, text in enumerate(("Technology", "Count", "Daily Tech Cost"), start=1):
        atd.cell(4, column, text)
    _atd_status(atd, 7, fy)
    _semiannual(book.create_sheet("Semiannual"), year)
    _transgender(book.create_sheet(f"{fy} Trans. Detainee Pop"), year, as_of)
    _vulnerable_segregation(book.create_sheet("Vulnerable & Special Population"), as_of)
    path = out_dir / f"SYNTHETIC_{fy}_detentionStats{as_of:%m%d%Y}.xlsx"
    book.save(path)
    return path


def _detained_now(sheet, row: int, day: dict, year: int) -> int:
    sheet.cell(row, 1, f"ICE Currently Detained by Criminality and Arresting Agency: FY{year}")
    for column, text in enumerate(("Criminality", "ICE", "Percent ICE", "CBP", "Percent CBP",
                                   "Total"), start=1):
        sheet.cell(row + 1, column, text)
    lines = [("Total", day["population_midnight"] - day["criminality_unknown"])]
    lines += [(label, day[key]) for label, key in CLASSES]
    for offset, (label, total) in enumerate(lines, start=2):
        ice = round(total * ICE_SHARE)
        values = (label, ice, ice / total if total else 0, total - ice,
                  (total - ice) / total if total else 0, total)
        for column, value in enumerate(values, start=1):
            sheet.cell(row + offset, column, value)
    return row + 1 + len(lines)


def _month_header(sheet, row: int, first: str, total: str) -> None:
    for column, text in enumerate((first, *MONTHS, total), start=1):
        sheet.cell(row, column, text)


def _book_ins(sheet, row: int, daily, months: list[date], as_of: date, year: int) -> int:
    sheet.cell(row, 1, f"ICE Initial Book-Ins by Arresting Agency and Month: FY{year}")
    _month_header(sheet, row + 1, "Agency", "Total")
    totals = [sum(d["book_ins"] for d in _days(daily, m, as_of)) for m in months]
    ice = [round(t * ICE_SHARE) for t in totals]
    lines = (("Total", totals), ("CBP", [t - i for t, i in zip(totals, ice, strict=True)]),
             ("ICE", ice))
    for offset, (label, values) in enumerate(lines, start=2):
        sheet.cell(row + offset, 1, label)
        for column, value in enumerate(values, start=2):
            sheet.cell(row + offset, column, value)
        sheet.cell(row + offset, 2 + len(MONTHS), sum(values))
    return row + 1 + len(lines)


def _book_outs(sheet, row: int, book_outs, months: list[date], as_of: date, year: int) -> int:
    """Final book-outs by release reason (a Total row, then each reason's total and its three
    criminality rows, the reason printed once), months whole up to the data date."""
    sheet.cell(row, 1, f"ICE Final Book Outs by Release Reason, Month and Criminality: FY{year}")
    for column, text in enumerate(("Release Reason", "Criminality", *MONTHS, "Total"), start=1):
        sheet.cell(row + 1, column, text)
    whole = [m for m in months if _month_end(m) <= as_of]
    reasons = sorted({reason for (_, reason, _) in book_outs})

    def counts(reason: str | None, label: str | None) -> list[int]:
        return [sum(n for (m, r, c), n in book_outs.items()
                    if m == month and (reason is None or r == reason)
                    and (label is None or c == label)) for month in whole]

    lines = [("Total", None, counts(None, None))]
    for reason in reasons:
        lines.append((reason, "Total", counts(reason, None)))
        lines += [(None, label, counts(reason, label)) for label, _ in CLASSES]
    for offset, (reason, label, values) in enumerate(lines, start=2):
        sheet.cell(row + offset, 1, reason)
        sheet.cell(row + offset, 2, label)
        for column, value in enumerate(values, start=3):
            sheet.cell(row + offset, column, value)
        sheet.cell(row + offset, 3 + len(MONTHS), sum(values))
    return row + 1 + len(lines)


def _month_end(month: date) -> date:
    return month.replace(day=calendar.monthrange(month.year, month.month)[1])


def _mean_population(daily, month: date, as_of: date, column: str) -> float | None:
    days = _days(daily, month, as_of)
    if not days:
        return None
    if column == "total":
        return fmean(d["population_midnight"] - d["criminality_unknown"] for d in days)
    return fmean(d[column] for d in days)


def _by_agency_and_class(sheet, row: int, year: int, what: str, figure, months: list[date],
                         split: bool = True) -> int:
    sheet.cell(row, 1, f"ICE {what} by Arresting Agency, Month and Criminality: FY{year}")
    _month_header(sheet, row + 1, "Agency", "FY Overall")
    offset = 2
    for agency, part in (("CBP Average", 1), ("ICE Average", 0), ("Average", None)):
        for label, column in (("", "total"), *CLASSES):
            values = []
            for month in months:
                value = figure(month, column)
                if value is not None and split and part is not None:
                    value = _split(value)[part]
                values.append(value)
            sheet.cell(row + offset, 1, agency if not label else label)
            for position, value in enumerate(values, start=2):
                sheet.cell(row + offset, position, value)
            known = [v for v in values if v is not None]
            sheet.cell(row + offset, 2 + len(MONTHS), fmean(known) if known else None)
            offset += 1
    return row + offset


def _facilities(sheet, source_line: str, year: int, as_of: date, by_facility, facilities) -> None:
    sheet["A1"] = NOTICE
    sheet["A3"] = f"ICE Facilities Data, FY{year} (SYNTHETIC)"
    sheet["A5"] = source_line
    headers = ("Name", "Address", "City", "State", "Zip", "AOR", "Type Detailed", f"FY{year % 100:02d} ALOS",
               "Male Crim", "Male Non-Crim", "Female Crim", "Female Non-Crim")
    for column, text in enumerate(headers, start=1):
        sheet.cell(9, column, text)
    start = date(year - 1, 10, 1)
    row = 10
    for facility in facilities:
        days = [v for d, v in by_facility.get(facility["facility_code"], {}).items()
                if start <= d <= as_of]
        adp = sum(days) / max((as_of - start).days + 1, 1) if days else None
        # The four criminality-by-sex columns the loader sums into adp: all in one, the synthetic
        # records give no split the workbook could print.
        values = (facility["facility_name"], None, None, facility["state"], None,
                  facility["aor_code"], "SYNTHETIC " + facility["kind"].upper(), None,
                  adp, 0, 0, 0)
        for column, value in enumerate(values, start=1):
            sheet.cell(row, column, value)
        row += 1


def _kinds(label: str) -> tuple[str, ...]:
    return (FAMILY, ADULT) if label == "Total" else (label,)


def _in_fiscal_year(stay: dict, as_of: date) -> bool:
    return date(fiscal_year(as_of) - 1, 10, 1) <= stay["day"] <= as_of


def _book_ins_by_facility_type(sheet, row: int, booked_in: list[dict], as_of: date,
                               year: int) -> int:
    """Stays booked in so far in the fiscal year, by the type of their first facility and by
    criminality (stays of unknown criminality are in no class, so in no row)."""
    sheet.cell(row, 1, f"ICE Initial Book-Ins by Facility Type and Criminality: FY{year}")
    for column, text in enumerate(("Facility Type", *(label for label, _ in CLASSES), "Total"),
                                  start=1):
        sheet.cell(row + 1, column, text)
    for offset, label in enumerate(FACILITY_TYPES, start=2):
        counts = [sum(1 for stay in booked_in if stay["label"] == criminality
                      and stay["facility_type"] in _kinds(label) and _in_fiscal_year(stay, as_of))
                  for criminality, _ in CLASSES]
        for column, value in enumerate((label, *counts, sum(counts)), start=1):
            sheet.cell(row + offset, column, value)
    return row + 1 + len(FACILITY_TYPES)


def _is_removal(stay: dict) -> bool:
    return stay["reason"] is not None and "remov" in stay["reason"].lower()


def _removals(sheet, row: int, ended: list[dict], as_of: date, year: int) -> int:
    """Stays ended by removal so far in the fiscal year; those begun in a family facility stand
    for ICE's removals with a family-unit (FAMU) identifier."""
    sheet.cell(row, 1, f"ICE Removals: FY{year}")
    sheet.cell(row + 1, 1, "Removals")
    sheet.cell(row + 1, 2, "Total")
    removed = [s for s in ended if _is_removal(s) and _in_fiscal_year(s, as_of)]
    lines = (("Total", len(removed)), ("Removals with a FAMU Identifier",
                                       sum(1 for s in removed if s["facility_type"] == FAMILY)))
    for offset, (label, value) in enumerate(lines, start=2):
        sheet.cell(row + offset, 1, label)
        sheet.cell(row + offset, 2, value)
    return row + 1 + len(lines)


def _type_population(population, kinds, daily, month: date, as_of: date) -> float | None:
    days = [d for d in sorted(daily) if month <= d <= min(_month_end(month), as_of)]
    if not days:
        return None
    return fmean(sum(population[kind].get(d, 0) for kind in kinds) for d in days)


def _type_stay_length(ended: list[dict], kinds, month: date | None, as_of: date) -> float | None:
    lengths = [s["days"] for s in ended if s["facility_type"] in kinds and s["day"] <= as_of
               and (s["month"] == month if month else _in_fiscal_year(s, as_of))]
    return fmean(lengths) if lengths else None


def _by_facility_type_and_month(sheet, row: int, year: int, what: str, months: list[date],
                                figure) -> int:
    """A month-by-facility-type table; its FY Overall is the mean of the months printed for
    populations and the mean over every stay of the year for lengths of stay."""
    sheet.cell(row, 1, f"ICE {what} by Facility Type and Month: FY{year}")
    _month_header(sheet, row + 1, "Facility Type", "FY Overall")
    for offset, label in enumerate(FACILITY_TYPES, start=2):
        values = [figure(_kinds(label), month) for month in months]
        sheet.cell(row + offset, 1, label)
        for column, value in enumerate(values, start=2):
            sheet.cell(row + offset, column, value)
        known = [v for v in values if v is not None]
        overall = figure(_kinds(label), None) if what.endswith("Stay") else (
            fmean(known) if known else None)
        sheet.cell(row + offset, 2 + len(MONTHS), overall)
    return row + 1 + len(FACILITY_TYPES)


def _atd_status(sheet, row: int, fy: str) -> None:
    """The invented ATD participants by family status (ATD_STATUS), in ICE's layout."""
    sheet.cell(row, 1, "ATD Active Population by Status, Extended Case Management Service, "
                       f"Count and ALIP, {fy}")
    for column, text in enumerate(("FAMU Status", "Count", "ALIP"), start=1):
        sheet.cell(row + 1, column, text)
    total = sum(count for _, count, _ in ATD_STATUS)
    mean_alip = sum(count * alip for _, count, alip in ATD_STATUS) / total
    for offset, values in enumerate((*ATD_STATUS, ("Total", total, mean_alip)), start=2):
        for column, value in enumerate(values, start=1):
            sheet.cell(row + offset, column, value)


def _semiannual(sheet, year: int) -> None:
    """The invented SEMIANNUAL figures for the fiscal years the synthetic records reach, in
    ICE's layout: one small table per population and action."""
    sheet["A1"] = NOTICE
    years = range(year - 1, year + 1)
    row = 3
    for population, actions in SEMIANNUAL:
        for action, people in actions:
            sheet.cell(row, 1, f"{population} {action} FY{years[0]} - FY{year} YTD")
            sheet.cell(row + 1, 1, "Fiscal Year")
            sheet.cell(row + 1, 2, action)
            for offset, fiscal in enumerate(years, start=2):
                sheet.cell(row + offset, 1, f"FY{fiscal}")
                sheet.cell(row + offset, 2, people)
            row += len(years) + 4


def _transgender(sheet, year: int, as_of: date) -> None:
    """The invented TRANSGENDER figures, in ICE's layout (its FY2021 row labels)."""
    sheet["A1"] = NOTICE
    sheet["A3"] = f"ICE Transgender* Detainee Population FY {year} YTD: as of {as_of:%-m/%-d/%Y}"
    sheet["A4"] = f"FY {year} YTD"
    sheet["B4"] = "Count"
    (book_ins_label, book_ins), *held = TRANSGENDER
    lines = ((f"{book_ins_label}{year % 100:02d}", book_ins),
             ("Currently Detained", sum(n for _, n in held)), *held)
    for row, (label, people) in enumerate(lines, start=5):
        sheet.cell(row, 1, label)
        sheet.cell(row, 2, people)


def _vulnerable_segregation(sheet, as_of: date) -> None:
    """The invented SEGREGATION figures for each whole fiscal quarter of the data date's fiscal
    year and the one before, in ICE's layout."""
    sheet["A1"] = NOTICE
    quarters = [(fy, q) for fy in (fiscal_year(as_of) - 1, fiscal_year(as_of))
                for q in range(1, 5) if _quarter_end(fy, q) <= as_of]
    headers = ("Placement Reason", "Number of Placements",
               "Average Number of Consecutive Days in Segregation",
               "Average Number of Cumulative Days in Segregation")
    total = sum(n for _, n, _, _ in SEGREGATION)
    lines = (*SEGREGATION, ("Grand Total", total,
                            *(sum(line[2 + i] * line[1] for line in SEGREGATION) / total
                              for i in range(2))))
    row = 3
    for fy, quarter in quarters:
        sheet.cell(row, 1, f"Fiscal Year (FY) {fy} Quarter {quarter} Data")
        for column, text in enumerate(headers, start=1):
            sheet.cell(row + 1, column, text)
        for offset, values in enumerate(lines, start=2):
            for column, value in enumerate(values, start=1):
                sheet.cell(row + offset, column, value)
        row += len(lines) + 4


def _quarter_end(fy: int, quarter: int) -> date:
    """The last day of a fiscal quarter (Q1 ends on 31 December of the year before)."""
    month = (quarter * 3 + 9 - 1) % 12 + 1
    return _month_end(date(fy - 1 if month >= 10 else fy, month, 1))
