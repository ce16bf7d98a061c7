"""Speed of the detention metrics and of the whole metric suite, on SYNTHETIC data.

    python benchmarks/bench_metrics.py [--stints N] [--arrests N] [--detainers N]
        [--encounters N] [--loop-days N] [--keep DIR] [--spark-master spark://HOST:PORT]

Generates canonical warehouse tables directly with numpy/pyarrow (SYNTHETIC: random people, not
ICE records) over 15 fiscal years, loads them into a DuckDB warehouse in a temporary folder, runs
the derivation's detainer and encounter -> arrest step on them (timed), and prints:

1. daily population, both definitions, every facility, 15 years, from N stints, by the event
   sweep (target: <= 10 s for 10M stints); then, like for like, the sweep and the
   straightforward per-day loop that public analyses use (pandas: for each day, mask the stints
   covering it and count per facility) on the same subset: the older release's stints over the
   days it speaks for (the sweep asked for those days, which only its stints reach). The loop runs
   on --loop-days days spread over that span and is extrapolated to all of them (said so where
   printed); its counts are checked against the sweep's for those days. Target ratio: >= 100x.
2. the whole metric suite (every registered metric, defaults, the human-cost and pipeline
   families among them) on N arrests + N stints + N detainers + N encounters and six SYNTHETIC
   workbooks, wall and CPU seconds (target: <= 30 s), with the pipeline and human-cost subtotals;
3. each metric for one AOR and one year, warm: the median of --warm-runs runs after a first
   one (target: <= 200 ms each);
4. with --spark-master, the same suite on that Spark cluster reading the warehouse's Parquet
   lake (iceledger lake export, timed apart), beside DuckDB's time from 2.

The machine is shared: the load average is printed with the figures.
"""

from __future__ import annotations

import argparse
import os
import shutil
import tempfile
import time
from datetime import date, datetime, timedelta
from functools import partial
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from iceledger.field_offices import field_offices
from iceledger.metrics import REGISTRY, MetricParams, compute
from iceledger.lake import export_lake
from iceledger.metrics.backends import duckdb_backend, spark_backend
from iceledger.sources.foia.derived import FOLLOWED_BY_ARREST, DerivedSummary, follow_to_arrests
from iceledger.warehouse import DERIVE_MEMORY_LIMIT, Warehouse

EPOCH = datetime(1970, 1, 1)
FIRST_DAY = date(2011, 10, 1)
LAST_DAY = date(2026, 9, 30)  # 15 fiscal years
# Two releases overlapping by a quarter, as the real 2012-2023 and 2023-2025 releases do.
RELEASES = (("2023-09-30", FIRST_DAY, date(2023, 9, 30)), ("2026-09-30", date(2023, 7, 1), LAST_DAY))
FACILITIES = 500
MEAN_STAY_DAYS = 45.0
CRIMINALITY = ("Convicted Criminal", "Pending Criminal Charges", "Other Immigration Violator")
REASONS = ("Removed", "Bonded Out", "Order of Supervision", "Order of Recognizance", "Paroled",
           "Voluntary Departure", "Transferred")
METHODS = (("Located", "at-large"), ("Non-Custodial Arrest", "at-large"),
           ("CAP Local Incarceration", "custodial"), ("287(g) Program", "custodial"))
COUNTRIES = tuple(f"COUNTRY {i:02d}" for i in range(20))
JAILS = ("FULTON COUNTY JAIL", "STATE PRISON AT JOLIET", "FCI OAKDALE", "PROCESSING CENTER")
LIFTS = ("Subject Taken Into ICE Custody", "Released by Law Enforcement Agency",
         "Detainer Declined by Law Enforcement Agency", "Detainer Cancelled")
# Shares of detainers and encounters that are of a person ICE arrests (days before the arrest).
UPSTREAM_OF_ARREST = {"detainers": (0.6, 75), "encounters": (0.3, 20)}
CASE_STATUSES = ("ACTIVE", "6-Deported/Removed - Deportability", "B-Relief Granted",
                 "A-Proceedings Terminated")
CASE_CATEGORIES = ("[8F] Expedited Removal", "[16] Reinstated Final Order",
                   "[5D] Final Order of Removal")
ONE_AOR, ONE_YEAR = "Atlanta", (date(2024, 1, 1), date(2024, 12, 31))


def seconds(day: date) -> int:
    return int((datetime.combine(day, datetime.min.time()) - EPOCH).total_seconds())


