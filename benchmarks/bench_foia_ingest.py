"""Benchmark: FOIA records into the warehouse (`iceledger ingest foia`), on SYNTHETIC files,
against floors measured in the same run, at DuckDB threads = 1 and 2.

    python benchmarks/bench_foia_ingest.py            # full run: 10M-row CSV and parquet
    python benchmarks/bench_foia_ingest.py --quick    # small sizes, for development

Every measurement runs in its own subprocess, so its peak RSS and CPU time are its own; wall
seconds on a shared machine also count other processes' load, so CPU seconds are printed too.
Per thread count ($ICELEDGER_THREADS, which sets DuckDB's threads and the workbook readers'):
- CSV and parquet: iceledger's whole load of the file (`ingest_foia` without the derived rebuild:
  read, type, mark, quarantine, flag duplicates, check, tally, commit) beside the floor, DuckDB
  copying the same file into a table by itself (`CREATE TABLE AS SELECT * FROM read_csv(...,
  all_varchar)` / `read_parquet`): no typing, checks, provenance or duplicate flags;
- xlsx: iceledger's whole load of a stints workbook beside the floor, its sliced fastexcel reader
  alone on the same threads.

Goals (issue 14): the load at >= 0.5 of the floor at each thread count (floor seconds / load
seconds), >= 1.7x faster on 2 threads than on 1, xlsx >= 0.9 of the reader floor, peak RSS of the
load <= 2 GB at 10M rows. Synthetic files are cached in --data.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

STINTS_PER_SCALE = 4.54  # stints rows per arrest row in the synthetic July 2025 release
THREADS = (1, 2)

# The load alone (no derived rebuild), timed inside the process.
INGEST = """
import json, sys, time
from pathlib import Path
from iceledger.sources.foia import ingest as foia
from iceledger.warehouse import Warehouse
report = foia.ingest_foia([Path(sys.argv[1])], Warehouse(sys.argv[2]), derive=False)
(f,) = report.files
assert f.status == "loaded", f.error
print(json.dumps({"rows": f.accounting.rows_read, "load_s": f.seconds}))
"""

NATIVE = """
import json, os, sys, time
import duckdb
reader = {"csv": "read_csv(?, all_varchar = true)", "parquet": "read_parquet(?)"}[sys.argv[2]]
con = duckdb.connect(sys.argv[3])
con.execute(f"SET threads = {int(os.environ['ICELEDGER_THREADS'])}")
started = time.perf_counter()
con.execute(f"CREATE TABLE copied AS SELECT * FROM {reader}", [sys.argv[1]])
rows = con.execute("SELECT count(*) FROM copied").fetchone()[0]
con.close()
print(json.dumps({"rows": rows, "load_s": time.perf_counter() - started}))
"""

SLICED = """
import json, sys, time
from pathlib import Path
from iceledger.sources.foia.ingest import WORKERS, keep_freed_memory, ordered_parallel
from iceledger.sources.foia.readers import open_reader
keep_freed_memory()
started = time.perf_counter()
reader = open_reader(Path(sys.argv[1]))
items = (item for plan in reader.plans() for item in reader.work(plan))
rows = sum(part.table.num_rows for part, _ in ordered_parallel(items, WORKERS))
print(json.dumps({"rows": rows, "load_s": time.perf_counter() - started}))
"""

# Printed by every case at its end: its own peak RSS. (The ru_maxrss that wait4 reports keeps
# the parent's high-water mark across fork and exec on Linux, so it cannot be used here.)
PEAK_RSS = """
for line in open("/proc/self/status"):
    if line.startswith("VmHWM:"):
        print("peak_kb", line.split()[1])
