"""Derived FOIA tables: arrest episodes, stints → stays, arrest → stay and removal → stay links,
and each detainer's and encounter's days to the ICE arrest that follows it.

`rebuild_derived` recomputes every derived flag and table from the FOIA rows that are loaded, in one
transaction, entirely in DuckDB SQL (window functions and joins; Python only loops over a handful
of matching rounds, never over rows). The rules, their edges and where they differ from the peer
pipeline are written down in docs/methodology.md, "Derived FOIA tables"; the constants below are
the numbers those rules name.

Nothing is deleted: duplicate arrests and stints are flagged on their raw rows, so every raw row
stays reachable, and every row a rule cannot use (no identifier, no date) is counted in the summary.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import duckdb

from iceledger.errors import IceledgerError
from iceledger.sources.foia.layouts import catalog
from iceledger.tables import (
    ARREST_FOLLOW_UP_DAYS,
    ARREST_STAY_DAYS_AFTER,
    ARREST_STAY_DAYS_BEFORE,
    FOIA_ARRESTS,
    FOIA_ARREST_STAY_LINKS,
    FOIA_CHECKS,
    FOIA_DETAINERS,
    FOIA_ENCOUNTERS,
    FOIA_PLACEHOLDER_IDENTIFIERS,
    FOIA_RELEASES,
    FOIA_REMOVALS,
    FOIA_REMOVAL_LINKS,
    FOIA_STAYS,
    FOIA_STINTS,
    FAMILY_FACILITY_WORDS,
    SOURCES,
    key_dates,
)
from iceledger.warehouse import (
    DERIVE_MEMORY_LIMIT,
    Warehouse,
    mark_derived,
    table_exists,
)

PLACEHOLDER_CHECK = "placeholder_identifiers"

EPISODE_HOURS = 24
# What each linked arrest carries of its stay and of the removal that ended that stay, so that
# the metrics following arrests (outcomes, long-term residents) read the arrests alone.
STAY_FACTS = {"stay_entry_date": "DATE", "days_to_stay": "DOUBLE",
              "stay_ended_at": "TIMESTAMP", "stay_end_reason": "VARCHAR"}
REMOVAL_FACTS = {"days_to_removal": "INTEGER"}
_NO_ROWS = "SELECT NULL::BIGINT AS row_key WHERE false"
IDENTITY_CONFLICT = "identity_conflict"
# Person fields an identifier should carry one value of across a release's arrest records; gender
# 'Unknown' is no value.
IDENTITY_FIELDS = {"birth_year": "birth_year", "gender": "NULLIF(gender, 'Unknown')",
                   "citizenship_country": "citizenship_country"}
REPROCESSED_METHOD = "ERO Reprocessed Arrest"
# A removal ends a stay when it departs from 5 days before to 10 days after the stay's book-out.
REMOVAL_DAYS_BEFORE, REMOVAL_DAYS_AFTER = 5, 10

# The event that dates a row of each dataset, for a release's coverage_start.
EVENT_DATE_COLUMNS = key_dates("foia")
# Files this large with the same rows in every month are one production twice, not chance.
FILES_ALIKE_MIN_ROWS = 100

_REQUIRED_COLUMNS = {
    FOIA_ARRESTS: ("record_id", "person_id", "apprehension_method"),
    FOIA_STINTS: ("record_id", "person_id", "stay_book_in", "stay_book_out", "facility_code",
             "stay_release_reason", "criminality", "aor", "aor_code", "citizenship_country",
             "gender", "departed_date"),
    FOIA_REMOVALS: ("record_id", "person_id"),
    FOIA_DETAINERS: ("person_id",),
    FOIA_ENCOUNTERS: ("person_id",),
}


@dataclass(frozen=True)
class FollowUp:
    """Records followed to the ICE arrest after them: the derived column holding the days to it,
    and which arrests count (a condition on foia_arrests, and the columns it reads)."""

    column: str
    arrests: str = "true"
    arrest_columns: tuple[str, ...] = ()


# A detainer asks a jail to hand the person over, so only a custodial arrest (taken from a jail or
# prison) follows it; any arrest follows an encounter.
FOLLOWED_BY_ARREST = {
    FOIA_DETAINERS: FollowUp("days_to_custodial_arrest", "arrest_setting = 'custodial'",
                             ("arrest_setting",)),
    FOIA_ENCOUNTERS: FollowUp("days_to_arrest"),
}


def required_columns(table: str) -> tuple[str, ...]:
    """The columns the derived tables read from a raw table (besides release and its date)."""
    return tuple(c for c in _REQUIRED_COLUMNS.get(table, ()) if c != "record_id")


# Stints of a stay in time order, ties in load order (the file's sheets and rows as ingested),
# missing book-ins last. Packed into one BIGINT (seconds since 2000 in the high 32 bits, rowid in
# the low 32) because DuckDB's arg_min is several times faster on it than on a (timestamp, rowid)
# pair. Exact for book-ins from 1932 to 2068; mistyped years outside that sort at its ends.
def _stint_order(row_key: str = "rowid") -> str:
    return (
        "((CASE WHEN book_in IS NULL THEN 2147483647 ELSE least(greatest("
        "epoch_us(book_in) // 1000000 - 946684800, -2147483648), 2147483646) END) * 4294967296 "
        f"+ {row_key})"
    )


@dataclass
class DerivedSummary:
    """What one rebuild produced, including every row a rule could not use and why."""

    releases: int = 0
    placeholder_rows: int = 0  # identifiers found to be placeholders, loaded now as NULL
    arrests: int = 0
    arrest_episodes: int = 0
    arrest_duplicates: int = 0
    arrests_unlinkable: int = 0  # no identifier or no date: each is its own episode
    stints: int = 0
    stint_duplicates: int = 0
    stints_without_stay: int = 0  # no stay book-in: no stay can be formed
    stays: int = 0
    open_stays: int = 0
    arrest_stay_links: int = 0
    removals: int = 0
    removal_links: int = 0
    removal_links_with_arrest: int = 0
    # table -> (rows, rows followed by an ICE arrest within ARREST_FOLLOW_UP_DAYS)
    followed_by_arrest: dict[str, tuple[int, int]] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    # Per step: wall-clock seconds, and CPU seconds of all DuckDB threads (steadier on a busy
    # machine, where wall-clock time says more about the neighbours than about the work).
    seconds: dict[str, float] = field(default_factory=dict)
    cpu_seconds: dict[str, float] = field(default_factory=dict)

    def lines(self) -> list[str]:
        lines = [
            f"releases: {self.releases:,}",
            (f"arrests: {self.arrests:,} rows -> {self.arrest_episodes:,} episodes "
             f"({self.arrest_duplicates:,} flagged duplicates; {self.arrests_unlinkable:,} "
             "without identifier or date, never merged)"),
            (f"stints: {self.stints:,} rows ({self.stint_duplicates:,} flagged duplicates; "
             f"{self.stints_without_stay:,} without a stay book-in) -> {self.stays:,} stays "
             f"({self.open_stays:,} open, censored at the release date)"),
            f"arrest -> stay links: {self.arrest_stay_links:,}",
            (f"removals: {self.removals:,} -> {self.removal_links:,} linked to a stay "
             f"({self.removal_links_with_arrest:,} of them through that stay to an arrest)"),
            *(f"{table}: {followed:,} of {rows:,} rows followed by an ICE arrest within "
              f"{ARREST_FOLLOW_UP_DAYS} days" for table, (rows, followed)
              in self.followed_by_arrest.items()),
        ]
        return lines + [f"note: {note}" for note in self.notes]


def rebuild_derived(con: duckdb.DuckDBPyConnection) -> DerivedSummary:
    """Recompute every derived FOIA flag and table, all-or-nothing, and say what was done."""
    summary = DerivedSummary()
    present = {t for t in EVENT_DATE_COLUMNS if table_exists(con, t)}
    for table in sorted(present):
        _require_columns(con, table, ("release", EVENT_DATE_COLUMNS[table],
                                      *_REQUIRED_COLUMNS.get(table, ())))
    con.execute("BEGIN TRANSACTION")
    try:
        _timed(summary, "placeholder identifiers", _null_placeholders, con, present, summary)
        _timed(summary, "releases", _build_releases, con, present)
        if FOIA_ARRESTS in present:
            _timed(summary, "arrest episodes", _flag_arrest_episodes, con)
            _timed(summary, "identity conflicts", _flag_identity_conflicts, con)
        else:
            summary.notes.append(f"no {FOIA_ARRESTS} loaded: arrest episodes not derived")
        if FOIA_STINTS in present:
            _timed(summary, "stints -> stays", _build_stays, con)
        else:
            summary.notes.append(f"no {FOIA_STINTS} loaded: {FOIA_STAYS} not derived")
            con.execute(f"DROP TABLE IF EXISTS {FOIA_STAYS}")
        if {FOIA_ARRESTS, FOIA_STINTS} <= present:
            _timed(summary, "arrest -> stay links", _link_arrests_to_stays, con)
        else:
            summary.notes.append(f"{FOIA_ARREST_STAY_LINKS} not derived (needs arrests and stints)")
            con.execute(f"DROP TABLE IF EXISTS {FOIA_ARREST_STAY_LINKS}")
            if FOIA_ARRESTS in present:  # no arrest is linked to a stay
                _write_arrest_columns(con, {**STAY_FACTS, **REMOVAL_FACTS}, _NO_ROWS)
        if {FOIA_REMOVALS, FOIA_STINTS} <= present:
            _timed(summary, "removal links", _link_removals, con, FOIA_ARRESTS in present)
        else:
            summary.notes.append(f"{FOIA_REMOVAL_LINKS} not derived (needs removals and stints)")
            con.execute(f"DROP TABLE IF EXISTS {FOIA_REMOVAL_LINKS}")
            if {FOIA_ARRESTS, FOIA_STINTS} <= present:  # no linked stay ends in a removal
                _write_arrest_columns(con, REMOVAL_FACTS, _NO_ROWS)
        con.execute("DROP TABLE IF EXISTS _derive_arrest_stays")
        for table in sorted(present & FOLLOWED_BY_ARREST.keys()):
            _timed(summary, f"{table} -> arrests", follow_to_arrests, con, table,
                   FOIA_ARRESTS in present, summary)
        _count(con, summary, present)
        _timed(summary, "files loaded twice", _note_files_alike, con, present, summary)
        mark_derived(con, stale=False)
        con.execute("COMMIT")
    except BaseException as exc:
        con.execute("ROLLBACK")
        if isinstance(exc, duckdb.Error):
            raise IceledgerError(
                f"deriving the FOIA tables failed ({exc}); the warehouse is unchanged"
            ) from exc
        raise
    return summary


def derive_warehouse(warehouse: Warehouse) -> DerivedSummary:
    """Rebuild the derived tables of an existing warehouse file."""
    warehouse.require()
    with warehouse.connect(memory_limit=DERIVE_MEMORY_LIMIT) as con:
        return rebuild_derived(con)


def _timed(summary: DerivedSummary, step: str, build, *args) -> None:
    started, cpu_started = time.perf_counter(), time.process_time()
    build(*args)
    summary.seconds[step] = time.perf_counter() - started
    summary.cpu_seconds[step] = time.process_time() - cpu_started


def _null_placeholders(con: duckdb.DuckDBPyConnection, present: set[str],
                       summary: DerivedSummary) -> None:
    """An identifier value on too many rows over too many days for any one person (a redaction
    no spelling rule caught, a filler) is no identifier: NULL, so it links nothing and merges no
    one, with the value kept in foia_placeholder_identifiers and the files' checks flagged. The
    thresholds are foia_vocabulary.toml's [placeholder_guard]."""
    vocabulary = catalog().vocabulary
    con.execute(f"""
        CREATE TABLE IF NOT EXISTS {FOIA_PLACEHOLDER_IDENTIFIERS} (
            release VARCHAR, "table" VARCHAR, "column" VARCHAR, value VARCHAR, "rows" BIGINT,
            days BIGINT, first_day DATE, last_day DATE, found_at TIMESTAMP)""")
    for table in sorted(present):
        columns = set(con.table(table).columns)
        identifiers = [c for c in vocabulary.identifier_columns if c in columns]
        day = f'CAST("{EVENT_DATE_COLUMNS[table]}" AS DATE)'
        for column in identifiers:
            found = con.execute(f"""
                SELECT release, CAST("{column}" AS VARCHAR) AS value, count(*) AS n,
                       count(DISTINCT {day}) AS days, min({day}), max({day})
                FROM {table} WHERE "{column}" IS NOT NULL
                GROUP BY ALL HAVING n >= $rows AND days >= $days""",
                {"rows": vocabulary.placeholder_min_rows,
                 "days": vocabulary.placeholder_min_days}).fetchall()
            for release, value, rows, days, first, last in found:
                con.execute(f"INSERT INTO {FOIA_PLACEHOLDER_IDENTIFIERS} "
                            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, now())",
                            [release, table, column, value, rows, days, first, last])
                _flag_placeholder_check(con, table, column, release, value, rows, days)
                con.execute(f'UPDATE {table} SET "{column}" = NULL WHERE release = ? AND '
                            f'CAST("{column}" AS VARCHAR) = ?', [release, value])
                summary.placeholder_rows += rows
                summary.notes.append(
                    f"{table}.{column} {value!r} is on {rows:,} rows over {days:,} days: a "
                    f"placeholder, not one person; loaded as NULL ({FOIA_PLACEHOLDER_IDENTIFIERS})")
        if identifiers and "is_exact_duplicate" in columns:
            # Equal rows are one record twice only when they say whom they are about.
            anonymous = " AND ".join(f'"{c}" IS NULL' for c in identifiers)
            con.execute(f"UPDATE {table} SET is_exact_duplicate = false "
                        f"WHERE is_exact_duplicate AND {anonymous}")


