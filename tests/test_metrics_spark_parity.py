"""Every registered metric gives the same answer on PySpark as on DuckDB.

The warehouse is small and SYNTHETIC (seeded random people, not ICE records): raw FOIA arrests,
stints, removals, detainers and encounters in two overlapping releases, run through the real
derivation (stays, links, duplicate flags, release coverage), plus two hand-made
detention-statistics workbooks and the three of the published human-cost tests. Each metric runs
with its defaults on both engines (Spark takes seconds per query, so breakdowns run only where
they take another path through the code).
"""

from __future__ import annotations

import math
from datetime import date, datetime, timedelta

import numpy as np
import pyarrow as pa
import pytest
from conftest_spark import spark_session  # noqa: F401  (the shared session fixture)
from test_metrics_published_human_cost import stats_tables as published_human_cost_tables

from iceledger.metrics import REGISTRY, MetricParams, compute
from iceledger.metrics.backends import duckdb_backend, spark_backend
from iceledger.metrics.registry import FISCAL_YEAR
from iceledger.sources.foia.derived import rebuild_derived
from iceledger.warehouse import Warehouse

pytestmark = pytest.mark.spark

RELEASES = (date(2024, 12, 31), date(2025, 3, 31))
CRIMINALITY = ("Convicted Criminal", "Pending Criminal Charges", "Other Immigration Violator")
REASONS = ("Removed", "Bonded Out", "Order of Supervision", "Voluntary Departure", "Transferred")
AORS = (("Atlanta", "ATL", "GA"), ("Chicago", "CHI", "IL"), ("Houston", "HOU", "TX"))
METHODS = (("Located", "at-large"), ("CAP Local Incarceration", "custodial"))
JAILS = (("FULTON COUNTY JAIL", "GEORGIA"), ("FCI OAKDALE", "LOUISIANA"),
         ("STATE PRISON AT JOLIET", "ILLINOIS"))
LIFTS = ("Subject Taken Into ICE Custody", "Released by Law Enforcement Agency", None)


def synthetic_world(people: int = 160, seed: int = 7) -> dict[str, list[dict]]:
    """Arrests, stints and removals as they happened (before any release cuts them off)."""
    rng = np.random.default_rng(seed)
    start = datetime(2024, 10, 1)
    world: dict[str, list[dict]] = {"arrests": [], "stints": [], "removals": [], "detainers": [],
                                    "encounters": []}
    # Detainers and encounters draw from their own stream, leaving the other tables as they were.
    upstream = np.random.default_rng(seed + 1)
    for person in range(people):
        pid = f"P{person:04d}"
        aor, aor_code, state = AORS[rng.integers(len(AORS))]
        method, setting = METHODS[rng.integers(len(METHODS))]
        criminality = CRIMINALITY[rng.integers(len(CRIMINALITY))]
        arrested = start + timedelta(minutes=int(rng.integers(0, 175 * 24 * 60)))
        country = "UNITED STATES" if person % 23 == 0 else ("MEXICO", "GUATEMALA")[person % 2]
        common = {"person_id": pid, "aor": aor, "aor_code": aor_code, "criminality": criminality,
                  "citizenship_country": country, "birth_year": 1960 + person % 50,
                  "gender": ("Male", "Female")[person % 5 == 0]}
        world["arrests"].append({**common, "apprehension_date": arrested,
                                 "apprehension_method": method, "arrest_setting": setting,
                                 "apprehension_state": state})
        if person % 9 == 0:  # a second arrest row within 24 hours: a duplicate
            world["arrests"].append({**common, "apprehension_date": arrested + timedelta(hours=3),
                                     "apprehension_method": method, "arrest_setting": setting,
                                     "apprehension_state": state})
        jail, state = JAILS[person % len(JAILS)]
        if setting == "custodial" or person % 5 == 0:  # a detainer, before the arrest or never
            lead = timedelta(days=int(upstream.integers(0, 40)), hours=int(upstream.integers(24)))
            world["detainers"].append({
                **common, "detainer_prepare_date": arrested - lead, "facility_name": jail,
                "facility_state": state, "detainer_type": "I-247A",
                "detainer_lift_reason": LIFTS[int(upstream.integers(len(LIFTS)))],
                "is_exact_duplicate": False,
            })
        if upstream.random() < 0.8:  # an encounter, hours to weeks before the arrest
            lead = timedelta(hours=int(upstream.integers(1, 24 * 30)))
            world["encounters"].append({
                **common, "event_date": arrested - lead,
                "event_type": ("Encounter", "In-Custody Encounter")[person % 2],
                "lead_source": "Law Enforcement Agency", "is_exact_duplicate": False,
            })
        if person % 11 == 0:  # arrested again weeks later, some recorded a year older
            world["arrests"].append({**common, "apprehension_date": arrested + timedelta(days=40),
                                     "birth_year": common["birth_year"] + (person % 22 == 0),
                                     "apprehension_method": method, "arrest_setting": setting,
                                     "apprehension_state": state})
        if rng.random() < 0.3:
            continue  # never detained
        book_in = arrested + timedelta(hours=int(rng.integers(1, 72)))
        length = timedelta(hours=float(rng.exponential(30 * 24)))
        book_out = book_in + length
        reason = REASONS[rng.integers(len(REASONS))]
        moved = book_in + length / 2 if rng.random() < 0.4 else None
        places = [(book_in, moved), (moved, book_out)] if moved else [(book_in, book_out)]
        # Convicted people's most serious charge: violent, not, or no class recorded.
        crime_class = (("Violent", "Non-Violent", "Non-Violent", None)[person % 4]
                       if criminality == CRIMINALITY[0] else None)
        for number, (stint_in, stint_out) in enumerate(places):
            facility = (person + number) % 4
            world["stints"].append({**common, "stay_book_in": book_in, "book_in": stint_in,
                                    "book_out": stint_out, "stay_book_out": book_out,
                                    "facility_code": f"F{facility}",
                                    "facility_name": ("FAMILY RESIDENTIAL CENTER" if facility == 3
                                                      else f"FACILITY {facility}"),
                                    "stay_release_reason": reason, "gender": "Male",
                                    "msc_crime_class": crime_class,
                                    "entry_date": date(1995 + person % 30, 1 + person % 12, 1),
                                    "case_status": ("ACTIVE", "B-Relief Granted",
                                                    "A-Proceedings Terminated")[person % 3]})
        if reason == "Removed":
            world["removals"].append({**common, "departed_date": book_out.date(),
                                      "case_category": ("[8F] Expedited Removal",
                                                        "[16] Reinstated Final Order",
                                                        None)[person % 3]})
    return world


