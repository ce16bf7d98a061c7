"""Compare our parse of ICE's detention-statistics workbooks with the Deportation Data Project's.

The Deportation Data Project (DDP) publishes its own parse of the same workbooks, one parquet file
per table with a `workbook` column and the "data as of" date as `pull_date`. It is a peer's answer
key, not the truth: where the two disagree, docs/ddp-differences.md says which is right and why.

Both sides are brought to one long shape, one published figure per row:
(dataset, workbook, version, key1, key2, key3, measure, value), where `version` is the data-as-of
date (DDP's pull_date, our stats_workbooks.as_of_date) so that a workbook re-posted under the same
name with new figures is compared version by version. Keys are compared case-insensitively after
trimming. Where DDP flattened a two-level row header into one label column (the same label then
appears once per group), figures sharing a key are compared as sorted lists.

A cell is comparable when both sides have the key and a figure; it agrees when the values are
equal (to binary floating-point noise). Where DDP wrote 0 and the workbook has no figure, the cell
is counted apart. Rows only one side has are listed separately (a difference in scope, not in
value).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import duckdb
import pyarrow as pa

from iceledger.errors import IceledgerError
from iceledger.sources.stats.sheet_tables import Layout, load_layout
from iceledger.tables import (
    STATS_ICLOS,
    STATS_ICLOS_DETAINEES,
    STATS_SEMIANNUAL,
    STATS_TPS_COUNTRIES,
    STATS_WORKBOOKS,
)
from iceledger.warehouse import table_exists

# Values within this relative distance are the same figure (binary floating point noise).
_RELATIVE_TOLERANCE = 1e-9
_MONTH = "strftime(month, '%b')"
_FIRST_MONTH = "month = 'Oct'"
# DDP reads one ATD sheet per workbook, the current year's; ours also keeps prior-year sheets.
_CURRENT_SHEET = ("regexp_matches(sheet, 'FY ?(20)?' || lpad(CAST(workbook_fiscal_year % 100 AS "
                  "VARCHAR), 2, '0') || '\\b')")
# Workbooks printing only fiscal-year totals of book-outs (no monthly table).
_ANNUAL_BOOK_OUTS = "workbook NOT IN (SELECT workbook FROM o_stats_book_outs)"
_BOND_METRIC = ("CASE bond_metric WHEN 'book_outs_bond_posted' THEN 'bond_book_outs' "
                "WHEN 'bond_posted_share' THEN 'bond_pct' "
                "WHEN 'average_bond_amount' THEN 'avg_bond_amount' ELSE bond_metric END")


@dataclass(frozen=True)
class Side:
    """How one side of a pairing reads as long rows: keys, and one or several measures.

    Either `values` maps each measure name to its column (a wide table), or `measure` and
    `value` are expressions giving each row's measure name and figure (a long table).
    """

    table: str
    keys: tuple[str, ...] = ()
    values: Mapping[str, str] = field(default_factory=dict)
    measure: str | None = None
    value: str | None = None
    where: str = "TRUE"
    # The month a monthly figure is dated to, checked separately from the figure itself.
    period: str = "NULL"

    def selects(self, dataset: str, version: str) -> list[str]:
        keys = [*self.keys, *(["NULL"] * (3 - len(self.keys)))]
        key_sql = ", ".join(
            f"coalesce(lower(trim(CAST({k} AS VARCHAR))), '') AS key{i + 1}"
            for i, k in enumerate(keys)
        )
        pairs = list(self.values.items()) if self.values else [(None, self.value)]
        selects = []
        for measure, value in pairs:
            measure_sql = f"'{measure}'" if measure is not None else f"lower({self.measure})"
            selects.append(
                f"SELECT '{dataset}' AS dataset, workbook, {version} AS version, {key_sql}, "
                f"{measure_sql} AS measure, CAST({value} AS DOUBLE) AS value, "
                f"CAST({self.period} AS DATE) AS period, "
                f"{self.provenance} AS cell FROM {self.table} WHERE {self.where}"
            )
        return selects

    @property
    def provenance(self) -> str:
        return "NULL" if self.table.startswith("ddp_") else "sheet || '!' || cell_range"


@dataclass(frozen=True)
class Pairing:
    dataset: str  # DDP parquet file stem
    ddp: Side
    ours: Side


def _agency_label(agency: str = "agency") -> str:
    """Our (agency, criminality) as the single row label DDP kept ('ICE Average' or a class)."""
    return (f"CASE WHEN criminality <> 'Total' THEN criminality WHEN {agency} = 'Total' "
            f"THEN 'Average' ELSE {agency} || ' Average' END")


# DDP's wide criminality columns are our criminality labels in snake_case.
_CRIMINALITY_COLUMNS = ("convicted_criminal", "pending_criminal_charges",
                        "other_immigration_violator", "total")
_CRIMINALITY_MEASURE = "replace(lower(criminality), ' ', '_')"


PAIRINGS: tuple[Pairing, ...] = (
    Pairing("adp-by-agency-criminality",
            Side("ddp_adp_by_agency_criminality", ("agency", "month"), {"adp": "adp"},
                 period="date"),
            Side("o_stats_adp", (_agency_label(), _MONTH), {"adp": "adp"}, period="month")),
    Pairing("adp-by-agency-criminality",
            Side("ddp_adp_by_agency_criminality", ("agency",), {"adp_fy": "adp_fy_ytd"},
                 where=_FIRST_MONTH),
            Side("o_stats_adp_fy", (_agency_label(),), {"adp_fy": "adp"})),
    Pairing("stay-length-by-agency-criminality",
            Side("ddp_stay_length_by_agency_criminality", ("agency", "month"),
                 {"alos_days": "avg_stay_length_days"}, period="date"),
            Side("o_stats_alos", (_agency_label(), _MONTH), {"alos_days": "alos_days"},
                 period="month")),
    Pairing("stay-length-by-agency-criminality",
            Side("ddp_stay_length_by_agency_criminality", ("agency",),
                 {"alos_days_fy": "avg_stay_length_days_fy_ytd"}, where=_FIRST_MONTH),
            Side("o_stats_alos_fy", (_agency_label(),), {"alos_days_fy": "alos_days"})),
    Pairing("book-ins-by-arresting-agency",
            Side("ddp_book_ins_by_arresting_agency", ("arresting_agency", "month"),
                 {"book_ins": "n_book_ins"}, period="date"),
            Side("o_stats_book_ins", ("agency", _MONTH), {"book_ins": "book_ins"},
                 period="month")),
    Pairing("book-ins-by-arresting-agency",
            Side("ddp_book_ins_by_arresting_agency", ("arresting_agency",),
                 {"book_ins_fy": "n_book_ins_ytd"}, where=_FIRST_MONTH),
            Side("o_stats_book_ins_fy", ("agency",), {"book_ins_fy": "book_ins"})),
    Pairing("book-ins-by-facility-type",
            Side("ddp_book_ins_by_facility_type", ("facility_type",),
                 {c: c for c in _CRIMINALITY_COLUMNS}),
            Side("o_stats_book_ins_by_facility_type", ("facility_type",),
                 measure=_CRIMINALITY_MEASURE, value="book_ins")),
    Pairing("book-outs-by-facility-type",
            Side("ddp_book_outs_by_facility_type", ("facility_type",), {"book_outs": "total"}),
            Side("o_stats_book_outs_by_facility_type", ("facility_type",),
                 {"book_outs": "book_outs"})),
    Pairing("book-outs-by-reason",
            Side("ddp_book_outs_by_reason",
                 ("release_reason", "coalesce(criminality, 'Total')", "month"),
                 {"book_outs": "n_book_outs"}, period="date"),
            Side("o_stats_book_outs", ("release_reason", "criminality", _MONTH),
                 {"book_outs": "book_outs"}, period="month")),
    Pairing("book-outs-by-reason",
            Side("ddp_book_outs_by_reason", ("release_reason", "coalesce(criminality, 'Total')"),
                 {"book_outs_fy": "n_book_outs_ytd"}, where=_FIRST_MONTH),
            Side("o_stats_book_outs_fy", ("release_reason", "criminality"),
                 {"book_outs_fy": "book_outs"}, where=f"NOT ({_ANNUAL_BOOK_OUTS})")),
    Pairing("book-outs-by-reason-all-years",
            Side("ddp_book_outs_by_reason_all_years",
                 ("release_reason", "coalesce(criminality, 'Total')"),
                 {"book_outs_fy": "n_book_outs_ytd"}),
            Side("o_stats_book_outs_fy", ("release_reason", "criminality"),
                 {"book_outs_fy": "book_outs"})),
    Pairing("book-outs-by-reason-annual",
            Side("ddp_book_outs_by_reason_annual", ("release_reason",),
                 {c: c for c in _CRIMINALITY_COLUMNS}),
            Side("o_stats_book_outs_fy", ("release_reason",),
                 measure=_CRIMINALITY_MEASURE, value="book_outs",
                 where=_ANNUAL_BOOK_OUTS)),
    Pairing("currently-detained-by-criminality",
            Side("ddp_currently_detained_by_criminality", ("criminality",),
                 {"ice": "ice", "cbp": "cbp", "total": "total"}),
            Side("o_stats_detained_now", ("criminality",), measure="agency", value="detained")),
    Pairing("currently-detained-by-disposition",
            Side("ddp_currently_detained_by_disposition", ("disposition",),
                 {"fsc_frc": "fsc_frc", "adult": "adult", "total": "total"}),
            Side("o_stats_detained_by_disposition", ("disposition",),
                 measure="CASE WHEN facility_type IN ('FSC', 'FRC') THEN 'fsc_frc' "
                         "ELSE facility_type END", value="detained")),
    Pairing("facilities",
            Side("ddp_facilities", ("name",),
                 {c: c for c in ("level_a", "level_b", "level_c", "level_d", "male_crim",
                                 "alos")}),
            Side("o_stats_facilities", ("name",),
                 {c: c for c in ("level_a", "level_b", "level_c", "level_d", "male_crim",
                                 "alos")})),
    Pairing("removals",
            Side("ddp_removals", (), {"removals": "removals"}),
            Side("o_stats_removals", (), {"removals": "removals"}, where="category = 'Total'")),
    Pairing("famu-removals",
            Side("ddp_famu_removals", (), {"famu_removals": "famu_removals"}),
            Side("o_stats_removals", (), {"famu_removals": "removals"},
                 where="category <> 'Total'")),
    Pairing("fear-decision-time",
            Side("ddp_fear_decision_time", ("data_fiscal_year",),
                 {"fsc": "fsc", "adult": "adult", "total": "total"}),
            Side("o_stats_fear_decision_days", ("data_fiscal_year",),
                 measure="CASE WHEN facility_type IN ('FSC', 'FRC') THEN 'fsc' "
                         "ELSE facility_type END", value="avg_days")),
    Pairing("fear-decisions-by-facility-type",
            Side("ddp_fear_decisions_by_facility_type", ("facility_type",),
                 {"detained": "total_detained"}),
            Side("o_stats_fear_decisions_detained", ("facility_type",),
                 {"detained": "detained"})),
    Pairing("iclos-and-detainees",
            Side("ddp_iclos_and_detainees", ("section", "population"),
                 {"n_observations": "n_observations", "latest_value": "latest_value"}),
            Side("o_iclos_summary", ("section", "population"),
                 {"n_observations": "n_observations", "latest_value": "latest_value"})),
    Pairing("segregation",
            Side("ddp_segregation", ("facility", "strftime(date, '%Y-%m')"),
                 {"placements": "placement_count"}),
            Side("o_stats_segregation_monthly", ("facility", "strftime(month, '%Y-%m')"),
                 {"placements": "placements"})),
    Pairing("special-population-actions",
            Side("ddp_special_population_actions",
                 ("table_name", "data_fiscal_year", "coalesce(country, '')"), {"people": "value"}),
            Side("o_special_populations", ("table_name", "data_fiscal_year", "country"),
                 {"people": "people"})),
    Pairing("vulnerable-population",
            Side("ddp_vulnerable_population",
                 ("placement_reason", "data_fiscal_year", "data_quarter"),
                 {"placements": "n_placements", "avg_consecutive_days": "avg_consecutive_days",
                  "avg_cumulative_days": "avg_cumulative_days"}),
            Side("o_stats_segregation_vulnerable",
                 ("placement_reason", "data_fiscal_year", "quarter"),
                 {"placements": "placements", "avg_consecutive_days": "avg_consecutive_days",
                  "avg_cumulative_days": "avg_cumulative_days"})),
    Pairing("bond-stats",
            Side("ddp_bond_stats", ("metric", "strftime(date, '%Y-%m')"), {"value": "value"}),
            Side("o_stats_bond", (_BOND_METRIC, "strftime(month, '%Y-%m')"),
                 {"value": "value"})),
    Pairing("atd-by-aor",
            Side("ddp_atd_by_aor", ("aor_technology",),
                 {"participants": "count", "alip_days": "avg_length_in_program"}),
            Side("o_stats_atd_aor",
                 ("CASE WHEN technology = 'Total' THEN aor ELSE technology END",),
                 {"participants": "participants", "alip_days": "alip_days"},
                 where=_CURRENT_SHEET)),
    Pairing("atd-court-appearances",
            Side("ddp_atd_court_appearances", ("hearing_type", "metric"),
                 {"hearings": "count", "share": "pct"}),
            Side("o_stats_atd_court_appearances", ("hearing_type", "outcome"),
                 {"hearings": "hearings", "share": "share"}, where=_CURRENT_SHEET)),
    Pairing("atd-population",
            Side("ddp_atd_population", ("category",), {"participants": "count",
                                                       "alip_days": "value"},
                 where="\"table\" = 'status'"),
            Side("o_stats_atd_status", ("status",),
                 {"participants": "participants", "alip_days": "alip_days"},
                 where=_CURRENT_SHEET)),
    Pairing("atd-population",
            Side("ddp_atd_population", ("category",), {"participants": "count",
                                                       "daily_tech_cost": "value"},
                 where="\"table\" = 'technology'"),
            Side("o_stats_atd_technology", ("technology",),
                 {"participants": "participants", "daily_tech_cost": "daily_tech_cost"},
                 where=_CURRENT_SHEET)),
)

# DDP labels translated through our own vocabularies (so "New York" meets "New York City").
_CANONICAL_LABELS = {
    "atd_by_aor": ("aor_technology", ("aor", "technology")),
    "atd_population": ("category", ("technology",)),
    "iclos_and_detainees": ("population", ("iclos_population",)),
    "vulnerable_population": ("placement_reason", ("placement_reason",)),
    "segregation": ("facility", ("facility",)),
}

# Our semiannual tables under DDP's table names.
_SPECIAL_POPULATIONS = """
SELECT workbook, version, sheet, cell_range, data_fiscal_year, '' AS country, people,
       CASE population WHEN 'United States Armed Forces' THEN 'armed_forces'
                       WHEN 'United States Citizens' THEN 'us_citizen'
                       ELSE 'parents_usc' END
       || '_' || replace(lower(action), '-', '') AS table_name
