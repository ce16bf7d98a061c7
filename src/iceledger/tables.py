"""The table catalogue: every warehouse table, what it holds and where it comes from.

Code names a table through this module's constants, never a string of its own (a test greps for
such strings), and docs/codebook.md is tested against it: every table and column listed here is
documented there. The workbook tables each `[[tables]]` entry of data/layouts/stats_tables.toml
names (and their fiscal-year `totals_table` companions) are catalogued from that file, so a new
spec is a new table here without code.

A column's `kind` is its DuckDB type as the codebook states it; columns a layout adds beyond these
(FOIA releases carry dozens) are kept too, and documented by family in the codebook.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from functools import cache
from importlib import resources


@dataclass(frozen=True)
class Column:
    name: str
    kind: str
    meaning: str = ""


@dataclass(frozen=True)
class Table:
    name: str
    family: str  # "bookkeeping", "foia", "foia derived", "workbooks"
    meaning: str
    columns: tuple[Column, ...] = ()
    # The date that places a record in time (FOIA records and what is derived from them).
    key_date: str | None = None
    # For a derived table, the table of records it is built from, which carry its columns: what
    # the records can say is judged there (a release whose stints lack book-out dates forms no
    # stays at all, so the stays alone could not tell).
    derived_from: str | None = None

    def ddl(self) -> str:
        body = ",\n    ".join(f'"{c.name}" {c.kind}' for c in self.columns)
        return f'CREATE TABLE IF NOT EXISTS "{self.name}" (\n    {body}\n)'


def _columns(spec: str) -> tuple[Column, ...]:
    """`name TYPE [constraints], ...`: the compact form the declarations below are written in."""
    return tuple(Column(*part.split(maxsplit=1)) for part in (p.strip() for p in spec.split(","))
                 if part)


# Bookkeeping: what the warehouse keeps about its own loads.
SOURCES = "ingest_sources"
QUARANTINE = "ingest_quarantine"
DERIVED_STATE = "ingest_derived_state"
# FOIA records, one canonical table per dataset.
FOIA_ARRESTS = "foia_arrests"
FOIA_STINTS = "foia_stints"
FOIA_REMOVALS = "foia_removals"
FOIA_DETAINERS = "foia_detainers"
FOIA_ENCOUNTERS = "foia_encounters"
FOIA_CHECKS = "foia_checks"
FOIA_CAPABILITIES = "foia_capabilities"
FOIA_PUBLISHED_TOTALS = "foia_published_totals"
FOIA_RELEASE_NOTES = "foia_release_notes"
# Derived from the FOIA records, rebuilt after loads.
FOIA_STAYS = "foia_stays"
FOIA_ARREST_STAY_LINKS = "foia_arrest_stay_links"
FOIA_REMOVAL_LINKS = "foia_removal_links"
FOIA_RELEASES = "foia_releases"
FOIA_PLACEHOLDER_IDENTIFIERS = "foia_placeholder_identifiers"
# Detention-statistics workbooks: the tables code names; the rest come from stats_tables.toml.
STATS_WORKBOOKS = "stats_workbooks"
STATS_CHECKS = "stats_checks"
STATS_RELEASE_CHECKS = "stats_release_checks"
STATS_FACILITIES = "stats_facilities"
STATS_UNRECOGNISED = "stats_unrecognised"
STATS_DETAINED_NOW = "stats_detained_now"
STATS_DETAINED_BY_DISPOSITION = "stats_detained_by_disposition"
STATS_BOOK_INS = "stats_book_ins"
STATS_BOOK_INS_BY_FACILITY_TYPE = "stats_book_ins_by_facility_type"
STATS_BOOK_OUTS = "stats_book_outs"
STATS_BOOK_OUTS_BY_FACILITY_TYPE = "stats_book_outs_by_facility_type"
STATS_ADP = "stats_adp"
STATS_ADP_FY = "stats_adp_fy"
STATS_ADP_BY_FACILITY_TYPE = "stats_adp_by_facility_type"
STATS_ALOS = "stats_alos"
STATS_ALOS_BY_FACILITY_TYPE = "stats_alos_by_facility_type"
STATS_ALOS_ADULT_BY_AGENCY = "stats_alos_adult_by_agency"
STATS_ICLOS = "stats_iclos"
STATS_REMOVALS = "stats_removals"
STATS_ICLOS_DETAINEES = "stats_iclos_detainees"
STATS_SEMIANNUAL = "stats_semiannual"
STATS_TPS_COUNTRIES = "stats_tps_countries"
STATS_TRANSGENDER = "stats_transgender"
STATS_SEGREGATION_VULNERABLE = "stats_segregation_vulnerable"
STATS_ATD_STATUS = "stats_atd_status"

# The values of the checks tables' `status` column.
PASS, WARN, FAIL = "pass", "warn", "fail"
# The check that fails a workbook whose data end before an earlier release's (a stale re-post):
# the published series never takes a value from it.
STALE_REPOST_CHECK = "not a stale re-post"
# A row's `as_of_source` when nothing dates it: a hidden sheet of another fiscal year with no
# date of its own (sources/stats/snapshots.py); never a latest value (metrics/published_series.py).
HIDDEN_UNDATED = "hidden_sheet_undated"

# A stay belongs to an arrest when it is booked in from 5 days before to 10 days after it (the
# links of FOIA_ARREST_STAY_LINKS).
ARREST_STAY_DAYS_BEFORE, ARREST_STAY_DAYS_AFTER = 5, 10
# A detainer or encounter is followed to the first ICE arrest of the same person on its day or up
# to this many days after it (foia_detainers.days_to_custodial_arrest,
# foia_encounters.days_to_arrest): the longest horizon the pipeline metrics ask about.
ARREST_FOLLOW_UP_DAYS = 90

# Words ICE's facility names use for family residential centres (e.g. "SOUTH TEXAS FAM
# RESIDENTIAL CENTER", "BERKS COUNTY FAMILY SHELTER"), compared in upper case: a stay's
# `family_facility` (FOIA_STAYS) is whether a stint's facility name contains one.
FAMILY_FACILITY_WORDS = ("FAMILY", "FAM RESIDENTIAL")

_FOIA_PROVENANCE = (
    "record_id VARCHAR, release VARCHAR, redacted VARCHAR[], unparsed VARCHAR[], "
    "is_exact_duplicate BOOLEAN, source_file VARCHAR, source_sheet VARCHAR, source_row BIGINT"
)

_DECLARED = (
    Table(SOURCES, "bookkeeping", "one row per loaded source file", _columns(
        "sha256 VARCHAR PRIMARY KEY, file_name VARCHAR NOT NULL, path VARCHAR NOT NULL, "
        "kind VARCHAR NOT NULL, dataset VARCHAR, layout VARCHAR, loaded_at TIMESTAMP NOT NULL, "
        "rows_read BIGINT NOT NULL, rows_loaded BIGINT NOT NULL, "
        "rows_quarantined BIGINT NOT NULL, rows_duplicate BIGINT NOT NULL, "
        "tables_loaded VARCHAR NOT NULL, warnings VARCHAR NOT NULL, synthetic BOOLEAN NOT NULL"
    )),
    Table(QUARANTINE, "bookkeeping", "rows that could not be loaded, with where and why",
          _columns("sha256 VARCHAR NOT NULL, file_name VARCHAR NOT NULL, sheet VARCHAR, "
                   "row_number BIGINT, cell VARCHAR, reason VARCHAR NOT NULL")),
    Table(DERIVED_STATE, "bookkeeping", "whether the derived FOIA tables are older than the "
          "loaded rows (an interrupted derive)", _columns("stale BOOLEAN NOT NULL")),
    Table(FOIA_ARRESTS, "foia", "ICE arrests (ERO administrative arrests), one row per raw row",
          _columns(_FOIA_PROVENANCE + ", apprehension_date TIMESTAMP, aor VARCHAR, "
                   "aor_code VARCHAR, apprehension_method VARCHAR, arrest_setting VARCHAR, "
                   "criminality VARCHAR, person_id VARCHAR, episode_id VARCHAR, "
                   "is_duplicate BOOLEAN, previous_episode_date TIMESTAMP, "
                   "stay_entry_date DATE, days_to_stay DOUBLE, stay_ended_at TIMESTAMP, "
                   "stay_end_reason VARCHAR, days_to_removal INTEGER, identity_conflict BOOLEAN"),
          key_date="apprehension_date"),
    Table(FOIA_STINTS, "foia", "detention stints: one row per placement in one facility",
          _columns(_FOIA_PROVENANCE + ", stay_book_in TIMESTAMP, book_in TIMESTAMP, "
                   "book_out TIMESTAMP, stay_book_out TIMESTAMP, facility_code VARCHAR, "
                   "criminality VARCHAR, msc_crime_class VARCHAR, person_id VARCHAR, "
                   "stay_id VARCHAR, is_duplicate BOOLEAN"), key_date="book_in"),
    Table(FOIA_REMOVALS, "foia", "removals, one row per raw row",
          _columns(_FOIA_PROVENANCE + ", departed_date DATE, aor VARCHAR, criminality VARCHAR, "
                   "person_id VARCHAR"), key_date="departed_date"),
    Table(FOIA_DETAINERS, "foia", "detainers, one row per raw row",
          _columns(_FOIA_PROVENANCE + ", detainer_prepare_date TIMESTAMP, aor VARCHAR, "
                   "detainer_lift_reason VARCHAR, person_id VARCHAR, "
                   "days_to_custodial_arrest INTEGER"),
          key_date="detainer_prepare_date"),
    Table(FOIA_ENCOUNTERS, "foia", "encounters, one row per raw row",
          _columns(_FOIA_PROVENANCE + ", event_date TIMESTAMP, aor VARCHAR, event_type VARCHAR, "
                   "person_id VARCHAR, days_to_arrest INTEGER"), key_date="event_date"),
    Table(FOIA_CHECKS, "foia", "validation of each loaded FOIA file", _columns(
        "sha256 VARCHAR, file_name VARCHAR, dataset VARCHAR, check VARCHAR, "
        "description VARCHAR, failed_rows BIGINT, total_rows BIGINT, status VARCHAR, "
        "warn_at DOUBLE, fail_at DOUBLE, example VARCHAR")),
    Table(FOIA_CAPABILITIES, "foia", "what each release can say, column by column", _columns(
        "sha256 VARCHAR, file_name VARCHAR, release VARCHAR, dataset VARCHAR, sheet VARCHAR, "
        "month DATE, fiscal_year INTEGER, column VARCHAR, rows BIGINT, non_null BIGINT, "
        "redacted BIGINT")),
    Table(FOIA_PUBLISHED_TOTALS, "foia", "ICE's Summary sheet figures against the records",
          _columns("sha256 VARCHAR, file_name VARCHAR, release VARCHAR, dataset VARCHAR, "
                   "column VARCHAR, label VARCHAR, fiscal_year INTEGER, ice_total BIGINT, "
                   "records BIGINT, compared VARCHAR, sheet VARCHAR, row INTEGER")),
    Table(FOIA_RELEASE_NOTES, "foia", "ICE's footnotes, stored with the release", _columns(
        "sha256 VARCHAR, file_name VARCHAR, release VARCHAR, sheet VARCHAR, row INTEGER, "
        "note VARCHAR, dates DATE[]")),
    Table(FOIA_PLACEHOLDER_IDENTIFIERS, "foia derived", "identifier values that are no one",
          _columns("release VARCHAR, table VARCHAR, column VARCHAR, value VARCHAR, rows BIGINT, "
                   "days BIGINT, first_day DATE, last_day DATE, found_at TIMESTAMP")),
    Table(FOIA_STAYS, "foia derived", "detention stays: a person's stints joined end to end",
          _columns("stay_id VARCHAR, person_id VARCHAR, release VARCHAR, "
                   "stay_book_in TIMESTAMP, stay_book_out TIMESTAMP, censored BOOLEAN, "
                   "end_time TIMESTAMP, length_days DOUBLE, stay_release_reason VARCHAR, "
                   "criminality VARCHAR, msc_crime_class VARCHAR, aor VARCHAR, "
                   "first_facility_code VARCHAR, n_stints BIGINT, entry_date DATE, "
                   "birth_date DATE, birth_year INTEGER, case_status VARCHAR, "
                   "family_facility BOOLEAN"),
          key_date="stay_book_in",
          derived_from=FOIA_STINTS),
    Table(FOIA_ARREST_STAY_LINKS, "foia derived", "each arrest's detention stay, one to one",
          _columns("arrest_record_id VARCHAR, stay_id VARCHAR, days_from_arrest DOUBLE, "
                   "apprehension_date TIMESTAMP"), key_date="apprehension_date"),
    Table(FOIA_REMOVAL_LINKS, "foia derived", "each removal's stay and arrest",
          _columns("removal_record_id VARCHAR, stay_id VARCHAR, arrest_record_id VARCHAR")),
    Table(FOIA_RELEASES, "foia derived", "each release's coverage (the censoring date)",
          _columns("release VARCHAR, coverage_start DATE, coverage_end DATE")),
    Table(STATS_WORKBOOKS, "workbooks", "one row per workbook version", _columns(
        "workbook VARCHAR, sha256 VARCHAR, fiscal_year INTEGER, file_date DATE, "
        "archive_date DATE, as_of_date DATE, tables_found VARCHAR[], warnings VARCHAR[], "
        "errors VARCHAR[], rows_read BIGINT, rows_loaded BIGINT, rows_quarantined BIGINT")),
    Table(STATS_CHECKS, "workbooks", "validation checks within each workbook", _columns(
        "workbook VARCHAR, fiscal_year INTEGER, check VARCHAR, table VARCHAR, status VARCHAR, "
        "detail VARCHAR, location VARCHAR, expected DOUBLE, observed DOUBLE, "
        "compared_with VARCHAR")),
    Table(STATS_UNRECOGNISED, "workbooks", "figures in no known table, kept as printed",
          _columns("workbook VARCHAR, sha256 VARCHAR, fiscal_year INTEGER, snapshot_date DATE, "
                   "as_of_source VARCHAR, sheet VARCHAR, cell VARCHAR, caption VARCHAR, "
                   "row_labels VARCHAR, column_labels VARCHAR, value DOUBLE")),
    Table(STATS_RELEASE_CHECKS, "workbooks", "validation checks across releases", _columns(
        "workbook VARCHAR, check VARCHAR, table VARCHAR, status VARCHAR, detail VARCHAR, "
        "location VARCHAR, expected DOUBLE, observed DOUBLE, compared_with VARCHAR, "
        "fiscal_year INTEGER")),
    Table(STATS_FACILITIES, "workbooks", "the facilities list, one row per facility and workbook",
          _columns("name VARCHAR, city VARCHAR, state VARCHAR, zip VARCHAR, aor VARCHAR, "
                   "type_detailed VARCHAR, adp DOUBLE")),
)


@cache
def catalogue() -> dict[str, Table]:
    """Every table by name: the declared ones, then each workbook table spec'd as data."""
    tables = {t.name: t for t in _DECLARED}
    layout = tomllib.loads(resources.files("iceledger.data").joinpath(
        "layouts", "stats_tables.toml").read_text("utf-8"))
    for spec in layout["tables"]:
        for name in filter(None, (spec["name"], spec.get("totals_table"))):
            tables.setdefault(name, Table(name, "workbooks", "spec'd in stats_tables.toml"))
    return tables


def key_dates(family: str | None = None) -> dict[str, str]:
    """Each table's key date by table name (of one family, if named)."""
    return {t.name: t.key_date for t in catalogue().values()
            if t.key_date and (family is None or t.family == family)}