def release_tables(world: dict[str, list[dict]], release: date) -> dict[str, pa.Table]:
    """What a release dated `release` shows: events up to its date, later book-outs hidden."""
    cut = datetime.combine(release, datetime.min.time())
    name = release.isoformat()

    def rows(kind: str, when: str) -> list[dict]:
        return [dict(r) for r in world[kind] if r[when] < (cut if kind != "removals" else release)]

    tables = {}
    for kind, when in (("arrests", "apprehension_date"), ("stints", "book_in"),
                       ("removals", "departed_date"), ("detainers", "detainer_prepare_date"),
                       ("encounters", "event_date")):
        kept = rows(kind, when)
        for line, row in enumerate(kept, start=8):
            row.update(release=name, record_id=f"{name}:{kind}:{line}", source_file=f"{kind}.xlsx",
                       source_sheet="Sheet1", source_row=line)
            for hidden in ("book_out", "stay_book_out"):
                if row.get(hidden) is not None and row[hidden] >= cut:
                    row[hidden] = None
            if kind == "stints":
                row["departed_date"] = None
                if row["stay_book_out"] is None:
                    row["stay_release_reason"] = None
        tables[f"foia_{kind}"] = pa.Table.from_pylist(kept)
    return tables


def monthly_rows(value: str, months: list[date], dims: dict[str, tuple[str, ...]],
                 workbooks: tuple[str, ...], rng) -> pa.Table:
    keys = [dict(zip(dims, combo)) for combo in _product(list(dims.values()))]
    rows = [{"workbook": wb, "fiscal_year": 2025, "month": m, **key,
             value: float(rng.integers(0, 60)), "sheet": "Detention FY25", "cell_range": "B9"}
            for wb in workbooks for m in months for key in keys]
    return pa.Table.from_pylist(rows)


def _product(lists):
    if not lists:
        return [()]
    return [(head, *tail) for head in lists[0] for tail in _product(lists[1:])]


def stats_tables(seed: int = 3) -> dict[str, pa.Table]:
    rng = np.random.default_rng(seed)
    workbooks = ("W1.xlsx", "W2.xlsx")
    months = [date(2024, m, 1) for m in (10, 11, 12)] + [date(2025, m, 1) for m in (1, 2)]
    return {
        "stats_workbooks": pa.table({
            "workbook": list(workbooks), "sha256": ["a" * 64, "b" * 64], "fiscal_year": [2025, 2025],
            "file_date": [date(2025, 1, 20), date(2025, 3, 14)],
            "as_of_date": [date(2025, 1, 15), date(2025, 3, 10)],
        }),
        "stats_adp": monthly_rows("adp", months, {"agency": ("ICE", "CBP", "Total"),
                                                  "criminality": (*CRIMINALITY, "Total")},
                                  workbooks, rng),
        "stats_book_ins": monthly_rows("book_ins", months, {"agency": ("ICE", "CBP", "Total")},
                                       workbooks, rng),
        "stats_alos": monthly_rows("alos_days", months, {"agency": ("ICE", "CBP", "Total"),
                                                         "criminality": (*CRIMINALITY, "Total")},
                                   workbooks, rng),
        "stats_book_outs": monthly_rows("book_outs", months,
                                        {"release_reason": ("Bonded Out", "Paroled", "Total"),
                                         "criminality": (*CRIMINALITY, "Total")}, workbooks, rng),
        "stats_detained_now": pa.Table.from_pylist([
            {"workbook": wb, "fiscal_year": 2025, "criminality": c, "agency": a,
             "detained": float(rng.integers(0, 90)), "sheet": "Detention FY25", "cell_range": "C4"}
            for wb in workbooks for c in (*CRIMINALITY, "Total") for a in ("ICE", "CBP", "Total")
        ]),
        # In each workbook, some facilities with no ADP figure and some under no field office.
        "stats_facilities": pa.Table.from_pylist([
            {"workbook": wb, "sha256": sha, "fiscal_year": 2025, "name": f"FACILITY {n}",
             "type_detailed": "IGSA", "city": "LUMPKIN", "state": "GA", "zip": "31815",
             "aor": (None, "ATL", "HOU")[n % 3],
             "adp": None if n % 4 == 0 else float(rng.integers(0, 900)) + 0.25,
             "alos": float(rng.integers(1, 60)), "sheet": "Facilities FY25",
             "cell_range": f"A{10 + n}:AA{10 + n}"}
            for wb, sha in zip(workbooks, ("a" * 64, "b" * 64)) for n in range(9)
        ]),
    }