FROM o_stats_semiannual
UNION ALL
SELECT workbook, version, sheet, cell_range, data_fiscal_year, country, people,
       'tps_' || replace(lower(action), '-', '') AS table_name
FROM o_stats_tps_countries
"""

# DDP summarises each ICLOS row as its number of non-zero figures and its latest non-zero figure
# (it reads a zero as "no figure"; a row of zeros disappears). Ours is summarised the same way.
_ICLOS_SUMMARY = """
SELECT workbook, version, section, population, min(sheet) AS sheet, min(cell_range) AS cell_range,
       count(value) FILTER (WHERE value <> 0) AS n_observations,
       arg_max(value, month + CASE point WHEN 'end' THEN 20 ELSE 10 END)
           FILTER (WHERE value <> 0) AS latest_value
FROM (SELECT workbook, version, 'iclos' AS section, iclos_population AS group_label,
             iclos_population AS population, sheet, cell_range, month, point, iclos_days AS value
      FROM o_stats_iclos
      UNION ALL
      SELECT workbook, version, 'detainees', iclos_population, stay_length, sheet, cell_range,
             month, point, detainees
      FROM o_stats_iclos_detainees)
GROUP BY workbook, version, section, group_label, population
HAVING count(value) FILTER (WHERE value <> 0) > 0
"""


@dataclass
class Comparison:
    """The outcome: counts by dataset, every disagreeing cell, and rows only one side has."""

    by_dataset: pa.Table  # dataset, comparable, agree, disagree, ddp_zero_no_figure
    disagreements: pa.Table  # one row per disagreeing cell, with both values and our cell
    no_figure: pa.Table  # where DDP wrote 0 and the workbook has no figure, by workbook
    misdated: pa.Table  # monthly figures DDP dated to another month, by workbook
    only_ddp: pa.Table  # dataset, workbook, key..., measure, value
    only_ours: pa.Table
    workbooks: pa.Table  # workbook-level attributes side by side (fiscal year, dates)
    ddp_only_workbooks: list[str]
    our_only_workbooks: list[str]

    @property
    def comparable(self) -> int:
        return sum(self.by_dataset.column("comparable").to_pylist())

    @property
    def agreeing(self) -> int:
        return sum(self.by_dataset.column("agree").to_pylist())

    @property
    def agreement(self) -> float:
        return self.agreeing / self.comparable if self.comparable else 0.0

    def summary_lines(self) -> list[str]:
        no_figure = sum(self.by_dataset.column("ddp_zero_no_figure").to_pylist())
        misdated = sum(self.misdated.column("cells").to_pylist())
        return [
            (f"{self.agreeing:,} of {self.comparable:,} comparable cells agree "
             f"({self.agreement:.2%}); {self.disagreements.num_rows:,} disagree"),
            (f"{no_figure:,} cells where DDP wrote 0 and the workbook has no figure "
             "(placeholders for months not yet reported)"),
            f"{misdated:,} monthly cells DDP dates to another fiscal year",
            (f"rows only DDP has: {self.only_ddp.num_rows:,}; rows only we have: "
             f"{self.only_ours.num_rows:,}"),
            (f"workbooks only we parsed: {len(self.our_only_workbooks)}; only DDP: "
             f"{len(self.ddp_only_workbooks)}"),
        ]


def compare(ours: Mapping[str, pa.Table], ddp_dir: Path, layout: Layout | None = None
            ) -> Comparison:
    """Compare our stats tables (by name, all workbooks together) with DDP's parquet files."""
    ddp_dir = Path(ddp_dir)
    files = {p.stem.replace("-", "_"): p for p in sorted(ddp_dir.glob("*.parquet"))}
    if not files:
        raise IceledgerError(f"{ddp_dir}: no DDP reference parquet files here")
    if STATS_WORKBOOKS not in ours:
        raise IceledgerError(f"no {STATS_WORKBOOKS} table: ingest the workbooks first")
    layout = layout or load_layout()
    con = duckdb.connect()
    try:
        _ddp_views(con, files, layout)
        _our_views(con, ours)
        pairings = [p for p in PAIRINGS
                    if table_exists(con, p.ddp.table) and table_exists(con, p.ours.table)]
        shared = _shared_workbooks(con)
        _build_long_tables(con, pairings)
        return _outcome(con, shared)
    finally:
        con.close()