def _flag_placeholder_check(con: duckdb.DuckDBPyConnection, table: str, column: str,
                            release: str, value: str, rows: int, days: int) -> None:
    """One `placeholder_identifiers` row in foia_checks per source file that carries the value."""
    if not table_exists(con, FOIA_CHECKS) or not table_exists(con, SOURCES):
        return
    dataset = next((name for name, spec in catalog().datasets.items() if spec.table == table),
                   table)
    con.execute(f"""
        INSERT INTO {FOIA_CHECKS} BY NAME
        SELECT s.sha256, s.file_name, $dataset AS dataset, '{PLACEHOLDER_CHECK}' AS "check",
               'an identifier value on too many rows over too many days to be one person: a '
               || 'placeholder, loaded as NULL' AS description,
               count(*) FILTER (CAST(t."{column}" AS VARCHAR) = $value) AS failed_rows,
               count(*) AS total_rows, 'warn' AS status, 0.0 AS warn_at, NULL AS fail_at,
               $example AS example
        FROM {table} t
        JOIN {SOURCES} s ON left(s.sha256, 12) = split_part(t.record_id, ':', 1)
        WHERE t.release = $release
        GROUP BY s.sha256, s.file_name
        HAVING failed_rows > 0""",
        {"dataset": dataset, "value": value, "release": release,
         "example": f"{column} {value!r} on {rows:,} rows over {days:,} days"})


