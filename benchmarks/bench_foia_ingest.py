"""Benchmark: FOIA records into the warehouse (`iceledger ingest foia`), on SYNTHETIC files.

    python benchmarks/bench_foia_ingest.py            # full run (targets below)
    python benchmarks/bench_foia_ingest.py --quick    # small sizes, for development

Every measurement runs in its own subprocess, so its peak RSS is its own. Printed per case:
rows, wall seconds, rows/s, CPU seconds (user+sys; on a shared machine wall time also counts
other processes' load) and peak RSS. In the same run, as baselines:
- pandas.read_excel (openpyxl) on a smaller stints workbook, against iceledger on that same file;
- the xlsx readers alone on one workbook: python-calamine (rows as Python lists), fastexcel
  (one whole sheet at a time), and iceledger's sliced fastexcel reader on two threads;
- as a floor for CSV and parquet, DuckDB copying the same file into a table by itself.

Targets (issue 3): stints xlsx >= 150,000 rows/s (1.32M rows in <= 10 s); CSV and parquet
>= 2,000,000 rows/s; peak RSS <= 2 GB at 10M rows. Synthetic files are cached in --data.
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

# The load and the derived rebuild that `iceledger ingest foia` runs after it, timed apart, with
# the peak RSS of the load alone (VmHWM before the rebuild) and of the whole command.
INGEST = """
import json, sys, time
from pathlib import Path
from iceledger.sources.foia import derived as foia_derived
from iceledger.sources.foia import ingest as foia
from iceledger.warehouse import Warehouse
def peak_kb():
    return next(int(l.split()[1]) for l in open("/proc/self/status") if l.startswith("VmHWM:"))
started = time.perf_counter()
warehouse = Warehouse(sys.argv[2])
report = foia.ingest_foia([Path(sys.argv[1])], warehouse, derive=False)
load_peak_mb = peak_kb() / 1024
derive_started = time.perf_counter()
foia_derived.derive_warehouse(warehouse)
(f,) = report.files
assert f.status == "loaded", f.error
print(json.dumps({"rows": f.accounting.rows_read, "load_s": f.seconds,
                  "derive_s": time.perf_counter() - derive_started, "load_rss_mb": load_peak_mb}))
"""

PANDAS = """
import json, sys, time
import pandas as pd
started = time.perf_counter()
sheets = pd.read_excel(sys.argv[1], sheet_name=None, header=6, engine="openpyxl", dtype=str)
rows = sum(len(s) for s in sheets.values())
print(json.dumps({"rows": rows, "load_s": time.perf_counter() - started}))
"""

CALAMINE = """
import json, sys, time
import python_calamine
started = time.perf_counter()
book = python_calamine.CalamineWorkbook.from_path(sys.argv[1])
rows = 0
for name in book.sheet_names:
    for row in book.get_sheet_by_name(name).iter_rows():
        rows += 1
print(json.dumps({"rows": rows - 7 * len(book.sheet_names), "load_s": time.perf_counter() - started}))
"""

FASTEXCEL = """
import json, sys, time
import fastexcel
started = time.perf_counter()
reader = fastexcel.read_excel(sys.argv[1])
rows = sum(reader.load_sheet(name, header_row=6, dtypes="string", eager=True).num_rows
           for name in reader.sheet_names)