def timestamps(values: np.ndarray, valid: np.ndarray | None = None) -> pa.Array:
    return pa.array(values.astype("datetime64[s]").astype("datetime64[us]"),
                    mask=None if valid is None else ~valid)


def labels(choices: tuple[str, ...], codes: np.ndarray) -> pa.Array:
    return pa.DictionaryArray.from_arrays(pa.array(codes, pa.int32()), pa.array(choices)).cast(
        pa.string())


def ids(prefix: str, n: int, offset: int = 0) -> pa.Array:
    return pa.array(np.char.add(prefix, np.arange(offset, offset + n).astype(str)))


def synthetic_tables(n_stints: int, n_arrests: int, n_detainers: int, n_encounters: int,
                     seed: int = 2026) -> dict[str, pa.Table]:
    """Canonical FOIA tables (docs/codebook.md) with their derived tables, all SYNTHETIC."""
    rng = np.random.default_rng(seed)
    offices = field_offices()
    start, end = seconds(FIRST_DAY), seconds(LAST_DAY)
    n_stays = int(n_stints / 1.25)
    split = rng.random(n_stays) < (n_stints - n_stays) / n_stays  # stays of two stints
    book_in = np.sort(rng.integers(start, end, n_stays))
    length = rng.exponential(MEAN_STAY_DAYS * 86_400, n_stays).astype(np.int64)
    release = (book_in >= seconds(RELEASES[1][1])).astype(np.int32)
    coverage_end = np.array([seconds(r[2]) for r in RELEASES])[release]
    book_out = book_in + length
    closed = book_out < coverage_end
    criminality = rng.integers(0, 3, n_stays)
    aor = rng.integers(0, len(offices), n_stays)
    country = rng.integers(0, len(COUNTRIES), n_stays)
    reason = rng.integers(0, len(REASONS), n_stays)
    facility = (rng.zipf(1.3, n_stays) - 1) % FACILITIES
    release_names = labels(tuple(r[0] for r in RELEASES), release)
    stay_ids = ids("stay-", n_stays)
    person_ids = ids("person-", n_stays)
    aor_names = labels(tuple(o.name for o in offices), aor)
    aor_codes = labels(tuple(o.code for o in offices), aor)
    crim = labels(CRIMINALITY, criminality)
    countries = labels(COUNTRIES, country)
    reasons = pa.array(np.array(REASONS, dtype=object)[reason], mask=~closed)
    end_time = np.where(closed, book_out, coverage_end)
    stays = pa.table({
        "stay_id": stay_ids, "person_id": person_ids, "release": release_names,
        "stay_book_in": timestamps(book_in), "stay_book_out": timestamps(book_out, closed),
        "censored": pa.array(~closed), "end_time": timestamps(end_time),
        "length_days": pa.array((end_time - book_in) / 86_400.0),
        "stay_release_reason": reasons, "criminality": crim, "aor": aor_names,
        "aor_code": aor_codes, "first_facility_code": labels(_facility_codes(), facility),
        "n_stints": pa.array(np.where(split, 2, 1)), "citizenship_country": countries,
        "gender": labels(("Male", "Female"), rng.integers(0, 2, n_stays)),
    })
    # Stints: every stay's first placement, and a second one for split stays (moved half-way).
    moved = book_in + length // 2
    first_out = np.where(split, moved, book_out)
    first_closed = split | closed
    second = np.flatnonzero(split)
    rows = np.concatenate([np.arange(n_stays), second])
    stint_in = np.concatenate([book_in, moved[second]])
    stint_out = np.concatenate([first_out, book_out[second]])
    stint_closed = np.concatenate([first_closed, closed[second]])
    stint_facility = np.concatenate([facility, (facility[second] + 1) % FACILITIES])
    # What the human-cost metrics read: birth years, entry dates, case statuses, facility names.
    extra = np.random.default_rng(seed + 1)
    birth_year = pa.array(extra.integers(1945, 2012, n_stays))
    entry_date = pa.array((book_in // 86_400 - extra.integers(0, 30 * 365, n_stays))
                          .astype("datetime64[D]"))
    case_status = labels(CASE_STATUSES, extra.integers(0, len(CASE_STATUSES), n_stays))
    # The same per stay, as the derive carries them (every stint of a stay records them).
    family = np.array([name.startswith("FAMILY") for name in _facility_names()])
    for column, values in (
        ("entry_date", entry_date), ("birth_date", pa.nulls(n_stays, pa.date32())),
        ("birth_year", birth_year.cast(pa.int32())), ("case_status", case_status),
        ("family_facility", pa.array(family[facility]
                                     | (split & family[(facility + 1) % FACILITIES]))),
    ):
        stays = stays.append_column(column, values)
    stints = pa.table({
        "record_id": ids("stint-", len(rows)), "release": release_names.take(rows),
        "stay_id": stay_ids.take(rows), "person_id": person_ids.take(rows),
        "stay_book_in": timestamps(book_in[rows]), "book_in": timestamps(stint_in),
        "book_out": timestamps(stint_out, stint_closed),
        "stay_book_out": timestamps(book_out[rows], closed[rows]),
        "facility_code": labels(_facility_codes(), stint_facility),
        "stay_release_reason": reasons.take(rows), "criminality": crim.take(rows),
        "aor": aor_names.take(rows), "aor_code": aor_codes.take(rows),
        "citizenship_country": countries.take(rows), "is_duplicate": pa.array(np.zeros(len(rows), bool)),
        "facility_name": labels(_facility_names(), stint_facility),
        "birth_year": birth_year.take(rows), "entry_date": entry_date.take(rows),
        "case_status": case_status.take(rows),
    })
    # Arrests: 70% lead to a stay booked in 0-3 days later; the rest are never detained.
    linked = min(n_stays, int(n_arrests * 0.7))
    arrest_time = np.concatenate([
        book_in[:linked] - rng.integers(0, 3 * 86_400, linked),
        rng.integers(start, end, n_arrests - linked),
    ])
    a_release = (arrest_time >= seconds(RELEASES[1][1])).astype(np.int32)
    a_aor = np.concatenate([aor[:linked], rng.integers(0, len(offices), n_arrests - linked)])
    a_crim = np.concatenate([criminality[:linked], rng.integers(0, 3, n_arrests - linked)])
    method = rng.integers(0, len(METHODS), n_arrests)
    arrest_ids = ids("arrest-", n_arrests)
    arrests = pa.table({
        "record_id": arrest_ids, "release": labels(tuple(r[0] for r in RELEASES), a_release),
        "person_id": ids("person-", n_arrests), "apprehension_date": timestamps(arrest_time),
        "aor": labels(tuple(o.name for o in offices), a_aor),
        "aor_code": labels(tuple(o.code for o in offices), a_aor),
        "criminality": labels(CRIMINALITY, a_crim),
        "apprehension_method": labels(tuple(m[0] for m in METHODS), method),
        "arrest_setting": labels(tuple(m[1] for m in METHODS), method),
        "apprehension_state": labels(("GA", "TX", "CA", "IL", "NY"), rng.integers(0, 5, n_arrests)),
        "citizenship_country": labels(COUNTRIES, rng.integers(0, len(COUNTRIES), n_arrests)),
        "is_duplicate": pa.array(rng.random(n_arrests) < 0.05),
        "birth_year": pa.array(extra.integers(1945, 2012, n_arrests)),
        "gender": labels(("Male", "Female"), extra.integers(0, 2, n_arrests)),
        # Derived: every person here is arrested once, so no episode has a previous one.
        "previous_episode_date": pa.nulls(n_arrests, pa.timestamp("us")),
        # Derived: nor can one's records disagree on birth year, gender or citizenship.
        "identity_conflict": pa.nulls(n_arrests, pa.bool_()),
        # Derived: of the stay an arrest led to (the first `linked` arrests), its entry date,
        # the days to it, when and why it ended, and the days to the removal that ended it.
        **{column: pa.concat_arrays([values, pa.nulls(n_arrests - linked, values.type)])
           for column, values in (
               ("stay_entry_date", entry_date.slice(0, linked)),
               ("days_to_stay", pa.array((book_in[:linked] - arrest_time[:linked]) / 86_400.0)),
               ("stay_ended_at", timestamps(book_out[:linked], closed[:linked])),
               ("stay_end_reason", reasons.slice(0, linked)),
               ("days_to_removal", pa.array(
                   (book_out[:linked] // 86_400 - arrest_time[:linked] // 86_400)
                   .astype(np.int32), mask=~(closed & (reason == 0))[:linked])))},
    })
    links = pa.table({
        "arrest_record_id": arrest_ids.slice(0, linked), "stay_id": stay_ids.slice(0, linked),
        "days_from_arrest": pa.array((book_in[:linked] - arrest_time[:linked]) / 86_400.0),
        "apprehension_date": timestamps(arrest_time[:linked]),
    })
    # In arrest order, as foia_derived writes them.
    links = links.take(pa.array(np.argsort(arrest_time[:linked], kind="stable")))
    removed = np.flatnonzero(closed & (reason == 0))
    departed = (book_out[removed] // 86_400).astype("datetime64[D]")
    removals = pa.table({
        "record_id": ids("removal-", len(removed)), "release": release_names.take(removed),
        "person_id": person_ids.take(removed), "departed_date": pa.array(departed),
        "aor": aor_names.take(removed), "criminality": crim.take(removed),
        "citizenship_country": countries.take(removed),
        "departure_country": countries.take(removed),
        "case_category": labels(CASE_CATEGORIES, extra.integers(0, len(CASE_CATEGORIES),
                                                                len(removed))),
    })
    removal_links = pa.table({
        "removal_record_id": removals["record_id"], "stay_id": stay_ids.take(removed),
        "arrest_record_id": pa.array(
            np.where(removed < linked, np.char.add("arrest-", removed.astype(str)), None)),
    })
    release_table = pa.table({
        "release": [r[0] for r in RELEASES],
        "coverage_start": pa.array([r[1] for r in RELEASES], pa.date32()),
        "coverage_end": pa.array([r[2] for r in RELEASES], pa.date32()),
    })
    upstream = {
        f"foia_{kind}": upstream_table(rng, kind, n, arrest_time, offices, (start, end))
        for kind, n in (("detainers", n_detainers), ("encounters", n_encounters))
    }
    return {
        **upstream,
        "foia_stays": stays, "foia_stints": stints, "foia_arrests": arrests,
        "foia_arrest_stay_links": links, "foia_removals": removals,
        "foia_removal_links": removal_links, "foia_releases": release_table,
        **stats_tables(rng),
    }


def upstream_table(rng: np.random.Generator, kind: str, n: int, arrest_time: np.ndarray, offices,
                   span: tuple[int, int]) -> pa.Table:
    """Detainers or encounters: a share of them of people ICE arrests, made up to some days
    before the arrest (arrest i's person is `person-i`); the rest of people never arrested."""
    share, days_before = UPSTREAM_OF_ARREST[kind]
    of_arrested = min(int(n * share), len(arrest_time))
    arrested = rng.integers(0, len(arrest_time), of_arrested)
    when = np.concatenate([
        arrest_time[arrested] - rng.integers(0, days_before * 86_400, of_arrested),
        rng.integers(*span, n - of_arrested),
    ])
    persons = np.concatenate([arrested, len(arrest_time) + np.arange(n - of_arrested)])
    release = (when >= seconds(RELEASES[1][1])).astype(np.int32)
    aor = rng.integers(0, len(offices), n)
    moment = "detainer_prepare_date" if kind == "detainers" else "event_date"
    table = {
        "record_id": ids(f"{kind}-", n), "release": labels(tuple(r[0] for r in RELEASES), release),
        moment: timestamps(when),
        "person_id": pa.array(np.char.add("person-", persons.astype(str))),
        "aor": labels(tuple(o.name for o in offices), aor),
        "aor_code": labels(tuple(o.code for o in offices), aor),
        "criminality": labels(CRIMINALITY, rng.integers(0, 3, n)),
        "is_exact_duplicate": pa.array(np.zeros(n, bool)),
    }
    if kind == "detainers":
        table.update(
            facility_name=labels(JAILS, rng.integers(0, len(JAILS), n)),
            facility_state=labels(("GEORGIA", "TEXAS", "CALIFORNIA"), rng.integers(0, 3, n)),
            detainer_type=labels(("I-247A",), np.zeros(n, np.int32)),
            detainer_lift_reason=labels(LIFTS, rng.integers(0, len(LIFTS), n)),
        )
    else:
        table.update(event_type=labels(("Encounter", "In-Custody Encounter"),
                                       rng.integers(0, 2, n)),
                     lead_source=labels(("Law Enforcement Agency", "Public"),
                                        rng.integers(0, 2, n)))
    return pa.table(table)


def _facility_codes() -> tuple[str, ...]:
    return tuple(f"F{i:03d}" for i in range(FACILITIES))


def _facility_names() -> tuple[str, ...]:
    return tuple(f"FACILITY {code}" if i % 50 else f"FAMILY RESIDENTIAL CENTER {code}"
                 for i, code in enumerate(_facility_codes()))


def stats_tables(rng: np.random.Generator) -> dict[str, pa.Table]:
    """Workbook tables for FY2021-FY2026, one workbook per fiscal year (SYNTHETIC figures)."""
    years = range(2021, 2027)
    workbooks = [f"FY{y % 100}_detentionStats.xlsx" for y in years]
    months = [(wb, y, date(y - 1 if m >= 10 else y, m, 1))
              for wb, y in zip(workbooks, years, strict=True) for m in (*range(10, 13), *range(1, 10))]

    def monthly(value: str, dims: dict[str, tuple[str, ...]]) -> pa.Table:
        keys = [()]
        for options in dims.values():
            keys = [(*k, o) for k in keys for o in options]
        rows = [{"workbook": wb, "fiscal_year": y, "month": m, **dict(zip(dims, k, strict=True)),
                 value: float(rng.integers(1_000, 60_000)), "sheet": "Detention", "cell_range": "B9"}
                for wb, y, m in months for k in keys]
        return pa.Table.from_pylist(rows)

    agencies = ("ICE", "CBP", "Total")
    return {
        **human_cost_tables(rng, workbooks, years, monthly),
        "stats_workbooks": pa.table({
            "workbook": workbooks, "sha256": [f"{i:064d}" for i in years],
            "fiscal_year": list(years), "file_date": [date(y, 9, 20) for y in years],
            "as_of_date": [date(y, 9, 15) for y in years]}),
        "stats_adp": monthly("adp", {"agency": agencies, "criminality": (*CRIMINALITY, "Total")}),
        "stats_alos": monthly("alos_days", {"agency": agencies,
                                            "criminality": (*CRIMINALITY, "Total")}),
        "stats_book_ins": monthly("book_ins", {"agency": agencies}),
        "stats_book_outs": monthly("book_outs", {"release_reason": ("Bonded Out", "Paroled", "Total"),
                                                 "criminality": (*CRIMINALITY, "Total")}),
        "stats_detained_now": pa.Table.from_pylist([
            {"workbook": wb, "fiscal_year": y, "criminality": c, "agency": a,
             "detained": float(rng.integers(1_000, 60_000)), "sheet": "Detention", "cell_range": "C4"}
            for wb, y in zip(workbooks, years, strict=True) for c in (*CRIMINALITY, "Total") for a in agencies]),
        # Loaded with every workbook (docs/codebook.md); one passing check each.
        "stats_checks": pa.Table.from_pylist([
            {"workbook": wb, "check": "ICE + CBP = Total", "table": "stats_book_ins",
             "status": "pass", "detail": "", "location": "Detention!B9", "expected": 0.0,
             "observed": 0.0, "compared_with": None}
            for wb in workbooks]).cast(pa.schema(
                [(c, pa.string()) for c in ("workbook", "check", "table", "status", "detail",
                                            "location")]
                + [("expected", pa.float64()), ("observed", pa.float64()),
                   ("compared_with", pa.string())])),
        "stats_facilities": pa.Table.from_pylist([
            {"workbook": wb, "sha256": f"{y:064d}", "fiscal_year": y, "name": f"FACILITY {code}",
             "type_detailed": "IGSA", "city": "CITY", "state": "GA", "zip": "30301",
             "aor": ("ATL", "HOU", "CHI")[i % 3], "adp": float(rng.integers(0, 2_000)),
             "alos": float(rng.integers(1, 90)), "sheet": "Facilities", "cell_range": f"A{i + 8}"}
            for wb, y in zip(workbooks, years, strict=True)
            for i, code in enumerate(_facility_codes())]),
    }


# Labels of ICE's published human-cost tables, as its workbooks print them.
FAMILY_FACILITY_TYPES = ("FSC", "Adult", "Total")
REMOVAL_CATEGORIES = ("Total", "Removals with a FAMU Identifier")
ATD_STATUSES = ("FAMU", "ECMS-FAMU", "Single Adult", "Total")
TRANSGENDER_ROWS = ("Total Book-Ins", "Currently Detained", "Currently Detained with Final Order",
                    "Currently Detained without Final Order")
PLACEMENT_REASONS = ("Disciplinary", "Medical/Mental Health", "Total")
SPECIAL_POPULATIONS = ("United States Citizens", "Parents of USC", "United States Armed Forces")


def human_cost_tables(rng: np.random.Generator, workbooks: list[str], years: range,
                      monthly) -> dict[str, pa.Table]:
    """The workbook tables the published human-cost metrics read, one snapshot per workbook
    (SYNTHETIC figures)."""
    releases = list(zip(workbooks, years, strict=True))

    def snapshot(value: str, labels_by_column: dict[str, tuple], sheet: str = "Detention",
                 extra_rows=((),), extra_columns: tuple[str, ...] = (),
                 days: tuple[str, ...] = ()) -> pa.Table:
        keys = [()]
        for options in labels_by_column.values():
            keys = [(*k, o) for k in keys for o in options]
        return pa.Table.from_pylist([
            {"workbook": wb, "sha256": f"{y:064d}", "fiscal_year": y,
             "snapshot_date": date(y, 9, 15), "as_of_source": "footnote",
             **dict(zip(labels_by_column, k, strict=True)),
             **dict(zip(extra_columns, e(y) if callable(e) else e, strict=True)),
             value: float(rng.integers(0, 60_000)), **{d: rng.random() * 90 for d in days},
             "sheet": sheet, "cell_range": "A1"}
            for wb, y in releases for k in keys for e in extra_rows])

    quarters = [lambda y, q=q: (y, q) for q in range(1, 5)]
    fiscal_years = [lambda y, past=past: (y - past,) for past in range(8)]
    return {
        "stats_adp_by_facility_type": monthly("adp", {"facility_type": FAMILY_FACILITY_TYPES}),
        "stats_alos_by_facility_type": monthly("alos_days",
                                               {"facility_type": FAMILY_FACILITY_TYPES}),
        "stats_book_ins_by_facility_type": snapshot(
            "book_ins", {"facility_type": FAMILY_FACILITY_TYPES,
                         "criminality": (*CRIMINALITY, "Total")}),
        "stats_removals": snapshot("removals", {"category": REMOVAL_CATEGORIES}),
        "stats_atd_status": snapshot("participants", {"status": ATD_STATUSES}, "ATD"),
        "stats_transgender": snapshot("people", {"category": TRANSGENDER_ROWS}, "Trans"),
        "stats_segregation_vulnerable": snapshot(
            "placements", {"placement_reason": PLACEMENT_REASONS}, "Vulnerable",
            quarters, ("data_fiscal_year", "quarter"),
            ("avg_consecutive_days", "avg_cumulative_days")),
        "stats_semiannual": snapshot(
            "people", {"population": SPECIAL_POPULATIONS, "action": ("Arrests", "Removals")},
            "Semiannual", fiscal_years, ("data_fiscal_year",)),
    }


def per_day_loop(stints, days: list[date]) -> dict[tuple[date, str], tuple[int, int]]:
    """The straightforward way: for each day, mask the stints covering it, count per facility."""
    counts = {}
    for day in days:
        midnight = np.datetime64(day, "us")
        next_midnight = midnight + np.timedelta64(1, "D")
        # The midnight that closes the day: booked in before it, out at or after it.
        held_at_midnight = (stints.book_in < next_midnight) & (stints.book_out >= next_midnight)
        held_that_day = (stints.book_in < next_midnight) & (stints.book_out >= midnight)
        at_midnight = stints[held_at_midnight].groupby("facility_code").size()
        that_day = stints[held_that_day].groupby("facility_code").size()
        for facility, n in that_day.items():
            counts[(day, facility)] = (int(at_midnight.get(facility, 0)), int(n))
    return counts


OLDER_RELEASE = RELEASES[0][0]
# The days the older release speaks for: the newer one speaks from its own start.
OLDER_DAYS = (FIRST_DAY, RELEASES[1][1] - timedelta(days=1))


def loop_input(warehouse: Path):
    """Stints as a public analysis would hold them: non-duplicate, open ones to the release end."""
    with Warehouse(warehouse).connect(read_only=True) as con:
        return con.sql(f"""
            SELECT s.facility_code, s.book_in,
                   coalesce(s.book_out, CAST(r.coverage_end + 1 AS TIMESTAMP)) AS book_out
            FROM foia_stints s JOIN foia_releases r USING (release)
            WHERE NOT s.is_duplicate AND s.release = '{OLDER_RELEASE}'
        """).df()


def stints_reaching(warehouse: Path, last_day: date) -> dict[str, int]:
    """Non-duplicate stints booked in by `last_day`, per release: what a sweep to it reads."""
    with Warehouse(warehouse).connect(read_only=True) as con:
        return dict(con.execute(
            "SELECT release, count(*) FROM foia_stints "
            "WHERE NOT is_duplicate AND book_in < ? GROUP BY release",
            [last_day + timedelta(days=1)]).fetchall())


def follow_upstream_records(warehouse: Warehouse) -> str:
    """The derivation's own detainer and encounter -> arrest step on the loaded tables (generated
    derived already, but for these columns); what it took, wall and CPU."""
    summary = DerivedSummary()
    taken = []
    with warehouse.connect(memory_limit=DERIVE_MEMORY_LIMIT) as con:
        for table in FOLLOWED_BY_ARREST:
            cpu = time.process_time()
            _, wall = timed(partial(follow_to_arrests, con, table, True, summary))
            taken.append(f"{table} {wall:.1f} s ({time.process_time() - cpu:.1f} s CPU)")
    return "followed to arrests by the derivation: " + ", ".join(taken)


def _rerun(name: str, backend, params: MetricParams):
    """The metric again, warm: its SQL compiled, every query run (kept results dropped)."""
    backend.forget_results()
    return compute(name, backend, params)


def timed(action):
    started = time.perf_counter()
    result = action()
    return result, time.perf_counter() - started


def suite_on_spark(warehouse: Path, lake: Path, master: str, duckdb_seconds: float) -> None:
    result, exported = timed(lambda: export_lake(Warehouse(warehouse), lake))
    backend, started = timed(lambda: spark_backend(lake=lake, master=master))
    suite = {}
    for name in sorted(REGISTRY):
        _, suite[name] = timed(partial(compute, name, backend))
    total = sum(suite.values())
    print(f"\n4. the suite on the Spark cluster {master}: {total:.1f} s (DuckDB, 2.: "
          f"{duckdb_seconds:.1f} s); lake export {exported:.1f} s "
          f"({sum(result.tables.values()):,} rows), session and lake views {started:.1f} s; "
          "slowest: " + ", ".join(f"{n} {s:.1f} s"
                                  for n, s in sorted(suite.items(), key=lambda i: -i[1])[:4]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--stints", type=int, default=10_000_000)
    parser.add_argument("--arrests", type=int, default=10_000_000)
    parser.add_argument("--detainers", type=int, default=10_000_000)
    parser.add_argument("--encounters", type=int, default=10_000_000)
    parser.add_argument("--loop-days", type=int, default=20)
    parser.add_argument("--warm-runs", type=int, default=5)
    parser.add_argument("--keep", type=Path, help="Keep the generated warehouse in this folder.")
    parser.add_argument("--spark-master", help="Also run the suite on this Spark cluster.")
    args = parser.parse_args()
    folder = args.keep or Path(tempfile.mkdtemp(prefix="iceledger-bench-"))
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "synthetic.duckdb"
    try:
        if not path.exists():
            tables, made = timed(lambda: synthetic_tables(args.stints, args.arrests,
                                                          args.detainers, args.encounters))
            warehouse = Warehouse(path)
            _, loaded = timed(lambda: [warehouse.replace_table(n, t) for n, t in tables.items()])
            followed = follow_upstream_records(warehouse)
            print(f"SYNTHETIC warehouse: {tables['foia_stints'].num_rows:,} stints, "
                  f"{tables['foia_arrests'].num_rows:,} arrests, "
                  f"{tables['foia_detainers'].num_rows:,} detainers, "
                  f"{tables['foia_encounters'].num_rows:,} encounters ({made:.1f} s to generate, "
                  f"{loaded:.1f} s to load) at {path}; {followed}")
            del tables
        print(f"load average at start: {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
        backend = duckdb_backend(path)
        by_facility = MetricParams(by=("facility_code",))
        population, sweep_s = timed(lambda: compute("detained_population_daily", backend, by_facility))
        print(f"\n1. daily population, both definitions, {FACILITIES} facilities, "
              f"{(LAST_DAY - FIRST_DAY).days + 1:,} days: {population.num_rows:,} rows in "
              f"{sweep_s:.2f} s by event sweep (target <= 10 s)")
        del population
        stints = loop_input(path)
        full_days = (OLDER_DAYS[1] - OLDER_DAYS[0]).days + 1
        reached = stints_reaching(path, OLDER_DAYS[1])
        older_only = MetricParams(by=("facility_code",), start=OLDER_DAYS[0], end=OLDER_DAYS[1])
        subset, subset_s = timed(lambda: compute("detained_population_daily", backend, older_only))
        later = len(stints) - reached.get(OLDER_RELEASE, 0)
        same = (f"the sweep reads {reached.get(OLDER_RELEASE, 0):,} of them, the other {later:,} "
                "begin after those days" if set(reached) == {OLDER_RELEASE} else
                f"NOT LIKE FOR LIKE: the sweep reads stints of {sorted(reached)}")
        print(f"   like for like, the older release's {len(stints):,} stints over the "
              f"{full_days:,} days it speaks for, {OLDER_DAYS[0]} to {OLDER_DAYS[1]} ({same}):")
        print(f"   event sweep (--from/--to those days): {subset.num_rows:,} rows in "
              f"{subset_s:.2f} s")
        # Days spread over the span, so that the loop sees early and steady-state populations.
        days = [OLDER_DAYS[0] + timedelta(days=i * full_days // args.loop_days)
                for i in range(args.loop_days)]
        looped, loop_s = timed(partial(per_day_loop, stints, days))
        extrapolated = loop_s / len(days) * full_days
        on_days = pc.is_in(subset["date"], value_set=pa.array(days, pa.date32()))
        swept = {(r["date"], r["facility_code"]): (r["population_midnight"], r["population_24h"])
                 for r in subset.filter(on_days).to_pylist()}
        swept = {k: v for k, v in swept.items() if v != (0, 0)}
        agree = "agree" if swept == looped else "DISAGREE"
        print(f"   per-day loop (pandas): {loop_s:.2f} s for {len(days)} of those days, "
              f"{loop_s / len(days) * 1000:.0f} ms a day (the two methods {agree} on them); "
              f"extrapolated to all {full_days:,} days: {extrapolated:,.0f} s")
        print(f"   ratio, extrapolated loop / sweep on the same stints and days: "
              f"{extrapolated / subset_s:,.0f}x (goal >= 100x)")
        del stints, subset

        # Results the backend kept so far (small ones, 1.'s among them) are not the suite's.
        backend.forget_results()
        suite = {}
        cpu_started = time.process_time()
        for name in sorted(REGISTRY):
            _, suite[name] = timed(partial(compute, name, backend))
        cpu = time.process_time() - cpu_started
        total = sum(suite.values())
        print(f"\n2. whole metric suite ({len(suite)} metrics, defaults): {total:.1f} s wall, "
              f"{cpu:.1f} s CPU (target <= 30 s); slowest: " + ", ".join(
                  f"{n} {s:.1f} s" for n, s in sorted(suite.items(), key=lambda i: -i[1])[:4]))
        for question in ("pipeline", "human_cost"):
            part = {n: s for n, s in suite.items() if REGISTRY[n].question == question}
            print(f"   of which {question}: {len(part)} metrics, {sum(part.values()):.1f} s; "
                  "slowest: " + ", ".join(f"{n} {s:.1f} s" for n, s in
                                          sorted(part.items(), key=lambda i: -i[1])[:3]))

        slice_times = {}
        for name, metric in sorted(REGISTRY.items()):
            params = MetricParams(start=ONE_YEAR[0], end=ONE_YEAR[1],
                                  filters={"aor": (ONE_AOR,)} if "aor" in metric.filters else {})
            compute(name, backend, params)
            warm = sorted(timed(partial(_rerun, name, backend, params))[1]
                          for _ in range(args.warm_runs))
            slice_times[name] = warm[len(warm) // 2]
        over = {n: s for n, s in slice_times.items() if s > 0.2}
        print(f"\n3. one AOR ({ONE_AOR}, where the metric filters by AOR) and one year, warm "
              f"(each metric's median of {args.warm_runs} runs after a first): "
              f"median {sorted(slice_times.values())[len(slice_times) // 2] * 1000:.0f} ms, "
              f"max {max(slice_times.values()) * 1000:.0f} ms (target <= 200 ms each); "
              + ("over target: " + ", ".join(f"{n} {s * 1000:.0f} ms" for n, s in
                                              sorted(over.items(), key=lambda i: -i[1]))
                 if over else "all within target"))
        if args.spark_master:
            suite_on_spark(path, folder / "lake", args.spark_master, total)
        print(f"\nload average at end: {os.getloadavg()[0]:.1f}")
    finally:
        if args.keep is None:
            shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()