def with_published_human_cost(tables: dict[str, pa.Table]) -> dict[str, pa.Table]:
    """`tables` and the hand-made workbook tables of the published human-cost tests (SYNTHETIC
    too), their releases added to stats_workbooks."""
    extra = published_human_cost_tables()
    releases = pa.concat_tables([tables["stats_workbooks"], extra.pop("stats_workbooks")],
                                promote_options="permissive")
    return {**tables, **extra, "stats_workbooks": releases}


def parity_warehouse(path, releases=RELEASES) -> Warehouse:
    """The synthetic world as `releases` show it, run through the real derivation, plus the
    two hand-made workbooks."""
    warehouse = Warehouse(path)
    world = synthetic_world()
    by_release = [release_tables(world, release) for release in releases]
    for name in by_release[0]:
        warehouse.replace_table(name, pa.concat_tables([t[name] for t in by_release]))
    for name, table in with_published_human_cost(stats_tables()).items():
        warehouse.replace_table(name, table)
    with warehouse.connect() as con:
        rebuild_derived(con)
    return warehouse


@pytest.fixture(scope="module")
def warehouse_path(tmp_path_factory) -> str:
    return parity_warehouse(tmp_path_factory.mktemp("parity") / "synthetic.duckdb").path


@pytest.fixture(scope="module")
def engines(warehouse_path, spark_session):  # noqa: F811
    return duckdb_backend(warehouse_path), spark_backend(warehouse_path, spark_session)


def comparable(value):
    if isinstance(value, datetime):
        return value.replace(tzinfo=None)
    if isinstance(value, bool) or value is None or isinstance(value, (str, date)):
        return value
    if isinstance(value, (int, float)):
        return float(value)
    return value


def sort_key(row: tuple):
    return tuple((v is None, round(v, 6) if isinstance(v, float) else v) for v in row)


def same(left: pa.Table, right: pa.Table) -> None:
    assert left.column_names == right.column_names
    rows_left = sorted((tuple(comparable(v) for v in r.values()) for r in left.to_pylist()),
                       key=sort_key)
    rows_right = sorted((tuple(comparable(v) for v in r.values()) for r in right.to_pylist()),
                        key=sort_key)
    assert len(rows_left) == len(rows_right)
    for a, b in zip(rows_left, rows_right):
        for x, y in zip(a, b):
            if isinstance(x, float) and isinstance(y, float):
                assert math.isclose(x, y, rel_tol=1e-9, abs_tol=1e-9), (a, b)
            else:
                assert x == y, (a, b)


# Breakdowns that take a different path through a metric's code, run on top of the defaults.
EXTRA_VARIANTS = {
    "detained_population_daily": MetricParams(by=("facility_code",)),
    "detainer_arrest_followup": MetricParams(by=("facility_type",)),
    "encounter_conversion_shift": MetricParams(filters={"split": ("2025-01-20",)}),
    "facility_population_history": MetricParams(by=("facility",)),
    "published_adp": MetricParams(by=("agency", "criminality")),
}


# The human-cost shifts split on 2025-05-21 by default, after this warehouse's records end.
SPLIT_INSIDE = MetricParams(filters={"split": ("2025-01-20",)})


def variants(name: str) -> list[MetricParams]:
    if REGISTRY[name].question == "human_cost" and name.endswith("_shift"):
        return [SPLIT_INSIDE]
    # Fiscal years are computed in the expression (the year of each record's date), and their
    # spans joined to the counts.
    by_year = [MetricParams(by=(FISCAL_YEAR,))] if FISCAL_YEAR in REGISTRY[name].dimensions else []
    return [MetricParams(), *([EXTRA_VARIANTS[name]] if name in EXTRA_VARIANTS else []), *by_year]


@pytest.mark.parametrize("name", sorted(REGISTRY))
def test_metric_is_the_same_on_spark(name, engines):
    duck, spark = engines
    for params in variants(name):
        on_duckdb = compute(name, duck, params)
        assert on_duckdb.num_rows > 0, f"{name} {params}: nothing to compare on this warehouse"
        same(on_duckdb, compute(name, spark, params))