def _build_releases(con: duckdb.DuckDBPyConnection, present: set[str]) -> None:
    # coverage_start is the earliest event of the release's event datasets. Its stints are not
    # evidence of it: a stint table holds the placements still going on at the coverage start,
    # booked in before it, beside those begun after, and the book-ins before the start are only
    # those of people still held then (the days they date are missing book-ins, not quiet ones).
    # A release of stints alone has nothing else to date it by.
    # coverage_end is the release date (the contract's 'YYYY-MM-DD' release name); a release
    # named otherwise falls back to its latest event date so open stays still have an end.
    events = " UNION ALL ".join(
        f'SELECT release, CAST("{column}" AS DATE) AS event_date, '
        f"{str(table != FOIA_STINTS).lower()} AS dates_coverage FROM {table}"
        for table, column in EVENT_DATE_COLUMNS.items()
        if table in present
    ) or ("SELECT NULL::VARCHAR AS release, NULL::DATE AS event_date, "
          "true AS dates_coverage WHERE false")
    con.execute(f"""
        CREATE OR REPLACE TABLE {FOIA_RELEASES} AS
        SELECT release,
               coalesce(min(event_date) FILTER (WHERE dates_coverage),
                        min(event_date)) AS coverage_start,
               coalesce(TRY_CAST(release AS DATE), max(event_date)) AS coverage_end
        FROM ({events})
        WHERE release IS NOT NULL
        GROUP BY release
        ORDER BY release
    """)