def _ddp_views(con: duckdb.DuckDBPyConnection, files: Mapping[str, Path], layout: Layout) -> None:
    """One view per DDP file, labels translated through our vocabularies where DDP kept raw text."""
    for stem, path in files.items():
        con.execute(f"CREATE VIEW raw_{stem} AS SELECT * FROM read_parquet('{path}')")
        if stem not in _CANONICAL_LABELS:
            con.execute(f"CREATE VIEW ddp_{stem} AS SELECT * FROM raw_{stem}")
            continue
        column, dimension_names = _CANONICAL_LABELS[stem]
        raw = [r[0] for r in con.execute(f"SELECT DISTINCT {column} FROM raw_{stem}").fetchall()]
        dimensions = [layout.dimensions[d] for d in dimension_names]
        con.register(f"labels_{stem}", pa.table({
            "raw": pa.array(raw, pa.string()),
            "canonical": pa.array([_canonical(label, dimensions) for label in raw], pa.string()),
        }))
        con.execute(
            f"CREATE VIEW ddp_{stem} AS SELECT d.* REPLACE (l.canonical AS {column}) "
            f"FROM raw_{stem} d JOIN labels_{stem} l ON l.raw IS NOT DISTINCT FROM d.{column}"
        )
    con.execute("CREATE TABLE ddp_workbooks AS " + " UNION ".join(
        f"SELECT workbook, pull_date AS version, fiscal_year, file_date FROM raw_{stem}"
        for stem in files
    ))


