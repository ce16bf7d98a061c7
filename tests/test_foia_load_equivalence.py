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

BEFORE = "c60178d"  # main before the load became queries (with the bad-input fixes)
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


# Cells of every kind the old load read the same whatever else a batch held (an impossible ISO
# date such as 2025-02-30 made it read every ISO date of its batch another way; a serial number
# with spaces around it failed the whole file).
KEY_DATES = ["2025-01-01 12:00:00", "2025-01-01T08:30:00", "2025-03-04", "01/02/2025 09:05",
             "1/2/2025 9:05", "02-Jan-25", "45658.5", "45700", "not a date", "b(6), b(7)c", "",
             None, "2025-01-01 12:00:00.5", "0", "12/31/2025 23:59:59"]
VALUES = {
    "date": ["2024-02-01", "45000", "02/03/2024", "unknown", "(b)(6)", None, ""],
    "integer": ["12", "12.0", " 7 ", "3000000000", "+4", "1e3", "x", None],
    "decimal": ["1.5", "$1,000.50", " 3 ", "1,5", "-$3", "$-3", "abc", None],
    "yes_no": ["YES", "NO", "Y", "N", "Yes ", "\u00a0No", "y", "maybe", None],
    "criminality": ["1 Convicted Criminal", "Convicted Criminal", " 2 Pending Criminal Charges ",
                    "3 Other Immigration Violator", "Other", None],
    "aor": ["Atlanta Area of Responsibility", "ATL", "St. Paul Area of Responsibility",
            "Washington DC", "Atlantis", "\u00a0ATL", None],
    None: ["text", "b(6), b(7)c", "(b)(6),(b)(7)c)", "(B)(6) and (b)(7)(C)", "b6", "", None],
}


def _messy_rows(layout_name: str, rows: int, seed: int) -> list[dict]:
    """SCRATCH rows in a listed layout, every cell drawn from VALUES by its column's type, with
    exact duplicates (named and unnamed), blank rows and unreadable key dates among them."""
    import random

    from iceledger.sources.foia.layouts import catalog

    cat = catalog()
    spec = next(x for x in cat.layouts if x.name == layout_name)
    chance = random.Random(seed)
    out: list[dict] = []
    for _ in range(rows):
        pick = chance.random()
        if pick < 0.05:
            out.append({})
            continue
        if pick < 0.2 and out:
            out.append(dict(chance.choice(out)))
            continue
        row = {}
        for header in spec.headers:
            name = spec.dataset.canonical_name(header)
            kind = cat.types.get(name)
            pool = (KEY_DATES if name == spec.dataset.key_date
                    else VALUES.get(kind if kind != "timestamp" else "date", VALUES[None]))
            row[header] = chance.choice(pool)
        out.append(row)
    return out


@pytest.mark.parametrize("fmt", ["xlsx", "csv", "parquet"])
def test_messy_files_load_the_same(old_source, tmp_path, fmt):
    import csv as csv_module

    import pyarrow as pa
    import pyarrow.parquet as pq
    from test_foia_ingest import layout, write_xlsx

    files = []
    for number, (name, stem) in enumerate([
            ("arrests-2026-03", "SCRATCH_Arrests_FY23-FY26_20260311"),
            ("stints-2023-2026", "SCRATCH_Detention-Stints_FY23-FY26_20260311")]):
        rows = _messy_rows(name, 3000, seed=number)
        headers = list(layout(name).headers)
        path = tmp_path / f"{stem}.{fmt}"
        if fmt == "xlsx":
            write_xlsx(path, name, [rows[:1800], rows[1800:]])
        elif fmt == "csv":
            with open(path, "w", newline="", encoding="utf-8") as handle:
                writer = csv_module.writer(handle)
                writer.writerow(headers)
                writer.writerows([[r.get(h) for h in headers] for r in rows])
        else:
            pq.write_table(pa.table({h: pa.array([r.get(h) for r in rows], pa.string())
                                     for h in headers}), path, row_group_size=700)
        files.append(path)
    old, new = _load_both(old_source, files, tmp_path)
    assert _differences(old, new) == []


def test_the_uw_production_loads_the_same(old_source, tmp_path):
    real = SHARED / "data" / "ice-foia-real"
    files = sorted(real.glob("*.xlsx"))
    if not files:
        pytest.skip(f"the real production is not at {real} (set ICELEDGER_SHARED)")
    old, new = _load_both(old_source, files, tmp_path)
    assert _differences(old, new) == []