def _flag_arrest_episodes(con: duckdb.DuckDBPyConnection) -> None:
    # Arrests are ordered per person and release by time, reprocessed arrests after others at the
    # same time, then in load order (the source's sheets and rows). A gap of more than 24 hours
    # always starts an episode, so most arrests (alone in their "cluster" of arrests chained by
    # shorter gaps) are episodes by themselves; only multi-arrest clusters need the rule worked
    # out, and only their rows are carried further.
    con.execute(f"""
        CREATE OR REPLACE TEMP TABLE _derive_arrest_clusters AS
        WITH ordered AS (
            SELECT rowid AS row_key, record_id, release, person_id, apprehension_date,
                   row_number() OVER person_order AS seq,
                   coalesce(apprehension_date - lag(apprehension_date) OVER person_order
                            > INTERVAL {EPISODE_HOURS} HOURS, true) AS opens_cluster,
                   coalesce(lead(apprehension_date) OVER person_order - apprehension_date
                            <= INTERVAL {EPISODE_HOURS} HOURS, false) AS next_within
            FROM {FOIA_ARRESTS}
            WHERE person_id IS NOT NULL AND apprehension_date IS NOT NULL
            WINDOW person_order AS (
                PARTITION BY release, person_id
                ORDER BY apprehension_date,
                         coalesce(apprehension_method = '{REPROCESSED_METHOD}', false), rowid
            )
        ), chained AS (
            SELECT *, last_value(CASE WHEN opens_cluster THEN row_key END IGNORE NULLS) OVER (
                PARTITION BY release, person_id ORDER BY seq
                ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW) AS cluster
            FROM ordered
            WHERE next_within OR NOT opens_cluster
        )
        SELECT row_key, record_id, cluster,
               row_number() OVER (PARTITION BY cluster ORDER BY seq) AS position,
               count(*) OVER (PARTITION BY cluster) AS cluster_size,
               count(*) OVER (
                   PARTITION BY cluster ORDER BY apprehension_date
                   RANGE BETWEEN UNBOUNDED PRECEDING AND INTERVAL {EPISODE_HOURS} HOURS FOLLOWING
               ) AS reach
        FROM chained
    """)
    # `reach` is the position of the cluster's last arrest at most 24 hours after this one, so
    # the episode that starts at an arrest ends at its reach and the next starts at reach + 1.
    con.execute("""
        CREATE OR REPLACE TEMP TABLE _derive_arrest_episodes AS
        WITH RECURSIVE episode_starts(cluster, position) AS (
            SELECT cluster, position FROM _derive_arrest_clusters WHERE position = 1
            UNION ALL
            SELECT c.cluster, c.reach + 1
            FROM episode_starts s
            JOIN _derive_arrest_clusters c ON c.cluster = s.cluster AND c.position = s.position
            WHERE c.reach < c.cluster_size
        )
        SELECT c.row_key, s.position IS NULL AS is_duplicate,
               last_value(CASE WHEN s.position IS NOT NULL THEN c.record_id END IGNORE NULLS)
                   OVER (PARTITION BY c.cluster ORDER BY c.position
                         ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW) AS episode_id
        FROM _derive_arrest_clusters c
        LEFT JOIN episode_starts s ON s.cluster = c.cluster AND s.position = c.position
    """)
    _ensure_columns(con, FOIA_ARRESTS, {"episode_id": "VARCHAR", "is_duplicate": "BOOLEAN"})
    con.execute(f"""
        UPDATE {FOIA_ARRESTS} SET episode_id = record_id, is_duplicate = false
        WHERE (episode_id IS DISTINCT FROM record_id OR is_duplicate IS DISTINCT FROM false)
          AND rowid NOT IN (SELECT row_key FROM _derive_arrest_episodes)
    """)
    con.execute(f"""
        UPDATE {FOIA_ARRESTS} AS a SET episode_id = e.episode_id, is_duplicate = e.is_duplicate
        FROM _derive_arrest_episodes e
        WHERE a.rowid = e.row_key AND (a.episode_id IS DISTINCT FROM e.episode_id
                                       OR a.is_duplicate IS DISTINCT FROM e.is_duplicate)
    """)
    con.execute("DROP TABLE _derive_arrest_clusters")
    con.execute("DROP TABLE _derive_arrest_episodes")
    _date_previous_episodes(con)


def _date_previous_episodes(con: duckdb.DuckDBPyConnection) -> None:
    # Re-arrests: each episode's previous episode of the same person in the release, at any time
    # before it. One person's episodes are more than 24 hours apart, so time alone orders them.
    # Most people are arrested once: only the episodes that have a previous one are carried.
    _write_arrest_columns(con, {"previous_episode_date": "TIMESTAMP"}, f"""
        SELECT row_key, previous_episode_date FROM (
            SELECT rowid AS row_key, lag(apprehension_date) OVER (
                PARTITION BY release, person_id ORDER BY apprehension_date
            ) AS previous_episode_date
            FROM {FOIA_ARRESTS}
            WHERE NOT is_duplicate AND person_id IS NOT NULL AND apprehension_date IS NOT NULL)
        WHERE previous_episode_date IS NOT NULL""")


def _flag_identity_conflicts(con: duckdb.DuckDBPyConnection) -> None:
    # Every arrest of an identifier whose records in the release disagree on a person field. A
    # disagreement among any of those records is one among all of them, so identification
    # quality, over a period or one field office, groups just these arrests.
    columns = set(con.table(FOIA_ARRESTS).columns)
    disagree = [f"min({value}) <> max({value})" for field, value in IDENTITY_FIELDS.items()
                if field in columns]
    _write_arrest_columns(con, {IDENTITY_CONFLICT: "BOOLEAN"}, f"""
        SELECT a.rowid AS row_key, true AS {IDENTITY_CONFLICT}
        FROM {FOIA_ARRESTS} a
        SEMI JOIN (SELECT release, person_id FROM {FOIA_ARRESTS} WHERE person_id IS NOT NULL
                   GROUP BY release, person_id HAVING {" OR ".join(disagree) or "false"}) c
          ON c.release = a.release AND c.person_id = a.person_id""")