print(json.dumps({"rows": rows, "load_s": time.perf_counter() - started}))
"""

NATIVE = """
import json, sys, time
import duckdb
reader = {"csv": "read_csv(?, all_varchar = true)", "parquet": "read_parquet(?)"}[sys.argv[2]]
con = duckdb.connect(sys.argv[3])
started = time.perf_counter()
con.execute(f"CREATE TABLE copied AS SELECT * FROM {reader}", [sys.argv[1]])
rows = con.execute("SELECT count(*) FROM copied").fetchone()[0]
print(json.dumps({"rows": rows, "load_s": time.perf_counter() - started}))
"""

SLICED = """
import json, sys, time
from pathlib import Path
from iceledger.sources.foia.ingest import keep_freed_memory, ordered_parallel
from iceledger.sources.foia.readers import open_reader
keep_freed_memory()
started = time.perf_counter()
reader = open_reader(Path(sys.argv[1]))
items = (item for plan in reader.plans() for item in reader.work(plan))
rows = sum(part.table.num_rows for part, _ in ordered_parallel(items, 2))
print(json.dumps({"rows": rows, "load_s": time.perf_counter() - started}))
"""


# Printed by every case at its end: its own peak RSS. (The ru_maxrss that wait4 reports keeps
# the parent's high-water mark across fork and exec on Linux, so it cannot be used here.)
PEAK_RSS = """
for line in open("/proc/self/status"):
    if line.startswith("VmHWM:"):
        print("peak_kb", line.split()[1])
