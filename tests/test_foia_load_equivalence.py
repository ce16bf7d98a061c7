"""The load as DuckDB queries against the load it replaces (Arrow batches in one Python thread),
table by table and row by row, on the SYNTHETIC releases in every format and on the real UW v. DHS
production. The old load runs from a snapshot of the commit before the change (`git archive`), in
a subprocess of its own; this file goes once the comparison has been made.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import duckdb
import pytest
from conftest import REPO_ROOT, SHARED

from iceledger.sources.foia.ingest import foia_paths, ingest_foia
from iceledger.warehouse import Warehouse

synth = pytest.importorskip("iceledger.synth.releases")

BEFORE = "f890886"  # main before the load became queries
# Columns that say when, not what: they differ between any two loads.
WHEN = {"loaded_at", "built_at", "seconds"}
LOAD = """
import sys
from pathlib import Path
from iceledger.sources.foia.ingest import foia_paths, ingest_foia
from iceledger.warehouse import Warehouse
report = ingest_foia(foia_paths([Path(p) for p in sys.argv[2:]]), Warehouse(sys.argv[1]))
print([f.status for f in report.files], [f.error for f in report.files if f.error])
"""


@pytest.fixture(scope="module")
def old_source(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("before")
    archive = subprocess.run(["git", "-C", str(REPO_ROOT), "archive", BEFORE, "src"],
                             capture_output=True, check=True).stdout
    subprocess.run(["tar", "-x", "-C", str(root)], input=archive, check=True)
    return root / "src"


def _load_both(old_source: Path, files: list[Path], root: Path) -> tuple[Path, Path]:
    old, new = root / "old.duckdb", root / "new.duckdb"
    done = subprocess.run([sys.executable, "-c", LOAD, str(old), *map(str, files)],
                          env={**os.environ, "PYTHONPATH": str(old_source)},
                          capture_output=True, text=True, check=True)
    print("old:", done.stdout.strip())
    report = ingest_foia(foia_paths(files), Warehouse(new))
    print("new:", [f.status for f in report.files], [f.error for f in report.files if f.error])
    return old, new


def _differences(old: Path, new: Path) -> list[str]:
    found = []
    with duckdb.connect() as con:
        con.execute(f"ATTACH '{old}' AS old (READ_ONLY)")
        con.execute(f"ATTACH '{new}' AS new (READ_ONLY)")
        tables = {}
        for side in ("old", "new"):
            tables[side] = {t: [(c, k) for c, k in con.execute(
                "SELECT column_name, data_type FROM information_schema.columns WHERE "
                "table_catalog = ? AND table_name = ? ORDER BY ordinal_position",
                [side, t]).fetchall()] for (t,) in con.execute(
                "SELECT table_name FROM information_schema.tables WHERE table_catalog = ?",
                [side]).fetchall()}
        if set(tables["old"]) != set(tables["new"]):
            found.append(f"tables: {sorted(set(tables['old']) ^ set(tables['new']))}")
        for table in sorted(set(tables["old"]) & set(tables["new"])):
            if tables["old"][table] != tables["new"][table]:
                found.append(f"{table} columns: {tables['old'][table]} != "
                             f"{tables['new'][table]}")
                continue
            columns = ", ".join(f'"{c}"' for c, _ in tables["old"][table] if c not in WHEN)
            for a, b in (("old", "new"), ("new", "old")):
                rows = con.execute(f'SELECT {columns} FROM {a}."{table}" EXCEPT ALL '
                                   f'SELECT {columns} FROM {b}."{table}"').fetchall()
                if rows:
                    found.append(f"{table}: {len(rows)} rows in {a} only, e.g. {rows[:2]}")
            if any(c == "record_id" for c, _ in tables["old"][table]):
                # The derived tables break ties in load order: the rows' order must hold too.
                orders = [con.execute(f'SELECT record_id FROM {side}."{table}" ORDER BY rowid'
                                      ).fetchall() for side in ("old", "new")]
                if orders[0] != orders[1]:
                    found.append(f"{table}: the rows are in another order")
    return found


@pytest.mark.parametrize("fmt", ["xlsx", "csv", "parquet"])
@pytest.mark.parametrize("releases", [None, ["2012-2023"]], ids=["2025-2026", "2012-2023"])
def test_the_synthetic_releases_load_the_same(old_source, tmp_path, fmt, releases):
    files = synth.write_synthetic_releases(
        tmp_path / "files", 600, seed=3, fmt=fmt, releases=releases,
        sheet_rows=900 if fmt == "xlsx" else None)
    old, new = _load_both(old_source, [f.path for f in files], tmp_path)
    assert _differences(old, new) == []


def test_the_uw_production_loads_the_same(old_source, tmp_path):
    real = SHARED / "data" / "ice-foia-real"
    files = sorted(real.glob("*.xlsx"))
    if not files:
        pytest.skip(f"the real production is not at {real} (set ICELEDGER_SHARED)")
    old, new = _load_both(old_source, files, tmp_path)
    assert _differences(old, new) == []