def _write_arrest_columns(con: duckdb.DuckDBPyConnection, columns: dict[str, str],
                          values: str) -> None:
    """Set derived columns of the arrests (name -> SQL type) to `values` (a query of row_key,
    the arrest's rowid, and those columns; without them, all NULL) and to NULL on every other
    arrest, in one pass, writing only the rows where one changes."""
    _ensure_columns(con, FOIA_ARRESTS, columns)
    con.execute(f"CREATE OR REPLACE TEMP TABLE _derive_arrest_values AS {values}")
    given = set(con.table("_derive_arrest_values").columns)
    value = {c: f'v."{c}"' if c in given else f"NULL::{kind}" for c, kind in columns.items()}
    con.execute(f"""
        UPDATE {FOIA_ARRESTS} SET {", ".join(f'"{c}" = NULL' for c in columns)}
        WHERE ({" OR ".join(f'"{c}" IS NOT NULL' for c in columns)})
          AND rowid NOT IN (SELECT row_key FROM _derive_arrest_values)
    """)
    con.execute(f"""
        UPDATE {FOIA_ARRESTS} AS a SET {", ".join(f'"{c}" = {value[c]}' for c in columns)}
        FROM _derive_arrest_values v
        WHERE a.rowid = v.row_key
          AND ({" OR ".join(f'a."{c}" IS DISTINCT FROM {value[c]}' for c in columns)})
    """)
    con.execute("DROP TABLE _derive_arrest_values")


def _build_stays(con: duckdb.DuckDBPyConnection) -> None:
    _flag_stints(con)
    # The first stint's row is found by min(stint order), whose low 32 bits are its rowid, and
    # fetched by one join: several times cheaper than an arg_min per stay attribute.
    # Open stays are censored at 00:00 on the release date, the last moment the release can
    # describe; a stay booked in after that has no meaningful length and gets none.
    # Stints loaded from a layout without MSC Crime Class lack the column: their stays have none.
    crime_class = ("CAST(f.msc_crime_class AS VARCHAR)"
                   if "msc_crime_class" in con.table(FOIA_STINTS).columns else "NULL::VARCHAR")
    con.execute(f"""
        CREATE OR REPLACE TABLE {FOIA_STAYS} AS
        WITH stays AS (
            SELECT stay_id, max(stay_book_out) AS stay_book_out, count(*) AS n_stints,
                   min(stint_order) & 4294967295 AS first_row,
                   arg_max(stay_release_reason, stint_order) AS stay_release_reason,
                   {_person_facts()}
            FROM (SELECT stay_id, stay_book_out, stay_release_reason, book_in,
                         {_person_fact_columns(con)}, {_stint_order()} AS stint_order
                  FROM {FOIA_STINTS} WHERE stay_id IS NOT NULL AND NOT is_duplicate)
            GROUP BY stay_id
        ), ended AS (
            SELECT s.*, f.person_id, f.release, f.stay_book_in, f.criminality, f.aor, f.aor_code,
                   f.facility_code AS first_facility_code, f.citizenship_country, f.gender,
                   {crime_class} AS msc_crime_class, s.stay_book_out IS NULL AS censored,
                   coalesce(s.stay_book_out, CAST(r.coverage_end AS TIMESTAMP)) AS end_time
            FROM stays s
            JOIN {FOIA_STINTS} f ON f.rowid = s.first_row
            LEFT JOIN {FOIA_RELEASES} r ON r.release = f.release
        )
        SELECT stay_id, person_id, release, stay_book_in, stay_book_out, censored,
               CASE WHEN NOT censored OR end_time > stay_book_in THEN end_time END AS end_time,
               CASE WHEN NOT censored OR end_time > stay_book_in
                    THEN epoch(end_time - stay_book_in) / 86400.0 END AS length_days,
               stay_release_reason, criminality, msc_crime_class, aor, aor_code,
               first_facility_code, n_stints, citizenship_country, gender,
               {", ".join(PERSON_FACTS)}
        FROM ended
    """)


# What a stay says of its person and case, taken once here from its stints so that the metrics
# read one row per stay (docs/methodology.md, "Stints and stays").
PERSON_FACTS = ("entry_date", "birth_date", "birth_year", "case_status", "family_facility")
# The stint columns they are made from, with their types.
_FACT_SOURCES = {"entry_date": "DATE", "birth_date": "DATE", "birth_year": "INTEGER",
                 "case_status": "VARCHAR", "facility_name": "VARCHAR"}


def _person_fact_columns(con: duckdb.DuckDBPyConnection) -> str:
    """The stint columns the person facts read, typed; NULL where the stints lack one (a layout
    without it): their stays then have none."""
    have = set(con.table(FOIA_STINTS).columns)
    return ", ".join(f"CAST({c if c in have else 'NULL'} AS {kind}) AS {c}"
                     for c, kind in _FACT_SOURCES.items())


def _person_facts() -> str:
    """Per stay: entry and birth, the greatest recorded (the person's, the same on every stint);
    the case status of the latest-booked stint that records one (it changes as the case goes
    on); whether any stint was in a family residential facility, NULL when none names its
    facility."""
    family = " OR ".join(f"contains(upper(facility_name), '{word}')"
                         for word in FAMILY_FACILITY_WORDS)
    return (
        "max(entry_date) AS entry_date, max(birth_date) AS birth_date, "
        "max(birth_year) AS birth_year, "
        "arg_max(case_status, stint_order) "
        "FILTER (case_status IS NOT NULL AND book_in IS NOT NULL) AS case_status, "
        f"bool_or({family}) AS family_facility"
    )


