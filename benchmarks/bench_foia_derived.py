"""Benchmark: derived FOIA tables on 10 million SYNTHETIC detention stints.

    python benchmarks/bench_foia_derived.py [--stints 10000000] [--seed 7]

Builds canonical foia_stints / foia_arrests / foia_removals tables of SYNTHETIC rows (numpy, shaped
like the published releases: several stints per stay, a few stays per person, open stays, same-day
re-bookings, arrests just before most stays, removals at most book-outs) in a DuckDB file, then
times `rebuild_derived`. Target: stints -> stays plus arrest -> stay linking within 20 s on a
2-core machine. The baseline, timed in the same run on the same file, is the least any stay
derivation must do: one GROUP BY of the stints by person and stay book-in; the ratio says how many
such passes the full derivation costs, which carries across machines better than seconds do.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import duckdb
import numpy as np
import pyarrow as pa

from iceledger.sources.foia.derived import rebuild_derived
from iceledger.warehouse import DERIVE_MEMORY_LIMIT

TARGET_SECONDS = 20.0
RELEASE = "2025-07-28"
MICROS_PER_DAY = 86_400 * 1_000_000
COVERAGE_START = np.datetime64("2023-09-01", "us").astype(np.int64)
RELEASE_END = np.datetime64(RELEASE, "us").astype(np.int64)
# A person's first stay starts early enough that a third one still starts before the release.
FIRST_STAY_DAYS = (RELEASE_END - COVERAGE_START) // MICROS_PER_DAY - 420


def synthetic_tables(n_stints: int, seed: int) -> dict[str, pa.Table]:
    """Integer-coded SYNTHETIC canonical columns; strings are formatted later in DuckDB."""
    rng = np.random.default_rng(seed)
    stints_per_stay = rng.choice([1, 2, 3, 4, 5], size=n_stints, p=[0.3, 0.25, 0.2, 0.15, 0.1])
    n_stays = int(np.searchsorted(np.cumsum(stints_per_stay), n_stints)) + 1
    stints_per_stay = stints_per_stay[:n_stays]
    stints_per_stay[-1] -= stints_per_stay.sum() - n_stints

    # People have 1-3 stays, each starting 60-200 days after the previous one's start.
    stays_per_person = rng.choice([1, 2, 3], size=n_stays, p=[0.7, 0.2, 0.1])
    n_persons = int(np.searchsorted(np.cumsum(stays_per_person), n_stays)) + 1
    person_of_stay = np.repeat(np.arange(n_persons), stays_per_person[:n_persons])[:n_stays]
    first_of_person = np.r_[True, person_of_stay[1:] != person_of_stay[:-1]]
    gap = np.where(first_of_person,
                   rng.integers(0, FIRST_STAY_DAYS * MICROS_PER_DAY, n_stays),
                   rng.integers(60, 200, n_stays) * MICROS_PER_DAY)
    restart = np.maximum.accumulate(np.where(first_of_person, np.arange(n_stays), 0))
    stay_in = COVERAGE_START + np.cumsum(gap) - np.cumsum(gap)[restart] + gap[restart]

    stay_of_stint = np.repeat(np.arange(n_stays), stints_per_stay)
    first_stint = np.r_[True, stay_of_stint[1:] != stay_of_stint[:-1]]
    length = rng.exponential(9 * MICROS_PER_DAY, n_stints).astype(np.int64) + 3_600_000_000
    # Same-day re-booking into the same facility: the flagged duplicates (about 0.5%).
    rebooking = ~first_stint & (rng.random(n_stints) < 0.005)
    length = np.where(np.r_[rebooking[1:], False], 3_600_000_000, length)
    end = np.cumsum(length)
    stay_start_idx = np.flatnonzero(first_stint)[stay_of_stint]
    before = np.r_[0, end[:-1]]
    book_in = stay_in[stay_of_stint] + before - before[stay_start_idx]
    book_out = stay_in[stay_of_stint] + end - before[stay_start_idx]
    last_stint = np.r_[first_stint[1:], True]
    stay_out = np.zeros(n_stays, dtype=np.int64)
    stay_out[stay_of_stint[last_stint]] = book_out[last_stint]
    open_stay = (stay_out >= RELEASE_END) | (rng.random(n_stays) < 0.03)
    facility = rng.integers(0, 600, n_stints)
    facility = np.where(rebooking, np.r_[0, facility[:-1]], facility)

    def ts(values):
        return pa.array(values, pa.timestamp("us"))

    stints = pa.table({
        "person": person_of_stay[stay_of_stint],
        "stay_book_in": ts(stay_in[stay_of_stint]),
        "book_in": ts(book_in),
        "book_out": pa.array(book_out, pa.timestamp("us"),
                             mask=open_stay[stay_of_stint] & last_stint),
        "stay_book_out": pa.array(stay_out[stay_of_stint], pa.timestamp("us"),
                                  mask=open_stay[stay_of_stint]),
        "facility": facility,
        "code": rng.integers(0, 25, n_stints),
    })

    # Arrests: 80% of stays have one 0-3 days before book-in, 8% of those a second row within
    # hours (a 24-hour duplicate), plus 20% more arrests that lead to no detention.
    arrested = rng.random(n_stays) < 0.8
    arrest_time = stay_in[arrested] - rng.integers(0, 3 * MICROS_PER_DAY, arrested.sum())
    arrest_person = person_of_stay[arrested]
    repeat = rng.random(arrest_time.size) < 0.08
    extra = rng.integers(0, n_persons, int(0.2 * n_stays))
    arrests = pa.table({
        "person": np.r_[arrest_person, arrest_person[repeat], extra],
        "apprehension_date": ts(np.r_[
            arrest_time,
            arrest_time[repeat] + rng.integers(1, 20, repeat.sum()) * 3_600_000_000,
            rng.integers(COVERAGE_START, RELEASE_END, extra.size)]),
    })

    # Removals: 45% of closed stays, on the book-out date or up to 2 days later.
    removed = ~open_stay & (rng.random(n_stays) < 0.45)
    departed = (stay_out[removed] // MICROS_PER_DAY
                + rng.integers(0, 3, removed.sum())).astype("datetime64[D]")
    removals = pa.table({"person": person_of_stay[removed],
                         "departed_date": pa.array(departed, pa.date32())})
    return {"stints": stints, "arrests": arrests, "removals": removals}


def load(con: duckdb.DuckDBPyConnection, tables: dict[str, pa.Table]) -> None:
    source = "'SYNTHETIC_bench_{}.parquet' AS source_file, 'Sheet1' AS source_sheet"
    for name, table in tables.items():
        con.register(f"_{name}", table)
    con.execute(f"""
        CREATE TABLE foia_stints AS
        SELECT 'bench:1:' || row_number() OVER () AS record_id, '{RELEASE}' AS release,
               'P' || person AS person_id, stay_book_in, book_in, book_out, stay_book_out,
               'FAC' || facility AS facility_code, 'Facility ' || facility AS facility_name,
               CASE WHEN stay_book_out IS NULL THEN NULL ELSE 'Removed' END AS stay_release_reason,
               'Other Immigration Violator' AS criminality, 'AOR ' || code AS aor,
               'A' || code AS aor_code, 'SYNTHETIA' AS citizenship_country, 'Male' AS gender,
               CAST(NULL AS DATE) AS departed_date,
               {source.format('stints')}, row_number() OVER () + 6 AS source_row
        FROM _stints""")
    con.execute(f"""
        CREATE TABLE foia_arrests AS
        SELECT 'bench:2:' || row_number() OVER () AS record_id, '{RELEASE}' AS release,
               'P' || person AS person_id, apprehension_date, 'Located' AS apprehension_method,
               {source.format('arrests')}, row_number() OVER () + 6 AS source_row
        FROM _arrests""")
    con.execute(f"""
        CREATE TABLE foia_removals AS
        SELECT 'bench:3:' || row_number() OVER () AS record_id, '{RELEASE}' AS release,
               'P' || person AS person_id, departed_date,
               {source.format('removals')}, row_number() OVER () + 6 AS source_row
        FROM _removals""")
    for name in tables:
        con.unregister(f"_{name}")
    con.execute("CHECKPOINT")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--stints", type=int, default=10_000_000)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as folder:
        con = duckdb.connect(str(Path(folder) / "bench.duckdb"))
        started = time.perf_counter()
        load(con, synthetic_tables(args.stints, args.seed))
        counts = {t: con.execute(f"SELECT count(*) FROM {t}").fetchone()[0]
                  for t in ("foia_stints", "foia_arrests", "foia_removals")}
        print("SYNTHETIC data, generated in {:.1f} s: {}".format(
            time.perf_counter() - started, ", ".join(f"{t} {n:,}" for t, n in counts.items())))

        # The memory setting derived rebuilds work under (`ingest` and `derive` alike).
        if DERIVE_MEMORY_LIMIT is not None:
            con.execute(f"SET memory_limit = '{DERIVE_MEMORY_LIMIT}'")
        started, cpu_started = time.perf_counter(), time.process_time()
        con.execute("CREATE TEMP TABLE baseline AS SELECT release, person_id, stay_book_in, "
                    "count(*) AS n FROM foia_stints GROUP BY ALL")
        baseline = time.perf_counter() - started, time.process_time() - cpu_started
        con.execute("DROP TABLE baseline")

        started = time.perf_counter()
        summary = rebuild_derived(con)
        total = time.perf_counter() - started
        started = time.perf_counter()
        rebuild_derived(con)
        again = time.perf_counter() - started
        con.close()

    for line in summary.lines():
        print(f"  {line}")
    print(f"  {'step':<24} {'wall s':>7} {'cpu s':>7}")
    for step, seconds in summary.seconds.items():
        print(f"  {step:<24} {seconds:7.2f} {summary.cpu_seconds[step]:7.2f}")
    timed = ("stints -> stays", "arrest -> stay links")
    wall = sum(summary.seconds[step] for step in timed)
    cpu = sum(summary.cpu_seconds[step] for step in timed)
    print(f"baseline (one GROUP BY of the stints): {baseline[0]:.2f} s wall, "
          f"{baseline[1]:.2f} s cpu")
    print(f"stints -> stays + arrest -> stay links: {wall:.2f} s wall "
          f"({wall / baseline[0]:.1f}x baseline), {cpu:.2f} s cpu ({cpu / baseline[1]:.1f}x); "
          f"target <= {TARGET_SECONDS:.0f} s wall: {'met' if wall <= TARGET_SECONDS else 'MISSED'}")
    print(f"whole rebuild: {total:.2f} s; rebuilt again with nothing changed: {again:.2f} s "
          f"(DuckDB memory_limit: {DERIVE_MEMORY_LIMIT or 'its default, 80% of RAM'})")
    print(f"load average while running (2 cores; above 2 means shared): {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
