"""Every layout the synthetic generator writes (SYNTHETIC data) loads the same from xlsx, CSV and
parquet: same rows, same canonical values, every row accounted for."""

from __future__ import annotations

from pathlib import Path

import pyarrow.parquet as pq
import pytest

from iceledger.sources.foia import IngestReport, ingest_foia
from iceledger.warehouse import Warehouse

synth = pytest.importorskip("iceledger.sources.foia_synth")

SCALE = 400
SUMMARY = """
    SELECT count(*), count(DISTINCT person_id), count(criminality), count(aor_code),
           min({key}), max({key}), sum(len(redacted)), sum(len(unparsed)),
           count(*) FILTER (WHERE is_exact_duplicate)
    FROM {table}
"""
KEYS = {"foia_arrests": "apprehension_date", "foia_stints": "book_in",
        "foia_removals": "departed_date", "foia_detainers": "detainer_prepare_date",
        "foia_encounters": "event_date"}


@pytest.fixture(scope="module")
def loaded(tmp_path_factory) -> dict[str, tuple[Warehouse, IngestReport, list[Path]]]:
    root = tmp_path_factory.mktemp("synthetic")
    result = {}
    for fmt in ("xlsx", "csv", "parquet"):
        files = synth.generate_release(root / fmt, SCALE, seed=7, fmt=fmt,
                                       sheet_rows=700 if fmt == "xlsx" else None)
        warehouse = Warehouse(root / f"{fmt}.duckdb")
        result[fmt] = (warehouse, ingest_foia(files, warehouse), files)
    return result


def test_every_synthetic_file_loads_with_its_layout_and_every_row_counted(loaded):
    _, _, parquet_files = loaded["parquet"]
    rows_in_file = {p.stem: pq.ParquetFile(p).metadata.num_rows for p in parquet_files}
    for fmt, (_, report, _) in loaded.items():
        layouts = set()
        for outcome in report.files:
            assert outcome.status == "loaded", outcome.error
            assert outcome.synthetic
            a = outcome.accounting
            assert a.rows_read == rows_in_file[outcome.path.stem], (fmt, outcome.path.name)
            assert a.rows_read == a.rows_loaded + a.rows_quarantined + a.rows_duplicate
            assert outcome.release == {"20260311": "2026-03-11", "20250728": "2025-07-28"}[
                outcome.path.stem[-8:]]
            layouts.add(outcome.layout)
        assert {"arrests-2026-03", "arrests-2025-07", "stints-2023-2026", "removals-2023-2026",
                "detainers-2023-2026", "encounters-2025-07"} <= layouts
        assert report.derived is not None and report.derived_error is None


def test_the_three_formats_give_the_same_canonical_tables(loaded):
    summaries = {}
    for fmt, (warehouse, _, _) in loaded.items():
        with warehouse.connect(read_only=True) as con:
            summaries[fmt] = {t: con.execute(SUMMARY.format(key=k, table=t)).fetchone()
                              for t, k in KEYS.items()}
    assert summaries["xlsx"] == summaries["csv"] == summaries["parquet"]
    assert all(s[0] > 0 for s in summaries["xlsx"].values())


def test_xlsx_rows_point_at_their_sheet_and_row(loaded):
    warehouse, report, _ = loaded["xlsx"]
    with warehouse.connect(read_only=True) as con:
        sheets = con.execute("SELECT count(DISTINCT source_sheet), min(source_row) "
                             "FROM foia_stints").fetchone()
    assert sheets[0] > 1  # the generator split the stints over several sheets
    assert sheets[1] == 8  # six title rows and the header above the first data row