def _flag_stints(con: duckdb.DuckDBPyConnection) -> None:
    # A stint without an identifier cannot be joined to others: it is a stay on its own, keyed by
    # its record. The stay id carries the release because identifiers are unique only within one.
    # Duplicates are ranked only among the (few) stints that share a stay, facility and book-in
    # day, which spares a window over every stint; both flags are then written in place in one
    # pass, only where they change.
    _ensure_columns(con, FOIA_STINTS, {"stay_id": "VARCHAR", "is_duplicate": "BOOLEAN"})
    placement = "release, person_id, stay_book_in, facility_code, book_in_day"
    con.execute(f"""
        CREATE OR REPLACE TEMP TABLE _derive_stint_duplicates AS
        WITH placed AS NOT MATERIALIZED (
            SELECT rowid AS row_key, release, person_id, stay_book_in, facility_code, book_in,
                   CAST(book_in AS DATE) AS book_in_day
            FROM {FOIA_STINTS}
            WHERE person_id IS NOT NULL AND stay_book_in IS NOT NULL
              AND facility_code IS NOT NULL AND book_in IS NOT NULL
        ), shared AS (
            SELECT {placement} FROM placed GROUP BY ALL HAVING count(*) > 1
        )
        SELECT row_key FROM (
            SELECT row_key, row_number() OVER (
                PARTITION BY {placement} ORDER BY {_stint_order("row_key")}
            ) AS placement_rank
            FROM placed SEMI JOIN shared USING ({placement}))
        WHERE placement_rank > 1
    """)
    stay_id = (
        "CASE WHEN stay_book_in IS NOT NULL THEN release || '/' || "
        "coalesce(person_id, 'record ' || record_id) || '/' || CAST(stay_book_in AS VARCHAR) END"
    )
    duplicate = "(rowid IN (SELECT row_key FROM _derive_stint_duplicates))"
    con.execute(f"""
        UPDATE {FOIA_STINTS} SET stay_id = {stay_id}, is_duplicate = {duplicate}
        WHERE stay_id IS DISTINCT FROM {stay_id} OR is_duplicate IS DISTINCT FROM {duplicate}
    """)
    con.execute("DROP TABLE _derive_stint_duplicates")


def _link_arrests_to_stays(con: duckdb.DuckDBPyConnection) -> None:
    con.execute(f"""
        CREATE OR REPLACE TEMP TABLE _derive_candidates AS
        SELECT a.rowid AS left_key, s.rowid AS right_key, a.record_id AS left_id,
               s.stay_id AS right_id,
               epoch(s.stay_book_in - a.apprehension_date) / 86400.0 AS gap_days,
               a.apprehension_date AS left_time, s.stay_book_in AS right_time
        FROM {FOIA_ARRESTS} a
        JOIN {FOIA_STAYS} s
          ON s.release = a.release AND s.person_id = a.person_id
         AND s.stay_book_in BETWEEN a.apprehension_date - INTERVAL {ARREST_STAY_DAYS_BEFORE} DAYS
                                AND a.apprehension_date + INTERVAL {ARREST_STAY_DAYS_AFTER} DAYS
        WHERE NOT a.is_duplicate AND a.person_id IS NOT NULL
    """)
    _match_one_to_one(con)
    con.execute(f"""
        CREATE OR REPLACE TABLE {FOIA_ARREST_STAY_LINKS} AS
        SELECT m.left_id AS arrest_record_id, m.right_id AS stay_id,
               m.gap_days AS days_from_arrest, m.left_time AS apprehension_date
        FROM _derive_matched m
        -- in arrest order: a question about a period then reads only its part of the links
        -- (DuckDB skips row groups by their least and greatest apprehension_date)
        ORDER BY apprehension_date
    """)
    # Each linked arrest takes what it is followed to of its stay: its entry date, which the
    # arrest records lack (long-term residence), and when and why it ended (outcomes).
    _write_arrest_columns(con, STAY_FACTS, f"""
        SELECT m.left_key AS row_key, s.entry_date AS stay_entry_date,
               m.gap_days AS days_to_stay, s.stay_book_out AS stay_ended_at,
               s.stay_release_reason AS stay_end_reason
        FROM _derive_matched m JOIN {FOIA_STAYS} s ON s.rowid = m.right_key""")
    # Kept for the removal links, which follow each linked stay on to its arrest.
    con.execute("""
        CREATE OR REPLACE TEMP TABLE _derive_arrest_stays AS
        SELECT left_key AS arrest_key, right_key AS stay_key, CAST(left_time AS DATE) AS arrest_day
        FROM _derive_matched""")
    con.execute("DROP TABLE _derive_matched")


def _link_removals(con: duckdb.DuckDBPyConnection, arrests_present: bool) -> None:
    # A stay ends on its book-out date; an open stay whose stints carry a departed date ends
    # then. A removal cannot end a stay that began after it.
    con.execute(f"""
        CREATE OR REPLACE TEMP TABLE _derive_candidates AS
        WITH open_departures AS (
            SELECT stay_id, max(departed_date) AS departed_date
            FROM {FOIA_STINTS}
            WHERE stay_book_out IS NULL AND stay_id IS NOT NULL AND NOT is_duplicate
            GROUP BY stay_id
        ), stay_ends AS (
            SELECT s.rowid AS stay_key, s.stay_id, s.release, s.person_id, s.stay_book_in,
                   CAST(s.stay_book_in AS DATE) AS book_in_date,
                   coalesce(CAST(s.stay_book_out AS DATE), d.departed_date) AS end_date
            FROM {FOIA_STAYS} s LEFT JOIN open_departures d ON s.censored AND d.stay_id = s.stay_id
            WHERE s.person_id IS NOT NULL
        )
        SELECT r.rowid AS left_key, s.stay_key AS right_key, r.record_id AS left_id,
               s.stay_id AS right_id, CAST(r.departed_date - s.end_date AS DOUBLE) AS gap_days,
               CAST(r.departed_date AS TIMESTAMP) AS left_time, s.stay_book_in AS right_time
        FROM {FOIA_REMOVALS} r
        JOIN stay_ends s
          ON s.release = r.release AND s.person_id = r.person_id
         AND r.departed_date BETWEEN s.end_date - {REMOVAL_DAYS_BEFORE}
                                 AND s.end_date + {REMOVAL_DAYS_AFTER}
         AND r.departed_date >= s.book_in_date
        WHERE r.person_id IS NOT NULL
    """)
    _match_one_to_one(con)
    arrest, arrest_join = (
        ("l.arrest_record_id", f"LEFT JOIN {FOIA_ARREST_STAY_LINKS} l ON l.stay_id = m.right_id")
        if arrests_present else ("NULL::VARCHAR", "")
    )
    con.execute(f"""
        CREATE OR REPLACE TABLE {FOIA_REMOVAL_LINKS} AS
        SELECT m.left_id AS removal_record_id, m.right_id AS stay_id,
               {arrest} AS arrest_record_id
        FROM _derive_matched m {arrest_join}
    """)
    if arrests_present:
        # The arrest whose stay a removal ended carries the whole days from its day to the
        # departure (left_time is the departed date).
        _write_arrest_columns(con, REMOVAL_FACTS, """
            SELECT a.arrest_key AS row_key,
                   CAST(CAST(m.left_time AS DATE) - a.arrest_day AS INTEGER) AS days_to_removal
            FROM _derive_matched m JOIN _derive_arrest_stays a ON a.stay_key = m.right_key""")
    con.execute("DROP TABLE _derive_matched")


