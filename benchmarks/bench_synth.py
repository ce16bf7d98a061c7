"""Benchmark: `iceledger synth` writing SYNTHETIC FOIA files, in rows per second.

    python benchmarks/bench_synth.py [--rows 1000000] [--baseline-rows 50000] [--seed 1]

1. End to end (simulate the world and write the files), the March 2026 arrests file only
   (--rows rows, 25 columns), as parquet, CSV and xlsx; then every dataset of both releases as
   parquet at a tenth of the scale (about 19 rows written per arrest row).
2. The xlsx writer alone on the same arrests columns, against the baseline of xlsxwriter in
   constant_memory mode (its streaming mode, the usual way to write big sheets) writing the first
   --baseline-rows rows of the same columns in the same run. The ratio of rows per second is what
   carries across machines. Targets: 10 million arrest rows as parquet or CSV in a few minutes;
   xlsx of up to ~1.5 million rows in well under a minute.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from datetime import datetime
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import xlsxwriter

from iceledger.synth.releases import write_synthetic_releases
from iceledger.synth.columns import EMPTY_CODE, Codes, Labels, Moments, Numbers
from iceledger.synth.xlsx_writer import XlsxWriter


def _timed(action):
    start = time.perf_counter()
    result = action()
    return result, time.perf_counter() - start


def _columns(table: pa.Table) -> list:
    """The generator's column kinds, rebuilt from a written parquet file."""
    columns = []
    for name, array in zip(table.column_names, table.columns):
        array = array.combine_chunks()
        kind, empty = array.type, array.is_null().to_numpy(zero_copy_only=False)
        if name.endswith("Identifier"):
            text = np.array([v or "" for v in array.to_pylist()], dtype="S16")
            columns.append(Codes(text, empty))
        elif pa.types.is_dictionary(kind) or pa.types.is_string(kind):
            encoded = array.dictionary_encode() if pa.types.is_string(kind) else array
            codes = encoded.indices.fill_null(EMPTY_CODE).to_numpy(zero_copy_only=False)
            columns.append(Labels(codes, tuple(encoded.dictionary.to_pylist())))
        elif pa.types.is_timestamp(kind) or pa.types.is_date(kind):
            seconds = array.cast(pa.timestamp("s")).cast(pa.int64()).fill_null(0).to_numpy()
            columns.append(Moments(seconds, empty, pa.types.is_date(kind)))
        else:
            columns.append(Numbers(array.fill_null(0).to_numpy(), empty))
    return columns


def _baseline_xlsxwriter(path: Path, table: pa.Table) -> None:
    book = xlsxwriter.Workbook(str(path), {"constant_memory": True})
    sheet = book.add_worksheet()
    moment = book.add_format({"num_format": "m/d/yy h:mm"})
    sheet.write_row(0, 0, ["SYNTHETIC DATA (benchmark)"])
    sheet.write_row(6, 0, table.column_names)
    values = [c.to_pylist() for c in table.columns]
    for r in range(table.num_rows):
        for c, column in enumerate(values):
            value = column[r]
            if value is None:
                continue
            if isinstance(value, datetime):
                sheet.write_datetime(r + 7, c, value, moment)
            else:
                sheet.write(r + 7, c, value)
    book.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--baseline-rows", type=int, default=50_000)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    arrests_only = {"releases": ["2026-03"], "datasets": ["arrests"], "seed": args.seed}

    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp)
        print(f"SYNTHETIC arrests, March 2026 layout, {args.rows:,} rows x 25 columns")
        write_synthetic_releases(out / "warm-up", 10, **arrests_only)  # data files, caches
        print("end to end (simulate + write):")
        for fmt in ("parquet", "csv", "xlsx"):
            files, seconds = _timed(lambda fmt=fmt: write_synthetic_releases(
                out / fmt, args.rows, fmt=fmt, **arrests_only))
            size = files[0].path.stat().st_size / 1e6
            print(f"  {fmt:8s} {args.rows / seconds:12,.0f} rows/s  {seconds:7.1f} s  "
                  f"{size:8.1f} MB")
        scale = max(args.rows // 10, 1)
        files, seconds = _timed(lambda: write_synthetic_releases(
            out / "all", scale, fmt="parquet", seed=args.seed))
        total = sum(f.rows for f in files)
        print(f"  all datasets, both releases, parquet: {total:,} rows from {scale:,} arrest "
              f"rows: {total / seconds:,.0f} rows/s  {seconds:.1f} s")

        table = pq.read_table(next((out / "parquet").glob("*.parquet")))
        columns = _columns(table)
        header = table.column_names

        def ours(path: Path, n: int) -> None:
            writer = XlsxWriter(path, header, ["SYNTHETIC DATA (benchmark)"] + [""] * 5,
                                max_data_rows=1_048_569, document_title="SYNTHETIC")
            writer.write([c.take(np.arange(n)) for c in columns])
            writer.close()

        n_base = min(args.baseline_rows, table.num_rows)
        _, ours_seconds = _timed(lambda: ours(out / "ours.xlsx", table.num_rows))
        _, ours_small = _timed(lambda: ours(out / "ours_small.xlsx", n_base))
        _, base_seconds = _timed(lambda: _baseline_xlsxwriter(out / "base.xlsx",
                                                              table.slice(0, n_base)))
        ours_rate, small_rate = table.num_rows / ours_seconds, n_base / ours_small
        base_rate = n_base / base_seconds
        print("xlsx writer alone, same columns:")
        print(f"  iceledger XlsxWriter  {ours_rate:12,.0f} rows/s  ({table.num_rows:,} rows, "
              f"{ours_seconds:.1f} s)")
        print(f"  iceledger XlsxWriter  {small_rate:12,.0f} rows/s  ({n_base:,} rows)")
        print(f"  baseline xlsxwriter   {base_rate:12,.0f} rows/s  ({n_base:,} rows, "
              f"constant_memory)")
        print(f"  ratio (same {n_base:,} rows): {small_rate / base_rate:.1f}x faster")


if __name__ == "__main__":
    main()