"""


def measure(script: str, *args: str) -> dict:
    """Run one case in a fresh interpreter; its figures plus its own CPU time and peak RSS."""
    child = subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(script) + textwrap.dedent(PEAK_RSS), *args],
        stdout=subprocess.PIPE, text=True)
    out = child.stdout.read().strip().splitlines()
    _, status, usage = os.wait4(child.pid, 0)
    if status != 0:
        raise SystemExit(f"benchmark case failed ({status}): {args}")
    result = json.loads(out[-2])
    result["cpu_s"] = usage.ru_utime + usage.ru_stime
    result["rss_mb"] = int(out[-1].split()[1]) / 1024
    return result


def synthetic(data: Path, fmt: str, dataset: str, scale: int, sheet_rows: int | None = None
              ) -> Path:
    from iceledger.synth.releases import write_synthetic_releases

    folder = data / f"{fmt}-{dataset}-{scale}"
    found = sorted(folder.glob(f"SYNTHETIC_*.{fmt}"))
    if found:
        return found[0]
    started = time.perf_counter()
    (written,) = write_synthetic_releases(folder, scale, seed=1, fmt=fmt, releases=["2025-07"],
                                          datasets=[dataset], sheet_rows=sheet_rows)
    print(f"  (wrote {written.path.name}: {written.rows:,} rows in "
          f"{time.perf_counter() - started:.0f} s)", flush=True)
    return written.path


def tiled(parquet_file: Path, rows: int) -> Path:
    """`rows` SYNTHETIC arrest rows: copies of a generated file, each copy's identifiers
    suffixed so that copies are not exact duplicates of each other. (The generator itself can
    write 10M rows, but its CSV/parquet writer failed at that size when this was written.)"""
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


def line(case: str, r: dict, key: str = "load_s") -> float:
    rate = r["rows"] / r[key]
    print(f"{case:<46} {r['rows']:>11,} rows {r[key]:>7.1f} s {rate:>11,.0f} rows/s "
          f"cpu {r['cpu_s']:>6.1f} s  rss {r['rss_mb']:>6,.0f} MB", flush=True)
    return rate


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="small sizes (development)")
    parser.add_argument("--data", type=Path,
                        default=Path(tempfile.gettempdir()) / "iceledger-bench-foia",
                        help="where the synthetic files are cached")
    args = parser.parse_args()
    stints_rows = 60_000 if args.quick else 1_320_000
    big_rows = 500_000 if args.quick else 10_000_000
    small_rows = 5_000 if args.quick else 20_000
    reader_rows = 60_000 if args.quick else 200_000
    data = args.data
    data.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="bench-foia-") as work:
        run(data, Path(work), stints_rows, big_rows, small_rows, reader_rows)


def run(data: Path, work: Path, stints_rows: int, big_rows: int, small_rows: int,
        reader_rows: int) -> None:
    def warehouse(name: str) -> str:
        return str(work / f"{name}.duckdb")

    print("SYNTHETIC data; figures from this machine, this run. Generating/caching files...")
    stints = synthetic(data, "xlsx", "stints", round(stints_rows / STINTS_PER_SCALE))
    small = synthetic(data, "xlsx", "stints", round(small_rows / STINTS_PER_SCALE))
    reader_file = synthetic(data, "xlsx", "stints", round(reader_rows / STINTS_PER_SCALE))
    parquet_file = tiled(synthetic(data, "parquet", "arrests", 500_000), big_rows)
    csv_file = csv_copy(parquet_file)

    print("\ningest (load into the warehouse; rss: the load's peak; the derived-table rebuild "
          "`ingest` runs next is shown apart)")

    def ingest(case: str, path: Path, name: str) -> dict:
        result = measure(INGEST, str(path), warehouse(name))
        whole_peak = result["rss_mb"]
        result["rss_mb"] = result["load_rss_mb"]
        result["rate"] = line(case, result)
        print(f"{'':<46} then the derived rebuild: {result['derive_s']:.1f} s; peak RSS of the "
              f"whole command {whole_peak:,.0f} MB", flush=True)
        return result

    xlsx_rate = ingest("stints xlsx -> warehouse", stints, "stints")["rate"]
    csv = ingest("arrests CSV -> warehouse", csv_file, "csv")
    pq = ingest("arrests parquet -> warehouse", parquet_file, "parquet")
    csv_rate, parquet_rate = csv["rate"], pq["rate"]
    peak = max(csv["rss_mb"], pq["rss_mb"])

    print("\nfloor: DuckDB copying the same files into a table by itself (its own parallel "
          "readers; no typing, checks, provenance or duplicate flags)")
    csv_floor = line("DuckDB read_csv -> table (all text)",
                     measure(NATIVE, str(csv_file), "csv", warehouse("native-csv")))
    parquet_floor = line("DuckDB read_parquet -> table",
                         measure(NATIVE, str(parquet_file), "parquet", warehouse("native-pq")))
    print(f"iceledger / floor: CSV {csv_rate / csv_floor:.2f}, parquet "
          f"{parquet_rate / parquet_floor:.2f}")

    print(f"\nbaseline: pandas.read_excel (openpyxl) against iceledger, same {small_rows:,}-row "
          "stints workbook")
    pandas_rate = line("pandas.read_excel (openpyxl, read only)", measure(PANDAS, str(small)))
    ours_small = line("iceledger ingest (read, type, check, load)",
                      measure(INGEST, str(small), warehouse("small")))
    print(f"ratio iceledger / pandas: {ours_small / pandas_rate:.1f}x (same file); "
          f"big-file iceledger / pandas: {xlsx_rate / pandas_rate:.1f}x")

    print(f"\nxlsx readers alone, same {reader_rows:,}-row stints workbook")
    calamine = line("python-calamine iter_rows", measure(CALAMINE, str(reader_file)))
    fastexcel = line("fastexcel, a whole sheet at a time", measure(FASTEXCEL, str(reader_file)))
    sliced = line("iceledger sliced fastexcel, 2 threads", measure(SLICED, str(reader_file)))
    print(f"ratio fastexcel / python-calamine: {fastexcel / calamine:.1f}x; "
          f"sliced / fastexcel: {sliced / fastexcel:.1f}x")

    print("\ntargets")
    for name, got, target in (("stints xlsx rows/s", xlsx_rate, 150_000),
                              ("CSV rows/s", csv_rate, 2_000_000),
                              ("parquet rows/s", parquet_rate, 2_000_000)):
        print(f"  {name:<22} {got:>12,.0f} (target {target:,}): "
              f"{'met' if got >= target else 'NOT met'}")
    print(f"  load's peak RSS at {big_rows:,} rows {peak:>5,.0f} MB (target 2,048 MB): "
          f"{'met' if peak <= 2048 else 'NOT met'}")


if __name__ == "__main__":
    main()