"""


def measure(script: str, threads: int, *args: str) -> dict:
    """Run one case in a fresh interpreter on `threads` threads; its figures plus its own CPU
    time and peak RSS."""
    child = subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(script) + textwrap.dedent(PEAK_RSS), *args],
        stdout=subprocess.PIPE, text=True, env={**os.environ, "ICELEDGER_THREADS": str(threads)})
    out = child.stdout.read().strip().splitlines()
    _, status, usage = os.wait4(child.pid, 0)
    if status != 0:
        raise SystemExit(f"benchmark case failed ({status}): {args}")
    result = json.loads(out[-2])
    result["cpu_s"] = usage.ru_utime + usage.ru_stime
    result["rss_mb"] = int(out[-1].split()[1]) / 1024
    return result


def synthetic(data: Path, fmt: str, dataset: str, scale: int) -> Path:
    from iceledger.synth.releases import write_synthetic_releases

    folder = data / f"{fmt}-{dataset}-{scale}"
    found = sorted(folder.glob(f"SYNTHETIC_*.{fmt}"))
    if found:
        return found[0]
    started = time.perf_counter()
    (written,) = write_synthetic_releases(folder, scale, seed=1, fmt=fmt, releases=["2025-07"],
                                          datasets=[dataset])
    print(f"  (wrote {written.path.name}: {written.rows:,} rows in "
          f"{time.perf_counter() - started:.0f} s)", flush=True)
    return written.path


def tiled(parquet_file: Path, rows: int) -> Path:
    """`rows` SYNTHETIC arrest rows: copies of a generated file, each copy's identifiers
    suffixed so that copies are not exact duplicates of each other."""
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    base = pq.read_table(parquet_file)
    if rows <= base.num_rows:
        return parquet_file
    target = parquet_file.parent / f"tiled-{rows}" / parquet_file.name
    if not target.exists():
        target.parent.mkdir(exist_ok=True)
        partial = target.with_suffix(".partial")
        with pq.ParquetWriter(partial, base.schema) as writer:
            done, copy = 0, 0
            while done < rows:
                part = base.slice(0, rows - done)
                ids = part.column("Unique Identifier").cast(pa.string())
                part = part.set_column(part.schema.get_field_index("Unique Identifier"),
                                       "Unique Identifier", pc.binary_join_element_wise(
                                           ids, pa.scalar(f"-{copy}"), ""))
                writer.write_table(part.cast(base.schema))
                done, copy = done + part.num_rows, copy + 1
        partial.rename(target)
    return target


def csv_copy(parquet_file: Path) -> Path:
    """The same SYNTHETIC records as CSV (Arrow's writer: verbatim headers, ISO date-times)."""
    import pyarrow.csv as pa_csv
    import pyarrow.parquet as pq

    target = parquet_file.with_suffix(".csv")
    if not target.exists():
        source = pq.ParquetFile(parquet_file)
        partial = target.with_suffix(".partial")
        with pa_csv.CSVWriter(partial, source.schema_arrow) as writer:
            for batch in source.iter_batches(batch_size=262_144):
                writer.write_batch(batch)
        partial.rename(target)
    return target


def line(case: str, r: dict) -> None:
    print(f"  {case:<44} {r['rows']:>11,} rows {r['load_s']:>7.1f} s "
          f"{r['rows'] / r['load_s']:>11,.0f} rows/s  cpu {r['cpu_s']:>6.1f} s  "
          f"rss {r['rss_mb']:>6,.0f} MB", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="small sizes (development)")
    parser.add_argument("--data", type=Path,
                        default=Path(tempfile.gettempdir()) / "iceledger-bench-foia",
                        help="where the synthetic files are cached")
    args = parser.parse_args()
    stints_rows = 60_000 if args.quick else 1_320_000
    big_rows = 500_000 if args.quick else 10_000_000
    args.data.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="bench-foia-") as work:
        run(args.data, Path(work), stints_rows, big_rows)


def run(data: Path, work: Path, stints_rows: int, big_rows: int) -> None:
    print("SYNTHETIC data; figures from this machine, this run. Generating/caching files...")
    stints = synthetic(data, "xlsx", "stints", round(stints_rows / STINTS_PER_SCALE))
    parquet_file = tiled(synthetic(data, "parquet", "arrests", 500_000), big_rows)
    csv_file = csv_copy(parquet_file)
    print(f"load average before: {os.getloadavg()[0]:.1f}")

    results: dict[tuple[str, int], tuple[dict, dict]] = {}
    for threads in THREADS:
        print(f"\nthreads = {threads}: iceledger's load, then its floor "
              "(rss: each process's peak)")
        for fmt, path in (("CSV", csv_file), ("parquet", parquet_file), ("xlsx", stints)):
            warehouse = str(work / f"{fmt}-{threads}.duckdb")
            ours = measure(INGEST, threads, str(path), warehouse)
            line(f"{fmt} -> warehouse (iceledger)", ours)
            if fmt == "xlsx":
                floor = measure(SLICED, threads, str(path))
                line("floor: the sliced xlsx reader alone", floor)
            else:
                floor = measure(NATIVE, threads, str(path), fmt.lower(),
                                str(work / f"native-{fmt}-{threads}.duckdb"))
                line(f"floor: DuckDB's own copy into a table", floor)
            results[(fmt, threads)] = (ours, floor)
            for name in (warehouse, str(work / f"native-{fmt}-{threads}.duckdb")):
                Path(name).unlink(missing_ok=True)
    print(f"load average after: {os.getloadavg()[0]:.1f}")

    print("\nratios (wall seconds; by CPU seconds in brackets)")
    met = []
    for fmt in ("CSV", "parquet", "xlsx"):
        goal = 0.9 if fmt == "xlsx" else 0.5
        for threads in THREADS:
            ours, floor = results[(fmt, threads)]
            ratio = floor["load_s"] / ours["load_s"]
            met.append(ratio >= goal)
            print(f"  {fmt:<8} threads {threads}: load / floor {ratio:.2f} "
                  f"({floor['cpu_s'] / ours['cpu_s']:.2f}) (goal >= {goal}): "
                  f"{'met' if ratio >= goal else 'NOT met'}")
        one, two = results[(fmt, 1)][0], results[(fmt, 2)][0]
        scaling = one["load_s"] / two["load_s"]
        floor_scaling = results[(fmt, 1)][1]["load_s"] / results[(fmt, 2)][1]["load_s"]
        if fmt != "xlsx":
            met.append(scaling >= 1.7)
        print(f"  {fmt:<8} 1 -> 2 threads: load {scaling:.2f}x, floor {floor_scaling:.2f}x"
              + (f" (goal >= 1.7x): {'met' if scaling >= 1.7 else 'NOT met'}"
                 if fmt != "xlsx" else ""))
    peak = max(results[(fmt, t)][0]["rss_mb"] for fmt in ("CSV", "parquet") for t in THREADS)
    print(f"  peak RSS of the load at {big_rows:,} rows: {peak:,.0f} MB (goal <= 2,048 MB): "
          f"{'met' if peak <= 2048 else 'NOT met'}")


if __name__ == "__main__":
    main()
