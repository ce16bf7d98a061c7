"""Every layout the synthetic generator writes (SYNTHETIC data) loads the same from xlsx, CSV and
parquet: same rows, same canonical values, every row accounted for."""

from __future__ import annotations

from pathlib import Path

import pyarrow.parquet as pq
import pytest

from iceledger.sources.foia.ingest import IngestReport, ingest_foia
from iceledger.warehouse import Warehouse

synth = pytest.importorskip("iceledger.synth.releases")

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


Loaded = dict[str, tuple[Warehouse, IngestReport, list["synth.SyntheticFile"]]]


def _write_and_ingest(root: Path, releases: list[str] | None = None,
                      xlsx_sheet_rows: int | None = None) -> Loaded:
    """The same SYNTHETIC releases written as xlsx, CSV and parquet, each format ingested into a
    warehouse of its own."""
    result = {}
    for fmt in ("xlsx", "csv", "parquet"):
        files = synth.write_synthetic_releases(
            root / fmt, SCALE, seed=7, fmt=fmt, releases=releases,
            sheet_rows=xlsx_sheet_rows if fmt == "xlsx" else None)
        warehouse = Warehouse(root / f"{fmt}.duckdb")
        result[fmt] = (warehouse, ingest_foia([f.path for f in files], warehouse), files)
    return result


def _summaries(loaded: Loaded, tables: dict[str, str]) -> dict[str, dict[str, tuple]]:
    summaries = {}
    for fmt, (warehouse, _, _) in loaded.items():
        with warehouse.connect(read_only=True) as con:
            summaries[fmt] = {t: con.execute(SUMMARY.format(key=k, table=t)).fetchone()
                              for t, k in tables.items()}
    return summaries


@pytest.fixture(scope="module")
def loaded(tmp_path_factory) -> Loaded:
    return _write_and_ingest(tmp_path_factory.mktemp("synthetic"), xlsx_sheet_rows=700)


def test_every_synthetic_file_loads_with_its_layout_and_every_row_counted(loaded):
    _, _, parquet_files = loaded["parquet"]
    rows_in_file = {f.path.stem: pq.ParquetFile(f.path).metadata.num_rows for f in parquet_files}
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
    summaries = _summaries(loaded, KEYS)
    assert summaries["xlsx"] == summaries["csv"] == summaries["parquet"]
    assert all(s[0] > 0 for s in summaries["xlsx"].values())


def test_xlsx_rows_point_at_their_sheet_and_row(loaded):
    warehouse, _, _ = loaded["xlsx"]
    with warehouse.connect(read_only=True) as con:
        sheets = con.execute("SELECT count(DISTINCT source_sheet), min(source_row) "
                             "FROM foia_stints").fetchone()
    assert sheets[0] > 1  # the generator split the stints over several sheets
    assert sheets[1] == 8  # six title rows and the header above the first data row


# The 2012-2023 release (written only when named) ------------------------------------------------

OLDER_LAYOUTS = {"arrests-2012-2023", "stints-2012-2023", "removals-2012-2023"}
OLDER_TABLES = {t: k for t, k in KEYS.items() if t in ("foia_arrests", "foia_stints",
                                                       "foia_removals")}


@pytest.fixture(scope="module")
def older(tmp_path_factory) -> Loaded:
    return _write_and_ingest(tmp_path_factory.mktemp("synthetic-2012-2023"), ["2012-2023"])


def test_the_2012_2023_release_loads_as_exactly_its_layouts_with_nothing_quarantined(older):
    for fmt, (_, report, files) in older.items():
        written = {f.path.name: f for f in files}
        assert {f.layout for f in files} == OLDER_LAYOUTS
        for outcome in report.files:
            assert outcome.status == "loaded", outcome.error
            assert outcome.synthetic
            assert outcome.layout == written[outcome.path.name].layout, (fmt, outcome.path.name)
            assert outcome.release == "2023-10-01"
            a = outcome.accounting
            assert a.rows_read == written[outcome.path.name].rows
            assert a.rows_read == a.rows_loaded + a.rows_quarantined + a.rows_duplicate
            assert a.rows_quarantined == 0
            window = [c for c in outcome.checks if c["check"] == "dates_outside_release_window"]
            assert [c["failed_rows"] for c in window] == [0]
        assert {o.layout for o in report.files} == OLDER_LAYOUTS
        assert report.derived is not None and report.derived_error is None


def test_the_2012_2023_release_builds_its_derived_tables(older):
    warehouse, _, _ = older["xlsx"]
    with warehouse.connect(read_only=True) as con:
        release = con.execute("SELECT release, coverage_start, coverage_end FROM foia_releases"
                              ).fetchall()
        stays, open_stays = con.execute(
            "SELECT count(*), count(*) FILTER (WHERE censored) FROM foia_stays").fetchone()
        links = con.execute("SELECT count(*) FROM foia_arrest_stay_links").fetchone()[0]
        removals_linked = con.execute(
            "SELECT count(*) FILTER (WHERE stay_id IS NOT NULL) FROM foia_removal_links"
        ).fetchone()[0]
        quarantined = con.execute("SELECT count(*) FROM ingest_quarantine").fetchone()[0]
    assert [str(r[0]) for r in release] == ["2023-10-01"]
    assert str(release[0][2]) == "2023-10-01"
    assert stays > 0 and open_stays > 0
    assert links > 0 and removals_linked > 0
    assert quarantined == 0


def test_the_2012_2023_release_gives_the_same_tables_in_every_format(older):
    summaries = _summaries(older, OLDER_TABLES)
    assert summaries["xlsx"] == summaries["csv"] == summaries["parquet"]
    assert all(s[0] > 0 and s[1] > 0 for s in summaries["xlsx"].values())


def test_the_2012_2023_xlsx_rows_sit_under_five_title_rows(older):
    warehouse, _, _ = older["xlsx"]
    with warehouse.connect(read_only=True) as con:
        first_rows = {t: con.execute(f"SELECT min(source_row) FROM {t}").fetchone()[0]
                      for t in OLDER_TABLES}
    assert set(first_rows.values()) == {7}  # five title rows and the header above the data