def _our_views(con: duckdb.DuckDBPyConnection, ours: Mapping[str, pa.Table]) -> None:
    """Our tables, each row carrying its workbook version (the data-as-of date)."""
    con.register("t_stats_workbooks", ours[STATS_WORKBOOKS])
    con.execute("CREATE TABLE our_workbooks AS SELECT workbook, sha256, as_of_date AS version, "
                "fiscal_year, file_date FROM t_stats_workbooks")
    for name, table in ours.items():
        if name == STATS_WORKBOOKS:
            continue
        con.register(f"t_{name}", table)
        con.execute(f"CREATE VIEW o_{name} AS SELECT t.*, w.version, "
                    f"w.fiscal_year AS workbook_fiscal_year FROM t_{name} t "
                    "JOIN our_workbooks w USING (workbook, sha256)")
    if table_exists(con, "o_stats_semiannual") and table_exists(con, "o_stats_tps_countries"):
        con.execute(f"CREATE VIEW o_special_populations AS {_SPECIAL_POPULATIONS}")
    if table_exists(con, "o_stats_iclos") and table_exists(con, "o_stats_iclos_detainees"):
        con.execute(f"CREATE VIEW o_iclos_summary AS {_ICLOS_SUMMARY}")


def _canonical(label: str | None, dimensions) -> str | None:
    for dimension in dimensions:
        if label is not None and dimension.recognises(label.strip()):
            return str(dimension.canonical(label.strip()))
    return label


