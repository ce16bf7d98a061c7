"""The warehouse as a Parquet lake: every table a Hive-partitioned dataset any engine can read.

`export_lake` writes each table of the warehouse under DIR/<table>/, partitioned by `release`
(FOIA releases) and `fiscal_year` where the table has them (a FOIA table's fiscal year is that of
its key date: the federal fiscal year, October to September), plus DIR/manifest.json naming every
table, its rows, its schema, its partitions and the source files (SHA-256) behind it.

Exports are incremental: a partition is rewritten only when its rows changed (its row count or
the sum of its rows' hashes differs from the manifest's), so a new release adds partitions and
leaves the others' files untouched. A partition is written to a temporary file and renamed into
place, and the manifest is replaced last, so an interrupted export leaves the previous manifest
describing files that are all still there.
"""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import duckdb

from iceledger import tables
from iceledger.errors import IceledgerError
from iceledger.warehouse import Warehouse

MANIFEST = "manifest.json"
LAKE_FORMAT = "iceledger-lake/1"


@dataclass
class LakeExport:
    directory: Path
    tables: dict[str, int] = field(default_factory=dict)  # rows per table
    partitions_written: int = 0
    partitions_kept: int = 0
    partitions_removed: int = 0


def export_lake(warehouse: Warehouse, directory: Path | str) -> LakeExport:
    """Write (or bring up to date) the lake of `warehouse` in `directory`."""
    directory = Path(directory)
    try:
        directory.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise IceledgerError(f"{directory}: cannot make the lake folder: {exc.strerror}") from None
    previous = read_manifest(directory) if (directory / MANIFEST).exists() else {"tables": {}}
    result = LakeExport(directory)
    manifest_tables = {}
    with warehouse.connect(read_only=True) as con:
        names = [r[0] for r in con.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = 'main' "
            "ORDER BY table_name").fetchall()]
        for name in names:
            entry = _export_table(con, name, directory, previous["tables"].get(name, {}), result)
            manifest_tables[name] = entry
            result.tables[name] = entry["rows"]
        sources = con.execute(
            f"SELECT sha256, file_name, kind, synthetic FROM {tables.SOURCES} ORDER BY sha256"
        ).fetchall() if tables.SOURCES in names else []
    for gone in set(previous["tables"]) - set(manifest_tables):
        shutil.rmtree(directory / gone, ignore_errors=True)
    manifest = {
        "format": LAKE_FORMAT,
        "exported_at": datetime.now(UTC).replace(microsecond=0).isoformat(),
        "warehouse": str(warehouse.path),
        "synthetic": any(s[3] for s in sources),
        "sources": [{"sha256": s[0], "file_name": s[1], "kind": s[2], "synthetic": s[3]}
                    for s in sources],
        "tables": manifest_tables,
    }
    temporary = directory / f".{MANIFEST}.tmp"
    temporary.write_text(json.dumps(manifest, indent=1, default=str), "utf-8")
    os.replace(temporary, directory / MANIFEST)
    return result


def read_manifest(directory: Path | str) -> dict:
    path = Path(directory) / MANIFEST
    try:
        manifest = json.loads(path.read_text("utf-8"))
    except FileNotFoundError:
        raise IceledgerError(f"{path}: no lake here; write one with `iceledger lake export "
                             f"{directory}`") from None
    except (OSError, ValueError) as exc:
        raise IceledgerError(f"{path}: not a readable lake manifest: {exc}") from None
    if manifest.get("format") != LAKE_FORMAT:
        raise IceledgerError(f"{path}: not an iceledger lake manifest ({LAKE_FORMAT})")
    return manifest


def _partition_columns(con: duckdb.DuckDBPyConnection, name: str) -> tuple[list[str], str]:
    """The table's partition columns and the SELECT list that adds any computed one."""
    columns = [r[0] for r in con.execute(
        "SELECT column_name FROM information_schema.columns WHERE table_schema = 'main' "
        "AND table_name = ? ORDER BY ordinal_position", [name]).fetchall()]
    keys = [c for c in ("release", "fiscal_year") if c in columns]
    select = "*"
    when = tables.key_dates().get(name)
    if "fiscal_year" not in columns and when in columns:
        select = (f'*, CAST(year("{when}") + (month("{when}") >= 10)::INTEGER AS INTEGER) '
                  "AS fiscal_year")
        keys.append("fiscal_year")
    return keys, select


def _export_table(con, name: str, directory: Path, before: dict, result: LakeExport) -> dict:
    keys, select = _partition_columns(con, name)
    source = f'(SELECT {select} FROM "{name}") AS t'
    group = ", ".join(f'"{k}"' for k in keys)
    fingerprints = con.execute(
        f"SELECT {group + ', ' if keys else ''}count(*), CAST(sum(hash(t)) AS VARCHAR) "
        f"FROM {source}{' GROUP BY ALL' if keys else ''}").fetchall()
    schema = [{"name": c, "type": t} for c, t in con.execute(
        "SELECT column_name, data_type FROM information_schema.columns WHERE table_schema = "
        "'main' AND table_name = ? ORDER BY ordinal_position", [name]).fetchall()]
    if not any(row[-2] for row in fingerprints):
        # An empty table is one file with no rows, so every reader still finds its columns.
        keys, fingerprints = [], [(0, None)]
    partitions = {}
    old = before.get("partitions", {})
    same_schema = before.get("schema") == schema and before.get("partition_by") == keys
    for row in fingerprints:
        values, rows, digest = row[:len(keys)], row[-2], row[-1]
        relative = "/".join(f"{k}={_partition_value(v)}" for k, v in zip(keys, values))
        path = f"{name}/{relative}/data.parquet" if keys else f"{name}/data.parquet"
        fingerprint = {"rows": rows, "hash": digest}
        partitions[path] = fingerprint
        if same_schema and old.get(path) == fingerprint and (directory / path).exists():
            result.partitions_kept += 1
            continue
        condition = " AND ".join(
            f'"{k}" IS NULL' if v is None else f'"{k}" = ?' for k, v in zip(keys, values))
        target = directory / path
        target.parent.mkdir(parents=True, exist_ok=True)
        temporary = target.with_name(".data.parquet.tmp")
        # Partition values live in the folder names (Hive style), not in the files.
        kept = "* EXCLUDE (" + ", ".join(f'"{k}"' for k in keys) + ")" if keys else "*"
        con.execute(
            f"COPY (SELECT {kept} FROM {source}{' WHERE ' + condition if keys else ''}) "
            f"TO '{_sql_path(temporary)}' (FORMAT parquet)",
            [v for v in values if v is not None])
        os.replace(temporary, target)
        result.partitions_written += 1
    for path in set(old) - set(partitions):
        stale = directory / path
        stale.unlink(missing_ok=True)
        result.partitions_removed += 1
        for parent in stale.parents:
            if parent == directory or any(parent.iterdir()):
                break
            parent.rmdir()
    return {"rows": sum(p["rows"] for p in partitions.values()), "schema": schema,
            "partition_by": keys, "partitions": partitions}


def _partition_value(value) -> str:
    # Spark and DuckDB both read this as a NULL partition value.
    return "__HIVE_DEFAULT_PARTITION__" if value is None else str(value)


def _sql_path(path: Path) -> str:
    return str(path).replace("'", "''")