def follow_to_arrests(con: duckdb.DuckDBPyConnection, table: str, arrests_present: bool,
                      summary: DerivedSummary) -> None:
    """Write on each row of `table` (detainers or encounters) the days from its day to the first
    non-duplicate ICE arrest of the same person in the same release on that day or up to
    ARREST_FOLLOW_UP_DAYS after it (NULL when none; all NULL without arrests), once for every
    metric that asks (docs/methodology.md, "Pipeline")."""
    follow_up = FOLLOWED_BY_ARREST[table]
    column, moment = follow_up.column, EVENT_DATE_COLUMNS[table]
    _ensure_columns(con, table, {column: "INTEGER"})
    # Keyed by rowid: an integer join back is much cheaper than one on record_id strings.
    followed = "SELECT NULL::BIGINT AS row_key, NULL::INTEGER AS days WHERE false"
    if arrests_present:
        _require_columns(con, FOIA_ARRESTS, follow_up.arrest_columns)
        followed = f"""
            WITH arrests AS (
                SELECT release, person_id, CAST(apprehension_date AS DATE) AS arrest_day
                FROM {FOIA_ARRESTS}
                WHERE NOT coalesce(is_duplicate, false) AND person_id IS NOT NULL
                  AND ({follow_up.arrests})
            ), records AS (
                SELECT rowid AS row_key, release, person_id, CAST({moment} AS DATE) AS day
                FROM {table} WHERE person_id IS NOT NULL
            )
            SELECT r.row_key, CAST(min(a.arrest_day) - any_value(r.day) AS INTEGER) AS days
            FROM records r
            JOIN arrests a ON a.release = r.release AND a.person_id = r.person_id
             AND a.arrest_day BETWEEN r.day AND r.day + {ARREST_FOLLOW_UP_DAYS}
            GROUP BY r.row_key"""
    else:
        summary.notes.append(f"no {FOIA_ARRESTS} loaded: no row of {table} followed to an arrest")
    con.execute(f"CREATE OR REPLACE TEMP TABLE _derive_followed AS {followed}")
    con.execute(f"""
        UPDATE {table} SET {column} = NULL
        WHERE {column} IS NOT NULL AND rowid NOT IN (SELECT row_key FROM _derive_followed)
    """)
    con.execute(f"""
        UPDATE {table} AS t SET {column} = f.days FROM _derive_followed f
        WHERE t.rowid = f.row_key AND t.{column} IS DISTINCT FROM f.days
    """)
    summary.followed_by_arrest[table] = con.execute(
        f"SELECT (SELECT count(*) FROM {table}), count(*) FROM _derive_followed").fetchone()
    con.execute("DROP TABLE _derive_followed")


def _match_one_to_one(con: duckdb.DuckDBPyConnection) -> None:
    """Greedy one-to-one matching of _derive_candidates into _derive_matched.

    The greedy rule takes pairs in order of (|gap|, earlier left side, left side's load order,
    later-than-left right side, earlier right side) - a total order, so the result never depends
    on how DuckDB happens to schedule the work - and keeps a pair when neither side is taken yet. Taking, in rounds, every
    pair that is the first choice of both its sides gives exactly that matching (each such pair
    is first among the pairs still open to it), in a handful of rounds instead of a loop over
    rows. Sides are keyed by rowid: integer partitions are much cheaper than string ids.
    """
    order = "abs(gap_days), left_time, left_key, gap_days DESC, right_time"
    con.execute("""
        CREATE OR REPLACE TEMP TABLE _derive_matched AS
        SELECT * FROM _derive_candidates WHERE false
    """)
    while True:
        added = con.execute(f"""
            INSERT INTO _derive_matched
            SELECT * EXCLUDE (left_rank, right_rank) FROM (
                SELECT *,
                       row_number() OVER (PARTITION BY left_key ORDER BY {order}) AS left_rank,
                       row_number() OVER (PARTITION BY right_key ORDER BY {order}) AS right_rank
                FROM _derive_candidates)
            WHERE left_rank = 1 AND right_rank = 1
        """).fetchone()[0]
        if not added:
            break
        con.execute("""
            DELETE FROM _derive_candidates
            WHERE left_key IN (SELECT left_key FROM _derive_matched)
               OR right_key IN (SELECT right_key FROM _derive_matched)
        """)
    con.execute("DROP TABLE _derive_candidates")


def _ensure_columns(con: duckdb.DuckDBPyConnection, table: str, columns: dict[str, str]) -> None:
    """Give a raw table its derived columns, with the right types (ingest may add them as NULL)."""
    existing = dict(con.execute(
        "SELECT column_name, data_type FROM information_schema.columns "
        "WHERE table_schema = 'main' AND table_name = ?", [table]).fetchall())
    for column, sql_type in columns.items():
        if column not in existing:
            con.execute(f'ALTER TABLE {table} ADD COLUMN "{column}" {sql_type}')
        elif existing[column] != sql_type:
            con.execute(f'ALTER TABLE {table} ALTER COLUMN "{column}" SET DATA TYPE {sql_type}')