def _shared_workbooks(con: duckdb.DuckDBPyConnection) -> list[str]:
    return [r[0] for r in con.execute(
        "SELECT DISTINCT workbook FROM ddp_workbooks JOIN our_workbooks USING (workbook) "
        "ORDER BY 1").fetchall()]


def _build_long_tables(con: duckdb.DuckDBPyConnection, pairings: list[Pairing]) -> None:
    for name, side in (("ddp_long", "ddp"), ("our_long", "ours")):
        version = "pull_date" if side == "ddp" else "version"
        union = "\nUNION ALL\n".join(
            sql for p in pairings for sql in getattr(p, side).selects(p.dataset, version)
        )
        # Same key, several figures (a flattened two-level label): pair them in sorted order.
        con.execute(f"""
            CREATE TABLE {name} AS
            SELECT *, row_number() OVER (
                PARTITION BY dataset, workbook, version, key1, key2, key3, measure
                ORDER BY value NULLS LAST, cell) AS nth
            FROM ({union})
        """)


def _outcome(con: duckdb.DuckDBPyConnection, shared: list[str]) -> Comparison:
    keys = "dataset, workbook, version, key1, key2, key3, measure, nth"
    con.execute(f"""
        CREATE TABLE matched AS
        SELECT d.dataset, d.workbook, d.version, d.key1, d.key2, d.key3, d.measure,
               d.value AS ddp_value, o.value AS our_value, o.cell AS our_cell,
               d.period AS ddp_period, o.period AS our_period,
               CASE
                 WHEN d.value IS NULL AND o.value IS NULL THEN TRUE
                 WHEN o.value IS NULL AND d.value = 0 THEN NULL
                 WHEN d.value IS NULL OR o.value IS NULL THEN FALSE
                 ELSE abs(d.value - o.value) <= {_RELATIVE_TOLERANCE} * greatest(1, abs(o.value))
               END AS agree
        FROM ddp_long d JOIN our_long o USING ({keys})
    """)
    # agree IS NULL: we hold no figure where DDP wrote a zero (a placeholder for a month not yet
    # reported, or a blank cell); not a published figure, so not comparable, but counted.
    by_dataset = con.sql("""
        SELECT dataset, count(agree) AS comparable, count(*) FILTER (WHERE agree) AS agree,
               count(*) FILTER (WHERE NOT agree) AS disagree,
               count(*) FILTER (WHERE agree IS NULL) AS ddp_zero_no_figure
        FROM matched GROUP BY dataset ORDER BY dataset
    """).to_arrow_table()
    disagreements = con.sql(
        "SELECT * EXCLUDE (agree, ddp_period, our_period) FROM matched WHERE NOT agree "
        "ORDER BY dataset, workbook, key1, key2, key3, measure"
    ).to_arrow_table()
    no_figure = con.sql("""
        SELECT dataset, workbook, count(*) AS cells, min(our_period) AS first_month,
               max(our_period) AS last_month
        FROM matched WHERE agree IS NULL GROUP BY ALL ORDER BY ALL
    """).to_arrow_table()
    misdated = con.sql("""
        SELECT dataset, workbook, count(*) AS cells, min(ddp_period) AS ddp_first_month,
               min(our_period) AS our_first_month
        FROM matched WHERE ddp_period IS DISTINCT FROM our_period GROUP BY ALL ORDER BY ALL
    """).to_arrow_table()
    in_shared = "workbook IN (SELECT unnest(?::VARCHAR[]))"
    only = {}
    for name, this, other in (("ddp", "ddp_long", "our_long"), ("ours", "our_long", "ddp_long")):
        only[name] = con.sql(f"""
            SELECT dataset, workbook, version, key1, key2, key3, measure, value, cell
            FROM {this} t WHERE {in_shared} AND value IS NOT NULL AND NOT EXISTS (
                SELECT 1 FROM {other} x WHERE
                {" AND ".join(f"x.{k} IS NOT DISTINCT FROM t.{k}" for k in keys.split(", "))})
            ORDER BY ALL
        """, params=[shared]).to_arrow_table()
    workbooks = con.sql("""
        SELECT coalesce(d.workbook, o.workbook) AS workbook,
               d.version AS ddp_pull_date, o.version AS our_as_of_date,
               d.fiscal_year AS ddp_fiscal_year, o.fiscal_year AS our_fiscal_year,
               d.file_date AS ddp_file_date, o.file_date AS our_file_date
        FROM ddp_workbooks d FULL JOIN our_workbooks o USING (workbook) ORDER BY 1
    """).to_arrow_table()
    ddp_only = [r[0] for r in con.execute(
        "SELECT DISTINCT workbook FROM ddp_workbooks WHERE workbook NOT IN "
        "(SELECT workbook FROM our_workbooks) ORDER BY 1").fetchall()]
    ours_only = [r[0] for r in con.execute(
        "SELECT DISTINCT workbook FROM our_workbooks WHERE workbook NOT IN "
        "(SELECT workbook FROM ddp_workbooks) ORDER BY 1").fetchall()]
    return Comparison(by_dataset, disagreements, no_figure, misdated, only["ddp"], only["ours"],
                      workbooks, ddp_only, ours_only)


