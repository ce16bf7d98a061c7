"""`iceledger ingest stats` on SYNTHETIC workbooks: atomic loads, versions, failures, the CLI."""

from __future__ import annotations

import gc
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from test_stats_parse import detained_now, sheets_with, standard_sheets, write_workbook
from typer.testing import CliRunner

from iceledger.cli import app
from iceledger.sources.stats.ingest import ingest_stats
from iceledger.warehouse import Warehouse

NAME = "SYNTHETIC_FY25_detentionStats03252025.xlsx"


@pytest.fixture
def folder(tmp_path) -> Path:
    folder = tmp_path / "workbooks"
    folder.mkdir()
    write_workbook(folder / NAME, standard_sheets())
    return folder


def query(warehouse: Warehouse, sql: str) -> list[tuple]:
    with warehouse.connect(read_only=True) as con:
        return con.execute(sql).fetchall()


def test_a_workbook_loads_with_its_accounting(folder, tmp_path):
    warehouse = Warehouse(tmp_path / "w.duckdb")
    summary = ingest_stats([folder], warehouse)
    assert [f.status for f in summary.files] == ["loaded"] and not summary.failed
    (source,) = warehouse.sources()
    assert (source["kind"], source["file_name"]) == ("stats", NAME)
    assert source["rows_read"] == source["rows_loaded"] > 0
    assert query(warehouse, "SELECT detained FROM stats_detained_now "
                            "WHERE agency = 'ICE' AND criminality = 'Total'") == [(600.0,)]
    assert query(warehouse, "SELECT workbook, fiscal_year FROM stats_workbooks") == [(NAME, 2025)]


def test_reingesting_the_same_bytes_changes_nothing(folder, tmp_path):
    warehouse = Warehouse(tmp_path / "w.duckdb")
    ingest_stats([folder], warehouse)
    before = query(warehouse, "SELECT count(*) FROM stats_adp")
    again = ingest_stats([folder / NAME], warehouse)
    assert [f.status for f in again.files] == ["unchanged"]
    assert query(warehouse, "SELECT count(*) FROM stats_adp") == before
    assert len(warehouse.sources()) == 1


def test_a_reposted_workbook_is_a_new_version_beside_the_old(folder, tmp_path):
    warehouse = Warehouse(tmp_path / "w.duckdb")
    ingest_stats([folder], warehouse)
    revised = detained_now()
    revised[2][1] = 601.0
    write_workbook(folder / NAME, sheets_with(0, revised))  # same name, new figures
    ingest_stats([folder], warehouse)
    versions = query(warehouse, "SELECT detained, sha256 FROM stats_detained_now WHERE "
                                "agency = 'ICE' AND criminality = 'Total' ORDER BY detained")
    assert [v[0] for v in versions] == [600.0, 601.0]
    assert versions[0][1] != versions[1][1]


def test_a_quarantined_value_is_kept_with_its_cell(folder, tmp_path):
    broken = detained_now()
    broken[3][1] = "three hundred"
    write_workbook(folder / NAME, sheets_with(0, broken))
    warehouse = Warehouse(tmp_path / "w.duckdb")
    ingest_stats([folder], warehouse)
    (row,) = query(warehouse, "SELECT sheet, row_number, cell FROM ingest_quarantine")
    assert row == ("Detention FY25", 11, "B11")
    (source,) = warehouse.sources()
    assert source["rows_read"] == source["rows_loaded"] + source["rows_quarantined"]


@pytest.mark.parametrize("batch_rows", [1, 1_000_000])
def test_workbooks_load_in_batches_each_once(folder, tmp_path, monkeypatch, batch_rows):
    """One batch for both workbooks, or one each: the same warehouse either way."""
    monkeypatch.setattr("iceledger.sources.stats.ingest.BATCH_ROWS", batch_rows)
    revised = detained_now()
    revised[2][1] = 601.0
    write_workbook(folder / "SYNTHETIC_FY25_detentionStats03282025.xlsx", sheets_with(0, revised))
    # A byte-for-byte copy: writing the same sheets again may stamp another second into the file.
    shutil.copyfile(folder / NAME, folder / "SYNTHETIC_copy_FY25_detentionStats03252025.xlsx")
    warehouse = Warehouse(tmp_path / "w.duckdb")
    summary = ingest_stats([folder], warehouse)
    assert sorted(f.status for f in summary.files) == ["loaded", "loaded", "unchanged"]
    assert summary.review is not None and summary.review.counts()["pass"] > 0
    assert query(warehouse, "SELECT detained FROM stats_detained_now WHERE agency = 'ICE' AND "
                            "criminality = 'Total' ORDER BY detained") == [(600.0,), (601.0,)]
    assert len(warehouse.sources()) == 2


def test_a_broken_file_fails_alone(folder, tmp_path):
    (folder / "SYNTHETIC_broken.xlsx").write_bytes(b"not a workbook")
    warehouse = Warehouse(tmp_path / "w.duckdb")
    summary = ingest_stats([folder], warehouse)
    assert {f.path.name: f.status for f in summary.files} == {
        NAME: "loaded", "SYNTHETIC_broken.xlsx": "failed"}
    assert summary.failed
    assert [s["file_name"] for s in warehouse.sources()] == [NAME]


def test_cli_exits_nonzero_on_any_failure_without_a_traceback(folder, tmp_path):
    runner = CliRunner()
    warehouse = str(tmp_path / "w.duckdb")
    ok = runner.invoke(app, ["ingest", "stats", str(folder), "--warehouse", warehouse])
    assert ok.exit_code == 0, ok.output
    assert f"loaded {NAME}" in ok.output
    (folder / "SYNTHETIC_broken.xlsx").write_bytes(b"not a workbook")
    failed = runner.invoke(app, ["ingest", "stats", str(folder), "--warehouse", warehouse])
    assert failed.exit_code == 1
    assert "not a readable .xlsx workbook" in failed.output
    assert "Traceback" not in failed.output
    missing = runner.invoke(app, ["ingest", "stats", str(tmp_path / "nowhere"),
                                  "--warehouse", warehouse])
    assert missing.exit_code == 1 and "no such file or folder" in missing.output


# Libraries the project uses elsewhere (metrics, report, web, FOIA files) that loading workbooks
# has no need of: each costs a sizeable part of the whole command to import.
NOT_FOR_STATS = ("pandas", "ibis", "jinja2", "altair", "fastapi", "starlette", "uvicorn",
                 "openpyxl", "polars", "sqlglot", "matplotlib", "weasyprint")


def test_the_command_imports_nothing_it_does_not_need(folder, tmp_path):
    script = textwrap.dedent(f"""
        import atexit, runpy, sys
        atexit.register(lambda: print("MODULES", *sorted(sys.modules)))
        sys.argv = ["iceledger", "ingest", "stats", {str(folder)!r},
                    "--warehouse", {str(tmp_path / "w.duckdb")!r}]
        runpy.run_module("iceledger", run_name="__main__")
    """)
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          check=True)
    assert f"loaded {NAME}" in done.stdout
    modules = next(line for line in done.stdout.splitlines() if line.startswith("MODULES"))
    imported = {name.split(".")[0] for name in modules.split()[1:]}
    assert "iceledger" in imported and "python_calamine" in imported
    assert not imported & set(NOT_FOR_STATS)


def test_the_command_leaves_every_object_collectable(folder, tmp_path):
    result = CliRunner().invoke(app, ["ingest", "stats", str(folder),
                                      "--warehouse", str(tmp_path / "w.duckdb")])
    assert result.exit_code == 0, result.output
    assert gc.get_freeze_count() == 0