def _count(con: duckdb.DuckDBPyConnection, summary: DerivedSummary, present: set[str]) -> None:
    def scalar(query: str) -> int:
        return con.execute(query).fetchone()[0] or 0

    summary.releases = scalar(f"SELECT count(*) FROM {FOIA_RELEASES}")
    if FOIA_ARRESTS in present:
        (summary.arrests, summary.arrest_episodes, summary.arrest_duplicates,
         summary.arrests_unlinkable) = con.execute(f"""
            SELECT count(*), count(*) FILTER (NOT is_duplicate),
                   count(*) FILTER (is_duplicate),
                   count(*) FILTER (person_id IS NULL OR apprehension_date IS NULL)
            FROM {FOIA_ARRESTS}""").fetchone()
    if FOIA_STINTS in present:
        summary.stints, summary.stint_duplicates, summary.stints_without_stay = con.execute(f"""
            SELECT count(*), count(*) FILTER (is_duplicate), count(*) FILTER (stay_id IS NULL)
            FROM {FOIA_STINTS}""").fetchone()
        summary.stays, summary.open_stays, unmeasured, negative, unidentified = con.execute(f"""
            SELECT count(*), count(*) FILTER (censored),
                   count(*) FILTER (censored AND length_days IS NULL),
                   count(*) FILTER (length_days < 0),
                   count(*) FILTER (person_id IS NULL)
            FROM {FOIA_STAYS}""").fetchone()
        if unmeasured:
            summary.notes.append(
                f"{unmeasured:,} open stays were booked in on or after their release date: "
                "no length is given for them")
        if negative:
            summary.notes.append(
                f"{negative:,} stays have a book-out before their book-in (negative length_days, "
                "kept as recorded)")
        if unidentified:
            summary.notes.append(
                f"{unidentified:,} stints have no identifier: each is a stay of its own, never "
                "linked to an arrest or removal")
    if {FOIA_ARRESTS, FOIA_STINTS} <= present:
        summary.arrest_stay_links = scalar(f"SELECT count(*) FROM {FOIA_ARREST_STAY_LINKS}")
    if FOIA_REMOVALS in present:
        summary.removals = scalar(f"SELECT count(*) FROM {FOIA_REMOVALS}")
    if {FOIA_REMOVALS, FOIA_STINTS} <= present:
        summary.removal_links, summary.removal_links_with_arrest = con.execute(f"""
            SELECT count(*), count(arrest_record_id) FROM {FOIA_REMOVAL_LINKS}""").fetchone()


def _note_files_alike(con: duckdb.DuckDBPyConnection, present: set[str],
                      summary: DerivedSummary) -> None:
    """Two files of one release whose records fall in the same months in the same numbers are
    almost surely one production loaded twice (the workbook and a CSV saved from it, ICE's file
    and a conversion of it). Their sha256 differ, so both load, and records that name no one
    are counted twice. So are two sheets of one file alike (a working copy of a sheet left
    visible). Said, not undone: which to keep is the user's choice."""
    for table in sorted(t for t in present if "source_file" in _column_names(con, t)):
        for release, first, second, rows in _alike(con, table, "source_file", "release"):
            summary.notes.append(
                f"{first} and {second} hold the same number of {table} rows in every month of "
                f"release {release} ({rows:,} each): the same records loaded twice? Both are "
                "loaded and counted (rebuild the warehouse without one of them)")
        for file, first, second, rows in _alike(con, table, "source_sheet", "source_file"):
            summary.notes.append(
                f"{file}: sheets {first!r} and {second!r} hold the same number of {table} rows "
                f"in every month ({rows:,} each): one sheet a copy of the other? Both are "
                "loaded and counted (remove one and load the file again)")


def _alike(con: duckdb.DuckDBPyConnection, table: str, unit: str,
           within: str) -> list[tuple]:
    """Pairs of `unit`s (files, or sheets) of the same `within` (release, or file) whose rows of
    `table` fall in the same months in the same numbers, from FILES_ALIKE_MIN_ROWS rows."""
    key = EVENT_DATE_COLUMNS[table]
    return con.execute(f"""
        WITH months AS (
            SELECT {within}, {unit}, date_trunc('month', "{key}") AS month, count(*) AS n
            FROM {table} WHERE {unit} IS NOT NULL GROUP BY ALL),
        units AS (
            SELECT {within}, {unit}, sum(n) AS n,
                   list((month, n) ORDER BY month NULLS FIRST) AS months
            FROM months GROUP BY ALL)
        SELECT a.{within}, a.{unit}, b.{unit}, a.n
        FROM units a JOIN units b ON a.{within} = b.{within} AND a.months = b.months
             AND a.{unit} < b.{unit}
        WHERE a.n >= {FILES_ALIKE_MIN_ROWS}
        ORDER BY ALL""").fetchall()


def _column_names(con: duckdb.DuckDBPyConnection, table: str) -> set[str]:
    return {r[0] for r in con.execute(
        "SELECT column_name FROM information_schema.columns "
        "WHERE table_schema = 'main' AND table_name = ?", [table]).fetchall()}


def _require_columns(con: duckdb.DuckDBPyConnection, table: str, columns: tuple[str, ...]) -> None:
    have = _column_names(con, table)
    missing = [c for c in columns if c not in have]
    if missing:
        raise IceledgerError(
            f"warehouse table {table} lacks column(s) {', '.join(missing)} needed to derive the "
            "FOIA tables; it was not loaded by `iceledger ingest foia` (re-ingest the files)"
        )