# Our tables the comparison reads (the pairings' tables and the views built on them).
COMPARED_TABLES = tuple(sorted(
    {p.ours.table.removeprefix("o_") for p in PAIRINGS}
    - {"special_populations", "iclos_summary"}
    | {STATS_SEMIANNUAL, STATS_TPS_COUNTRIES, STATS_ICLOS, STATS_ICLOS_DETAINEES,
       STATS_WORKBOOKS}
))


def compare_warehouse(warehouse, ddp_dir: Path) -> Comparison:
    """Compare the stats tables loaded in a warehouse with DDP's parquet files."""
    present = set(warehouse.table_names())
    return compare({name: warehouse.read_table(name) for name in COMPARED_TABLES
                    if name in present}, ddp_dir)


def render_markdown(result: Comparison) -> str:
    """Every difference, grouped: disagreeing cells one by one, the rest counted by group."""
    lines = ["# Differences from the Deportation Data Project's parse (generated)", ""]
    lines += [f"- {line}" for line in result.summary_lines()]
    lines += ["", "## Agreement by DDP table", ""]
    lines += _markdown_table(result.by_dataset)
    lines += ["", "## Every disagreeing cell", ""]
    lines += _markdown_table(result.disagreements)
    lines += ["", "## Cells where DDP wrote 0 and the workbook has no figure", ""]
    lines += _markdown_table(result.no_figure)
    lines += ["", "## Monthly figures DDP dates to another month", ""]
    lines += _markdown_table(result.misdated)
    for title, rows in (("Rows only DDP has", result.only_ddp),
                        ("Rows only we have", result.only_ours)):
        grouped = duckdb.from_arrow(rows).aggregate(
            "dataset, workbook, count(*) AS cells, "
            "array_to_string(list_sort(list_distinct(list(key1)))[1:4], '; ') AS first_labels, "
            "string_agg(DISTINCT measure, ', ' ORDER BY measure) AS measures, "
            "min(cell) AS first_cell"
        ).order("dataset, workbook").to_arrow_table()
        lines += ["", f"## {title} (by table and workbook)", ""] + _markdown_table(grouped)
    lines += ["", "## Workbooks", ""] + _markdown_table(result.workbooks)
    return "\n".join(lines) + "\n"


def _markdown_table(table: pa.Table) -> list[str]:
    if table.num_rows == 0:
        return ["(none)"]
    def show(value: object) -> str:
        if isinstance(value, float):
            return f"{value:.10g}"
        return "" if value is None else str(value).replace("|", "/")
    lines = ["| " + " | ".join(table.column_names) + " |",
             "|" + "---|" * table.num_columns]
    lines += ["| " + " | ".join(show(v) for v in row.values()) + " |"
              for row in table.to_pylist()]
    return lines


def our_tables_from_parses(parses) -> dict[str, pa.Table]:
    """All workbooks' tables, each table name concatenated across workbooks."""
    grouped: dict[str, list[pa.Table]] = {}
    for parsed in parses:
        for name, table in parsed.tables.items():
            grouped.setdefault(name, []).append(table)
    return {name: pa.concat_tables(tables, promote_options="permissive")
            for name, tables in grouped.items()}
