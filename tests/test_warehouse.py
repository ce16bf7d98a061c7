"""The warehouse loads atomically, keys sources by hash and keeps the row accounting honest."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import duckdb
import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from iceledger.errors import IceledgerError
from iceledger.tables import QUARANTINE
from iceledger.warehouse import (
    QuarantinedRow,
    RowAccounting,
    SourceLoad,
    Warehouse,
    file_sha256,
)


def _load(path: Path, rows: int, quarantined: int = 0, sha: str | None = None) -> SourceLoad:
    table = pa.table({"value": list(range(rows)), "source_file": [path.name] * rows})
    accounting = RowAccounting(
        rows_read=rows + quarantined,
        rows_loaded=rows,
        quarantined=[QuarantinedRow("Sheet1", i + 2, f"A{i + 2}", "not a number")
                     for i in range(quarantined)],
    )
    return SourceLoad(path=path, sha256=sha or file_sha256(path), kind="test",
                      tables={"numbers": table}, accounting=accounting)


def test_same_bytes_load_once_and_new_bytes_add_a_version(tmp_path):
    source = tmp_path / "a.csv"
    source.write_text("1\n")
    wh = Warehouse(tmp_path / "w.duckdb")
    assert wh.load(_load(source, 3, quarantined=2)) is True
    assert wh.load(_load(source, 3, quarantined=2)) is False
    source.write_text("2\n")
    assert wh.load(_load(source, 4)) is True
    assert wh.read_table("numbers").num_rows == 7
    assert wh.read_table(QUARANTINE).num_rows == 2
    assert [s["rows_read"] for s in wh.sources()] == [5, 4]


def test_unbalanced_accounting_loads_nothing(tmp_path):
    source = tmp_path / "a.csv"
    source.write_text("x")
    load = _load(source, 3)
    load.accounting.rows_read = 10
    wh = Warehouse(tmp_path / "w.duckdb")
    with pytest.raises(IceledgerError, match="does not balance"):
        wh.load(load)
    assert not wh.has_source(load.sha256)


def test_later_columns_extend_the_table(tmp_path):
    wh = Warehouse(tmp_path / "w.duckdb")
    for i, table in enumerate([pa.table({"a": [1]}), pa.table({"a": [2], "b": ["new"]})]):
        source = tmp_path / f"{i}.csv"
        source.write_text(str(i))
        wh.load(SourceLoad(source, file_sha256(source), "test", {"t": table},
                           RowAccounting(rows_read=1, rows_loaded=1)))
    assert wh.read_table("t").to_pydict() == {"a": [1, 2], "b": [None, "new"]}


def test_sources_load_together_in_one_go_and_each_once(tmp_path):
    sources = []
    for name, rows in (("a.csv", 2), ("b.csv", 3)):
        sources.append(tmp_path / name)
        sources[-1].write_text(name)
    wh = Warehouse(tmp_path / "w.duckdb")
    wh.load(_load(sources[0], 2, quarantined=1))
    loads = [_load(sources[0], 2, quarantined=1), _load(sources[1], 3, quarantined=2),
             _load(sources[1], 3, quarantined=2)]
    with wh.loader() as loader:
        assert loader.load_together(loads) == {}
    assert sorted(wh.read_table("numbers").column("source_file").to_pylist()) == [
        "a.csv"] * 2 + ["b.csv"] * 3
    assert wh.read_table(QUARANTINE).num_rows == 3
    assert [(s["file_name"], s["rows_read"]) for s in wh.sources()] == [("a.csv", 3),
                                                                         ("b.csv", 5)]


def test_a_source_duckdb_refuses_fails_alone_when_loaded_together(tmp_path):
    """Text where the first source has numbers: the joint load is refused, so each source is
    loaded alone, and only the one DuckDB refuses stays out."""
    loads = []
    for name, values in (("a.csv", [1, 2]), ("b.csv", ["three"]), ("c.csv", [4])):
        source = tmp_path / name
        source.write_text(name)
        loads.append(SourceLoad(source, file_sha256(source), "test", {"t": pa.table({"x": values})},
                                RowAccounting(rows_read=len(values), rows_loaded=len(values))))
    wh = Warehouse(tmp_path / "w.duckdb")
    with wh.loader() as loader:
        refused = loader.load_together(loads)
    assert list(refused) == [loads[1].sha256] and refused[loads[1].sha256].startswith("b.csv: ")
    assert wh.read_table("t").column("x").to_pylist() == [1, 2, 4]
    assert [s["file_name"] for s in wh.sources()] == ["a.csv", "c.csv"]


def test_unbalanced_accounting_loads_none_of_those_loaded_together(tmp_path):
    loads = []
    for name in ("a.csv", "b.csv"):
        (tmp_path / name).write_text(name)
        loads.append(_load(tmp_path / name, 2))
    loads[1].accounting.rows_read += 1
    wh = Warehouse(tmp_path / "w.duckdb")
    with wh.loader() as loader, pytest.raises(IceledgerError, match="does not balance"):
        loader.load_together(loads)
    assert wh.sources() == []


def test_killed_mid_load_leaves_the_warehouse_as_it_was(tmp_path):
    db = tmp_path / "w.duckdb"
    first = tmp_path / "first.csv"
    first.write_text("first")
    Warehouse(db).load(_load(first, 5))

    # A child process starts a large load and announces when it is inside the transaction;
    # it is then killed with SIGKILL, the harshest interruption there is.
    script = textwrap.dedent(f"""
        import sys, pyarrow as pa
        from pathlib import Path
        from iceledger.warehouse import Warehouse, SourceLoad, RowAccounting
        def batches():
            for i in range(100_000):
                if i == 3:
                    print("inside", flush=True)
                yield pa.record_batch({{"value": list(range(50_000)),
                                        "source_file": ["second.csv"] * 50_000}})
        Warehouse({str(db)!r}).load(SourceLoad(Path("second.csv"), "f" * 64, "test",
            {{"numbers": batches()}}, RowAccounting(rows_read=1, rows_loaded=1)))
    """)
    child = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    # "inside" is printed while the fourth part is made: three are in the open transaction.
    assert child.stdout.readline().strip() == "inside"
    os.kill(child.pid, signal.SIGKILL)
    child.wait()

    wh = Warehouse(db)
    assert wh.read_table("numbers").num_rows == 5
    assert [s["file_name"] for s in wh.sources()] == ["first.csv"]
    with duckdb.connect(str(db)) as con:
        assert con.execute("SELECT count(*) FROM numbers").fetchone()[0] == 5


def test_export_writes_csv_and_parquet(tmp_path):
    source = tmp_path / "a.csv"
    source.write_text("1")
    wh = Warehouse(tmp_path / "w.duckdb")
    wh.load(_load(source, 4))
    assert wh.export("numbers", "csv", tmp_path / "n.csv") == 4
    assert (tmp_path / "n.csv").read_text().splitlines()[0] == '"value","source_file"'
    assert wh.export("numbers", "parquet", tmp_path / "n.parquet") == 4
    with pytest.raises(IceledgerError, match="no table named 'nope'"):
        wh.export("nope", "csv", tmp_path / "x.csv")


def test_an_empty_first_part_does_not_decide_column_types(tmp_path):
    """Hypothesis's minimal case: parts of 0 and then 1 rows (the empty part's column is typeless)."""
    source = tmp_path / "parts.csv"
    source.write_text("x")
    parts = [pa.table({"value": pa.array([], pa.null())}), pa.table({"value": [7]}),
             pa.table({"value": pa.array([None], pa.null()), "note": ["n"]})]
    Warehouse(tmp_path / "w.duckdb").load(SourceLoad(
        source, file_sha256(source), "test", {"t": iter(parts)},
        RowAccounting(rows_read=2, rows_loaded=2)))
    with duckdb.connect(str(tmp_path / "w.duckdb")) as con:
        assert con.execute("SELECT * FROM t ORDER BY rowid").fetchall() == [(7, None), (None, "n")]
        assert dict(con.execute("SELECT column_name, data_type FROM information_schema.columns "
                                "WHERE table_name = 't'").fetchall())["value"] == "BIGINT"


@given(st.lists(st.tuples(st.integers(0, 40), st.booleans()), max_size=12))
@settings(max_examples=40, deadline=None)
def test_every_row_of_any_mix_of_parts_lands_once_in_order(tmp_path_factory, parts):
    """Parts of any sizes, some with a column the others lack: each row once, in order."""
    tables, first = [], 0
    for rows, with_note in parts:
        columns = {"value": list(range(first, first + rows))}
        if with_note:
            columns["note"] = [f"n{v}" for v in columns["value"]]
        tables.append(pa.table(columns))
        first += rows
    source = tmp_path_factory.mktemp("parts") / "parts.csv"
    source.write_text("x")
    accounting = RowAccounting(rows_read=first, rows_loaded=first)
    Warehouse(source.parent / "w.duckdb").load(
        SourceLoad(source, file_sha256(source), "test", {"t": iter(tables)}, accounting))
    if not tables:
        return
    expected = [(v, f"n{v}" if note else None)
                for (_, note), table in zip(parts, tables) for v in table["value"].to_pylist()]
    with duckdb.connect(str(source.parent / "w.duckdb")) as con:
        names = [r[0] for r in con.execute("DESCRIBE t").fetchall()]
        got = con.execute("SELECT * FROM t ORDER BY rowid").fetchall()
    if "note" not in names:
        expected = [(v,) for v, _ in expected]
    assert got == expected
